//! How a container gets its network: the contract between the container service and the
//! network service.
//!
//! Two traits, one per direction, and the plain data that crosses:
//!
//! - [`Networks`] is what the container service calls. At start it asks
//!   [`Networks::connect`] for an [`Attachment`]: the network namespace to join (or none,
//!   for a fresh one with only loopback), the settings to show in inspect, and the entries
//!   its /etc/hosts and /etc/resolv.conf need. At exit it calls [`Networks::disconnect`],
//!   which must release everything `connect` took (addresses, interfaces, rules, names) and
//!   keep going past errors. [`Networks::removed`] forgets a removed container,
//!   [`Networks::restore`] brings back, after a daemon restart, what lived only in the old
//!   daemon, [`Networks::renamed`] lets names the network service answers for (the embedded
//!   DNS) follow `docker rename`. `connect`, `disconnect` and `restore` may be called again
//!   for the same container after a daemon restart: implementations are idempotent.
//! - [`Containers`] is what the network service reads of containers (other than the one it
//!   is connecting, which it is handed): the target of `--network container:X` and of
//!   `--link`, the containers that still name a network (prune), those running (start-up
//!   reconciliation, overlay repair). `network connect` and `disconnect` change a
//!   container's configuration; the network service says what changed as a [`Membership`]
//!   and the container service records it ([`Containers::record_membership`]).
//!
//! A container crosses as a [`ContainerView`]: a copy of the few fields networking reads,
//! never the container service's record. Errors cross as [`NetError`], the network service's
//! own; the container service maps them to its errors in one place (berth-container's
//! `network.rs`), the daemon maps them to HTTP statuses through [`berth_api::HasKind`].
//!
//! Neither side holds the other: the daemon gives the network service a [`Containers`] at
//! construction (the container service's table of records, which holds no service) and the
//! container service a [`Networks`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use berth_api::models::{EndpointSettings, NetworkSettings, PortMap};
use berth_api::{ErrorKind, HasKind};

/// What the network service reports. Its kinds are the API's (see [`HasKind`]); at container
/// start the container service reads some of them differently (a network that does not exist
/// is the request's fault there, not a missing resource: see berth-container's `network.rs`).
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

pub type Result<T> = std::result::Result<T, NetError>;

/// What the network service gives a container at start.
#[derive(Debug, Clone, Default)]
pub struct Attachment {
    /// Join this network namespace; `None` means a new one with only `lo`, and
    /// `Some("host")`-style sharing is expressed by [`Attachment::host`].
    pub netns: Option<PathBuf>,
    /// Share the daemon's (the host's) network namespace.
    pub host: bool,
    pub settings: NetworkSettings,
    /// `(address, names)` lines for /etc/hosts beyond localhost and the container itself.
    pub hosts: Vec<(String, String)>,
    /// The container's own address, for its /etc/hosts line.
    pub address: Option<String>,
    /// Its IPv6 address, on a network with IPv6.
    pub address6: Option<String>,
    /// Nameservers for /etc/resolv.conf; `None` keeps the host's.
    pub nameservers: Option<Vec<String>>,
    /// `options` for /etc/resolv.conf (the embedded resolver wants `ndots:0`).
    pub dns_options: Vec<String>,
    /// Environment variables for the process (`--link`'s `ALIAS_PORT_…`).
    pub env: Vec<String>,
    /// IPv6 is on in the container (it has an IPv6 network, or only loopback): its
    /// /etc/hosts gets the IPv6 names, its resolv.conf the IPv6 default resolvers.
    pub ipv6: bool,
    /// `--network container:X`: X's /etc/hosts and /etc/resolv.conf, which it shares.
    pub shared_etc: Option<(PathBuf, PathBuf)>,
}

/// A container as networking sees it: a copy of what the network service reads, taken
/// when the call is made.
#[derive(Debug, Clone, Default)]
pub struct ContainerView {
    pub id: String,
    /// Without the leading `/`.
    pub name: String,
    /// Its process runs (paused or not), as `pid`.
    pub running: bool,
    pub pid: i64,
    /// A restart policy is bringing it back (its start may be plumbing it right now).
    pub restarting: bool,
    /// `HostConfig.NetworkMode` as given: a network's name or ID, `host`, `none`,
    /// `container:X`; empty and `default` mean `bridge` (see
    /// [`ContainerView::network_mode_or_default`]).
    pub network_mode: String,
    /// Networks to join and the settings asked for on each (aliases, static addresses),
    /// from create and `network connect`.
    pub endpoints: BTreeMap<String, EndpointSettings>,
    /// `--link name:alias`, as recorded.
    pub links: Vec<String>,
    /// `--dns`: the embedded resolver's upstreams.
    pub dns: Vec<String>,
    /// `--mac-address`: the primary network's MAC.
    pub mac_address: String,
    /// Exposed ports (`80/tcp`), in the order the configuration lists them.
    pub exposed_ports: Vec<String>,
    /// `-p`.
    pub port_bindings: PortMap,
    /// `-P`.
    pub publish_all_ports: bool,
    /// Its environment (a link hands it on as `ALIAS_ENV_…`).
    pub env: Vec<String>,
    /// What inspect shows of its networks now (addresses, published ports).
    pub network: NetworkSettings,
    /// Its /etc/hosts and /etc/resolv.conf, shared with `--network container:` of it.
    pub hosts_path: PathBuf,
    pub resolv_conf_path: PathBuf,
}

impl ContainerView {
    /// The network mode, `bridge` when none was given.
    pub fn network_mode_or_default(&self) -> &str {
        match self.network_mode.as_str() {
            "" | "default" => "bridge",
            m => m,
        }
    }
}

/// What `network connect` or `network disconnect` changed in a container's configuration,
/// for the container service to record (and keep across restarts).
#[derive(Debug, Clone)]
pub enum Membership {
    /// The container joined `network`.
    Joined {
        network: String,
        /// What inspect shows for it from now on.
        shown: Box<EndpointSettings>,
        /// The settings it joins with at its next starts.
        asked: Box<EndpointSettings>,
        /// It was on no network: this one becomes its network mode.
        primary: bool,
    },
    /// The container left `network`.
    Left {
        network: String,
        /// It was its network mode: the mode becomes `none`.
        was_primary: bool,
    },
}

/// The network service, as the container service calls it.
pub trait Networks: Send + Sync {
    /// Checks at create time that the settings fit the networks named (a network that does
    /// not exist yet is refused at start, not here).
    fn validate(&self, _mode: &str, _endpoints: &BTreeMap<String, EndpointSettings>) -> Result<()> {
        Ok(())
    }
    /// Joins the container to its networks (at start). On error nothing is left taken.
    fn connect(&self, container: &ContainerView) -> Result<Attachment>;
    /// Releases what `connect` took (at exit), logging what it could not.
    fn disconnect(&self, container: &ContainerView);
    /// Called when a container is removed, to forget anything kept for it.
    fn removed(&self, _container: &ContainerView) {}
    /// Called for a running container re-adopted after a daemon restart, to bring back what
    /// lived in the old daemon (port reservations, resolvers).
    fn restore(&self, _container: &ContainerView) {}
    /// The container now has the name in `container.name` (`docker rename`).
    fn renamed(&self, _container: &ContainerView) {}
    /// The address `--add-host NAME:host-gateway` stands for: the default bridge's gateway.
    fn host_gateway(&self) -> Option<String> {
        None
    }
}

/// The containers, as the network service reads them.
pub trait Containers: Send + Sync {
    /// A container by full ID, name (with or without `/`) or unique ID prefix. The error is
    /// the container service's message (`No such container: x`).
    fn get(&self, name_or_id: &str) -> std::result::Result<ContainerView, String>;
    /// Every container.
    fn all(&self) -> Vec<ContainerView>;
    /// Records a change `network connect`/`disconnect` made (see [`Membership`]).
    fn record_membership(&self, id: &str, change: Membership) -> std::result::Result<(), String>;
}
