//! A small blocking Engine API client over a unix socket (or TCP, with TLS if asked):
//! requests, JSON, streams, and hijacked connections. The CLI starts fast because it needs no
//! async runtime.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::tls_conn::TlsConn;

/// A connection: unix, TCP or TLS over TCP.
pub enum Conn {
    Unix(UnixStream),
    Tcp(TcpStream),
    Tls(TlsConn),
}

impl Conn {
    pub fn try_clone(&self) -> io::Result<Conn> {
        Ok(match self {
            Conn::Unix(s) => Conn::Unix(s.try_clone()?),
            Conn::Tcp(s) => Conn::Tcp(s.try_clone()?),
            Conn::Tls(s) => Conn::Tls(s.try_clone()?),
        })
    }

    /// Half-closes the sending side (stdin is done; output keeps coming).
    pub fn shutdown_write(&self) {
        // Fails only if the daemon has gone: the output side then ends too and says so.
        let _ = match self {
            Conn::Unix(s) => s.shutdown(std::net::Shutdown::Write),
            Conn::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
            Conn::Tls(s) => s.shutdown_write(),
        };
    }
}

impl Read for Conn {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Unix(s) => s.read(b),
            Conn::Tcp(s) => s.read(b),
            Conn::Tls(s) => s.read(b),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Unix(s) => s.write(b),
            Conn::Tcp(s) => s.write(b),
            Conn::Tls(s) => s.write(b),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Unix(s) => s.flush(),
            Conn::Tcp(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

#[derive(Debug)]
pub enum ClientError {
    /// The daemon answered with an error status and message.
    Api {
        status: u16,
        message: String,
    },
    /// The daemon could not be reached.
    Connect(String),
    Io(io::Error),
    Protocol(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Api { message, .. } => write!(f, "Error response from daemon: {message}"),
            ClientError::Connect(m) => f.write_str(m),
            ClientError::Io(e) => write!(f, "error during connect: {e}"),
            ClientError::Protocol(m) => write!(f, "unexpected response from daemon: {m}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        ClientError::Io(e)
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// A response whose body is read as it arrives.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    body: Box<dyn Read + Send>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn reader(&mut self) -> &mut (dyn Read + Send) {
        &mut *self.body
    }

    pub fn into_reader(self) -> Box<dyn Read + Send> {
        self.body
    }

    pub fn bytes(mut self) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        self.body.read_to_end(&mut v)?;
        Ok(v)
    }

    pub fn json<T: DeserializeOwned>(self) -> Result<T> {
        let b = self.bytes()?;
        serde_json::from_slice(&b).map_err(|e| ClientError::Protocol(format!("{e}: {}", String::from_utf8_lossy(&b))))
    }

    /// Calls `f` with each newline-delimited JSON message of a progress or event stream.
    pub fn each_line(self, mut f: impl FnMut(&[u8]) -> Result<bool>) -> Result<()> {
        let mut r = BufReader::new(self.body);
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = r.read_until(b'\n', &mut line)?;
            if n == 0 {
                return Ok(());
            }
            let l = trim(&line);
            if l.is_empty() {
                continue;
            }
            if !f(l)? {
                return Ok(());
            }
        }
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let s = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
    let e = b.iter().rposition(|c| !c.is_ascii_whitespace()).map(|i| i + 1).unwrap_or(s);
    &b[s..e.max(s)]
}

/// Reads an HTTP/1.1 chunked body.
struct Chunked<R> {
    inner: BufReader<R>,
    left: usize,
    done: bool,
}

impl<R: Read> Read for Chunked<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        if self.left == 0 {
            let mut line = String::new();
            self.inner.read_line(&mut line)?;
            if line.trim().is_empty() {
                line.clear();
                self.inner.read_line(&mut line)?;
            }
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("bad chunk size {line:?}")))?;
            if size == 0 {
                self.done = true;
                return Ok(0);
            }
            self.left = size;
        }
        let want = out.len().min(self.left);
        let n = self.inner.read(&mut out[..want])?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed inside a chunk"));
        }
        self.left -= n;
        if self.left == 0 {
            let mut crlf = [0u8; 2];
            self.inner.read_exact(&mut crlf)?;
        }
        Ok(n)
    }
}

#[derive(Clone)]
pub struct Client {
    pub host: String,
    pub version: String,
    /// TLS for a `tcp://` host (`--tls`, `--tlsverify`).
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

pub enum Body<'a> {
    None,
    Json(Vec<u8>),
    Stream(&'a mut dyn Read, &'static str),
}

impl Client {
    pub fn new(host: &str) -> Client {
        Client { host: host.to_string(), version: berth_api::API_VERSION.to_string(), tls: None }
    }

    fn connect(&self) -> Result<Conn> {
        let fail = |e: io::Error| {
            ClientError::Connect(format!(
                "Cannot connect to the berth daemon at {}. Is the berth daemon running? ({e})",
                self.host
            ))
        };
        if let Some(p) = self.host.strip_prefix("unix://") {
            return UnixStream::connect(p).map(Conn::Unix).map_err(fail);
        }
        if let Some(a) = self.host.strip_prefix("tcp://") {
            let (host, addr) = tcp_address(a, self.tls.is_some());
            let s = TcpStream::connect(&addr).map_err(fail)?;
            // Only latency depends on it.
            let _ = s.set_nodelay(true);
            let Some(config) = self.tls.clone() else { return Ok(Conn::Tcp(s)) };
            let name = rustls::pki_types::ServerName::try_from(host)
                .map_err(|e| ClientError::Connect(format!("error during connect: {addr}: {e}")))?;
            return TlsConn::connect(config, name, s)
                .map(Conn::Tls)
                .map_err(|e| ClientError::Connect(format!("error during connect: TLS handshake with {addr}: {e}")));
        }
        Err(ClientError::Connect(format!("unsupported host {:?}: use unix:///path or tcp://host:port", self.host)))
    }

    fn write_request(
        &self,
        conn: &mut Conn,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &mut Body<'_>,
    ) -> Result<()> {
        let mut head = format!(
            "{method} /v{}{path} HTTP/1.1\r\nHost: api\r\nUser-Agent: berth-cli/{}\r\n",
            self.version,
            env!("CARGO_PKG_VERSION")
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        match body {
            Body::None => head.push_str("Content-Length: 0\r\n\r\n"),
            Body::Json(b) => {
                head.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n\r\n", b.len()))
            }
            Body::Stream(_, ct) => head.push_str(&format!("Content-Type: {ct}\r\nTransfer-Encoding: chunked\r\n\r\n")),
        }
        conn.write_all(head.as_bytes())?;
        match body {
            Body::None => {}
            Body::Json(b) => conn.write_all(b)?,
            Body::Stream(r, _) => {
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    let n = r.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    conn.write_all(format!("{n:x}\r\n").as_bytes())?;
                    conn.write_all(&buf[..n])?;
                    conn.write_all(b"\r\n")?;
                }
                conn.write_all(b"0\r\n\r\n")?;
            }
        }
        conn.flush()?;
        Ok(())
    }

    fn read_head(reader: &mut BufReader<Conn>) -> Result<(u16, Vec<(String, String)>)> {
        let mut status_line = String::new();
        reader.read_line(&mut status_line)?;
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| ClientError::Protocol(format!("bad status line {status_line:?}")))?;
        let mut headers = Vec::new();
        loop {
            let mut l = String::new();
            reader.read_line(&mut l)?;
            let l = l.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        Ok((status, headers))
    }

    /// Sends a request and returns the response, turning error statuses into errors.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        mut body: Body<'_>,
    ) -> Result<Response> {
        let mut conn = self.connect()?;
        if let Err(e) = self.write_request(&mut conn, method, path, headers, &mut body) {
            // The daemon may answer (an error, say) and close before reading all of a
            // body: its answer is the better message, so read it if there is one.
            let cut = matches!(&e, ClientError::Io(io) if matches!(io.kind(), io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset));
            if !cut {
                return Err(e);
            }
            let mut reader = BufReader::with_capacity(64 * 1024, conn);
            let Ok((status, _)) = Self::read_head(&mut reader) else { return Err(e) };
            let mut rest = Vec::new();
            // What arrived before a read error still makes the message.
            let _ = reader.read_to_end(&mut rest);
            let text = String::from_utf8_lossy(&rest);
            // An error answer (`{"message"}`) or the error line of a progress stream
            // (`{"error"}`, as load and build send once they have begun answering).
            let message = text
                .split("\r\n")
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .find_map(|v| v.get("message").or_else(|| v.get("error")).and_then(|m| m.as_str()).map(String::from))
                .unwrap_or_else(|| {
                    format!("the daemon answered {status} and closed the connection while the request was being sent")
                });
            return Err(ClientError::Api { status, message });
        }
        let mut reader = BufReader::with_capacity(64 * 1024, conn);
        let (status, headers) = Self::read_head(&mut reader)?;
        let get = |k: &str| headers.iter().find(|(h, _)| h.eq_ignore_ascii_case(k)).map(|(_, v)| v.clone());
        let body: Box<dyn Read + Send> = if get("Transfer-Encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            Box::new(Chunked { inner: reader, left: 0, done: false })
        } else if let Some(len) = get("Content-Length").and_then(|v| v.parse::<u64>().ok()) {
            Box::new(reader.take(len))
        } else if status == 204 || status == 304 || method == "HEAD" {
            Box::new(io::empty())
        } else {
            Box::new(reader)
        };
        let resp = Response { status, headers, body };
        if status >= 400 {
            let b = resp.bytes().unwrap_or_default();
            let message = serde_json::from_slice::<berth_api::error::ErrorResponse>(&b)
                .map(|e| e.message)
                .unwrap_or_else(|_| String::from_utf8_lossy(&b).trim().to_string());
            return Err(ClientError::Api { status, message });
        }
        Ok(resp)
    }

    pub fn get(&self, path: &str) -> Result<Response> {
        self.request("GET", path, &[], Body::None)
    }

    pub fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.get(path)?.json()
    }

    pub fn post(&self, path: &str) -> Result<Response> {
        self.request("POST", path, &[], Body::None)
    }

    pub fn post_json<B: Serialize>(&self, path: &str, body: &B) -> Result<Response> {
        self.request("POST", path, &[], Body::Json(serde_json::to_vec(body).unwrap_or_default()))
    }

    pub fn delete(&self, path: &str) -> Result<Response> {
        self.request("DELETE", path, &[], Body::None)
    }

    /// Sends a request asking to take over the connection (attach, exec start). Returns the
    /// raw connection once the daemon has answered `101`.
    pub fn hijack(&self, path: &str, body: Option<Vec<u8>>) -> Result<(Conn, Vec<u8>)> {
        let mut conn = self.connect()?;
        let headers = [("Connection", "Upgrade".to_string()), ("Upgrade", "tcp".to_string())];
        let mut b = match body {
            Some(v) => Body::Json(v),
            None => Body::None,
        };
        self.write_request(&mut conn, "POST", path, &headers, &mut b)?;
        let mut reader = BufReader::new(conn);
        let (status, headers) = Self::read_head(&mut reader)?;
        if status != 101 && status != 200 {
            // What arrived before a read error still makes the message (the status is known).
            let mut rest = Vec::new();
            let len = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("Content-Length"))
                .and_then(|(_, v)| v.parse::<u64>().ok());
            match len {
                Some(l) => {
                    let _ = (&mut reader).take(l).read_to_end(&mut rest);
                }
                None => {
                    let _ = reader.read_to_end(&mut rest);
                }
            }
            let message = serde_json::from_slice::<berth_api::error::ErrorResponse>(&rest)
                .map(|e| e.message)
                .unwrap_or_else(|_| String::from_utf8_lossy(&rest).trim().to_string());
            return Err(ClientError::Api { status, message });
        }
        // Bytes already buffered belong to the stream.
        let buffered = reader.buffer().to_vec();
        Ok((reader.into_inner(), buffered))
    }
}

/// The host name (for TLS) and the address to dial of `host[:port]`; the port is the
/// docker CLI's default when missing (2376 with TLS, 2375 without).
fn tcp_address(a: &str, tls: bool) -> (String, String) {
    let a = a.trim_end_matches('/');
    let (host, port) = match a.rfind(']') {
        Some(i) => (&a[..=i], a[i + 1..].strip_prefix(':')),
        None => match a.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (a, None),
        },
    };
    let port = port.map(str::to_string).unwrap_or_else(|| if tls { "2376" } else { "2375" }.to_string());
    (host.trim_start_matches('[').trim_end_matches(']').to_string(), format!("{host}:{port}"))
}

/// Percent-encodes a query component.
pub fn enc(s: &str) -> String {
    berth_api::percent::encode_query(s)
}

/// Builds `?k=v&…` from pairs, skipping empty values.
pub fn query(pairs: &[(&str, String)]) -> String {
    let parts: Vec<String> =
        pairs.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("{k}={}", enc(v))).collect();
    if parts.is_empty() { String::new() } else { format!("?{}", parts.join("&")) }
}
