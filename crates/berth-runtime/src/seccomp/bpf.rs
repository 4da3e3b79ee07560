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
//! 1. dispatch on the audit architecture (`seccomp_data.arch`) to one block per ABI the
//!    profile describes; any other architecture is killed (libseccomp's "bad arch"
//!    action), since its numbers mean other syscalls;
//! 2. in the x86_64 block, numbers with the x32 bit go to the x32 block when x32 is
//!    described, and are killed otherwise (except -1, what a tracer writes to skip a
//!    syscall, which gets the default action);
//! 3. in each block, a binary search over that ABI's sorted syscall numbers (about ten
//!    comparisons for the default profile instead of a few hundred in a linear chain),
//!    consecutive numbers with the same code sharing one range;
//! 4. per syscall, its argument rules in order, the first whose conditions all hold
//!    deciding, then its fallback action;
//! 5. the default action for syscalls the profile does not name.
//!
//! Arguments are 64-bit values in `struct seccomp_data`, and classic BPF compares 32 bits
//! at a time, so on a 64-bit ABI each comparison is done on the high word and then the low
//! one (both supported architectures are little-endian: the low word comes first). On a
//! 32-bit ABI (i386) only the low word is loaded and compared with the low 32 bits of the
//! profile's value, as libseccomp does for 32-bit architectures: the kernel's handlers read
//! 32-bit arguments, so the high word, whatever a 64-bit caller of `int 0x80` left in the
//! register, cannot change what the call does and must not change what the filter decides.

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

/// Number ranges in a binary-search leaf, compared one after the other.
const LEAF: usize = 6;

/// One ABI's part of the filter.
#[derive(Debug, Clone)]
pub(super) struct Table {
    /// `seccomp_data.arch` for this ABI's calls.
    pub audit: u32,
    /// Whether arguments are compared on all 64 bits; otherwise on their low 32 bits.
    pub wide_args: bool,
    /// Sorted by number, without duplicates.
    pub syscalls: Vec<Syscall>,
}

/// The whole filter: one table per ABI.
#[derive(Debug, Clone)]
pub(super) struct Layout {
    pub native: Table,
    /// On x86_64, numbers at or above this bit are x32 calls (same audit architecture):
    /// filtered by the table when there is one, killed otherwise.
    pub x32: Option<(u32, Option<Table>)>,
    /// ABIs with an audit architecture of their own (i386 on x86_64).
    pub others: Vec<Table>,
}

/// An argument comparison, with libseccomp's meaning (on all 64 bits, or on the low 32 bits
/// in a 32-bit ABI).
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

/// Builds the program.
pub(super) fn generate(layout: &Layout, default: u32) -> Result<Vec<sock_filter>, SeccompError> {
    let mut native = vec![stmt(BPF_LD_W_ABS, OFF_NR)];
    let native_dispatch = table_dispatch(&layout.native, default)?;
    match &layout.x32 {
        Some((bit, Some(x32))) => {
            native.extend(skip_if(JGE, *bit, native_dispatch.len())?);
            native.extend(native_dispatch);
            native.extend(table_dispatch(x32, default)?);
        }
        Some((bit, None)) => {
            native.extend([
                jump(JGE, *bit, 0, 2)?,
                jump(JEQ, u32::MAX, 1, 0)?,
                stmt(BPF_RET_K, libc::SECCOMP_RET_KILL_PROCESS),
            ]);
            native.extend(native_dispatch);
        }
        None => native.extend(native_dispatch),
    }
    let mut blocks = vec![(layout.native.audit, native)];
    for t in &layout.others {
        let mut block = vec![stmt(BPF_LD_W_ABS, OFF_NR)];
        block.extend(table_dispatch(t, default)?);
        blocks.push((t.audit, block));
    }

    // The architecture test, built back to front: each branch skips what follows it in the
    // header and the blocks before its own.
    let mut header = vec![stmt(BPF_RET_K, libc::SECCOMP_RET_KILL_PROCESS)];
    for i in (0..blocks.len()).rev() {
        let before: usize = blocks[..i].iter().map(|(_, b)| b.len()).sum();
        let mut branch = skip_if(JEQ, blocks[i].0, header.len() + before)?;
        branch.extend(header);
        header = branch;
    }
    let mut prog = vec![stmt(BPF_LD_W_ABS, OFF_ARCH)];
    prog.extend(header);
    for (_, block) in blocks {
        prog.extend(block);
    }
    let max = libc::BPF_MAXINSNS as usize;
    if prog.len() > max {
        return Err(SeccompError::TooLarge { len: prog.len(), max });
    }
    Ok(prog)
}

/// One ABI's syscalls, dispatched on the number in the accumulator; every path returns.
/// Consecutive numbers with the same code share one range (most of a profile is runs of
/// plain ALLOWs), which keeps a three-ABI program about as small as a native one was.
fn table_dispatch(t: &Table, default: u32) -> Result<Vec<sock_filter>, SeccompError> {
    let mut ranges: Vec<Range> = Vec::with_capacity(t.syscalls.len());
    for s in &t.syscalls {
        let body = syscall_body(s, t.wide_args)?;
        match ranges.last_mut() {
            Some(r) if r.last.checked_add(1) == Some(s.nr) && same(&r.body, &body) => r.last = s.nr,
            _ => ranges.push(Range { first: s.nr, last: s.nr, body }),
        }
    }
    dispatch(&ranges, default)
}

/// Syscall numbers `first..=last`, all handled by `body`.
struct Range {
    first: u32,
    last: u32,
    body: Vec<sock_filter>,
}

fn same(a: &[sock_filter], b: &[sock_filter]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x.code, x.jt, x.jf, x.k) == (y.code, y.jt, y.jf, y.k))
}

/// Binary search on the syscall number (in the accumulator); every path returns.
fn dispatch(ranges: &[Range], default: u32) -> Result<Vec<sock_filter>, SeccompError> {
    let mut out = Vec::new();
    if ranges.len() <= LEAF {
        for r in ranges {
            if r.first == r.last {
                out.extend(skip_unless(JEQ, r.first, r.body.len())?);
            } else {
                // Above the range: on to the next one. Below it: below every later one too,
                // so the tests that follow fail down to the default.
                let below = skip_unless(JGE, r.first, r.body.len())?;
                out.extend(skip_if(JGT, r.last, below.len() + r.body.len())?);
                out.extend(below);
            }
            out.extend_from_slice(&r.body);
        }
        out.push(stmt(BPF_RET_K, default));
        return Ok(out);
    }
    let (low, high) = ranges.split_at(ranges.len() / 2);
    let low_code = dispatch(low, default)?;
    out.extend(skip_if(JGE, high[0].first, low_code.len())?);
    out.extend(low_code);
    out.extend(dispatch(high, default)?);
    Ok(out)
}

/// One syscall's rules, then its fallback; every path returns.
fn syscall_body(s: &Syscall, wide: bool) -> Result<Vec<sock_filter>, SeccompError> {
    let mut out = Vec::new();
    for (conds, ret) in &s.rules {
        // Built back to front: a failing condition skips the rest of its rule, so its jump
        // distance is the length of what follows it.
        let mut rule = vec![stmt(BPF_RET_K, *ret)];
        for c in conds.iter().rev() {
            let mut block = if wide { condition(c, rule.len())? } else { condition32(c, rule.len())? };
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

/// [`condition`] for a 32-bit ABI: the low words alone, as the kernel uses them.
fn condition32(c: &Cond, fail: usize) -> Result<Vec<sock_filter>, SeccompError> {
    let ld = stmt(BPF_LD_W_ABS, OFF_ARGS + 8 * c.arg);
    let (_, lo) = split(c.value);
    Ok(match c.op {
        Op::Eq => vec![ld, jump(JEQ, lo, 0, fail)?],
        Op::Ne => vec![ld, jump(JEQ, lo, fail, 0)?],
        Op::MaskedEq { mask } => vec![ld, stmt(BPF_AND_K, split(mask).1), jump(JEQ, lo, 0, fail)?],
        Op::Gt => vec![ld, jump(JGT, lo, 0, fail)?],
        Op::Ge => vec![ld, jump(JGE, lo, 0, fail)?],
        Op::Lt => vec![ld, jump(JGE, lo, fail, 0)?],
        Op::Le => vec![ld, jump(JGT, lo, fail, 0)?],
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
