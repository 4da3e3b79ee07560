//! How a container gets its network: the contract between the container service and the
//! network service.
//!
//! At start the container service asks [`Networks::connect`] for an [`Attachment`]: the
//! network namespace to join (or none, for a fresh one with only loopback), the settings to
//! show in inspect, and the entries its /etc/hosts and /etc/resolv.conf need. At stop it calls
//! [`Networks::disconnect`], which must release everything `connect` took (addresses,
//! interfaces, rules, names) and keep going past errors. Both may be called again for the same
//! container after a daemon restart; implementations are idempotent.

use std::path::PathBuf;

use berth_api::models::NetworkSettings;

use crate::Result;
use crate::record::Record;

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

pub trait Networks: Send + Sync {
    /// Checks at create time that the networks named exist and the settings fit them.
    fn validate(
        &self,
        _mode: &str,
        _endpoints: &std::collections::BTreeMap<String, berth_api::models::EndpointSettings>,
    ) -> Result<()> {
        Ok(())
    }
    fn connect(&self, container: &Record) -> Result<Attachment>;
    fn disconnect(&self, container: &Record);
    /// Called when a container is removed, to forget anything kept for it.
    fn removed(&self, _container: &Record) {}
    /// Called for a running container re-adopted after a daemon restart, to bring back what
    /// lived in the old daemon (port reservations, resolvers).
    fn restore(&self, _container: &Record) {}
    /// The address `--add-host NAME:host-gateway` stands for: the default bridge's gateway.
    fn host_gateway(&self) -> Option<String> {
        None
    }
}

/// Networking for `none`, `host` and `container:<id>` only: what berth offers before a
/// network service is plugged in.
pub struct Basic {
    /// Resolves `container:<name>` to the running container's network namespace.
    pub lookup: NamespaceLookup,
}

/// Finds a running container's network namespace and settings by name or ID.
pub type NamespaceLookup = Box<dyn Fn(&str) -> Result<(PathBuf, NetworkSettings)> + Send + Sync>;

impl Networks for Basic {
    fn connect(&self, c: &Record) -> Result<Attachment> {
        let mode = c.host_config.network_mode_or_default();
        if mode == "host" {
            return Ok(Attachment { host: true, ipv6: true, ..Default::default() });
        }
        if let Some(other) = mode.strip_prefix("container:") {
            let (ns, settings) = (self.lookup)(other)?;
            return Ok(Attachment { netns: Some(ns), settings, ipv6: true, ..Default::default() });
        }
        Ok(Attachment { ipv6: true, ..Default::default() })
    }

    fn disconnect(&self, _c: &Record) {}
}

/// What inspect shows for a container that is not running: the networks it will join, with
/// the settings asked for and no address (Docker lists them from create on).
pub fn configured_view(
    mode: &str,
    endpoints: &std::collections::BTreeMap<String, berth_api::models::EndpointSettings>,
) -> berth_api::models::NetworkSettings {
    let mut ns = berth_api::models::NetworkSettings::default();
    if mode.starts_with("container:") {
        return ns;
    }
    let mode = if mode.is_empty() || mode == "default" { "bridge" } else { mode };
    ns.networks = endpoints.clone();
    ns.networks.entry(mode.to_string()).or_default();
    for ep in ns.networks.values_mut() {
        ep.dns_names = None;
    }
    ns
}

/// The settings of a container that has stopped: its networks stay listed, but addresses,
/// endpoints and ports belong to a running container only.
pub fn stopped_view(running: &berth_api::models::NetworkSettings) -> berth_api::models::NetworkSettings {
    let mut ns = berth_api::models::NetworkSettings { networks: running.networks.clone(), ..Default::default() };
    for ep in ns.networks.values_mut() {
        ep.endpoint_id.clear();
        ep.gateway.clear();
        ep.ip_address.clear();
        ep.ip_prefix_len = 0;
        ep.ipv6_gateway.clear();
        ep.global_ipv6_address.clear();
        ep.global_ipv6_prefix_len = 0;
    }
    ns
}
