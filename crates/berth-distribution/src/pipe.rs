//! Bridges between async transfers and the blocking tar and compression code: a reader fed
//! by a channel of chunks, and chunks to fill and send into one.

use std::io::{self, BufRead, Read};

use bytes::{Buf as _, Bytes, BytesMut};
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;

/// Reads chunks sent by an async task; an `Err` chunk is returned as the read error, a
/// closed channel is the end of the stream. Must be used off the async threads. As a
/// `BufRead` it lends each chunk as it came, without copying it.
pub struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    cur: Bytes,
    /// With [`ChannelReader::hashing`]: the SHA-256 and length of every chunk received.
    hashed: Option<(Sha256, u64)>,
}

impl ChannelReader {
    pub fn new(rx: mpsc::Receiver<io::Result<Bytes>>) -> ChannelReader {
        ChannelReader { rx, cur: Bytes::new(), hashed: None }
    }

    /// Hashes each chunk as it arrives (once, whoever reads it); see [`Self::digest`]. Call
    /// it before reading: what was received already is not hashed.
    pub fn hashing(self) -> ChannelReader {
        debug_assert!(self.cur.is_empty(), "hashing() after reading");
        ChannelReader { hashed: Some((Sha256::new(), 0)), ..self }
    }

    /// `sha256:<hex>` and the length of everything received (read the stream to its end
    /// first for the whole stream's). `None` unless made with [`Self::hashing`].
    pub fn digest(self) -> Option<(String, u64)> {
        self.hashed.map(|(h, n)| (format!("sha256:{}", hex::encode(h.finalize())), n))
    }

    /// Takes the next chunk into `cur`; `false` at the end of the stream.
    fn next_chunk(&mut self) -> io::Result<bool> {
        match self.rx.blocking_recv() {
            Some(Ok(b)) => {
                if let Some((h, n)) = self.hashed.as_mut() {
                    h.update(&b);
                    *n += b.len() as u64;
                }
                if self.cur.is_empty() {
                    self.cur = b;
                } else {
                    let mut joined = BytesMut::with_capacity(self.cur.len() + b.len());
                    joined.extend_from_slice(&self.cur);
                    joined.extend_from_slice(&b);
                    self.cur = joined.freeze();
                }
                Ok(true)
            }
            Some(Err(e)) => Err(e),
            None => Ok(false),
        }
    }

    /// The buffered bytes, joining chunks until there are at least `n` (fewer only at the
    /// end of the stream): what recognising a format by its first bytes needs.
    pub fn fill_at_least(&mut self, n: usize) -> io::Result<&[u8]> {
        while self.cur.len() < n && self.next_chunk()? {}
        Ok(&self.cur)
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = buf.len().min(avail.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for ChannelReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.cur.is_empty() {
            // Let go of the chunk read to its end before waiting, so its sender can reuse it.
            self.cur = Bytes::new();
        }
        while self.cur.is_empty() && self.next_chunk()? {}
        Ok(&self.cur)
    }

    fn consume(&mut self, n: usize) {
        self.cur.advance(n);
    }
}

/// Chunks of [`CHUNK`] bytes to fill and send, reusing those the receiver is done with:
/// a fresh one costs zeroing it and, often, faulting its pages in from the kernel.
#[derive(Default)]
pub struct Recycler {
    /// Chunks sent, oldest first; one whose receiver dropped it is ours alone again.
    sent: std::collections::VecDeque<Bytes>,
}

impl Recycler {
    /// Keeps at most this many sent chunks (beyond what a channel holds, they are not
    /// coming back soon).
    const KEEP: usize = 32;

    /// A chunk of `CHUNK` initialised bytes (old data where reused).
    pub fn take(&mut self) -> BytesMut {
        if let Some(old) = self.sent.pop_front() {
            match old.try_into_mut() {
                // Its bytes are initialised up to its length (all of it but for a last,
                // short chunk, whose tail is zeroed).
                Ok(mut m) if m.capacity() >= CHUNK => {
                    m.resize(CHUNK, 0);
                    return m;
                }
                Ok(_) => {}
                Err(still_used) => self.sent.push_front(still_used),
            }
        }
        BytesMut::zeroed(CHUNK)
    }

    /// Remembers `b` (about to be sent) to reuse once the receiver drops it; returns it.
    pub fn sent(&mut self, b: Bytes) -> Bytes {
        if self.sent.len() < Self::KEEP {
            self.sent.push_back(b.clone());
        }
        b
    }
}

/// How much one chunk sent down a channel holds at most.
pub const CHUNK: usize = 256 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    fn fed(chunks: &[&[u8]]) -> ChannelReader {
        let (tx, rx) = mpsc::channel(chunks.len().max(1));
        for c in chunks {
            tx.try_send(Ok(Bytes::copy_from_slice(c))).unwrap();
        }
        ChannelReader::new(rx)
    }

    #[test]
    fn reads_across_chunks_and_hashes_all_that_arrived() {
        let mut r = fed(&[b"\x1f", b"\x8b\x08", b"", b"rest of it"]).hashing();
        // A format's magic split over chunks is still seen whole.
        assert_eq!(&r.fill_at_least(3).unwrap()[..3], b"\x1f\x8b\x08");
        let mut all = Vec::new();
        r.read_to_end(&mut all).unwrap();
        assert_eq!(all, b"\x1f\x8b\x08rest of it");
        let want = format!("sha256:{}", hex::encode(Sha256::digest(&all)));
        assert_eq!(r.digest(), Some((want, all.len() as u64)));
    }

    #[test]
    fn an_error_chunk_is_the_read_error() {
        let (tx, rx) = mpsc::channel(2);
        tx.try_send(Ok(Bytes::from_static(b"ab"))).unwrap();
        tx.try_send(Err(io::Error::other("registry hung up"))).unwrap();
        let mut r = ChannelReader::new(rx);
        assert_eq!(r.fill_buf().unwrap(), b"ab");
        r.consume(2);
        assert_eq!(r.fill_buf().unwrap_err().to_string(), "registry hung up");
    }

    #[test]
    fn only_a_hashing_reader_has_a_digest() {
        assert_eq!(fed(&[b"x"]).digest(), None);
        let (_, empty) = fed(&[]).hashing().digest().unwrap();
        assert_eq!(empty, 0);
    }

    #[test]
    fn recycles_a_chunk_once_its_receiver_dropped_it() {
        let mut pool = Recycler::default();
        let mut first = pool.take();
        assert_eq!(first.len(), CHUNK);
        first.fill(0xff);
        first[0] = 7;
        first.truncate(10);
        let sent = pool.sent(first.freeze());
        let addr = sent.as_ptr();
        // Still held by the receiver: a new chunk.
        let second = pool.take();
        assert_ne!(second.as_ptr(), addr);
        drop(sent);
        let again = pool.take();
        assert_eq!(again.as_ptr(), addr, "the dropped chunk comes back");
        assert_eq!(again.len(), CHUNK);
        assert_eq!(again[0], 7);
        assert!(again[10..].iter().all(|b| *b == 0), "what was never written is zeroed");
    }
}
