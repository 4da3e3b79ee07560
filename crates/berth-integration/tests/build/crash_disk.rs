//! A build cut short by a daemon crash, and a full disk (issue 16, point 7).

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use super::*;
use berth_integration::unique;

#[test]
fn a_build_interrupted_by_a_daemon_crash_leaves_no_run_container() {
    let mut d = Daemon::with_busybox();
    let dir = context(&d, &[("Dockerfile", "FROM busybox\nRUN echo step-started && sleep 3600\n")]);
    let mut build = d
        .docker_cmd()
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "--network", "none", "-t", "interrupted"])
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(build.stdout.take().unwrap()).lines();
    let mut id = String::new();
    let mut seen = Vec::new();
    for l in lines.by_ref() {
        let l = l.unwrap();
        seen.push(l.clone());
        if let Some(short) = l.strip_prefix(" ---> Running in ") {
            id = short.trim().to_string();
        }
        // The step's own output (its Step line names it too).
        if l.trim() == "step-started" {
            break;
        }
    }
    if id.is_empty() {
        let _ = build.kill();
        let _ = build.wait();
        panic!("the RUN step never started: {seen:?}");
    }
    let pid: i32 = d.docker(&["inspect", "-f", "{{.State.Pid}}", &id]).ok().trim().parse().unwrap();
    assert!(pid > 0);
    d.kill();
    let _ = build.wait();
    d.spawn();
    assert_eq!(d.docker(&["ps", "-aq"]).ok(), "", "the build's container survived the crash");
    // Its process is gone too (removal waits for it).
    let alive = rustix::process::test_kill_process(rustix::process::Pid::from_raw(pid).unwrap()).is_ok()
        && std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default().contains("sleep");
    assert!(!alive, "the RUN step's process {pid} still runs");
    // The daemon builds again as usual.
    let ok = context(&d, &[("Dockerfile", "FROM busybox\nRUN echo fine\n")]);
    build_ok(&d, &ok);
}

fn build_ok(d: &Daemon, dir: &Path) {
    let o = d.docker_cmd().env("DOCKER_BUILDKIT", "0").args(["build", "--network", "none"]).arg(dir).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// A root filesystem tar with `mb` MiB of data in one file.
fn big_tar(dir: &Path, mb: usize) -> PathBuf {
    let mut t = raw_tar_entry(b"ballast", &vec![7u8; mb << 20]);
    t.extend_from_slice(&[0u8; 1024]);
    let p = dir.join(unique("big"));
    std::fs::write(&p, t).unwrap();
    p
}

#[test]
fn a_full_disk_is_named_as_such() {
    // An image with a 48 MiB layer, saved by a daemon with room for it.
    let roomy = Daemon::start();
    let tar = big_tar(roomy.dir.path(), 48);
    roomy.docker(&["import", &tar.display().to_string(), "big:1"]).ok();
    let saved = roomy.dir.path().join("big-image.tar");
    roomy.docker(&["save", "-o", &saved.display().to_string(), "big:1"]).ok();
    // A daemon whose data root is a 24 MiB tmpfs.
    let mut d = Daemon::start();
    d.stop();
    let root = d.data_root();
    std::fs::remove_dir_all(&root).unwrap();
    std::fs::create_dir_all(&root).unwrap();
    let st = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=24m", "berth-test-full"])
        .arg(&root)
        .status()
        .unwrap();
    assert!(st.success());
    d.spawn();
    for args in [vec!["load", "-i", saved.to_str().unwrap()], vec!["import", tar.to_str().unwrap(), "big:2"]] {
        let err = d.docker(&args).fails();
        assert!(err.to_lowercase().contains("no space left on device"), "{args:?}: {err}");
        assert!(!err.contains("invalid archive"), "{args:?}: {err}");
    }
    assert_eq!(d.docker(&["images", "-q"]).ok(), "");
}
