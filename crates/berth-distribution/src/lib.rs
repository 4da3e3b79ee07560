//! berth's registry client: what `docker pull`, `push`, `login` and `search` do on the
//! daemon's side, against any registry that speaks the Docker/OCI distribution API.
//!
//! # Contract
//!
//! - **Nothing partial becomes visible.** A pull unpacks every missing layer into a staging
//!   directory while it downloads, checks the blob's digest and size and the layer's diff ID
//!   against the manifest and the image config, and only then publishes the layers and the
//!   image in one step ([`berth_image::ImageStore::add_pulled`]). A pull that fails or is cut
//!   off leaves nothing but staging directories, which the store sweeps; running it again
//!   starts clean. A push makes the manifest, the only thing a reader can name, visible last.
//! - **Only what is missing moves.** A pull skips layers whose diff ID is already unpacked; a
//!   push asks the registry (`HEAD`) about every blob it knows for a layer and tries a
//!   cross-repository mount from another repository of the same registry before uploading.
//!   What berth knows about where a layer lives remotely is [`metadata`].
//! - **Errors are typed** ([`DistError`]) with the messages Docker prints (`manifest for x
//!   not found: manifest unknown: …`, `pull access denied for x, repository does not exist
//!   or may require 'docker login'`), so the daemon maps them to statuses in its one place.
//!
//! # Shape
//!
//! [`Distribution`] holds the daemon-wide settings (mirrors, insecure registries) and one
//! HTTP client ([`http`], HTTP/1.1 on hyper with a small keep-alive pool). Every exchange
//! with a registry goes through a [`session::Session`], which pings `/v2/`, answers the
//! `WWW-Authenticate` challenge (Basic, or Docker Hub's bearer-token flow, see [`auth`]) and
//! follows redirects. [`pull`], [`push`], [`login`](Distribution::login) and
//! [`search`](Distribution::search) report progress as Docker's JSON messages
//! ([`progress`]).

pub mod auth;
pub mod compress;
pub mod endpoint;
pub mod heap;
pub mod http;
pub mod login;
pub mod manifest;
pub mod metadata;
mod pipe;
pub mod progress;
pub mod pull;
pub mod push;
pub mod search;
pub mod session;
mod tls;

use berth_api::{ErrorKind, HasKind};

pub use auth::AuthConfig;
pub use endpoint::RegistryOptions;

/// The registry client of one daemon.
pub struct Distribution {
    pub options: RegistryOptions,
    pub http: std::sync::Arc<http::HttpClient>,
}

impl Distribution {
    pub fn new(options: RegistryOptions) -> Distribution {
        Distribution { options, http: std::sync::Arc::new(http::HttpClient::new()) }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DistError {
    /// The registry has no such repository, tag, manifest or blob.
    #[error("{0}")]
    NotFound(String),
    /// Credentials are missing or wrong.
    #[error("{0}")]
    Unauthorized(String),
    /// The credentials are fine but the action is refused.
    #[error("{0}")]
    Denied(String),
    /// The request or what the registry sent is malformed (a bad reference, a manifest
    /// that does not parse, a digest that does not match).
    #[error("{0}")]
    Invalid(String),
    /// The registry cannot be reached or hung up.
    #[error("{0}")]
    Unavailable(String),
    /// The registry answered with an error berth has no better kind for.
    #[error("{0}")]
    Registry(String),
    #[error(transparent)]
    Image(#[from] berth_image::ImageError),
    #[error(transparent)]
    Store(#[from] berth_store::StoreError),
    #[error(transparent)]
    Archive(#[from] berth_archive::ArchiveError),
    #[error("{0}")]
    Internal(String),
}

impl HasKind for DistError {
    fn kind(&self) -> ErrorKind {
        match self {
            DistError::NotFound(_) => ErrorKind::NotFound,
            DistError::Unauthorized(_) => ErrorKind::Unauthorized,
            DistError::Denied(_) => ErrorKind::Forbidden,
            DistError::Invalid(_) => ErrorKind::InvalidArgument,
            DistError::Unavailable(_) => ErrorKind::Unavailable,
            DistError::Registry(_) | DistError::Internal(_) => ErrorKind::Internal,
            DistError::Image(e) => e.kind(),
            DistError::Store(e) => e.kind(),
            DistError::Archive(e) => e.kind(),
        }
    }
}

pub type Result<T> = std::result::Result<T, DistError>;
