//! Published ports: picking host ports and holding them so nothing else can take them.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::OwnedFd;

use berth_api::models::{PortBinding, PortMap};

use crate::{NetError, Result};

/// One host port bound to one container port.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    pub proto: String,
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_port: u16,
}

/// A socket bound, never listening, on a host port: while it exists no other program can
/// bind the port (it sets no SO_REUSEADDR), so a clash is reported at start; and since it
/// never listens, no connection can ever land on it instead of the container.
pub struct Reservation(#[allow(dead_code)] OwnedFd);

fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().filter_map(|x| x.parse().ok());
            Some((it.next()?, it.next()?))
        })
        .unwrap_or((32768, 60999))
}

fn reserve(proto: &str, ip: Option<Ipv4Addr>, port: u16) -> std::io::Result<Reservation> {
    use rustix::net::{bind, socket_with, AddressFamily, SocketFlags, SocketType};
    let ty = if proto == "udp" { SocketType::DGRAM } else { SocketType::STREAM };
    let fd = socket_with(AddressFamily::INET, ty, SocketFlags::CLOEXEC, None)?;
    bind(&fd, &SocketAddrV4::new(ip.unwrap_or(Ipv4Addr::UNSPECIFIED), port))?;
    Ok(Reservation(fd))
}

/// Turns the container's port bindings (and `-P`'s exposed ports) into concrete mappings,
/// reserving each host port. Fails, reserving nothing, if a port is taken.
pub fn allocate(bindings: &PortMap, exposed: &[String], publish_all: bool, taken: &dyn Fn(&str, u16) -> bool) -> Result<(Vec<Mapping>, Vec<Reservation>)> {
    let mut wanted: BTreeMap<String, Vec<PortBinding>> = BTreeMap::new();
    for (k, v) in bindings {
        wanted.insert(k.clone(), v.clone().unwrap_or_default());
    }
    if publish_all {
        for k in exposed {
            wanted.entry(k.clone()).or_insert_with(|| vec![PortBinding::default()]);
        }
    }
    let mut maps = Vec::new();
    let mut res = Vec::new();
    let (lo, hi) = ephemeral_range();
    for (key, binds) in wanted {
        let (port, proto) = key.split_once('/').unwrap_or((&key, "tcp"));
        let (c0, c1) = match port.split_once('-') {
            Some((a, b)) => (a.parse::<u16>().ok(), b.parse::<u16>().ok()),
            None => (port.parse().ok(), port.parse().ok()),
        };
        let (Some(c0), Some(c1)) = (c0, c1) else {
            return Err(NetError::Invalid(format!("invalid port {key}")));
        };
        for b in binds {
            let ip: Option<Ipv4Addr> = match b.host_ip.as_str() {
                "" | "0.0.0.0" | "::" => None,
                s => Some(s.parse().map_err(|_| NetError::Invalid(format!("invalid host IP {s} (IPv6 host addresses are not supported yet)")))?),
            };
            for cp in c0..=c1 {
                let fixed: Option<(u16, u16)> = if b.host_port.is_empty() {
                    None
                } else {
                    let (a, z) = b.host_port.split_once('-').unwrap_or((&b.host_port, &b.host_port));
                    let a: u16 = a.parse().map_err(|_| NetError::Invalid(format!("invalid host port {}", b.host_port)))?;
                    let z: u16 = z.parse().map_err(|_| NetError::Invalid(format!("invalid host port {}", b.host_port)))?;
                    if c0 != c1 && a != z {
                        Some((a + (cp - c0), a + (cp - c0)))
                    } else {
                        Some((a, z))
                    }
                };
                let (from, to) = fixed.unwrap_or((lo, hi));
                let mut got = None;
                let mut last_err = None;
                for hp in from..=to {
                    if taken(proto, hp) {
                        continue;
                    }
                    match reserve(proto, ip, hp) {
                        Ok(r) => {
                            got = Some((hp, r));
                            break;
                        }
                        Err(e) => last_err = Some(e),
                    }
                }
                match got {
                    Some((hp, r)) => {
                        res.push(r);
                        maps.push(Mapping { proto: proto.to_string(), host_ip: ip, host_port: hp, container_port: cp });
                    }
                    None => {
                        let shown = format!("{}:{}", ip.map(|i| i.to_string()).unwrap_or_else(|| "0.0.0.0".into()), if b.host_port.is_empty() { "0".to_string() } else { b.host_port.clone() });
                        let why = last_err.map(|e| e.to_string()).unwrap_or_else(|| "port is already allocated".into());
                        return Err(NetError::Conflict(format!("Bind for {shown} failed: port is already allocated ({why})")));
                    }
                }
            }
        }
    }
    Ok((maps, res))
}

/// The `Ports` map inspect shows.
pub fn port_map(maps: &[Mapping], exposed: &[String]) -> PortMap {
    let mut m: PortMap = BTreeMap::new();
    for e in exposed {
        m.insert(e.clone(), None);
    }
    for p in maps {
        let key = format!("{}/{}", p.container_port, p.proto);
        m.entry(key).or_insert(None).get_or_insert_with(Vec::new).push(PortBinding {
            host_ip: p.host_ip.map(|i| i.to_string()).unwrap_or_else(|| "0.0.0.0".into()),
            host_port: p.host_port.to_string(),
        });
    }
    m
}
