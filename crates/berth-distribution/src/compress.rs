//! Layer compression for pushes: gzip in independent 1 MiB members, made on every core.
//!
//! The output is a multi-member gzip stream (RFC 1952 allows concatenated members; Go's
//! `compress/gzip`, which Docker and containerd use, zlib and berth's own reader all read
//! it as one stream). Each chunk is compressed on its own, so chunks go to worker threads;
//! a writer thread puts the members back in order and hands them to a [`Members`] sink
//! (which hashes and uploads them), so reading the layer, compressing it and sending it
//! all overlap. At most a few chunks are in flight: a slow upload slows the reading.
//!
//! A chunk whose first 16 KiB do not shrink at the fastest level (random or already
//! compressed data) is stored instead of deflated: deflating it would cost several times
//! the upload and gain nothing. Such a member is written directly as deflate stored blocks
//! (RFC 1951 §3.2.4), one copy and a CRC, instead of through zlib's stored mode, which
//! copies it several times. The decision depends only on the chunk's bytes, so the same
//! layer always compresses to the same blob (and the same digest).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

const CHUNK: usize = 1 << 20;
const SAMPLE: usize = 16 << 10;
/// Largest payload of one deflate stored block.
const STORED_BLOCK: usize = 65535;
/// A gzip member header: deflate, no flags, no mtime, no extra flags, OS unknown.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// Receives the compressed stream, one gzip member at a time, in order.
pub trait Members: Send + 'static {
    fn member(&mut self, gz: Vec<u8>) -> io::Result<()>;
}

impl Members for Vec<u8> {
    fn member(&mut self, gz: Vec<u8>) -> io::Result<()> {
        self.extend_from_slice(&gz);
        Ok(())
    }
}

type Job = (u64, Vec<u8>);
type Done = (u64, io::Result<Vec<u8>>);

fn compress_chunk(data: &[u8]) -> io::Result<Vec<u8>> {
    if data.len() >= SAMPLE {
        let mut probe =
            flate2::write::DeflateEncoder::new(Vec::with_capacity(SAMPLE + 64), flate2::Compression::fast());
        probe.write_all(&data[..SAMPLE])?;
        let n = probe.finish()?.len();
        if n * 100 > SAMPLE * 97 {
            return Ok(stored_member(data));
        }
    }
    // Room for text's usual ratio and for mildly compressible data alike, without regrowth.
    let mut gz = flate2::write::GzEncoder::new(Vec::with_capacity(data.len() + 64), flate2::Compression::fast());
    gz.write_all(data)?;
    gz.finish()
}

/// `data` as one gzip member of stored (uncompressed) deflate blocks.
fn stored_member(data: &[u8]) -> Vec<u8> {
    let blocks = data.len().div_ceil(STORED_BLOCK).max(1);
    let mut out = Vec::with_capacity(GZIP_HEADER.len() + blocks * 5 + data.len() + 8);
    out.extend_from_slice(&GZIP_HEADER);
    let mut parts = data.chunks(STORED_BLOCK).peekable();
    if parts.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(part) = parts.next() {
        let last = parts.peek().is_none();
        let len = part.len() as u16;
        // BFINAL and BTYPE=00 in the first byte; the block then starts on a byte boundary.
        out.push(u8::from(last));
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(part);
    }
    let mut crc = flate2::Crc::new();
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// A `Write` that gzips what it is given into a [`Members`] sink (see the module docs).
/// Call [`ParallelGzip::finish`] to end the stream and get the sink back.
pub struct ParallelGzip<M: Members> {
    buf: Vec<u8>,
    jobs: Option<mpsc::Sender<Job>>,
    /// One token per chunk in flight; the writer thread takes one back per member written.
    tokens: mpsc::SyncSender<()>,
    workers: Vec<JoinHandle<()>>,
    writer: Option<JoinHandle<io::Result<M>>>,
    sent: u64,
}

impl<M: Members> ParallelGzip<M> {
    pub fn new(sink: M) -> ParallelGzip<M> {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 4);
        let (jobs, job_rx) = mpsc::channel::<Job>();
        let (done_tx, done_rx) = mpsc::channel::<Done>();
        let (tokens, token_rx) = mpsc::sync_channel::<()>(threads * 2);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let workers = (0..threads)
            .map(|_| {
                let (rx, tx) = (job_rx.clone(), done_tx.clone());
                std::thread::spawn(move || {
                    loop {
                        let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        let Ok((seq, data)) = job else { return };
                        if tx.send((seq, compress_chunk(&data))).is_err() {
                            return;
                        }
                    }
                })
            })
            .collect();
        drop(done_tx);
        let writer = std::thread::spawn(move || write_in_order(sink, done_rx, token_rx));
        ParallelGzip {
            buf: Vec::with_capacity(CHUNK),
            jobs: Some(jobs),
            tokens,
            workers,
            writer: Some(writer),
            sent: 0,
        }
    }

    fn dispatch(&mut self) -> io::Result<()> {
        // Waits while enough chunks are in flight; fails once the writer has given up.
        if self.tokens.send(()).is_err() {
            return Err(self.writer_error());
        }
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        let jobs = self.jobs.as_ref().ok_or_else(|| io::Error::other("compression already finished"))?;
        jobs.send((self.sent, data)).map_err(|_| io::Error::other("compression workers stopped"))?;
        self.sent += 1;
        Ok(())
    }

    /// The writer thread's error, once it has stopped early.
    fn writer_error(&mut self) -> io::Error {
        match self.writer.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) => e,
            _ => io::Error::other("the compressed stream's writer stopped"),
        }
    }

    /// Compresses what is buffered, writes every member, and returns the sink.
    pub fn finish(mut self) -> io::Result<M> {
        if !self.buf.is_empty() || self.sent == 0 {
            self.dispatch()?;
        }
        self.jobs = None;
        // A worker that panicked lost its chunk: the writer, which ends when the workers do,
        // would return a stream without it (and without what follows).
        let mut lost = false;
        for w in self.workers.drain(..) {
            lost |= w.join().is_err();
        }
        match self.writer.take().map(JoinHandle::join) {
            Some(Ok(_)) if lost => Err(io::Error::other("a compression worker panicked")),
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(io::Error::other("the compressed stream's writer panicked")),
            None => Err(io::Error::other("the compressed stream's writer stopped")),
        }
    }
}

/// The writer thread: members in sequence order into `sink`, a token back for each.
fn write_in_order<M: Members>(mut sink: M, done: mpsc::Receiver<Done>, tokens: mpsc::Receiver<()>) -> io::Result<M> {
    let mut ready = BTreeMap::new();
    let mut next = 0u64;
    for (seq, out) in done {
        ready.insert(seq, out?);
        while let Some(out) = ready.remove(&next) {
            sink.member(out)?;
            next += 1;
            // Fails once the stream is finished or dropped, when no one waits for tokens.
            let _ = tokens.recv();
        }
    }
    Ok(sink)
}

impl<M: Members> Write for ParallelGzip<M> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.dispatch()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn roundtrip(data: &[u8]) -> Vec<u8> {
        let mut gz = ParallelGzip::new(Vec::new());
        for part in data.chunks(300_000) {
            gz.write_all(part).unwrap();
        }
        gz.finish().unwrap()
    }

    fn gunzip(gz: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(gz).read_to_end(&mut out).unwrap();
        out
    }

    fn noise(data: &mut [u8]) {
        let mut x = 0x9e3779b97f4a7c15u64;
        for b in data.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
    }

    #[test]
    fn members_decompress_to_the_input_and_are_deterministic() {
        let mut data: Vec<u8> = (0..3_500_000u32).map(|i| (i % 251) as u8).collect();
        // An incompressible stretch, stored rather than deflated.
        noise(&mut data[1_200_000..2_400_000]);
        let gz = roundtrip(&data);
        assert_eq!(gz, roundtrip(&data), "the same input gives the same blob");
        assert_eq!(gunzip(&gz), data);
        assert!(gz.len() < data.len(), "the regular part still shrinks");
        assert!(gunzip(&roundtrip(&[])).is_empty());
    }

    #[test]
    fn stored_members_are_gzip_for_every_block_boundary() {
        for n in [0, 1, STORED_BLOCK - 1, STORED_BLOCK, STORED_BLOCK + 1, 3 * STORED_BLOCK, CHUNK] {
            let mut data = vec![0u8; n];
            noise(&mut data);
            let gz = stored_member(&data);
            assert_eq!(gunzip(&gz), data, "{n} bytes");
            // zlib's own check of the member, trailer included.
            let mut one = Vec::new();
            flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut one).unwrap();
            assert_eq!(one.len(), n);
        }
        let mut random = vec![0u8; 2 * CHUNK + 5];
        noise(&mut random);
        let gz = roundtrip(&random);
        assert_eq!(gunzip(&gz), random);
        assert!(gz.len() < random.len() + 1024, "incompressible data is stored, not inflated");
    }

    /// A sink that fails after its first member, as an upload cut off does.
    struct Failing(usize);

    impl Members for Failing {
        fn member(&mut self, _: Vec<u8>) -> io::Result<()> {
            self.0 += 1;
            if self.0 > 1 { Err(io::Error::new(io::ErrorKind::BrokenPipe, "upload cut off")) } else { Ok(()) }
        }
    }

    #[test]
    fn a_failing_sink_stops_the_writer_with_its_error() {
        let mut gz = ParallelGzip::new(Failing(0));
        let chunk = vec![7u8; CHUNK];
        let mut err = None;
        for _ in 0..64 {
            if let Err(e) = gz.write_all(&chunk) {
                err = Some(e);
                break;
            }
        }
        let e = match err {
            Some(e) => e,
            None => gz.finish().err().expect("the stream cannot finish"),
        };
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe, "{e}");
    }
}
