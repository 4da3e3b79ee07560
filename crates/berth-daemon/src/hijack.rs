//! Taking over a connection for a raw stream (attach, exec): the halves to read the client's
//! input from and write the process's output to, handed over only once the client has read
//! the `101 UPGRADED` answer.
//!
//! Why the wait: docker-py (and every client built on Python's `http.client`) reads the answer
//! through a buffered reader and then reads the stream from the raw socket beneath it. Bytes
//! that arrived together with the headers sit in that buffer and are never seen:
//! `exec_start` of `echo hello` returned `b''`, `attach(logs=True)` of an exited container
//! nearly always did (docker/docker-py#2042, #3332). Docker loses output the same way when the
//! process is quick enough; berth's processes usually are. On a unix socket the kernel says how
//! much of what was sent the peer has not read yet (`TIOCOUTQ`), so the stream starts when
//! that is zero: the headers were read by a call of their own. Over TCP there is no such
//! answer (the count is of unacknowledged bytes), and the stream starts at once.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Duration;

use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::UnixStream;

pub type Reader = Box<dyn AsyncRead + Send + Unpin>;
pub type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// How long a client may leave the answer unread before the stream starts anyway (a client
/// that writes its input first and reads later loses nothing by the wait: input flows
/// meanwhile).
const READ_WAIT: Duration = Duration::from_secs(1);

/// Splits the upgraded connection into its halves; on a unix socket, once the client has read
/// the answer.
pub async fn take_over(up: Upgraded) -> (Reader, Writer) {
    match up.downcast::<TokioIo<UnixStream>>() {
        Ok(parts) => {
            let stream = parts.io.into_inner();
            headers_read(stream.as_fd()).await;
            let (rd, wr) = stream.into_split();
            // What the server had read past the request (input sent early) comes first.
            let rd = std::io::Cursor::new(parts.read_buf).chain(rd);
            (Box::new(rd), Box::new(wr))
        }
        Err(up) => {
            let (rd, wr) = tokio::io::split(TokioIo::new(up));
            (Box::new(rd), Box::new(wr))
        }
    }
}

/// Waits (at most [`READ_WAIT`]) until the peer has read everything sent on `fd`.
async fn headers_read(fd: BorrowedFd<'_>) {
    let deadline = tokio::time::Instant::now() + READ_WAIT;
    let mut pause = Duration::from_micros(100);
    while unread(fd).is_some_and(|n| n > 0) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

/// Bytes sent on a unix stream socket that its peer has not read yet.
#[allow(unsafe_code)]
fn unread(fd: BorrowedFd<'_>) -> Option<u32> {
    let mut n: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (SIOCOUTQ) on a socket writes one int into `n`, which outlives the call;
    // the descriptor is borrowed, so it stays open for the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCOUTQ, &mut n) };
    (r == 0).then_some(n.max(0) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn unread_counts_what_the_peer_has_not_read() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        assert_eq!(unread(a.as_fd()), Some(0));
        a.write_all(b"HTTP/1.1 101 UPGRADED\r\n\r\n").await.unwrap();
        assert!(unread(a.as_fd()).unwrap() > 0);
        let mut buf = [0u8; 64];
        let n = b.read(&mut buf).await.unwrap();
        assert_eq!(n, 25);
        assert_eq!(unread(a.as_fd()), Some(0));
        // Returns at once now that everything was read.
        headers_read(a.as_fd()).await;
    }
}
