//! Unit tests for the syscall tables and the generated programs.
//!
//! The programs are run by a small classic-BPF interpreter (only the instructions the
//! generator emits), so every ABI can be checked call by call, including x32, which this
//! kernel may not have, and i386 with argument registers a real caller could not always
//! set. `tests/seccomp.rs` loads the same programs into the kernel.

use std::collections::BTreeMap;

use libc::sock_filter;

use super::abi::{Abi, X32_SYSCALL_BIT};
use super::{SeccompError, action, compile, conditions, default_profile, x86_tables};
use crate::spec::{Seccomp, SeccompArg, SeccompSyscall};

const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const AUDIT_ARCH_ARM: u32 = 0x4000_0028;
const EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
const ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const KILL: u32 = libc::SECCOMP_RET_KILL_PROCESS;
const AF_VSOCK: u64 = 40;

/// Runs `prog` on one call, as the kernel would, and returns its `SECCOMP_RET_*` value.
fn eval(prog: &[sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let word = |off: u32| -> u32 {
        match off {
            0 => nr,
            4 => arch,
            16..=63 if off.is_multiple_of(4) => {
                let arg = args[(off as usize - 16) / 8];
                if off.is_multiple_of(8) { arg as u32 } else { (arg >> 32) as u32 }
            }
            _ => panic!("load from offset {off}"),
        }
    };
    let (mut pc, mut a) = (0usize, 0u32);
    loop {
        let i = prog[pc];
        pc += 1;
        let jump = |taken: bool| usize::from(if taken { i.jt } else { i.jf });
        match u32::from(i.code) {
            c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => a = word(i.k),
            c if c == libc::BPF_ALU | libc::BPF_AND | libc::BPF_K => a &= i.k,
            c if c == libc::BPF_RET | libc::BPF_K => return i.k,
            c if c == libc::BPF_JMP | libc::BPF_JA => pc += i.k as usize,
            c if c == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K => pc += jump(a == i.k),
            c if c == libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K => pc += jump(a > i.k),
            c if c == libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K => pc += jump(a >= i.k),
            c => panic!("unexpected instruction {c:#x} at {}", pc - 1),
        }
    }
}

/// What the profile says for `name` in `abi` with `args`, read straight from the profile:
/// argument entries in order, then the argument-less one, then the default.
fn reference(profile: &Seccomp, abi: Abi, name: &str, args: [u64; 6]) -> u32 {
    let default = action(&profile.default_action, profile.default_errno_ret).unwrap();
    let mut plain = None;
    for entry in profile.syscalls.iter().filter(|e| e.names.iter().any(|n| n == name)) {
        let ret = action(&entry.action, entry.errno_ret).unwrap();
        let alternatives = conditions(entry).unwrap();
        if alternatives.is_empty() {
            plain = plain.or(Some(ret));
            continue;
        }
        let holds = |c: &super::Cond| {
            let (mut x, mut v) = (args[c.arg as usize], c.value);
            let mut mask = match c.op {
                super::Op::MaskedEq { mask } => mask,
                _ => u64::MAX,
            };
            if !abi.wide_args() {
                (x, v, mask) = (x & 0xffff_ffff, v & 0xffff_ffff, mask & 0xffff_ffff);
            }
            match c.op {
                super::Op::Eq => x == v,
                super::Op::Ne => x != v,
                super::Op::Lt => x < v,
                super::Op::Le => x <= v,
                super::Op::Ge => x >= v,
                super::Op::Gt => x > v,
                super::Op::MaskedEq { .. } => x & mask == v,
            }
        };
        if alternatives.iter().any(|conds| conds.iter().all(holds)) {
            return ret;
        }
    }
    plain.unwrap_or(default)
}

fn table(abi: Abi) -> &'static [(&'static str, u32)] {
    match abi {
        Abi::X86_64 => x86_tables::X86_64,
        Abi::X32 => x86_tables::X32,
        Abi::I386 => x86_tables::I386,
        Abi::Aarch64 => &[],
    }
}

/// Runs `prog` on the call `name` of `abi`; panics if the ABI has no such call.
fn call(prog: &[sock_filter], abi: Abi, name: &str, args: &[u64]) -> u32 {
    let nr = abi.number(name).unwrap_or_else(|| panic!("{abi:?} has no {name}"));
    let mut a = [0u64; 6];
    a[..args.len()].copy_from_slice(args);
    eval(prog, abi.audit(), nr, a)
}

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

/// `#define __NR_name N` lines of a uapi header (x32's `(__X32_SYSCALL_BIT + N)` as N).
fn header(path: &str) -> Option<BTreeMap<String, u32>> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("#define __NR_") else { continue };
        let (name, value) = rest.split_once(' ').unwrap();
        let value = value.trim_matches(|c| c == '(' || c == ')').trim_start_matches("__X32_SYSCALL_BIT + ");
        out.insert(name.to_owned(), value.parse().unwrap_or_else(|_| panic!("{path}: {line}")));
    }
    Some(out)
}

#[test]
fn x86_tables_are_sorted_by_name() {
    for abi in [Abi::X86_64, Abi::X32, Abi::I386] {
        let t = table(abi);
        assert!(t.len() > 300, "{abi:?}: {} entries", t.len());
        assert!(t.windows(2).all(|w| w[0].0 < w[1].0), "{abi:?} is not sorted by name");
    }
}

/// The checked-in tables are exactly the installed headers (when linux-libc-dev is
/// installed); if this fails after a header update, run `scripts/gen-syscall-tables.sh`.
#[test]
fn x86_tables_match_the_headers() {
    let dir = "/usr/include/x86_64-linux-gnu/asm";
    for (abi, file) in [(Abi::X86_64, "unistd_64.h"), (Abi::X32, "unistd_x32.h"), (Abi::I386, "unistd_32.h")] {
        let Some(want) = header(&format!("{dir}/{file}")) else {
            eprintln!("{dir}/{file} is not installed; not compared");
            continue;
        };
        let have: BTreeMap<String, u32> = table(abi).iter().map(|&(n, nr)| (n.to_owned(), nr)).collect();
        assert_eq!(have, want, "{abi:?} differs from {file}: run scripts/gen-syscall-tables.sh");
        if abi == Abi::I386 {
            assert_eq!(x86_tables::LAST_NUMBER, want.values().copied().max().unwrap());
        }
    }
}

/// Two independent sources for x86_64: the `libc` crate's constants and the headers.
#[cfg(target_arch = "x86_64")]
#[test]
fn x86_64_table_agrees_with_libc() {
    let mut n = 0;
    for (name, nr) in super::syscalls::libc_x86_64() {
        assert_eq!(Abi::X86_64.number(name).map(i64::from), Some(nr), "{name}");
        n += 1;
    }
    assert!(n > 300);
}

#[test]
fn numbers_per_abi() {
    assert_eq!(Abi::X86_64.number("getpid"), Some(39));
    assert_eq!(Abi::X32.number("getpid"), Some(X32_SYSCALL_BIT | 39));
    assert_eq!(Abi::I386.number("getpid"), Some(20));
    // x32's own numbers for calls whose arguments differ from x86_64's.
    assert_eq!(Abi::X32.number("execve"), Some(X32_SYSCALL_BIT | 520));
    assert_eq!(Abi::X32.number("getdents"), Some(X32_SYSCALL_BIT | 78));
    // Names only one ABI has.
    assert_eq!(Abi::I386.number("socketcall"), Some(102));
    assert_eq!(Abi::X86_64.number("socketcall"), None);
    assert_eq!(Abi::X32.number("mmap2"), None);
    assert_eq!(Abi::I386.number("newfstatat"), None);
    // Newer than the headers: the unified numbering, x32 with its bit; shadow stacks are
    // x86_64's alone.
    assert_eq!(Abi::I386.number("fchmodat2"), Some(452));
    assert_eq!(Abi::X32.number("file_setattr"), Some(X32_SYSCALL_BIT | 469));
    assert_eq!(Abi::X86_64.number("map_shadow_stack"), Some(453));
    assert_eq!(Abi::I386.number("map_shadow_stack"), None);
    assert_eq!(Abi::X86_64.number("uretprobe"), Some(335));
    assert_eq!(Abi::I386.number("uretprobe"), None);
    assert_eq!(super::syscall_number_in("SCMP_ARCH_X86", "keyctl"), Some(288));
    assert_eq!(super::syscall_number_in("SCMP_ARCH_MIPS", "keyctl"), None);
}

/// Every call of every x86 ABI, with a few argument vectors, gets from the program what
/// the profile says, whatever the capabilities.
#[cfg(target_arch = "x86_64")]
#[test]
fn default_profile_program_follows_the_profile_in_every_abi() {
    let junk = 0xdead_beef_0000_0000;
    #[rustfmt::skip]
    let arg_vectors: [[u64; 6]; 7] = [
        [0; 6], [AF_VSOCK, 1, 0, 0, 0, 0], [junk | AF_VSOCK, 0, 0, 0, 0, 0], [junk | 1, 0, 0, 0, 0, 0],
        [libc::CLONE_NEWUSER as u64 | 17, 0, 0, 0, 0, 0], [0xffff_ffff, 0, 0, 0, 0, 0], [8, 0, 0, 0, 0, 0],
    ];
    let mut admin = docker_caps();
    admin.push("CAP_SYS_ADMIN".into());
    for caps in [vec![], docker_caps(), admin] {
        let profile = default_profile(&caps);
        let prog = compile(&profile).unwrap().insns;
        let default = action(&profile.default_action, profile.default_errno_ret).unwrap();
        for abi in [Abi::X86_64, Abi::X32, Abi::I386] {
            // Every number up to past x32's last, named or not (unnamed ones get the default).
            let names: BTreeMap<u32, &str> = [Abi::X86_64, Abi::X32, Abi::I386]
                .iter()
                .flat_map(|&a| table(a).iter().map(|&(n, _)| n))
                .chain(super::syscalls::UNIFIED.iter().chain(super::syscalls::X86_64_NEWER).map(|&(n, _)| n))
                .filter_map(|n| abi.number(n).map(|nr| (nr, n)))
                .collect();
            assert!(names.len() >= table(abi).len());
            let base = if abi == Abi::X32 { X32_SYSCALL_BIT } else { 0 };
            for nr in (base..=base + 600).chain([u32::MAX]) {
                for args in arg_vectors {
                    let want = names.get(&nr).map_or(default, |name| reference(&profile, abi, name, args));
                    let name = names.get(&nr).copied().unwrap_or("?");
                    assert_eq!(eval(&prog, abi.audit(), nr, args), want, "{abi:?} {nr:#x} {name} {args:x?}");
                }
            }
        }
    }
}

/// What must stay refused in the 64-bit ABI is refused through i386 and x32 too: the
/// attack is a container reaching through `int 0x80` what the 64-bit filter blocks.
#[cfg(target_arch = "x86_64")]
#[test]
fn blocked_calls_are_blocked_in_every_abi() {
    let prog = compile(&default_profile(&docker_caps())).unwrap().insns;
    #[rustfmt::skip]
    let blocked = [
        "unshare", "mount", "umount", "umount2", "keyctl", "add_key", "request_key", "bpf",
        "perf_event_open", "kexec_load", "kexec_file_load", "open_by_handle_at", "io_uring_setup",
        "io_uring_enter", "io_uring_register", "init_module", "finit_module", "delete_module",
        "setns", "pivot_root", "swapon", "fsopen", "fsmount", "move_mount", "open_tree",
        "vm86", "vm86old", "userfaultfd", "settimeofday", "stime", "clock_settime64", "syslog",
    ];
    let mut seen = 0;
    for abi in [Abi::X86_64, Abi::X32, Abi::I386] {
        for name in blocked.iter().filter(|n| abi.number(n).is_some()) {
            assert_eq!(call(&prog, abi, name, &[libc::CLONE_NEWUSER as u64]), EPERM, "{abi:?} {name}");
            seen += 1;
        }
        let newuser = libc::CLONE_NEWUSER as u64 | libc::SIGCHLD as u64;
        assert_eq!(call(&prog, abi, "clone", &[newuser]), EPERM, "{abi:?} clone(CLONE_NEWUSER)");
        assert_eq!(call(&prog, abi, "clone", &[0xdead_beef_0000_0000 | newuser]), EPERM, "{abi:?}");
        assert_eq!(call(&prog, abi, "clone", &[libc::SIGCHLD as u64]), ALLOW, "{abi:?} fork");
        assert_eq!(call(&prog, abi, "clone3", &[0, 0]), ENOSYS, "{abi:?} clone3");
        assert_eq!(call(&prog, abi, "socket", &[AF_VSOCK, 1, 0]), EPERM, "{abi:?} socket(AF_VSOCK)");
        assert_eq!(call(&prog, abi, "socket", &[0xdead_beef_0000_0000 | AF_VSOCK, 1, 0]), EPERM, "{abi:?}");
        assert_eq!(call(&prog, abi, "socket", &[libc::AF_UNIX as u64, 1, 0]), ALLOW, "{abi:?} socket(AF_UNIX)");
        assert_eq!(call(&prog, abi, "personality", &[0x0040_0000]), EPERM, "{abi:?} personality");
        assert_eq!(call(&prog, abi, "getpid", &[]), ALLOW, "{abi:?} getpid");
        assert_eq!(call(&prog, abi, "execve", &[]), ALLOW, "{abi:?} execve");
    }
    assert!(seen > 80, "{seen}");
    // What 32-bit programs need under their own names, and the multiplexers Docker allows.
    for name in ["mmap2", "fstat64", "_llseek", "getuid32", "clock_gettime64", "set_thread_area", "socketcall", "ipc"] {
        assert_eq!(call(&prog, Abi::I386, name, &[]), ALLOW, "i386 {name}");
    }
    // socketcall(SYS_SOCKET, …) hides the family in memory: refused; other socket calls pass.
    assert_eq!(call(&prog, Abi::I386, "socketcall", &[1, 0x1000]), EPERM, "socketcall(SYS_SOCKET)");
    assert_eq!(call(&prog, Abi::I386, "socketcall", &[0x1_0000_0001, 0x1000]), EPERM, "high half ignored");
    assert_eq!(call(&prog, Abi::I386, "socketcall", &[3, 0x1000]), ALLOW, "socketcall(SYS_CONNECT)");
    assert_eq!(call(&prog, Abi::I386, "socketcall", &[8, 0x1000]), ALLOW, "socketcall(SYS_SOCKETPAIR)");
    // An unknown number in each ABI gets the default action, as in the native one.
    assert_eq!(eval(&prog, AUDIT_ARCH_I386, 1000, [0; 6]), EPERM);
    assert_eq!(eval(&prog, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 1000, [0; 6]), EPERM);
    // Another architecture's calls are killed.
    assert_eq!(eval(&prog, AUDIT_ARCH_ARM, 20, [0; 6]), KILL);
}

fn profile(architectures: &[&str], syscalls: Vec<SeccompSyscall>) -> Seccomp {
    Seccomp {
        default_action: "SCMP_ACT_ALLOW".into(),
        default_errno_ret: None,
        architectures: architectures.iter().map(|s| s.to_string()).collect(),
        syscalls,
    }
}

fn errno_if(name: &str, errno: u32, args: Vec<SeccompArg>) -> SeccompSyscall {
    SeccompSyscall { names: vec![name.into()], action: "SCMP_ACT_ERRNO".into(), errno_ret: Some(errno), args }
}

/// The ABIs described follow `architectures`: the native one always, compat ones when
/// listed; calls through the others are killed, as libseccomp's "bad arch" action does.
#[cfg(target_arch = "x86_64")]
#[test]
fn architectures_select_the_abis() {
    let rules = || vec![errno_if("getpid", 5, vec![])];
    let errno5 = libc::SECCOMP_RET_ERRNO | 5;
    let cases: [(&[&str], [u32; 3]); 5] = [
        (&[], [errno5, KILL, KILL]),
        (&["SCMP_ARCH_X86_64"], [errno5, KILL, KILL]),
        (&["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"], [errno5, KILL, errno5]),
        (&["SCMP_ARCH_X32"], [errno5, errno5, KILL]),
        (&["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_S390X"], [errno5, errno5, errno5]),
    ];
    for (arches, want) in cases {
        let prog = compile(&profile(arches, rules())).unwrap().insns;
        let got = [Abi::X86_64, Abi::X32, Abi::I386].map(|abi| call(&prog, abi, "getpid", &[]));
        assert_eq!(got, want, "{arches:?}");
        // Unnamed calls get the default action in every described ABI.
        let gettid = [Abi::X86_64, Abi::X32, Abi::I386].map(|abi| call(&prog, abi, "gettid", &[]));
        assert_eq!(gettid.map(|r| r == KILL), want.map(|r| r == KILL), "{arches:?}");
        // -1 (a tracer skipping the call) is never killed for being above the x32 bit.
        assert_eq!(eval(&prog, AUDIT_ARCH_X86_64, u32::MAX, [0; 6]), ALLOW, "{arches:?}");
    }
    let err = compile(&profile(&["SCMP_ARCH_X86_64", "SCMP_ARCH_Z80"], rules())).unwrap_err();
    assert!(matches!(&err, SeccompError::UnknownArchitecture(a) if a == "SCMP_ARCH_Z80"), "{err}");
}

/// On i386 only the low 32 bits of an argument and of the profile's value count (as in
/// libseccomp for 32-bit ABIs, and as the kernel's i386 handlers read them); x32 and
/// x86_64 compare all 64 bits.
#[cfg(target_arch = "x86_64")]
#[test]
fn arguments_are_32_bits_on_i386() {
    let arch = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"];
    let minus3 = -3i64 as u64;
    let cond = |op: &str, value: u64, two: u64| SeccompArg { index: 1, value, value_two: two, op: op.into() };
    let p = profile(
        &arch,
        vec![
            errno_if("keyctl", 11, vec![cond("SCMP_CMP_EQ", minus3, 0)]),
            errno_if("getpid", 12, vec![cond("SCMP_CMP_GT", 0x1_0000_0005, 0)]),
            errno_if("kill", 13, vec![cond("SCMP_CMP_MASKED_EQ", 0xffff_0000_0000_00ff, 0x12)]),
            errno_if("dup", 14, vec![cond("SCMP_CMP_NE", 7, 0)]),
        ],
    );
    let prog = compile(&p).unwrap().insns;
    let r = |abi: Abi, name: &str, arg: u64| call(&prog, abi, name, &[0, arg]) & libc::SECCOMP_RET_DATA;
    let cases: &[(&str, u64, [u32; 3])] = &[
        // (x86_64, x32, i386); 0 is ALLOW's data.
        ("keyctl", minus3, [11, 11, 11]),
        ("keyctl", 0xffff_fffd, [0, 0, 11]),
        ("keyctl", 0x1234_5678_ffff_fffd, [0, 0, 11]),
        ("getpid", 0x1_0000_0006, [12, 12, 12]),
        ("getpid", 6, [0, 0, 12]),
        ("getpid", 5, [0, 0, 0]),
        ("kill", 0x12, [13, 13, 13]),
        ("kill", 0xffff_0000_0000_0012, [0, 0, 13]),
        ("kill", 0x0000_ffff_ffff_ff12, [13, 13, 13]),
        ("dup", 7, [0, 0, 0]),
        ("dup", 0x1_0000_0007, [14, 14, 0]),
    ];
    for &(name, arg, want) in cases {
        let got = [Abi::X86_64, Abi::X32, Abi::I386].map(|abi| r(abi, name, arg));
        assert_eq!(got, want, "{name}({arg:#x})");
    }
}

/// The default profile with every capability fits the kernel's limit with room to spare.
#[cfg(target_arch = "x86_64")]
#[test]
fn default_program_size() {
    #[rustfmt::skip]
    let all: Vec<String> = [
        "CAP_SYS_ADMIN", "CAP_SYS_MODULE", "CAP_SYS_TIME", "CAP_SYS_BOOT", "CAP_SYS_PTRACE",
        "CAP_SYS_RAWIO", "CAP_SYSLOG", "CAP_SYS_NICE", "CAP_SYS_PACCT", "CAP_SYS_TTY_CONFIG",
        "CAP_DAC_READ_SEARCH", "CAP_SYS_CHROOT", "CAP_BPF", "CAP_PERFMON",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for caps in [vec![], docker_caps(), all] {
        let len = compile(&default_profile(&caps)).unwrap().len();
        eprintln!("{} caps: {len} instructions", caps.len());
        assert!(len < 1024, "{len} instructions");
    }
}
