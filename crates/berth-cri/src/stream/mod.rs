//! The CRI's streaming server: where `Exec`, `Attach` and `PortForward` send their clients,
//! as containerd's CRI plugin does with kubelet's streaming package.
//!
//! # Contract
//!
//! - Each of those calls checks its target, keeps the request under a fresh **token** and
//!   answers with a URL on this server: `http://<address>/exec/<token>` (`/attach/`,
//!   `/portforward/`). A token is good for one connection within [`TOKEN_TTL`] of the call;
//!   an unknown, expired or used token, or one of another kind, answers 404. At most
//!   [`MAX_IN_FLIGHT`] tokens wait at once (`ResourceExhausted` past that).
//! - The connection is upgraded to **SPDY/3.1** ([`spdy`]; the client opens one stream per
//!   channel, named by its `streamType` header) or to a **WebSocket** ([`ws`]; the channels are
//!   the first byte of each message), with the subprotocols kubelet's server offers:
//!   `v4.channel.k8s.io` down to `channel.k8s.io` (and `v5` on a WebSocket) for exec and
//!   attach, `portforward.k8s.io` (SPDY) and `v4.channel.k8s.io` (WebSocket) for port
//!   forwarding. See [`remotecommand`] and [`portforward`] for what flows on them.
//! - The server listens on the address the daemon is given (`--cri-stream-address`; default
//!   127.0.0.1 on a port the kernel picks, as containerd's `stream_server_address`): a token
//!   is the only credential, so it should not be reachable from further than kubelet.
//! - Nothing outlives its connection: a client that goes away ends its exec process (it is
//!   killed) or its attach, and closes its forwarded sockets.
//! - What a connection holds is bounded whatever its client does: output waits for a client
//!   that reads slowly (the process blocks on its pipe), input waits for a process that reads
//!   slowly (the client's socket is not read), SPDY keeps its peer's windows and grants its
//!   own only as input is taken, pings get a bounded number of answers, and a SPDY connection
//!   holds at most [`spdy::MAX_STREAMS`] streams (see `tasks` and [`spdy::Conn`]).
//! - What the server as a whole holds is bounded too. At most [`MAX_UNAUTHENTICATED`]
//!   connections are taken that have not yet shown a valid token; while that many are, no more
//!   are accepted and new ones wait in the kernel's listen backlog, holding none of the
//!   daemon's descriptors (kubelet's connection then waits its turn rather than being turned
//!   away). A failing `accept` (out of descriptors) is retried after a pause that doubles from
//!   5 ms to 1 s, as Go's `net/http` does, not at once. At most [`MAX_SESSIONS`] sessions run
//!   at once; a valid token past that is answered 503.
//! - A session on which nothing has passed either way for the idle timeout is ended as if its
//!   client had gone ([`Server::new`]; kubelet's `--streaming-connection-idle-timeout`,
//!   containerd's `stream_idle_timeout`, both 4 h by default: [`DEFAULT_IDLE_TIMEOUT`]).

pub mod portforward;
pub mod remotecommand;
pub mod spdy;
mod tasks;
pub mod ws;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;

use crate::Cri;
use crate::proto::{AttachRequest, ExecRequest, PortForwardRequest};

/// How long a URL is good for after the call that made it.
pub const TOKEN_TTL: Duration = Duration::from_secs(60);
/// How many tokens may wait for their connection at once.
pub const MAX_IN_FLIGHT: usize = 1000;
/// How long a SPDY client has, once upgraded, to open the streams it asked for.
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);
/// The most a request's head may hold.
const MAX_HEAD: usize = 16 << 10;
/// Connections taken at once that have not shown a valid token yet. Each holds a descriptor
/// for up to [`STREAM_CREATION_TIMEOUT`]; kubelet's show theirs at once.
pub const MAX_UNAUTHENTICATED: usize = 128;
/// Sessions (exec, attach, port-forward) that run at once. Each is a call kubelet made;
/// one holds a handful of descriptors (a port-forward up to [`spdy::MAX_STREAMS`]).
pub const MAX_SESSIONS: usize = 1024;
/// The first and the longest pause after a failed `accept`.
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(5), Duration::from_secs(1));
/// How long a session may carry nothing before it is ended, unless configured otherwise.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(4 * 3600);

/// What a token stands for.
#[derive(Debug, Clone)]
pub enum Pending {
    Exec(ExecRequest),
    Attach(AttachRequest),
    PortForward(PortForwardRequest),
}

impl Pending {
    fn path(&self) -> &'static str {
        match self {
            Pending::Exec(_) => "exec",
            Pending::Attach(_) => "attach",
            Pending::PortForward(_) => "portforward",
        }
    }
}

/// The server's address, its waiting tokens and what bounds its connections.
pub struct Server {
    base: String,
    tokens: Mutex<HashMap<String, (Instant, Pending)>>,
    idle_timeout: Option<Duration>,
    unauthenticated: Arc<Semaphore>,
    sessions: Arc<Semaphore>,
}

impl Server {
    /// A server reached at `addr` (its listener's address; an unspecified IP is reached on
    /// loopback) whose sessions end once idle for `idle_timeout` (`None`: never).
    pub fn new(addr: SocketAddr, idle_timeout: Option<Duration>) -> Server {
        let mut addr = addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(if addr.is_ipv4() { [127, 0, 0, 1].into() } else { std::net::Ipv6Addr::LOCALHOST.into() });
        }
        Server {
            base: format!("http://{addr}"),
            tokens: Mutex::new(HashMap::new()),
            idle_timeout,
            unauthenticated: Arc::new(Semaphore::new(MAX_UNAUTHENTICATED)),
            sessions: Arc::new(Semaphore::new(MAX_SESSIONS)),
        }
    }

    /// Keeps `p` under a new token and returns its URL.
    pub fn insert(&self, p: Pending) -> Result<String, Status> {
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.retain(|_, (made, _)| made.elapsed() < TOKEN_TTL);
        if tokens.len() >= MAX_IN_FLIGHT {
            return Err(Status::resource_exhausted("maximum number of in-flight requests exceeded"));
        }
        let token = berth_api::ids::random_id()[..32].to_string();
        let url = format!("{}/{}/{token}", self.base, p.path());
        tokens.insert(token, (Instant::now(), p));
        Ok(url)
    }

    /// Takes the request behind `token` if it is of kind `path` and still fresh. The token is
    /// spent either way.
    fn take(&self, path: &str, token: &str) -> Option<Pending> {
        let (made, p) = self.tokens.lock().unwrap_or_else(|e| e.into_inner()).remove(token)?;
        (made.elapsed() < TOKEN_TTL && p.path() == path).then_some(p)
    }
}

/// `addr` as a socket address to bind: `host:port` as it is, a bare host (IPv6 with or
/// without brackets) with port 0, which the kernel replaces.
fn listen_spec(addr: &str) -> String {
    if addr.parse::<SocketAddr>().is_ok() || addr.rsplit_once(':').is_some_and(|(h, _)| !h.contains(':')) {
        addr.to_string()
    } else if addr.contains(':') {
        format!("[{}]:0", addr.trim_matches(['[', ']']))
    } else {
        format!("{addr}:0")
    }
}

/// Binds the streaming server at `addr` (see [`listen_spec`]).
pub async fn bind(addr: &str) -> Result<TcpListener, String> {
    let spec = listen_spec(addr);
    TcpListener::bind(&spec).await.map_err(|e| format!("listening for CRI streams on {spec}: {e}"))
}

/// Serves streams on `listener` until the task is dropped.
pub async fn serve(cri: Arc<Cri>, listener: TcpListener) {
    let mut pause = Duration::ZERO;
    loop {
        // Room for one more connection first: until there is, the kernel holds them.
        let Ok(permit) = cri.streaming.unauthenticated.clone().acquire_owned().await else { return };
        match listener.accept().await {
            Ok((sock, _)) => {
                pause = Duration::ZERO;
                let cri = cri.clone();
                tokio::spawn(async move {
                    let _ = sock.set_nodelay(true);
                    handle(cri, sock, permit).await;
                });
            }
            Err(e) => {
                drop(permit);
                pause = if pause.is_zero() { ACCEPT_BACKOFF.0 } else { (pause * 2).min(ACCEPT_BACKOFF.1) };
                tracing::warn!("CRI streaming server: accepting a connection: {e}; retrying in {pause:?}");
                tokio::time::sleep(pause).await;
            }
        }
    }
}

/// An HTTP/1.1 request's head: what the upgrade needs.
#[derive(Debug, Default)]
pub struct Head {
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Names in lower case, in order; a header given twice appears twice.
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// Every value of header `name`, comma-separated lists split.
    pub fn values(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.split(',').map(|s| s.trim().to_string()))
            .filter(|s| !s.is_empty())
            .collect()
    }

    fn has_token(&self, name: &str, token: &str) -> bool {
        self.values(name).iter().any(|v| v.eq_ignore_ascii_case(token))
    }

    fn is_websocket(&self) -> bool {
        self.has_token("upgrade", "websocket") && self.has_token("connection", "upgrade")
    }
}

/// Parses a request head (everything before the blank line).
pub fn parse_head(raw: &str) -> Option<Head> {
    let mut lines = raw.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (_method, target) = (first.next()?, first.next()?);
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (berth_api::percent::decode_query(k), berth_api::percent::decode_query(v))
        })
        .collect();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Some(Head { path: path.to_string(), query, headers })
}

/// Reads the head byte by byte, so nothing of what follows it is consumed.
async fn read_head(sock: &mut TcpStream) -> Option<Head> {
    let mut raw = Vec::with_capacity(1024);
    while !raw.ends_with(b"\r\n\r\n") {
        if raw.len() >= MAX_HEAD {
            return None;
        }
        raw.push(sock.read_u8().await.ok()?);
    }
    parse_head(std::str::from_utf8(&raw[..raw.len() - 4]).ok()?)
}

async fn respond(sock: &mut TcpStream, status: &str, body: &str) {
    let msg = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = sock.write_all(msg.as_bytes()).await;
    let _ = sock.shutdown().await;
}

/// The first protocol the client offers that `supported` holds (client's order, as kubelet
/// negotiates). `Ok(None)`: the client offered none.
fn negotiate(offered: &[String], supported: &[&str]) -> Result<Option<String>, ()> {
    if offered.is_empty() {
        return Ok(None);
    }
    offered.iter().find(|p| supported.contains(&p.as_str())).cloned().map(Some).ok_or(())
}

/// A connection upgraded for one of the transports.
pub enum Upgraded {
    Spdy { conn: spdy::Conn, protocol: String },
    Ws { conn: ws::Conn, protocol: String },
}

/// Answers the upgrade: WebSocket when asked for, SPDY/3.1 otherwise. `None` when refused
/// (the answer was written).
async fn upgrade(
    mut sock: TcpStream,
    head: &Head,
    spdy_protocols: &[&str],
    ws_protocols: &[&str],
    idle: Option<Duration>,
) -> Option<Upgraded> {
    if head.is_websocket() {
        let Some(key) = head.values("sec-websocket-key").into_iter().next() else {
            respond(&mut sock, "400 Bad Request", "missing Sec-WebSocket-Key\n").await;
            return None;
        };
        let Ok(protocol) = negotiate(&head.values("sec-websocket-protocol"), ws_protocols) else {
            let msg = format!("requested protocol(s) are not supported; supports {ws_protocols:?}\n");
            respond(&mut sock, "400 Bad Request", &msg).await;
            return None;
        };
        let chosen = protocol.as_ref().map(|p| format!("Sec-WebSocket-Protocol: {p}\r\n")).unwrap_or_default();
        let msg = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n{chosen}\r\n",
            ws::accept_key(&key)
        );
        sock.write_all(msg.as_bytes()).await.ok()?;
        return Some(Upgraded::Ws { conn: ws::Conn::serve(sock, idle), protocol: protocol.unwrap_or_default() });
    }
    if !head.has_token("upgrade", "spdy/3.1") || !head.has_token("connection", "upgrade") {
        respond(&mut sock, "400 Bad Request", "unable to upgrade: missing upgrade headers in request\n").await;
        return None;
    }
    let offered = head.values("x-stream-protocol-version");
    let Ok(protocol) = negotiate(&offered, spdy_protocols) else {
        let msg = format!(
            "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server accepts \
             {spdy_protocols:?}\n"
        );
        respond(&mut sock, "403 Forbidden", &msg).await;
        return None;
    };
    let chosen = protocol.as_ref().map(|p| format!("X-Stream-Protocol-Version: {p}\r\n")).unwrap_or_default();
    let msg = format!("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n{chosen}\r\n");
    sock.write_all(msg.as_bytes()).await.ok()?;
    Some(Upgraded::Spdy { conn: spdy::Conn::serve(sock, idle), protocol: protocol.unwrap_or_default() })
}

/// The most ports one port-forward session takes: a WebSocket numbers its channels with
/// one byte, two per port.
const MAX_WS_PORTS: usize = 127;

/// Serves one connection; `unauthenticated` is its place among those without a valid token,
/// given up once it has shown one.
async fn handle(cri: Arc<Cri>, mut sock: TcpStream, unauthenticated: OwnedSemaphorePermit) {
    // A client that never finishes its request holds nothing for long.
    let Ok(Some(head)) = tokio::time::timeout(STREAM_CREATION_TIMEOUT, read_head(&mut sock)).await else { return };
    let mut parts = head.path.trim_start_matches('/').splitn(2, '/');
    let (kind, token) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let Some(pending) = cri.streaming.take(kind, token) else {
        respond(&mut sock, "404 Not Found", "404 page not found\n").await;
        return;
    };
    drop(unauthenticated);
    let Ok(_session) = cri.streaming.sessions.clone().try_acquire_owned() else {
        let msg = format!("at most {MAX_SESSIONS} streaming sessions run at once\n");
        respond(&mut sock, "503 Service Unavailable", &msg).await;
        return;
    };
    let idle = cri.streaming.idle_timeout;
    match pending {
        Pending::Exec(r) => {
            let Some(up) = upgrade(sock, &head, remotecommand::SPDY_PROTOCOLS, remotecommand::WS_PROTOCOLS, idle).await
            else {
                return;
            };
            let opts = remotecommand::Options { stdin: r.stdin, stdout: r.stdout, stderr: r.stderr, tty: r.tty };
            remotecommand::serve(&cri, remotecommand::Target::Exec(r.container_id, r.cmd), opts, up).await;
        }
        Pending::Attach(r) => {
            let Some(up) = upgrade(sock, &head, remotecommand::SPDY_PROTOCOLS, remotecommand::WS_PROTOCOLS, idle).await
            else {
                return;
            };
            let opts = remotecommand::Options { stdin: r.stdin, stdout: r.stdout, stderr: r.stderr, tty: r.tty };
            remotecommand::serve(&cri, remotecommand::Target::Attach(r.container_id), opts, up).await;
        }
        Pending::PortForward(r) => {
            // A WebSocket names its ports in the query; SPDY streams name theirs.
            let mut ports: Vec<u16> = Vec::new();
            for (k, v) in &head.query {
                if k == "port" {
                    ports.extend(v.split(',').filter_map(|p| p.parse::<u16>().ok()).filter(|p| *p > 0));
                }
            }
            if ports.is_empty() {
                ports = r.port.iter().filter_map(|p| u16::try_from(*p).ok()).collect();
            }
            // A WebSocket gives each port two one-byte channel numbers.
            if ports.len() > MAX_WS_PORTS {
                let msg = format!("at most {MAX_WS_PORTS} ports can be forwarded at once\n");
                respond(&mut sock, "400 Bad Request", &msg).await;
                return;
            }
            let Some(up) = upgrade(sock, &head, portforward::SPDY_PROTOCOLS, portforward::WS_PROTOCOLS, idle).await
            else {
                return;
            };
            portforward::serve(&cri, &r.pod_sandbox_id, ports, up).await;
        }
    }
}

impl Cri {
    /// `Exec`: checks the request and the container, and returns the URL to stream it on.
    pub fn stream_exec(&self, r: ExecRequest) -> Result<String, Status> {
        check_streams(r.tty, r.stdin, r.stdout, r.stderr)?;
        if r.cmd.is_empty() {
            return Err(Status::invalid_argument("the command to run is empty"));
        }
        let (rec, _, _) = self.container(&r.container_id)?;
        running(&rec)?;
        self.streaming.insert(Pending::Exec(ExecRequest { container_id: rec.id.clone(), ..r }))
    }

    /// `Attach`: as [`Cri::stream_exec`], for the container's own process.
    pub fn stream_attach(&self, r: AttachRequest) -> Result<String, Status> {
        check_streams(r.tty, r.stdin, r.stdout, r.stderr)?;
        let (rec, _, _) = self.container(&r.container_id)?;
        running(&rec)?;
        self.streaming.insert(Pending::Attach(AttachRequest { container_id: rec.id.clone(), ..r }))
    }

    /// `PortForward`: the pod must be ready.
    pub fn stream_port_forward(&self, r: PortForwardRequest) -> Result<String, Status> {
        let (rec, _) = self.sandbox(&r.pod_sandbox_id)?;
        if !rec.state.is_running() {
            return Err(Status::unknown("sandbox container is not running"));
        }
        if let Some(p) = r.port.iter().find(|p| !(1..=65535).contains(*p)) {
            return Err(Status::invalid_argument(format!("invalid port {p}")));
        }
        self.streaming.insert(Pending::PortForward(PortForwardRequest { pod_sandbox_id: rec.id.clone(), ..r }))
    }
}

/// kubelet's checks of the streams an exec or attach asks for.
fn check_streams(tty: bool, stdin: bool, stdout: bool, stderr: bool) -> Result<(), Status> {
    if tty && stderr {
        return Err(Status::invalid_argument("tty and stderr cannot both be true"));
    }
    if !stdin && !stdout && !stderr {
        return Err(Status::invalid_argument("one of stdin, stdout, or stderr must be set"));
    }
    Ok(())
}

/// A container that does not run is refused as containerd refuses it (gRPC `Unknown`).
fn running(rec: &berth_container::Record) -> Result<(), Status> {
    if rec.state.is_running() {
        return Ok(());
    }
    let state = if rec.state.status() == berth_container::state::Status::Created {
        "CONTAINER_CREATED"
    } else {
        "CONTAINER_EXITED"
    };
    Err(Status::unknown(format!("container is in {state} state")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_spent_on_first_use_and_only_by_its_kind() {
        let s = Server::new("0.0.0.0:1234".parse().unwrap(), None);
        let url = s.insert(Pending::Attach(AttachRequest::default())).unwrap();
        let token = url.strip_prefix("http://127.0.0.1:1234/attach/").unwrap();
        assert!(s.take("attach", token).is_some());
        assert!(s.take("attach", token).is_none());
        let url = s.insert(Pending::Attach(AttachRequest::default())).unwrap();
        let token = url.rsplit('/').next().unwrap();
        assert!(s.take("exec", token).is_none());
        assert!(s.take("attach", token).is_none());
    }

    #[test]
    fn an_address_without_a_port_takes_any() {
        assert_eq!(listen_spec("127.0.0.1:0"), "127.0.0.1:0");
        assert_eq!(listen_spec("0.0.0.0"), "0.0.0.0:0");
        assert_eq!(listen_spec("localhost:10010"), "localhost:10010");
        assert_eq!(listen_spec("::1"), "[::1]:0");
        assert_eq!(listen_spec("[::1]"), "[::1]:0");
        assert_eq!(listen_spec("[::1]:10010"), "[::1]:10010");
    }

    #[test]
    fn heads_parse_with_repeated_headers_and_escaped_queries() {
        let h = parse_head(
            "POST /exec/abc?command=sh&command=-c&command=echo%20hi+there&port=80,81 HTTP/1.1\r\n\
             Host: x\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\
             X-Stream-Protocol-Version: v3.channel.k8s.io, v2.channel.k8s.io\r\nConnection: Upgrade",
        )
        .unwrap();
        assert_eq!(h.path, "/exec/abc");
        assert_eq!(h.query[2], ("command".into(), "echo hi there".into()));
        assert_eq!(
            h.values("x-stream-protocol-version"),
            ["v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io"]
        );
        assert!(h.has_token("connection", "upgrade"));
        assert_eq!(
            negotiate(&h.values("x-stream-protocol-version"), &["v3.channel.k8s.io", "v4.channel.k8s.io"]),
            Ok(Some("v4.channel.k8s.io".into()))
        );
        assert_eq!(negotiate(&[], &["x"]), Ok(None));
        assert_eq!(negotiate(&["y".into()], &["x"]), Err(()));
    }
}
