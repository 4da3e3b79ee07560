//! Stats and events as kubelet reads them: ContainerStats, ListContainerStats,
//! PodSandboxStats, ListPodSandboxStats and GetContainerEvents.

use std::collections::HashMap;
use std::time::Duration;

use berth_cri::proto::*;
use berth_integration::unique;

use crate::{container, pod, setup};

/// Runs `cmd` in the container until it succeeds (the CRI has no wait for a condition).
async fn until(c: &mut crate::Cri, id: &str, cmd: &[&str]) {
    for _ in 0..3000 {
        if c.exec(id, cmd, 10).await.is_ok_and(|r| r.exit_code == 0) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{cmd:?} never succeeded in {id}");
}

fn v(x: &Option<UInt64Value>) -> u64 {
    x.as_ref().map(|v| v.value).expect("a value")
}

#[tokio::test]
async fn container_and_pod_stats_report_cpu_memory_layer_and_processes() {
    let (d, mut c, logs) = setup().await;
    let mut cfg = pod("stats", &logs);
    // kubelet puts each pod in a cgroup of its own: the pod's figures are that group's.
    let pod_cgroup = format!("{}/pod{}", d.cgroup_parent, unique("u"));
    cfg.linux = Some(LinuxPodSandboxConfig { cgroup_parent: pod_cgroup, ..Default::default() });
    let p = c.run_pod(cfg.clone()).await;
    // Some CPU time, 4 MiB in the writable layer, then idle.
    let script = "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; \
                  dd if=/dev/urandom of=/big bs=1M count=4 2>/dev/null; touch /ready; sleep 1000";
    let id = c.run(&p, &cfg, container("worker", script)).await;
    until(&mut c, &id, &["test", "-f", "/ready"]).await;

    let s = c.rt.container_stats(ContainerStatsRequest { container_id: id.clone() }).await.unwrap().into_inner();
    let s = s.stats.unwrap();
    let attrs = s.attributes.as_ref().unwrap();
    assert_eq!(attrs.id, id);
    assert_eq!(attrs.metadata.as_ref().unwrap().name, "worker");
    assert_eq!(attrs.labels["container"], "worker");
    assert_eq!(attrs.annotations["why"], "test");
    let cpu = s.cpu.as_ref().unwrap();
    assert!(v(&cpu.usage_core_nano_seconds) > 0, "{cpu:?}");
    let mem = s.memory.as_ref().unwrap();
    assert!(v(&mem.working_set_bytes) > 0, "{mem:?}");
    assert!(v(&mem.usage_bytes) >= v(&mem.working_set_bytes), "{mem:?}");
    let layer = s.writable_layer.as_ref().unwrap();
    assert!(v(&layer.used_bytes) >= 4 << 20, "{layer:?}");
    assert!(v(&layer.inodes_used) >= 2, "{layer:?}");
    assert!(layer.fs_id.as_ref().unwrap().mountpoint.ends_with("snapshots"), "{layer:?}");
    // A rate needs two samples: the second one has it.
    let again = c.rt.container_stats(ContainerStatsRequest { container_id: id.clone() }).await.unwrap().into_inner();
    assert!(again.stats.unwrap().cpu.unwrap().usage_nano_cores.is_some());

    let ps = c.rt.pod_sandbox_stats(PodSandboxStatsRequest { pod_sandbox_id: p.clone() }).await.unwrap().into_inner();
    let ps = ps.stats.unwrap();
    assert_eq!(ps.attributes.as_ref().unwrap().id, p);
    assert_eq!(ps.attributes.as_ref().unwrap().labels["app"], "stats");
    let linux = ps.linux.unwrap();
    // The holder and the container's process (its shell ends in `sleep`, exec'd).
    assert!(v(&linux.process.as_ref().unwrap().process_count) >= 2, "{:?}", linux.process);
    assert!(v(&linux.cpu.as_ref().unwrap().usage_core_nano_seconds) >= v(&cpu.usage_core_nano_seconds));
    assert!(v(&linux.memory.as_ref().unwrap().usage_bytes) > 0);
    assert_eq!(
        linux.containers.iter().map(|s| s.attributes.as_ref().unwrap().id.clone()).collect::<Vec<_>>(),
        std::slice::from_ref(&id)
    );
    if let Some(net) = &linux.network {
        assert!(net.interfaces.iter().all(|i| i.name != "lo"), "{net:?}");
    }

    // A stopped container has no CPU or memory to report, its layer is still there.
    c.rt.stop_container(StopContainerRequest { container_id: id.clone(), timeout: 0 }).await.unwrap();
    let s = c.rt.container_stats(ContainerStatsRequest { container_id: id.clone() }).await.unwrap().into_inner();
    let s = s.stats.unwrap();
    assert!(s.cpu.is_none() && s.memory.is_none(), "{s:?}");
    assert!(v(&s.writable_layer.unwrap().used_bytes) >= 4 << 20);
    c.remove_pod(&p).await;
}

#[tokio::test]
async fn stats_lists_follow_their_filters_and_leave_docker_containers_out() {
    let (d, mut c, logs) = setup().await;
    let (a_cfg, b_cfg) = (pod("lsa", &logs), pod("lsb", &logs));
    let a = c.run_pod(a_cfg.clone()).await;
    let b = c.run_pod(b_cfg.clone()).await;
    let ca = c.run(&a, &a_cfg, container("one", "sleep 1000")).await;
    let cb = c.run(&b, &b_cfg, container("two", "sleep 1000")).await;
    let docker = d.berth(&["run", "-d", "--name", &unique("dock"), "busybox", "sleep", "1000"]).ok();
    let docker = docker.trim().to_string();

    let list = |f: ContainerStatsFilter| ListContainerStatsRequest { filter: Some(f) };
    let ids = |r: ListContainerStatsResponse| {
        let mut v: Vec<String> = r.stats.into_iter().map(|s| s.attributes.unwrap().id).collect();
        v.sort();
        v
    };
    let all = ids(c.rt.list_container_stats(ListContainerStatsRequest::default()).await.unwrap().into_inner());
    let mut both = vec![ca.clone(), cb.clone()];
    both.sort();
    assert_eq!(all, both, "only the CRI's containers, not {docker}");
    let by_pod = list(ContainerStatsFilter { pod_sandbox_id: b.clone(), ..Default::default() });
    assert_eq!(ids(c.rt.list_container_stats(by_pod).await.unwrap().into_inner()), std::slice::from_ref(&cb));
    let by_id = list(ContainerStatsFilter { id: ca[..12].to_string(), ..Default::default() });
    assert_eq!(ids(c.rt.list_container_stats(by_id).await.unwrap().into_inner()), std::slice::from_ref(&ca));
    let selector = |v: &str| HashMap::from([("container".to_string(), v.to_string())]);
    let by_label = list(ContainerStatsFilter { label_selector: selector("two"), ..Default::default() });
    assert_eq!(ids(c.rt.list_container_stats(by_label).await.unwrap().into_inner()), std::slice::from_ref(&cb));
    let none = list(ContainerStatsFilter { label_selector: selector("three"), ..Default::default() });
    assert!(ids(c.rt.list_container_stats(none).await.unwrap().into_inner()).is_empty());

    let pods = |f: Option<PodSandboxStatsFilter>| ListPodSandboxStatsRequest { filter: f };
    let pod_ids = |r: ListPodSandboxStatsResponse| {
        let mut v: Vec<String> = r.stats.into_iter().map(|s| s.attributes.unwrap().id).collect();
        v.sort();
        v
    };
    let mut ab = vec![a.clone(), b.clone()];
    ab.sort();
    assert_eq!(pod_ids(c.rt.list_pod_sandbox_stats(pods(None)).await.unwrap().into_inner()), ab);
    let app_b =
        PodSandboxStatsFilter { label_selector: HashMap::from([("app".into(), "lsb".into())]), ..Default::default() };
    let r = c.rt.list_pod_sandbox_stats(pods(Some(app_b))).await.unwrap().into_inner();
    assert_eq!(r.stats.len(), 1);
    let only = &r.stats[0];
    assert_eq!(only.attributes.as_ref().unwrap().id, b);
    // Without a pod cgroup the pod's figures add up its holder and containers.
    let linux = only.linux.as_ref().unwrap();
    assert!(v(&linux.process.as_ref().unwrap().process_count) >= 2, "{linux:?}");

    // Unknown objects are NotFound, as for their status.
    let e = c.rt.container_stats(ContainerStatsRequest { container_id: "nosuch".into() }).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    let e = c.rt.pod_sandbox_stats(PodSandboxStatsRequest { pod_sandbox_id: "nosuch".into() }).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    // A Docker container is not the CRI's, even by its full ID.
    let e = c.rt.container_stats(ContainerStatsRequest { container_id: docker.clone() }).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    d.berth(&["rm", "-f", &docker]).ok();
    c.remove_pod(&a).await;
    c.remove_pod(&b).await;
}

/// The next event of the stream, within a minute.
async fn next(s: &mut tonic::Streaming<ContainerEventResponse>) -> ContainerEventResponse {
    tokio::time::timeout(Duration::from_secs(60), s.message())
        .await
        .expect("an event within a minute")
        .expect("the event stream")
        .expect("the stream ended")
}

#[tokio::test]
async fn container_events_follow_pods_and_containers_through_their_lives() {
    let (d, mut c, logs) = setup().await;
    let mut events = c.rt.get_container_events(GetEventsRequest {}).await.unwrap().into_inner();
    // A Docker container's life is not a CRI event.
    let docker = unique("dock");
    d.berth(&["run", "--rm", "--name", &docker, "busybox", "true"]).ok();

    let cfg = pod("ev", &logs);
    let p = c.run_pod(cfg.clone()).await;
    let id = c.run(&p, &cfg, container("short", "sleep 1000")).await;
    c.rt.stop_container(StopContainerRequest { container_id: id.clone(), timeout: 0 }).await.unwrap();
    c.rt.remove_container(RemoveContainerRequest { container_id: id.clone() }).await.unwrap();
    c.remove_pod(&p).await;

    use ContainerEventType::*;
    let want = [
        (p.clone(), ContainerCreatedEvent),
        (p.clone(), ContainerStartedEvent),
        (id.clone(), ContainerCreatedEvent),
        (id.clone(), ContainerStartedEvent),
        (id.clone(), ContainerStoppedEvent),
        (id.clone(), ContainerDeletedEvent),
        (p.clone(), ContainerStoppedEvent),
        (p.clone(), ContainerDeletedEvent),
    ];
    let mut got = Vec::new();
    while got.len() < want.len() {
        let e = next(&mut events).await;
        let kind = ContainerEventType::try_from(e.container_event_type).unwrap();
        if (e.container_id.clone(), kind) == (id.clone(), ContainerStartedEvent) {
            // What kubelet's evented PLEG reads: the pod's status and its containers'.
            let ps = e.pod_sandbox_status.as_ref().expect("the pod's status");
            assert_eq!(ps.id, p);
            assert_eq!(ps.state, PodSandboxState::SandboxReady as i32);
            assert_eq!(
                e.containers_statuses.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
                std::slice::from_ref(&id)
            );
            assert!(e.created_at > 0);
        }
        if (e.container_id.clone(), kind) == (p.clone(), ContainerDeletedEvent) {
            assert!(e.pod_sandbox_status.is_none(), "a removed pod has no status: {e:?}");
        }
        got.push((e.container_id, kind));
    }
    assert_eq!(got, want);
}
