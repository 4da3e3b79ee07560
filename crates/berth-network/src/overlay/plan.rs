//! The pure part of the overlay driver: where things live in the store, what a network and
//! an endpoint look like there, and the decisions (VNIs, subnets, addresses, kernel entries)
//! made from what was read. No I/O here, so all of it is unit-tested.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::NetError;
use crate::ipam::{self, Subnet};
use crate::model::NetworkRecord;

/// Everything berth keeps in the store is under this prefix.
pub const ROOT: &str = "/berth/v1/overlay/";
/// Docker's option naming a network's VNI (shown by `network inspect`).
pub const VNI_OPTION: &str = "com.docker.network.driver.overlay.vxlanid_list";
/// VNIs chosen by berth start here (as Docker's do); users may pick any valid one.
pub const VNI_FIRST: u32 = 4096;
pub const VNI_MAX: u32 = (1 << 24) - 1;
/// The IANA VXLAN port.
pub const VXLAN_PORT: u16 = 4789;
/// VXLAN adds 50 bytes (outer Ethernet, IPv4, UDP, VXLAN headers) to every frame.
pub const VXLAN_OVERHEAD: u32 = 50;

/// `/berth/v1/overlay/networks/<id>`: the network (its endpoints left out). No lease: a
/// network outlives every host.
pub fn network_key(id: &str) -> String {
    format!("{ROOT}networks/{id}")
}

pub fn networks_prefix() -> String {
    format!("{ROOT}networks/")
}

/// Written by every create and remove; a create only commits if this key did not change
/// since the networks it checked against were read (optimistic concurrency).
pub fn networks_seq_key() -> String {
    format!("{ROOT}networks-seq")
}

/// `/berth/v1/overlay/endpoints/<network>/<ip>`: one endpoint, under the lease of the host
/// it lives on. Keyed by address, so creating the key *is* the cluster-wide address claim.
pub fn endpoint_key(net: &str, ip: Ipv4Addr) -> String {
    format!("{ROOT}endpoints/{net}/{ip}")
}

pub fn endpoints_prefix(net: &str) -> String {
    format!("{ROOT}endpoints/{net}/")
}

pub fn all_endpoints_prefix() -> String {
    format!("{ROOT}endpoints/")
}

/// `/berth/v1/overlay/hosts/<advertise address>`: a live daemon, under its lease.
pub fn host_key(addr: Ipv4Addr) -> String {
    format!("{ROOT}hosts/{addr}")
}

/// An endpoint as the cluster sees it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClusterEndpoint {
    pub network: String,
    pub container: String,
    pub name: String,
    pub ip: Ipv4Addr,
    pub mac: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// The advertise address (VTEP) of the host the container runs on.
    pub host: Ipv4Addr,
}

impl ClusterEndpoint {
    /// Whether `name` (already stripped of a `.network` suffix) names this endpoint.
    pub fn answers(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
            || self.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
            || (name.len() >= 12 && self.container.starts_with(name))
    }
}

/// Linux interface names of a network's bridge and VXLAN device on every host.
pub fn bridge_name(vni: u32) -> String {
    format!("ovbr{vni}")
}

pub fn vxlan_name(vni: u32) -> String {
    format!("ovvx{vni}")
}

pub fn vni_of(n: &NetworkRecord) -> Option<u32> {
    n.options.get(VNI_OPTION).and_then(|v| v.split(',').next()).and_then(|v| v.trim().parse().ok())
}

/// The VNI the user asked for (`-o vxlan-id=N` or Docker's `vxlanid_list`), if any.
pub fn requested_vni(options: &std::collections::BTreeMap<String, String>) -> Result<Option<u32>, NetError> {
    let Some(v) = options.get("vxlan-id").or_else(|| options.get(VNI_OPTION)) else { return Ok(None) };
    let first = v.split(',').next().unwrap_or("").trim();
    match first.parse::<u32>() {
        Ok(n) if (1..=VNI_MAX).contains(&n) => Ok(Some(n)),
        _ => Err(NetError::Invalid(format!("invalid VXLAN ID {v:?}: it must be a number from 1 to {VNI_MAX}"))),
    }
}

/// The lowest free VNI from [`VNI_FIRST`].
pub fn pick_vni(used: &BTreeSet<u32>) -> Option<u32> {
    (VNI_FIRST..=VNI_MAX).find(|v| !used.contains(v))
}

/// Checks a new overlay network against the cluster's: its name, VNI and subnet must be
/// its own.
pub fn check_new(existing: &[NetworkRecord], name: &str, vni: u32, subnet: &Subnet) -> Result<(), NetError> {
    if existing.iter().any(|n| n.name == name) {
        return Err(NetError::Conflict(format!("network with name {name} already exists")));
    }
    if let Some(n) = existing.iter().find(|n| vni_of(n) == Some(vni)) {
        return Err(NetError::Conflict(format!("VXLAN ID {vni} is already used by overlay network {}", n.name)));
    }
    if let Some(n) = existing.iter().find(|n| n.subnet.is_some_and(|s| s.overlaps(subnet))) {
        return Err(NetError::Forbidden(format!(
            "invalid pool request: Pool overlaps with other one on this address space (overlay network {} has {})",
            n.name,
            n.subnet.map(|s| s.to_string()).unwrap_or_default()
        )));
    }
    Ok(())
}

/// A /24 from 10.0.0.0/8 (Docker's global pool) that overlaps none of `taken`.
pub fn pick_subnet(taken: &[Subnet]) -> Option<Subnet> {
    (0u32..65536)
        .map(|i| Subnet { addr: Ipv4Addr::from(0x0a00_0000 | (i << 8)), prefix: 24 })
        .find(|c| !taken.iter().any(|t| t.overlaps(c)))
}

/// The address for a new endpoint: `wanted` if it is free and in the subnet, else the
/// lowest free one. `taken` is every address the cluster has claimed on the network.
pub fn pick_ip(
    net: &NetworkRecord,
    wanted: Option<Ipv4Addr>,
    taken: &BTreeSet<Ipv4Addr>,
) -> Result<Ipv4Addr, NetError> {
    let subnet = net.subnet.ok_or_else(|| NetError::Invalid(format!("network {} has no subnet", net.name)))?;
    let mut used = net.used_ips();
    used.extend(taken.iter().copied());
    match wanted {
        Some(ip) => {
            if !subnet.contains(ip) || ip == subnet.network() || ip == subnet.broadcast() {
                return Err(NetError::Invalid(format!(
                    "invalid address {ip}: it does not belong to any of this network's subnets ({subnet})"
                )));
            }
            if used.contains(&ip) {
                return Err(NetError::Conflict(format!(
                    "Address already in use: {ip} is used on network {}",
                    net.name
                )));
            }
            Ok(ip)
        }
        None => ipam::allocate(&subnet, net.ip_range.as_ref(), &used)
            .ok_or_else(|| NetError::Forbidden(format!("no available IPv4 addresses on network {}", net.name))),
    }
}

/// What to add and what to delete to turn `current` into `desired`.
pub fn diff<T: Ord + Clone>(current: &BTreeSet<T>, desired: &BTreeSet<T>) -> (Vec<T>, Vec<T>) {
    (desired.difference(current).cloned().collect(), current.difference(desired).cloned().collect())
}

/// Neighbour entries (address, MAC) and forwarding entries (MAC, VTEP) of a VXLAN device.
pub type Entries = (BTreeSet<(Ipv4Addr, [u8; 6])>, BTreeSet<([u8; 6], Ipv4Addr)>);

/// The kernel entries that make remote endpoints reachable through the VXLAN device: a
/// neighbour entry (address → MAC, answered by the device's ARP proxy) and a forwarding
/// entry (MAC → the remote host's VTEP).
pub fn remote_entries(remote: &[ClusterEndpoint]) -> Entries {
    let mut neigh = BTreeSet::new();
    let mut fdb = BTreeSet::new();
    for e in remote {
        let mac = ipam::parse_mac(&e.mac).unwrap_or_else(|| ipam::mac_for(e.ip));
        neigh.insert((e.ip, mac));
        fdb.insert((mac, e.host));
    }
    (neigh, fdb)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn net(name: &str, subnet: &str, vni: u32) -> NetworkRecord {
        let s = Subnet::parse(subnet).unwrap();
        let mut options = BTreeMap::new();
        options.insert(VNI_OPTION.to_string(), vni.to_string());
        NetworkRecord {
            id: format!("id-{name}"),
            name: name.into(),
            driver: "overlay".into(),
            created: String::new(),
            subnet: Some(s),
            gateway: Some(s.first_host()),
            ip_range: None,
            aux: BTreeMap::new(),
            internal: false,
            attachable: true,
            ipv6: false,
            v6: None,
            options,
            labels: BTreeMap::new(),
            ifname: bridge_name(vni),
            default_bridge: false,
            user_subnet: true,
            made_parent: false,
            adopted: None,
            route_localnet_was: None,
            endpoints: BTreeMap::new(),
        }
    }

    #[test]
    fn key_layout() {
        assert_eq!(network_key("abc"), "/berth/v1/overlay/networks/abc");
        assert!(network_key("abc").starts_with(&networks_prefix()));
        assert!(!networks_seq_key().starts_with(&networks_prefix()), "the sequence key is not a network");
        let ip = "10.20.0.5".parse().unwrap();
        assert_eq!(endpoint_key("n1", ip), "/berth/v1/overlay/endpoints/n1/10.20.0.5");
        assert!(endpoint_key("n1", ip).starts_with(&endpoints_prefix("n1")));
        assert!(
            !endpoint_key("n10", ip).starts_with(&endpoints_prefix("n1")),
            "a network's prefix holds only its own endpoints"
        );
        assert!(endpoints_prefix("n1").starts_with(&all_endpoints_prefix()));
        assert_eq!(host_key("192.168.1.2".parse().unwrap()), "/berth/v1/overlay/hosts/192.168.1.2");
        assert!(bridge_name(VNI_MAX).len() <= 15 && vxlan_name(VNI_MAX).len() <= 15);
    }

    #[test]
    fn vnis() {
        let mut o = BTreeMap::new();
        assert_eq!(requested_vni(&o).unwrap(), None);
        o.insert("vxlan-id".to_string(), "42".to_string());
        assert_eq!(requested_vni(&o).unwrap(), Some(42));
        o.clear();
        o.insert(VNI_OPTION.to_string(), "4100,4101".to_string());
        assert_eq!(requested_vni(&o).unwrap(), Some(4100));
        o.insert(VNI_OPTION.to_string(), "0".to_string());
        assert!(requested_vni(&o).is_err());
        o.insert(VNI_OPTION.to_string(), "16777216".to_string());
        assert!(requested_vni(&o).is_err());
        let used: BTreeSet<u32> = [4096, 4097, 4099].into();
        assert_eq!(pick_vni(&used), Some(4098));
        assert_eq!(vni_of(&net("a", "10.1.0.0/24", 4242)), Some(4242));
    }

    #[test]
    fn new_networks_must_not_clash() {
        let existing = vec![net("a", "10.20.0.0/16", 4096)];
        let s = |t: &str| Subnet::parse(t).unwrap();
        assert!(check_new(&existing, "b", 4097, &s("10.21.0.0/16")).is_ok());
        let e = check_new(&existing, "b", 4096, &s("10.21.0.0/16")).unwrap_err().to_string();
        assert!(e.contains("VXLAN ID 4096 is already used by overlay network a"), "{e}");
        let e = check_new(&existing, "b", 4097, &s("10.20.5.0/24")).unwrap_err().to_string();
        assert!(e.contains("overlaps") && e.contains("10.20.0.0/16"), "{e}");
        let e = check_new(&existing, "a", 4097, &s("10.22.0.0/16")).unwrap_err().to_string();
        assert!(e.contains("already exists"), "{e}");
    }

    #[test]
    fn subnets_come_from_the_global_pool() {
        assert_eq!(pick_subnet(&[]).unwrap().to_string(), "10.0.0.0/24");
        let taken = [Subnet::parse("10.0.0.0/23").unwrap()];
        assert_eq!(pick_subnet(&taken).unwrap().to_string(), "10.0.2.0/24");
    }

    #[test]
    fn addresses_skip_what_the_cluster_claimed() {
        let n = net("a", "10.20.0.0/29", 4096);
        let taken: BTreeSet<Ipv4Addr> = ["10.20.0.2".parse().unwrap()].into();
        assert_eq!(
            pick_ip(&n, None, &taken).unwrap().to_string(),
            "10.20.0.3",
            "the gateway (.1) and the claimed .2 are skipped"
        );
        assert!(
            pick_ip(&n, Some("10.20.0.2".parse().unwrap()), &taken).unwrap_err().to_string().contains("already in use")
        );
        assert!(pick_ip(&n, Some("10.21.0.2".parse().unwrap()), &taken).is_err());
        assert_eq!(pick_ip(&n, Some("10.20.0.6".parse().unwrap()), &taken).unwrap().to_string(), "10.20.0.6");
        let full: BTreeSet<Ipv4Addr> = (2..=6).map(|i| Ipv4Addr::new(10, 20, 0, i)).collect();
        assert!(pick_ip(&n, None, &full).unwrap_err().to_string().contains("no available"));
    }

    #[test]
    fn kernel_entries_follow_the_remote_endpoints() {
        let ep = |ip: &str, host: &str| ClusterEndpoint {
            network: "n".into(),
            container: "c".into(),
            name: "x".into(),
            ip: ip.parse().unwrap(),
            mac: String::new(),
            aliases: vec![],
            host: host.parse().unwrap(),
        };
        let (neigh, fdb) = remote_entries(&[ep("10.20.0.2", "192.168.9.2"), ep("10.20.0.3", "192.168.9.3")]);
        assert_eq!(neigh.len(), 2);
        assert!(fdb.contains(&(ipam::mac_for("10.20.0.3".parse().unwrap()), "192.168.9.3".parse().unwrap())));
        let (now, _) = remote_entries(&[ep("10.20.0.3", "192.168.9.3")]);
        let (add, del) = diff(&neigh, &now);
        assert!(add.is_empty());
        assert_eq!(del, vec![("10.20.0.2".parse().unwrap(), ipam::mac_for("10.20.0.2".parse().unwrap()))]);
    }

    #[test]
    fn remote_names() {
        let e = ClusterEndpoint {
            network: "n".into(),
            container: "0123456789abcdef".into(),
            name: "web".into(),
            ip: "10.0.0.2".parse().unwrap(),
            mac: String::new(),
            aliases: vec!["front".into()],
            host: "1.1.1.1".parse().unwrap(),
        };
        assert!(e.answers("WEB") && e.answers("front") && e.answers("0123456789ab"));
        assert!(!e.answers("0123") && !e.answers("db"));
    }
}
