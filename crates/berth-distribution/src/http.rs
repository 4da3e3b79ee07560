//! A small HTTP/1.1 client on hyper's connection API: one TCP (or TLS, see [`crate::tls`]) connection per
//! request in flight, idle connections kept per origin and reused.
//!
//! Registries need nothing more: requests are few and large (blobs stream in both
//! directions), so the pool only saves the handshakes of the many small requests (pings,
//! `HEAD`s, tokens). A connection is taken from the pool only if it is idle (its last
//! response body was read to the end); a busy or closed one is never waited for.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Frame;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::{DistError, Result};

/// Whether this build speaks HTTPS.
pub const TLS: bool = true;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const IDLE_PER_ORIGIN: usize = 8;

/// A request body: nothing, bytes, or a stream of chunks sent with chunked encoding (an
/// `Err` chunk aborts the request).
pub enum ReqBody {
    Empty,
    Full(Option<Bytes>),
    Stream(mpsc::Receiver<std::io::Result<Bytes>>),
}

impl ReqBody {
    pub fn full(b: impl Into<Bytes>) -> ReqBody {
        ReqBody::Full(Some(b.into()))
    }

    /// Bytes a replay of the request can send again (`None` for a stream).
    pub fn replayable(&self) -> Option<ReqBody> {
        match self {
            ReqBody::Empty => Some(ReqBody::Empty),
            ReqBody::Full(b) => Some(ReqBody::Full(b.clone())),
            ReqBody::Stream(_) => None,
        }
    }

    fn len(&self) -> Option<usize> {
        match self {
            ReqBody::Empty => Some(0),
            ReqBody::Full(b) => Some(b.as_ref().map_or(0, Bytes::len)),
            ReqBody::Stream(_) => None,
        }
    }
}

impl http_body::Body for ReqBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<std::io::Result<Frame<Bytes>>>> {
        match &mut *self {
            ReqBody::Empty => Poll::Ready(None),
            ReqBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            ReqBody::Stream(rx) => rx.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ReqBody::Empty => true,
            ReqBody::Full(b) => b.is_none(),
            ReqBody::Stream(_) => false,
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match self.len() {
            Some(n) => http_body::SizeHint::with_exact(n as u64),
            None => http_body::SizeHint::default(),
        }
    }
}

#[derive(Default)]
pub struct HttpClient {
    idle: Mutex<HashMap<String, Vec<SendRequest<ReqBody>>>>,
}

/// `scheme://host:port` of a URL, and the address to connect to.
fn origin(uri: &http::Uri) -> Result<(String, String, bool)> {
    let tls = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(DistError::Invalid(format!("unsupported URL {uri}"))),
    };
    let host = uri.host().ok_or_else(|| DistError::Invalid(format!("URL without a host: {uri}")))?;
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let addr = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    Ok((format!("{}://{addr}", if tls { "https" } else { "http" }), addr, tls))
}

impl HttpClient {
    pub fn new() -> HttpClient {
        HttpClient::default()
    }

    /// Sends `req` as is (no redirects, no auth) and returns the response with its body
    /// unread. Sets `Host` and, for bodies of known length, `Content-Length`.
    pub async fn send(&self, mut req: Request<ReqBody>) -> Result<Response<Incoming>> {
        let (key, addr, tls) = origin(req.uri())?;
        let host = req.uri().authority().map(|a| a.to_string()).unwrap_or_default();
        if let Ok(v) = host.parse() {
            req.headers_mut().insert(http::header::HOST, v);
        }
        if let Some(n) = req.body().len()
            && (n > 0 || matches!(*req.method(), http::Method::POST | http::Method::PUT | http::Method::PATCH))
        {
            req.headers_mut().insert(http::header::CONTENT_LENGTH, n.into());
        }
        // Origin-form request target, as HTTP/1.1 servers expect.
        let target = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
        let full = req.uri().clone();
        *req.uri_mut() = target.parse().map_err(|e| DistError::Invalid(format!("URL {full}: {e}")))?;
        let mut sender = match self.take_idle(&key) {
            Some(s) => s,
            None => connect(&addr, tls, &full).await?,
        };
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| DistError::Unavailable(format!("{} {full}: {e}", "request to")))?;
        self.put_idle(key, sender);
        Ok(resp)
    }

    fn take_idle(&self, key: &str) -> Option<SendRequest<ReqBody>> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.get_mut(key)?;
        let mut busy = Vec::new();
        let mut found = None;
        while let Some(s) = list.pop() {
            if s.is_closed() {
                continue;
            }
            if s.is_ready() {
                found = Some(s);
                break;
            }
            busy.push(s);
        }
        list.extend(busy);
        found
    }

    fn put_idle(&self, key: String, s: SendRequest<ReqBody>) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.entry(key).or_default();
        list.retain(|s| !s.is_closed());
        if list.len() < IDLE_PER_ORIGIN {
            list.push(s);
        }
    }
}

async fn connect(addr: &str, tls: bool, url: &http::Uri) -> Result<SendRequest<ReqBody>> {
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| DistError::Unavailable(format!("Get \"{url}\": dial tcp {addr}: i/o timeout")))?
        .map_err(|e| DistError::Unavailable(format!("Get \"{url}\": dial tcp {addr}: {e}")))?;
    tune_registry_socket(&tcp);
    if tls {
        let host = url.host().unwrap_or("");
        let authority = url.authority().map(|a| a.as_str()).unwrap_or(host);
        let stream = crate::tls::connect(tcp, host, authority, url).await?;
        return handshake(stream, url).await;
    }
    handshake(tcp, url).await
}

/// Unsent bytes a registry connection may queue in the kernel (`TCP_NOTSENT_LOWAT`) before
/// it stops being writable.
const UNSENT_AT_MOST: libc::c_int = 1 << 20;

/// Readies a TCP connection to or from a registry (this client's, and the registry server's
/// accepted ones): no Nagle delay, and at most [`UNSENT_AT_MOST`] bytes queued unsent. The
/// limit bounds only what waits to be sent, not what is in flight, so a transfer limited by
/// the path's congestion window is not slowed; what it prevents: with the whole send buffer
/// full, the unsent part leaves from whichever CPU handles the peer's next acknowledgement
/// while the writer sends more from its own, and on loopback (a packet is received on the
/// CPU that sent it) the two runs of segments arrive interleaved, out of order, and cost
/// spurious retransmissions, each cutting the congestion window. A failure to set either
/// option leaves the kernel's default, which works.
pub fn tune_registry_socket(tcp: &TcpStream) {
    use std::os::fd::AsRawFd as _;
    // Either failure leaves the kernel's default (see above).
    let _ = tcp.set_nodelay(true);
    let value = UNSENT_AT_MOST;
    // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from a live local of that type,
    // on a descriptor `tcp` owns for the duration of the call.
    #[allow(unsafe_code)]
    let _ = unsafe {
        libc::setsockopt(
            tcp.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NOTSENT_LOWAT,
            std::ptr::from_ref(&value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
}

async fn handshake<T>(io: T, url: &http::Uri) -> Result<SendRequest<ReqBody>>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| DistError::Unavailable(format!("Get \"{url}\": {e}")))?;
    tokio::spawn(async move {
        // A connection's error fails the requests on it, which report it.
        let _ = conn.await;
    });
    Ok(sender)
}

/// Reads a whole body, refusing more than `limit` bytes (manifests, tokens, errors).
pub async fn read_limited(resp: Response<Incoming>, limit: usize) -> Result<Bytes> {
    let mut body = resp.into_body();
    let mut out = bytes::BytesMut::new();
    while let Some(f) = body.frame().await {
        let f = f.map_err(|e| DistError::Unavailable(format!("reading response: {e}")))?;
        if let Ok(d) = f.into_data() {
            if out.len() + d.len() > limit {
                return Err(DistError::Invalid(format!("response larger than {limit} bytes")));
            }
            out.extend_from_slice(&d);
        }
    }
    Ok(out.freeze())
}

/// Reads and discards a body so its connection can be reused.
pub async fn drain(resp: Response<Incoming>) {
    let mut body = resp.into_body();
    while let Some(Ok(_)) = body.frame().await {}
}

/// `GET url`, following up to ten redirects, for downloads (`import URL`, `ADD URL`):
/// the final response when its status is 2xx, else an error naming the URL and status.
pub async fn download(client: &HttpClient, url: &str) -> Result<Response<Incoming>> {
    let mut url = url.to_string();
    for _ in 0..10 {
        let uri: http::Uri = url.parse().map_err(|e| DistError::Invalid(format!("invalid URL {url}: {e}")))?;
        let req = Request::get(uri.clone())
            .header(http::header::USER_AGENT, concat!("berth/", env!("CARGO_PKG_VERSION")))
            .body(ReqBody::full(Bytes::new()))
            .map_err(|e| DistError::Invalid(format!("invalid URL {url}: {e}")))?;
        let resp = client.send(req).await?;
        let status = resp.status();
        if status.is_redirection() {
            let loc = resp.headers().get(http::header::LOCATION).and_then(|v| v.to_str().ok()).map(String::from);
            drain(resp).await;
            let loc = loc.ok_or_else(|| {
                DistError::Invalid(format!("failed to GET {url}: redirect {status} without a Location"))
            })?;
            url = resolve_location(&uri, &loc);
            continue;
        }
        if !status.is_success() {
            drain(resp).await;
            return Err(DistError::Invalid(format!("failed to GET {url} with status {status}")));
        }
        return Ok(resp);
    }
    Err(DistError::Invalid(format!("failed to GET {url}: too many redirects")))
}

/// An absolute URL for a `Location` header relative to `base`.
fn resolve_location(base: &http::Uri, loc: &str) -> String {
    if loc.contains("://") {
        return loc.to_string();
    }
    let origin =
        format!("{}://{}", base.scheme_str().unwrap_or("http"), base.authority().map(|a| a.as_str()).unwrap_or(""));
    if loc.starts_with('/') {
        return format!("{origin}{loc}");
    }
    let dir = base.path().rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    format!("{origin}{dir}/{loc}")
}

/// A response body as a channel of chunks, read by a background task; a read error ends the
/// stream early (the reader then sees a truncated stream).
pub fn body_channel(resp: Response<Incoming>) -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let mut body = resp.into_body();
        while let Some(Ok(f)) = body.frame().await {
            if let Ok(d) = f.into_data()
                && tx.send(d).await.is_err()
            {
                return;
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_connections_queue_little_unsent() {
        use std::os::fd::AsRawFd as _;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let tcp = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
            tune_registry_socket(&tcp);
            let mut value: libc::c_int = 0;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: getsockopt writes at most `len` bytes into the local it is given.
            #[allow(unsafe_code)]
            let rc = unsafe {
                libc::getsockopt(
                    tcp.as_raw_fd(),
                    libc::IPPROTO_TCP,
                    libc::TCP_NOTSENT_LOWAT,
                    std::ptr::from_mut(&mut value).cast(),
                    &mut len,
                )
            };
            assert_eq!(rc, 0);
            assert_eq!(value, UNSENT_AT_MOST);
            assert!(tcp.nodelay().unwrap());
        });
    }
}
