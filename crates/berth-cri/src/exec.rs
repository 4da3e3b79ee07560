//! ExecSync: a command in a running container, its output collected up to a bound, with a
//! deadline.

use std::time::Duration;

use berth_container::collect::Keep;
use tonic::Status;

use crate::Cri;
use crate::error::{invalid, status};
use crate::proto::ExecSyncResponse;

/// The most of each stream ExecSync keeps, as containerd does: kubelet's gRPC client takes
/// messages of up to 16 MiB, and a command printing more must not fill the daemon's memory.
pub const MAX_EXEC_SYNC_OUTPUT: usize = 16 << 20;

impl Cri {
    /// Runs `cmd` in container `id` and waits for it. With `timeout` > 0 seconds, a command
    /// still running then is killed and the call fails with `DeadlineExceeded`.
    pub async fn exec_sync(&self, id: &str, cmd: Vec<String>, timeout: i64) -> Result<ExecSyncResponse, Status> {
        if cmd.is_empty() {
            return Err(invalid("the command to run is empty"));
        }
        let (rec, _, _) = self.container(id)?;
        let deadline = (timeout > 0).then(|| Duration::from_secs(timeout as u64));
        let c = self
            .containers
            .exec_collect(&rec.id, cmd.clone(), Keep::Each(MAX_EXEC_SYNC_OUTPUT), deadline)
            .await
            .map_err(status)?;
        if c.timed_out {
            return Err(Status::deadline_exceeded(format!("command {cmd:?} timed out after {timeout}s")));
        }
        Ok(ExecSyncResponse { stdout: c.stdout, stderr: c.stderr, exit_code: c.exit_code.map_or(-1, |c| c as i32) })
    }
}
