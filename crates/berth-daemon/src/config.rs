//! Daemon settings: dockerd's flag names and daemon.json keys.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod unacted;

/// The subset of dockerd's daemon.json berth understands. Unknown keys are an error, as in
/// dockerd, so a typo is never silently ignored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    pub hosts: Option<Vec<String>>,
    pub data_root: Option<PathBuf>,
    pub exec_root: Option<PathBuf>,
    pub pidfile: Option<PathBuf>,
    pub debug: Option<bool>,
    pub log_level: Option<String>,
    pub live_restore: Option<bool>,
    pub shutdown_timeout: Option<i64>,
    pub log_driver: Option<String>,
    pub log_opts: Option<BTreeMap<String, String>>,
    pub storage_driver: Option<String>,
    pub cgroup_parent: Option<String>,
    pub exec_opts: Option<Vec<String>>,
    pub default_ulimits: Option<BTreeMap<String, UlimitSpec>>,
    pub dns: Option<Vec<String>>,
    pub dns_search: Option<Vec<String>>,
    pub dns_opts: Option<Vec<String>>,
    pub registry_mirrors: Option<Vec<String>>,
    pub insecure_registries: Option<Vec<String>>,
    pub max_concurrent_downloads: Option<u32>,
    pub max_concurrent_uploads: Option<u32>,
    pub bip: Option<String>,
    pub bridge: Option<String>,
    pub default_address_pools: Option<Vec<AddressPool>>,
    pub iptables: Option<bool>,
    pub ip_forward: Option<bool>,
    pub ip_masq: Option<bool>,
    pub ipv6: Option<bool>,
    pub fixed_cidr_v6: Option<String>,
    /// The address `--add-host NAME:host-gateway` stands for.
    pub host_gateway_ip: Option<String>,
    pub mtu: Option<u32>,
    pub userland_proxy: Option<bool>,
    pub default_runtime: Option<String>,
    pub runtimes: Option<BTreeMap<String, RuntimeSpec>>,
    pub labels: Option<Vec<String>>,
    pub experimental: Option<bool>,
    pub features: Option<BTreeMap<String, bool>>,
    pub builder: Option<serde_json::Value>,
    pub cluster_store: Option<String>,
    pub cluster_advertise: Option<String>,
    /// `discovery.ttl` and `discovery.heartbeat` (seconds) of the cluster membership.
    pub cluster_store_opts: Option<BTreeMap<String, String>>,
    pub default_network_opts: Option<serde_json::Value>,
    pub init: Option<bool>,
    pub builder_cache_max_bytes: Option<u64>,
    pub group: Option<String>,
    pub tls: Option<bool>,
    pub tlsverify: Option<bool>,
    pub tlscacert: Option<PathBuf>,
    pub tlscert: Option<PathBuf>,
    pub tlskey: Option<PathBuf>,
    /// The CRI's socket; an empty string turns the CRI off.
    pub cri_socket: Option<String>,
    /// Where the CRI's streaming server listens (`host` or `host:port`).
    pub cri_stream_address: Option<String>,
    /// How long a CRI stream may carry nothing before it is closed (a Go duration, `"4h0m0s"`).
    pub cri_stream_idle_timeout: Option<String>,
    /// Where CDI device specs are read (later directories take priority).
    pub cdi_spec_dirs: Option<Vec<PathBuf>>,
    /// The CRI's CNI network configs (default /etc/cni/net.d).
    pub cni_conf_dir: Option<PathBuf>,
    /// The CNI plugin directories, `:`-separated (default /opt/cni/bin:/usr/lib/cni).
    pub cni_bin_dir: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct UlimitSpec {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Soft")]
    pub soft: i64,
    #[serde(rename = "Hard")]
    pub hard: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AddressPool {
    pub base: String,
    pub size: u8,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RuntimeSpec {
    pub path: String,
    #[serde(rename = "runtimeArgs", default)]
    pub runtime_args: Vec<String>,
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub hosts: Vec<String>,
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub pidfile: PathBuf,
    pub debug: bool,
    /// What the daemon logs (`--log-level`, `"log-level"`; `-D` or `"debug"` make it debug).
    pub log_level: LogLevel,
    pub live_restore: bool,
    pub shutdown_timeout: i64,
    pub log_driver: String,
    pub log_opts: BTreeMap<String, String>,
    pub cgroup_parent: String,
    pub default_ulimits: Vec<berth_api::models::Ulimit>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_opts: Vec<String>,
    pub registry_mirrors: Vec<String>,
    pub insecure_registries: Vec<String>,
    pub labels: Vec<String>,
    /// The group that owns the unix sockets (`-G`, `"group"`); `None` means `docker` if
    /// that group exists, as with dockerd.
    pub socket_group: Option<String>,
    /// The cluster store and this host's advertise address (overlay networks).
    pub cluster: Option<berth_network::overlay::ClusterOptions>,
    /// TLS on the API's TCP listeners (`--tls`, `--tlsverify`); `None`: plain HTTP.
    pub api_tls: Option<crate::tls::ApiTls>,
    pub file: FileConfig,
    pub shim: PathBuf,
    /// Where the Kubernetes CRI is served (`--cri-socket`, `"cri-socket"`; default
    /// `cri.sock` in the exec root, /run/berth/cri.sock); `None`: not at all.
    pub cri_socket: Option<PathBuf>,
    /// Where the CRI's streaming server (Exec, Attach, PortForward) listens
    /// (`--cri-stream-address`, `"cri-stream-address"`; default 127.0.0.1 on a port the kernel
    /// picks, as containerd's `stream_server_address` and `stream_server_port` "0").
    pub cri_stream_address: String,
    /// How long an exec, attach or port-forward session may carry nothing in either direction
    /// before the streaming server closes it (`--cri-stream-idle-timeout`,
    /// `"cri-stream-idle-timeout"`, containerd's `stream_idle_timeout`: a Go duration, default
    /// 4h as kubelet's and containerd's); `None` (`"0"`): never.
    pub cri_stream_idle_timeout: Option<std::time::Duration>,
    pub cdi_spec_dirs: Vec<PathBuf>,
    /// Where the CRI finds its CNI network configs and plugins (`--cni-conf-dir`,
    /// `--cni-bin-dir`, containerd's `conf_dir` and `bin_dir`).
    pub cni_conf_dir: PathBuf,
    pub cni_bin_dirs: Vec<PathBuf>,
    /// What the daemon logs at start about settings that have no effect in berth.
    pub warnings: Vec<String>,
}

/// What was given on the command line (dockerd's flags).
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub hosts: Vec<String>,
    pub data_root: Option<PathBuf>,
    pub exec_root: Option<PathBuf>,
    pub pidfile: Option<PathBuf>,
    pub config_file: Option<PathBuf>,
    pub debug: bool,
    /// `-l`/`--log-level`.
    pub log_level: Option<String>,
    pub live_restore: Option<bool>,
    pub cgroup_parent: Option<String>,
    pub log_driver: Option<String>,
    pub labels: Vec<String>,
    pub cluster_store: Option<String>,
    pub cluster_advertise: Option<String>,
    pub registry_mirrors: Vec<String>,
    pub insecure_registries: Vec<String>,
    pub group: Option<String>,
    /// `--tls`; `Some(false)` is how a user says "plain HTTP on a network address, I know".
    pub tls: Option<bool>,
    /// `--tlsverify`; given at all (even `=false`), it turns TLS on, as with dockerd.
    pub tlsverify: Option<bool>,
    pub tlscacert: Option<PathBuf>,
    pub tlscert: Option<PathBuf>,
    pub tlskey: Option<PathBuf>,
    /// `--cri-socket`; empty turns the CRI off.
    pub cri_socket: Option<String>,
    /// `--cri-stream-address`.
    pub cri_stream_address: Option<String>,
    /// `--cri-stream-idle-timeout`.
    pub cri_stream_idle_timeout: Option<String>,
    /// `--cdi-spec-dir` (repeatable).
    pub cdi_spec_dirs: Vec<PathBuf>,
    pub cni_conf_dir: Option<PathBuf>,
    /// `--cni-bin-dir` (repeatable, each `:`-separated as CNI_PATH is).
    pub cni_bin_dirs: Vec<String>,
}

/// A stream idle timeout as a Go duration (`"4h0m0s"`, `"30s"`); zero turns it off.
fn idle_timeout(v: &str) -> Result<Option<std::time::Duration>, String> {
    let d = berth_api::time::parse_go_duration(v.trim()).ok_or_else(|| {
        format!(
            "invalid cri-stream-idle-timeout {v:?}: a duration such as \"4h0m0s\", \"30m\" or \"90s\" is \
             expected (\"0\" turns it off)"
        )
    })?;
    Ok((!d.is_zero()).then_some(d))
}

pub const DEFAULT_CONFIG_FILE: &str = "/etc/berth/daemon.json";

/// dockerd's log levels. `fatal` logs only what stops the daemon (berth logs those as
/// errors: tracing has no level above error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogLevel {
    Debug,
    #[default]
    Info,
    Warn,
    Error,
    Fatal,
}

impl LogLevel {
    /// `debug`, `info`, `warn`, `error` or `fatal` (dockerd also takes `warning` and
    /// `panic`, as logrus does); anything else is refused with dockerd's words.
    pub fn parse(s: &str) -> Result<LogLevel, String> {
        match s.to_ascii_lowercase().as_str() {
            "debug" | "trace" => Ok(LogLevel::Debug),
            "info" => Ok(LogLevel::Info),
            "warn" | "warning" => Ok(LogLevel::Warn),
            "error" => Ok(LogLevel::Error),
            "fatal" | "panic" => Ok(LogLevel::Fatal),
            _ => Err(format!("unable to parse logging level: {s}")),
        }
    }
}

impl DaemonConfig {
    /// Merges flags over the config file. A setting given both ways is an error, as dockerd
    /// makes it.
    pub fn load(flags: &Flags) -> Result<DaemonConfig, String> {
        let (path, explicit) = match &flags.config_file {
            Some(p) => (p.clone(), true),
            None => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
        };
        let file = read_file(&path, explicit)?;
        let mut clash = Vec::new();
        if !flags.hosts.is_empty() && file.hosts.is_some() {
            clash.push("hosts");
        }
        if flags.data_root.is_some() && file.data_root.is_some() {
            clash.push("data-root");
        }
        if flags.exec_root.is_some() && file.exec_root.is_some() {
            clash.push("exec-root");
        }
        if flags.pidfile.is_some() && file.pidfile.is_some() {
            clash.push("pidfile");
        }
        if flags.log_level.is_some() && file.log_level.is_some() {
            clash.push("log-level");
        }
        if flags.cluster_store.is_some() && file.cluster_store.is_some() {
            clash.push("cluster-store");
        }
        if flags.cluster_advertise.is_some() && file.cluster_advertise.is_some() {
            clash.push("cluster-advertise");
        }
        if !flags.registry_mirrors.is_empty() && file.registry_mirrors.is_some() {
            clash.push("registry-mirrors");
        }
        if !flags.insecure_registries.is_empty() && file.insecure_registries.is_some() {
            clash.push("insecure-registries");
        }
        if flags.group.is_some() && file.group.is_some() {
            clash.push("group");
        }
        if flags.cri_socket.is_some() && file.cri_socket.is_some() {
            clash.push("cri-socket");
        }
        if flags.cri_stream_address.is_some() && file.cri_stream_address.is_some() {
            clash.push("cri-stream-address");
        }
        if flags.cri_stream_idle_timeout.is_some() && file.cri_stream_idle_timeout.is_some() {
            clash.push("cri-stream-idle-timeout");
        }
        if !flags.cdi_spec_dirs.is_empty() && file.cdi_spec_dirs.is_some() {
            clash.push("cdi-spec-dirs");
        }
        if flags.cni_conf_dir.is_some() && file.cni_conf_dir.is_some() {
            clash.push("cni-conf-dir");
        }
        if !flags.cni_bin_dirs.is_empty() && file.cni_bin_dir.is_some() {
            clash.push("cni-bin-dir");
        }
        for (name, flag, key) in [
            ("tls", flags.tls.is_some(), file.tls.is_some()),
            ("tlsverify", flags.tlsverify.is_some(), file.tlsverify.is_some()),
            ("tlscacert", flags.tlscacert.is_some(), file.tlscacert.is_some()),
            ("tlscert", flags.tlscert.is_some(), file.tlscert.is_some()),
            ("tlskey", flags.tlskey.is_some(), file.tlskey.is_some()),
        ] {
            if flag && key {
                clash.push(name);
            }
        }
        if !clash.is_empty() {
            return Err(format!(
                "the following directives are specified both as a flag and in the configuration file: {} (from flag and from file {})",
                clash.join(", "),
                path.display()
            ));
        }
        let warnings = unacted::settle(&file)?;
        if let Some(d) = &file.storage_driver
            && d != "overlay2"
            && d != "overlay"
        {
            return Err(format!("storage driver {d:?} is not supported: berth stores layers on overlayfs (overlay2)"));
        }
        let socket_group = flags.group.clone().or(file.group.clone());
        if let Some(g) = &socket_group
            && group_id(g).is_none()
        {
            return Err(format!("can't create the API socket: group {g} not found"));
        }
        let registry_mirrors = flag_or_file(&flags.registry_mirrors, &file.registry_mirrors);
        for m in &registry_mirrors {
            berth_distribution::endpoint::validate_mirror(m)?;
        }
        let insecure_registries = flag_or_file(&flags.insecure_registries, &file.insecure_registries);
        let exec_root =
            flags.exec_root.clone().or(file.exec_root.clone()).unwrap_or_else(|| PathBuf::from("/run/berth"));
        let cri_socket = match flags.cri_socket.clone().or(file.cri_socket.clone()) {
            Some(s) if s.is_empty() => None,
            Some(s) => Some(PathBuf::from(s)),
            None => Some(exec_root.join("cri.sock")),
        };
        let cri_stream_address = flags
            .cri_stream_address
            .clone()
            .or(file.cri_stream_address.clone())
            .unwrap_or_else(|| "127.0.0.1:0".into());
        let cri_stream_idle_timeout =
            match flags.cri_stream_idle_timeout.as_ref().or(file.cri_stream_idle_timeout.as_ref()) {
                None => Some(berth_cri::stream::DEFAULT_IDLE_TIMEOUT),
                Some(v) => idle_timeout(v)?,
            };
        let hosts: Vec<String> = if !flags.hosts.is_empty() {
            flags.hosts.clone()
        } else {
            file.hosts.clone().unwrap_or_else(|| vec![format!("unix://{}", exec_root.join("berth.sock").display())])
        };
        let tls_on = crate::tls::enabled(flags, &file);
        let hosts: Vec<String> = hosts.iter().map(|h| crate::tls::normalize_tcp_host(h, tls_on)).collect();
        let api_tls = crate::tls::settle(flags, &file, &hosts)?;
        let cluster = match (
            flags.cluster_store.clone().or(file.cluster_store.clone()),
            flags.cluster_advertise.clone().or(file.cluster_advertise.clone()),
        ) {
            (Some(store), advertise) => Some(berth_network::overlay::ClusterOptions::new(
                &store,
                &advertise.unwrap_or_default(),
                &file.cluster_store_opts.clone().unwrap_or_default(),
            )?),
            (None, Some(_)) => return Err("cluster-advertise needs cluster-store (etcd://HOST:2379)".into()),
            (None, None) => None,
        };
        if let Some(g) = &file.host_gateway_ip
            && g.parse::<std::net::IpAddr>().is_err()
        {
            return Err(format!("invalid host-gateway-ip {g:?}: not an IP address"));
        }
        let log_driver = flags.log_driver.clone().or(file.log_driver.clone()).unwrap_or_else(|| "json-file".into());
        let log_opts = file.log_opts.clone().unwrap_or_default();
        // dockerd checks the keys here; berth the values too, as it does at create.
        berth_container::log_config::check(&log_driver, &log_opts)
            .map_err(|e| format!("failed to set log opts: {e}"))?;
        let cdi_spec_dirs = if flags.cdi_spec_dirs.is_empty() {
            file.cdi_spec_dirs.clone().unwrap_or_else(|| vec!["/etc/cdi".into(), "/var/run/cdi".into()])
        } else {
            flags.cdi_spec_dirs.clone()
        };
        let cni_bin = if flags.cni_bin_dirs.is_empty() {
            file.cni_bin_dir.clone().into_iter().collect()
        } else {
            flags.cni_bin_dirs.clone()
        };
        let mut cni_bin_dirs: Vec<PathBuf> =
            cni_bin.iter().flat_map(|d| d.split(':')).filter(|d| !d.is_empty()).map(PathBuf::from).collect();
        if cni_bin_dirs.is_empty() {
            cni_bin_dirs = berth_cni::DEFAULT_BIN_DIRS.iter().map(PathBuf::from).collect();
        }
        let cni_conf_dir = flags
            .cni_conf_dir
            .clone()
            .or(file.cni_conf_dir.clone())
            .unwrap_or_else(|| PathBuf::from(berth_cni::DEFAULT_CONF_DIR));
        let default_ulimits = file
            .default_ulimits
            .clone()
            .unwrap_or_default()
            .into_values()
            .map(|u| berth_api::models::Ulimit { name: u.name, soft: u.soft, hard: u.hard })
            .collect();
        Ok(DaemonConfig {
            hosts,
            data_root: flags
                .data_root
                .clone()
                .or(file.data_root.clone())
                .unwrap_or_else(|| PathBuf::from("/var/lib/berth")),
            pidfile: flags.pidfile.clone().or(file.pidfile.clone()).unwrap_or_else(|| exec_root.join("berth.pid")),
            exec_root,
            debug: flags.debug || file.debug.unwrap_or(false),
            // As dockerd: the level must parse even when debug mode overrides it.
            log_level: match LogLevel::parse(
                flags.log_level.as_deref().or(file.log_level.as_deref()).unwrap_or("info"),
            )? {
                _ if flags.debug || file.debug.unwrap_or(false) => LogLevel::Debug,
                level => level,
            },
            // Containers outlive the daemon unless the configuration says otherwise.
            live_restore: flags.live_restore.or(file.live_restore).unwrap_or(true),
            shutdown_timeout: file.shutdown_timeout.unwrap_or(15),
            log_driver,
            log_opts,
            cgroup_parent: flags.cgroup_parent.clone().or(file.cgroup_parent.clone()).unwrap_or_else(|| "berth".into()),
            default_ulimits,
            dns: file.dns.clone().unwrap_or_default(),
            dns_search: file.dns_search.clone().unwrap_or_default(),
            dns_opts: file.dns_opts.clone().unwrap_or_default(),
            registry_mirrors,
            insecure_registries,
            labels: [flags.labels.clone(), file.labels.clone().unwrap_or_default()].concat(),
            socket_group,
            cluster,
            api_tls,
            file,
            shim: default_shim_path(),
            cri_socket,
            cri_stream_address,
            cri_stream_idle_timeout,
            cdi_spec_dirs,
            cni_conf_dir,
            cni_bin_dirs,
            warnings,
        })
    }
}

/// A group's id by name or number, from /etc/group.
pub fn group_id(name: &str) -> Option<u32> {
    if let Ok(n) = name.parse() {
        return Some(n);
    }
    let groups = std::fs::read_to_string("/etc/group").ok()?;
    groups.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next() == Some(name)).then(|| f.nth(1)?.parse().ok()).flatten()
    })
}

/// A list setting given as a repeatable flag or in the file (never both: `load` refuses that).
fn flag_or_file(flag: &[String], file: &Option<Vec<String>>) -> Vec<String> {
    if flag.is_empty() { file.clone().unwrap_or_default() } else { flag.to_vec() }
}

fn read_file(path: &Path, explicit: bool) -> Result<FileConfig, String> {
    match std::fs::read(path) {
        Ok(b) => {
            if b.iter().all(|c| c.is_ascii_whitespace()) {
                return Ok(FileConfig::default());
            }
            serde_json::from_slice(&b).map_err(|e| {
                format!("unable to configure the daemon from {}: {}", path.display(), explain_config_error(&b, e))
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => Ok(FileConfig::default()),
        Err(e) => Err(format!("unable to read the configuration file {}: {e}", path.display())),
    }
}

impl DaemonConfig {
    /// The network service's settings from dockerd's keys.
    pub fn network_options(&self) -> berth_network::Options {
        let f = &self.file;
        // Each data root gets its own firewall table, so several daemons can coexist.
        let table = if self.data_root == std::path::Path::new("/var/lib/berth") {
            "berth".to_string()
        } else {
            let mut h: u64 = 0xcbf29ce484222325;
            for b in self.data_root.display().to_string().bytes() {
                h = (h ^ b as u64).wrapping_mul(0x100000001b3);
            }
            format!("berth_{:08x}", h as u32)
        };
        let pools = f
            .default_address_pools
            .iter()
            .flatten()
            .filter_map(|p| berth_network::ipam::Subnet::parse(&p.base).ok().map(|s| (s, p.size)))
            .collect();
        berth_network::Options {
            table,
            bridge: f.bridge.clone().unwrap_or_else(|| "berth0".into()),
            bip: f.bip.clone(),
            pools,
            ip_masq: f.ip_masq.unwrap_or(true),
            ip_forward: f.ip_forward.unwrap_or(true),
            exec_root: self.exec_root.clone(),
            dns: self.dns.clone(),
            mtu: f.mtu,
            ipv6: f.ipv6.unwrap_or(false),
            fixed_cidr_v6: f.fixed_cidr_v6.clone(),
        }
    }
}

/// `berth-shim` next to the running executable.
pub fn default_shim_path() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("berth-shim")))
        .unwrap_or_else(|| PathBuf::from("/usr/local/bin/berth-shim"))
}

/// serde's message for a bad value does not say which key it was: find the key by reading
/// each member on its own.
fn explain_config_error(bytes: &[u8], e: serde_json::Error) -> String {
    if let Ok(serde_json::Value::Object(m)) = serde_json::from_slice::<serde_json::Value>(bytes) {
        for (k, v) in &m {
            let one = serde_json::Value::Object([(k.clone(), v.clone())].into_iter().collect());
            if let Err(err) = serde_json::from_value::<FileConfig>(one) {
                if !err.to_string().contains(k.as_str()) {
                    return format!("invalid value for \"{k}\": {err}");
                }
                return err.to_string();
            }
        }
    }
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_level_comes_from_the_flag_or_the_file_and_debug_mode_wins() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("daemon.json");
        let load = |file: &str, flags: Flags| {
            std::fs::write(&p, file).unwrap();
            DaemonConfig::load(&Flags { config_file: Some(p.clone()), ..flags }).map(|c| c.log_level)
        };
        assert_eq!(load("{}", Flags::default()), Ok(LogLevel::Info));
        assert_eq!(load(r#"{"log-level": "warn"}"#, Flags::default()), Ok(LogLevel::Warn));
        assert_eq!(load("{}", Flags { log_level: Some("fatal".into()), ..Default::default() }), Ok(LogLevel::Fatal));
        assert_eq!(load(r#"{"log-level": "error", "debug": true}"#, Flags::default()), Ok(LogLevel::Debug));
        assert_eq!(load(r#"{"log-level": "error"}"#, Flags { debug: true, ..Default::default() }), Ok(LogLevel::Debug));
        assert_eq!(
            load("{}", Flags { log_level: Some("loud".into()), debug: true, ..Default::default() }),
            Err("unable to parse logging level: loud".into())
        );
        let both = load(r#"{"log-level": "warn"}"#, Flags { log_level: Some("info".into()), ..Default::default() });
        assert!(both.unwrap_err().contains("log-level"));
    }

    #[test]
    fn unknown_keys_and_clashes_are_errors() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("daemon.json");
        std::fs::write(&p, r#"{"data-root": "/x", "bogus-key": 1}"#).unwrap();
        let flags = Flags { config_file: Some(p.clone()), ..Default::default() };
        assert!(DaemonConfig::load(&flags).unwrap_err().contains("bogus-key"));
        std::fs::write(&p, r#"{"data-root": "/x"}"#).unwrap();
        let flags = Flags { config_file: Some(p.clone()), data_root: Some("/y".into()), ..Default::default() };
        assert!(DaemonConfig::load(&flags).unwrap_err().contains("both as a flag and in the configuration file"));
        std::fs::write(&p, "{not json").unwrap();
        let flags = Flags { config_file: Some(p.clone()), ..Default::default() };
        assert!(DaemonConfig::load(&flags).unwrap_err().contains("unable to configure"));
        std::fs::write(&p, r#"{"data-root": "/x", "log-opts": {"max-sise": "1m"}}"#).unwrap();
        let flags = Flags { config_file: Some(p.clone()), ..Default::default() };
        let e = DaemonConfig::load(&flags).unwrap_err();
        assert_eq!(e, "failed to set log opts: unknown log opt 'max-sise' for json-file log driver");
        std::fs::write(&p, r#"{"log-opts": {"max-file": "0"}}"#).unwrap();
        let flags = Flags { config_file: Some(p.clone()), ..Default::default() };
        assert!(DaemonConfig::load(&flags).unwrap_err().ends_with("max-file cannot be less than 1"));
        std::fs::write(&p, r#"{"data-root": "/x", "log-opts": {"max-size": "1m"}}"#).unwrap();
        let c = DaemonConfig::load(&Flags { config_file: Some(p), ..Default::default() }).unwrap();
        assert_eq!(c.data_root, PathBuf::from("/x"));
        assert!(c.live_restore);
        assert_eq!(c.hosts, vec!["unix:///run/berth/berth.sock".to_string()]);
    }

    #[test]
    fn the_cri_socket_defaults_to_the_exec_root_and_empty_turns_it_off() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("daemon.json");
        let load = |json: &str, flag: Option<&str>| {
            std::fs::write(&p, json).unwrap();
            DaemonConfig::load(&Flags {
                config_file: Some(p.clone()),
                cri_socket: flag.map(String::from),
                ..Default::default()
            })
        };
        assert_eq!(load("{}", None).unwrap().cri_socket, Some(PathBuf::from("/run/berth/cri.sock")));
        let c = load(r#"{"exec-root": "/x/run"}"#, None).unwrap();
        assert_eq!(c.cri_socket, Some(PathBuf::from("/x/run/cri.sock")));
        assert_eq!(load(r#"{"cri-socket": "/a/c.sock"}"#, None).unwrap().cri_socket, Some(PathBuf::from("/a/c.sock")));
        assert_eq!(load(r#"{"cri-socket": ""}"#, None).unwrap().cri_socket, None);
        assert_eq!(load("{}", Some("")).unwrap().cri_socket, None);
        assert_eq!(load("{}", Some("/f.sock")).unwrap().cri_socket, Some(PathBuf::from("/f.sock")));
        assert!(load(r#"{"cri-socket": ""}"#, Some("/f.sock")).unwrap_err().contains("cri-socket"));
    }

    #[test]
    fn the_cri_stream_idle_timeout_is_4h_by_default_a_go_duration_and_zero_turns_it_off() {
        use std::time::Duration;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("daemon.json");
        let load = |json: &str, flag: Option<&str>| {
            std::fs::write(&p, json).unwrap();
            DaemonConfig::load(&Flags {
                config_file: Some(p.clone()),
                cri_stream_idle_timeout: flag.map(String::from),
                ..Default::default()
            })
        };
        assert_eq!(load("{}", None).unwrap().cri_stream_idle_timeout, Some(Duration::from_secs(4 * 3600)));
        let c = load(r#"{"cri-stream-idle-timeout": "4h0m0s"}"#, None).unwrap();
        assert_eq!(c.cri_stream_idle_timeout, Some(Duration::from_secs(4 * 3600)));
        assert_eq!(load("{}", Some("1m30s")).unwrap().cri_stream_idle_timeout, Some(Duration::from_secs(90)));
        assert_eq!(load(r#"{"cri-stream-idle-timeout": "0"}"#, None).unwrap().cri_stream_idle_timeout, None);
        for bad in ["\"4 hours\"", "\"-1s\"", "\"\"", "30"] {
            let e = load(&format!(r#"{{"cri-stream-idle-timeout": {bad}}}"#), None).unwrap_err();
            assert!(e.contains("cri-stream-idle-timeout"), "{bad}: {e}");
        }
        let e = load(r#"{"cri-stream-idle-timeout": "1s"}"#, Some("2s")).unwrap_err();
        assert!(e.contains("cri-stream-idle-timeout"), "{e}");
    }

    #[test]
    fn the_cri_stream_address_defaults_to_loopback_on_any_port() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("daemon.json");
        let load = |json: &str, flag: Option<&str>| {
            std::fs::write(&p, json).unwrap();
            DaemonConfig::load(&Flags {
                config_file: Some(p.clone()),
                cri_stream_address: flag.map(String::from),
                ..Default::default()
            })
        };
        assert_eq!(load("{}", None).unwrap().cri_stream_address, "127.0.0.1:0");
        assert_eq!(
            load(r#"{"cri-stream-address": "10.0.0.1:10010"}"#, None).unwrap().cri_stream_address,
            "10.0.0.1:10010"
        );
        assert_eq!(load("{}", Some("::1")).unwrap().cri_stream_address, "::1");
        assert!(load(r#"{"cri-stream-address": "a"}"#, Some("b")).unwrap_err().contains("cri-stream-address"));
    }

    #[test]
    fn cni_directories_default_to_containerds_and_debians_and_take_flags_or_daemon_json() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("daemon.json");
        let load = |json: &str, conf: Option<&str>, bins: &[&str]| {
            std::fs::write(&p, json).unwrap();
            DaemonConfig::load(&Flags {
                config_file: Some(p.clone()),
                cni_conf_dir: conf.map(PathBuf::from),
                cni_bin_dirs: bins.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            })
        };
        let paths = |v: &[&str]| v.iter().map(PathBuf::from).collect::<Vec<_>>();
        let c = load("{}", None, &[]).unwrap();
        assert_eq!(c.cni_conf_dir, PathBuf::from("/etc/cni/net.d"));
        assert_eq!(c.cni_bin_dirs, paths(&["/opt/cni/bin", "/usr/lib/cni"]));
        let c = load(r#"{"cni-conf-dir": "/c", "cni-bin-dir": "/b1:/b2"}"#, None, &[]).unwrap();
        assert_eq!((c.cni_conf_dir, c.cni_bin_dirs), (PathBuf::from("/c"), paths(&["/b1", "/b2"])));
        let c = load("{}", Some("/f"), &["/x:/y", "/z"]).unwrap();
        assert_eq!((c.cni_conf_dir, c.cni_bin_dirs), (PathBuf::from("/f"), paths(&["/x", "/y", "/z"])));
        assert!(load(r#"{"cni-conf-dir": "/c"}"#, Some("/f"), &[]).unwrap_err().contains("cni-conf-dir"));
        assert!(load(r#"{"cni-bin-dir": "/c"}"#, None, &["/b"]).unwrap_err().contains("cni-bin-dir"));
    }

    #[test]
    fn cluster_store_settings() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("daemon.json");
        std::fs::write(&p, r#"{"cluster-store": "etcd://10.0.0.1:2379", "cluster-advertise": "eth1", "cluster-store-opts": {"discovery.ttl": "9"}}"#).unwrap();
        let c =
            DaemonConfig::load(&Flags { config_file: Some(p.clone()), ..Default::default() }).unwrap().cluster.unwrap();
        assert_eq!(
            (c.store.as_str(), c.advertise.as_str(), c.ttl.as_secs(), c.heartbeat.as_secs()),
            ("etcd://10.0.0.1:2379", "eth1", 9, 3)
        );
        let flags =
            Flags { config_file: Some(p.clone()), cluster_store: Some("etcd://h:1".into()), ..Default::default() };
        assert!(DaemonConfig::load(&flags).unwrap_err().contains("cluster-store"));
        std::fs::write(&p, "{}").unwrap();
        let flags = Flags {
            config_file: Some(p.clone()),
            cluster_store: Some("etcd://h:1".into()),
            cluster_advertise: Some("10.0.0.2".into()),
            ..Default::default()
        };
        assert_eq!(DaemonConfig::load(&flags).unwrap().cluster.unwrap().advertise, "10.0.0.2");
        let flags =
            Flags { config_file: Some(p.clone()), cluster_advertise: Some("10.0.0.2".into()), ..Default::default() };
        assert!(DaemonConfig::load(&flags).unwrap_err().contains("needs cluster-store"));
        let flags = Flags {
            config_file: Some(p.clone()),
            cluster_store: Some("consul://h".into()),
            cluster_advertise: Some("eth0".into()),
            ..Default::default()
        };
        assert!(DaemonConfig::load(&flags).unwrap_err().contains("etcd://"));
        assert!(DaemonConfig::load(&Flags { config_file: Some(p), ..Default::default() }).unwrap().cluster.is_none());
    }

    #[test]
    fn registry_settings_come_from_flags_or_the_file_not_both() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("daemon.json");
        std::fs::write(&p, r#"{"registry-mirrors": ["https://m.example"], "insecure-registries": ["10.0.0.0/8"]}"#)
            .unwrap();
        let c = DaemonConfig::load(&Flags { config_file: Some(p.clone()), ..Default::default() }).unwrap();
        assert_eq!(
            (c.registry_mirrors, c.insecure_registries),
            (vec!["https://m.example".to_string()], vec!["10.0.0.0/8".to_string()])
        );
        let flags = Flags {
            config_file: Some(p.clone()),
            registry_mirrors: vec!["http://127.0.0.1:5001".into()],
            ..Default::default()
        };
        assert!(DaemonConfig::load(&flags).unwrap_err().contains("registry-mirrors"));
        std::fs::write(&p, "{}").unwrap();
        let flags = Flags {
            registry_mirrors: vec!["http://127.0.0.1:5001".into()],
            insecure_registries: vec!["reg.lan:5000".into()],
            ..flags
        };
        let c = DaemonConfig::load(&flags).unwrap();
        assert_eq!(
            (c.registry_mirrors, c.insecure_registries),
            (vec!["http://127.0.0.1:5001".to_string()], vec!["reg.lan:5000".to_string()])
        );
        let flags =
            Flags { config_file: Some(p), registry_mirrors: vec!["ftp://m.example".into()], ..Default::default() };
        assert!(DaemonConfig::load(&flags).unwrap_err().contains("invalid mirror"));
    }
}
