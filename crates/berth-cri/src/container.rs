//! Containers in a pod: berth containers that join the holder's namespaces.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use berth_api::models::{BindOptions, ContainerConfig, ContainerCreateRequest, HostConfig, LogConfig, Mount};
use berth_container::{CreateOptions, CriLog, Record};
use tonic::Status;

use crate::error::{invalid, name_taken, not_found, status};
use crate::meta::{self, ContainerMeta, MountMeta};
use crate::proto::{
    self, Container, ContainerConfig as CriConfig, ContainerFilter, ContainerMetadata, ContainerState, ContainerStatus,
    ImageSpec, MountPropagation, NamespaceMode,
};
use crate::{Cri, security};

fn propagation(p: i32) -> &'static str {
    match MountPropagation::try_from(p) {
        Ok(MountPropagation::PropagationHostToContainer) => "rslave",
        Ok(MountPropagation::PropagationBidirectional) => "rshared",
        _ => "rprivate",
    }
}

fn state(rec: &Record) -> ContainerState {
    if rec.state.is_running() {
        ContainerState::ContainerRunning
    } else if rec.state.status() == berth_container::state::Status::Created {
        ContainerState::ContainerCreated
    } else {
        ContainerState::ContainerExited
    }
}

fn is_not_found(e: &berth_container::ContainerError) -> bool {
    berth_api::HasKind::kind(e) == berth_api::ErrorKind::NotFound
}

/// The container's log file: `rel` under the pod's log directory (`None` when either is
/// empty). `rel` is kubelet's, but a path that leaves the directory is refused.
fn log_path(dir: &str, rel: &str) -> Result<Option<CriLog>, Status> {
    if dir.is_empty() || rel.is_empty() {
        return Ok(None);
    }
    let p = Path::new(rel);
    if p.is_absolute() || p.components().any(|c| c == Component::ParentDir) {
        return Err(invalid(format!("log path {rel:?} must be relative to the pod's log directory, without '..'")));
    }
    Ok(Some(CriLog { dir: PathBuf::from(dir), path: Path::new(dir).join(p) }))
}

/// Makes the log file's directories: the pod's log directory as kubelet named it, and beneath
/// it, with no symlink on the way (the shim opens the file the same way at start).
fn make_log_dirs(log: &CriLog) -> Result<(), Status> {
    std::fs::create_dir_all(&log.dir)
        .map_err(|e| Status::internal(format!("creating the log directory {}: {e}", log.dir.display())))?;
    let rel = log.path.strip_prefix(&log.dir).ok().and_then(Path::parent).unwrap_or(Path::new(""));
    berth_shim::beneath::dir(&log.dir, rel, true).map_err(|e| {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            Status::failed_precondition(format!("creating the container's log directory: {e}"))
        } else {
            Status::internal(format!("creating the container's log directory: {e}"))
        }
    })?;
    Ok(())
}

impl Cri {
    /// The PID mode of a container that shares the PID namespace of `target`, another
    /// container of the same pod.
    fn pid_target(&self, pod: &str, target: &str) -> Result<String, Status> {
        let (rec, sb, _) = self.container(target)?;
        if sb != pod {
            return Err(invalid(format!("the PID namespace target {target:?} is not in this pod")));
        }
        Ok(format!("container:{}", rec.id))
    }

    /// A container of the CRI by ID (or unique prefix); `NotFound` for anything else.
    pub(crate) fn container(&self, id: &str) -> Result<(Record, String, ContainerMeta), Status> {
        let missing = || not_found(format!("container {id:?} not found"));
        if id.is_empty() {
            return Err(invalid("container ID is empty"));
        }
        let rec = self.containers.get(id).map_err(|_| missing())?.record();
        let (sb, m) = meta::container(&rec).ok_or_else(missing)?;
        Ok((rec, sb, m))
    }

    pub async fn create_container(&self, pod: &str, cfg: Option<CriConfig>) -> Result<String, Status> {
        let (holder, sb) = self.sandbox(pod)?;
        let cfg = cfg.ok_or_else(|| invalid("the container config is required"))?;
        let md = cfg.metadata.clone().ok_or_else(|| invalid("the container config must include metadata"))?;
        if md.name.is_empty() {
            return Err(invalid("the container metadata needs a name"));
        }
        let image_name = cfg.image.as_ref().map(|i| i.image.clone()).unwrap_or_default();
        if image_name.is_empty() {
            return Err(invalid("the container config must name an image"));
        }
        let image = self.images.resolve(&image_name).map_err(status)?;
        let log_path = log_path(&sb.log_directory, &cfg.log_path)?;
        if let Some(log) = &log_path {
            make_log_dirs(log)?;
        }
        let linux = cfg.linux.clone().unwrap_or_default();
        let sec = linux.security_context.clone().unwrap_or_default();
        let ns = sec.namespace_options.clone().unwrap_or_default();
        security::userns(&ns)?;
        if sec.privileged && !holder.host_config.privileged {
            return Err(invalid("a privileged container needs a privileged pod sandbox"));
        }
        // The deprecated string forms are still what older kubelets send.
        #[allow(deprecated)]
        let common = security::Common {
            run_as_user: sec.run_as_user.as_ref().map(|v| v.value),
            run_as_username: &sec.run_as_username,
            run_as_group: sec.run_as_group.as_ref().map(|v| v.value),
            supplemental_groups: &sec.supplemental_groups,
            supplemental_groups_policy: sec.supplemental_groups_policy,
            seccomp: sec.seccomp.as_ref(),
            seccomp_profile_path: &sec.seccomp_profile_path,
            selinux: sec.selinux_options.as_ref(),
            apparmor: sec.apparmor.as_ref(),
            apparmor_profile: &sec.apparmor_profile,
        };
        security::lsm(&common)?;
        let user = security::user(&common)?;
        let group_add = security::groups(&common, &sb.supplemental_groups)?;
        let mut security_opt = Vec::new();
        if sec.no_new_privs {
            security_opt.push("no-new-privileges=true".to_string());
        }
        security_opt.extend(security::seccomp(&common)?);
        let caps = sec.capabilities.clone().unwrap_or_default();
        security::capabilities(&caps)?;
        let joined = format!("container:{}", holder.id);
        let host_net = NamespaceMode::try_from(sb.network) == Ok(NamespaceMode::Node);
        let host_ipc = NamespaceMode::try_from(sb.ipc) == Ok(NamespaceMode::Node);
        let pid_mode = match NamespaceMode::try_from(ns.pid) {
            Ok(NamespaceMode::Pod) => joined.clone(),
            Ok(NamespaceMode::Node) => "host".into(),
            Ok(NamespaceMode::Target) => self.pid_target(&holder.id, &ns.target_id)?,
            _ => String::new(),
        };
        let mut mounts = Vec::new();
        let mut mount_meta = Vec::new();
        for m in &cfg.mounts {
            if !m.container_path.starts_with('/') || m.host_path.is_empty() {
                return Err(invalid(format!("invalid mount {:?} -> {:?}", m.host_path, m.container_path)));
            }
            mounts.push(Mount {
                target: m.container_path.clone(),
                source: m.host_path.clone(),
                kind: "bind".into(),
                read_only: m.readonly,
                bind_options: Some(BindOptions {
                    propagation: propagation(m.propagation).into(),
                    ..Default::default()
                }),
                ..Default::default()
            });
            mount_meta.push(MountMeta {
                container_path: m.container_path.clone(),
                host_path: m.host_path.clone(),
                readonly: m.readonly,
                propagation: m.propagation,
            });
        }
        let cm = ContainerMeta {
            name: md.name.clone(),
            attempt: md.attempt,
            labels: meta::from_map(&cfg.labels),
            annotations: meta::from_map(&cfg.annotations),
            image: image_name.clone(),
            log_path: log_path.as_ref().map(|l| l.path.display().to_string()).unwrap_or_default(),
            mounts: mount_meta,
            created_at: berth_api::time::now_nanos() as i64,
        };
        let mut host = HostConfig {
            network_mode: joined.clone(),
            ipc_mode: if host_ipc { "host".into() } else { joined.clone() },
            // Docker's API has no `container:` UTS mode: a container of its own pod gets a UTS
            // namespace of its own with the holder's hostname (copied at start, as for
            // `--network container:`).
            uts_mode: if host_net { "host".into() } else { String::new() },
            pid_mode,
            cgroup_parent: sb.cgroup_parent.clone(),
            mounts: (!mounts.is_empty()).then_some(mounts),
            privileged: sec.privileged,
            readonly_rootfs: sec.readonly_rootfs,
            cap_add: (!caps.add_capabilities.is_empty()).then(|| caps.add_capabilities.clone()),
            cap_drop: (!caps.drop_capabilities.is_empty()).then(|| caps.drop_capabilities.clone()),
            group_add,
            security_opt: (!security_opt.is_empty()).then_some(security_opt),
            masked_paths: (!sec.masked_paths.is_empty()).then(|| sec.masked_paths.clone()),
            readonly_paths: (!sec.readonly_paths.is_empty()).then(|| sec.readonly_paths.clone()),
            devices: security::devices(&cfg.devices)?,
            log_config: LogConfig { kind: "none".into(), ..Default::default() },
            ..Default::default()
        };
        security::resources(&linux.resources.clone().unwrap_or_default(), &mut host)?;
        let config = ContainerConfig {
            image: image_name,
            entrypoint: (!cfg.command.is_empty()).then(|| cfg.command.clone()),
            cmd: (!cfg.args.is_empty()).then(|| cfg.args.clone()),
            env: cfg.envs.iter().map(|kv| format!("{}={}", kv.key, String::from_utf8_lossy(&kv.value))).collect(),
            working_dir: cfg.working_dir.clone(),
            tty: cfg.tty,
            open_stdin: cfg.stdin,
            stdin_once: cfg.stdin_once,
            user,
            labels: meta::labels(&cm, Some(&holder.id)),
            ..Default::default()
        };
        let name = format!("k8s_{}_{}_{}_{}_{}", md.name, sb.name, sb.namespace, sb.uid, md.attempt);
        let opts = CreateOptions {
            namespaced: true,
            name: Some(name),
            request: ContainerCreateRequest { config, host_config: host, ..Default::default() },
            image: Some(image),
            cri_log: log_path,
        };
        let (id, _) = self.containers.create(opts).await.map_err(name_taken)?;
        Ok(id)
    }

    pub async fn start_container(&self, id: &str) -> Result<(), Status> {
        let (rec, sb, _) = self.container(id)?;
        let (holder, _) = self.sandbox(&sb)?;
        if !holder.state.is_running() {
            return Err(Status::failed_precondition(format!("pod sandbox {} is not ready", holder.id)));
        }
        match self.containers.start(&rec.id).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(Status::failed_precondition(format!("container {} is already running", rec.id))),
            Err(e) => Err(status(e)),
        }
    }

    /// Stops a container (SIGTERM, then SIGKILL after `timeout` seconds). Unknown or stopped
    /// containers are already stopped.
    pub async fn stop_container(&self, id: &str, timeout: i64) -> Result<(), Status> {
        let rec = match self.container(id) {
            Ok((r, _, _)) => r,
            Err(e) if e.code() == tonic::Code::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        match self.containers.stop(&rec.id, Some(timeout.max(0)), None).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(status(e)),
        }
    }

    /// Sets a container's resources in place (kubelet's CPU manager, in-place pod resize),
    /// through the update Docker's API makes. Zero is kubelet's "unset" and changes nothing;
    /// what berth's cgroup code cannot set is refused, as at create, and nothing changes.
    /// The OOM score is set at start only (as with runc's update).
    pub async fn update_container_resources(
        &self,
        id: &str,
        res: Option<crate::proto::LinuxContainerResources>,
    ) -> Result<(), Status> {
        let (rec, _, _) = self.container(id)?;
        // A request for Windows only has nothing for a Linux container.
        let Some(res) = res else { return Ok(()) };
        let mut host = HostConfig::default();
        security::resources(&res, &mut host)?;
        let set = |v: i64| (v != 0).then_some(v);
        let text = |v: String| (!v.is_empty()).then_some(v);
        let u = berth_api::models::UpdateRequest {
            memory: set(host.memory),
            memory_swap: set(host.memory_swap),
            cpu_shares: set(host.cpu_shares),
            cpu_quota: set(host.cpu_quota),
            cpu_period: set(host.cpu_period),
            cpuset_cpus: text(host.cpuset_cpus),
            cpuset_mems: text(host.cpuset_mems),
            ..Default::default()
        };
        self.containers.update(&rec.id, u).await.map_err(status)?;
        Ok(())
    }

    /// Reopens a running container's log at its path, after kubelet renamed it to rotate it.
    pub async fn reopen_container_log(&self, id: &str) -> Result<(), Status> {
        let (rec, _, _) = self.container(id)?;
        self.containers.reopen_log(&rec.id).await.map_err(status)
    }

    pub async fn remove_container(&self, id: &str) -> Result<(), Status> {
        let rec = match self.container(id) {
            Ok((r, _, _)) => r,
            Err(e) if e.code() == tonic::Code::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        match self.containers.remove(&rec.id, true, true).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(status(e)),
        }
    }

    pub fn list_containers(&self, filter: Option<ContainerFilter>) -> Vec<Container> {
        let f = filter.unwrap_or_default();
        let mut out: Vec<(i64, Container)> = self
            .containers
            .all()
            .into_iter()
            .map(|e| e.record())
            .filter_map(|r| meta::container(&r).map(|(sb, m)| (r, sb, m)))
            .filter(|(r, _, _)| f.id.is_empty() || r.id.starts_with(&f.id))
            .filter(|(_, sb, _)| f.pod_sandbox_id.is_empty() || sb.starts_with(&f.pod_sandbox_id))
            .filter(|(r, _, _)| f.state.as_ref().is_none_or(|s| s.state == state(r) as i32))
            .filter(|(_, _, m)| meta::selected(&f.label_selector, &m.labels))
            .map(|(r, sb, m)| {
                let c = Container {
                    id: r.id.clone(),
                    pod_sandbox_id: sb,
                    metadata: Some(ContainerMetadata { name: m.name.clone(), attempt: m.attempt }),
                    image: Some(ImageSpec { image: m.image.clone(), ..Default::default() }),
                    image_ref: r.image_id.clone(),
                    image_id: r.image_id.clone(),
                    state: state(&r) as i32,
                    created_at: m.created_at,
                    labels: meta::to_map(&m.labels),
                    annotations: meta::to_map(&m.annotations),
                };
                (m.created_at, c)
            })
            .collect();
        out.sort_by_key(|c| std::cmp::Reverse(c.0));
        out.into_iter().map(|(_, c)| c).collect()
    }

    pub fn container_status(
        &self,
        id: &str,
        verbose: bool,
    ) -> Result<(ContainerStatus, HashMap<String, String>), Status> {
        let (rec, sb, m) = self.container(id)?;
        let st = state(&rec);
        let (reason, exit_code) = if st == ContainerState::ContainerExited {
            let reason = if rec.state.oom_killed {
                "OOMKilled"
            } else if rec.state.exit_code == 0 {
                "Completed"
            } else {
                "Error"
            };
            (reason.to_string(), rec.state.exit_code as i32)
        } else {
            (String::new(), 0)
        };
        let status = ContainerStatus {
            id: rec.id.clone(),
            metadata: Some(ContainerMetadata { name: m.name.clone(), attempt: m.attempt }),
            state: st as i32,
            created_at: m.created_at,
            started_at: meta::nanos(&rec.state.started_at),
            finished_at: if st == ContainerState::ContainerExited { meta::nanos(&rec.state.finished_at) } else { 0 },
            exit_code,
            image: Some(ImageSpec { image: m.image.clone(), ..Default::default() }),
            image_ref: rec.image_id.clone(),
            image_id: rec.image_id.clone(),
            reason,
            message: rec.state.error.clone(),
            labels: meta::to_map(&m.labels),
            annotations: meta::to_map(&m.annotations),
            mounts: m
                .mounts
                .iter()
                .map(|x| proto::Mount {
                    container_path: x.container_path.clone(),
                    host_path: x.host_path.clone(),
                    readonly: x.readonly,
                    propagation: x.propagation,
                    ..Default::default()
                })
                .collect(),
            log_path: m.log_path.clone(),
            resources: Some(resources_of(&rec.host_config)),
            ..Default::default()
        };
        let mut info = HashMap::new();
        if verbose {
            let v = serde_json::json!({
                "sandboxID": sb,
                "pid": rec.state.pid,
                "args": std::iter::once(rec.path.clone()).chain(rec.args.iter().cloned()).collect::<Vec<_>>(),
                "env": rec.config.env,
                "workingDir": rec.config.working_dir,
            });
            info.insert("info".to_string(), v.to_string());
        }
        Ok((status, info))
    }
}

/// The resources a container has now, as kubelet reads them back after an in-place resize.
fn resources_of(h: &HostConfig) -> proto::ContainerResources {
    proto::ContainerResources {
        linux: Some(proto::LinuxContainerResources {
            cpu_period: h.cpu_period,
            cpu_quota: h.cpu_quota,
            cpu_shares: h.cpu_shares,
            memory_limit_in_bytes: h.memory,
            memory_swap_limit_in_bytes: h.memory_swap,
            oom_score_adj: h.oom_score_adj,
            cpuset_cpus: h.cpuset_cpus.clone(),
            cpuset_mems: h.cpuset_mems.clone(),
            ..Default::default()
        }),
        windows: None,
    }
}
