//! `docker logs`: reading a container's json-file log, and following it as it grows.

use std::io::{Read, Seek, SeekFrom};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;

use berth_shim::logfile::{self, Entry};
use bytes::Bytes;
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;

use crate::{ContainerError, ContainerService, Result};

mod read;

#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub stdout: bool,
    pub stderr: bool,
    /// Nanoseconds since the epoch.
    pub since: Option<i128>,
    pub until: Option<i128>,
    /// Only the last N lines (`--tail`).
    pub tail: Option<usize>,
    pub follow: bool,
}

#[derive(Debug, Clone)]
pub struct LogLine {
    /// 1 stdout, 2 stderr.
    pub stream: u8,
    pub time: String,
    pub data: Bytes,
}

fn to_line(e: Entry) -> LogLine {
    LogLine { stream: if e.stream == "stderr" { 2 } else { 1 }, time: e.time, data: Bytes::from(e.log.into_bytes()) }
}

fn wanted(opts: &LogOptions, e: &Entry) -> bool {
    let stream_ok = if e.stream == "stderr" { opts.stderr } else { opts.stdout };
    if !stream_ok {
        return false;
    }
    let t = berth_api::time::parse_rfc3339(&e.time).unwrap_or(0);
    opts.since.is_none_or(|s| t >= s) && opts.until.is_none_or(|u| t <= u)
}

/// The log as it is when asked for: every file open (so that nothing written between
/// reading and following is lost or repeated, and a rotation meanwhile changes nothing),
/// and, unless following, the current file's length then (a reader stops there, as
/// Docker's does).
struct Snapshot {
    rotated: Vec<logfile::Opened>,
    current: Option<std::fs::File>,
    limit: Option<u64>,
}

impl Snapshot {
    fn take(path: &std::path::Path, follow: bool) -> Snapshot {
        let (rotated, current) = logfile::open_all(path);
        let limit =
            if follow { None } else { Some(current.as_ref().and_then(|f| f.metadata().ok()).map_or(0, |m| m.len())) };
        Snapshot { rotated, current, limit }
    }
}

/// Sends the log as it was at the snapshot (from `--tail` on), blocking. Returns the open
/// current file and its unterminated last line, to follow on from; `None` when the reader
/// went away or `--until` was passed.
fn read_existing(
    snap: Snapshot,
    opts: &LogOptions,
    tx: &mpsc::Sender<LogLine>,
) -> Option<(Option<std::fs::File>, Vec<u8>)> {
    let Snapshot { rotated, mut current, limit } = snap;
    let start = match opts.tail {
        Some(n) => read::tail_start(&rotated, current.as_ref(), n),
        None => read::Start::default(),
    };
    let mut emit = |en: Entry| send_blocking(opts, tx, en);
    for (i, f) in rotated.iter().enumerate().skip(start.index) {
        let (offset, skip) = if i == start.index { (start.offset, start.skip_lines) } else { (0, 0) };
        if let read::Flow::Stop = read::stream_file(f, offset, skip, &mut emit) {
            return None;
        }
    }
    let mut partial = Vec::new();
    if let Some(c) = current.as_mut() {
        let offset = if start.index == rotated.len() { start.offset } else { 0 };
        c.seek(SeekFrom::Start(offset)).ok()?;
        let r = match limit {
            Some(l) => read::drain(&mut Read::take(&*c, l.saturating_sub(offset)), &mut partial, &mut emit),
            None => read::drain(c, &mut partial, &mut emit),
        };
        r.ok()?;
    }
    Some((current, partial))
}

/// Sends an entry the options want, blocking; `Stop` past `--until` or once the reader is gone.
fn send_blocking(opts: &LogOptions, tx: &mpsc::Sender<LogLine>, en: Entry) -> read::Flow {
    if opts.until.is_some_and(|u| berth_api::time::parse_rfc3339(&en.time).unwrap_or(0) > u) {
        return read::Flow::Stop;
    }
    if wanted(opts, &en) && tx.blocking_send(to_line(en)).is_err() {
        return read::Flow::Stop;
    }
    read::Flow::More
}

/// The files rotated after `held` (the file a follower read to its end) and before `next`
/// (the file it goes on with; oldest first), opened. Each of the two is found by inode or,
/// once compressed into a new file, by its first entry (entries carry nanosecond times):
/// `next` may itself have been rotated and compressed since the follower opened it, and
/// taking everything after `held` then read `next`'s lines twice. None when `held` is gone
/// altogether (rotated away as the oldest): its successors cannot be told apart then.
fn rotated_after(path: &std::path::Path, held: &std::fs::File, next: Option<&std::fs::File>) -> Vec<logfile::Opened> {
    let (mut rotated, _) = logfile::open_all(path);
    let Some(from) = find_rotated(&rotated, held) else { return Vec::new() };
    let to = next.and_then(|n| find_rotated(&rotated, n)).unwrap_or(rotated.len());
    if to <= from {
        return Vec::new();
    }
    rotated.truncate(to);
    rotated.split_off(from + 1)
}

/// Where the open log file `file` is among the rotated files: by inode, or by its first entry
/// once compressed into another file.
fn find_rotated(rotated: &[logfile::Opened], file: &std::fs::File) -> Option<usize> {
    let file_ino = file.metadata().ok()?.ino();
    let ino = |f: &logfile::Opened| f.file.metadata().ok().map(|m| m.ino());
    rotated.iter().position(|f| ino(f) == Some(file_ino)).or_else(|| {
        // Read at offset 0 without moving the follower's position in the file.
        let mut head = vec![0u8; read::FIRST_LINE_MAX as usize];
        let n = std::os::unix::fs::FileExt::read_at(file, &mut head, 0).ok()?;
        let first = read::first_line(&head[..n])?;
        rotated.iter().position(|f| f.reader(0).ok().and_then(read::first_line).as_ref() == Some(&first))
    })
}

#[allow(unsafe_code)]
fn register(fd: OwnedFd) -> std::io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: `fd` is an owned, open descriptor; AsyncFd takes ownership of it and it stays
    // open, naming the same inotify instance, until the AsyncFd is dropped.
    unsafe { AsyncFd::register(fd) }.map_err(|e| e.into())
}

/// Watches a directory for changes, as an async readiness source.
struct DirWatch {
    fd: AsyncFd<OwnedFd>,
}

impl DirWatch {
    fn new(dir: &std::path::Path) -> std::io::Result<DirWatch> {
        use rustix::fs::inotify;
        let fd = inotify::init(inotify::CreateFlags::NONBLOCK | inotify::CreateFlags::CLOEXEC)?;
        inotify::add_watch(
            &fd,
            dir,
            inotify::WatchFlags::MODIFY
                | inotify::WatchFlags::CREATE
                | inotify::WatchFlags::MOVED_TO
                | inotify::WatchFlags::CLOSE_WRITE,
        )?;
        Ok(DirWatch { fd: register(fd)? })
    }

    async fn changed(&self) {
        if let Ok(mut guard) = self.fd.readable().await {
            let mut buf = [0u8; 4096];
            loop {
                match rustix::io::read(self.fd.get_ref(), &mut buf) {
                    Ok(0) => break,
                    Ok(_) => continue,
                    Err(_) => break,
                }
            }
            guard.clear_ready();
        }
    }
}

impl ContainerService {
    /// Streams a container's log. The channel closes at the end (or, when following, once
    /// the container has stopped and everything it wrote has been sent).
    pub async fn logs(self: &Arc<Self>, id: &str, opts: LogOptions) -> Result<(bool, mpsc::Receiver<LogLine>)> {
        let e = self.get(id)?;
        let rec = e.record();
        let driver = if rec.host_config.log_config.kind.is_empty() {
            self.cfg.log_driver.clone()
        } else {
            rec.host_config.log_config.kind.clone()
        };
        // A remote driver is read back from its local cache, unless that is disabled.
        if !crate::log_config::keeps_file(&driver, &rec.host_config.log_config.config) {
            return Err(ContainerError::Invalid("configured logging driver does not support reading".into()));
        }
        let path = PathBuf::from(&rec.log_path);
        let (tx, rx) = mpsc::channel(256);
        let mut life = e.life.subscribe();
        tokio::spawn(async move {
            // What is there now, read on a blocking thread a line at a time (taking the
            // snapshot may wait for a rotation in progress).
            let (o, t, p) = (opts.clone(), tx.clone(), path.clone());
            let Ok(Some((mut current, mut partial))) =
                tokio::task::spawn_blocking(move || read_existing(Snapshot::take(&p, o.follow), &o, &t)).await
            else {
                return;
            };
            if !opts.follow {
                return;
            }
            let Some(dir) = path.parent() else { return };
            let Ok(watch) = DirWatch::new(dir) else { return };
            let mut ino = current.as_ref().and_then(|f| f.metadata().ok()).map(|m| m.ino());
            // Whether the held file was read to its end after its rotation was seen.
            let mut held_drained = false;
            loop {
                let stopped = !life.borrow_and_update().running;
                // Drain what the current file has, then switch files if it was rotated.
                loop {
                    let mut got = false;
                    if let Some(f) = current.as_mut() {
                        let mut lines = Vec::new();
                        let r = read::drain(&mut *f, &mut partial, &mut |en| {
                            lines.push(en);
                            if lines.len() >= 256 { read::Flow::Stop } else { read::Flow::More }
                        });
                        got = !matches!(r, Ok(false));
                        for en in lines {
                            if opts.until.is_some_and(|u| berth_api::time::parse_rfc3339(&en.time).unwrap_or(0) > u) {
                                return;
                            }
                            if wanted(&opts, &en) && tx.send(to_line(en)).await.is_err() {
                                return;
                            }
                        }
                    }
                    let now_ino = std::fs::metadata(&path).ok().map(|m| m.ino());
                    if !got && now_ino != ino && !held_drained {
                        // The writer may have added to the held file between the read
                        // above and its rename (after which it writes there no more):
                        // read the held file to its end once more before moving on.
                        held_drained = true;
                        continue;
                    }
                    if !got && now_ino != ino {
                        held_drained = false;
                        // Rotated. The file held was renamed, to `.1` or further on if
                        // the writer rotated more than once meanwhile: the files rotated
                        // after it come first (whole, each at most max-size), then the
                        // one being written.
                        let Some(next) = std::fs::File::open(&path).ok() else {
                            // Between the writer's rename and its new file: wait for it.
                            break;
                        };
                        let next_ino = next.metadata().ok().map(|m| m.ino());
                        // Streamed a line at a time, as the first read was: a rotated file
                        // is as large as max-size says.
                        let (o, t, p) = (opts.clone(), tx.clone(), path.clone());
                        let held = current.as_ref().and_then(|f| f.try_clone().ok());
                        let upto = next.try_clone().ok();
                        let all_sent = tokio::task::spawn_blocking(move || {
                            let files = held.map(|h| rotated_after(&p, &h, upto.as_ref())).unwrap_or_default();
                            files.iter().all(|f| {
                                matches!(
                                    read::stream_file(f, 0, 0, &mut |en| send_blocking(&o, &t, en)),
                                    read::Flow::More
                                )
                            })
                        })
                        .await
                        .unwrap_or(false);
                        if !all_sent {
                            return;
                        }
                        current = Some(next);
                        ino = next_ino;
                        partial.clear();
                        continue;
                    }
                    if !got {
                        break;
                    }
                }
                if stopped {
                    return;
                }
                tokio::select! {
                    _ = watch.changed() => {}
                    r = life.changed() => { if r.is_err() { return; } }
                    _ = tx.closed() => return,
                }
            }
        });
        Ok((rec.config.tty, rx))
    }
}
