//! Blob files mapped into memory, and the few kept mapped between requests.
//!
//! A large blob is sent from a read-only mapping, so its bytes are copied once, from the
//! page cache into the socket. Mapping is not free: every 64 KiB or so of the file costs a
//! page fault on first touch, and the mapping's teardown another pass over its page tables,
//! together a tenth of the registry's CPU time per fetch of a 200 MiB layer. A registry
//! serves the same layers over and over (every node pulling one image, a CI fleet), so
//! [`Maps`] keeps the mapping of each recently served blob for a while and later requests,
//! concurrent or not, read from it without faulting.
//!
//! Bounds: at most [`KEEP_BYTES`] of files stay mapped, the least recently used going
//! first, and a mapping unused for [`IDLE`] is dropped; a blob larger than the whole budget
//! is mapped per request as before. A kept mapping is page cache the kernel can still
//! reclaim (it unmaps pages under pressure), but it counts in the registry's RSS while
//! kept, and a blob deleted meanwhile (GC, `DELETE`) keeps its disk space until its mapping
//! goes, [`IDLE`] after its last use at most.

use bytes::Bytes;
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// How many bytes of blob files stay mapped between requests, at most.
pub const KEEP_BYTES: u64 = 1 << 30;
/// How long a kept mapping may go unused.
pub const IDLE: Duration = Duration::from_secs(10);

/// A read-only shared mapping of part of a blob file; unmapped when the last slice that
/// refers to it is dropped.
pub struct Mapped {
    base: *mut std::ffi::c_void,
    len: usize,
    /// Where the asked-for bytes begin inside the mapping (offsets are page-aligned).
    skip: usize,
}

// The mapping is read-only and owned by this value alone; any thread may read it.
#[allow(unsafe_code)]
unsafe impl Send for Mapped {}
#[allow(unsafe_code)]
unsafe impl Sync for Mapped {}

impl Mapped {
    /// Maps `len` bytes of `file` from `offset`.
    pub fn new(file: &std::fs::File, offset: u64, len: u64) -> std::io::Result<Mapped> {
        use rustix::mm::{MapFlags, ProtFlags};
        // Bytes past the end of the file cannot be read through a mapping (the access would
        // fault); a short file is left to the caller, which reads it and reports the cut.
        if file.metadata()?.len() < offset.saturating_add(len) {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let page = rustix::param::page_size() as u64;
        let start = offset - offset % page;
        let skip = (offset - start) as usize;
        let total = usize::try_from(len).map_err(|_| std::io::ErrorKind::InvalidInput)? + skip;
        // SAFETY: a fresh read-only mapping at an address the kernel picks aliases no Rust
        // object. Reads through it stay valid as long as the file is not truncated, and blob
        // files never are: they are written under a temporary name, verified, renamed into
        // place and only ever unlinked (which leaves a mapping intact).
        #[allow(unsafe_code)]
        let base = unsafe { rustix::mm::mmap(std::ptr::null_mut(), total, ProtFlags::READ, MapFlags::SHARED, file, start)? };
        // SAFETY: advice on the mapping just made; it changes no memory.
        #[allow(unsafe_code)]
        let _ = unsafe { rustix::mm::madvise(base, total, rustix::mm::Advice::Sequential) };
        Ok(Mapped { base, len: total, skip })
    }
}

impl AsRef<[u8]> for Mapped {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `base..base+len` is the live read-only mapping made in `new`.
        #[allow(unsafe_code)]
        let all = unsafe { std::slice::from_raw_parts(self.base as *const u8, self.len) };
        &all[self.skip..]
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: unmaps the mapping made in `new`, which no slice outlives (every `Bytes`
        // that borrowed it owned a reference to `self`).
        #[allow(unsafe_code)]
        let _ = unsafe { rustix::mm::munmap(self.base, self.len) };
    }
}

/// A kept mapping shared by the responses reading it.
struct Shared(Arc<Mapped>);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        (*self.0).as_ref()
    }
}

/// The mappings kept between requests, by file identity (device, inode): blob files are
/// never rewritten in place, so one identity always has the same bytes.
#[derive(Default)]
pub struct Maps {
    inner: Arc<Mutex<Kept>>,
}

#[derive(Default)]
struct Kept {
    files: HashMap<(u64, u64), Entry>,
    bytes: u64,
    /// Tells apart an entry from a later one for the same file, for the expiry task.
    next_id: u64,
}

struct Entry {
    map: Arc<Mapped>,
    used: Instant,
    id: u64,
}

impl Maps {
    /// `len` bytes of `file` from `offset`, read from a whole-file mapping that later
    /// requests share. `None` when the file cannot be mapped, is shorter than asked, is larger
    /// than [`KEEP_BYTES`], or there is no runtime to expire the mapping on.
    pub fn slice(&self, file: &std::fs::File, offset: u64, len: u64) -> Option<Bytes> {
        let meta = file.metadata().ok()?;
        let size = meta.len();
        if size > KEEP_BYTES || offset.checked_add(len)? > size {
            return None;
        }
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let key = (meta.dev(), meta.ino());
        let mut evicted = Vec::new();
        let map = {
            let mut kept = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(e) = kept.files.get_mut(&key) {
                e.used = Instant::now();
                e.map.clone()
            } else {
                let map = Arc::new(Mapped::new(file, 0, size).ok()?);
                while kept.bytes + size > KEEP_BYTES {
                    let Some(oldest) = kept.files.iter().min_by_key(|(_, e)| e.used).map(|(k, _)| *k) else {
                        break;
                    };
                    evicted.extend(kept.remove(&oldest));
                }
                let id = kept.next_id;
                kept.next_id += 1;
                kept.bytes += size;
                kept.files.insert(key, Entry { map: map.clone(), used: Instant::now(), id });
                runtime.spawn(expire(self.inner.clone(), key, id));
                map
            }
        };
        // Unmapping walks the page tables: done outside the lock.
        drop(evicted);
        let (start, end) = (usize::try_from(offset).ok()?, usize::try_from(offset + len).ok()?);
        Some(Bytes::from_owner(Shared(map)).slice(start..end))
    }

    /// How many files are mapped and kept.
    #[cfg(test)]
    fn kept(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).files.len()
    }
}

impl Kept {
    fn remove(&mut self, key: &(u64, u64)) -> Option<Arc<Mapped>> {
        let e = self.files.remove(key)?;
        self.bytes -= e.map.len as u64;
        Some(e.map)
    }
}

/// Drops the entry `id` for `key` once it has gone unused for [`IDLE`] (responses still
/// reading it keep the mapping alive until they finish).
async fn expire(kept: Arc<Mutex<Kept>>, key: (u64, u64), id: u64) {
    let mut wait = IDLE;
    loop {
        tokio::time::sleep(wait).await;
        let mut k = kept.lock().unwrap_or_else(|p| p.into_inner());
        let Some(e) = k.files.get(&key).filter(|e| e.id == id) else {
            return;
        };
        let idle = e.used.elapsed();
        if idle >= IDLE {
            let gone = k.remove(&key);
            drop(k);
            drop(gone);
            return;
        }
        wait = IDLE - idle;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn file_of(bytes: &[u8]) -> (tempfile::TempDir, std::fs::File) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        std::fs::File::create(&path).unwrap().write_all(bytes).unwrap();
        (dir, std::fs::File::open(&path).unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn a_mapping_is_shared_while_used_and_dropped_when_idle() {
        let bytes: Vec<u8> = (0..3 * 4096 + 5).map(|i| (i % 251) as u8).collect();
        let (_dir, file) = file_of(&bytes);
        let maps = Maps::default();
        let whole = maps.slice(&file, 0, bytes.len() as u64).unwrap();
        assert_eq!(&whole[..], &bytes[..]);
        let part = maps.slice(&file, 4097, 10).unwrap();
        assert_eq!(&part[..], &bytes[4097..4107]);
        assert_eq!(maps.kept(), 1, "the second request reads the first one's mapping");
        assert!(maps.slice(&file, 4097, bytes.len() as u64).is_none(), "past the end");
        tokio::time::sleep(IDLE / 2).await;
        maps.slice(&file, 0, 1).unwrap();
        tokio::time::sleep(IDLE * 3 / 4).await;
        assert_eq!(maps.kept(), 1, "a use restarts the idle time");
        tokio::time::sleep(IDLE).await;
        assert_eq!(maps.kept(), 0);
        assert_eq!(&whole[..], &bytes[..], "a slice outlives the kept entry");
    }

    #[tokio::test]
    async fn the_least_recently_used_goes_first_and_a_blob_over_the_budget_is_not_kept() {
        // Sparse files: mapping them touches no page, so they cost no disk and no memory.
        let sparse = |len: u64| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("data");
            std::fs::File::create(&path).unwrap().set_len(len).unwrap();
            (dir, std::fs::File::open(&path).unwrap())
        };
        let (_a, a) = sparse(KEEP_BYTES / 2);
        let (_b, b) = sparse(KEEP_BYTES / 4);
        let (_c, c) = sparse(KEEP_BYTES / 2);
        let (_d, d) = sparse(KEEP_BYTES + 1);
        let maps = Maps::default();
        let held = maps.slice(&a, 0, 1).unwrap();
        maps.slice(&b, 0, 1).unwrap();
        assert_eq!(maps.kept(), 2);
        maps.slice(&c, 0, 1).unwrap();
        assert_eq!(maps.kept(), 2, "a, the oldest, made room for c");
        assert_eq!(held[0], 0, "a response still reading a keeps its mapping");
        assert!(maps.slice(&d, 0, 1).is_none());
        assert_eq!(maps.kept(), 2);
    }
}
