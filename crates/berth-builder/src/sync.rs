//! Build contexts kept in sync with the client (see `berth_api::models::build` for the
//! protocol), so a rebuild sends and hashes only what changed.
//!
//! # Layout
//!
//! ```text
//! <store>/<key>/root         the context's files, owned by root, as the client has them
//!              /index.json   path → kind, mode, size, mtime, link target, content digest
//!              /lock         flock'd while a build reads or updates the copy
//! ```
//!
//! # Contract
//!
//! - **The index describes `root` exactly, or is absent.** It is removed before `root` is
//!   touched and written (atomically) once `root` matches the manifest again, so a daemon
//!   that dies mid-update leaves no index and the next build starts from an empty copy.
//! - **Nothing outside `root` is ever written or removed**: the tar is unpacked with the
//!   archive crate's confined `apply`, removals resolve their parent inside `root`, and a
//!   walk removes anything the manifest does not list (a client cannot smuggle files in).
//! - **A build holds the lock until its `Context` is dropped**, so a concurrent sync of the
//!   same directory waits instead of changing files under a running COPY.
//! - The store keeps at most [`MAX_CONTEXTS`] copies; the least recently used unlocked
//!   ones go first. `builder prune --all` removes every unlocked copy.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, Mode, OFlags};
use serde::{Deserialize, Serialize};

use berth_api::models::build::{ContextEntry, ContextManifest, valid_context_key};
use berth_archive::apply::{ApplyOptions, Whiteouts, apply, remove_existing};
use berth_archive::paths::{clean_entry_path, open_in_root, split_parent};

use crate::context::Context;
use crate::secrets::{Secrets, SshAgents};
use crate::{BuildError, Result};

/// How many context copies the store keeps.
pub const MAX_CONTEXTS: usize = 16;

/// Upper bound on a manifest's encoded size (about a million entries).
const MAX_MANIFEST: u64 = 256 << 20;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Stored {
    #[serde(flatten)]
    entry: ContextEntry,
    /// `sha256` hex of a file's content.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    digest: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    entries: BTreeMap<String, Stored>,
}

impl Index {
    /// The content digests of the files, by path.
    fn digests(&self) -> HashMap<String, String> {
        self.entries.iter().filter(|(_, s)| !s.digest.is_empty()).map(|(p, s)| (p.clone(), s.digest.clone())).collect()
    }
}

/// Whether the copy holds `e` as the client has it.
fn same(s: &Stored, e: &ContextEntry) -> bool {
    let s = &s.entry;
    s.kind == e.kind
        && s.mode == e.mode
        && (e.kind == 'd' || (s.size == e.size && s.mtime == e.mtime && s.link == e.link))
}

/// Checks paths, kinds and that every entry's parent comes before it as a directory.
fn validate(m: &ContextManifest) -> Result<()> {
    let mut dirs = std::collections::HashSet::new();
    for e in &m.entries {
        let bad = |why: &str| BuildError::Invalid(format!("invalid build context manifest: {:?}: {why}", e.path));
        match clean_entry_path(&e.path) {
            Ok(Some(p)) if p == e.path => {}
            _ => return Err(bad("not a clean relative path")),
        }
        if !matches!(e.kind, 'f' | 'd' | 'l') {
            return Err(bad("unknown entry kind"));
        }
        let (parent, _) = split_parent(&e.path);
        if !parent.is_empty() && !dirs.contains(parent) {
            return Err(bad("listed before its directory"));
        }
        if e.kind == 'd' && !dirs.insert(e.path.as_str()) {
            return Err(bad("listed twice"));
        }
    }
    Ok(())
}

pub struct ContextStore {
    dir: PathBuf,
}

impl ContextStore {
    pub fn new(dir: PathBuf) -> ContextStore {
        ContextStore { dir }
    }

    fn entry_dir(&self, key: &str) -> Result<PathBuf> {
        if !valid_context_key(key) {
            return Err(BuildError::Invalid(format!("invalid build context key {key:?}: want 64 hex digits")));
        }
        Ok(self.dir.join(key))
    }

    fn load(dir: &Path) -> Option<Index> {
        let bytes = std::fs::read(dir.join("index.json")).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Phase one: the manifest's paths the copy named `key` lacks or holds in another version.
    pub fn diff(&self, key: &str, m: &ContextManifest) -> Result<Vec<String>> {
        let dir = self.entry_dir(key)?;
        validate(m)?;
        let index = Self::load(&dir).unwrap_or_default();
        Ok(m.entries
            .iter()
            .filter(|e| !index.entries.get(&e.path).is_some_and(|s| same(s, e)))
            .map(|e| e.path.clone())
            .collect())
    }

    /// Phase two: brings the copy named `key` in line with the framed manifest and tar in
    /// `input`, and opens it as the build's context (locked until the context is dropped),
    /// with the secrets the manifest carried.
    /// [`BuildError::Conflict`] if the copy still differs from the manifest afterwards.
    pub fn open(&self, key: &str, mut input: impl Read, dockerfile: &str) -> Result<(Context, Secrets, SshAgents)> {
        let dir = self.entry_dir(key)?;
        let lock = self.lock_copy(&dir)?;

        let mut len = [0u8; 8];
        input.read_exact(&mut len).map_err(|e| BuildError::io("reading the context manifest", e))?;
        let len = u64::from_be_bytes(len);
        if len > MAX_MANIFEST {
            return Err(BuildError::Invalid(format!("build context manifest too large ({len} bytes)")));
        }
        let mut raw = vec![0u8; len as usize];
        input.read_exact(&mut raw).map_err(|e| BuildError::io("reading the context manifest", e))?;
        let mut manifest: ContextManifest = serde_json::from_slice(&raw)
            .map_err(|e| BuildError::Invalid(format!("invalid build context manifest: {e}")))?;
        raw.fill(0);
        let mut secrets = Secrets::default();
        for (id, value) in std::mem::take(&mut manifest.secrets).0 {
            if value.len() > 2 * crate::secrets::MAX_SECRET {
                return Err(BuildError::Invalid(format!(
                    "secret {id} is larger than {} KiB",
                    crate::secrets::MAX_SECRET >> 10
                )));
            }
            let bytes = hex::decode(&value)
                .map_err(|_| BuildError::Invalid(format!("invalid build context manifest: secret {id} is not hex")))?;
            secrets.insert(id, bytes);
        }
        let mut ssh = SshAgents::new();
        for (id, path) in std::mem::take(&mut manifest.ssh) {
            let is_socket = std::fs::metadata(&path).is_ok_and(|m| {
                use std::os::unix::fs::FileTypeExt;
                m.file_type().is_socket()
            });
            if !is_socket {
                return Err(BuildError::Invalid(format!(
                    "--ssh {id}={path}: no such socket on the daemon's host (berth forwards an SSH agent to a daemon on the same host only)"
                )));
            }
            ssh.insert(id, path.into());
        }
        validate(&manifest)?;
        Ok((self.update(key, &dir, lock, &manifest, input, dockerfile)?, secrets, ssh))
    }

    /// The rest of [`ContextStore::open`]: the copy made to match `manifest`.
    fn update(
        &self,
        key: &str,
        dir: &Path,
        lock: std::fs::File,
        manifest: &ContextManifest,
        mut input: impl Read,
        dockerfile: &str,
    ) -> Result<Context> {
        let root = dir.join("root");

        let mut index = match Self::load(dir) {
            Some(i) => i,
            None => {
                // No index: the copy is unknown (first use, or an update was cut short).
                std::fs::remove_dir_all(&root).map_err(|e| BuildError::io("clearing the context copy", e))?;
                std::fs::create_dir_all(&root).map_err(|e| BuildError::io("creating the context copy", e))?;
                Index::default()
            }
        };
        let wanted: HashMap<&str, &ContextEntry> = manifest.entries.iter().map(|e| (e.path.as_str(), e)).collect();
        let root_fd = rustix::fs::open(&root, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| BuildError::io("opening the context copy", e.into()))?;

        // What the manifest dropped, or holds as another kind: deepest first.
        let mut gone: Vec<String> = index
            .entries
            .iter()
            .filter(|(p, s)| wanted.get(p.as_str()).is_none_or(|e| e.kind != s.entry.kind))
            .map(|(p, _)| p.clone())
            .collect();
        gone.sort_by_key(|p| std::cmp::Reverse(p.matches('/').count()));
        // An empty tar (its first block zero) and nothing gone or different: the copy is
        // already what the client has, and is neither touched nor re-indexed.
        let mut first = [0u8; 512];
        input.read_exact(&mut first).map_err(|e| BuildError::io("reading the build context", e))?;
        let unchanged = first.iter().all(|b| *b == 0)
            && gone.is_empty()
            && manifest.entries.iter().all(|e| index.entries.get(&e.path).is_some_and(|s| same(s, e)));
        // (A `.dockerignore` may still remove files: then the index goes first, as below.)
        if unchanged && !root.join(".dockerignore").exists() {
            std::io::copy(&mut input, &mut std::io::sink())
                .map_err(|e| BuildError::io("reading the build context", e))?;
            let mut ctx = Context::synced(dir.to_path_buf(), lock, HashMap::new());
            ctx.finish(dockerfile)?;
            ctx.digests = index.digests();
            // Marks the copy used, for eviction.
            let _ = std::fs::File::options()
                .write(true)
                .open(dir.join("index.json"))
                .and_then(|f| f.set_modified(std::time::SystemTime::now()));
            return Ok(ctx);
        }
        let input = std::io::Cursor::new(first).chain(input);
        match std::fs::remove_file(dir.join("index.json")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(BuildError::io("updating the context index", e));
            }
            _ => {}
        }
        for p in &gone {
            let (parent, name) = split_parent(p);
            match open_in_root(&root_fd, parent, OFlags::PATH | OFlags::DIRECTORY) {
                Ok(pfd) => remove_existing(&pfd, name, p)?,
                Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => {}
                Err(e) => return Err(BuildError::io(format!("opening {p}"), e.into())),
            }
            index.entries.remove(p);
        }

        let opts = ApplyOptions { whiteouts: Whiteouts::Plain, chown: Some((0, 0)), ..Default::default() };
        let applied = apply(input, &root, &opts)
            .map_err(|e| BuildError::Invalid(format!("the build context is not a valid tar archive: {e}")))?;
        if applied.tar_size > 1024 {
            remove_unlisted(&root, "", &wanted)?;
        }

        // Every entry must now be what the client has; what arrived gets hashed.
        for e in &manifest.entries {
            if index.entries.get(&e.path).is_some_and(|s| same(s, e)) {
                continue;
            }
            let conflict = |why: &str| {
                BuildError::Conflict(format!(
                    "the build context changed while it was being sent ({}: {why}); run the build again",
                    e.path
                ))
            };
            let fd = match open_in_root(&root_fd, &e.path, OFlags::PATH | OFlags::NOFOLLOW) {
                Ok(fd) => fd,
                Err(_) => return Err(conflict("missing")),
            };
            let st =
                rustix::fs::fstat(&fd).map_err(|err| BuildError::io(format!("inspecting {}", e.path), err.into()))?;
            let meta_kind = match rustix::fs::FileType::from_raw_mode(st.st_mode) {
                rustix::fs::FileType::RegularFile => 'f',
                rustix::fs::FileType::Directory => 'd',
                rustix::fs::FileType::Symlink => 'l',
                _ => '?',
            };
            if meta_kind != e.kind
                || (e.kind != 'l' && st.st_mode & 0o7777 != e.mode & 0o7777)
                || (e.kind == 'f' && st.st_size as u64 != e.size)
            {
                return Err(conflict("not as listed"));
            }
            let digest = if e.kind == 'f' {
                let f = open_in_root(&root_fd, &e.path, OFlags::RDONLY | OFlags::NOFOLLOW)
                    .map_err(|err| BuildError::io(format!("reading {}", e.path), err.into()))?;
                crate::known_digests::sha256_of(std::fs::File::from(f))
                    .map_err(|err| BuildError::io(format!("reading {}", e.path), err))?
            } else {
                String::new()
            };
            index.entries.insert(e.path.clone(), Stored { entry: e.clone(), digest });
        }

        drop(root_fd);
        let mut ctx = Context::synced(dir.to_path_buf(), lock, HashMap::new());
        let pruned = ctx.finish(dockerfile)?;
        self.reindex(dir, key, index, &pruned, ctx)
    }

    /// Drops what `.dockerignore` removed from `index`, hands the digests to `ctx`, writes
    /// the index (the copy is consistent again) and makes room in the store.
    fn reindex(&self, dir: &Path, key: &str, mut index: Index, pruned: &[String], mut ctx: Context) -> Result<Context> {
        for p in pruned {
            let under = format!("{p}/");
            index.entries.retain(|k, _| k != p && !k.starts_with(&under));
        }
        ctx.digests = index.digests();
        let tmp = dir.join("index.json.tmp");
        let bytes =
            serde_json::to_vec(&index).map_err(|e| BuildError::Internal(format!("encoding the context index: {e}")))?;
        std::fs::write(&tmp, bytes)
            .and_then(|_| std::fs::rename(&tmp, dir.join("index.json")))
            .map_err(|e| BuildError::io("writing the context index", e))?;
        self.evict(key);
        Ok(ctx)
    }

    /// Creates (if need be) and locks the copy in `dir`. Eviction may remove a copy between
    /// our opening its lock file and getting the lock; then the lock is on a file that is
    /// gone, and we start again.
    fn lock_copy(&self, dir: &Path) -> Result<std::fs::File> {
        loop {
            std::fs::create_dir_all(dir.join("root")).map_err(|e| BuildError::io("creating the context copy", e))?;
            let lock = match std::fs::File::create(dir.join("lock")) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(BuildError::io("creating the context lock", e)),
            };
            rustix::fs::flock(&lock, FlockOperation::LockExclusive)
                .map_err(|e| BuildError::io("locking the context copy", e.into()))?;
            let still_there = match (lock.metadata(), std::fs::metadata(dir.join("lock"))) {
                (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
                _ => false,
            };
            if still_there {
                return Ok(lock);
            }
        }
    }

    /// A copy that a BuildKit client's session keeps up to date itself (its file transfer
    /// sends only what changed, see `berth_buildkit::fsutil`): locked, and without an index,
    /// which describes only what berth's CLI synced. Blocking (waits for a build using it).
    pub fn open_for_transfer(&self, key: &str) -> Result<TransferCopy> {
        let dir = self.entry_dir(key)?;
        let lock = self.lock_copy(&dir)?;
        let _ = std::fs::remove_file(dir.join("index.json"));
        std::fs::create_dir_all(dir.join("root")).map_err(|e| BuildError::io("creating the context copy", e))?;
        self.evict(key);
        Ok(TransferCopy { dir, lock })
    }

    /// Removes the least recently used unlocked copies beyond [`MAX_CONTEXTS`].
    fn evict(&self, keep: &str) {
        let Ok(rd) = std::fs::read_dir(&self.dir) else { return };
        let mut all: Vec<(std::time::SystemTime, PathBuf)> = rd
            .flatten()
            .filter(|e| e.file_name() != keep)
            .map(|e| {
                let used = std::fs::metadata(e.path().join("index.json"))
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                (used, e.path())
            })
            .collect();
        if all.len() < MAX_CONTEXTS {
            return;
        }
        all.sort();
        let extra = all.len() + 1 - MAX_CONTEXTS;
        for (_, p) in all.into_iter().take(extra) {
            remove_if_unlocked(&p);
        }
    }

    /// Removes every copy no build is using; returns the bytes freed.
    pub fn prune(&self) -> i64 {
        let Ok(rd) = std::fs::read_dir(&self.dir) else { return 0 };
        rd.flatten().map(|e| remove_if_unlocked(&e.path())).sum()
    }
}

/// A locked copy for a session's transfer ([`ContextStore::open_for_transfer`]).
pub struct TransferCopy {
    dir: PathBuf,
    lock: std::fs::File,
}

impl TransferCopy {
    /// Where the files go.
    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// The copy as a build's context; it stays locked until the context is dropped. The
    /// files' content digests come along (see [`crate::known_digests`]): only files that
    /// changed since the last build are read. Blocks while it reads them.
    pub fn into_context(self, dockerfile: String, dockerfile_name: &str) -> Result<Context> {
        let digests = crate::known_digests::refresh(&self.dir)?;
        let mut ctx = Context::synced(self.dir, self.lock, digests);
        ctx.dockerfile = dockerfile;
        ctx.dockerfile_name = dockerfile_name.to_string();
        Ok(ctx)
    }
}

fn remove_if_unlocked(dir: &Path) -> i64 {
    let Ok(lock) = std::fs::File::open(dir.join("lock")) else {
        let size = du(dir);
        return if std::fs::remove_dir_all(dir).is_ok() { size } else { 0 };
    };
    if rustix::fs::flock(&lock, FlockOperation::NonBlockingLockExclusive).is_err() {
        return 0;
    }
    let size = du(dir);
    if std::fs::remove_dir_all(dir).is_ok() { size } else { 0 }
}

fn du(p: &Path) -> i64 {
    let Ok(m) = std::fs::symlink_metadata(p) else { return 0 };
    let mut n = m.blocks() as i64 * 512;
    if m.is_dir()
        && let Ok(rd) = std::fs::read_dir(p)
    {
        n += rd.flatten().map(|e| du(&e.path())).sum::<i64>();
    }
    n
}

/// Removes whatever is under `root/rel` that the manifest does not list.
fn remove_unlisted(root: &Path, rel: &str, wanted: &HashMap<&str, &ContextEntry>) -> Result<()> {
    for (child, e, is_dir) in crate::context::children(root, rel)? {
        if !wanted.contains_key(child.as_str()) {
            let res = if is_dir { std::fs::remove_dir_all(e.path()) } else { std::fs::remove_file(e.path()) };
            res.map_err(|err| BuildError::io(format!("removing {child}"), err))?;
        } else if is_dir {
            remove_unlisted(root, &child, wanted)?;
        }
    }
    Ok(())
}
