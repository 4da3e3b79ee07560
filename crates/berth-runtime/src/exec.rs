//! Starting more processes in a running container (`docker exec`).

use std::os::fd::{AsFd, BorrowedFd};

use rustix::thread::ThreadNameSpaceType;

use crate::child::{self, ExecArgs, Stdio};
use crate::create::{cgroup_of, child_report, reap, Io, Spawned};
use crate::spec::{Process, Spec};
use crate::sys::{clone3, Forked};
use crate::{seccomp, Result, RuntimeError};

/// Makes the caller's future children start in the container's pid namespace. The shim
/// calls this once, right after creating a container with its own pid namespace; every
/// `exec` then lands inside it without a second fork.
pub fn enter_pid_namespace(init_pidfd: BorrowedFd<'_>) -> Result<()> {
    rustix::thread::move_into_thread_name_spaces(init_pidfd, ThreadNameSpaceType::PROCESS_ID)
        .map_err(|e| RuntimeError::sys("entering the container's pid namespace", e))
}

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
        | ThreadNameSpaceType::HOST_NAME_AND_NIS_DOMAIN_NAME
        | ThreadNameSpaceType::INTER_PROCESS_COMMUNICATION
        | ThreadNameSpaceType::NETWORK;
    if spec.linux.namespace("cgroup").is_some() {
        namespaces |= ThreadNameSpaceType::CONTROL_GROUP;
    }

    let (err_r, err_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| RuntimeError::sys("pipe", e))?;
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
    let (pid, pidfd) = match clone3(0, None).map_err(|e| RuntimeError::sys("clone3", e))? {
        Forked::Child => {
            drop(err_r);
            drop(console_parent);
            let args = ExecArgs { init_pidfd, namespaces, process, cgroup: cgroup.as_ref(), seccomp: program.as_ref() };
            child::run_exec(args, stdio, err_w)
        }
        Forked::Parent { pid, pidfd } => (pid, pidfd),
    };
    drop(err_w);
    drop(stdio);
    let msg = child_report(err_r);
    if !msg.is_empty() {
        reap(pid);
        return Err(RuntimeError::Start(msg));
    }
    let pty_master = match console_parent {
        Some(sock) => Some(crate::pty::recv_fd(sock.as_fd())?.ok_or_else(|| RuntimeError::Start("the process did not send its terminal".into()))?),
        None => None,
    };
    Ok(Spawned { pid, pidfd, pty_master })
}
