//! Port forwarding into a pod, as kubelet's portforward server serves it: each forwarded
//! connection is a TCP connection made inside the pod's network namespace to
//! `127.0.0.1:<port>` (or `[::1]:<port>`).
//!
//! On SPDY (`portforward.k8s.io`) the client opens two streams per connection, `data` and
//! `error`, that carry the same `port` and `requestid` headers; the data stream carries the
//! bytes both ways and the error stream, at the end, any failure's message. On a WebSocket
//! each port of the request gets channels `2i` (data) and `2i + 1` (error), both of which start
//! with the port as two little-endian bytes; the WebSocket's connections are made at once, one
//! per port, and the session ends when they all have.
//!
//! Each direction of a forwarded connection moves as the other side takes it: what the client
//! sends waits in its stream's window (SPDY) or in a queue of [`INPUT_QUEUE`] messages per
//! port and [`INPUT_BUDGET`] bytes per session (WebSocket) while the pod does not read, and
//! the pod's socket is read only as the client takes the data. Once one direction of a SPDY
//! forward has ended, the other is given [`LINGER`] to finish, as containerd gives it.
//!
//! A SPDY session holds at most [`spdy::MAX_STREAMS`] streams, paired or waiting for their
//! pair, and a forward lasts no longer than its data stream: one the client resets is ended
//! at once, so resetting streams to make room for more never adds up to more forwards, pod
//! sockets or threads than the streams allow. A session dials at most [`MAX_DIALS`] at once
//! (each dial is a thread, which goes on until its connection is made or fails even if its
//! forward has ended): a dial past that waits up to [`DIAL_QUEUE_WAIT`] for one to finish
//! (a burst of connections to a pod that accepts them passes), then is refused on its error
//! stream (or channel) as a failed dial is. Nothing of a session outlives it: when the client
//! goes, every copy in either direction is aborted and the pod's sockets closed.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;

use super::{Upgraded, spdy, ws};
use crate::Cri;

pub const SPDY_PROTOCOLS: &[&str] = &["portforward.k8s.io"];
pub const WS_PROTOCOLS: &[&str] = &["v4.channel.k8s.io", "v4.base64.channel.k8s.io"];

/// How long a connection to the pod's port may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
const BUF: usize = 32 << 10;
/// Messages from a WebSocket client queued for one port's connection.
const INPUT_QUEUE: usize = 4;
/// Bytes from a WebSocket client queued for all its ports' connections together (a message
/// is a piece of [`ws::PIECE`] bytes at most).
const INPUT_BUDGET: usize = 1 << 20;
/// How long one direction of a SPDY forward may go on after the other has ended.
const LINGER: Duration = Duration::from_secs(1);
/// Dials (threads) a session runs at once.
pub const MAX_DIALS: usize = 8;
/// How long a dial waits for one of the [`MAX_DIALS`] before it is refused.
const DIAL_QUEUE_WAIT: Duration = Duration::from_secs(1);

/// A copy that runs beside a port's forwarding and is aborted when dropped.
struct Detached(tokio::task::JoinHandle<()>);

impl Drop for Detached {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The pod's network namespace, opened once when the session starts: a dial later in the
/// session enters that namespace even if the pod's holder has exited and its PID been reused.
type Netns = Result<Arc<std::fs::File>, String>;

/// Connects to `port` on loopback inside the network namespace `netns`. The socket is made
/// by a thread of its own that enters the namespace and then ends: no thread of the daemon's
/// pools ever changes namespace. The thread holds one of `dials` while it runs; without one
/// free within [`DIAL_QUEUE_WAIT`] the dial is refused.
pub async fn dial(netns: Arc<std::fs::File>, port: u16, dials: &Arc<Semaphore>) -> io::Result<TcpStream> {
    let permit = match tokio::time::timeout(DIAL_QUEUE_WAIT, dials.clone().acquire_owned()).await {
        Ok(p) => p.map_err(io::Error::other)?,
        Err(_) => {
            return Err(io::Error::other(format!(
                "{MAX_DIALS} connections to the pod are being made already; try again once they are"
            )));
        }
    };
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new().name("cri-port-forward".into()).spawn(move || {
        let _permit = permit;
        let connect = || -> io::Result<std::net::TcpStream> {
            rustix::thread::move_into_link_name_space(netns.as_fd(), Some(rustix::thread::LinkNameSpaceType::Network))?;
            let v4 = SocketAddr::from(([127, 0, 0, 1], port));
            std::net::TcpStream::connect_timeout(&v4, DIAL_TIMEOUT).or_else(|e| {
                std::net::TcpStream::connect_timeout(
                    &SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)),
                    DIAL_TIMEOUT,
                )
                .map_err(|_| e)
            })
        };
        let _ = tx.send(connect());
    })?;
    let s = rx.await.map_err(|_| io::Error::other("the connecting thread ended"))??;
    s.set_nonblocking(true)?;
    TcpStream::from_std(s)
}

fn failure(port: u16, pod: &str, e: impl std::fmt::Display) -> String {
    format!("error forwarding port {port} to pod {pod}, uid : {e}")
}

/// Serves one port-forward session on an upgraded connection, to its end.
pub async fn serve(cri: &Cri, pod: &str, ports: Vec<u16>, up: Upgraded) {
    let netns: Netns = cri
        .pod_netns(pod)
        .and_then(|p| std::fs::File::open(&p).map(Arc::new).map_err(|e| format!("opening {}: {e}", p.display())));
    let dials = Arc::new(Semaphore::new(MAX_DIALS));
    match up {
        Upgraded::Spdy { conn, .. } => spdy_session(pod, netns, dials, conn).await,
        Upgraded::Ws { conn, protocol } => ws_session(pod, netns, dials, ports, conn, &protocol).await,
    }
}

async fn spdy_session(pod: &str, netns: Netns, dials: Arc<Semaphore>, mut conn: spdy::Conn) {
    // Streams waiting for their pair, by request ID: (data, error).
    let mut pairs: HashMap<String, (Option<spdy::Stream>, Option<spdy::Stream>)> = HashMap::new();
    let mut forwards = JoinSet::new();
    loop {
        let s = tokio::select! {
            s = conn.streams.recv() => match s {
                Some(s) => s,
                None => break,
            },
            Some(_) = forwards.join_next(), if !forwards.is_empty() => continue,
        };
        let kind = spdy::header(&s.headers, "streamtype").unwrap_or_default().to_string();
        // Clients before request IDs opened the error stream just before its data stream.
        let rid = match spdy::header(&s.headers, "requestid") {
            Some(r) => r.to_string(),
            None if kind == "data" => s.id.saturating_sub(2).to_string(),
            None => s.id.to_string(),
        };
        // Halves of pairs whose stream was reset or finished meanwhile are let go.
        pairs.retain(|_, (d, e)| [d, e].into_iter().flatten().all(|s| conn.out.is_open(s.id)));
        let slot = pairs.entry(rid.clone()).or_default();
        let old = match kind.as_str() {
            "data" => slot.0.replace(s),
            "error" => slot.1.replace(s),
            _ => {
                conn.out.reset(s.id, spdy::REFUSED_STREAM).await;
                continue;
            }
        };
        // A second stream of a kind for one request replaces the first, which is reset.
        if let Some(old) = old {
            conn.out.reset(old.id, spdy::REFUSED_STREAM).await;
        }
        if let (Some(_), Some(_)) = slot {
            let Some((Some(data), Some(error))) = pairs.remove(&rid) else { continue };
            let (pod, netns, dials, out) = (pod.to_string(), netns.clone(), dials.clone(), conn.out.clone());
            forwards.spawn(spdy_forward(pod, netns, dials, data, error, out));
        }
    }
    // The client is gone: every forwarded connection goes with it.
    forwards.abort_all();
    conn.tasks.close().await;
}

async fn spdy_forward(
    pod: String,
    netns: Netns,
    dials: Arc<Semaphore>,
    mut data: spdy::Stream,
    error: spdy::Stream,
    out: spdy::Out,
) {
    let id = data.id;
    let forward = async {
        let port = spdy::header(&data.headers, "port").and_then(|p| p.parse::<u16>().ok()).filter(|p| *p > 0);
        let sock = match (port, netns) {
            (None, _) => Err(format!("invalid port header {:?}", spdy::header(&data.headers, "port"))),
            (Some(p), Err(e)) => Err(failure(p, &pod, e)),
            (Some(p), Ok(ns)) => dial(ns, p, &dials).await.map_err(|e| failure(p, &pod, e)),
        };
        let sock = match sock {
            Ok(s) => s,
            Err(msg) => {
                let _ = out.data(error.id, msg.as_bytes()).await;
                return;
            }
        };
        let (mut rd, mut wr) = sock.into_split();
        let to_pod = async {
            while let Some(b) = data.data.recv().await {
                if wr.write_all(&b).await.is_err() {
                    break;
                }
            }
            let _ = wr.shutdown().await;
        };
        let from_pod = async {
            let mut buf = vec![0u8; BUF];
            while let Ok(n) = rd.read(&mut buf).await
                && n > 0
            {
                if out.data(id, &buf[..n]).await.is_err() {
                    break;
                }
            }
            out.fin(id).await;
        };
        tokio::pin!(to_pod, from_pod);
        // Once one direction has ended, the other has a moment to finish, as containerd
        // gives it: past that, what is left of it is dropped with the pod's socket.
        let _ = tokio::select! {
            _ = &mut to_pod => tokio::time::timeout(LINGER, from_pod).await,
            _ = &mut from_pod => tokio::time::timeout(LINGER, to_pod).await,
        };
    };
    // A data stream the client resets no longer counts against the session's cap: the
    // forward, its dial and the pod's socket go with it.
    tokio::select! {
        _ = forward => {}
        _ = out.gone(id) => {}
    }
    out.fin(id).await;
    out.fin(error.id).await;
}

async fn ws_session(
    pod: &str,
    netns: Netns,
    dials: Arc<Semaphore>,
    ports: Vec<u16>,
    mut conn: ws::Conn,
    protocol: &str,
) {
    let codec = if protocol.contains("base64") { ws::Codec::Base64 } else { ws::Codec::Binary };
    let send = async move |out: &ws::Out, chan: usize, data: &[u8]| {
        let (op, payload) = codec.message(chan as u8, data);
        out.send(op, payload).await
    };
    let mut inputs = Vec::new();
    let mut forwards = JoinSet::new();
    let budget = Arc::new(Semaphore::new(INPUT_BUDGET));
    for (i, port) in ports.iter().copied().enumerate() {
        let _ = send(&conn.out, 2 * i, &port.to_le_bytes()).await;
        let _ = send(&conn.out, 2 * i + 1, &port.to_le_bytes()).await;
        // Each message goes with its share of the session's budget, given back once written.
        let (tx, mut rx) = mpsc::channel::<(Vec<u8>, OwnedSemaphorePermit)>(INPUT_QUEUE);
        inputs.push(tx);
        let (out, pod, netns, dials) = (conn.out.clone(), pod.to_string(), netns.clone(), dials.clone());
        forwards.spawn(async move {
            let sock = match netns {
                Err(e) => Err(failure(port, &pod, e)),
                Ok(ns) => dial(ns, port, &dials).await.map_err(|e| failure(port, &pod, e)),
            };
            let sock = match sock {
                Ok(s) => s,
                Err(msg) => {
                    let _ = send(&out, 2 * i + 1, msg.as_bytes()).await;
                    return None;
                }
            };
            let (mut rd, mut wr) = sock.into_split();
            let to_pod = async move {
                while let Some((b, _share)) = rx.recv().await {
                    if wr.write_all(&b).await.is_err() {
                        break;
                    }
                }
                let _ = wr.shutdown().await;
            };
            // What the client sends may go on after the pod's side has ended, until the session
            // does; aborted with this task or with the session.
            let copy = Detached(tokio::spawn(to_pod));
            let mut buf = vec![0u8; BUF];
            while let Ok(n) = rd.read(&mut buf).await
                && n > 0
            {
                if send(&out, 2 * i, &buf[..n]).await.is_err() {
                    break;
                }
            }
            Some(copy)
        });
    }
    let mut copies = Vec::new();
    loop {
        tokio::select! {
            m = conn.messages.recv() => match m {
                Some(m) => {
                    if let Some((chan, data)) = codec.parse(&m.data)
                        && chan % 2 == 0
                        && let Some(tx) = inputs.get(usize::from(chan / 2))
                    {
                        // Waits while the pod does not read, and the client's messages wait too.
                        let n = u32::try_from(data.len()).unwrap_or(u32::MAX);
                        let queued = async {
                            let share = budget.clone().acquire_many_owned(n).await.ok()?;
                            tx.send((data, share)).await.ok()
                        };
                        tokio::select! {
                            _ = queued => {}
                            _ = conn.out.closed() => break,
                        }
                    }
                }
                None => break,
            },
            done = forwards.join_next() => match done {
                Some(Ok(Some(copy))) => copies.push(copy),
                Some(_) => {}
                None => break,
            },
        }
    }
    forwards.abort_all();
    drop(copies);
    conn.tasks.close().await;
}
