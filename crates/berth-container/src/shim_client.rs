//! Talking to a container's shim from the daemon (see berth-shim's protocol).

use std::path::Path;

use berth_shim::proto::{self, Request};
use serde::de::DeserializeOwned;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use crate::{ContainerError, Result};

fn unreachable_shim(path: &Path, e: std::io::Error) -> ContainerError {
    ContainerError::Internal(format!("the container's shim is not reachable ({}): {e}", path.display()))
}

/// Sends `req` and reads one JSON line back.
pub async fn call<T: DeserializeOwned>(socket: &Path, req: &Request) -> Result<T> {
    let mut s = UnixStream::connect(socket).await.map_err(|e| unreachable_shim(socket, e))?;
    let mut line = serde_json::to_vec(req).unwrap_or_default();
    line.push(b'\n');
    s.write_all(&line).await.map_err(|e| unreachable_shim(socket, e))?;
    let mut r = BufReader::new(s);
    let mut reply = String::new();
    r.read_line(&mut reply).await.map_err(|e| unreachable_shim(socket, e))?;
    serde_json::from_str(&reply).map_err(|e| ContainerError::Internal(format!("bad reply from shim: {e}: {reply:?}")))
}

/// A framed connection (attach or exec).
pub struct FramedConn {
    pub reader: BufReader<OwnedReadHalf>,
    pub writer: OwnedWriteHalf,
}

/// Opens a connection for `req`; when `reply_line` is set, first reads the JSON reply.
pub async fn open(socket: &Path, req: &Request, reply_line: bool) -> Result<(Option<proto::Reply>, FramedConn)> {
    let s = UnixStream::connect(socket).await.map_err(|e| unreachable_shim(socket, e))?;
    let (r, mut w) = s.into_split();
    let mut line = serde_json::to_vec(req).unwrap_or_default();
    line.push(b'\n');
    w.write_all(&line).await.map_err(|e| unreachable_shim(socket, e))?;
    let mut reader = BufReader::new(r);
    let reply = if reply_line {
        let mut l = String::new();
        reader.read_line(&mut l).await.map_err(|e| unreachable_shim(socket, e))?;
        Some(
            serde_json::from_str(&l)
                .map_err(|e| ContainerError::Internal(format!("bad reply from shim: {e}: {l:?}")))?,
        )
    } else {
        None
    };
    Ok((reply, FramedConn { reader, writer: w }))
}

/// Reads one frame; `None` at end of stream.
pub async fn read_frame<R: tokio::io::AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let mut h = [0u8; 5];
    match r.read_exact(&mut h).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes([h[1], h[2], h[3], h[4]]) as usize;
    let mut data = vec![0u8; len];
    r.read_exact(&mut data).await?;
    Ok(Some((h[0], data)))
}
