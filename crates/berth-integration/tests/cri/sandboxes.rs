//! Pod sandboxes: run, status, list with filters, stop, remove; the holder's namespaces,
//! hostname and DNS; bad requests.

use std::collections::HashMap;

use berth_cri::proto::*;

use crate::{container, host_network, pod, setup};

#[tokio::test]
async fn a_pod_is_run_listed_stopped_and_removed() {
    let (d, mut c, logs) = setup().await;
    let cfg = pod("web", &logs);
    let id = c.run_pod(cfg.clone()).await;
    let other = c.run_pod(pod("db", &logs)).await;

    let st = c.pod_status(&id).await;
    assert_eq!(st.state, PodSandboxState::SandboxReady as i32);
    assert_eq!(st.metadata, cfg.metadata);
    assert_eq!(st.labels, cfg.labels);
    assert_eq!(st.annotations, cfg.annotations);
    assert!(st.created_at > 0);

    let list = |f: PodSandboxFilter| ListPodSandboxRequest { filter: Some(f) };
    let ids = |r: ListPodSandboxResponse| r.items.into_iter().map(|p| p.id).collect::<Vec<_>>();
    let all = ids(c.rt.list_pod_sandbox(ListPodSandboxRequest::default()).await.unwrap().into_inner());
    assert!(all.contains(&id) && all.contains(&other));
    let by_label =
        PodSandboxFilter { label_selector: HashMap::from([("app".into(), "web".into())]), ..Default::default() };
    assert_eq!(ids(c.rt.list_pod_sandbox(list(by_label)).await.unwrap().into_inner()), vec![id.clone()]);
    let by_prefix = PodSandboxFilter { id: id[..12].to_string(), ..Default::default() };
    assert_eq!(ids(c.rt.list_pod_sandbox(list(by_prefix)).await.unwrap().into_inner()), vec![id.clone()]);

    // Pods are the CRI's: the Docker API's list leaves them out unless their namespace is asked for.
    assert!(!d.berth(&["ps", "-aq", "--no-trunc"]).ok().contains(&id));
    assert!(d.berth(&["ps", "-aq", "--no-trunc", "--filter", "label=io.berth.namespace=k8s.io"]).ok().contains(&id));

    c.rt.stop_pod_sandbox(StopPodSandboxRequest { pod_sandbox_id: id.clone() }).await.unwrap();
    assert_eq!(c.pod_status(&id).await.state, PodSandboxState::SandboxNotready as i32);
    let not_ready = PodSandboxFilter {
        state: Some(PodSandboxStateValue { state: PodSandboxState::SandboxNotready as i32 }),
        ..Default::default()
    };
    assert_eq!(ids(c.rt.list_pod_sandbox(list(not_ready)).await.unwrap().into_inner()), vec![id.clone()]);
    // Stopping again is fine.
    c.rt.stop_pod_sandbox(StopPodSandboxRequest { pod_sandbox_id: id.clone() }).await.unwrap();
    c.rt.remove_pod_sandbox(RemovePodSandboxRequest { pod_sandbox_id: id.clone() }).await.unwrap();
    let e = c.rt.pod_sandbox_status(PodSandboxStatusRequest { pod_sandbox_id: id.clone(), verbose: false }).await;
    assert_eq!(e.unwrap_err().code(), tonic::Code::NotFound);
    // Stop and remove of a pod that is gone (or never was) succeed.
    c.rt.remove_pod_sandbox(RemovePodSandboxRequest { pod_sandbox_id: id.clone() }).await.unwrap();
    c.rt.stop_pod_sandbox(StopPodSandboxRequest { pod_sandbox_id: "f00".repeat(20) }).await.unwrap();
    c.rt.remove_pod_sandbox(RemovePodSandboxRequest { pod_sandbox_id: "f00".repeat(20) }).await.unwrap();
    let all = ids(c.rt.list_pod_sandbox(ListPodSandboxRequest::default()).await.unwrap().into_inner());
    assert_eq!(all, vec![other.clone()]);
    c.remove_pod(&other).await;
}

#[tokio::test]
async fn a_pod_has_its_own_loopback_network_hostname_and_dns() {
    let (_d, mut c, logs) = setup().await;
    let mut cfg = pod("ns", &logs);
    cfg.hostname = "pod-host-1".into();
    cfg.dns_config = Some(DnsConfig {
        servers: vec!["192.0.2.53".into()],
        searches: vec!["svc.cluster.local".into()],
        options: vec!["ndots:5".into()],
    });
    let p = c.run_pod(cfg.clone()).await;
    let id = c.run(&p, &cfg, container("probe", "sleep 1000")).await;
    let hostname = c.exec(&id, &["hostname"], 10).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&hostname.stdout).trim(), "pod-host-1");
    let resolv =
        String::from_utf8_lossy(&c.exec(&id, &["cat", "/etc/resolv.conf"], 10).await.unwrap().stdout).into_owned();
    assert!(resolv.contains("nameserver 192.0.2.53"), "{resolv}");
    assert!(resolv.contains("search svc.cluster.local"), "{resolv}");
    assert!(resolv.contains("ndots:5"), "{resolv}");
    // Loopback only, and up.
    let links = String::from_utf8_lossy(&c.exec(&id, &["cat", "/proc/net/dev"], 10).await.unwrap().stdout).into_owned();
    let names: Vec<&str> = links.lines().skip(2).filter_map(|l| l.split(':').next()).map(str::trim).collect();
    assert_eq!(names, vec!["lo"], "{links}");
    let ping = c.exec(&id, &["ping", "-c", "1", "-W", "5", "127.0.0.1"], 10).await.unwrap();
    assert_eq!(ping.exit_code, 0, "{}", String::from_utf8_lossy(&ping.stdout));
    // The container is in the holder's network namespace, not the host's.
    let ns = c.exec(&id, &["readlink", "/proc/self/ns/net"], 10).await.unwrap();
    let host_ns = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_ne!(String::from_utf8_lossy(&ns.stdout).trim(), host_ns.display().to_string());
    c.remove_pod(&p).await;
}

#[tokio::test]
async fn a_host_network_pod_shares_the_nodes_network_and_hostname() {
    let (_d, mut c, logs) = setup().await;
    let cfg = host_network(pod("hostnet", &logs));
    let p = c.run_pod(cfg.clone()).await;
    let id = c.run(&p, &cfg, container("probe", "sleep 1000")).await;
    let ns = c.exec(&id, &["readlink", "/proc/self/ns/net"], 10).await.unwrap();
    let host_ns = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_eq!(String::from_utf8_lossy(&ns.stdout).trim(), host_ns.display().to_string());
    let uts = c.exec(&id, &["readlink", "/proc/self/ns/uts"], 10).await.unwrap();
    let host_uts = std::fs::read_link("/proc/self/ns/uts").unwrap();
    assert_eq!(String::from_utf8_lossy(&uts.stdout).trim(), host_uts.display().to_string(), "no hostname of its own");
    let st = c.pod_status(&p).await;
    let opts = st.linux.unwrap().namespaces.unwrap().options.unwrap();
    assert_eq!(opts.network, NamespaceMode::Node as i32);
    c.remove_pod(&p).await;
}

#[tokio::test]
async fn bad_pod_requests_are_refused_and_make_nothing() {
    let (_d, mut c, logs) = setup().await;
    let count = |c: &mut crate::Cri| {
        let mut rt = c.rt.clone();
        async move { rt.list_pod_sandbox(ListPodSandboxRequest::default()).await.unwrap().into_inner().items.len() }
    };
    let e = c.rt.run_pod_sandbox(RunPodSandboxRequest::default()).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    let mut no_meta = pod("nometa", &logs);
    no_meta.metadata = None;
    let e = c.rt.run_pod_sandbox(RunPodSandboxRequest { config: Some(no_meta), ..Default::default() }).await;
    assert_eq!(e.unwrap_err().code(), tonic::Code::InvalidArgument);

    let cfg = pod("dup", &logs);
    let p = c.run_pod(cfg.clone()).await;
    let e = c.rt.run_pod_sandbox(RunPodSandboxRequest { config: Some(cfg), ..Default::default() }).await;
    assert_eq!(e.unwrap_err().code(), tonic::Code::AlreadyExists);
    assert_eq!(count(&mut c).await, 1, "the duplicate left nothing");

    let e = c.rt.pod_sandbox_status(PodSandboxStatusRequest { pod_sandbox_id: "nothere".into(), verbose: false }).await;
    assert_eq!(e.unwrap_err().code(), tonic::Code::NotFound);
    c.remove_pod(&p).await;
    assert_eq!(count(&mut c).await, 0);
}
