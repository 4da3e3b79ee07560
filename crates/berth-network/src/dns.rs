//! The embedded DNS server of user-defined networks.
//!
//! Each container on a user-defined network gets a resolver at 127.0.0.11:53 inside its own
//! network namespace (the sockets are made there, then served from the daemon's runtime).
//! It answers the names, aliases and short IDs of containers that share a network with the
//! asker, and forwards every other query, unchanged, to the container's `--dns` servers, the
//! daemon's, or the host's resolvers.
//!
//! It listens on UDP and TCP, as Docker's and aardvark-dns do: an answer too large for a UDP
//! datagram comes back truncated (the TC bit), and the client asks again over TCP, where a
//! forwarded query goes upstream over TCP too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;

/// Answers `name` for the container `asker`: the addresses it resolves to, or `None` if the
/// name is not one of ours (then the query is forwarded).
pub type Lookup = Arc<dyn Fn(&str, &str) -> Option<Vec<IpAddr>> + Send + Sync>;
/// Reverse lookups: the name of the container owning an address on the asker's networks.
pub type Reverse = Arc<dyn Fn(IpAddr, &str) -> Option<String> + Send + Sync>;

pub const ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);

/// A running resolver; dropping it stops it, its open TCP connections included.
pub struct Server {
    tasks: [tokio::task::JoinHandle<()>; 2],
}

impl Drop for Server {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// What one container's resolver knows: who asks, how names are found, where others go.
struct Resolver {
    id: String,
    lookup: Lookup,
    reverse: Reverse,
    upstreams: Vec<SocketAddr>,
    forward: bool,
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
    let (udp, tcp) = crate::netns::run_in(ns, || -> std::io::Result<(std::net::UdpSocket, std::net::TcpListener)> {
        let u = std::net::UdpSocket::bind(SocketAddr::from((ADDR, 53)))?;
        u.set_nonblocking(true)?;
        let t = std::net::TcpListener::bind(SocketAddr::from((ADDR, 53)))?;
        t.set_nonblocking(true)?;
        Ok((u, t))
    })??;
    let _guard = rt.enter();
    let udp = UdpSocket::from_std(udp)?;
    let tcp = TcpListener::from_std(tcp)?;
    let resolver = Arc::new(Resolver { id, lookup, reverse, upstreams, forward });
    let tasks = [rt.spawn(serve_udp(udp, resolver.clone())), rt.spawn(serve_tcp(tcp, resolver))];
    Ok(Server { tasks })
}

async fn serve_udp(sock: UdpSocket, resolver: Arc<Resolver>) {
    let sock = Arc::new(sock);
    // Queries answered at once per container (Docker's embedded DNS allows 100): a
    // container flooding its resolver holds no more sockets and tasks than that.
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, from)) = sock.recv_from(&mut buf).await else { continue };
        let Ok(permit) = in_flight.clone().try_acquire_owned() else { continue };
        let query = buf[..n].to_vec();
        let (sock, resolver) = (sock.clone(), resolver.clone());
        tokio::spawn(async move {
            let _permit = permit;
            if let Some(r) = resolver.resolve(&query, Transport::Udp(udp_limit(&query))).await {
                // A client gone before its answer is not the resolver's error.
                let _ = sock.send_to(&r, from).await;
            }
        });
    }
}

/// Serves DNS over TCP (RFC 7766): each message is preceded by its length in two bytes; a
/// client may send several queries on one connection, answered in turn.
async fn serve_tcp(listener: TcpListener, resolver: Arc<Resolver>) {
    // Connections open at once; more are closed at once. Their tasks live in this set, so
    // stopping the resolver (aborting this task) closes them all.
    let open = Arc::new(Semaphore::new(MAX_TCP_CONNECTIONS));
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    // Out of descriptors or memory: wait instead of spinning on the error.
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Ok(permit) = open.clone().try_acquire_owned() else { continue };
                let resolver = resolver.clone();
                conns.spawn(async move {
                    let _permit = permit;
                    serve_tcp_connection(stream, &resolver).await;
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn serve_tcp_connection(mut stream: TcpStream, resolver: &Resolver) {
    loop {
        // An idle connection, or one that stops halfway through a message, is closed.
        let Some(query) = read_message(&mut stream, TCP_IDLE).await else { return };
        let Some(reply) = resolver.resolve(&query, Transport::Tcp).await else { return };
        if !matches!(tokio::time::timeout(TCP_IDLE, write_message(&mut stream, &reply)).await, Ok(Ok(()))) {
            return;
        }
    }
}

/// One length-prefixed DNS message from a TCP stream, or `None` at the end of the stream,
/// on an error, or when it does not arrive within `wait`.
async fn read_message(stream: &mut TcpStream, wait: Duration) -> Option<Vec<u8>> {
    tokio::time::timeout(wait, async {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await.ok()?;
        let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
        stream.read_exact(&mut msg).await.ok()?;
        Some(msg)
    })
    .await
    .ok()
    .flatten()
}

async fn write_message(stream: &mut TcpStream, msg: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(msg.len()).map_err(|_| std::io::Error::other("DNS message over 65535 bytes"))?;
    let mut framed = Vec::with_capacity(msg.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(msg);
    stream.write_all(&framed).await
}

/// How a query came, and so how large its answer may be and how it is forwarded.
#[derive(Clone, Copy)]
enum Transport {
    /// A datagram: the answer fits in this many bytes (see [`udp_limit`]).
    Udp(usize),
    Tcp,
}

impl Resolver {
    /// The reply to `query`: ours (truncated to what a UDP asker takes), the upstream's
    /// (asked the same way the client asked, so the upstream sizes it), SERVFAIL when no
    /// upstream answers, or NXDOMAIN when forwarding is off. `None` for what is not a query.
    async fn resolve(&self, query: &[u8], transport: Transport) -> Option<Vec<u8>> {
        let limit = match transport {
            Transport::Udp(limit) => limit,
            Transport::Tcp => u16::MAX as usize,
        };
        match answer_within(query, &self.id, &self.lookup, &self.reverse, limit) {
            Some(r) => Some(r),
            None if self.forward => {
                let reply = match transport {
                    Transport::Udp(_) => forward_query(query, &self.upstreams).await,
                    Transport::Tcp => forward_query_tcp(query, &self.upstreams).await,
                };
                reply.or_else(|| servfail(query))
            }
            None => nxdomain(query),
        }
    }
}

/// The largest UDP reply the asker takes: 512 bytes (RFC 1035), or the payload size its
/// EDNS(0) OPT record offers, up to 4096.
fn udp_limit(q: &[u8]) -> usize {
    const PLAIN: usize = 512;
    let Some(qu) = parse_question(q) else { return PLAIN };
    let additional = u16::from_be_bytes([q[10], q[11]]);
    // An OPT record has the root name (one zero byte), type 41, and the size as its class.
    match q.get(qu.end..qu.end + 5) {
        Some(&[0, 0, 41, hi, lo]) if additional > 0 => (u16::from_be_bytes([hi, lo]) as usize).clamp(PLAIN, 4096),
        _ => PLAIN,
    }
}

/// The host's resolvers, from its resolv.conf (see `etc_files::host_resolv_conf_path`).
pub fn host_upstreams() -> Vec<SocketAddr> {
    berth_core::resolv::host_nameservers()
        .iter()
        .filter_map(|s| s.parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// Queries one container's resolver answers at once over UDP; more are dropped (the client
/// retries).
const MAX_IN_FLIGHT: usize = 100;
/// TCP connections one container's resolver keeps open at once; more are closed.
const MAX_TCP_CONNECTIONS: usize = 16;
/// How long a TCP connection may stay idle, or take to send or take one message.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// How long an upstream has to answer.
const UPSTREAM_WAIT: Duration = Duration::from_secs(2);

/// Whether `r` is the reply to `q`: the same ID and question. Anyone who can reach the
/// host's ports (another container) could otherwise answer first and poison the lookup.
fn is_reply_to(r: &[u8], q: &[u8], question: &[u8]) -> bool {
    r.len() >= 12 && r[..2] == q[..2] && r.get(12..12 + question.len()) == Some(question)
}

/// Asks the upstreams in turn over UDP. Only a reply from the upstream asked (a connected
/// socket) that answers this query is taken.
async fn forward_query(q: &[u8], upstreams: &[SocketAddr]) -> Option<Vec<u8>> {
    let question = q.get(12..parse_question(q)?.end)?;
    for up in upstreams {
        let bind: SocketAddr = if up.is_ipv4() { "0.0.0.0:0".parse().ok()? } else { "[::]:0".parse().ok()? };
        let Ok(s) = UdpSocket::bind(bind).await else { continue };
        if s.connect(up).await.is_err() || s.send(q).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 4096];
        let deadline = tokio::time::Instant::now() + UPSTREAM_WAIT;
        while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, s.recv(&mut buf)).await {
            if is_reply_to(&buf[..n], q, question) {
                return Some(buf[..n].to_vec());
            }
        }
    }
    None
}

/// Asks the upstreams in turn over TCP, for a client that asked over TCP (often after a
/// truncated UDP answer): the whole answer, up to 64 KiB, comes back.
async fn forward_query_tcp(q: &[u8], upstreams: &[SocketAddr]) -> Option<Vec<u8>> {
    let question = q.get(12..parse_question(q)?.end)?;
    for up in upstreams {
        let Ok(Ok(mut s)) = tokio::time::timeout(UPSTREAM_WAIT, TcpStream::connect(up)).await else { continue };
        if !matches!(tokio::time::timeout(UPSTREAM_WAIT, write_message(&mut s, q)).await, Ok(Ok(()))) {
            continue;
        }
        if let Some(r) = read_message(&mut s, UPSTREAM_WAIT).await.filter(|r| is_reply_to(r, q, question)) {
            return Some(r);
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
    // Type and class: a question cut short before its class is not a question (its end is
    // sliced when the reply copies it).
    if q.len() < pos + 4 {
        return None;
    }
    let qtype = u16::from_be_bytes([q[pos], q[pos + 1]]);
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
    answer_within(q, asker, lookup, reverse, u16::MAX as usize)
}

/// [`answer`] in at most `limit` bytes: the records that do not fit are left out and the
/// reply says it was truncated (TC), so the client asks again over TCP.
fn answer_within(q: &[u8], asker: &str, lookup: &Lookup, reverse: &Reverse, limit: usize) -> Option<Vec<u8>> {
    let qu = parse_question(q)?;
    const A: u16 = 1;
    const PTR: u16 = 12;
    const AAAA: u16 = 28;
    let (rtype, rdata): (u16, Vec<Vec<u8>>) = if qu.qtype == PTR {
        (PTR, vec![encode_name(&reverse(ptr_address(&qu.name)?, asker)?)])
    } else {
        let ips = lookup(&qu.name, asker)?;
        // A known name without an address of the type asked for gets an empty answer (not
        // NXDOMAIN), so a client asking AAAA first goes on to use the A record.
        let rdata = match qu.qtype {
            A => ips
                .iter()
                .filter_map(|ip| if let IpAddr::V4(v) = ip { Some(v.octets().to_vec()) } else { None })
                .collect(),
            AAAA => ips
                .iter()
                .filter_map(|ip| if let IpAddr::V6(v) = ip { Some(v.octets().to_vec()) } else { None })
                .collect(),
            _ => Vec::new(),
        };
        (qu.qtype, rdata)
    };
    let mut r = header(q, 0, 0, qu.end);
    let mut answers: u16 = 0;
    for d in rdata {
        // A pointer to the question's name, type, class IN, TTL 600, then the data.
        let mut rr = vec![0xc0, 0x0c];
        rr.extend_from_slice(&rtype.to_be_bytes());
        rr.extend_from_slice(&[0, 1, 0, 0, 0x02, 0x58]);
        rr.extend_from_slice(&(d.len() as u16).to_be_bytes());
        rr.extend_from_slice(&d);
        if r.len() + rr.len() > limit {
            r[2] |= 0x02;
            break;
        }
        r.extend_from_slice(&rr);
        answers += 1;
    }
    r[6..8].copy_from_slice(&answers.to_be_bytes());
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

    /// A query cut anywhere (before its class, inside a label, after the header) gets no
    /// answer and no panic: a container's resolver must not be stopped by what it is sent.
    #[test]
    fn a_truncated_query_is_not_answered() {
        let (lookup, reverse) = many_addresses();
        let q = query("many", 1);
        for cut in 0..q.len() {
            assert!(answer(&q[..cut], "me", &lookup, &reverse).is_none(), "cut at {cut}");
            assert!(nxdomain(&q[..cut]).is_none() && servfail(&q[..cut]).is_none(), "cut at {cut}");
            let _ = udp_limit(&q[..cut]);
        }
        assert!(answer(&q, "me", &lookup, &reverse).is_some());
    }

    fn many_addresses() -> (Lookup, Reverse) {
        let lookup: Lookup = Arc::new(|n: &str, _: &str| {
            (n == "many").then(|| (1..=60).map(|i| IpAddr::V4(Ipv4Addr::new(10, 0, 1, i))).collect())
        });
        (lookup, Arc::new(|_: IpAddr, _: &str| None))
    }

    fn answer_count(r: &[u8]) -> u16 {
        u16::from_be_bytes([r[6], r[7]])
    }

    /// 60 A records (976 bytes of answers) do not fit a plain UDP reply: the records that
    /// fit are sent with TC set, so the client asks again over TCP; an EDNS(0) asker
    /// offering 4096 bytes, and a TCP asker, get them all.
    #[test]
    fn an_answer_too_large_for_udp_is_truncated_and_says_so() {
        let (lookup, reverse) = many_addresses();
        let q = query("many", 1);
        let r = answer_within(&q, "me", &lookup, &reverse, udp_limit(&q)).unwrap();
        assert!(r.len() <= 512, "{}", r.len());
        assert_ne!(r[2] & 0x02, 0, "TC is set");
        assert!(answer_count(&r) > 0 && answer_count(&r) < 60, "{}", answer_count(&r));
        assert_eq!(r.len(), 12 + (q.len() - 12) + 16 * answer_count(&r) as usize, "ANCOUNT matches the records");

        let mut edns = q.clone();
        edns[11] = 1;
        edns.extend_from_slice(&[0, 0, 41, 0x10, 0x00, 0, 0, 0, 0, 0, 0]);
        assert_eq!(udp_limit(&edns), 4096);
        let r = answer_within(&edns, "me", &lookup, &reverse, udp_limit(&edns)).unwrap();
        assert_eq!((r[2] & 0x02, answer_count(&r)), (0, 60));
        let r = answer(&q, "me", &lookup, &reverse).unwrap();
        assert_eq!((r[2] & 0x02, answer_count(&r)), (0, 60), "TCP has room for all");
    }

    async fn ask_tcp(s: &mut TcpStream, q: &[u8]) -> Option<Vec<u8>> {
        write_message(s, q).await.ok()?;
        read_message(s, Duration::from_secs(5)).await
    }

    /// Over TCP, several queries on one connection are answered in turn, a name not ours
    /// is forwarded upstream over TCP (a reply of several KiB arrives whole; a reply that
    /// does not answer the query is not taken), and connections beyond the cap are closed
    /// while those already open keep working.
    #[tokio::test]
    async fn tcp_answers_in_turn_forwards_over_tcp_and_caps_connections() {
        let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let up_addr = upstream.local_addr().unwrap();
        let big_txt = vec![b'x'; 3000];
        let up = tokio::spawn({
            let big_txt = big_txt.clone();
            async move {
                // First connection: a reply to another question (a forgery). Second: the answer.
                for forged in [true, false] {
                    let (mut c, _) = upstream.accept().await.unwrap();
                    let q = read_message(&mut c, Duration::from_secs(5)).await.unwrap();
                    let mut r = if forged { query("evil.example", 16) } else { q.clone() };
                    r[..2].copy_from_slice(&q[..2]);
                    r[2] |= 0x80;
                    if !forged {
                        r.extend_from_slice(&big_txt);
                    }
                    write_message(&mut c, &r).await.unwrap();
                }
            }
        });
        let (lookup, reverse) = many_addresses();
        let resolver =
            Arc::new(Resolver { id: "me".into(), lookup, reverse, upstreams: vec![up_addr, up_addr], forward: true });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve_tcp(listener, resolver));

        let mut c = TcpStream::connect(addr).await.unwrap();
        let r = ask_tcp(&mut c, &query("many", 1)).await.unwrap();
        assert_eq!(answer_count(&r), 60);
        let r = ask_tcp(&mut c, &query("MANY", 1)).await.unwrap();
        assert_eq!(answer_count(&r), 60, "a second query on the same connection");
        let q = query("big.outside.test", 16);
        let r = ask_tcp(&mut c, &q).await.unwrap();
        assert_eq!(&r[12..q.len()], &q[12..], "the upstream's answer to this question");
        assert!(r.ends_with(&big_txt), "the whole {}-byte reply: {}", big_txt.len(), r.len());
        up.await.unwrap();

        // `c` holds one of the 16; 15 more fill the cap, the 17th is closed unanswered.
        let mut held = Vec::new();
        for _ in 0..MAX_TCP_CONNECTIONS - 1 {
            let mut h = TcpStream::connect(addr).await.unwrap();
            assert!(ask_tcp(&mut h, &query("many", 1)).await.is_some());
            held.push(h);
        }
        let mut over = TcpStream::connect(addr).await.unwrap();
        assert!(ask_tcp(&mut over, &query("many", 1)).await.is_none(), "the connection over the cap is closed");
        assert!(ask_tcp(&mut c, &query("many", 1)).await.is_some(), "open connections keep working");
        drop(held);
        server.abort();
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
