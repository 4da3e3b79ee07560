//! The json-file log: one JSON object per line, `{"log":"…\n","stream":"stdout","time":"…"}`,
//! the format Docker writes (and tools like Fluent Bit read). Rotated files are named
//! `<name>.1` (newest) to `<name>.<max_files-1>` (oldest).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::proto::LogOptions;

/// Lines longer than this are split into several entries, as Docker does.
pub const MAX_LINE: usize = 16 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

pub struct LogWriter {
    opts: LogOptions,
    file: Option<File>,
    size: u64,
    /// Unterminated output per stream (stdout, stderr).
    partial: [Vec<u8>; 2],
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    PathBuf::from(format!("{}.{n}", path.display()))
}

impl LogWriter {
    pub fn open(opts: LogOptions) -> io::Result<LogWriter> {
        let file = if opts.driver == "none" {
            None
        } else {
            Some(OpenOptions::new().create(true).append(true).open(&opts.path)?)
        };
        let size = file.as_ref().and_then(|f| f.metadata().ok()).map(|m| m.len()).unwrap_or(0);
        Ok(LogWriter { opts, file, size, partial: [Vec::new(), Vec::new()] })
    }

    /// Takes output of stream 1 (stdout) or 2 (stderr) and logs every complete line.
    pub fn write(&mut self, stream: u8, data: &[u8]) {
        if self.file.is_none() {
            return;
        }
        let i = if stream == 2 { 1 } else { 0 };
        let mut buf = std::mem::take(&mut self.partial[i]);
        buf.extend_from_slice(data);
        let mut start = 0;
        while let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') {
            let end = start + nl + 1;
            self.entry(stream, &buf[start..end]);
            start = end;
        }
        while buf.len() - start >= MAX_LINE {
            self.entry(stream, &buf[start..start + MAX_LINE]);
            start += MAX_LINE;
        }
        buf.drain(..start);
        self.partial[i] = buf;
    }

    /// Logs what is left of unterminated lines (at the end of the stream).
    pub fn flush(&mut self) {
        for (i, stream) in [(0usize, 1u8), (1, 2)] {
            let rest = std::mem::take(&mut self.partial[i]);
            if !rest.is_empty() {
                self.entry(stream, &rest);
            }
        }
    }

    fn entry(&mut self, stream: u8, line: &[u8]) {
        let e = Entry {
            log: String::from_utf8_lossy(line).into_owned(),
            stream: if stream == 2 { "stderr".into() } else { "stdout".into() },
            time: berth_api::time::rfc3339_nanos(berth_api::time::now_nanos()),
        };
        let mut out = serde_json::to_vec(&e).unwrap_or_default();
        out.push(b'\n');
        if self.opts.max_size > 0 && self.size > 0 && self.size + out.len() as u64 > self.opts.max_size {
            self.rotate();
        }
        if let Some(f) = self.file.as_mut() {
            if f.write_all(&out).is_ok() {
                self.size += out.len() as u64;
            }
        }
    }

    fn rotate(&mut self) {
        let keep = self.opts.max_files.max(1);
        let p = self.opts.path.clone();
        if keep == 1 {
            // Only one file: start it over.
            if let Ok(f) = File::create(&p) {
                self.file = Some(f);
                self.size = 0;
            }
            return;
        }
        let _ = fs::remove_file(rotated(&p, keep - 1));
        for n in (1..keep - 1).rev() {
            let _ = fs::rename(rotated(&p, n), rotated(&p, n + 1));
        }
        let _ = fs::rename(&p, rotated(&p, 1));
        if let Ok(f) = OpenOptions::new().create(true).append(true).open(&p) {
            self.file = Some(f);
            self.size = 0;
        }
    }
}

/// Every log file of a container, oldest first.
pub fn files(path: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut n = 1;
    while rotated(path, n).exists() {
        out.push(rotated(path, n));
        n += 1;
    }
    out.reverse();
    if path.exists() {
        out.push(path.to_path_buf());
    }
    out
}

/// Parses entries from a reader, skipping damaged lines (a crash can cut the last one).
pub fn parse(r: impl io::Read) -> Vec<Entry> {
    BufReader::new(r)
        .split(b'\n')
        .filter_map(|l| l.ok())
        .filter_map(|l| serde_json::from_slice::<Entry>(&l).ok())
        .collect()
}

/// Every entry of a container's log, oldest first.
pub fn read_all(path: &Path) -> Vec<Entry> {
    let mut out = Vec::new();
    for f in files(path) {
        if let Ok(file) = File::open(&f) {
            out.extend(parse(file));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_logged_whole_and_rotated() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("c-json.log");
        let mut w = LogWriter::open(LogOptions { driver: "json-file".into(), path: path.clone(), max_size: 200, max_files: 3 }).unwrap();
        w.write(1, b"hel");
        w.write(1, b"lo\nwor");
        w.write(2, b"oops\n");
        w.write(1, b"ld\n");
        let all = read_all(&path);
        assert_eq!(all.iter().map(|e| e.log.as_str()).collect::<Vec<_>>(), vec!["hello\n", "oops\n", "world\n"]);
        assert_eq!(all[1].stream, "stderr");
        for i in 0..20 {
            w.write(1, format!("line {i}\n").as_bytes());
        }
        let fs = files(&path);
        assert_eq!(fs.len(), 3, "{fs:?}");
        let all = read_all(&path);
        assert_eq!(all.last().unwrap().log, "line 19\n");
        assert!(all.len() < 23, "old entries were rotated away");
        w.write(1, b"tail without newline");
        w.flush();
        assert_eq!(read_all(&path).last().unwrap().log, "tail without newline");
    }
}
