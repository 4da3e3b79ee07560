//! A container's log is reached beneath its pod's log directory with no symlink on the way:
//! a link planted in a directory there (by a pod that mounts /var/log/pods, say) never makes
//! the daemon or the shim create or write anything, as root, where it points. Tried at each
//! place the log is opened: CreateContainer (which makes its directories), StartContainer
//! (the shim opens the file) and ReopenContainerLog (the shim opens it again); each beside a
//! control where the same path without the link logs where kubelet expects.

use std::path::{Path, PathBuf};

use berth_cri::proto::*;

use crate::{Cri, container, pod, setup};

/// A host directory holding only a marker file, that must stay that way.
fn victim(under: &Path) -> PathBuf {
    let v = under.join(berth_integration::unique("victim"));
    std::fs::create_dir(&v).unwrap();
    std::fs::write(v.join("marker"), "untouched\n").unwrap();
    v
}

/// What the victim directory holds besides its marker (recursively, by path).
fn planted(v: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![v.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p.clone());
            }
            out.push(p.strip_prefix(v).unwrap().display().to_string());
        }
    }
    out.retain(|p| p != "marker");
    out.sort();
    assert_eq!(std::fs::read_to_string(v.join("marker")).unwrap(), "untouched\n");
    out
}

/// A container whose log is `rel` in its pod's log directory.
fn logging_to(name: &str, rel: &str, script: &str) -> ContainerConfig {
    ContainerConfig { log_path: rel.into(), ..container(name, script) }
}

/// Waits (a minute at most) until the file at `p` holds `word`.
async fn logged(p: &Path, word: &str) {
    for _ in 0..3000 {
        if std::fs::read_to_string(p).unwrap_or_default().contains(word) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("{} never held {word:?}", p.display());
}

async fn create_err(c: &mut Cri, p: &str, cfg: &PodSandboxConfig, cc: ContainerConfig) -> tonic::Status {
    c.create(p, cfg.clone(), cc).await.expect_err("CreateContainer refuses a log path through a link")
}

#[tokio::test]
async fn a_link_in_a_log_paths_directories_is_not_followed_at_create_start_or_reopen() {
    let (d, mut c, logs) = setup().await;
    let cfg = pod(&berth_integration::unique("loglinks"), &logs);
    let p = c.run_pod(cfg.clone()).await;
    let dir = PathBuf::from(&cfg.log_directory);
    let v = victim(d.dir.path());

    // Control: the same shapes of path without a link log where kubelet looks.
    let ok = c.run(&p, &cfg, logging_to("plain", "plain/0.log", "echo logged-plain")).await;
    let deep = c.run(&p, &cfg, logging_to("deep", "deep/er/0.log", "echo logged-deep")).await;
    c.wait_exited(&ok).await;
    c.wait_exited(&deep).await;
    logged(&dir.join("plain/0.log"), "logged-plain").await;
    logged(&dir.join("deep/er/0.log"), "logged-deep").await;

    // At create: a link as the log's directory, and as a directory above it.
    std::os::unix::fs::symlink(&v, dir.join("evil")).unwrap();
    for rel in ["evil/0.log", "evil/sub/0.log"] {
        let name = berth_integration::unique("c");
        let e = create_err(&mut c, &p, &cfg, logging_to(&name, rel, "echo through-the-link")).await;
        assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
        let link = dir.join("evil").display().to_string();
        assert!(e.message().contains(&format!("{link} is a symbolic link")), "{e:?}");
    }
    assert_eq!(planted(&v), Vec::<String>::new(), "nothing was made through the link at create");

    // At start: the directory is swapped for a link after CreateContainer made it.
    let late = c.create(&p, cfg.clone(), logging_to("late", "late/0.log", "echo through-the-link")).await.unwrap();
    std::fs::remove_dir(dir.join("late")).unwrap();
    std::os::unix::fs::symlink(&v, dir.join("late")).unwrap();
    let started = c.rt.start_container(StartContainerRequest { container_id: late.clone() }).await;
    let e = started.expect_err("StartContainer refuses a log path through a link");
    assert!(e.message().contains("is a symbolic link"), "{e:?}");
    assert_eq!(planted(&v), Vec::<String>::new(), "nothing was written through the link at start");

    // At reopen: kubelet's rotation, with the directory swapped for a link meanwhile.
    let script = "while true; do if [ -e /go ]; then rm /go; echo tick; fi; sleep 0.05; done";
    let rot = c.run(&p, &cfg, logging_to("rot", "rot/0.log", script)).await;
    c.exec(&rot, &["touch", "/go"], 10).await.unwrap();
    logged(&dir.join("rot/0.log"), "tick").await;
    std::fs::rename(dir.join("rot"), dir.join("rot.moved")).unwrap();
    std::os::unix::fs::symlink(&v, dir.join("rot")).unwrap();
    let e = c.rt.reopen_container_log(ReopenContainerLogRequest { container_id: rot.clone() }).await.unwrap_err();
    assert!(e.message().contains("is a symbolic link"), "{e:?}");
    c.exec(&rot, &["touch", "/go"], 10).await.unwrap();
    // Control: the output still goes to the file the shim held.
    let ticks = || {
        let text = std::fs::read_to_string(dir.join("rot.moved/0.log")).unwrap_or_default();
        text.lines().filter(|l| l.ends_with("tick")).count()
    };
    for _ in 0..3000 {
        if ticks() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(ticks(), 2, "the second tick went to the file the shim held");
    assert_eq!(planted(&v), Vec::<String>::new(), "nothing was written through the link at reopen");
    // Control: once the link is gone, reopening makes the file where kubelet looks again.
    std::fs::remove_file(dir.join("rot")).unwrap();
    c.rt.reopen_container_log(ReopenContainerLogRequest { container_id: rot.clone() }).await.unwrap();
    c.exec(&rot, &["touch", "/go"], 10).await.unwrap();
    logged(&dir.join("rot/0.log"), "tick").await;
    c.remove_pod(&p).await;
}
