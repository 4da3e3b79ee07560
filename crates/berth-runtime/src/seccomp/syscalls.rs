//! Syscall names to numbers, per ABI.
//!
//! OCI profiles name syscalls; the kernel filters numbers. A name an ABI does not have
//! (`open` on aarch64, `socketcall` on x86_64, `mmap2` anywhere but i386) resolves to
//! `None` there and the compiler skips it, as libseccomp does, so one profile serves every
//! architecture and every ABI of one.
//!
//! The x86 ABIs (x86_64, x32, i386) come from tables generated from the kernel's uapi
//! headers (`x86_tables.rs`, `scripts/gen-syscall-tables.sh`). aarch64 takes its numbers from
//! the `libc` crate's constants, so no number is typed by hand there either; on x86_64 the
//! same constants are kept for a test that checks them against the generated table.
//!
//! Syscalls newer than the headers (or than `libc`) are listed by number: since Linux 5.1 a
//! new syscall gets the same number on every architecture and ABI (424 onwards; x32 adds its
//! bit as to every number), so that part is shared.

use super::abi::{Abi, X32_SYSCALL_BIT};
use super::x86_tables;

/// Entries `("SYS_<name>", libc::SYS_<name>)`; the lookup strips the prefix.
#[cfg(any(target_arch = "aarch64", all(test, target_arch = "x86_64")))]
macro_rules! from_libc {
    ($($sys:ident),* $(,)?) => {
        &[$((stringify!($sys), libc::$sys)),*]
    };
}

#[cfg(any(target_arch = "aarch64", all(test, target_arch = "x86_64")))]
#[rustfmt::skip]
const COMMON: &[(&str, i64)] = from_libc!(
    SYS_accept, SYS_accept4, SYS_acct, SYS_add_key, SYS_adjtimex, SYS_bind, SYS_bpf, SYS_brk,
    SYS_capget, SYS_capset, SYS_chdir, SYS_chroot, SYS_clock_adjtime, SYS_clock_getres,
    SYS_clock_gettime, SYS_clock_nanosleep, SYS_clock_settime, SYS_clone, SYS_close,
    SYS_connect, SYS_copy_file_range, SYS_delete_module, SYS_dup, SYS_dup3, SYS_epoll_create1,
    SYS_epoll_ctl, SYS_epoll_pwait, SYS_eventfd2, SYS_execve, SYS_execveat, SYS_exit,
    SYS_exit_group, SYS_faccessat, SYS_fadvise64, SYS_fallocate, SYS_fanotify_init,
    SYS_fanotify_mark, SYS_fchdir, SYS_fchmod, SYS_fchmodat, SYS_fchown, SYS_fchownat,
    SYS_fcntl, SYS_fdatasync, SYS_fgetxattr, SYS_finit_module, SYS_flistxattr, SYS_flock,
    SYS_fremovexattr, SYS_fsetxattr, SYS_fstat, SYS_fstatfs, SYS_fsync, SYS_ftruncate,
    SYS_futex, SYS_get_mempolicy, SYS_get_robust_list, SYS_getcpu, SYS_getcwd, SYS_getdents64,
    SYS_getegid, SYS_geteuid, SYS_getgid, SYS_getgroups, SYS_getitimer, SYS_getpeername,
    SYS_getpgid, SYS_getpid, SYS_getppid, SYS_getpriority, SYS_getrandom, SYS_getresgid,
    SYS_getresuid, SYS_getrusage, SYS_getsid, SYS_getsockname, SYS_getsockopt, SYS_gettid,
    SYS_gettimeofday, SYS_getuid, SYS_getxattr, SYS_init_module, SYS_inotify_add_watch,
    SYS_inotify_init1, SYS_inotify_rm_watch, SYS_io_cancel, SYS_io_destroy, SYS_io_getevents,
    SYS_io_setup, SYS_io_submit, SYS_ioctl, SYS_ioprio_get, SYS_ioprio_set, SYS_kcmp,
    SYS_kexec_load, SYS_keyctl, SYS_kill, SYS_lgetxattr, SYS_linkat, SYS_listen, SYS_listxattr,
    SYS_llistxattr, SYS_lookup_dcookie, SYS_lremovexattr, SYS_lseek, SYS_lsetxattr, SYS_madvise,
    SYS_mbind, SYS_membarrier, SYS_memfd_create, SYS_migrate_pages, SYS_mincore, SYS_mkdirat,
    SYS_mknodat, SYS_mlock, SYS_mlock2, SYS_mlockall, SYS_mmap, SYS_mount, SYS_move_pages,
    SYS_mprotect, SYS_mq_getsetattr, SYS_mq_notify, SYS_mq_open, SYS_mq_timedreceive,
    SYS_mq_timedsend, SYS_mq_unlink, SYS_mremap, SYS_msgctl, SYS_msgget, SYS_msgrcv, SYS_msgsnd,
    SYS_msync, SYS_munlock, SYS_munlockall, SYS_munmap, SYS_name_to_handle_at, SYS_nanosleep,
    SYS_newfstatat, SYS_nfsservctl, SYS_open_by_handle_at, SYS_openat, SYS_perf_event_open,
    SYS_personality, SYS_pipe2, SYS_pivot_root, SYS_pkey_alloc, SYS_pkey_free,
    SYS_pkey_mprotect, SYS_ppoll, SYS_prctl, SYS_pread64, SYS_preadv, SYS_preadv2,
    SYS_prlimit64, SYS_process_vm_readv, SYS_process_vm_writev, SYS_pselect6, SYS_ptrace,
    SYS_pwrite64, SYS_pwritev, SYS_pwritev2, SYS_quotactl, SYS_read, SYS_readahead,
    SYS_readlinkat, SYS_readv, SYS_reboot, SYS_recvfrom, SYS_recvmmsg, SYS_recvmsg,
    SYS_remap_file_pages, SYS_removexattr, SYS_renameat2, SYS_request_key, SYS_restart_syscall,
    SYS_rseq, SYS_rt_sigaction, SYS_rt_sigpending, SYS_rt_sigprocmask, SYS_rt_sigqueueinfo,
    SYS_rt_sigreturn, SYS_rt_sigsuspend, SYS_rt_sigtimedwait, SYS_rt_tgsigqueueinfo,
    SYS_sched_get_priority_max, SYS_sched_get_priority_min, SYS_sched_getaffinity,
    SYS_sched_getattr, SYS_sched_getparam, SYS_sched_getscheduler, SYS_sched_rr_get_interval,
    SYS_sched_setaffinity, SYS_sched_setattr, SYS_sched_setparam, SYS_sched_setscheduler,
    SYS_sched_yield, SYS_seccomp, SYS_semctl, SYS_semget, SYS_semop, SYS_semtimedop,
    SYS_sendfile, SYS_sendmmsg, SYS_sendmsg, SYS_sendto, SYS_set_mempolicy, SYS_set_robust_list,
    SYS_set_tid_address, SYS_setdomainname, SYS_setfsgid, SYS_setfsuid, SYS_setgid,
    SYS_setgroups, SYS_sethostname, SYS_setitimer, SYS_setns, SYS_setpgid, SYS_setpriority,
    SYS_setregid, SYS_setresgid, SYS_setresuid, SYS_setreuid, SYS_setsid, SYS_setsockopt,
    SYS_settimeofday, SYS_setuid, SYS_setxattr, SYS_shmat, SYS_shmctl, SYS_shmdt, SYS_shmget,
    SYS_shutdown, SYS_sigaltstack, SYS_signalfd4, SYS_socket, SYS_socketpair, SYS_splice,
    SYS_statfs, SYS_statx, SYS_swapoff, SYS_swapon, SYS_symlinkat, SYS_sync, SYS_syncfs,
    SYS_sysinfo, SYS_syslog, SYS_tee, SYS_tgkill, SYS_timer_create, SYS_timer_delete,
    SYS_timer_getoverrun, SYS_timer_gettime, SYS_timer_settime, SYS_timerfd_create,
    SYS_timerfd_gettime, SYS_timerfd_settime, SYS_times, SYS_tkill, SYS_truncate, SYS_umask,
    SYS_umount2, SYS_uname, SYS_unlinkat, SYS_unshare, SYS_userfaultfd, SYS_utimensat,
    SYS_vhangup, SYS_vmsplice, SYS_wait4, SYS_waitid, SYS_write, SYS_writev
);

#[cfg(all(test, target_arch = "x86_64"))]
#[rustfmt::skip]
const ARCH: &[(&str, i64)] = from_libc!(
    SYS__sysctl, SYS_access, SYS_afs_syscall, SYS_alarm, SYS_arch_prctl, SYS_chmod, SYS_chown,
    SYS_creat, SYS_dup2, SYS_epoll_create, SYS_epoll_ctl_old, SYS_epoll_wait,
    SYS_epoll_wait_old, SYS_eventfd, SYS_fork, SYS_futimesat, SYS_get_thread_area, SYS_getdents,
    SYS_getpgrp, SYS_getpmsg, SYS_getrlimit, SYS_inotify_init, SYS_ioperm, SYS_iopl,
    SYS_kexec_file_load, SYS_lchown, SYS_link, SYS_lstat, SYS_mkdir, SYS_mknod, SYS_modify_ldt,
    SYS_open, SYS_pause, SYS_pipe, SYS_poll, SYS_putpmsg, SYS_readlink, SYS_rename,
    SYS_renameat, SYS_rmdir, SYS_security, SYS_select, SYS_set_thread_area, SYS_setrlimit,
    SYS_signalfd, SYS_stat, SYS_symlink, SYS_sync_file_range, SYS_sysfs, SYS_time, SYS_tuxcall,
    SYS_unlink, SYS_uselib, SYS_ustat, SYS_utime, SYS_utimes, SYS_vfork, SYS_vserver
);

#[cfg(target_arch = "aarch64")]
const ARCH: &[(&str, i64)] = &[];

/// The generic-table syscalls glibc's aarch64 constants in `libc` leave out.
#[cfg(target_arch = "aarch64")]
#[rustfmt::skip]
const ARCH_EXTRA: &[(&str, i64)] = &[
    ("renameat", 38), ("sync_file_range", 84), ("getrlimit", 163), ("setrlimit", 164),
    ("io_pgetevents", 292), ("kexec_file_load", 294),
];

/// The unified numbering shared by all architectures since Linux 5.1.
#[rustfmt::skip]
pub(super) const UNIFIED: &[(&str, u32)] = &[
    ("pidfd_send_signal", 424), ("io_uring_setup", 425), ("io_uring_enter", 426),
    ("io_uring_register", 427), ("open_tree", 428), ("move_mount", 429), ("fsopen", 430),
    ("fsconfig", 431), ("fsmount", 432), ("fspick", 433), ("pidfd_open", 434), ("clone3", 435),
    ("close_range", 436), ("openat2", 437), ("pidfd_getfd", 438), ("faccessat2", 439),
    ("process_madvise", 440), ("epoll_pwait2", 441), ("mount_setattr", 442),
    ("quotactl_fd", 443), ("landlock_create_ruleset", 444), ("landlock_add_rule", 445),
    ("landlock_restrict_self", 446), ("memfd_secret", 447), ("process_mrelease", 448),
    ("futex_waitv", 449), ("set_mempolicy_home_node", 450), ("cachestat", 451),
    ("fchmodat2", 452), ("map_shadow_stack", 453), ("futex_wake", 454), ("futex_wait", 455),
    ("futex_requeue", 456), ("statmount", 457), ("listmount", 458), ("lsm_get_self_attr", 459),
    ("lsm_set_self_attr", 460), ("lsm_list_modules", 461), ("mseal", 462), ("setxattrat", 463),
    ("getxattrat", 464), ("listxattrat", 465), ("removexattrat", 466), ("open_tree_attr", 467),
    ("file_getattr", 468), ("file_setattr", 469),
];

/// x86_64 syscalls newer than the generated table that are not in the unified numbering.
pub(super) const X86_64_NEWER: &[(&str, u32)] = &[("uretprobe", 335)];

/// Unified-numbering syscalls newer than the headers that only x86_64 has (shadow stacks
/// are 64-bit only).
const X86_64_ONLY: &[&str] = &["map_shadow_stack"];

/// The number of syscall `name` in `abi`, as the kernel reports it in `seccomp_data.nr`
/// (x32 numbers with their bit set), or `None` if the ABI has no such syscall (or berth
/// does not know it).
pub(super) fn number(abi: Abi, name: &str) -> Option<u32> {
    let in_table =
        |table: &[(&'static str, u32)]| table.binary_search_by(|&(n, _)| n.cmp(name)).ok().map(|i| table[i].1);
    // Numbers the headers already cover come from them alone.
    let unified = || UNIFIED.iter().find(|&&(n, nr)| n == name && nr > x86_tables::LAST_NUMBER).map(|&(_, nr)| nr);
    match abi {
        Abi::X86_64 => in_table(x86_tables::X86_64)
            .or_else(|| X86_64_NEWER.iter().find(|&&(n, _)| n == name).map(|&(_, nr)| nr))
            .or_else(unified),
        Abi::X32 => in_table(x86_tables::X32)
            .or_else(|| unified().filter(|_| !X86_64_ONLY.contains(&name)))
            .map(|nr| nr | X32_SYSCALL_BIT),
        Abi::I386 => in_table(x86_tables::I386).or_else(|| unified().filter(|_| !X86_64_ONLY.contains(&name))),
        Abi::Aarch64 => aarch64_number(name),
    }
}

#[cfg(target_arch = "aarch64")]
fn aarch64_number(name: &str) -> Option<u32> {
    let libc_tables = COMMON.iter().chain(ARCH);
    let found = libc_tables.map(|&(sys, nr)| (&sys[4..], nr)).find(|&(n, _)| n == name);
    let found = found.or_else(|| ARCH_EXTRA.iter().copied().find(|&(n, _)| n == name)).map(|(_, nr)| nr);
    found.and_then(|nr| u32::try_from(nr).ok()).or_else(|| UNIFIED.iter().find(|&&(n, _)| n == name).map(|&(_, nr)| nr))
}

/// Only an aarch64 build knows aarch64's numbers (they come from its `libc` constants).
#[cfg(not(target_arch = "aarch64"))]
fn aarch64_number(_name: &str) -> Option<u32> {
    None
}

/// `libc`'s x86_64 constants, for the test that checks them against the generated table.
#[cfg(all(test, target_arch = "x86_64"))]
pub(super) fn libc_x86_64() -> impl Iterator<Item = (&'static str, i64)> {
    COMMON.iter().chain(ARCH).map(|&(sys, nr)| (&sys[4..], nr))
}
