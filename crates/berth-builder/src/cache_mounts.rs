//! The directories behind `RUN --mount=type=cache`: kept between builds, never part of a
//! layer or a cache key, removed by `builder prune`.
//!
//! # Layout
//!
//! ```text
//! <root>/<name>/data     what the RUN steps see at the mount's target
//!              /lock     flock'd while a step uses `data` (shared or exclusive, below)
//!              /info.json  the mount's id and settings, for `system df`
//! ```
//!
//! `<name>` is the SHA-256 of the mount's id, its `from` image and `source` (a cache
//! seeded from another image is another cache), and an instance number: `sharing=private`
//! makes a new instance when every existing one is busy.
//!
//! # Contract
//!
//! - **A step holds a [`CacheGuard`] for as long as its container may touch `data`.**
//!   `shared` takes the lock shared, so any number of steps use the directory at once;
//!   `locked` takes it exclusively and waits; `private` takes the first instance it can
//!   lock exclusively without waiting, making a new one if all are busy.
//! - **A new directory is complete before anyone sees it**: it is made (owner, mode,
//!   seeded from `from`) under a temporary name and renamed into place.
//! - **Prune removes only what nobody holds**: it takes each lock exclusively without
//!   waiting and skips the busy ones.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use berth_dockerfile::run_flags::Sharing;

use crate::{BuildError, Result};

/// What a cache mount is, as recorded next to its data.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CacheMountInfo {
    pub id: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub created: String,
}

/// One cache mount directory as `system df` shows it.
#[derive(Debug, Clone)]
pub struct CacheMountUsage {
    /// The directory's name (hex).
    pub name: String,
    pub info: CacheMountInfo,
    pub size: i64,
    pub in_use: bool,
    pub last_used: Option<std::time::SystemTime>,
}

/// A cache directory in use; the lock is released when it is dropped.
pub struct CacheGuard {
    _lock: std::fs::File,
    pub data: PathBuf,
    /// This daemon's hold on the cache ([`CacheMounts::gate`]), released with the lock.
    pub gate: Option<Gate>,
}

/// A step's turn at a cache among this daemon's builds: shared for `sharing=shared`,
/// exclusive for `locked`.
pub enum Gate {
    Shared(tokio::sync::OwnedRwLockReadGuard<()>),
    Exclusive(tokio::sync::OwnedRwLockWriteGuard<()>),
}

/// What a step asks for.
pub struct CacheRequest<'a> {
    pub id: &'a str,
    pub sharing: Sharing,
    /// The `from` image's ID (empty: none) and the path in it that seeds a new cache.
    pub from: &'a str,
    pub source: &'a str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

pub struct CacheMounts {
    root: PathBuf,
    /// One async lock per cache: builds of this daemon wait for a cache here, holding no
    /// thread, before they take its file lock (which then never blocks, unless another
    /// process uses the same directory). Waiting in `flock` held a blocking thread per
    /// waiter: 512 waiters filled tokio's pool and the holder could never finish.
    gates: std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::RwLock<()>>>>,
}

fn io(what: &str, p: &Path, e: std::io::Error) -> BuildError {
    BuildError::io(format!("{what} {}", p.display()), e)
}

impl CacheMounts {
    pub fn new(root: PathBuf) -> Result<CacheMounts> {
        std::fs::create_dir_all(&root).map_err(|e| io("creating", &root, e))?;
        // Directories half made or half pruned by a daemon that died.
        if let Ok(rd) = std::fs::read_dir(&root) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with(".new-") || !e.path().join("lock").exists() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        Ok(CacheMounts { root, gates: Default::default() })
    }

    /// Waits (asynchronously) for this daemon's turn at the cache `r` asks for; `waiting`
    /// is called first when the turn is not free. `private` needs none: it takes another
    /// directory rather than wait.
    pub async fn gate(&self, r: &CacheRequest<'_>, waiting: impl FnOnce()) -> Option<Gate> {
        let lock = {
            let mut gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
            // Forget gates nobody holds or waits for.
            gates.retain(|_, g| std::sync::Arc::strong_count(g) > 1);
            gates.entry(Self::base_name(r)).or_default().clone()
        };
        match r.sharing {
            Sharing::Private => None,
            Sharing::Shared => Some(Gate::Shared(match lock.clone().try_read_owned() {
                Ok(g) => g,
                Err(_) => {
                    waiting();
                    lock.read_owned().await
                }
            })),
            Sharing::Locked => Some(Gate::Exclusive(match lock.clone().try_write_owned() {
                Ok(g) => g,
                Err(_) => {
                    waiting();
                    lock.write_owned().await
                }
            })),
        }
    }

    fn base_name(r: &CacheRequest) -> String {
        let mut h = Sha256::new();
        for part in [r.id, r.from, r.source] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        hex::encode(h.finalize())
    }

    /// Gets (making it if need be) and locks the directory for `r`. Blocking: `locked`
    /// waits for other users, calling `waiting` first. `seed` fills a new directory
    /// (from `from`/`source`).
    pub fn acquire(
        &self,
        r: &CacheRequest,
        seed: &dyn Fn(&Path) -> Result<()>,
        waiting: &dyn Fn(),
    ) -> Result<CacheGuard> {
        let base = Self::base_name(r);
        let mut instance = 0usize;
        loop {
            let name = if instance == 0 { base.clone() } else { format!("{base}-{instance}") };
            let dir = self.root.join(&name);
            if !dir.exists() {
                self.create(&dir, r, seed)?;
            }
            let lock = match std::fs::File::open(dir.join("lock")) {
                Ok(f) => f,
                // Being pruned, or left half pruned by a daemon that died: finish the removal
                // and make it again (a directory without its lock is never made whole).
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let _ = std::fs::remove_dir_all(&dir);
                    continue;
                }
                Err(e) => return Err(io("opening", &dir.join("lock"), e)),
            };
            let op = match r.sharing {
                Sharing::Shared => FlockOperation::NonBlockingLockShared,
                Sharing::Locked | Sharing::Private => FlockOperation::NonBlockingLockExclusive,
            };
            match (rustix::fs::flock(&lock, op), r.sharing) {
                (Ok(()), _) => {}
                (Err(rustix::io::Errno::WOULDBLOCK), Sharing::Private) => {
                    instance += 1;
                    continue;
                }
                (Err(rustix::io::Errno::WOULDBLOCK), _) => {
                    waiting();
                    let op = match r.sharing {
                        Sharing::Shared => FlockOperation::LockShared,
                        _ => FlockOperation::LockExclusive,
                    };
                    rustix::fs::flock(&lock, op).map_err(|e| io("locking", &dir, e.into()))?;
                }
                (Err(e), _) => return Err(io("locking", &dir, e.into())),
            }
            // A prune may have removed the directory while we waited for the lock.
            if !dir.join("lock").exists() {
                continue;
            }
            let _ = std::fs::File::open(dir.join("data")).and_then(|f| f.set_modified(std::time::SystemTime::now()));
            return Ok(CacheGuard { _lock: lock, data: dir.join("data"), gate: None });
        }
    }

    fn create(&self, dir: &Path, r: &CacheRequest, seed: &dyn Fn(&Path) -> Result<()>) -> Result<()> {
        let tmp = self.root.join(format!(".new-{}", &berth_api::ids::random_id()[..16]));
        let made = (|| {
            let data = tmp.join("data");
            std::fs::create_dir_all(&data).map_err(|e| io("creating", &data, e))?;
            seed(&data)?;
            std::os::unix::fs::chown(&data, Some(r.uid), Some(r.gid)).map_err(|e| io("chown", &data, e))?;
            std::fs::set_permissions(&data, std::fs::Permissions::from_mode(r.mode & 0o7777))
                .map_err(|e| io("chmod", &data, e))?;
            std::fs::write(tmp.join("lock"), b"").map_err(|e| io("creating", &tmp.join("lock"), e))?;
            let info = CacheMountInfo {
                id: r.id.to_string(),
                from: r.from.to_string(),
                source: r.source.to_string(),
                created: berth_api::time::rfc3339_now(),
            };
            let json = serde_json::to_vec(&info).map_err(|e| BuildError::Internal(e.to_string()))?;
            std::fs::write(tmp.join("info.json"), json).map_err(|e| io("writing", &tmp, e))
        })();
        if let Err(e) = made {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        match std::fs::rename(&tmp, dir) {
            Ok(()) => Ok(()),
            // Another build made it first: use theirs.
            Err(_) if dir.exists() => {
                let _ = std::fs::remove_dir_all(&tmp);
                Ok(())
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                Err(io("renaming", &tmp, e))
            }
        }
    }

    fn dirs(&self) -> Vec<(String, PathBuf)> {
        let Ok(rd) = std::fs::read_dir(&self.root) else { return Vec::new() };
        rd.flatten()
            .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
            .filter(|(n, _)| !n.starts_with('.'))
            .collect()
    }

    /// Removes every cache directory no step is using; returns their names and the
    /// bytes freed.
    pub fn prune(&self) -> (Vec<String>, i64) {
        let mut removed = Vec::new();
        let mut freed = 0;
        for (name, dir) in self.dirs() {
            let Ok(lock) = std::fs::File::open(dir.join("lock")) else { continue };
            if rustix::fs::flock(&lock, FlockOperation::NonBlockingLockExclusive).is_err() {
                continue;
            }
            let size = du(&dir);
            // The lock file goes first: a waiter that then gets the lock sees it is gone.
            let _ = std::fs::remove_file(dir.join("lock"));
            if std::fs::remove_dir_all(&dir).is_ok() {
                removed.push(name);
                freed += size;
            }
        }
        (removed, freed)
    }

    /// Every cache directory, for `system df`.
    pub fn usage(&self) -> Vec<CacheMountUsage> {
        let mut out = Vec::new();
        for (name, dir) in self.dirs() {
            let Ok(text) = std::fs::read(dir.join("info.json")) else { continue };
            let Ok(info) = serde_json::from_slice::<CacheMountInfo>(&text) else { continue };
            let in_use = std::fs::File::open(dir.join("lock"))
                .map(|l| rustix::fs::flock(&l, FlockOperation::NonBlockingLockExclusive).is_err())
                .unwrap_or(false);
            let last_used = std::fs::metadata(dir.join("data")).and_then(|m| m.modified()).ok();
            out.push(CacheMountUsage { name, info, size: du(&dir), in_use, last_used });
        }
        out
    }
}

/// Bytes used under `p` (files' sizes, each hard-linked inode counted once per walk).
fn du(p: &Path) -> i64 {
    fn walk(p: &Path, seen: &mut std::collections::HashSet<(u64, u64)>) -> i64 {
        let Ok(m) = std::fs::symlink_metadata(p) else { return 0 };
        if m.is_dir() {
            let Ok(rd) = std::fs::read_dir(p) else { return 0 };
            return rd.flatten().map(|e| walk(&e.path(), seen)).sum();
        }
        if m.nlink() > 1 && !seen.insert((m.dev(), m.ino())) {
            return 0;
        }
        m.len() as i64
    }
    walk(p, &mut Default::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(id: &str, sharing: Sharing) -> CacheRequest<'_> {
        CacheRequest { id, sharing, from: "", source: "", mode: 0o750, uid: 0, gid: 0 }
    }

    #[test]
    fn a_cache_persists_and_private_users_get_their_own() {
        let t = tempfile::tempdir().unwrap();
        let store = CacheMounts::new(t.path().join("c")).unwrap();
        let none = |_: &Path| Ok(());
        let g = store.acquire(&req("go", Sharing::Shared), &none, &|| ()).unwrap();
        std::fs::write(g.data.join("f"), "1").unwrap();
        assert_eq!(std::fs::metadata(&g.data).unwrap().permissions().mode() & 0o7777, 0o750);
        let again = store.acquire(&req("go", Sharing::Shared), &none, &|| ()).unwrap();
        assert_eq!(again.data, g.data, "shared users see one directory");
        let private = store.acquire(&req("go", Sharing::Private), &none, &|| ()).unwrap();
        assert_ne!(private.data, g.data, "the shared one is busy: a private user gets another");
        assert!(!private.data.join("f").exists());
        assert_eq!(store.prune().0.len(), 0, "everything is in use");
        drop((g, again));
        let (removed, freed) = store.prune();
        assert_eq!(removed.len(), 1, "the unused directory goes");
        assert!(freed > 1, "with its file and its record: {freed}");
        drop(private);
        assert_eq!(store.usage().len(), 1);
        assert_eq!(store.prune().0.len(), 1);
        assert!(store.usage().is_empty());
    }

    #[test]
    fn a_new_cache_is_seeded() {
        let t = tempfile::tempdir().unwrap();
        let store = CacheMounts::new(t.path().join("c")).unwrap();
        let seed = |d: &Path| std::fs::write(d.join("seeded"), "x").map_err(|e| io("seeding", d, e));
        let g = store.acquire(&CacheRequest { from: "sha256:1", ..req("s", Sharing::Locked) }, &seed, &|| ()).unwrap();
        assert!(g.data.join("seeded").exists());
    }
}
