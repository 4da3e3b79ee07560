//! Listening: accept connections, speak HTTP/1.1, stop gracefully.
//!
//! Shutdown contract: when the `shutdown` future completes, no new connection is accepted,
//! every open connection finishes the request it is serving and is then closed, and the
//! serve function returns once they are done (or after [`DRAIN_TIMEOUT`], dropping the
//! rest). An upload cut off that way is like a client that vanished: nothing reaches
//! `blobs/` unverified. (A chunk interrupted by a closed connection is rolled back; one
//! cut off by the drain timeout may stay partly written, and the offset a client then reads
//! from the session tells it where to resume.)

use crate::error::{RegistryError, Result};
use crate::{Config, Registry};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Turns an accepted TCP stream into the byte stream HTTP is spoken over. This is the TLS
/// seam: a TLS acceptor performs the handshake here. It runs on the connection's own task,
/// so a slow handshake never blocks accepting others.
pub trait Acceptor: Clone + Send + Sync + 'static {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn accept(&self, tcp: TcpStream) -> impl Future<Output = std::io::Result<Self::Io>> + Send;
}

/// Plain-text HTTP.
#[derive(Debug, Clone, Copy, Default)]
pub struct Plain;

impl Acceptor for Plain {
    type Io = TcpStream;
    async fn accept(&self, tcp: TcpStream) -> std::io::Result<TcpStream> {
        Ok(tcp)
    }
}

/// Opens the registry described by `config`, listens on `config.addr`, and serves until
/// `shutdown` completes.
pub async fn serve(config: Config, shutdown: impl Future<Output = ()>) -> Result<()> {
    let listener =
        TcpListener::bind(config.addr).await.map_err(|e| RegistryError::io(format!("listen on {}", config.addr), e))?;
    let registry = Registry::open(config)?;
    serve_listener(registry, listener, shutdown).await
}

/// Serves `registry` on an already-bound listener (tests bind `127.0.0.1:0`): HTTPS when
/// its config names a certificate, else plain HTTP.
pub async fn serve_listener(
    registry: Arc<Registry>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    match registry.tls().cloned() {
        Some(tls) => serve_listener_with(registry, listener, tls, shutdown).await,
        None => serve_listener_with(registry, listener, Plain, shutdown).await,
    }
}

/// Serves `registry` on `listener`, passing each connection through `acceptor`.
pub async fn serve_listener_with<A: Acceptor>(
    registry: Arc<Registry>,
    listener: TcpListener,
    acceptor: A,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        while conns.try_join_next().is_some() {}
        let (tcp, _peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                // Out of file descriptors and the like: back off instead of spinning.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        berth_distribution::http::tune_registry_socket(&tcp);
        let (registry, acceptor, mut stop) = (registry.clone(), acceptor.clone(), stop_rx.clone());
        conns.spawn(async move {
            let Ok(io) = acceptor.accept(tcp).await else {
                return;
            };
            let svc = service_fn(move |req| {
                let registry = registry.clone();
                async move { Ok::<_, Infallible>(registry.handle(req).await) }
            });
            let conn = http1::Builder::new().serve_connection(TokioIo::new(io), svc);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    // A connection's error here is its client's going away: nothing to do.
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    // No receivers left means no connections left to stop; past the drain timeout the rest are
    // dropped, as the timeout intends.
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async { while conns.join_next().await.is_some() {} }).await;
    Ok(())
}
