//! The registry's persistent state: one directory tree, no database.
//!
//! # Layout (schema version 1)
//!
//! ```text
//! <root>/
//!   blobs/<alg>/<hex[0..2]>/<hex>/data          content, named by its digest; immutable
//!   repositories/<name…>/                       <name> may have several components (team/app)
//!     _layers/<alg>/<hex>/link                  "this repository has blob <digest>"; holds the digest
//!     _manifests/revisions/<alg>/<hex>/link     "this repository has manifest <digest>"; holds the digest
//!     _manifests/revisions/<alg>/<hex>/media_type   the Content-Type it was pushed with
//!     _manifests/tags/<tag>/current             the digest the tag points at
//!     _referrers/<alg>/<subject hex>/<alg>-<hex>    "manifest <alg>:<hex> has subject <subject>"
//!     _uploads/<uuid>/data                      bytes received so far in an upload session
//!     _uploads/<uuid>/startedat                 unix seconds when the session began
//!   _tmp/                                       staging for atomic writes (same filesystem)
//! ```
//!
//! Manifests are blobs too: their exact bytes live under `blobs/`, and a repository "has" a
//! manifest when its revision link exists. A repository exists when it has `_manifests` or
//! `_layers`. Repository name components never start with `_`, so the `_`-prefixed names above
//! cannot collide with a nested repository (`team` and `team/app` can both exist).
//!
//! # Invariants
//!
//! - **Nothing partial is served.** Every file a reader looks at is created by writing a temp
//!   file (under `_tmp/`, or the upload's own `data`), fsyncing it, renaming it into place and
//!   fsyncing the directory. A crash leaves at most stale temp files and upload sessions, which
//!   [`crate::gc`] sweeps.
//! - **Write order makes references safe.** A blob is renamed into `blobs/` before any link to
//!   it is written; a manifest's bytes and media type before its revision link; the revision
//!   link before any tag or referrer entry that names it. Deletion runs the other way.
//! - **Links are per repository; blobs are shared.** Deleting a blob or manifest from a
//!   repository removes links only; [`crate::gc`] removes blob data nothing references.
//! - **Freshness protects from GC.** Whenever a request makes an existing blob reachable again
//!   (a re-upload of the same content, a cross-repository mount, a manifest naming it), its
//!   mtime is set to now, so a concurrent GC's grace period covers it.

mod blobs;
mod manifests;
mod uploads;

pub use manifests::StoredManifest;
pub(crate) use manifests::list_dir;
pub use uploads::UploadWriter;

use crate::error::{RegistryError, Result};
use crate::names::Digest;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Handle on a registry root. Cheap to clone; holds no open files or locks, so any number of
/// handles (and processes, such as an offline GC) may use the same root.
#[derive(Debug, Clone)]
pub struct Storage {
    root: PathBuf,
}

impl Storage {
    /// Opens (creating if needed) a registry root.
    pub fn open(root: &Path) -> Result<Storage> {
        for d in ["blobs", "repositories", "_tmp"] {
            fs::create_dir_all(root.join(d))
                .map_err(|e| RegistryError::io(format!("create {}", root.join(d).display()), e))?;
        }
        Ok(Storage { root: root.to_path_buf() })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn blob_dir(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs").join(d.algorithm.as_str()).join(&d.hex[..2]).join(&d.hex)
    }

    /// Where a blob's bytes are. The file exists only once the blob is complete.
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.blob_dir(d).join("data")
    }

    pub(crate) fn repo_dir(&self, name: &str) -> PathBuf {
        self.root.join("repositories").join(name)
    }

    pub(crate) fn layer_link(&self, name: &str, d: &Digest) -> PathBuf {
        self.repo_dir(name).join("_layers").join(d.algorithm.as_str()).join(&d.hex).join("link")
    }

    pub(crate) fn revision_dir(&self, name: &str, d: &Digest) -> PathBuf {
        self.repo_dir(name).join("_manifests/revisions").join(d.algorithm.as_str()).join(&d.hex)
    }

    pub(crate) fn tag_link(&self, name: &str, tag: &str) -> PathBuf {
        self.repo_dir(name).join("_manifests/tags").join(tag).join("current")
    }

    pub(crate) fn referrers_dir(&self, name: &str, subject: &Digest) -> PathBuf {
        self.repo_dir(name).join("_referrers").join(subject.algorithm.as_str()).join(&subject.hex)
    }

    pub(crate) fn upload_dir(&self, name: &str, id: &str) -> PathBuf {
        self.repo_dir(name).join("_uploads").join(id)
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("_tmp")
    }

    /// Writes `bytes` to `path` so that readers see either the old file or the whole new one.
    pub(crate) fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let ctx = |e| RegistryError::io(format!("write {}", path.display()), e);
        let parent = path.parent().expect("storage paths have parents");
        fs::create_dir_all(parent).map_err(ctx)?;
        let tmp = self.tmp_dir().join(random_id());
        let res = (|| {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, path)?;
            sync_dir(parent)
        })();
        // The write's error is what is returned; a temporary file that stays is worth a line
        // (garbage-collect sweeps it later).
        if res.is_err()
            && let Err(e) = fs::remove_file(&tmp)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(file = %tmp.display(), "removing the temporary file of a failed write: {e}");
        }
        res.map_err(ctx)
    }

    /// Whether a repository exists (has pushed anything that completed).
    pub fn repo_exists(&self, name: &str) -> bool {
        let dir = self.repo_dir(name);
        dir.join("_manifests").is_dir() || dir.join("_layers").is_dir()
    }

    /// Every repository, sorted.
    pub fn catalog(&self) -> Result<Vec<String>> {
        self.walk(false)
    }

    /// Every repository, plus directories that hold only upload sessions (for GC).
    pub(crate) fn repo_dirs(&self) -> Result<Vec<String>> {
        self.walk(true)
    }

    fn walk(&self, with_uploads: bool) -> Result<Vec<String>> {
        let mut out = Vec::new();
        walk_repos(&self.root.join("repositories"), "", with_uploads, &mut out)
            .map_err(|e| RegistryError::io("list repositories", e))?;
        out.sort();
        Ok(out)
    }
}

fn walk_repos(dir: &Path, prefix: &str, with_uploads: bool, out: &mut Vec<String>) -> std::io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut is_repo = false;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "_manifests" || name == "_layers" || (with_uploads && name == "_uploads") {
            is_repo = true;
        } else if !name.starts_with('_') && entry.file_type()?.is_dir() {
            let child = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
            walk_repos(&entry.path(), &child, with_uploads, out)?;
        }
    }
    if is_repo && !prefix.is_empty() {
        out.push(prefix.to_string());
    }
    Ok(())
}

/// Reads a link file: `None` if it does not exist.
pub(crate) fn read_link(path: &Path) -> Result<Option<Digest>> {
    match fs::read_to_string(path) {
        Ok(s) => Digest::parse(s.trim())
            .map(Some)
            .map_err(|_| RegistryError::Internal(format!("corrupt link file {}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RegistryError::io(format!("read {}", path.display()), e)),
    }
}

pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// Removes `path` (file or directory tree); absent is fine.
pub(crate) fn remove_all(path: &Path) -> std::io::Result<()> {
    let res = if path.is_dir() { fs::remove_dir_all(path) } else { fs::remove_file(path) };
    match res {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// A random lowercase UUID (version 4 layout), used for upload sessions and temp names.
pub fn random_id() -> String {
    use rand::Rng as _;
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

pub(crate) fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
