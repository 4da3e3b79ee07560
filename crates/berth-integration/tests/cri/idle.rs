//! A streaming session that carries nothing either way for the idle timeout is closed by the
//! server (kubelet's `--streaming-connection-idle-timeout`, containerd's
//! `stream_idle_timeout`), its exec ended; one whose traffic goes on in either direction is
//! not. The daemon runs with a short timeout, set with its own flag.

use std::time::Duration;

use berth_cri::proto::*;

use crate::stream_clients::{Spdy, Ws, status};
use crate::streaming::{V4, exec_req, exec_url, exited, find_process, open_exec, running};
use crate::{Cri, setup_with};

/// The daemon's idle timeout in these tests.
const IDLE: &str = "2s";
/// How long a session keeps its traffic going: over twice the timeout.
const TICKS: u32 = 10;
const TICK: Duration = Duration::from_millis(500);
/// How long the server may take to close an idle session before the test gives up: far past
/// the timeout, only so a failure does not hang.
const GIVE_UP: Duration = Duration::from_secs(120);

async fn idle_daemon() -> (berth_integration::Daemon, Cri, std::path::PathBuf) {
    setup_with(&["--cri-stream-idle-timeout", IDLE]).await
}

#[tokio::test]
async fn an_idle_session_is_closed_by_the_server_and_its_exec_ended() {
    let (_d, mut c, logs) = idle_daemon().await;
    let (p, id) = running(&mut c, &logs, "exec sleep 100000").await;
    let secs = format!("{}", 300_000 + std::process::id() % 100_000);
    let script = format!("echo up; exec sleep {secs}");
    // SPDY: the exec says it is up, then nothing moves either way.
    let url = exec_url(&mut c, exec_req(&id, &["sh", "-c", &script], true, false)).await;
    let (mut s, _) = Spdy::connect(&url, V4).await.expect("upgraded");
    let [_, _, out, _] = open_exec(&mut s, &["error", "stdin", "stdout", "stderr"]).await[..] else { unreachable!() };
    s.until_contains(out, "up\n").await;
    let pid = find_process(&secs).expect("the exec runs");
    tokio::time::timeout(GIVE_UP, s.read_to_end()).await.expect("the server closes the idle SPDY session");
    exited(pid).await;
    // WebSocket, the same.
    let url = exec_url(&mut c, exec_req(&id, &["sh", "-c", &script], true, false)).await;
    let (mut w, _) = Ws::connect(&url, "v4.channel.k8s.io").await.expect("upgraded");
    while !w.channel(1).ends_with(b"up\n") {
        assert!(w.step().await);
    }
    let pid = find_process(&secs).expect("the exec runs");
    tokio::time::timeout(GIVE_UP, w.read_to_end()).await.expect("the server closes the idle WebSocket session");
    exited(pid).await;
    // A port-forward session that never opens a stream.
    let req = PortForwardRequest { pod_sandbox_id: p.clone(), port: vec![8080] };
    let url = c.rt.port_forward(req).await.expect("PortForward").into_inner().url;
    let (mut s, _) = Spdy::connect(&url, &["portforward.k8s.io"]).await.expect("upgraded");
    tokio::time::timeout(GIVE_UP, s.read_to_end()).await.expect("the server closes the idle port-forward session");
    c.remove_pod(&p).await;
}

#[tokio::test]
async fn a_session_is_not_closed_while_traffic_flows_either_way() {
    let (_d, mut c, logs) = idle_daemon().await;
    let (p, id) = running(&mut c, &logs, "exec sleep 100000").await;
    // Output only: a line every tick, for over twice the timeout.
    let script = format!("i=0; while [ $i -lt {TICKS} ]; do i=$((i+1)); echo tick$i; sleep 0.5; done");
    let url = exec_url(&mut c, exec_req(&id, &["sh", "-c", &script], false, false)).await;
    let (mut s, _) = Spdy::connect(&url, V4).await.expect("upgraded");
    let [err, out, _] = open_exec(&mut s, &["error", "stdout", "stderr"]).await[..] else { unreachable!() };
    s.read_to_end().await;
    assert!(s.text(out).ends_with(&format!("tick{TICKS}\n")), "{}", s.text(out));
    assert_eq!(status(&s.data[&err])["status"], "Success", "the exec ran to its end");
    // Input only: the client sends a line every tick; the process says nothing until the end.
    let script = format!("n=0; while [ $n -lt {TICKS} ] && read l; do n=$((n+1)); done; echo got $n");
    let url = exec_url(&mut c, exec_req(&id, &["sh", "-c", &script], true, false)).await;
    let (mut s, _) = Spdy::connect(&url, V4).await.expect("upgraded");
    let [err, stdin, out, _] = open_exec(&mut s, &["error", "stdin", "stdout", "stderr"]).await[..] else {
        unreachable!()
    };
    for i in 0..TICKS {
        s.write(stdin, format!("line {i}\n").as_bytes()).await;
        tokio::time::sleep(TICK).await;
    }
    s.read_to_end().await;
    assert_eq!(s.text(out), format!("got {TICKS}\n"));
    assert_eq!(status(&s.data[&err])["status"], "Success", "the exec ran to its end");
    c.remove_pod(&p).await;
}
