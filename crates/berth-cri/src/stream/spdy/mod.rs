//! SPDY/3.1 as Kubernetes' streaming clients speak it (kubectl, the API server's proxy, client-go's
//! SPDY executor, all on moby/spdystream): the frames, the zlib-compressed header blocks and a
//! server-side connection that hands out the streams its peer opens.
//!
//! Header blocks share one zlib stream per direction for the whole connection, primed with the
//! protocol's dictionary; each block ends with a sync flush. The connection, with its flow
//! control and bounds, is in [`conn`].

mod conn;

use std::io;
use std::sync::OnceLock;

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncReadExt};

pub use conn::{Conn, Incoming, MAX_STREAMS, Out, Stream, WINDOW};

const VERSION: u16 = 3;
pub const FLAG_FIN: u8 = 0x01;
/// The largest header block accepted, compressed or not: header blocks here are a few names.
const MAX_HEADER_BLOCK: usize = 256 << 10;
/// The largest data frame written; the wire allows 16 MiB.
pub const MAX_DATA: usize = 32 << 10;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

/// RST_STREAM status: the stream was refused (or is unknown).
pub const REFUSED_STREAM: u32 = 3;
/// RST_STREAM status: the stream is no longer wanted.
pub const CANCEL: u32 = 5;

/// SETTINGS IDs: how many streams the sender takes at once, and each stream's initial
/// window (the bytes the other side may send on it before a WINDOW_UPDATE).
pub const SETTINGS_MAX_CONCURRENT_STREAMS: u32 = 4;
pub const SETTINGS_INITIAL_WINDOW_SIZE: u32 = 7;
/// The window every stream and the session start with (SPDY/3.1).
pub const DEFAULT_WINDOW: u32 = 64 << 10;

/// Header names (lower case, as SPDY requires) and values, in order.
pub type Headers = Vec<(String, String)>;

/// The value of header `name` (lower case).
pub fn header<'a>(h: &'a Headers, name: &str) -> Option<&'a str> {
    h.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// One frame, unpacked.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    SynStream {
        id: u32,
        associated: u32,
        priority: u8,
        flags: u8,
        headers: Headers,
    },
    SynReply {
        id: u32,
        flags: u8,
        headers: Headers,
    },
    RstStream {
        id: u32,
        status: u32,
    },
    /// `(flags, id, value)` entries; read and otherwise ignored.
    Settings {
        flags: u8,
        entries: Vec<(u8, u32, u32)>,
    },
    Ping(u32),
    GoAway {
        last_good: u32,
        status: u32,
    },
    Headers {
        id: u32,
        flags: u8,
        headers: Headers,
    },
    WindowUpdate {
        id: u32,
        delta: u32,
    },
    Data {
        id: u32,
        flags: u8,
        data: Bytes,
    },
    /// A control frame of a type SPDY/3.1 does not define (to be ignored, as the spec says).
    Unknown(u16),
}

/// The header-compression dictionary of SPDY/3 (section 2.6.10.1): these names, each after
/// its length as 32 bits, then the common values as one run of text.
pub fn dictionary() -> &'static [u8] {
    static DICT: OnceLock<Vec<u8>> = OnceLock::new();
    DICT.get_or_init(|| {
        const NAMES: &[&str] = &[
            "options",
            "head",
            "post",
            "put",
            "delete",
            "trace",
            "accept",
            "accept-charset",
            "accept-encoding",
            "accept-language",
            "accept-ranges",
            "age",
            "allow",
            "authorization",
            "cache-control",
            "connection",
            "content-base",
            "content-encoding",
            "content-language",
            "content-length",
            "content-location",
            "content-md5",
            "content-range",
            "content-type",
            "date",
            "etag",
            "expect",
            "expires",
            "from",
            "host",
            "if-match",
            "if-modified-since",
            "if-none-match",
            "if-range",
            "if-unmodified-since",
            "last-modified",
            "location",
            "max-forwards",
            "pragma",
            "proxy-authenticate",
            "proxy-authorization",
            "range",
            "referer",
            "retry-after",
            "server",
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
            "user-agent",
            "vary",
            "via",
            "warning",
            "www-authenticate",
            "method",
            "get",
            "status",
            "200 OK",
            "version",
            "HTTP/1.1",
            "url",
            "public",
            "set-cookie",
            "keep-alive",
            "origin",
        ];
        const VALUES: &[&str] = &[
            "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505",
            "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized",
            "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable",
            "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT",
            "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,",
            "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
        ];
        let mut d = Vec::new();
        for n in NAMES {
            d.extend_from_slice(&(n.len() as u32).to_be_bytes());
            d.extend_from_slice(n.as_bytes());
        }
        d.extend(VALUES.iter().flat_map(|v| v.bytes()));
        d
    })
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// The sending half: frames to bytes, header blocks through the connection's deflate stream.
pub struct Encoder {
    deflate: Compress,
    primed: bool,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder { deflate: Compress::new(Compression::best(), true), primed: false }
    }
}

impl Encoder {
    fn header_block(&mut self, h: &Headers) -> io::Result<Vec<u8>> {
        let mut raw = Vec::new();
        raw.extend_from_slice(&(h.len() as u32).to_be_bytes());
        for (n, v) in h {
            for s in [n.as_bytes(), v.as_bytes()] {
                raw.extend_from_slice(&(s.len() as u32).to_be_bytes());
                raw.extend_from_slice(s);
            }
        }
        if !self.primed {
            self.deflate.set_dictionary(dictionary()).map_err(|e| invalid(e.to_string()))?;
            self.primed = true;
        }
        let mut out = Vec::with_capacity(raw.len() + 64);
        let mut pos = 0;
        loop {
            if out.len() == out.capacity() {
                out.reserve(256);
            }
            let before = self.deflate.total_in();
            self.deflate
                .compress_vec(&raw[pos..], &mut out, FlushCompress::Sync)
                .map_err(|e| invalid(e.to_string()))?;
            pos += (self.deflate.total_in() - before) as usize;
            // Done once every byte went in and the flush left room to spare.
            if pos == raw.len() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }

    /// `frame` as it goes on the wire.
    pub fn encode(&mut self, frame: &Frame) -> io::Result<Vec<u8>> {
        let control = |kind: u16, flags: u8, payload: Vec<u8>| {
            let mut f = Vec::with_capacity(8 + payload.len());
            f.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
            f.extend_from_slice(&kind.to_be_bytes());
            f.push(flags);
            f.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
            f.extend_from_slice(&payload);
            f
        };
        let words = |ws: &[u32]| ws.iter().flat_map(|w| w.to_be_bytes()).collect::<Vec<u8>>();
        Ok(match frame {
            Frame::SynStream { id, associated, priority, flags, headers } => {
                let mut p = words(&[id & 0x7fff_ffff, associated & 0x7fff_ffff]);
                p.extend_from_slice(&[(priority & 7) << 5, 0]);
                p.extend(self.header_block(headers)?);
                control(SYN_STREAM, *flags, p)
            }
            Frame::SynReply { id, flags, headers } => {
                let mut p = words(&[id & 0x7fff_ffff]);
                p.extend(self.header_block(headers)?);
                control(SYN_REPLY, *flags, p)
            }
            Frame::Headers { id, flags, headers } => {
                let mut p = words(&[id & 0x7fff_ffff]);
                p.extend(self.header_block(headers)?);
                control(HEADERS, *flags, p)
            }
            Frame::RstStream { id, status } => control(RST_STREAM, 0, words(&[id & 0x7fff_ffff, *status])),
            Frame::Settings { flags, entries } => {
                let mut p = words(&[entries.len() as u32]);
                for (f, id, v) in entries {
                    p.extend(words(&[(u32::from(*f) << 24) | (id & 0xff_ffff), *v]));
                }
                control(SETTINGS, *flags, p)
            }
            Frame::Ping(id) => control(PING, 0, words(&[*id])),
            Frame::GoAway { last_good, status } => control(GOAWAY, 0, words(&[last_good & 0x7fff_ffff, *status])),
            Frame::WindowUpdate { id, delta } => {
                control(WINDOW_UPDATE, 0, words(&[id & 0x7fff_ffff, delta & 0x7fff_ffff]))
            }
            Frame::Data { id, flags, data } => {
                if data.len() >= 1 << 24 {
                    return Err(invalid("a data frame holds less than 16 MiB"));
                }
                let mut f = words(&[id & 0x7fff_ffff]);
                f.push(*flags);
                f.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
                f.extend_from_slice(data);
                f
            }
            Frame::Unknown(kind) => control(*kind, 0, Vec::new()),
        })
    }
}

/// The receiving half: bytes to frames, header blocks through the connection's inflate stream.
/// A data frame comes back in pieces of at most [`MAX_DATA`] bytes (only the last carries its
/// FIN), so what one read holds does not depend on what the peer puts in a frame (up to 16 MiB).
pub struct Decoder {
    inflate: Decompress,
    /// What is left to read of a data frame: its stream, flags and length.
    data_left: Option<(u32, u8, usize)>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder { inflate: Decompress::new(true), data_left: None }
    }
}

fn word(b: &[u8], at: usize) -> io::Result<u32> {
    b.get(at..at + 4)
        .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
        .ok_or_else(|| invalid("control frame too short"))
}

impl Decoder {
    fn inflate(&mut self, input: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(input.len() * 4 + 64);
        let mut pos = 0;
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity());
            }
            if out.len() > MAX_HEADER_BLOCK {
                return Err(invalid("header block too large"));
            }
            let before = self.inflate.total_in();
            let r = self.inflate.decompress_vec(&input[pos..], &mut out, FlushDecompress::Sync);
            pos += (self.inflate.total_in() - before) as usize;
            match r {
                Ok(Status::StreamEnd) => return Err(invalid("the header stream ended")),
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.inflate.set_dictionary(dictionary()).map_err(|e| invalid(e.to_string()))?;
                }
                Err(e) => return Err(invalid(format!("header block: {e}"))),
            }
            if pos == input.len() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }

    /// The next piece of a data frame with `left` still to read.
    async fn data_piece<R: AsyncRead + Unpin>(&mut self, r: &mut R, left: (u32, u8, usize)) -> io::Result<Frame> {
        let (id, flags, left) = left;
        let mut data = vec![0u8; left.min(MAX_DATA)];
        r.read_exact(&mut data).await?;
        let rest = left - data.len();
        let flags = if rest > 0 {
            self.data_left = Some((id, flags, rest));
            flags & !FLAG_FIN
        } else {
            flags
        };
        Ok(Frame::Data { id, flags, data: data.into() })
    }

    fn headers(&mut self, block: &[u8]) -> io::Result<Headers> {
        let raw = self.inflate(block)?;
        let count = word(&raw, 0)? as usize;
        let mut at = 4;
        let mut h = Vec::with_capacity(count.min(64));
        let field = |at: &mut usize| -> io::Result<String> {
            let n = word(&raw, *at)? as usize;
            let s = raw.get(*at + 4..*at + 4 + n).ok_or_else(|| invalid("header block truncated"))?;
            *at += 4 + n;
            String::from_utf8(s.to_vec()).map_err(|_| invalid("header not UTF-8"))
        };
        for _ in 0..count {
            let name = field(&mut at)?;
            let value = field(&mut at)?;
            h.push((name.to_ascii_lowercase(), value));
        }
        Ok(h)
    }

    /// The next frame, `None` at a clean end of input. Not cancel safe: a read dropped
    /// half-way leaves the input between frames.
    pub async fn read<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> io::Result<Option<Frame>> {
        if let Some(left) = self.data_left.take() {
            return self.data_piece(r, left).await.map(Some);
        }
        let mut head = [0u8; 8];
        match r.read_exact(&mut head).await {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let flags = head[4];
        let len = u32::from_be_bytes([0, head[5], head[6], head[7]]) as usize;
        if head[0] & 0x80 == 0 {
            let id = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
            if len == 0 {
                return Ok(Some(Frame::Data { id, flags, data: Bytes::new() }));
            }
            return self.data_piece(r, (id, flags, len)).await.map(Some);
        }
        if len > MAX_HEADER_BLOCK {
            return Err(invalid("control frame too large"));
        }
        let version = u16::from_be_bytes([head[0] & 0x7f, head[1]]);
        let kind = u16::from_be_bytes([head[2], head[3]]);
        let mut p = vec![0u8; len];
        r.read_exact(&mut p).await?;
        if version != VERSION {
            return Err(invalid(format!("SPDY version {version} (only 3 is spoken)")));
        }
        let id = |at| word(&p, at).map(|w| w & 0x7fff_ffff);
        Ok(Some(match kind {
            SYN_STREAM => {
                let priority = p.get(8).ok_or_else(|| invalid("SYN_STREAM too short"))? >> 5;
                Frame::SynStream {
                    id: id(0)?,
                    associated: id(4)?,
                    priority,
                    flags,
                    headers: self.headers(p.get(10..).unwrap_or_default())?,
                }
            }
            SYN_REPLY => Frame::SynReply { id: id(0)?, flags, headers: self.headers(&p[4.min(p.len())..])? },
            HEADERS => Frame::Headers { id: id(0)?, flags, headers: self.headers(&p[4.min(p.len())..])? },
            RST_STREAM => Frame::RstStream { id: id(0)?, status: word(&p, 4)? },
            SETTINGS => {
                let n = word(&p, 0)? as usize;
                let mut entries = Vec::with_capacity(n.min(16));
                for i in 0..n {
                    let w = word(&p, 4 + 8 * i)?;
                    entries.push(((w >> 24) as u8, w & 0xff_ffff, word(&p, 8 + 8 * i)?));
                }
                Frame::Settings { flags, entries }
            }
            PING => Frame::Ping(word(&p, 0)?),
            GOAWAY => Frame::GoAway { last_good: id(0)?, status: word(&p, 4)? },
            WINDOW_UPDATE => Frame::WindowUpdate { id: id(0)?, delta: id(4)? },
            other => Frame::Unknown(other),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdrs(pairs: &[(&str, &str)]) -> Headers {
        pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_dictionary_is_spdy3s() {
        // Its length and its Adler-32, which a zlib header names as the dictionary's ID.
        let d = dictionary();
        assert_eq!(d.len(), 1423);
        let (mut a, mut b) = (1u32, 0u32);
        for &x in d {
            a = (a + u32::from(x)) % 65521;
            b = (b + a) % 65521;
        }
        assert_eq!((b << 16) | a, 0xe3c6_a7c2);
    }

    #[tokio::test]
    async fn header_blocks_from_c_zlib_decode_in_sequence() {
        // Two blocks compressed by C zlib (Python's zlib, level 9, the dictionary), one
        // stream: the second only decodes with the state the first left.
        let first = hex::decode("78f9e3c6a7c202a62346703a2b294a4dcc851625aca9a08006000000ffff").unwrap();
        let second = hex::decode("c22a054ccc29f9a52500000000ffff").unwrap();
        let mut dec = Decoder::default();
        assert_eq!(dec.headers(&first).unwrap(), hdrs(&[("streamtype", "error")]));
        assert_eq!(dec.headers(&second).unwrap(), hdrs(&[("streamtype", "stdout")]));
    }

    #[tokio::test]
    async fn frames_round_trip_through_one_compression_context() {
        let frames = vec![
            Frame::SynStream {
                id: 1,
                associated: 0,
                priority: 3,
                flags: 0,
                headers: hdrs(&[("streamtype", "error"), ("requestid", "0")]),
            },
            Frame::SynStream { id: 3, associated: 0, priority: 0, flags: FLAG_FIN, headers: hdrs(&[("port", "80")]) },
            Frame::SynReply { id: 1, flags: 0, headers: Vec::new() },
            Frame::Headers { id: 3, flags: 0, headers: hdrs(&[("x", "a\0b")]) },
            Frame::Data { id: 1, flags: FLAG_FIN, data: Bytes::from_static(b"hi\n") },
            Frame::RstStream { id: 5, status: REFUSED_STREAM },
            Frame::Settings { flags: 1, entries: vec![(0, 7, 65536), (1, 4, 100)] },
            Frame::Ping(7),
            Frame::GoAway { last_good: 3, status: 0 },
            Frame::WindowUpdate { id: 1, delta: 4096 },
        ];
        let mut enc = Encoder::default();
        let mut wire = Vec::new();
        for f in &frames {
            wire.extend(enc.encode(f).unwrap());
        }
        let mut dec = Decoder::default();
        let mut r = wire.as_slice();
        let mut back = Vec::new();
        while let Some(f) = dec.read(&mut r).await.unwrap() {
            back.push(f);
        }
        assert_eq!(back, frames);
    }

    #[tokio::test]
    async fn the_layout_is_the_specs() {
        let mut enc = Encoder::default();
        assert_eq!(enc.encode(&Frame::Ping(9)).unwrap(), [0x80, 3, 0, 6, 0, 0, 0, 4, 0, 0, 0, 9]);
        assert_eq!(
            enc.encode(&Frame::Data { id: 5, flags: FLAG_FIN, data: Bytes::from_static(b"ab") }).unwrap(),
            [0, 0, 0, 5, 1, 0, 0, 2, b'a', b'b']
        );
        assert_eq!(
            enc.encode(&Frame::RstStream { id: 1, status: 3 }).unwrap(),
            [0x80, 3, 0, 3, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 3]
        );
        // A header block starts a zlib stream that names the dictionary by its ID.
        let syn = enc.encode(&Frame::SynReply { id: 1, flags: 0, headers: Vec::new() }).unwrap();
        assert_eq!(&syn[..4], [0x80, 3, 0, 2]);
        assert_eq!(&syn[12..18], [0x78, 0xf9, 0xe3, 0xc6, 0xa7, 0xc2]);
    }

    #[tokio::test]
    async fn a_large_data_frame_comes_back_in_pieces_with_its_fin_on_the_last() {
        let data: Vec<u8> = (0..MAX_DATA * 2 + 5).map(|i| i as u8).collect();
        let mut enc = Encoder::default();
        let mut wire = enc.encode(&Frame::Data { id: 3, flags: FLAG_FIN, data: data.clone().into() }).unwrap();
        wire.extend(enc.encode(&Frame::Ping(1)).unwrap());
        let (mut dec, mut r) = (Decoder::default(), wire.as_slice());
        let mut back = Vec::new();
        for (len, flags) in [(MAX_DATA, 0), (MAX_DATA, 0), (5, FLAG_FIN)] {
            let Some(Frame::Data { id: 3, flags: f, data: piece }) = dec.read(&mut r).await.unwrap() else { panic!() };
            assert_eq!((piece.len(), f), (len, flags));
            back.extend_from_slice(&piece);
        }
        assert_eq!(back, data);
        assert_eq!(dec.read(&mut r).await.unwrap(), Some(Frame::Ping(1)));
    }

    #[tokio::test]
    async fn a_frame_of_another_version_is_refused() {
        let mut r: &[u8] = &[0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1];
        assert!(Decoder::default().read(&mut r).await.is_err());
    }
}
