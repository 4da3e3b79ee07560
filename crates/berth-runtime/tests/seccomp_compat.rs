//! Seccomp and the 32-bit ABIs on x86_64, in the kernel: i386 calls (`int 0x80`, open to
//! any process, 64-bit ones included) and x32 calls (the x32 bit in a native number) get
//! the profile's rules under their own numbers, and an ABI the profile does not list is
//! killed. The attack these stop: reaching through `int 0x80` a syscall the 64-bit filter
//! refuses. `src/seccomp/tests.rs` checks every number of every ABI on the program itself.

#![cfg(target_arch = "x86_64")]

mod common;

use berth_runtime::seccomp;
use berth_runtime::spec::{Seccomp, SeccompArg, SeccompSyscall};
use common::{Outcome, Probe, docker_caps, run, sys};

const EPERM: i64 = -(libc::EPERM as i64);
const ENOSYS: i64 = -(libc::ENOSYS as i64);
const EBADF: i64 = -(libc::EBADF as i64);
const X32_BIT: i64 = 0x4000_0000;
const AF_VSOCK: u64 = 40;
const KEYCTL_GET_KEYRING_ID: u64 = 0;
const KEY_SPEC_SESSION_KEYRING: u64 = 0xffff_fffd;
/// What a 64-bit caller may leave in the high half of a register it passes to `int 0x80`.
const JUNK: u64 = 0xdead_beef_0000_0000;

fn i386_nr(name: &str) -> u32 {
    let nr = seccomp::syscall_number_in("SCMP_ARCH_X86", name).unwrap_or_else(|| panic!("no i386 {name}"));
    nr as u32
}

fn int80(name: &str, args: &[u64]) -> Probe {
    let mut a = [0u64; 5];
    a[..args.len()].copy_from_slice(args);
    Probe::Int80(i386_nr(name), a)
}

fn x32(name: &str, args: &[u64]) -> Probe {
    let nr = seccomp::syscall_number_in("SCMP_ARCH_X32", name).unwrap_or_else(|| panic!("no x32 {name}"));
    assert_ne!(nr & X32_BIT, 0);
    sys(nr, args)
}

/// Whether this kernel runs i386 calls at all (CONFIG_IA32_EMULATION, not disabled).
fn kernel_has_i386() -> bool {
    matches!(run(None, &[int80("getpid", &[])]), Outcome::Ran(r) if r[1] > 0)
}

#[test]
fn i386_calls_follow_the_default_profile() {
    if !kernel_has_i386() {
        eprintln!("this kernel runs no i386 calls; nothing to filter");
        return;
    }
    let program = seccomp::compile(&seccomp::default_profile(&docker_caps())).unwrap();
    let probes = [
        ("getpid (64-bit)", sys(libc::SYS_getpid, &[])),
        ("getpid", int80("getpid", &[])),
        ("write(-1)", int80("write", &[0xffff_ffff, 0, 0])),
        ("socket(AF_UNIX)", int80("socket", &[libc::AF_UNIX as u64, libc::SOCK_STREAM as u64, 0])),
        ("socket(AF_VSOCK)", int80("socket", &[AF_VSOCK, libc::SOCK_STREAM as u64, 0])),
        ("socket(junk|AF_VSOCK)", int80("socket", &[JUNK | AF_VSOCK, libc::SOCK_STREAM as u64, 0])),
        ("clone3", int80("clone3", &[0, 0])),
        ("unshare(CLONE_NEWUSER)", int80("unshare", &[libc::CLONE_NEWUSER as u64])),
        ("clone(CLONE_NEWUSER)", int80("clone", &[(libc::CLONE_NEWUSER | libc::SIGCHLD) as u64])),
        ("keyctl", int80("keyctl", &[KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0])),
        ("mount", int80("mount", &[])),
        ("umount", int80("umount", &[])),
        ("bpf", int80("bpf", &[])),
        ("perf_event_open", int80("perf_event_open", &[])),
        ("open_by_handle_at", int80("open_by_handle_at", &[])),
        ("kexec_load", int80("kexec_load", &[])),
        ("io_uring_setup", int80("io_uring_setup", &[])),
        ("vm86old", int80("vm86old", &[])),
    ];
    let list: Vec<Probe> = probes.iter().map(|p| p.1).collect();
    let got = run(Some(&program), &list).results();
    let r: std::collections::HashMap<&str, i64> = probes.iter().map(|p| p.0).zip(got).collect();
    eprintln!("with the default profile: {r:?}");

    // Allowed calls work, under i386's numbers.
    assert_eq!(r["getpid"], r["getpid (64-bit)"]);
    assert_eq!(r["write(-1)"], EBADF);
    assert!(r["socket(AF_UNIX)"] >= 0, "{}", r["socket(AF_UNIX)"]);
    // And what the 64-bit filter refuses is refused here too.
    assert_eq!(r["socket(AF_VSOCK)"], EPERM);
    assert_eq!(r["socket(junk|AF_VSOCK)"], EPERM);
    assert_eq!(r["clone3"], ENOSYS);
    for name in [
        "unshare(CLONE_NEWUSER)",
        "clone(CLONE_NEWUSER)",
        "keyctl",
        "mount",
        "umount",
        "bpf",
        "perf_event_open",
        "open_by_handle_at",
        "kexec_load",
        "io_uring_setup",
        "vm86old",
    ] {
        assert_eq!(r[name], EPERM, "{name}");
    }

    // Control: without the filter the probes reach the kernel, which answers otherwise.
    let control = ["socket(AF_VSOCK)", "clone3", "keyctl", "mount", "bpf", "perf_event_open"];
    let list: Vec<Probe> = control.iter().map(|name| probes.iter().find(|p| p.0 == *name).unwrap().1).collect();
    let base = run(None, &list).results();
    eprintln!("unfiltered: {:?}", control.iter().zip(&base).collect::<Vec<_>>());
    for (name, got) in control.iter().zip(base) {
        assert_ne!(got, EPERM, "{name} without a filter");
        assert_ne!(got, ENOSYS, "{name} without a filter");
    }
}

/// A profile that does not list i386 and x32 (a user's, say, with only SCMP_ARCH_X86_64)
/// kills their calls, as libseccomp does.
#[test]
fn unlisted_abis_are_killed() {
    let mut profile = seccomp::default_profile(&docker_caps());
    profile.architectures = vec!["SCMP_ARCH_X86_64".into()];
    let program = seccomp::compile(&profile).unwrap();
    assert!(run(Some(&program), &[sys(libc::SYS_getpid, &[])]).results()[0] > 0);
    assert_eq!(run(Some(&program), &[x32("getpid", &[])]), Outcome::Killed(libc::SIGSYS));
    if kernel_has_i386() {
        assert_eq!(run(Some(&program), &[int80("getpid", &[])]), Outcome::Killed(libc::SIGSYS));
    }
}

/// x32 calls get the profile's rules under x32's numbers. The filter runs before the kernel
/// looks the number up, so this holds whether or not the kernel has the x32 ABI (without
/// it, allowed calls end in ENOSYS).
#[test]
fn x32_calls_follow_the_default_profile() {
    let unfiltered = run(None, &[x32("getpid", &[])]).results()[0];
    let native = run(None, &[sys(libc::SYS_getpid, &[])]).results()[0];
    let kernel_has_x32 = unfiltered != ENOSYS;
    eprintln!("x32 getpid without a filter: {unfiltered} (this kernel has x32: {kernel_has_x32})");

    let program = seccomp::compile(&seccomp::default_profile(&docker_caps())).unwrap();
    let probes = [
        x32("getpid", &[]),
        x32("keyctl", &[KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0]),
        x32("unshare", &[libc::CLONE_NEWUSER as u64]),
        x32("mount", &[]),
        x32("bpf", &[]),
        x32("socket", &[AF_VSOCK, libc::SOCK_STREAM as u64, 0]),
        // x32's own number for a call that also has an x86_64 one (and so one in x32).
        x32("kexec_load", &[]),
        // x86_64's number for it with the x32 bit: no x32 call, so the default action.
        sys(X32_BIT | libc::SYS_kexec_load, &[]),
    ];
    let r = run(Some(&program), &probes).results();
    if kernel_has_x32 {
        assert_eq!(r[0] > 0, native > 0);
    } else {
        assert_eq!(r[0], ENOSYS, "allowed, then refused by a kernel without x32");
    }
    for (i, got) in r.iter().enumerate().skip(1) {
        assert_eq!(*got, EPERM, "probe {i}: {:?}", probes[i]);
    }
}

/// On i386 only the low half of an argument register decides, in the filter as in the
/// kernel's handlers: a 64-bit caller's junk in the high half changes nothing.
#[test]
fn i386_argument_high_halves_are_ignored() {
    if !kernel_has_i386() {
        return;
    }
    let profile = Seccomp {
        default_action: "SCMP_ACT_ALLOW".into(),
        default_errno_ret: None,
        architectures: vec!["SCMP_ARCH_X86_64".into(), "SCMP_ARCH_X86".into()],
        syscalls: vec![SeccompSyscall {
            names: vec!["dup".into()],
            action: "SCMP_ACT_ERRNO".into(),
            errno_ret: Some(77),
            args: vec![SeccompArg { index: 0, value: 1000, value_two: 0, op: "SCMP_CMP_EQ".into() }],
        }],
    };
    let program = seccomp::compile(&profile).unwrap();
    let probes = [
        int80("dup", &[1000]),
        int80("dup", &[JUNK | 1000]),
        int80("dup", &[1001]),
        sys(libc::SYS_dup, &[1000]),
        sys(libc::SYS_dup, &[JUNK | 1000]),
    ];
    let r = run(Some(&program), &probes).results();
    assert_eq!(r, vec![-77, -77, EBADF, -77, EBADF]);
}
