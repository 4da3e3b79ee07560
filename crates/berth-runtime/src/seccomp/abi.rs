//! The system call ABIs a filter describes, and which of them a profile asks for.
//!
//! A seccomp filter sees every system call with the audit architecture of the ABI it came
//! through (`seccomp_data.arch`) and that ABI's own number. On x86_64 a process can enter
//! the kernel three ways: the native `syscall` instruction, the same instruction with the
//! x32 bit (0x4000_0000) set in the number (same audit architecture), and i386's
//! `int 0x80` (AUDIT_ARCH_I386), open to any process, 64-bit ones included. Each ABI has its
//! own numbers, so the filter keeps one table per ABI, built from the same profile by name.
//!
//! Which ABIs are described follows the profile's `architectures`, as with runc and
//! libseccomp: the native one always, a compat ABI of it when listed (Docker's default
//! profile lists `SCMP_ARCH_X86` and `SCMP_ARCH_X32` on x86_64 through its `archMap`).
//! Calls through an ABI the filter does not describe are killed (libseccomp's "bad arch"
//! action). aarch64 is described natively only: arm32 (`SCMP_ARCH_ARM`) compat calls are
//! killed even when a profile lists it.

use super::SeccompError;
use super::syscalls;

/// `__X32_SYSCALL_BIT`: set in the number of every x32 call.
pub(super) const X32_SYSCALL_BIT: u32 = 0x4000_0000;

// AUDIT_ARCH_* = EM_* | __AUDIT_ARCH_64BIT (0x8000_0000) | __AUDIT_ARCH_LE (0x4000_0000).
const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const AUDIT_ARCH_AARCH64: u32 = 0xC000_00B7;

/// Every architecture name libseccomp (and so runc) accepts in a profile's `architectures`.
/// Names of architectures that are neither this machine's nor a compat ABI of it are
/// accepted and change nothing: no call ever comes through them.
const KNOWN: &[&str] = &[
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",
    "SCMP_ARCH_SH",
    "SCMP_ARCH_SHEB",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Abi {
    X86_64,
    /// x86_64's ILP32 ABI: x86_64's entry and audit architecture, numbers with the x32 bit.
    X32,
    /// i386 on an x86_64 kernel (`int 0x80`, or 32-bit code's `sysenter`/`syscall`).
    I386,
    Aarch64,
}

impl Abi {
    /// The ABI of the architecture berth is built for.
    pub(super) fn native() -> Option<Abi> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Abi::X86_64),
            "aarch64" => Some(Abi::Aarch64),
            _ => None,
        }
    }

    /// The other ABIs a process on this native one can reach and berth can describe.
    pub(super) fn compat(self) -> &'static [Abi] {
        match self {
            Abi::X86_64 => &[Abi::X32, Abi::I386],
            _ => &[],
        }
    }

    /// libseccomp's name, as in a profile's `architectures`.
    pub(super) fn scmp_name(self) -> &'static str {
        match self {
            Abi::X86_64 => "SCMP_ARCH_X86_64",
            Abi::X32 => "SCMP_ARCH_X32",
            Abi::I386 => "SCMP_ARCH_X86",
            Abi::Aarch64 => "SCMP_ARCH_AARCH64",
        }
    }

    pub(super) fn from_scmp_name(name: &str) -> Option<Abi> {
        [Abi::X86_64, Abi::X32, Abi::I386, Abi::Aarch64].into_iter().find(|a| a.scmp_name() == name)
    }

    /// `seccomp_data.arch` for calls through this ABI.
    pub(super) fn audit(self) -> u32 {
        match self {
            Abi::X86_64 | Abi::X32 => AUDIT_ARCH_X86_64,
            Abi::I386 => AUDIT_ARCH_I386,
            Abi::Aarch64 => AUDIT_ARCH_AARCH64,
        }
    }

    /// Whether the kernel takes arguments as 64-bit registers. i386's are 32 bits: its
    /// handlers read the low half of each register, and only that half may decide.
    pub(super) fn wide_args(self) -> bool {
        !matches!(self, Abi::I386)
    }

    /// The number of syscall `name` in this ABI as `seccomp_data.nr` carries it.
    pub(super) fn number(self, name: &str) -> Option<u32> {
        syscalls::number(self, name)
    }
}

/// The ABIs a filter for `profile_arches` describes: the native one, then each of its
/// compat ABIs the profile lists. An unknown name is an error, as in runc.
pub(super) fn selected(native: Abi, profile_arches: &[String]) -> Result<Vec<Abi>, SeccompError> {
    if let Some(bad) = profile_arches.iter().find(|a| !KNOWN.contains(&a.as_str())) {
        return Err(SeccompError::UnknownArchitecture(bad.clone()));
    }
    let listed = |abi: Abi| profile_arches.iter().any(|a| Abi::from_scmp_name(a) == Some(abi));
    Ok(std::iter::once(native).chain(native.compat().iter().copied().filter(|&a| listed(a))).collect())
}
