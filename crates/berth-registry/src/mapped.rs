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
//! Bounds: the kept mappings cover at most [`KEEP_BYTES`] of files, the least recently used
//! going first; one unused for [`IDLE`] is dropped; a blob over [`KEEP_ONE_AT_MOST`] is
//! mapped per request instead. (Responses still reading a mapping that was let go keep it
//! until they finish, as they did before there was a cache.) A kept mapping is page cache
//! the kernel can still reclaim, unmapping pages under pressure, but it counts in the
//! registry's RSS while kept, and a blob that GC deletes meanwhile keeps its disk space
//! until its mapping goes.

use bytes::Bytes;
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// How many bytes of blob files stay mapped between requests, at most.
pub const KEEP_BYTES: u64 = 2 << 30;
/// The largest blob kept mapped: one large layer does not push out all the others.
pub const KEEP_ONE_AT_MOST: u64 = KEEP_BYTES / 4;
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

// The mapping is read-only and never written through, so any thread may read it.
#[allow(unsafe_code)]
unsafe impl Send for Mapped {}
#[allow(unsafe_code)]
unsafe impl Sync for Mapped {}

impl Mapped {
    /// Maps `len` bytes of `file`, which is `file_len` bytes long, from `offset`.
    pub fn new(file: &std::fs::File, file_len: u64, offset: u64, len: u64) -> std::io::Result<Mapped> {
        use rustix::mm::{MapFlags, ProtFlags};
        // Bytes past the end of the file cannot be read through a mapping (the access would
        // fault); a short file is left to the caller, which reads it and reports the cut.
        if len == 0 || file_len < offset.saturating_add(len) {
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
        let base =
            unsafe { rustix::mm::mmap(std::ptr::null_mut(), total, ProtFlags::READ, MapFlags::SHARED, file, start)? };
        // SAFETY: advice on the mapping just made; it changes no memory. (Advice only: refused,
        // the reads are as correct, only read ahead less.)
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
        // that borrowed it owned a reference to `self`). It fails only for a range that is not
        // a mapping, and this one is.
        #[allow(unsafe_code)]
        let _ = unsafe { rustix::mm::munmap(self.base, self.len) };
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
    /// The whole file's mapping; responses read slices of it.
    map: Bytes,
    /// The file's length when mapped: a file of another length under the same identity
    /// (copied over by hand) is mapped anew.
    size: u64,
    used: Instant,
    id: u64,
}

impl Maps {
    /// `len` bytes from `offset` of `file` (`meta` is its metadata), read from a whole-file
    /// mapping that later requests share. `None` when the file cannot be mapped, is shorter
    /// than asked or larger than [`KEEP_ONE_AT_MOST`], or there is no runtime to expire the
    /// mapping on.
    pub fn slice(&self, file: &std::fs::File, meta: &std::fs::Metadata, offset: u64, len: u64) -> Option<Bytes> {
        let size = meta.len();
        if size > KEEP_ONE_AT_MOST || offset.checked_add(len)? > size {
            return None;
        }
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let key = (meta.dev(), meta.ino());
        let mut unmap = Vec::new();
        let map = {
            let mut kept = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            match kept.files.get_mut(&key).filter(|e| e.size == size) {
                Some(e) => {
                    e.used = Instant::now();
                    e.map.clone()
                }
                None => {
                    let map = Bytes::from_owner(Mapped::new(file, size, 0, size).ok()?);
                    unmap.extend(kept.remove(&key));
                    while kept.bytes + size > KEEP_BYTES {
                        let oldest = kept.files.iter().min_by_key(|(_, e)| e.used).map(|(k, _)| *k);
                        let Some(oldest) = oldest else { break };
                        unmap.extend(kept.remove(&oldest));
                    }
                    let id = kept.next_id;
                    kept.next_id += 1;
                    kept.bytes += size;
                    let entry = Entry { map: map.clone(), size, used: Instant::now(), id };
                    kept.files.insert(key, entry);
                    runtime.spawn(expire(self.inner.clone(), key, id));
                    map
                }
            }
        };
        unmap_later(unmap);
        let (start, end) = (usize::try_from(offset).ok()?, usize::try_from(offset + len).ok()?);
        Some(map.slice(start..end))
    }

    /// Whether `file` is mapped and kept.
    #[cfg(test)]
    fn holds(&self, file: &std::fs::File) -> bool {
        let meta = file.metadata().unwrap();
        let kept = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        kept.files.contains_key(&(meta.dev(), meta.ino()))
    }

    #[cfg(test)]
    fn kept(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).files.len()
    }
}

impl Kept {
    fn remove(&mut self, key: &(u64, u64)) -> Option<Bytes> {
        let e = self.files.remove(key)?;
        self.bytes -= e.size;
        Some(e.map)
    }
}

/// Lets mappings go off the runtime's threads: the last reference's unmapping walks page
/// tables for up to [`KEEP_ONE_AT_MOST`] of file.
fn unmap_later(maps: Vec<Bytes>) {
    if !maps.is_empty() {
        tokio::task::spawn_blocking(move || drop(maps));
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
            unmap_later(gone.into_iter().collect());
            return;
        }
        wait = IDLE - idle;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    /// What a request for `len` bytes from `offset` of `f` gets.
    fn slice(maps: &Maps, f: &std::fs::File, offset: u64, len: u64) -> Option<Bytes> {
        maps.slice(f, &f.metadata().unwrap(), offset, len)
    }

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
        let size = bytes.len() as u64;
        let whole = slice(&maps, &file, 0, size).unwrap();
        assert_eq!(&whole[..], &bytes[..]);
        let part = slice(&maps, &file, 4097, 10).unwrap();
        assert_eq!(&part[..], &bytes[4097..4107]);
        assert_eq!(maps.kept(), 1, "the second request reads the first one's mapping");
        assert!(slice(&maps, &file, 4097, size).is_none(), "past the end");
        tokio::time::sleep(IDLE / 2).await;
        slice(&maps, &file, 0, 1).unwrap();
        tokio::time::sleep(IDLE * 3 / 4).await;
        assert_eq!(maps.kept(), 1, "a use restarts the idle time");
        tokio::time::sleep(IDLE).await;
        assert_eq!(maps.kept(), 0);
        assert_eq!(&whole[..], &bytes[..], "a slice outlives the kept entry");
    }

    #[tokio::test]
    async fn the_least_recently_used_goes_first_and_a_large_blob_is_not_kept() {
        // Sparse files: mapping them touches no page, so they cost no disk and no memory.
        let sparse = |len: u64| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("data");
            std::fs::File::create(&path).unwrap().set_len(len).unwrap();
            (dir, std::fs::File::open(&path).unwrap())
        };
        let quarter = KEEP_BYTES / 4;
        let files: Vec<_> = (0..5).map(|_| sparse(quarter)).collect();
        let [a, b, c, d, e] = [0, 1, 2, 3, 4].map(|i| &files[i].1);
        let maps = Maps::default();
        for f in [a, b, c, d] {
            slice(&maps, f, 0, 1).unwrap();
        }
        let held = slice(&maps, b, 0, 1).unwrap();
        slice(&maps, a, 0, 1).unwrap();
        assert_eq!(maps.kept(), 4, "four quarters fit");
        slice(&maps, e, 0, 1).unwrap();
        let kept: Vec<bool> = [a, b, c, d, e].iter().map(|f| maps.holds(f)).collect();
        assert_eq!(kept, [true, true, false, true, true], "c, the least recently used, made room");
        assert_eq!(held[0], 0);
        let (_big, big) = sparse(quarter + 1);
        assert!(slice(&maps, &big, 0, 1).is_none());
        assert!(!maps.holds(&big));
    }

    #[tokio::test]
    async fn a_file_of_another_length_under_the_same_identity_is_mapped_anew() {
        let (dir, file) = file_of(&[1u8; 8192]);
        let maps = Maps::default();
        assert_eq!(slice(&maps, &file, 0, 8192).unwrap()[8191], 1);
        std::fs::OpenOptions::new().append(true).open(dir.path().join("data")).unwrap().write_all(&[2u8; 100]).unwrap();
        assert_eq!(slice(&maps, &file, 8191, 101).unwrap()[..], [[1u8].as_slice(), &[2u8; 100]].concat());
        assert_eq!(maps.kept(), 1);
    }
}
