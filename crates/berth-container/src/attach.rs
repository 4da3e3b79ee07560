//! Attach sessions: a container's (or exec's) live streams as channels the API layer turns
//! into Docker's stream format.

use berth_shim::proto;
use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use crate::shim_client::{self, FramedConn};
use crate::state::Status;
use crate::{ContainerError, ContainerService, Result};

#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Stdout(Bytes),
    Stderr(Bytes),
    /// The process ended with this code; nothing follows.
    Exit(i32),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Data(Bytes),
    /// No more input.
    Close,
    Resize(u16, u16),
}

/// A live connection to a process's streams.
pub struct Session {
    pub tty: bool,
    pub output: mpsc::Receiver<Output>,
    /// Present when stdin was asked for and the process has one.
    pub input: Option<mpsc::Sender<Input>>,
}

#[derive(Debug, Clone, Copy)]
pub struct AttachOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// An attach that arrived before the container started.
pub(crate) struct Pending {
    pub opts: AttachOptions,
    pub out: mpsc::Sender<Output>,
    pub input: Option<mpsc::Receiver<Input>>,
}

/// Moves frames between a shim connection and session channels until the process ends.
/// Every output frame goes to each `(sender, stdout, stderr)` that wants it.
pub(crate) fn pump(
    conn: FramedConn,
    outs: Vec<(mpsc::Sender<Output>, bool, bool)>,
    input: Option<mpsc::Receiver<Input>>,
) {
    let FramedConn { mut reader, mut writer } = conn;
    // Without input the writing half is kept (unused) until the output ends: dropping it
    // would half-close the connection.
    let keep = if let Some(mut rx) = input {
        tokio::spawn(async move {
            while let Some(msg) = rx.recv().await {
                let f = match msg {
                    Input::Data(d) => proto::frame(proto::FRAME_STDIN, &d),
                    Input::Close => proto::frame(proto::FRAME_STDIN_CLOSE, &[]),
                    Input::Resize(h, w) => {
                        let mut p = h.to_be_bytes().to_vec();
                        p.extend_from_slice(&w.to_be_bytes());
                        proto::frame(proto::FRAME_RESIZE, &p)
                    }
                };
                if writer.write_all(&f).await.is_err() {
                    break;
                }
            }
        });
        None
    } else {
        Some(writer)
    };
    tokio::spawn(async move {
        let _keep = keep;
        let mut outs = outs;
        loop {
            // Once every reader has gone the connection is dropped: nothing is left open for
            // an attach whose client went away.
            let frame = tokio::select! {
                f = shim_client::read_frame(&mut reader) => f,
                _ = all_closed(&outs) => break,
            };
            let Ok(Some((kind, data))) = frame else { break };
            let msg = match kind {
                proto::FRAME_STDOUT => Output::Stdout(Bytes::from(data)),
                proto::FRAME_STDERR => Output::Stderr(Bytes::from(data)),
                proto::FRAME_EXIT => {
                    let code = data.get(..4).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]])).unwrap_or(0);
                    Output::Exit(code)
                }
                _ => continue,
            };
            let last = matches!(msg, Output::Exit(_));
            let mut keep = Vec::new();
            for (tx, so, se) in outs.drain(..) {
                let wanted = match &msg {
                    Output::Stdout(_) => so,
                    Output::Stderr(_) => se,
                    Output::Exit(_) => true,
                };
                if !wanted || tx.send(msg.clone()).await.is_ok() {
                    keep.push((tx, so, se));
                }
            }
            outs = keep;
            if last {
                break;
            }
        }
    });
}

/// Resolves once every sender's receiver is gone.
async fn all_closed(outs: &[(mpsc::Sender<Output>, bool, bool)]) {
    for (tx, _, _) in outs {
        tx.closed().await;
    }
}

impl ContainerService {
    /// Attaches to a container: live now if it runs, or from its start if it is created.
    pub async fn attach(&self, id: &str, opts: AttachOptions) -> Result<Session> {
        let e = self.get(id)?;
        let rec = e.record();
        let (out_tx, out_rx) = mpsc::channel(64);
        let want_stdin = opts.stdin && rec.config.open_stdin;
        let (in_tx, in_rx) = if want_stdin {
            let (t, r) = mpsc::channel(64);
            (Some(t), Some(r))
        } else {
            (None, None)
        };
        if rec.state.is_running() {
            let req = proto::Request::Attach { stdin: want_stdin, stdout: opts.stdout, stderr: opts.stderr };
            let (_, conn) = shim_client::open(&self.socket_path(&rec.id), &req, false).await?;
            pump(conn, vec![(out_tx, opts.stdout, opts.stderr)], in_rx);
        } else if matches!(rec.state.status(), Status::Created | Status::Exited | Status::Restarting) {
            // As in Docker, attaching to a container that is not running waits for its
            // next start (`docker start -a` attaches first, then starts).
            e.pending_attach.lock().unwrap_or_else(|p| p.into_inner()).push(Pending {
                opts,
                out: out_tx,
                input: in_rx,
            });
        } else {
            return Err(ContainerError::Conflict(format!("You cannot attach to a {} container", rec.state.status())));
        }
        Ok(Session { tty: rec.config.tty, output: out_rx, input: in_tx })
    }
}
