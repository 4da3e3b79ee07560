//! Arbitrary bytes through berth-archive's streaming `TarReader` (headers, PAX and GNU
//! extensions, entry data), with no filesystem involved.
//!
//! Checks: nothing panics; the reader never hands out more content than the archive holds;
//! and the skeleton property layer reassembly depends on: for an archive read to its end,
//! the recorded raw bytes interleaved with the entries' contents are exactly the input.
//! The archive is read twice, through `data()` over a plain `Read` and through
//! `data_buf()`/`consume_data()` over a reader that lends 7 bytes at a time (as
//! `apply_buffered` reads a slow network stream); both must agree. Each input is read as
//! it is and again with its header checksums fixed (see `common/tarfix.rs`).
#![no_main]

use std::io::{self, BufRead, Read};

use berth_archive::header::{self, EntryType, Header};
use berth_archive::reader::TarReader;
use libfuzzer_sys::fuzz_target;

#[path = "common/tarfix.rs"]
mod tarfix;

/// What one pass saw: the entries and the reassembled stream, or the error's text.
type Outcome = (Vec<Header>, Result<Vec<u8>, String>);

/// A buffered reader that lends at most 7 bytes at a time.
struct Trickle<'a>(&'a [u8]);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.0.len()).min(7);
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

impl BufRead for Trickle<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        Ok(&self.0[..self.0.len().min(7)])
    }
    fn consume(&mut self, n: usize) {
        self.0 = &self.0[n..];
    }
}

fn read_plain(data: &[u8]) -> Outcome {
    let mut r = TarReader::new(data, true);
    let mut out = Vec::new();
    let mut entries = Vec::new();
    loop {
        match r.next_entry() {
            Ok(None) => break,
            Ok(Some(h)) => {
                out.extend(r.take_raw());
                let mut content = Vec::new();
                if let Err(e) = r.data().read_to_end(&mut content) {
                    return (entries, Err(format!("data: {e}")));
                }
                assert_eq!(content.len() as u64, h.size, "content length differs from the header's size");
                assert!(h.kind == EntryType::Regular || h.size == 0, "a non-file entry reports content");
                out.extend(content);
                entries.push(h);
            }
            Err(e) => return (entries, Err(e.to_string())),
        }
    }
    out.extend(r.take_raw());
    (entries, Ok(out))
}

fn read_buffered(data: &[u8]) -> Outcome {
    let mut r = TarReader::new(Trickle(data), true);
    let mut out = Vec::new();
    let mut entries = Vec::new();
    loop {
        match r.next_entry() {
            Ok(None) => break,
            Ok(Some(h)) => {
                out.extend(r.take_raw());
                let mut left = h.size;
                while left > 0 {
                    let piece = match r.data_buf() {
                        Ok(p) => p.to_vec(),
                        Err(e) => return (entries, Err(format!("data: {e}"))),
                    };
                    assert!(
                        !piece.is_empty() && piece.len() as u64 <= left,
                        "data_buf lent {} of {left} bytes",
                        piece.len()
                    );
                    r.consume_data(piece.len());
                    left -= piece.len() as u64;
                    out.extend(piece);
                }
                assert!(r.data_buf().is_ok_and(|b| b.is_empty()), "data_buf past the entry's end");
                entries.push(h);
            }
            Err(e) => return (entries, Err(e.to_string())),
        }
    }
    out.extend(r.take_raw());
    (entries, Ok(out))
}

fn check(data: &[u8]) {
    let (entries, plain) = read_plain(data);
    if let Ok(stream) = &plain {
        assert!(
            stream == data,
            "raw bytes + contents ({} bytes) differ from the {}-byte input",
            stream.len(),
            data.len()
        );
    }
    let (buffered_entries, buffered) = read_buffered(data);
    assert_eq!(entries, buffered_entries, "the two ways of reading saw different entries");
    assert_eq!(plain.is_ok(), buffered.is_ok(), "one way of reading failed: {plain:?} / {buffered:?}");
    if let Ok(stream) = &buffered {
        assert!(stream == data, "buffered: raw bytes + contents differ from the input");
    }
    // The header helpers on their own, over the first block.
    if let Ok(block) = <&[u8; header::BLOCK]>::try_from(data.get(..header::BLOCK).unwrap_or(&[])) {
        let _ = header::checksum_ok(block);
        let _ = header::parse_block(block);
    }
    let _ = header::parse_pax(data);
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let fixed = tarfix::fix_checksums(data);
    if fixed != data {
        check(&fixed);
    }
});
