//! Clients of the CRI's streaming server as kubelet's and kubectl's speak to it: the HTTP
//! upgrade, then SPDY/3.1 streams (berth-cri's frame codec, its header compression checked
//! against C zlib in its unit tests) or WebSocket messages (framed here).

use std::collections::HashMap;

use base64::Engine as _;
use berth_cri::stream::spdy::{Decoder, Encoder, FLAG_FIN, Frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;

/// An HTTP response's status and headers (names in lower case).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Sends a request for `url` with `headers`, and reads the answer's head (and, if it is not
/// an upgrade, its body up to the end of the connection).
async fn request(url: &str, headers: &[(&str, &str)]) -> (TcpStream, Answer) {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut s = TcpStream::connect(host).await.expect("connecting to the streaming server");
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    while !raw.ends_with(b"\r\n\r\n") {
        raw.push(s.read_u8().await.expect("reading the answer"));
    }
    let text = String::from_utf8(raw).unwrap();
    let mut lines = text.trim_end().split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers =
        lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_lowercase(), v.trim().to_string())).collect();
    let mut a = Answer { status, headers, body: String::new() };
    if status != 101 {
        let mut body = Vec::new();
        let _ = s.read_to_end(&mut body).await;
        a.body = String::from_utf8_lossy(&body).into_owned();
    }
    (s, a)
}

/// A SPDY client connection.
pub struct Spdy {
    wr: OwnedWriteHalf,
    enc: Encoder,
    next_id: u32,
    frames: mpsc::UnboundedReceiver<Frame>,
    /// What arrived so far, by stream, and which streams the server finished.
    pub data: HashMap<u32, Vec<u8>>,
    pub finished: Vec<u32>,
    pub replied: Vec<u32>,
}

impl Spdy {
    /// Upgrades `url` offering `protocols`; the refusal's answer when it is not upgraded.
    pub async fn connect(url: &str, protocols: &[&str]) -> Result<(Spdy, Answer), Answer> {
        let mut h = vec![("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1")];
        h.extend(protocols.iter().map(|p| ("X-Stream-Protocol-Version", *p)));
        let (s, a) = request(url, &h).await;
        if a.status != 101 {
            return Err(a);
        }
        let (mut rd, wr) = s.into_split();
        let (tx, frames) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut dec = Decoder::default();
            while let Ok(Some(f)) = dec.read(&mut rd).await {
                if tx.send(f).is_err() {
                    return;
                }
            }
        });
        let c = Spdy {
            wr,
            enc: Encoder::default(),
            next_id: 1,
            frames,
            data: HashMap::new(),
            finished: Vec::new(),
            replied: Vec::new(),
        };
        Ok((c, a))
    }

    async fn send(&mut self, f: Frame) {
        let bytes = self.enc.encode(&f).unwrap();
        self.wr.write_all(&bytes).await.unwrap();
    }

    /// Opens a stream with `headers`; its ID.
    pub async fn open(&mut self, headers: &[(&str, &str)]) -> u32 {
        let id = self.next_id;
        self.next_id += 2;
        let headers = headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        self.send(Frame::SynStream { id, associated: 0, priority: 0, flags: 0, headers }).await;
        id
    }

    pub async fn write(&mut self, id: u32, data: &[u8]) {
        self.send(Frame::Data { id, flags: 0, data: data.to_vec().into() }).await;
    }

    pub async fn fin(&mut self, id: u32) {
        self.send(Frame::Data { id, flags: FLAG_FIN, data: Default::default() }).await;
    }

    /// Takes in one frame; `false` once the connection ended.
    pub async fn step(&mut self) -> bool {
        match self.frames.recv().await {
            Some(Frame::Data { id, flags, data }) => {
                self.data.entry(id).or_default().extend_from_slice(&data);
                if flags & FLAG_FIN != 0 {
                    self.finished.push(id);
                }
                true
            }
            Some(Frame::SynReply { id, .. }) => {
                self.replied.push(id);
                true
            }
            Some(Frame::Ping(id)) => {
                self.send(Frame::Ping(id)).await;
                true
            }
            Some(_) => true,
            None => false,
        }
    }

    /// Reads until the server ends the connection.
    pub async fn read_to_end(&mut self) {
        while self.step().await {}
    }

    /// Reads until stream `id` holds `want`.
    pub async fn until_contains(&mut self, id: u32, want: &str) {
        while !String::from_utf8_lossy(self.data.get(&id).map(Vec::as_slice).unwrap_or_default()).contains(want) {
            assert!(self.step().await, "the connection ended before stream {id} said {want:?}: {:?}", self.text(id));
        }
    }

    /// Reads until the server finished stream `id`.
    pub async fn until_finished(&mut self, id: u32) {
        while !self.finished.contains(&id) {
            assert!(self.step().await, "the connection ended before stream {id} did");
        }
    }

    pub fn text(&self, id: u32) -> String {
        String::from_utf8_lossy(self.data.get(&id).map(Vec::as_slice).unwrap_or_default()).into_owned()
    }
}

/// A WebSocket client connection speaking a channel protocol.
pub struct Ws {
    s: TcpStream,
    base64: bool,
    /// What arrived, by channel, in order of arrival.
    pub messages: Vec<(u8, Vec<u8>)>,
    pub closed: bool,
}

impl Ws {
    pub async fn connect(url: &str, protocol: &str) -> Result<(Ws, Answer), Answer> {
        let key = base64::engine::general_purpose::STANDARD.encode(berth_integration::unique("k").as_bytes());
        let h = [
            ("Connection", "Upgrade"),
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", key.as_str()),
            ("Sec-WebSocket-Protocol", protocol),
        ];
        let (s, a) = request(url, &h).await;
        if a.status != 101 {
            return Err(a);
        }
        assert_eq!(a.header("sec-websocket-accept"), Some(berth_cri::stream::ws::accept_key(&key).as_str()));
        Ok((Ws { s, base64: protocol.contains("base64"), messages: Vec::new(), closed: false }, a))
    }

    /// Sends `data` on channel `chan` in a masked frame.
    pub async fn send(&mut self, chan: u8, data: &[u8]) {
        let (op, payload) = if self.base64 {
            let text = base64::engine::general_purpose::STANDARD.encode(data);
            (1u8, [&[b'0' + chan][..], text.as_bytes()].concat())
        } else {
            (2u8, [&[chan][..], data].concat())
        };
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut f = vec![0x80 | op];
        match payload.len() {
            n if n < 126 => f.push(0x80 | n as u8),
            n => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
        }
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.s.write_all(&f).await.unwrap();
    }

    /// Takes in one message; `false` once the server closed.
    pub async fn step(&mut self) -> bool {
        let mut h = [0u8; 2];
        if self.s.read_exact(&mut h).await.is_err() {
            self.closed = true;
            return false;
        }
        assert_eq!(h[1] & 0x80, 0, "a server's frames are not masked");
        let len = match h[1] & 0x7f {
            126 => u64::from(self.s.read_u16().await.unwrap()),
            127 => self.s.read_u64().await.unwrap(),
            n => u64::from(n),
        };
        let mut p = vec![0u8; len as usize];
        self.s.read_exact(&mut p).await.unwrap();
        assert_ne!(h[0] & 0x80, 0, "whole messages only");
        match h[0] & 0x0f {
            8 => {
                self.closed = true;
                false
            }
            1 | 2 if !p.is_empty() => {
                let (chan, data) = if self.base64 {
                    (p[0] - b'0', base64::engine::general_purpose::STANDARD.decode(&p[1..]).unwrap())
                } else {
                    (p[0], p[1..].to_vec())
                };
                self.messages.push((chan, data));
                true
            }
            _ => true,
        }
    }

    pub async fn read_to_end(&mut self) {
        while self.step().await {}
    }

    /// Everything channel `chan` carried, joined.
    pub fn channel(&self, chan: u8) -> Vec<u8> {
        self.messages.iter().filter(|(c, _)| *c == chan).flat_map(|(_, d)| d.clone()).collect()
    }
}

/// The parsed `metav1.Status` of an error stream.
pub fn status(raw: &[u8]) -> serde_json::Value {
    serde_json::from_slice(raw).unwrap_or_else(|e| panic!("a JSON status ({e}): {:?}", String::from_utf8_lossy(raw)))
}
