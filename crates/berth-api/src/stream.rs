//! Docker's stream multiplexing for attach, exec and logs without a TTY.
//!
//! Each frame is an 8-byte header `[stream, 0, 0, 0, len (u32 big-endian)]` followed by `len`
//! bytes of payload. Stream 0 is stdin, 1 stdout, 2 stderr; berth also uses 3 ("systemerr")
//! the way Docker does, for an error that ends the stream.

use std::io::{self, Read};

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const SYSTEMERR: u8 = 3;

/// Prepends a frame header to `payload`.
pub fn frame(stream: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(&header(stream, payload.len()));
    out.extend_from_slice(payload);
    out
}

pub fn header(stream: u8, len: usize) -> [u8; 8] {
    let l = (len as u32).to_be_bytes();
    [stream, 0, 0, 0, l[0], l[1], l[2], l[3]]
}

/// Reads one frame; `Ok(None)` at a clean end of stream.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut h = [0u8; 8];
    let mut got = 0;
    while got < 8 {
        let n = r.read(&mut h[got..])?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(io::Error::new(io::ErrorKind::UnexpectedEof, "truncated stream frame header"))
            };
        }
        got += n;
    }
    let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok(Some((h[0], payload)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut buf = frame(STDOUT, b"hello\n");
        buf.extend(frame(STDERR, b"oops"));
        let mut r = &buf[..];
        assert_eq!(read_frame(&mut r).unwrap(), Some((STDOUT, b"hello\n".to_vec())));
        assert_eq!(read_frame(&mut r).unwrap(), Some((STDERR, b"oops".to_vec())));
        assert_eq!(read_frame(&mut r).unwrap(), None);
    }
}
