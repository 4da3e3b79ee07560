//! `docker exec`: more processes in a running container, run by its shim.

use std::sync::{Arc, Mutex};

use berth_api::models::{ExecCreateRequest, ExecInspect, ProcessConfig};
use berth_runtime::spec::{ConsoleSize, Process, User};
use berth_shim::proto::{Reply, Request};
use tokio::sync::mpsc;

use crate::attach::{self, Input, Output, Session};
use crate::{ContainerError, ContainerService, ExecEntry, Result, shim_client, spec};

#[derive(Debug, Clone, Default)]
pub struct ExecState {
    pub started: bool,
    pub running: bool,
    pub exit_code: Option<i64>,
    pub pid: i64,
}

impl ContainerService {
    /// `POST /containers/{id}/exec`: records what to run; nothing starts yet.
    pub fn exec_create(&self, id: &str, req: ExecCreateRequest) -> Result<String> {
        let e = self.get(id)?;
        let rec = e.record();
        if !rec.state.is_running() {
            return Err(ContainerError::Conflict(format!("container {} is not running", rec.id)));
        }
        if rec.state.is_paused() {
            return Err(ContainerError::Conflict(format!(
                "Container {} is paused, unpause the container before exec",
                rec.id
            )));
        }
        if req.cmd.is_empty() {
            return Err(ContainerError::Invalid("No exec command specified".into()));
        }
        let exec_id = berth_api::ids::random_id();
        let entry = Arc::new(ExecEntry {
            id: exec_id.clone(),
            container_id: rec.id.clone(),
            config: req.clone(),
            state: Mutex::new(ExecState::default()),
            pidfd: Mutex::new(None),
        });
        self.execs.lock().unwrap_or_else(|p| p.into_inner()).insert(exec_id.clone(), entry);
        self.emit(&rec, &format!("exec_create: {}", req.cmd.join(" ")), &[("execID", exec_id.clone())]);
        Ok(exec_id)
    }

    /// Drops a finished exec's record (the CRI's ExecSync keeps none; Docker's are kept).
    pub fn exec_forget(&self, exec_id: &str) {
        self.execs.lock().unwrap_or_else(|p| p.into_inner()).remove(exec_id);
    }

    pub fn exec_get(&self, exec_id: &str) -> Result<Arc<ExecEntry>> {
        self.execs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(exec_id)
            .cloned()
            .ok_or_else(|| ContainerError::NotFoundExec(exec_id.to_string()))
    }

    /// `POST /exec/{id}/start`. Without `detach` returns the session to stream.
    /// `start_tty` is the `Tty` of the start request: Docker frames the output unless it is
    /// set, whatever the exec was created with.
    pub async fn exec_start(
        self: &Arc<Self>,
        exec_id: &str,
        detach: bool,
        start_tty: bool,
        console: Option<[u32; 2]>,
    ) -> Result<Option<Session>> {
        let ex = self.exec_get(exec_id)?;
        {
            let mut st = ex.state.lock().unwrap_or_else(|p| p.into_inner());
            if st.running {
                return Err(ContainerError::Conflict(format!("Error: Exec command {exec_id} is already running")));
            }
            if st.started {
                return Err(ContainerError::Conflict(format!("Error: Exec command {exec_id} has already run")));
            }
            st.started = true;
        }
        let e = self.get(&ex.container_id)?;
        let rec = e.record();
        if !rec.state.is_running() {
            return Err(ContainerError::Conflict(format!("container {} is not running", rec.id)));
        }
        let c = &ex.config;
        let h = &rec.host_config;
        let mut env = spec::environment(&rec, c.tty);
        for v in &c.env {
            let key = v.split_once('=').map(|(k, _)| k).unwrap_or(v);
            if let Some(slot) = env.iter_mut().find(|x| x.split_once('=').map(|(k, _)| k) == Some(key)) {
                *slot = v.clone();
            } else {
                env.push(v.clone());
            }
        }
        if c.tty && !env.iter().any(|v| v.starts_with("TERM=")) {
            env.push("TERM=xterm".into());
        }
        let caps = spec::capabilities(
            h.cap_add.as_deref().unwrap_or(&[]),
            h.cap_drop.as_deref().unwrap_or(&[]),
            c.privileged || h.privileged,
        );
        let size = console.or(c.console_size).filter(|s| s[0] > 0 && s[1] > 0);
        let process = Process {
            terminal: c.tty,
            console_size: size.map(|s| ConsoleSize { height: s[0], width: s[1] }),
            user: User::default(),
            args: c.cmd.clone(),
            env,
            cwd: if !c.working_dir.is_empty() {
                c.working_dir.clone()
            } else if rec.config.working_dir.is_empty() {
                "/".into()
            } else {
                rec.config.working_dir.clone()
            },
            capabilities: Some(caps),
            rlimits: Vec::new(),
            no_new_privileges: spec::no_new_privileges(h),
            oom_score_adj: Some(h.oom_score_adj as i32),
        };
        let user = if c.user.is_empty() { rec.config.user.clone() } else { c.user.clone() };
        let req = Request::Exec {
            id: exec_id.to_string(),
            process: Box::new(process),
            user,
            group_add: h.group_add.clone().unwrap_or_default(),
            stdin: c.attach_stdin && !detach,
        };
        let (reply, conn) = shim_client::open(&self.socket_path(&rec.id), &req, true).await?;
        let reply: Reply = reply.unwrap_or_else(|| Reply::error(Some("no reply from shim".into())));
        if let Some(failure) = reply.start_failure() {
            let failed = crate::start_error::translate_exec(&failure);
            ex.state.lock().unwrap_or_else(|p| p.into_inner()).exit_code = failed.exit_code;
            return Err(ContainerError::StartFailed(failed));
        }
        {
            let mut st = ex.state.lock().unwrap_or_else(|p| p.into_inner());
            st.running = true;
            st.pid = reply.pid.unwrap_or(0) as i64;
        }
        // Taken at once, while the shim (its parent) has not reaped it: a process that has
        // already ended leaves nothing to kill.
        if let Some(pid) = reply.pid.and_then(rustix::process::Pid::from_raw)
            && let Ok(fd) = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
        {
            *ex.pidfd.lock().unwrap_or_else(|p| p.into_inner()) = Some(fd);
        }
        self.emit(&rec, &format!("exec_start: {}", c.cmd.join(" ")), &[("execID", exec_id.to_string())]);

        // Every exec's output passes through here, so its exit code is recorded whoever
        // (if anyone) is reading.
        let (raw_tx, mut raw_rx) = mpsc::channel::<Output>(64);
        let (in_tx, in_rx) = if c.attach_stdin && !detach {
            let (t, r) = mpsc::channel::<Input>(64);
            (Some(t), Some(r))
        } else {
            (None, None)
        };
        attach::pump(conn, vec![(raw_tx, true, true)], in_rx);
        let (out_tx, out_rx) = mpsc::channel::<Output>(64);
        let svc = self.clone();
        let ex2 = ex.clone();
        let want_out = !detach;
        let (so, se) = (c.attach_stdout, c.attach_stderr);
        tokio::spawn(async move {
            let mut code = None;
            while let Some(msg) = raw_rx.recv().await {
                if let Output::Exit(c) = msg {
                    code = Some(c as i64);
                }
                let wanted = match &msg {
                    Output::Stdout(_) => so,
                    Output::Stderr(_) => se,
                    Output::Exit(_) => true,
                };
                if want_out && wanted {
                    let _ = out_tx.send(msg).await;
                }
            }
            {
                let mut st = ex2.state.lock().unwrap_or_else(|p| p.into_inner());
                st.running = false;
                st.exit_code = Some(code.unwrap_or(-1));
            }
            ex2.pidfd.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Ok(e) = svc.get(&ex2.container_id) {
                svc.emit(
                    &e.record(),
                    "exec_die",
                    &[("execID", ex2.id.clone()), ("exitCode", code.unwrap_or(-1).to_string())],
                );
            }
        });
        if detach {
            return Ok(None);
        }
        Ok(Some(Session { tty: start_tty, output: out_rx, input: in_tx }))
    }

    pub fn exec_inspect(&self, exec_id: &str) -> Result<ExecInspect> {
        let ex = self.exec_get(exec_id)?;
        let st = ex.state.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let c = &ex.config;
        Ok(ExecInspect {
            can_remove: false,
            detach_keys: c.detach_keys.clone(),
            id: ex.id.clone(),
            running: st.running,
            exit_code: if st.running { None } else { st.exit_code },
            process_config: ProcessConfig {
                privileged: c.privileged,
                user: c.user.clone(),
                tty: c.tty,
                entrypoint: c.cmd.first().cloned().unwrap_or_default(),
                arguments: c.cmd.iter().skip(1).cloned().collect(),
            },
            open_stdin: c.attach_stdin,
            open_stderr: c.attach_stderr,
            open_stdout: c.attach_stdout,
            container_id: ex.container_id.clone(),
            pid: st.pid,
        })
    }

    pub async fn exec_resize(&self, exec_id: &str, rows: u16, cols: u16) -> Result<()> {
        let ex = self.exec_get(exec_id)?;
        let reply: Reply = shim_client::call(
            &self.socket_path(&ex.container_id),
            &Request::Resize { exec: Some(ex.id.clone()), rows, cols },
        )
        .await?;
        match reply.error {
            Some(e) => Err(ContainerError::Conflict(e)),
            None => Ok(()),
        }
    }
}
