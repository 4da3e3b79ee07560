//! Seccomp profiles: compilation errors, and what a loaded filter does to real syscalls
//! (through the fork-and-probe harness in `common`). The 32-bit ABIs have their own file,
//! `seccomp_compat.rs`.

mod common;

use berth_runtime::seccomp::{self, SeccompError};
use berth_runtime::spec::{Seccomp, SeccompArg, SeccompSyscall};
use common::{Outcome, Probe, docker_caps, run, sys};

const EPERM: i64 = -(libc::EPERM as i64);
const ENOSYS: i64 = -(libc::ENOSYS as i64);
const EINVAL: i64 = -(libc::EINVAL as i64);
const ADDR_NO_RANDOMIZE: u64 = 0x0040000;
const READ_IMPLIES_EXEC: u64 = 0x0400000;
const KEYCTL_GET_KEYRING_ID: u64 = 0;
const KEY_SPEC_SESSION_KEYRING: u64 = -3i64 as u64;

fn root_path() -> u64 {
    c"/".as_ptr() as u64
}

#[test]
fn default_profile_without_sys_admin() {
    let program = seccomp::compile(&seccomp::default_profile(&docker_caps())).unwrap();
    let probes = [
        ("getpid", sys(libc::SYS_getpid, &[])),
        ("unshare(CLONE_NEWUSER)", sys(libc::SYS_unshare, &[libc::CLONE_NEWUSER as u64])),
        ("unshare(CLONE_NEWUTS)", sys(libc::SYS_unshare, &[libc::CLONE_NEWUTS as u64])),
        ("keyctl", sys(libc::SYS_keyctl, &[KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0])),
        ("clone3", sys(libc::SYS_clone3, &[0, 0])),
        ("personality(query)", sys(libc::SYS_personality, &[0xffff_ffff])),
        ("personality(PER_LINUX)", sys(libc::SYS_personality, &[0])),
        ("personality(ADDR_NO_RANDOMIZE)", sys(libc::SYS_personality, &[ADDR_NO_RANDOMIZE])),
        ("personality(READ_IMPLIES_EXEC)", sys(libc::SYS_personality, &[READ_IMPLIES_EXEC])),
        ("fork", Probe::Clone(0)),
        ("clone(CLONE_NEWUTS)", Probe::Clone(libc::CLONE_NEWUTS as u64)),
        ("clone(CLONE_NEWUSER)", Probe::Clone(libc::CLONE_NEWUSER as u64)),
        ("mount", sys(libc::SYS_mount, &[0, 0, 0, 0, 0])),
        ("io_uring_setup", sys(libc::SYS_io_uring_setup, &[0, 0])),
        ("open_by_handle_at", sys(libc::SYS_open_by_handle_at, &[0, 0, 0])),
        ("unknown syscall 1000", sys(1000, &[])),
        ("chroot (CAP_SYS_CHROOT)", sys(libc::SYS_chroot, &[root_path()])),
    ];
    let list: Vec<Probe> = probes.iter().map(|p| p.1).collect();
    let got = run(Some(&program), &list).results();
    let r: std::collections::HashMap<&str, i64> = probes.iter().map(|p| p.0).zip(got).collect();
    eprintln!("results: {r:?}");

    assert!(r["getpid"] > 0);
    assert_eq!(r["unshare(CLONE_NEWUSER)"], EPERM);
    assert_eq!(r["unshare(CLONE_NEWUTS)"], EPERM);
    assert_eq!(r["keyctl"], EPERM);
    assert_eq!(r["clone3"], ENOSYS);
    assert!(r["personality(query)"] >= 0);
    assert!(r["personality(PER_LINUX)"] >= 0);
    assert_eq!(r["personality(ADDR_NO_RANDOMIZE)"], EPERM);
    assert_eq!(r["personality(READ_IMPLIES_EXEC)"], EPERM);
    assert_eq!(r["fork"], 0);
    assert_eq!(r["clone(CLONE_NEWUTS)"], EPERM);
    assert_eq!(r["clone(CLONE_NEWUSER)"], EPERM);
    assert_eq!(r["mount"], EPERM);
    assert_eq!(r["io_uring_setup"], EPERM);
    assert_eq!(r["open_by_handle_at"], EPERM);
    assert_eq!(r["unknown syscall 1000"], EPERM);
    assert_eq!(r["chroot (CAP_SYS_CHROOT)"], 0);

    // Without the filter the same calls fail differently (or succeed), so the answers
    // above really come from the filter.
    let base = run(None, &list).results();
    let b: std::collections::HashMap<&str, i64> = probes.iter().map(|p| p.0).zip(base).collect();
    assert_eq!(b["clone3"], EINVAL);
    assert_eq!(b["unknown syscall 1000"], ENOSYS);
    assert_ne!(b["mount"], EPERM);
}

#[test]
fn default_profile_with_sys_admin() {
    let mut caps = docker_caps();
    caps.push("CAP_SYS_ADMIN".into());
    let program = seccomp::compile(&seccomp::default_profile(&caps)).unwrap();
    let probes = [
        sys(libc::SYS_unshare, &[libc::CLONE_NEWUTS as u64]),
        sys(libc::SYS_clone3, &[0, 0]),
        Probe::Clone(libc::CLONE_NEWUTS as u64),
        Probe::Clone(0),
        sys(libc::SYS_keyctl, &[KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0]),
        sys(libc::SYS_mount, &[0, 0, 0, 0, 0]),
    ];
    let r = run(Some(&program), &probes).results();
    assert_eq!(r[0], 0, "unshare(CLONE_NEWUTS)");
    assert_eq!(r[1], EINVAL, "clone3 reaches the kernel");
    assert_eq!(r[2], 0, "clone(CLONE_NEWUTS)");
    assert_eq!(r[3], 0, "fork");
    assert_eq!(r[4], EPERM, "keyctl stays refused");
    assert_ne!(r[5], EPERM, "mount reaches the kernel");
}

fn rule(name: &str, action: &str, errno: Option<u32>, args: Vec<SeccompArg>) -> SeccompSyscall {
    SeccompSyscall { names: vec![name.into()], action: action.into(), errno_ret: errno, args }
}

fn arg(index: u32, op: &str, value: u64, value_two: u64) -> SeccompArg {
    SeccompArg { index, value, value_two, op: op.into() }
}

fn allow_by_default(syscalls: Vec<SeccompSyscall>) -> Seccomp {
    Seccomp { default_action: "SCMP_ACT_ALLOW".into(), default_errno_ret: None, architectures: vec![], syscalls }
}

/// Every comparison operator against the kernel, on 64-bit values that differ in the high
/// word, the low word or both, on different argument indices.
#[test]
fn argument_comparisons() {
    let v: u64 = 0x0000_0001_8000_0000;
    let (mask, masked): (u64, u64) = (0x0000_00ff_0000_ff00, 0x0000_0012_0000_3400);
    type Check = fn(u64, u64, u64) -> bool;
    let ops: [(&str, libc::c_long, Check); 7] = [
        ("SCMP_CMP_NE", libc::SYS_getpid, |a, v, _| a != v),
        ("SCMP_CMP_LT", libc::SYS_getppid, |a, v, _| a < v),
        ("SCMP_CMP_LE", libc::SYS_gettid, |a, v, _| a <= v),
        ("SCMP_CMP_EQ", libc::SYS_getuid, |a, v, _| a == v),
        ("SCMP_CMP_GE", libc::SYS_geteuid, |a, v, _| a >= v),
        ("SCMP_CMP_GT", libc::SYS_getgid, |a, v, _| a > v),
        ("SCMP_CMP_MASKED_EQ", libc::SYS_getegid, |a, m, x| a & m == x),
    ];
    let mut syscalls = Vec::new();
    for (i, (op, nr, _)) in ops.iter().enumerate() {
        let (value, two) = if *op == "SCMP_CMP_MASKED_EQ" { (mask, masked) } else { (v, 0) };
        syscalls.push(rule(seccomp_name(*nr), "SCMP_ACT_ERRNO", Some(77), vec![arg(i as u32 % 6, op, value, two)]));
    }
    let program = seccomp::compile(&allow_by_default(syscalls)).unwrap();

    #[rustfmt::skip]
    let values: Vec<u64> = vec![
        0, 1, v - 1, v, v + 1, v - (1 << 32), v + (1 << 32), 0x0000_0001_0000_0000, 0x0000_0001_ffff_ffff,
        0x8000_0000, 0x0000_0002_0000_0000, u64::MAX, 1 << 63, 0x0000_0012_0000_3400, 0xffff_ff12_ffff_34ff,
        0x0000_0012_0000_3500, 0x0000_0013_0000_3400,
    ];
    let mut probes = Vec::new();
    let mut expected = Vec::new();
    for (i, (op, nr, check)) in ops.iter().enumerate() {
        for &x in &values {
            let mut a = [0u64; 6];
            a[i % 6] = x;
            probes.push(Probe::Sys(*nr, a));
            let (value, two) = if *op == "SCMP_CMP_MASKED_EQ" { (mask, masked) } else { (v, 0) };
            expected.push((*op, x, check(x, value, two)));
        }
    }
    let got = run(Some(&program), &probes).results();
    for ((op, x, matches), r) in expected.iter().zip(got) {
        assert_eq!(r == -77, *matches, "{op} with argument {x:#x}: syscall returned {r}");
    }
}

fn seccomp_name(nr: libc::c_long) -> &'static str {
    match nr {
        libc::SYS_getpid => "getpid",
        libc::SYS_getppid => "getppid",
        libc::SYS_gettid => "gettid",
        libc::SYS_getuid => "getuid",
        libc::SYS_geteuid => "geteuid",
        libc::SYS_getgid => "getgid",
        libc::SYS_getegid => "getegid",
        _ => unreachable!(),
    }
}

/// How entries for one syscall combine: AND within an entry, OR for a repeated index,
/// first matching argument rule first, the argument-less entry last; kill actions kill.
#[test]
fn rule_semantics() {
    let profile = allow_by_default(vec![
        rule("getpid", "SCMP_ACT_ERRNO", Some(11), vec![arg(0, "SCMP_CMP_EQ", 1, 0), arg(1, "SCMP_CMP_EQ", 2, 0)]),
        rule("getppid", "SCMP_ACT_ERRNO", Some(12), vec![arg(0, "SCMP_CMP_EQ", 1, 0), arg(0, "SCMP_CMP_EQ", 2, 0)]),
        rule("gettid", "SCMP_ACT_ERRNO", Some(13), vec![]),
        rule("gettid", "SCMP_ACT_ALLOW", None, vec![arg(0, "SCMP_CMP_EQ", 5, 0)]),
        rule("getuid", "SCMP_ACT_ERRNO", Some(14), vec![arg(0, "SCMP_CMP_GT", 10, 0)]),
        rule("getuid", "SCMP_ACT_ERRNO", Some(15), vec![arg(0, "SCMP_CMP_GT", 5, 0)]),
        // Same action twice, with and without arguments: merged, not a conflict.
        rule("geteuid", "SCMP_ACT_ERRNO", Some(16), vec![arg(0, "SCMP_CMP_EQ", 1, 0)]),
        rule("geteuid", "SCMP_ACT_ERRNO", Some(16), vec![]),
        rule("getegid", "SCMP_ACT_KILL_PROCESS", None, vec![arg(0, "SCMP_CMP_EQ", 99, 0)]),
        // Names this architecture lacks are skipped.
        rule("no_such_syscall", "SCMP_ACT_KILL", None, vec![]),
    ]);
    let program = seccomp::compile(&profile).unwrap();
    let cases: &[(libc::c_long, &[u64], Option<i64>)] = &[
        (libc::SYS_getpid, &[1, 2], Some(-11)),
        (libc::SYS_getpid, &[1, 3], None),
        (libc::SYS_getpid, &[0, 2], None),
        (libc::SYS_getppid, &[1], Some(-12)),
        (libc::SYS_getppid, &[2], Some(-12)),
        (libc::SYS_getppid, &[3], None),
        (libc::SYS_gettid, &[5], None),
        (libc::SYS_gettid, &[6], Some(-13)),
        (libc::SYS_getuid, &[20], Some(-14)),
        (libc::SYS_getuid, &[7], Some(-15)),
        (libc::SYS_getuid, &[5], None),
        (libc::SYS_geteuid, &[0], Some(-16)),
        (libc::SYS_geteuid, &[1], Some(-16)),
        (libc::SYS_getegid, &[98], None),
    ];
    let probes: Vec<Probe> = cases.iter().map(|(nr, a, _)| sys(*nr, a)).collect();
    let got = run(Some(&program), &probes).results();
    for ((nr, a, want), r) in cases.iter().zip(got) {
        match want {
            Some(e) => assert_eq!(r, *e, "syscall {nr} {a:?}"),
            None => assert!(r >= 0, "syscall {nr} {a:?} should be allowed, got {r}"),
        }
    }
    assert_eq!(run(Some(&program), &[sys(libc::SYS_getegid, &[99])]), Outcome::Killed(libc::SIGSYS));
}

#[test]
fn profile_errors() {
    let bad_action = allow_by_default(vec![rule("getpid", "SCMP_ACT_NOTIFY", None, vec![])]);
    assert!(matches!(seccomp::compile(&bad_action), Err(SeccompError::UnsupportedAction(a)) if a == "SCMP_ACT_NOTIFY"));

    let mut bad_default = allow_by_default(vec![]);
    bad_default.default_action = "SCMP_ACT_BOGUS".into();
    assert!(matches!(seccomp::compile(&bad_default), Err(SeccompError::UnsupportedAction(_))));

    // Reported even when no named syscall exists here.
    let bad_action_unknown = allow_by_default(vec![rule("no_such_syscall", "SCMP_ACT_BOGUS", None, vec![])]);
    assert!(matches!(seccomp::compile(&bad_action_unknown), Err(SeccompError::UnsupportedAction(_))));

    let bad_op =
        allow_by_default(vec![rule("getpid", "SCMP_ACT_ERRNO", None, vec![arg(0, "SCMP_CMP_WHATEVER", 1, 0)])]);
    assert!(matches!(seccomp::compile(&bad_op), Err(SeccompError::UnsupportedOperator { .. })));

    let bad_index = allow_by_default(vec![rule("getpid", "SCMP_ACT_ERRNO", None, vec![arg(6, "SCMP_CMP_EQ", 1, 0)])]);
    assert!(matches!(seccomp::compile(&bad_index), Err(SeccompError::ArgumentIndex { index: 6, .. })));

    let bad_errno = allow_by_default(vec![rule("getpid", "SCMP_ACT_ERRNO", Some(5000), vec![])]);
    assert!(matches!(seccomp::compile(&bad_errno), Err(SeccompError::Errno(5000))));

    let conflict = allow_by_default(vec![
        rule("getpid", "SCMP_ACT_ERRNO", None, vec![]),
        rule("getpid", "SCMP_ACT_KILL", None, vec![]),
    ]);
    let err = seccomp::compile(&conflict).unwrap_err();
    assert!(matches!(err, SeccompError::ConflictingActions { .. }), "{err}");
    assert!(err.to_string().contains("getpid"), "{err}");
}

#[test]
fn unknown_names_are_skipped() {
    let with = allow_by_default(vec![
        rule("getpid", "SCMP_ACT_ERRNO", None, vec![]),
        SeccompSyscall {
            names: vec!["no_such_syscall".into(), "gettid".into(), "also_not_one".into()],
            action: "SCMP_ACT_ERRNO".into(),
            ..Default::default()
        },
    ]);
    let without = allow_by_default(vec![
        rule("getpid", "SCMP_ACT_ERRNO", None, vec![]),
        rule("gettid", "SCMP_ACT_ERRNO", None, vec![]),
    ]);
    let (a, b) = (seccomp::compile(&with).unwrap(), seccomp::compile(&without).unwrap());
    assert_eq!(a.len(), b.len());
    let same = a
        .instructions()
        .iter()
        .zip(b.instructions())
        .all(|(x, y)| (x.code, x.jt, x.jf, x.k) == (y.code, y.jt, y.jf, y.k));
    assert!(same);
}

/// The default profile, whatever the capabilities, fits the kernel's limit, names only
/// syscalls berth knows in one of the x86 ABIs (a typo would silently deny), and never
/// allows the syscalls it must not.
#[test]
fn default_profile_shape() {
    #[rustfmt::skip]
    let all_caps: Vec<String> = [
        "CAP_SYS_ADMIN", "CAP_SYS_MODULE", "CAP_SYS_TIME", "CAP_SYS_BOOT", "CAP_SYS_PTRACE",
        "CAP_SYS_RAWIO", "CAP_SYSLOG", "CAP_SYS_NICE", "CAP_SYS_PACCT", "CAP_SYS_TTY_CONFIG",
        "CAP_DAC_READ_SEARCH", "CAP_SYS_CHROOT", "CAP_BPF", "CAP_PERFMON",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for caps in [vec![], docker_caps(), all_caps] {
        let profile = seccomp::default_profile(&caps);
        assert_eq!(profile.default_action, "SCMP_ACT_ERRNO");
        assert_eq!(profile.default_errno_ret, Some(1));
        let program = seccomp::compile(&profile).unwrap();
        assert!(program.len() < 4096, "{} instructions", program.len());
        let names: Vec<&str> = profile.syscalls.iter().flat_map(|s| s.names.iter().map(String::as_str)).collect();
        assert!(names.len() > 280, "only {} names", names.len());
        if cfg!(target_arch = "x86_64") {
            let known = |n: &str| {
                ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_X86"]
                    .iter()
                    .any(|arch| seccomp::syscall_number_in(arch, n).is_some())
            };
            let unknown: Vec<&&str> = names.iter().filter(|n| !known(n)).collect();
            assert!(unknown.is_empty(), "unknown names: {unknown:?}");
        }
        #[rustfmt::skip]
        let never_allowed = [
            "kexec_load", "kexec_file_load", "keyctl", "add_key", "request_key", "nfsservctl", "uselib",
            "create_module", "get_kernel_syms", "query_module", "_sysctl", "sysfs", "ustat", "vm86", "vm86old",
            "io_uring_setup", "io_uring_enter", "io_uring_register",
        ];
        for never in never_allowed {
            assert!(!names.contains(&never), "{never} is allowed");
        }
        let admin = caps.iter().any(|c| c == "CAP_SYS_ADMIN");
        assert_eq!(names.contains(&"mount"), admin);
        assert_eq!(names.contains(&"userfaultfd"), caps.iter().any(|c| c == "CAP_SYS_PTRACE"));
    }
    // Round-trips through the OCI JSON form the daemon writes into config.json.
    let profile = seccomp::default_profile(&docker_caps());
    let json = serde_json::to_string(&profile).unwrap();
    assert_eq!(serde_json::from_str::<Seccomp>(&json).unwrap(), profile);
}

/// The numbers berth lists itself (for syscalls newer than `libc`'s tables) agree with
/// `libc` wherever `libc` has them.
#[cfg(target_arch = "x86_64")]
#[test]
fn syscall_numbers_agree_with_libc() {
    let known: &[(&str, libc::c_long)] = &[
        ("read", libc::SYS_read),
        ("clone3", libc::SYS_clone3),
        ("pidfd_send_signal", libc::SYS_pidfd_send_signal),
        ("io_uring_register", libc::SYS_io_uring_register),
        ("fspick", libc::SYS_fspick),
        ("close_range", libc::SYS_close_range),
        ("faccessat2", libc::SYS_faccessat2),
        ("mount_setattr", libc::SYS_mount_setattr),
        ("quotactl_fd", libc::SYS_quotactl_fd),
        ("landlock_restrict_self", libc::SYS_landlock_restrict_self),
        ("futex_waitv", libc::SYS_futex_waitv),
        ("set_mempolicy_home_node", libc::SYS_set_mempolicy_home_node),
        ("fchmodat2", libc::SYS_fchmodat2),
        ("mseal", libc::SYS_mseal),
        ("rseq", libc::SYS_rseq),
        ("newfstatat", libc::SYS_newfstatat),
    ];
    for (name, nr) in known {
        assert_eq!(seccomp::syscall_number(name), Some(*nr), "{name}");
    }
    assert_eq!(seccomp::syscall_number("io_pgetevents"), Some(333));
    assert_eq!(seccomp::syscall_number("no_such_syscall"), None);
}
