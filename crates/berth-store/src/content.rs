//! The content store: immutable blobs addressed by their SHA-256 digest.
//!
//! # Contract
//!
//! - A blob is named `sha256:<64 hex>` and its bytes always hash to that name. Nothing can
//!   change a blob; writing the same bytes twice is a no-op that returns the same digest.
//! - A write is invisible until [`IngestWriter::commit`] has verified the digest (against
//!   the caller's expectation, if any), flushed the bytes to disk and renamed the file into
//!   place. A crash before that leaves only a file under `ingest/`, removed by
//!   [`ContentStore::sweep`]; a reader never sees a partial blob.
//! - [`ContentStore::delete`] of a missing blob succeeds (removal is idempotent), so a
//!   cleanup interrupted by a crash can simply be run again.
//! - Digests given by users are validated ([`parse_digest`]) before any path is built from
//!   them, so a digest can never name a file outside the store.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::{Result, StoreError, sync_dir};

/// Checks `sha256:<64 lowercase hex>` and returns the hex part.
pub fn parse_digest(d: &str) -> Result<&str> {
    let hex = d
        .strip_prefix("sha256:")
        .ok_or_else(|| StoreError::Invalid(format!("unsupported digest {d:?}: only sha256 is supported")))?;
    if berth_api::ids::is_full_id(hex) { Ok(hex) } else { Err(StoreError::Invalid(format!("invalid digest {d:?}"))) }
}

pub struct ContentStore {
    root: PathBuf,
}

pub struct IngestWriter {
    file: File,
    tmp: PathBuf,
    hasher: Sha256,
    size: u64,
    blobs: PathBuf,
    committed: bool,
}

impl Write for IngestWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl IngestWriter {
    /// Verifies, syncs and publishes the blob; returns its digest and size.
    pub fn commit(mut self, expected: Option<&str>) -> Result<(String, u64)> {
        let hex_digest = hex::encode(std::mem::take(&mut self.hasher).finalize());
        let digest = format!("sha256:{hex_digest}");
        if let Some(exp) = expected
            && exp != digest
        {
            return Err(StoreError::DigestMismatch { expected: exp.to_string(), actual: digest });
        }
        self.file.sync_all().map_err(|e| StoreError::io("syncing blob", e))?;
        let dest = self.blobs.join(&hex_digest);
        fs::rename(&self.tmp, &dest).map_err(|e| StoreError::io(format!("publishing blob {digest}"), e))?;
        self.committed = true;
        sync_dir(&self.blobs)?;
        Ok((digest, self.size))
    }
}

impl Drop for IngestWriter {
    fn drop(&mut self) {
        if !self.committed
            && let Err(e) = fs::remove_file(&self.tmp)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            // `sweep` removes it at the next start.
            tracing::warn!(file = %self.tmp.display(), "removing an unfinished blob: {e}");
        }
    }
}

impl ContentStore {
    pub fn open(root: &Path) -> Result<ContentStore> {
        for d in ["blobs/sha256", "ingest"] {
            fs::create_dir_all(root.join(d))
                .map_err(|e| StoreError::io(format!("creating {}", root.join(d).display()), e))?;
        }
        Ok(ContentStore { root: root.to_path_buf() })
    }

    fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        Ok(self.root.join("blobs/sha256").join(parse_digest(digest)?))
    }

    pub fn writer(&self) -> Result<IngestWriter> {
        let tmp = self.root.join("ingest").join(berth_api::ids::random_id());
        let file = File::create(&tmp).map_err(|e| StoreError::io("creating ingest file", e))?;
        Ok(IngestWriter {
            file,
            tmp,
            hasher: Sha256::new(),
            size: 0,
            blobs: self.root.join("blobs/sha256"),
            committed: false,
        })
    }

    /// Stores `data`, returning its digest.
    pub fn put(&self, data: &[u8]) -> Result<String> {
        let digest = berth_archive::hash::sha256_digest(data);
        if self.exists(&digest) {
            return Ok(digest);
        }
        let mut w = self.writer()?;
        w.write_all(data).map_err(|e| StoreError::io("writing blob", e))?;
        Ok(w.commit(Some(&digest))?.0)
    }

    pub fn exists(&self, digest: &str) -> bool {
        self.blob_path(digest).map(|p| p.exists()).unwrap_or(false)
    }

    pub fn read(&self, digest: &str) -> Result<Vec<u8>> {
        let p = self.blob_path(digest)?;
        fs::read(&p).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::NotFound(format!("blob {digest} not found")),
            _ => StoreError::io(format!("reading blob {digest}"), e),
        })
    }

    pub fn open_blob(&self, digest: &str) -> Result<File> {
        let p = self.blob_path(digest)?;
        File::open(&p).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::NotFound(format!("blob {digest} not found")),
            _ => StoreError::io(format!("opening blob {digest}"), e),
        })
    }

    pub fn size(&self, digest: &str) -> Result<u64> {
        let p = self.blob_path(digest)?;
        fs::metadata(&p).map(|m| m.len()).map_err(|e| StoreError::io(format!("blob {digest}"), e))
    }

    pub fn delete(&self, digest: &str) -> Result<()> {
        match fs::remove_file(self.blob_path(digest)?) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io(format!("deleting blob {digest}"), e)),
        }
    }

    /// Every stored digest.
    pub fn list(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let dir = self.root.join("blobs/sha256");
        for e in fs::read_dir(&dir).map_err(|e| StoreError::io("listing blobs", e))? {
            let e = e.map_err(|e| StoreError::io("listing blobs", e))?;
            if let Some(n) = e.file_name().to_str()
                && berth_api::ids::is_full_id(n)
            {
                out.push(format!("sha256:{n}"));
            }
        }
        Ok(out)
    }

    /// Removes what interrupted writes left behind. Call at start, before serving.
    pub fn sweep(&self) -> Result<usize> {
        let mut n = 0;
        let dir = self.root.join("ingest");
        for e in fs::read_dir(&dir).map_err(|e| StoreError::io("listing ingest", e))? {
            let e = e.map_err(|e| StoreError::io("listing ingest", e))?;
            if let Err(err) = fs::remove_file(e.path()) {
                tracing::warn!(file = %e.path().display(), "removing an unfinished blob: {err}");
            }
            n += 1;
        }
        Ok(n)
    }

    /// Recomputes a blob's digest; `false` means the bytes on disk are damaged.
    pub fn verify(&self, digest: &str) -> Result<bool> {
        let mut f = self.open_blob(digest)?;
        let mut h = berth_archive::hash::HashingReader::new(&mut f);
        io::copy(&mut h, &mut io::sink()).map_err(|e| StoreError::io(format!("reading blob {digest}"), e))?;
        Ok(h.finish().0 == digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_content_addressed_and_verified() {
        let dir = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(dir.path()).unwrap();
        let d = cs.put(b"hello").unwrap();
        assert_eq!(d, "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
        assert_eq!(cs.put(b"hello").unwrap(), d);
        assert_eq!(cs.read(&d).unwrap(), b"hello");
        assert!(cs.verify(&d).unwrap());

        let mut w = cs.writer().unwrap();
        w.write_all(b"other").unwrap();
        assert!(matches!(w.commit(Some(&d)), Err(StoreError::DigestMismatch { .. })));
        assert_eq!(cs.list().unwrap(), vec![d.clone()], "a rejected write leaves nothing");
        assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 0);

        cs.delete(&d).unwrap();
        cs.delete(&d).unwrap();
        assert!(matches!(cs.read(&d), Err(StoreError::NotFound(_))));
    }

    #[test]
    fn bad_digests_never_become_paths() {
        let dir = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(dir.path()).unwrap();
        assert!(cs.read("sha256:../../etc/passwd").is_err());
        assert!(cs.read("md5:abc").is_err());
        assert!(!cs.exists("sha256:zz"));
    }

    #[test]
    fn sweep_removes_abandoned_ingests() {
        let dir = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(dir.path()).unwrap();
        let mut w = cs.writer().unwrap();
        w.write_all(b"partial").unwrap();
        std::mem::forget(w); // as if the process died mid-write
        assert_eq!(cs.sweep().unwrap(), 1);
        assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 0);
    }
}
