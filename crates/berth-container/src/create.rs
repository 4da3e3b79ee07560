//! `docker create`: validate, merge the image's defaults, and record the container.

use std::collections::BTreeMap;

use berth_api::models::{ContainerConfig, ContainerCreateRequest, HostConfig};

use crate::record::Record;
use crate::{ContainerError, ContainerService, Result};

#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub name: Option<String>,
    pub request: ContainerCreateRequest,
    /// The image itself rather than `request.config.image` looked up in the store: the CRI's
    /// pod holder runs on an image of no layers that the store does not list.
    pub image: Option<berth_image::Image>,
    /// Log in the CRI's format to this file (kubelet's log path) instead of the configured
    /// log driver.
    pub cri_log: Option<CriLog>,
    /// Made by berth's own services (the CRI), whose state lives in `io.berth.*` labels;
    /// anyone else's container may not carry them ([`RESERVED_LABELS`]).
    pub namespaced: bool,
}

/// A CRI container's log file: `path`, inside the pod's log directory `dir`, which is
/// kubelet's; the shim reaches the file from `dir` with no symlink on the way
/// ([`berth_shim::beneath`]).
#[derive(Debug, Clone)]
pub struct CriLog {
    pub dir: std::path::PathBuf,
    pub path: std::path::PathBuf,
}

/// Labels berth keeps for itself: a namespace (which hides a container from `ps`) and the
/// CRI's metadata. Through the Docker API a request may not set them and an image's are
/// dropped, or a client or image could hide containers or forge pods for kubelet.
pub const RESERVED_LABELS: &str = "io.berth.";

/// Docker's minimum for `--memory`.
const MIN_MEMORY: i64 = 6 * 1024 * 1024;

fn invalid(s: impl Into<String>) -> ContainerError {
    ContainerError::Invalid(s.into())
}

/// Checks what Docker checks before creating anything.
pub(crate) fn validate_host_config(h: &HostConfig) -> Result<()> {
    let rp = &h.restart_policy;
    match rp.name.as_str() {
        "" | "no" | "always" | "unless-stopped" => {
            if rp.maximum_retry_count != 0 {
                return Err(invalid(
                    "invalid restart policy: maximum retry count can only be used with 'on-failure'".to_string(),
                ));
            }
        }
        "on-failure" => {
            if rp.maximum_retry_count < 0 {
                return Err(invalid("invalid restart policy: maximum retry count cannot be negative"));
            }
        }
        other => {
            return Err(invalid(format!(
                "invalid restart policy: unknown policy '{other}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
            )));
        }
    }
    if h.auto_remove && !matches!(rp.name.as_str(), "" | "no") {
        return Err(invalid("conflicting options: cannot specify both --restart and --rm"));
    }
    if h.memory != 0 && h.memory < MIN_MEMORY {
        return Err(invalid("Minimum memory limit allowed is 6MB"));
    }
    if h.memory_swap > 0 && h.memory > 0 && h.memory_swap < h.memory {
        return Err(invalid("Minimum memoryswap limit should be larger than memory limit, see usage"));
    }
    if h.memory_swap > 0 && h.memory == 0 {
        return Err(invalid("You should always set the Memory limit when using Memoryswap limit, see usage"));
    }
    if h.nano_cpus < 0 {
        return Err(invalid("Range of CPUs is from 0.01 to the number of CPUs available"));
    }
    if h.nano_cpus > 0 && (h.cpu_quota > 0 || h.cpu_period > 0) {
        return Err(invalid("Conflicting options: Nano CPUs and CPU Period cannot both be set"));
    }
    let ncpu = std::thread::available_parallelism().map(|n| n.get() as i64).unwrap_or(1);
    if h.nano_cpus > ncpu * 1_000_000_000 {
        return Err(invalid(format!(
            "Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
        )));
    }
    if h.cpu_shares < 0 {
        return Err(invalid("invalid CPU shares: must be positive"));
    }
    if let Some(p) = h.pids_limit
        && p < -1
    {
        return Err(invalid("invalid PIDs limit"));
    }
    if h.shm_size < 0 {
        return Err(invalid("SHM size can not be less than 0"));
    }
    if h.oom_score_adj < -1000 || h.oom_score_adj > 1000 {
        return Err(invalid(format!("Invalid value {}, range for oom score adj is [-1000, 1000]", h.oom_score_adj)));
    }
    for c in h.cap_add.iter().chain(h.cap_drop.iter()).flatten() {
        if berth_runtime::caps::normalize(c).is_none() {
            return Err(invalid(format!("invalid capability: {c}")));
        }
    }
    for u in h.ulimits.iter().flatten() {
        if crate::spec::rlimit_name(&u.name).is_none() {
            return Err(invalid(format!("invalid ulimit type: {}", u.name)));
        }
        if u.soft > u.hard {
            return Err(invalid(format!(
                "ulimit soft limit must be less than or equal to hard limit: {} > {}",
                u.soft, u.hard
            )));
        }
    }
    for rule in h.device_cgroup_rules.iter().flatten() {
        crate::spec::parse_device_cgroup_rule(rule)?;
    }
    if let Some(sysctls) = &h.sysctls {
        let own = berth_runtime::sysctl::Namespaces {
            ipc: h.ipc_mode != "host",
            net: h.network_mode_or_default() != "host",
            uts: h.uts_mode != "host",
        };
        for name in sysctls.keys() {
            berth_runtime::sysctl::check(name, own).map_err(invalid)?;
        }
    }
    for s in h.security_opt.iter().flatten() {
        let (k, v) = s.split_once(['=', ':']).unwrap_or((s.as_str(), ""));
        match k {
            "no-new-privileges" => {
                if !matches!(v, "" | "true" | "false") {
                    return Err(invalid(format!("invalid --security-opt 2: {s:?}")));
                }
            }
            "seccomp" | "apparmor" | "label" | "systempaths" | "writable-cgroups" | "mask" | "unmask" => {}
            _ => return Err(invalid(format!("invalid --security-opt 1: {s:?}"))),
        }
    }
    // berth's own runtime answers to Docker's default name.
    if !matches!(h.runtime.as_str(), "" | "runc" | "berth") {
        return Err(invalid(format!("unknown or invalid runtime name: {}", h.runtime)));
    }
    let mode = h.network_mode_or_default();
    if let Some(c) = mode.strip_prefix("container:")
        && c.is_empty()
    {
        return Err(invalid("invalid network mode: container name is empty"));
    }
    for (dest, _) in h.tmpfs.iter().flatten() {
        if !dest.starts_with('/') {
            return Err(invalid(format!("invalid mount config: tmpfs destination {dest:?} is not an absolute path")));
        }
    }
    for b in h.binds.iter().flatten() {
        let bind = parse_bind(b)?;
        if h.tmpfs.as_ref().is_some_and(|t| t.contains_key(&bind.destination)) {
            return Err(invalid(format!("Duplicate mount point: {}", bind.destination)));
        }
    }
    for m in h.mounts.iter().flatten() {
        if !m.target.starts_with('/') {
            return Err(invalid(format!(
                "invalid mount config for type \"{}\": invalid mount path: '{}' mount path must be absolute",
                m.kind, m.target
            )));
        }
        match m.kind.as_str() {
            "bind" => {
                if m.source.is_empty() {
                    return Err(invalid("invalid mount config for type \"bind\": field Source must not be empty"));
                }
                if !std::path::Path::new(&m.source).exists() {
                    return Err(invalid(format!(
                        "invalid mount config for type \"bind\": bind source path does not exist: {}",
                        m.source
                    )));
                }
            }
            "tmpfs" | "volume" => {}
            other => return Err(invalid(format!("invalid mount config: mount type unknown: {other:?}"))),
        }
    }
    for (port, bindings) in &h.port_bindings {
        crate::spec::parse_port_key(port).map_err(invalid)?;
        for b in bindings.iter().flatten() {
            if !b.host_port.is_empty() {
                let (a, z) = b.host_port.split_once('-').unwrap_or((&b.host_port, &b.host_port));
                if a.parse::<u16>().is_err() || z.parse::<u16>().is_err() {
                    return Err(invalid(format!("invalid hostPort: {}", b.host_port)));
                }
            }
        }
    }
    Ok(())
}

/// One `-v` argument: `host-or-volume:container[:options]`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Bind {
    pub source: String,
    pub destination: String,
    pub read_only: bool,
    pub propagation: String,
    pub is_volume: bool,
    /// `nocopy`: a new volume is not filled from the image.
    pub no_copy: bool,
}

pub(crate) fn parse_bind(spec: &str) -> Result<Bind> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, dest, opts) = match parts.as_slice() {
        [d] => ("", *d, ""),
        [s, d] if d.starts_with('/') => (*s, *d, ""),
        [d, o] if d.starts_with('/') && !o.starts_with('/') => ("", *d, *o),
        [s, d] => (*s, *d, ""),
        [s, d, o] => (*s, *d, *o),
        _ => return Err(invalid(format!("invalid volume specification: '{spec}'"))),
    };
    if !dest.starts_with('/') {
        return Err(invalid(format!(
            "invalid volume specification: '{spec}': invalid mount config for type \"{}\": invalid mount path: '{dest}' mount path must be absolute",
            if source.starts_with('/') { "bind" } else { "volume" }
        )));
    }
    if dest == "/" {
        return Err(invalid(format!(
            "invalid volume specification: '{spec}': invalid mount config for type \"bind\": invalid specification: destination can't be '/'"
        )));
    }
    let mut read_only = false;
    let mut propagation = String::new();
    let mut no_copy = false;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => read_only = true,
            "nocopy" => no_copy = true,
            "rw" | "z" | "Z" | "copy" | "consistent" | "cached" | "delegated" => {}
            "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => propagation = o.to_string(),
            _ => return Err(invalid(format!("invalid mode: {o}"))),
        }
    }
    let is_volume = !source.starts_with('/');
    // Docker turns `nocopy` into volume options and a propagation mode into bind options;
    // each belongs to its own mount type.
    let wrong_field = if !is_volume && no_copy {
        Some(("bind", "VolumeOptions"))
    } else if is_volume && !propagation.is_empty() {
        Some(("volume", "BindOptions"))
    } else {
        None
    };
    if let Some((kind, field)) = wrong_field {
        return Err(invalid(format!(
            "invalid volume specification: '{spec}': invalid mount config for type \"{kind}\": field {field} must not be specified"
        )));
    }
    if is_volume && !source.is_empty() && !berth_volume::valid_name(source) {
        return Err(invalid(format!(
            "create {source}: \"{source}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        )));
    }
    Ok(Bind { source: source.to_string(), destination: clean(dest), read_only, propagation, is_volume, no_copy })
}

/// A missing container named by a create request is the request's mistake (400): dockerd
/// keeps 404 for the image, which the docker CLI then pulls.
pub(crate) fn not_found_is_invalid(e: ContainerError) -> ContainerError {
    match e {
        ContainerError::NotFound(_) => invalid(e.to_string()),
        e => e,
    }
}

/// Lexically cleans an absolute path.
pub(crate) use berth_api::paths::clean_abs as clean;

/// Merges the image's defaults into the container's config, as Docker does.
pub(crate) fn merge_config(user: &ContainerConfig, image: &ContainerConfig) -> ContainerConfig {
    let mut c = user.clone();
    // Environment: the image's, overridden key by key.
    let mut env: Vec<String> = image.env.clone();
    for e in &user.env {
        let key = e.split_once('=').map(|(k, _)| k).unwrap_or(e);
        if let Some(slot) = env.iter_mut().find(|x| x.split_once('=').map(|(k, _)| k).unwrap_or(x) == key) {
            *slot = e.clone();
        } else {
            env.push(e.clone());
        }
    }
    c.env = env;
    let user_entry = user.entrypoint.clone();
    match &user_entry {
        // `--entrypoint ""` clears the image's entrypoint.
        Some(ep) if ep.len() == 1 && ep[0].is_empty() => c.entrypoint = None,
        Some(_) => {}
        None => c.entrypoint = image.entrypoint.clone(),
    }
    let user_cmd_empty = user.cmd.as_ref().is_none_or(|v| v.is_empty());
    if user_cmd_empty {
        // A new entrypoint from the user drops the image's command.
        c.cmd = if user_entry.is_some() { None } else { image.cmd.clone() };
    }
    if c.working_dir.is_empty() {
        c.working_dir = image.working_dir.clone();
    }
    if c.user.is_empty() {
        c.user = image.user.clone();
    }
    let mut ports = image.exposed_ports.clone().unwrap_or_default();
    ports.extend(user.exposed_ports.clone().unwrap_or_default());
    c.exposed_ports = if ports.is_empty() { None } else { Some(ports) };
    let mut vols = image.volumes.clone().unwrap_or_default();
    vols.extend(user.volumes.clone().unwrap_or_default());
    c.volumes = if vols.is_empty() { None } else { Some(vols) };
    let mut labels: BTreeMap<String, String> = image.labels.clone();
    labels.extend(user.labels.clone());
    c.labels = labels;
    if c.stop_signal.is_empty() {
        c.stop_signal = image.stop_signal.clone();
    }
    if c.stop_timeout.is_none() {
        c.stop_timeout = image.stop_timeout;
    }
    if c.healthcheck.is_none() {
        c.healthcheck = image.healthcheck.clone();
    }
    if c.shell.is_none() {
        c.shell = image.shell.clone();
    }
    if c.on_build.is_empty() {
        c.on_build = image.on_build.clone();
    }
    c
}

impl ContainerService {
    /// Creates a container; returns its ID and any warnings.
    pub async fn create(&self, opts: CreateOptions) -> Result<(String, Vec<String>)> {
        let mut req = opts.request;
        let mut warnings = Vec::new();
        if req.config.image.is_empty() {
            return Err(invalid("config.Image is required"));
        }
        warnings.extend(crate::verify::verify(&req.config, &req.host_config)?);
        validate_host_config(&req.host_config)?;
        if let Some(requests) = &req.host_config.device_requests {
            let reg = crate::cdi::Registry::load(&self.cfg.cdi_spec_dirs);
            reg.edits(&reg.requested(requests)?)?;
        }
        req.host_config.log_config =
            crate::log_config::resolve(&req.host_config.log_config, &self.cfg.log_driver, &self.cfg.log_opts)
                .map_err(invalid)?
                .0;
        let image = match opts.image {
            Some(i) => i,
            None => self.images.resolve(&req.config.image)?,
        };
        if opts.cri_log.is_some() {
            req.host_config.log_config = berth_api::models::LogConfig { kind: "cri".into(), ..Default::default() };
        }
        if !opts.namespaced
            && let Some(k) = req.config.labels.keys().find(|k| k.starts_with(RESERVED_LABELS))
        {
            return Err(invalid(format!("label {k:?}: labels starting with {RESERVED_LABELS:?} are berth's own")));
        }
        let mut config = merge_config(&req.config, &image.config.config);
        if !opts.namespaced {
            config.labels.retain(|k, _| !k.starts_with(RESERVED_LABELS));
        }
        let mut args: Vec<String> = config.entrypoint.clone().unwrap_or_default();
        args.extend(config.cmd.clone().unwrap_or_default());
        if args.is_empty() {
            return Err(invalid("No command specified"));
        }
        let id = berth_api::ids::random_id();
        let mode = req.host_config.network_mode_or_default().to_string();
        if config.hostname.is_empty() {
            config.hostname = if mode == "host" {
                rustix::system::uname().nodename().to_string_lossy().into_owned()
            } else if mode.starts_with("container:") {
                // X's, from the start on (see start_locked).
                String::new()
            } else {
                id[..12].to_string()
            };
        }
        // `container:<name>` is looked up at start, as Docker does: a 404 here would make the
        // docker CLI take it for a missing image and pull.
        // Legacy links name existing containers (dockerd's registerLinks; user-defined
        // networks resolve them at start).
        if matches!(mode.as_str(), "bridge" | "host" | "none") || mode.starts_with("container:") {
            for l in req.host_config.links.iter().flatten() {
                let name = l.split_once(':').map_or(l.as_str(), |(n, _)| n).trim_start_matches('/');
                self.get(name)
                    .map_err(|e| invalid(format!("could not get container for {name}: {}", not_found_is_invalid(e))))?;
            }
        }
        // The docker CLI names the default network "default"; on Linux that is "bridge".
        if let Some(ep) = req.networking_config.endpoints_config.remove("default") {
            req.networking_config.endpoints_config.entry("bridge".into()).or_insert(ep);
        }
        self.networks.validate(&mode, &req.networking_config.endpoints_config)?;

        let name = match &opts.name {
            Some(n) if !n.is_empty() => {
                let n = berth_api::names::validate_container_name(n).map_err(ContainerError::Invalid)?.to_string();
                self.reserve_name(&n, &id)?;
                n
            }
            _ => loop {
                let n = berth_api::names::generate();
                if self.reserve_name(&n, &id).is_ok() {
                    break n;
                }
            },
        };
        let result = self
            .create_reserved(
                &id,
                &name,
                config,
                req.host_config,
                req.networking_config.endpoints_config,
                &image,
                args,
                opts.cri_log,
            )
            .await;
        if result.is_err() {
            self.release_name(&name, &id);
            // Best effort: recovery sweeps whatever stays (a directory no record owns).
            crate::offload::remove_layer_and_trees(self.images.clone(), id.clone(), vec![self.container_dir(&id)])
                .await;
        }
        result?;
        Ok((id, warnings))
    }

    #[allow(clippy::too_many_arguments)]
    async fn create_reserved(
        &self,
        id: &str,
        name: &str,
        config: ContainerConfig,
        mut host: HostConfig,
        endpoints: std::collections::BTreeMap<String, berth_api::models::EndpointSettings>,
        image: &berth_image::Image,
        args: Vec<String>,
        cri_log: Option<CriLog>,
    ) -> Result<()> {
        let dir = self.container_dir(id);
        std::fs::create_dir_all(&dir).map_err(|e| ContainerError::io("creating the container directory", e))?;
        self.images.snapshots().prepare(id, &image.config.rootfs.diff_ids)?;
        if host.log_config.kind.is_empty() {
            host.log_config.kind = self.cfg.log_driver.clone();
        }
        if host.network_mode.is_empty() {
            host.network_mode = "bridge".into();
        }
        if host.runtime.is_empty() {
            host.runtime = "runc".into();
        }
        let host_mode = host.network_mode.clone();
        let volumes: Vec<String> = config.volumes.iter().flatten().map(|(k, _)| k.clone()).collect();
        let resolved = self.resolve_mounts(id, &host, &volumes)?;
        let mut path_args = args.into_iter();
        let path = path_args.next().unwrap_or_default();
        let rec = Record {
            id: id.to_string(),
            name: name.to_string(),
            created: berth_api::time::rfc3339_now(),
            path,
            args: path_args.collect(),
            config,
            host_config: host,
            image_id: image.id.clone(),
            state: crate::state::State::created(),
            network: crate::network::configured_view(&host_mode, &endpoints),
            mounts: resolved.mounts,
            anonymous_volumes: resolved.anonymous,
            layers: image.config.rootfs.diff_ids.clone(),
            endpoints_config: endpoints,
            log_path: match &cri_log {
                Some(l) => l.path.display().to_string(),
                None => dir.join(format!("{id}-json.log")).display().to_string(),
            },
            log_root: cri_log.map(|l| l.dir.display().to_string()).unwrap_or_default(),
            hostname_path: dir.join("hostname").display().to_string(),
            hosts_path: dir.join("hosts").display().to_string(),
            resolv_conf_path: dir.join("resolv.conf").display().to_string(),
            ..Default::default()
        };
        let inserted = match self.populate_mounts(&rec, resolved.copy_up).await {
            Ok(()) => self.insert(rec),
            Err(e) => Err(e),
        };
        let e = match inserted {
            Ok(e) => e,
            Err(err) => {
                self.release_mounts(id, &resolved.used, &resolved.created);
                return Err(err);
            }
        };
        self.emit(&e.record(), "create", &[]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_parse_like_docker() {
        let b = parse_bind("/host:/ctr:ro").unwrap();
        assert_eq!(
            (b.source.as_str(), b.destination.as_str(), b.read_only, b.is_volume),
            ("/host", "/ctr", true, false)
        );
        let b = parse_bind("data:/var/lib/data").unwrap();
        assert!(b.is_volume);
        let b = parse_bind("/anon").unwrap();
        assert!(b.is_volume && b.source.is_empty());
        assert!(parse_bind("./rel:/x").unwrap_err().to_string().contains("use absolute path"));
        assert!(parse_bind("/a:rel").is_err());
        assert!(parse_bind("/a:/b:bogus").is_err());
        assert!(parse_bind("/a:/").is_err());
    }

    #[test]
    fn image_defaults_merge() {
        let image = ContainerConfig {
            env: vec!["PATH=/bin".into(), "A=1".into()],
            cmd: Some(vec!["sh".into()]),
            entrypoint: Some(vec!["/init".into()]),
            working_dir: "/srv".into(),
            ..Default::default()
        };
        let user = ContainerConfig { env: vec!["A=2".into()], ..Default::default() };
        let c = merge_config(&user, &image);
        assert_eq!(c.env, vec!["PATH=/bin".to_string(), "A=2".to_string()]);
        assert_eq!(c.cmd, Some(vec!["sh".to_string()]));
        assert_eq!(c.entrypoint, Some(vec!["/init".to_string()]));
        assert_eq!(c.working_dir, "/srv");
        let user = ContainerConfig { entrypoint: Some(vec!["/other".into()]), ..Default::default() };
        let c = merge_config(&user, &image);
        assert_eq!(c.cmd, None, "a new entrypoint drops the image's cmd");
        let user =
            ContainerConfig { entrypoint: Some(vec!["".into()]), cmd: Some(vec!["echo".into()]), ..Default::default() };
        let c = merge_config(&user, &image);
        assert_eq!(c.entrypoint, None);
        assert_eq!(c.cmd, Some(vec!["echo".to_string()]));
    }

    #[test]
    fn host_config_checks() {
        let mut h = HostConfig { auto_remove: true, ..Default::default() };
        h.restart_policy.name = "always".into();
        assert!(validate_host_config(&h).unwrap_err().to_string().contains("cannot specify both --restart and --rm"));
        let h = HostConfig { memory: 1024, ..Default::default() };
        assert!(validate_host_config(&h).unwrap_err().to_string().contains("Minimum memory limit"));
        let h = HostConfig { cap_add: Some(vec!["FLY".into()]), ..Default::default() };
        assert!(validate_host_config(&h).is_err());
        assert!(validate_host_config(&HostConfig::default()).is_ok());
    }
}
