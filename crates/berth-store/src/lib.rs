//! berth's persistent state, below the services that give it meaning.
//!
//! - [`db`]: the metadata database (SQLite in WAL mode), a set of named buckets of JSON
//!   records. [`schema`] lists every bucket and what its records are.
//! - [`content`]: immutable blobs named by their SHA-256 digest (image configs, manifests).
//! - [`snapshot`]: unpacked layers and container root filesystems on overlayfs.
//!
//! Crash safety rests on two rules used throughout: a thing becomes visible by one atomic
//! step (a rename, a transaction) after it is complete, and anything left half-made by a
//! crash lives under a staging name that [`snapshot::Snapshotter::sweep`] and
//! [`content::ContentStore::sweep`] delete at the next start.

pub mod content;
pub mod db;
pub mod schema;
pub mod snapshot;

use berth_api::{ErrorKind, HasKind};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("metadata database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("metadata record {bucket}/{key}: {source}")]
    Record { bucket: String, key: String, source: serde_json::Error },
    #[error("{0}")]
    NotFound(String),
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: String, actual: String },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Archive(#[from] berth_archive::ArchiveError),
}

impl StoreError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StoreError::Io { context: context.into(), source }
    }
}

impl HasKind for StoreError {
    fn kind(&self) -> ErrorKind {
        match self {
            StoreError::NotFound(_) => ErrorKind::NotFound,
            StoreError::DigestMismatch { .. } | StoreError::Invalid(_) => ErrorKind::InvalidArgument,
            StoreError::Archive(e) => e.kind(),
            StoreError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            _ => ErrorKind::Internal,
        }
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// `fsync`s a directory so a rename or creation inside it is durable.
pub fn sync_dir(path: &std::path::Path) -> Result<()> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| StoreError::io(format!("syncing {}", path.display()), e))
}
