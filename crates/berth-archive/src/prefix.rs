//! Layer digests that resume where an earlier stream began the same way.
//!
//! A layer's diff ID is the SHA-256 of its whole tar stream, so a COPY of a large context
//! hashes every byte of it again after any change, even one that sorts after a 100 MB file
//! that did not change. SHA-256 runs front to back and its state can be kept, so the state
//! after a stream's first entries serves any later stream that starts with the same bytes.
//!
//! # Contract
//!
//! - A stream is described by its [`Skeleton`] and, for regular files, a content digest
//!   the caller knows (`content_ids`, by the skeleton's path; the builder knows them for
//!   files from the build context). The *identity* of a prefix is a SHA-256 chained over its
//!   raw bytes and its files' sizes and content digests; it is collision-resistant exactly
//!   as the content digests are, so equal identities mean equal prefix bytes.
//! - Past the first file without a known digest, no identity exists: nothing there is
//!   saved or resumed, and the stream is hashed in full from the last resumable point.
//! - The caller vouches that each file holds the content its digest names. Files are read
//!   (confined to the root) only from the resume point on.
//! - States are kept in memory only (a few hundred bytes each), at most one per
//!   [`CHECKPOINT_EVERY`] bytes of a stream, and dropped wholesale past [`MAX_STATES`].

use std::collections::HashMap;
use std::io::Read;
use std::os::fd::BorrowedFd;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::paths::open_regular_in_root;
use crate::skeleton::{Segment, Skeleton};
use crate::{ArchiveError, Result, errno};

/// Bytes of stream between two saved states.
pub const CHECKPOINT_EVERY: u64 = 4 << 20;
/// States kept before the cache starts over.
pub const MAX_STATES: usize = 4096;

#[derive(Default)]
pub struct PrefixCache {
    states: Mutex<HashMap<[u8; 32], (Sha256, u64)>>,
}

impl PrefixCache {
    pub fn new() -> PrefixCache {
        PrefixCache::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], (Sha256, u64)>> {
        self.states.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The `sha256:` digest and the length of the stream `skeleton` describes, with file
    /// contents read from under `root`.
    pub fn digest(
        &self,
        root: BorrowedFd<'_>,
        skeleton: &Skeleton,
        content_ids: &HashMap<String, String>,
    ) -> Result<(String, u64)> {
        let segs = &skeleton.segments;
        // The identity after each file segment, while every file so far is known.
        let mut chain = Sha256::new();
        let mut ids: Vec<Option<[u8; 32]>> = vec![None; segs.len()];
        for (i, seg) in segs.iter().enumerate() {
            match seg {
                Segment::Raw(b) => {
                    chain.update(b"R");
                    chain.update((b.len() as u64).to_be_bytes());
                    chain.update(b);
                }
                Segment::File { path, size } => {
                    let Some(id) = content_ids.get(path) else { break };
                    chain.update(b"F");
                    chain.update(size.to_be_bytes());
                    chain.update(id.as_bytes());
                    ids[i] = Some(chain.clone().finalize().into());
                }
            }
        }
        let resume = {
            let states = self.lock();
            ids.iter()
                .enumerate()
                .rev()
                .find_map(|(i, id)| id.and_then(|k| states.get(&k).map(|(h, n)| (i, h.clone(), *n))))
        };
        let (start, mut h, mut count) = match resume {
            Some((i, h, n)) => (i + 1, h, n),
            None => (0, Sha256::new(), 0),
        };
        let mut last_saved = count;
        let mut buf = vec![0u8; 256 * 1024];
        for (i, seg) in segs.iter().enumerate().skip(start) {
            match seg {
                Segment::Raw(b) => {
                    h.update(b);
                    count += b.len() as u64;
                }
                Segment::File { path, size } => {
                    let fd = open_regular_in_root(root, path)
                        .map_err(|e| errno(format!("opening {path}"), e))?
                        .ok_or_else(|| ArchiveError::Corrupt(format!("{path} is no longer a regular file")))?;
                    let mut f = std::fs::File::from(fd).take(*size);
                    let mut n = 0u64;
                    loop {
                        let k = f.read(&mut buf).map_err(|e| ArchiveError::io(format!("reading {path}"), e))?;
                        if k == 0 {
                            break;
                        }
                        h.update(&buf[..k]);
                        n += k as u64;
                    }
                    if n != *size {
                        return Err(ArchiveError::Corrupt(format!("{path}: {n} bytes where {size} were expected")));
                    }
                    count += n;
                    if let Some(k) = ids[i]
                        && count - last_saved >= CHECKPOINT_EVERY
                    {
                        let mut states = self.lock();
                        if states.len() >= MAX_STATES {
                            states.clear();
                        }
                        states.insert(k, (h.clone(), count));
                        last_saved = count;
                    }
                }
            }
        }
        Ok((format!("sha256:{}", hex::encode(h.finalize())), count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    fn sha(b: &[u8]) -> String {
        hex::encode(Sha256::digest(b))
    }

    /// A skeleton of raw headers and files under `dir`, and the stream it stands for.
    fn setup(dir: &std::path::Path, files: &[(&str, Vec<u8>)]) -> (Skeleton, Vec<u8>, HashMap<String, String>) {
        let mut sk = Skeleton::default();
        let mut stream = Vec::new();
        let mut ids = HashMap::new();
        for (name, content) in files {
            std::fs::write(dir.join(name), content).unwrap();
            let header = format!("header of {name}").into_bytes();
            sk.push_raw(header.clone());
            stream.extend_from_slice(&header);
            sk.push_file(name.to_string(), content.len() as u64);
            stream.extend_from_slice(content);
            ids.insert(name.to_string(), sha(content));
        }
        sk.push_raw(b"trailer".to_vec());
        stream.extend_from_slice(b"trailer");
        (sk, stream, ids)
    }

    #[test]
    fn a_stream_with_a_known_prefix_resumes_and_matches_a_full_hash() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::File::open(dir.path()).unwrap();
        let big = vec![7u8; (CHECKPOINT_EVERY + 1) as usize];
        let cache = PrefixCache::new();
        let (sk, stream, ids) = setup(dir.path(), &[("a", big.clone()), ("b", b"one".to_vec())]);
        let first = cache.digest(root.as_fd(), &sk, &ids).unwrap();
        assert_eq!(first, (format!("sha256:{}", sha(&stream)), stream.len() as u64));
        assert_eq!(cache.lock().len(), 1, "one state, after the big file");

        // Same prefix, different tail: resumes (the big file is not read: it is gone) and
        // still gives the full stream's digest.
        let (sk2, stream2, ids2) = setup(dir.path(), &[("a", big.clone()), ("b", b"two".to_vec())]);
        std::fs::write(dir.path().join("a"), b"").unwrap();
        assert_eq!(cache.digest(root.as_fd(), &sk2, &ids2).unwrap().0, format!("sha256:{}", sha(&stream2)));

        // A different file before it: no resume (the emptied file is read, and is short).
        let mut ids3 = ids2.clone();
        ids3.insert("a".into(), sha(b"something else"));
        assert!(cache.digest(root.as_fd(), &sk2, &ids3).is_err());
        // Unknown content: no resume either.
        let mut ids4 = ids2;
        ids4.remove("a");
        assert!(cache.digest(root.as_fd(), &sk2, &ids4).is_err());
    }
}
