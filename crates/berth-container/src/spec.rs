//! Turning a container record into an OCI runtime spec, with Docker's defaults.

use std::path::Path;

use berth_api::models::HostConfig;
use berth_cgroups::{CpuResources, DeviceRule, MemoryResources, PidsResources, Resources};
use berth_runtime::spec::{
    Capabilities, ConsoleSize, Device, Linux, Mount, Namespace, Process, Rlimit, Root, Seccomp, Spec, User,
};

use crate::network::Attachment;
use crate::record::Record;
use crate::{Config, ContainerError, Result};

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's `--ulimit` names to the OCI rlimit names.
pub fn rlimit_name(name: &str) -> Option<&'static str> {
    Some(match name {
        "core" => "RLIMIT_CORE",
        "cpu" => "RLIMIT_CPU",
        "data" => "RLIMIT_DATA",
        "fsize" => "RLIMIT_FSIZE",
        "locks" => "RLIMIT_LOCKS",
        "memlock" => "RLIMIT_MEMLOCK",
        "msgqueue" => "RLIMIT_MSGQUEUE",
        "nice" => "RLIMIT_NICE",
        "nofile" => "RLIMIT_NOFILE",
        "nproc" => "RLIMIT_NPROC",
        "rss" => "RLIMIT_RSS",
        "rtprio" => "RLIMIT_RTPRIO",
        "rttime" => "RLIMIT_RTTIME",
        "sigpending" => "RLIMIT_SIGPENDING",
        "stack" => "RLIMIT_STACK",
        "as" => "RLIMIT_AS",
        _ => return None,
    })
}

/// Parses a port key such as `80/tcp` or `8000-8010/udp`.
pub fn parse_port_key(k: &str) -> std::result::Result<(u16, u16, String), String> {
    let (ports, proto) = k.split_once('/').unwrap_or((k, "tcp"));
    if !matches!(proto, "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    let (a, b) = ports.split_once('-').unwrap_or((ports, ports));
    let a: u16 = a.parse().map_err(|_| format!("invalid port: {k}"))?;
    let b: u16 = b.parse().map_err(|_| format!("invalid port: {k}"))?;
    if b < a {
        return Err(format!("invalid port range: {k}"));
    }
    Ok((a, b, proto.to_string()))
}

fn opts(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn mount(dest: &str, kind: &str, source: &str, o: &[&str]) -> Mount {
    Mount { destination: dest.into(), kind: kind.into(), source: source.into(), options: opts(o), beneath: None }
}

/// The process environment Docker gives: default PATH, HOSTNAME, TERM for terminals, then
/// the configured variables replacing or adding.
/// /dev/shm's size when `--shm-size` is not given (dockerd's default, 64 MiB).
pub const DEFAULT_SHM_SIZE: i64 = 64 * 1024 * 1024;

/// `tty` is the process's own: an exec without `-t` gets no `TERM` in a container run with
/// one, as with Docker.
pub fn environment(rec: &Record, tty: bool) -> Vec<String> {
    let mut env = vec![format!("PATH={DEFAULT_PATH}"), format!("HOSTNAME={}", rec.config.hostname)];
    if tty {
        env.push("TERM=xterm".into());
    }
    for e in &rec.config.env {
        let key = e.split_once('=').map(|(k, _)| k).unwrap_or(e);
        if let Some(slot) = env.iter_mut().find(|x| x.split_once('=').map(|(k, _)| k) == Some(key)) {
            *slot = e.clone();
        } else {
            env.push(e.clone());
        }
    }
    env
}

/// The capability set for a container or exec: Docker's default set, adjusted.
pub fn capabilities(h_add: &[String], h_drop: &[String], privileged: bool) -> Capabilities {
    let mut set: Vec<String> = if privileged {
        berth_runtime::caps::all()
    } else {
        let norm = |v: &[String]| v.iter().filter_map(|c| berth_runtime::caps::normalize(c)).collect::<Vec<_>>();
        let add = norm(h_add);
        let drop = norm(h_drop);
        let mut s: Vec<String> = if drop.iter().any(|c| c == "ALL") {
            Vec::new()
        } else {
            berth_runtime::caps::DOCKER_DEFAULT.iter().map(|s| s.to_string()).filter(|c| !drop.contains(c)).collect()
        };
        if add.iter().any(|c| c == "ALL") {
            s = berth_runtime::caps::all().into_iter().filter(|c| !drop.contains(c)).collect();
        } else {
            for c in add {
                if !s.contains(&c) {
                    s.push(c);
                }
            }
        }
        s
    };
    set.sort();
    Capabilities {
        bounding: set.clone(),
        effective: set.clone(),
        permitted: set,
        inheritable: Vec::new(),
        ambient: Vec::new(),
    }
}

fn security_opt<'a>(h: &'a HostConfig, key: &str) -> Option<&'a str> {
    h.security_opt.iter().flatten().find_map(|s| {
        let (k, v) = s.split_once(['=', ':']).unwrap_or((s.as_str(), "true"));
        (k == key).then_some(v)
    })
}

pub fn no_new_privileges(h: &HostConfig) -> bool {
    security_opt(h, "no-new-privileges").is_some_and(|v| v != "false")
}

/// The seccomp profile: none for privileged or `seccomp=unconfined`, a user's JSON profile,
/// or berth's default for the container's capabilities.
pub fn seccomp(h: &HostConfig, caps: &Capabilities) -> Result<Option<Seccomp>> {
    if h.privileged {
        return Ok(None);
    }
    match security_opt(h, "seccomp") {
        Some("unconfined") => Ok(None),
        // Docker's format (archMap, includes/excludes), resolved as dockerd does.
        Some(json) if json.trim_start().starts_with('{') => {
            berth_runtime::seccomp::from_docker_json(json, &caps.bounding)
                .map_err(|e| ContainerError::Invalid(e.to_string()))
        }
        Some(other) if other != "builtin" && other != "true" => Err(ContainerError::Invalid(format!(
            "opening seccomp profile ({other}) failed: pass the profile's JSON content (the docker CLI reads the file)"
        ))),
        _ => Ok(Some(berth_runtime::seccomp::default_profile(&caps.effective))),
    }
}

fn default_devices() -> Vec<Device> {
    [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ]
    .into_iter()
    .map(|(p, ma, mi)| Device {
        kind: "c".into(),
        path: p.into(),
        major: ma,
        minor: mi,
        file_mode: Some(0o666),
        uid: Some(0),
        gid: Some(0),
    })
    .collect()
}

/// A device's cgroup permissions: some of `r`, `w`, `m`, each at most once.
fn valid_device_access(a: &str) -> bool {
    !a.is_empty()
        && a.len() <= 3
        && a.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
        && a.chars().collect::<std::collections::BTreeSet<_>>().len() == a.len()
}

/// `--device-cgroup-rule 'c 1:3 mr'`: a type (`a`, `b`, `c`), `MAJOR:MINOR` (numbers or
/// `*`) and permissions.
pub(crate) fn parse_device_cgroup_rule(rule: &str) -> Result<DeviceRule> {
    let bad = || ContainerError::Invalid(format!("invalid device cgroup format '{rule}'"));
    let f: Vec<&str> = rule.split(' ').collect();
    let [kind, numbers, perms] = f.as_slice() else { return Err(bad()) };
    if !matches!(*kind, "a" | "b" | "c") || !valid_device_access(perms) {
        return Err(bad());
    }
    let (major, minor) = numbers.split_once(':').ok_or_else(bad)?;
    let number = |n: &str| -> Result<Option<i64>> {
        match n {
            "*" => Ok(None),
            _ if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => n.parse().map(Some).map_err(|_| bad()),
            _ => Err(bad()),
        }
    };
    Ok(DeviceRule {
        allow: true,
        kind: kind.to_string(),
        major: number(major)?,
        minor: number(minor)?,
        access: perms.to_string(),
    })
}

/// Every character and block device directly under the host's /dev (for `--privileged`).
fn host_devices() -> Vec<Device> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut out = Vec::new();
    for dir in ["/dev", "/dev/net", "/dev/mapper"] {
        let Ok(rd) = std::fs::read_dir(dir) else { continue };
        for e in rd.flatten() {
            let Ok(md) = std::fs::symlink_metadata(e.path()) else { continue };
            let ft = md.file_type();
            let kind = if ft.is_char_device() {
                "c"
            } else if ft.is_block_device() {
                "b"
            } else {
                continue;
            };
            let p = e.path().display().to_string();
            // The container has its own terminals and console.
            if p == "/dev/console"
                || p == "/dev/ptmx"
                || p.starts_with("/dev/pts")
                || p.starts_with("/dev/tty") && p != "/dev/tty"
            {
                continue;
            }
            let rdev = md.rdev();
            out.push(Device {
                kind: kind.into(),
                path: p,
                major: rustix::fs::major(rdev) as i64,
                minor: rustix::fs::minor(rdev) as i64,
                file_mode: Some(md.mode() & 0o7777),
                uid: Some(md.uid()),
                gid: Some(md.gid()),
            });
        }
    }
    out
}

/// Containers get 1048576 open files, as under Docker, unless this host does not allow the
/// daemon that many (then they get the daemon's own hard limit).
fn default_nofile() -> u64 {
    static N: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *N.get_or_init(|| {
        let want = 1_048_576u64;
        let cur = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        let hard = cur.maximum.unwrap_or(u64::MAX);
        if hard >= want {
            return want;
        }
        let raised = rustix::process::setrlimit(
            rustix::process::Resource::Nofile,
            rustix::process::Rlimit { current: cur.current, maximum: Some(want) },
        );
        if raised.is_ok() { want } else { hard }
    })
}

const MASKED: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
const READONLY: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

fn namespace(kind: &str, path: &str) -> Namespace {
    Namespace { kind: kind.into(), path: path.into() }
}

/// Resolves `container:<name>` modes to a namespace path via the other container's pid.
pub type PidOf<'a> = &'a dyn Fn(&str) -> Result<i32>;

pub fn build(
    cfg: &Config,
    rec: &Record,
    att: &Attachment,
    root: &Path,
    shim: &Path,
    pid_of: PidOf<'_>,
) -> Result<Spec> {
    let h = &rec.host_config;
    let caps = capabilities(h.cap_add.as_deref().unwrap_or(&[]), h.cap_drop.as_deref().unwrap_or(&[]), h.privileged);
    let seccomp = seccomp(h, &caps)?;
    let mut args = vec![rec.path.clone()];
    args.extend(rec.args.iter().cloned());
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount("/dev", "tmpfs", "tmpfs", &["nosuid", "strictatime", "mode=755", "size=65536k"]),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            if h.privileged { &["nosuid", "noexec", "nodev"] } else { &["nosuid", "noexec", "nodev", "ro"] },
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            if h.privileged { &["nosuid", "noexec", "nodev"] } else { &["ro", "nosuid", "noexec", "nodev"] },
        ),
        mount("/dev/mqueue", "mqueue", "mqueue", &["nosuid", "noexec", "nodev"]),
    ];
    if h.ipc_mode == "host" {
        // The host's IPC namespace comes with the host's /dev/shm, as with Docker.
        mounts.push(mount("/dev/shm", "bind", "/dev/shm", &["rbind", "rprivate"]));
    } else {
        let shm = if h.shm_size > 0 { h.shm_size } else { DEFAULT_SHM_SIZE };
        mounts.push(Mount {
            destination: "/dev/shm".into(),
            kind: "tmpfs".into(),
            source: "shm".into(),
            options: vec!["nosuid".into(), "noexec".into(), "nodev".into(), "mode=1777".into(), format!("size={shm}")],
            beneath: None,
        });
    }
    for (dest, src) in [
        ("/etc/resolv.conf", &rec.resolv_conf_path),
        ("/etc/hostname", &rec.hostname_path),
        ("/etc/hosts", &rec.hosts_path),
    ] {
        if !rec.mounts.iter().any(|m| m.destination == dest) {
            mounts.push(mount(dest, "bind", src, &["rbind", "rprivate"]));
        }
    }
    let mut user_mounts = Vec::new();
    for m in &rec.mounts {
        let mut o = vec!["rbind".to_string()];
        o.push(if m.rw { "rw".into() } else { "ro".into() });
        o.push(if m.propagation.is_empty() { "rprivate".into() } else { m.propagation.clone() });
        user_mounts.push(Mount {
            destination: m.destination.clone(),
            kind: "bind".into(),
            source: m.source.clone(),
            options: o,
            beneath: None,
        });
    }
    for (dest, o) in h.tmpfs.iter().flatten() {
        let mut options = vec!["nosuid".to_string(), "nodev".to_string(), "noexec".to_string()];
        options.extend(o.split(',').filter(|s| !s.is_empty()).map(String::from));
        user_mounts.push(Mount {
            destination: dest.clone(),
            kind: "tmpfs".into(),
            source: "tmpfs".into(),
            options,
            beneath: None,
        });
    }
    for m in h.mounts.iter().flatten().filter(|m| m.kind == "tmpfs") {
        let mut options = vec!["nosuid".to_string(), "nodev".to_string(), "noexec".to_string()];
        if let Some(t) = &m.tmpfs_options {
            if t.size_bytes > 0 {
                options.push(format!("size={}", t.size_bytes));
            }
            if t.mode > 0 {
                options.push(format!("mode={:o}", t.mode));
            }
        }
        if m.read_only {
            options.push("ro".into());
        }
        user_mounts.push(Mount {
            destination: m.target.clone(),
            kind: "tmpfs".into(),
            source: "tmpfs".into(),
            options,
            beneath: None,
        });
    }
    // Parents before children, as Docker sorts them.
    user_mounts.sort_by_key(|m| m.destination.trim_end_matches('/').matches('/').count());
    mounts.extend(user_mounts);
    if h.init == Some(true) {
        mounts.push(mount("/sbin/docker-init", "bind", &shim.display().to_string(), &["bind", "ro"]));
        // A command that is the init itself (the CRI's pod holder, `docker-init pause`) runs
        // as it is; anything else runs under `docker-init init --`.
        if rec.path != "/sbin/docker-init" {
            let mut a = vec!["/sbin/docker-init".to_string(), "init".to_string(), "--".to_string()];
            a.extend(args);
            args = a;
        }
    }

    let mut namespaces = vec![namespace("mount", "")];
    let joined = |mode: &str, kind: &str| -> Result<Option<Namespace>> {
        if mode == "host" {
            return Ok(None);
        }
        if let Some(other) = mode.strip_prefix("container:") {
            let pid = pid_of(other)?;
            return Ok(Some(namespace(
                kind,
                &format!("/proc/{pid}/ns/{kind_file}", kind_file = if kind == "network" { "net" } else { kind }),
            )));
        }
        Ok(Some(namespace(kind, "")))
    };
    if let Some(ns) = joined(&h.pid_mode, "pid")? {
        namespaces.push(ns);
    }
    if let Some(ns) = joined(&h.ipc_mode, "ipc")? {
        namespaces.push(ns);
    }
    if let Some(ns) = joined(&h.uts_mode, "uts")? {
        namespaces.push(ns);
    }
    if !att.host {
        let path = att.netns.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
        namespaces.push(namespace("network", &path));
    }
    let v2 = berth_cgroups::detect(Path::new("/sys/fs/cgroup")) == berth_cgroups::Mode::V2;
    if h.cgroupns_mode == "private" || (h.cgroupns_mode.is_empty() && v2) {
        namespaces.push(namespace("cgroup", ""));
    }

    let mut rlimits: Vec<Rlimit> = Vec::new();
    for u in cfg.default_ulimits.iter().chain(h.ulimits.iter().flatten()) {
        if let Some(n) = rlimit_name(&u.name) {
            rlimits.retain(|r| r.kind != n);
            rlimits.push(Rlimit { kind: n.into(), soft: u.soft as u64, hard: u.hard as u64 });
        }
    }
    if !rlimits.iter().any(|r| r.kind == "RLIMIT_NOFILE") {
        let n = default_nofile();
        rlimits.push(Rlimit { kind: "RLIMIT_NOFILE".into(), soft: n, hard: n });
    }

    let mut memory = MemoryResources::default();
    if h.memory > 0 {
        memory.limit = Some(h.memory);
        memory.swap = Some(match h.memory_swap {
            0 => h.memory * 2,
            -1 => -1,
            s => s,
        });
    }
    if h.memory_reservation > 0 {
        memory.reservation = Some(h.memory_reservation);
    }
    memory.swappiness = h.memory_swappiness.filter(|s| *s >= 0).map(|s| s as u64);
    memory.disable_oom_killer = h.oom_kill_disable.filter(|b| *b);
    let mut cpu = CpuResources::default();
    if h.cpu_shares > 0 {
        cpu.shares = Some(h.cpu_shares as u64);
    }
    if h.nano_cpus > 0 {
        cpu.period = Some(100_000);
        cpu.quota = Some(h.nano_cpus * 100_000 / 1_000_000_000);
    }
    if h.cpu_period > 0 {
        cpu.period = Some(h.cpu_period as u64);
    }
    if h.cpu_quota != 0 {
        cpu.quota = Some(h.cpu_quota);
    }
    if !h.cpuset_cpus.is_empty() {
        cpu.cpus = Some(h.cpuset_cpus.clone());
    }
    if !h.cpuset_mems.is_empty() {
        cpu.mems = Some(h.cpuset_mems.clone());
    }
    if h.cpu_realtime_period > 0 {
        cpu.realtime_period = Some(h.cpu_realtime_period as u64);
    }
    if h.cpu_realtime_runtime != 0 {
        cpu.realtime_runtime = Some(h.cpu_realtime_runtime);
    }
    let resources = Resources {
        devices: berth_cgroups::devices::docker_defaults(h.privileged),
        memory: (memory != MemoryResources::default()).then_some(memory),
        cpu: (cpu != CpuResources::default()).then_some(cpu),
        pids: h.pids_limit.filter(|p| *p > 0).map(|limit| PidsResources { limit }),
        block_io: crate::blkio::resources(h)?,
    };

    let mut devices = if h.privileged { host_devices() } else { default_devices() };
    // Each --device's cgroup permissions (`r`, `w`, `m`: rwm unless given).
    let mut access: Vec<(String, String)> = Vec::new();
    for d in h.devices.iter().flatten() {
        let perms = if d.cgroup_permissions.is_empty() { "rwm" } else { d.cgroup_permissions.as_str() };
        if !valid_device_access(perms) {
            return Err(ContainerError::Invalid(format!("invalid device mode: {perms}")));
        }
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let md = std::fs::metadata(&d.path_on_host).map_err(|e| {
            ContainerError::Invalid(format!(
                "error gathering device information while adding custom device {:?}: {e}",
                d.path_on_host
            ))
        })?;
        let kind = if md.file_type().is_block_device() {
            "b"
        } else if md.file_type().is_char_device() {
            "c"
        } else {
            return Err(ContainerError::Invalid(format!("{} is not a device", d.path_on_host)));
        };
        let path = if d.path_in_container.is_empty() { d.path_on_host.clone() } else { d.path_in_container.clone() };
        devices.retain(|x| x.path != path);
        access.retain(|(p, _)| *p != path);
        access.push((path.clone(), perms.to_string()));
        devices.push(Device {
            kind: kind.into(),
            path,
            major: rustix::fs::major(md.rdev()) as i64,
            minor: rustix::fs::minor(md.rdev()) as i64,
            file_mode: Some(md.mode() & 0o7777),
            uid: Some(0),
            gid: Some(0),
        });
    }
    let mut resources = resources;
    if !h.privileged {
        for d in &devices {
            let perms = access.iter().find(|(p, _)| *p == d.path).map(|(_, a)| a.as_str()).unwrap_or("rwm");
            resources.devices.push(DeviceRule {
                allow: true,
                kind: d.kind.clone(),
                major: Some(d.major),
                minor: Some(d.minor),
                access: perms.into(),
            });
        }
        for rule in h.device_cgroup_rules.iter().flatten() {
            resources.devices.push(parse_device_cgroup_rule(rule)?);
        }
    }

    let unconfined_paths = h.privileged || security_opt(h, "systempaths") == Some("unconfined");
    let cs = h.console_size.filter(|s| s[0] > 0 && s[1] > 0).map(|s| ConsoleSize { height: s[0], width: s[1] });
    let mut spec = Spec {
        oci_version: "1.2.0".into(),
        process: Process {
            terminal: rec.config.tty,
            console_size: cs,
            user: User::default(),
            args,
            env: environment(rec, rec.config.tty),
            cwd: if rec.config.working_dir.is_empty() { "/".into() } else { rec.config.working_dir.clone() },
            capabilities: Some(caps),
            rlimits,
            no_new_privileges: no_new_privileges(h),
            oom_score_adj: Some(h.oom_score_adj as i32),
        },
        root: Root { path: root.display().to_string(), readonly: h.readonly_rootfs },
        hostname: rec.config.hostname.clone(),
        domainname: rec.config.domainname.clone(),
        mounts,
        linux: Linux {
            namespaces,
            resources: Some(resources),
            cgroups_path: crate::cgroup_path(&cfg.cgroup_parent, rec),
            // The API's MaskedPaths and ReadonlyPaths replace the defaults when given.
            masked_paths: if unconfined_paths {
                Vec::new()
            } else {
                h.masked_paths.clone().unwrap_or_else(|| MASKED.iter().map(|s| s.to_string()).collect())
            },
            readonly_paths: if unconfined_paths {
                Vec::new()
            } else {
                h.readonly_paths.clone().unwrap_or_else(|| READONLY.iter().map(|s| s.to_string()).collect())
            },
            seccomp,
            devices,
            sysctl: h.sysctls.clone().unwrap_or_default(),
            rootfs_propagation: String::new(),
        },
        annotations: Default::default(),
    };
    if let Some(requests) = h.device_requests.as_ref().filter(|r| !r.is_empty()) {
        let reg = crate::cdi::Registry::load(&cfg.cdi_spec_dirs);
        crate::cdi::apply(&reg.edits(&reg.requested(requests)?)?, &mut spec, h.privileged)?;
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_cgroup_rules_parse_as_docker_writes_them() {
        let r = parse_device_cgroup_rule("c 1:3 mr").unwrap();
        assert_eq!((r.kind.as_str(), r.major, r.minor, r.access.as_str()), ("c", Some(1), Some(3), "mr"));
        let r = parse_device_cgroup_rule("b 7:* rwm").unwrap();
        assert_eq!((r.major, r.minor), (Some(7), None));
        for bad in ["c 1:3", "x 1:3 r", "c 1-3 r", "c 1:3 rx", "c 1:3 rr", "c a:3 r", "c 1:3  r", ""] {
            assert!(parse_device_cgroup_rule(bad).is_err(), "{bad}");
        }
        assert!(
            valid_device_access("r")
                && valid_device_access("wm")
                && !valid_device_access("")
                && !valid_device_access("rwmr")
        );
    }

    #[test]
    fn capability_sets_follow_docker() {
        let c = capabilities(&["NET_ADMIN".into()], &["MKNOD".into()], false);
        assert!(c.bounding.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!c.bounding.contains(&"CAP_MKNOD".to_string()));
        assert!(c.bounding.contains(&"CAP_CHOWN".to_string()));
        let c = capabilities(&["CHOWN".into()], &["ALL".into()], false);
        assert_eq!(c.bounding, vec!["CAP_CHOWN".to_string()]);
        assert!(capabilities(&[], &[], true).bounding.contains(&"CAP_SYS_ADMIN".to_string()));
    }

    #[test]
    fn environment_defaults() {
        let mut r = Record::default();
        r.config.hostname = "abc".into();
        r.config.tty = true;
        r.config.env = vec!["PATH=/x".into(), "A=1".into()];
        assert_eq!(environment(&r, true), vec!["PATH=/x", "HOSTNAME=abc", "TERM=xterm", "A=1"]);
    }

    #[test]
    fn ports() {
        assert_eq!(parse_port_key("80/tcp").unwrap(), (80, 80, "tcp".to_string()));
        assert_eq!(parse_port_key("53/udp").unwrap().2, "udp");
        assert!(parse_port_key("http").is_err());
        assert!(parse_port_key("90-80").is_err());
    }
}
