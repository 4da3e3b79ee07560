//! Memory as an attack surface: what one client sends must not make the daemon hold memory
//! in proportion to it. Each test resets the daemon's peak resident size
//! (/proc/PID/clear_refs), sends the attack, and reads the peak again (VmHWM).

use std::io::Write;

use berth_integration::Daemon;

fn daemon_pid(d: &Daemon) -> u32 {
    std::fs::read_to_string(d.exec_root().join("berth.pid")).unwrap().trim().parse().unwrap()
}

/// Resets the daemon's peak resident size to its current size.
fn reset_peak(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
}

/// A size from the daemon's /proc status (`VmHWM`: the peak since the last reset; `VmRSS`),
/// in MiB.
fn status_mib(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap()
        .trim_start_matches(':')
        .trim()
        .trim_end_matches(" kB")
        .parse()
        .unwrap();
    kb >> 10
}

#[test]
fn load_keeps_a_bounded_amount_of_an_archive_in_memory() {
    let d = Daemon::with_busybox();
    // Twelve 16 MiB entries that are not layers (text: not compressed, not a tar).
    let path = d.dir.path().join("junk.tar");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    const SIZE: u64 = 16 << 20;
    let chunk = vec![b'x'; 1 << 20];
    for i in 0..12 {
        f.write_all(&berth_integration::raw_tar_header(format!("junk{i}").as_bytes(), SIZE)).unwrap();
        for _ in 0..SIZE >> 20 {
            f.write_all(&chunk).unwrap();
        }
    }
    f.write_all(&[0u8; 1024]).unwrap();
    f.into_inner().unwrap().sync_all().unwrap();
    let pid = daemon_pid(&d);
    let before = status_mib(pid, "VmRSS");
    reset_peak(pid);
    let err = d.berth(&["load", "-i", &path.display().to_string()]).fails();
    let grew = status_mib(pid, "VmHWM").saturating_sub(before);
    assert!(err.contains("invalid archive"), "{err}");
    // Control: the archive is 192 MiB; all of it used to be kept.
    assert!(grew < 100, "the daemon's peak grew by {grew} MiB loading 192 MiB of junk");
}

#[test]
fn a_huge_request_body_is_refused_without_being_held() {
    let d = Daemon::with_busybox();
    let pid = daemon_pid(&d);
    // 64 MiB of JSON: one environment variable.
    let mut body = br#"{"Image":"busybox","Env":["A="#.to_vec();
    body.resize(body.len() + (64 << 20), b'x');
    body.extend_from_slice(br#""]}"#);
    let before = status_mib(pid, "VmRSS");
    reset_peak(pid);
    let (status, text) = d.api("POST", "/containers/create", &body);
    let grew = status_mib(pid, "VmHWM").saturating_sub(before);
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("larger than 16 MiB"), "{text}");
    assert!(grew < 48, "the daemon's peak grew by {grew} MiB for a 64 MiB body");
    // Control: a create of ordinary size works.
    let (status, text) = d.api("POST", "/containers/create", br#"{"Image":"busybox","Cmd":["true"],"Env":["A=b"]}"#);
    assert_eq!(status, 201, "{text}");
}

#[test]
fn small_json_values_cannot_multiply_in_the_daemons_memory() {
    let d = Daemon::with_busybox();
    let pid = daemon_pid(&d);
    // Under the body limit, but 7.5 million values: each became a 32-byte (or larger)
    // value in memory before the body was typed, some 300 MB per request.
    let mut body = br#"{"Image":"busybox","Env":["#.to_vec();
    while body.len() < (15 << 20) {
        body.extend_from_slice(b"0,");
    }
    body.extend_from_slice(b"0]}");
    let before = status_mib(pid, "VmRSS");
    reset_peak(pid);
    std::thread::scope(|s| {
        let sent: Vec<_> = (0..4).map(|_| s.spawn(|| d.api("POST", "/containers/create", &body))).collect();
        for t in sent {
            let (status, text) = t.join().unwrap();
            assert_eq!(status, 400, "{text}");
            assert!(text.contains("more than"), "{text}");
        }
    });
    let grew = status_mib(pid, "VmHWM").saturating_sub(before);
    // Four bodies are 60 MiB, held as read and again as one buffer each: about 120 MiB.
    // Typed through values, each used to take some 300 MB more.
    assert!(grew < 200, "the daemon's peak grew by {grew} MiB for four 15 MiB bodies");
    // Control: a create with a long environment of ordinary values works.
    let env: Vec<String> = (0..5000).map(|i| format!("\"V{i}=x\"")).collect();
    let ok = format!(r#"{{"Image":"busybox","Cmd":["true"],"Env":[{}]}}"#, env.join(","));
    let (status, text) = d.api("POST", "/containers/create", ok.as_bytes());
    assert_eq!(status, 201, "{text}");
}

#[test]
fn an_image_reference_filter_cannot_make_the_daemon_backtrack() {
    let d = Daemon::with_busybox();
    let name = "a".repeat(60);
    d.berth(&["tag", "busybox", &name]).ok();
    // 20 stars against 60 letters: C(60, 20) ways to split for a backtracking matcher.
    let pattern = "*a".repeat(20) + "b";
    let filters = format!(r#"{{"reference":["{pattern}"]}}"#);
    let q: String = filters.bytes().map(|b| format!("%{b:02X}")).collect();
    let (status, text) = d.api("GET", &format!("/images/json?filters={q}"), b"");
    assert_eq!((status, text.trim()), (200, "[]"));
    // Control: a pattern of the same shape that matches finds the image.
    let filters = format!(r#"{{"reference":["{}"]}}"#, "*a".repeat(20));
    let q: String = filters.bytes().map(|b| format!("%{b:02X}")).collect();
    let (status, text) = d.api("GET", &format!("/images/json?filters={q}"), b"");
    assert_eq!(status, 200);
    assert!(text.contains(&name), "{text}");
}

/// A connection to BuildKit's `/grpc` (HTTP/1.1 upgraded to h2c), as buildx opens it.
async fn grpc_connection(d: &Daemon) -> h2::client::SendRequest<bytes::Bytes> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::UnixStream::connect(&d.socket).await.unwrap();
    s.write_all(b"POST /grpc HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n").await.unwrap();
    // The 101 answer, read a byte at a time so nothing of HTTP/2 is read with it.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(s.read_u8().await.unwrap());
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    let (send, conn) = h2::client::handshake(s).await.unwrap();
    tokio::spawn(conn);
    send
}

/// One gRPC message frame of a `SolveRequest` naming `frontend`, padded to `len` bytes by
/// an unknown field (which decoding skips, as protobuf does).
fn solve_frame(frontend: &str, len: usize) -> bytes::Bytes {
    let mut m = vec![0x32, frontend.len() as u8];
    m.extend_from_slice(frontend.as_bytes());
    // Field 1000, bytes: its tag (two varint bytes) and a four-byte length.
    let pad = len - m.len() - 2 - 4;
    m.extend_from_slice(&[0xc2, 0x3e]);
    m.extend_from_slice(&[
        (pad as u8) | 0x80,
        ((pad >> 7) as u8) | 0x80,
        ((pad >> 14) as u8) | 0x80,
        (pad >> 21) as u8,
    ]);
    m.resize(len, b'x');
    let mut f = vec![0];
    f.extend_from_slice(&(len as u32).to_be_bytes());
    f.extend_from_slice(&m);
    f.into()
}

/// Sends `data` on `tx` as the peer's window allows; `Err` when the peer closed or reset
/// the stream.
async fn send_all(tx: &mut h2::SendStream<bytes::Bytes>, mut data: bytes::Bytes) -> Result<(), String> {
    while !data.is_empty() {
        tx.reserve_capacity(data.len());
        let n = match std::future::poll_fn(|cx| tx.poll_capacity(cx)).await {
            Some(Ok(n)) => n,
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("the stream was closed".into()),
        };
        let chunk = data.split_to(n.min(data.len()));
        tx.send_data(chunk, false).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// A call to the control API's Solve; its `grpc-status` and `grpc-message` when it has
/// been answered.
fn solve_request() -> http::Request<()> {
    http::Request::post("http://berth/moby.buildkit.v1.Control/Solve")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap()
}

async fn grpc_status(resp: h2::client::ResponseFuture) -> (String, String) {
    let mut resp = resp.await.unwrap();
    let mut h = resp.headers().clone();
    if !h.contains_key("grpc-status") {
        while resp.body_mut().data().await.is_some() {}
        h = resp.body_mut().trailers().await.unwrap().unwrap_or_default();
    }
    let get = |k: &str| h.get(k).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (get("grpc-status"), get("grpc-message"))
}

/// Issue 15: BuildKit's API allowed 16 MiB per message on each of 128 streams of one
/// connection, so a client could make the daemon hold 2 GiB of partial messages. A
/// connection's calls now share 64 MiB.
#[test]
fn buildkit_calls_on_one_connection_share_a_bounded_budget() {
    let d = Daemon::start();
    let pid = daemon_pid(&d);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let mut ch = grpc_connection(&d).await;
        // 32 calls that each send all but the last byte of a 15 MiB message: 480 MiB.
        const LEN: usize = 15 << 20;
        let whole = solve_frame("none", LEN);
        let partial = whole.slice(..whole.len() - 1);
        let before = status_mib(pid, "VmRSS");
        reset_peak(pid);
        let (mut held, mut refused) = (Vec::new(), Vec::new());
        for _ in 0..32 {
            ch = ch.ready().await.unwrap();
            let (resp, mut tx) = ch.send_request(solve_request(), false).unwrap();
            match send_all(&mut tx, partial.clone()).await {
                Ok(()) => held.push((resp, tx)),
                Err(_) => refused.push(grpc_status(resp).await),
            }
        }
        let grew = status_mib(pid, "VmHWM").saturating_sub(before);
        eprintln!("held {} calls, {} refused, peak grew by {grew} MiB", held.len(), refused.len());
        assert_eq!(held.len(), 4, "64 MiB holds four 15 MiB messages");
        for (code, message) in &refused {
            eprintln!("refused: {code} {message}");
            assert_eq!(code, "8", "RESOURCE_EXHAUSTED: {message}");
            assert!(message.contains("limit of 64 MiB"), "{message}");
        }
        assert!(grew < 128, "the daemon's peak grew by {grew} MiB for 480 MiB of partial messages");
        drop(held);
        // Control: on a new connection a whole 15 MiB request (a buildx Solve is a few KiB)
        // is taken and decoded: the answer is about its frontend.
        let mut ch = grpc_connection(&d).await.ready().await.unwrap();
        let (resp, mut tx) = ch.send_request(solve_request(), false).unwrap();
        send_all(&mut tx, whole).await.unwrap();
        tx.send_data(bytes::Bytes::new(), true).unwrap();
        let (code, message) = grpc_status(resp).await;
        assert_eq!(code, "12", "{message}");
        assert!(message.contains("frontend \"none\" is not supported"), "{message}");
    });
}
