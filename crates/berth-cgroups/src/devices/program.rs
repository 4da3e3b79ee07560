//! The v2 encoding of a [`Policy`]: a `BPF_PROG_TYPE_CGROUP_DEVICE` program.
//!
//! The kernel runs it on every mknod and every open of a device node by a task in the group,
//! with `r1` pointing at `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`
//! (`access_type`: the device type in the low 16 bits, the access in the high 16), and lets
//! the access through if it returns 1. The program loads the four values into `r2`–`r5`,
//! then tests the exceptions from the last to the first, each a block that jumps past
//! itself at the first mismatch and otherwise returns its verdict; the default ends it.
//! Only the handful of instructions this needs are encoded here.

use super::{ACCESS_ALL, Kind, Policy, Rule};

/// One eBPF instruction (`struct bpf_insn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

// Opcodes: class | operation | source (BPF_K: the immediate, BPF_X: a register).
pub const LDX_MEM_W: u8 = 0x61;
pub const ALU64_AND_K: u8 = 0x57;
pub const ALU64_RSH_K: u8 = 0x77;
pub const ALU64_MOV_K: u8 = 0xb7;
pub const ALU64_MOV_X: u8 = 0xbf;
pub const JMP_JEQ_K: u8 = 0x15;
pub const JMP_JNE_K: u8 = 0x55;
pub const JMP_JSET_K: u8 = 0x45;
pub const JMP_EXIT: u8 = 0x95;

const R0: u8 = 0;
const CTX: u8 = 1;
const TYPE: u8 = 2;
const ACCESS: u8 = 3;
const MAJOR: u8 = 4;
const MINOR: u8 = 5;

impl Insn {
    fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn { code, dst, src, off, imm }
    }

    /// The kernel's layout: code, the registers as two nibbles (a C bitfield, so their order
    /// follows the byte order), the offset and the immediate in native byte order.
    pub fn to_bytes(self) -> [u8; 8] {
        let regs = if cfg!(target_endian = "little") { self.dst | (self.src << 4) } else { (self.dst << 4) | self.src };
        let [o0, o1] = self.off.to_ne_bytes();
        let [i0, i1, i2, i3] = self.imm.to_ne_bytes();
        [self.code, regs, o0, o1, i0, i1, i2, i3]
    }
}

/// The program enforcing `policy`.
pub fn build(policy: &Policy) -> Vec<Insn> {
    let mut p = vec![
        Insn::new(LDX_MEM_W, TYPE, CTX, 0, 0),
        Insn::new(ALU64_AND_K, TYPE, 0, 0, 0xffff),
        Insn::new(LDX_MEM_W, ACCESS, CTX, 0, 0),
        Insn::new(ALU64_RSH_K, ACCESS, 0, 0, 16),
        Insn::new(LDX_MEM_W, MAJOR, CTX, 4, 0),
        Insn::new(LDX_MEM_W, MINOR, CTX, 8, 0),
    ];
    for r in policy.rules.iter().rev() {
        let block = block(r);
        let unconditional = block.len() == 2;
        p.extend(block);
        if unconditional {
            // Nothing earlier can be reached (the verifier refuses dead code).
            return p;
        }
    }
    p.push(Insn::new(ALU64_MOV_K, R0, 0, 0, policy.default_allow as i32));
    p.push(Insn::new(JMP_EXIT, 0, 0, 0, 0));
    p
}

/// One exception: its tests, each jumping past the block on a mismatch (the offsets are
/// filled in once the block's length is known), then `return verdict`.
fn block(r: &Rule) -> Vec<Insn> {
    let mut b = Vec::new();
    if r.kind != Kind::Any {
        b.push(Insn::new(JMP_JNE_K, TYPE, 0, 0, r.kind as i32));
    }
    if r.access != ACCESS_ALL {
        if r.allow {
            // An allow rule must grant every permission asked for.
            b.push(Insn::new(JMP_JSET_K, ACCESS, 0, 0, i32::from(ACCESS_ALL & !r.access)));
        } else {
            // A deny rule takes effect if it takes any of them.
            b.push(Insn::new(ALU64_MOV_X, R0, ACCESS, 0, 0));
            b.push(Insn::new(ALU64_AND_K, R0, 0, 0, i32::from(r.access)));
            b.push(Insn::new(JMP_JEQ_K, R0, 0, 0, 0));
        }
    }
    if let Some(m) = r.major {
        b.push(Insn::new(JMP_JNE_K, MAJOR, 0, 0, m as i32));
    }
    if let Some(m) = r.minor {
        b.push(Insn::new(JMP_JNE_K, MINOR, 0, 0, m as i32));
    }
    b.push(Insn::new(ALU64_MOV_K, R0, 0, 0, r.allow as i32));
    b.push(Insn::new(JMP_EXIT, 0, 0, 0, 0));
    let len = b.len();
    for (i, insn) in b.iter_mut().enumerate() {
        if matches!(insn.code, JMP_JNE_K | JMP_JSET_K | JMP_JEQ_K) {
            // Relative to the next instruction: to the first one after the block.
            insn.off = (len - i - 1) as i16;
        }
    }
    b
}
