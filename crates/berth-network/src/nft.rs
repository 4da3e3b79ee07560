//! berth's own nftables table: NAT for outbound traffic, published ports, isolation between
//! networks. The whole table is rendered from the service's state and replaced in one
//! transaction, so rules never duplicate and a restart simply re-applies them.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use crate::ipam::Subnet;
use crate::{NetError, Result};

#[derive(Debug, Clone)]
pub struct BridgeRules {
    pub ifname: String,
    pub subnet: Subnet,
    /// The network's IPv6 subnet, if it has IPv6.
    pub subnet6: Option<crate::ipam::Subnet6>,
    pub internal: bool,
    pub masquerade: bool,
    /// Overlay networks: frames between two of the network's containers skip connection
    /// tracking (see the guard chain in [`Ruleset::render`]); traffic to this gateway does not.
    /// Only frames bridged in the host's namespace meet that rule: those of a network with
    /// the bridge layout (see overlay::dataplane); over macvlan they never reach it.
    pub untracked_within: Option<Ipv4Addr>,
}

#[derive(Debug, Clone)]
pub struct PortRule {
    pub proto: String,
    /// Unspecified (`0.0.0.0`, `::`) for all the host's addresses of that family.
    pub host_ip: IpAddr,
    pub host_port: u16,
    /// Of the same family as `host_ip`.
    pub container_ip: IpAddr,
    pub container_port: u16,
}

impl PortRule {
    /// `ip daddr 10.0.0.1 tcp dport 80 dnat ip to 172.17.0.2:80`, or the `ip6` equivalent.
    fn dnat(&self, daddr: &str) -> String {
        let (fam, to) = match self.container_ip {
            IpAddr::V4(c) => ("ip", format!("{c}:{}", self.container_port)),
            IpAddr::V6(c) => ("ip6", format!("[{c}]:{}", self.container_port)),
        };
        format!("    {daddr}{} dport {} dnat {fam} to {to}", self.proto, self.host_port)
    }

    fn family(&self) -> &'static str {
        if self.host_ip.is_ipv6() { "ip6" } else { "ip" }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Ruleset {
    pub table: String,
    pub bridges: Vec<BridgeRules>,
    pub ports: Vec<PortRule>,
    /// Containers may not open connections to anything outside their networks
    /// (`"ip-forward": false`); replies to inbound connections still flow.
    pub no_egress: bool,
}

impl Ruleset {
    pub fn render(&self) -> String {
        let t = &self.table;
        let mut s = String::new();
        // Create-then-delete makes the delete valid whether or not the table existed.
        let _ = writeln!(s, "table inet {t}\ndelete table inet {t}\ntable inet {t} {{");
        let names: Vec<String> = self.bridges.iter().map(|b| format!("\"{}\"", b.ifname)).collect();
        let _ = writeln!(
            s,
            "  set bridges {{ type ifname;{} }}",
            if names.is_empty() { String::new() } else { format!(" elements = {{ {} }};", names.join(", ")) }
        );

        let _ = writeln!(s, "  chain guard {{ type filter hook prerouting priority -300; policy accept;");
        // Bridges need route_localnet for loopback-published ports; never let a container
        // reach the host's loopback through it. (Address first: every packet of the host
        // passes here, and comparing it is cheaper than the set lookup.)
        let _ = writeln!(s, "    ip daddr 127.0.0.0/8 iifname @bridges drop");
        // Frames bridged between containers reach these hooks only through br_netfilter
        // (bridge-nf-call-iptables, a host setting berth does not make), and on an overlay
        // network each one is tracked twice per host: as the container's frame and inside the
        // VXLAN datagram. No NAT applies to them (published ports and masquerading act on
        // routed traffic, hairpin replies go to the gateway), so they are not tracked: about
        // a tenth of the overlay's CPU cost per byte (scripts/bench-overlay.sh). What is lost
        // is what only br_netfilter gave: with ip-masq off, a container that reaches another
        // host's published port is answered from the target container's own address.
        for b in &self.bridges {
            if let Some(gw) = b.untracked_within {
                let _ = writeln!(
                    s,
                    "    iifname \"{0}\" ip saddr {1} ip daddr {1} ip daddr != {gw} notrack",
                    b.ifname, b.subnet
                );
            }
        }
        let _ = writeln!(s, "  }}");

        let _ = writeln!(s, "  chain prerouting {{ type nat hook prerouting priority dstnat; policy accept;");
        for p in &self.ports {
            // Only addresses other hosts can send to: a port published on 127.0.0.1 (or ::1)
            // is reachable from this host alone (moby#45610 is the bug this avoids).
            let fam = p.family();
            let lo = if p.host_ip.is_ipv6() { "::1" } else { "127.0.0.0/8" };
            if p.host_ip.is_loopback() {
                continue;
            }
            let line = if p.host_ip.is_unspecified() {
                p.dnat(&format!("{fam} daddr != {lo} fib daddr type local "))
            } else {
                p.dnat(&format!("{fam} daddr {} ", p.host_ip))
            };
            let _ = writeln!(s, "{line}");
        }
        let _ = writeln!(s, "  }}");

        let _ = writeln!(s, "  chain output {{ type nat hook output priority -100; policy accept;");
        for p in &self.ports {
            let fam = p.family();
            // IPv6 loopback is never NATed: it is relayed (see ports::relayed).
            if p.host_ip == std::net::Ipv6Addr::LOCALHOST {
                continue;
            }
            let line = if p.host_ip.is_unspecified() {
                match p.host_ip {
                    IpAddr::V4(_) => p.dnat("meta nfproto ipv4 fib daddr type local "),
                    IpAddr::V6(_) => p.dnat("ip6 daddr != ::1 fib daddr type local "),
                }
            } else {
                p.dnat(&format!("{fam} daddr {} ", p.host_ip))
            };
            let _ = writeln!(s, "{line}");
        }
        let _ = writeln!(s, "  }}");

        let _ = writeln!(s, "  chain postrouting {{ type nat hook postrouting priority srcnat; policy accept;");
        let _ = writeln!(s, "    ip saddr 127.0.0.0/8 oifname @bridges masquerade");
        for b in &self.bridges {
            if b.masquerade && !b.internal {
                let _ = writeln!(s, "    ip saddr {} oifname != \"{}\" masquerade", b.subnet, b.ifname);
                if let Some(s6) = b.subnet6 {
                    let _ = writeln!(s, "    ip6 saddr {s6} oifname != \"{}\" masquerade", b.ifname);
                }
            }
            // Hairpin: a container reaching its own network through a published port.
            let _ = writeln!(s, "    ip saddr {0} ip daddr {0} ct status dnat masquerade", b.subnet);
            if let Some(s6) = b.subnet6 {
                let _ = writeln!(s, "    ip6 saddr {s6} ip6 daddr {s6} ct status dnat masquerade");
            }
        }
        let _ = writeln!(s, "  }}");

        let _ = writeln!(s, "  chain forward {{ type filter hook forward priority filter; policy accept;");
        for b in &self.bridges {
            let _ = writeln!(s, "    iifname \"{0}\" oifname \"{0}\" accept", b.ifname);
        }
        for b in &self.bridges {
            if b.internal {
                let _ = writeln!(s, "    iifname \"{0}\" drop\n    oifname \"{0}\" drop", b.ifname);
            }
        }
        let _ = writeln!(s, "    iifname @bridges oifname @bridges drop");
        let _ = writeln!(s, "    ct state established,related accept");
        // From anywhere else, only published ports lead into a container network: a host
        // that routes a container's address through this one reaches nothing else (with
        // IPv6's routable subnets, or a neighbour adding a route, it otherwise would).
        // (`ct status != dnat` would compare the whole status word, not the flag.)
        let _ = writeln!(s, "    oifname @bridges ct status dnat accept\n    oifname @bridges drop");
        if self.no_egress {
            let _ = writeln!(s, "    iifname @bridges drop");
        }
        let _ = writeln!(s, "  }}");
        let _ = writeln!(s, "}}");
        s
    }

    /// Replaces the table in the kernel.
    pub fn apply(&self) -> Result<()> {
        run_nft(&self.render())
    }

    pub fn remove(table: &str) {
        let _ = run_nft(&format!("table inet {table}\ndelete table inet {table}\n"));
    }
}

fn run_nft(script: &str) -> Result<()> {
    use std::io::Write;
    let mut child = std::process::Command::new("nft")
        .arg("-f")
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| NetError::System(format!("running nft (is nftables installed?): {e}")))?;
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(script.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| NetError::System(format!("nft: {e}")))?;
    if !out.status.success() {
        return Err(NetError::System(format!("nft: {}", String::from_utf8_lossy(&out.stderr).trim())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_ports_never_reach_prerouting() {
        let r = Ruleset {
            table: "t".into(),
            bridges: vec![BridgeRules {
                ifname: "br0".into(),
                subnet: Subnet::parse("10.1.0.0/24").unwrap(),
                subnet6: None,
                internal: false,
                masquerade: true,
                untracked_within: None,
            }],
            ports: vec![
                PortRule {
                    proto: "tcp".into(),
                    host_ip: "127.0.0.1".parse().unwrap(),
                    host_port: 8080,
                    container_ip: "10.1.0.2".parse().unwrap(),
                    container_port: 80,
                },
                PortRule {
                    proto: "udp".into(),
                    host_ip: "0.0.0.0".parse().unwrap(),
                    host_port: 5353,
                    container_ip: "10.1.0.2".parse().unwrap(),
                    container_port: 53,
                },
            ],
            no_egress: false,
        };
        let text = r.render();
        let pre = &text[text.find("chain prerouting").unwrap()..text.find("chain output").unwrap()];
        assert!(!pre.contains("8080"), "{pre}");
        assert!(pre.contains("udp dport 5353 dnat ip to 10.1.0.2:53"));
        assert!(pre.contains("ip daddr != 127.0.0.0/8"));
        let out = &text[text.find("chain output").unwrap()..text.find("chain postrouting").unwrap()];
        assert!(out.contains("ip daddr 127.0.0.1 tcp dport 8080 dnat ip to 10.1.0.2:80"));
        assert!(text.contains("ip saddr 10.1.0.0/24 oifname != \"br0\" masquerade"));
        assert!(!text.contains("notrack"), "bridge networks keep connection tracking");
        let fwd = &text[text.find("chain forward").unwrap()..];
        let (est, published, rest) = (
            fwd.find("ct state established,related accept").unwrap(),
            fwd.find("oifname @bridges ct status dnat accept").unwrap(),
            fwd.find("\n    oifname @bridges drop").unwrap(),
        );
        assert!(
            est < published && published < rest,
            "replies pass, new connections into containers only through published ports: {fwd}"
        );
    }

    #[test]
    fn overlay_frames_between_containers_are_not_tracked() {
        let ov = BridgeRules {
            ifname: "ovbr4096".into(),
            subnet: Subnet::parse("10.20.0.0/16").unwrap(),
            subnet6: None,
            internal: false,
            masquerade: true,
            untracked_within: Some("10.20.0.1".parse().unwrap()),
        };
        let text = Ruleset { table: "t".into(), bridges: vec![ov], ..Default::default() }.render();
        let guard = &text[text.find("chain guard").unwrap()..text.find("chain prerouting").unwrap()];
        assert!(
            guard.contains(
                "iifname \"ovbr4096\" ip saddr 10.20.0.0/16 ip daddr 10.20.0.0/16 ip daddr != 10.20.0.1 notrack"
            ),
            "{guard}"
        );
    }

    #[test]
    fn ipv6_ports_and_masquerading() {
        let br = BridgeRules {
            ifname: "br6".into(),
            subnet: Subnet::parse("10.1.0.0/24").unwrap(),
            subnet6: Some(crate::ipam::Subnet6::parse("fd00:9::/64").unwrap()),
            internal: false,
            masquerade: true,
            untracked_within: None,
        };
        let c6: IpAddr = "fd00:9::2".parse().unwrap();
        let ports = vec![
            PortRule {
                proto: "tcp".into(),
                host_ip: "::".parse().unwrap(),
                host_port: 8080,
                container_ip: c6,
                container_port: 80,
            },
            PortRule {
                proto: "tcp".into(),
                host_ip: "::1".parse().unwrap(),
                host_port: 8081,
                container_ip: c6,
                container_port: 81,
            },
        ];
        let text = Ruleset { table: "t".into(), bridges: vec![br], ports, ..Default::default() }.render();
        let pre = &text[text.find("chain prerouting").unwrap()..text.find("chain output").unwrap()];
        assert!(
            pre.contains("ip6 daddr != ::1 fib daddr type local tcp dport 8080 dnat ip6 to [fd00:9::2]:80"),
            "{pre}"
        );
        assert!(!pre.contains("8081"), "{pre}");
        let out = &text[text.find("chain output").unwrap()..text.find("chain postrouting").unwrap()];
        assert!(
            out.contains("ip6 daddr != ::1 fib daddr type local tcp dport 8080 dnat ip6 to [fd00:9::2]:80"),
            "{out}"
        );
        assert!(!out.contains("8081"), "IPv6 loopback is proxied, not NATed: {out}");
        assert!(text.contains("ip6 saddr fd00:9::/64 oifname != \"br6\" masquerade"), "{text}");
    }
}
