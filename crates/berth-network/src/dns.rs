//! The embedded DNS server of user-defined networks.
//!
//! Each container on a user-defined network gets a resolver at 127.0.0.11:53 inside its own
//! network namespace (the sockets are made there, then served from the daemon's runtime).
//! It answers the names, aliases and short IDs of containers that share a network with the
//! asker, and forwards every other query, unchanged, to the container's `--dns` servers, the
//! daemon's, or the host's resolvers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use tokio::net::UdpSocket;

/// Answers `name` for the container `asker`: the addresses it resolves to, or `None` if the
/// name is not one of ours (then the query is forwarded).
pub type Lookup = Arc<dyn Fn(&str, &str) -> Option<Vec<IpAddr>> + Send + Sync>;
/// Reverse lookups: the name of the container owning an address on the asker's networks.
pub type Reverse = Arc<dyn Fn(IpAddr, &str) -> Option<String> + Send + Sync>;

pub const ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);

/// A running resolver; dropping it stops it.
pub struct Server {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the resolver inside the namespace `ns` for container `id`.
pub fn start(
    ns: &Path,
    rt: &tokio::runtime::Handle,
    id: String,
    lookup: Lookup,
    reverse: Reverse,
    upstreams: Vec<SocketAddr>,
    forward: bool,
) -> std::io::Result<Server> {
    let sock = crate::netns::run_in(ns, || -> std::io::Result<std::net::UdpSocket> {
        let s = std::net::UdpSocket::bind(SocketAddr::from((ADDR, 53)))?;
        s.set_nonblocking(true)?;
        Ok(s)
    })??;
    let _guard = rt.enter();
    let sock = UdpSocket::from_std(sock)?;
    let task = rt.spawn(async move {
        let sock = Arc::new(sock);
        // Queries answered at once per container (Docker's embedded DNS allows 100): a
        // container flooding its resolver holds no more sockets and tasks than that.
        let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, from)) = sock.recv_from(&mut buf).await else { continue };
            let Ok(permit) = in_flight.clone().try_acquire_owned() else { continue };
            let query = buf[..n].to_vec();
            let (sock, lookup, reverse, upstreams, id) =
                (sock.clone(), lookup.clone(), reverse.clone(), upstreams.clone(), id.clone());
            tokio::spawn(async move {
                let _permit = permit;
                let reply = match answer(&query, &id, &lookup, &reverse) {
                    Some(r) => Some(r),
                    None if forward => forward_query(&query, &upstreams).await.or_else(|| servfail(&query)),
                    None => nxdomain(&query),
                };
                if let Some(r) = reply {
                    let _ = sock.send_to(&r, from).await;
                }
            });
        }
    });
    Ok(Server { task })
}

/// The host's resolvers, from its resolv.conf (see `etc_files::host_resolv_conf_path`).
pub fn host_upstreams() -> Vec<SocketAddr> {
    berth_core::resolv::host_nameservers()
        .iter()
        .filter_map(|s| s.parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// Queries one container's resolver answers at once; more are dropped (the client retries).
const MAX_IN_FLIGHT: usize = 100;

/// Asks the upstreams in turn. Only a reply from the upstream asked (a connected socket),
/// with the query's ID and question, is taken: anyone who can reach the host's ports
/// (another container) could otherwise answer first and poison the lookup.
async fn forward_query(q: &[u8], upstreams: &[SocketAddr]) -> Option<Vec<u8>> {
    let question = q.get(12..parse_question(q)?.end)?;
    for up in upstreams {
        let bind: SocketAddr = if up.is_ipv4() { "0.0.0.0:0".parse().ok()? } else { "[::]:0".parse().ok()? };
        let Ok(s) = UdpSocket::bind(bind).await else { continue };
        if s.connect(up).await.is_err() || s.send(q).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 4096];
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
        while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, s.recv(&mut buf)).await {
            let r = &buf[..n];
            if r.len() >= 12 && r[..2] == q[..2] && r.get(12..12 + question.len()) == Some(question) {
                return Some(r.to_vec());
            }
        }
    }
    None
}

struct Question {
    name: String,
    qtype: u16,
    end: usize,
}

fn parse_question(q: &[u8]) -> Option<Question> {
    if q.len() < 12 || u16::from_be_bytes([q[4], q[5]]) != 1 {
        return None;
    }
    let mut pos = 12;
    let mut labels = Vec::new();
    loop {
        let len = *q.get(pos)? as usize;
        pos += 1;
        if len == 0 {
            break;
        }
        if len & 0xc0 != 0 {
            return None;
        }
        labels.push(String::from_utf8_lossy(q.get(pos..pos + len)?).to_ascii_lowercase());
        pos += len;
    }
    let qtype = u16::from_be_bytes([*q.get(pos)?, *q.get(pos + 1)?]);
    Some(Question { name: labels.join("."), qtype, end: pos + 4 })
}

fn header(q: &[u8], rcode: u8, answers: u16, end: usize) -> Vec<u8> {
    let mut r = Vec::with_capacity(end + 16 * answers as usize);
    r.extend_from_slice(&q[0..2]);
    // QR, the query's opcode and RD, AA, RA.
    let flags_hi = 0x80 | (q[2] & 0x79) | 0x04;
    r.push(flags_hi);
    r.push(0x80 | rcode);
    r.extend_from_slice(&[0, 1]);
    r.extend_from_slice(&answers.to_be_bytes());
    r.extend_from_slice(&[0, 0, 0, 0]);
    r.extend_from_slice(&q[12..end]);
    r
}

fn nxdomain(q: &[u8]) -> Option<Vec<u8>> {
    let qu = parse_question(q)?;
    Some(header(q, 3, 0, qu.end))
}

fn servfail(q: &[u8]) -> Option<Vec<u8>> {
    let qu = parse_question(q)?;
    Some(header(q, 2, 0, qu.end))
}

fn encode_name(name: &str) -> Vec<u8> {
    let mut v = Vec::new();
    for l in name.split('.').filter(|l| !l.is_empty()) {
        v.push(l.len() as u8);
        v.extend_from_slice(l.as_bytes());
    }
    v.push(0);
    v
}

/// Answers a query from the networks' records, or `None` to forward it.
pub fn answer(q: &[u8], asker: &str, lookup: &Lookup, reverse: &Reverse) -> Option<Vec<u8>> {
    let qu = parse_question(q)?;
    const A: u16 = 1;
    const PTR: u16 = 12;
    const AAAA: u16 = 28;
    if qu.qtype == PTR {
        let name = reverse(ptr_address(&qu.name)?, asker)?;
        let mut r = header(q, 0, 1, qu.end);
        let rdata = encode_name(&name);
        r.extend_from_slice(&[0xc0, 0x0c, 0, 12, 0, 1, 0, 0, 0x02, 0x58]);
        r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        r.extend_from_slice(&rdata);
        return Some(r);
    }
    let ips = lookup(&qu.name, asker)?;
    // A known name without an address of the type asked for gets an empty answer (not
    // NXDOMAIN), so a client asking AAAA first goes on to use the A record.
    let rdata: Vec<Vec<u8>> = match qu.qtype {
        A => {
            ips.iter().filter_map(|ip| if let IpAddr::V4(v) = ip { Some(v.octets().to_vec()) } else { None }).collect()
        }
        AAAA => {
            ips.iter().filter_map(|ip| if let IpAddr::V6(v) = ip { Some(v.octets().to_vec()) } else { None }).collect()
        }
        _ => Vec::new(),
    };
    let mut r = header(q, 0, rdata.len() as u16, qu.end);
    for d in rdata {
        r.extend_from_slice(&[0xc0, 0x0c]);
        r.extend_from_slice(&qu.qtype.to_be_bytes());
        r.extend_from_slice(&[0, 1, 0, 0, 0x02, 0x58]);
        r.extend_from_slice(&(d.len() as u16).to_be_bytes());
        r.extend_from_slice(&d);
    }
    Some(r)
}

/// The address a reverse-lookup name stands for: `4.3.2.1.in-addr.arpa`, or the 32 nibbles
/// of an address under `ip6.arpa`.
fn ptr_address(name: &str) -> Option<IpAddr> {
    if let Some(rev) = name.strip_suffix(".in-addr.arpa") {
        let o: Vec<u8> = rev.split('.').rev().map(|x| x.parse().ok()).collect::<Option<_>>()?;
        return (o.len() == 4).then(|| IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], o[3])));
    }
    let rev = name.strip_suffix(".ip6.arpa")?;
    let nibbles: Vec<u32> = rev
        .split('.')
        .rev()
        .map(|x| if x.len() == 1 { x.chars().next()?.to_digit(16) } else { None })
        .collect::<Option<_>>()?;
    if nibbles.len() != 32 {
        return None;
    }
    Some(IpAddr::V6(Ipv6Addr::from(nibbles.iter().fold(0u128, |a, n| (a << 4) | *n as u128))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend(encode_name(name));
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&[0, 1]);
        q
    }

    /// A forged reply (another ID, or another question) that reaches the forwarder first
    /// is not taken; the upstream's own reply is.
    #[tokio::test]
    async fn forwarded_replies_must_match_the_query() {
        let up = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = up.local_addr().unwrap();
        let q = query("example.org", 1);
        let server = tokio::spawn(async move {
            let mut buf = [0u8; 512];
            let (n, from) = up.recv_from(&mut buf).await.unwrap();
            let asked = buf[..n].to_vec();
            let mut wrong_id = asked.clone();
            wrong_id[0] ^= 0xff;
            let mut other_question = query("evil.example", 1);
            other_question[..2].copy_from_slice(&asked[..2]);
            let mut good = asked.clone();
            good[2] |= 0x80;
            for r in [wrong_id, other_question, good] {
                up.send_to(&r, from).await.unwrap();
            }
        });
        let r = forward_query(&q, &[addr]).await.unwrap();
        assert_eq!(&r[..2], &q[..2]);
        assert_eq!(&r[12..], &q[12..]);
        assert_ne!(r[2] & 0x80, 0, "the upstream's reply, not the forged ones");
        server.await.unwrap();
    }

    #[test]
    fn answers_known_names_and_defers_others() {
        let v6: Ipv6Addr = "fd00:1::2".parse().unwrap();
        let lookup: Lookup = Arc::new(move |n: &str, _: &str| match n {
            "web" => Some(vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), IpAddr::V6(v6)]),
            "old" => Some(vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3))]),
            _ => None,
        });
        let reverse: Reverse = Arc::new(move |ip: IpAddr, _: &str| {
            (ip == IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)) || ip == IpAddr::V6(v6)).then(|| "web".to_string())
        });
        let r = answer(&query("WEB", 1), "me", &lookup, &reverse).unwrap();
        assert_eq!(&r[0..2], &[0x12, 0x34]);
        assert_eq!(u16::from_be_bytes([r[6], r[7]]), 1, "one answer");
        assert_eq!(&r[r.len() - 4..], &[10, 0, 0, 2]);
        assert!(answer(&query("example.com", 1), "me", &lookup, &reverse).is_none());
        let r = answer(&query("2.0.0.10.in-addr.arpa", 12), "me", &lookup, &reverse).unwrap();
        assert_eq!(u16::from_be_bytes([r[6], r[7]]), 1);
        let r = answer(&query("web", 28), "me", &lookup, &reverse).unwrap();
        assert_eq!(u16::from_be_bytes([r[6], r[7]]), 1, "one AAAA answer");
        assert_eq!(&r[r.len() - 16..], &v6.octets());
        let r = answer(&query("old", 28), "me", &lookup, &reverse).unwrap();
        assert_eq!((r[3] & 0x0f, u16::from_be_bytes([r[6], r[7]])), (0, 0), "a name without IPv6: no error, no answer");
        let ptr6 = "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.0.0.d.f.ip6.arpa";
        let r = answer(&query(ptr6, 12), "me", &lookup, &reverse).unwrap();
        assert_eq!(u16::from_be_bytes([r[6], r[7]]), 1, "{ptr6}");
        let nx = nxdomain(&query("nope", 1)).unwrap();
        assert_eq!(nx[3] & 0x0f, 3);
    }
}
