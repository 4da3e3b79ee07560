//! Reading a json-file log without holding it in memory: `--tail N` is found by scanning
//! back from the end of the files (newest first), and everything from there on is
//! streamed a line at a time. As in Docker, `--tail` counts lines before the stream and
//! time filters apply.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::FileExt;

use berth_shim::logfile::{Entry, Opened};

/// How much is read at a time, back or forth.
const CHUNK: usize = 64 * 1024;

/// Where the output starts: the file (an index into the rotated files; their count for the
/// file being written), the byte offset in it (plain files) and how many lines to skip from
/// there (compressed ones, which cannot seek).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Start {
    pub index: usize,
    pub offset: u64,
    pub skip_lines: u64,
}

/// Scans `f` back from its end for the start of its `n`-th last complete line. A last line
/// without its newline (still being written) is not counted. `Ok(offset)` when found,
/// `Err(lines)` with the number of complete lines when the file has fewer than `n` + 1.
fn scan_back(f: &File, n: usize) -> io::Result<Result<u64, usize>> {
    let mut pos = f.metadata()?.len();
    let mut buf = vec![0u8; CHUNK];
    let mut newlines = 0usize;
    while pos > 0 {
        let len = (pos as usize).min(CHUNK);
        pos -= len as u64;
        f.read_exact_at(&mut buf[..len], pos)?;
        for (i, b) in buf[..len].iter().enumerate().rev() {
            if *b == b'\n' {
                newlines += 1;
                if newlines == n + 1 {
                    return Ok(Ok(pos + i as u64 + 1));
                }
            }
        }
    }
    Ok(Err(newlines))
}

/// Counts the lines of a (compressed) file by reading it through.
fn count_lines(mut r: impl Read) -> io::Result<usize> {
    let mut buf = vec![0u8; CHUNK];
    let mut n = 0;
    loop {
        let got = r.read(&mut buf)?;
        if got == 0 {
            return Ok(n);
        }
        n += buf[..got].iter().filter(|b| **b == b'\n').count();
    }
}

/// Finds where the last `n` lines of the `rotated` files (oldest first) and `current`, the
/// file being written, start.
pub(crate) fn tail_start(rotated: &[Opened], current: Option<&File>, n: usize) -> Start {
    let mut need = n;
    if let Some(c) = current {
        match scan_back(c, need) {
            Ok(Ok(offset)) => return Start { index: rotated.len(), offset, skip_lines: 0 },
            Ok(Err(count)) => need -= count.min(need),
            Err(_) => {}
        }
    }
    for (index, f) in rotated.iter().enumerate().rev() {
        let found = if f.is_gz() {
            match f.reader(0).and_then(count_lines) {
                Ok(count) if count >= need => {
                    return Start { index, offset: 0, skip_lines: (count - need) as u64 };
                }
                Ok(count) => Ok(Err(count)),
                Err(e) => Err(e),
            }
        } else {
            scan_back(&f.file, need)
        };
        match found {
            Ok(Ok(offset)) => return Start { index, offset, skip_lines: 0 },
            Ok(Err(count)) => need -= count.min(need),
            // Unreadable (damaged): the older ones follow on.
            Err(_) => continue,
        }
    }
    Start::default()
}

/// How much of a file [`first_line`] reads at most: an entry is one line of at most 16 KiB
/// of output, escaped.
pub(crate) const FIRST_LINE_MAX: u64 = 256 * 1024;

/// The first complete line of `r` (read up to [`FIRST_LINE_MAX`]).
pub(crate) fn first_line(r: impl Read) -> Option<Vec<u8>> {
    let mut line = Vec::new();
    BufReader::new(r.take(FIRST_LINE_MAX)).read_until(b'\n', &mut line).ok()?;
    line.ends_with(b"\n").then_some(line)
}

/// What to do after an entry.
pub(crate) enum Flow {
    More,
    Stop,
}

/// Streams the complete lines of a rotated (finished) file from `start`, an entry at a time.
pub(crate) fn stream_file(f: &Opened, offset: u64, skip_lines: u64, emit: &mut dyn FnMut(Entry) -> Flow) -> Flow {
    let Ok(r) = f.reader(offset) else { return Flow::More };
    let mut r = BufReader::with_capacity(CHUNK, r);
    let mut line = Vec::new();
    let mut skipped = 0u64;
    loop {
        line.clear();
        match r.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return Flow::More,
            Ok(_) => {}
        }
        if skipped < skip_lines {
            skipped += 1;
            continue;
        }
        if let Ok(e) = serde_json::from_slice::<Entry>(&line)
            && let Flow::Stop = emit(e)
        {
            return Flow::Stop;
        }
    }
}

/// Reads what `f` has past its position (a chunk at a time), passing each complete line to
/// `emit`; an unterminated last line stays in `partial` for the next call. Returns whether
/// anything was read, or `Err(())` when `emit` asked to stop (what is left stays in
/// `partial`, for a next call to go on with).
pub(crate) fn drain(f: &mut dyn Read, partial: &mut Vec<u8>, emit: &mut dyn FnMut(Entry) -> Flow) -> Result<bool, ()> {
    let mut buf = vec![0u8; CHUNK];
    let mut got = false;
    loop {
        let mut used = 0;
        while let Some(nl) = partial[used..].iter().position(|&b| b == b'\n') {
            let line = &partial[used..used + nl];
            used += nl + 1;
            if let Ok(e) = serde_json::from_slice::<Entry>(line)
                && let Flow::Stop = emit(e)
            {
                partial.drain(..used);
                return Err(());
            }
        }
        partial.drain(..used);
        let n = match f.read(&mut buf) {
            Ok(0) | Err(_) => return Ok(got),
            Ok(n) => n,
        };
        got = true;
        partial.extend_from_slice(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn entry(i: usize) -> Vec<u8> {
        let e = Entry { log: format!("line {i}\n"), stream: "stdout".into(), time: "2026-01-01T00:00:00Z".into() };
        let mut v = serde_json::to_vec(&e).unwrap();
        v.push(b'\n');
        v
    }

    fn collect(path: &std::path::Path, n: Option<usize>) -> Vec<String> {
        let (rotated, current) = berth_shim::logfile::open_all(path);
        let start = match n {
            Some(n) => tail_start(&rotated, current.as_ref(), n),
            None => Start::default(),
        };
        let mut out = Vec::new();
        let mut emit = |e: Entry| {
            out.push(e.log.trim().to_string());
            Flow::More
        };
        for (i, f) in rotated.iter().enumerate().skip(start.index) {
            let (offset, skip) = if i == start.index { (start.offset, start.skip_lines) } else { (0, 0) };
            stream_file(f, offset, skip, &mut emit);
        }
        let mut c = current.unwrap();
        let offset = if start.index == rotated.len() { start.offset } else { 0 };
        std::io::Seek::seek(&mut c, std::io::SeekFrom::Start(offset)).unwrap();
        drain(&mut c, &mut Vec::new(), &mut emit).unwrap();
        out
    }

    #[test]
    fn tail_spans_plain_and_compressed_files_and_ignores_a_partial_line() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("c-json.log");
        // Oldest: .2.gz with lines 0..5, then .1 with 5..8, then the live file with 8..10
        // and half a line.
        let mut gz = flate2::write::GzEncoder::new(
            File::create(d.path().join("c-json.log.2.gz")).unwrap(),
            flate2::Compression::fast(),
        );
        gz.write_all(&(0..5).flat_map(entry).collect::<Vec<u8>>()).unwrap();
        gz.finish().unwrap();
        std::fs::write(d.path().join("c-json.log.1"), (5..8).flat_map(entry).collect::<Vec<u8>>()).unwrap();
        let mut live = (8..10).flat_map(entry).collect::<Vec<u8>>();
        live.extend_from_slice(b"{\"log\":\"half");
        std::fs::write(&path, live).unwrap();
        assert_eq!(berth_shim::logfile::files(&path).len(), 3);
        let all: Vec<String> = (0..10).map(|i| format!("line {i}")).collect();
        assert_eq!(collect(&path, None), all);
        for n in [0, 1, 2, 3, 4, 6, 8, 9, 10, 11, 100] {
            assert_eq!(collect(&path, Some(n)), all[10usize.saturating_sub(n)..].to_vec(), "tail {n}");
        }
    }
}
