//! IPv6 on bridge, macvlan and ipvlan networks: the IPAM side of `network create --ipv6`,
//! and the host settings IPv6 forwarding needs.
//!
//! A network with IPv6 is dual-stack: it keeps its IPv4 subnet and gets one IPv6 subnet, the
//! user's or a unique local /64 berth picks (as Docker >= 27 does). Endpoints get an address
//! from each; the bridge carries both gateways; the resolver answers AAAA queries; published
//! ports reach the container over IPv6 too; outbound IPv6 is masqueraded like IPv4.

use std::collections::BTreeMap;
use std::net::Ipv6Addr;

use berth_api::models::IpamConfig;

use crate::ipam::Subnet6;
use crate::model::{Ipam6, NetworkRecord};
use crate::{NetError, Result};

/// Whether an IPAM config entry is for IPv6 (by its subnet, else its gateway or range).
pub fn is_v6(c: &IpamConfig) -> bool {
    [&c.subnet, &c.gateway, &c.ip_range].into_iter().find(|s| !s.is_empty()).is_some_and(|s| s.contains(':'))
}

/// The IPv6 side of a new network: from its IPv6 IPAM entry, or a unique local /64 that
/// neither another network nor the host's routes use. `enabled` is the request's EnableIPv6:
/// when it is absent, an IPv6 subnet turns IPv6 on (what giving one means; docker-py relies
/// on it); when it is false, an IPv6 subnet is a contradiction. `seed` is the new network's
/// ID.
pub fn ipam_for(
    name: &str,
    enabled: Option<bool>,
    cfgs: &[IpamConfig],
    nets: &BTreeMap<String, NetworkRecord>,
    seed: &str,
    check_overlap: bool,
) -> Result<Option<Ipam6>> {
    let v6: Vec<&IpamConfig> = cfgs.iter().filter(|c| is_v6(c)).collect();
    if !enabled.unwrap_or(!v6.is_empty()) {
        if let Some(c) = v6.first() {
            let what = if c.subnet.is_empty() { &c.gateway } else { &c.subnet };
            return Err(NetError::Invalid(format!(
                "network {name} is given the IPv6 subnet or gateway {what} but IPv6 is disabled on it (EnableIPv6 is false)"
            )));
        }
        return Ok(None);
    }
    if v6.len() > 1 {
        return Err(NetError::Invalid("berth supports one IPv6 subnet per network".into()));
    }
    let c = v6.first();
    let taken: Vec<(&str, Subnet6)> =
        nets.values().filter_map(|n| n.v6.as_ref().map(|v| (n.name.as_str(), v.subnet))).collect();
    let (subnet, user_subnet) = match c.filter(|c| !c.subnet.is_empty()) {
        Some(c) => {
            // An address with its prefix stands for its subnet (`2001:db8::1/64`), as Docker
            // has always taken IPv6 subnets.
            let s = Subnet6::parse_network(&c.subnet).map_err(NetError::Invalid)?;
            if check_overlap && let Some((other, _)) = taken.iter().find(|(_, t)| t.overlaps(&s)) {
                return Err(NetError::Forbidden(format!(
                    "invalid pool request: Pool overlaps with other one on this address space (network {other})"
                )));
            }
            (s, true)
        }
        None => {
            if c.is_some() {
                return Err(NetError::Invalid("an IPv6 gateway or ip-range needs an IPv6 subnet".into()));
            }
            let routes = host_routes6();
            let s = (0..=u16::MAX)
                .map(|n| Subnet6::ula(seed, n))
                .find(|s| !taken.iter().any(|(_, t)| t.overlaps(s)) && !routes.iter().any(|r| r.overlaps(s)))
                .ok_or_else(|| {
                    NetError::Forbidden(
                        "could not find an available, non-overlapping IPv6 subnet for the network".into(),
                    )
                })?;
            (s, false)
        }
    };
    let gateway = match c.map(|c| c.gateway.as_str()).filter(|g| !g.is_empty()) {
        Some(g) => {
            let ip: Ipv6Addr = g.parse().map_err(|_| NetError::Invalid(format!("invalid IPv6 gateway address {g}")))?;
            if !subnet.contains(ip) {
                return Err(NetError::Invalid(format!("gateway {ip} is not in subnet {subnet}")));
            }
            ip
        }
        None => subnet.first_host(),
    };
    let ip_range = match c.map(|c| c.ip_range.as_str()).filter(|r| !r.is_empty()) {
        Some(r) => {
            let rg = Subnet6::parse(r).map_err(NetError::Invalid)?;
            if !subnet.contains(rg.network()) || !subnet.contains(rg.last()) {
                return Err(NetError::Invalid(format!("ip-range {rg} is not within subnet {subnet}")));
            }
            Some(rg)
        }
        None => None,
    };
    let mut aux = BTreeMap::new();
    for (k, v) in c.and_then(|c| c.auxiliary_addresses.clone()).unwrap_or_default() {
        let ip: Ipv6Addr = v.parse().map_err(|_| NetError::Invalid(format!("invalid auxiliary address {v}")))?;
        if !subnet.contains(ip) {
            return Err(NetError::Invalid(format!("auxiliary address {ip} is not in subnet {subnet}")));
        }
        aux.insert(k, ip);
    }
    Ok(Some(Ipam6 { subnet, gateway, ip_range, aux, user_subnet }))
}

/// The host's IPv6 routes (other than default and link-local), from /proc/net/ipv6_route.
fn host_routes6() -> Vec<Subnet6> {
    let Ok(text) = std::fs::read_to_string("/proc/net/ipv6_route") else { return Vec::new() };
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let dst = u128::from_str_radix(f.next()?, 16).ok()?;
            let prefix = u8::from_str_radix(f.next()?, 16).ok()?;
            let addr = Ipv6Addr::from(dst);
            (prefix > 0 && !addr.is_unicast_link_local() && !addr.is_multicast() && !addr.is_loopback())
                .then_some(Subnet6 { addr, prefix })
        })
        .collect()
}

/// Switches IPv6 forwarding on for the namespace the daemon runs in, as a network with IPv6
/// needs when containers may reach beyond it. `conf` is `/proc/sys/net/ipv6/conf`, `routes`
/// the IPv6 routing table (`/proc/net/ipv6_route`).
///
/// With forwarding on, Linux stops accepting router advertisements on interfaces whose
/// `accept_ra` is 1, so a host configured by SLAAC silently loses its IPv6 default route a
/// while after Docker enables forwarding. berth first moves the interfaces that hold routes
/// learned from advertisements to `accept_ra = 2` ("accept even when forwarding"), which keeps
/// the host's own behaviour. No other interface changes: bridges, container links and
/// `default` keep ignoring advertisements, so a container cannot route the host.
pub fn enable_forwarding(conf: &std::path::Path, routes: &std::path::Path) {
    let all = conf.join("all").join("forwarding");
    if std::fs::read_to_string(&all).is_ok_and(|v| v.trim() == "1") {
        return;
    }
    const RTF_ADDRCONF: u32 = 0x0004_0000;
    let learned: std::collections::BTreeSet<String> = std::fs::read_to_string(routes)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let flags = u32::from_str_radix(f.get(8)?, 16).ok()?;
            (flags & RTF_ADDRCONF != 0).then(|| f.get(9).map(|d| d.to_string())).flatten()
        })
        .collect();
    for dev in learned {
        let ra = conf.join(&dev).join("accept_ra");
        if std::fs::read_to_string(&ra).is_ok_and(|v| v.trim() == "1") {
            let _ = std::fs::write(&ra, "2");
        }
    }
    let _ = std::fs::write(&all, "1");
}

/// Inside a new container namespace: ignore router advertisements. Another container on the
/// same link could otherwise send one and become this container's IPv6 router
/// (CVE-2020-13401); berth configures every route itself. New interfaces inherit `default`.
pub fn refuse_router_advertisements(conf: &std::path::Path) {
    for i in ["all", "default"] {
        let _ = std::fs::write(conf.join(i).join("accept_ra"), "0");
    }
}

/// Turns IPv6 off (or back on) in the namespace `ns`, as Docker does for a container
/// without an IPv6 network: no address but IPv4's, not even `::1`. `all` reaches every
/// interface there is, `default` the ones made later.
pub fn set_disabled_in(ns: &std::path::Path, disabled: bool) {
    let v = if disabled { "1" } else { "0" };
    let _ = crate::netns::run_in(ns, || {
        for i in ["all", "default"] {
            let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{i}/disable_ipv6"), v);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(subnet: &str, gateway: &str) -> IpamConfig {
        IpamConfig { subnet: subnet.into(), gateway: gateway.into(), ..Default::default() }
    }

    #[test]
    fn ipv6_ipam_from_requests() {
        let nets = BTreeMap::new();
        let v4 = cfg("10.0.0.0/24", "");
        assert!(!is_v6(&v4) && is_v6(&cfg("", "fd00::1")));
        assert_eq!(ipam_for("n", None, std::slice::from_ref(&v4), &nets, "ab", true).unwrap(), None);
        assert_eq!(ipam_for("n", Some(false), std::slice::from_ref(&v4), &nets, "ab", true).unwrap(), None);
        let e = ipam_for("n", Some(false), &[cfg("fd01::/64", "")], &nets, "ab", true).unwrap_err().to_string();
        assert!(e.contains("fd01::/64") && e.contains("disabled"), "{e}");
        let implied = ipam_for("n", None, &[cfg("2001:db8::1/64", "")], &nets, "ab", true).unwrap().unwrap();
        assert_eq!(implied.subnet.to_string(), "2001:db8::/64", "an IPv6 subnet turns IPv6 on");
        let v = ipam_for("n", Some(true), &[v4, cfg("fd01::/64", "")], &nets, "ab", true).unwrap().unwrap();
        assert_eq!(
            (v.subnet.to_string(), v.gateway.to_string(), v.user_subnet),
            ("fd01::/64".into(), "fd01::1".into(), true)
        );
        let e = ipam_for("n", Some(true), &[cfg("fd01::/64", "fd02::1")], &nets, "ab", true).unwrap_err().to_string();
        assert!(e.contains("not in subnet"), "{e}");
        let auto = ipam_for("n", Some(true), &[], &nets, "abcdef0123", true).unwrap().unwrap();
        assert!(auto.subnet.to_string().starts_with("fdab:cdef:123:"), "{}", auto.subnet);
        assert!(!auto.user_subnet);
    }

    #[test]
    fn forwarding_keeps_router_advertisements_where_the_host_learned_routes() {
        let d = tempfile::tempdir().unwrap();
        let conf = d.path().join("conf");
        for i in ["all", "default", "eth0", "eth1", "br-x", "lo"] {
            std::fs::create_dir_all(conf.join(i)).unwrap();
            std::fs::write(conf.join(i).join("accept_ra"), "1").unwrap();
            std::fs::write(conf.join(i).join("forwarding"), "0").unwrap();
        }
        // eth0 has a default route and a prefix from advertisements (flags 0x00450003 and
        // 0x00040001); eth1 has a static default route; br-x only its own prefix.
        let routes = d.path().join("ipv6_route");
        std::fs::write(
            &routes,
            "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00450003     eth0\n\
             20010db8000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00040001     eth0\n\
             00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000001 00000000 00000003     eth1\n\
             fd420000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     br-x\n",
        )
        .unwrap();
        enable_forwarding(&conf, &routes);
        let read = |i: &str, k: &str| std::fs::read_to_string(conf.join(i).join(k)).unwrap();
        assert_eq!(read("all", "forwarding"), "1");
        assert_eq!(read("eth0", "accept_ra"), "2", "the host keeps its advertised routes");
        for i in ["eth1", "br-x", "default"] {
            assert_eq!(read(i, "accept_ra"), "1", "{i} is left alone");
        }
    }
}
