//! Bodies, responses and query strings: the small HTTP toolkit the routes share.

use crate::error::RegistryError;
use crate::mapped::{Mapped, Maps};
use bytes::Bytes;
use futures_util::StreamExt as _;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Empty, Full, StreamBody, combinators::UnsyncBoxBody};
use std::io::{Read as _, Seek as _, SeekFrom};
use std::sync::{Arc, Mutex};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Every response body: empty, a small buffer, or a file streamed in chunks.
pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;
/// Every request body, whatever the transport gave us.
pub type ReqBody = UnsyncBoxBody<Bytes, BoxError>;

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed_unsync()
}

/// How much of a file one body chunk carries.
const FILE_CHUNK: u64 = 1 << 20;

/// A chunk of a file body; its buffer goes back to the body's pool once hyper has written
/// and dropped it, so a download reuses a handful of buffers instead of asking the allocator
/// (and the kernel, which zeroes every fresh page) for a new megabyte each time.
struct Recycled {
    buf: Vec<u8>,
    pool: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl AsRef<[u8]> for Recycled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Recycled {
    fn drop(&mut self) {
        if let Ok(mut pool) = self.pool.lock() {
            pool.push(std::mem::take(&mut self.buf));
        }
    }
}

/// Files at least this large are sent from a mapping rather than read into buffers.
const MAP_AT_LEAST: u64 = 1 << 20;

/// Streams `len` bytes from `offset` of `file` (`meta` is its metadata). A blob of a
/// megabyte or more is mapped and handed to hyper in slices of the mapping, so its bytes are
/// copied once, from the page cache into the socket (reading it into buffers first doubled the copying, the registry's
/// main cost on a large pull); the mapping is kept in `maps` for the requests that follow
/// (see [`crate::mapped`]). Smaller blobs, or a file that cannot be mapped, are read by
/// [`read_body`]. The price: a blob not in the page cache is read from disk by page faults
/// on the runtime thread that writes the response (sequential advice makes each fault read
/// ahead), and a disk error while doing so is a SIGBUS that ends the registry rather than
/// one response.
pub fn file_body(file: std::fs::File, meta: &std::fs::Metadata, offset: u64, len: u64, maps: &Maps) -> Body {
    if len >= MAP_AT_LEAST {
        let all = maps
            .slice(&file, meta, offset, len)
            .or_else(|| Mapped::new(&file, meta.len(), offset, len).ok().map(Bytes::from_owner));
        if let Some(all) = all {
            let chunks = (0..len).step_by(FILE_CHUNK as usize).map(move |at| {
                let end = (at + FILE_CHUNK).min(len);
                Ok(hyper::body::Frame::data(all.slice(at as usize..end as usize)))
            });
            return StreamBody::new(futures_util::stream::iter(chunks)).boxed_unsync();
        }
    }
    read_body(file, offset, len)
}

/// Streams `len` bytes of `file` from `offset`. A blocking thread reads ahead a few chunks
/// (each read straight into the buffer that is then sent, one copy from the page cache) and
/// stops when the client goes away; a file shorter than promised ends the body with an
/// error, so the client sees a cut rather than a short blob.
fn read_body(mut file: std::fs::File, offset: u64, len: u64) -> Body {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    let pool = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
    tokio::task::spawn_blocking(move || {
        if let Err(e) = file.seek(SeekFrom::Start(offset)) {
            // Fails only if the client has gone, with no one left to tell.
            let _ = tx.blocking_send(Err(e));
            return;
        }
        let mut left = len;
        while left > 0 {
            let want = left.min(FILE_CHUNK);
            let reused = pool.lock().ok().and_then(|mut p| p.pop());
            let mut chunk = reused.unwrap_or_else(|| Vec::with_capacity(FILE_CHUNK as usize));
            chunk.clear();
            let read = match (&file).take(want).read_to_end(&mut chunk) {
                Ok(0) => Err(std::io::ErrorKind::UnexpectedEof.into()),
                r => r,
            };
            let next = read.map(|n| {
                left -= n as u64;
                Bytes::from_owner(Recycled { buf: chunk, pool: pool.clone() })
            });
            let failed = next.is_err();
            if tx.blocking_send(next).is_err() || failed {
                return;
            }
        }
    });
    let stream =
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)).map(|chunk| chunk.map(hyper::body::Frame::data));
    StreamBody::new(stream).boxed_unsync()
}

/// A JSON response with Content-Type and Content-Length.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let bytes = serde_json::to_vec(value).expect("JSON values serialize");
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, bytes.len())
        .body(full(bytes))
        .expect("valid response")
}

/// The response for an error: status, envelope and the extra headers some errors carry.
pub fn error_response(err: &RegistryError) -> Response<Body> {
    let mut resp = json(err.status(), &err.envelope());
    let h = resp.headers_mut();
    match err {
        RegistryError::Unauthorized { challenge, .. } => {
            if let Ok(v) = HeaderValue::from_str(challenge) {
                h.insert(header::WWW_AUTHENTICATE, v);
            }
        }
        RegistryError::RangeNotSatisfiable { content_range, range, location } => {
            for (name, value) in [("content-range", content_range), ("range", range), ("location", location)] {
                if let Some(v) = value.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
                    h.insert(name, v);
                }
            }
        }
        _ => {}
    }
    resp
}

/// A parsed query string. Keys may repeat (`scope=a&scope=b`); values are percent-decoded.
#[derive(Debug, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(q: Option<&str>) -> Query {
        let pairs = q
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (berth_api::percent::decode_query(k), berth_api::percent::decode_query(v))
            })
            .collect();
        Query(pairs)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// A non-negative integer parameter; `Err` names it if it is not one.
    pub fn number(&self, key: &str) -> Result<Option<usize>, String> {
        self.get(key).filter(|v| !v.is_empty()).map(|v| v.parse().map_err(|_| format!("invalid {key}"))).transpose()
    }
}

/// Percent-encodes a query value (for `Link` headers); `/` stays, as in a repository name.
pub fn encode(s: &str) -> String {
    berth_api::percent::encode(s, |b| berth_api::percent::unreserved(b) || b == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let q = Query::parse(Some("digest=sha256%3Aab&scope=a&scope=b+c&x=%zz&y=%4&z=%C3%A9%"));
        assert_eq!(q.get("digest"), Some("sha256:ab"));
        assert_eq!(q.get_all("scope").collect::<Vec<_>>(), ["a", "b c"]);
        assert_eq!(q.get("x"), Some("%zz"));
        assert_eq!(q.get("y"), Some("%4"));
        assert_eq!(q.get("z"), Some("é%"));
        assert_eq!(encode("a:b c"), "a%3Ab%20c");
    }
}
