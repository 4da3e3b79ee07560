//! What the daemon does at start: re-adopt running containers, record the ones that ended
//! while it was away (then apply their restart policies), and sweep leftovers.

use std::sync::Arc;

use berth_shim::proto::{ExitStatus, Reply, Request};

use crate::state::Status;
use crate::{ContainerService, shim_client};

impl ContainerService {
    /// Re-adopts or settles every container, all at once (each asks its own shim). Returns
    /// how many were re-adopted.
    pub async fn recover(self: &Arc<Self>) -> usize {
        let mut tasks = Vec::new();
        let mut down = Vec::new();
        for e in self.all() {
            let rec = e.record();
            let svc = self.clone();
            if rec.state.is_running() || rec.state.is_restarting() {
                tasks.push(tokio::spawn(async move { svc.recover_one(e, rec).await }));
            } else {
                down.push(tokio::spawn(async move { svc.recover_down(rec).await }));
            }
        }
        let mut adopted = 0;
        for t in tasks {
            if let Ok(true) = t.await {
                adopted += 1;
            }
        }
        for t in down {
            let _ = t.await;
        }
        // Leftovers may be large trees: swept on the blocking pool.
        let svc = self.clone();
        if let Err(err) = crate::offload::blocking(move || svc.sweep()).await {
            tracing::error!("sweeping leftovers: {err}");
        }
        // Anonymous volumes of a `create` the last daemon did not finish.
        for v in self.volumes.orphans(|id| self.get(id).is_ok()) {
            if let Err(err) = self.volumes.remove(&v, true) {
                tracing::error!(volume = %v, "removing a volume left by an unfinished create: {err}");
            }
        }
        self.start_on_boot().await;
        adopted
    }

    /// One container that was up when the last daemon stopped: re-adopted if its shim still
    /// runs it (true), else its exit is recorded and its restart policy applied.
    #[tracing::instrument(name = "recover", skip_all, fields(container = %rec.id))]
    async fn recover_one(self: &Arc<Self>, e: Arc<crate::Entry>, rec: crate::record::Record) -> bool {
        match self.shim_state(&rec.id).await {
            Some(st) if st.running => {
                e.update(|r| r.state.pid = st.pid as i64);
                self.start_health(&e);
                let svc = self.clone();
                let r = e.record();
                let _ = tokio::task::spawn_blocking(move || svc.networks.restore(&r)).await;
                let svc = self.clone();
                let entry = e.clone();
                let socket = self.socket_path(&rec.id);
                tokio::spawn(async move {
                    let status = match shim_client::call::<ExitStatus>(&socket, &Request::Wait).await {
                        Ok(s) => s,
                        Err(_) => svc.exit_status_fallback(&entry.record()).await,
                    };
                    svc.handle_exit(&entry, status).await;
                });
                true
            }
            _ => {
                // It ended while the daemon was away, or its restart was pending then.
                let status = self.exit_status_fallback(&rec).await;
                if e.update(|r| r.state.lost(&crate::lifecycle::ended(&status))).is_ok() {
                    self.after_exit(&e, status).await;
                }
                false
            }
        }
    }

    /// One container recorded as not running. A shim that still answers for it was started by
    /// a daemon killed before it recorded the start (SIGKILL during `docker start`): nothing
    /// tracks that process, so it is killed and what the start set up (the network) released;
    /// the container stays as it was recorded. Then Docker's rule: a `--rm` container that is
    /// not running when the daemon starts is removed, with its anonymous volumes.
    async fn recover_down(self: &Arc<Self>, rec: crate::record::Record) {
        if self.shim_state(&rec.id).await.is_some() {
            let socket = self.socket_path(&rec.id);
            let _ = shim_client::call::<Reply>(&socket, &Request::Kill { signal: 9, all: true }).await;
            // Answered once the process has ended (or at once if it had); then the shim goes.
            let _ = shim_client::call::<ExitStatus>(&socket, &Request::Wait).await;
            tracing::warn!(container = %rec.id, "killed a process its start left untracked");
        }
        // A start cut short after joining its networks holds addresses and interfaces.
        let svc = self.clone();
        let r = rec.clone();
        let _ = tokio::task::spawn_blocking(move || svc.networks.disconnect(&r)).await;
        if (rec.state.status() == Status::Removing || rec.host_config.auto_remove)
            && let Err(err) = self.remove(&rec.id, true, rec.host_config.auto_remove).await
        {
            tracing::error!(container = %rec.id, "removing the container at start-up: {err}");
        }
    }

    /// Docker's restart-on-daemon-start: `always` containers start again even if a user
    /// stopped them, `unless-stopped` ones unless a user did. (Those that died while the
    /// daemon was away went through their policy above.)
    async fn start_on_boot(self: &Arc<Self>) {
        let mut tasks = Vec::new();
        for e in self.all() {
            let rec = e.record();
            let policy = rec.host_config.restart_policy.name.as_str();
            let wanted = policy == "always" || (policy == "unless-stopped" && !rec.stopped_by_user);
            if wanted && rec.started_once && rec.state.status() == Status::Exited {
                let svc = self.clone();
                tasks.push(tokio::spawn(async move {
                    if let Err(err) = svc.start(&rec.id).await {
                        tracing::error!(container = %rec.id, "restarting the container at start-up: {err}");
                    }
                }));
            }
        }
        for t in tasks {
            let _ = t.await;
        }
    }

    /// Removes bundles, sockets and snapshots that no container owns.
    fn sweep(&self) {
        let ids: std::collections::BTreeSet<String> = self.all().into_iter().map(|e| e.id.clone()).collect();
        if let Ok(rd) = std::fs::read_dir(self.cfg.exec_root.join("containers")) {
            for d in rd.flatten() {
                let name = d.file_name().to_string_lossy().into_owned();
                let running = self.get(&name).map(|e| e.record().state.is_running()).unwrap_or(false);
                if !running {
                    let _ = std::fs::remove_dir_all(d.path());
                }
            }
        }
        if let Ok(keys) = self.images.snapshots().active_keys() {
            for k in keys {
                if !ids.iter().any(|id| id.starts_with(&k)) {
                    let _ = self.images.snapshots().remove_by_short_key(&k);
                }
            }
        }
        if let Ok(rd) = std::fs::read_dir(self.cfg.data_root.join("containers")) {
            for d in rd.flatten() {
                let name = d.file_name().to_string_lossy().into_owned();
                if !ids.contains(&name) {
                    let _ = std::fs::remove_dir_all(d.path());
                }
            }
        }
    }
}
