//! `run` and `create`: the flags, the request they make, and attaching to the result.

use std::collections::BTreeMap;

use anyhow::{Result, anyhow, bail};
use clap::{ArgAction, Args};

use berth_api::models::{
    ContainerConfig, ContainerCreateRequest, EndpointIpamConfig, EndpointSettings, HealthConfig, HostConfig, LogConfig,
    NetworkingConfig, WaitResponse,
};

use super::Exit;
use crate::client::{Client, ClientError, enc, query};
use crate::{device_opts, opts, tty};

/// Flags shared by `run` and `create` (docker's names and letters).
#[derive(Args, Debug, Clone, Default)]
#[command(disable_help_flag = true)]
pub struct CreateFlags {
    #[arg(long, action = ArgAction::Help, help = "Print usage")]
    pub help: Option<bool>,
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short = 'a', long = "attach")]
    pub attach: Vec<String>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file")]
    pub env_file: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Container NIS domain name
    #[arg(long)]
    pub domainname: Option<String>,
    /// Bind mount a volume
    #[arg(short = 'v', long = "volume")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount to the container
    #[arg(long)]
    pub mount: Vec<String>,
    /// Mount a tmpfs directory
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long = "volumes-from")]
    pub volumes_from: Vec<String>,
    /// Connect a container to a network
    #[arg(long = "network", visible_alias = "net")]
    pub network: Option<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias", visible_alias = "net-alias")]
    pub network_alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long)]
    pub ip: Option<String>,
    /// IPv6 address
    #[arg(long)]
    pub ip6: Option<String>,
    /// Container IPv4/IPv6 link-local addresses
    #[arg(long = "link-local-ip")]
    pub link_local_ip: Vec<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33)
    #[arg(long = "mac-address")]
    pub mac_address: Option<String>,
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a port or a range of ports
    #[arg(long)]
    pub expose: Vec<String>,
    /// Add link to another container
    #[arg(long)]
    pub link: Vec<String>,
    /// Set custom DNS servers
    #[arg(long)]
    pub dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option", visible_alias = "dns-opt")]
    pub dns_option: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    /// Memory limit
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Tune container memory swappiness (0 to 100)
    #[arg(long = "memory-swappiness", allow_hyphen_values = true)]
    pub memory_swappiness: Option<i64>,
    /// Number of CPUs
    #[arg(long)]
    pub cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// Block IO weight (relative device weight)
    #[arg(long = "blkio-weight-device")]
    pub blkio_weight_device: Vec<String>,
    /// Limit read rate (bytes per second) from a device
    #[arg(long = "device-read-bps")]
    pub device_read_bps: Vec<String>,
    /// Limit write rate (bytes per second) to a device
    #[arg(long = "device-write-bps")]
    pub device_write_bps: Vec<String>,
    /// Limit read rate (IO per second) from a device
    #[arg(long = "device-read-iops")]
    pub device_read_iops: Vec<String>,
    /// Limit write rate (IO per second) to a device
    #[arg(long = "device-write-iops")]
    pub device_write_iops: Vec<String>,
    /// GPU devices to add to the container ('all' to pass all GPUs)
    #[arg(long)]
    pub gpus: Option<String>,
    /// Limit CPU real-time period in microseconds
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<i64>,
    /// Limit CPU real-time runtime in microseconds
    #[arg(long = "cpu-rt-runtime")]
    pub cpu_rt_runtime: Option<i64>,
    /// Optional volume driver for the container
    #[arg(long = "volume-driver")]
    pub volume_driver: Option<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    /// Add Linux capabilities
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// Security Options
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Set meta data on a container
    #[arg(short = 'l', long = "label")]
    pub label: Vec<String>,
    /// Read in a line delimited file of labels
    #[arg(long = "label-file")]
    pub label_file: Vec<String>,
    /// Signal to stop the container
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout", allow_hyphen_values = true)]
    pub stop_timeout: Option<i64>,
    /// Ulimit options
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Size of /dev/shm
    #[arg(long = "shm-size")]
    pub shm_size: Option<String>,
    /// Restart policy to apply when a container exits
    #[arg(long)]
    pub restart: Option<String>,
    /// Automatically remove the container and its associated anonymous volumes when it exits
    #[arg(long)]
    pub rm: bool,
    /// Add a host device to the container
    #[arg(long)]
    pub device: Vec<String>,
    /// Add additional groups to join
    #[arg(long = "group-add")]
    pub group_add: Vec<String>,
    /// Sysctl options
    #[arg(long)]
    pub sysctl: Vec<String>,
    /// Logging driver for the container
    #[arg(long = "log-driver")]
    pub log_driver: Option<String>,
    /// Log driver options
    #[arg(long = "log-opt")]
    pub log_opt: Vec<String>,
    /// IPC mode to use
    #[arg(long)]
    pub ipc: Option<String>,
    /// PID namespace to use
    #[arg(long)]
    pub pid: Option<String>,
    /// UTS namespace to use
    #[arg(long)]
    pub uts: Option<String>,
    /// Cgroup namespace to use (host|private)
    #[arg(long)]
    pub cgroupns: Option<String>,
    /// Optional parent cgroup for the container
    #[arg(long = "cgroup-parent")]
    pub cgroup_parent: Option<String>,
    /// Disable OOM Killer
    #[arg(long = "oom-kill-disable")]
    pub oom_kill_disable: bool,
    /// Tune host's OOM preferences (-1000 to 1000)
    #[arg(long = "oom-score-adj", allow_hyphen_values = true)]
    pub oom_score_adj: Option<i64>,
    /// Command to run to check health
    #[arg(long = "health-cmd")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h)
    #[arg(long = "health-interval")]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h)
    #[arg(long = "health-timeout")]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long = "health-retries")]
    pub health_retries: Option<i64>,
    /// Start period for the container to initialize before starting health-retries countdown
    #[arg(long = "health-start-period")]
    pub health_start_period: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// Pull image before running ("always", "missing", "never")
    #[arg(long, default_value = "missing")]
    pub pull: String,
    /// Runtime to use for this container
    #[arg(long)]
    pub runtime: Option<String>,
    /// Add a rule to the cgroup allowed devices list
    #[arg(long = "device-cgroup-rule")]
    pub device_cgroup_rule: Vec<String>,
    /// Storage driver options for the container
    #[arg(long = "storage-opt")]
    pub storage_opt: Vec<String>,
    /// Suppress the pull output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// The image
    pub image: String,
    /// The command and its arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// `run`'s own flags.
#[derive(Args, Debug, Clone)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    /// Proxy received signals to the process
    #[arg(long = "sig-proxy", default_value_t = true, action = ArgAction::Set)]
    pub sig_proxy: bool,
    #[command(flatten)]
    pub create: CreateFlags,
}

fn duration_ns(s: &Option<String>, flag: &str) -> Result<i64> {
    match s {
        None => Ok(0),
        Some(v) => berth_api::time::parse_go_duration(v)
            .map(|d| d.as_nanos() as i64)
            .ok_or_else(|| anyhow!("invalid argument \"{v}\" for \"{flag}\" flag: time: invalid duration \"{v}\"")),
    }
}

/// Builds the create request from the flags.
pub fn request(f: &CreateFlags) -> Result<ContainerCreateRequest> {
    if f.image.is_empty() {
        bail!("\"run\" requires at least 1 argument.");
    }
    let mut env = Vec::new();
    for file in &f.env_file {
        env.extend(opts::read_env_file(file)?);
    }
    env.extend(opts::env_values(&f.env));
    let mut exposed = BTreeMap::new();
    let mut bindings = BTreeMap::new();
    opts::publish(&f.publish, &mut exposed, &mut bindings)?;
    opts::expose(&f.expose, &mut exposed)?;
    let attach_all = f.attach.is_empty();
    let has = |s: &str| f.attach.iter().any(|a| a.eq_ignore_ascii_case(s));
    for a in &f.attach {
        if !["stdin", "stdout", "stderr"].contains(&a.to_ascii_lowercase().as_str()) {
            bail!("invalid argument \"{a}\" for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR");
        }
    }
    let healthcheck = if f.no_healthcheck {
        Some(HealthConfig { test: Some(vec!["NONE".into()]), ..Default::default() })
    } else if f.health_cmd.is_some()
        || f.health_interval.is_some()
        || f.health_retries.is_some()
        || f.health_timeout.is_some()
        || f.health_start_period.is_some()
    {
        Some(HealthConfig {
            test: f.health_cmd.as_ref().map(|c| vec!["CMD-SHELL".to_string(), c.clone()]),
            interval: duration_ns(&f.health_interval, "--health-interval")?,
            timeout: duration_ns(&f.health_timeout, "--health-timeout")?,
            start_period: duration_ns(&f.health_start_period, "--health-start-period")?,
            retries: f.health_retries.unwrap_or(0),
            ..Default::default()
        })
    } else {
        None
    };
    let config = ContainerConfig {
        hostname: f.hostname.clone().unwrap_or_default(),
        domainname: f.domainname.clone().unwrap_or_default(),
        user: f.user.clone().unwrap_or_default(),
        attach_stdin: f.interactive && (attach_all || has("stdin")),
        attach_stdout: attach_all || has("stdout"),
        attach_stderr: attach_all || has("stderr"),
        exposed_ports: if exposed.is_empty() { None } else { Some(exposed) },
        tty: f.tty,
        open_stdin: f.interactive,
        stdin_once: f.interactive,
        env,
        cmd: if f.command.is_empty() { None } else { Some(f.command.clone()) },
        healthcheck,
        image: f.image.clone(),
        working_dir: f.workdir.clone().unwrap_or_default(),
        entrypoint: f.entrypoint.as_ref().map(|e| vec![e.clone()]),
        mac_address: f.mac_address.clone().unwrap_or_default(),
        labels: opts::labels(&f.label, &f.label_file)?,
        stop_signal: f.stop_signal.clone().unwrap_or_default(),
        stop_timeout: f.stop_timeout,
        ..Default::default()
    };
    let mut log_config = LogConfig { kind: f.log_driver.clone().unwrap_or_default(), config: BTreeMap::new() };
    for o in &f.log_opt {
        let (k, v) = o.split_once('=').ok_or_else(|| anyhow!("invalid log opt: {o}"))?;
        log_config.config.insert(k.into(), v.into());
    }
    let mut sysctls = BTreeMap::new();
    for s in &f.sysctl {
        let (k, v) = s
            .split_once('=')
            .ok_or_else(|| anyhow!("invalid argument \"{s}\" for \"--sysctl\" flag: sysctl '{s}' is not allowed"))?;
        sysctls.insert(k.to_string(), v.to_string());
    }
    let mut storage_opt = BTreeMap::new();
    for s in &f.storage_opt {
        let (k, v) = s.split_once('=').ok_or_else(|| anyhow!("invalid storage option {s}"))?;
        storage_opt.insert(k.to_string(), v.to_string());
    }
    let network = f.network.clone().unwrap_or_default();
    // The docker CLI's own check, before the daemon's.
    if f.rm && f.restart.as_deref().is_some_and(|r| !r.is_empty() && r != "no") {
        return Err(anyhow!("Conflicting options: --restart and --rm"));
    }
    let host = HostConfig {
        binds: if f.volume.is_empty() { None } else { Some(f.volume.clone()) },
        log_config,
        network_mode: if network.is_empty() { "default".into() } else { network.clone() },
        port_bindings: bindings,
        restart_policy: f.restart.as_deref().map(opts::restart_policy).transpose()?.unwrap_or_default(),
        auto_remove: f.rm,
        volumes_from: if f.volumes_from.is_empty() { None } else { Some(f.volumes_from.clone()) },
        mounts: if f.mount.is_empty() {
            None
        } else {
            Some(f.mount.iter().map(|m| opts::mount(m)).collect::<Result<Vec<_>>>()?)
        },
        cap_add: if f.cap_add.is_empty() { None } else { Some(f.cap_add.clone()) },
        cap_drop: if f.cap_drop.is_empty() { None } else { Some(f.cap_drop.clone()) },
        cgroupns_mode: f.cgroupns.clone().unwrap_or_default(),
        dns: f.dns.clone(),
        dns_options: f.dns_option.clone(),
        dns_search: f.dns_search.clone(),
        extra_hosts: if f.add_host.is_empty() { None } else { Some(f.add_host.clone()) },
        group_add: if f.group_add.is_empty() { None } else { Some(f.group_add.clone()) },
        ipc_mode: f.ipc.clone().unwrap_or_default(),
        links: if f.link.is_empty() { None } else { Some(f.link.clone()) },
        oom_score_adj: f.oom_score_adj.unwrap_or(0),
        pid_mode: f.pid.clone().unwrap_or_default(),
        privileged: f.privileged,
        publish_all_ports: f.publish_all,
        readonly_rootfs: f.read_only,
        security_opt: if f.security_opt.is_empty() { None } else { Some(security_opts(&f.security_opt)?) },
        storage_opt: if storage_opt.is_empty() { None } else { Some(storage_opt) },
        tmpfs: if f.tmpfs.is_empty() { None } else { Some(opts::tmpfs(&f.tmpfs)) },
        uts_mode: f.uts.clone().unwrap_or_default(),
        shm_size: f.shm_size.as_deref().map(|s| opts::size(s, "--shm-size")).transpose()?.unwrap_or(0),
        sysctls: if sysctls.is_empty() { None } else { Some(sysctls) },
        runtime: f.runtime.clone().unwrap_or_default(),
        cpu_shares: f.cpu_shares.unwrap_or(0),
        memory: f.memory.as_deref().map(|s| opts::size(s, "--memory")).transpose()?.unwrap_or(0),
        nano_cpus: f.cpus.as_deref().map(opts::nano_cpus).transpose()?.unwrap_or(0),
        cgroup_parent: f.cgroup_parent.clone().unwrap_or_default(),
        blkio_weight: f.blkio_weight.unwrap_or(0),
        cpu_period: f.cpu_period.unwrap_or(0),
        cpu_quota: f.cpu_quota.unwrap_or(0),
        cpuset_cpus: f.cpuset_cpus.clone().unwrap_or_default(),
        cpuset_mems: f.cpuset_mems.clone().unwrap_or_default(),
        devices: {
            let paths: Vec<_> = f.device.iter().filter(|d| !device_opts::is_cdi_name(d)).collect();
            if paths.is_empty() {
                None
            } else {
                Some(paths.into_iter().map(|d| opts::device(d)).collect::<Result<Vec<_>>>()?)
            }
        },
        device_requests: {
            let cdi = f.device.iter().filter(|d| device_opts::is_cdi_name(d)).cloned().collect();
            let r: Vec<_> = device_opts::cdi_request(cdi)
                .into_iter()
                .chain(f.gpus.as_deref().map(device_opts::gpus).transpose()?)
                .collect();
            (!r.is_empty()).then_some(r)
        },
        blkio_weight_device: list(&f.blkio_weight_device, device_opts::weight_device)?,
        blkio_device_read_bps: list(&f.device_read_bps, device_opts::throttle_bps)?,
        blkio_device_write_bps: list(&f.device_write_bps, device_opts::throttle_bps)?,
        blkio_device_read_iops: list(&f.device_read_iops, device_opts::throttle_iops)?,
        blkio_device_write_iops: list(&f.device_write_iops, device_opts::throttle_iops)?,
        cpu_realtime_period: f.cpu_rt_period.unwrap_or(0),
        cpu_realtime_runtime: f.cpu_rt_runtime.unwrap_or(0),
        volume_driver: f.volume_driver.clone().unwrap_or_default(),
        device_cgroup_rules: if f.device_cgroup_rule.is_empty() { None } else { Some(f.device_cgroup_rule.clone()) },
        memory_reservation: f
            .memory_reservation
            .as_deref()
            .map(|s| opts::size(s, "--memory-reservation"))
            .transpose()?
            .unwrap_or(0),
        memory_swap: match f.memory_swap.as_deref() {
            None => 0,
            Some("-1") => -1,
            Some(s) => opts::size(s, "--memory-swap")?,
        },
        memory_swappiness: f.memory_swappiness,
        oom_kill_disable: f.oom_kill_disable.then_some(true),
        init: f.init.then_some(true),
        pids_limit: f.pids_limit,
        ulimits: if f.ulimit.is_empty() {
            None
        } else {
            Some(f.ulimit.iter().map(|u| opts::ulimit(u)).collect::<Result<Vec<_>>>()?)
        },
        console_size: if f.tty { tty::size().map(|(h, w)| [h as u32, w as u32]) } else { None },
        ..Default::default()
    };
    let mut networking = NetworkingConfig::default();
    if !network.is_empty()
        && !matches!(network.as_str(), "default" | "bridge" | "host" | "none")
        && !network.starts_with("container:")
        || f.ip.is_some()
        || f.ip6.is_some()
        || !f.network_alias.is_empty()
    {
        let ep = EndpointSettings {
            ipam_config: (f.ip.is_some() || f.ip6.is_some() || !f.link_local_ip.is_empty()).then(|| {
                EndpointIpamConfig {
                    ipv4_address: f.ip.clone().unwrap_or_default(),
                    ipv6_address: f.ip6.clone().unwrap_or_default(),
                    link_local_ips: f.link_local_ip.clone(),
                }
            }),
            aliases: if f.network_alias.is_empty() { None } else { Some(f.network_alias.clone()) },
            ..Default::default()
        };
        networking.endpoints_config.insert(if network.is_empty() { "bridge".into() } else { network }, ep);
    }
    Ok(ContainerCreateRequest { config, host_config: host, networking_config: networking })
}

/// `--security-opt seccomp=FILE` sends the file's contents, as the docker CLI does.
/// A repeated flag's values parsed one by one; `None` when it was not given.
fn list<T>(values: &[String], parse: fn(&str) -> Result<T>) -> Result<Option<Vec<T>>> {
    if values.is_empty() { Ok(None) } else { values.iter().map(|v| parse(v)).collect::<Result<_>>().map(Some) }
}

fn security_opts(list: &[String]) -> Result<Vec<String>> {
    list.iter()
        .map(|s| {
            if let Some(path) = s.strip_prefix("seccomp=").or_else(|| s.strip_prefix("seccomp:"))
                && path != "unconfined"
                && path != "builtin"
            {
                let content = std::fs::read_to_string(path)
                    .map_err(|e| anyhow!("opening seccomp profile ({path}) failed: {e}"))?;
                return Ok(format!("seccomp={content}"));
            }
            Ok(s.clone())
        })
        .collect()
}

/// Creates the container, reporting a missing image the way docker does.
pub fn create_container(c: &Client, f: &CreateFlags) -> Result<(String, Vec<String>)> {
    let req = request(f)?;
    let q = query(&[("name", f.name.clone().unwrap_or_default())]);
    match c.post_json(&format!("/containers/create{q}"), &req) {
        Ok(r) => {
            let v: berth_api::models::ContainerCreateResponse = r.json()?;
            Ok((v.id, v.warnings))
        }
        Err(ClientError::Api { status: 404, message }) if message.starts_with("No such image") => {
            eprintln!("Unable to find image '{}' locally", display_ref(&f.image));
            super::image::pull_quiet(c, &f.image, f.quiet)?;
            let v: berth_api::models::ContainerCreateResponse =
                c.post_json(&format!("/containers/create{q}"), &req)?.json()?;
            Ok((v.id, v.warnings))
        }
        Err(e) => Err(e.into()),
    }
}

fn display_ref(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if last.contains(':') || image.contains('@') { image.to_string() } else { format!("{image}:latest") }
}

pub fn create(c: &Client, f: &CreateFlags) -> Exit {
    let (id, warnings) = create_container(c, f)?;
    for w in warnings {
        eprintln!("WARNING: {w}");
    }
    println!("{id}");
    Ok(0)
}

/// Attaches to `id` with the given streams and returns (connection for input, output reader).
pub fn attach_stream(
    c: &Client,
    id: &str,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    detach_keys: Option<&str>,
) -> Result<(crate::client::Conn, Vec<u8>)> {
    let q = query(&[
        ("stream", "1".into()),
        ("stdin", if stdin { "1".into() } else { String::new() }),
        ("stdout", if stdout { "1".into() } else { String::new() }),
        ("stderr", if stderr { "1".into() } else { String::new() }),
        ("detachKeys", detach_keys.unwrap_or("").to_string()),
    ]);
    Ok(c.hijack(&format!("/containers/{}/attach{q}", enc(id)), None)?)
}

/// Starts the wait before the start, so a quick exit is not missed.
pub fn wait_in_background(c: &Client, id: &str, condition: &str) -> Result<std::sync::mpsc::Receiver<Result<i64>>> {
    let mut resp = c.post(&format!("/containers/{}/wait?condition={condition}", enc(id)))?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut body = Vec::new();
        let r = resp.reader().read_to_end(&mut body).map_err(anyhow::Error::from).and_then(|_| {
            let w: WaitResponse =
                serde_json::from_slice(&body).map_err(|e| anyhow!("waiting for the container: {e}"))?;
            if let Some(e) = w.error.filter(|e| !e.message.is_empty()) {
                bail!("{}", e.message);
            }
            Ok(w.status_code)
        });
        // The receiver is gone only if its caller finished without waiting.
        let _ = tx.send(r);
    });
    Ok(rx)
}

fn start_error_code(msg: &str) -> i32 {
    if msg.contains("executable file not found") || msg.contains("no such file or directory") {
        127
    } else if msg.contains("permission denied") || msg.contains("is a directory") {
        126
    } else {
        125
    }
}

pub fn run(c: &Client, a: &RunArgs) -> Exit {
    let f = &a.create;
    if a.detach && f.rm && f.restart.as_deref().is_some_and(|r| r != "no") {
        bail!("conflicting options: cannot specify both --restart and --rm");
    }
    if f.tty && !a.detach && f.interactive && !tty::stdin_is_tty() {
        eprintln!("the input device is not a TTY");
        return Ok(1);
    }
    let (id, warnings) = match create_container(c, f) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("berth: {e}");
            eprintln!("\nRun 'berth run --help' for more information");
            return Ok(125);
        }
    };
    for w in warnings {
        eprintln!("WARNING: {w}");
    }
    if a.detach {
        if let Err(e) = c.post(&format!("/containers/{id}/start")) {
            eprintln!("berth: {e}");
            eprintln!("\nRun 'berth run --help' for more information");
            return Ok(start_error_code(&e.to_string()));
        }
        println!("{id}");
        return Ok(0);
    }
    let attach_all = f.attach.is_empty();
    let has = |s: &str| f.attach.iter().any(|x| x.eq_ignore_ascii_case(s));
    let want_stdin = f.interactive && (attach_all || has("stdin"));
    let (conn, buffered) = attach_stream(
        c,
        &id,
        want_stdin,
        attach_all || has("stdout"),
        attach_all || has("stderr"),
        a.detach_keys.as_deref(),
    )?;
    let waiter = wait_in_background(c, &id, if f.rm { "removed" } else { "next-exit" })?;
    if let Err(e) = c.post(&format!("/containers/{id}/start")) {
        eprintln!("berth: {e}");
        eprintln!("\nRun 'berth run --help' for more information");
        if f.rm {
            // Waits for the removal; its outcome is not this error's.
            let _ = waiter.recv();
        }
        return Ok(start_error_code(&e.to_string()));
    }
    let _raw = (f.tty && f.interactive && tty::stdin_is_tty()).then(tty::RawMode::enable);
    let _proxy = (a.sig_proxy && !f.tty).then(|| crate::sigproxy::SigProxy::start(c, &id)).flatten();
    if f.tty
        && let Some((h, w)) = tty::size()
    {
        // Best effort, as Docker's CLI: a terminal of the wrong size is no reason to fail.
        let _ = c.post(&format!("/containers/{id}/resize?h={h}&w={w}"));
    }
    if want_stdin {
        let input = conn.try_clone()?;
        std::thread::spawn(move || tty::copy_input(input));
    }
    let out = tty::copy_output(conn, f.tty, &buffered);
    drop(_raw);
    if let Err(e) = out
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("{e}");
    }
    // Detached with the escape sequence: the container keeps running. Only a client sending
    // input can detach; otherwise the output ends with the process, which the daemon may not
    // have recorded yet (it would read as running), and the exit code is waited for.
    let state: serde_json::Value = if want_stdin {
        c.get_json(&format!("/containers/{id}/json")).unwrap_or_default()
    } else {
        serde_json::Value::Null
    };
    if state["State"]["Running"].as_bool() == Some(true) && !f.rm {
        // Detached, or the process ended and the daemon has not recorded it yet (a loaded
        // machine): the wait answers at once then, with the exit code (as `attach` does).
        if let Ok(Ok(code)) = waiter.recv_timeout(std::time::Duration::from_secs(1)) {
            return Ok(code as i32);
        }
        return Ok(0);
    }
    match waiter.recv() {
        Ok(Ok(code)) => Ok(code as i32),
        Ok(Err(e)) => {
            eprintln!("{e}");
            Ok(125)
        }
        Err(_) => Ok(125),
    }
}
