//! The reader and writer tasks behind one upgraded streaming connection, SPDY's or a
//! WebSocket's: closed in order (the protocol's goodbye after everything queued, then the
//! socket) or aborted together when dropped; and what both transports need to stay bounded.
//!
//! # Bounds
//!
//! Every queue between the socket and a process is bounded, so memory per connection is too:
//! a client that stops reading fills the writer's queue, then the producer waits (an exec's
//! output stops being read and the process blocks on its pipe, as with kubelet and
//! containerd); a consumer that stops taking input makes the reader wait, so the socket is
//! no longer read and TCP holds the client back. A reader that waits still notices a client
//! that goes away ([`hung_up`]), and a goodbye to a client that reads nothing is given up
//! after [`CLOSE_TIMEOUT`].
//!
//! # Idleness
//!
//! A connection on which no frame has passed either way for the server's idle timeout is
//! ended ([`Idle`]), as kubelet's `--streaming-connection-idle-timeout` and containerd's
//! `stream_idle_timeout` end theirs. Every frame counts, the client's pings too, but not the
//! pings the server sends itself to see whether a client is still there, nor their answers.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::Interest;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long the goodbye may wait for a client to take what is queued before it.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a reader that waits for room looks whether its client hung up.
const HANGUP_CHECK: Duration = Duration::from_millis(500);

/// `C` is the writer's command type; its close command carries a sender the writer
/// answers once the goodbye is written.
pub struct Tasks<C: From<oneshot::Sender<()>>> {
    pub(super) close: mpsc::Sender<C>,
    pub(super) reader: JoinHandle<()>,
    pub(super) writer: JoinHandle<()>,
}

impl<C: From<oneshot::Sender<()>>> Tasks<C> {
    /// Ends the connection after everything queued, or after [`CLOSE_TIMEOUT`] if the client
    /// does not take it.
    pub async fn close(mut self) {
        let orderly = async {
            let (tx, rx) = oneshot::channel();
            if self.close.send(C::from(tx)).await.is_ok() {
                // The writer answers, or it is gone: either way it has nothing more to send.
                let _ = rx.await;
            }
            // A writer that failed has nothing to report beyond the connection ending.
            let _ = (&mut self.writer).await;
        };
        // Past the timeout both tasks are aborted (on drop), and the socket closes with them.
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, orderly).await;
        self.reader.abort();
    }
}

impl<C: From<oneshot::Sender<()>>> Drop for Tasks<C> {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
    }
}

/// A flag set once, that tasks can wait for.
#[derive(Default)]
pub struct Signal {
    set: AtomicBool,
    notify: Notify,
}

impl Signal {
    pub fn set(&self) {
        self.set.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub fn is_set(&self) -> bool {
        self.set.load(Ordering::SeqCst)
    }

    pub async fn wait(&self) {
        loop {
            let n = self.notify.notified();
            tokio::pin!(n);
            n.as_mut().enable();
            if self.is_set() {
                return;
            }
            n.await;
        }
    }
}

/// Resolves once the peer has gone, for a reader that waits for room and so does not read
/// the socket, where the end of its input would show. The kernel tells of a FIN or a reset
/// (EPOLLRDHUP, EPOLLHUP) even while unread data is queued; as the socket stays readable
/// meanwhile, it is looked at every [`HANGUP_CHECK`]. A client that exits with data still
/// unsent (its window here is closed) leaves its FIN behind that data, where it never
/// shows: `poke` has the writer send a ping each time, which such a peer's kernel answers
/// with a reset.
pub async fn hung_up(rd: &OwnedReadHalf, poke: impl Fn()) {
    loop {
        match rd.ready(Interest::READABLE).await {
            Ok(r) if !r.is_read_closed() && !r.is_error() => {}
            _ => return,
        }
        poke();
        tokio::time::sleep(HANGUP_CHECK).await;
    }
}

/// When a connection last carried a frame, and how long it may go without one.
pub struct Idle {
    start: Instant,
    /// Milliseconds from `start` to the last frame.
    last: AtomicU64,
    timeout: Option<Duration>,
}

impl Idle {
    /// `None`: never idle.
    pub fn new(timeout: Option<Duration>) -> Idle {
        Idle { start: Instant::now(), last: AtomicU64::new(0), timeout }
    }

    /// A frame went in or out.
    pub fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.fetch_max(ms, Ordering::Relaxed);
    }

    /// Resolves once the connection has carried nothing for the timeout (never without one).
    pub async fn expired(&self) {
        let Some(timeout) = self.timeout else { return std::future::pending().await };
        loop {
            let due = self.start + Duration::from_millis(self.last.load(Ordering::Relaxed)) + timeout;
            if Instant::now() >= due {
                return;
            }
            tokio::time::sleep_until(due).await;
        }
    }
}
