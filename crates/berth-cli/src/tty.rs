//! The local terminal and the copying of streams to and from the daemon.

use std::io::{self, Read, Write};
use std::os::fd::AsFd;

use crate::client::Conn;

/// Puts the terminal on stdin into raw mode until dropped.
pub struct RawMode {
    saved: Option<rustix::termios::Termios>,
}

impl RawMode {
    pub fn enable() -> RawMode {
        let stdin = rustix::stdio::stdin();
        let saved = rustix::termios::tcgetattr(stdin).ok();
        if let Some(s) = &saved {
            let mut raw = s.clone();
            raw.make_raw();
            // If refused, the session goes on in the terminal's usual (cooked) mode.
            let _ = rustix::termios::tcsetattr(stdin, rustix::termios::OptionalActions::Now, &raw);
        }
        RawMode { saved }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(s) = &self.saved {
            // Refused only when the terminal is gone, with nothing left to restore.
            let _ = rustix::termios::tcsetattr(rustix::stdio::stdin(), rustix::termios::OptionalActions::Now, s);
        }
    }
}

pub fn stdin_is_tty() -> bool {
    rustix::termios::isatty(rustix::stdio::stdin())
}

pub fn stdout_is_tty() -> bool {
    rustix::termios::isatty(rustix::stdio::stdout())
}

/// The terminal size as (rows, columns).
pub fn size() -> Option<(u16, u16)> {
    for fd in [rustix::stdio::stdout(), rustix::stdio::stdin()] {
        if let Ok(ws) = rustix::termios::tcgetwinsize(fd.as_fd())
            && ws.ws_row > 0
        {
            return Some((ws.ws_row, ws.ws_col));
        }
    }
    None
}

/// Copies a daemon stream to stdout/stderr: raw with a TTY, demultiplexed without.
pub fn copy_output(mut r: impl Read, tty: bool, prefix: &[u8]) -> io::Result<()> {
    let mut out = io::stdout().lock();
    if tty {
        out.write_all(prefix)?;
        out.flush()?;
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            out.write_all(&buf[..n])?;
            out.flush()?;
        }
    }
    let mut chained = prefix.chain(r);
    let mut err = io::stderr();
    while let Some((stream, data)) = berth_api::stream::read_frame(&mut chained)? {
        match stream {
            berth_api::stream::STDERR => {
                err.write_all(&data)?;
                err.flush()?;
            }
            berth_api::stream::SYSTEMERR => {
                return Err(io::Error::other(String::from_utf8_lossy(&data).into_owned()));
            }
            _ => {
                out.write_all(&data)?;
                out.flush()?;
            }
        }
    }
    Ok(())
}

/// Copies stdin to the daemon until EOF, then half-closes the connection.
pub fn copy_input(mut conn: Conn) {
    let mut stdin = io::stdin();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match stdin.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if conn.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
    conn.shutdown_write();
}
