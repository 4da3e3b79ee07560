//! Clients of the CRI's streaming server as kubelet's and kubectl's speak to it: the HTTP
//! upgrade, then SPDY/3.1 streams (berth-cri's frame codec, its header compression checked
//! against C zlib in its unit tests) or WebSocket messages (framed here).

use std::collections::{HashMap, HashSet};

use base64::Engine as _;
use berth_cri::stream::spdy::{Decoder, Encoder, FLAG_FIN, Frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

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

/// A SPDY client connection. It reads only when asked to ([`Spdy::step`]), so a test can
/// stop reading; like spdystream (kubectl's) it grants no window unless told to.
pub struct Spdy {
    rd: OwnedReadHalf,
    dec: Decoder,
    wr: OwnedWriteHalf,
    enc: Encoder,
    next_id: u32,
    next_ping: u32,
    /// What arrived so far, by stream, and which streams the server finished.
    pub data: HashMap<u32, Vec<u8>>,
    /// Streams whose data is counted in `counted` (and checked to be zeros) but not kept.
    pub discard: HashSet<u32>,
    pub counted: HashMap<u32, u64>,
    pub nonzero: bool,
    pub finished: Vec<u32>,
    pub replied: Vec<u32>,
    /// Streams the server reset, with the status.
    pub resets: Vec<(u32, u32)>,
    /// The server's SETTINGS entries: (flags, ID, value).
    pub settings: Vec<(u8, u32, u32)>,
    /// Answers to this client's PINGs.
    pub pongs: Vec<u32>,
    /// Grant each stream (and the session) the window its data took, as it is read.
    pub grant: bool,
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
        let (rd, wr) = s.into_split();
        let c = Spdy {
            rd,
            dec: Decoder::default(),
            wr,
            enc: Encoder::default(),
            next_id: 1,
            next_ping: 1,
            data: HashMap::new(),
            discard: HashSet::new(),
            counted: HashMap::new(),
            nonzero: false,
            finished: Vec::new(),
            replied: Vec::new(),
            resets: Vec::new(),
            settings: Vec::new(),
            pongs: Vec::new(),
            grant: false,
        };
        Ok((c, a))
    }

    /// `f` as it goes on the wire (after what was encoded before it).
    pub fn encode(&mut self, f: &Frame) -> Vec<u8> {
        self.enc.encode(f).unwrap()
    }

    /// Writes raw bytes on the connection.
    pub async fn write_raw(&mut self, bytes: &[u8]) {
        self.wr.write_all(bytes).await.unwrap();
    }

    pub async fn send(&mut self, f: Frame) {
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

    /// Opens one port-forward connection to `port`, as kubectl does: its error stream, then
    /// its data stream, both under `requestid`; their IDs.
    pub async fn forward(&mut self, port: &str, requestid: &str) -> (u32, u32) {
        let err = self.open(&[("streamtype", "error"), ("port", port), ("requestid", requestid)]).await;
        let data = self.open(&[("streamtype", "data"), ("port", port), ("requestid", requestid)]).await;
        (err, data)
    }

    pub async fn write(&mut self, id: u32, data: &[u8]) {
        self.send(Frame::Data { id, flags: 0, data: data.to_vec().into() }).await;
    }

    pub async fn fin(&mut self, id: u32) {
        self.send(Frame::Data { id, flags: FLAG_FIN, data: Default::default() }).await;
    }

    /// Sends a PING; its ID.
    pub async fn ping(&mut self) -> u32 {
        let id = self.next_ping;
        self.next_ping += 2;
        self.send(Frame::Ping(id)).await;
        id
    }

    /// Takes in one frame; `false` once the connection ended.
    pub async fn step(&mut self) -> bool {
        let Ok(frame) = self.dec.read(&mut self.rd).await else { return false };
        match frame {
            Some(Frame::Data { id, flags, data }) => {
                if self.discard.contains(&id) {
                    *self.counted.entry(id).or_default() += data.len() as u64;
                    self.nonzero |= data.iter().any(|b| *b != 0);
                } else {
                    self.data.entry(id).or_default().extend_from_slice(&data);
                }
                if flags & FLAG_FIN != 0 {
                    self.finished.push(id);
                }
                if self.grant && !data.is_empty() {
                    let delta = data.len() as u32;
                    self.send(Frame::WindowUpdate { id, delta }).await;
                    self.send(Frame::WindowUpdate { id: 0, delta }).await;
                }
                true
            }
            Some(Frame::SynReply { id, .. }) => {
                self.replied.push(id);
                true
            }
            Some(Frame::RstStream { id, status }) => {
                self.resets.push((id, status));
                true
            }
            Some(Frame::Settings { entries, .. }) => {
                self.settings.extend(entries);
                true
            }
            // Odd IDs are this client's: the server's answers. Even ones are the server's.
            Some(Frame::Ping(id)) if id % 2 == 1 => {
                self.pongs.push(id);
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

    /// Reads until the answer to PING `id`: whatever the server wrote before it is read.
    pub async fn until_pong(&mut self, id: u32) {
        while !self.pongs.contains(&id) {
            assert!(self.step().await, "the connection ended before the answer to PING {id}");
        }
    }

    /// Reads until the server answered stream `id` (SYN_REPLY or RST_STREAM).
    pub async fn until_answered(&mut self, id: u32) {
        while !self.replied.contains(&id) && !self.resets.iter().any(|(r, _)| *r == id) {
            assert!(self.step().await, "the connection ended before stream {id} was answered");
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
    /// Channels whose data is counted in `counted` (and checked to be zeros) but not kept.
    pub discard: HashSet<u8>,
    pub counted: HashMap<u8, u64>,
    pub nonzero: bool,
    /// Payloads of the pongs that arrived.
    pub pongs: Vec<Vec<u8>>,
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
        let w = Ws {
            s,
            base64: protocol.contains("base64"),
            messages: Vec::new(),
            discard: HashSet::new(),
            counted: HashMap::new(),
            nonzero: false,
            pongs: Vec::new(),
            closed: false,
        };
        Ok((w, a))
    }

    /// A masked client frame.
    pub fn frame(op: u8, payload: &[u8]) -> Vec<u8> {
        berth_cri::stream::ws::encode(op, payload, Some([0x37, 0xfa, 0x21, 0x3d]))
    }

    /// Writes raw bytes on the connection.
    pub async fn write_raw(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).await.unwrap();
    }

    /// Reads until a pong with `payload` arrives.
    pub async fn until_pong(&mut self, payload: &[u8]) {
        while !self.pongs.iter().any(|p| p == payload) {
            assert!(self.step().await, "the connection ended before the pong {payload:?}");
        }
    }

    /// Sends `data` on channel `chan` in a masked frame.
    pub async fn send(&mut self, chan: u8, data: &[u8]) {
        let (op, payload) = if self.base64 {
            let text = base64::engine::general_purpose::STANDARD.encode(data);
            (1u8, [&[b'0' + chan][..], text.as_bytes()].concat())
        } else {
            (2u8, [&[chan][..], data].concat())
        };
        self.s.write_all(&Ws::frame(op, &payload)).await.unwrap();
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
                if self.discard.contains(&chan) {
                    *self.counted.entry(chan).or_default() += data.len() as u64;
                    self.nonzero |= data.iter().any(|b| *b != 0);
                } else {
                    self.messages.push((chan, data));
                }
                true
            }
            0xa => {
                self.pongs.push(p);
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
