//! A user's seccomp profile (`--security-opt seccomp=<json>`, the API's `SecurityOpt`):
//! `berth_runtime::seccomp::from_docker_json`, then `compile` into the BPF program the
//! runtime loads.
//!
//! Input: one byte choosing the container's bounding set (none, Docker's default set, or
//! every capability), then the profile's JSON.
//! Checks: nothing panics; a compiled program is one the kernel could take (1 to 4096
//! instructions, BPF_MAXINSNS), its last instruction a return, and every jump lands
//! inside the program.
#![no_main]

use berth_runtime::caps::DOCKER_DEFAULT as DEFAULT_CAPS;
use berth_runtime::seccomp::{compile, from_docker_json};
use libfuzzer_sys::fuzz_target;

const MORE_CAPS: &[&str] = &["CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_BOOT", "CAP_BPF", "CAP_SYS_MODULE"];

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    let Ok(json) = std::str::from_utf8(rest) else { return };
    let bounding: Vec<String> = match which % 3 {
        0 => Vec::new(),
        1 => DEFAULT_CAPS.iter().map(|s| s.to_string()).collect(),
        _ => DEFAULT_CAPS.iter().chain(MORE_CAPS).map(|s| s.to_string()).collect(),
    };
    let Ok(Some(profile)) = from_docker_json(json, &bounding) else { return };
    let Ok(program) = compile(&profile) else { return };
    let insns = program.instructions();
    assert!(!insns.is_empty() && insns.len() <= 4096, "{} instructions", insns.len());
    const BPF_CLASS_MASK: u16 = 0x07;
    const BPF_JMP: u16 = 0x05;
    const BPF_RET: u16 = 0x06;
    const BPF_JA: u16 = 0x00;
    assert_eq!(insns[insns.len() - 1].code & BPF_CLASS_MASK, BPF_RET, "the program does not end in a return");
    for (i, ins) in insns.iter().enumerate() {
        if ins.code & BPF_CLASS_MASK != BPF_JMP {
            continue;
        }
        let targets: Vec<usize> = if ins.code & 0xf0 == BPF_JA {
            vec![i + 1 + ins.k as usize]
        } else {
            vec![i + 1 + ins.jt as usize, i + 1 + ins.jf as usize]
        };
        for t in targets {
            assert!(t < insns.len(), "instruction {i} jumps to {t}, past the end ({})", insns.len());
        }
    }
});
