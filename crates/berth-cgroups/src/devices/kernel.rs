//! Loading a device program and attaching it to a v2 group with the `bpf(2)` system call.
//!
//! The program is attached with `BPF_F_ALLOW_MULTI` (the kernel runs it together with what
//! the ancestors attached; all must allow), and replaces every device program attached to
//! the same group before (the container's own group, which only berth manages; the
//! ancestors' programs are not touched; a systemd cgroup driver, where systemd attaches its
//! own to the unit, would have to keep those): the new one is attached first, then the old
//! ones detached, so there is no moment without one. Once attached the kernel holds the program for as long
//! as the group exists; the descriptors are closed on return.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use super::program::Insn;
use crate::{CgroupError, Result};

const BPF_PROG_LOAD: i32 = 5;
const BPF_PROG_ATTACH: i32 = 8;
const BPF_PROG_DETACH: i32 = 9;
const BPF_PROG_GET_FD_BY_ID: i32 = 13;
const BPF_PROG_QUERY: i32 = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The program's license; the helpers it calls (none) would decide whether it matters.
const LICENSE: &CStr = c"Apache-2.0";

/// What a v2 group's device program is handed to: the kernel, or a recorder in tests.
pub trait Attach {
    fn attach(&self, dir: &Path, program: &[Insn]) -> Result<()>;
}

/// The running kernel.
pub struct Kernel;

impl Attach for Kernel {
    fn attach(&self, dir: &Path, program: &[Insn]) -> Result<()> {
        let fail = |what: String, source: io::Error| CgroupError::Bpf { path: dir.to_path_buf(), what, source };
        let group = rustix::fs::open(
            dir,
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| CgroupError::Io { path: dir.to_path_buf(), source: e.into() })?;
        let old = query(&group).map_err(|e| fail("listing the device programs attached".into(), e))?;
        let prog = load(program).map_err(|(e, log)| {
            let log = if log.is_empty() { String::new() } else { format!("; the verifier said: {log}") };
            fail(format!("loading the device control eBPF program{log}"), e)
        })?;
        attach(&group, &prog).map_err(|e| fail("attaching the device control eBPF program".into(), e))?;
        for id in old {
            // A program gone meanwhile needs no detaching.
            let Ok(fd) = prog_fd(id) else { continue };
            detach(&group, &fd).map_err(|e| fail(format!("detaching the replaced device program {id}"), e))?;
        }
        Ok(())
    }
}

/// `bpf(cmd, attr, sizeof attr)`, with the new descriptor or 0 it returns.
///
/// # Safety
/// `T` must be `#[repr(C)]` without padding, laid out as the start of the kernel's
/// `union bpf_attr` for `cmd`, and every pointer in it must be valid for what the kernel
/// does with it during the call.
#[allow(unsafe_code)]
unsafe fn sys_bpf<T>(cmd: i32, attr: &mut T) -> io::Result<i64> {
    // SAFETY: as the caller promised; the size passed is the struct's own.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, std::mem::size_of::<T>()) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r) }
}

/// Takes ownership of a descriptor `bpf(2)` just returned.
#[allow(unsafe_code)]
fn owned(fd: i64) -> io::Result<OwnedFd> {
    let fd = i32::try_from(fd).map_err(|_| io::Error::other("bpf returned no descriptor"))?;
    // SAFETY: the kernel just created `fd` for this process, and nothing else refers to it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[repr(C)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
}

/// Loads `program`; on failure, again with the verifier's log, which comes with the error.
fn load(program: &[Insn]) -> std::result::Result<OwnedFd, (io::Error, String)> {
    let code: Vec<u8> = program.iter().flat_map(|i| i.to_bytes()).collect();
    let mut log = vec![0u8; 1 << 16];
    let mut try_load = |with_log: bool| {
        let mut attr = ProgLoad {
            prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
            insn_cnt: program.len() as u32,
            insns: code.as_ptr() as u64,
            license: LICENSE.as_ptr() as u64,
            log_level: with_log as u32,
            log_size: if with_log { log.len() as u32 } else { 0 },
            log_buf: if with_log { log.as_mut_ptr() as u64 } else { 0 },
            kern_version: 0,
            prog_flags: 0,
        };
        // SAFETY: `ProgLoad` is the start of `bpf_attr` for BPF_PROG_LOAD (u32 pairs and u64s
        // at the kernel's offsets, no padding); `code` holds `insn_cnt` instructions, the license is
        // NUL-terminated, and the log buffer is `log_size` writable bytes, all alive here.
        #[allow(unsafe_code)]
        let r = unsafe { sys_bpf(BPF_PROG_LOAD, &mut attr) };
        r
    };
    match try_load(false) {
        Ok(fd) => owned(fd).map_err(|e| (e, String::new())),
        Err(first) => {
            let _ = try_load(true);
            let text = String::from_utf8_lossy(&log[..log.iter().position(|&b| b == 0).unwrap_or(log.len())]);
            // The end of the log says what was wrong.
            let text = text.trim();
            let tail = text.char_indices().rev().nth(2000).map(|(i, _)| &text[i..]).unwrap_or(text);
            Err((first, tail.lines().collect::<Vec<_>>().join("; ")))
        }
    }
}

#[repr(C)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

fn attach(group: &OwnedFd, prog: &OwnedFd) -> io::Result<()> {
    let mut attr = ProgAttach {
        target_fd: group.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    // SAFETY: `ProgAttach` is the start of `bpf_attr` for BPF_PROG_ATTACH (four u32s) and
    // holds no pointers; both descriptors are open.
    #[allow(unsafe_code)]
    unsafe { sys_bpf(BPF_PROG_ATTACH, &mut attr) }.map(drop)
}

fn detach(group: &OwnedFd, prog: &OwnedFd) -> io::Result<()> {
    let mut attr = ProgAttach {
        target_fd: group.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: 0,
    };
    // SAFETY: as for attaching: the same four u32s for BPF_PROG_DETACH, no pointers.
    #[allow(unsafe_code)]
    unsafe { sys_bpf(BPF_PROG_DETACH, &mut attr) }.map(drop)
}

#[repr(C)]
struct ProgQuery {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    /// Explicit, so no byte of the struct is uninitialised (the kernel wants unused ones 0).
    pad: u32,
}

/// The ids of the device programs attached to the group itself (not its ancestors).
fn query(group: &OwnedFd) -> io::Result<Vec<u32>> {
    // More than the kernel allows (BPF_CGROUP_MAX_PROGS, 64).
    let mut ids = vec![0u32; 128];
    let mut attr = ProgQuery {
        target_fd: group.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        query_flags: 0,
        attach_flags: 0,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        pad: 0,
    };
    // SAFETY: `ProgQuery` is the start of `bpf_attr` for BPF_PROG_QUERY (u32s around one
    // u64, padded by hand); `prog_ids` has room for `prog_cnt` ids and outlives the call.
    #[allow(unsafe_code)]
    unsafe { sys_bpf(BPF_PROG_QUERY, &mut attr) }?;
    ids.truncate((attr.prog_cnt as usize).min(ids.len()));
    Ok(ids)
}

#[repr(C)]
struct GetFdById {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

fn prog_fd(id: u32) -> io::Result<OwnedFd> {
    let mut attr = GetFdById { prog_id: id, next_id: 0, open_flags: 0 };
    // SAFETY: `GetFdById` is the start of `bpf_attr` for BPF_PROG_GET_FD_BY_ID (three u32s),
    // no pointers.
    #[allow(unsafe_code)]
    let fd = unsafe { sys_bpf(BPF_PROG_GET_FD_BY_ID, &mut attr) }?;
    owned(fd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::program::{ALU64_MOV_K, Insn};

    /// A program the verifier refuses (it never exits) comes back with the verifier's words.
    #[test]
    fn a_refused_program_brings_the_verifier_log() {
        let bad = [Insn { code: ALU64_MOV_K, dst: 0, src: 0, off: 0, imm: 1 }];
        let Err((err, log)) = load(&bad) else { panic!("the kernel loaded a program without exit") };
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{err}");
        // "last insn is not an exit or jmp", on one line.
        assert!(log.contains("exit") && !log.contains(['\0', '\n']), "{log:?}");
    }

    #[test]
    fn a_valid_program_loads() {
        let p = crate::devices::Policy::new(&crate::devices::docker_defaults(false)).unwrap();
        load(&crate::devices::program::build(&p)).map_err(|(e, log)| format!("{e}: {log}")).unwrap();
    }
}
