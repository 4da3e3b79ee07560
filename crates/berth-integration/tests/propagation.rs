//! Bind propagation as Docker does it: a mount the container makes under an `rshared` bind
//! appears on the host, a mount the host makes under an `rslave` bind appears in the running
//! container, and either is refused, naming the path, when the source's mount on the host
//! cannot propagate.

use std::path::Path;

use berth_integration::{Daemon, HostMount};

/// Whether something is mounted exactly at `point` in the host's mount namespace.
fn mounted_at(point: &Path) -> bool {
    let want = point.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo").unwrap().lines().any(|l| l.split(' ').nth(4) == Some(&want))
}

#[test]
fn a_mount_made_under_an_rshared_bind_reaches_the_host_and_under_a_private_one_does_not() {
    let d = Daemon::with_busybox();
    let src = HostMount::new(&d.dir.path().join("shared"), "shared");
    for sub in ["both", "private"] {
        std::fs::create_dir(src.0.join(sub)).unwrap();
    }
    let inside = "mount -t tmpfs -o size=1m berth-prop /m/both && echo from-the-container > /m/both/f";
    d.berth(&[
        "run",
        "--rm",
        "--privileged",
        "-v",
        &format!("{}:/m:rshared", src.path()),
        "busybox",
        "sh",
        "-c",
        inside,
    ])
    .ok();
    // The container is gone; what it mounted stays on the host, as with Docker.
    assert!(mounted_at(&src.0.join("both")), "the container's mount is not on the host");
    assert_eq!(std::fs::read_to_string(src.0.join("both/f")).unwrap(), "from-the-container\n");

    // Control: the same bind with Docker's default propagation (rprivate) keeps the
    // container's mount to the container, which does see it.
    let inside = "mount -t tmpfs -o size=1m berth-prop /m/private && echo x > /m/private/f && cat /m/private/f";
    let out = d
        .berth(&["run", "--rm", "--privileged", "-v", &format!("{}:/m", src.path()), "busybox", "sh", "-c", inside])
        .ok();
    assert_eq!(out, "x\n");
    assert!(!mounted_at(&src.0.join("private")));
    assert!(!src.0.join("private/f").exists());
}

#[test]
fn a_mount_made_on_the_host_under_an_rslave_bind_appears_in_the_running_container() {
    let d = Daemon::with_busybox();
    let src = HostMount::new(&d.dir.path().join("shared"), "shared");
    std::fs::create_dir(src.0.join("later")).unwrap();
    let id = d.berth(&["run", "-d", "-v", &format!("{}:/m:rslave", src.path()), "busybox", "sleep", "1000"]).ok();
    let id = id.trim();
    assert!(d.berth(&["exec", id, "cat", "/m/later/f"]).fails().contains("No such file"));
    let later = src.0.join("later");
    let out = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "berth-prop"])
        .arg(&later)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    std::fs::write(later.join("f"), "from-the-host\n").unwrap();
    assert_eq!(d.berth(&["exec", id, "cat", "/m/later/f"]).ok(), "from-the-host\n");
    d.berth(&["rm", "-f", id]).ok();
}

#[test]
fn propagation_from_a_private_mount_is_refused_naming_the_path_and_leaves_nothing() {
    let d = Daemon::with_busybox();
    let src = HostMount::new(&d.dir.path().join("private"), "private");
    for (p, kind) in [("rshared", "shared"), ("shared", "shared"), ("rslave", "shared or slave")] {
        let err = d.berth(&["run", "--rm", "-v", &format!("{}:/m:{p}", src.path()), "busybox", "true"]).fails();
        let want = format!("path {0} is mounted on {0} but it is not a {kind} mount", src.path());
        assert!(err.contains(&want), "{p}: {err}");
    }
    assert_eq!(d.berth(&["ps", "-aq"]).ok(), "");
    // Control: the same source with the default propagation is bound.
    d.berth(&["run", "--rm", "-v", &format!("{}:/m", src.path()), "busybox", "true"]).ok();
}
