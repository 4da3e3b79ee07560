//! Creating a container: cgroup, namespaces, and the first process.

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};

use berth_cgroups::Cgroup;
use rustix::net::{AddressFamily, SocketFlags, SocketType};

use crate::child::{self, InitArgs, Stdio};
use crate::propagation::SharedBinds;
use crate::spec::Spec;
use crate::stage2::{Outcome, Report};
use crate::sys::{Forked, clone3};
use crate::{Result, RuntimeError, seccomp};

/// Where the new process's stdio goes.
pub enum Io {
    /// These become its stdin, stdout and stderr.
    Pipes { stdin: OwnedFd, stdout: OwnedFd, stderr: OwnedFd },
    /// It gets a terminal; the master comes back in [`Spawned::pty_master`].
    Tty,
}

/// A started process.
#[derive(Debug)]
pub struct Spawned {
    pub pid: i32,
    pub pidfd: OwnedFd,
    pub pty_master: Option<OwnedFd>,
}

const CLONE_NEWNS: u64 = 0x0002_0000;
const CLONE_NEWUTS: u64 = 0x0400_0000;
const CLONE_NEWIPC: u64 = 0x0800_0000;
const CLONE_NEWPID: u64 = 0x2000_0000;
const CLONE_NEWNET: u64 = 0x4000_0000;

/// The cgroup a spec names, if any.
pub fn cgroup_of(spec: &Spec) -> Result<Option<Cgroup>> {
    if spec.linux.cgroups_path.is_empty() {
        return Ok(None);
    }
    Ok(Some(Cgroup::host(&spec.linux.cgroups_path)?))
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(|e| RuntimeError::sys("pipe", e))
}

fn console_pair() -> Result<(OwnedFd, OwnedFd)> {
    rustix::net::socketpair(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC, None)
        .map_err(|e| RuntimeError::sys("socketpair", e))
}

/// Reads what the child reported: nothing (it exec'd) or why it failed.
pub(crate) fn child_report(err_r: OwnedFd) -> String {
    let mut msg = String::new();
    if let Err(e) = std::fs::File::from(err_r).read_to_string(&mut msg)
        && msg.is_empty()
    {
        // Not knowing is not success.
        msg = format!("reading the container process's report: {e}");
    }
    msg
}

pub(crate) fn reap(pid: i32) {
    if let Some(p) = rustix::process::Pid::from_raw(pid) {
        // Our own child: this fails only if it was reaped already.
        let _ = rustix::process::waitpid(Some(p), rustix::process::WaitOptions::empty());
    }
}

/// How long stage 1 may take. It ends within moments, unless a process of the container
/// stops stage 2 before its execve (stage 1 waits for that); the supervisor must not wait
/// with it forever.
const STAGE1_DEADLINE: rustix::event::Timespec = rustix::event::Timespec { tv_sec: 10, tv_nsec: 0 };

/// After a two-stage start (see the `child` module): waits for stage 1 to exit and returns
/// stage 2, the process that runs the program, with a pidfd for it.
pub(crate) fn two_stage_result(stage1: i32, stage1_fd: &OwnedFd, report: &Report) -> Result<(i32, OwnedFd)> {
    use rustix::event::{PollFd, PollFlags};
    let mut fds = [PollFd::new(stage1_fd, PollFlags::IN)];
    let timed_out = matches!(rustix::event::poll(&mut fds, Some(&STAGE1_DEADLINE)), Ok(0));
    if timed_out {
        // It may have exited since: then there is nothing to kill.
        let _ = rustix::process::pidfd_send_signal(stage1_fd, rustix::process::Signal::KILL);
    }
    reap(stage1);
    match report.outcome() {
        Outcome::Started(pid) => Ok((pid, own_child(pid)?)),
        Outcome::Failed { msg, stage2 } => {
            if let Some(fd) = stage2.and_then(|pid| own_child(pid).ok()) {
                // Stage 2 may be gone already; the start's error is what is returned.
                let _ = rustix::process::pidfd_send_signal(&fd, rustix::process::Signal::KILL);
                let _ = rustix::process::waitid(
                    rustix::process::WaitId::PidFd(fd.as_fd()),
                    rustix::process::WaitIdOptions::EXITED,
                );
            }
            Err(RuntimeError::Start(msg))
        }
        Outcome::Nothing if timed_out => {
            Err(RuntimeError::Start("the process did not start within 10s (stopped before it could exec?)".into()))
        }
        Outcome::Nothing => {
            Err(RuntimeError::Start("the process was not started (its starter ended without a word)".into()))
        }
    }
}

/// A pidfd for `pid`, which must be this process's child: stage 2 is (a sibling of stage 1),
/// and a pid that is not can be nobody's we should signal.
fn own_child(pid: i32) -> Result<OwnedFd> {
    let not_started = || RuntimeError::Start("the process was not started".into());
    let p = rustix::process::Pid::from_raw(pid).ok_or_else(not_started)?;
    let fd = rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty())
        .map_err(|e| RuntimeError::sys("pidfd_open", e))?;
    let opts = rustix::process::WaitIdOptions::EXITED
        | rustix::process::WaitIdOptions::NOHANG
        | rustix::process::WaitIdOptions::NOWAIT;
    rustix::process::waitid(rustix::process::WaitId::PidFd(fd.as_fd()), opts).map_err(|_| not_started())?;
    Ok(fd)
}

/// Whether the spec gives the container a `kind` namespace that is not the host's (its own,
/// or another container's; the caller's namespaces are the host's).
fn not_hosts(spec: &Spec, kind: &str, file: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    match spec.linux.namespace(kind) {
        None => false,
        Some(n) if n.path.is_empty() => true,
        Some(n) => match (std::fs::metadata(&n.path), std::fs::metadata(format!("/proc/self/ns/{file}"))) {
            (Ok(a), Ok(b)) => (a.dev(), a.ino()) != (b.dev(), b.ino()),
            _ => false,
        },
    }
}

/// Refuses sysctls that would change the host (see [`crate::sysctl`]).
fn check_sysctls(spec: &Spec) -> Result<()> {
    if spec.linux.sysctl.is_empty() {
        return Ok(());
    }
    let own = crate::sysctl::Namespaces {
        ipc: not_hosts(spec, "ipc", "ipc"),
        net: not_hosts(spec, "network", "net"),
        uts: spec.linux.namespace("uts").is_some_and(|n| n.path.is_empty()),
    };
    for name in spec.linux.sysctl.keys() {
        crate::sysctl::check(name, own).map_err(RuntimeError::Invalid)?;
    }
    Ok(())
}

/// Creates the container described by `spec` and starts its process. Returns once the
/// process has exec'd its program, or with the reason it could not. `shared` holds the
/// shared binds' sources, prepared in the host's mount namespace
/// ([`crate::propagation::SharedBinds::open`]).
pub fn create(spec: &Spec, io: Io, shared: &SharedBinds) -> Result<Spawned> {
    if spec.process.args.is_empty() {
        return Err(RuntimeError::Invalid("no command specified".into()));
    }
    check_sysctls(spec)?;
    let cgroup = cgroup_of(spec)?;
    if let Some(cg) = &cgroup {
        cg.create()?;
        if let Some(r) = &spec.linux.resources {
            cg.apply(r)?;
        }
    }
    let program = spec
        .linux
        .seccomp
        .as_ref()
        .map(seccomp::compile)
        .transpose()
        .map_err(|e| RuntimeError::Invalid(format!("seccomp profile: {e}")))?;

    let mut flags = CLONE_NEWNS;
    let new = |kind: &str| spec.linux.namespace(kind).is_some_and(|n| n.path.is_empty());
    if new("uts") {
        flags |= CLONE_NEWUTS;
    }
    if new("ipc") {
        flags |= CLONE_NEWIPC;
    }
    if new("pid") {
        flags |= CLONE_NEWPID;
    }
    let new_netns = new("network");
    if new_netns {
        flags |= CLONE_NEWNET;
    }
    // Joining a pid namespace takes effect for children: the process that appears in it is
    // stage 2 of a two-stage start, with a helper that makes its /proc.
    let joined_pid = match spec.linux.namespace("pid").filter(|n| !n.path.is_empty()) {
        Some(ns) => {
            let fd = rustix::fs::open(
                ns.path.as_str(),
                rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .map_err(|e| RuntimeError::sys(format!("opening pid namespace {}", ns.path), e))?;
            Some((
                fd,
                crate::joined_proc::Filters::new()?,
                Report::new().map_err(|e| RuntimeError::sys("mapping the start report", e))?,
            ))
        }
        None => None,
    };

    let (stdio, console_parent) = match io {
        Io::Pipes { stdin, stdout, stderr } => (Stdio::Fds { stdin, stdout, stderr }, None),
        Io::Tty => {
            let (parent, child) = console_pair()?;
            (Stdio::Tty { console: child }, Some(parent))
        }
    };
    let args = InitArgs {
        spec,
        cgroup: cgroup.as_ref(),
        new_cgroup_ns: new("cgroup"),
        new_netns,
        seccomp: program.as_ref(),
        shared,
    };
    let started = match joined_pid {
        Some((ns, proc_filters, report)) => match clone3(flags, None).map_err(|e| RuntimeError::sys("clone3", e)) {
            Ok(Forked::Child) => {
                drop(console_parent);
                child::run_init_joined(args, child::JoinPid { ns, report: &report, proc_filters }, stdio)
            }
            Ok(Forked::Parent { pid, pidfd }) => {
                drop(stdio);
                two_stage_result(pid, &pidfd, &report)
            }
            Err(e) => Err(e),
        },
        None => {
            let (err_r, err_w) = pipe()?;
            match clone3(flags, None).map_err(|e| RuntimeError::sys("clone3", e)) {
                Ok(Forked::Child) => {
                    drop(err_r);
                    drop(console_parent);
                    child::run_init(args, stdio, err_w)
                }
                Ok(Forked::Parent { pid, pidfd }) => {
                    drop(err_w);
                    drop(stdio);
                    let msg = child_report(err_r);
                    if msg.is_empty() {
                        Ok((pid, pidfd))
                    } else {
                        reap(pid);
                        Err(RuntimeError::Start(msg))
                    }
                }
                Err(e) => Err(e),
            }
        }
    };
    let (pid, pidfd) = match started {
        Ok(p) => p,
        Err(e) => {
            // The start's error is what is returned; a cgroup left behind is said on stderr
            // (the shim's log).
            if let Some(cg) = &cgroup
                && let Err(d) = cg.destroy()
            {
                eprintln!("removing the cgroup of a failed start: {d}");
            }
            return Err(e);
        }
    };
    let pty_master = match console_parent {
        Some(sock) => Some(
            crate::pty::recv_fd(sock.as_fd())?
                .ok_or_else(|| RuntimeError::Start("the container did not send its terminal".into()))?,
        ),
        None => None,
    };
    Ok(Spawned { pid, pidfd, pty_master })
}
