//! A server-side SPDY/3.1 connection: the streams the client opens, what is written on them,
//! and the bounds that keep a client from making the daemon hold more than a little per
//! connection.
//!
//! # Contract
//!
//! - **Streams.** At most [`MAX_STREAMS`] are open at once (advertised in SETTINGS as
//!   MAX_CONCURRENT_STREAMS); one opened beyond that is refused with RST_STREAM
//!   REFUSED_STREAM and the others go on. A stream is open from its SYN_STREAM until both
//!   sides have finished it (FIN) or either has reset it.
//! - **What the client sends.** Each stream's data waits in a buffer of [`WINDOW`] bytes for
//!   its consumer ([`Incoming`]). That is the initial window advertised in SETTINGS, and a
//!   WINDOW_UPDATE is granted only as the consumer takes bytes out, so a client that keeps to
//!   its windows never waits on the connection. One that does not (spdystream, which every
//!   Kubernetes client is built on, ignores windows) finds the buffer full: the connection
//!   then stops reading the socket until there is room, and TCP holds the client back. The
//!   session window is raised at the start to what every stream's buffer holds together, and
//!   granted back as consumers take data.
//! - **What the server sends.** [`Out::data`] waits for room in a queue of
//!   [`QUEUE`] frames, so a client that does not read holds up the producer. Once the client
//!   shows it does flow control (it sent SETTINGS_INITIAL_WINDOW_SIZE or a WINDOW_UPDATE),
//!   no stream gets more DATA than its window and the session's allow; before that its
//!   windows are counted but not waited for, since a client that never grants (spdystream
//!   again) would stall at 64 KiB.
//! - **Control frames** the reader answers with (SYN_REPLY, RST_STREAM) go ahead of data and
//!   wait in a queue of [`CONTROL_QUEUE`]; when it is full the reader stops reading. PINGs
//!   are answered with up to [`PONGS`] answers pending; a PING past that is dropped
//!   unanswered (not the connection: a client that waits for each answer, as spdystream's
//!   `Ping` does, never has more than one pending, and one that floods pings without reading
//!   loses only answers it does not read). The server sends PINGs of its own (even IDs, at
//!   most one waiting) only to find out whether a client it is not reading is still there.
//! - **Idleness.** A connection on which no frame has passed either way for the idle timeout
//!   is ended as if the client had gone (see [`Idle`]); PINGs of even ID, the server's own
//!   and their answers, do not count.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Notify, mpsc, oneshot};

use super::{
    DEFAULT_WINDOW, Decoder, Encoder, FLAG_FIN, Frame, Headers, MAX_DATA, REFUSED_STREAM, SETTINGS_INITIAL_WINDOW_SIZE,
    SETTINGS_MAX_CONCURRENT_STREAMS,
};
use crate::stream::tasks::{Idle, Signal, Tasks, hung_up};

/// The most streams open at once on one connection.
pub const MAX_STREAMS: u32 = 100;
/// What one stream's unread input may hold, and the initial window advertised.
pub const WINDOW: u32 = 64 << 10;
/// Frames queued for the writer (each at most [`MAX_DATA`]).
const QUEUE: usize = 16;
/// Control frames the reader queues before it waits for the writer.
const CONTROL_QUEUE: usize = 64;
/// PING answers pending before further PINGs are dropped.
const PONGS: usize = 16;
/// The reader's buffer.
const READ_BUFFER: usize = 16 << 10;

/// The stream is reset, or the connection has ended: nothing more can be sent on it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Closed;

/// A stream the peer opened (already answered with SYN_REPLY).
pub struct Stream {
    pub id: u32,
    pub headers: Headers,
    /// The peer's data; ends at its FIN, a reset, or the connection's end.
    pub data: Incoming,
}

/// Commands for the writer, in order behind the control frames.
pub(crate) enum Cmd {
    Frame(Frame),
    /// Flush and end the connection (GOAWAY, then the socket's write side is shut).
    Close(oneshot::Sender<()>),
}

impl From<oneshot::Sender<()>> for Cmd {
    fn from(done: oneshot::Sender<()>) -> Cmd {
        Cmd::Close(done)
    }
}

/// One open stream, as flow control and the stream cap see it.
struct Open {
    /// What the peer still takes on it (may go below zero before it does flow control).
    window: i64,
    peer_done: bool,
    our_done: bool,
}

struct State {
    streams: HashMap<u32, Open>,
    /// The peer's window for new streams, and its session window.
    initial_window: i64,
    session_window: i64,
    /// The peer has shown it keeps windows (see the module's contract).
    flow_control: bool,
    control: VecDeque<Frame>,
    pongs: VecDeque<u32>,
    /// WINDOW_UPDATEs to send, by stream (0: the session's), coalesced.
    grants: BTreeMap<u32, u32>,
    /// A PING of this side's is to be sent, and the ID of the last one.
    ping_due: bool,
    last_ping: u32,
    writer_gone: bool,
}

/// What the reader, the writer and the producers share.
struct Shared {
    state: Mutex<State>,
    /// Control frames are waiting.
    wake_writer: Notify,
    /// The control queue has room (the reader waits on it).
    control_room: Notify,
    /// A window grew, a stream closed, or the connection ended (producers wait on it).
    changed: Notify,
    /// The connection has ended: the client went away, said GOAWAY, cannot be written to,
    /// or was idle.
    ended: Signal,
    idle: Idle,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a control frame; `false` if the queue is full (nothing was queued).
    fn try_control(&self, f: &mut Option<Frame>) -> bool {
        let mut st = self.lock();
        if st.writer_gone {
            f.take();
            return true;
        }
        if st.control.len() >= CONTROL_QUEUE {
            return false;
        }
        st.control.extend(f.take());
        drop(st);
        self.wake_writer.notify_one();
        true
    }

    /// Queues a control frame, waiting for room (only the reader calls it).
    async fn control(&self, f: Frame) {
        let mut f = Some(f);
        loop {
            let room = self.control_room.notified();
            if self.try_control(&mut f) {
                return;
            }
            room.await;
        }
    }

    /// Lets stream `id` go once both sides have finished it.
    fn closed(&self, st: &mut State, id: u32) {
        if st.streams.get(&id).is_some_and(|s| s.peer_done && s.our_done) {
            st.streams.remove(&id);
            st.grants.remove(&id);
            self.changed.notify_waiters();
        }
    }

    fn peer_finished(&self, id: u32) {
        let mut st = self.lock();
        if let Some(s) = st.streams.get_mut(&id) {
            s.peer_done = true;
        }
        self.closed(&mut st, id);
    }

    fn forget(&self, id: u32) {
        let mut st = self.lock();
        st.streams.remove(&id);
        st.grants.remove(&id);
        drop(st);
        self.changed.notify_waiters();
    }

    /// Grants the peer `n` more bytes on stream `id` (0: only the session's window).
    fn grant(&self, id: u32, n: usize) {
        if n == 0 {
            return;
        }
        // A WINDOW_UPDATE's delta is 31 bits: grants waiting for the writer add up to that
        // at most (a client that sends while never reading could otherwise overflow them).
        const MAX_DELTA: u32 = 0x7fff_ffff;
        let n = u32::try_from(n).unwrap_or(MAX_DELTA).min(MAX_DELTA);
        let mut st = self.lock();
        if id != 0 && st.streams.get(&id).is_some_and(|s| !s.peer_done) {
            let g = st.grants.entry(id).or_default();
            *g = g.saturating_add(n).min(MAX_DELTA);
        }
        let g = st.grants.entry(0).or_default();
        *g = g.saturating_add(n).min(MAX_DELTA);
        drop(st);
        self.wake_writer.notify_one();
    }

    /// Takes up to `want` bytes of stream `id`'s window, waiting while a peer that does flow
    /// control has none to give.
    async fn credit(&self, id: u32, want: usize) -> Result<usize, Closed> {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let mut guard = self.lock();
                let st = &mut *guard;
                if st.writer_gone || self.ended.is_set() {
                    return Err(Closed);
                }
                let (flow, session) = (st.flow_control, st.session_window);
                let s = st.streams.get_mut(&id).filter(|s| !s.our_done).ok_or(Closed)?;
                let n = if flow { s.window.min(session).min(want as i64) } else { want as i64 };
                if n > 0 {
                    s.window -= n;
                    st.session_window -= n;
                    return Ok(n as usize);
                }
            }
            changed.await;
        }
    }

    fn settings(&self, entries: &[(u8, u32, u32)]) {
        let mut st = self.lock();
        for &(_, id, value) in entries {
            if id == SETTINGS_INITIAL_WINDOW_SIZE && value <= i32::MAX as u32 {
                // Open streams' windows move by the change (SPDY/3 section 2.6.4).
                let delta = i64::from(value) - st.initial_window;
                st.initial_window = i64::from(value);
                st.streams.values_mut().for_each(|s| s.window += delta);
                st.flow_control = true;
            }
        }
        drop(st);
        self.changed.notify_waiters();
    }

    fn window_update(&self, id: u32, delta: u32) {
        let mut st = self.lock();
        st.flow_control = true;
        if id == 0 {
            st.session_window += i64::from(delta);
        } else if let Some(s) = st.streams.get_mut(&id) {
            s.window += i64::from(delta);
        }
        drop(st);
        self.changed.notify_waiters();
    }

    /// Everything the writer is to send before its next command.
    fn take_control(&self) -> Vec<Frame> {
        let mut st = self.lock();
        let mut out: Vec<Frame> = st.control.drain(..).collect();
        out.extend(st.pongs.drain(..).map(Frame::Ping));
        out.extend(std::mem::take(&mut st.grants).into_iter().map(|(id, delta)| Frame::WindowUpdate { id, delta }));
        if std::mem::take(&mut st.ping_due) {
            st.last_ping = st.last_ping.wrapping_add(2) & 0x7fff_fffe;
            out.push(Frame::Ping(st.last_ping));
        }
        drop(st);
        self.control_room.notify_one();
        out
    }

    /// Has the writer send a PING (one at most waits).
    fn poke(&self) {
        self.lock().ping_due = true;
        self.wake_writer.notify_one();
    }

    fn end(&self) {
        self.ended.set();
        self.changed.notify_waiters();
    }
}

/// A stream's unread input: at most [`WINDOW`] bytes, one writer (the reader task) and one
/// reader (the stream's consumer).
#[derive(Default)]
struct Inbox {
    state: Mutex<InboxState>,
    readable: Notify,
    writable: Notify,
}

#[derive(Default)]
struct InboxState {
    buf: BytesMut,
    fin: bool,
    /// The consumer is gone: what arrives is dropped.
    dropped: bool,
}

impl Inbox {
    fn lock(&self) -> MutexGuard<'_, InboxState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `data` once there is room; `false` if it was dropped (nobody reads the stream).
    async fn push(&self, data: &[u8]) -> bool {
        loop {
            {
                let mut s = self.lock();
                if s.dropped {
                    return false;
                }
                if s.buf.is_empty() || s.buf.len() + data.len() <= WINDOW as usize {
                    s.buf.extend_from_slice(data);
                    drop(s);
                    self.readable.notify_one();
                    return true;
                }
            }
            self.writable.notified().await;
        }
    }

    fn finish(&self) {
        self.lock().fin = true;
        self.readable.notify_one();
    }

    async fn pop(&self) -> Option<Bytes> {
        loop {
            {
                let mut s = self.lock();
                if !s.buf.is_empty() {
                    let b = s.buf.split().freeze();
                    drop(s);
                    self.writable.notify_one();
                    return Some(b);
                }
                if s.fin {
                    return None;
                }
            }
            self.readable.notified().await;
        }
    }
}

/// The receiving end of a stream: its data as the client sent it. Taking data out grants
/// the client as much window again; dropping it drops whatever arrives later.
pub struct Incoming {
    id: u32,
    inbox: Arc<Inbox>,
    shared: Arc<Shared>,
}

impl Incoming {
    /// The next bytes, `None` at the stream's end.
    pub async fn recv(&mut self) -> Option<Bytes> {
        let b = self.inbox.pop().await?;
        self.shared.grant(self.id, b.len());
        Some(b)
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        let mut s = self.inbox.lock();
        s.dropped = true;
        let n = s.buf.len();
        s.buf = BytesMut::new();
        drop(s);
        self.inbox.writable.notify_one();
        // What nobody will read no longer counts against the session.
        self.shared.grant(0, n);
    }
}

/// Writes on a connection; cheap to clone.
#[derive(Clone)]
pub struct Out {
    tx: mpsc::Sender<Cmd>,
    shared: Arc<Shared>,
}

impl Out {
    /// `data` on stream `id`, in frames of at most [`MAX_DATA`], as the stream's window and
    /// the writer's queue allow.
    pub async fn data(&self, id: u32, data: &[u8]) -> Result<(), Closed> {
        let mut rest = data;
        while !rest.is_empty() {
            let n = self.shared.credit(id, rest.len().min(MAX_DATA)).await?;
            let frame = Frame::Data { id, flags: 0, data: Bytes::copy_from_slice(&rest[..n]) };
            self.tx.send(Cmd::Frame(frame)).await.map_err(|_| Closed)?;
            rest = &rest[n..];
        }
        Ok(())
    }

    /// Half-closes stream `id`: nothing more is sent on it. Cancel safe: the FIN is queued
    /// as the stream is marked finished, once the writer's queue has room, so a `fin` dropped
    /// while it waits (a forward whose time ran out) leaves the stream for the next one.
    pub async fn fin(&self, id: u32) {
        let Ok(slot) = self.tx.reserve().await else { return };
        {
            let mut st = self.shared.lock();
            match st.streams.get_mut(&id) {
                Some(s) if !s.our_done => s.our_done = true,
                _ => return,
            }
            self.shared.closed(&mut st, id);
        }
        slot.send(Cmd::Frame(Frame::Data { id, flags: FLAG_FIN, data: Bytes::new() }));
    }

    /// Resets stream `id` (cancel safe, as [`Out::fin`]).
    pub async fn reset(&self, id: u32, status: u32) {
        let Ok(slot) = self.tx.reserve().await else {
            self.shared.forget(id);
            return;
        };
        self.shared.forget(id);
        slot.send(Cmd::Frame(Frame::RstStream { id, status }));
    }

    /// Resolves once the connection has ended.
    pub async fn closed(&self) {
        self.shared.ended.wait().await;
    }

    /// Whether stream `id` is open (not reset, not finished by both sides).
    pub fn is_open(&self, id: u32) -> bool {
        self.shared.lock().streams.contains_key(&id)
    }

    /// Resolves once stream `id` is no longer open (or the connection has ended): what works
    /// for a stream the client reset must stop with it, as the stream no longer counts
    /// against [`MAX_STREAMS`].
    pub async fn gone(&self, id: u32) {
        loop {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.shared.ended.is_set() || !self.is_open(id) {
                return;
            }
            changed.await;
        }
    }
}

/// A server-side SPDY connection: the streams the client opens arrive on `streams`.
pub struct Conn {
    pub streams: mpsc::Receiver<Stream>,
    pub out: Out,
    /// The connection's reader and writer: ended by [`super::super::tasks::Tasks::close`] or
    /// when dropped.
    pub(crate) tasks: Tasks<Cmd>,
}

impl Conn {
    /// Runs the connection over `sock` (after the HTTP upgrade); it ends once idle for
    /// `idle_timeout`.
    pub fn serve(sock: TcpStream, idle_timeout: Option<std::time::Duration>) -> Conn {
        let (rd, wr) = sock.into_split();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                streams: HashMap::new(),
                initial_window: i64::from(DEFAULT_WINDOW),
                session_window: i64::from(DEFAULT_WINDOW),
                flow_control: false,
                control: VecDeque::new(),
                pongs: VecDeque::new(),
                grants: BTreeMap::new(),
                ping_due: false,
                last_ping: 0,
                writer_gone: false,
            }),
            wake_writer: Notify::new(),
            control_room: Notify::new(),
            changed: Notify::new(),
            ended: Signal::default(),
            idle: Idle::new(idle_timeout),
        });
        // First what this side takes: its stream cap and windows.
        {
            let mut st = shared.lock();
            st.control.push_back(Frame::Settings {
                flags: 0,
                entries: vec![
                    (0, SETTINGS_MAX_CONCURRENT_STREAMS, MAX_STREAMS),
                    (0, SETTINGS_INITIAL_WINDOW_SIZE, WINDOW),
                ],
            });
            st.grants.insert(0, MAX_STREAMS * WINDOW - DEFAULT_WINDOW);
        }
        let (cmd_tx, cmd_rx) = mpsc::channel::<Cmd>(QUEUE);
        let (stream_tx, streams) = mpsc::channel(MAX_STREAMS as usize);
        let writer = tokio::spawn(write(wr, cmd_rx, shared.clone()));
        let reader = tokio::spawn(read(rd, stream_tx, shared.clone()));
        let close = cmd_tx.clone();
        Conn { streams, out: Out { tx: cmd_tx, shared }, tasks: Tasks { close, reader, writer } }
    }

    /// Sends GOAWAY after everything queued, shuts the socket and stops reading.
    pub async fn close(self) {
        self.tasks.close().await;
    }
}

/// A PING of even ID is the server's own, or its answer: it says nothing of the client's use
/// of the connection.
fn counts_as_traffic(f: &Frame) -> bool {
    !matches!(f, Frame::Ping(id) if id % 2 == 0)
}

async fn send(wr: &mut OwnedWriteHalf, enc: &mut Encoder, frame: &Frame, idle: &Idle) -> bool {
    let sent = match enc.encode(frame) {
        Ok(bytes) => wr.write_all(&bytes).await.is_ok(),
        Err(_) => false,
    };
    if sent && counts_as_traffic(frame) {
        idle.touch();
    }
    sent
}

async fn write(mut wr: OwnedWriteHalf, mut cmds: mpsc::Receiver<Cmd>, shared: Arc<Shared>) {
    let mut enc = Encoder::default();
    let mut last_good = 0;
    'run: loop {
        for f in shared.take_control() {
            if let Frame::SynReply { id, .. } = &f {
                last_good = *id;
            }
            if !send(&mut wr, &mut enc, &f, &shared.idle).await {
                break 'run;
            }
        }
        let cmd = tokio::select! {
            biased;
            _ = shared.wake_writer.notified() => continue,
            cmd = cmds.recv() => cmd,
        };
        match cmd {
            None => break,
            Some(Cmd::Frame(f)) => {
                if !send(&mut wr, &mut enc, &f, &shared.idle).await {
                    break;
                }
            }
            Some(Cmd::Close(done)) => {
                send(&mut wr, &mut enc, &Frame::GoAway { last_good, status: 0 }, &shared.idle).await;
                let _ = wr.shutdown().await;
                let _ = done.send(());
                break;
            }
        }
    }
    shared.lock().writer_gone = true;
    shared.control_room.notify_one();
    shared.end();
}

async fn read(rd: OwnedReadHalf, stream_tx: mpsc::Sender<Stream>, shared: Arc<Shared>) {
    // Frames are small and many (a PING is 12 bytes): read through a buffer.
    let mut rd = BufReader::with_capacity(READ_BUFFER, rd);
    let mut dec = Decoder::default();
    let mut inboxes: HashMap<u32, Arc<Inbox>> = HashMap::new();
    // The highest stream ID the client has opened: IDs only grow (SPDY/3 2.3.2), so one
    // used before is refused even after its stream is gone.
    let mut last_syn = 0u32;
    // Waits for `f`, or ends the reader when the client hangs up or the connection has been
    // idle meanwhile.
    macro_rules! wait {
        ($f:expr) => {
            tokio::select! {
                r = $f => r,
                _ = hung_up(rd.get_ref(), || shared.poke()) => break,
                _ = shared.idle.expired() => break,
            }
        };
    }
    loop {
        // A frame cut off here is never finished: the connection ends with it.
        let frame = tokio::select! {
            f = dec.read(&mut rd) => f,
            _ = shared.idle.expired() => break,
        };
        let Ok(Some(frame)) = frame else { break };
        if counts_as_traffic(&frame) {
            shared.idle.touch();
        }
        match frame {
            Frame::SynStream { id, flags, headers, .. } => {
                let admitted = {
                    let mut st = shared.lock();
                    // Streams this side reset are gone from `streams`; their inboxes go now,
                    // so a client opening stream after stream the server refuses (and never
                    // closing them) holds no more than the open ones.
                    inboxes.retain(|sid, inbox| {
                        let open = st.streams.contains_key(sid);
                        if !open {
                            inbox.finish();
                        }
                        open
                    });
                    let fresh = id > last_syn && !st.streams.contains_key(&id);
                    last_syn = last_syn.max(id);
                    if fresh && st.streams.len() < MAX_STREAMS as usize {
                        let window = st.initial_window;
                        st.streams.insert(id, Open { window, peer_done: flags & FLAG_FIN != 0, our_done: false });
                        true
                    } else {
                        false
                    }
                };
                if !admitted {
                    wait!(shared.control(Frame::RstStream { id, status: REFUSED_STREAM }));
                    continue;
                }
                wait!(shared.control(Frame::SynReply { id, flags: 0, headers: Vec::new() }));
                let inbox = Arc::new(Inbox::default());
                if flags & FLAG_FIN != 0 {
                    inbox.finish();
                } else {
                    inboxes.insert(id, inbox.clone());
                }
                let data = Incoming { id, inbox, shared: shared.clone() };
                if stream_tx.try_send(Stream { id, headers, data }).is_err() {
                    shared.forget(id);
                    inboxes.remove(&id);
                    wait!(shared.control(Frame::RstStream { id, status: REFUSED_STREAM }));
                }
            }
            Frame::Data { id, flags, data } => {
                let taken = match inboxes.get(&id) {
                    Some(inbox) if !data.is_empty() => wait!(inbox.push(&data)),
                    _ => false,
                };
                if !taken {
                    // Dropped: it never counted against a stream, only the session.
                    shared.grant(0, data.len());
                }
                if flags & FLAG_FIN != 0
                    && let Some(inbox) = inboxes.remove(&id)
                {
                    inbox.finish();
                    shared.peer_finished(id);
                }
            }
            Frame::RstStream { id, .. } => {
                if let Some(inbox) = inboxes.remove(&id) {
                    inbox.finish();
                }
                shared.forget(id);
            }
            // Even IDs are this side's own PINGs coming back (SPDY/3 2.6.5).
            Frame::Ping(id) if id % 2 == 0 => {}
            Frame::Ping(id) => {
                let mut st = shared.lock();
                if st.pongs.len() < PONGS {
                    st.pongs.push_back(id);
                    drop(st);
                    shared.wake_writer.notify_one();
                }
            }
            Frame::Settings { entries, .. } => shared.settings(&entries),
            Frame::WindowUpdate { id, delta } => shared.window_update(id, delta),
            Frame::GoAway { .. } => break,
            _ => {}
        }
    }
    for inbox in inboxes.values() {
        inbox.finish();
    }
    shared.end();
}
