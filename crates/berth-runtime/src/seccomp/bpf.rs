//! A small classic-BPF code generator for seccomp filters.
//!
//! Why not seccompiler's filter type: it gives a whole filter one match action, while an
//! OCI profile gives every syscall (even every argument rule) its own action — `ALLOW` for
//! most, `ERRNO(ENOSYS)` for `clone3`, the default for everything else. The generator
//! below handles that directly, and stays small because every block it emits is closed:
//! each path through a block ends in a `ret`, so blocks can be concatenated without
//! patching jumps across them.
//!
//! Program shape:
//!
//! 1. a foreign audit architecture (i386 `int 0x80` on x86_64, say) is killed: only the
//!    native syscall table is described, and letting another ABI through would bypass the
//!    profile; on x86_64, x32 syscall numbers (bit 30 set) are killed for the same reason;
//! 2. a binary search over the sorted syscall numbers (about ten comparisons for the
//!    default profile instead of a few hundred in a linear chain);
//! 3. per syscall, its argument rules in order, the first whose conditions all hold
//!    deciding, then its fallback action;
//! 4. the default action for syscalls the profile does not name.
//!
//! Arguments are 64-bit values in `struct seccomp_data`, and classic BPF compares 32 bits
//! at a time, so each comparison is done on the high word and then the low one (both
//! supported architectures are little-endian: the low word comes first).

use libc::sock_filter;

use super::SeccompError;

const BPF_LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const BPF_AND_K: u16 = (libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) as u16;
const BPF_RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
const BPF_JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JGT: u16 = (libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) as u16;
const JGE: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;

/// Offsets into `struct seccomp_data { int nr; u32 arch; u64 ip; u64 args[6]; }`.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARGS: u32 = 16;

/// Syscalls in a binary-search leaf, compared one after the other.
const LEAF: usize = 6;

/// The native architecture as the kernel reports it in `seccomp_data.arch`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Arch {
    audit: u32,
    /// x86_64 shares its audit value with x32, whose numbers have this bit set.
    x32_bit: Option<u32>,
}

impl Arch {
    pub(super) fn native() -> Option<Arch> {
        match std::env::consts::ARCH {
            // AUDIT_ARCH_X86_64 = EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE
            "x86_64" => Some(Arch { audit: 0xC000_003E, x32_bit: Some(0x4000_0000) }),
            // AUDIT_ARCH_AARCH64 = EM_AARCH64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE
            "aarch64" => Some(Arch { audit: 0xC000_00B7, x32_bit: None }),
            _ => None,
        }
    }
}

/// An argument comparison, with libseccomp's meaning (all on the full 64 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Ge,
    Gt,
    /// `(arg & mask) == value`.
    MaskedEq {
        mask: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Cond {
    pub arg: u32,
    pub op: Op,
    pub value: u64,
}

/// Everything the filter does for one syscall number.
#[derive(Debug, Clone)]
pub(super) struct Syscall {
    pub nr: u32,
    /// Conjunctions of conditions with their `SECCOMP_RET_*` value; the first that holds wins.
    pub rules: Vec<(Vec<Cond>, u32)>,
    /// What the syscall gets when no rule holds.
    pub fallback: u32,
}

/// Builds the program; `syscalls` must be sorted by number without duplicates.
pub(super) fn generate(arch: Arch, syscalls: &[Syscall], default: u32) -> Result<Vec<sock_filter>, SeccompError> {
    let mut prog = vec![
        stmt(BPF_LD_W_ABS, OFF_ARCH),
        jump(JEQ, arch.audit, 1, 0)?,
        stmt(BPF_RET_K, libc::SECCOMP_RET_KILL_PROCESS),
        stmt(BPF_LD_W_ABS, OFF_NR),
    ];
    if let Some(bit) = arch.x32_bit {
        // Numbers at or above the x32 bit are x32 calls, except -1, which is what a tracer
        // writes to skip a syscall; that one goes on to the default action.
        prog.extend([
            jump(JGE, bit, 0, 2)?,
            jump(JEQ, u32::MAX, 1, 0)?,
            stmt(BPF_RET_K, libc::SECCOMP_RET_KILL_PROCESS),
        ]);
    }
    let mut bodies = Vec::with_capacity(syscalls.len());
    for s in syscalls {
        bodies.push((s.nr, syscall_body(s)?));
    }
    prog.extend(dispatch(&bodies, default)?);
    let max = libc::BPF_MAXINSNS as usize;
    if prog.len() > max {
        return Err(SeccompError::TooLarge { len: prog.len(), max });
    }
    Ok(prog)
}

/// Binary search on the syscall number (in the accumulator); every path returns.
fn dispatch(bodies: &[(u32, Vec<sock_filter>)], default: u32) -> Result<Vec<sock_filter>, SeccompError> {
    let mut out = Vec::new();
    if bodies.len() <= LEAF {
        for (nr, body) in bodies {
            out.extend(skip_unless(JEQ, *nr, body.len())?);
            out.extend_from_slice(body);
        }
        out.push(stmt(BPF_RET_K, default));
        return Ok(out);
    }
    let (low, high) = bodies.split_at(bodies.len() / 2);
    let low_code = dispatch(low, default)?;
    out.extend(skip_if(JGE, high[0].0, low_code.len())?);
    out.extend(low_code);
    out.extend(dispatch(high, default)?);
    Ok(out)
}

/// One syscall's rules, then its fallback; every path returns.
fn syscall_body(s: &Syscall) -> Result<Vec<sock_filter>, SeccompError> {
    let mut out = Vec::new();
    for (conds, ret) in &s.rules {
        // Built back to front: a failing condition skips the rest of its rule, so its jump
        // distance is the length of what follows it.
        let mut rule = vec![stmt(BPF_RET_K, *ret)];
        for c in conds.iter().rev() {
            let mut block = condition(c, rule.len())?;
            block.extend(rule);
            rule = block;
        }
        out.extend(rule);
    }
    out.push(stmt(BPF_RET_K, s.fallback));
    Ok(out)
}

/// Falls through when `c` holds; jumps `fail` instructions past its own end when it does not.
fn condition(c: &Cond, fail: usize) -> Result<Vec<sock_filter>, SeccompError> {
    let lo_off = OFF_ARGS + 8 * c.arg;
    let (ld_hi, ld_lo) = (stmt(BPF_LD_W_ABS, lo_off + 4), stmt(BPF_LD_W_ABS, lo_off));
    let (hi, lo) = split(c.value);
    Ok(match c.op {
        Op::Eq => vec![ld_hi, jump(JEQ, hi, 0, fail + 2)?, ld_lo, jump(JEQ, lo, 0, fail)?],
        Op::Ne => vec![ld_hi, jump(JEQ, hi, 0, 2)?, ld_lo, jump(JEQ, lo, fail, 0)?],
        Op::MaskedEq { mask } => {
            let (mhi, mlo) = split(mask);
            vec![
                ld_hi,
                stmt(BPF_AND_K, mhi),
                jump(JEQ, hi, 0, fail + 3)?,
                ld_lo,
                stmt(BPF_AND_K, mlo),
                jump(JEQ, lo, 0, fail)?,
            ]
        }
        // High word greater: holds; equal: the low word decides; smaller: fails.
        Op::Gt | Op::Ge => {
            let lo_cmp = if c.op == Op::Gt { JGT } else { JGE };
            vec![ld_hi, jump(JGT, hi, 3, 0)?, jump(JEQ, hi, 0, fail + 2)?, ld_lo, jump(lo_cmp, lo, 0, fail)?]
        }
        // The negations of Ge and Gt.
        Op::Lt | Op::Le => {
            let lo_cmp = if c.op == Op::Lt { JGE } else { JGT };
            vec![ld_hi, jump(JGT, hi, fail + 3, 0)?, jump(JEQ, hi, 0, 2)?, ld_lo, jump(lo_cmp, lo, fail, 0)?]
        }
    })
}

fn split(v: u64) -> (u32, u32) {
    ((v >> 32) as u32, v as u32)
}

/// "If the test holds, skip `n` instructions", with a long jump when `n` exceeds 255.
fn skip_if(code: u16, k: u32, n: usize) -> Result<Vec<sock_filter>, SeccompError> {
    if n <= u8::MAX as usize {
        return Ok(vec![jump(code, k, n, 0)?]);
    }
    Ok(vec![jump(code, k, 0, 1)?, long_jump(n)?])
}

/// "Unless the test holds, skip `n` instructions".
fn skip_unless(code: u16, k: u32, n: usize) -> Result<Vec<sock_filter>, SeccompError> {
    if n <= u8::MAX as usize {
        return Ok(vec![jump(code, k, 0, n)?]);
    }
    Ok(vec![jump(code, k, 1, 0)?, long_jump(n)?])
}

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter { code, jt: 0, jf: 0, k }
}

fn jump(code: u16, k: u32, jt: usize, jf: usize) -> Result<sock_filter, SeccompError> {
    let (Ok(jt), Ok(jf)) = (u8::try_from(jt), u8::try_from(jf)) else {
        return Err(SeccompError::JumpTooFar);
    };
    Ok(sock_filter { code, jt, jf, k })
}

fn long_jump(n: usize) -> Result<sock_filter, SeccompError> {
    let k = u32::try_from(n).map_err(|_| SeccompError::JumpTooFar)?;
    Ok(stmt(BPF_JA, k))
}
