//! Starting, stopping, waiting for and removing containers; what happens when one exits.

use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use berth_shim::proto::{ExitStatus, LogOptions, Reply, Request, RootfsMount, ShimConfig, State};
use tokio::io::{AsyncBufReadExt, BufReader};
use tracing::Instrument;

use crate::attach::{self, Pending};
use crate::network::Attachment;
use crate::record::Record;
use crate::state::{Ended, Event, StateError, Status};
use crate::{ContainerError, ContainerService, Entry, Life, Result, shim_client};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

impl WaitCondition {
    pub fn parse(s: &str) -> Result<WaitCondition> {
        match s {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            other => Err(ContainerError::Invalid(format!("invalid condition: \"{other}\""))),
        }
    }
}

/// Docker's words for a start the container's status does not allow.
fn start_refused(id: &str, err: StateError) -> ContainerError {
    ContainerError::Conflict(match err.from {
        Status::Paused => "cannot start a paused container, try unpause instead".into(),
        Status::Removing | Status::Dead => "container is marked for removal and cannot be started".into(),
        _ => format!("container {id} is already running"),
    })
}

/// The state's view of how the shim says the process ended.
pub(crate) fn ended(st: &ExitStatus) -> Ended {
    Ended { exit_code: i64::from(st.exit_code), finished_at: st.finished_at.clone(), oom_killed: st.oom_killed }
}

/// Signal numbers by name (`SIGTERM`, `TERM`, `15`).
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return Err(ContainerError::Invalid(format!("Invalid signal: {s}")));
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let n = match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "TRAP" => 5,
        "ABRT" | "IOT" => 6,
        "BUS" => 7,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        "STKFLT" => 16,
        "CHLD" => 17,
        "CONT" => 18,
        "STOP" => 19,
        "TSTP" => 20,
        "TTIN" => 21,
        "TTOU" => 22,
        "URG" => 23,
        "XCPU" => 24,
        "XFSZ" => 25,
        "VTALRM" => 26,
        "PROF" => 27,
        "WINCH" => 28,
        "IO" | "POLL" => 29,
        "PWR" => 30,
        "SYS" => 31,
        _ => return Err(ContainerError::Invalid(format!("Invalid signal: {s}"))),
    };
    Ok(n)
}

/// Creates (or truncates) a file only root may read: a container's spec and the shim's
/// configuration carry its environment, secrets among them.
fn private_file(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    // An existing file keeps its mode on open: one an older berth wrote is fixed here.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(f)
}

fn write_private(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    private_file(path)?.write_all(data)
}

/// How the shim writes the log. New containers keep their options checked and merged at
/// create; one made by an older berth still gets the daemon's options merged here.
fn log_options(rec: &Record, cfg: &crate::Config) -> Result<LogOptions> {
    let (lc, r) = crate::log_config::resolve(&rec.host_config.log_config, &cfg.log_driver, &cfg.log_opts)
        .map_err(ContainerError::Start)?;
    let remote = if crate::log_config::is_remote(&lc.kind) {
        let info = crate::log_info::build(rec, &lc.config)
            .map_err(|e| ContainerError::Start(format!("failed to initialize logging driver: {e}")))?;
        Some(berth_shim::sinks::RemoteLog { options: lc.config.clone(), info })
    } else {
        None
    };
    Ok(LogOptions {
        no_file: !crate::log_config::keeps_file(&lc.kind, &lc.config),
        driver: lc.kind,
        path: rec.log_path.clone().into(),
        beneath: (!rec.log_root.is_empty()).then(|| rec.log_root.clone().into()),
        max_size: r.max_size,
        max_files: r.max_files,
        compress: r.compress,
        remote,
    })
}

/// Places `fd` at descriptor number `target` in a child about to exec.
#[allow(unsafe_code)]
fn map_fds(cmd: &mut tokio::process::Command, fds: Vec<(i32, i32)>) {
    // SAFETY: the closure runs in the forked child before exec and only calls fcntl and dup2,
    // which are async-signal-safe. Every descriptor is first copied above 100 so that mapping
    // one onto 3 or 4 cannot clobber another that happens to sit there.
    unsafe {
        cmd.pre_exec(move || {
            let mut high = Vec::new();
            for (fd, target) in &fds {
                let h = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 100);
                if h < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                high.push((h, *target));
            }
            for (h, target) in high {
                if libc::dup2(h, target) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

impl ContainerService {
    /// `docker start`. Returns `false` if the container was already running.
    #[tracing::instrument(name = "start", skip_all, fields(container = tracing::field::Empty))]
    pub async fn start(self: &Arc<Self>, id: &str) -> Result<bool> {
        let e = self.get(id)?;
        crate::name_in_span(&e);
        let _op = e.op.lock().await;
        let rec = e.record();
        if rec.state.status() == Status::Running {
            return Ok(false);
        }
        rec.state.check(Event::Start).map_err(|err| start_refused(&rec.id, err))?;
        e.update(|r| r.stopped_by_user = false);
        self.start_locked(&e).await?;
        Ok(true)
    }

    /// A volume subpath (`volume-subpath=`) was checked at create, but any container that
    /// shares the volume can since have replaced it with a symlink to the host's `/`: it is
    /// bound as a path inside the volume, resolved there by the runtime at this start.
    fn confine_volume_subpaths(&self, rec: &Record, spec: &mut berth_runtime::spec::Spec) {
        for m in rec.mounts.iter().filter(|m| m.kind == "volume" && !m.name.is_empty()) {
            let Ok(base) = std::fs::canonicalize(self.volumes.mountpoint(&m.name)) else { continue };
            let Some(rel) =
                std::path::Path::new(&m.source).strip_prefix(&base).ok().filter(|r| !r.as_os_str().is_empty())
            else {
                continue;
            };
            if let Some(s) = spec.mounts.iter_mut().find(|s| s.destination == m.destination && s.source == m.source) {
                s.source = base.display().to_string();
                s.beneath = Some(rel.display().to_string());
            }
        }
    }

    pub(crate) async fn start_locked(self: &Arc<Self>, e: &Arc<Entry>) -> Result<()> {
        // Under the operation lock, nothing else starts it: the check holds until the start.
        let current = e.record();
        current.state.check(Event::Start).map_err(|err| start_refused(&current.id, err))?;
        // `--network container:X` takes X's hostname and domain name, as Docker does.
        if let Some(other) = e.record().host_config.network_mode.strip_prefix("container:")
            && let Ok(o) = self.get(other)
        {
            let o = o.record();
            e.update(|r| {
                r.config.hostname = o.config.hostname.clone();
                r.config.domainname = o.config.domainname.clone();
            });
        }
        let rec = e.record();
        let svc = self.clone();
        let rec2 = rec.clone();
        let connected = tokio::task::spawn_blocking(move || svc.networks.connect(&rec2))
            .await
            .map_err(|e| ContainerError::Internal(format!("network setup panicked: {e}")))
            .and_then(|r| r);
        let started = match connected {
            Ok(att) => match self.spawn_shim(e, &rec, &att).await {
                Ok(()) => Ok(()),
                Err(err) => {
                    let svc = self.clone();
                    let rec2 = rec.clone();
                    let _ = tokio::task::spawn_blocking(move || svc.networks.disconnect(&rec2)).await;
                    for err in crate::offload::remove_trees(vec![self.bundle_dir(&rec.id)]).await {
                        tracing::warn!(container = %rec.id, "after a failed start: {err}");
                    }
                    Err(err)
                }
            },
            Err(err) => Err(err),
        };
        match started {
            Ok(()) => Ok(()),
            Err(err) => {
                let msg = err.to_string();
                let exit_code = match &err {
                    ContainerError::StartFailed(f) => f.exit_code,
                    _ => None,
                };
                e.update(|r| {
                    r.state.error = msg.clone();
                    if let Some(code) = exit_code {
                        r.state.exit_code = code;
                    }
                });
                self.persist_or_log(e);
                self.fail_pending(e);
                if rec.host_config.auto_remove {
                    // As Docker does: a --rm container that cannot start is removed, which
                    // is what `docker run --rm` waits for before it reports the error.
                    let svc = self.clone();
                    let id = rec.id.clone();
                    tokio::spawn(async move {
                        let _ = svc.remove(&id, true, true).await;
                    });
                }
                Err(err)
            }
        }
    }

    fn fail_pending(&self, e: &Entry) {
        let pending: Vec<Pending> = std::mem::take(&mut *e.pending_attach.lock().unwrap_or_else(|p| p.into_inner()));
        for p in pending {
            let _ = p.out.try_send(attach::Output::Exit(-1));
        }
    }

    async fn spawn_shim(self: &Arc<Self>, e: &Arc<Entry>, rec: &Record, att: &Attachment) -> Result<()> {
        let gateway = self.cfg.host_gateway_ip.clone().or_else(|| self.networks.host_gateway());
        crate::etc_files::write(rec, att, &self.cfg, gateway.as_deref())?;
        for m in rec.mounts.iter().filter(|m| m.kind == "volume") {
            self.volumes.mount(&m.name).map_err(crate::mounts::vol_err)?;
        }
        let bundle = self.bundle_dir(&rec.id);
        let rootfs = bundle.join("rootfs");
        std::fs::create_dir_all(&rootfs).map_err(|e| ContainerError::io("creating the bundle", e))?;
        let pid_of = |name: &str| -> Result<i32> {
            let other = self.get(name)?.record();
            if !other.state.is_running() {
                return Err(ContainerError::Conflict(format!(
                    "cannot join namespaces of a non running container: container {} is not running",
                    other.id
                )));
            }
            Ok(other.state.pid as i32)
        };
        let mut spec = crate::spec::build(&self.cfg, rec, att, &rootfs, &self.cfg.shim, &pid_of)?;
        self.confine_volume_subpaths(rec, &mut spec);
        for e in &att.env {
            let key = e.split_once('=').map(|(k, _)| k).unwrap_or(e);
            if !spec.process.env.iter().any(|x| x.split_once('=').map(|(k, _)| k) == Some(key)) {
                spec.process.env.push(e.clone());
            }
        }
        write_private(&bundle.join("config.json"), &serde_json::to_vec_pretty(&spec).unwrap_or_default())
            .map_err(|e| ContainerError::io("writing config.json", e))?;
        let mount = self.images.snapshots().mounts(&rec.id, &rec.layers)?;
        let socket = self.socket_path(&rec.id);
        let shim_cfg = ShimConfig {
            id: rec.id.clone(),
            bundle: bundle.clone(),
            socket: socket.clone(),
            rootfs: RootfsMount { lower: mount.lower, upper: mount.upper, work: mount.work },
            log: log_options(rec, &self.cfg)?,
            open_stdin: rec.config.open_stdin,
            stdin_once: rec.config.stdin_once,
            tty: rec.config.tty,
            user: rec.config.user.clone(),
            group_add: rec.host_config.group_add.clone().unwrap_or_default(),
            exit_file: self.container_dir(&rec.id).join("exit.json"),
        };
        let shim_json = bundle.join("shim.json");
        write_private(&shim_json, &serde_json::to_vec(&shim_cfg).unwrap_or_default())
            .map_err(|e| ContainerError::io("writing shim.json", e))?;
        let _ = std::fs::remove_file(&shim_cfg.exit_file);

        let (report_r, report_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|e| ContainerError::io("pipe", e.into()))?;
        let pending: Vec<Pending> = std::mem::take(&mut *e.pending_attach.lock().unwrap_or_else(|p| p.into_inner()));
        let initial = if pending.is_empty() {
            None
        } else {
            let (a, b) = std::os::unix::net::UnixStream::pair().map_err(|e| ContainerError::io("socketpair", e))?;
            Some((a, b))
        };
        let log = private_file(&bundle.join("shim.log")).map_err(|e| ContainerError::io("creating shim.log", e))?;
        let mut cmd = tokio::process::Command::new(&self.cfg.shim);
        cmd.arg(&shim_json).stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).stderr(log);
        let mut fds = vec![(report_w.as_raw_fd(), 3)];
        if let Some((_, shim_end)) = &initial {
            fds.push((shim_end.as_raw_fd(), 4));
        }
        map_fds(&mut cmd, fds);
        let mut child =
            cmd.spawn().map_err(|e| ContainerError::io(format!("starting {}", self.cfg.shim.display()), e))?;
        drop(report_w);
        let daemon_end = initial.map(|(d, _shim_end)| d);
        tokio::spawn(async move {
            let _ = child.wait().await;
        });

        let report = tokio::net::unix::pipe::Receiver::from_owned_fd(report_r)
            .map_err(|e| ContainerError::io("report pipe", e))?;
        let mut lines = BufReader::new(report).lines();
        let first = tokio::time::timeout(Duration::from_secs(120), lines.next_line())
            .await
            .map_err(|_| ContainerError::Start("the shim did not report within 120s".into()))?
            .map_err(|e| ContainerError::io("reading the shim's report", e))?;
        let reply: Reply = match first {
            Some(l) => {
                serde_json::from_str(&l).map_err(|e| ContainerError::Internal(format!("bad shim report: {e}")))?
            }
            None => {
                let log = std::fs::read_to_string(bundle.join("shim.log")).unwrap_or_default();
                return Err(ContainerError::Start(format!(
                    "the shim exited without starting the container: {}",
                    log.trim()
                )));
            }
        };
        if let Some(failure) = reply.start_failure() {
            return Err(ContainerError::StartFailed(crate::start_error::translate(&failure)));
        }
        let pid = reply.pid.unwrap_or(0);

        if let Some(stream) = daemon_end {
            stream.set_nonblocking(true).map_err(|e| ContainerError::io("socket", e))?;
            let stream = tokio::net::UnixStream::from_std(stream).map_err(|e| ContainerError::io("socket", e))?;
            let (r, w) = stream.into_split();
            let conn = shim_client::FramedConn { reader: BufReader::new(r), writer: w };
            let mut input = None;
            let mut outs = Vec::new();
            for p in pending {
                if p.opts.stdin && input.is_none() {
                    input = p.input;
                }
                outs.push((p.out, p.opts.stdout, p.opts.stderr));
            }
            attach::pump(conn, outs, input);
        }

        let now = berth_api::time::rfc3339_now();
        e.update(|r| {
            r.state.start(i64::from(pid), now)?;
            r.started_once = true;
            r.network = att.settings.clone();
            if r.config.healthcheck.as_ref().and_then(crate::health::probe_command).is_some() {
                r.state.health =
                    Some(berth_api::models::Health { status: "starting".into(), failing_streak: 0, log: Vec::new() });
            }
            Ok::<(), StateError>(())
        })
        // Checked at the top of `start_locked`, under the operation lock.
        .map_err(|err| ContainerError::Internal(format!("recording the start of {}: {err}", rec.id)))?;
        self.persist(e)?;
        e.life.send_modify(|l| l.running = true);
        self.volume_mount_events(&e.record(), true);
        self.emit(&e.record(), "start", &[]);
        self.start_health(e);

        // The exit comes on the same pipe.
        let svc = self.clone();
        let entry = e.clone();
        tokio::spawn(async move {
            let status = match lines.next_line().await {
                Ok(Some(l)) => serde_json::from_str::<ExitStatus>(&l).ok(),
                _ => None,
            };
            let status = match status {
                Some(s) => s,
                // The shim went away without a word: ask again, or read its exit file.
                None => svc.exit_status_fallback(&entry.record()).await,
            };
            svc.handle_exit(&entry, status).await;
        });
        Ok(())
    }

    /// How a container ended when its shim's report pipe is gone: the shim's socket if it
    /// still serves, its exit file, or "killed" (137) when neither is there.
    pub(crate) async fn exit_status_fallback(&self, rec: &Record) -> ExitStatus {
        let socket = self.socket_path(&rec.id);
        if let Ok(st) = shim_client::call::<ExitStatus>(&socket, &Request::Wait).await {
            return st;
        }
        let file = self.container_dir(&rec.id).join("exit.json");
        if let Ok(b) = std::fs::read(&file)
            && let Ok(st) = serde_json::from_slice::<ExitStatus>(&b)
        {
            return st;
        }
        ExitStatus { exit_code: 137, finished_at: berth_api::time::rfc3339_now(), oom_killed: false }
    }

    /// Records an exit (if the container was up: the event is ignored otherwise) and does
    /// what follows it.
    #[tracing::instrument(name = "exit", skip_all, fields(container = %e.id, exit_code = st.exit_code))]
    pub(crate) async fn handle_exit(self: &Arc<Self>, e: &Arc<Entry>, st: ExitStatus) {
        if e.update(|r| r.state.exit(&ended(&st))).is_err() {
            return;
        }
        self.after_exit(e, st).await;
    }

    /// What follows an exit already recorded in the state: network teardown, `--rm`,
    /// restart policy.
    pub(crate) async fn after_exit(self: &Arc<Self>, e: &Arc<Entry>, st: ExitStatus) {
        let rec = e.record();
        self.persist_or_log(e);
        let svc = self.clone();
        let rec2 = rec.clone();
        let _ = tokio::task::spawn_blocking(move || svc.networks.disconnect(&rec2)).await;
        e.update(|r| r.network = crate::network::stopped_view(&r.network));
        self.persist_or_log(e);
        // What the shim said (a log driver's dropped messages, say) outlives its bundle in
        // the daemon's log.
        let said = shim_said(&self.bundle_dir(&rec.id).join("shim.log"));
        for line in said.lines().filter(|l| !l.trim().is_empty()) {
            tracing::warn!(container = %rec.id, "the shim said: {line}");
        }
        for err in crate::offload::remove_trees(vec![self.bundle_dir(&rec.id)]).await {
            tracing::warn!(container = %rec.id, "after the exit: {err}");
        }
        self.volume_mount_events(&rec, false);
        if st.oom_killed {
            self.emit(&rec, "oom", &[]);
        }
        self.emit(&rec, "die", &[("exitCode", st.exit_code.to_string())]);
        e.life.send_modify(|l: &mut Life| {
            l.running = false;
            l.exits += 1;
            l.exit_code = st.exit_code as i64;
        });
        if rec.host_config.auto_remove {
            let svc = self.clone();
            let id = rec.id.clone();
            tokio::spawn(async move {
                let _ = svc.remove(&id, false, true).await;
            });
            return;
        }
        self.maybe_restart(e, &rec);
    }

    /// Applies the restart policy after an exit that the user did not cause.
    fn maybe_restart(self: &Arc<Self>, e: &Arc<Entry>, rec: &Record) {
        if self.shutting_down.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let policy = rec.host_config.restart_policy.clone();
        let code = rec.state.exit_code;
        let restart = match policy.name.as_str() {
            "always" => !rec.stopped_by_user,
            "unless-stopped" => !rec.stopped_by_user,
            "on-failure" => {
                !rec.stopped_by_user
                    && code != 0
                    && (policy.maximum_retry_count == 0 || rec.restart_count < policy.maximum_retry_count)
            }
            _ => false,
        };
        if !restart {
            return;
        }
        // Docker's back-off: 100ms doubling per consecutive quick failure, capped at a minute;
        // a container that ran for 10s or more starts the sequence over.
        let ran = berth_api::time::parse_rfc3339(&rec.state.finished_at).unwrap_or(0)
            - berth_api::time::parse_rfc3339(&rec.state.started_at).unwrap_or(0);
        let quick = ran < 10_000_000_000;
        let streak = if quick { rec.restart_count.min(10) } else { 0 };
        let delay = Duration::from_millis((100u64 << streak).min(60_000));
        if e.update(|r| r.state.schedule_restart()).is_err() {
            return;
        }
        self.persist_or_log(e);
        let svc = self.clone();
        let entry = e.clone();
        let span = tracing::info_span!("restart-policy", container = %e.id);
        let restart = async move {
            tokio::time::sleep(delay).await;
            let _op = entry.op.lock().await;
            let r = entry.record();
            if r.stopped_by_user || !r.state.is_restarting() {
                return;
            }
            // The status stays `restarting` until the start settles either way.
            entry.update(|r| r.restart_count += 1);
            if let Err(err) = svc.start_locked(&entry).await {
                tracing::warn!("restarting by the restart policy: {err}");
                if entry.update(|r| r.state.cancel_restart()).is_ok() {
                    svc.persist_or_log(&entry);
                }
            }
        };
        tokio::spawn(restart.instrument(span));
    }

    /// Makes a running container's shim open its log file again (it was renamed away).
    pub async fn reopen_log(&self, id: &str) -> Result<()> {
        let rec = self.get(id)?.record();
        if !rec.state.is_running() {
            return Err(ContainerError::Conflict(format!("container {} is not running", rec.id)));
        }
        let reply: Reply = shim_client::call(&self.socket_path(&rec.id), &Request::ReopenLog).await?;
        match reply.error {
            Some(e) => Err(ContainerError::Internal(e)),
            None => Ok(()),
        }
    }

    pub(crate) async fn signal(&self, rec: &Record, signal: i32, all: bool) -> Result<()> {
        let reply: Reply = shim_client::call(&self.socket_path(&rec.id), &Request::Kill { signal, all }).await?;
        match reply.error {
            Some(e) => Err(ContainerError::Internal(e)),
            None => Ok(()),
        }
    }

    /// Waits until the container's exit counter passes `after`, up to `timeout`.
    pub(crate) async fn wait_exit(e: &Entry, after: u64, timeout: Option<Duration>) -> bool {
        let mut rx = e.life.subscribe();
        let fut = async {
            loop {
                {
                    let l = rx.borrow_and_update();
                    if l.exits > after || !l.running {
                        return true;
                    }
                }
                if rx.changed().await.is_err() {
                    return true;
                }
            }
        };
        match timeout {
            Some(t) => tokio::time::timeout(t, fut).await.unwrap_or(false),
            None => fut.await,
        }
    }

    /// `docker kill`.
    #[tracing::instrument(name = "kill", skip_all, fields(container = tracing::field::Empty))]
    pub async fn kill(self: &Arc<Self>, id: &str, signal: Option<&str>) -> Result<()> {
        let e = self.get(id)?;
        crate::name_in_span(&e);
        let rec = e.record();
        let sig = parse_signal(signal.filter(|s| !s.is_empty()).unwrap_or("SIGKILL"))?;
        if !rec.state.is_running() {
            return Err(ContainerError::Conflict(format!(
                "Cannot kill container: {}: Container {} is not running",
                id, rec.id
            )));
        }
        if sig == 9 {
            e.update(|r| r.stopped_by_user = true);
            self.persist_or_log(&e);
        }
        if rec.state.is_paused() && sig == 9 {
            let _ = self.set_paused(&e, false).await;
        }
        self.emit(&rec, "kill", &[("signal", sig.to_string())]);
        let exits = e.life.borrow().exits;
        self.signal(&rec, sig, sig == 9).await?;
        if sig == 9 {
            Self::wait_exit(&e, exits, Some(Duration::from_secs(30))).await;
        }
        Ok(())
    }

    /// `docker restart`.
    #[tracing::instrument(name = "restart", skip_all, fields(container = tracing::field::Empty))]
    pub async fn restart(self: &Arc<Self>, id: &str, timeout: Option<i64>, signal: Option<String>) -> Result<()> {
        let e = self.get(id)?;
        crate::name_in_span(&e);
        let _op = e.op.lock().await;
        self.stop_locked(&e, timeout, signal).await?;
        e.update(|r| r.stopped_by_user = false);
        self.start_locked(&e).await?;
        self.emit(&e.record(), "restart", &[]);
        Ok(())
    }

    /// `POST /containers/{id}/wait`.
    pub async fn wait(&self, id: &str, cond: WaitCondition) -> Result<i64> {
        let e = self.get(id)?;
        let mut rx = e.life.subscribe();
        let start = rx.borrow().clone();
        let rec = e.record();
        loop {
            {
                let l = rx.borrow_and_update();
                let done = match cond {
                    WaitCondition::NotRunning => !l.running && (!rec.state.is_restarting() || l.exits > start.exits),
                    WaitCondition::NextExit => l.exits > start.exits,
                    WaitCondition::Removed => l.removed,
                };
                if done {
                    return Ok(l.exit_code);
                }
            }
            if rx.changed().await.is_err() {
                let l = rx.borrow();
                return Ok(l.exit_code);
            }
        }
    }

    /// `docker rm`.
    #[tracing::instrument(name = "remove", skip_all, fields(container = tracing::field::Empty))]
    pub async fn remove(self: &Arc<Self>, id: &str, force: bool, volumes: bool) -> Result<()> {
        let e = self.get(id)?;
        crate::name_in_span(&e);
        let _op = e.op.lock().await;
        let rec = e.record();
        if rec.state.is_running() || rec.state.is_restarting() {
            if !force {
                return Err(ContainerError::Conflict(format!(
                    "You cannot remove a running container {}. Stop the container before attempting removal or force remove",
                    rec.id
                )));
            }
            if rec.state.is_paused() {
                let _ = self.set_paused(&e, false).await;
            }
            e.update(|r| r.stopped_by_user = true);
            if rec.state.is_running() {
                let exits = e.life.borrow().exits;
                self.emit(&rec, "kill", &[("signal", "9".into())]);
                let _ = self.signal(&rec, 9, true).await;
                if !Self::wait_exit(&e, exits, Some(Duration::from_secs(30))).await {
                    return Err(ContainerError::Internal(format!(
                        "could not kill running container {}, cannot remove",
                        rec.id
                    )));
                }
            }
        }
        // Under the operation lock and after the exit: the container is down by now.
        e.update(|r| r.state.remove()).map_err(|err| ContainerError::Conflict(format!("{}: {err}", rec.id)))?;
        let rec = e.record();
        // The writable layer may hold a large tree: it is deleted on the blocking pool, and
        // other requests (this container's listing included) go on meanwhile.
        let dirs = vec![self.container_dir(&rec.id), self.bundle_dir(&rec.id)];
        let mut errors = crate::offload::remove_layer_and_trees(self.images.clone(), rec.id.clone(), dirs).await;
        let _ = std::fs::remove_file(self.socket_path(&rec.id));
        let svc = self.clone();
        let rec2 = rec.clone();
        let _ = tokio::task::spawn_blocking(move || svc.networks.removed(&rec2)).await;
        for m in rec.mounts.iter().filter(|m| m.kind == "volume") {
            self.volumes.release(&m.name, &rec.id);
        }
        for v in &rec.anonymous_volumes {
            // Another container may still use it (`--volumes-from`): then it stays. Its data
            // may be large: deleted on the blocking pool.
            let store = self.volumes.clone();
            let name = v.clone();
            let removed = volumes
                && match crate::offload::blocking(move || store.remove(&name, true)).await.unwrap_or_else(|e| {
                    Err(berth_volume::VolumeError::Io {
                        context: format!("removing volume {v}"),
                        source: std::io::Error::other(e.to_string()),
                    })
                }) {
                    Ok(()) => {
                        self.volume_event(v, "destroy", &[]);
                        true
                    }
                    Err(berth_volume::VolumeError::Conflict(_)) => false,
                    Err(err) => {
                        errors.push(err.to_string());
                        false
                    }
                };
            // A volume that stays is the user's now, not a leftover of this container.
            if !removed && let Err(err) = self.volumes.disown(v) {
                errors.push(err.to_string());
            }
        }
        let hooks = self.removal_hooks.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for hook in hooks {
            if let Err(err) = hook(rec.clone()).await {
                errors.push(err);
                return Err(ContainerError::Internal(format!(
                    "container {} could not be removed: {}",
                    rec.id,
                    errors.join("; ")
                )));
            }
        }
        self.forget(&rec.id, &rec.name)?;
        self.execs.lock().unwrap_or_else(|p| p.into_inner()).retain(|_, x| x.container_id != rec.id);
        e.life.send_modify(|l| l.removed = true);
        self.emit(&rec, "destroy", &[]);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ContainerError::Internal(format!("container {} removed with errors: {}", rec.id, errors.join("; "))))
        }
    }

    /// Asks a running container's shim for its state (used at recovery).
    pub(crate) async fn shim_state(&self, id: &str) -> Option<State> {
        shim_client::call::<State>(&self.socket_path(id), &Request::State).await.ok()
    }

    /// Stops every running container (daemon shutdown when live restore is off).
    /// Stops every running container, all at once, each with its own stop timeout
    /// (live-restore off). `shutdown-timeout` bounds the whole: whatever still runs then is
    /// killed, so the daemon's stop never hangs.
    pub async fn stop_all(self: &Arc<Self>) {
        self.shutting_down.store(true, std::sync::atomic::Ordering::SeqCst);
        let mut tasks = Vec::new();
        let running: Vec<String> =
            self.all().into_iter().filter(|e| e.record().state.is_running()).map(|e| e.id.clone()).collect();
        for id in &running {
            let svc = self.clone();
            let id = id.clone();
            tasks.push(tokio::spawn(async move {
                let _ = svc.stop(&id, None, None).await;
            }));
        }
        let all = async {
            for t in tasks {
                let _ = t.await;
            }
        };
        let limit = Duration::from_secs(self.cfg.shutdown_timeout.max(0) as u64);
        if tokio::time::timeout(limit, all).await.is_err() {
            for id in running {
                if let Ok(e) = self.get(&id) {
                    let rec = e.record();
                    if rec.state.is_running() {
                        let _ = self.signal(&rec, 9, true).await;
                    }
                }
            }
        }
    }
}

/// The end of what a shim wrote to its own log (at most [`SHIM_SAID_MAX`]): its messages are
/// few, but a daemon never reads a file of unknown size whole on a container's exit path.
fn shim_said(path: &std::path::Path) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else { return String::new() };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if len > SHIM_SAID_MAX && f.seek(SeekFrom::Start(len - SHIM_SAID_MAX)).is_err() {
        return String::new();
    }
    let mut buf = Vec::new();
    let _ = f.take(SHIM_SAID_MAX).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// The most of a shim's own log copied into the daemon's.
const SHIM_SAID_MAX: u64 = 64 << 10;
