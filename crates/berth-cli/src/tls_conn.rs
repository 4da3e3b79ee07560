//! A blocking TLS connection that can be cloned, so a hijacked stream (attach, exec) can be
//! read by one thread while another writes stdin into it, as with a plain socket.
//!
//! The TLS session sits behind a mutex shared by the clones; each clone has its own handle
//! on the socket. Nobody holds the mutex while waiting on the network: a reader waits for
//! bytes on the socket unlocked, then locks to decrypt them; a writer locks to encrypt and
//! send. Records reach the socket in the session's order because only the lock holder
//! writes them.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};

/// The session and what it has not been given yet.
struct Session {
    tls: rustls::ClientConnection,
    /// Bytes read from the socket that the session has not taken yet.
    raw: Vec<u8>,
    /// The socket reached its end.
    eof: bool,
    /// The session has been told about the end.
    eof_told: bool,
}

impl Session {
    /// Sends whatever the session has to send (records, alerts).
    fn send(&mut self, mut tcp: &TcpStream) -> io::Result<()> {
        while self.tls.wants_write() {
            self.tls.write_tls(&mut tcp)?;
        }
        Ok(())
    }

    /// Gives the session received bytes (or the end) and lets it decrypt them.
    fn feed(&mut self, tcp: &TcpStream) -> io::Result<()> {
        if self.raw.is_empty() {
            self.tls.read_tls(&mut io::empty())?;
            self.eof_told = true;
        } else {
            let mut rest: &[u8] = &self.raw;
            let n = self.tls.read_tls(&mut rest)?;
            self.raw.drain(..n);
        }
        let processed = self.tls.process_new_packets();
        // An alert for the peer, a key update: sent even when processing failed.
        self.send(tcp)?;
        processed.map(|_| ()).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

pub struct TlsConn {
    tcp: TcpStream,
    session: Arc<Mutex<Session>>,
    buf: Vec<u8>,
}

impl TlsConn {
    /// Completes the handshake with `name` over `tcp`.
    pub fn connect(
        config: Arc<rustls::ClientConfig>,
        name: rustls::pki_types::ServerName<'static>,
        mut tcp: TcpStream,
    ) -> io::Result<TlsConn> {
        let mut tls = rustls::ClientConnection::new(config, name).map_err(io::Error::other)?;
        while tls.is_handshaking() {
            tls.complete_io(&mut tcp)?;
        }
        let session = Session { tls, raw: Vec::new(), eof: false, eof_told: false };
        Ok(TlsConn { tcp, session: Arc::new(Mutex::new(session)), buf: vec![0; 64 * 1024] })
    }

    fn lock(&self) -> io::Result<MutexGuard<'_, Session>> {
        self.session.lock().map_err(|_| io::Error::other("the TLS session was poisoned"))
    }

    pub fn try_clone(&self) -> io::Result<TlsConn> {
        Ok(TlsConn { tcp: self.tcp.try_clone()?, session: self.session.clone(), buf: vec![0; 64 * 1024] })
    }

    /// Ends the sending side: close_notify, then the socket's write half.
    pub fn shutdown_write(&self) -> io::Result<()> {
        let mut s = self.lock()?;
        s.tls.send_close_notify();
        s.send(&self.tcp)?;
        self.tcp.shutdown(Shutdown::Write)
    }
}

impl Read for TlsConn {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            {
                let mut s = self.lock()?;
                // Ok(0) is the peer's close_notify; UnexpectedEof an end without it.
                match s.tls.reader().read(out) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    r => return r,
                }
                if !s.raw.is_empty() || (s.eof && !s.eof_told) {
                    s.feed(&self.tcp)?;
                    continue;
                }
                if s.eof_told {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
            }
            let n = (&self.tcp).read(&mut self.buf)?;
            let mut s = self.lock()?;
            if n == 0 {
                s.eof = true;
            } else {
                s.raw.extend_from_slice(&self.buf[..n]);
            }
        }
    }
}

impl Write for TlsConn {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let mut s = self.lock()?;
        let n = s.tls.writer().write(b)?;
        s.send(&self.tcp)?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut s = self.lock()?;
        s.tls.writer().flush()?;
        s.send(&self.tcp)
    }
}
