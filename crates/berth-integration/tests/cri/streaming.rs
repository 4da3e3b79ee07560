//! The streaming server: Exec, Attach and PortForward URLs used as kubelet and kubectl use
//! them, over SPDY/3.1 and WebSocket; tokens good once; nothing left behind by a client that
//! goes away.

use std::os::fd::AsFd;

use berth_cri::proto::*;

use crate::stream_clients::{Spdy, Ws, status};
use crate::{Cri, container, pod, setup};

pub const V4: &[&str] = &["v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"];

pub fn exec_req(id: &str, cmd: &[&str], stdin: bool, tty: bool) -> ExecRequest {
    ExecRequest {
        container_id: id.into(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        tty,
        stdin,
        stdout: true,
        stderr: !tty,
    }
}

pub async fn exec_url(c: &mut Cri, r: ExecRequest) -> String {
    c.rt.exec(r).await.expect("Exec").into_inner().url
}

/// A pod with one long-running busybox container `main`: (pod, container).
pub async fn running(c: &mut Cri, logs: &std::path::Path, script: &str) -> (String, String) {
    let cfg = pod(&berth_integration::unique("stream"), logs);
    let p = c.run_pod(cfg.clone()).await;
    let id = c.run(&p, &cfg, container("main", script)).await;
    (p, id)
}

/// Opens the exec streams a v4 client opens: error, then the others asked for.
pub async fn open_exec(s: &mut Spdy, kinds: &[&str]) -> Vec<u32> {
    let mut ids = Vec::new();
    for k in kinds {
        ids.push(s.open(&[("streamtype", k)]).await);
    }
    ids
}

#[tokio::test]
async fn exec_over_spdy_streams_stdout_and_stderr_apart_and_reports_success() {
    let (_d, mut c, logs) = setup().await;
    let (_, id) = running(&mut c, &logs, "exec sleep 100000").await;
    let url = exec_url(&mut c, exec_req(&id, &["sh", "-c", "echo hi; echo oops >&2"], false, false)).await;
    assert!(url.starts_with("http://127.0.0.1:") && url.contains("/exec/"), "{url}");
    let (mut s, a) = Spdy::connect(&url, V4).await.expect("upgraded");
    assert_eq!(a.header("x-stream-protocol-version"), Some("v4.channel.k8s.io"));
    let [err, out, stderr] = open_exec(&mut s, &["error", "stdout", "stderr"]).await[..] else { unreachable!() };
    s.read_to_end().await;
    assert!(s.replied.contains(&err) && s.replied.contains(&out), "every stream is answered");
    assert_eq!(s.text(out), "hi\n");
    assert_eq!(s.text(stderr), "oops\n");
    assert_eq!(status(&s.data[&err])["status"], "Success");
    assert!(s.finished.contains(&out) && s.finished.contains(&err));
}

#[tokio::test]
async fn exec_over_spdy_reports_a_non_zero_exit_code_in_the_status() {
    let (_d, mut c, logs) = setup().await;
    let (_, id) = running(&mut c, &logs, "exec sleep 100000").await;
    let url = exec_url(&mut c, exec_req(&id, &["sh", "-c", "exit 3"], false, false)).await;
    let (mut s, _) = Spdy::connect(&url, V4).await.expect("upgraded");
    let [err, _, _] = open_exec(&mut s, &["error", "stdout", "stderr"]).await[..] else { unreachable!() };
    s.read_to_end().await;
    let st = status(&s.data[&err]);
    assert_eq!((st["status"].as_str(), st["reason"].as_str()), (Some("Failure"), Some("NonZeroExitCode")), "{st}");
    assert_eq!(st["details"]["causes"][0], serde_json::json!({"reason": "ExitCode", "message": "3"}));

    // Before v4 the error stream carries only a failure's message.
    let url = exec_url(&mut c, exec_req(&id, &["sh", "-c", "exit 4"], false, false)).await;
    let (mut s, a) = Spdy::connect(&url, &["v3.channel.k8s.io"]).await.expect("upgraded");
    assert_eq!(a.header("x-stream-protocol-version"), Some("v3.channel.k8s.io"));
    let [err, _, _] = open_exec(&mut s, &["error", "stdout", "stderr"]).await[..] else { unreachable!() };
    s.read_to_end().await;
    assert!(s.text(err).contains("exited with 4"), "{}", s.text(err));
}

#[tokio::test]
async fn exec_over_spdy_round_trips_stdin() {
    let (_d, mut c, logs) = setup().await;
    let (_, id) = running(&mut c, &logs, "exec sleep 100000").await;
    let url = exec_url(&mut c, exec_req(&id, &["cat"], true, false)).await;
    let (mut s, _) = Spdy::connect(&url, V4).await.expect("upgraded");
    let [err, stdin, out, _] = open_exec(&mut s, &["error", "stdin", "stdout", "stderr"]).await[..] else {
        unreachable!()
    };
    s.write(stdin, b"round ").await;
    s.until_contains(out, "round ").await;
    s.write(stdin, b"trip\n").await;
    s.fin(stdin).await;
    s.read_to_end().await;
    assert_eq!(s.text(out), "round trip\n");
    assert_eq!(status(&s.data[&err])["status"], "Success");
}

#[tokio::test]
async fn a_tty_exec_takes_its_size_from_the_resize_stream() {
    let (_d, mut c, logs) = setup().await;
    let (_, id) = running(&mut c, &logs, "exec sleep 100000").await;
    let url = exec_url(&mut c, exec_req(&id, &["sh", "-c", "read x; stty size; exit 7"], true, true)).await;
    let (mut s, _) = Spdy::connect(&url, V4).await.expect("upgraded");
    let [err, stdin, out, resize] = open_exec(&mut s, &["error", "stdin", "stdout", "resize"]).await[..] else {
        unreachable!()
    };
    // The size goes first: the line that makes the shell read it follows on another stream.
    s.write(resize, br#"{"Width":123,"Height":45}"#).await;
    s.write(stdin, b"go\n").await;
    s.read_to_end().await;
    assert!(s.text(out).contains("45 123"), "{:?}", s.text(out));
    assert_eq!(status(&s.data[&err])["details"]["causes"][0]["message"], "7");
}

#[tokio::test]
async fn exec_over_websocket_v5_closes_stdin_and_reports_the_exit_code() {
    let (_d, mut c, logs) = setup().await;
    let (_, id) = running(&mut c, &logs, "exec sleep 100000").await;
    let url = exec_url(&mut c, exec_req(&id, &["sh", "-c", "cat; echo err >&2; exit 5"], true, false)).await;
    let (mut w, a) = Ws::connect(&url, "v5.channel.k8s.io").await.expect("upgraded");
    assert_eq!(a.header("sec-websocket-protocol"), Some("v5.channel.k8s.io"));
    w.send(0, b"over a websocket\n").await;
    // v5's close signal for stdin.
    w.send(255, &[0]).await;
    w.read_to_end().await;
    assert_eq!(w.messages.first(), Some(&(1, Vec::new())), "an empty first message on stdout says it is set up");
    assert_eq!(w.channel(1), b"over a websocket\n");
    assert_eq!(w.channel(2), b"err\n");
    let st = status(&w.channel(3));
    assert_eq!(st["details"]["causes"][0], serde_json::json!({"reason": "ExitCode", "message": "5"}));

    // The base64 protocol carries the same in text.
    let url = exec_url(&mut c, exec_req(&id, &["echo", "in base64"], false, false)).await;
    let (mut w, _) = Ws::connect(&url, "v4.base64.channel.k8s.io").await.expect("upgraded");
    w.read_to_end().await;
    assert_eq!(w.channel(1), b"in base64\n");
    assert_eq!(status(&w.channel(3))["status"], "Success");
}

#[tokio::test]
async fn a_url_is_good_once_and_only_for_its_own_kind() {
    let (_d, mut c, logs) = setup().await;
    let (_, id) = running(&mut c, &logs, "exec sleep 100000").await;
    let url = exec_url(&mut c, exec_req(&id, &["true"], false, false)).await;
    let (mut s, _) = Spdy::connect(&url, V4).await.expect("upgraded");
    open_exec(&mut s, &["error", "stdout", "stderr"]).await;
    s.read_to_end().await;
    let again = Spdy::connect(&url, V4).await.err().expect("a used token is refused");
    assert_eq!(again.status, 404);
    let (base, _) = url.rsplit_once('/').unwrap();
    let unknown = Spdy::connect(&format!("{base}/0123456789abcdef"), V4).await.err().expect("refused");
    assert_eq!(unknown.status, 404);
    let url = exec_url(&mut c, exec_req(&id, &["true"], false, false)).await;
    let other = Ws::connect(&url.replace("/exec/", "/attach/"), "v4.channel.k8s.io").await.err().expect("refused");
    assert_eq!(other.status, 404);
    // That spent the token too.
    assert_eq!(Spdy::connect(&url, V4).await.err().expect("refused").status, 404);
}

#[tokio::test]
async fn streams_are_refused_as_containerd_refuses_them() {
    let (_d, mut c, logs) = setup().await;
    let cfg = pod(&berth_integration::unique("stream"), &logs);
    let p = c.run_pod(cfg.clone()).await;
    let done = c.run(&p, &cfg, container("done", "exit 0")).await;
    c.wait_exited(&done).await;
    let e = c.rt.exec(exec_req(&done, &["true"], false, false)).await.unwrap_err();
    assert_eq!((e.code(), e.message()), (tonic::Code::Unknown, "container is in CONTAINER_EXITED state"));
    let e = c.rt.attach(AttachRequest { container_id: done.clone(), stdout: true, ..Default::default() }).await;
    assert_eq!(e.unwrap_err().code(), tonic::Code::Unknown);
    let mut bad = exec_req(&done, &["true"], false, true);
    bad.stderr = true;
    assert_eq!(c.rt.exec(bad).await.unwrap_err().code(), tonic::Code::InvalidArgument);
    let none = ExecRequest { container_id: done.clone(), cmd: vec!["true".into()], ..Default::default() };
    assert_eq!(c.rt.exec(none).await.unwrap_err().code(), tonic::Code::InvalidArgument);
    let e = c.rt.exec(exec_req("nonexistent", &["true"], false, false)).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    c.rt.stop_pod_sandbox(StopPodSandboxRequest { pod_sandbox_id: p.clone() }).await.unwrap();
    let e = c.rt.port_forward(PortForwardRequest { pod_sandbox_id: p.clone(), port: vec![80] }).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unknown);
}

/// The host PID of the process whose command line holds `word` (unique to the test).
///
/// A process that is known to run but is in the middle of an `exec` shows an empty command
/// line for a moment (the new memory map has no arguments yet): the search is repeated for
/// up to ten seconds before it gives up.
pub fn find_process(word: &str) -> Option<i32> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let found = std::fs::read_dir("/proc")
            .ok()?
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .find(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| c.split(|b| *b == 0 || *b == b' ').any(|w| w == word.as_bytes()))
            });
        if found.is_some() || std::time::Instant::now() > deadline {
            return found;
        }
        std::thread::yield_now();
    }
}

/// Waits (a minute at most) for process `pid` to end, through a pidfd.
pub async fn exited(pid: i32) {
    let pid = rustix::process::Pid::from_raw(pid).unwrap();
    let Ok(fd) = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()) else { return };
    tokio::task::spawn_blocking(move || {
        let fd = fd.as_fd();
        let mut fds = [rustix::event::PollFd::new(&fd, rustix::event::PollFlags::IN)];
        let timeout = rustix::event::Timespec { tv_sec: 60, tv_nsec: 0 };
        rustix::event::poll(&mut fds, Some(&timeout)).unwrap()
    })
    .await
    .map(|n| assert_eq!(n, 1, "process {pid:?} still runs"))
    .unwrap();
}

#[tokio::test]
async fn a_client_that_goes_away_leaves_no_exec_process_behind() {
    let (_d, mut c, logs) = setup().await;
    let (_, id) = running(&mut c, &logs, "exec sleep 100000").await;
    let secs = format!("{}", 200_000 + std::process::id() % 100_000);
    for ws in [false, true] {
        let script = format!("echo up; exec sleep {secs}");
        let url = exec_url(&mut c, exec_req(&id, &["sh", "-c", &script], true, false)).await;
        if ws {
            let (mut w, _) = Ws::connect(&url, "v4.channel.k8s.io").await.expect("upgraded");
            while !w.channel(1).ends_with(b"up\n") {
                assert!(w.step().await);
            }
            // One process, before or after its exec; found while the client is there.
            let pid = find_process(&secs).expect("the exec runs");
            drop(w);
            exited(pid).await;
        } else {
            let (mut s, _) = Spdy::connect(&url, V4).await.expect("upgraded");
            let [_, _, out, _] = open_exec(&mut s, &["error", "stdin", "stdout", "stderr"]).await[..] else {
                unreachable!()
            };
            s.until_contains(out, "up\n").await;
            let pid = find_process(&secs).expect("the exec runs");
            drop(s);
            exited(pid).await;
        }
    }
    // The container itself still runs, and takes more execs.
    let url = exec_url(&mut c, exec_req(&id, &["echo", "still here"], false, false)).await;
    let (mut s, _) = Spdy::connect(&url, V4).await.expect("upgraded");
    let [_, out, _] = open_exec(&mut s, &["error", "stdout", "stderr"]).await[..] else { unreachable!() };
    s.read_to_end().await;
    assert_eq!(s.text(out), "still here\n");
}

#[tokio::test]
async fn attach_streams_the_containers_own_process_until_it_ends() {
    let (_d, mut c, logs) = setup().await;
    let cfg = pod(&berth_integration::unique("stream"), &logs);
    let p = c.run_pod(cfg.clone()).await;
    let mut cc = container("main", "echo started; while read l; do echo \"got $l\"; done; echo bye; exit 9");
    cc.stdin = true;
    cc.stdin_once = true;
    let id = c.run(&p, &cfg, cc).await;
    let req = AttachRequest { container_id: id.clone(), stdin: true, stdout: true, stderr: true, tty: false };
    let url = c.rt.attach(req).await.expect("Attach").into_inner().url;
    assert!(url.contains("/attach/"), "{url}");
    let (mut s, _) = Spdy::connect(&url, V4).await.expect("upgraded");
    let [err, stdin, out, _] = open_exec(&mut s, &["error", "stdin", "stdout", "stderr"]).await[..] else {
        unreachable!()
    };
    s.write(stdin, b"one\n").await;
    s.until_contains(out, "got one\n").await;
    s.write(stdin, b"two\n").await;
    s.fin(stdin).await;
    s.read_to_end().await;
    assert!(s.text(out).ends_with("got one\ngot two\nbye\n"), "{:?}", s.text(out));
    // Attach reports success however the process ended, as kubelet's server does.
    assert_eq!(status(&s.data[&err])["status"], "Success");
    assert_eq!(c.wait_exited(&id).await.exit_code, 9);
}

/// A pod serving `marker` over HTTP on 127.0.0.1:8080 inside its own network namespace.
pub async fn web_pod(c: &mut Cri, logs: &std::path::Path, marker: &str) -> (String, String) {
    let script = format!(
        "mkdir /www && echo {marker} > /www/index.html && httpd -p 127.0.0.1:8080 -h /www && touch /tmp/ready && \
         exec sleep 100000"
    );
    let (p, id) = running(c, logs, &script).await;
    // httpd listens before it goes to the background; the file says it has.
    let wait = ["sh", "-c", "until [ -e /tmp/ready ]; do usleep 10000; done"];
    let r = c.exec(&id, &wait, 60).await.expect("waiting for httpd");
    assert_eq!(r.exit_code, 0);
    (p, id)
}

#[tokio::test]
async fn port_forward_over_spdy_reaches_a_port_inside_the_pod() {
    let (_d, mut c, logs) = setup().await;
    let marker = berth_integration::unique("served");
    let (p, _) = web_pod(&mut c, &logs, &marker).await;
    // Nothing on the host listens there: the connection is made in the pod.
    let req = PortForwardRequest { pod_sandbox_id: p.clone(), port: vec![8080] };
    let url = c.rt.port_forward(req).await.expect("PortForward").into_inner().url;
    let (mut s, a) = Spdy::connect(&url, &["portforward.k8s.io"]).await.expect("upgraded");
    assert_eq!(a.header("x-stream-protocol-version"), Some("portforward.k8s.io"));
    for rid in ["0", "1"] {
        let (err, data) = s.forward("8080", rid).await;
        s.write(data, b"GET /index.html HTTP/1.0\r\n\r\n").await;
        s.fin(data).await;
        s.until_finished(data).await;
        s.until_finished(err).await;
        assert!(s.text(data).starts_with("HTTP/1.") && s.text(data).contains(&marker), "{}", s.text(data));
        assert_eq!(s.text(err), "");
    }
    // A port nothing listens on fails on the error stream, and the session goes on.
    let (err, data) = s.forward("8081", "2").await;
    s.until_finished(err).await;
    assert!(s.text(err).contains("error forwarding port 8081"), "{}", s.text(err));
    assert_eq!(s.text(data), "");
}

#[tokio::test]
async fn port_forward_over_websocket_names_the_port_and_carries_the_bytes() {
    let (_d, mut c, logs) = setup().await;
    let marker = berth_integration::unique("served");
    let (p, _) = web_pod(&mut c, &logs, &marker).await;
    let req = PortForwardRequest { pod_sandbox_id: p.clone(), port: vec![8080] };
    let url = c.rt.port_forward(req).await.expect("PortForward").into_inner().url;
    let (mut w, _) = Ws::connect(&format!("{url}?port=8080"), "v4.channel.k8s.io").await.expect("upgraded");
    w.send(0, b"GET /index.html HTTP/1.0\r\n\r\n").await;
    // The server closes once the pod's side of the only connection has.
    w.read_to_end().await;
    let port = 8080u16.to_le_bytes().to_vec();
    assert_eq!(w.messages.iter().find(|(ch, _)| *ch == 1), Some(&(1, port.clone())));
    let data = w.channel(0);
    assert!(data.starts_with(&port), "the data channel starts with the port");
    let body = String::from_utf8_lossy(&data[2..]).into_owned();
    assert!(body.starts_with("HTTP/1.") && body.contains(&marker), "{body}");
}

#[tokio::test]
async fn a_port_forward_client_that_goes_away_leaves_no_connection_in_the_pod() {
    let (_d, mut c, logs) = setup().await;
    let (p, id) = web_pod(&mut c, &logs, "unused").await;
    // Established TCP connections to or from port 8080 in the pod's network namespace.
    let count = "awk '$4 == \"01\" && ($2 ~ /:1F90$/ || $3 ~ /:1F90$/)' /proc/net/tcp | wc -l";
    let until = |want: &str| format!("until [ \"$({count})\" = {want} ]; do usleep 10000; done");
    let req = PortForwardRequest { pod_sandbox_id: p.clone(), port: vec![8080] };
    let url = c.rt.port_forward(req).await.expect("PortForward").into_inner().url;
    let (mut s, _) = Spdy::connect(&url, &["portforward.k8s.io"]).await.expect("upgraded");
    s.open(&[("streamtype", "error"), ("port", "8080"), ("requestid", "0")]).await;
    let data = s.open(&[("streamtype", "data"), ("port", "8080"), ("requestid", "0")]).await;
    // Half a request: httpd waits for the rest with the connection open (both ends are in
    // the pod's namespace, so it counts twice).
    s.write(data, b"GET / HTTP/1.0\r\n").await;
    let r = c.exec(&id, &["sh", "-c", &until("2")], 60).await.expect("the connection is made");
    assert_eq!(r.exit_code, 0, "{r:?}");
    drop(s);
    let r = c.exec(&id, &["sh", "-c", &until("0")], 60).await.expect("the connection is closed");
    assert_eq!(r.exit_code, 0, "{r:?}");
}
