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
//! [`NetworkService`] (through [`attach::Handle`]) implements the contract
//! [`berth_core::network::Networks`], and reads containers through
//! [`berth_core::network::Containers`], which the daemon hands it at construction:
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

/// The network service's errors: the contract's (see [`berth_core::network`]), mapped to the
/// container service's at its side and to HTTP statuses by their kind.
pub use berth_core::network::NetError;

pub type Result<T> = std::result::Result<T, NetError>;
