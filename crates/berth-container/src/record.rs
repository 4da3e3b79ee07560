//! The persisted description of a container.

use serde::{Deserialize, Serialize};

use berth_api::models::{ContainerConfig, HostConfig, MountPoint, NetworkSettings};

use crate::state::{State, Status};

/// The label that puts a container in a namespace other than the Docker API's (`k8s.io` for
/// the CRI's pods and containers, as containerd names it). The Docker API's list leaves such
/// containers out unless a `label` filter names this key.
pub const NAMESPACE_LABEL: &str = "io.berth.namespace";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Record {
    pub id: String,
    /// Without the leading `/`.
    pub name: String,
    pub created: String,
    /// The executable and arguments of the first process (entrypoint + cmd).
    pub path: String,
    pub args: Vec<String>,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    /// `sha256:…` of the image.
    pub image_id: String,
    /// Persisted in the API's form (see [`crate::state`]).
    pub state: State,
    pub restart_count: i64,
    /// Set by `docker stop` / `kill`, cleared by `start`: restart policies respect it.
    pub stopped_by_user: bool,
    /// The container has been started at least once (Docker's `HasBeenStartedBefore`).
    pub started_once: bool,
    pub mounts: Vec<MountPoint>,
    pub network: NetworkSettings,
    /// Networks to join and per-network settings (aliases, static addresses), from create
    /// and `network connect`.
    pub endpoints_config: std::collections::BTreeMap<String, berth_api::models::EndpointSettings>,
    /// The image's layers at creation time, bottom first.
    pub layers: Vec<String>,
    pub log_path: String,
    /// The directory `log_path` lies in when it is not berth's (a CRI pod's log directory):
    /// the log is opened from it with no symlink on the way. Empty for berth's own logs, and
    /// for CRI containers made before it was kept.
    pub log_root: String,
    pub hostname_path: String,
    pub hosts_path: String,
    pub resolv_conf_path: String,
    /// Anonymous volumes created for this container (removed with `rm -v` / `--rm`).
    pub anonymous_volumes: Vec<String>,
}

impl Record {
    pub fn status(&self) -> Status {
        self.state.status()
    }

    pub fn is_running(&self) -> bool {
        self.state.is_running()
    }

    /// The human status `docker ps` shows: `Up 5 minutes`, `Exited (0) 3 seconds ago`.
    pub fn human_status(&self) -> String {
        let since = |t: &str| berth_api::time::parse_rfc3339(t).map(berth_api::time::human_since).unwrap_or_default();
        match self.state.status() {
            Status::Running => {
                let mut s = format!("Up {}", since(&self.state.started_at));
                if let Some(h) = &self.state.health {
                    match h.status.as_str() {
                        "starting" => s.push_str(" (health: starting)"),
                        "healthy" => s.push_str(" (healthy)"),
                        "unhealthy" => s.push_str(" (unhealthy)"),
                        _ => {}
                    }
                }
                s
            }
            Status::Paused => format!("Up {} (Paused)", since(&self.state.started_at)),
            Status::Restarting => {
                format!("Restarting ({}) {} ago", self.state.exit_code, since(&self.state.finished_at))
            }
            Status::Removing => "Removal In Progress".into(),
            Status::Dead => "Dead".into(),
            Status::Exited => format!("Exited ({}) {} ago", self.state.exit_code, since(&self.state.finished_at)),
            Status::Created => "Created".into(),
        }
    }
}
