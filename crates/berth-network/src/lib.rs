//! berth's network service.
//!
//! A network is a [`model::NetworkRecord`]: a driver (`bridge`, `macvlan`, `ipvlan`, `overlay`
//! across hosts (see [`overlay`]), or the built-in `host` and `null`), its IPAM settings, and
//! the endpoints of the containers on it.
//! Records live in the metadata database; the kernel objects (bridges, veths, namespaces,
//! nftables rules, resolvers) are derived from them and can always be rebuilt from them,
//! which is how a restarted daemon restores what a running container needs.
//!
//! # Contract with the container service
//!
//! [`NetworkService`] implements `berth_container::network::Networks`:
//! - `connect` (at container start) makes the container's network namespace, joins it to each
//!   of its networks (allocating addresses, publishing ports, starting the resolver of
//!   user-defined networks), and returns what the container needs to know.
//! - `disconnect` (at container exit) undoes all of it and keeps going past errors, reporting
//!   every one of them.
//! - `restore` (after a daemon restart) brings back what only lived in the old daemon.
//!
//! Every kernel change is idempotent and rules are rendered whole ([`nft`]), so a crash at any
//! point is repaired by the next `connect`, `disconnect` or start-up reconciliation.

pub mod attach;
mod connect;
pub mod dns;
pub mod etcd;
pub mod ipam;
pub mod iptables;
pub mod model;
mod names;
pub mod netns;
pub mod nft;
pub mod nl;
pub mod overlay;
pub mod ports;
mod query;
mod service;
pub mod v6;

pub use service::{NetworkService, Options};

use berth_api::{ErrorKind, HasKind};

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    System(String),
    /// The cluster store (overlay networks) cannot be reached.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] berth_store::StoreError),
}

impl HasKind for NetError {
    fn kind(&self) -> ErrorKind {
        match self {
            NetError::NotFound(_) => ErrorKind::NotFound,
            NetError::Invalid(_) => ErrorKind::InvalidArgument,
            NetError::Conflict(_) => ErrorKind::Conflict,
            NetError::Forbidden(_) => ErrorKind::Forbidden,
            NetError::System(_) => ErrorKind::Internal,
            NetError::Unavailable(_) => ErrorKind::Unavailable,
            NetError::Store(e) => e.kind(),
        }
    }
}

impl From<NetError> for berth_container::ContainerError {
    fn from(e: NetError) -> Self {
        match e {
            NetError::NotFound(m) => berth_container::ContainerError::Invalid(m),
            NetError::Invalid(m) => berth_container::ContainerError::Invalid(m),
            NetError::Conflict(m) | NetError::Forbidden(m) => berth_container::ContainerError::Conflict(m),
            NetError::System(m) | NetError::Unavailable(m) => berth_container::ContainerError::Internal(m),
            NetError::Store(e) => berth_container::ContainerError::Store(e),
        }
    }
}

pub type Result<T> = std::result::Result<T, NetError>;
