//! Seccomp profiles: compilation errors, and what a loaded filter does to real syscalls.
//!
//! A filter cannot be removed once loaded, so each behavioural test forks a child, loads
//! the filter there, runs a list of raw syscalls ("probes") and sends their results back
//! through a pipe. The test harness is multi-threaded, so the child only touches memory
//! allocated before the fork, makes raw syscalls and leaves with `_exit`. Needs root (the
//! filter is loaded without no_new_privs, as the runtime does when it keeps CAP_SYS_ADMIN).

use std::os::fd::OwnedFd;

use berth_runtime::seccomp::{self, Program, SeccompError};
use berth_runtime::spec::{Seccomp, SeccompArg, SeccompSyscall};

/// Docker's default capability set, the usual input to `default_profile`.
#[rustfmt::skip]
fn docker_caps() -> Vec<String> {
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
enum Probe {
    /// A raw syscall; the result is its return value or `-errno`.
    Sys(libc::c_long, [u64; 6]),
    /// `clone(flags | SIGCHLD)` like fork; 0 if the new process ran and exited cleanly.
    Clone(u64),
    /// An i386 `getpid` through `int 0x80`.
    #[cfg(target_arch = "x86_64")]
    Int80,
}

fn sys(nr: libc::c_long, args: &[u64]) -> Probe {
    let mut a = [0u64; 6];
    a[..args.len()].copy_from_slice(args);
    Probe::Sys(nr, a)
}

#[derive(Debug, PartialEq)]
enum Outcome {
    /// The load result (0 or -errno), then one result per probe.
    Ran(Vec<i64>),
    Killed(i32),
}

impl Outcome {
    fn results(self) -> Vec<i64> {
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
fn run(program: Option<&Program>, probes: &[Probe]) -> Outcome {
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
            Probe::Int80 => {
                let ret: i32;
                // SAFETY: i386 getpid (20) takes no arguments and touches no memory; the
                // registers the compat entry may change are declared clobbered.
                unsafe {
                    std::arch::asm!("int 0x80", inlateout("eax") 20 => ret,
                        out("r8") _, out("r9") _, out("r10") _, out("r11") _, options(nostack));
                }
                i64::from(ret)
            }
        };
    }
    for r in results.iter() {
        let _ = rustix::io::write(out, &r.to_ne_bytes());
    }
    // SAFETY: ends the forked child without running the parent's exit handlers.
    unsafe { libc::_exit(0) }
}

#[allow(unsafe_code)]
fn raw(nr: libc::c_long, a: [u64; 6]) -> i64 {
    // SAFETY: probes pass integers, null pointers or pointers to static NUL-terminated
    // strings; the syscalls probed do not write through them.
    let r = unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]) };
    if r == -1 { -i64::from(std::io::Error::last_os_error().raw_os_error().unwrap_or(0)) } else { r }
}

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

/// Other ABIs than the native one are killed, not filtered with the wrong numbers.
#[cfg(target_arch = "x86_64")]
#[test]
fn foreign_abis_are_killed() {
    let program = seccomp::compile(&seccomp::default_profile(&docker_caps())).unwrap();
    // x32 getpid: the x32 bit on a native number.
    let x32 = sys(0x4000_0000 | libc::SYS_getpid, &[]);
    assert_eq!(run(Some(&program), &[x32]), Outcome::Killed(libc::SIGSYS));
    // The i386 entry, when the kernel has it.
    if let Outcome::Ran(r) = run(None, &[Probe::Int80]) {
        assert!(r[1] > 0, "i386 getpid without a filter: {}", r[1]);
        assert_eq!(run(Some(&program), &[Probe::Int80]), Outcome::Killed(libc::SIGSYS));
    }
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
/// syscalls berth knows on x86_64 (a typo would silently deny), and never allows the
/// syscalls it must not.
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
            let unknown: Vec<&&str> = names.iter().filter(|n| seccomp::syscall_number(n).is_none()).collect();
            assert!(unknown.is_empty(), "unknown names: {unknown:?}");
        }
        #[rustfmt::skip]
        let never_allowed = [
            "kexec_load", "kexec_file_load", "keyctl", "add_key", "request_key", "nfsservctl", "uselib",
            "create_module", "get_kernel_syms", "query_module", "_sysctl", "sysfs", "ustat", "vm86",
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
