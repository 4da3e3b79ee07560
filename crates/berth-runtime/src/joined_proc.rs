//! `/proc` for a container that joins another container's pid namespace.
//!
//! A procfs lists the pid namespace of the process that creates it, so the new container's
//! `/proc` must be made by a process inside the joined namespace; and every process there
//! can be seen, and with CAP_SYS_PTRACE taken over, by the other container's processes. So
//! the process that makes it must be born harmless:
//!
//! 1. stage 1 (invisible, new root in place, old root detached) forks a *launcher*, still
//!    in stage 1's pid namespace;
//! 2. the launcher closes every descriptor but the pid namespace's, keeps only
//!    CAP_SYS_ADMIN, loads a filter that allows little beyond making a procfs mount, joins
//!    the pid namespace for its children and forks the *maker* as stage 1's child
//!    (`CLONE_PARENT`); then exits;
//! 3. the maker, visible but holding no descriptor, no other capability and the filter,
//!    makes a detached procfs mount and stops itself;
//! 4. stage 1 takes the mount from the stopped maker (`pidfd_getfd`), checks it is a procfs,
//!    kills the maker and attaches the mount.
//!
//! Taken over, the maker can make more procfs (or other) mounts that it cannot attach,
//! read or hand to anyone; it cannot open files, send descriptors or make namespaces.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags};
use rustix::process::{Pid, PidfdFlags, PidfdGetfdFlags, Signal, WaitOptions};

use crate::mounts::parse_options;
use crate::paths::ensure_mountpoint;
use crate::spec::{Capabilities, Mount, Seccomp, SeccompArg, SeccompSyscall};
use crate::{caps, seccomp, sys, Result, RuntimeError};

/// The launcher's and maker's filter. Compiled by the caller before it forks (compiling
/// allocates).
pub fn helper_filter() -> Result<seccomp::Program> {
    let allow = |names: &[&str], args: Vec<SeccompArg>| SeccompSyscall {
        names: names.iter().map(|s| s.to_string()).collect(),
        action: "SCMP_ACT_ALLOW".into(),
        errno_ret: None,
        args,
    };
    let profile = Seccomp {
        default_action: "SCMP_ACT_ERRNO".into(),
        default_errno_ret: Some(libc::EPERM as u32),
        architectures: Vec::new(),
        syscalls: vec![
            // Making the mount, stopping, exiting; memory calls in case the heap grows.
            allow(&["fsopen", "fsconfig", "fsmount", "close", "close_range", "getpid", "kill", "exit", "exit_group"], Vec::new()),
            allow(&["brk", "mmap", "munmap", "mremap", "madvise"], Vec::new()),
            // The launcher's two steps: joining (it holds the one namespace descriptor) and
            // forking, without new namespaces.
            allow(&["setns"], Vec::new()),
            allow(&["clone"], vec![SeccompArg { index: 0, value: seccomp::CLONE_NAMESPACE_FLAGS, value_two: 0, op: "SCMP_CMP_MASKED_EQ".into() }]),
        ],
    };
    seccomp::compile(&profile).map_err(|e| RuntimeError::Invalid(format!("seccomp filter for /proc: {e}")))
}

/// Mounts a procfs of the pid namespace `pidns` at `m`'s destination under `/` (after
/// pivot_root). The caller has not joined `pidns` yet and has no other child.
pub fn mount(m: &Mount, pidns: BorrowedFd<'_>, filter: &seccomp::Program) -> Result<()> {
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
    // Options are handed over as C strings made now: the maker allocates nothing.
    let data: Vec<(std::ffi::CString, std::ffi::CString)> = opts
        .data
        .iter()
        .map(|d| {
            let (k, v) = d.split_once('=').unwrap_or((d, ""));
            (std::ffi::CString::new(k).unwrap_or_default(), std::ffi::CString::new(v).unwrap_or_default())
        })
        .collect();
    match sys::fork_child().map_err(|e| RuntimeError::sys("starting the /proc launcher", e))? {
        None => launcher(pidns, &data, attrs, filter),
        Some(launcher_pid) => {
            let tree = take_from_maker(launcher_pid);
            let tree = tree?;
            let root = crate::mounts::open_dir(std::path::Path::new("/"))?;
            let target = ensure_mountpoint(&root, &m.destination, false)?;
            rustix::mount::move_mount(
                tree.as_fd(),
                "",
                target.as_fd(),
                "",
                MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
            )
            .map_err(|e| RuntimeError::sys(format!("mounting proc at {}", m.destination), e))
        }
    }
}

/// In stage 1: waits for the launcher to exit and the maker to stop, takes the maker's
/// procfs mount, and ends the maker.
fn take_from_maker(launcher: i32) -> Result<OwnedFd> {
    let mut maker: Option<Pid> = None;
    let mut launcher_done = false;
    let mut failure = None;
    while !(launcher_done && maker.is_some()) {
        let Ok(Some((pid, status))) = rustix::process::wait(WaitOptions::UNTRACED) else { break };
        if pid.as_raw_nonzero().get() == launcher {
            launcher_done = true;
            if status.exit_status() != Some(0) {
                failure = Some(format!("the /proc launcher failed (status {:?})", status.exit_status()));
                break;
            }
        } else if status.stopped() {
            maker = Some(pid);
        } else {
            failure = Some(format!("making /proc failed: {}", std::io::Error::from_raw_os_error(status.exit_status().unwrap_or(0))));
            break;
        }
    }
    let result = match (maker, failure) {
        (Some(pid), None) => take_mount(pid),
        (_, Some(f)) => Err(RuntimeError::Start(f)),
        (None, None) => Err(RuntimeError::Start("the /proc maker did not start".into())),
    };
    if let Some(pid) = maker {
        let _ = rustix::process::kill_process(pid, Signal::KILL);
        let _ = rustix::process::waitpid(Some(pid), WaitOptions::empty());
    }
    if !launcher_done {
        crate::create::reap(launcher);
    }
    result
}

/// Takes the one procfs the stopped maker holds.
fn take_mount(maker: Pid) -> Result<OwnedFd> {
    let pidfd = rustix::process::pidfd_open(maker, PidfdFlags::empty()).map_err(|e| RuntimeError::sys("pidfd_open", e))?;
    for n in 0..4 {
        let Ok(fd) = rustix::process::pidfd_getfd(&pidfd, n, PidfdGetfdFlags::empty()) else { continue };
        if rustix::fs::fstatfs(&fd).is_ok_and(|st| st.f_type == rustix::fs::PROC_SUPER_MAGIC) {
            return Ok(fd);
        }
    }
    Err(RuntimeError::Start("the /proc maker held no procfs".into()))
}

/// The launcher: confine, join, fork the maker, exit.
fn launcher(pidns: BorrowedFd<'_>, data: &[(std::ffi::CString, std::ffi::CString)], attrs: MountAttrFlags, filter: &seccomp::Program) -> ! {
    sys::close_fds_except(&[pidns.as_raw_fd()]);
    let only = vec!["CAP_SYS_ADMIN".to_string()];
    let set = Capabilities { bounding: only.clone(), effective: only.clone(), permitted: only, inheritable: Vec::new(), ambient: Vec::new() };
    if caps::drop_bounding(&set).is_err() || caps::apply(&set).is_err() || seccomp::load(filter).is_err() {
        sys::exit_now(1)
    }
    if rustix::thread::move_into_link_name_space(pidns, Some(rustix::thread::LinkNameSpaceType::ProcessID)).is_err() {
        sys::exit_now(2)
    }
    sys::close_fds_except(&[]);
    match sys::fork_sibling() {
        Ok(None) => maker(data, attrs),
        Ok(Some(_)) => sys::exit_now(0),
        Err(_) => sys::exit_now(3),
    }
}

/// The maker: a detached procfs mount, then stop until stage 1 has taken it. Exits with the
/// errno of what failed.
fn maker(data: &[(std::ffi::CString, std::ffi::CString)], attrs: MountAttrFlags) -> ! {
    let made = (|| -> rustix::io::Result<()> {
        let fs = rustix::mount::fsopen(c"proc", FsOpenFlags::empty())?;
        for (k, v) in data {
            rustix::mount::fsconfig_set_string(&fs, k.as_c_str(), v.as_c_str())?;
        }
        rustix::mount::fsconfig_create(&fs)?;
        let mnt = rustix::mount::fsmount(&fs, FsMountFlags::empty(), attrs)?;
        drop(fs);
        std::mem::forget(mnt);
        rustix::process::kill_process(rustix::process::getpid(), Signal::STOP)
    })();
    sys::exit_now(match made {
        Ok(()) => 0,
        Err(e) => e.raw_os_error(),
    })
}
