//! Seccomp: berth's default profile, OCI profile compilation, and loading.
//!
//! The contract:
//!
//! - [`default_profile`] gives the profile a container gets unless it is privileged or
//!   asks for another one; it depends on the container's capabilities.
//! - [`from_docker_json`] reads a user's profile in Docker's format (`archMap`,
//!   `includes`/`excludes`), resolving it for this machine and container as dockerd does.
//! - [`compile`] turns any OCI profile (ours or a user's `--security-opt seccomp=…`) into a
//!   BPF [`Program`] for the architecture berth runs on and the compat ABIs the profile
//!   lists in `architectures` (on x86_64: `SCMP_ARCH_X86` for i386, `SCMP_ARCH_X32`; see
//!   `abi`). Everything that can be wrong with a profile is reported here, in the daemon or
//!   before the container's process starts, never at [`load`] time. Syscall names an ABI
//!   does not have are skipped there, as libseccomp does, so one profile serves every
//!   architecture and ABI.
//! - [`load`] installs a program on the calling thread. It neither allocates nor sets
//!   `no_new_privs`: the runtime calls it in the child between fork and exec, and decides
//!   about `no_new_privs` itself (without it, loading needs CAP_SYS_ADMIN).
//!
//! Semantics of a compiled profile, per syscall number: entries with arguments are tried
//! in profile order and the first whose conditions all hold decides; otherwise an entry
//! without arguments decides; otherwise the default action does. Conditions of one entry
//! must all hold, except that, as in runc, an entry naming the same argument index twice
//! is taken as one alternative per condition (libseccomp cannot AND two comparisons of
//! one argument). Two argument-less entries giving one syscall different actions are an
//! error. Every described ABI gets the same rules by name, each with its own numbers; on
//! i386 arguments are compared on their low 32 bits (see `bpf`). Calls through an ABI the
//! profile does not list kill the process, as libseccomp does for architectures a filter
//! lacks.

mod abi;
mod bpf;
mod docker;
mod profile;
mod syscalls;
#[cfg(test)]
mod tests;
mod x86_tables;

use std::collections::BTreeMap;
use std::fmt;

use crate::spec::{Seccomp, SeccompArg, SeccompSyscall};
use abi::{Abi, X32_SYSCALL_BIT};
use bpf::{Cond, Op};

pub use docker::from_docker_json;
pub(crate) use profile::CLONE_NAMESPACE_FLAGS;
pub use profile::default_profile;

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error(
        "unsupported seccomp action {0:?} (supported: SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL, \
         SCMP_ACT_KILL_THREAD, SCMP_ACT_KILL_PROCESS, SCMP_ACT_TRAP, SCMP_ACT_TRACE, SCMP_ACT_LOG)"
    )]
    UnsupportedAction(String),
    #[error(
        "unsupported seccomp argument operator {op:?} for {syscall} (supported: SCMP_CMP_NE, \
         SCMP_CMP_LT, SCMP_CMP_LE, SCMP_CMP_EQ, SCMP_CMP_GE, SCMP_CMP_GT, SCMP_CMP_MASKED_EQ)"
    )]
    UnsupportedOperator { syscall: String, op: String },
    #[error("seccomp argument index {index} for {syscall} is out of range (syscalls have 6 arguments, 0 to 5)")]
    ArgumentIndex { syscall: String, index: u32 },
    #[error("seccomp errno {0} is out of range (at most 4095)")]
    Errno(u32),
    #[error("seccomp profile gives {syscall} two different actions ({first} and {second}) without argument conditions")]
    ConflictingActions { syscall: String, first: String, second: String },
    #[error("seccomp filters are not supported on architecture {0}")]
    UnsupportedArchitecture(&'static str),
    #[error("unknown seccomp architecture {0:?}")]
    UnknownArchitecture(String),
    /// A Docker-format profile that cannot be read or resolved (see `from_docker_json`).
    #[error("{0}")]
    Profile(String),
    #[error("seccomp program has {len} instructions, more than the kernel's limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("seccomp program needs a jump longer than BPF allows")]
    JumpTooFar,
    #[error("installing seccomp filter: permission denied (loading a filter needs no_new_privs or CAP_SYS_ADMIN)")]
    LoadNotPermitted,
    #[error("installing seccomp filter: {0}")]
    Load(#[source] std::io::Error),
}

/// A compiled seccomp filter, ready for [`load`].
#[derive(Clone)]
pub struct Program {
    insns: Vec<libc::sock_filter>,
}

impl Program {
    /// The BPF instructions, as `seccomp(2)` takes them.
    pub fn instructions(&self) -> &[libc::sock_filter] {
        &self.insns
    }

    pub fn len(&self) -> usize {
        self.insns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }
}

impl fmt::Debug for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seccomp::Program({} instructions)", self.insns.len())
    }
}

/// The number of syscall `name` on the architecture berth is built for, or `None` if it
/// has no such syscall (or berth does not know it).
pub fn syscall_number(name: &str) -> Option<i64> {
    Abi::native().and_then(|abi| abi.number(name)).map(i64::from)
}

/// The number of syscall `name` in the ABI libseccomp calls `arch` (`"SCMP_ARCH_X86"`,
/// say), as a filter sees it (x32 numbers with their bit set). `None` for an ABI berth
/// has no table for, or a name that ABI does not have.
pub fn syscall_number_in(arch: &str, name: &str) -> Option<i64> {
    Abi::from_scmp_name(arch).and_then(|abi| abi.number(name)).map(i64::from)
}

/// Compiles an OCI seccomp profile for the native ABI and the compat ABIs it lists.
pub fn compile(profile: &Seccomp) -> Result<Program, SeccompError> {
    let native = Abi::native().ok_or(SeccompError::UnsupportedArchitecture(std::env::consts::ARCH))?;
    let abis = abi::selected(native, &profile.architectures)?;
    let default = action(&profile.default_action, profile.default_errno_ret)?;

    // Validated once, before any name is looked up, so a broken entry is reported even on
    // an architecture that has none of its syscalls.
    let mut entries = Vec::with_capacity(profile.syscalls.len());
    for entry in &profile.syscalls {
        entries.push((entry, action(&entry.action, entry.errno_ret)?, conditions(entry)?));
    }
    let table = |abi: Abi| -> Result<bpf::Table, SeccompError> {
        Ok(bpf::Table { audit: abi.audit(), wide_args: abi.wide_args(), syscalls: merge(abi, &entries, default)? })
    };
    let layout = bpf::Layout {
        native: table(native)?,
        x32: match native {
            Abi::X86_64 => Some((X32_SYSCALL_BIT, abis.contains(&Abi::X32).then(|| table(Abi::X32)).transpose()?)),
            _ => None,
        },
        others: abis.iter().filter(|&&a| a != native && a != Abi::X32).map(|&a| table(a)).collect::<Result<_, _>>()?,
    };
    let insns = bpf::generate(&layout, default)?;
    Ok(Program { insns })
}

/// A profile's entries with their validated action and conditions.
type Entries<'a> = [(&'a SeccompSyscall, u32, Vec<Vec<Cond>>)];

/// What `abi`'s filter does for each syscall the profile names there, sorted by number;
/// syscalls left to the default action are omitted.
fn merge(abi: Abi, entries: &Entries<'_>, default: u32) -> Result<Vec<bpf::Syscall>, SeccompError> {
    // Per syscall number: argument rules in profile order, and the argument-less action.
    #[derive(Default)]
    struct Merged {
        rules: Vec<(Vec<Cond>, u32)>,
        plain: Option<u32>,
    }
    let mut merged: BTreeMap<u32, Merged> = BTreeMap::new();
    for (entry, ret, alternatives) in entries {
        let ret = *ret;
        for name in &entry.names {
            let Some(nr) = abi.number(name) else {
                continue;
            };
            let m = merged.entry(nr).or_default();
            if alternatives.is_empty() {
                match m.plain {
                    Some(prev) if prev != ret => {
                        return Err(SeccompError::ConflictingActions {
                            syscall: name.clone(),
                            first: describe(prev),
                            second: describe(ret),
                        });
                    }
                    _ => m.plain = Some(ret),
                }
            } else {
                m.rules.extend(alternatives.iter().map(|conds| (conds.clone(), ret)));
            }
        }
    }

    let mut syscalls = Vec::with_capacity(merged.len());
    for (nr, mut m) in merged {
        let fallback = m.plain.unwrap_or(default);
        // Rules at the end that give the fallback's action change nothing: whatever they
        // match would get that action anyway. This is how an unconditional ALLOW absorbs
        // conditional ALLOWs for the same syscall.
        while m.rules.last().is_some_and(|(_, ret)| *ret == fallback) {
            m.rules.pop();
        }
        if m.rules.is_empty() && fallback == default {
            continue;
        }
        syscalls.push(bpf::Syscall { nr, rules: m.rules, fallback });
    }
    Ok(syscalls)
}

/// Installs `program` on the calling thread, for it and the processes it will start. Does
/// not allocate, so it is safe between fork and exec.
pub fn load(program: &Program) -> Result<(), SeccompError> {
    // compile() guarantees at most BPF_MAXINSNS instructions.
    let len = u16::try_from(program.insns.len())
        .map_err(|_| SeccompError::TooLarge { len: program.insns.len(), max: libc::BPF_MAXINSNS as usize })?;
    let fprog = libc::sock_fprog { len, filter: program.insns.as_ptr().cast_mut() };
    seccomp_set_mode_filter(&fprog).map_err(|e| match e.raw_os_error() {
        Some(libc::EACCES) => SeccompError::LoadNotPermitted,
        _ => SeccompError::Load(e),
    })
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, 0, fprog)`. Neither rustix nor seccompiler fits:
/// rustix has no wrapper, and seccompiler's `apply_filter` always sets `no_new_privs`,
/// which would break setuid programs in containers that did not ask for it.
#[allow(unsafe_code)]
fn seccomp_set_mode_filter(fprog: &libc::sock_fprog) -> std::io::Result<()> {
    // SAFETY: `fprog` points to `len` valid instructions that outlive the call; the kernel
    // copies the program during the call and keeps no reference to our memory. The
    // variadic arguments are passed as the register-sized types the syscall expects.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::c_ulong::from(libc::SECCOMP_SET_MODE_FILTER),
            0 as libc::c_ulong,
            std::ptr::from_ref(fprog),
        )
    };
    if rc == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

/// The `SECCOMP_RET_*` value for an OCI action. OCI's default errno is EPERM.
fn action(name: &str, errno: Option<u32>) -> Result<u32, SeccompError> {
    let data = || {
        let e = errno.unwrap_or(libc::EPERM as u32);
        // The kernel clamps larger values; refusing them keeps the profile honest.
        if e > 4095 { Err(SeccompError::Errno(e)) } else { Ok(e) }
    };
    Ok(match name {
        "SCMP_ACT_ALLOW" => libc::SECCOMP_RET_ALLOW,
        "SCMP_ACT_ERRNO" => libc::SECCOMP_RET_ERRNO | data()?,
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => libc::SECCOMP_RET_KILL_THREAD,
        "SCMP_ACT_KILL_PROCESS" => libc::SECCOMP_RET_KILL_PROCESS,
        "SCMP_ACT_TRAP" => libc::SECCOMP_RET_TRAP,
        "SCMP_ACT_TRACE" => libc::SECCOMP_RET_TRACE | data()?,
        "SCMP_ACT_LOG" => libc::SECCOMP_RET_LOG,
        _ => return Err(SeccompError::UnsupportedAction(name.to_owned())),
    })
}

/// For error messages.
fn describe(ret: u32) -> String {
    let data = ret & libc::SECCOMP_RET_DATA;
    match ret & libc::SECCOMP_RET_ACTION_FULL {
        libc::SECCOMP_RET_ALLOW => "SCMP_ACT_ALLOW".into(),
        libc::SECCOMP_RET_ERRNO => format!("SCMP_ACT_ERRNO({data})"),
        libc::SECCOMP_RET_KILL_THREAD => "SCMP_ACT_KILL_THREAD".into(),
        libc::SECCOMP_RET_KILL_PROCESS => "SCMP_ACT_KILL_PROCESS".into(),
        libc::SECCOMP_RET_TRAP => "SCMP_ACT_TRAP".into(),
        libc::SECCOMP_RET_TRACE => format!("SCMP_ACT_TRACE({data})"),
        libc::SECCOMP_RET_LOG => "SCMP_ACT_LOG".into(),
        other => format!("{other:#x}"),
    }
}

/// An entry's argument conditions as alternatives (ORed), each a conjunction (ANDed).
/// Empty when the entry has no conditions.
fn conditions(entry: &SeccompSyscall) -> Result<Vec<Vec<Cond>>, SeccompError> {
    let name = || entry.names.join(",");
    let conds = entry.args.iter().map(|a| condition(a, &name)).collect::<Result<Vec<_>, _>>()?;
    if conds.is_empty() {
        return Ok(Vec::new());
    }
    let repeated = conds.iter().enumerate().any(|(i, c)| conds[..i].iter().any(|d| d.arg == c.arg));
    if repeated { Ok(conds.into_iter().map(|c| vec![c]).collect()) } else { Ok(vec![conds]) }
}

fn condition(arg: &SeccompArg, syscall: &dyn Fn() -> String) -> Result<Cond, SeccompError> {
    if arg.index > 5 {
        return Err(SeccompError::ArgumentIndex { syscall: syscall(), index: arg.index });
    }
    // For MASKED_EQ, OCI (like libseccomp) puts the mask in `value` and the expected
    // result in `valueTwo`.
    let (op, value) = match arg.op.as_str() {
        "SCMP_CMP_NE" => (Op::Ne, arg.value),
        "SCMP_CMP_LT" => (Op::Lt, arg.value),
        "SCMP_CMP_LE" => (Op::Le, arg.value),
        "SCMP_CMP_EQ" => (Op::Eq, arg.value),
        "SCMP_CMP_GE" => (Op::Ge, arg.value),
        "SCMP_CMP_GT" => (Op::Gt, arg.value),
        "SCMP_CMP_MASKED_EQ" => (Op::MaskedEq { mask: arg.value }, arg.value_two),
        other => {
            return Err(SeccompError::UnsupportedOperator { syscall: syscall(), op: other.to_owned() });
        }
    };
    Ok(Cond { arg: arg.index, op, value })
}
