//! Starting more processes in a running container (`docker exec`).

use std::os::fd::{AsFd, BorrowedFd};

use rustix::thread::ThreadNameSpaceType;

use crate::child::{self, ExecArgs, Stdio};
use crate::create::{Io, Spawned, cgroup_of, two_stage_result};
use crate::spec::{Process, Spec};
use crate::stage2::Report;
use crate::sys::{Forked, clone3};
use crate::{Result, RuntimeError, seccomp};

/// Starts `process` inside the container whose first process is `init_pidfd`, with the
/// container's cgroup and the namespaces its `spec` gave it.
pub fn exec(init_pidfd: BorrowedFd<'_>, spec: &Spec, process: &Process, io: Io) -> Result<Spawned> {
    if process.args.is_empty() {
        return Err(RuntimeError::Invalid("no command specified".into()));
    }
    let cgroup = cgroup_of(spec)?;
    let program = spec
        .linux
        .seccomp
        .as_ref()
        .map(seccomp::compile)
        .transpose()
        .map_err(|e| RuntimeError::Invalid(format!("seccomp profile: {e}")))?;
    let mut namespaces = ThreadNameSpaceType::MOUNT
        | ThreadNameSpaceType::PROCESS_ID
        | ThreadNameSpaceType::HOST_NAME_AND_NIS_DOMAIN_NAME
        | ThreadNameSpaceType::INTER_PROCESS_COMMUNICATION
        | ThreadNameSpaceType::NETWORK;
    if spec.linux.namespace("cgroup").is_some() {
        namespaces |= ThreadNameSpaceType::CONTROL_GROUP;
    }

    let report = Report::new().map_err(|e| RuntimeError::sys("mapping the start report", e))?;
    let (stdio, console_parent) = match io {
        Io::Pipes { stdin, stdout, stderr } => (Stdio::Fds { stdin, stdout, stderr }, None),
        Io::Tty => {
            let (parent, child) = rustix::net::socketpair(
                rustix::net::AddressFamily::UNIX,
                rustix::net::SocketType::STREAM,
                rustix::net::SocketFlags::CLOEXEC,
                None,
            )
            .map_err(|e| RuntimeError::sys("socketpair", e))?;
            (Stdio::Tty { console: child }, Some(parent))
        }
    };
    // Stage 1 joins the namespaces from the supervisor's pid namespace, where the container
    // cannot see it; stage 2 appears in the container already confined (see `child`).
    let stage1 = match clone3(0, None).map_err(|e| RuntimeError::sys("clone3", e))? {
        Forked::Child => {
            drop(console_parent);
            let args = ExecArgs {
                init_pidfd,
                namespaces,
                process,
                cgroup: cgroup.as_ref(),
                seccomp: program.as_ref(),
                report: &report,
            };
            child::run_exec(args, stdio)
        }
        Forked::Parent { pid, pidfd } => (pid, pidfd),
    };
    drop(stdio);
    let (pid, pidfd) = two_stage_result(stage1.0, &stage1.1, &report)?;
    let pty_master = match console_parent {
        Some(sock) => Some(
            crate::pty::recv_fd(sock.as_fd())?
                .ok_or_else(|| RuntimeError::Start("the process did not send its terminal".into()))?,
        ),
        None => None,
    };
    Ok(Spawned { pid, pidfd, pty_master })
}
