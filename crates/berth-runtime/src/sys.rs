//! The few system calls the kernel offers no safe wrapper for.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Result of [`clone3`]: in the parent, the child's pid and a pidfd for it.
pub enum Forked {
    Parent { pid: i32, pidfd: OwnedFd },
    Child,
}

const CLONE_PIDFD: u64 = 0x1000;
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `clone3` without a new stack: like `fork`, but able to create namespaces, return a pidfd,
/// and (on cgroup v2) start the child directly in its cgroup.
#[allow(unsafe_code)]
pub fn clone3(namespace_flags: u64, cgroup_fd: Option<RawFd>) -> std::io::Result<Forked> {
    let mut pidfd: libc::c_int = -1;
    let mut args = CloneArgs {
        flags: namespace_flags | CLONE_PIDFD,
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if let Some(fd) = cgroup_fd {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    // SAFETY: `args` is a valid, fully initialized clone_args of the size passed; with no
    // stack given the child continues on a copy of the caller's stack, exactly like fork(2).
    // The caller is single-threaded (a documented requirement of this crate), so the child's
    // copy of the address space has no locks held by threads that no longer exist.
    let ret = unsafe { libc::syscall(libc::SYS_clone3, &mut args as *mut CloneArgs, std::mem::size_of::<CloneArgs>()) };
    if ret < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if ret == 0 {
        return Ok(Forked::Child);
    }
    // SAFETY: the kernel just returned this descriptor to us via CLONE_PIDFD; nothing else
    // owns it.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    Ok(Forked::Parent { pid: ret as i32, pidfd })
}

/// Forks a child of the caller (plain `fork`). Returns its pid in the caller, `None` in it.
pub fn fork_child() -> std::io::Result<Option<i32>> {
    fork_with(0)
}

/// Forks a sibling: a child of the caller's parent (`CLONE_PARENT`), which reaps it.
pub fn fork_sibling() -> std::io::Result<Option<i32>> {
    fork_with(libc::CLONE_PARENT as libc::c_long)
}

/// `clone` with `flags` (no namespaces, no new stack): a fork. Returns the child's pid in
/// the caller, `None` in the child.
#[allow(unsafe_code)]
pub fn fork_with(flags: libc::c_long) -> std::io::Result<Option<i32>> {
    // SAFETY: `clone` with no new stack behaves like fork(2): the child continues on a copy
    // of the caller's stack. The caller is single-threaded (this crate's contract), so the
    // copy holds no lock owned by a thread that does not exist in it.
    let ret = unsafe { libc::syscall(libc::SYS_clone, flags | libc::SIGCHLD as libc::c_long, 0, 0, 0, 0) };
    match ret {
        r if r < 0 => Err(std::io::Error::last_os_error()),
        0 => Ok(None),
        pid => Ok(Some(pid as i32)),
    }
}

/// Closes every descriptor of this process except `keep`, so that nothing the supervisor
/// holds (its sockets, log files, other containers' pipes) is in a process that a container
/// can see.
#[allow(unsafe_code)]
pub fn close_fds_except(keep: &[RawFd]) {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|&fd| fd >= 0).collect();
    keep.sort_unstable();
    keep.dedup();
    let mut first: u32 = 0;
    for fd in keep.into_iter().map(|fd| fd as u32).chain(std::iter::once(u32::MAX)) {
        if fd > first {
            // SAFETY: close_range only closes descriptors; the ones closed here belong to
            // nothing this process still uses (the child owns only what it was told to keep,
            // and ends in execve or _exit).
            unsafe { libc::syscall(libc::SYS_close_range, first, fd - 1, 0) };
        }
        first = fd.saturating_add(1);
    }
}

/// Marks this process non-dumpable: only a holder of CAP_SYS_PTRACE on the host may then
/// open its /proc entries, ptrace it or take its descriptors. Children inherit it until
/// they execve.
pub fn set_non_dumpable() -> std::io::Result<()> {
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable).map_err(Into::into)
}

/// Ends the child process immediately, without running destructors or flushing stdio
/// buffers that belong to the parent.
#[allow(unsafe_code)]
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit takes no pointers and never returns; skipping atexit handlers is the
    // point (they belong to the parent's copy of the program).
    unsafe { libc::_exit(code) }
}

/// `unshare(2)` for namespace flags.
#[allow(unsafe_code)]
pub fn unshare(flags: rustix::thread::UnshareFlags) -> std::io::Result<()> {
    debug_assert!(!flags.contains(rustix::thread::UnshareFlags::FILES));
    // SAFETY: rustix marks unshare unsafe only because CLONE_FILES can strand descriptors
    // other threads hold; berth never passes CLONE_FILES, and the callers are single-threaded.
    unsafe { rustix::thread::unshare_unsafe(flags) }.map_err(Into::into)
}

/// Brings the loopback interface of the current network namespace up, as every new
/// container network namespace needs it.
#[allow(unsafe_code)]
pub fn loopback_up() -> std::io::Result<()> {
    // SAFETY: a plain socket(2) call; the descriptor is owned by `sock` below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket(2) and is owned by nobody else.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: `ifreq` is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (i, b) in b"lo".iter().enumerate() {
        req.ifr_name[i] = *b as libc::c_char;
    }
    use std::os::fd::AsRawFd;
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write exactly one `ifreq`, which `req` is.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Gives back the resident pages of this executable's code and the heap's free memory.
/// The pages stay in the page cache: code that runs again faults them back cheaply. Long-lived
/// processes call this once their start-up work is done (the shim, after starting the
/// container), so their resident set is what they use, not everything they ever ran.
///
/// Code pages are dropped with `MADV_DONTNEED`, which for a private file mapping re-reads the
/// file on the next touch; a mapping with any private (written) page is left alone, since
/// dropping it would lose the writes. Other read-only mappings get `MADV_PAGEOUT`, which never
/// discards data.
#[allow(unsafe_code)]
pub fn trim_resident_memory() {
    let exe = std::fs::read_link("/proc/self/exe").ok();
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
    let mut current: Option<(usize, usize, bool)> = None;
    let mut regions = Vec::new();
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            if let Some(r) = current.take() {
                regions.push(r);
            }
            let mut f = line.split_whitespace();
            let (Some(range), Some(perms)) = (f.next(), f.next()) else { continue };
            let path = f.nth(3).map(std::path::PathBuf::from);
            if perms.starts_with("rw") || path.is_none() || path != exe {
                continue;
            }
            let Some((a, b)) = range.split_once('-') else { continue };
            let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) else { continue };
            current = Some((a, b - a, perms.contains('x')));
        } else if let Some((a, len, code)) = current {
            // A written (private dirty or anonymous) page means the mapping is not pure file.
            let written = (line.starts_with("Private_Dirty:") || line.starts_with("Anonymous:"))
                && line.split_whitespace().nth(1).is_none_or(|v| v != "0");
            if written {
                current = Some((a, len, false));
                if !code {
                    continue;
                }
                // Mark as "not droppable" by clearing the code flag; PAGEOUT still applies.
            }
        }
    }
    if let Some(r) = current.take() {
        regions.push(r);
    }
    for (a, len, droppable_code) in regions {
        let advice = if droppable_code { libc::MADV_DONTNEED } else { libc::MADV_PAGEOUT };
        // SAFETY: the range is a whole read-only mapping of this process's executable. For
        // DONTNEED, the mapping has no private pages, so its contents come back unchanged
        // from the file; PAGEOUT never changes contents.
        unsafe {
            libc::madvise(a as *mut libc::c_void, len, advice);
        }
    }
    // SAFETY: malloc_trim only returns free heap memory to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}
