//! What the streaming server as a whole holds whatever its clients do: connections that never
//! show a token are bounded (the rest wait in the kernel, and kubelet's connection gets its
//! turn), an `accept` that fails for want of descriptors is retried with pauses rather than
//! at once, and a port-forward session dials at most 8 connections into the pod at a time.
//! Each beside a control that shows the probe reached its target.

use std::time::Duration;

use berth_cri::proto::*;
use berth_cri::stream::{self, portforward};
use tokio::net::TcpStream;

use crate::backpressure::{entries, stalls};
use crate::bounds::daemon_pid;
use crate::stream_clients::Spdy;
use crate::streaming::{V4, exec_req, exec_url, open_exec, running, web_pod};

/// `host:port` of a streaming URL.
fn address(url: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap();
    rest[..rest.find('/').unwrap()].to_string()
}

/// Runs `echo <word>` through `url` (an exec URL) over SPDY; what it printed.
async fn echo_through(url: String) -> String {
    let (mut s, _) = Spdy::connect(&url, V4).await.expect("upgraded");
    let [_, out, _] = open_exec(&mut s, &["error", "stdout", "stderr"]).await[..] else { unreachable!() };
    s.read_to_end().await;
    s.text(out)
}

#[tokio::test]
async fn connections_without_a_token_are_bounded_and_kubelets_waits_its_turn() {
    let (d, mut c, logs) = crate::setup().await;
    let (p, id) = running(&mut c, &logs, "exec sleep 100000").await;
    let url = exec_url(&mut c, exec_req(&id, &["echo", "served"], false, false)).await;
    let pid = daemon_pid(&d);
    let before = entries(pid, "fd");
    // Connections that send nothing, past the cap.
    let extra = 100;
    let mut silent = Vec::new();
    for _ in 0..stream::MAX_UNAUTHENTICATED + extra {
        silent.push(TcpStream::connect(address(&url)).await.expect("the kernel takes the connection"));
    }
    let held = stalls(|| entries(pid, "fd")).await.saturating_sub(before);
    eprintln!("{} silent connections: the daemon holds {held} more files", silent.len());
    // Control: the server took connections up to its cap.
    assert!(held as usize >= stream::MAX_UNAUTHENTICATED, "the daemon took {held} connections");
    assert!(held as usize <= stream::MAX_UNAUTHENTICATED + 8, "the daemon holds {held} more files");
    // The Docker API of the same daemon still answers.
    assert_eq!(d.api("GET", "/_ping", b"").0, 200);
    // kubelet's connection waits until the silent ones go, then is served.
    let served = tokio::spawn(echo_through(url));
    drop(silent);
    assert_eq!(served.await.unwrap(), "served\n");
    c.remove_pod(&p).await;
}

/// The daemon's CPU time so far, in clock ticks (user and system).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// Lowers the daemon's limit of open files to `soft` until dropped, so that a failing test
/// leaves it whole too.
struct Limit(Option<rustix::process::Pid>, rustix::process::Rlimit);

impl Limit {
    fn lower(pid: u32, soft: u64) -> Limit {
        let pid = rustix::process::Pid::from_raw(pid as i32);
        let nofile = rustix::process::Resource::Nofile;
        // What the limit is now, to keep its hard half and to give it back.
        let limits = std::fs::read_to_string(format!("/proc/{}/limits", pid.unwrap().as_raw_nonzero())).unwrap();
        let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
        let v: Vec<u64> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
        let now = rustix::process::Rlimit { current: Some(v[0]), maximum: Some(v[1]) };
        let lowered = rustix::process::Rlimit { current: Some(soft), maximum: now.maximum };
        rustix::process::prlimit(pid, nofile, lowered).expect("lowering the daemon's limit of open files");
        Limit(pid, now)
    }
}

impl Drop for Limit {
    fn drop(&mut self) {
        let _ = rustix::process::prlimit(self.0, rustix::process::Resource::Nofile, self.1);
    }
}

#[tokio::test]
async fn an_accept_that_fails_for_want_of_descriptors_is_retried_without_spinning() {
    let (d, mut c, logs) = crate::setup().await;
    let (p, id) = running(&mut c, &logs, "exec sleep 100000").await;
    let url = exec_url(&mut c, exec_req(&id, &["echo", "served"], false, false)).await;
    let pid = daemon_pid(&d);
    // The daemon may open no more files: every accept fails with EMFILE.
    let limit = Limit::lower(pid, 3);
    // kubelet's connection, which the server cannot take while the limit holds.
    let served = tokio::spawn(echo_through(url));
    let start = cpu_ticks(pid);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let used = cpu_ticks(pid) - start;
    let hz = rustix::param::clock_ticks_per_second();
    eprintln!("the daemon used {used} of {} clock ticks while accept failed", 3 * hz);
    drop(limit);
    // Spinning takes a whole CPU (3 s of it); pausing, next to nothing.
    assert!(used < hz / 2, "the daemon used {used} clock ticks in 3 s while accept failed");
    // Control: once descriptors are there again, the waiting connection is served.
    assert_eq!(served.await.unwrap(), "served\n");
    c.remove_pod(&p).await;
}

/// Counts TCP sockets to or from port 8080 in the pod's network namespace in `state` (the
/// kernel's hex code: 02 is SYN_SENT), through an exec in container `id`.
async fn until_sockets(c: &mut crate::Cri, id: &str, state: &str, want: u32) {
    let count = format!("awk '$4 == \"{state}\" && $3 ~ /:1F90$/' /proc/net/tcp | wc -l");
    let until = format!("until [ \"$({count})\" = {want} ]; do usleep 10000; done");
    let r = c.exec(id, &["sh", "-c", &until], 60).await.expect("exec");
    assert_eq!(r.exit_code, 0, "{r:?}");
}

/// Runs `nft` in the network namespace of process `pid`.
fn nft_in(pid: u32, args: &str) {
    let out = std::process::Command::new("nsenter")
        .arg(format!("--net=/proc/{pid}/ns/net"))
        .arg("nft")
        .args(args.split(' '))
        .output()
        .unwrap();
    assert!(out.status.success(), "nft {args}: {}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn a_port_forward_session_dials_8_at_once_and_refuses_a_9th_meanwhile() {
    let (_d, mut c, logs) = crate::setup().await;
    let marker = berth_integration::unique("served");
    let (p, id) = web_pod(&mut c, &logs, &marker).await;
    let holder = c.holder_pid(&p).await;
    // SYNs to the pod's port 8080 are dropped for now: every dial waits (its connect retries).
    // The table lives in the pod's own network namespace and goes with it.
    let table = berth_integration::unique("bt").replace('-', "_");
    nft_in(holder, &format!("add table inet {table}"));
    nft_in(holder, &format!("add chain inet {table} in {{ type filter hook input priority 0 ; }}"));
    nft_in(holder, &format!("add rule inet {table} in tcp dport 8080 tcp flags syn drop"));
    let req = PortForwardRequest { pod_sandbox_id: p.clone(), port: vec![8080] };
    let url = c.rt.port_forward(req).await.expect("PortForward").into_inner().url;
    let (mut s, _) = Spdy::connect(&url, &["portforward.k8s.io"]).await.expect("upgraded");
    let mut first = Vec::new();
    for rid in 0..portforward::MAX_DIALS {
        first.push(s.forward("8080", &rid.to_string()).await);
    }
    // All of them are being dialed: their sockets wait in SYN_SENT.
    until_sockets(&mut c, &id, "02", portforward::MAX_DIALS as u32).await;
    // The next one is refused on its error stream, as a failed dial is.
    let (err, data) = s.forward("8080", "ninth").await;
    s.until_finished(err).await;
    let why = s.text(err);
    assert!(why.contains("error forwarding port 8080") && why.contains("being made already"), "{why}");
    assert_eq!(s.text(data), "");
    // The first ones go through once the pod answers (the kernel retries their SYNs).
    nft_in(holder, &format!("delete table inet {table}"));
    for (_, data) in &first {
        s.write(*data, b"GET /index.html HTTP/1.0\r\n\r\n").await;
        s.fin(*data).await;
    }
    for (err, data) in &first {
        // A forward whose FIN is lost would hang the test: it fails instead.
        let done = tokio::time::timeout(Duration::from_secs(60), s.until_finished(*data)).await;
        assert!(done.is_ok(), "forward {data} never finished ({:?}); finished: {:?}", s.text(*data), s.finished);
        assert!(s.text(*data).starts_with("HTTP/1.") && s.text(*data).contains(&marker), "{}", s.text(*data));
        assert_eq!(s.text(*err), "");
    }
    c.remove_pod(&p).await;
}
