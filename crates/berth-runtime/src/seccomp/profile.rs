//! berth's default seccomp profile.
//!
//! An allowlist in the spirit of Docker's: everything ordinary programs use is allowed,
//! everything else fails with EPERM. The point is not to replace capabilities (the kernel
//! checks those anyway) but to shrink the kernel surface a container can reach: syscalls
//! that act on global, non-namespaced state (keyrings, kernel modules, the clock, swap,
//! kexec), ones whose own capability check has a history of being bypassed, and obsolete
//! ones nobody needs. Syscalls a capability would unlock are allowed only when the
//! container actually has that capability, so adding `--cap-add` also opens the syscalls.
//!
//! Deliberately absent, whatever the capabilities: `kexec_load`, `kexec_file_load`,
//! `keyctl`, `add_key`, `request_key` (keyrings are not namespaced), `io_uring_*` (a large
//! attack surface, and the operations it queues never pass through this filter),
//! `nfsservctl`, `vm86`, `vm86old`, `uselib`, `create_module`, `get_kernel_syms`,
//! `query_module`, `_sysctl`, `sysfs`, `ustat`, `memfd_secret`, `process_madvise`,
//! `process_mrelease`.
//!
//! Names are listed once for every architecture and ABI; the compiler skips the ones an
//! ABI does not have. On x86_64 the profile describes the i386 and x32 ABIs too, as
//! Docker's does: 32-bit programs run under the same rules, and whatever is refused to a
//! 64-bit call is refused through `int 0x80` as well. The 32-bit ABIs' own names for the
//! syscalls allowed here (`mmap2`, `fstat64`, `getuid32`, `clock_gettime64`…) are in
//! [`COMPAT_32`]; their multiplexers `socketcall` and `ipc` are allowed as Docker allows
//! them (see [`COMPAT_32`] for what that means for AF_VSOCK).

use crate::spec::{Seccomp, SeccompArg, SeccompSyscall};

#[rustfmt::skip]
const ALWAYS: &[&str] = &[
    // File descriptors and plain I/O.
    "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2",
    "pwritev2", "open", "openat", "openat2", "creat", "close", "close_range", "lseek", "dup",
    "dup2", "dup3", "pipe", "pipe2", "fcntl", "flock", "ioctl", "fsync", "fdatasync", "sync",
    "syncfs", "sync_file_range", "truncate", "ftruncate", "fallocate", "fadvise64", "readahead",
    "sendfile", "splice", "tee", "vmsplice", "copy_file_range", "cachestat",
    // Metadata, directories, extended attributes, change notification.
    "stat", "fstat", "lstat", "newfstatat", "statx", "statfs", "fstatfs", "access", "faccessat",
    "faccessat2", "chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown",
    "fchownat", "umask", "utime", "utimes", "futimesat", "utimensat", "getdents", "getdents64",
    "getcwd", "chdir", "fchdir", "mkdir", "mkdirat", "rmdir", "rename", "renameat", "renameat2",
    "link", "linkat", "unlink", "unlinkat", "symlink", "symlinkat", "readlink", "readlinkat",
    "mknod", "mknodat", "getxattr", "lgetxattr", "fgetxattr", "getxattrat", "setxattr",
    "lsetxattr", "fsetxattr", "setxattrat", "listxattr", "llistxattr", "flistxattr",
    "listxattrat", "removexattr", "lremovexattr", "fremovexattr", "removexattrat",
    "file_getattr", "file_setattr", "inotify_init", "inotify_init1", "inotify_add_watch",
    "inotify_rm_watch", "fanotify_mark", "statmount", "listmount",
    // Memory.
    "brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "mincore", "msync",
    "remap_file_pages", "mlock", "mlock2", "munlock", "mlockall", "munlockall", "membarrier",
    "memfd_create", "mseal", "map_shadow_stack", "pkey_alloc", "pkey_free", "pkey_mprotect",
    // Processes, threads and credentials (`clone` and `clone3` are handled separately).
    "fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4", "waitid", "kill",
    "tkill", "tgkill", "getpid", "getppid", "gettid", "getpgid", "setpgid", "getpgrp", "getsid",
    "setsid", "getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid", "getgroups",
    "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setfsuid",
    "setfsgid", "setgroups", "capget", "capset", "prctl", "arch_prctl", "modify_ldt",
    "get_thread_area", "set_thread_area", "set_tid_address", "set_robust_list",
    "get_robust_list", "rseq", "seccomp", "futex", "futex_waitv", "futex_wake", "futex_wait",
    "futex_requeue", "restart_syscall", "pidfd_open", "pidfd_send_signal", "pidfd_getfd",
    "getpriority", "setpriority", "ioprio_get", "ioprio_set", "sched_yield",
    "sched_getaffinity", "sched_setaffinity", "sched_getparam", "sched_setparam",
    "sched_getscheduler", "sched_setscheduler", "sched_get_priority_max",
    "sched_get_priority_min", "sched_rr_get_interval", "sched_getattr", "sched_setattr",
    "getrlimit", "setrlimit", "prlimit64", "getrusage", "times", "uname", "sysinfo", "getcpu",
    "getrandom", "sethostname", "setdomainname", "landlock_create_ruleset",
    "landlock_add_rule", "landlock_restrict_self", "lsm_get_self_attr", "lsm_set_self_attr",
    "lsm_list_modules", "uretprobe",
    // Signals.
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending", "rt_sigtimedwait",
    "rt_sigqueueinfo", "rt_tgsigqueueinfo", "rt_sigsuspend", "sigaltstack", "signalfd",
    "signalfd4", "pause", "alarm",
    // Clocks and timers (reading; setting the clock needs CAP_SYS_TIME below, and adjtimex
    // checks that capability itself when asked to change anything).
    "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday", "time",
    "adjtimex", "getitimer", "setitimer", "timer_create", "timer_settime", "timer_gettime",
    "timer_getoverrun", "timer_delete", "timerfd_create", "timerfd_settime", "timerfd_gettime",
    // Waiting for events; Linux AIO.
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2",
    "eventfd", "eventfd2", "poll", "ppoll", "select", "pselect6", "io_setup", "io_destroy",
    "io_submit", "io_cancel", "io_getevents", "io_pgetevents",
    // Sockets.
    "socketpair", "bind", "listen", "accept", "accept4", "connect", "getsockname",
    "getpeername", "getsockopt", "setsockopt", "sendto", "recvfrom", "sendmsg", "recvmsg",
    "sendmmsg", "recvmmsg", "shutdown",
    // System V and POSIX IPC (namespaced per container).
    "shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semtimedop", "semctl", "msgget",
    "msgsnd", "msgrcv", "msgctl", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive",
    "mq_notify", "mq_getsetattr",
];

/// The 32-bit ABIs' names for syscalls [`ALWAYS`] allows under their own name (the same
/// list as in Docker's profile). Only i386 has them; x32 uses x86_64's names.
///
/// `ipc` multiplexes the System V IPC calls, all allowed above. `socketcall`, which
/// multiplexes the socket calls, is allowed in `default_profile` except for `SYS_SOCKET`.
#[rustfmt::skip]
const COMPAT_32: &[&str] = &[
    "_llseek", "_newselect", "mmap2", "fcntl64", "stat64", "lstat64", "fstat64", "fstatat64",
    "statfs64", "fstatfs64", "truncate64", "ftruncate64", "sendfile64", "fadvise64_64",
    "chown32", "fchown32", "lchown32", "getuid32", "geteuid32", "getgid32", "getegid32",
    "getgroups32", "setgroups32", "getresuid32", "getresgid32", "setuid32", "setgid32",
    "setreuid32", "setregid32", "setresuid32", "setresgid32", "setfsuid32", "setfsgid32",
    "ugetrlimit", "waitpid", "sigprocmask", "sigreturn", "clock_gettime64", "clock_getres_time64",
    "clock_nanosleep_time64", "timer_gettime64", "timer_settime64", "timerfd_gettime64",
    "timerfd_settime64", "utimensat_time64", "pselect6_time64", "ppoll_time64",
    "io_pgetevents_time64", "recvmmsg_time64", "mq_timedsend_time64", "mq_timedreceive_time64",
    "semtimedop_time64", "rt_sigtimedwait_time64", "futex_time64", "sched_rr_get_interval_time64",
    "ipc",
];

/// Syscalls opened by a capability. `clone` and `clone3` for CAP_SYS_ADMIN are added in
/// `default_profile`, as they replace a restricted form rather than add to the list.
#[rustfmt::skip]
const BY_CAPABILITY: &[(&str, &[&str])] = &[
    (
        "CAP_SYS_ADMIN",
        &[
            "mount", "umount", "umount2", "unshare", "setns", "pivot_root", "bpf", "fanotify_init",
            "name_to_handle_at", "perf_event_open", "quotactl", "quotactl_fd", "lookup_dcookie",
            "swapon", "swapoff", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount",
            "open_tree", "open_tree_attr", "mount_setattr",
        ],
    ),
    ("CAP_SYS_MODULE", &["init_module", "finit_module", "delete_module"]),
    (
        "CAP_SYS_TIME",
        &["settimeofday", "clock_settime", "clock_adjtime", "stime", "clock_settime64", "clock_adjtime64"],
    ),
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_SYS_PTRACE", &["process_vm_readv", "process_vm_writev", "kcmp", "userfaultfd"]),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    ("CAP_SYSLOG", &["syslog"]),
    (
        "CAP_SYS_NICE",
        &["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node", "migrate_pages", "move_pages"],
    ),
    ("CAP_SYS_PACCT", &["acct"]),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    ("CAP_BPF", &["bpf"]),
    ("CAP_PERFMON", &["perf_event_open"]),
];

/// `personality` values allowed: plain Linux, 32-bit Linux, each with `UNAME26`, and the
/// query. Flags such as READ_IMPLIES_EXEC or ADDR_NO_RANDOMIZE weaken the process's own
/// hardening and stay refused.
const PERSONALITIES: &[u64] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// Namespace flags `clone` may not carry without CAP_SYS_ADMIN: NEWNS, NEWUTS, NEWIPC,
/// NEWUSER, NEWPID, NEWNET, NEWCGROUP. Creating a user namespace would otherwise hand the
/// process a full capability set over a fresh namespace, which is where most container
/// escapes through kernel bugs start.
pub(crate) const CLONE_NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u64;

const EPERM: u32 = libc::EPERM as u32;
/// Linux's address family number for vsock (not in every libc binding).
const AF_VSOCK: u64 = 40;
/// `socketcall`'s call number for `socket()` (linux/net.h).
const SYS_SOCKET: u64 = 1;
const ENOSYS: u32 = libc::ENOSYS as u32;

/// berth's default profile for a container whose effective capability set is
/// `effective_caps` (names like `"CAP_SYS_ADMIN"`; case and the `CAP_` prefix are not
/// significant). Unknown syscalls fail with EPERM. `--privileged` containers get no filter
/// at all; that decision is the caller's.
pub fn default_profile(effective_caps: &[String]) -> Seccomp {
    let has = |cap: &str| effective_caps.iter().any(|c| normalize_cap(c) == cap);
    let allow = |names: Vec<&str>| SeccompSyscall {
        names: names.into_iter().map(str::to_owned).collect(),
        action: "SCMP_ACT_ALLOW".into(),
        ..Default::default()
    };
    let mut always: Vec<&str> = ALWAYS.iter().chain(COMPAT_32).copied().collect();
    // Before 4.8 a tracer could change a syscall after seccomp had checked it, so ptrace
    // would be a way around the filter.
    if kernel_at_least(4, 8) {
        always.push("ptrace");
    }
    let mut syscalls = vec![allow(always)];
    for &value in PERSONALITIES {
        let mut rule = allow(vec!["personality"]);
        rule.args = vec![SeccompArg { index: 0, value, value_two: 0, op: "SCMP_CMP_EQ".into() }];
        syscalls.push(rule);
    }
    // Every socket family but AF_VSOCK, which reaches the hypervisor and the VMs beside this
    // host, as in Docker's profile. The kernel reads the family as a 32-bit int, so only the
    // low half is compared (a "not equal" on all 64 bits lets 0x1_0000_0028 through).
    syscalls.push(SeccompSyscall {
        names: vec!["socket".into()],
        action: "SCMP_ACT_ERRNO".into(),
        errno_ret: Some(EPERM),
        args: vec![SeccompArg { index: 0, value: 0xffff_ffff, value_two: AF_VSOCK, op: "SCMP_CMP_MASKED_EQ".into() }],
    });
    syscalls.push(allow(vec!["socket"]));
    // i386's `socketcall(SYS_SOCKET, args)` passes the family in memory, where no filter can
    // read it, so it would create AF_VSOCK sockets all the same. Docker's profile allows it
    // (and so leaves that door open); berth refuses it and keeps every other socketcall.
    // 32-bit programs that call `socket` directly (musl, Linux 4.3+) are unaffected; i386
    // glibc creates its sockets through socketcall and needs a profile that allows it
    // (Docker's own default.json is read as dockerd reads it).
    syscalls.push(SeccompSyscall {
        names: vec!["socketcall".into()],
        action: "SCMP_ACT_ERRNO".into(),
        errno_ret: Some(EPERM),
        args: vec![SeccompArg { index: 0, value: 0xffff_ffff, value_two: SYS_SOCKET, op: "SCMP_CMP_MASKED_EQ".into() }],
    });
    syscalls.push(allow(vec!["socketcall"]));
    if has("CAP_SYS_ADMIN") {
        syscalls.push(allow(vec!["clone", "clone3"]));
    } else {
        let mut clone = allow(vec!["clone"]);
        // Flags are the first argument on x86_64, x32, i386 and aarch64 (s390x would differ).
        clone.args =
            vec![SeccompArg { index: 0, value: CLONE_NAMESPACE_FLAGS, value_two: 0, op: "SCMP_CMP_MASKED_EQ".into() }];
        syscalls.push(clone);
        // clone3 passes its flags in memory, out of the filter's reach. ENOSYS makes glibc
        // and others fall back to clone, where the flags can be checked.
        syscalls.push(SeccompSyscall {
            names: vec!["clone3".into()],
            action: "SCMP_ACT_ERRNO".into(),
            errno_ret: Some(ENOSYS),
            args: Vec::new(),
        });
    }
    for (cap, names) in BY_CAPABILITY {
        if has(cap) {
            syscalls.push(allow(names.to_vec()));
        }
    }
    Seccomp {
        default_action: "SCMP_ACT_ERRNO".into(),
        default_errno_ret: Some(EPERM),
        architectures: architectures(),
        syscalls,
    }
}

/// `"sys_admin"` and `"CAP_SYS_ADMIN"` both become `"CAP_SYS_ADMIN"`.
fn normalize_cap(cap: &str) -> String {
    let upper = cap.trim().to_ascii_uppercase();
    if upper.starts_with("CAP_") { upper } else { format!("CAP_{upper}") }
}

/// The native ABI and the compat ABIs berth describes, as Docker's `archMap` lists them.
/// aarch64's arm32 compat ABI is not described (Docker lists `SCMP_ARCH_ARM`): its calls
/// are killed.
fn architectures() -> Vec<String> {
    match std::env::consts::ARCH {
        "x86_64" => vec!["SCMP_ARCH_X86_64".into(), "SCMP_ARCH_X86".into(), "SCMP_ARCH_X32".into()],
        "aarch64" => vec!["SCMP_ARCH_AARCH64".into()],
        _ => Vec::new(),
    }
}

/// Whether the running kernel is at least `major.minor`; an unparsable release counts as new.
fn kernel_at_least(major: u32, minor: u32) -> bool {
    let uname = rustix::system::uname();
    let release = uname.release().to_string_lossy();
    let mut parts = release.split(|c: char| !c.is_ascii_digit()).map(|p| p.parse::<u32>());
    match (parts.next(), parts.next()) {
        (Some(Ok(a)), Some(Ok(b))) => (a, b) >= (major, minor),
        _ => true,
    }
}
