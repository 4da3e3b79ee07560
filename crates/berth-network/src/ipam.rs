//! Address management: subnets, gateways and the addresses handed to endpoints, for IPv4
//! ([`Subnet`]) and IPv6 ([`Subnet6`]).

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
pub struct Subnet {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    /// Parses `10.1.0.0/16`. Host bits must be zero, as Docker insists.
    pub fn parse(s: &str) -> Result<Subnet, String> {
        let (a, p) = s.split_once('/').ok_or_else(|| format!("invalid subnet {s}: missing prefix length"))?;
        let addr: Ipv4Addr = a.parse().map_err(|_| format!("invalid subnet {s}: bad address"))?;
        let prefix: u8 =
            p.parse().ok().filter(|p| *p <= 32).ok_or_else(|| format!("invalid subnet {s}: bad prefix length"))?;
        let sn = Subnet { addr, prefix };
        if sn.network() != addr {
            return Err(format!("invalid subnet {s}: it should be {}/{prefix}", sn.network()));
        }
        Ok(sn)
    }

    /// Parses an address with a prefix, keeping the host part (`--bip 10.1.0.1/24`).
    pub fn parse_cidr_host(s: &str) -> Result<(Ipv4Addr, Subnet), String> {
        let (a, p) = s.split_once('/').ok_or_else(|| format!("invalid CIDR {s}"))?;
        let addr: Ipv4Addr = a.parse().map_err(|_| format!("invalid CIDR {s}"))?;
        let prefix: u8 = p.parse().ok().filter(|p| *p <= 30).ok_or_else(|| format!("invalid CIDR {s}"))?;
        let sn = Subnet { addr, prefix };
        Ok((addr, Subnet { addr: sn.network(), prefix }))
    }

    fn mask(&self) -> u32 {
        if self.prefix == 0 { 0 } else { u32::MAX << (32 - self.prefix) }
    }

    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network()) | !self.mask())
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network())
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.contains(other.network()) || other.contains(self.network())
    }

    /// The first usable address, Docker's default gateway.
    pub fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network()) + 1)
    }

    pub fn size(&self) -> u64 {
        1u64 << (32 - self.prefix as u32)
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Picks the next free address in `range` (or the subnet) that is not the network,
/// broadcast, gateway, or already used.
pub fn allocate(subnet: &Subnet, range: Option<&Subnet>, used: &BTreeSet<Ipv4Addr>) -> Option<Ipv4Addr> {
    let r = range.unwrap_or(subnet);
    let start = u32::from(r.network());
    let end = u32::from(r.broadcast());
    for n in start..=end {
        let ip = Ipv4Addr::from(n);
        if ip == subnet.network() || ip == subnet.broadcast() || used.contains(&ip) {
            continue;
        }
        return Some(ip);
    }
    None
}

/// An IPv6 subnet (`fd12:3456:789a::/64`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
pub struct Subnet6 {
    pub addr: Ipv6Addr,
    pub prefix: u8,
}

impl Subnet6 {
    /// Parses `fd00:1::/64`. Host bits must be zero, as for IPv4.
    pub fn parse(s: &str) -> Result<Subnet6, String> {
        let sn = Subnet6::parse_any(s)?;
        if sn.network() != sn.addr {
            return Err(format!("invalid subnet {s}: it should be {}/{}", sn.network(), sn.prefix));
        }
        Ok(sn)
    }

    /// Parses a subnet, or an address with a prefix standing for its subnet.
    pub fn parse_network(s: &str) -> Result<Subnet6, String> {
        let sn = Subnet6::parse_any(s)?;
        Ok(Subnet6 { addr: sn.network(), prefix: sn.prefix })
    }

    /// An address and a prefix length, host bits as given.
    fn parse_any(s: &str) -> Result<Subnet6, String> {
        let (a, p) = s.split_once('/').ok_or_else(|| format!("invalid subnet {s}: missing prefix length"))?;
        let addr: Ipv6Addr = a.parse().map_err(|_| format!("invalid subnet {s}: bad address"))?;
        let prefix: u8 =
            p.parse().ok().filter(|p| *p <= 128).ok_or_else(|| format!("invalid subnet {s}: bad prefix length"))?;
        Ok(Subnet6 { addr, prefix })
    }

    fn mask(&self) -> u128 {
        if self.prefix == 0 { 0 } else { u128::MAX << (128 - self.prefix) }
    }

    pub fn network(&self) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.addr) & self.mask())
    }

    pub fn last(&self) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.network()) | !self.mask())
    }

    pub fn contains(&self, ip: Ipv6Addr) -> bool {
        u128::from(ip) & self.mask() == u128::from(self.network())
    }

    pub fn overlaps(&self, other: &Subnet6) -> bool {
        self.contains(other.network()) || other.contains(self.network())
    }

    /// `::1` in the subnet, the default gateway.
    pub fn first_host(&self) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.network()) + 1)
    }

    /// A unique local /64 (RFC 4193) whose 40-bit global ID comes from `seed` (a network ID,
    /// itself random) and whose subnet ID is `n`: what a network gets when `--ipv6` is asked
    /// for without a subnet.
    pub fn ula(seed: &str, n: u16) -> Subnet6 {
        let hex: Vec<u8> = (0..5)
            .map(|i| seed.get(2 * i..2 * i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()).unwrap_or(0))
            .collect();
        let mut o = [0u8; 16];
        o[0] = 0xfd;
        o[1..6].copy_from_slice(&hex);
        o[6..8].copy_from_slice(&n.to_be_bytes());
        Subnet6 { addr: Ipv6Addr::from(o), prefix: 64 }
    }
}

impl std::fmt::Display for Subnet6 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Picks the next free IPv6 address in `range` (or the subnet), skipping the subnet-router
/// anycast address (the subnet's first) and what is used.
pub fn allocate6(subnet: &Subnet6, range: Option<&Subnet6>, used: &BTreeSet<Ipv6Addr>) -> Option<Ipv6Addr> {
    let r = range.unwrap_or(subnet);
    let start = u128::from(r.network());
    let end = u128::from(r.last());
    // Addresses are handed out in order, so the search ends near the number in use.
    (start..=end).take(used.len() + 2).map(Ipv6Addr::from).find(|ip| *ip != subnet.network() && !used.contains(ip))
}

/// Docker's MAC for an address: `02:42` followed by the four address bytes.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

pub fn mac_string(m: &[u8; 6]) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<u8> = s.split(':').filter_map(|p| u8::from_str_radix(p, 16).ok()).collect();
    (parts.len() == 6 && s.split(':').count() == 6)
        .then(|| [parts[0], parts[1], parts[2], parts[3], parts[4], parts[5]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets() {
        let s = Subnet::parse("10.99.0.0/24").unwrap();
        assert!(s.contains("10.99.0.7".parse().unwrap()));
        assert!(!s.contains("10.99.1.7".parse().unwrap()));
        assert_eq!(s.first_host().to_string(), "10.99.0.1");
        assert!(Subnet::parse("10.99.0.1/24").unwrap_err().contains("should be 10.99.0.0/24"));
        assert!(Subnet::parse("10.0.0.0/16").unwrap().overlaps(&Subnet::parse("10.0.5.0/24").unwrap()));
        assert!(!Subnet::parse("10.0.0.0/24").unwrap().overlaps(&Subnet::parse("10.0.1.0/24").unwrap()));
        let (h, n) = Subnet::parse_cidr_host("172.17.0.1/16").unwrap();
        assert_eq!((h.to_string(), n.to_string()), ("172.17.0.1".into(), "172.17.0.0/16".into()));
    }

    #[test]
    fn allocation_skips_reserved() {
        let s = Subnet::parse("10.0.0.0/30").unwrap();
        let mut used = BTreeSet::new();
        used.insert(s.first_host());
        assert_eq!(allocate(&s, None, &used), Some("10.0.0.2".parse().unwrap()));
        used.insert("10.0.0.2".parse().unwrap());
        assert_eq!(allocate(&s, None, &used), None);
        assert_eq!(mac_string(&mac_for("172.17.0.2".parse().unwrap())), "02:42:ac:11:00:02");
        assert_eq!(parse_mac("02:42:ac:11:00:02"), Some([2, 0x42, 0xac, 0x11, 0, 2]));
        assert_eq!(parse_mac("xx"), None);
    }

    #[test]
    fn ipv6_subnets_and_allocation() {
        let s = Subnet6::parse("fd00:1:2::/64").unwrap();
        assert!(s.contains("fd00:1:2::99".parse().unwrap()));
        assert!(!s.contains("fd00:1:3::1".parse().unwrap()));
        assert_eq!(s.first_host().to_string(), "fd00:1:2::1");
        assert!(Subnet6::parse("fd00:1:2::1/64").unwrap_err().contains("should be fd00:1:2::/64"));
        assert!(Subnet6::parse("10.0.0.0/8").is_err());
        assert!(!Subnet6::parse("fd00::/48").unwrap().overlaps(&s));
        assert!(Subnet6::parse("fd00:1::/32").unwrap().overlaps(&s));
        let mut used = BTreeSet::new();
        used.insert(s.first_host());
        assert_eq!(allocate6(&s, None, &used), Some("fd00:1:2::2".parse().unwrap()));
        used.insert("fd00:1:2::2".parse().unwrap());
        assert_eq!(allocate6(&s, None, &used), Some("fd00:1:2::3".parse().unwrap()));
        let tiny = Subnet6::parse("fd00:1:2::/127").unwrap();
        assert_eq!(allocate6(&tiny, None, &BTreeSet::new()), Some("fd00:1:2::1".parse().unwrap()));
        assert_eq!(allocate6(&tiny, None, &[Ipv6Addr::from(u128::from(tiny.addr) + 1)].into()), None);
        let u = Subnet6::ula("0123456789abcdef", 7);
        assert_eq!(u.to_string(), "fd01:2345:6789:7::/64");
    }
}
