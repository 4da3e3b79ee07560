//! Published ports: picking host ports and holding them so nothing else can take them.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::OwnedFd;

use berth_api::models::{PortBinding, PortMap};

use crate::{NetError, Result};

/// One host port bound to one container port.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    pub proto: String,
    /// The host address; unspecified (`0.0.0.0` or `::`) for all of that family's.
    pub host_ip: IpAddr,
    pub host_port: u16,
    pub container_port: u16,
}

/// A socket bound on a host port: while it exists no other program can bind the port (it
/// sets no SO_REUSEADDR), so a clash is reported at start. It never listens, so no
/// connection can land on it instead of the container; except where NAT cannot reach the
/// container (see [`relayed`]): there it becomes the listener of a relay.
pub struct Reservation {
    fd: Option<OwnedFd>,
    /// The address and port it holds, and its protocol.
    pub proto: String,
    pub host: SocketAddr,
    relay: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        // Aborting the accept loop drops its set of connections, which aborts them too.
        if let Some(t) = self.relay.take() {
            t.abort();
        }
    }
}

/// Whether some connections to `host` go through a relay in the daemon rather than NAT: TCP
/// to IPv6 loopback (`::1`, or `::`, which includes it), since Linux drops a reply whose
/// destination turns back into `::1` on a non-loopback interface (IPv6 has no
/// `route_localnet`); and TCP to any IPv6 address when the container has no IPv6 address
/// (NAT cannot change the family), as Docker's userland proxy relays it.
pub fn relayed(proto: &str, host: IpAddr, container_has_v6: bool) -> bool {
    proto == "tcp" && host.is_ipv6() && (host.is_loopback() || host.is_unspecified() || !container_has_v6)
}

impl Reservation {
    /// Makes the socket listen and relays each connection to `to` (the container).
    pub fn relay_to(&mut self, to: SocketAddr, rt: &tokio::runtime::Handle) -> std::io::Result<()> {
        let Some(fd) = self.fd.take() else { return Ok(()) };
        rustix::net::listen(&fd, 128)?;
        let l = std::net::TcpListener::from(fd);
        l.set_nonblocking(true)?;
        let _g = rt.enter();
        let l = tokio::net::TcpListener::from_std(l)?;
        self.relay = Some(rt.spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    accepted = l.accept() => match accepted {
                        Ok((mut a, _)) => {
                            conns.spawn(async move {
                                if let Ok(mut b) = tokio::net::TcpStream::connect(to).await {
                                    let _ = a.set_nodelay(true);
                                    let _ = b.set_nodelay(true);
                                    let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
                                }
                            });
                        }
                        // Out of descriptors or memory: let some connections end first.
                        Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
                    },
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
        }));
        Ok(())
    }
}

fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().filter_map(|x| x.parse().ok());
            Some((it.next()?, it.next()?))
        })
        .unwrap_or((32768, 60999))
}

fn reserve(proto: &str, ip: IpAddr, port: u16, container_has_v6: bool) -> std::io::Result<Reservation> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType, bind, socket_with, sockopt};
    let ty = if proto == "udp" { SocketType::DGRAM } else { SocketType::STREAM };
    let family = if ip.is_ipv6() { AddressFamily::INET6 } else { AddressFamily::INET };
    let fd = socket_with(family, ty, SocketFlags::CLOEXEC, None)?;
    if ip.is_ipv6() {
        // `::` holds the IPv6 port only; IPv4 has its own reservation.
        sockopt::set_ipv6_v6only(&fd, true)?;
    }
    if relayed(proto, ip, container_has_v6) {
        // This one listens, as a relay, and relayed connections leave
        // the port in TIME-WAIT, which would keep a restarted daemon from taking it back. A
        // listening socket still keeps every other program off the port.
        sockopt::set_socket_reuseaddr(&fd, true)?;
    }
    let host = SocketAddr::new(ip, port);
    bind(&fd, &host)?;
    Ok(Reservation { fd: Some(fd), proto: proto.to_string(), host, relay: None })
}

/// Whether the host has IPv6 (the kernel has it, and it is not turned off).
pub fn host_has_ipv6() -> bool {
    std::fs::read_to_string("/proc/sys/net/ipv6/conf/all/disable_ipv6").is_ok_and(|v| v.trim() == "0")
}

/// The host addresses one binding stands for. An empty address means every address: IPv4's
/// and IPv6's when the host has IPv6 (as Docker publishes on `0.0.0.0` and `::`); for a
/// container without an IPv6 address only TCP is relayed there (see [`relayed`]), UDP cannot
/// be. `0.0.0.0` and `::` mean every address of their family only.
fn host_addrs(given: &str, proto: &str, v6: bool) -> Result<Vec<IpAddr>> {
    let addrs = match given {
        "" => {
            let mut v = vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)];
            if v6 || (proto == "tcp" && host_has_ipv6()) {
                v.push(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
            }
            v
        }
        s => vec![
            s.trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .map_err(|_| NetError::Invalid(format!("invalid host IP {s}")))?,
        ],
    };
    if proto != "tcp"
        && let Some(a) = addrs.iter().find(|a| a.is_ipv6() && (!v6 || a.is_loopback()))
    {
        let why = if a.is_loopback() {
            "IPv6 loopback cannot carry NATed replies and berth relays only TCP"
        } else {
            "the container has no IPv6 address (its network needs --ipv6)"
        };
        return Err(NetError::Invalid(format!("cannot publish {proto} on the IPv6 address {a}: {why}")));
    }
    Ok(addrs)
}

/// Turns the container's port bindings (and `-P`'s exposed ports) into concrete mappings,
/// reserving each host port. `v6` says whether the container has an IPv6 address. Fails,
/// reserving nothing, if a port is taken.
pub fn allocate(
    bindings: &PortMap,
    exposed: &[String],
    publish_all: bool,
    v6: bool,
    taken: &dyn Fn(&str, u16) -> bool,
) -> Result<(Vec<Mapping>, Vec<Reservation>)> {
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
            let ips = host_addrs(&b.host_ip, proto, v6)?;
            for cp in c0..=c1 {
                let fixed: Option<(u16, u16)> = if b.host_port.is_empty() {
                    None
                } else {
                    let (a, z) = b.host_port.split_once('-').unwrap_or((&b.host_port, &b.host_port));
                    let a: u16 =
                        a.parse().map_err(|_| NetError::Invalid(format!("invalid host port {}", b.host_port)))?;
                    let z: u16 =
                        z.parse().map_err(|_| NetError::Invalid(format!("invalid host port {}", b.host_port)))?;
                    if c0 != c1 && a != z { Some((a + (cp - c0), a + (cp - c0))) } else { Some((a, z)) }
                };
                let (from, to) = fixed.unwrap_or((lo, hi));
                let mut got = None;
                let mut last_err = None;
                // One host port for every address of the binding.
                for hp in from..=to {
                    if taken(proto, hp) {
                        continue;
                    }
                    match ips.iter().map(|ip| reserve(proto, *ip, hp, v6)).collect::<std::io::Result<Vec<_>>>() {
                        Ok(r) => {
                            got = Some((hp, r));
                            break;
                        }
                        Err(e) => last_err = Some(e),
                    }
                }
                match got {
                    Some((hp, r)) => {
                        res.extend(r);
                        maps.extend(ips.iter().map(|ip| Mapping {
                            proto: proto.to_string(),
                            host_ip: *ip,
                            host_port: hp,
                            container_port: cp,
                        }));
                    }
                    None => {
                        let ip = ips[0];
                        let ip = if ip.is_ipv6() { format!("[{ip}]") } else { ip.to_string() };
                        let shown = format!(
                            "{ip}:{}",
                            if b.host_port.is_empty() { "0".to_string() } else { b.host_port.clone() }
                        );
                        // dockerd's words, once: the port is held (by a container or by
                        // another process); any other failure is named as it is.
                        let why = match last_err {
                            Some(e) if e.kind() != std::io::ErrorKind::AddrInUse => e.to_string(),
                            _ => "port is already allocated".into(),
                        };
                        return Err(NetError::Conflict(format!("Bind for {shown} failed: {why}")));
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
        m.entry(key)
            .or_insert(None)
            .get_or_insert_with(Vec::new)
            .push(PortBinding { host_ip: p.host_ip.to_string(), host_port: p.host_port.to_string() });
    }
    m
}
