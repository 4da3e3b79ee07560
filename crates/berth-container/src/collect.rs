//! A command run in a container to its end, its output kept up to a bound: the health probe's
//! exec and the CRI's ExecSync. The daemon holds at most the bound, however much the command
//! prints; the rest is read and dropped, so the command never blocks on a full pipe.

use std::sync::Arc;
use std::time::Duration;

use berth_api::models::ExecCreateRequest;

use crate::attach::Output;
use crate::{ContainerError, ContainerService, Result};

/// How much output to keep.
#[derive(Debug, Clone, Copy)]
pub enum Keep {
    /// Up to this many bytes of each stream, apart (ExecSync).
    Each(usize),
    /// Up to this many bytes of both streams together, in `stdout`, as they came (a health
    /// probe's `Output`).
    Merged(usize),
}

/// What a command printed (cut at the [`Keep`] bound) and how it ended.
#[derive(Debug, Default)]
pub struct Collected {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// `None` when the output ended without an exit code (the shim went away).
    pub exit_code: Option<i64>,
    /// The command was still running at the deadline and was killed.
    pub timed_out: bool,
    /// Output past the bound was dropped.
    pub truncated: bool,
}

impl Collected {
    fn keep(&mut self, keep: Keep, stderr: bool, b: &[u8]) {
        let (buf, limit) = match keep {
            Keep::Each(n) => (if stderr { &mut self.stderr } else { &mut self.stdout }, n),
            Keep::Merged(n) => (&mut self.stdout, n),
        };
        let room = limit.saturating_sub(buf.len());
        if b.len() > room {
            self.truncated = true;
        }
        buf.extend_from_slice(&b[..b.len().min(room)]);
    }
}

impl ContainerService {
    /// Runs `cmd` in running container `id` and collects its output as `keep` says. With a
    /// `timeout`, a command still running then is killed and the result says `timed_out`.
    /// The exec is forgotten afterwards: it does not pile up in the exec list.
    pub async fn exec_collect(
        self: &Arc<Self>,
        id: &str,
        cmd: Vec<String>,
        keep: Keep,
        timeout: Option<Duration>,
    ) -> Result<Collected> {
        let req = ExecCreateRequest { cmd, attach_stdout: true, attach_stderr: true, ..Default::default() };
        let exec_id = self.exec_create(id, req)?;
        // Also when the caller goes away first (kubelet's deadline cancels the call): the
        // process is killed and the exec forgotten.
        let _done = Done { svc: self, exec_id: &exec_id };
        self.collect(&exec_id, keep, timeout).await
    }

    async fn collect(self: &Arc<Self>, exec_id: &str, keep: Keep, timeout: Option<Duration>) -> Result<Collected> {
        let Some(mut session) = self.exec_start(exec_id, false, false, None).await? else {
            return Err(ContainerError::Internal(format!("exec {exec_id} started detached")));
        };
        let mut out = Collected::default();
        let read = async {
            while let Some(msg) = session.output.recv().await {
                match msg {
                    Output::Stdout(b) => out.keep(keep, false, &b),
                    Output::Stderr(b) => out.keep(keep, true, &b),
                    Output::Exit(c) => {
                        out.exit_code = Some(c as i64);
                        return;
                    }
                }
            }
        };
        let finished = match timeout {
            Some(t) => tokio::time::timeout(t, read).await.is_ok(),
            None => {
                read.await;
                true
            }
        };
        if !finished {
            self.exec_kill(exec_id);
            out.timed_out = true;
        }
        Ok(out)
    }

    /// Kills an exec's process (SIGKILL), if it still runs.
    pub fn exec_kill(&self, exec_id: &str) {
        let Ok(ex) = self.exec_get(exec_id) else { return };
        if let Some(fd) = ex.pidfd.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            // An ended process is not signalled (ESRCH), whoever has its PID now.
            let _ = rustix::process::pidfd_send_signal(fd, rustix::process::Signal::KILL);
        }
    }
}

/// Ends a collected exec however its collection ends: kills what still runs, forgets it.
struct Done<'a> {
    svc: &'a ContainerService,
    exec_id: &'a str,
}

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.svc.exec_kill(self.exec_id);
        self.svc.exec_forget(self.exec_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_past_the_bound_is_dropped() {
        let mut c = Collected::default();
        c.keep(Keep::Each(4), false, b"abc");
        c.keep(Keep::Each(4), true, b"xy");
        assert!(!c.truncated);
        c.keep(Keep::Each(4), false, b"defg");
        assert_eq!((c.stdout.as_slice(), c.stderr.as_slice(), c.truncated), (&b"abcd"[..], &b"xy"[..], true));

        let mut m = Collected::default();
        m.keep(Keep::Merged(5), false, b"abc");
        m.keep(Keep::Merged(5), true, b"xyz");
        assert_eq!((m.stdout.as_slice(), m.stderr.len()), (&b"abcxy"[..], 0));
    }
}
