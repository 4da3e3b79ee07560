//! The berth daemon: the Docker Engine API over HTTP, routed to berth's services.
//!
//! [`Daemon::open`] opens the stores and services on a data root and recovers containers
//! left running by a previous daemon; [`serve`] accepts connections on the configured
//! hosts. Handlers live in [`routes`], one module per resource, and are listed in one table,
//! [`router::routes`].

pub mod body;
pub mod buildkit;
pub mod config;
pub mod error;
mod hijack;
pub mod http;
pub mod router;
pub mod routes;
mod server;
pub mod tls;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use berth_container::ContainerService;
use berth_core::events::EventBus;
use berth_image::ImageStore;
use berth_store::content::ContentStore;
use berth_store::db::Db;
use berth_store::snapshot::Snapshotter;

pub use config::{DaemonConfig, Flags};
pub use server::serve;

pub struct Daemon {
    pub config: DaemonConfig,
    pub db: Arc<Db>,
    pub images: Arc<ImageStore>,
    pub containers: Arc<ContainerService>,
    pub networks: Arc<berth_network::NetworkService>,
    pub volumes: Arc<berth_volume::VolumeStore>,
    pub builder: Arc<berth_builder::Builder>,
    pub events: Arc<EventBus>,
    /// The registry client (pull, push, login, search).
    pub distribution: Arc<berth_distribution::Distribution>,
    pub started: Instant,
    /// A stable identifier of this daemon (kept in the data root).
    pub id: String,
    /// BuildKit's API (buildx, compose): sessions and builds in flight.
    pub buildkit: Arc<buildkit::BuildKit>,
}

impl Daemon {
    /// Opens everything under the data root and recovers containers. Warnings (damaged
    /// records that were dropped) are returned for the log.
    pub async fn open(config: DaemonConfig) -> Result<(Arc<Daemon>, Vec<String>), String> {
        let root = config.data_root.clone();
        // What is kept here (containers' environments and logs, credentials) is root's: the
        // data root 0710 and the exec root 0700, as dockerd makes them.
        for (d, mode) in [(root.clone(), 0o710), (config.exec_root.clone(), 0o700)] {
            std::fs::create_dir_all(&d).map_err(|e| format!("creating {}: {e}", d.display()))?;
            std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(mode))
                .map_err(|e| format!("setting the mode of {}: {e}", d.display()))?;
        }
        let db = Arc::new(Db::open(&root.join("berth.db")).map_err(|e| e.to_string())?);
        let content = ContentStore::open(&root.join("content")).map_err(|e| e.to_string())?;
        content.sweep().map_err(|e| e.to_string())?;
        let snaps = Arc::new(Snapshotter::open(&root.join("snapshots")).map_err(|e| e.to_string())?);
        snaps.sweep().map_err(|e| e.to_string())?;
        let (images, warnings) = ImageStore::open(db.clone(), content, snaps).map_err(|e| e.to_string())?;
        let images = Arc::new(images);
        let events = Arc::new(EventBus::default());
        let cfg = berth_container::Config {
            data_root: root.clone(),
            exec_root: config.exec_root.clone(),
            shim: config.shim.clone(),
            cgroup_parent: config.cgroup_parent.clone(),
            log_driver: config.log_driver.clone(),
            log_opts: config.log_opts.clone(),
            default_ulimits: config.default_ulimits.clone(),
            dns: config.dns.clone(),
            dns_search: config.dns_search.clone(),
            dns_options: config.dns_opts.clone(),
            host_gateway_ip: config.file.host_gateway_ip.clone(),
            stop_on_shutdown: !config.live_restore,
            shutdown_timeout: config.shutdown_timeout,
            cdi_spec_dirs: config.cdi_spec_dirs.clone(),
        };
        // The container table is the network service's view of containers; the network
        // service is the container service's way onto networks. Neither holds the other.
        let table = berth_container::Table::load(db.clone()).map_err(|e| e.to_string())?;
        let networks = berth_network::NetworkService::open(
            config.network_options(),
            db.clone(),
            events.clone(),
            table.clone(),
            tokio::runtime::Handle::current(),
        )
        .map_err(|e| e.to_string())?;
        if let Some(c) = config.cluster.clone() {
            networks.join_cluster(c).await.map_err(|e| e.to_string())?;
        }
        let handle: Arc<dyn berth_core::network::Networks> = Arc::new(berth_network::attach::Handle(networks.clone()));
        let volumes =
            Arc::new(berth_volume::VolumeStore::open(&root.join("volumes"), db.clone()).map_err(|e| e.to_string())?);
        let containers =
            ContainerService::new(cfg, db.clone(), images.clone(), events.clone(), handle, volumes.clone(), table)
                .map_err(|e| e.to_string())?;
        let builder_cfg = berth_builder::BuilderConfig {
            scratch: root.join("builder"),
            contexts: root.join("build-contexts"),
            cache_max_bytes: config.file.builder_cache_max_bytes.unwrap_or(0),
            run_containers: root.join("builder-containers"),
            cache_mounts: root.join("build-cache-mounts"),
        };
        let distribution = Arc::new(berth_distribution::Distribution::new(berth_distribution::RegistryOptions {
            mirrors: config.registry_mirrors.clone(),
            insecure: config.insecure_registries.clone(),
        }));
        let builder = berth_builder::Builder::new(
            images.clone(),
            containers.clone(),
            distribution.clone(),
            db.clone(),
            builder_cfg,
        )
        .map_err(|e| e.to_string())?;
        let id_path = root.join("engine-id");
        let id = match std::fs::read_to_string(&id_path) {
            Ok(s) if !s.trim().is_empty() => s.trim().to_string(),
            _ => {
                let id = berth_api::ids::random_id();
                std::fs::write(&id_path, &id).map_err(|e| format!("writing {}: {e}", id_path.display()))?;
                id
            }
        };
        let daemon = Arc::new(Daemon {
            config,
            db,
            images,
            containers,
            networks,
            volumes,
            builder,
            events,
            distribution,
            started: Instant::now(),
            id,
            buildkit: Arc::default(),
        });
        daemon.containers.recover().await;
        // RUN containers of builds the previous daemon died in the middle of.
        daemon.builder.reap_interrupted().await;
        let n = daemon.networks.clone();
        tokio::task::spawn_blocking(move || n.reconcile()).await.map_err(|e| e.to_string())?;
        // After reconciliation: the endpoints this host registers are those of running containers.
        daemon.networks.spawn_cluster_sync();
        Ok((daemon, warnings))
    }

    pub fn socket_paths(&self) -> Vec<PathBuf> {
        self.config.hosts.iter().filter_map(|h| h.strip_prefix("unix://").map(PathBuf::from)).collect()
    }
}
