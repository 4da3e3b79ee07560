//! Pods and their containers outlive the daemon and are reported again after a restart.

use berth_cri::proto::*;

use crate::{connect, container, pod, setup};

#[tokio::test]
async fn pods_and_containers_are_reported_again_after_a_daemon_restart() {
    let (mut d, mut c, logs) = setup().await;
    let cfg = pod("survivor", &logs);
    let p = c.run_pod(cfg.clone()).await;
    let id = c.run(&p, &cfg, container("main", "echo before; sleep 1000")).await;
    let before = c.status(&id).await;
    drop(c);

    d.restart();
    let mut c = connect(&d).await;
    let st = c.pod_status(&p).await;
    assert_eq!(st.state, PodSandboxState::SandboxReady as i32);
    assert_eq!(st.metadata, cfg.metadata);
    let after = c.status(&id).await;
    assert_eq!(after.state, ContainerState::ContainerRunning as i32);
    assert_eq!((after.started_at, after.labels.clone()), (before.started_at, before.labels.clone()));
    // The same process, still serving execs, still logging to the same file.
    let r = c.exec(&id, &["sh", "-c", "echo after > /proc/1/fd/1"], 10).await.unwrap();
    assert_eq!(r.exit_code, 0);
    let listed = c.rt.list_containers(ListContainersRequest::default()).await.unwrap().into_inner().containers;
    assert_eq!(listed.len(), 1);
    c.rt.stop_container(StopContainerRequest { container_id: id.clone(), timeout: 0 }).await.unwrap();
    let log = std::fs::read_to_string(std::path::Path::new(&cfg.log_directory).join("main/0.log")).unwrap();
    let lines: Vec<&str> = log.lines().map(|l| l.splitn(4, ' ').nth(3).unwrap_or("")).collect();
    assert_eq!(lines, vec!["before", "after"], "{log}");
    c.remove_pod(&p).await;
}
