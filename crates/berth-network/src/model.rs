//! What is stored about a network (bucket `networks` of the metadata database).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use crate::ipam::{Subnet, Subnet6};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Endpoint {
    pub container: String,
    /// The container's name when it joined (for DNS and inspect).
    pub name: String,
    pub ip: Ipv4Addr,
    pub mac: String,
    pub aliases: Vec<String>,
    /// The address was asked for (`--ip`) and is kept across restarts.
    pub static_ip: bool,
    /// Host side of the veth (bridge networks).
    #[serde(default)]
    pub host_ifname: String,
    #[serde(default)]
    pub endpoint_id: String,
    /// Links asked for on this network (`target:alias`): the alias resolves to the target
    /// for this container only.
    #[serde(default)]
    pub links: Vec<String>,
    /// The IPv6 address, on networks with IPv6.
    #[serde(default)]
    pub ip6: Option<Ipv6Addr>,
    /// The IPv6 address was asked for (`--ip6`).
    #[serde(default)]
    pub static_ip6: bool,
}

/// The IPv6 side of a network with `--ipv6`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Ipam6 {
    pub subnet: Subnet6,
    pub gateway: Ipv6Addr,
    pub ip_range: Option<Subnet6>,
    pub aux: BTreeMap<String, Ipv6Addr>,
    /// The user gave the subnet (otherwise it is a unique local /64 berth picked).
    pub user_subnet: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NetworkRecord {
    pub id: String,
    pub name: String,
    /// `bridge`, `macvlan`, `ipvlan`, `host`, `null`.
    pub driver: String,
    pub created: String,
    pub subnet: Option<Subnet>,
    pub gateway: Option<Ipv4Addr>,
    pub ip_range: Option<Subnet>,
    /// Addresses the user reserved (`--aux-address name=ip`).
    pub aux: BTreeMap<String, Ipv4Addr>,
    pub internal: bool,
    pub attachable: bool,
    pub ipv6: bool,
    /// Present when `ipv6` is.
    #[serde(default)]
    pub v6: Option<Ipam6>,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// The kernel interface: the bridge, or the parent of macvlan/ipvlan children.
    pub ifname: String,
    /// Docker's default bridge network (`--link`, no DNS, `bridge` in `network ls`).
    pub default_bridge: bool,
    /// The user gave the subnet (it is not returned to the pool on removal).
    pub user_subnet: bool,
    /// berth made the parent interface (an 802.1q sub-interface such as `eth0.50`) and
    /// removes it with the network.
    #[serde(default)]
    pub made_parent: bool,
    /// A bridge network on a bridge that existed before (`-o com.docker.network.bridge.name`
    /// naming someone else's bridge): never deleted; `Some(true)` if berth added the gateway
    /// address to it, which is all it takes away on removal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopted: Option<bool>,
    /// An adopted bridge's `route_localnet` before berth set it (loopback-published ports
    /// need it), written back on removal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_localnet_was: Option<String>,
    pub endpoints: BTreeMap<String, Endpoint>,
}

impl NetworkRecord {
    pub fn is_user_defined(&self) -> bool {
        !self.default_bridge && !matches!(self.driver.as_str(), "host" | "null")
    }

    pub fn used_ips(&self) -> std::collections::BTreeSet<Ipv4Addr> {
        let mut s: std::collections::BTreeSet<Ipv4Addr> = self.endpoints.values().map(|e| e.ip).collect();
        if let Some(g) = self.gateway {
            s.insert(g);
        }
        s.extend(self.aux.values().copied());
        s
    }

    pub fn used_ips6(&self) -> std::collections::BTreeSet<Ipv6Addr> {
        let mut s: std::collections::BTreeSet<Ipv6Addr> = self.endpoints.values().filter_map(|e| e.ip6).collect();
        if let Some(v6) = &self.v6 {
            s.insert(v6.gateway);
            s.extend(v6.aux.values().copied());
        }
        s
    }
}
