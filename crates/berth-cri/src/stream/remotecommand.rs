//! Exec and attach streams, as kubelet's remotecommand server serves them.
//!
//! The channels are stdin, stdout, stderr, an error channel and (with a tty) a resize channel.
//! On SPDY each is a stream the client opens, named by its `streamtype` header; on a WebSocket
//! each message starts with the channel's number (0 to 4). When the process ends its output is
//! closed and the error channel carries how it ended: with `v4` and later a JSON
//! `metav1.Status` (`Success`, or `Failure` with reason `NonZeroExitCode` and an `ExitCode`
//! cause); before `v4` only a failure's message. Resize messages are JSON `{"Width","Height"}`.
//! With `v5` on a WebSocket, the message `[255, 0]` closes stdin.
//!
//! The process is berth-container's: an exec made and started as `docker exec` makes it (and
//! forgotten after), or an attach to the container's own streams. A client that goes away
//! before the process ends leaves nothing behind: the exec is killed and reaped (its output
//! drained for [`DRAIN_TIMEOUT`] at most), the attach dropped.
//!
//! Output goes out as the client takes it: while it does not, the process's output is not
//! read and an exec blocks on its pipe (berth-shim stops reading an exec whose reader is
//! behind). Input is taken as the process takes it: while it does not, the client's streams
//! are not read. The two directions wait independently.

use std::time::Duration;

use berth_api::models::ExecCreateRequest;
use berth_container::attach::{AttachOptions, Input, Output, Session};
use bytes::Bytes;
use serde_json::json;
use tokio::sync::mpsc;

use super::{Upgraded, spdy, ws};
use crate::Cri;

/// The SPDY subprotocols served, newest first (`v5` is `v4` on SPDY).
pub const SPDY_PROTOCOLS: &[&str] =
    &["v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"];
/// The WebSocket subprotocols served.
pub const WS_PROTOCOLS: &[&str] =
    &["v5.channel.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io", "channel.k8s.io", "base64.channel.k8s.io"];

/// The streams asked for in the CRI request.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// How long a killed exec's output is drained once its client has gone. The shim ends an
/// exec's streams 2 s after its process exits even if a child still holds them, so this
/// bounds only what cannot be killed (a process in uninterruptible sleep) or a shim that does
/// not answer; containerd's `drain_exec_sync_io_timeout` does the same for its execs.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Input messages between the client's streams and the process.
const INPUT_QUEUE: usize = 4;
/// The most a resize stream may hold that is not yet a whole size: one is some 30 bytes.
const MAX_RESIZE_PENDING: usize = 4 << 10;

/// What runs at the other end.
pub enum Target {
    /// A new process in the container: its ID and the command.
    Exec(String, Vec<String>),
    /// The container's own process.
    Attach(String),
}

/// What the client sends, from either transport.
enum In {
    Stdin(Bytes),
    StdinEnd,
    Resize { width: u16, height: u16 },
}

#[derive(Clone, Copy)]
enum Chan {
    Stdout = 1,
    Stderr = 2,
    Error = 3,
}

/// Where output goes, on either transport.
enum Sink {
    /// The SPDY streams of stdout, stderr and error, when opened.
    Spdy {
        out: spdy::Out,
        ids: [Option<u32>; 3],
    },
    Ws {
        out: ws::Out,
        codec: ws::Codec,
    },
}

/// The client can take nothing more.
struct Gone;

impl Sink {
    /// Sends `data` on channel `c` as the client takes it.
    async fn write(&self, c: Chan, data: &[u8]) -> Result<(), Gone> {
        match self {
            Sink::Spdy { out, ids } => {
                if let Some(id) = ids[c as usize - 1] {
                    out.data(id, data).await.map_err(|_| Gone)?;
                }
            }
            Sink::Ws { out, codec } => {
                for chunk in data.chunks(spdy::MAX_DATA) {
                    let (op, payload) = codec.message(c as u8, chunk);
                    out.send(op, payload).await.map_err(|_| Gone)?;
                }
            }
        }
        Ok(())
    }

    async fn close(&self, c: Chan) {
        if let Sink::Spdy { out, ids } = self
            && let Some(id) = ids[c as usize - 1]
        {
            out.fin(id).await;
        }
    }

    /// Resolves once the client has gone.
    async fn gone(&self) {
        match self {
            Sink::Spdy { out, .. } => out.closed().await,
            Sink::Ws { out, .. } => out.closed().await,
        }
    }
}

/// How the process ended, for the error channel.
enum Outcome {
    Success,
    ExitCode(i32),
    Internal(String),
}

/// The error channel's message: JSON from `v4` on, before that a failure's text only.
fn status(o: &Outcome, cmd: &[String], v4: bool) -> Vec<u8> {
    let (v, text) = match o {
        Outcome::Success => (json!({"metadata": {}, "status": "Success"}), String::new()),
        Outcome::ExitCode(code) => {
            let msg =
                format!("command terminated with non-zero exit code: command '{}' exited with {code}", cmd.join(" "));
            let v = json!({
                "metadata": {},
                "status": "Failure",
                "message": msg,
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
            });
            (v, msg)
        }
        Outcome::Internal(err) => {
            let msg = format!("Internal error occurred: {err}");
            let v = json!({
                "metadata": {},
                "status": "Failure",
                "message": msg,
                "reason": "InternalError",
                "details": {"causes": [{"message": err}]},
                "code": 500,
            });
            (v, msg)
        }
    };
    if v4 { v.to_string().into_bytes() } else { text.into_bytes() }
}

/// JSON terminal sizes as they arrive in pieces: whole objects out, the rest kept.
#[derive(Default)]
struct Sizes(Vec<u8>);

#[derive(serde::Deserialize)]
struct TerminalSize {
    #[serde(rename = "Width", default)]
    width: u16,
    #[serde(rename = "Height", default)]
    height: u16,
}

/// A resize stream that holds more than [`MAX_RESIZE_PENDING`] without a whole size.
#[derive(Debug)]
struct Oversized;

impl Sizes {
    fn push(&mut self, data: &[u8]) -> Result<Vec<In>, Oversized> {
        self.0.extend_from_slice(data);
        let mut it = serde_json::Deserializer::from_slice(&self.0).into_iter::<TerminalSize>();
        let mut sizes = Vec::new();
        loop {
            match it.next() {
                Some(Ok(s)) => sizes.push(In::Resize { width: s.width, height: s.height }),
                Some(Err(e)) if e.is_eof() => break,
                Some(Err(_)) => {
                    self.0.clear();
                    return Ok(sizes);
                }
                None => break,
            }
        }
        let used = it.byte_offset();
        self.0.drain(..used);
        if self.0.len() > MAX_RESIZE_PENDING {
            return Err(Oversized);
        }
        Ok(sizes)
    }
}

async fn next(r: &mut Option<spdy::Incoming>) -> Option<Bytes> {
    match r {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

/// The client's stdin and resize streams as one input, which ends with them. A resize
/// stream that sends what is not a size is no longer read (what it sends later is dropped).
async fn spdy_input(mut stdin: Option<spdy::Incoming>, mut resize: Option<spdy::Incoming>, tx: mpsc::Sender<In>) {
    let mut sizes = Sizes::default();
    while stdin.is_some() || resize.is_some() {
        let msgs = tokio::select! {
            d = next(&mut stdin) => match d {
                Some(b) => vec![In::Stdin(b)],
                None => {
                    stdin = None;
                    vec![In::StdinEnd]
                }
            },
            d = next(&mut resize) => match d.map(|b| sizes.push(&b)) {
                Some(Ok(s)) => s,
                Some(Err(Oversized)) | None => {
                    resize = None;
                    Vec::new()
                }
            },
            _ = tx.closed() => return,
        };
        for m in msgs {
            if tx.send(m).await.is_err() {
                return;
            }
        }
    }
}

/// The client's messages as input, which ends when the WebSocket does.
async fn ws_input(mut messages: mpsc::Receiver<ws::Message>, codec: ws::Codec, tx: mpsc::Sender<In>) {
    let mut sizes = Some(Sizes::default());
    while let Some(m) = messages.recv().await {
        let msgs = match codec.parse(&m.data) {
            Some((0, data)) => vec![In::Stdin(data.into())],
            Some((4, data)) => match sizes.as_mut().map(|s| s.push(&data)) {
                Some(Ok(s)) => s,
                Some(Err(Oversized)) => {
                    sizes = None;
                    Vec::new()
                }
                None => Vec::new(),
            },
            // v5's close signal, for stdin.
            Some((255, data)) if data.first() == Some(&0) => vec![In::StdinEnd],
            _ => Vec::new(),
        };
        for m in msgs {
            if tx.send(m).await.is_err() {
                return;
            }
        }
    }
}

/// Serves one exec or attach on an upgraded connection, to its end.
pub async fn serve(cri: &Cri, target: Target, opts: Options, up: Upgraded) {
    let (tx, input) = mpsc::channel(INPUT_QUEUE);
    match up {
        Upgraded::Spdy { mut conn, protocol } => {
            let v4 = protocol.starts_with("v4.") || protocol.starts_with("v5.");
            let resizable = v4 || protocol.starts_with("v3.");
            let expected =
                1 + [opts.stdin, opts.stdout, opts.stderr, opts.tty && resizable].iter().filter(|b| **b).count();
            let (mut ids, mut stdin, mut resize, mut got) = ([None; 3], None, None, 0);
            let deadline = tokio::time::sleep(super::STREAM_CREATION_TIMEOUT);
            tokio::pin!(deadline);
            while got < expected {
                let s = tokio::select! {
                    s = conn.streams.recv() => match s {
                        Some(s) => s,
                        None => return,
                    },
                    _ = &mut deadline => return,
                };
                match spdy::header(&s.headers, "streamtype").unwrap_or_default() {
                    "error" => ids[Chan::Error as usize - 1] = Some(s.id),
                    "stdout" => ids[Chan::Stdout as usize - 1] = Some(s.id),
                    "stderr" => ids[Chan::Stderr as usize - 1] = Some(s.id),
                    "stdin" => stdin = Some(s.data),
                    "resize" => resize = Some(s.data),
                    _ => {
                        conn.out.reset(s.id, spdy::REFUSED_STREAM).await;
                        continue;
                    }
                }
                got += 1;
            }
            // Streams opened after these are refused.
            drop(conn.streams);
            tokio::spawn(spdy_input(stdin, resize, tx));
            let sink = Sink::Spdy { out: conn.out.clone(), ids };
            run(cri, target, opts, &sink, input, v4).await;
            conn.tasks.close().await;
        }
        Upgraded::Ws { conn, protocol } => {
            let codec = if protocol.contains("base64") { ws::Codec::Base64 } else { ws::Codec::Binary };
            let v4 = protocol.starts_with("v4.") || protocol.starts_with("v5.");
            let sink = Sink::Ws { out: conn.out.clone(), codec };
            // An empty message on the first channel written tells the client all is set up.
            let first = if opts.stdout {
                Chan::Stdout
            } else if opts.stderr {
                Chan::Stderr
            } else {
                Chan::Error
            };
            let (op, payload) = codec.message(first as u8, &[]);
            let _ = conn.out.send(op, payload).await;
            tokio::spawn(ws_input(conn.messages, codec, tx));
            run(cri, target, opts, &sink, input, v4).await;
            conn.tasks.close().await;
        }
    }
}

async fn run(cri: &Cri, target: Target, opts: Options, sink: &Sink, input: mpsc::Receiver<In>, v4: bool) {
    let (outcome, cmd) = match target {
        Target::Exec(id, cmd) => (exec(cri, &id, &cmd, opts, sink, input).await, cmd),
        Target::Attach(id) => (attach(cri, &id, opts, sink, input).await, Vec::new()),
    };
    // A client that went away hears nothing more.
    let Some(outcome) = outcome else { return };
    let finish = async {
        sink.close(Chan::Stdout).await;
        sink.close(Chan::Stderr).await;
        let msg = status(&outcome, &cmd, v4);
        if !msg.is_empty() {
            let _ = sink.write(Chan::Error, &msg).await;
        }
        sink.close(Chan::Error).await;
    };
    // A client that reads nothing more (or grants no window) is not waited for long.
    let _ = tokio::time::timeout(super::tasks::CLOSE_TIMEOUT, finish).await;
}

/// How the streams ended.
enum Ended {
    Exit(i32),
    /// The output ended without an exit code.
    Closed,
    /// The client went away.
    Gone,
}

enum Resize<'a> {
    Exec(&'a str),
    Container(&'a str),
}

/// Moves output to the client and input to the process, each direction at its own pace,
/// until the process ends or the client goes.
async fn pump(
    cri: &Cri,
    session: &mut Session,
    sink: &Sink,
    input: &mut mpsc::Receiver<In>,
    resize: Resize<'_>,
) -> Ended {
    let Session { output, input: stdin, .. } = session;
    let out = async {
        loop {
            let sent = match output.recv().await {
                Some(Output::Stdout(b)) => sink.write(Chan::Stdout, &b).await,
                Some(Output::Stderr(b)) => sink.write(Chan::Stderr, &b).await,
                Some(Output::Exit(code)) => return Ended::Exit(code),
                None => return Ended::Closed,
            };
            if sent.is_err() {
                return Ended::Gone;
            }
        }
    };
    let inp = async {
        while let Some(msg) = input.recv().await {
            match msg {
                In::Stdin(b) => {
                    if let Some(tx) = &stdin {
                        let _ = tx.send(Input::Data(b)).await;
                    }
                }
                In::StdinEnd => {
                    if let Some(tx) = &stdin {
                        let _ = tx.send(Input::Close).await;
                    }
                }
                In::Resize { width, height } if width > 0 && height > 0 => {
                    // A resize that fails (the process just ended) changes nothing.
                    let _ = match resize {
                        Resize::Exec(id) => cri.containers.exec_resize(id, height, width).await,
                        Resize::Container(id) => cri.containers.resize(id, height, width).await,
                    };
                }
                In::Resize { .. } => {}
            }
        }
        // The client sends nothing more; its output goes on.
        std::future::pending::<Ended>().await
    };
    tokio::select! {
        e = out => e,
        e = inp => e,
        _ = sink.gone() => Ended::Gone,
    }
}

async fn exec(
    cri: &Cri,
    id: &str,
    cmd: &[String],
    opts: Options,
    sink: &Sink,
    mut input: mpsc::Receiver<In>,
) -> Option<Outcome> {
    let svc = &cri.containers;
    let req = ExecCreateRequest {
        cmd: cmd.to_vec(),
        tty: opts.tty,
        attach_stdin: opts.stdin,
        attach_stdout: opts.stdout,
        attach_stderr: opts.stderr,
        ..Default::default()
    };
    let exec_id = match svc.exec_create(id, req) {
        Ok(x) => x,
        Err(e) => return Some(Outcome::Internal(format!("error executing command in container: {e}"))),
    };
    let mut session = match svc.exec_start(&exec_id, false, opts.tty, None).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            svc.exec_forget(&exec_id);
            return Some(Outcome::Internal(format!("exec {exec_id} started without its streams")));
        }
        Err(e) => {
            svc.exec_forget(&exec_id);
            return Some(Outcome::Internal(format!("error executing command in container: {e}")));
        }
    };
    let outcome = match pump(cri, &mut session, sink, &mut input, Resize::Exec(&exec_id)).await {
        Ended::Exit(0) => Some(Outcome::Success),
        Ended::Exit(code) => Some(Outcome::ExitCode(code)),
        Ended::Closed => Some(Outcome::Internal(format!("exec {exec_id} ended without an exit code"))),
        Ended::Gone => {
            // Nobody reads the process any more: it is killed, and reaped before it is forgotten.
            svc.exec_kill(&exec_id);
            let drain = async { while session.output.recv().await.is_some() {} };
            // Past the bound the session is dropped, and the shim's connection with it.
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, drain).await;
            None
        }
    };
    svc.exec_forget(&exec_id);
    outcome
}

async fn attach(cri: &Cri, id: &str, opts: Options, sink: &Sink, mut input: mpsc::Receiver<In>) -> Option<Outcome> {
    // berth-container would wait for a stopped container's next start; the CRI refuses.
    match cri.containers.get(id) {
        Ok(e) if e.record().state.is_running() => {}
        Ok(_) => return Some(Outcome::Internal(format!("container {id} is not running"))),
        Err(e) => return Some(Outcome::Internal(e.to_string())),
    }
    let ao = AttachOptions { stdin: opts.stdin, stdout: opts.stdout, stderr: opts.stderr };
    let mut session = match cri.containers.attach(id, ao).await {
        Ok(s) => s,
        Err(e) => return Some(Outcome::Internal(format!("error attaching to container: {e}"))),
    };
    match pump(cri, &mut session, sink, &mut input, Resize::Container(id)).await {
        Ended::Exit(_) | Ended::Closed => Some(Outcome::Success),
        Ended::Gone => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_statuses_carry_the_exit_code_and_older_ones_only_failures() {
        let cmd = ["sh".to_string(), "-c".into(), "exit 3".into()];
        let v: serde_json::Value = serde_json::from_slice(&status(&Outcome::ExitCode(3), &cmd, true)).unwrap();
        assert_eq!(v["status"], "Failure");
        assert_eq!(v["reason"], "NonZeroExitCode");
        assert_eq!(v["details"]["causes"][0], json!({"reason": "ExitCode", "message": "3"}));
        assert_eq!(status(&Outcome::Success, &cmd, true), br#"{"metadata":{},"status":"Success"}"#);
        assert!(status(&Outcome::Success, &cmd, false).is_empty());
        assert!(String::from_utf8(status(&Outcome::ExitCode(3), &cmd, false)).unwrap().contains("exited with 3"));
    }

    #[test]
    fn sizes_are_read_across_pieces() {
        let mut s = Sizes::default();
        assert!(s.push(br#"{"Width":80,"#).unwrap().is_empty());
        let got = s.push(b"\"Height\":24}\n{\"Width\":100,\"Height\":30}{\"Wi").unwrap();
        let got: Vec<(u16, u16)> =
            got.iter().map(|i| if let In::Resize { width, height } = i { (*width, *height) } else { (0, 0) }).collect();
        assert_eq!(got, [(80, 24), (100, 30)]);
        assert_eq!(s.0, br#"{"Wi"#);
    }

    #[test]
    fn a_resize_stream_without_an_end_is_refused() {
        let mut s = Sizes::default();
        let open = format!("{{\"Width\":80,\"Height\":{}", " ".repeat(MAX_RESIZE_PENDING));
        assert!(s.push(open.as_bytes()).is_err());
        // Below the bound it waits for the rest.
        let mut s = Sizes::default();
        let open = format!("{{{}", " ".repeat(MAX_RESIZE_PENDING - 1));
        assert!(s.push(open.as_bytes()).unwrap().is_empty());
        assert!(s.push(&[b' '; 2]).is_err());
    }
}
