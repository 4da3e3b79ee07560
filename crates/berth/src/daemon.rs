//! `berth daemon`: dockerd's flags, then serve until SIGTERM or SIGINT.

use std::io::Write;
use std::os::fd::AsFd;
use std::path::PathBuf;

use clap::Parser;
use clap::builder::BoolishValueParser;

use berth_daemon::{Daemon, DaemonConfig, Flags};

/// Run the berth daemon (the Docker Engine API on a unix socket, or TCP with TLS).
#[derive(Parser, Debug)]
#[command(name = "berth daemon", version)]
struct DaemonArgs {
    /// Daemon socket(s) to connect to (unix:///path or tcp://host:port)
    #[arg(short = 'H', long = "host")]
    host: Vec<String>,
    /// Root directory of persistent state
    #[arg(long = "data-root")]
    data_root: Option<PathBuf>,
    /// Root directory for execution state files
    #[arg(long = "exec-root")]
    exec_root: Option<PathBuf>,
    /// Path to use for the daemon PID file
    #[arg(short = 'p', long = "pidfile")]
    pidfile: Option<PathBuf>,
    /// Daemon configuration file
    #[arg(long = "config-file")]
    config_file: Option<PathBuf>,
    /// Enable debug mode
    #[arg(short = 'D', long)]
    debug: bool,
    /// Keep containers running when the daemon stops (default true)
    #[arg(long = "live-restore")]
    live_restore: Option<bool>,
    /// Parent cgroup for all containers
    #[arg(long = "cgroup-parent")]
    cgroup_parent: Option<String>,
    /// Default driver for container logs
    #[arg(long = "log-driver")]
    log_driver: Option<String>,
    /// Set key=value labels to the daemon
    #[arg(long = "label")]
    label: Vec<String>,
    /// The cluster store of overlay networks (etcd://HOST:2379)
    #[arg(long = "cluster-store")]
    cluster_store: Option<String>,
    /// Address or interface this host advertises to the cluster (its VXLAN endpoint)
    #[arg(long = "cluster-advertise")]
    cluster_advertise: Option<String>,
    /// Preferred Docker registry mirror (repeatable; tried in order before the Hub)
    #[arg(long = "registry-mirror")]
    registry_mirror: Vec<String>,
    /// A directory of CDI device specs (repeatable; later ones take priority; default
    /// /etc/cdi and /var/run/cdi)
    #[arg(long = "cdi-spec-dir")]
    cdi_spec_dir: Vec<PathBuf>,
    /// Enable insecure registry communication: host[:port] or a CIDR (repeatable)
    #[arg(long = "insecure-registry")]
    insecure_registry: Vec<String>,
    /// Use TLS; implied by --tlsverify (--tls=false: plain HTTP even on a network address)
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    tls: Option<bool>,
    /// Use TLS and verify the remote (clients need a certificate signed by --tlscacert)
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    tlsverify: Option<bool>,
    /// Trust certs signed only by this CA (default ~/.docker/ca.pem)
    #[arg(long)]
    tlscacert: Option<PathBuf>,
    /// Path to TLS certificate file (default ~/.docker/cert.pem)
    #[arg(long)]
    tlscert: Option<PathBuf>,
    /// Path to TLS key file (default ~/.docker/key.pem)
    #[arg(long)]
    tlskey: Option<PathBuf>,
    /// Group for the unix socket (default "docker", if it exists)
    #[arg(short = 'G', long = "group")]
    group: Option<String>,
    /// Serve the Kubernetes CRI on this unix socket (default /run/berth/cri.sock, in the exec
    /// root; an empty value turns it off)
    #[arg(long = "cri-socket")]
    cri_socket: Option<String>,
    /// Where the CRI's streaming server (exec, attach, port-forward URLs) listens: HOST or
    /// HOST:PORT (default 127.0.0.1 on a port the kernel picks)
    #[arg(long = "cri-stream-address")]
    cri_stream_address: Option<String>,
    /// Close an exec, attach or port-forward stream that carries nothing in either direction
    /// for this long: a duration such as 4h0m0s or 30m; 0 never closes it (default 4h0m0s)
    #[arg(long = "cri-stream-idle-timeout")]
    cri_stream_idle_timeout: Option<String>,
    /// The CRI's CNI network configs: the first .conf, .conflist or .json in lexical order is
    /// the pods' network (default /etc/cni/net.d)
    #[arg(long = "cni-conf-dir")]
    cni_conf_dir: Option<PathBuf>,
    /// Where the CNI plugins are (repeatable or :-separated; default /opt/cni/bin:/usr/lib/cni)
    #[arg(long = "cni-bin-dir")]
    cni_bin_dir: Vec<String>,
    /// Set the logging level ("debug"|"info"|"warn"|"error"|"fatal") (default "info")
    #[arg(short = 'l', long = "log-level")]
    log_level: Option<String>,
}

/// Holds an exclusive lock on the pid file for as long as the daemon runs, so a second
/// daemon on the same pid file refuses to start.
fn lock_pidfile(path: &PathBuf) -> Result<std::fs::File, String> {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).map_err(|e| format!("creating {}: {e}", p.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .read(true)
        .open(path)
        .map_err(|e| format!("opening {}: {e}", path.display()))?;
    rustix::fs::flock(f.as_fd(), rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(|_| {
        let pid = std::fs::read_to_string(path).unwrap_or_default();
        format!(
            "pid file found, ensure berth is not running or delete {} (held by process {})",
            path.display(),
            pid.trim()
        )
    })?;
    f.set_len(0).map_err(|e| format!("writing {}: {e}", path.display()))?;
    write!(f, "{}", std::process::id()).map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(f)
}

/// Why the daemon stops: written plain, not as a log line, as dockerd writes the error that
/// ends it (users and tests read these words whole). Returns the exit code.
fn fatal(e: &dyn std::fmt::Display) -> i32 {
    eprintln!("berth daemon: {e}");
    1
}

pub fn main(args: &[String]) -> i32 {
    let mut argv = vec!["berth daemon".to_string()];
    argv.extend(args.iter().cloned());
    let a = DaemonArgs::parse_from(argv);
    crate::logging::init();
    let flags = Flags {
        hosts: a.host,
        data_root: a.data_root,
        exec_root: a.exec_root,
        pidfile: a.pidfile,
        config_file: a.config_file,
        debug: a.debug,
        log_level: a.log_level,
        live_restore: a.live_restore,
        cgroup_parent: a.cgroup_parent,
        log_driver: a.log_driver,
        labels: a.label,
        cluster_store: a.cluster_store,
        cluster_advertise: a.cluster_advertise,
        registry_mirrors: a.registry_mirror,
        insecure_registries: a.insecure_registry,
        group: a.group,
        tls: a.tls,
        tlsverify: a.tlsverify,
        tlscacert: a.tlscacert,
        tlscert: a.tlscert,
        tlskey: a.tlskey,
        cri_socket: a.cri_socket,
        cri_stream_address: a.cri_stream_address,
        cri_stream_idle_timeout: a.cri_stream_idle_timeout,
        cdi_spec_dirs: a.cdi_spec_dir,
        cni_conf_dir: a.cni_conf_dir,
        cni_bin_dirs: a.cni_bin_dir,
    };
    let config = match DaemonConfig::load(&flags) {
        Ok(c) => c,
        Err(e) => {
            return fatal(&e);
        }
    };
    crate::logging::set_level(config.log_level);
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    for w in berth_daemon::tls::warnings(&config.hosts, config.api_tls.as_ref()) {
        tracing::warn!("{w}");
    }
    if !config.shim.exists() {
        return fatal(&format!("the shim {} is missing (install berth-shim next to berth)", config.shim.display()));
    }
    let _pid = match lock_pidfile(&config.pidfile) {
        Ok(f) => f,
        Err(e) => {
            return fatal(&e);
        }
    };
    let pidfile = config.pidfile.clone();
    berth_distribution::heap::tune();
    // The async workers answer every request, so nothing on them may block: the services
    // move walks, deletions and freezer polling to the blocking pool (which grows as needed)
    // or sleep with tokio's timers. What is left on the workers is CPU work (parsing, JSON,
    // digesting streamed layers), so one worker per CPU. At least 2, so that one busy worker
    // never holds every request on a 1-CPU host; at most 8, as past that the daemon's own
    // work does not scale (one malloc arena, see heap::tune) and idle workers cost memory.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 8);
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            return fatal(&format!("starting the runtime: {e}"));
        }
    };
    let code = rt.block_on(async move {
        let (daemon, warnings) = match Daemon::open(config).await {
            Ok(d) => d,
            Err(e) => {
                return fatal(&e);
            }
        };
        for w in warnings {
            tracing::warn!("{w}");
        }
        let d2 = daemon.clone();
        // Subscribed before the API says it is ready (see shutdown_signal).
        let shutdown = crate::shutdown_signal();
        let hosts = daemon.config.hosts.join(", ");
        let ready = move || tracing::info!("API listening on {hosts}");
        if let Err(e) = berth_daemon::serve(daemon.clone(), shutdown, ready).await {
            return fatal(&e);
        }
        if !d2.config.live_restore {
            d2.containers.stop_all().await;
        }
        d2.images.snapshots().sync_pending();
        0
    });
    if let Err(e) = std::fs::remove_file(&pidfile)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(file = %pidfile.display(), "removing the pid file: {e}");
    }
    code
}
