//! The overlayfs snapshotter. Layout under its root:
//!
//! ```text
//! layers/<first 16 hex of diff id>/diff       the layer's files
//! layers/<…>/layer.json                        LayerInfo
//! layers/<…>/tar-split                         the skeleton
//! layers/<…>/unsynced                          published without syncing (boot ID)
//! containers/<first 16 hex of id>/{upper,work} active snapshots
//! containers/<…>/init                          mount points every container needs
//! staging/<random>/                            unpacking in progress (swept at start)
//! empty/                                       the lower directory of layerless roots
//! ```

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use berth_archive::skeleton::Skeleton;

use super::{LayerInfo, MountSpec};
use crate::{Result, StoreError, sync_dir};

pub struct Snapshotter {
    root: PathBuf,
    /// Layers published without syncing, waiting for [`Snapshotter::sync_pending`].
    pending: Mutex<Vec<PathBuf>>,
}

/// In a layer published without syncing: the boot ID of the kernel whose page cache held it.
const UNSYNCED: &str = "unsynced";

fn boot_id() -> String {
    fs::read_to_string("/proc/sys/kernel/random/boot_id").map(|s| s.trim().to_string()).unwrap_or_default()
}

/// Directories of the init layer (mount points of the runtime's filesystems), as Docker's
/// init layer has them.
const INIT_DIRS: &[&str] = &["proc", "sys", "dev", "dev/pts", "dev/shm", "etc"];
/// Files of the init layer (targets of the daemon's and the runtime's bind mounts).
const INIT_FILES: &[&str] = &["etc/hosts", "etc/hostname", "etc/resolv.conf", ".dockerenv", "dev/console"];
/// Symbolic links of the init layer: `/etc/mtab`, which tools such as `mount` and `df` read.
const INIT_LINKS: &[(&str, &str)] = &[("etc/mtab", "/proc/mounts")];

/// A directory being filled with a layer. Dropping it without committing deletes it.
pub struct Staging {
    dir: PathBuf,
    done: bool,
}

impl Staging {
    /// Where the layer's files go.
    pub fn path(&self) -> PathBuf {
        self.dir.join("diff")
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.done
            && let Err(e) = fs::remove_dir_all(&self.dir)
        {
            // `sweep` removes it at the next start.
            tracing::warn!(dir = %self.dir.display(), "removing an unfinished layer: {e}");
        }
    }
}

fn short(id: &str) -> Result<&str> {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    if hex.len() < 16 || !berth_api::ids::is_id_prefix(hex) {
        return Err(StoreError::Invalid(format!("invalid identifier {id:?}")));
    }
    Ok(&hex[..16])
}

fn mkdirs(p: &Path) -> Result<()> {
    fs::create_dir_all(p).map_err(|e| StoreError::io(format!("creating {}", p.display()), e))
}

impl Snapshotter {
    pub fn open(root: &Path) -> Result<Snapshotter> {
        for d in ["layers", "containers", "staging", "empty"] {
            mkdirs(&root.join(d))?;
        }
        Ok(Snapshotter { root: root.to_path_buf(), pending: Mutex::new(Vec::new()) })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn stage(&self) -> Result<Staging> {
        let dir = self.root.join("staging").join(berth_api::ids::random_id());
        mkdirs(&dir.join("diff"))?;
        Ok(Staging { dir, done: false })
    }

    fn layer_root(&self, diff_id: &str) -> Result<PathBuf> {
        Ok(self.root.join("layers").join(short(diff_id)?))
    }

    /// Publishes a staged layer under `diff_id`, durably: its files are on disk before it
    /// becomes visible. If the layer already exists the staging directory is discarded and
    /// the existing layer returned.
    pub fn commit_layer(
        &self,
        staging: Staging,
        diff_id: &str,
        tar_size: u64,
        size: u64,
        skeleton: &Skeleton,
    ) -> Result<LayerInfo> {
        self.publish(staging, diff_id, tar_size, size, skeleton, true)
    }

    /// Like [`Snapshotter::commit_layer`], without waiting for the disk: for the builder,
    /// whose steps would otherwise each flush the whole filesystem. The layer carries a
    /// marker until [`Snapshotter::sync_pending`] has made it durable; one found at start
    /// from an earlier boot is verified ([`Snapshotter::recover_unsynced`]).
    pub fn commit_layer_deferred(
        &self,
        staging: Staging,
        diff_id: &str,
        tar_size: u64,
        size: u64,
        skeleton: &Skeleton,
    ) -> Result<LayerInfo> {
        self.publish(staging, diff_id, tar_size, size, skeleton, false)
    }

    fn publish(
        &self,
        mut staging: Staging,
        diff_id: &str,
        tar_size: u64,
        size: u64,
        skeleton: &Skeleton,
        durable: bool,
    ) -> Result<LayerInfo> {
        let dest = self.layer_root(diff_id)?;
        if let Some(existing) = self.layer(diff_id)? {
            return Ok(existing);
        }
        if dest.exists() {
            // A directory without a readable record: a different layer sharing the 64-bit
            // prefix would be astronomically unlikely; damage is likelier. Refuse either way.
            return Err(StoreError::Invalid(format!(
                "layer directory {} exists but does not hold {diff_id}",
                dest.display()
            )));
        }
        let info = LayerInfo { diff_id: diff_id.to_string(), tar_size, size, has_skeleton: true };
        let write = |name: &str, data: &[u8]| -> Result<()> {
            let p = staging.dir.join(name);
            let mut f = fs::File::create(&p).map_err(|e| StoreError::io(format!("writing {}", p.display()), e))?;
            f.write_all(data)
                .and_then(|_| if durable { f.sync_all() } else { Ok(()) })
                .map_err(|e| StoreError::io(format!("writing {}", p.display()), e))
        };
        write("tar-split", &skeleton.encode())?;
        write("layer.json", &serde_json::to_vec(&info).unwrap_or_default())?;
        if durable {
            // One syncfs makes every unpacked file durable before the layer becomes visible; a
            // layer that cannot be made so is not published as if it were.
            let synced = fs::File::open(&staging.dir).and_then(|f| rustix::fs::syncfs(&f).map_err(Into::into));
            synced.map_err(|e| StoreError::io(format!("syncing layer {diff_id}"), e))?;
        } else {
            write(UNSYNCED, boot_id().as_bytes())?;
        }
        fs::rename(&staging.dir, &dest).map_err(|e| StoreError::io(format!("publishing layer {diff_id}"), e))?;
        staging.done = true;
        if durable {
            sync_dir(&self.root.join("layers"))?;
        } else {
            self.pending.lock().unwrap_or_else(|p| p.into_inner()).push(dest);
        }
        Ok(info)
    }

    /// Makes every layer published without syncing durable (one `syncfs`) and drops their
    /// markers.
    pub fn sync_pending(&self) {
        let dirs = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        if dirs.is_empty() {
            return;
        }
        let layers = self.root.join("layers");
        let synced = fs::File::open(&layers)
            .and_then(|f| rustix::fs::syncfs(&f).map_err(Into::into))
            .map_err(|e| StoreError::io(format!("syncing {}", layers.display()), e))
            .and_then(|()| sync_dir(&layers));
        if let Err(e) = synced {
            // Not durable: the markers stay, and the layers wait for the next call (or for
            // `recover_unsynced` at the next start).
            tracing::warn!(layers = dirs.len(), "making new layers durable: {e}");
            self.pending.lock().unwrap_or_else(|p| p.into_inner()).extend(dirs);
            return;
        }
        for d in dirs {
            // A marker that stays costs a check of the layer at the next start.
            if let Err(e) = fs::remove_file(d.join(UNSYNCED)) {
                tracing::warn!(layer = %d.display(), "removing the layer's unsynced marker: {e}");
            }
        }
    }

    /// At start: layers published without syncing. Those written in this boot are intact in
    /// the page cache (only the daemon stopped) and are synced now; those from an earlier
    /// boot may have lost data with the host, so each is re-hashed from its files and
    /// removed if it no longer matches its diff ID. Returns the removed layers.
    pub fn recover_unsynced(&self) -> Result<Vec<String>> {
        let now = boot_id();
        let mut damaged = Vec::new();
        let dir = self.root.join("layers");
        let rd = fs::read_dir(&dir).map_err(|e| StoreError::io(format!("reading {}", dir.display()), e))?;
        for e in rd.flatten() {
            let Ok(boot) = fs::read_to_string(e.path().join(UNSYNCED)) else { continue };
            let info: Option<LayerInfo> =
                fs::read(e.path().join("layer.json")).ok().and_then(|b| serde_json::from_slice(&b).ok());
            let intact = match &info {
                Some(_) if boot.trim() == now && !now.is_empty() => true,
                Some(info) => {
                    let mut sink = berth_archive::hash::HashingWriter::new(std::io::sink());
                    self.write_layer_tar(&info.diff_id, &mut sink).is_ok() && sink.finish().0 == info.diff_id
                }
                None => false,
            };
            if intact {
                self.pending.lock().unwrap_or_else(|p| p.into_inner()).push(e.path());
                continue;
            }
            match info {
                Some(info) => {
                    self.remove_layer(&info.diff_id)?;
                    damaged.push(info.diff_id);
                }
                None => {
                    if let Err(err) = fs::remove_dir_all(e.path()) {
                        tracing::warn!(dir = %e.path().display(), "removing a damaged layer: {err}");
                    }
                    damaged.push(e.file_name().to_string_lossy().into_owned());
                }
            }
        }
        self.sync_pending();
        Ok(damaged)
    }

    pub fn layer(&self, diff_id: &str) -> Result<Option<LayerInfo>> {
        let p = self.layer_root(diff_id)?.join("layer.json");
        match fs::read(&p) {
            Ok(b) => {
                let info: LayerInfo = serde_json::from_slice(&b)
                    .map_err(|e| StoreError::Invalid(format!("layer record {}: {e}", p.display())))?;
                if info.diff_id != diff_id {
                    return Ok(None);
                }
                Ok(Some(info))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io(format!("reading {}", p.display()), e)),
        }
    }

    /// Every layer present.
    pub fn layers(&self) -> Result<Vec<LayerInfo>> {
        let mut out = Vec::new();
        let dir = self.root.join("layers");
        for e in fs::read_dir(&dir).map_err(|e| StoreError::io("listing layers", e))? {
            let e = e.map_err(|e| StoreError::io("listing layers", e))?;
            if let Ok(b) = fs::read(e.path().join("layer.json"))
                && let Ok(info) = serde_json::from_slice::<LayerInfo>(&b)
            {
                out.push(info);
            }
        }
        Ok(out)
    }

    /// The directory holding a layer's files.
    pub fn layer_dir(&self, diff_id: &str) -> Result<PathBuf> {
        Ok(self.layer_root(diff_id)?.join("diff"))
    }

    /// Writes the layer's original tar stream.
    pub fn write_layer_tar(&self, diff_id: &str, out: &mut dyn Write) -> Result<u64> {
        let root = self.layer_root(diff_id)?;
        let sk = fs::read(root.join("tar-split")).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StoreError::NotFound(format!("layer {diff_id} not found")),
            _ => StoreError::io(format!("reading layer {diff_id}"), e),
        })?;
        let sk = Skeleton::decode(&sk)?;
        Ok(sk.write_tar(&root.join("diff"), out)?)
    }

    pub fn remove_layer(&self, diff_id: &str) -> Result<()> {
        let root = self.layer_root(diff_id)?;
        // Rename first so a half-deleted layer is never mistaken for a whole one.
        let doomed = self.root.join("staging").join(format!("rm-{}", berth_api::ids::random_id()));
        match fs::rename(&root, &doomed) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(StoreError::io(format!("removing layer {diff_id}"), e)),
        }
        fs::remove_dir_all(&doomed).map_err(|e| StoreError::io(format!("removing layer {diff_id}"), e))
    }

    fn active_root(&self, key: &str) -> Result<PathBuf> {
        Ok(self.root.join("containers").join(short(key)?))
    }

    /// Creates the writable layer for `key` over `layers` (bottom first, as in an image's
    /// `rootfs.diff_ids`) and returns how to mount it.
    pub fn prepare(&self, key: &str, layers: &[String]) -> Result<MountSpec> {
        let root = self.active_root(key)?;
        mkdirs(&root.join("upper"))?;
        mkdirs(&root.join("work"))?;
        // The init layer holds the mount points every container gets, so they never show
        // up as the container's own changes (diff, commit, export).
        let init = root.join("init");
        for d in INIT_DIRS {
            mkdirs(&init.join(d))?;
        }
        for f in INIT_FILES {
            let p = init.join(f);
            if let Some(parent) = p.parent() {
                mkdirs(parent)?;
            }
            fs::write(&p, b"").map_err(|e| StoreError::io(format!("creating {}", p.display()), e))?;
        }
        for (link, target) in INIT_LINKS {
            let p = init.join(link);
            match std::os::unix::fs::symlink(target, &p) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                    return Err(StoreError::io(format!("creating {}", p.display()), e));
                }
                _ => {}
            }
        }
        self.mounts(key, layers)
    }

    /// The mount of an existing active snapshot.
    pub fn mounts(&self, key: &str, layers: &[String]) -> Result<MountSpec> {
        let root = self.active_root(key)?;
        let mut lower = Vec::with_capacity(layers.len() + 1);
        if root.join("init").exists() {
            lower.push(root.join("init"));
        }
        for l in layers.iter().rev() {
            // The same layer twice (two build steps that changed the same files the same
            // way) would make overlayfs refuse the mount (ELOOP). The lower copy adds
            // nothing the upper one does not, so only the topmost is kept.
            let dir = self.layer_dir(l)?;
            if !lower.contains(&dir) {
                lower.push(dir);
            }
        }
        if lower.is_empty() {
            lower.push(self.root.join("empty"));
        }
        Ok(MountSpec { lower, upper: root.join("upper"), work: root.join("work") })
    }

    /// The directory receiving a container's changes.
    pub fn upper_dir(&self, key: &str) -> Result<PathBuf> {
        Ok(self.active_root(key)?.join("upper"))
    }

    pub fn remove(&self, key: &str) -> Result<()> {
        let root = self.active_root(key)?;
        let doomed = self.root.join("staging").join(format!("rm-{}", berth_api::ids::random_id()));
        match fs::rename(&root, &doomed) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(StoreError::io(format!("removing snapshot {key}"), e)),
        }
        fs::remove_dir_all(&doomed).map_err(|e| StoreError::io(format!("removing snapshot {key}"), e))
    }

    /// Keys (16-hex prefixes) of active snapshots, for sweeping those whose container is gone.
    pub fn active_keys(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for e in fs::read_dir(self.root.join("containers")).map_err(|e| StoreError::io("listing snapshots", e))? {
            let e = e.map_err(|e| StoreError::io("listing snapshots", e))?;
            out.push(e.file_name().to_string_lossy().into_owned());
        }
        Ok(out)
    }

    /// Removes an active snapshot by its directory name (see [`Snapshotter::active_keys`]).
    pub fn remove_by_short_key(&self, short_key: &str) -> Result<()> {
        if short_key.len() != 16 || !berth_api::ids::is_id_prefix(short_key) {
            return Err(StoreError::Invalid(format!("invalid snapshot key {short_key:?}")));
        }
        self.remove(short_key)
    }

    /// Deletes staging directories left by interrupted unpacks and removals.
    pub fn sweep(&self) -> Result<usize> {
        let mut n = 0;
        for e in fs::read_dir(self.root.join("staging")).map_err(|e| StoreError::io("listing staging", e))? {
            let e = e.map_err(|e| StoreError::io("listing staging", e))?;
            if let Err(err) = fs::remove_dir_all(e.path()) {
                tracing::warn!(dir = %e.path().display(), "removing an unfinished layer: {err}");
            }
            n += 1;
        }
        Ok(n)
    }
}

/// Bytes used by the files under `path` (not following symlinks), for `ps -s` and `df`.
pub fn dir_size(path: &Path) -> u64 {
    fn walk(p: &Path, seen: &mut std::collections::HashSet<(u64, u64)>) -> u64 {
        use std::os::unix::fs::MetadataExt;
        let Ok(md) = fs::symlink_metadata(p) else { return 0 };
        if md.is_dir() {
            let mut total = 0;
            if let Ok(rd) = fs::read_dir(p) {
                for e in rd.flatten() {
                    total += walk(&e.path(), seen);
                }
            }
            total
        } else if md.is_file() {
            if md.nlink() > 1 && !seen.insert((md.dev(), md.ino())) {
                return 0;
            }
            md.len()
        } else {
            0
        }
    }
    walk(path, &mut std::collections::HashSet::new())
}
