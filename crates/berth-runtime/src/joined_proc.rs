//! `/proc` for a container that joins another container's pid namespace.
//!
//! A procfs lists the pid namespace its filesystem context was opened in, normally the
//! opener's; and every process inside the joined namespace can be seen, and with
//! CAP_SYS_PTRACE taken over, by the other container's processes. So:
//!
//! - On kernels with procfs's `pidns` option (Linux 6.15 and later), stage 1, invisible,
//!   opens the context itself and points it at the namespace. Nothing is visible.
//! - Otherwise only `fsopen("proc")` is done inside the namespace, by a *maker* that is
//!   born harmless: stage 1 forks a *launcher* (still in stage 1's pid namespace), which
//!   closes every descriptor but the namespace's, keeps only CAP_SYS_ADMIN, loads a filter,
//!   joins the namespace for its children and forks the maker as stage 1's child; the
//!   maker loads a stricter filter (`fsopen`, stopping itself, exiting), opens the context
//!   and stops. Stage 1 takes the context (`pidfd_getfd`), kills the maker, and makes the
//!   filesystem and its mount itself: a context is nothing without CAP_SYS_ADMIN to create
//!   it, so a thief gains nothing, and a maker taken over can open contexts and nothing else.
//!
//! Either way stage 1 checks that what it mounts is a procfs.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::io::Errno;
use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags};
use rustix::process::{Pid, PidfdFlags, PidfdGetfdFlags, Signal, WaitOptions};

use crate::mounts::parse_options;
use crate::paths::ensure_mountpoint;
use crate::spec::{Capabilities, Mount, Seccomp, SeccompArg, SeccompSyscall};
use crate::{Result, RuntimeError, caps, seccomp, sys};

/// The launcher's and the maker's filters, compiled by the caller before it forks
/// (compiling allocates).
pub struct Filters {
    launcher: seccomp::Program,
    maker: seccomp::Program,
    /// Take the maker's way even where the kernel has `pidns` (`BERTH_PROC_MAKER` set in
    /// the environment: how the tests cover older kernels on a newer one).
    force_maker: bool,
}

fn allow(names: &[&str], args: Vec<SeccompArg>) -> SeccompSyscall {
    SeccompSyscall {
        names: names.iter().map(|s| s.to_string()).collect(),
        action: "SCMP_ACT_ALLOW".into(),
        errno_ret: None,
        args,
    }
}

fn compile(syscalls: Vec<SeccompSyscall>) -> Result<seccomp::Program> {
    let profile = Seccomp {
        default_action: "SCMP_ACT_ERRNO".into(),
        default_errno_ret: Some(libc::EPERM as u32),
        architectures: Vec::new(),
        syscalls,
    };
    seccomp::compile(&profile).map_err(|e| RuntimeError::Invalid(format!("seccomp filter for /proc: {e}")))
}

impl Filters {
    pub fn new() -> Result<Filters> {
        // Opening the context, stopping itself (SIGSTOP only), exiting; memory calls in case
        // the heap grows.
        let maker = || {
            vec![
                allow(
                    &["fsopen", "close", "getpid", "exit", "exit_group", "brk", "mmap", "munmap", "mremap", "madvise"],
                    Vec::new(),
                ),
                allow(
                    &["kill"],
                    vec![SeccompArg { index: 1, value: libc::SIGSTOP as u64, value_two: 0, op: "SCMP_CMP_EQ".into() }],
                ),
            ]
        };
        let mut launcher = maker();
        // Closing, joining (it holds the one namespace descriptor), forking without new
        // namespaces, and loading the maker's filter.
        launcher.push(allow(&["close_range", "setns", "seccomp"], Vec::new()));
        launcher.push(allow(
            &["clone"],
            vec![SeccompArg {
                index: 0,
                value: seccomp::CLONE_NAMESPACE_FLAGS,
                value_two: 0,
                op: "SCMP_CMP_MASKED_EQ".into(),
            }],
        ));
        Ok(Filters {
            launcher: compile(launcher)?,
            maker: compile(maker())?,
            force_maker: std::env::var_os("BERTH_PROC_MAKER").is_some(),
        })
    }
}

/// Mounts a procfs of the pid namespace `pidns` at `m`'s destination under `/` (after
/// pivot_root). The caller has not joined `pidns` yet and has no child.
pub fn mount(m: &Mount, pidns: BorrowedFd<'_>, filters: &Filters) -> Result<()> {
    let opts = parse_options(&m.options);
    let mut attrs = MountAttrFlags::empty();
    for (flag, attr) in [
        (rustix::mount::MountFlags::NOSUID, MountAttrFlags::MOUNT_ATTR_NOSUID),
        (rustix::mount::MountFlags::NODEV, MountAttrFlags::MOUNT_ATTR_NODEV),
        (rustix::mount::MountFlags::NOEXEC, MountAttrFlags::MOUNT_ATTR_NOEXEC),
        (rustix::mount::MountFlags::RDONLY, MountAttrFlags::MOUNT_ATTR_RDONLY),
    ] {
        if opts.flags.contains(flag) {
            attrs |= attr;
        }
    }
    let sys_err = |what: &str, e: Errno| RuntimeError::sys(format!("mounting proc at {}: {what}", m.destination), e);
    let context = rustix::mount::fsopen("proc", FsOpenFlags::FSOPEN_CLOEXEC).map_err(|e| sys_err("fsopen", e))?;
    let pointed =
        if filters.force_maker { Err(Errno::INVAL) } else { rustix::mount::fsconfig_set_fd(&context, "pidns", pidns) };
    let context = match pointed {
        Ok(()) => context,
        // An older kernel: the context must be opened inside the namespace.
        Err(Errno::INVAL) => {
            drop(context);
            from_maker(pidns, filters)?
        }
        Err(e) => return Err(sys_err("pidns", e)),
    };
    for d in &opts.data {
        let (k, v) = d.split_once('=').unwrap_or((d, ""));
        rustix::mount::fsconfig_set_string(&context, k, v).map_err(|e| sys_err(d, e))?;
    }
    rustix::mount::fsconfig_create(&context).map_err(|e| sys_err("creating", e))?;
    let tree =
        rustix::mount::fsmount(&context, FsMountFlags::FSMOUNT_CLOEXEC, attrs).map_err(|e| sys_err("fsmount", e))?;
    if !rustix::fs::fstatfs(&tree).is_ok_and(|st| st.f_type == rustix::fs::PROC_SUPER_MAGIC) {
        return Err(RuntimeError::Start(format!("mounting proc at {}: what was made is not a procfs", m.destination)));
    }
    let root = crate::mounts::open_dir(std::path::Path::new("/"))?;
    let target = ensure_mountpoint(&root, &m.destination, false)?;
    rustix::mount::move_mount(
        tree.as_fd(),
        "",
        target.as_fd(),
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )
    .map_err(|e| sys_err("attaching", e))
}

/// A procfs context opened inside `pidns` by a maker (see the module docs).
fn from_maker(pidns: BorrowedFd<'_>, filters: &Filters) -> Result<OwnedFd> {
    match sys::fork_child().map_err(|e| RuntimeError::sys("starting the /proc launcher", e))? {
        None => launcher(pidns, filters),
        Some(launcher_pid) => take_from_maker(launcher_pid),
    }
}

/// In stage 1: waits for the launcher to exit and the maker to stop, takes the maker's
/// context, and ends every other child (a maker taken over may have made some).
fn take_from_maker(launcher: i32) -> Result<OwnedFd> {
    let mut stopped: Vec<Pid> = Vec::new();
    let mut failure = None;
    let mut launcher_done = false;
    while !launcher_done || stopped.is_empty() {
        let Ok(Some((pid, status))) = rustix::process::wait(WaitOptions::UNTRACED) else { break };
        if pid.as_raw_nonzero().get() == launcher {
            launcher_done = true;
            if status.exit_status() != Some(0) {
                failure = Some(format!("the /proc launcher failed (status {:?})", status.exit_status()));
                break;
            }
        } else if status.stopped() {
            stopped.push(pid);
        } else {
            failure = Some(format!(
                "the /proc maker ended (status {:?}, signal {:?})",
                status.exit_status(),
                status.terminating_signal()
            ));
            break;
        }
    }
    let result = match (stopped.as_slice(), failure) {
        (_, Some(f)) => Err(RuntimeError::Start(f)),
        ([maker], None) => take_context(*maker),
        (_, None) => Err(RuntimeError::Start("the /proc maker did not start, or not alone".into())),
    };
    // Our own children, stopped or gone: killing and reaping fail only if they are gone.
    for pid in stopped {
        let _ = rustix::process::kill_process(pid, Signal::KILL);
        let _ = rustix::process::waitpid(Some(pid), WaitOptions::empty());
    }
    if !launcher_done {
        // It may have exited since; it is reaped either way.
        let _ = rustix::process::kill_process(
            Pid::from_raw(launcher).ok_or(RuntimeError::Invalid("pid".into()))?,
            Signal::KILL,
        );
        crate::create::reap(launcher);
    }
    result
}

/// The stopped maker's context: its descriptor 0, its first and only one.
fn take_context(maker: Pid) -> Result<OwnedFd> {
    let pidfd =
        rustix::process::pidfd_open(maker, PidfdFlags::empty()).map_err(|e| RuntimeError::sys("pidfd_open", e))?;
    rustix::process::pidfd_getfd(&pidfd, 0, PidfdGetfdFlags::empty())
        .map_err(|e| RuntimeError::sys("taking the /proc context", e))
}

/// The launcher: confine, join, fork the maker, exit.
fn launcher(pidns: BorrowedFd<'_>, filters: &Filters) -> ! {
    sys::close_fds_except(&[pidns.as_raw_fd()]);
    let only = vec!["CAP_SYS_ADMIN".to_string()];
    let set = Capabilities {
        bounding: only.clone(),
        effective: only.clone(),
        permitted: only,
        inheritable: Vec::new(),
        ambient: Vec::new(),
    };
    if caps::drop_bounding(&set).is_err() || caps::apply(&set).is_err() || seccomp::load(&filters.launcher).is_err() {
        sys::exit_now(1)
    }
    if rustix::thread::move_into_link_name_space(pidns, Some(rustix::thread::LinkNameSpaceType::ProcessID)).is_err() {
        sys::exit_now(2)
    }
    sys::close_fds_except(&[]);
    match sys::fork_sibling() {
        Ok(None) => maker(&filters.maker),
        Ok(Some(_)) => sys::exit_now(0),
        Err(_) => sys::exit_now(3),
    }
}

/// The maker: its own filter, the context (descriptor 0), then stop until stage 1 has taken
/// it; stage 1 kills it then.
fn maker(filter: &seccomp::Program) -> ! {
    if seccomp::load(filter).is_err() {
        sys::exit_now(4)
    }
    let ok = rustix::mount::fsopen(c"proc", FsOpenFlags::empty()).map(std::mem::forget).is_ok();
    if ok {
        // If it cannot stop, the exit below tells stage 1 that it failed.
        let _ = rustix::process::kill_process(rustix::process::getpid(), Signal::STOP);
    }
    sys::exit_now(5)
}
