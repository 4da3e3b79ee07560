//! ExecSync: a command in a running container, its output collected, with a deadline.

use std::time::Duration;

use berth_api::models::ExecCreateRequest;
use berth_container::attach::Output;
use tonic::Status;

use crate::Cri;
use crate::error::{invalid, status};
use crate::proto::ExecSyncResponse;

impl Cri {
    /// Runs `cmd` in container `id` and waits for it. With `timeout` > 0 seconds, a command
    /// still running then is killed and the call fails with `DeadlineExceeded`.
    pub async fn exec_sync(&self, id: &str, cmd: Vec<String>, timeout: i64) -> Result<ExecSyncResponse, Status> {
        if cmd.is_empty() {
            return Err(invalid("the command to run is empty"));
        }
        let (rec, _, _) = self.container(id)?;
        let req =
            ExecCreateRequest { attach_stdout: true, attach_stderr: true, cmd: cmd.clone(), ..Default::default() };
        let exec_id = self.containers.exec_create(&rec.id, req).map_err(status)?;
        let started = self.containers.exec_start(&exec_id, false, false, None).await;
        let mut session = match started {
            Ok(Some(s)) => s,
            Ok(None) => {
                self.containers.exec_forget(&exec_id);
                return Err(Status::internal("the exec started detached"));
            }
            Err(e) => {
                self.containers.exec_forget(&exec_id);
                return Err(status(e));
            }
        };
        let mut out = ExecSyncResponse { exit_code: -1, ..Default::default() };
        let collect = async {
            while let Some(m) = session.output.recv().await {
                match m {
                    Output::Stdout(b) => out.stdout.extend_from_slice(&b),
                    Output::Stderr(b) => out.stderr.extend_from_slice(&b),
                    Output::Exit(c) => out.exit_code = c,
                }
            }
        };
        let finished = if timeout > 0 {
            tokio::time::timeout(Duration::from_secs(timeout as u64), collect).await.is_ok()
        } else {
            collect.await;
            true
        };
        if !finished {
            self.kill_exec(&exec_id);
            self.containers.exec_forget(&exec_id);
            return Err(Status::deadline_exceeded(format!("command {cmd:?} timed out after {timeout}s")));
        }
        self.containers.exec_forget(&exec_id);
        Ok(out)
    }

    /// Kills an exec's process, if it still runs.
    fn kill_exec(&self, exec_id: &str) {
        let Ok(ex) = self.containers.exec_get(exec_id) else { return };
        let st = ex.state.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if st.running
            && st.pid > 0
            && let Some(p) = rustix::process::Pid::from_raw(st.pid as i32)
        {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
        }
    }
}
