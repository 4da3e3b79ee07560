//! Blobs: the shared content under `blobs/`, and each repository's links to it.

use super::{Storage, read_link, remove_all, sync_dir};
use crate::error::{RegistryError, Result};
use crate::names::Digest;
use std::fs;
use std::time::SystemTime;

impl Storage {
    /// Size of a complete blob, wherever it is linked; `None` if absent.
    pub fn blob_size(&self, d: &Digest) -> Result<Option<u64>> {
        match fs::metadata(self.blob_path(d)) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(RegistryError::io("stat blob", e)),
        }
    }

    /// Size of a blob as seen from `name`: present only if the repository links it (as a
    /// layer or as a manifest revision) and the data exists.
    pub fn repo_blob_size(&self, name: &str, d: &Digest) -> Result<Option<u64>> {
        let linked = self.layer_link(name, d).is_file() || self.revision_dir(name, d).join("link").is_file();
        if !linked {
            return Ok(None);
        }
        self.blob_size(d)
    }

    /// Makes an existing blob part of `name`, refreshing its mtime (see the GC contract).
    /// Returns false, writing nothing, if the blob data does not exist.
    pub fn link_blob(&self, name: &str, d: &Digest) -> Result<bool> {
        if !self.touch_blob(d)? {
            return Ok(false);
        }
        let link = self.layer_link(name, d);
        if !link.is_file() {
            self.write_atomic(&link, d.to_string().as_bytes())?;
        }
        Ok(true)
    }

    /// Removes `name`'s link to a blob; the data stays for GC. False if it was not linked.
    pub fn unlink_blob(&self, name: &str, d: &Digest) -> Result<bool> {
        let link = self.layer_link(name, d);
        if read_link(&link)?.is_none() {
            return Ok(false);
        }
        remove_all(link.parent().expect("link has a parent")).map_err(|e| RegistryError::io("remove blob link", e))?;
        Ok(true)
    }

    /// Sets a blob's mtime to now; false if it does not exist.
    pub fn touch_blob(&self, d: &Digest) -> Result<bool> {
        match fs::File::options().write(true).open(self.blob_path(d)) {
            Ok(f) => {
                f.set_modified(SystemTime::now()).map_err(|e| RegistryError::io("touch blob", e))?;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(RegistryError::io("open blob", e)),
        }
    }

    /// Stores small content (a manifest) whose digest the caller computed from `bytes`.
    pub fn put_blob_bytes(&self, d: &Digest, bytes: &[u8]) -> Result<()> {
        if self.touch_blob(d)? {
            return Ok(());
        }
        self.write_atomic(&self.blob_path(d), bytes)
    }

    /// Reads a whole blob into memory: for manifests only, never for layers.
    pub fn read_blob(&self, d: &Digest) -> Result<Option<Vec<u8>>> {
        match fs::read(self.blob_path(d)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(RegistryError::io("read blob", e)),
        }
    }

    /// Moves a complete, verified, fsynced file into `blobs/` under `d`. If the blob already
    /// exists the file is dropped instead and the existing blob refreshed.
    pub(crate) fn install_blob(&self, src: &std::path::Path, d: &Digest) -> Result<()> {
        if self.touch_blob(d)? {
            if let Err(e) = fs::remove_file(src) {
                tracing::warn!(file = %src.display(), digest = %d, "removing the copy of a blob stored already: {e}");
            }
            return Ok(());
        }
        let dir = self.blob_dir(d);
        let ctx = |e| RegistryError::io(format!("install blob {d}"), e);
        fs::create_dir_all(&dir).map_err(ctx)?;
        fs::rename(src, dir.join("data")).map_err(ctx)?;
        sync_dir(&dir).map_err(ctx)
    }
}
