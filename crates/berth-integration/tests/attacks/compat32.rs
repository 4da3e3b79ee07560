//! The 32-bit doors into the kernel: on x86_64 any process, 64-bit ones included, can make
//! i386 system calls through `int $0x80`, and x32 calls with the x32 bit in the number.
//! Each ABI has its own numbers, so a filter that knew only x86_64's would be no filter
//! there. berth's default profile describes all three, as Docker's does: 32-bit programs
//! run, and what is refused to a 64-bit call (unshare, mount, keyctl, bpf, perf_event_open,
//! io_uring…) is refused through the 32-bit doors too; a profile that does not list the
//! 32-bit ABIs has their calls killed, as with libseccomp.
//!
//! The probes: `compat32` (a 64-bit program making i386 and x32 calls) and `i386` (a real
//! 32-bit program, built with `gcc -m32 -nostdlib`). Controls: the same probes with
//! `seccomp=unconfined` reach the kernel, which answers otherwise.

use std::collections::HashMap;

use berth_integration::Daemon;

use crate::{probe, probe_with};

const EPERM: i64 = -1;
const ENOSYS: i64 = -38;
/// Exit status of a process killed by SIGSYS (the filter's kill action).
const KILLED_BY_SIGSYS: i32 = 128 + 31;

/// The `name=result` lines a probe prints.
fn results(out: &str) -> HashMap<String, i64> {
    out.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.parse().unwrap_or_else(|_| panic!("bad line {k}={v} in {out}"))))
        .collect()
}

fn run_probe(d: &Daemon, dir: &std::path::Path, security: &[&str], cmd: &[&str]) -> berth_integration::Run {
    let mount = format!("{}:/probe:ro", dir.display());
    let mut args = vec!["run", "--rm", "--network", "none", "-v", &mount];
    for s in security {
        args.extend(["--security-opt", s]);
    }
    args.push("busybox");
    args.extend(cmd);
    d.berth(&args)
}

#[test]
fn thirty_two_bit_calls_get_the_rules_of_64_bit_ones() {
    let d = Daemon::with_busybox();
    let dir = probe(&d, "compat32");
    let out = run_probe(&d, &dir, &[], &["/probe/compat32"]).ok();
    let r = results(&out);
    // The control first: unconfined, the same calls reach the kernel.
    let free = results(&run_probe(&d, &dir, &["seccomp=unconfined"], &["/probe/compat32"]).ok());
    eprintln!("default profile: {r:?}\nunconfined: {free:?}");

    // Allowed i386 calls work: the compatibility half.
    assert_eq!(r["i386_getpid"], r["pid"], "{out}");
    assert_eq!(r["i386_write"], 20, "{out}");
    assert!(out.contains("hello from int 0x80\n"), "{out}");
    assert!(r["i386_socket_unix"] >= 0, "{out}");
    assert_eq!(r["i386_socketcall_socketpair"], 0, "{out}");
    // Refused as they are to 64-bit calls, and the process lives on.
    #[rustfmt::skip]
    let refused = [
        "i386_socket_vsock", "i386_socket_vsock_junk", "i386_keyctl", "i386_mount", "i386_umount", "i386_bpf",
        "i386_perf_event_open", "i386_open_by_handle_at", "i386_kexec_load", "i386_io_uring_setup",
        "i386_clone_newuser", "i386_unshare_newuser", "x32_keyctl", "x32_mount", "x32_unshare_newuser",
    ];
    for name in refused {
        assert_eq!(r[name], EPERM, "{name}: {out}");
    }
    assert_eq!(r["alive"], 1, "{out}");
    // socketcall's arguments are in memory, where no filter reads them, so Docker's profile
    // lets socketcall(SYS_SOCKET) create AF_VSOCK sockets. berth refuses SYS_SOCKET through
    // socketcall whatever the family (the direct i386 socket() is the way); the control
    // shows the probe does open a vsock socket that way when nothing stops it.
    assert_eq!(r["i386_socketcall_vsock"], EPERM, "{out}");
    assert_eq!(r["i386_socketcall_unix"], EPERM, "{out}");
    assert!(free["i386_socketcall_vsock"] >= 0, "{free:?}");
    assert!(free["i386_socketcall_unix"] >= 0, "{free:?}");
    // x32 calls the profile allows reach the kernel, which runs them only if it has x32.
    if free["x32_getpid"] == ENOSYS {
        assert_eq!(r["x32_getpid"], ENOSYS, "{out}");
    } else {
        assert_eq!(r["x32_getpid"], r["pid"], "{out}");
    }

    // The control: without a filter the kernel answers these itself (its own EPERMs, for
    // calls that need a capability the container lacks, prove nothing, so they are not
    // asked here).
    for name in ["i386_keyctl", "i386_perf_event_open", "i386_io_uring_setup", "i386_clone_newuser"] {
        assert_ne!(free[name], EPERM, "{name} unconfined: {free:?}");
    }
    assert_ne!(free["i386_unshare_newuser"], EPERM, "{free:?}");
    assert_eq!(free["alive"], 1);
}

#[test]
fn a_real_32_bit_program_runs_under_the_default_profile() {
    let d = Daemon::with_busybox();
    let flags = ["-m32", "-nostdlib", "-fno-pic", "-fno-stack-protector", "-ffreestanding"];
    let dir = probe_with(&d, "i386", &flags);
    let out = run_probe(&d, &dir, &[], &["/probe/i386"]).ok();
    let r = results(&out);
    assert_eq!((r["pid"], r["uid"], r["alive"]), (1, 0, 1), "{out}");
    for name in ["keyctl", "mount", "bpf", "perf_event_open", "socket_vsock", "unshare_newuser"] {
        assert_eq!(r[name], EPERM, "{name}: {out}");
    }
    // Control: unconfined, the kernel answers.
    let out = run_probe(&d, &dir, &["seccomp=unconfined"], &["/probe/i386"]).ok();
    let free = results(&out);
    for name in ["keyctl", "perf_event_open", "unshare_newuser"] {
        assert_ne!(free[name], EPERM, "{name} unconfined: {out}");
    }
}

/// A user's profile that lists only SCMP_ARCH_X86_64 has 32-bit calls killed (libseccomp's
/// "bad arch" action); listing SCMP_ARCH_X86 and SCMP_ARCH_X32, directly or through Docker's
/// `archMap`, lets them through under its rules.
#[test]
fn a_profile_without_the_32_bit_architectures_kills_their_calls() {
    let d = Daemon::with_busybox();
    let dir = probe(&d, "compat32");
    let profile = |name: &str, arches: &str| {
        let path = d.dir.path().join(format!("{name}.json"));
        let json = format!(
            r#"{{"defaultAction":"SCMP_ACT_ALLOW",{arches},
                "syscalls":[{{"names":["keyctl"],"action":"SCMP_ACT_ERRNO","errnoRet":1,
                              "excludes":{{"caps":["CAP_SYS_ADMIN"]}}}}]}}"#
        );
        std::fs::write(&path, json).unwrap();
        format!("seccomp={}", path.display())
    };
    let native_only = profile("native", r#""architectures":["SCMP_ARCH_X86_64"]"#);
    for abi in ["i386", "x32"] {
        let run = run_probe(&d, &dir, &[&native_only], &["/probe/compat32", abi]);
        assert_eq!(run.code, KILLED_BY_SIGSYS, "{abi}: {run:?}");
        assert!(run.stdout.contains("pid=") && !run.stdout.contains("alive"), "{abi}: {run:?}");
    }

    let listed = profile("listed", r#""architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"]"#);
    let mapped = profile(
        "mapped",
        r#""archMap":[{"architecture":"SCMP_ARCH_AARCH64","subArchitectures":["SCMP_ARCH_ARM"]},
                      {"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86","SCMP_ARCH_X32"]}]"#,
    );
    for opt in [&listed, &mapped] {
        let out = run_probe(&d, &dir, &[opt], &["/probe/compat32", "i386"]).ok();
        let r = results(&out);
        assert_eq!((r["i386_getpid"], r["i386_keyctl"], r["alive"]), (r["pid"], EPERM, 1), "{out}");
        let out = run_probe(&d, &dir, &[opt], &["/probe/compat32", "x32"]).ok();
        let r = results(&out);
        assert!(r["x32_getpid"] == ENOSYS || r["x32_getpid"] == r["pid"], "{out}");
        assert_eq!((r["x32_keyctl"], r["alive"]), (EPERM, 1), "{out}");
    }
}
