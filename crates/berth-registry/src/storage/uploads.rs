//! Upload sessions: `repositories/<name>/_uploads/<uuid>/`.
//!
//! A session's offset is the length of its `data` file. Appends stream through an
//! [`UploadWriter`]; a failed append is truncated back to where it started, so the offset a
//! client sees only ever moves by whole chunks. Committing verifies the digest, fsyncs, and
//! renames `data` into `blobs/`; a mismatch deletes the session, so nothing unverified is kept.
//! The disk writes start while the data streams in (see [`berth_archive::writeback`]), so
//! the commit's fsync of a large blob mostly finds them done.

use super::{Storage, now_unix, random_id, remove_all};
use crate::error::{ErrorCode, RegistryError, Result};
use crate::names::{Digest, Hasher};
use berth_archive::writeback::Writeback;
use std::fs;
use std::io::Read;
use std::path::PathBuf;
use tokio::io::AsyncWriteExt;

/// An append in progress. Call [`UploadWriter::finish`] or [`UploadWriter::abort`].
pub struct UploadWriter {
    path: PathBuf,
    file: tokio::io::BufWriter<tokio::fs::File>,
    start: u64,
    written: u64,
    /// Starts the disk writes of what has arrived, so the commit's fsync waits for little.
    writeback: Writeback,
}

/// The append buffer; the file may trail what was written by it and one write in flight.
const BUFFER: usize = 256 * 1024;

impl Storage {
    /// Starts a session and returns its id.
    pub fn create_upload(&self, name: &str) -> Result<String> {
        let id = random_id();
        let dir = self.upload_dir(name, &id);
        let ctx = |e| RegistryError::io("create upload", e);
        fs::create_dir_all(&dir).map_err(ctx)?;
        fs::write(dir.join("startedat"), now_unix().to_string()).map_err(ctx)?;
        fs::File::create(dir.join("data")).map_err(ctx)?;
        Ok(id)
    }

    /// Bytes received so far; `None` if there is no such session.
    pub fn upload_size(&self, name: &str, id: &str) -> Result<Option<u64>> {
        match fs::metadata(self.upload_dir(name, id).join("data")) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(RegistryError::io("stat upload", e)),
        }
    }

    /// Opens a session for appending; `None` if there is no such session.
    pub async fn open_upload(&self, name: &str, id: &str) -> Result<Option<UploadWriter>> {
        let path = self.upload_dir(name, id).join("data");
        let file = match tokio::fs::OpenOptions::new().append(true).open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(RegistryError::io("open upload", e)),
        };
        let start = file.metadata().await.map_err(|e| RegistryError::io("stat upload", e))?.len();
        let file = tokio::io::BufWriter::with_capacity(BUFFER, file);
        Ok(Some(UploadWriter {
            path,
            file,
            start,
            written: 0,
            writeback: Writeback::at(start).behind(4 * BUFFER as u64),
        }))
    }

    /// Deletes a session; false if there was none.
    pub fn cancel_upload(&self, name: &str, id: &str) -> Result<bool> {
        let dir = self.upload_dir(name, id);
        if !dir.is_dir() {
            return Ok(false);
        }
        remove_all(&dir).map_err(|e| RegistryError::io("remove upload", e))?;
        Ok(true)
    }

    /// Verifies that the session's bytes have digest `expected` and makes them blob
    /// `expected`, linked into `name`. `known` is a digest computed while the bytes streamed
    /// in, with the length it covers; it is trusted only if that length is the file's length
    /// and the algorithm matches, else the file is hashed again. Blocking: call off the runtime.
    ///
    /// On a mismatch the session is deleted and `DIGEST_INVALID` returned.
    pub fn commit_upload(&self, name: &str, id: &str, expected: &Digest, known: Option<(Digest, u64)>) -> Result<u64> {
        let dir = self.upload_dir(name, id);
        let data = dir.join("data");
        let unknown = || RegistryError::api(ErrorCode::BlobUploadUnknown, "blob upload unknown to registry");
        let file = match fs::File::open(&data) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(unknown()),
            Err(e) => return Err(RegistryError::io("open upload", e)),
        };
        let size = file.metadata().map_err(|e| RegistryError::io("stat upload", e))?.len();
        let actual = match known {
            Some((d, len)) if len == size && d.algorithm == expected.algorithm => d,
            _ => hash_file(file, Hasher::new(expected.algorithm)).map_err(|e| RegistryError::io("hash upload", e))?,
        };
        if &actual != expected {
            // The digest error is what is returned; the session is unusable either way.
            if let Err(e) = remove_all(&dir) {
                tracing::warn!(upload = %dir.display(), "removing an upload whose digest did not match: {e}");
            }
            return Err(RegistryError::with_detail(
                ErrorCode::DigestInvalid,
                "provided digest did not match uploaded content",
                serde_json::json!({ "expected": expected.to_string(), "actual": actual.to_string() }),
            ));
        }
        fs::File::open(&data).and_then(|f| f.sync_all()).map_err(|e| RegistryError::io("fsync upload", e))?;
        self.install_blob(&data, expected)?;
        self.link_blob(name, expected)?;
        remove_all(&dir).map_err(|e| RegistryError::io("remove upload", e))?;
        Ok(size)
    }
}

fn hash_file(mut f: fs::File, mut h: Hasher) -> std::io::Result<Digest> {
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(h.finish());
        }
        h.update(&buf[..n]);
    }
}

impl UploadWriter {
    /// The session's offset before this append.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Bytes appended by this writer so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    pub async fn write(&mut self, chunk: &[u8]) -> Result<()> {
        self.file.write_all(chunk).await.map_err(|e| RegistryError::io("write upload", e))?;
        self.written += chunk.len() as u64;
        self.writeback.wrote(self.file.get_ref(), chunk.len());
        Ok(())
    }

    /// Flushes the append; returns the session's new offset.
    pub async fn finish(mut self) -> Result<u64> {
        self.file.flush().await.map_err(|e| RegistryError::io("write upload", e))?;
        Ok(self.start + self.written)
    }

    /// Drops everything this writer appended, restoring the session's offset.
    pub async fn abort(mut self) {
        // Wait for the file's in-flight write (but not the buffer) so it cannot land after
        // the truncation below. (If it failed, nothing is in flight.)
        let _ = self.file.get_mut().flush().await;
        drop(self.file);
        let truncated = match tokio::fs::OpenOptions::new().write(true).open(&self.path).await {
            Ok(f) => f.set_len(self.start).await,
            Err(e) => Err(e),
        };
        if let Err(e) = truncated {
            // The session then keeps the part appended: the client is told the next offset
            // (416 on a mismatch) and the digest check at commit refuses what does not belong.
            tracing::warn!(upload = %self.path.display(), offset = self.start, "truncating a failed append: {e}");
        }
    }
}
