//! The core scenarios again, driven by the real `docker` CLI (version 28) against berth's
//! socket: what a Docker user types must work unchanged.

use berth_integration::{Daemon, unique};

#[test]
fn containers_through_the_docker_cli() {
    let d = Daemon::with_busybox();
    assert_eq!(
        d.docker(&["run", "--rm", "--network", "none", "busybox", "echo", "hello from berth"]).ok(),
        "hello from berth\n"
    );
    let code = d.docker(&["run", "--rm", "--network", "none", "busybox", "sh", "-c", "exit 7"]).code;
    assert_eq!(code, 7, "the container's exit code");

    let name = unique("dk");
    let id = d
        .docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "none",
            "-e",
            "X=1",
            "-l",
            "team=blue",
            "busybox",
            "sh",
            "-c",
            "echo started; exec sleep 1000",
        ])
        .ok();
    let id = id.trim();
    assert_eq!(id.len(), 64);
    let ps = d.docker(&["ps", "--filter", "label=team=blue", "--format", "{{.Names}} {{.Status}}"]).ok();
    assert!(ps.starts_with(&format!("{name} Up")), "{ps}");
    assert_eq!(d.docker(&["ps", "-q", "--no-trunc", "--filter", &format!("name={name}")]).ok().trim(), id);
    assert_eq!(d.docker(&["exec", &name, "sh", "-c", "echo $X"]).ok(), "1\n");
    assert_eq!(
        d.docker(&["exec", "-e", "Y=2", "-w", "/tmp", &id[..12], "sh", "-c", "echo $Y $(pwd)"]).ok(),
        "2 /tmp\n"
    );
    let logs = d.docker(&["logs", &name]).ok();
    assert_eq!(logs, "started\n");
    let top = d.docker(&["top", &name]).ok();
    assert!(top.contains("sleep 1000"), "{top}");
    let stats = d.docker(&["stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", &name]).ok();
    assert_eq!(stats.trim(), format!("{name} 1"));
    let new = unique("renamed");
    d.docker(&["rename", &name, &new]).ok();
    d.docker(&["pause", &new]).ok();
    assert_eq!(d.docker(&["inspect", "-f", "{{.State.Status}}", &new]).ok().trim(), "paused");
    d.docker(&["unpause", &new]).ok();
    d.docker(&["update", "--memory", "64m", "--memory-swap", "128m", &new]).ok();
    assert_eq!(d.docker(&["inspect", "-f", "{{.HostConfig.Memory}}", &new]).ok().trim(), "67108864");
    d.docker(&["stop", "-t", "1", &new]).ok();
    assert_eq!(d.docker(&["wait", &new]).ok().trim(), "137");
    let exited = d.docker(&["ps", "-a", "--filter", "exited=137", "--format", "{{.Names}}"]).ok();
    assert_eq!(exited.trim(), new);
    d.docker(&["rm", &new]).ok();
    let err = d.docker(&["inspect", &new]).fails();
    assert!(err.contains("No such object") || err.contains("No such container"), "{err}");
}

#[test]
fn files_and_images_through_the_docker_cli() {
    let d = Daemon::with_busybox();
    let work = tempfile::tempdir().unwrap();
    let name = unique("files");
    d.docker(&["create", "--name", &name, "--network", "none", "busybox", "cat", "/in/data"]).ok();
    std::fs::create_dir(work.path().join("in")).unwrap();
    std::fs::write(work.path().join("in/data"), "copied\n").unwrap();
    d.docker(&["cp", &work.path().join("in").display().to_string(), &format!("{name}:/")]).ok();
    assert_eq!(d.docker(&["start", "-a", &name]).ok(), "copied\n");
    let diff = d.docker(&["diff", &name]).ok();
    assert!(diff.contains("A /in/data"), "{diff}");
    d.docker(&["cp", &format!("{name}:/in/data"), &work.path().join("back").display().to_string()]).ok();
    assert_eq!(std::fs::read_to_string(work.path().join("back")).unwrap(), "copied\n");

    d.docker(&["commit", "-c", "CMD [\"cat\", \"/in/data\"]", &name, "fromdocker:1"]).ok();
    let hist = d.docker(&["history", "--format", "{{.CreatedBy}}", "fromdocker:1"]).ok();
    assert!(hist.lines().count() >= 2, "{hist}");
    let archive = work.path().join("img.tar");
    d.docker(&["save", "-o", &archive.display().to_string(), "fromdocker:1"]).ok();
    d.docker(&["rm", &name]).ok();
    d.docker(&["rmi", "fromdocker:1"]).ok();
    let out = d.docker(&["load", "-i", &archive.display().to_string()]).ok();
    assert!(out.contains("Loaded image: fromdocker:1"), "{out}");
    assert_eq!(d.docker(&["run", "--rm", "--network", "none", "fromdocker:1"]).ok(), "copied\n");
    d.docker(&["tag", "fromdocker:1", "again:2"]).ok();
    let images = d.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]).ok();
    assert!(
        images.contains("again:2") && images.contains("fromdocker:1") && images.contains("busybox:latest"),
        "{images}"
    );
    let err = d.docker(&["rmi", "nosuch:image"]).fails();
    assert!(err.contains("No such image"), "{err}");
}

/// Issue 16, point 11: `docker cp` into a container keeps the copied files' owners, as
/// dockerd does; with `-a` they become the container's user's (when it has one).
#[test]
fn cp_into_a_container_keeps_owners_and_a_gives_them_to_the_user() {
    use std::os::unix::fs::chown;
    let d = Daemon::with_busybox();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("owned");
    std::fs::write(&file, "x").unwrap();
    chown(&file, Some(1234), Some(5678)).unwrap();
    let src = file.display().to_string();
    let owner = |ctr: &str, path: &str| d.docker(&["exec", ctr, "stat", "-c", "%u:%g", path]).ok().trim().to_string();
    let plain = unique("cpown");
    d.docker(&["run", "-d", "--name", &plain, "--network", "none", "busybox", "sleep", "100"]).ok();
    d.docker(&["cp", &src, &format!("{plain}:/kept")]).ok();
    assert_eq!(owner(&plain, "/kept"), "1234:5678");
    d.docker(&["cp", "-a", &src, &format!("{plain}:/archive")]).ok();
    assert_eq!(owner(&plain, "/archive"), "1234:5678", "-a without a container user keeps them too");
    let user = unique("cpusr");
    d.docker(&["run", "-d", "--name", &user, "--user", "nobody", "--network", "none", "busybox", "sleep", "100"]).ok();
    d.docker(&["cp", "-a", &src, &format!("{user}:/tmp/given")]).ok();
    assert_eq!(owner(&user, "/tmp/given"), "65534:65534");
    d.docker(&["rm", "-f", &plain, &user]).ok();
}
