//! The image service: what images exist, what they are called, and how they come and go.
//!
//! An image is its config document (stored as a content blob; its digest is the image ID)
//! plus the layers its `rootfs.diff_ids` name (stored by the snapshotter). References
//! (`busybox:latest`) map names to image IDs. The [`ImageStore`] keeps all of it indexed in
//! memory and persisted in the metadata database, and is the only writer of those records.
//!
//! Order of writes, everywhere: layers are committed first, then the config blob, then the
//! image record and its references in one database transaction. Deletion runs the other way.
//! A crash between steps leaves unreferenced layers or blobs, which [`ImageStore::open`]
//! collects; it never leaves an image whose parts are missing.

pub mod archive;
mod check;
pub mod commit;
pub mod config;
pub mod import;
pub mod pulled;
pub mod reference;
mod store;

pub use config::{History, ImageConfig, RootFs};
pub use reference::Reference;
pub use store::{ContainerUse, Image, ImageMeta, ImageStore};

use berth_api::{ErrorKind, HasKind};

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("No such image: {0}")]
    NotFound(String),
    #[error("{0}")]
    InvalidReference(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] berth_store::StoreError),
    #[error(transparent)]
    Archive(#[from] berth_archive::ArchiveError),
    #[error(transparent)]
    Dockerfile(#[from] berth_dockerfile::DockerfileError),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
}

impl ImageError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        ImageError::Io { context: context.into(), source }
    }
}

impl HasKind for ImageError {
    fn kind(&self) -> ErrorKind {
        match self {
            ImageError::NotFound(_) => ErrorKind::NotFound,
            ImageError::InvalidReference(_) | ImageError::Invalid(_) => ErrorKind::InvalidArgument,
            ImageError::Conflict(_) => ErrorKind::Conflict,
            ImageError::Store(e) => e.kind(),
            ImageError::Archive(e) => e.kind(),
            ImageError::Dockerfile(e) => e.kind(),
            ImageError::Io { source, .. } => HasKind::kind(source),
        }
    }
}

pub type Result<T> = std::result::Result<T, ImageError>;
