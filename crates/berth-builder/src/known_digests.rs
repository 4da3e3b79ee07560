//! Content digests of a kept context copy's files, remembered between builds, so a rebuild
//! through a BuildKit session reads only the files that changed (BuildKit keeps such a
//! cache of content hashes per local source too).
//!
//! # Contract
//!
//! - **A digest is used only for the very file it was taken from.** Each entry records the
//!   file's inode, size, modification time and change time as they were before it was
//!   read, and the digest is kept only if they were the same after. The kernel sets the
//!   change time on every write, truncation, chmod or rename, and nobody can set it back,
//!   so a file rewritten since (by a transfer, or anyone) no longer matches and is read
//!   again.
//! - **Only regular files directly in the copy are read**: directories are walked without
//!   following symlinks, and files are opened with `O_NOFOLLOW`.
//! - The cache file is written atomically; a missing or unreadable one only costs reading
//!   the files again.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{BuildError, Result};

/// A file's identity as far as its content is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Identity {
    ino: u64,
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
}

impl Identity {
    fn of(m: &std::fs::Metadata) -> Identity {
        let ns = |s: i64, n: i64| s.saturating_mul(1_000_000_000).saturating_add(n);
        Identity {
            ino: m.ino(),
            size: m.size(),
            mtime_ns: ns(m.mtime(), m.mtime_nsec()),
            ctime_ns: ns(m.ctime(), m.ctime_nsec()),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Known {
    id: Identity,
    digest: String,
}

/// The cache file's name, beside the copy's `root`.
const FILE: &str = "digests.json";

/// The `sha256` hex digests of every regular file under `dir/root`, by path relative to
/// it: taken from `dir/digests.json` where the file is unchanged, read otherwise; the cache
/// file is then rewritten to hold exactly these files.
pub(crate) fn refresh(dir: &Path) -> Result<HashMap<String, String>> {
    let old: BTreeMap<String, Known> =
        std::fs::read(dir.join(FILE)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    let mut new = BTreeMap::new();
    let root = dir.join("root");
    walk(&root, "", &old, &mut new)?;
    let digests = new.iter().map(|(p, k)| (p.clone(), k.digest.clone())).collect();
    // The cache only saves work: a build goes on when it cannot be written (a full disk),
    // and the next one reads the files again.
    let tmp = dir.join(format!("{FILE}.tmp"));
    let written = serde_json::to_vec(&new)
        .map_err(std::io::Error::other)
        .and_then(|bytes| std::fs::write(&tmp, bytes))
        .and_then(|_| std::fs::rename(&tmp, dir.join(FILE)));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
        let _ = std::fs::remove_file(dir.join(FILE));
    }
    Ok(digests)
}

fn walk(dir: &Path, rel: &str, old: &BTreeMap<String, Known>, new: &mut BTreeMap<String, Known>) -> Result<()> {
    let rd = std::fs::read_dir(dir).map_err(|e| BuildError::io(format!("reading the context at {rel:?}"), e))?;
    for entry in rd {
        let entry = entry.map_err(|e| BuildError::io(format!("reading the context at {rel:?}"), e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let path = if rel.is_empty() { name.to_string() } else { format!("{rel}/{name}") };
        // DirEntry's metadata does not follow a symlink.
        let m = entry.metadata().map_err(|e| BuildError::io(format!("inspecting {path}"), e))?;
        if m.is_dir() {
            walk(&entry.path(), &path, old, new)?;
        } else if m.is_file() {
            let id = Identity::of(&m);
            let known = match old.get(&path) {
                Some(k) if k.id == id => Some(k.clone()),
                _ => hash(&entry.path(), id).map_err(|e| BuildError::io(format!("reading {path}"), e))?,
            };
            if let Some(k) = known {
                new.insert(path, k);
            }
        }
    }
    Ok(())
}

/// Reads the file at `host`, which was `id` when listed; `None` if it changed meanwhile
/// (COPY then reads it itself).
fn hash(host: &Path, id: Identity) -> std::io::Result<Option<Known>> {
    let f = std::fs::File::options().read(true).custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32).open(host)?;
    let before = Identity::of(&f.metadata()?);
    let digest = sha256_of(&f)?;
    let after = Identity::of(&f.metadata()?);
    Ok((before == id && after == id).then_some(Known { id, digest }))
}

/// The `sha256` hex digest of what `r` reads.
pub(crate) fn sha256_of(r: impl std::io::Read) -> std::io::Result<String> {
    let mut h = Sha256::new();
    // BufReader's buffer is not zeroed, and a small file costs one read.
    let mut r = BufReader::with_capacity(256 << 10, r);
    loop {
        let chunk = r.fill_buf()?;
        if chunk.is_empty() {
            break;
        }
        h.update(chunk);
        let n = chunk.len();
        r.consume(n);
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy_dir() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("root/sub")).unwrap();
        std::fs::write(d.path().join("root/a"), "alpha").unwrap();
        std::fs::write(d.path().join("root/sub/b"), "beta").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("root/link")).unwrap();
        d
    }

    fn sha(s: &str) -> String {
        hex::encode(Sha256::digest(s.as_bytes()))
    }

    #[test]
    fn every_regular_file_gets_its_content_digest_and_links_are_not_followed() {
        let d = copy_dir();
        let got = refresh(d.path()).unwrap();
        let want: HashMap<String, String> =
            [("a".to_string(), sha("alpha")), ("sub/b".to_string(), sha("beta"))].into_iter().collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_remembered_digest_is_used_only_while_the_file_is_unchanged() {
        let d = copy_dir();
        refresh(d.path()).unwrap();
        // A forged digest for an unchanged file is believed: the file is not read again.
        let mut cache: BTreeMap<String, Known> =
            serde_json::from_slice(&std::fs::read(d.path().join(FILE)).unwrap()).unwrap();
        cache.get_mut("a").unwrap().digest = "remembered".into();
        std::fs::write(d.path().join(FILE), serde_json::to_vec(&cache).unwrap()).unwrap();
        assert_eq!(refresh(d.path()).unwrap()["a"], "remembered");

        // Rewritten with the same size and modification time: the change time differs.
        let a = d.path().join("root/a");
        let mtime = std::fs::metadata(&a).unwrap().modified().unwrap();
        std::fs::write(&a, "ALPHA").unwrap();
        std::fs::File::options().write(true).open(&a).unwrap().set_modified(mtime).unwrap();
        assert_eq!(refresh(d.path()).unwrap()["a"], sha("ALPHA"));
    }

    #[test]
    fn the_cache_file_reads_back() {
        let d = copy_dir();
        refresh(d.path()).unwrap();
        let cache: BTreeMap<String, Known> =
            serde_json::from_slice(&std::fs::read(d.path().join(FILE)).unwrap()).unwrap();
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn removed_files_leave_the_cache_and_a_broken_cache_file_is_ignored() {
        let d = copy_dir();
        refresh(d.path()).unwrap();
        std::fs::remove_file(d.path().join("root/sub/b")).unwrap();
        std::fs::write(d.path().join(FILE), "{not json").unwrap();
        let got = refresh(d.path()).unwrap();
        assert_eq!(got.keys().collect::<Vec<_>>(), ["a"]);
        let cache: BTreeMap<String, Known> =
            serde_json::from_slice(&std::fs::read(d.path().join(FILE)).unwrap()).unwrap();
        assert_eq!(cache.keys().collect::<Vec<_>>(), ["a"]);
    }
}
