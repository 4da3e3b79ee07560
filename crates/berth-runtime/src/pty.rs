//! Terminals for containers: the pty is made inside the container's own devpts instance (so
//! `tty` inside prints a path that exists there), and its master is handed to the shim over
//! a unix socket.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags,
};

use crate::{Result, RuntimeError};

/// Completes a pty pair from a freshly opened devpts `ptmx`. Returns (master, slave).
pub fn from_master(master: OwnedFd) -> Result<(OwnedFd, OwnedFd)> {
    rustix::pty::unlockpt(&master).map_err(|e| RuntimeError::sys("unlockpt", e))?;
    let slave =
        rustix::pty::ioctl_tiocgptpeer(&master, rustix::pty::OpenptFlags::RDWR | rustix::pty::OpenptFlags::NOCTTY)
            .map_err(|e| RuntimeError::sys("opening the pty peer", e))?;
    Ok((master, slave))
}

/// Sets a terminal's window size.
pub fn set_size(fd: impl AsFd, rows: u16, cols: u16) -> Result<()> {
    if rows == 0 || cols == 0 {
        return Ok(());
    }
    let ws = rustix::termios::Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    rustix::termios::tcsetwinsize(fd, ws).map_err(|e| RuntimeError::sys("setting the terminal size", e))
}

/// Sends one descriptor over a unix socket.
pub fn send_fd(sock: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> Result<()> {
    let fds = [fd];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut buf = SendAncillaryBuffer::new(&mut space);
    buf.push(SendAncillaryMessage::ScmRights(&fds));
    rustix::net::sendmsg(sock, &[IoSlice::new(b"m")], &mut buf, SendFlags::empty())
        .map_err(|e| RuntimeError::sys("sending the pty master", e))?;
    Ok(())
}

/// Receives one descriptor; `None` if the peer closed without sending.
pub fn recv_fd(sock: BorrowedFd<'_>) -> Result<Option<OwnedFd>> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut buf = RecvAncillaryBuffer::new(&mut space);
    let mut data = [0u8; 1];
    let r = rustix::net::recvmsg(sock, &mut [IoSliceMut::new(&mut data)], &mut buf, RecvFlags::CMSG_CLOEXEC)
        .map_err(|e| RuntimeError::sys("receiving the pty master", e))?;
    if r.bytes == 0 {
        return Ok(None);
    }
    for msg in buf.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = msg
            && let Some(fd) = fds.next()
        {
            return Ok(Some(fd));
        }
    }
    Ok(None)
}
