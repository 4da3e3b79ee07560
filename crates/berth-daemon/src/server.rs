//! Accepting connections and dispatching requests to the route table.

use std::convert::Infallible;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, UnixListener};
use tracing::Instrument;

use crate::Daemon;
use crate::error::ApiError;
use crate::http::{self, Req, Resp};
use crate::router::{self, Route};

/// Requests served so far; the idle trimmer watches it.
static REQUESTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// When no request has come for a while, the daemon gives back the code pages and free heap
/// it is not using (they stay in the page cache; the next request faults them back in well
/// under a millisecond), so an idle daemon's resident set is small.
async fn trim_when_idle() {
    const QUIET: std::time::Duration = std::time::Duration::from_secs(30);
    let mut seen = u64::MAX;
    let mut quiet_since = std::time::Instant::now();
    let mut trimmed_at = u64::MAX;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        tick.tick().await;
        let now = REQUESTS.load(std::sync::atomic::Ordering::Relaxed);
        if now != seen {
            seen = now;
            quiet_since = std::time::Instant::now();
        } else if quiet_since.elapsed() >= QUIET && trimmed_at != now {
            let _ = tokio::task::spawn_blocking(berth_runtime::sys::trim_resident_memory).await;
            trimmed_at = now;
        }
    }
}

async fn dispatch(
    daemon: Arc<Daemon>,
    routes: Arc<Vec<Route>>,
    mut req: hyper::Request<Incoming>,
) -> Result<Resp, Infallible> {
    REQUESTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let upgrade = req.headers().contains_key(hyper::header::UPGRADE).then(|| hyper::upgrade::on(&mut req));
    let (parts, body) = req.into_parts();
    let (version, path) = match router::split_version(parts.uri.path()) {
        Ok(v) => v,
        Err(e) => return Ok(http::error(&e)),
    };
    let query = parts
        .uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (berth_api::percent::decode_query(k), berth_api::percent::decode_query(v))
        })
        .collect();
    for route in routes.iter() {
        if route.method != parts.method {
            continue;
        }
        if let Some(params) = router::matches(route.pattern, &path) {
            let span = tracing::info_span!("request", method = %parts.method, path = %path);
            let span_error = span.clone();
            let r = Req {
                method: parts.method.clone(),
                path: path.clone(),
                version,
                query,
                headers: parts.headers,
                params,
                body: Some(body),
                upgrade,
            };
            let resp = match (route.handler)(daemon.clone(), r).instrument(span).await {
                Ok(r) => r,
                // Logged there, within the request's span.
                Err(e) => span_error.in_scope(|| http::error(&e)),
            };
            return Ok(with_common_headers(resp));
        }
    }
    Ok(with_common_headers(http::error(&ApiError::not_found("page not found"))))
}

fn with_common_headers(mut r: Resp) -> Resp {
    use ::http::HeaderValue;
    let h = r.headers_mut();
    h.insert("Api-Version", HeaderValue::from_static(berth_api::API_VERSION));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert("Server", HeaderValue::from_static(concat!("berth/", env!("CARGO_PKG_VERSION"), " (linux)")));
    r
}

async fn serve_conn<I>(daemon: Arc<Daemon>, routes: Arc<Vec<Route>>, io: I)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| dispatch(daemon.clone(), routes.clone(), req));
    let conn = hyper::server::conn::http1::Builder::new()
        .half_close(true)
        .serve_connection(TokioIo::new(io), svc)
        .with_upgrades();
    let _ = conn.await;
}

/// The API socket is root's: mode 0660, group `docker` when that group exists (or the group
/// given with `-G`, which must exist), as dockerd makes it. Anyone who can connect is root on
/// the host.
fn secure_socket(path: &str, group: Option<&str>) -> Result<(), String> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| format!("setting the mode of {path}: {e}"))?;
    let gid = match group {
        Some(g) => Some(
            crate::config::group_id(g)
                .ok_or_else(|| format!("can't create unix socket {path}: group {g} not found"))?,
        ),
        None => crate::config::group_id("docker"),
    };
    if let Some(gid) = gid {
        std::os::unix::fs::chown(path, Some(0), Some(gid)).map_err(|e| format!("setting the group of {path}: {e}"))?;
    }
    Ok(())
}

/// Serves the API on every configured host until `shutdown` resolves. `ready` is called
/// once every listener is bound, so whoever waits for it can connect at once.
pub async fn serve(
    daemon: Arc<Daemon>,
    shutdown: impl std::future::Future<Output = ()>,
    ready: impl FnOnce(),
) -> Result<(), String> {
    let routes = Arc::new(router::routes());
    let mut tasks = vec![tokio::spawn(trim_when_idle())];
    for host in daemon.config.hosts.clone() {
        if let Some(path) = host.strip_prefix("unix://") {
            let _ = std::fs::remove_file(path);
            if let Some(parent) = std::path::Path::new(path).parent() {
                std::fs::create_dir_all(parent).map_err(|e| format!("creating {}: {e}", parent.display()))?;
            }
            let l = UnixListener::bind(path).map_err(|e| format!("listening on {path}: {e}"))?;
            secure_socket(path, daemon.config.socket_group.as_deref())?;
            let (d, r) = (daemon.clone(), routes.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    if let Ok((s, _)) = l.accept().await {
                        tokio::spawn(serve_conn(d.clone(), r.clone(), s));
                    }
                }
            }));
        } else if let Some(addr) = host.strip_prefix("tcp://") {
            let l = TcpListener::bind(addr).await.map_err(|e| format!("listening on {addr}: {e}"))?;
            let (d, r) = (daemon.clone(), routes.clone());
            let tls = daemon.config.api_tls.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    let Ok((s, _)) = l.accept().await else { continue };
                    let _ = s.set_nodelay(true);
                    let (d, r) = (d.clone(), r.clone());
                    match tls.clone() {
                        None => drop(tokio::spawn(serve_conn(d, r, s))),
                        // The handshake runs in the connection's own task: a slow or hostile
                        // client holds up nobody else.
                        Some(tls) => drop(tokio::spawn(async move {
                            if let Some(s) = tls.accept(s).await {
                                serve_conn(d, r, s).await;
                            }
                        })),
                    }
                }
            }));
        } else {
            return Err(format!("unsupported host {host:?}: use unix:///path or tcp://addr:port"));
        }
    }
    if let Some(path) = daemon.config.cri_socket.clone() {
        let l = berth_cri::bind(&path)?;
        let streams = berth_cri::stream::bind(&daemon.config.cri_stream_address).await?;
        let stream_addr = streams.local_addr().map_err(|e| format!("the CRI streaming server's address: {e}"))?;
        let cri = std::sync::Arc::new(berth_cri::Cri {
            containers: daemon.containers.clone(),
            images: daemon.images.clone(),
            db: daemon.db.clone(),
            distribution: daemon.distribution.clone(),
            data_root: daemon.config.data_root.clone(),
            samples: Default::default(),
            cni: berth_cni::Cni::new(berth_cni::Options {
                conf_dir: daemon.config.cni_conf_dir.clone(),
                bin_dirs: daemon.config.cni_bin_dirs.clone(),
                cache_dir: daemon.config.data_root.join("cni"),
                timeout: berth_cni::DEFAULT_TIMEOUT,
            }),
            streaming: berth_cri::stream::Server::new(stream_addr, daemon.config.cri_stream_idle_timeout),
        });
        cri.detach_on_removal();
        tasks.push(tokio::spawn(berth_cri::stream::serve(cri.clone(), streams)));
        tasks.push(tokio::spawn(async move {
            // Before the CRI answers (its socket already takes connections): kubelet never
            // lists a pod whose holder is gone but whose network is not torn down yet.
            cri.detach_orphans().await;
            if let Err(e) = berth_cri::serve(cri, l).await {
                tracing::error!("the CRI server stopped: {e}");
            }
        }));
    }
    ready();
    shutdown.await;
    for t in tasks {
        t.abort();
    }
    for p in daemon.socket_paths() {
        let _ = std::fs::remove_file(p);
    }
    if let Some(p) = &daemon.config.cri_socket {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}
