//! What a container can make the daemon hold or write: ExecSync keeps at most 16 MiB of each
//! stream however much a command prints, and a container's log stays in its pod's log
//! directory.

use berth_cri::proto::*;

use crate::{container, pod, setup};

const CAP: usize = 16 << 20;

pub fn daemon_pid(d: &berth_integration::Daemon) -> u32 {
    std::fs::read_to_string(d.exec_root().join("berth.pid")).unwrap().trim().parse().unwrap()
}

/// A size from the daemon's /proc status (`VmHWM`, `VmRSS`), in MiB.
pub fn status_mib(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap()
        .trim_start_matches(':')
        .trim()
        .trim_end_matches(" kB")
        .parse()
        .unwrap();
    kb >> 10
}

#[tokio::test]
async fn exec_sync_keeps_at_most_16_mib_of_each_stream_and_the_daemon_stays_small() {
    let (d, mut c, logs) = setup().await;
    let cfg = pod("flood", &logs);
    let p = c.run_pod(cfg.clone()).await;
    let id = c.run(&p, &cfg, container("main", "sleep 1000")).await;
    let mut rt = c.rt.clone().max_decoding_message_size(64 << 20);
    let pid = daemon_pid(&d);
    let before = status_mib(pid, "VmRSS");
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
    // 256 MiB on stdout, 20 MiB on stderr; the command runs to its end and says so.
    let script = "dd if=/dev/zero bs=1M count=256 2>/dev/null; dd if=/dev/zero bs=1M count=20 >&2 2>/dev/null; \
                  echo done >&2; exit 5";
    let req =
        ExecSyncRequest { container_id: id.clone(), cmd: vec!["sh".into(), "-c".into(), script.into()], timeout: 120 };
    let r = rt.exec_sync(req).await.expect("ExecSync answers").into_inner();
    let grew = status_mib(pid, "VmHWM").saturating_sub(before);
    assert_eq!(r.exit_code, 5, "the command ran to its end");
    assert_eq!((r.stdout.len(), r.stderr.len()), (CAP, CAP));
    assert!(r.stdout.iter().all(|b| *b == 0));
    // Control for the bound: 276 MiB were printed; the two kept streams and their encoding
    // are about 64 MiB.
    assert!(grew < 128, "the daemon's peak grew by {grew} MiB for one ExecSync");
    // The daemon still answers, and small output is whole.
    let r = c.exec(&id, &["echo", "hi"], 10).await.unwrap();
    assert_eq!(r.stdout, b"hi\n");
    c.remove_pod(&p).await;
}

#[tokio::test]
async fn a_symlink_at_the_log_path_is_not_followed() {
    let (d, mut c, logs) = setup().await;
    let cfg = pod("logs", &logs);
    let p = c.run_pod(cfg.clone()).await;
    let victim = d.dir.path().join("victim");
    std::fs::write(&victim, "untouched\n").unwrap();
    let dir = std::path::Path::new(&cfg.log_directory).join("main");
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(&victim, dir.join("0.log")).unwrap();
    let id = c.create(&p, cfg.clone(), container("main", "echo written-through-the-link")).await.unwrap();
    // The start fails or the output goes nowhere; the link's target is never written.
    if c.rt.start_container(StartContainerRequest { container_id: id.clone() }).await.is_ok() {
        c.wait_exited(&id).await;
    }
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched\n");
    // Control: without the link the log is written.
    let ok = c.run(&p, &cfg, container("plain", "echo logged")).await;
    c.wait_exited(&ok).await;
    let log = std::fs::read_to_string(std::path::Path::new(&cfg.log_directory).join("plain/0.log")).unwrap();
    assert!(log.contains("logged"), "{log}");
    c.remove_pod(&p).await;
}

/// Lines of a CRI log that carry `word`.
fn count(path: &std::path::Path, word: &str) -> usize {
    std::fs::read_to_string(path).unwrap_or_default().lines().filter(|l| l.ends_with(word)).count()
}

#[tokio::test]
async fn reopen_container_log_goes_on_in_a_new_file_after_kubelet_renames_it() {
    let (_d, mut c, logs) = setup().await;
    let cfg = pod("rotate", &logs);
    let p = c.run_pod(cfg.clone()).await;
    // A line whenever the file /go appears: the test decides when output happens.
    let script = "while true; do if [ -e /go ]; then rm /go; echo tick; fi; sleep 0.05; done";
    let id = c.run(&p, &cfg, container("main", script)).await;
    let log = std::path::Path::new(&cfg.log_directory).join("main/0.log");
    let rotated = log.with_extension("log.1");
    let tick = async |c: &mut crate::Cri, path: &std::path::Path, want: usize| {
        c.exec(&id, &["touch", "/go"], 10).await.unwrap();
        for _ in 0..3000 {
            if count(path, "tick") >= want {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("no tick {want} in {}", path.display());
    };
    tick(&mut c, &log, 1).await;
    std::fs::rename(&log, &rotated).unwrap();
    c.rt.reopen_container_log(ReopenContainerLogRequest { container_id: id.clone() }).await.unwrap();
    tick(&mut c, &log, 1).await;
    assert_eq!(count(&rotated, "tick"), 1, "the renamed log got no more output");
    let e = c.rt.reopen_container_log(ReopenContainerLogRequest { container_id: "nothere".into() }).await;
    assert_eq!(e.unwrap_err().code(), tonic::Code::NotFound);
    c.rt.stop_container(StopContainerRequest { container_id: id.clone(), timeout: 0 }).await.unwrap();
    let e = c.rt.reopen_container_log(ReopenContainerLogRequest { container_id: id.clone() }).await;
    assert_eq!(e.unwrap_err().code(), tonic::Code::FailedPrecondition, "a stopped container has no log to reopen");
    c.remove_pod(&p).await;
}
