//! Containers in a pod: the lifecycle, logs in the CRI format, exit codes, ExecSync with a
//! timeout, mounts, two containers on one localhost, bad requests, and the Docker API side
//! by side.

use std::collections::HashMap;

use berth_cri::proto::*;

use crate::{container, pod, setup};

/// The CRI log lines of a file: (stream, tag, content), each time checked.
fn cri_log(path: &std::path::Path) -> Vec<(String, String, String)> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .lines()
        .map(|l| {
            let mut p = l.splitn(4, ' ');
            let t = p.next().unwrap();
            assert!(t.contains('T') && t.ends_with('Z'), "an RFC 3339 time: {l}");
            let f = |x: Option<&str>| x.unwrap_or("").to_string();
            (f(p.next()), f(p.next()), f(p.next()))
        })
        .collect()
}

#[tokio::test]
async fn a_container_runs_logs_in_the_cri_format_and_reports_its_exit() {
    let (_d, mut c, logs) = setup().await;
    let cfg = pod("app", &logs);
    let p = c.run_pod(cfg.clone()).await;
    let mut cc = container("main", "echo out $GREETING $0 $1; pwd; echo err >&2; printf partial; exit 3");
    cc.args =
        vec!["echo out $GREETING $0 $1; pwd; echo err >&2; printf partial; exit 3".into(), "a0".into(), "a1".into()];
    cc.envs = vec![KeyValue { key: "GREETING".into(), value: "hello".into() }];
    cc.working_dir = "/tmp".into();
    let id = c.create(&p, cfg.clone(), cc.clone()).await.unwrap();
    let st = c.status(&id).await;
    assert_eq!(st.state, ContainerState::ContainerCreated as i32);
    assert_eq!((st.labels.clone(), st.annotations.clone()), (cc.labels.clone(), cc.annotations.clone()));
    let log = std::path::Path::new(&cfg.log_directory).join("main/0.log");
    assert_eq!(st.log_path, log.display().to_string());

    c.rt.start_container(StartContainerRequest { container_id: id.clone() }).await.unwrap();
    let st = c.wait_exited(&id).await;
    assert_eq!((st.exit_code, st.reason.as_str()), (3, "Error"));
    assert!(st.created_at > 0 && st.started_at > 0, "{st:?}");
    assert!(st.finished_at >= st.started_at, "{st:?}");
    assert_eq!(st.metadata.as_ref().unwrap().name, "main");

    let lines = cri_log(&log);
    let stdout: Vec<&(String, String, String)> = lines.iter().filter(|l| l.0 == "stdout").collect();
    assert_eq!(stdout[0], &("stdout".into(), "F".into(), "out hello a0 a1".into()), "{lines:?}");
    assert_eq!(stdout[1].2, "/tmp");
    assert!(lines.contains(&("stderr".into(), "F".into(), "err".into())), "{lines:?}");
    // The unterminated last line is logged whole when the stream ends.
    assert_eq!(stdout.last().unwrap().2, "partial");

    let ok = c.run(&p, &cfg, container("done", "exit 0")).await;
    let st = c.wait_exited(&ok).await;
    assert_eq!((st.exit_code, st.reason.as_str()), (0, "Completed"));

    let listed = |f: ContainerFilter| ListContainersRequest { filter: Some(f) };
    let ids = |r: ListContainersResponse| r.containers.into_iter().map(|c| c.id).collect::<Vec<_>>();
    let by_label =
        ContainerFilter { label_selector: HashMap::from([("container".into(), "done".into())]), ..Default::default() };
    assert_eq!(ids(c.rt.list_containers(listed(by_label)).await.unwrap().into_inner()), vec![ok.clone()]);
    let in_pod = ContainerFilter { pod_sandbox_id: p.clone(), ..Default::default() };
    let mut both = ids(c.rt.list_containers(listed(in_pod)).await.unwrap().into_inner());
    both.sort();
    let mut want = vec![id.clone(), ok.clone()];
    want.sort();
    assert_eq!(both, want);

    c.rt.remove_container(RemoveContainerRequest { container_id: id.clone() }).await.unwrap();
    c.rt.remove_container(RemoveContainerRequest { container_id: id.clone() }).await.unwrap();
    let e = c.rt.container_status(ContainerStatusRequest { container_id: id.clone(), verbose: false }).await;
    assert_eq!(e.unwrap_err().code(), tonic::Code::NotFound);
    assert!(log.exists(), "the log is kubelet's to remove");
    c.remove_pod(&p).await;
    let left = c.rt.list_containers(ListContainersRequest::default()).await.unwrap().into_inner().containers;
    assert!(left.is_empty(), "removing the pod removed its containers: {left:?}");
}

/// Whether `ps` in container `id` lists a process whose arguments are `args`, once it does (or,
/// with `want` false, once it no longer does); false if that never happens within 10 s.
async fn until_listed(c: &mut crate::Cri, id: &str, args: &str, want: bool) -> bool {
    for _ in 0..200 {
        let ps = c.exec(id, &["ps", "-o", "args"], 10).await.unwrap();
        if String::from_utf8_lossy(&ps.stdout).lines().any(|l| l.contains(args)) == want {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn an_exec_sync_whose_caller_gives_up_is_killed() {
    let (_d, mut c, logs) = setup().await;
    let cfg = pod("gives-up", &logs);
    let p = c.run_pod(cfg.clone()).await;
    let id = c.run(&p, &cfg, container("main", "sleep 1000")).await;
    // No timeout of its own: only the caller's going away can end it.
    let mut rt = c.rt.clone();
    let req = ExecSyncRequest { container_id: id.clone(), cmd: vec!["sleep".into(), "998".into()], timeout: 0 };
    let call = tokio::spawn(async move { rt.exec_sync(req).await });
    assert!(until_listed(&mut c, &id, "sleep 998", true).await, "the exec never ran");
    // kubelet's deadline passing, or kubelet going away: the call is cancelled.
    call.abort();
    assert!(until_listed(&mut c, &id, "sleep 998", false).await, "the abandoned exec still runs");
    assert!(until_listed(&mut c, &id, "sleep 1000", true).await, "the container runs on");
}

#[tokio::test]
async fn exec_sync_returns_output_and_exit_code_and_honours_its_timeout() {
    let (_d, mut c, logs) = setup().await;
    let cfg = pod("exec", &logs);
    let p = c.run_pod(cfg.clone()).await;
    let id = c.run(&p, &cfg, container("main", "sleep 1000")).await;
    let r = c.exec(&id, &["sh", "-c", "echo hi; echo oops >&2; exit 7"], 10).await.unwrap();
    assert_eq!((r.stdout.as_slice(), r.stderr.as_slice(), r.exit_code), (&b"hi\n"[..], &b"oops\n"[..], 7));
    let e = c.exec(&id, &["sleep", "999"], 1).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::DeadlineExceeded, "{e:?}");
    // The timed-out command was killed; the container runs on.
    let ps = c.exec(&id, &["ps", "-o", "args"], 10).await.unwrap();
    let ps = String::from_utf8_lossy(&ps.stdout).into_owned();
    assert!(ps.contains("sleep 1000") && !ps.contains("sleep 999"), "{ps}");
    assert_eq!(c.exec(&id, &["true"], 0).await.unwrap().exit_code, 0);
    let e = c.exec(&id, &["/nonexistent"], 10).await;
    assert!(e.is_err() || e.unwrap().exit_code != 0);
    let e = c.exec("nothere", &["true"], 10).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);

    // StopContainer: a process that ignores SIGTERM is killed when the timeout is up.
    let stubborn = c.run(&p, &cfg, container("stubborn", "trap '' TERM; while true; do sleep 1; done")).await;
    c.rt.stop_container(StopContainerRequest { container_id: stubborn.clone(), timeout: 1 }).await.unwrap();
    let st = c.status(&stubborn).await;
    assert_eq!(st.state, ContainerState::ContainerExited as i32);
    assert_eq!(st.exit_code, 137);
    let e = c.exec(&stubborn, &["true"], 10).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "no exec in a stopped container");
    c.rt.stop_container(StopContainerRequest { container_id: stubborn.clone(), timeout: 1 }).await.unwrap();
    c.rt.stop_container(StopContainerRequest { container_id: "nothere".into(), timeout: 1 }).await.unwrap();
    c.remove_pod(&p).await;
}

#[tokio::test]
async fn two_containers_in_a_pod_share_localhost() {
    let (_d, mut c, logs) = setup().await;
    let cfg = pod("pair", &logs);
    let p = c.run_pod(cfg.clone()).await;
    let server =
        container("server", "mkdir -p /www && echo from-the-server > /www/index.html && exec httpd -f -p 8080 -h /www");
    c.run(&p, &cfg, server).await;
    let client = c.run(&p, &cfg, container("client", "sleep 1000")).await;
    // The server needs a moment to listen: the client retries, for a minute at most.
    let script = "for i in $(seq 600); do wget -qO- http://127.0.0.1:8080/ && exit 0; sleep 0.1; done; exit 1";
    let r = c.exec(&client, &["sh", "-c", script], 120).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&r.stdout).trim(), "from-the-server", "{r:?}");
    c.remove_pod(&p).await;
}

#[tokio::test]
async fn mounts_are_bound_as_asked() {
    let (d, mut c, logs) = setup().await;
    let host = d.dir.path().join("shared");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("greeting"), "hi from the host\n").unwrap();
    let cfg = pod("mounts", &logs);
    let p = c.run_pod(cfg.clone()).await;
    let mut cc = container("reader", "sleep 1000");
    cc.mounts = vec![
        Mount {
            container_path: "/ro".into(),
            host_path: host.display().to_string(),
            readonly: true,
            ..Default::default()
        },
        Mount { container_path: "/rw".into(), host_path: host.display().to_string(), ..Default::default() },
    ];
    let id = c.run(&p, &cfg, cc).await;
    let r = c.exec(&id, &["cat", "/ro/greeting"], 10).await.unwrap();
    assert_eq!(r.stdout, b"hi from the host\n");
    assert_ne!(c.exec(&id, &["touch", "/ro/new"], 10).await.unwrap().exit_code, 0, "read-only");
    assert_eq!(c.exec(&id, &["touch", "/rw/new"], 10).await.unwrap().exit_code, 0);
    assert!(host.join("new").exists());
    let st = c.status(&id).await;
    assert_eq!(st.mounts.len(), 2);
    assert!(st.mounts[0].readonly && !st.mounts[1].readonly);
    c.remove_pod(&p).await;
}

#[tokio::test]
async fn bad_container_requests_get_the_right_status_and_make_nothing() {
    let (_d, mut c, logs) = setup().await;
    let count = |c: &mut crate::Cri| {
        let mut rt = c.rt.clone();
        async move { rt.list_containers(ListContainersRequest::default()).await.unwrap().into_inner().containers.len() }
    };
    let cfg = pod("bad", &logs);
    let e = c.create("nothere", cfg.clone(), container("x", "true")).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);

    let p = c.run_pod(cfg.clone()).await;
    c.create(&p, cfg.clone(), container("x", "sleep 1000")).await.unwrap();
    let e = c.create(&p, cfg.clone(), container("x", "sleep 1000")).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::AlreadyExists, "{e:?}");
    assert_eq!(count(&mut c).await, 1, "the duplicate left nothing");

    let mut no_image = container("noimage", "true");
    no_image.image = Some(ImageSpec { image: "nothere:1".into(), ..Default::default() });
    assert_eq!(c.create(&p, cfg.clone(), no_image).await.unwrap_err().code(), tonic::Code::NotFound);
    let mut no_meta = container("nometa", "true");
    no_meta.metadata = None;
    assert_eq!(c.create(&p, cfg.clone(), no_meta).await.unwrap_err().code(), tonic::Code::InvalidArgument);
    let e = c.rt.start_container(StartContainerRequest { container_id: "nothere".into() }).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    assert_eq!(count(&mut c).await, 1);

    // A container in a removed pod.
    c.remove_pod(&p).await;
    assert_eq!(count(&mut c).await, 0);
    let e = c.create(&p, cfg.clone(), container("late", "true")).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    assert_eq!(count(&mut c).await, 0);
}

#[tokio::test]
async fn the_docker_api_and_the_cri_side_by_side_keep_apart() {
    let (d, mut c, logs) = setup().await;
    let docker = d.berth(&["run", "-d", "--name", &berth_integration::unique("dock"), "busybox", "sleep", "1000"]).ok();
    let docker = docker.trim().to_string();
    let cfg = pod("side", &logs);
    let p = c.run_pod(cfg.clone()).await;
    let id = c.run(&p, &cfg, container("main", "sleep 1000")).await;

    let ps = d.berth(&["ps", "-q", "--no-trunc"]).ok();
    assert_eq!(ps.lines().collect::<Vec<_>>(), vec![docker.as_str()], "the Docker API lists its own only");
    let listed = c.rt.list_containers(ListContainersRequest::default()).await.unwrap().into_inner().containers;
    assert_eq!(listed.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), vec![id.as_str()]);
    // The CRI does not touch what is not its own.
    c.rt.remove_container(RemoveContainerRequest { container_id: docker.clone() }).await.unwrap();
    assert_eq!(d.berth(&["inspect", "-f", "{{.State.Running}}", &docker]).ok().trim(), "true");
    c.remove_pod(&p).await;
    assert_eq!(d.berth(&["inspect", "-f", "{{.State.Running}}", &docker]).ok().trim(), "true");
    d.berth(&["rm", "-f", &docker]).ok();
}
