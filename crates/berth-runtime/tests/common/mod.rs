//! The fork-and-probe harness the seccomp tests share.
//!
//! A filter cannot be removed once loaded, so each behavioural test forks a child, loads
//! the filter there, runs a list of raw syscalls ("probes") and sends their results back
//! through a pipe. The test harness is multi-threaded, so the child only touches memory
//! allocated before the fork, makes raw syscalls and leaves with `_exit`. Needs root (the
//! filter is loaded without no_new_privs, as the runtime does when it keeps CAP_SYS_ADMIN).

// Each test crate uses part of the harness.
#![allow(dead_code)]

use std::os::fd::OwnedFd;

use berth_runtime::seccomp::{self, Program, SeccompError};

/// Docker's default capability set, the usual input to `default_profile`.
#[rustfmt::skip]
pub fn docker_caps() -> Vec<String> {
    [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[derive(Debug, Clone, Copy)]
pub enum Probe {
    /// A raw syscall; the result is its return value or `-errno`.
    Sys(libc::c_long, [u64; 6]),
    /// `clone(flags | SIGCHLD)` like fork; 0 if the new process ran and exited cleanly.
    Clone(u64),
    /// An i386 syscall through `int 0x80`: its number and five arguments, passed as full
    /// 64-bit registers (the i386 entry reads their low halves).
    #[cfg(target_arch = "x86_64")]
    Int80(u32, [u64; 5]),
}

pub fn sys(nr: libc::c_long, args: &[u64]) -> Probe {
    let mut a = [0u64; 6];
    a[..args.len()].copy_from_slice(args);
    Probe::Sys(nr, a)
}

#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// The load result (0 or -errno), then one result per probe.
    Ran(Vec<i64>),
    Killed(i32),
}

impl Outcome {
    pub fn results(self) -> Vec<i64> {
        match self {
            Outcome::Ran(r) => {
                assert_eq!(r[0], 0, "loading the filter failed: errno {}", -r[0]);
                r[1..].to_vec()
            }
            Outcome::Killed(sig) => panic!("child killed by signal {sig}"),
        }
    }
}

/// Forks; the child loads `program` (if any), runs `probes` and reports.
#[allow(unsafe_code)]
pub fn run(program: Option<&Program>, probes: &[Probe]) -> Outcome {
    let (rd, wr) = rustix::pipe::pipe().unwrap();
    let mut results = vec![0i64; probes.len() + 1];
    // SAFETY: the child runs `child`, which makes raw syscalls on memory allocated before
    // the fork and never returns; it allocates nothing and takes no locks.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        drop(rd);
        child(program, probes, &mut results, &wr);
    }
    drop(wr);
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match rustix::io::read(&rd, &mut buf) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => panic!("reading child results: {e}"),
        }
    }
    let (_, status) =
        rustix::process::waitpid(rustix::process::Pid::from_raw(pid), rustix::process::WaitOptions::empty())
            .unwrap()
            .unwrap();
    if let Some(sig) = status.terminating_signal() {
        return Outcome::Killed(sig);
    }
    assert_eq!(status.exit_status(), Some(0));
    assert_eq!(bytes.len(), results.len() * 8, "child reported {} bytes", bytes.len());
    Outcome::Ran(bytes.chunks(8).map(|c| i64::from_ne_bytes(c.try_into().unwrap())).collect())
}

#[allow(unsafe_code)]
fn child(program: Option<&Program>, probes: &[Probe], results: &mut [i64], out: &OwnedFd) -> ! {
    if let Some(p) = program {
        results[0] = match seccomp::load(p) {
            Ok(()) => 0,
            Err(SeccompError::LoadNotPermitted) => -i64::from(libc::EACCES),
            Err(_) => -1,
        };
    }
    for (i, probe) in probes.iter().enumerate() {
        results[i + 1] = match *probe {
            Probe::Sys(nr, a) => raw(nr, a),
            Probe::Clone(flags) => {
                let pid = raw(libc::SYS_clone, [flags | libc::SIGCHLD as u64, 0, 0, 0, 0, 0]);
                if pid == 0 {
                    // SAFETY: leaving the grandchild at once, without running anything.
                    unsafe { libc::_exit(0) }
                }
                if pid < 0 {
                    pid
                } else {
                    let pid = rustix::process::Pid::from_raw(pid as i32);
                    match rustix::process::waitpid(pid, rustix::process::WaitOptions::empty()) {
                        Ok(Some((_, st))) if st.exit_status() == Some(0) => 0,
                        _ => -9999,
                    }
                }
            }
            #[cfg(target_arch = "x86_64")]
            Probe::Int80(nr, a) => int80(nr, a),
        };
    }
    for r in results.iter() {
        let _ = rustix::io::write(out, &r.to_ne_bytes());
    }
    // SAFETY: ends the forked child without running the parent's exit handlers.
    unsafe { libc::_exit(0) }
}

/// An i386 syscall from this 64-bit process; the result is the 32-bit return value.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
pub fn int80(nr: u32, a: [u64; 5]) -> i64 {
    let ret: u64;
    // SAFETY: the probes pass integers or null pointers, and the syscalls probed write
    // through none of their arguments. rbx cannot be an operand (LLVM reserves it), so the
    // first argument is swapped in and out around the call. The compat entry preserves
    // every register but eax; r8 to r11 are declared clobbered for kernels before 4.17,
    // which did not save them.
    unsafe {
        std::arch::asm!(
            "xchg {b}, rbx",
            "int 0x80",
            "xchg {b}, rbx",
            b = inout(reg) a[0] => _,
            inlateout("rax") u64::from(nr) => ret,
            in("rcx") a[1], in("rdx") a[2], in("rsi") a[3], in("rdi") a[4],
            out("r8") _, out("r9") _, out("r10") _, out("r11") _,
            options(nostack),
        );
    }
    i64::from(ret as u32 as i32)
}

#[allow(unsafe_code)]
pub fn raw(nr: libc::c_long, a: [u64; 6]) -> i64 {
    // SAFETY: probes pass integers, null pointers or pointers to static NUL-terminated
    // strings; the syscalls probed do not write through them.
    let r = unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]) };
    if r == -1 { -i64::from(std::io::Error::last_os_error().raw_os_error().unwrap_or(0)) } else { r }
}
