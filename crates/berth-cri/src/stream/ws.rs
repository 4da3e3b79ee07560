//! WebSocket (RFC 6455) for the streaming server: the opening handshake's accept key and the
//! frames. A server sends unmasked frames and reads masked ones; the test clients use the same
//! codec with a mask. Fragments are joined before they are returned, and a long message is
//! passed on in pieces (see [`Reader`]).

use std::io;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use sha1::Digest as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc, oneshot};

use super::tasks::{Idle, Signal, Tasks, hung_up};

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xa;

/// The most of a data message the server holds at once, besides its channel byte: a longer
/// message is passed on in pieces (see [`Reader`]). kubectl's messages are a 32 KiB read
/// buffer's worth; other clients send a whole write as one message, of any size.
pub const PIECE: usize = 32 << 10;
/// The piece of a [`Reader::default`]: whole messages up to this size.
const WHOLE: usize = 16 << 20;

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`.
pub fn accept_key(key: &str) -> String {
    let mut h = sha1::Sha1::new();
    h.update(key.trim().as_bytes());
    h.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// One frame with its FIN bit set, masked with `mask` when given (a client's frames are).
pub fn encode(opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut f = Vec::with_capacity(payload.len() + 14);
    f.push(0x80 | opcode);
    let bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => f.push(bit | n as u8),
        n if n <= 0xffff => {
            f.push(bit | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(bit | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(m) => {
            f.extend_from_slice(&m);
            f.extend(payload.iter().enumerate().map(|(i, b)| b ^ m[i % 4]));
        }
        None => f.extend_from_slice(payload),
    }
    f
}

/// A whole message (or control frame): its opcode and unmasked payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub opcode: u8,
    pub data: Vec<u8>,
}

/// A frame's header: FIN, opcode, payload length and mask.
struct Header {
    fin: bool,
    opcode: u8,
    len: u64,
    mask: Option<[u8; 4]>,
}

async fn header<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Header> {
    let mut h = [0u8; 2];
    r.read_exact(&mut h).await?;
    let (fin, opcode, masked) = (h[0] & 0x80 != 0, h[0] & 0x0f, h[1] & 0x80 != 0);
    let len = match h[1] & 0x7f {
        126 => u64::from(r.read_u16().await?),
        127 => r.read_u64().await?,
        n => u64::from(n),
    };
    // RFC 6455 5.5: a control frame carries at most 125 bytes and is never fragmented.
    if opcode >= OP_CLOSE && (len > 125 || !fin) {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "WebSocket control frame too large or fragmented"));
    }
    let mut mask = None;
    if masked {
        let mut m = [0u8; 4];
        r.read_exact(&mut m).await?;
        mask = Some(m);
    }
    Ok(Header { fin, opcode, len, mask })
}

/// The data frame being read.
struct InFrame {
    fin: bool,
    /// Payload bytes not read yet.
    left: u64,
    mask: Option<[u8; 4]>,
    /// Payload bytes read so far (where the mask stands).
    at: usize,
}

/// Reads messages; control frames come back as they arrive, between a message's fragments
/// too. A data message longer than the reader's piece comes back in pieces of that many
/// bytes after the first, each starting with the message's first byte (a Kubernetes channel
/// protocol's channel); as the piece is a multiple of four, each piece of a base64 message
/// decodes on its own. So the reader holds at most a piece, whatever a client sends.
pub struct Reader {
    piece: usize,
    /// The data message being read: its opcode, and what of it is not passed on yet.
    partial: Option<Message>,
    /// A piece of the message was passed on already.
    split: bool,
    frame: Option<InFrame>,
}

impl Default for Reader {
    /// Whole messages up to 16 MiB; longer ones are split.
    fn default() -> Reader {
        Reader::new(WHOLE)
    }
}

impl Reader {
    /// A reader that passes data messages on in pieces of 1 + `piece` bytes at most.
    pub fn new(piece: usize) -> Reader {
        assert!(piece > 0 && piece.is_multiple_of(4), "a piece of base64 decodes on its own");
        Reader { piece, partial: None, split: false, frame: None }
    }

    /// The next message or piece of one, `None` at the end of input.
    pub async fn read<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> io::Result<Option<Message>> {
        loop {
            if let (Some(f), Some(m)) = (self.frame.as_mut(), self.partial.as_mut()) {
                let room = 1 + self.piece - m.data.len();
                let n = room.min(usize::try_from(f.left).unwrap_or(usize::MAX));
                let from = m.data.len();
                m.data.resize(from + n, 0);
                r.read_exact(&mut m.data[from..]).await?;
                if let Some(mask) = f.mask {
                    m.data[from..].iter_mut().enumerate().for_each(|(i, b)| *b ^= mask[(f.at + i) % 4]);
                }
                (f.left, f.at) = (f.left - n as u64, (f.at + n) % 4);
                let (ended, full) = (f.left == 0, m.data.len() == 1 + self.piece);
                let last = ended && f.fin;
                if ended {
                    self.frame = None;
                }
                if last {
                    match self.finish() {
                        Some(m) => return Ok(Some(m)),
                        None => continue,
                    }
                }
                if full {
                    // More of the message follows: the next piece starts again with the
                    // channel.
                    let next = Message { opcode: m.opcode, data: vec![m.data[0]] };
                    self.split = true;
                    return Ok(self.partial.replace(next));
                }
                continue;
            }
            let h = match header(r).await {
                Ok(h) => h,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && self.partial.is_none() => return Ok(None),
                Err(e) => return Err(e),
            };
            if h.opcode >= OP_CLOSE {
                let mut data = vec![0u8; h.len as usize];
                r.read_exact(&mut data).await?;
                if let Some(mask) = h.mask {
                    data.iter_mut().enumerate().for_each(|(i, b)| *b ^= mask[i % 4]);
                }
                return Ok(Some(Message { opcode: h.opcode, data }));
            }
            match (&self.partial, h.opcode) {
                (None, OP_CONTINUATION) | (Some(_), OP_TEXT | OP_BINARY) => {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "WebSocket fragments out of order"));
                }
                (None, op) => self.partial = Some(Message { opcode: op, data: Vec::new() }),
                (Some(_), _) => {}
            }
            if h.len == 0 && h.fin {
                match self.finish() {
                    Some(m) => return Ok(Some(m)),
                    None => continue,
                }
            }
            self.frame = Some(InFrame { fin: h.fin, left: h.len, mask: h.mask, at: 0 });
        }
    }

    /// The rest of the message, now that it has ended; nothing if that is only the channel
    /// of a message passed on already.
    fn finish(&mut self) -> Option<Message> {
        let m = self.partial.take()?;
        let split = std::mem::take(&mut self.split);
        (!split || m.data.len() > 1).then_some(m)
    }
}

/// How a Kubernetes channel protocol frames its messages: a leading channel byte and raw data
/// in binary messages, or a channel digit and base64 in text ones (`base64.channel.k8s.io`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Codec {
    Binary,
    Base64,
}

impl Codec {
    /// A message carrying `data` on channel `chan`.
    pub fn message(self, chan: u8, data: &[u8]) -> (u8, Vec<u8>) {
        match self {
            Codec::Binary => (OP_BINARY, [&[chan][..], data].concat()),
            Codec::Base64 => {
                let text = base64::engine::general_purpose::STANDARD.encode(data);
                (OP_TEXT, [&[b'0' + chan][..], text.as_bytes()].concat())
            }
        }
    }

    /// The channel and data of a received data message (`None`: empty or undecodable).
    pub fn parse(self, msg: &[u8]) -> Option<(u8, Vec<u8>)> {
        let (&chan, data) = msg.split_first()?;
        match self {
            Codec::Binary => Some((chan, data.to_vec())),
            Codec::Base64 => {
                let data = base64::engine::general_purpose::STANDARD.decode(data).ok()?;
                Some((chan.wrapping_sub(b'0'), data))
            }
        }
    }
}

pub(crate) enum Cmd {
    Frame(u8, Vec<u8>),
    Close(oneshot::Sender<()>),
}

impl From<oneshot::Sender<()>> for Cmd {
    fn from(done: oneshot::Sender<()>) -> Cmd {
        Cmd::Close(done)
    }
}

/// Frames queued for the writer.
const QUEUE: usize = 16;
/// Data messages read ahead of their consumer.
const READ_AHEAD: usize = 2;

/// The connection has ended: nothing more can be sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Closed;

/// The answer to the latest ping not yet answered: RFC 6455 (5.5.3) lets an endpoint answer
/// only the most recent of several pings, so a flood of pings from a client that does not
/// read holds one answer, never more. Also whether a ping of the server's own is due (see
/// [`hung_up`]).
#[derive(Default)]
struct Pong {
    latest: Mutex<Option<Vec<u8>>>,
    ping_due: std::sync::atomic::AtomicBool,
    ready: Notify,
}

impl Pong {
    fn put(&self, data: Vec<u8>) {
        *self.latest.lock().unwrap_or_else(|e| e.into_inner()) = Some(data);
        self.ready.notify_one();
    }

    fn take(&self) -> Option<Vec<u8>> {
        self.latest.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Sends messages on a server-side connection; cheap to clone.
#[derive(Clone)]
pub struct Out {
    tx: mpsc::Sender<Cmd>,
    ended: Arc<Signal>,
}

impl Out {
    /// Queues a message, waiting while [`QUEUE`] frames wait for a client that reads slowly.
    pub async fn send(&self, opcode: u8, payload: Vec<u8>) -> Result<(), Closed> {
        self.tx.send(Cmd::Frame(opcode, payload)).await.map_err(|_| Closed)
    }

    /// Resolves once the connection has ended.
    pub async fn closed(&self) {
        self.ended.wait().await;
    }
}

/// A server-side WebSocket connection after the handshake: the client's data messages arrive on
/// `messages`, which ends when the client closes or goes away. Pings are answered here.
/// WebSocket has no flow control: a consumer that does not take messages stops the reader
/// after [`READ_AHEAD`] of them, and TCP holds the client back. Messages arrive in pieces of
/// [`PIECE`] bytes at most (see [`Reader`]), so what waits is bounded in bytes too, however
/// large the messages a client sends. A connection that carries no frame either way for the
/// idle timeout ends as if the client had gone (see [`Idle`]; the server's own pings and the
/// client's pongs do not count).
pub struct Conn {
    pub messages: mpsc::Receiver<Message>,
    pub out: Out,
    /// The connection's reader and writer: ended by [`super::tasks::Tasks::close`] or when dropped.
    pub(crate) tasks: Tasks<Cmd>,
}

/// The tasks that run a connection.
impl Conn {
    pub fn serve(sock: TcpStream, idle_timeout: Option<std::time::Duration>) -> Conn {
        let idle = Arc::new(Idle::new(idle_timeout));
        let (rd, mut wr) = sock.into_split();
        // Frames are small and many (a ping is 6 bytes and more): read through a buffer.
        let mut rd = tokio::io::BufReader::with_capacity(16 << 10, rd);
        let (cmd_tx, mut cmd_rx) = mpsc::channel::<Cmd>(QUEUE);
        let (msg_tx, messages) = mpsc::channel(READ_AHEAD);
        let pong = Arc::new(Pong::default());
        let ended = Arc::new(Signal::default());
        let writer = tokio::spawn({
            let (pong, ended, idle) = (pong.clone(), ended.clone(), idle.clone());
            async move {
                loop {
                    if let Some(p) = pong.take() {
                        if wr.write_all(&encode(OP_PONG, &p, None)).await.is_err() {
                            break;
                        }
                        idle.touch();
                    }
                    if pong.ping_due.swap(false, std::sync::atomic::Ordering::SeqCst)
                        && wr.write_all(&encode(OP_PING, &[], None)).await.is_err()
                    {
                        break;
                    }
                    let cmd = tokio::select! {
                        biased;
                        _ = pong.ready.notified() => continue,
                        cmd = cmd_rx.recv() => cmd,
                    };
                    match cmd {
                        None => break,
                        Some(Cmd::Frame(op, payload)) => {
                            if wr.write_all(&encode(op, &payload, None)).await.is_err() {
                                break;
                            }
                            idle.touch();
                        }
                        Some(Cmd::Close(done)) => {
                            let _ = wr.write_all(&encode(OP_CLOSE, &1000u16.to_be_bytes(), None)).await;
                            let _ = wr.shutdown().await;
                            let _ = done.send(());
                            break;
                        }
                    }
                }
                ended.set();
            }
        });
        let reader = tokio::spawn({
            let ended = ended.clone();
            let poke = {
                let pong = pong.clone();
                move || {
                    pong.ping_due.store(true, std::sync::atomic::Ordering::SeqCst);
                    pong.ready.notify_one();
                }
            };
            async move {
                let mut r = Reader::new(PIECE);
                loop {
                    // A message cut off here is never finished: the connection ends with it.
                    let m = tokio::select! {
                        m = r.read(&mut rd) => m,
                        _ = idle.expired() => break,
                    };
                    let Ok(Some(m)) = m else { break };
                    if m.opcode != OP_PONG {
                        idle.touch();
                    }
                    match m.opcode {
                        OP_PING => pong.put(m.data),
                        OP_PONG => {}
                        OP_CLOSE => break,
                        _ => {
                            let sent = tokio::select! {
                                r = msg_tx.send(m) => r.is_ok(),
                                _ = hung_up(rd.get_ref(), &poke) => false,
                                _ = idle.expired() => false,
                            };
                            if !sent {
                                break;
                            }
                        }
                    }
                }
                ended.set();
            }
        });
        let close = cmd_tx.clone();
        Conn { messages, out: Out { tx: cmd_tx, ended }, tasks: Tasks { close, reader, writer } }
    }

    /// Sends a close frame after everything queued, shuts the socket and stops reading.
    pub async fn close(self) {
        self.tasks.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_key_is_rfc6455s_example() {
        assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[tokio::test]
    async fn masked_fragments_join_and_control_frames_pass_between() {
        let mut wire = Vec::new();
        let mut first = encode(OP_BINARY, b"\x01he", Some([1, 2, 3, 4]));
        first[0] &= 0x7f; // not final
        wire.extend(first);
        wire.extend(encode(OP_PING, b"p", Some([9, 9, 9, 9])));
        wire.extend(encode(OP_CONTINUATION, b"llo", Some([5, 6, 7, 8])));
        let big = vec![7u8; 70_000];
        wire.extend(encode(OP_BINARY, &big, None));
        wire.extend(encode(OP_TEXT, &[b'x'; 300], Some([0, 1, 0, 1])));
        let mut r = wire.as_slice();
        let mut rd = Reader::default();
        assert_eq!(rd.read(&mut r).await.unwrap().unwrap(), Message { opcode: OP_PING, data: b"p".to_vec() });
        assert_eq!(rd.read(&mut r).await.unwrap().unwrap(), Message { opcode: OP_BINARY, data: b"\x01hello".to_vec() });
        assert_eq!(rd.read(&mut r).await.unwrap().unwrap().data, big);
        assert_eq!(rd.read(&mut r).await.unwrap().unwrap().data, vec![b'x'; 300]);
        assert_eq!(rd.read(&mut r).await.unwrap(), None);
    }

    #[tokio::test]
    async fn long_messages_come_in_pieces_that_each_start_with_the_channel() {
        let mut wire = Vec::new();
        // 1 + 10 bytes in two fragments with a ping between, then 1 + 8, then 1 + 4.
        let mut first = encode(OP_BINARY, b"\x05abcdef", Some([1, 2, 3, 4]));
        first[0] &= 0x7f;
        wire.extend(first);
        wire.extend(encode(OP_PING, b"p", None));
        wire.extend(encode(OP_CONTINUATION, b"ghij", Some([5, 6, 7, 8])));
        wire.extend(encode(OP_TEXT, b"1AAAABBBB", Some([9, 8, 7, 6])));
        wire.extend(encode(OP_BINARY, b"\x02wxyz", None));
        let mut r = wire.as_slice();
        let mut rd = Reader::new(4);
        let mut got = Vec::new();
        while let Some(m) = rd.read(&mut r).await.unwrap() {
            got.push((m.opcode, String::from_utf8(m.data).unwrap()));
        }
        let want = [
            (OP_BINARY, "\x05abcd"),
            (OP_PING, "p"),
            (OP_BINARY, "\x05efgh"),
            (OP_BINARY, "\x05ij"),
            (OP_TEXT, "1AAAA"),
            (OP_TEXT, "1BBBB"),
            (OP_BINARY, "\x02wxyz"),
        ];
        assert_eq!(got, want.map(|(op, s)| (op, s.to_string())));
    }

    #[tokio::test]
    async fn control_frames_over_125_bytes_or_fragmented_are_refused() {
        let big = encode(OP_PING, &[0; 126], None);
        assert!(Reader::default().read(&mut big.as_slice()).await.is_err());
        let mut split = encode(OP_PING, b"p", None);
        split[0] &= 0x7f;
        assert!(Reader::default().read(&mut split.as_slice()).await.is_err());
        let ok = encode(OP_PING, &[0; 125], None);
        assert_eq!(Reader::default().read(&mut ok.as_slice()).await.unwrap().unwrap().data.len(), 125);
    }

    #[test]
    fn lengths_use_the_short_forms_first() {
        assert_eq!(encode(OP_BINARY, &[0; 125], None)[1], 125);
        assert_eq!(&encode(OP_BINARY, &[0; 126], None)[1..4], [126, 0, 126]);
        assert_eq!(&encode(OP_BINARY, &[0; 65536], None)[1..10], [127, 0, 0, 0, 0, 0, 1, 0, 0]);
    }
}
