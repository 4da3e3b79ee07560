//! The container service: everything that happens to a container, from create to remove.
//!
//! A container is a [`record::Record`] (persisted in the metadata database, the source of
//! truth for its configuration and last known state) plus, while it runs, a shim process
//! that owns it (see berth-shim). The service never holds a container's process itself: it
//! talks to the shim over its socket and learns of the exit through the shim's report pipe
//! or, after a daemon restart, a `wait` request. That is what lets the daemon restart without
//! stopping containers.
//!
//! Concurrency: each container has an operation lock ([`Entry::op`]) that serializes
//! start/stop/remove/update on it; reads go through a short-lived record lock. Waiters watch
//! [`Entry::life`].

pub mod attach;
mod blkio;
mod cdi;
pub mod collect;
mod controls;
mod create;
pub mod etc_files;
pub use berth_core::events;
pub mod exec;
pub mod fs;
mod health;
pub mod inspect;
mod lifecycle;
pub mod links;
pub mod log_config;
mod log_info;
pub mod logs;
mod mounts;
pub mod network;
mod offload;
mod prune;
pub mod record;
mod recover;
pub mod shim_client;
mod spec;
pub mod start_error;
pub mod state;
mod stats;
mod stop;
mod table;
mod verify;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use berth_api::{ErrorKind, HasKind};
use berth_image::ImageStore;
use berth_store::db::Db;
use tokio::sync::watch;

pub use create::{CreateOptions, CriLog};
pub use lifecycle::WaitCondition;
pub use record::Record;
pub use table::Table;

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("No such container: {0}")]
    NotFound(String),
    #[error("No such exec instance: {0}")]
    NotFoundExec(String),
    /// A path inside a container (`docker cp`).
    #[error("{0}")]
    NotFoundPath(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotRunning(String),
    #[error("{0}")]
    Internal(String),
    /// The daemon could not start a container (the shim did not answer, a log option).
    #[error("{0}")]
    Start(String),
    /// The runtime refused to start the process, translated by [`start_error`].
    #[error("{}", .0.message)]
    StartFailed(start_error::StartFailed),
    #[error(transparent)]
    Image(#[from] berth_image::ImageError),
    #[error(transparent)]
    Store(#[from] berth_store::StoreError),
    #[error(transparent)]
    Archive(#[from] berth_archive::ArchiveError),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
}

impl ContainerError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        ContainerError::Io { context: context.into(), source }
    }
}

impl HasKind for ContainerError {
    fn kind(&self) -> ErrorKind {
        match self {
            ContainerError::NotFound(_) | ContainerError::NotFoundExec(_) | ContainerError::NotFoundPath(_) => {
                ErrorKind::NotFound
            }
            ContainerError::Invalid(_) => ErrorKind::InvalidArgument,
            ContainerError::Conflict(_) | ContainerError::NotRunning(_) => ErrorKind::Conflict,
            ContainerError::StartFailed(f) => f.kind,
            ContainerError::Start(_) | ContainerError::Internal(_) => ErrorKind::Internal,
            ContainerError::Image(e) => e.kind(),
            ContainerError::Store(e) => e.kind(),
            ContainerError::Archive(e) => e.kind(),
            ContainerError::Io { source, .. } => HasKind::kind(source),
        }
    }
}

pub type Result<T> = std::result::Result<T, ContainerError>;

/// Daemon-wide settings the service needs.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    /// The `berth-shim` executable.
    pub shim: PathBuf,
    /// Parent of every container's cgroup (Docker's `--cgroup-parent`; `berth` here).
    pub cgroup_parent: String,
    pub log_driver: String,
    pub log_opts: BTreeMap<String, String>,
    pub default_ulimits: Vec<berth_api::models::Ulimit>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    /// The address `host-gateway` stands for in `--add-host` (daemon.json `host-gateway-ip`);
    /// `None`: the default bridge's gateway.
    pub host_gateway_ip: Option<String>,
    /// Stop containers when the daemon shuts down (Docker's behaviour without live-restore).
    pub stop_on_shutdown: bool,
    pub shutdown_timeout: i64,
    /// Where CDI spec files are read, in order of rising priority (dockerd's
    /// `cdi-spec-dirs`: /etc/cdi and /var/run/cdi unless configured).
    pub cdi_spec_dirs: Vec<PathBuf>,
}

/// What waiters watch: a snapshot of the container's lifecycle.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Life {
    pub running: bool,
    /// Incremented at every exit.
    pub exits: u64,
    pub exit_code: i64,
    pub removed: bool,
}

/// One container known to the daemon.
pub struct Entry {
    pub id: String,
    record: Mutex<Record>,
    pub life: watch::Sender<Life>,
    /// Serializes state-changing operations on this container.
    pub op: tokio::sync::Mutex<()>,
    /// Attach clients waiting for the container to start.
    pub(crate) pending_attach: Mutex<Vec<attach::Pending>>,
}

impl Entry {
    fn new(record: Record) -> Arc<Entry> {
        let life =
            Life { running: record.state.is_running(), exits: 0, exit_code: record.state.exit_code, removed: false };
        Arc::new(Entry {
            id: record.id.clone(),
            record: Mutex::new(record),
            life: watch::channel(life).0,
            op: tokio::sync::Mutex::new(()),
            pending_attach: Mutex::new(Vec::new()),
        })
    }

    /// A copy of the current record.
    pub fn record(&self) -> Record {
        self.record.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn update<R>(&self, f: impl FnOnce(&mut Record) -> R) -> R {
        let mut r = self.record.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut r)
    }
}

/// An exec instance (`POST /containers/{id}/exec`). Docker keeps these in memory only.
pub struct ExecEntry {
    pub id: String,
    pub container_id: String,
    pub config: berth_api::models::ExecCreateRequest,
    pub state: Mutex<exec::ExecState>,
    /// The process while it runs: a kill goes through it, never through a PID the process
    /// may have given up by then. Closed when the process ends (Docker keeps finished execs).
    pub(crate) pidfd: Mutex<Option<std::os::fd::OwnedFd>>,
}

/// Told of each container being removed, once it is down and its files are gone and before
/// its record goes: what another service made for it outside this one is undone here (the
/// CRI's pod networks). An error keeps the record, in status `removing`, so that a second
/// removal tries again.
pub type RemovalHook = Arc<
    dyn Fn(Record) -> std::pin::Pin<Box<dyn std::future::Future<Output = std::result::Result<(), String>> + Send>>
        + Send
        + Sync,
>;

pub struct ContainerService {
    pub cfg: Config,
    pub(crate) db: Arc<Db>,
    pub images: Arc<ImageStore>,
    pub events: Arc<events::EventBus>,
    pub(crate) networks: network::NetworkPort,
    pub volumes: Arc<berth_volume::VolumeStore>,
    /// The containers, by ID and name.
    table: Arc<Table>,
    pub(crate) execs: Mutex<HashMap<String, Arc<ExecEntry>>>,
    /// Set by `stop_all` when the daemon stops its containers on shutdown: those stops are
    /// not the user's, and no restart policy acts on them.
    pub(crate) shutting_down: std::sync::atomic::AtomicBool,
    pub(crate) removal_hooks: Mutex<Vec<RemovalHook>>,
}

impl ContainerService {
    pub fn new(
        cfg: Config,
        db: Arc<Db>,
        images: Arc<ImageStore>,
        events: Arc<events::EventBus>,
        networks: Arc<dyn berth_core::network::Networks>,
        volumes: Arc<berth_volume::VolumeStore>,
        table: Arc<Table>,
    ) -> Result<Arc<ContainerService>> {
        {
            let d = "containers";
            std::fs::create_dir_all(cfg.data_root.join(d))
                .map_err(|e| ContainerError::io(format!("creating {d}"), e))?;
        }
        for d in ["containers", "sock"] {
            std::fs::create_dir_all(cfg.exec_root.join(d))
                .map_err(|e| ContainerError::io(format!("creating {d}"), e))?;
        }
        let svc = ContainerService {
            cfg,
            db,
            images,
            events,
            networks: network::NetworkPort(networks),
            volumes,
            table,
            execs: Mutex::new(HashMap::new()),
            shutting_down: std::sync::atomic::AtomicBool::new(false),
            removal_hooks: Mutex::new(Vec::new()),
        };
        for e in svc.table.all() {
            for m in e.record().mounts.iter().filter(|m| m.kind == "volume") {
                // A volume removed behind the daemon's back stays missing; start reports it.
                let _ = svc.volumes.acquire(&m.name, &e.id);
            }
        }
        Ok(Arc::new(svc))
    }

    /// Adds a hook every removal runs (see [`RemovalHook`]).
    pub fn on_removal(&self, hook: RemovalHook) {
        self.removal_hooks.lock().unwrap_or_else(|p| p.into_inner()).push(hook);
    }

    /// Finds a container by full ID, name (with or without `/`), or unique ID prefix.
    pub fn get(&self, name_or_id: &str) -> Result<Arc<Entry>> {
        self.table.get(name_or_id)
    }

    pub fn all(&self) -> Vec<Arc<Entry>> {
        self.table.all()
    }

    /// Containers using image `image_id`, for the image service's delete rules.
    /// How many containers use each image, in one pass (listing images asks this of every
    /// image; asking per image is quadratic).
    pub fn image_use_counts(&self) -> HashMap<String, i64> {
        let mut out = HashMap::new();
        for e in self.all() {
            let id = e.record.lock().unwrap_or_else(|p| p.into_inner()).image_id.clone();
            *out.entry(id).or_insert(0) += 1;
        }
        out
    }

    pub fn users_of_image(&self, image_id: &str) -> Vec<berth_image::ContainerUse> {
        self.all()
            .into_iter()
            .map(|e| e.record())
            .filter(|r| r.image_id == image_id)
            .map(|r| berth_image::ContainerUse { container_id: r.id.clone(), running: r.state.is_running() })
            .collect()
    }

    /// Saves the record where a failure leaves nothing better to do than go on (the change has
    /// happened: an exit, a stop): memory is right, the disk stale until the next save, and the
    /// log says so with the container's ID.
    pub(crate) fn persist_or_log(&self, e: &Entry) {
        if let Err(err) = self.persist(e) {
            tracing::error!(container = %e.id, "saving the container's record: {err}");
        }
    }

    pub(crate) fn persist(&self, e: &Entry) -> Result<()> {
        self.table.persist(e)
    }

    pub(crate) fn insert(&self, rec: Record) -> Result<Arc<Entry>> {
        self.db.put(berth_store::schema::CONTAINERS, &rec.id, &rec)?;
        let e = Entry::new(rec);
        self.table.entries.write().unwrap_or_else(|p| p.into_inner()).insert(e.id.clone(), e.clone());
        Ok(e)
    }

    pub(crate) fn forget(&self, id: &str, name: &str) -> Result<()> {
        self.db.delete(berth_store::schema::CONTAINERS, id)?;
        self.table.entries.write().unwrap_or_else(|p| p.into_inner()).remove(id);
        let mut names = self.table.names.lock().unwrap_or_else(|p| p.into_inner());
        if names.get(name).is_some_and(|v| v == id) {
            names.remove(name);
        }
        Ok(())
    }

    /// Reserves `name` for `id`; fails if another container has it.
    pub(crate) fn reserve_name(&self, name: &str, id: &str) -> Result<()> {
        let mut names = self.table.names.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(other) = names.get(name)
            && other != id
        {
            return Err(ContainerError::Conflict(format!(
                "Conflict. The container name \"/{name}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
            )));
        }
        names.insert(name.to_string(), id.to_string());
        Ok(())
    }

    pub(crate) fn release_name(&self, name: &str, id: &str) {
        let mut names = self.table.names.lock().unwrap_or_else(|p| p.into_inner());
        if names.get(name).is_some_and(|v| v == id) {
            names.remove(name);
        }
    }

    pub(crate) fn container_dir(&self, id: &str) -> PathBuf {
        self.cfg.data_root.join("containers").join(id)
    }

    pub(crate) fn bundle_dir(&self, id: &str) -> PathBuf {
        self.cfg.exec_root.join("containers").join(id)
    }

    pub(crate) fn socket_path(&self, id: &str) -> PathBuf {
        self.cfg.exec_root.join("sock").join(format!("{id}.sock"))
    }

    /// Logs a volume event (`create`, `mount`, `unmount`, `destroy`) as dockerd does for the
    /// volumes a container makes and mounts.
    pub(crate) fn volume_event(&self, name: &str, action: &str, extra: &[(&str, String)]) {
        let mut attrs = BTreeMap::new();
        attrs.insert("driver".to_string(), "local".to_string());
        for (k, v) in extra {
            attrs.insert(k.to_string(), v.clone());
        }
        self.events.emit("volume", action, name, attrs);
    }

    /// A `mount` (at start) or `unmount` (at exit) event for each volume of a container.
    pub(crate) fn volume_mount_events(&self, rec: &Record, mount: bool) {
        for m in rec.mounts.iter().filter(|m| m.kind == "volume") {
            if mount {
                self.volume_event(
                    &m.name,
                    "mount",
                    &[
                        ("container", rec.id.clone()),
                        ("destination", m.destination.clone()),
                        ("read/write", m.rw.to_string()),
                        ("propagation", m.propagation.clone()),
                    ],
                );
            } else {
                self.volume_event(&m.name, "unmount", &[("container", rec.id.clone())]);
            }
        }
    }

    /// Logs a container event (with its name, image and labels) for `docker events`.
    pub fn emit(&self, rec: &Record, action: &str, extra: &[(&str, String)]) {
        let mut attrs = BTreeMap::new();
        attrs.insert("name".to_string(), rec.name.clone());
        attrs.insert("image".to_string(), rec.config.image.clone());
        for (k, v) in &rec.config.labels {
            attrs.insert(k.clone(), v.clone());
        }
        for (k, v) in extra {
            attrs.insert(k.to_string(), v.clone());
        }
        self.events.emit("container", action, &rec.id, attrs);
    }
}

/// Names the container, by its full ID, in the current span: a container operation's span
/// is opened with an empty `container` field, filled once the name or prefix it was given
/// has been resolved.
pub(crate) fn name_in_span(e: &Entry) {
    tracing::Span::current().record("container", e.id.as_str());
}

/// A container's cgroup, relative to the hierarchy's root: under its own `--cgroup-parent`
/// when it has one, else under the daemon's.
pub(crate) fn cgroup_path(daemon_parent: &str, rec: &record::Record) -> String {
    let parent = if rec.host_config.cgroup_parent.is_empty() { daemon_parent } else { &rec.host_config.cgroup_parent };
    format!("{}/{}", parent.trim_matches('/'), rec.id)
}
