//! `docker inspect` and `docker ps` views of containers.

use std::collections::BTreeMap;

use berth_api::filters::Filters;
use berth_api::models::{
    ContainerInspect, ContainerSummary, GraphDriver, Port, SummaryHostConfig, SummaryNetworkSettings,
};

use crate::record::Record;
use crate::state::Status;
use crate::{ContainerError, ContainerService, Result};

#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub all: bool,
    pub limit: Option<usize>,
    pub size: bool,
    pub filters: Filters,
}

/// Docker's `Ports` list from the published bindings and exposed ports.
pub fn ports(rec: &Record) -> Vec<Port> {
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (key, bindings) in &rec.network.ports {
        let (p, _, proto) = crate::spec::parse_port_key(key).unwrap_or((0, 0, "tcp".into()));
        match bindings {
            Some(bs) if !bs.is_empty() => {
                for b in bs {
                    out.push(Port {
                        ip: b.host_ip.clone(),
                        private_port: p,
                        public_port: b.host_port.parse().ok(),
                        kind: proto.clone(),
                    });
                }
            }
            _ => out.push(Port { ip: String::new(), private_port: p, public_port: None, kind: proto.clone() }),
        }
        seen.insert(key.clone());
    }
    for key in rec.config.exposed_ports.iter().flat_map(|m| m.keys()) {
        if !seen.contains(key)
            && let Ok((p, _, proto)) = crate::spec::parse_port_key(key)
        {
            out.push(Port { ip: String::new(), private_port: p, public_port: None, kind: proto });
        }
    }
    out
}

/// `ps`'s COMMAND, as dockerd makes it: the path, then the arguments, an argument with a
/// space in it single-quoted (`sh -c 'sleep 1'`).
fn command(rec: &Record) -> String {
    let mut parts = vec![rec.path.clone()];
    parts.extend(rec.args.iter().map(|a| if a.contains(' ') { format!("'{a}'") } else { a.clone() }));
    parts.join(" ")
}

impl ContainerService {
    /// Sync: sizing walks the writable layer. Called through [`ContainerService::inspect`].
    pub(crate) fn inspect_blocking(&self, id: &str, size: bool) -> Result<ContainerInspect> {
        let e = self.get(id)?;
        let rec = e.record();
        let snaps = self.images.snapshots();
        let mut data = BTreeMap::new();
        if let Ok(m) = snaps.mounts(&rec.id, &rec.layers) {
            data.insert(
                "LowerDir".to_string(),
                m.lower.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":"),
            );
            data.insert("UpperDir".to_string(), m.upper.display().to_string());
            data.insert("WorkDir".to_string(), m.work.display().to_string());
            data.insert("MergedDir".to_string(), self.bundle_dir(&rec.id).join("rootfs").display().to_string());
        }
        let (size_rw, size_root) = if size { self.sizes(&rec) } else { (None, None) };
        let mut network = rec.network.clone();
        if network.ports.is_empty() {
            for key in rec.config.exposed_ports.iter().flat_map(|m| m.keys()) {
                network.ports.insert(key.clone(), None);
            }
        }
        let exec_ids: Vec<String> = self
            .execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|x| x.container_id == rec.id && x.state.lock().map(|s| s.running).unwrap_or(false))
            .map(|x| x.id.clone())
            .collect();
        Ok(ContainerInspect {
            id: rec.id.clone(),
            created: rec.created.clone(),
            path: rec.path.clone(),
            args: rec.args.clone(),
            state: (&rec.state).into(),
            image: rec.image_id.clone(),
            resolv_conf_path: rec.resolv_conf_path.clone(),
            hostname_path: rec.hostname_path.clone(),
            hosts_path: rec.hosts_path.clone(),
            // As dockerd: a remote driver's local cache is not a log path to show.
            log_path: if crate::log_config::is_remote(&rec.host_config.log_config.kind) {
                String::new()
            } else {
                rec.log_path.clone()
            },
            name: format!("/{}", rec.name),
            restart_count: rec.restart_count,
            driver: "overlay2".into(),
            platform: "linux".into(),
            mount_label: String::new(),
            process_label: String::new(),
            app_armor_profile: String::new(),
            exec_ids: if exec_ids.is_empty() { None } else { Some(exec_ids) },
            host_config: self.reported_host_config(&rec),
            graph_driver: GraphDriver { name: "overlay2".into(), data },
            size_rw,
            size_root_fs: size_root,
            mounts: rec.mounts.clone(),
            config: rec.config.clone(),
            network_settings: network,
        })
    }

    /// The host config as Docker reports it: links as `/target:/container/alias` (with the
    /// target's current name), and the defaults dockerd writes in where none was asked for.
    fn reported_host_config(&self, rec: &Record) -> berth_api::models::HostConfig {
        let mut h = rec.host_config.clone();
        if let Some(links) = &mut h.links {
            for l in links.iter_mut() {
                let (target, alias) = crate::links::link_parts(l);
                let name = self.get(target).map(|e| e.record().name.clone()).unwrap_or_else(|_| target.to_string());
                *l = format!("/{name}:/{}/{alias}", rec.name);
            }
        }
        if h.shm_size == 0 {
            h.shm_size = crate::spec::DEFAULT_SHM_SIZE;
        }
        // What an empty value means, as dockerd fills it in at create: swap as large as
        // the memory limit again, a private IPC namespace, the host's cgroup namespace on
        // cgroup v1 and a private one on v2 (what spec.rs gives the container).
        if h.memory > 0 && h.memory_swap == 0 {
            h.memory_swap = h.memory * 2;
        }
        if h.ipc_mode.is_empty() {
            h.ipc_mode = "private".into();
        }
        if h.cgroupns_mode.is_empty() {
            let v2 = berth_cgroups::detect(std::path::Path::new("/sys/fs/cgroup")) == berth_cgroups::Mode::V2;
            h.cgroupns_mode = if v2 { "private" } else { "host" }.into();
        }
        h
    }

    fn sizes(&self, rec: &Record) -> (Option<i64>, Option<i64>) {
        let rw =
            self.images.snapshots().upper_dir(&rec.id).map(|p| berth_store::snapshot::dir_size(&p) as i64).unwrap_or(0);
        let image = self.images.get(&rec.image_id).map(|i| i.size).unwrap_or(0);
        (Some(rw), Some(rw + image))
    }

    /// `GET /containers/json`, newest first. Sync: sizing walks writable layers. Called
    /// through [`ContainerService::list`].
    pub(crate) fn list_blocking(&self, opts: &ListOptions) -> Result<Vec<ContainerSummary>> {
        let f = &opts.filters;
        f.check_names(&[
            "ancestor",
            "before",
            "expose",
            "exited",
            "health",
            "id",
            "isolation",
            "is-task",
            "label",
            "name",
            "network",
            "publish",
            "since",
            "status",
            "volume",
        ])
        .map_err(ContainerError::Invalid)?;
        for s in f.get("status") {
            if Status::parse(s).is_none() {
                return Err(ContainerError::Invalid(format!("invalid filter 'status={s}'")));
            }
        }
        let mut recs: Vec<Record> = self.all().into_iter().map(|e| e.record()).collect();
        recs.sort_by(|a, b| b.created.cmp(&a.created).then(b.id.cmp(&a.id)));
        let created_of = |name: &str| -> Result<String> { Ok(self.get(name)?.record().created) };
        let before = f.get("before").first().map(|n| created_of(n)).transpose()?;
        let since = f.get("since").first().map(|n| created_of(n)).transpose()?;
        let ancestors: Vec<String> =
            f.get("ancestor").iter().filter_map(|a| self.images.resolve(a).ok()).map(|i| i.id).collect();
        let mut out = Vec::new();
        let namespaced = f.get("label").iter().any(|l| l.starts_with(crate::record::NAMESPACE_LABEL));
        for rec in recs {
            if !namespaced && rec.config.labels.contains_key(crate::record::NAMESPACE_LABEL) {
                continue;
            }
            // A status or exit-code filter looks at stopped containers even without --all.
            let all = opts.all || f.has("status") || f.has("exited");
            if !all && !rec.state.is_running() {
                continue;
            }
            if !f.any_or_absent("id", |v| rec.id.starts_with(v)) {
                continue;
            }
            if !f.matches_regex("name", &format!("/{}", rec.name)) && !f.matches_regex("name", &rec.name) {
                continue;
            }
            if !f.any_or_absent("status", |v| v == rec.state.status().as_str()) {
                continue;
            }
            if !f.any_or_absent("exited", |v| {
                rec.state.status() == Status::Exited && v.parse::<i64>().ok() == Some(rec.state.exit_code)
            }) {
                continue;
            }
            if !f.labels_match("label", &rec.config.labels) {
                continue;
            }
            if f.has("ancestor") {
                let ok = f.get("ancestor").contains(&rec.config.image)
                    || ancestors.iter().any(|a| self.image_descends(&rec.image_id, a));
                if !ok {
                    continue;
                }
            }
            if let Some(b) = &before
                && rec.created >= *b
            {
                continue;
            }
            if let Some(s) = &since
                && rec.created <= *s
            {
                continue;
            }
            if !f.any_or_absent("health", |v| {
                let h = rec.state.health.as_ref().map(|h| h.status.as_str()).unwrap_or("none");
                v == h
            }) {
                continue;
            }
            if !f.any_or_absent("volume", |v| {
                rec.mounts.iter().any(|m| m.name == v || m.destination == v || m.source == v)
            }) {
                continue;
            }
            if !f
                .any_or_absent("network", |v| rec.network.networks.contains_key(v) || rec.host_config.network_mode == v)
            {
                continue;
            }
            if !f.any_or_absent("is-task", |v| v == "false") {
                continue;
            }
            out.push(self.summary(&rec, opts.size));
            if opts.limit.is_some_and(|l| out.len() >= l) {
                break;
            }
        }
        Ok(out)
    }

    fn image_descends(&self, image: &str, ancestor: &str) -> bool {
        let mut cur = Some(image.to_string());
        let mut hops = 0;
        while let Some(id) = cur {
            if id == ancestor {
                return true;
            }
            hops += 1;
            if hops > 256 {
                return false;
            }
            cur = self.images.get(&id).map(|i| i.meta.parent.clone()).filter(|p| !p.is_empty());
        }
        false
    }

    pub(crate) fn summary(&self, rec: &Record, size: bool) -> ContainerSummary {
        let (size_rw, size_root) = if size { self.sizes(rec) } else { (None, None) };
        let created = berth_api::time::parse_rfc3339(&rec.created).map(|n| (n / 1_000_000_000) as i64).unwrap_or(0);
        ContainerSummary {
            id: rec.id.clone(),
            names: vec![format!("/{}", rec.name)],
            image: if rec.config.image.is_empty() { rec.image_id.clone() } else { rec.config.image.clone() },
            image_id: rec.image_id.clone(),
            command: command(rec),
            created,
            ports: ports(rec),
            size_rw,
            size_root_fs: size_root,
            labels: rec.config.labels.clone(),
            state: rec.state.status().to_string(),
            status: rec.human_status(),
            host_config: SummaryHostConfig { network_mode: rec.host_config.network_mode.clone(), annotations: None },
            network_settings: SummaryNetworkSettings { networks: rec.network.networks.clone() },
            mounts: rec.mounts.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use berth_api::filters::Filters;

    /// Docker matches the name with and without its leading slash.
    fn name_matches(name: &str, pattern: &str) -> bool {
        let mut f = Filters::default();
        f.add("name", pattern);
        f.matches_regex("name", &format!("/{name}")) || f.matches_regex("name", name)
    }

    #[test]
    fn name_filters() {
        assert!(name_matches("web-1", "web"));
        assert!(name_matches("web-1", "^web"));
        assert!(!name_matches("myweb", "^web"));
        assert!(name_matches("web", "^/web$"));
        assert!(!name_matches("web2", "^web$"));
        assert!(name_matches("web-12", "^web-[0-9]+$"));
        assert!(name_matches("a.b", "a.b") && name_matches("axb", "a.b"));
    }
}
