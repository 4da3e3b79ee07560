//! gRPC over an HTTP/2 connection that was an HTTP/1.1 request before (`Upgrade: h2c`),
//! without a gRPC framework: the framing is five bytes (a compression flag, always 0 here,
//! and the length, big-endian) before each protobuf message; the status is in the trailers
//! (`grpc-status`, `grpc-message`), or in the headers of a response without a body.
//!
//! Both directions are needed: on `/grpc` the daemon is the server ([`serve`]), on
//! `/session` it is the client of services the build client exposes ([`Channel`]). Flow
//! control is honoured both ways: received bytes are released as they are read, and a
//! message is sent only as the peer grants window, so a large file transfer never sits in
//! memory on either side.

use std::future::Future;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::future::poll_fn;
use http::{HeaderMap, HeaderValue, Request, Response};
use tokio::io::{AsyncRead, AsyncWrite};

/// How many bytes of framing overhead of small DATA frames may be buffered unread before h2
/// closes the connection (its abuse guard). fsutil sends one small message per file, gRPC
/// one frame per message: a context of many small files is a burst of small frames, so the
/// default (about a hundred frames) ends a legitimate session.
/// Only the session's side needs it: the daemon is the client there, and reads what it
/// asked for; the control API's server keeps h2's default.
const SMALL_FRAME_BUDGET: usize = 64 << 20;

/// The largest gRPC message taken from a peer (BuildKit's own limit): a length prefix is
/// the peer's word, and a message is held whole before it is decoded.
pub const MAX_MESSAGE: usize = 16 << 20;

/// Calls one control-API connection may have open at once.
const MAX_STREAMS: u32 = 128;

/// What one served connection may make the daemon hold of its calls' messages, across all
/// its streams: the partial messages being received and each call's last whole one, until
/// the handler asks for the next or lets the call go. Without it, `MAX_STREAMS` calls of
/// one `MAX_MESSAGE` each would hold 2 GiB. A call that would go over is answered
/// RESOURCE_EXHAUSTED.
pub const CONNECTION_BUDGET: usize = 64 << 20;

/// The HTTP/2 windows the server grants: what a peer may send that the daemon has not read
/// yet (h2 holds it) is bounded by the connection's window, whatever the number of streams.
const STREAM_WINDOW: u32 = 1 << 20;
const CONNECTION_WINDOW: u32 = 4 << 20;

/// The bytes of messages a connection's calls hold, shared by its streams.
#[derive(Clone)]
struct Budget(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Budget {
    fn new() -> Budget {
        Budget(Default::default())
    }

    /// Takes `n` bytes, or fails when that would go over [`CONNECTION_BUDGET`].
    fn take(&self, n: usize) -> Result<()> {
        use std::sync::atomic::Ordering::AcqRel;
        let fits = |used: usize| used.checked_add(n).filter(|&t| t <= CONNECTION_BUDGET);
        self.0.fetch_update(AcqRel, std::sync::atomic::Ordering::Acquire, fits).map(|_| ()).map_err(|used| {
            Error::status(
                Code::ResourceExhausted,
                format!(
                    "the calls on this connection would hold {} bytes of messages, over the limit of {} MiB",
                    used.saturating_add(n),
                    CONNECTION_BUDGET >> 20
                ),
            )
        })
    }

    fn give(&self, n: usize) {
        self.0.fetch_sub(n, std::sync::atomic::Ordering::AcqRel);
    }
}

/// gRPC status codes berth uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Ok = 0,
    Cancelled = 1,
    Unknown = 2,
    InvalidArgument = 3,
    NotFound = 5,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
}

impl Code {
    fn from_u32(n: u32) -> Code {
        match n {
            0 => Code::Ok,
            1 => Code::Cancelled,
            3 => Code::InvalidArgument,
            5 => Code::NotFound,
            8 => Code::ResourceExhausted,
            9 => Code::FailedPrecondition,
            12 => Code::Unimplemented,
            13 => Code::Internal,
            14 => Code::Unavailable,
            _ => Code::Unknown,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The peer answered with a non-OK status.
    #[error("{message}")]
    Status { code: Code, message: String },
    #[error("HTTP/2: {0}")]
    H2(#[from] h2::Error),
    #[error("malformed message: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("{0}")]
    Protocol(String),
}

impl Error {
    pub fn status(code: Code, message: impl Into<String>) -> Error {
        Error::Status { code, message: message.into() }
    }

    /// The status to answer with for this error.
    pub fn code(&self) -> Code {
        match self {
            Error::Status { code, .. } => *code,
            Error::H2(_) => Code::Unavailable,
            Error::Decode(_) | Error::Protocol(_) => Code::Internal,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Encodes `m` as one gRPC message frame.
pub fn frame<M: prost::Message>(m: &M) -> Bytes {
    let len = m.encoded_len();
    let mut b = BytesMut::with_capacity(5 + len);
    b.extend_from_slice(&[0]);
    b.extend_from_slice(&(len as u32).to_be_bytes());
    // Writing into a BytesMut grows it as needed: encoding cannot fail.
    let _ = m.encode(&mut b);
    b.freeze()
}

/// `grpc-message` is percent-encoded outside printable ASCII.
fn encode_message(s: &str) -> String {
    berth_api::percent::encode(s, |b| (0x20..0x7f).contains(&b) && b != b'%')
}

fn decode_message(s: &str) -> String {
    berth_api::percent::decode(s)
}

/// The status a response's headers or trailers carry, if any.
fn status_of(h: &HeaderMap) -> Option<Result<()>> {
    let code = h.get("grpc-status")?.to_str().ok()?.trim().parse::<u32>().ok()?;
    if code == 0 {
        return Some(Ok(()));
    }
    let message = h.get("grpc-message").and_then(|v| v.to_str().ok()).map(decode_message).unwrap_or_default();
    Some(Err(Error::Status { code: Code::from_u32(code), message }))
}

fn status_headers(status: &Result<()>) -> HeaderMap {
    let mut h = HeaderMap::new();
    let (code, msg) = match status {
        Ok(()) => (0, String::new()),
        Err(e) => (e.code() as u32, e.to_string()),
    };
    h.insert("grpc-status", HeaderValue::from(code));
    if !msg.is_empty()
        && let Ok(v) = HeaderValue::from_str(&encode_message(&msg))
    {
        h.insert("grpc-message", v);
    }
    h
}

/// Takes the first whole message out of `buf` (bytes received on a stream), leaving the
/// rest; `None` while it is incomplete. A compressed message, or one longer than
/// [`MAX_MESSAGE`], is refused from its five-byte prefix, before any more of it is held.
pub fn take_message(buf: &mut BytesMut) -> Result<Option<Bytes>> {
    if buf.len() < 5 {
        return Ok(None);
    }
    if buf[0] != 0 {
        return Err(Error::Protocol("compressed gRPC messages are not supported".into()));
    }
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    if len > MAX_MESSAGE {
        return Err(Error::status(
            Code::ResourceExhausted,
            format!("a message of {len} bytes is larger than the limit of {MAX_MESSAGE}"),
        ));
    }
    if buf.len() < 5 + len {
        return Ok(None);
    }
    buf.advance(5);
    Ok(Some(buf.split_to(len).freeze()))
}

/// Messages arriving on one stream.
pub struct Incoming {
    response: Option<h2::client::ResponseFuture>,
    body: Option<h2::RecvStream>,
    buf: BytesMut,
    /// The call's status from the response headers (a response without body).
    early: Option<Result<()>>,
    is_client: bool,
    /// The served connection's budget and what this stream holds of it: `buf` and the last
    /// message returned.
    budget: Option<Budget>,
    charged: usize,
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if let Some(b) = &self.budget {
            b.give(self.charged);
        }
    }
}

impl Incoming {
    fn new(response: Option<h2::client::ResponseFuture>, body: Option<h2::RecvStream>, budget: Option<Budget>) -> Self {
        let is_client = response.is_some();
        Incoming { response, body, buf: BytesMut::new(), early: None, is_client, budget, charged: 0 }
    }

    fn server(body: h2::RecvStream, budget: Budget) -> Incoming {
        Incoming::new(None, Some(body), Some(budget))
    }

    fn ended() -> Incoming {
        Incoming::new(None, None, None)
    }

    fn client(response: h2::client::ResponseFuture) -> Incoming {
        Incoming::new(Some(response), None, None)
    }

    /// The next message; `None` at the end of the stream (for a client, after the peer's
    /// status said OK; a failed status is the error).
    pub async fn message<M: prost::Message + Default>(&mut self) -> Result<Option<M>> {
        if let Some(r) = self.response.take() {
            let resp = r.await?;
            if resp.status() != http::StatusCode::OK {
                return Err(Error::Protocol(format!("the peer answered HTTP {}", resp.status())));
            }
            self.early = status_of(resp.headers());
            self.body = Some(resp.into_body());
        }
        // The message returned last is the caller's to drop now: only `buf` stays charged.
        if let Some(b) = &self.budget {
            b.give(self.charged - self.buf.len());
            self.charged = self.buf.len();
        }
        loop {
            if let Some(msg) = take_message(&mut self.buf)? {
                return Ok(Some(M::decode(msg)?));
            }
            let Some(body) = self.body.as_mut() else { return Ok(None) };
            match body.data().await {
                Some(chunk) => {
                    let chunk = chunk?;
                    if let Some(b) = &self.budget {
                        b.take(chunk.len())?;
                        self.charged += chunk.len();
                    }
                    let _ = body.flow_control().release_capacity(chunk.len());
                    self.buf.extend_from_slice(&chunk);
                }
                None => {
                    if !self.buf.is_empty() {
                        return Err(Error::Protocol("the stream ended inside a message".into()));
                    }
                    if self.is_client {
                        let status = match self.early.take() {
                            Some(s) => s,
                            None => match body.trailers().await? {
                                Some(t) => status_of(&t).unwrap_or(Ok(())),
                                None => Err(Error::Protocol("the stream ended without a gRPC status".into())),
                            },
                        };
                        self.body = None;
                        status?;
                    }
                    self.body = None;
                    return Ok(None);
                }
            }
        }
    }
}

/// Sends `data` as the peer's window allows.
async fn send_bytes(send: &mut h2::SendStream<Bytes>, mut data: Bytes) -> Result<()> {
    while !data.is_empty() {
        send.reserve_capacity(data.len());
        let granted = match poll_fn(|cx| send.poll_capacity(cx)).await {
            Some(r) => r?,
            None => return Err(Error::Protocol("the stream was closed by the peer".into())),
        };
        if granted == 0 {
            continue;
        }
        let chunk = data.split_to(granted.min(data.len()));
        send.send_data(chunk, false)?;
    }
    Ok(())
}

/// Messages going out on one stream.
pub struct Outgoing {
    send: h2::SendStream<Bytes>,
}

impl Outgoing {
    pub async fn send<M: prost::Message>(&mut self, m: &M) -> Result<()> {
        send_bytes(&mut self.send, frame(m)).await
    }

    /// Ends this side of a client stream (the peer sees the end of its input).
    pub fn close(mut self) -> Result<()> {
        self.send.send_data(Bytes::new(), true)?;
        Ok(())
    }

    /// Ends a server stream with `status` in the trailers.
    pub fn finish(mut self, status: Result<()>) {
        let _ = self.send.send_trailers(status_headers(&status));
    }
}

/// One call to a service berth serves.
pub struct Call {
    /// `/package.Service/Method`.
    pub path: String,
    pub metadata: HeaderMap,
    pub input: Incoming,
    respond: h2::server::SendResponse<Bytes>,
}

impl Call {
    /// The one request message of a unary or server-streaming call.
    pub async fn request<M: prost::Message + Default>(&mut self) -> Result<M> {
        Ok(self.input.message::<M>().await?.unwrap_or_default())
    }

    /// A metadata value (gRPC metadata are HTTP/2 headers).
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(|v| v.to_str().ok())
    }

    /// Starts the answer; messages follow on the returned stream.
    pub fn stream(mut self) -> Result<Outgoing> {
        let resp = Response::builder()
            .status(200)
            .header("content-type", "application/grpc+proto")
            .body(())
            .map_err(|e| Error::Protocol(e.to_string()))?;
        let send = self.respond.send_response(resp, false)?;
        Ok(Outgoing { send })
    }

    /// Starts the answer and hands over the input, for a bidirectional stream.
    pub fn split(mut self) -> Result<(Outgoing, Incoming)> {
        let input = std::mem::replace(&mut self.input, Incoming::ended());
        Ok((self.stream()?, input))
    }

    /// Answers a unary call with `m`, or its failure.
    pub async fn reply<M: prost::Message>(self, r: Result<M>) {
        match r {
            Ok(m) => {
                if let Ok(mut out) = self.stream() {
                    let sent = out.send(&m).await;
                    out.finish(sent);
                }
            }
            Err(e) => self.fail(e),
        }
    }

    /// Answers with a status alone.
    pub fn fail(mut self, e: Error) {
        let mut resp = Response::builder().status(200).header("content-type", "application/grpc+proto");
        for (k, v) in status_headers(&Err(e)).iter() {
            resp = resp.header(k, v);
        }
        if let Ok(resp) = resp.body(()) {
            let _ = self.respond.send_response(resp, true);
        }
    }
}

/// Serves gRPC calls on `io` until the peer goes away; each call runs in a task of its own.
/// The connection's calls share [`CONNECTION_BUDGET`] for the messages they hold.
pub async fn serve<T, F, Fut>(io: T, handler: F) -> Result<()>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Fn(Call) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut conn = h2::server::Builder::new()
        .max_frame_size(1 << 20)
        .max_concurrent_streams(MAX_STREAMS)
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .handshake::<T, Bytes>(io)
        .await?;
    let budget = Budget::new();
    while let Some(next) = conn.accept().await {
        let (req, respond) = next?;
        let (parts, body) = req.into_parts();
        let call = Call {
            path: parts.uri.path().to_string(),
            metadata: parts.headers,
            input: Incoming::server(body, budget.clone()),
            respond,
        };
        tokio::spawn(handler(call));
    }
    Ok(())
}

/// A gRPC client connection.
#[derive(Clone)]
pub struct Channel {
    send: h2::client::SendRequest<Bytes>,
}

impl Channel {
    /// Starts HTTP/2 as the client on `io`; the connection is driven by a task that ends
    /// when the peer goes away (then [`Channel::closed`] resolves).
    pub async fn connect<T>(io: T) -> Result<(Channel, tokio::sync::watch::Receiver<bool>)>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (send, conn) = h2::client::Builder::new()
            .max_frame_size(1 << 20)
            .data_frame_budget(SMALL_FRAME_BUDGET)
            .handshake::<T, Bytes>(io)
            .await?;
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                eprintln!("berth: BuildKit session connection ended: {e}");
            }
            let _ = tx.send(true);
        });
        Ok((Channel { send }, rx))
    }

    /// Opens a call to `path` (`/package.Service/Method`) with `metadata`; messages go out
    /// on the first half and come back on the second.
    pub async fn call(&self, path: &str, metadata: &[(String, String)]) -> Result<(Outgoing, Incoming)> {
        let mut send = self.send.clone().ready().await?;
        let mut req = Request::builder()
            .method("POST")
            .uri(format!("http://berth{path}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers");
        for (k, v) in metadata {
            req = req.header(k.as_str(), v.as_str());
        }
        let req = req.body(()).map_err(|e| Error::Protocol(e.to_string()))?;
        let (response, stream) = send.send_request(req, false)?;
        Ok((Outgoing { send: stream }, Incoming::client(response)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::BytesMessage;

    #[test]
    fn status_messages_round_trip_through_percent_encoding() {
        let m = "failed: 100% \"ünïcode\"\nnext";
        assert_eq!(decode_message(&encode_message(m)), m);
    }

    /// Issue 15: streams of one connection share one budget, so partial messages on many
    /// streams cannot make the server hold `MAX_STREAMS` × `MAX_MESSAGE`.
    #[tokio::test]
    async fn a_connection_cannot_hold_more_than_its_budget_across_streams() {
        let (a, b) = tokio::io::duplex(1 << 16);
        tokio::spawn(serve(a, |mut call: Call| async move {
            let r = call.request::<BytesMessage>().await;
            call.reply(r).await
        }));
        let (ch, _) = Channel::connect(b).await.unwrap();
        // Each stream sends all but the last byte of a 15 MiB message: four fit in 64 MiB,
        // the fifth does not.
        const LEN: usize = 15 << 20;
        let whole = frame(&BytesMessage { data: vec![0; LEN - 5] });
        assert_eq!(whole.len(), 5 + LEN);
        let (partial, last) = (whole.slice(..5 + LEN - 1), whole.slice(5 + LEN - 1..));
        let mut held = Vec::new();
        for i in 0..5 {
            let (mut tx, mut rx) = ch.call("/t.S/Hold", &[]).await.unwrap();
            // The refused stream is reset as soon as it is answered, which ends the send.
            if send_bytes(&mut tx.send, partial.clone()).await.is_ok() {
                assert!(i < 4, "stream {i} was let hold its partial message");
                held.push((tx, rx));
                continue;
            }
            match rx.message::<BytesMessage>().await {
                Err(Error::Status { code: Code::ResourceExhausted, message }) => {
                    assert_eq!(i, 4, "{message}");
                    assert!(message.contains("limit of 64 MiB"), "{message}");
                }
                other => panic!("stream {i}: {:?}", other.map(|_| ())),
            }
        }
        assert_eq!(held.len(), 4);
        // Control: the held messages complete, and are whole messages of that size.
        for (mut tx, mut rx) in held {
            send_bytes(&mut tx.send, last.clone()).await.unwrap();
            tx.close().unwrap();
            let m = rx.message::<BytesMessage>().await.unwrap().unwrap();
            assert_eq!(m.data.len(), LEN - 5);
        }
    }

    #[tokio::test]
    async fn a_server_stream_and_its_status_reach_the_client() {
        let (a, b) = tokio::io::duplex(1 << 16);
        tokio::spawn(serve(a, |mut call: Call| async move {
            let req: BytesMessage = call.request().await.unwrap();
            if call.path == "/t.S/Fail" {
                return call.fail(Error::status(Code::NotFound, "no such thing: ü"));
            }
            let mut out = call.stream().unwrap();
            for _ in 0..3 {
                out.send(&req).await.unwrap();
            }
            out.finish(Ok(()));
        }));
        let (ch, _) = Channel::connect(b).await.unwrap();
        let big = BytesMessage { data: vec![7; 200_000] };
        let (mut tx, mut rx) = ch.call("/t.S/Echo", &[]).await.unwrap();
        tx.send(&big).await.unwrap();
        tx.close().unwrap();
        let mut n = 0;
        while let Some(m) = rx.message::<BytesMessage>().await.unwrap() {
            assert_eq!(m, big);
            n += 1;
        }
        assert_eq!(n, 3);
        let (mut tx, mut rx) = ch.call("/t.S/Fail", &[]).await.unwrap();
        tx.send(&big).await.unwrap();
        tx.close().unwrap();
        match rx.message::<BytesMessage>().await {
            Err(Error::Status { code: Code::NotFound, message }) => assert_eq!(message, "no such thing: ü"),
            other => panic!("{:?}", other.map(|_| ())),
        }
    }
}
