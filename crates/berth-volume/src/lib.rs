//! berth's volume service.
//!
//! A volume is a directory, `<data-root>/volumes/<name>/_data`, that outlives the containers
//! using it. The local driver's options (`type`, `device`, `o`) make it a mount instead —
//! a tmpfs, a bind of a host directory, a block device or NFS — mounted on `_data` the first
//! time a container needs it and unmounted when the volume is removed.
//!
//! Records live in the metadata database's `volumes` bucket; which containers use a volume
//! is known only in memory ([`VolumeStore::acquire`] / [`VolumeStore::release`]) and is
//! rebuilt from the container records when the daemon starts. A volume that any container
//! uses, running or not, cannot be removed.

mod fsutil;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_api::filters::Filters;
use berth_api::models::{Volume, VolumeCreateRequest, VolumeUsage};
use berth_api::{ErrorKind, HasKind};
use berth_store::db::Db;
use serde::{Deserialize, Serialize};

pub use fsutil::{copy_tree, dir_is_empty, dir_size};

/// The label Docker puts on volumes made for a container's unnamed volume paths.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] berth_store::StoreError),
}

impl VolumeError {
    fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        VolumeError::Io { context: context.into(), source }
    }
}

impl HasKind for VolumeError {
    fn kind(&self) -> ErrorKind {
        match self {
            VolumeError::NotFound(_) => ErrorKind::NotFound,
            VolumeError::Invalid(_) => ErrorKind::InvalidArgument,
            VolumeError::Conflict(_) => ErrorKind::Conflict,
            VolumeError::Io { .. } => ErrorKind::Internal,
            VolumeError::Store(e) => e.kind(),
        }
    }
}

pub type Result<T> = std::result::Result<T, VolumeError>;

/// What is persisted about a volume.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct VolumeRecord {
    pub name: String,
    pub driver: String,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    pub created_at: String,
    /// The container an anonymous volume was made for, while that container exists (cleared
    /// when it is removed and the volume stays). A volume whose container was never recorded
    /// — the daemon died during `create` — is a leftover the next start removes.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub made_for: String,
}

impl VolumeRecord {
    pub fn is_anonymous(&self) -> bool {
        self.labels.contains_key(ANONYMOUS_LABEL)
    }

    /// Whether `_data` is a mount the driver makes, rather than a plain directory.
    fn is_mounted_kind(&self) -> bool {
        self.options.contains_key("type") || self.options.contains_key("device")
    }
}

/// Docker's rule for local volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn invalid_name(name: &str) -> VolumeError {
    VolumeError::Invalid(format!(
        "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
    ))
}

/// What a volume's directory is renamed to while it is being removed (no volume name starts
/// with a dot).
const TOMBSTONE: &str = ".removing-";

/// The record of a volume found on disk without one: local, no options or labels, created
/// when its directory was last changed.
fn orphan_record(name: &str, data: &Path) -> VolumeRecord {
    let created_at = std::fs::metadata(data)
        .and_then(|m| m.modified())
        .map(|t| berth_api::time::rfc3339_nanos(berth_api::time::to_nanos(t)))
        .unwrap_or_else(|_| berth_api::time::rfc3339_now());
    VolumeRecord {
        name: name.to_string(),
        driver: "local".into(),
        labels: BTreeMap::new(),
        options: BTreeMap::new(),
        created_at,
        made_for: String::new(),
    }
}

fn no_such(name: &str) -> VolumeError {
    VolumeError::NotFound(format!("get {name}: no such volume"))
}

pub struct VolumeStore {
    root: PathBuf,
    db: Arc<Db>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    records: BTreeMap<String, VolumeRecord>,
    /// Volume name → IDs of the containers that use it.
    users: HashMap<String, BTreeSet<String>>,
}

impl VolumeStore {
    /// Opens the store under `root` (`<data-root>/volumes`). Records whose directory is gone
    /// are dropped. A directory without a record (a crash between making one and recording
    /// it, or a record lost) is removed only when it holds nothing: one with content is
    /// adopted as a plain local volume, as Docker's local driver adopts every directory it
    /// finds, because a user's data is never deleted on a guess.
    pub fn open(root: &Path, db: Arc<Db>) -> Result<VolumeStore> {
        std::fs::create_dir_all(root).map_err(|e| VolumeError::io(format!("creating {}", root.display()), e))?;
        let mut records = BTreeMap::new();
        for (name, rec) in db.list::<VolumeRecord>(berth_store::schema::VOLUMES)? {
            if root.join(&name).join("_data").is_dir() {
                records.insert(name, rec);
            } else {
                db.delete(berth_store::schema::VOLUMES, &name)?;
            }
        }
        if let Ok(rd) = std::fs::read_dir(root) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if name.starts_with(TOMBSTONE) {
                    // Never into a mount: a bind-backed volume's host directory is not ours.
                    if fsutil::is_mount_point(&e.path().join("_data")) {
                        tracing::warn!(path = %e.path().display(), "left alone: a removed volume still mounted");
                    } else if let Err(err) = std::fs::remove_dir_all(e.path()) {
                        tracing::warn!(path = %e.path().display(), "removing a removed volume's directory: {err}");
                    }
                    continue;
                }
                if records.contains_key(&name) || !e.path().is_dir() {
                    continue;
                }
                let data = e.path().join("_data");
                if fsutil::is_mount_point(&data) {
                    continue;
                }
                let missing =
                    matches!(std::fs::symlink_metadata(&data), Err(e) if e.kind() == std::io::ErrorKind::NotFound);
                if missing || fsutil::dir_is_empty(&data) {
                    if let Err(err) = std::fs::remove_dir_all(e.path()) {
                        tracing::warn!(volume = %name, "removing a half-made volume directory: {err}");
                    }
                } else if valid_name(&name) {
                    let rec = orphan_record(&name, &data);
                    db.put(berth_store::schema::VOLUMES, &name, &rec)?;
                    tracing::warn!(volume = %name, "adopted a volume directory that had no record");
                    records.insert(name, rec);
                } else {
                    tracing::warn!(path = %e.path().display(), "left alone: not a volume name, but not empty");
                }
            }
        }
        Ok(VolumeStore { root: root.to_path_buf(), db, state: Mutex::new(State { records, users: HashMap::new() }) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Where a volume's content lives on the host.
    pub fn mountpoint(&self, name: &str) -> PathBuf {
        self.root.join(name).join("_data")
    }

    /// `volume create`. An existing volume of the same name is returned as it is, as Docker
    /// does; an empty name makes an anonymous volume.
    pub fn create(&self, req: VolumeCreateRequest) -> Result<Volume> {
        self.create_for(req, "")
    }

    /// An anonymous volume for the container `id` being created (see
    /// [`VolumeRecord::made_for`]).
    pub fn create_anonymous(&self, id: &str, driver: &str) -> Result<Volume> {
        self.create_for(VolumeCreateRequest { driver: driver.to_string(), ..Default::default() }, id)
    }

    fn create_for(&self, req: VolumeCreateRequest, made_for: &str) -> Result<Volume> {
        let driver = if req.driver.is_empty() { "local".to_string() } else { req.driver.clone() };
        if driver != "local" {
            return Err(VolumeError::NotFound(format!(
                "error looking up volume plugin {driver}: plugin \"{driver}\" not found"
            )));
        }
        check_options(&req.driver_opts)?;
        let mut labels = req.labels.clone();
        let name = if req.name.is_empty() {
            labels.entry(ANONYMOUS_LABEL.to_string()).or_default();
            berth_api::ids::random_id()
        } else {
            req.name.clone()
        };
        if !valid_name(&name) {
            return Err(invalid_name(&name));
        }
        let mut st = self.lock();
        if let Some(rec) = st.records.get(&name) {
            return Ok(self.view(rec, None));
        }
        let rec = VolumeRecord {
            name: name.clone(),
            driver,
            labels,
            options: req.driver_opts,
            created_at: berth_api::time::rfc3339_now(),
            made_for: made_for.to_string(),
        };
        let data = self.mountpoint(&name);
        std::fs::create_dir_all(&data).map_err(|e| VolumeError::io(format!("creating volume {name}"), e))?;
        if let Err(e) = self.db.put(berth_store::schema::VOLUMES, &name, &rec) {
            // The database's error is what is returned; a directory that stays has no record,
            // and `open` removes it at the next start.
            let _ = std::fs::remove_dir_all(self.root.join(&name));
            return Err(e.into());
        }
        st.records.insert(name, rec.clone());
        Ok(self.view(&rec, None))
    }

    pub fn get(&self, name: &str) -> Result<VolumeRecord> {
        self.lock().records.get(name).cloned().ok_or_else(|| no_such(name))
    }

    pub fn exists(&self, name: &str) -> bool {
        self.lock().records.contains_key(name)
    }

    /// The API's view of a volume; `usage` adds size and reference count (`system df`).
    pub fn view(&self, rec: &VolumeRecord, usage: Option<VolumeUsage>) -> Volume {
        Volume {
            created_at: rec.created_at.clone(),
            driver: rec.driver.clone(),
            labels: rec.labels.clone(),
            mountpoint: self.mountpoint(&rec.name).display().to_string(),
            name: rec.name.clone(),
            options: if rec.options.is_empty() { None } else { Some(rec.options.clone()) },
            scope: "local".into(),
            usage_data: usage,
        }
    }

    pub fn inspect(&self, name: &str) -> Result<Volume> {
        let rec = self.get(name)?;
        Ok(self.view(&rec, None))
    }

    /// `volume ls` with Docker's filters: `dangling`, `name` (a regular expression), `driver`, `label`.
    pub fn list(&self, f: &Filters) -> Result<Vec<Volume>> {
        f.check_names(&["dangling", "name", "driver", "label"]).map_err(VolumeError::Invalid)?;
        let dangling = match f.get("dangling").first().map(|s| s.as_str()) {
            None => None,
            Some("true") | Some("1") => Some(true),
            Some("false") | Some("0") => Some(false),
            Some(v) => return Err(VolumeError::Invalid(format!("invalid filter 'dangling={v}'"))),
        };
        let st = self.lock();
        let mut out = Vec::new();
        for rec in st.records.values() {
            let used = st.users.get(&rec.name).is_some_and(|u| !u.is_empty());
            if dangling.is_some_and(|d| d == used) {
                continue;
            }
            if !f.matches_regex("name", &rec.name)
                || !f.any_or_absent("driver", |d| rec.driver == d)
                || !f.labels_match("label", &rec.labels)
            {
                continue;
            }
            out.push(self.view(rec, None));
        }
        Ok(out)
    }

    /// Every volume with its size and how many containers use it (`system df`).
    pub fn usage(&self) -> Vec<Volume> {
        let (recs, counts): (Vec<VolumeRecord>, Vec<i64>) = {
            let st = self.lock();
            st.records.values().map(|r| (r.clone(), st.users.get(&r.name).map_or(0, |u| u.len() as i64))).unzip()
        };
        recs.iter()
            .zip(counts)
            .map(|(r, n)| {
                self.view(r, Some(VolumeUsage { size: dir_size(&self.mountpoint(&r.name)) as i64, ref_count: n }))
            })
            .collect()
    }

    /// Records that `container` uses the volume (at container create, and for every existing
    /// container when the daemon starts).
    pub fn acquire(&self, name: &str, container: &str) -> Result<()> {
        let mut st = self.lock();
        if !st.records.contains_key(name) {
            return Err(no_such(name));
        }
        st.users.entry(name.to_string()).or_default().insert(container.to_string());
        Ok(())
    }

    /// The container no longer uses the volume (it was removed).
    pub fn release(&self, name: &str, container: &str) {
        let mut st = self.lock();
        if let Some(u) = st.users.get_mut(name) {
            u.remove(container);
            if u.is_empty() {
                st.users.remove(name);
            }
        }
    }

    pub fn users(&self, name: &str) -> Vec<String> {
        self.lock().users.get(name).map(|u| u.iter().cloned().collect()).unwrap_or_default()
    }

    /// Makes the volume's content available at its mountpoint (mounting the driver's device,
    /// bind or tmpfs the first time) and returns the path to bind into a container.
    pub fn mount(&self, name: &str) -> Result<PathBuf> {
        let rec = self.get(name)?;
        let data = self.mountpoint(name);
        if rec.is_mounted_kind() && !fsutil::is_mount_point(&data) {
            fsutil::mount_local(&rec.options, &data)
                .map_err(|e| VolumeError::Invalid(format!("error while mounting volume '{}': {e}", data.display())))?;
        }
        Ok(data)
    }

    /// The container that made `name` is gone and the volume stays (`rm` without `-v`).
    pub fn disown(&self, name: &str) -> Result<()> {
        let mut st = self.lock();
        let Some(rec) = st.records.get_mut(name).filter(|r| !r.made_for.is_empty()) else { return Ok(()) };
        let mut updated = rec.clone();
        updated.made_for.clear();
        self.db.put(berth_store::schema::VOLUMES, name, &updated)?;
        *rec = updated;
        Ok(())
    }

    /// Anonymous volumes made for a container that `exists` does not know: a `create` cut
    /// short before it recorded its container.
    pub fn orphans(&self, exists: impl Fn(&str) -> bool) -> Vec<String> {
        self.lock()
            .records
            .values()
            .filter(|r| !r.made_for.is_empty() && !exists(&r.made_for))
            .map(|r| r.name.clone())
            .collect()
    }

    /// `volume rm`. A volume in use is refused; `force` only makes a missing volume not an
    /// error (Docker's behaviour). The volume leaves the store under its lock; its content is
    /// deleted after the lock is let go, so removing a large volume holds up no one else.
    pub fn remove(&self, name: &str, force: bool) -> Result<()> {
        let tomb = {
            let mut st = self.lock();
            let Some(rec) = st.records.get(name).cloned() else {
                return if force { Ok(()) } else { Err(no_such(name)) };
            };
            if let Some(u) = st.users.get(name).filter(|u| !u.is_empty()) {
                let ids: Vec<&str> = u.iter().map(|s| s.as_str()).collect();
                return Err(VolumeError::Conflict(format!("remove {name}: volume is in use - [{}]", ids.join(", "))));
            }
            let tomb = self.retire(&rec)?;
            st.records.remove(name);
            tomb
        };
        std::fs::remove_dir_all(&tomb)
            .or_else(|e| if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) })
            .map_err(|e| VolumeError::io(format!("removing volume {name}"), e))
    }

    /// Unmounts the volume (if mounted), renames its directory to a tombstone and deletes its
    /// record; returns the tombstone, for the caller to delete. A mount that will not go away
    /// is an error and nothing changes: a bind-backed volume's host directory must never be
    /// emptied. A crash at any point leaves either the volume whole or a tombstone, which the
    /// next start deletes (a directory left under the volume's own name without a record
    /// would be adopted back as a volume).
    fn retire(&self, rec: &VolumeRecord) -> Result<PathBuf> {
        let data = self.mountpoint(&rec.name);
        if fsutil::is_mount_point(&data) {
            rustix::mount::unmount(&data, rustix::mount::UnmountFlags::empty())
                .or_else(|_| rustix::mount::unmount(&data, rustix::mount::UnmountFlags::DETACH))
                .map_err(|e| VolumeError::io(format!("unmounting volume {}", rec.name), e.into()))?;
            if fsutil::is_mount_point(&data) {
                return Err(VolumeError::Conflict(format!("remove {}: volume is still mounted", rec.name)));
            }
        }
        // Unique, so a volume made again under the name and removed while an earlier tombstone
        // is still being deleted does not meet it.
        let tomb = self.root.join(format!("{TOMBSTONE}{}-{}", rec.name, &berth_api::ids::random_id()[..12]));
        let dir = self.root.join(&rec.name);
        match std::fs::rename(&dir, &tomb) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(VolumeError::io(format!("removing volume {}", rec.name), e)),
        }
        if let Err(e) = self.db.delete(berth_store::schema::VOLUMES, &rec.name) {
            // Still recorded: its directory goes back, so the volume stays whole.
            if let Err(err) = std::fs::rename(&tomb, &dir) {
                tracing::warn!(volume = %rec.name, "putting a volume back after a failed remove: {err}");
            }
            return Err(e.into());
        }
        Ok(tomb)
    }

    /// `volume prune`: unused volumes — only anonymous ones unless the filter `all=true` is
    /// given (Docker since API 1.42) — matching the `label` filters. Returns the names and
    /// the bytes freed.
    pub fn prune(&self, f: &Filters) -> Result<(Vec<String>, u64)> {
        f.check_names(&["label", "label!", "all"]).map_err(VolumeError::Invalid)?;
        let all = f.get("all").iter().any(|v| v == "true" || v == "1");
        let candidates: Vec<VolumeRecord> = {
            let st = self.lock();
            st.records
                .values()
                .filter(|r| st.users.get(&r.name).is_none_or(|u| u.is_empty()))
                .filter(|r| all || r.is_anonymous())
                .filter(|r| f.prune_labels_match(&r.labels))
                .cloned()
                .collect()
        };
        let mut gone = Vec::new();
        let mut freed = 0;
        for rec in candidates {
            let size = dir_size(&self.mountpoint(&rec.name));
            // Re-checked under the lock: a container may have started using it meanwhile.
            match self.remove(&rec.name, false) {
                Ok(()) => {
                    freed += size;
                    gone.push(rec.name);
                }
                Err(VolumeError::Conflict(_)) | Err(VolumeError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok((gone, freed))
    }
}

/// The local driver's options: `type`, `device`, `o` (and `size` for tmpfs, as Docker's
/// `o=size=…` shorthand).
fn check_options(opts: &BTreeMap<String, String>) -> Result<()> {
    for k in opts.keys() {
        if !matches!(k.as_str(), "type" | "device" | "o" | "size") {
            return Err(VolumeError::Invalid(format!("invalid option: \"{k}\"")));
        }
    }
    if opts.contains_key("type") != opts.contains_key("device") && opts.get("type").is_none_or(|t| t != "tmpfs") {
        return Err(VolumeError::Invalid("missing required option: \"device\"".into()));
    }
    if let Some(dev) = opts.get("device") {
        let bind = opts.get("o").is_some_and(|o| o.split(',').any(|f| f == "bind" || f == "rbind"));
        if bind && !dev.starts_with('/') {
            return Err(VolumeError::Invalid(format!(
                "invalid device '{dev}': a bind-backed volume needs an absolute host path"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, VolumeStore) {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(&dir.path().join("db")).unwrap());
        let s = VolumeStore::open(&dir.path().join("volumes"), db).unwrap();
        (dir, s)
    }

    fn req(name: &str) -> VolumeCreateRequest {
        VolumeCreateRequest { name: name.into(), ..Default::default() }
    }

    #[test]
    fn names_follow_dockers_rule() {
        assert!(valid_name("data") && valid_name("a.b_c-1") && valid_name("0x"));
        assert!(!valid_name("a") && !valid_name("x/y") && !valid_name("-x") && !valid_name("") && !valid_name("a b"));
    }

    #[test]
    fn create_is_idempotent_and_survives_reopen() {
        let (dir, s) = store();
        let v = s.create(req("data")).unwrap();
        std::fs::write(Path::new(&v.mountpoint).join("f"), "x").unwrap();
        let again = s.create(req("data")).unwrap();
        assert_eq!(again.created_at, v.created_at);
        assert!(Path::new(&v.mountpoint).join("f").exists(), "re-creating keeps the content");
        drop(s);
        let db = Arc::new(Db::open(&dir.path().join("db")).unwrap());
        let s = VolumeStore::open(&dir.path().join("volumes"), db).unwrap();
        assert_eq!(s.inspect("data").unwrap().mountpoint, v.mountpoint);
    }

    /// A crash (or a lost record) leaves volume directories without records: the empty
    /// one, half-made, goes; the one holding data is adopted, its data kept.
    #[test]
    fn directories_without_records_are_adopted_when_they_hold_data() {
        let (dir, s) = store();
        let v = s.create(req("kept")).unwrap();
        std::fs::write(Path::new(&v.mountpoint).join("f"), "precious").unwrap();
        s.create(req("halfmade")).unwrap();
        drop(s);
        let db = Arc::new(Db::open(&dir.path().join("db")).unwrap());
        db.delete(berth_store::schema::VOLUMES, "kept").unwrap();
        db.delete(berth_store::schema::VOLUMES, "halfmade").unwrap();
        std::fs::create_dir_all(dir.path().join("volumes/nodata")).unwrap();
        let s = VolumeStore::open(&dir.path().join("volumes"), db.clone()).unwrap();
        assert_eq!(std::fs::read_to_string(Path::new(&v.mountpoint).join("f")).unwrap(), "precious");
        assert_eq!(s.inspect("kept").unwrap().driver, "local");
        assert!(!s.exists("halfmade") && !dir.path().join("volumes/halfmade").exists());
        assert!(!dir.path().join("volumes/nodata").exists());
        drop(s);
        let s = VolumeStore::open(&dir.path().join("volumes"), db).unwrap();
        assert!(s.exists("kept"), "the adoption is recorded");
    }

    /// A removal cut short after its directory became a tombstone (a crash, or a file that
    /// would not go) does not bring the volume back: the next start deletes the tombstone.
    #[test]
    fn a_removal_cut_short_is_finished_at_the_next_start() {
        let (dir, s) = store();
        let v = s.create(req("gone")).unwrap();
        std::fs::write(Path::new(&v.mountpoint).join("f"), "x").unwrap();
        s.remove("gone", false).unwrap();
        assert!(!dir.path().join("volumes/gone").exists() && !dir.path().join("volumes/.removing-gone").exists());
        let tombs = |d: &Path| {
            std::fs::read_dir(d)
                .unwrap()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(TOMBSTONE))
                .count()
        };
        assert_eq!(tombs(&dir.path().join("volumes")), 0, "no tombstone left");
        let v = s.create(req("half")).unwrap();
        std::fs::write(Path::new(&v.mountpoint).join("f"), "x").unwrap();
        drop(s);
        // As if the daemon died between the rename and the rest.
        std::fs::rename(dir.path().join("volumes/half"), dir.path().join("volumes/.removing-half")).unwrap();
        let db = Arc::new(Db::open(&dir.path().join("db")).unwrap());
        let s = VolumeStore::open(&dir.path().join("volumes"), db).unwrap();
        assert!(!s.exists("half"));
        assert!(!dir.path().join("volumes/.removing-half").exists());
    }

    #[test]
    fn bad_input_is_refused_with_docker_messages() {
        let (_d, s) = store();
        let e = s.create(req("x/y")).unwrap_err().to_string();
        assert!(e.contains("includes invalid characters for a local volume name"), "{e}");
        let e = s
            .create(VolumeCreateRequest { name: "v1".into(), driver: "nfsx".into(), ..Default::default() })
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let mut bad = req("v2");
        bad.driver_opts.insert("colour".into(), "blue".into());
        assert!(s.create(bad).unwrap_err().to_string().contains("invalid option: \"colour\""));
        assert!(!s.exists("v1") && !s.exists("v2"));
        assert_eq!(s.inspect("nope").unwrap_err().to_string(), "get nope: no such volume");
    }

    #[test]
    fn volumes_in_use_are_kept_and_prune_takes_anonymous_ones_by_default() {
        let (_d, s) = store();
        s.create(req("named")).unwrap();
        let anon = s.create(req("")).unwrap().name;
        s.create(req("busy")).unwrap();
        s.acquire("busy", "c1").unwrap();
        let e = s.remove("busy", true).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert!(e.to_string().contains("volume is in use - [c1]"), "{e}");
        let dangling = s.list(&Filters::parse(r#"{"dangling":["true"]}"#).unwrap()).unwrap();
        assert_eq!(dangling.len(), 2);
        let (gone, _) = s.prune(&Filters::default()).unwrap();
        assert_eq!(gone, vec![anon]);
        let (gone, _) = s.prune(&Filters::parse(r#"{"all":["true"]}"#).unwrap()).unwrap();
        assert_eq!(gone, vec!["named".to_string()]);
        s.release("busy", "c1");
        s.remove("busy", false).unwrap();
        assert!(s.list(&Filters::default()).unwrap().is_empty());
        s.remove("busy", true).unwrap();
    }

    #[test]
    fn anonymous_volumes_of_an_unrecorded_container_are_orphans_until_disowned() {
        let (_d, s) = store();
        let a = s.create_anonymous("c1", "").unwrap().name;
        let b = s.create_anonymous("c2", "").unwrap().name;
        s.create(req("")).unwrap();
        // c1 was recorded, c2 never was: only c2's volume is a leftover.
        assert_eq!(s.orphans(|id| id == "c1"), vec![b.clone()]);
        // c1 removed without -v: its volume stays, and is no leftover.
        s.disown(&a).unwrap();
        assert_eq!(s.orphans(|_| false), vec![b.clone()]);
        // The records say so.
        assert!(s.get(&a).unwrap().made_for.is_empty());
        assert_eq!(s.get(&b).unwrap().made_for, "c2");
    }
}
