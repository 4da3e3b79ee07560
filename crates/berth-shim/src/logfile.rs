//! The json-file log: one JSON object per line, `{"log":"…\n","stream":"stdout","time":"…"}`,
//! the format Docker writes (and tools like Fluent Bit read). Rotated files are named
//! `<name>.1` (newest) to `<name>.<max_files-1>` (oldest), gzipped as `<name>.N.gz` when
//! compression is on (`--log-opt compress=true`, and always for the `local` driver).
//!
//! With a remote driver (`syslog`, `journald`, `gelf`, `fluentd`) every line also goes to
//! its [`Sink`], and the file is Docker's dual-logging cache (unless `cache-disabled`).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use rustix::event::PollFlags;

use crate::proto::LogOptions;
use crate::sinks::{Message, Partial, Sink};

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
    /// The remote driver, if any.
    sink: Option<Sink>,
    /// Per stream, the line being sent in pieces to the sink: its ID and the pieces so far.
    pieces: [Option<(String, u32)>; 2],
    /// Numbers the pieced lines' IDs.
    pieced: u64,
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    PathBuf::from(format!("{}.{n}", path.display()))
}

fn rotated_gz(path: &Path, n: u32) -> PathBuf {
    PathBuf::from(format!("{}.{n}.gz", path.display()))
}

/// Held while the writer renames a log's files in rotation (exclusive) and while a reader
/// lists and opens them (shared): a listing taken mid-rotation would have a gap and end
/// early, or name a file twice. It locks the log's directory, so no lock file sits beside
/// logs in a directory someone else manages (kubelet's), and is released on drop.
pub struct RotationLock {
    _dir: File,
}

impl RotationLock {
    fn take(path: &Path, op: rustix::fs::FlockOperation) -> Option<RotationLock> {
        let dir = File::open(path.parent()?).ok()?;
        loop {
            match rustix::fs::flock(&dir, op) {
                Ok(()) => return Some(RotationLock { _dir: dir }),
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => return None,
            }
        }
    }

    /// The writer's: no reader lists the files until the rotation is done.
    pub fn exclusive(path: &Path) -> Option<RotationLock> {
        Self::take(path, rustix::fs::FlockOperation::LockExclusive)
    }

    /// A reader's, for listing and opening the files (microseconds; never while reading).
    pub fn shared(path: &Path) -> Option<RotationLock> {
        Self::take(path, rustix::fs::FlockOperation::LockShared)
    }
}

/// A log file opened for reading: its name, and whether it is gzipped.
pub struct Opened {
    pub path: PathBuf,
    pub file: File,
}

impl Opened {
    pub fn is_gz(&self) -> bool {
        self.path.extension().is_some_and(|e| e == "gz")
    }

    /// A reader from `offset` (plain files; a gzipped one is decompressed from its start).
    pub fn reader(&self, offset: u64) -> io::Result<Box<dyn Read + Send>> {
        let mut f = self.file.try_clone()?;
        if self.is_gz() {
            io::Seek::rewind(&mut f)?;
            Ok(Box::new(flate2::read::GzDecoder::new(BufReader::new(f))))
        } else {
            io::Seek::seek(&mut f, io::SeekFrom::Start(offset))?;
            Ok(Box::new(f))
        }
    }
}

/// The rotated files of a log, oldest first, and the one being written, all opened at one
/// moment (under [`RotationLock::shared`]): each is the file it was named as then, whatever
/// the writer renames afterwards.
pub fn open_all(path: &Path) -> (Vec<Opened>, Option<File>) {
    let _lock = RotationLock::shared(path);
    let rotated = files(path)
        .into_iter()
        .filter(|f| f != path)
        .filter_map(|f| File::open(&f).ok().map(|file| Opened { path: f, file }))
        .collect();
    (rotated, File::open(path).ok())
}

/// Opens a log file for reading, decompressing a rotated `.gz` one.
pub fn open(path: &Path) -> io::Result<Box<dyn Read + Send>> {
    let f = File::open(path)?;
    if path.extension().is_some_and(|e| e == "gz") {
        Ok(Box::new(flate2::read::GzDecoder::new(BufReader::new(f))))
    } else {
        Ok(Box::new(f))
    }
}

/// Log files are root's, readable by its group (0640), as dockerd makes them: a container's
/// output can hold what should stay secret.
const LOG_MODE: u32 = 0o640;

/// Opens (creating with [`LOG_MODE`]) a log file for appending; `truncate` starts it over.
/// A symlink at the last component is not followed: a CRI log's directory is kubelet's, and a
/// link planted there must not make the shim write (as root) wherever it points.
fn open_log(path: &Path, truncate: bool) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut o = OpenOptions::new();
    o.create(true).mode(LOG_MODE).custom_flags(libc::O_NOFOLLOW);
    if truncate {
        o.write(true).truncate(true);
    } else {
        o.append(true);
    }
    o.open(path)
}

/// Opens the writer's own file for appending: at its path, or, for a log kept beneath a
/// directory (the CRI's), reached from that directory with no symlink on the way
/// ([`crate::beneath`]).
fn open_own(opts: &LogOptions) -> io::Result<File> {
    let Some(root) = &opts.beneath else { return open_log(&opts.path, false) };
    let rel = opts.path.strip_prefix(root).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the log {} is not in its directory {}", opts.path.display(), root.display()),
        )
    })?;
    let flags = rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::APPEND | rustix::fs::OFlags::CREATE;
    crate::beneath::open(root, rel, flags, LOG_MODE)
}

/// A rotation step that failed goes to the shim's log (its stderr, which the daemon passes
/// on): the files may then outgrow `max-size`/`max-file`. A missing file is no failure: of
/// the numbered files only some exist (plain or compressed, and not yet all of them).
fn note(what: &str, file: &Path, r: io::Result<()>) {
    if let Err(e) = r
        && e.kind() != io::ErrorKind::NotFound
    {
        eprintln!("berth-shim: rotating the log: {what} {}: {e}", file.display());
    }
}

/// Gzips the log's rotated file `from` into `to` (through a temporary name, so a reader
/// never sees half a file) and removes `from`. Only the final rename and removal hold the
/// rotation lock: readers wait microseconds, not for gzip.
fn compress(log: &Path, from: &Path, to: &Path) -> io::Result<()> {
    let tmp = PathBuf::from(format!("{}.tmp", to.display()));
    let mut r = File::open(from)?;
    let mut w = flate2::write::GzEncoder::new(open_log(&tmp, true)?, flate2::Compression::fast());
    io::copy(&mut r, &mut w)?;
    w.finish()?.sync_all()?;
    let _lock = RotationLock::exclusive(log);
    fs::rename(&tmp, to)?;
    fs::remove_file(from)
}

impl LogWriter {
    /// Opens the file and connects the remote driver; an error (a collector Docker's driver
    /// would fail to reach at start) is the start's.
    pub fn open(opts: LogOptions) -> io::Result<LogWriter> {
        let sink = match &opts.remote {
            Some(r) => Some(crate::sinks::open(&opts.driver, r).map_err(io::Error::other)?),
            None => None,
        };
        let file = if opts.driver == "none" || opts.no_file { None } else { Some(open_own(&opts)?) };
        let size = file.as_ref().and_then(|f| f.metadata().ok()).map(|m| m.len()).unwrap_or(0);
        Ok(LogWriter { opts, file, size, partial: [Vec::new(), Vec::new()], sink, pieces: [None, None], pieced: 0 })
    }

    /// What the remote driver's socket waits for, if anything.
    pub fn sink_interest(&self) -> Option<(std::os::fd::BorrowedFd<'_>, PollFlags)> {
        self.sink.as_ref()?.interest()
    }

    /// The remote driver's socket is ready.
    pub fn sink_ready(&mut self, flags: PollFlags) {
        if let Some(s) = self.sink.as_mut() {
            s.ready(flags);
        }
    }

    /// Reconnects the remote driver when due; `Some` while a retry is pending.
    pub fn sink_tick(&mut self, now: std::time::Instant) -> Option<std::time::Instant> {
        self.sink.as_mut()?.tick(now)
    }

    /// Everything logged has left (always, without a remote driver).
    pub fn drained(&self) -> bool {
        self.sink.as_ref().is_none_or(|s| s.drained())
    }

    /// At the shim's end: what was dropped goes to its log.
    pub fn close(&mut self) {
        if let Some(s) = self.sink.as_mut() {
            s.report_drops(true);
        }
    }

    /// Goes on in a new file at the same path, as a log rotated by someone else (kubelet)
    /// needs; with no log there is nothing to do.
    pub fn reopen(&mut self) -> io::Result<()> {
        if self.file.is_none() {
            return Ok(());
        }
        let f = open_own(&self.opts)?;
        self.size = f.metadata().map(|m| m.len()).unwrap_or(0);
        self.file = Some(f);
        Ok(())
    }

    /// Whether output is kept anywhere (false for the `none` driver).
    pub fn keeps_output(&self) -> bool {
        self.file.is_some() || self.sink.is_some()
    }

    /// Takes output of stream 1 (stdout) or 2 (stderr) and logs every complete line.
    pub fn write(&mut self, stream: u8, data: &[u8]) {
        if !self.keeps_output() {
            return;
        }
        let i = if stream == 2 { 1 } else { 0 };
        let mut buf = std::mem::take(&mut self.partial[i]);
        buf.extend_from_slice(data);
        let mut start = 0;
        while let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') {
            let end = start + nl + 1;
            // A line longer than MAX_LINE is cut however it arrived (in one read or many).
            while end - start > MAX_LINE {
                self.entry(stream, &buf[start..start + MAX_LINE], false);
                start += MAX_LINE;
            }
            self.entry(stream, &buf[start..end], true);
            start = end;
        }
        while buf.len() - start >= MAX_LINE {
            self.entry(stream, &buf[start..start + MAX_LINE], false);
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
                self.entry(stream, &rest, true);
            }
        }
    }

    /// One entry; `full` says the line ends here (a newline, or the end of the stream) rather
    /// than being cut at [`MAX_LINE`].
    fn entry(&mut self, stream: u8, line: &[u8], full: bool) {
        if self.sink.is_some() {
            self.send_to_sink(stream, line, full);
        }
        if self.file.is_none() {
            return;
        }
        let out = if self.opts.driver == "cri" { cri_line(stream, line, full) } else { json_line(stream, line) };
        // A log kept beneath a directory of someone else's is theirs to rotate (kubelet's).
        let rotates = self.opts.max_size > 0 && self.opts.beneath.is_none();
        if rotates && self.size > 0 && self.size + out.len() as u64 > self.opts.max_size {
            self.rotate();
        }
        if let Some(f) = self.file.as_mut()
            && f.write_all(&out).is_ok()
        {
            self.size += out.len() as u64;
        }
    }

    /// Sends a line (without its newline) or a piece of one, with Docker's partial
    /// metadata: pieces of one line share an ID, numbered from 1, the last one marked.
    fn send_to_sink(&mut self, stream: u8, line: &[u8], full: bool) {
        let i = if stream == 2 { 1 } else { 0 };
        let partial = if !full {
            if self.pieces[i].is_none() {
                self.pieced += 1;
                self.pieces[i] = Some((format!("{:x}-{}-{}", std::process::id(), self.pieced, stream), 0));
            }
            self.pieces[i].as_mut().map(|(id, n)| {
                *n += 1;
                Partial { id: id.clone(), ordinal: *n, last: false }
            })
        } else {
            self.pieces[i].take().map(|(id, n)| Partial { id, ordinal: n + 1, last: true })
        };
        let body = if full { line.strip_suffix(b"\n").unwrap_or(line) } else { line };
        let m = Message { stream, line: body, time: berth_api::time::now_nanos(), partial };
        if let Some(s) = self.sink.as_mut() {
            s.send(&m);
        }
    }

    fn rotate(&mut self) {
        let keep = self.opts.max_files.max(1);
        let p = self.opts.path.clone();
        let lock = RotationLock::exclusive(&p);
        if keep == 1 {
            // Only one file: a new one in its place. Not truncated in place: a follower
            // holding the file at its offset would read nothing more, ever; the old one
            // stays readable to whoever holds it, and its end is what a follower sees
            // before it moves on to the new file.
            note("removing", &p, fs::remove_file(&p));
            if let Ok(f) = open_log(&p, false) {
                self.file = Some(f);
                self.size = 0;
            }
            return;
        }
        let oldest = [rotated(&p, keep - 1), rotated_gz(&p, keep - 1)];
        for f in oldest {
            note("removing", &f, fs::remove_file(&f));
        }
        for n in (1..keep - 1).rev() {
            note("renaming", &rotated(&p, n), fs::rename(rotated(&p, n), rotated(&p, n + 1)));
            note("renaming", &rotated_gz(&p, n), fs::rename(rotated_gz(&p, n), rotated_gz(&p, n + 1)));
        }
        note("renaming", &p, fs::rename(&p, rotated(&p, 1)));
        if let Ok(f) = open_log(&p, false) {
            self.file = Some(f);
            self.size = 0;
        }
        drop(lock);
        if self.opts.compress {
            // Synchronous (the next rotation renames `.1`): a rotated file is at most
            // max-size, and gzip's fastest level takes milliseconds for it; a failure leaves
            // the plain file, still readable (and a line in the shim's log).
            note("compressing", &rotated(&p, 1), compress(&p, &rotated(&p, 1), &rotated_gz(&p, 1)));
        }
    }
}

fn json_line(stream: u8, line: &[u8]) -> Vec<u8> {
    let e = Entry {
        log: String::from_utf8_lossy(line).into_owned(),
        stream: if stream == 2 { "stderr".into() } else { "stdout".into() },
        time: berth_api::time::rfc3339_nanos(berth_api::time::now_nanos()),
    };
    let mut out = serde_json::to_vec(&e).unwrap_or_default();
    out.push(b'\n');
    out
}

/// The CRI's log format, which kubelet reads: `<RFC3339Nano> <stream> <F|P> <content>\n`, the
/// content without its newline; `P` marks a piece of a line continued in the next entry.
fn cri_line(stream: u8, line: &[u8], full: bool) -> Vec<u8> {
    let body = line.strip_suffix(b"\n").unwrap_or(line);
    let mut out = format!(
        "{} {} {} ",
        berth_api::time::rfc3339_nanos(berth_api::time::now_nanos()),
        if stream == 2 { "stderr" } else { "stdout" },
        if full { "F" } else { "P" }
    )
    .into_bytes();
    out.extend_from_slice(body);
    out.push(b'\n');
    out
}

/// Every log file of a container, oldest first.
pub fn files(path: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut n = 1;
    loop {
        let (plain, gz) = (rotated(path, n), rotated_gz(path, n));
        if plain.exists() {
            out.push(plain);
        } else if gz.exists() {
            out.push(gz);
        } else {
            break;
        }
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
        if let Ok(file) = open(&f) {
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
        let mut w = LogWriter::open(LogOptions {
            driver: "json-file".into(),
            path: path.clone(),
            max_size: 200,
            max_files: 3,
            compress: false,
            ..Default::default()
        })
        .unwrap();
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

    #[test]
    fn compressed_rotations_are_gzipped_and_read_back_in_order() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("c-json.log");
        let mut w = LogWriter::open(LogOptions {
            driver: "local".into(),
            path: path.clone(),
            max_size: 300,
            max_files: 4,
            compress: true,
            ..Default::default()
        })
        .unwrap();
        for i in 0..60 {
            w.write(1, format!("line {i}\n").as_bytes());
        }
        let fs = files(&path);
        assert_eq!(fs.len(), 4, "{fs:?}");
        assert!(fs[..3].iter().all(|f| f.extension().is_some_and(|e| e == "gz")), "{fs:?}");
        assert!(!d.path().join("c-json.log.1").exists() && !d.path().join("c-json.log.4.gz").exists());
        let all = read_all(&path);
        assert_eq!(all.last().unwrap().log, "line 59\n");
        let first: u32 = all[0].log.trim().trim_start_matches("line ").parse().unwrap();
        for (i, e) in all.iter().enumerate() {
            assert_eq!(e.log, format!("line {}\n", first + i as u32));
        }
    }

    #[test]
    fn cri_lines_carry_time_stream_and_tag() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("0.log");
        let mut w =
            LogWriter::open(LogOptions { driver: "cri".into(), path: path.clone(), ..Default::default() }).unwrap();
        w.write(1, b"one\ntw");
        w.write(2, b"err\n");
        w.write(1, &vec![b'x'; MAX_LINE + 3]);
        w.flush();
        // A long line cut the same when it comes in one piece.
        let mut long = vec![b'y'; MAX_LINE + 2];
        long.push(b'\n');
        w.write(2, &long);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<(&str, &str, &str)> = text
            .lines()
            .map(|l| {
                let mut p = l.splitn(4, ' ');
                let t = p.next().unwrap();
                assert!(berth_api::time::parse_rfc3339(t).is_some(), "{t}");
                (p.next().unwrap(), p.next().unwrap(), p.next().unwrap_or(""))
            })
            .collect();
        assert_eq!(lines.len(), 6, "{text}");
        assert_eq!((lines[4].0, lines[4].1, lines[4].2.len()), ("stderr", "P", MAX_LINE));
        assert_eq!(lines[5], ("stderr", "F", "yy"));
        assert_eq!(lines[0], ("stdout", "F", "one"));
        assert_eq!(lines[1], ("stderr", "F", "err"));
        assert_eq!((lines[2].0, lines[2].1, lines[2].2.len()), ("stdout", "P", MAX_LINE));
        assert!(lines[2].2.starts_with("twx"));
        // "tw" and MAX_LINE + 3 x's: the first piece is MAX_LINE long, five x's are left.
        assert_eq!(lines[3], ("stdout", "F", "xxxxx"));
    }
}
