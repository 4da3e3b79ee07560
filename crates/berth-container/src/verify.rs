//! What dockerd refuses before it creates anything, with its words: the network-mode
//! conflicts its request decoder checks, its `verifyContainerSettings` rules (the portable
//! config, the host config, and the Linux resource checks against what this host has), in
//! the order dockerd applies them, so the first error a request meets is the one Docker names.
//! Every error here is a 400 (`ContainerError::Invalid`); the warnings go back to the client.

use berth_api::models::{ContainerConfig, HostConfig};

use crate::{ContainerError, Result};

/// Docker's minimum for `--memory`, `--memory-reservation` and `--kernel-memory`.
const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// Docker's ceiling for a CPU or memory node number in a cpuset list.
const MAX_CPUS: u32 = 8192;

fn invalid(s: impl Into<String>) -> ContainerError {
    ContainerError::Invalid(s.into())
}

/// The checks dockerd runs on a create request; returns its warnings.
pub(crate) fn verify(c: &ContainerConfig, h: &HostConfig) -> Result<Vec<String>> {
    net_mode(c, h)?;
    decoder_resources(h, &Host::probe())?;
    container_config(c)?;
    host_config(h)?;
    platform(h, &Host::probe())
}

/// The network-mode conflicts (moby runconfig `validateNetMode`).
pub(crate) fn net_mode(c: &ContainerConfig, h: &HostConfig) -> Result<()> {
    let mode = h.network_mode.as_str();
    if mode == "container" || mode.starts_with("container:") {
        if mode.strip_prefix("container:").is_none_or(str::is_empty) {
            return Err(invalid("invalid network mode: invalid container format container:<name|id>"));
        }
        if !c.hostname.is_empty() {
            return Err(invalid("conflicting options: hostname and the network mode"));
        }
        if h.links.as_ref().is_some_and(|l| !l.is_empty()) {
            return Err(invalid(
                "conflicting options: container type network can't be used with links. This would result in undefined behavior",
            ));
        }
        if !h.dns.is_empty() {
            return Err(invalid("conflicting options: dns and the network mode"));
        }
        if h.extra_hosts.as_ref().is_some_and(|e| !e.is_empty()) {
            return Err(invalid("conflicting options: custom host-to-IP mapping and the network mode"));
        }
        if !h.port_bindings.is_empty() || h.publish_all_ports {
            return Err(invalid("conflicting options: port publishing and the container type network mode"));
        }
        if c.exposed_ports.as_ref().is_some_and(|p| !p.is_empty()) {
            return Err(invalid("conflicting options: port exposing and the container type network mode"));
        }
    }
    if h.uts_mode == "host" && !c.hostname.is_empty() {
        return Err(invalid("conflicting options: hostname and the UTS mode"));
    }
    if mode == "host" && h.links.as_ref().is_some_and(|l| !l.is_empty()) {
        return Err(invalid(
            "conflicting options: host type networking can't be used with links. This would result in undefined behavior",
        ));
    }
    Ok(())
}

/// What the host offers, as dockerd's sysinfo reads it.
pub(crate) struct Host {
    /// `cpu.rt_period_us` exists (cgroup v1 with RT group scheduling).
    pub cpu_realtime: bool,
    /// The CPUs and memory nodes containers may use (`None`: no cpuset controller found).
    pub cpus: Option<String>,
    pub mems: Option<String>,
    pub ncpu: i64,
    pub block_io: berth_cgroups::BlockIoSupport,
}

impl Host {
    pub fn probe() -> Host {
        let read = |p: &str| std::fs::read_to_string(p).ok().map(|s| s.trim().to_string());
        let (cpus, mems) = match read("/sys/fs/cgroup/cpuset/cpuset.cpus") {
            Some(c) => (Some(c), read("/sys/fs/cgroup/cpuset/cpuset.mems")),
            None => (read("/sys/fs/cgroup/cpuset.cpus.effective"), read("/sys/fs/cgroup/cpuset.mems.effective")),
        };
        Host {
            cpu_realtime: std::path::Path::new("/sys/fs/cgroup/cpu/cpu.rt_period_us").exists(),
            cpus,
            mems,
            ncpu: std::thread::available_parallelism().map(|n| n.get() as i64).unwrap_or(1),
            block_io: {
                let root = std::path::Path::new("/sys/fs/cgroup");
                berth_cgroups::block_io_support(root, berth_cgroups::detect(root))
            },
        }
    }
}

/// The resource checks of dockerd's request decoder (runconfig `validateResources`).
pub(crate) fn decoder_resources(h: &HostConfig, host: &Host) -> Result<()> {
    if !h.isolation.is_empty() && h.isolation != "default" {
        return Err(invalid(format!("invalid isolation ({}): linux only supports 'default'", h.isolation)));
    }
    if (h.cpu_realtime_period != 0 || h.cpu_realtime_runtime != 0) && !host.cpu_realtime {
        return Err(invalid("kernel does not support CPU real-time scheduler"));
    }
    if h.cpu_realtime_period != 0 && h.cpu_realtime_runtime != 0 && h.cpu_realtime_runtime > h.cpu_realtime_period {
        return Err(invalid("cpu real-time runtime cannot be higher than cpu real-time period"));
    }
    if h.cpu_shares < 0 {
        return Err(invalid(format!("invalid CPU shares ({}): value must be a positive integer", h.cpu_shares)));
    }
    Ok(())
}

/// Docker's `ValidateEnv`: a variable needs a name.
pub(crate) fn check_env(e: &str) -> Result<()> {
    if e.split_once('=').map_or(e, |(k, _)| k).is_empty() {
        return Err(invalid(format!("invalid environment variable: {e}")));
    }
    Ok(())
}

/// The portable config (moby `validateContainerConfig`).
fn container_config(c: &ContainerConfig) -> Result<()> {
    if !c.working_dir.is_empty() && !c.working_dir.starts_with('/') {
        return Err(invalid(format!(
            "the working directory '{}' is invalid, it needs to be an absolute path",
            c.working_dir
        )));
    }
    if !c.stop_signal.is_empty() && crate::lifecycle::parse_signal(&c.stop_signal).is_err() {
        return Err(invalid(format!("invalid signal: {}", c.stop_signal)));
    }
    for e in &c.env {
        check_env(e)?;
    }
    if let Some(hc) = &c.healthcheck {
        const MIN: i64 = 1_000_000;
        for (v, what) in [
            (hc.interval, "Interval"),
            (hc.timeout, "Timeout"),
            (hc.retries, "Retries"),
            (hc.start_period, "StartPeriod"),
            (hc.start_interval, "StartInterval"),
        ] {
            if what == "Retries" {
                if v < 0 {
                    return Err(invalid("Retries in Healthcheck cannot be negative"));
                }
            } else if v != 0 && v < MIN {
                return Err(invalid(format!("{what} in Healthcheck cannot be less than 1ms")));
            }
        }
    }
    Ok(())
}

/// The host config (moby `validateHostConfig`), where berth's own checks do not already
/// say the same.
fn host_config(h: &HostConfig) -> Result<()> {
    if h.auto_remove && !matches!(h.restart_policy.name.as_str(), "" | "no") {
        return Err(invalid("can't create 'AutoRemove' container with restart policy"));
    }
    for m in h.mounts.iter().flatten() {
        let wrong = [
            (m.volume_options.is_some(), "volume", "VolumeOptions"),
            (m.bind_options.is_some(), "bind", "BindOptions"),
            (m.tmpfs_options.is_some(), "tmpfs", "TmpfsOptions"),
        ];
        for (set, kind, field) in wrong {
            if set && m.kind != kind {
                return Err(invalid(format!("{field} must not be specified on mount type {:?}", m.kind)));
            }
        }
        let cfg = |e: &str| invalid(format!("invalid mount config for type {:?}: {e}", m.kind));
        if m.target.is_empty() {
            return Err(cfg("field Target must not be empty"));
        }
        if crate::create::clean(&m.target) == "/" {
            return Err(cfg("invalid specification: destination can't be '/'"));
        }
        match m.kind.as_str() {
            "volume" if m.read_only && m.source.is_empty() => {
                return Err(cfg("must not set ReadOnly mode when using anonymous volumes"));
            }
            "tmpfs" if !m.source.is_empty() => return Err(cfg("field Source must not be specified")),
            _ => {}
        }
    }
    for e in h.extra_hosts.iter().flatten() {
        let (name, ip) = e.split_once(':').unwrap_or(("", ""));
        if name.is_empty() {
            return Err(invalid(format!("bad format for add-host: {e:?}")));
        }
        let ip_ok = ip == "host-gateway"
            || ip.parse::<std::net::IpAddr>().is_ok()
            || ip
                .strip_prefix('[')
                .and_then(|i| i.strip_suffix(']'))
                .is_some_and(|i| i.parse::<std::net::Ipv6Addr>().is_ok());
        if !ip_ok {
            return Err(invalid(format!("invalid IP address in add-host: {ip:?}")));
        }
    }
    for (port, bindings) in &h.port_bindings {
        let num = port.split_once('/').map_or(port.as_str(), |(p, _)| p);
        if num.split_once('-').map_or(num, |(a, _)| a).parse::<u16>().is_err() {
            return Err(invalid(format!("invalid port specification: {num:?}")));
        }
        for b in bindings.iter().flatten() {
            let hp = b.host_port.split_once('/').map_or(b.host_port.as_str(), |(p, _)| p);
            if !hp.is_empty() && hp.split('-').any(|p| p.parse::<u16>().is_err()) {
                return Err(invalid(format!("invalid port specification: {:?}", b.host_port)));
            }
        }
    }
    for (list, what) in [(&h.cap_add, "CapAdd"), (&h.cap_drop, "CapDrop")] {
        for cap in list.iter().flatten() {
            if !cap.eq_ignore_ascii_case("ALL") && berth_runtime::caps::normalize(cap).is_none() {
                let up = cap.to_ascii_uppercase();
                let name = if up.starts_with("CAP_") { up } else { format!("CAP_{up}") };
                return Err(invalid(format!("invalid {what}: unknown capability: {name:?}")));
            }
        }
    }
    if h.annotations.as_ref().is_some_and(|a| a.contains_key("")) {
        return Err(invalid("invalid Annotations: the empty string is not permitted as an annotation key"));
    }
    Ok(())
}

/// Parses a cpuset list (`0-3,6`) as dockerd does, up to `max`.
fn uint_list(val: &str, max: u32) -> std::result::Result<Vec<u32>, String> {
    let mut out = Vec::new();
    if val.is_empty() {
        return Ok(out);
    }
    let bad = || format!("invalid format: {val}");
    for r in val.split(',') {
        let (a, b) = match r.split_once('-') {
            Some((a, b)) => (a.parse::<u32>().map_err(|_| bad())?, b.parse::<u32>().map_err(|_| bad())?),
            None => {
                let v = r.parse::<u32>().map_err(|_| bad())?;
                (v, v)
            }
        };
        if b < a {
            return Err(bad());
        }
        if max != 0 && b > max {
            return Err(format!("value of out range, maximum is {max}"));
        }
        out.extend(a..=b);
    }
    Ok(out)
}

/// Whether every member of `requested` is in `available` (dockerd's `isCpusetListAvailable`).
fn cpuset_available(requested: &str, available: &str) -> std::result::Result<bool, String> {
    let avail = uint_list(available, 0).unwrap_or_default();
    let max = avail.iter().copied().max().unwrap_or(0).max(MAX_CPUS);
    Ok(uint_list(requested, max)?.iter().all(|n| avail.contains(n)))
}

/// The Linux checks (moby `verifyPlatformContainerSettings` and its resource checks).
pub(crate) fn platform(h: &HostConfig, host: &Host) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    if h.memory != 0 && h.memory < MIN_MEMORY {
        return Err(invalid("Minimum memory limit allowed is 6MB"));
    }
    if h.memory > 0 && h.memory_swap > 0 && h.memory_swap < h.memory {
        return Err(invalid("Minimum memoryswap limit should be larger than memory limit, see usage"));
    }
    if h.memory == 0 && h.memory_swap > 0 {
        return Err(invalid("You should always set the Memory limit when using Memoryswap limit, see usage"));
    }
    if let Some(s) = h.memory_swappiness {
        // -1 is the API's "unset".
        if s != -1 && !(0..=100).contains(&s) {
            return Err(invalid(format!("Invalid value: {s}, valid memory swappiness range is 0-100")));
        }
    }
    if h.memory_reservation > 0 && h.memory_reservation < MIN_MEMORY {
        return Err(invalid("Minimum memory reservation allowed is 6MB"));
    }
    if h.memory > 0 && h.memory_reservation > 0 && h.memory < h.memory_reservation {
        return Err(invalid("Minimum memory limit can not be less than memory reservation limit, see usage"));
    }
    if h.oom_kill_disable == Some(true) && h.memory == 0 {
        warnings.push(
            "OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources."
                .to_string(),
        );
    }
    if h.nano_cpus > 0 && h.cpu_period > 0 {
        return Err(invalid("Conflicting options: Nano CPUs and CPU Period cannot both be set"));
    }
    if h.nano_cpus > 0 && h.cpu_quota > 0 {
        return Err(invalid("Conflicting options: Nano CPUs and CPU Quota cannot both be set"));
    }
    if h.nano_cpus != 0 && (h.nano_cpus < 0 || h.nano_cpus > host.ncpu * 1_000_000_000) {
        return Err(invalid(format!(
            "range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs available",
            n = host.ncpu
        )));
    }
    if h.cpu_period != 0 && !(1000..=1_000_000).contains(&h.cpu_period) {
        return Err(invalid("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"));
    }
    if h.cpu_quota > 0 && h.cpu_quota < 1000 {
        return Err(invalid("CPU cfs quota can not be less than 1ms (i.e. 1000)"));
    }
    if h.cpu_percent > 0 {
        warnings.push("linux does not support CPU percent. Percent discarded.".into());
    }
    if h.cpu_count > 0 {
        // dockerd drops it without a word; berth says so.
        warnings.push("linux does not support CPU count. Count discarded.".into());
    }
    if h.kernel_memory != 0 {
        warnings.push("Your kernel does not support kernel memory limit capabilities or the cgroup is not mounted. Limitation discarded.".into());
    }
    if h.kernel_memory_tcp != 0 {
        warnings.push("Your kernel does not support kernel memory TCP limit capabilities or the cgroup is not mounted. Limitation discarded.".into());
    }
    for (req, avail, what, label) in
        [(&h.cpuset_cpus, &host.cpus, "cpus", "CPUs"), (&h.cpuset_mems, &host.mems, "mems", "memory nodes")]
    {
        if req.is_empty() {
            continue;
        }
        let Some(avail) = avail else {
            warnings.push("Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded.".into());
            continue;
        };
        match cpuset_available(req, avail) {
            Err(e) => return Err(invalid(format!("Invalid value {req} for cpuset {what}: {e}"))),
            Ok(false) => {
                return Err(invalid(format!(
                    "Requested {label} are not available - requested {req}, available: {avail}"
                )));
            }
            Ok(true) => {}
        }
    }
    if h.blkio_weight > 0 && !(10..=1000).contains(&h.blkio_weight) {
        return Err(invalid("Range of blkio weight is from 10 to 1000"));
    }
    crate::blkio::check(h, host.block_io, &mut warnings)?;
    let ipc = h.ipc_mode.as_str();
    if !matches!(ipc, "" | "none" | "private" | "host" | "shareable") && !ipc.starts_with("container:") {
        return Err(invalid(format!("invalid IPC mode: {ipc}")));
    }
    let pid = h.pid_mode.as_str();
    if !(pid.is_empty() || pid == "host" || pid.strip_prefix("container:").is_some_and(|c| !c.is_empty())) {
        return Err(invalid(format!("invalid PID mode: {pid}")));
    }
    if h.shm_size < 0 {
        return Err(invalid("SHM size can not be less than 0"));
    }
    if !matches!(h.uts_mode.as_str(), "" | "host") {
        return Err(invalid(format!("invalid UTS mode: {}", h.uts_mode)));
    }
    if h.oom_score_adj < -1000 || h.oom_score_adj > 1000 {
        return Err(invalid(format!("Invalid value {}, range for oom score adj is [-1000, 1000]", h.oom_score_adj)));
    }
    if h.network_mode == "host" && !h.port_bindings.is_empty() {
        warnings.push("Published ports are discarded when using host network mode".into());
    }
    for dest in h.tmpfs.iter().flatten().map(|(d, _)| d) {
        if crate::create::clean(dest) == "/" {
            return Err(invalid("invalid specification: destination can't be '/'"));
        }
        if !dest.starts_with('/') {
            return Err(invalid(format!("invalid mount path: '{dest}' mount path must be absolute")));
        }
    }
    if !matches!(h.cgroupns_mode.as_str(), "" | "host" | "private") {
        return Err(invalid(format!("invalid cgroup namespace mode: {}", h.cgroupns_mode)));
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> Host {
        Host {
            cpu_realtime: true,
            cpus: Some("0-1".into()),
            mems: Some("0".into()),
            ncpu: 2,
            block_io: Default::default(),
        }
    }

    fn err(r: Result<impl std::fmt::Debug>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn network_mode_conflicts() {
        let c = ContainerConfig { hostname: "h".into(), ..Default::default() };
        let h = HostConfig { network_mode: "container:x".into(), ..Default::default() };
        assert_eq!(err(net_mode(&c, &h)), "conflicting options: hostname and the network mode");
        let h = HostConfig { network_mode: "host".into(), ..Default::default() };
        assert!(net_mode(&c, &h).is_ok(), "host networking takes a hostname");
        let h = HostConfig { network_mode: "host".into(), links: Some(vec!["a:b".into()]), ..Default::default() };
        assert!(
            err(net_mode(&ContainerConfig::default(), &h)).contains("host type networking can't be used with links")
        );
        let h = HostConfig { network_mode: "container:".into(), ..Default::default() };
        assert!(err(net_mode(&ContainerConfig::default(), &h)).contains("invalid container format"));
        let h = HostConfig { network_mode: "host".into(), dns: vec!["1.1.1.1".into()], ..Default::default() };
        assert!(net_mode(&ContainerConfig::default(), &h).is_ok());
        let h = HostConfig { network_mode: "container:x".into(), dns: vec!["1.1.1.1".into()], ..Default::default() };
        assert_eq!(err(net_mode(&ContainerConfig::default(), &h)), "conflicting options: dns and the network mode");
    }

    #[test]
    fn cpusets_parse_like_dockerd() {
        assert_eq!(uint_list("0-2,5", 0).unwrap(), vec![0, 1, 2, 5]);
        assert_eq!(uint_list("1-a", 0).unwrap_err(), "invalid format: 1-a");
        assert_eq!(uint_list("3-1", 0).unwrap_err(), "invalid format: 3-1");
        assert_eq!(uint_list("0,", 0).unwrap_err(), "invalid format: 0,");
        assert!(uint_list("0-9999999", 8192).unwrap_err().contains("maximum is 8192"));
        let h = HostConfig { cpuset_cpus: "1-a".into(), ..Default::default() };
        assert_eq!(err(platform(&h, &host())), "Invalid value 1-a for cpuset cpus: invalid format: 1-a");
        let h = HostConfig { cpuset_cpus: "3".into(), ..Default::default() };
        assert_eq!(err(platform(&h, &host())), "Requested CPUs are not available - requested 3, available: 0-1");
        let h = HostConfig { cpuset_cpus: "0,1".into(), cpuset_mems: "0".into(), ..Default::default() };
        assert!(platform(&h, &host()).is_ok());
    }

    #[test]
    fn resources_and_config() {
        let h = HostConfig { memory_reservation: 1024, ..Default::default() };
        assert_eq!(err(platform(&h, &host())), "Minimum memory reservation allowed is 6MB");
        let h = HostConfig { cpu_period: 10, ..Default::default() };
        assert!(err(platform(&h, &host())).starts_with("CPU cfs period can not be less than 1ms"));
        let h = HostConfig { ipc_mode: "bogus".into(), ..Default::default() };
        assert_eq!(err(platform(&h, &host())), "invalid IPC mode: bogus");
        let h = HostConfig { cpu_realtime_runtime: 2000, cpu_realtime_period: 1000, ..Default::default() };
        assert!(err(decoder_resources(&h, &host())).contains("cannot be higher"));
        let no_rt = Host { cpu_realtime: false, ..host() };
        assert_eq!(err(decoder_resources(&h, &no_rt)), "kernel does not support CPU real-time scheduler");
        let c = ContainerConfig { env: vec!["=x".into()], ..Default::default() };
        assert_eq!(err(container_config(&c)), "invalid environment variable: =x");
        let c = ContainerConfig { env: vec!["A".into(), "B=".into()], working_dir: "rel".into(), ..Default::default() };
        assert!(err(container_config(&c)).starts_with("the working directory 'rel' is invalid"));
        let c = ContainerConfig { stop_signal: "SIGNOPE".into(), ..Default::default() };
        assert_eq!(err(container_config(&c)), "invalid signal: SIGNOPE");
        let h = HostConfig { extra_hosts: Some(vec!["a:[::1]".into(), "b:host-gateway".into()]), ..Default::default() };
        assert!(host_config(&h).is_ok());
        let h = HostConfig { extra_hosts: Some(vec!["a:nope".into()]), ..Default::default() };
        assert_eq!(err(host_config(&h)), "invalid IP address in add-host: \"nope\"");
    }
}
