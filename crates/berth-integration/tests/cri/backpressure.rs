//! What a streaming client can make the daemon hold: output for a client that stops reading,
//! input for a process that does not read, answers to pings nobody reads, streams without
//! end. Each attack runs beside a control showing that the probe reaches its target (the bytes
//! held back all arrive once read, a reading process gets every byte, a ping is answered, the
//! streams within the cap work).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use berth_cri::proto::*;
use berth_cri::stream::spdy::{self, Frame};

use crate::bounds::{daemon_pid, status_mib};
use crate::stream_clients::{Spdy, Ws, status};
use crate::streaming::{V4, exec_req, exec_url, exited, find_process, open_exec, running, web_pod};
use crate::{Cri, setup};

const MIB: u64 = 1 << 20;
/// The most the daemon's peak may grow by while an attack runs; each would make it hold
/// hundreds of MiB without its bound.
const BOUND_MIB: u64 = 64;

/// Restarts the daemon's peak (VmHWM) from its resident set now, which it returns (MiB).
fn reset_peak(pid: u32) -> u64 {
    let now = status_mib(pid, "VmRSS");
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
    now
}

/// Bytes process `pid` has written.
fn written(pid: i32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io"))
        .unwrap_or_else(|e| panic!("process {pid} ended ({e}): nothing held its output back"));
    io.lines().find_map(|l| l.strip_prefix("wchar: ")).unwrap().trim().parse().unwrap()
}

/// Waits until `count` stands still (the same 20 looks in a row, 50 ms apart; a minute at
/// most) and returns it.
pub async fn stalls(count: impl Fn() -> u64) -> u64 {
    let (mut last, mut same) = (u64::MAX, 0);
    for _ in 0..1200 {
        let now = count();
        if now == last {
            same += 1;
            if same == 20 {
                return now;
            }
        } else {
            (last, same) = (now, 0);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the count never stopped growing: {last}");
}

/// Waits until process `pid` is blocked writing to a full pipe (in the kernel's pipe_write,
/// its count of bytes written standing still); what it wrote by then.
async fn blocked_on_pipe(pid: i32) -> u64 {
    for _ in 0..10 {
        let n = stalls(|| written(pid)).await;
        if std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default().contains("pipe_write") {
            return n;
        }
    }
    panic!("process {pid} is not blocked on its pipe");
}

/// An exec of `dd` writing `mib` MiB of zeros to stdout, and the word that finds its process
/// (busybox's dd splits its arguments at `=` in place).
fn dd(mib: u64) -> (Vec<String>, String) {
    let count = format!("count={mib}");
    (["dd", "if=/dev/zero", "bs=1M", count.as_str()].map(String::from).to_vec(), mib.to_string())
}

#[tokio::test]
async fn an_exec_whose_spdy_client_stops_reading_blocks_and_the_daemon_stays_small() {
    let (d, mut c, logs) = setup().await;
    let (p, id) = running(&mut c, &logs, "exec sleep 100000").await;
    let mib = 600 + u64::from(std::process::id() % 100);
    let (cmd, word) = dd(mib);
    let mut req = exec_req(&id, &[], false, false);
    req.cmd = cmd;
    let url = exec_url(&mut c, req).await;
    let (mut s, _) = Spdy::connect(&url, V4).await.expect("upgraded");
    let [err, out, _] = open_exec(&mut s, &["error", "stdout", "stderr"]).await[..] else { unreachable!() };
    s.discard.insert(out);
    while s.counted.get(&out).copied().unwrap_or(0) == 0 {
        assert!(s.step().await);
    }
    // From here the client reads nothing (as kubectl's does, it grants no window either).
    let pid = daemon_pid(&d);
    let before = reset_peak(pid);
    let writer = find_process(&word).expect("dd runs");
    let produced = blocked_on_pipe(writer).await;
    let grew = status_mib(pid, "VmHWM").saturating_sub(before);
    eprintln!("dd held back after {} MiB of {mib}; the daemon's peak grew by {grew} MiB", produced / MIB);
    assert!(produced < BOUND_MIB * MIB, "dd wrote {} MiB before it was held back", produced / MIB);
    assert!(grew < BOUND_MIB, "the daemon's peak grew by {grew} MiB while {mib} MiB waited for a reader");
    // Control: reading on, every byte arrives, and the exec ends well.
    s.read_to_end().await;
    assert_eq!(s.counted[&out], mib * MIB);
    assert!(!s.nonzero);
    assert_eq!(status(&s.data[&err])["status"], "Success");
    c.remove_pod(&p).await;
}

#[tokio::test]
async fn an_exec_whose_websocket_client_stops_reading_blocks_and_the_daemon_stays_small() {
    let (d, mut c, logs) = setup().await;
    let (p, id) = running(&mut c, &logs, "exec sleep 100000").await;
    let mib = 700 + u64::from(std::process::id() % 100);
    let (cmd, word) = dd(mib);
    let mut req = exec_req(&id, &[], false, false);
    req.cmd = cmd;
    let url = exec_url(&mut c, req).await;
    let (mut w, _) = Ws::connect(&url, "v4.channel.k8s.io").await.expect("upgraded");
    w.discard.insert(1);
    while w.counted.get(&1).copied().unwrap_or(0) == 0 {
        assert!(w.step().await);
    }
    let pid = daemon_pid(&d);
    let before = reset_peak(pid);
    let writer = find_process(&word).expect("dd runs");
    let produced = blocked_on_pipe(writer).await;
    let grew = status_mib(pid, "VmHWM").saturating_sub(before);
    eprintln!("dd held back after {} MiB of {mib}; the daemon's peak grew by {grew} MiB", produced / MIB);
    assert!(produced < BOUND_MIB * MIB, "dd wrote {} MiB before it was held back", produced / MIB);
    assert!(grew < BOUND_MIB, "the daemon's peak grew by {grew} MiB while {mib} MiB waited for a reader");
    w.read_to_end().await;
    assert_eq!(w.counted[&1], mib * MIB);
    assert!(!w.nonzero);
    assert_eq!(status(&w.channel(3))["status"], "Success");
    c.remove_pod(&p).await;
}

/// Reads until the answer to a new PING, checking on every frame that stream `out` never
/// got more than `granted`.
async fn settle(s: &mut Spdy, out: u32, granted: u64) {
    let ping = s.ping().await;
    while !s.pongs.contains(&ping) {
        assert!(s.step().await, "the connection ended");
        let got = s.counted.get(&out).copied().unwrap_or(0);
        assert!(got <= granted, "{got} bytes arrived on a window of {granted}");
    }
}

#[tokio::test]
async fn spdy_data_never_passes_the_window_a_client_grants() {
    let (_d, mut c, logs) = setup().await;
    let (p, id) = running(&mut c, &logs, "exec sleep 100000").await;
    let total = 300_000u64;
    let script = format!("head -c {total} /dev/zero; echo done >&2");
    let url = exec_url(&mut c, exec_req(&id, &["sh", "-c", &script], false, false)).await;
    let (mut s, _) = Spdy::connect(&url, V4).await.expect("upgraded");
    // This client keeps windows: 1000 bytes a stream to start with; the session's is wide.
    let initial = 1000u64;
    s.send(Frame::Settings { flags: 0, entries: vec![(0, spdy::SETTINGS_INITIAL_WINDOW_SIZE, initial as u32)] }).await;
    s.send(Frame::WindowUpdate { id: 0, delta: 1 << 30 }).await;
    let [err, out, stderr] = open_exec(&mut s, &["error", "stdout", "stderr"]).await[..] else { unreachable!() };
    s.discard.insert(out);
    let mut granted = initial;
    while !s.finished.contains(&out) {
        // The server fills the window, and stops there until the client grants more.
        while s.counted.get(&out).copied().unwrap_or(0) < granted && !s.finished.contains(&out) {
            assert!(s.step().await, "the connection ended");
            let got = s.counted.get(&out).copied().unwrap_or(0);
            assert!(got <= granted, "{got} bytes arrived on a window of {granted}");
        }
        if s.finished.contains(&out) {
            break;
        }
        settle(&mut s, out, granted).await;
        assert_eq!(s.counted.get(&out).copied(), Some(granted));
        // An odd step, so that frames and windows do not line up.
        s.send(Frame::WindowUpdate { id: out, delta: 7919 }).await;
        granted += 7919;
    }
    s.read_to_end().await;
    assert_eq!(s.counted[&out], total);
    assert!(granted >= total && granted - total < 7919, "the stream ended as the window allowed");
    assert_eq!(s.text(stderr), "done\n");
    assert_eq!(status(&s.data[&err])["status"], "Success");
    // Servers' SETTINGS: the stream cap and the window this side grants.
    assert!(s.settings.contains(&(0, spdy::SETTINGS_MAX_CONCURRENT_STREAMS, spdy::MAX_STREAMS)), "{:?}", s.settings);
    assert!(s.settings.contains(&(0, spdy::SETTINGS_INITIAL_WINDOW_SIZE, spdy::WINDOW)), "{:?}", s.settings);
    c.remove_pod(&p).await;
}

/// Writes `frame` on the connection again and again, counting the bytes the socket took in
/// `accepted`, until the count stands still; returns it. The last write may be left
/// half-way: the connection is not to be used after.
async fn flood(write: impl AsyncFnMut(), accepted: &AtomicU64, len: u64) -> u64 {
    let mut write = write;
    let writes = async {
        loop {
            write().await;
            accepted.fetch_add(len, Ordering::SeqCst);
        }
    };
    tokio::select! {
        _ = writes => unreachable!(),
        n = stalls(|| accepted.load(Ordering::SeqCst)) => n,
    }
}

/// An exec that reads its stdin to the end and prints how many bytes it got, fed `mib` MiB
/// over SPDY or a WebSocket: what it prints.
async fn count_stdin(c: &mut Cri, id: &str, ws: bool, mib: usize) -> String {
    let url = exec_url(c, exec_req(id, &["wc", "-c"], true, false)).await;
    let chunk = vec![b'x'; 32 << 10];
    if ws {
        let (mut w, _) = Ws::connect(&url, "v5.channel.k8s.io").await.expect("upgraded");
        for _ in 0..mib * 32 {
            w.send(0, &chunk).await;
        }
        w.send(255, &[0]).await;
        w.read_to_end().await;
        String::from_utf8(w.channel(1)).unwrap()
    } else {
        let (mut s, _) = Spdy::connect(&url, V4).await.expect("upgraded");
        let [_, stdin, out, _] = open_exec(&mut s, &["error", "stdin", "stdout", "stderr"]).await[..] else {
            unreachable!()
        };
        for _ in 0..mib * 32 {
            s.write(stdin, &chunk).await;
        }
        s.fin(stdin).await;
        s.read_to_end().await;
        s.text(out)
    }
}

#[tokio::test]
async fn a_stdin_flood_into_a_process_that_does_not_read_is_held_back() {
    let (d, mut c, logs) = setup().await;
    let (p, id) = running(&mut c, &logs, "exec sleep 100000").await;
    let pid = daemon_pid(&d);
    for ws in [false, true] {
        let secs = format!("{}", 300_000 + u64::from(std::process::id() % 100_000) * 2 + u64::from(ws));
        let script = format!("echo up; exec sleep {secs}");
        let url = exec_url(&mut c, exec_req(&id, &["sh", "-c", &script], true, false)).await;
        let accepted = AtomicU64::new(0);
        let chunk = vec![b'x'; 32 << 10];
        if ws {
            let (mut w, _) = Ws::connect(&url, "v4.channel.k8s.io").await.expect("upgraded");
            while !w.channel(1).ends_with(b"up\n") {
                assert!(w.step().await);
            }
            let sleeper = find_process(&secs).expect("the exec runs");
            let before = reset_peak(pid);
            let frame = Ws::frame(2, &[&[0u8][..], &chunk].concat());
            let n = flood(async || w.write_raw(&frame).await, &accepted, frame.len() as u64).await;
            let grew = status_mib(pid, "VmHWM").saturating_sub(before);
            eprintln!("stdin held back after {} KiB; the daemon's peak grew by {grew} MiB", n >> 10);
            assert!(n < BOUND_MIB * MIB, "the daemon took {} MiB of stdin nobody reads", n / MIB);
            assert!(grew < BOUND_MIB, "the daemon's peak grew by {grew} MiB");
            // A client that goes away while the daemon is not reading it is still noticed, even
            // with its FIN stuck behind the data it could not send.
            drop(w);
            exited(sleeper).await;
        } else {
            let (mut s, _) = Spdy::connect(&url, V4).await.expect("upgraded");
            let [_, stdin, out, _] = open_exec(&mut s, &["error", "stdin", "stdout", "stderr"]).await[..] else {
                unreachable!()
            };
            s.until_contains(out, "up\n").await;
            let sleeper = find_process(&secs).expect("the exec runs");
            let before = reset_peak(pid);
            // As kubectl does, it sends without regard to windows.
            let frame = s.encode(&Frame::Data { id: stdin, flags: 0, data: chunk.clone().into() });
            let n = flood(async || s.write_raw(&frame).await, &accepted, frame.len() as u64).await;
            let grew = status_mib(pid, "VmHWM").saturating_sub(before);
            eprintln!("stdin held back after {} KiB; the daemon's peak grew by {grew} MiB", n >> 10);
            assert!(n < BOUND_MIB * MIB, "the daemon took {} MiB of stdin nobody reads", n / MIB);
            assert!(grew < BOUND_MIB, "the daemon's peak grew by {grew} MiB");
            drop(s);
            exited(sleeper).await;
        }
        // Control: a process that reads gets every byte.
        assert_eq!(count_stdin(&mut c, &id, ws, 96).await.trim(), (96 * MIB).to_string());
    }
    c.remove_pod(&p).await;
}

/// An exec that reads as many bytes of stdin as `messages` hold and prints how many it got,
/// fed them as whole WebSocket messages on channel 0 (with `protocol`): what it prints.
async fn count_ws_messages(c: &mut Cri, id: &str, protocol: &str, messages: &[usize]) -> String {
    let total: usize = messages.iter().sum();
    let script = format!("head -c {total} | wc -c");
    let url = exec_url(c, exec_req(id, &["sh", "-c", &script], true, false)).await;
    let (mut w, _) = Ws::connect(&url, protocol).await.expect("upgraded");
    for len in messages {
        w.send(0, &vec![b'x'; *len]).await;
    }
    w.read_to_end().await;
    String::from_utf8(w.channel(1)).unwrap()
}

#[tokio::test]
async fn large_websocket_messages_for_a_process_that_does_not_read_are_held_back() {
    let (d, mut c, logs) = setup().await;
    let (p, id) = running(&mut c, &logs, "exec sleep 100000").await;
    let pid = daemon_pid(&d);
    let secs = format!("{}", 600_000 + u64::from(std::process::id() % 100_000));
    let script = format!("echo up; exec sleep {secs}");
    let url = exec_url(&mut c, exec_req(&id, &["sh", "-c", &script], true, false)).await;
    let (mut w, _) = Ws::connect(&url, "v4.channel.k8s.io").await.expect("upgraded");
    while !w.channel(1).ends_with(b"up\n") {
        assert!(w.step().await);
    }
    let sleeper = find_process(&secs).expect("the exec runs");
    let before = reset_peak(pid);
    // Each message is as large as the protocol's frames allowed before (16 MiB), on stdin.
    let frame = Ws::frame(2, &[&[0u8][..], &vec![b'x'; (16 << 20) - 1]].concat());
    let accepted = AtomicU64::new(0);
    let n = flood(async || w.write_raw(&frame).await, &accepted, frame.len() as u64).await;
    let grew = status_mib(pid, "VmHWM").saturating_sub(before);
    eprintln!("16 MiB messages held back after {} MiB; the daemon's peak grew by {grew} MiB", n / MIB);
    assert!(grew < BOUND_MIB, "the daemon's peak grew by {grew} MiB on stdin nobody reads");
    drop(w);
    exited(sleeper).await;
    // Control: a process that reads gets every byte of such messages, in binary and in base64
    // (lengths that split neither at a power of two nor at base64's four characters).
    let sizes = [16 << 20, 5_000_001, 1, 70_001];
    let total: usize = sizes.iter().sum();
    for protocol in ["v4.channel.k8s.io", "v4.base64.channel.k8s.io"] {
        let got = count_ws_messages(&mut c, &id, protocol, &sizes).await;
        assert_eq!(got.trim(), total.to_string(), "{protocol}");
    }
    c.remove_pod(&p).await;
}

#[tokio::test]
async fn a_ping_flood_from_a_client_that_does_not_read_holds_no_answers() {
    let (d, mut c, logs) = setup().await;
    let (p, id) = running(&mut c, &logs, "exec sleep 100000").await;
    let pid = daemon_pid(&d);
    let pings = 4 << 20;
    for ws in [false, true] {
        let url = exec_url(&mut c, exec_req(&id, &["sh", "-c", "read x; echo got $x"], true, false)).await;
        let before;
        if ws {
            let (mut w, _) = Ws::connect(&url, "v4.channel.k8s.io").await.expect("upgraded");
            // Control: a ping is answered.
            w.write_raw(&Ws::frame(9, b"ctl")).await;
            w.until_pong(b"ctl").await;
            before = reset_peak(pid);
            let batch: Vec<u8> = (0..64 << 10).flat_map(|_| Ws::frame(9, b"ping")).collect();
            for _ in 0..pings / (64 << 10) {
                w.write_raw(&batch).await;
            }
            // Input behind the flood is read, so the flood was.
            w.send(0, b"through\n").await;
            while !w.channel(1).ends_with(b"got through\n") {
                assert!(w.step().await, "the exec did not answer after the flood");
            }
        } else {
            let (mut s, _) = Spdy::connect(&url, V4).await.expect("upgraded");
            let [_, stdin, out, _] = open_exec(&mut s, &["error", "stdin", "stdout", "stderr"]).await[..] else {
                unreachable!()
            };
            let ping = s.ping().await;
            s.until_pong(ping).await;
            before = reset_peak(pid);
            let batch: Vec<u8> = (0..64 << 10).flat_map(|i| s.encode(&Frame::Ping(2 * i + 1001))).collect();
            for _ in 0..pings / (64 << 10) {
                s.write_raw(&batch).await;
            }
            s.write(stdin, b"through\n").await;
            s.until_contains(out, "got through\n").await;
        }
        let grew = status_mib(pid, "VmHWM").saturating_sub(before);
        eprintln!("{pings} pings unread grew the daemon's peak by {grew} MiB");
        assert!(grew < BOUND_MIB, "{pings} pings unread grew the daemon's peak by {grew} MiB");
    }
    c.remove_pod(&p).await;
}

#[tokio::test]
async fn port_forward_streams_past_the_cap_are_refused_and_the_others_go_on() {
    let (_d, mut c, logs) = setup().await;
    let marker = berth_integration::unique("served");
    let (p, _) = web_pod(&mut c, &logs, &marker).await;
    let req = PortForwardRequest { pod_sandbox_id: p.clone(), port: vec![8080] };
    let url = c.rt.port_forward(req).await.expect("PortForward").into_inner().url;
    let (mut s, _) = Spdy::connect(&url, &["portforward.k8s.io"]).await.expect("upgraded");
    // The first forward: half a request, so that its connection stays open.
    let (_, first) = s.forward("8080", "first").await;
    s.write(first, b"GET /index.html HTTP/1.0\r\n").await;
    s.until_answered(first).await;
    let cap = spdy::MAX_STREAMS;
    assert!(s.settings.contains(&(0, spdy::SETTINGS_MAX_CONCURRENT_STREAMS, cap)), "{:?}", s.settings);
    // Streams that never get their pair, up to the cap and past it.
    let mut waiting = Vec::new();
    for rid in 0..cap + 10 {
        waiting.push(s.open(&[("streamtype", "data"), ("port", "8080"), ("requestid", &rid.to_string())]).await);
    }
    for id in &waiting {
        s.until_answered(*id).await;
    }
    let refused: Vec<u32> =
        waiting.iter().copied().filter(|id| s.resets.contains(&(*id, spdy::REFUSED_STREAM))).collect();
    let within = (cap - 2) as usize;
    assert_eq!(refused, waiting[within..], "the first forward's two streams and {within} others are open");
    assert!(waiting[..within].iter().all(|id| s.replied.contains(id)));
    // The first forward goes on.
    s.write(first, b"\r\n").await;
    s.fin(first).await;
    s.until_finished(first).await;
    assert!(s.text(first).starts_with("HTTP/1.") && s.text(first).contains(&marker), "{}", s.text(first));
    // Streams the client resets are let go, and a new forward takes their place.
    for id in &waiting[..within] {
        s.send(Frame::RstStream { id: *id, status: spdy::CANCEL }).await;
    }
    let (err, data) = s.forward("8080", "again").await;
    s.write(data, b"GET /index.html HTTP/1.0\r\n\r\n").await;
    s.fin(data).await;
    s.until_finished(data).await;
    s.until_finished(err).await;
    assert!(s.text(data).contains(&marker), "{}", s.text(data));
    assert!(!s.resets.iter().any(|(id, _)| *id == data || *id == err));
    c.remove_pod(&p).await;
}

/// How many entries `/proc/<pid>/<dir>` holds (`fd`: open files, `task`: threads).
pub fn entries(pid: u32, dir: &str) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/{dir}")).unwrap().count() as u64
}

/// How many processes run with `word` in their command line.
fn processes(word: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.split(|b| *b == 0 || *b == b' ').any(|w| w == word.as_bytes()))
        })
        .count()
}

#[tokio::test]
async fn port_forwards_whose_streams_the_client_resets_are_let_go() {
    let (d, mut c, logs) = setup().await;
    // Every connection to port 9000 gets a banner, then a process that holds it open and
    // never reads or writes again: a forward to it ends only when the daemon ends it.
    let secs = format!("{}", 700_000 + u64::from(std::process::id() % 100_000));
    let script = format!("exec nc -ll -p 9000 -e sh -c 'echo banner; exec sleep {secs}'");
    let (p, id) = running(&mut c, &logs, &script).await;
    let wait = ["sh", "-c", "until netstat -ltn | grep -q ':9000 '; do usleep 10000; done"];
    assert_eq!(c.exec(&id, &wait, 60).await.expect("waiting for nc").exit_code, 0);
    let req = PortForwardRequest { pod_sandbox_id: p.clone(), port: vec![9000] };
    let url = c.rt.port_forward(req).await.expect("PortForward").into_inner().url;
    let (mut s, _) = Spdy::connect(&url, &["portforward.k8s.io"]).await.expect("upgraded");
    let pid = daemon_pid(&d);
    let (fds, threads) = (entries(pid, "fd"), entries(pid, "task"));
    // Three times as many pairs as the session may hold streams: each forward is let run
    // until the pod's side has answered, then both its streams are reset.
    let pairs = 3 * spdy::MAX_STREAMS;
    for rid in 0..pairs {
        let rid = rid.to_string();
        let (err, data) = s.forward("9000", &rid).await;
        s.until_contains(data, "banner\n").await;
        s.send(Frame::RstStream { id: data, status: spdy::CANCEL }).await;
        s.send(Frame::RstStream { id: err, status: spdy::CANCEL }).await;
    }
    // Control: every forward reached the pod's server (whose own command line names the
    // sleep too).
    let seen = stalls(|| processes(&secs) as u64).await;
    assert_eq!(seen, u64::from(pairs) + 1, "the pod's server saw every connection");
    let held = stalls(|| entries(pid, "fd")).await.saturating_sub(fds);
    let spawned = entries(pid, "task").saturating_sub(threads);
    eprintln!("{pairs} forwards reset: the daemon holds {held} more files and {spawned} more threads");
    assert!(held < 32, "the daemon holds {held} more files after {pairs} forwards were reset");
    assert!(spawned < 32, "the daemon runs {spawned} more threads after {pairs} forwards were reset");
    // The session goes on: a new forward works.
    let (err, data) = s.forward("9000", "last").await;
    s.until_contains(data, "banner\n").await;
    assert!(!s.resets.iter().any(|(id, _)| *id == data || *id == err));
    drop(s);
    c.remove_pod(&p).await;
}

/// The IDs of the container's running execs, as the Docker API inspects them.
fn exec_ids(d: &berth_integration::Daemon, id: &str) -> Vec<String> {
    let (code, body) = d.api("GET", &format!("/containers/{id}/json"), b"");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["ExecIDs"].as_array().map(|a| a.iter().map(|x| x.as_str().unwrap().to_string()).collect()).unwrap_or_default()
}

/// The host PID of the berth-shim that supervises container `id`.
fn shim_of(id: &str) -> rustix::process::Pid {
    let pid = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .find(|pid| {
            let cmd = String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default())
                .into_owned();
            cmd.contains("berth-shim") && cmd.contains(id)
        })
        .expect("the container's shim");
    rustix::process::Pid::from_raw(pid).unwrap()
}

#[tokio::test]
async fn an_exec_whose_client_went_is_let_go_even_if_its_output_never_ends() {
    let (d, mut c, logs) = setup().await;
    let (p, id) = running(&mut c, &logs, "exec sleep 100000").await;
    let secs = format!("{}", 500_000 + std::process::id() % 100_000);
    let script = format!("echo up; exec sleep {secs}");
    let url = exec_url(&mut c, exec_req(&id, &["sh", "-c", &script], false, false)).await;
    let (mut s, _) = Spdy::connect(&url, V4).await.expect("upgraded");
    let [_, out, _] = open_exec(&mut s, &["error", "stdout", "stderr"]).await[..] else { unreachable!() };
    s.until_contains(out, "up\n").await;
    // Control: the exec is seen while it runs.
    assert_eq!(exec_ids(&d, &id).len(), 1);
    // A shim that does not answer never reports the end of the exec's output.
    let shim = shim_of(&id);
    rustix::process::kill_process(shim, rustix::process::Signal::STOP).unwrap();
    let resume = Resume(shim);
    drop(s);
    let mut gone = false;
    for _ in 0..3000 {
        if exec_ids(&d, &id).is_empty() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(resume);
    assert!(gone, "the exec is still held a minute after its client went");
    c.remove_pod(&p).await;
}

/// Resumes a stopped process when dropped, so a failing test leaves nothing stopped.
struct Resume(rustix::process::Pid);

impl Drop for Resume {
    fn drop(&mut self) {
        let _ = rustix::process::kill_process(self.0, rustix::process::Signal::CONT);
    }
}
