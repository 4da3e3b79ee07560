//! Resources and OOM scores: what kubelet asks, within what this node allows.

use berth_cri::proto::*;

use crate::{container, pod, setup};

fn oom_score_adj(pid: u32) -> i64 {
    std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj")).unwrap().trim().parse().unwrap()
}

#[tokio::test]
async fn oom_scores_below_the_daemons_own_are_raised_to_it_and_limits_apply() {
    let (d, mut c, logs) = setup().await;
    let own = oom_score_adj(d.pid().unwrap());
    let cfg = pod("res", &logs);
    let p = c.run_pod(cfg.clone()).await;
    // The holder: kubelet's -998, or the daemon's own score where it may not go lower.
    let holder_pid = c.holder_pid(&p).await;
    assert_eq!(oom_score_adj(holder_pid), (-998i64).max(own));

    let with = |name: &str, adj: i64| {
        let mut cc = container(name, "sleep 1000");
        cc.linux.as_mut().unwrap().resources =
            Some(LinuxContainerResources { oom_score_adj: adj, memory_limit_in_bytes: 64 << 20, ..Default::default() });
        cc
    };
    let low = c.run(&p, &cfg, with("low", -997)).await;
    let high = c.run(&p, &cfg, with("high", 500)).await;
    let score = |r: ExecSyncResponse| String::from_utf8_lossy(&r.stdout).trim().parse::<i64>().unwrap();
    assert_eq!(score(c.exec(&low, &["cat", "/proc/1/oom_score_adj"], 10).await.unwrap()), (-997i64).max(own));
    assert_eq!(score(c.exec(&high, &["cat", "/proc/1/oom_score_adj"], 10).await.unwrap()), 500);

    // The memory limit is the container's cgroup's (v1 or v2).
    let v1 =
        std::path::Path::new("/sys/fs/cgroup/memory").join(&d.cgroup_parent).join(&high).join("memory.limit_in_bytes");
    let v2 = std::path::Path::new("/sys/fs/cgroup").join(&d.cgroup_parent).join(&high).join("memory.max");
    let limit = std::fs::read_to_string(&v1).or_else(|_| std::fs::read_to_string(&v2)).unwrap();
    assert_eq!(limit.trim(), (64u64 << 20).to_string());
    c.remove_pod(&p).await;
}

/// UpdateContainerResources sets a running container's limits in place (kubelet's in-place
/// resize); what berth cannot set is refused and nothing changes.
#[tokio::test]
async fn resources_are_updated_in_place() {
    let (d, mut c, logs) = setup().await;
    let cfg = pod("upd", &logs);
    let p = c.run_pod(cfg.clone()).await;
    let mut cc = container("upd", "sleep 1000");
    cc.linux.as_mut().unwrap().resources =
        Some(LinuxContainerResources { memory_limit_in_bytes: 64 << 20, ..Default::default() });
    let id = c.run(&p, &cfg, cc).await;
    let memory = || {
        let v1 = std::path::Path::new("/sys/fs/cgroup/memory")
            .join(&d.cgroup_parent)
            .join(&id)
            .join("memory.limit_in_bytes");
        let v2 = std::path::Path::new("/sys/fs/cgroup").join(&d.cgroup_parent).join(&id).join("memory.max");
        std::fs::read_to_string(&v1).or_else(|_| std::fs::read_to_string(&v2)).unwrap().trim().to_string()
    };
    assert_eq!(memory(), (64u64 << 20).to_string(), "control: the limit set at create");
    let update = |res: LinuxContainerResources| UpdateContainerResourcesRequest {
        container_id: id.clone(),
        linux: Some(res),
        ..Default::default()
    };
    c.rt.update_container_resources(update(LinuxContainerResources {
        memory_limit_in_bytes: 128 << 20,
        cpu_shares: 512,
        ..Default::default()
    }))
    .await
    .unwrap();
    assert_eq!(memory(), (128u64 << 20).to_string());
    // What kubelet reads back to see the resize done.
    let status =
        c.rt.container_status(ContainerStatusRequest { container_id: id.clone(), verbose: false })
            .await
            .unwrap()
            .into_inner()
            .status
            .unwrap();
    let now = status.resources.and_then(|r| r.linux).unwrap();
    assert_eq!((now.memory_limit_in_bytes, now.cpu_shares), (128 << 20, 512));
    let mut refused = LinuxContainerResources { memory_limit_in_bytes: 256 << 20, ..Default::default() };
    refused.unified.insert("memory.high".into(), "1".into());
    let err = c.rt.update_container_resources(update(refused)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unimplemented, "{err:?}");
    assert_eq!(memory(), (128u64 << 20).to_string(), "a refused update changes nothing");
    c.remove_pod(&p).await;
}
