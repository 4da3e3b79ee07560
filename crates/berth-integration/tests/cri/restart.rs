//! Pods and their containers outlive the daemon and are reported again after a restart.

use berth_cri::proto::*;

use crate::{connect, container, pod, setup};

#[tokio::test]
async fn pods_and_containers_are_reported_again_after_a_daemon_restart() {
    let (mut d, mut c, logs) = setup().await;
    let cfg = pod("survivor", &logs);
    let p = c.run_pod(cfg.clone()).await;
    let id = c
        .run(
            &p,
            &cfg,
            container("main", "echo before; until [ -e /tmp/go ]; do sleep 0.1; done; echo after; sleep 1000"),
        )
        .await;
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
    // The same process, still serving execs and still logging to the same file.
    assert_eq!(c.exec(&id, &["touch", "/tmp/go"], 10).await.unwrap().exit_code, 0);
    let log = std::path::Path::new(&cfg.log_directory).join("main/0.log");
    let contents = |l: &str| l.splitn(4, ' ').nth(3).unwrap_or("").to_string();
    let mut lines = Vec::new();
    for _ in 0..3000 {
        lines = std::fs::read_to_string(&log).unwrap().lines().map(contents).collect::<Vec<_>>();
        if lines.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(lines, vec!["before", "after"]);
    let listed = c.rt.list_containers(ListContainersRequest::default()).await.unwrap().into_inner().containers;
    assert_eq!(listed.len(), 1);
    c.remove_pod(&p).await;
}
