//! SSH agent forwarding through a client's session (`--ssh default|id=…`): the daemon
//! listens on a unix socket that a `RUN --mount=type=ssh` step gets, and relays every
//! connection to the agent the client forwards, as one `moby.sshforward.v1.SSH/ForwardAgent`
//! stream of `BytesMessage`s each way.
//!
//! # Contract
//!
//! - **The socket lives in a directory of its own, mode 0700**, owned by the daemon's user,
//!   and both go away when the [`AgentProxy`] is dropped; so do every relay still running.
//! - The agent's keys never pass through the daemon's memory for longer than one message,
//!   and nothing of them is written anywhere.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

use crate::grpc::{Code, Error, Result};
use crate::proto::{BytesMessage, CheckAgentRequest, CheckAgentResponse};
use crate::session::Session;

pub const CHECK_AGENT: &str = "/moby.sshforward.v1.SSH/CheckAgent";
pub const FORWARD_AGENT: &str = "/moby.sshforward.v1.SSH/ForwardAgent";
/// The most connections to the agent one build holds at once (each is a stream to the
/// client); one more is closed at once, as an agent that is busy would.
const MAX_RELAYS: usize = 64;
/// The gRPC metadata key that names the agent a forwarding stream is for.
const KEY_SSH_ID: &str = "buildkit.ssh.id";

/// Whether the client forwards an agent under `id`.
pub async fn has_agent(session: &Session, id: &str) -> bool {
    if !session.supports(CHECK_AGENT) || !session.supports(FORWARD_AGENT) {
        return false;
    }
    session.unary::<_, CheckAgentResponse>(CHECK_AGENT, &CheckAgentRequest { id: id.to_string() }).await.is_ok()
}

/// A socket that reaches the client's agent `id` for as long as it lives.
pub struct AgentProxy {
    dir: PathBuf,
    socket: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl AgentProxy {
    /// Listens in `dir` (made here, 0700; it must not exist).
    pub async fn start(session: Arc<Session>, id: &str, dir: PathBuf) -> Result<AgentProxy> {
        let io = |what: &str, e: std::io::Error| Error::status(Code::Internal, format!("{what}: {e}"));
        tokio::fs::create_dir(&dir).await.map_err(|e| io("creating the SSH agent directory", e))?;
        let made = async {
            tokio::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                .await
                .map_err(|e| io("chmod of the SSH agent directory", e))?;
            let socket = dir.join("agent.sock");
            let listener = UnixListener::bind(&socket).map_err(|e| io("listening for the SSH agent", e))?;
            Ok::<_, Error>((socket, listener))
        };
        let (socket, listener) = match made.await {
            Ok(v) => v,
            Err(e) => {
                let _ = tokio::fs::remove_dir_all(&dir).await;
                return Err(e);
            }
        };
        let id = id.to_string();
        let task = tokio::spawn(async move {
            // Dropped with the accept loop, so an aborted proxy ends its relays too.
            let mut relays = tokio::task::JoinSet::new();
            loop {
                match listener.accept().await {
                    Ok((conn, _)) => {
                        while relays.try_join_next().is_some() {}
                        if relays.len() < MAX_RELAYS {
                            relays.spawn(relay(session.clone(), id.clone(), conn));
                        }
                    }
                    // Out of descriptors, say: the relays running go on, and so does the
                    // socket once some are free.
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
                }
            }
        });
        Ok(AgentProxy { dir, socket, task })
    }

    /// The socket to give the build step.
    pub fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Drop for AgentProxy {
    fn drop(&mut self) {
        self.task.abort();
        // Nothing else holds the directory, and a failure only leaves an empty socket file
        // in the builder's scratch space, which is cleared at start.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Carries one connection to the client's agent and back until either side ends it. An
/// error on either side ends the relay, which is all there is to do: the step's SSH client
/// sees its connection close, as it would if the agent went away.
async fn relay(session: Arc<Session>, id: String, conn: UnixStream) {
    let Ok((mut tx, mut rx)) = session.call(FORWARD_AGENT, &[(KEY_SSH_ID.to_string(), id)]).await else { return };
    let (mut r, mut w) = conn.into_split();
    let up = async move {
        let mut buf = vec![0u8; 32 << 10];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(&BytesMessage { data: buf[..n].to_vec() }).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = tx.close();
    };
    let down = async move {
        while let Ok(Some(m)) = rx.message::<BytesMessage>().await {
            if w.write_all(&m.data).await.is_err() {
                break;
            }
        }
        let _ = w.shutdown().await;
    };
    tokio::join!(up, down);
}
