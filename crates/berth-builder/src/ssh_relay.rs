//! The socket a `RUN --mount=type=ssh` step connects to. The build's agent socket (a relay
//! to buildx's session, or the CLI's own agent on this host) belongs to root and serves the
//! whole build; each mount gets a socket of its own, owned and permitted as the mount says
//! (`uid`, `gid`, `mode`; BuildKit's defaults 0, 0, 0600), that passes every connection
//! through to the build's agent. So a step running as another user reaches the agent only
//! if the mount hands it the socket, and only while the step runs.

use std::path::{Path, PathBuf};

use tokio::net::{UnixListener, UnixStream};

use crate::{BuildError, Result};

/// Connections one mount's socket relays at once; more wait in the listen queue.
const MAX_RELAYS: usize = 32;

/// A step's socket for one SSH mount; the relaying stops when it is dropped.
pub(crate) struct SshRelay {
    socket: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl SshRelay {
    /// Listens at `socket` (in a directory only root may enter), owned `uid`:`gid` with
    /// permissions `mode`, passing each connection on to `agent`.
    pub(crate) fn start(agent: &Path, socket: PathBuf, mode: u32, uid: u32, gid: u32) -> Result<SshRelay> {
        use std::os::unix::fs::PermissionsExt;
        let listener = UnixListener::bind(&socket).map_err(|e| BuildError::io("listening for the SSH mount", e))?;
        std::os::unix::fs::chown(&socket, Some(uid), Some(gid))
            .map_err(|e| BuildError::io("chown of the SSH mount's socket", e))?;
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(mode & 0o7777))
            .map_err(|e| BuildError::io("chmod of the SSH mount's socket", e))?;
        let agent = agent.to_path_buf();
        let task = tokio::spawn(async move {
            // Dropped with the accept loop: aborting the relay ends its connections too.
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    // Out of descriptors, say: what runs goes on; accept again shortly.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                };
                while conns.try_join_next().is_some() {}
                if conns.len() >= MAX_RELAYS {
                    continue;
                }
                let agent = agent.clone();
                conns.spawn(async move {
                    if let Ok(mut up) = UnixStream::connect(&agent).await {
                        let _ = tokio::io::copy_bidirectional(&mut conn, &mut up).await;
                    }
                });
            }
        });
        Ok(SshRelay { socket, task })
    }

    pub(crate) fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Drop for SshRelay {
    fn drop(&mut self) {
        self.task.abort();
        // The socket file lives in the step's secrets tmpfs, removed with it.
    }
}
