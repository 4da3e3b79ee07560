//! Pod sandboxes: the holder container and its lifecycle.

use std::collections::HashMap;
use std::sync::Arc;

use berth_api::models::{ContainerConfig, ContainerCreateRequest, HostConfig, LogConfig};
use berth_container::{CreateOptions, Record};
use berth_image::{Image, ImageConfig, RootFs};
use tonic::Status;

use crate::error::{invalid, name_taken, not_found, status};
use crate::meta::{self, SandboxMeta};
use crate::proto::{
    LinuxPodSandboxStatus, Namespace, NamespaceMode, NamespaceOption, PodSandbox, PodSandboxConfig, PodSandboxFilter,
    PodSandboxState, PodSandboxStatus,
};
use crate::{Cri, security};

/// What the holder runs: the shim binary, bind-mounted by `init`, in its `pause` mode.
const HOLDER_COMMAND: [&str; 2] = ["/sbin/docker-init", "pause"];
const HOLDER_IMAGE_NAME: &str = "berth/pod-holder";
/// Not the digest of anything in the store: the holder's image is made here, of no layers.
const HOLDER_IMAGE_ID: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

fn holder_image() -> Image {
    let config = ImageConfig {
        os: "linux".into(),
        architecture: "amd64".into(),
        rootfs: RootFs { kind: "layers".into(), diff_ids: Vec::new() },
        ..Default::default()
    };
    Image { id: HOLDER_IMAGE_ID.into(), config: Arc::new(config), meta: Default::default(), size: 0 }
}

fn mode(m: i32) -> NamespaceMode {
    NamespaceMode::try_from(m).unwrap_or(NamespaceMode::Pod)
}

impl Cri {
    /// A pod by ID (or unique prefix); `NotFound` for anything else.
    pub(crate) fn sandbox(&self, id: &str) -> Result<(Record, SandboxMeta), Status> {
        let missing = || not_found(format!("pod sandbox {id:?} not found"));
        if id.is_empty() {
            return Err(invalid("pod sandbox ID is empty"));
        }
        let rec = self.containers.get(id).map_err(|_| missing())?.record();
        let sb = meta::sandbox(&rec).ok_or_else(missing)?;
        Ok((rec, sb))
    }

    /// Every pod, as records.
    pub(crate) fn sandboxes(&self) -> Vec<(Record, SandboxMeta)> {
        self.containers
            .all()
            .into_iter()
            .map(|e| e.record())
            .filter_map(|r| meta::sandbox(&r).map(|m| (r, m)))
            .collect()
    }

    /// The containers of pod `id`.
    pub(crate) fn containers_in(&self, id: &str) -> Vec<Record> {
        self.containers
            .all()
            .into_iter()
            .map(|e| e.record())
            .filter(|r| meta::container(r).is_some_and(|(sb, _)| sb == id))
            .collect()
    }

    pub async fn run_pod_sandbox(&self, cfg: Option<PodSandboxConfig>, handler: String) -> Result<String, Status> {
        let cfg = cfg.ok_or_else(|| invalid("the pod sandbox config is required"))?;
        let md = cfg.metadata.clone().ok_or_else(|| invalid("the pod sandbox config must include metadata"))?;
        if md.name.is_empty() || md.namespace.is_empty() || md.uid.is_empty() {
            return Err(invalid("the pod sandbox metadata needs a name, a namespace and a uid"));
        }
        let linux = cfg.linux.clone().unwrap_or_default();
        let sec = linux.security_context.clone().unwrap_or_default();
        let ns = sec.namespace_options.clone().unwrap_or_default();
        security::userns(&ns)?;
        // The deprecated string forms are still what older kubelets send.
        #[allow(deprecated)]
        let common = security::Common {
            run_as_user: sec.run_as_user.as_ref().map(|v| v.value),
            run_as_group: sec.run_as_group.as_ref().map(|v| v.value),
            supplemental_groups: &sec.supplemental_groups,
            supplemental_groups_policy: sec.supplemental_groups_policy,
            seccomp: sec.seccomp.as_ref(),
            seccomp_profile_path: &sec.seccomp_profile_path,
            selinux: sec.selinux_options.as_ref(),
            apparmor: sec.apparmor.as_ref(),
            ..Default::default()
        };
        security::lsm(&common)?;
        let user = security::user(&common)?;
        let group_add = security::groups(&common, &[])?;
        let seccomp = security::seccomp(&common)?;
        let host_net = mode(ns.network) == NamespaceMode::Node;
        // A pod of its own network needs the CNI network before anything is made for it.
        let network = if host_net { None } else { Some((self.network()?, crate::network::capabilities(&cfg)?)) };
        let sb = SandboxMeta {
            name: md.name.clone(),
            uid: md.uid.clone(),
            namespace: md.namespace.clone(),
            attempt: md.attempt,
            labels: meta::from_map(&cfg.labels),
            annotations: meta::from_map(&cfg.annotations),
            log_directory: cfg.log_directory.clone(),
            network: ns.network,
            pid: ns.pid,
            ipc: ns.ipc,
            cgroup_parent: linux.cgroup_parent.clone(),
            supplemental_groups: sec.supplemental_groups.clone(),
            runtime_handler: handler,
            created_at: berth_api::time::now_nanos() as i64,
        };
        let dns = cfg.dns_config.clone().unwrap_or_default();
        let host = HostConfig {
            // A namespace of its own with loopback only, which CNI's plugins then configure.
            network_mode: if host_net { "host" } else { "none" }.into(),
            // On the node's network the pod shares the node's UTS namespace too.
            uts_mode: if host_net { "host" } else { "" }.into(),
            ipc_mode: if mode(ns.ipc) == NamespaceMode::Node { "host" } else { "" }.into(),
            pid_mode: if mode(ns.pid) == NamespaceMode::Node { "host" } else { "" }.into(),
            init: Some(true),
            cgroup_parent: linux.cgroup_parent.clone(),
            dns: dns.servers,
            dns_search: dns.searches,
            dns_options: dns.options,
            sysctls: (!linux.sysctls.is_empty()).then(|| meta::from_map(&linux.sysctls)),
            privileged: sec.privileged,
            readonly_rootfs: sec.readonly_rootfs,
            group_add,
            security_opt: seccomp.map(|s| vec![s]),
            oom_score_adj: crate::oom::restrict(crate::oom::SANDBOX_OOM_SCORE_ADJ),
            log_config: LogConfig { kind: "none".into(), ..Default::default() },
            ..Default::default()
        };
        let config = ContainerConfig {
            image: HOLDER_IMAGE_NAME.into(),
            cmd: Some(HOLDER_COMMAND.iter().map(|s| s.to_string()).collect()),
            hostname: if host_net { String::new() } else { cfg.hostname.clone() },
            user,
            labels: meta::labels(&sb, None),
            ..Default::default()
        };
        let name = format!("k8s_POD_{}_{}_{}_{}", md.name, md.namespace, md.uid, md.attempt);
        let opts = CreateOptions {
            namespaced: true,
            name: Some(name),
            request: ContainerCreateRequest { config, host_config: host, ..Default::default() },
            image: Some(holder_image()),
            cri_log: None,
        };
        let (id, _) = self.containers.create(opts).await.map_err(name_taken)?;
        if let Err(e) = self.containers.start(&id).await {
            // Nothing half-made: a pod that cannot start is not left behind.
            let _ = self.containers.remove(&id, true, true).await;
            return Err(status(e));
        }
        if let Some((net, caps)) = network {
            let attached = match self.containers.get(&id) {
                Ok(e) => self.attach(&e.record(), &cfg, &net, caps).await,
                Err(e) => Err(status(e)),
            };
            if let Err(e) = attached {
                // What the plugins made is undone by `attach`; the holder goes too.
                let _ = self.containers.remove(&id, true, true).await;
                return Err(e);
            }
        }
        Ok(id)
    }

    /// Stops every container of the pod, then the holder. An unknown pod is already stopped.
    pub async fn stop_pod_sandbox(&self, id: &str) -> Result<(), Status> {
        let rec = match self.sandbox(id) {
            Ok((r, _)) => r,
            Err(e) if e.code() == tonic::Code::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for c in self.containers_in(&rec.id) {
            if c.state.is_running() {
                self.containers.stop(&c.id, Some(0), None).await.map_err(status)?;
            }
        }
        // While the holder runs its namespace is there for the plugins to clean up. The pod
        // stops even when a plugin fails (as containerd's does); its record stays, so the
        // next stop or the remove DELs again.
        let detached = self.detach(&rec.id).await;
        if rec.state.is_running() {
            self.containers.stop(&rec.id, Some(10), None).await.map_err(status)?;
        }
        detached
    }

    /// Removes the pod's containers, then the holder. An unknown pod is already removed.
    pub async fn remove_pod_sandbox(&self, id: &str) -> Result<(), Status> {
        let rec = match self.sandbox(id) {
            Ok((r, _)) => r,
            Err(e) if e.code() == tonic::Code::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for c in self.containers_in(&rec.id) {
            match self.containers.remove(&c.id, true, true).await {
                Ok(()) => {}
                Err(e) if berth_api::HasKind::kind(&e) == berth_api::ErrorKind::NotFound => {}
                Err(e) => return Err(status(e)),
            }
        }
        // A pod removed without a stop first is detached here.
        self.detach(&rec.id).await?;
        match self.containers.remove(&rec.id, true, true).await {
            Ok(()) => Ok(()),
            Err(e) if berth_api::HasKind::kind(&e) == berth_api::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(status(e)),
        }
    }

    fn sandbox_state(rec: &Record) -> PodSandboxState {
        if rec.state.is_running() { PodSandboxState::SandboxReady } else { PodSandboxState::SandboxNotready }
    }

    pub fn pod_sandbox_status(
        &self,
        id: &str,
        verbose: bool,
    ) -> Result<(PodSandboxStatus, HashMap<String, String>), Status> {
        let (rec, sb) = self.sandbox(id)?;
        let (network, cni_result) = self.pod_network(&rec.id);
        let st = PodSandboxStatus {
            id: rec.id.clone(),
            metadata: Some(metadata(&sb)),
            state: Self::sandbox_state(&rec) as i32,
            created_at: sb.created_at,
            // The addresses CNI gave eth0; none on the node's network.
            network: Some(network),
            linux: Some(LinuxPodSandboxStatus {
                namespaces: Some(Namespace {
                    options: Some(NamespaceOption {
                        network: sb.network,
                        pid: sb.pid,
                        ipc: sb.ipc,
                        ..Default::default()
                    }),
                }),
            }),
            labels: meta::to_map(&sb.labels),
            annotations: meta::to_map(&sb.annotations),
            runtime_handler: sb.runtime_handler.clone(),
        };
        let mut info = HashMap::new();
        if verbose {
            let v = serde_json::json!({
                "pid": rec.state.pid,
                "hostname": rec.config.hostname,
                "cgroupParent": rec.host_config.cgroup_parent,
                "resolvConf": std::fs::read_to_string(&rec.resolv_conf_path).unwrap_or_default(),
                "cniResult": cni_result,
            });
            info.insert("info".to_string(), v.to_string());
        }
        Ok((st, info))
    }

    pub fn list_pod_sandbox(&self, filter: Option<PodSandboxFilter>) -> Vec<PodSandbox> {
        let f = filter.unwrap_or_default();
        let mut out: Vec<PodSandbox> = self
            .sandboxes()
            .into_iter()
            .filter(|(r, _)| f.id.is_empty() || r.id.starts_with(&f.id))
            .filter(|(r, _)| f.state.as_ref().is_none_or(|s| s.state == Self::sandbox_state(r) as i32))
            .filter(|(_, m)| meta::selected(&f.label_selector, &m.labels))
            .map(|(r, m)| PodSandbox {
                id: r.id.clone(),
                metadata: Some(metadata(&m)),
                state: Self::sandbox_state(&r) as i32,
                created_at: m.created_at,
                labels: meta::to_map(&m.labels),
                annotations: meta::to_map(&m.annotations),
                runtime_handler: m.runtime_handler.clone(),
            })
            .collect();
        out.sort_by_key(|p| std::cmp::Reverse(p.created_at));
        out
    }
}

pub(crate) fn metadata(sb: &SandboxMeta) -> crate::proto::PodSandboxMetadata {
    crate::proto::PodSandboxMetadata {
        name: sb.name.clone(),
        uid: sb.uid.clone(),
        namespace: sb.namespace.clone(),
        attempt: sb.attempt,
    }
}
