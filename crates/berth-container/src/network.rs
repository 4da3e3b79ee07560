//! The container service's side of the network contract ([`berth_core::network`]): the
//! view of a record networking reads, the network service's errors in the container
//! service's terms (the one place they are mapped), the container table as the network
//! service reads and changes it, and what inspect shows of a container's networks when it
//! does not run.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use berth_api::models::{EndpointSettings, NetworkSettings};
pub use berth_core::network::{Attachment, ContainerView, Containers, Membership, NetError, Networks};

use crate::record::Record;
use crate::{ContainerError, Result, Table};

/// What networking reads of a container.
pub fn view(r: &Record) -> ContainerView {
    ContainerView {
        id: r.id.clone(),
        name: r.name.clone(),
        running: r.state.is_running(),
        pid: r.state.pid,
        restarting: r.state.is_restarting(),
        network_mode: r.host_config.network_mode.clone(),
        endpoints: r.endpoints_config.clone(),
        links: r.host_config.links.clone().unwrap_or_default(),
        dns: r.host_config.dns.clone(),
        mac_address: r.config.mac_address.clone(),
        exposed_ports: r.config.exposed_ports.iter().flat_map(|m| m.keys().cloned()).collect(),
        port_bindings: r.host_config.port_bindings.clone(),
        publish_all_ports: r.host_config.publish_all_ports,
        env: r.config.env.clone(),
        network: r.network.clone(),
        hosts_path: PathBuf::from(&r.hosts_path),
        resolv_conf_path: PathBuf::from(&r.resolv_conf_path),
    }
}

/// The network service's errors at container start (and create): a network that does not
/// exist is the request's fault, a 400 (a 404 from create makes the docker CLI take it for
/// a missing image and pull); what the network refuses is a conflict.
impl From<NetError> for ContainerError {
    fn from(e: NetError) -> Self {
        match e {
            NetError::NotFound(m) | NetError::Invalid(m) => ContainerError::Invalid(m),
            NetError::Conflict(m) | NetError::Forbidden(m) => ContainerError::Conflict(m),
            NetError::System(m) | NetError::Unavailable(m) => ContainerError::Internal(m),
            NetError::Store(e) => ContainerError::Store(e),
        }
    }
}

/// The network service as the container service calls it: with records, answering in the
/// container service's errors.
pub(crate) struct NetworkPort(pub(crate) Arc<dyn Networks>);

impl NetworkPort {
    pub(crate) fn validate(&self, mode: &str, endpoints: &BTreeMap<String, EndpointSettings>) -> Result<()> {
        Ok(self.0.validate(mode, endpoints)?)
    }

    pub(crate) fn connect(&self, c: &Record) -> Result<Attachment> {
        Ok(self.0.connect(&view(c))?)
    }

    pub(crate) fn disconnect(&self, c: &Record) {
        self.0.disconnect(&view(c))
    }

    pub(crate) fn removed(&self, c: &Record) {
        self.0.removed(&view(c))
    }

    pub(crate) fn restore(&self, c: &Record) {
        self.0.restore(&view(c))
    }

    pub(crate) fn renamed(&self, c: &Record) {
        self.0.renamed(&view(c))
    }

    pub(crate) fn host_gateway(&self) -> Option<String> {
        self.0.host_gateway()
    }
}

impl Containers for Table {
    fn get(&self, name_or_id: &str) -> std::result::Result<ContainerView, String> {
        Table::get(self, name_or_id).map(|e| view(&e.record())).map_err(|e| e.to_string())
    }

    fn all(&self) -> Vec<ContainerView> {
        Table::all(self).iter().map(|e| view(&e.record())).collect()
    }

    fn record_membership(&self, id: &str, change: Membership) -> std::result::Result<(), String> {
        let e = Table::get(self, id).map_err(|e| e.to_string())?;
        e.update(|r| match change {
            Membership::Joined { network, shown, asked, primary } => {
                r.network.networks.insert(network.clone(), *shown);
                r.endpoints_config.insert(network.clone(), *asked);
                if primary {
                    r.host_config.network_mode = network;
                }
            }
            Membership::Left { network, was_primary } => {
                r.network.networks.remove(&network);
                r.endpoints_config.remove(&network);
                if was_primary {
                    r.host_config.network_mode = "none".into();
                }
            }
        });
        self.persist(&e).map_err(|e| e.to_string())
    }
}

/// What inspect shows for a container that is not running: the networks it will join, with
/// the settings asked for and no address (Docker lists them from create on).
pub fn configured_view(mode: &str, endpoints: &BTreeMap<String, EndpointSettings>) -> NetworkSettings {
    let mut ns = NetworkSettings::default();
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
pub fn stopped_view(running: &NetworkSettings) -> NetworkSettings {
    let mut ns = NetworkSettings { networks: running.networks.clone(), ..Default::default() };
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
