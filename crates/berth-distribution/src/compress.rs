//! Layer compression for pushes: gzip in independent 1 MiB members, made on every core.
//!
//! The output is a multi-member gzip stream (RFC 1952 allows concatenated members; Go's
//! `compress/gzip`, which Docker and containerd use, zlib and berth's own reader all read
//! it as one stream). Each chunk is compressed on its own, so chunks go to worker threads
//! and come back in order. A chunk whose first 64 KiB do not shrink at the fastest level
//! (random or already compressed data) is stored instead of deflated: deflating it would
//! cost several times the upload and gain nothing. The decision depends only on the chunk's
//! bytes, so the same layer always compresses to the same blob (and the same digest).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

const CHUNK: usize = 1 << 20;
const SAMPLE: usize = 64 << 10;

type Job = (u64, Vec<u8>);
type Done = (u64, io::Result<Vec<u8>>);

fn compress_chunk(data: &[u8]) -> io::Result<Vec<u8>> {
    let level = if data.len() >= SAMPLE {
        let mut probe = flate2::write::DeflateEncoder::new(Vec::with_capacity(SAMPLE), flate2::Compression::fast());
        probe.write_all(&data[..SAMPLE])?;
        let n = probe.finish()?.len();
        if n * 100 > SAMPLE * 97 { flate2::Compression::none() } else { flate2::Compression::fast() }
    } else {
        flate2::Compression::fast()
    };
    let mut gz = flate2::write::GzEncoder::new(Vec::with_capacity(data.len() / 2 + 64), level);
    gz.write_all(data)?;
    gz.finish()
}

/// A `Write` that gzips what it is given onto `inner` (see the module docs). Call
/// [`ParallelGzip::finish`] to end the stream.
pub struct ParallelGzip<W: Write> {
    inner: W,
    buf: Vec<u8>,
    jobs: Option<mpsc::Sender<Job>>,
    done: mpsc::Receiver<Done>,
    workers: Vec<JoinHandle<()>>,
    sent: u64,
    written: u64,
    ready: BTreeMap<u64, Vec<u8>>,
    max_in_flight: usize,
}

impl<W: Write> ParallelGzip<W> {
    pub fn new(inner: W) -> ParallelGzip<W> {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 4);
        let (jobs, job_rx) = mpsc::channel::<Job>();
        let (done_tx, done) = mpsc::channel::<Done>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let workers = (0..threads)
            .map(|_| {
                let (rx, tx) = (job_rx.clone(), done_tx.clone());
                std::thread::spawn(move || loop {
                    let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    let Ok((seq, data)) = job else { return };
                    if tx.send((seq, compress_chunk(&data))).is_err() {
                        return;
                    }
                })
            })
            .collect();
        ParallelGzip { inner, buf: Vec::with_capacity(CHUNK), jobs: Some(jobs), done, workers, sent: 0, written: 0, ready: BTreeMap::new(), max_in_flight: threads * 2 }
    }

    fn dispatch(&mut self) -> io::Result<()> {
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        let jobs = self.jobs.as_ref().ok_or_else(|| io::Error::other("compression already finished"))?;
        jobs.send((self.sent, data)).map_err(|_| io::Error::other("compression workers stopped"))?;
        self.sent += 1;
        while self.sent - self.written >= self.max_in_flight as u64 {
            self.collect_one()?;
        }
        Ok(())
    }

    /// Waits for one finished chunk and writes out whatever is now in order.
    fn collect_one(&mut self) -> io::Result<()> {
        let (seq, out) = self.done.recv().map_err(|_| io::Error::other("compression workers stopped"))?;
        self.ready.insert(seq, out?);
        while let Some(out) = self.ready.remove(&self.written) {
            self.inner.write_all(&out)?;
            self.written += 1;
        }
        Ok(())
    }

    /// Compresses what is buffered, writes every member, and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.buf.is_empty() || self.sent == 0 {
            self.dispatch()?;
        }
        self.jobs = None;
        while self.written < self.sent {
            self.collect_one()?;
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for ParallelGzip<W> {
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

    #[test]
    fn members_decompress_to_the_input_and_are_deterministic() {
        let mut data: Vec<u8> = (0..3_500_000u32).map(|i| (i % 251) as u8).collect();
        // An incompressible stretch, stored rather than deflated.
        let mut x = 0x9e3779b97f4a7c15u64;
        for b in data[1_200_000..2_400_000].iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        let gz = roundtrip(&data);
        assert_eq!(gz, roundtrip(&data), "the same input gives the same blob");
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&gz[..]).read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
        assert!(gz.len() < data.len(), "the regular part still shrinks");
        let mut empty = Vec::new();
        flate2::read::MultiGzDecoder::new(&roundtrip(&[])[..]).read_to_end(&mut empty).unwrap();
        assert!(empty.is_empty());
    }
}
