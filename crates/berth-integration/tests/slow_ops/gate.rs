//! A FUSE filesystem served by the test itself, whose directory lookups and opens wait
//! until the test answers them. A task that touches it sleeps in the kernel, and the kernel
//! decides how long an operation on that task takes, not a knob in the daemon:
//!
//! - A `stat` of a name in it sleeps interruptibly until the answer. When the freezer
//!   tries to freeze the task, FUSE sends an INTERRUPT and goes on waiting
//!   uninterruptibly (`request_wait_answer`), so the cgroup stays FREEZING until the test
//!   answers. (Checked on 6.18's cgroup v1 freezer; vfork parents and stopped tasks, by
//!   contrast, freeze at once.)
//! - A deletion that descends into it (`remove_dir_all` opening the mount point) waits for
//!   the answer to its OPENDIR.
//!
//! The protocol is FUSE 7.31's, the little of it these tests need: INIT, GETATTR of the
//! root, LOOKUP and OPENDIR held for the test, READDIR (empty), RELEASEDIR; ENOSYS for
//! anything else. Dropping the gate unmounts it and closes the device, which fails every
//! request still held (ENOTCONN), so a failing test leaves no task asleep.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};

use rustix::fs::{Mode, OFlags};

const LOOKUP: u32 = 1;
const FORGET: u32 = 2;
const GETATTR: u32 = 3;
const INIT: u32 = 26;
const OPENDIR: u32 = 27;
const READDIR: u32 = 28;
const RELEASEDIR: u32 = 29;
const INTERRUPT: u32 = 36;
const BATCH_FORGET: u32 = 42;

/// A request the test holds: what it was and the name it asked for (LOOKUP).
#[derive(Debug, Clone)]
pub struct Held {
    pub opcode: u32,
    pub unique: u64,
    pub name: String,
}

impl Held {
    pub fn is_lookup(&self) -> bool {
        self.opcode == LOOKUP
    }
    pub fn is_opendir(&self) -> bool {
        self.opcode == OPENDIR
    }
}

pub struct Gate {
    pub mnt: PathBuf,
    dev: Arc<File>,
    held: mpsc::Receiver<Held>,
    stop: Arc<AtomicBool>,
    server: Option<std::thread::JoinHandle<()>>,
    /// The mounted root, for unmounting it wherever it has moved since (a deletion renames
    /// the tree it sits in).
    root: Option<std::os::fd::OwnedFd>,
}

impl Gate {
    /// Mounts a new gate at `mnt` (an empty directory) and starts serving it.
    pub fn mount(mnt: &Path) -> Gate {
        use std::os::fd::AsRawFd;
        let dev = std::fs::OpenOptions::new().read(true).write(true).open("/dev/fuse").expect("/dev/fuse");
        // Non-blocking, so that the server can stop (see Drop).
        rustix::fs::fcntl_setfl(&dev, OFlags::NONBLOCK).unwrap();
        let opts = format!("fd={},rootmode=40000,user_id=0,group_id=0,allow_other", dev.as_raw_fd());
        rustix::mount::mount(
            "berth-test-gate",
            mnt,
            "fuse",
            rustix::mount::MountFlags::NOSUID | rustix::mount::MountFlags::NODEV,
            Some(std::ffi::CString::new(opts).unwrap().as_c_str()),
        )
        .expect("mounting the FUSE gate");
        let root = rustix::fs::open(mnt, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .expect("opening the gate's root");
        let dev = Arc::new(dev);
        let (tx, held) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let (dev2, stop2) = (dev.clone(), stop.clone());
        let server = std::thread::spawn(move || serve(&dev2, &tx, &stop2));
        Gate { mnt: mnt.to_path_buf(), dev, held, stop, server: Some(server), root: Some(root) }
    }

    /// The next request the filesystem holds, waiting up to a minute for it.
    pub fn next_held(&self) -> Held {
        self.held.recv_timeout(std::time::Duration::from_secs(60)).expect("a request reaches the FUSE gate")
    }

    /// Answers a held LOOKUP: no such entry.
    pub fn answer_missing(&self, h: &Held) {
        reply(&self.dev, h.unique, -2, &[]);
    }

    /// Answers a held OPENDIR: opened (the directory then reads as empty).
    pub fn answer_opened(&self, h: &Held) {
        // fh, open_flags, padding.
        reply(&self.dev, h.unique, 0, &[0u8; 16]);
    }

    /// Detaches the mount (what is open in it stays served); the directory under it
    /// shows again.
    pub fn detach(&mut self) {
        use std::os::fd::AsRawFd;
        if let Some(root) = self.root.take() {
            let at = format!("/proc/self/fd/{}", root.as_raw_fd());
            if let Err(e) = rustix::mount::unmount(at.as_str(), rustix::mount::UnmountFlags::DETACH) {
                eprintln!("unmounting the gate at {}: {e}", self.mnt.display());
            }
        }
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.detach();
        // Once the server has stopped and both handles on the device are closed, the kernel
        // aborts the connection: every request still held fails with ENOTCONN.
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.server.take() {
            let _ = t.join();
        }
    }
}

fn serve(dev: &File, tx: &mpsc::Sender<Held>, stop: &AtomicBool) {
    let mut buf = vec![0u8; 1 << 20];
    while !stop.load(Ordering::SeqCst) {
        let mut fds = [rustix::event::PollFd::new(dev, rustix::event::PollFlags::IN)];
        let tick = rustix::event::Timespec { tv_sec: 0, tv_nsec: 50_000_000 };
        if rustix::event::poll(&mut fds, Some(&tick)).unwrap_or(0) == 0 {
            continue;
        }
        let n = match (&*dev).read(&mut buf) {
            Ok(n) if n >= 40 => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            // The connection is gone (unmounted with nothing held).
            _ => return,
        };
        let op = u32::from_le_bytes(buf[4..8].try_into().unwrap());
        let unique = u64::from_le_bytes(buf[8..16].try_into().unwrap());
        let nodeid = u64::from_le_bytes(buf[16..24].try_into().unwrap());
        let body = &buf[40..n];
        match op {
            INIT => {
                // major, minor, max_readahead, flags, max_background, congestion_threshold,
                // max_write, time_gran, max_pages, then zeros.
                let mut out = Vec::new();
                // FUSE_PARALLEL_DIROPS: lookups in one directory reach the server side by
                // side (without it the kernel serializes them, and only the first would).
                for v in [7u32, 31, 0, 1 << 18] {
                    out.extend_from_slice(&v.to_le_bytes());
                }
                out.extend_from_slice(&16u16.to_le_bytes());
                out.extend_from_slice(&12u16.to_le_bytes());
                out.extend_from_slice(&(128u32 << 10).to_le_bytes());
                out.extend_from_slice(&1u32.to_le_bytes());
                out.extend_from_slice(&32u16.to_le_bytes());
                out.resize(64, 0);
                reply(dev, unique, 0, &out);
            }
            GETATTR if nodeid == 1 => reply(dev, unique, 0, &root_attr()),
            LOOKUP => {
                let name = String::from_utf8_lossy(body.split(|b| *b == 0).next().unwrap_or_default()).into_owned();
                let _ = tx.send(Held { opcode: op, unique, name });
            }
            OPENDIR => {
                let _ = tx.send(Held { opcode: op, unique, name: String::new() });
            }
            // An empty directory: no entries at any offset.
            READDIR | RELEASEDIR => reply(dev, unique, 0, &[]),
            FORGET | BATCH_FORGET | INTERRUPT => {}
            _ => reply(dev, unique, -38, &[]),
        }
    }
}

fn reply(dev: &File, unique: u64, errno: i32, payload: &[u8]) {
    let mut out = Vec::with_capacity(16 + payload.len());
    out.extend_from_slice(&((16 + payload.len()) as u32).to_le_bytes());
    out.extend_from_slice(&errno.to_le_bytes());
    out.extend_from_slice(&unique.to_le_bytes());
    out.extend_from_slice(payload);
    let _ = (&*dev).write_all(&out);
}

/// fuse_attr_out for the root: a 0755 directory owned by root, cached for a second.
fn root_attr() -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&1u64.to_le_bytes()); // attr_valid
    out.extend_from_slice(&0u32.to_le_bytes()); // attr_valid_nsec
    out.extend_from_slice(&0u32.to_le_bytes()); // dummy
    out.extend_from_slice(&1u64.to_le_bytes()); // ino
    out.extend_from_slice(&[0u8; 8 * 5]); // size, blocks, atime, mtime, ctime
    out.extend_from_slice(&[0u8; 4 * 3]); // their nanoseconds
    out.extend_from_slice(&(0o040755u32).to_le_bytes()); // mode
    out.extend_from_slice(&2u32.to_le_bytes()); // nlink
    out.extend_from_slice(&[0u8; 4 * 3]); // uid, gid, rdev
    out.extend_from_slice(&4096u32.to_le_bytes()); // blksize
    out.extend_from_slice(&0u32.to_le_bytes()); // flags
    out
}
