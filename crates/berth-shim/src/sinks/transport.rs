//! Carrying frames to a collector without ever blocking the shim: a non-blocking socket, a
//! bounded queue in front of it, drops counted, reconnects after a delay (see the module
//! doc of [`super`]).

use std::collections::VecDeque;
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};
use rustix::io::Errno;
use rustix::net::{AddressFamily, SendFlags, SocketAddrUnix, SocketFlags, SocketType};

/// Where a collector listens.
#[derive(Debug, Clone, PartialEq)]
pub enum Endpoint {
    /// `host:port`.
    Udp(String),
    Tcp(String),
    /// A unix stream socket.
    Unix(PathBuf),
    /// A unix datagram socket.
    Unixgram(PathBuf),
}

impl Endpoint {
    /// The address without its scheme.
    pub fn host(&self) -> String {
        match self {
            Endpoint::Udp(h) | Endpoint::Tcp(h) => h.clone(),
            Endpoint::Unix(p) | Endpoint::Unixgram(p) => p.display().to_string(),
        }
    }

    fn datagram(&self) -> bool {
        matches!(self, Endpoint::Udp(_) | Endpoint::Unixgram(_))
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self {
            Endpoint::Udp(_) => "udp",
            Endpoint::Tcp(_) => "tcp",
            Endpoint::Unix(_) => "unix",
            Endpoint::Unixgram(_) => "unixgram",
        };
        write!(f, "{scheme}://{}", self.host())
    }
}

/// When a broken or refused connection is tried again.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// The first delay.
    wait: Duration,
    /// Double the delay after each failure (up to a minute), as fluent-logger does.
    double: bool,
    /// Give up after this many failed attempts in a row: what is queued is dropped, and the
    /// next message starts over.
    max: Option<u32>,
}

impl Retry {
    pub fn fixed(ms: u64, max: Option<u32>) -> Retry {
        Retry { wait: Duration::from_millis(ms.max(1)), double: false, max }
    }

    pub fn backoff(ms: u64, max: u32) -> Retry {
        Retry { wait: Duration::from_millis(ms.max(1)), double: true, max: Some(max) }
    }

    fn delay(&self, failures: u32) -> Duration {
        if !self.double {
            return self.wait;
        }
        let d = self.wait.saturating_mul(1u32 << failures.min(16));
        d.min(Duration::from_secs(60))
    }
}

enum Target {
    Inet(SocketAddr),
    Unix(SocketAddrUnix),
}

pub struct Transport {
    endpoint: Endpoint,
    target: Target,
    sock: Option<OwnedFd>,
    /// A non-blocking connect is under way.
    connecting: bool,
    queue: VecDeque<Vec<u8>>,
    /// Bytes of the first frame already written (stream sockets).
    sent: usize,
    queued: usize,
    limit: usize,
    dropped: u64,
    retry: Retry,
    failures: u32,
    next_try: Option<Instant>,
}

impl Transport {
    /// Connects now (a failure is the caller's error: Docker's drivers fail the start),
    /// waiting up to 10 s for a stream connection.
    pub fn open(endpoint: Endpoint, limit: usize, retry: Retry) -> Result<Transport, String> {
        let mut t = Transport::new(endpoint, limit, retry)?;
        t.connect().map_err(|e| t.dial_error(e))?;
        if t.connecting {
            let timeout = rustix::event::Timespec { tv_sec: 10, tv_nsec: 0 };
            let n = match t.sock.as_ref() {
                Some(sock) => rustix::event::poll(&mut [PollFd::new(sock, PollFlags::OUT)], Some(&timeout)),
                None => Err(Errno::NOTCONN),
            };
            let n = n.map_err(|e| t.dial_error(e))?;
            if n == 0 {
                return Err(t.dial_error(Errno::TIMEDOUT));
            }
            t.finish_connect().map_err(|e| t.dial_error(e))?;
        }
        Ok(t)
    }

    /// Connects in the background: the start goes on whether the collector is there or not
    /// (`fluentd-async`).
    pub fn lazy(endpoint: Endpoint, limit: usize, retry: Retry) -> Result<Transport, String> {
        let mut t = Transport::new(endpoint, limit, retry)?;
        if let Err(e) = t.connect() {
            t.broken(e);
        }
        Ok(t)
    }

    fn new(endpoint: Endpoint, limit: usize, retry: Retry) -> Result<Transport, String> {
        let target = match &endpoint {
            Endpoint::Udp(h) | Endpoint::Tcp(h) => {
                let net = if endpoint.datagram() { "udp" } else { "tcp" };
                let addr = h
                    .to_socket_addrs()
                    .map_err(|e| format!("dial {net} {h}: {e}"))?
                    .next()
                    .ok_or_else(|| format!("dial {net} {h}: no address"))?;
                Target::Inet(addr)
            }
            Endpoint::Unix(p) | Endpoint::Unixgram(p) => {
                Target::Unix(SocketAddrUnix::new(p.as_path()).map_err(|e| format!("{}: {e}", p.display()))?)
            }
        };
        Ok(Transport {
            endpoint,
            target,
            sock: None,
            connecting: false,
            queue: VecDeque::new(),
            sent: 0,
            queued: 0,
            limit,
            dropped: 0,
            retry,
            failures: 0,
            next_try: None,
        })
    }

    /// Go's words for a failed dial, as Docker's errors carry them.
    fn dial_error(&self, e: Errno) -> String {
        let net = match &self.endpoint {
            Endpoint::Udp(_) => "udp",
            Endpoint::Tcp(_) => "tcp",
            Endpoint::Unix(_) => "unix",
            Endpoint::Unixgram(_) => "unixgram",
        };
        let err = std::io::Error::from(e);
        let text = err.to_string();
        let text = text.split(" (os error").next().unwrap_or(&text).to_lowercase();
        format!("dial {net} {}: connect: {text}", self.endpoint.host())
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub fn drained(&self) -> bool {
        self.queue.is_empty()
    }

    fn connect(&mut self) -> Result<(), Errno> {
        let ty = if self.endpoint.datagram() { SocketType::DGRAM } else { SocketType::STREAM };
        let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
        let (fd, r) = match &self.target {
            Target::Inet(a) => {
                let fam = if a.is_ipv4() { AddressFamily::INET } else { AddressFamily::INET6 };
                let fd = rustix::net::socket_with(fam, ty, flags, None)?;
                let r = rustix::net::connect(&fd, a);
                (fd, r)
            }
            Target::Unix(a) => {
                let fd = rustix::net::socket_with(AddressFamily::UNIX, ty, flags, None)?;
                let r = rustix::net::connect(&fd, a);
                (fd, r)
            }
        };
        match r {
            Ok(()) => {
                self.sock = Some(fd);
                self.connecting = false;
                self.failures = 0;
                self.next_try = None;
                Ok(())
            }
            Err(Errno::INPROGRESS) | Err(Errno::AGAIN) if !self.endpoint.datagram() => {
                self.sock = Some(fd);
                self.connecting = true;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn finish_connect(&mut self) -> Result<(), Errno> {
        let Some(fd) = &self.sock else { return Err(Errno::NOTCONN) };
        match rustix::net::sockopt::socket_error(fd)? {
            Ok(()) => {
                self.connecting = false;
                self.failures = 0;
                self.next_try = None;
                Ok(())
            }
            Err(e) => {
                self.sock = None;
                self.connecting = false;
                Err(e)
            }
        }
    }

    /// The connection failed or broke: a frame half written is lost (the next connection
    /// starts at a frame's beginning), and a new attempt is scheduled.
    fn broken(&mut self, _e: Errno) {
        self.sock = None;
        self.connecting = false;
        if self.sent > 0
            && let Some(f) = self.queue.pop_front()
        {
            self.queued -= f.len();
            self.dropped += 1;
        }
        self.sent = 0;
        self.failures += 1;
        if self.retry.max.is_some_and(|m| self.failures > m) {
            self.dropped += self.queue.len() as u64;
            self.queue.clear();
            self.queued = 0;
            self.failures = 0;
        }
        self.next_try = Some(Instant::now() + self.retry.delay(self.failures.saturating_sub(1)));
    }

    /// Queues a frame, or drops it when the queue is full (an empty queue takes any frame).
    pub fn push(&mut self, frame: Vec<u8>) {
        if !self.queue.is_empty() && self.queued + frame.len() > self.limit {
            self.dropped += 1;
            return;
        }
        self.queued += frame.len();
        self.queue.push_back(frame);
    }

    /// Writes what the socket takes now.
    pub fn flush(&mut self) {
        if self.connecting {
            return;
        }
        if self.sock.is_none() {
            if self.next_try.is_none() && !self.queue.is_empty() {
                self.next_try = Some(Instant::now());
            }
            return;
        }
        while let Some(frame) = self.queue.front() {
            let Some(fd) = &self.sock else { return };
            match rustix::net::send(fd, &frame[self.sent..], SendFlags::NOSIGNAL | SendFlags::DONTWAIT) {
                Ok(n) if self.endpoint.datagram() || self.sent + n == frame.len() => {
                    self.sent = 0;
                    self.queued -= frame.len();
                    self.queue.pop_front();
                }
                Ok(n) => self.sent += n,
                Err(Errno::AGAIN) | Err(Errno::INTR) => return,
                // A datagram too large, or refused (UDP reports an earlier datagram's ICMP
                // error on the next send): this one is lost, the socket stays.
                Err(Errno::MSGSIZE) | Err(Errno::NOBUFS) => {
                    self.queued -= frame.len();
                    self.queue.pop_front();
                    self.dropped += 1;
                }
                Err(Errno::CONNREFUSED) if matches!(self.endpoint, Endpoint::Udp(_)) => {
                    self.queued -= frame.len();
                    self.queue.pop_front();
                    self.dropped += 1;
                }
                Err(e) => {
                    self.broken(e);
                    return;
                }
            }
        }
    }

    /// What to poll for: the end of a connect, room to write, and (streams) a peer that
    /// closes or answers.
    pub fn interest(&self) -> Option<(BorrowedFd<'_>, PollFlags)> {
        let fd = self.sock.as_ref()?;
        let mut f = PollFlags::empty();
        if self.connecting || !self.queue.is_empty() {
            f |= PollFlags::OUT;
        }
        if !self.endpoint.datagram() && !self.connecting {
            f |= PollFlags::IN;
        }
        if f.is_empty() { None } else { Some((fd.as_fd(), f)) }
    }

    pub fn ready(&mut self, flags: PollFlags) {
        if self.connecting {
            if let Err(e) = self.finish_connect() {
                self.broken(e);
                return;
            }
        } else if flags.intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR) && !self.endpoint.datagram() {
            // Acks and anything else a collector says are read and let go; end of stream
            // means it has closed the connection.
            let mut buf = [0u8; 4096];
            if let Some(fd) = &self.sock {
                match rustix::io::read(fd, &mut buf) {
                    Ok(0) => return self.broken(Errno::CONNRESET),
                    Ok(_) | Err(Errno::AGAIN) | Err(Errno::INTR) => {}
                    Err(e) => return self.broken(e),
                }
            }
        }
        self.flush();
    }

    /// Tries to connect again when it is time; returns when the next attempt is due.
    pub fn tick(&mut self, now: Instant) -> Option<Instant> {
        if self.sock.is_none()
            && let Some(t) = self.next_try
            && t <= now
        {
            if self.queue.is_empty() {
                // Nothing to send: connect when something comes.
                self.next_try = None;
                return None;
            }
            self.next_try = None;
            match self.connect() {
                Ok(()) => self.flush(),
                Err(e) => self.broken(e),
            }
        }
        self.next_try
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn a_full_queue_drops_and_counts_and_a_reader_gets_the_rest_in_order() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let mut t = Transport::open(Endpoint::Tcp(addr), 1000, Retry::fixed(10, None)).unwrap();
        let (mut peer, _) = l.accept().unwrap();
        // Far more than the socket buffers and the queue hold, with nobody reading.
        let frame = vec![b'x'; 999];
        let mut pushed = 0u64;
        while t.dropped() == 0 {
            t.push(frame.clone());
            t.flush();
            pushed += 1;
        }
        assert!(t.queued <= 1000);
        let mut got = 0usize;
        peer.set_nonblocking(true).unwrap();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match peer.read(&mut buf) {
                Ok(n) => got += n,
                Err(_) => {
                    t.flush();
                    if t.drained() {
                        match peer.read(&mut buf) {
                            Ok(n) => got += n,
                            Err(_) => break,
                        }
                    }
                }
            }
        }
        assert_eq!(got as u64, (pushed - t.dropped()) * 999, "every frame taken arrives whole");
    }

    /// One round of the shim's loop for this transport.
    fn pump(t: &mut Transport) {
        let ready = match t.interest() {
            Some((fd, f)) => {
                let mut fds = [PollFd::new(&fd, f)];
                let timeout = rustix::event::Timespec { tv_sec: 0, tv_nsec: 2_000_000 };
                rustix::event::poll(&mut fds, Some(&timeout)).unwrap();
                Some(fds[0].revents())
            }
            None => {
                std::thread::sleep(Duration::from_millis(2));
                None
            }
        };
        if let Some(r) = ready.filter(|r| !r.is_empty()) {
            t.ready(r);
        }
        t.tick(Instant::now());
    }

    #[test]
    fn a_refused_connection_fails_open_but_not_lazy() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let e = Transport::open(Endpoint::Tcp(format!("127.0.0.1:{port}")), 10, Retry::fixed(10, None)).err().unwrap();
        assert_eq!(e, format!("dial tcp 127.0.0.1:{port}: connect: connection refused"));
        let mut t = Transport::lazy(Endpoint::Tcp(format!("127.0.0.1:{port}")), 10, Retry::fixed(1, Some(2))).unwrap();
        t.push(b"a".to_vec());
        t.push(b"b".to_vec());
        assert_eq!(t.dropped(), 0);
        // Retries run out: what was queued is dropped and counted.
        for _ in 0..100 {
            pump(&mut t);
        }
        assert_eq!(t.dropped(), 2);
        assert!(t.drained());
    }
}
