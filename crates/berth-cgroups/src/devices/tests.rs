use super::program::*;
use super::*;

fn rule(allow: bool, kind: &str, major: Option<i64>, minor: Option<i64>, access: &str) -> DeviceRule {
    DeviceRule { allow, kind: kind.into(), major, minor, access: access.into() }
}

fn policy(rules: &[DeviceRule]) -> Policy {
    Policy::new(rules).unwrap()
}

/// Runs `prog` as the kernel would for `ctx` (access_type, major, minor): the few
/// instructions the generator emits, nothing else. Also checks what the verifier checks
/// of its shape: jumps stay inside, every instruction is reachable, the last one exits.
fn run(prog: &[Insn], ctx: [u32; 3]) -> u64 {
    let mut reachable = vec![false; prog.len()];
    reachable[0] = true;
    for (pc, i) in prog.iter().enumerate() {
        if matches!(i.code, JMP_JEQ_K | JMP_JNE_K | JMP_JSET_K) {
            let target = pc as i64 + 1 + i64::from(i.off);
            assert!((0..prog.len() as i64).contains(&target), "jump out of the program at {pc}");
            reachable[target as usize] = true;
        }
        if i.code != JMP_EXIT && pc + 1 < prog.len() {
            reachable[pc + 1] = true;
        }
    }
    assert!(reachable.iter().all(|&r| r), "dead code in {prog:?}");
    assert_eq!(prog.last().unwrap().code, JMP_EXIT);

    let mut r = [0u64; 11];
    let mut pc = 0usize;
    loop {
        let i = prog[pc];
        pc += 1;
        let (d, imm) = (i.dst as usize, i.imm as i64 as u64);
        let jump = |taken: bool, pc: &mut usize| {
            if taken {
                *pc = (*pc as i64 + i64::from(i.off)) as usize;
            }
        };
        match i.code {
            LDX_MEM_W => {
                assert_eq!((i.src, i.off % 4), (1, 0), "only whole fields of the context are read");
                r[d] = u64::from(ctx[(i.off / 4) as usize]);
            }
            ALU64_AND_K => r[d] &= imm,
            ALU64_RSH_K => r[d] >>= imm,
            ALU64_MOV_K => r[d] = imm,
            ALU64_MOV_X => r[d] = r[i.src as usize],
            JMP_JEQ_K => jump(r[d] == imm, &mut pc),
            JMP_JNE_K => jump(r[d] != imm, &mut pc),
            JMP_JSET_K => jump(r[d] & imm != 0, &mut pc),
            JMP_EXIT => return r[0],
            c => panic!("unexpected opcode {c:#x}"),
        }
    }
}

fn program_allows(prog: &[Insn], kind: Kind, major: u32, minor: u32, access: u8) -> bool {
    match run(prog, [(u32::from(access) << 16) | kind as u32, major, minor]) {
        0 => false,
        1 => true,
        v => panic!("the program returned {v}"),
    }
}

const M: u8 = ACCESS_MKNOD;
const R: u8 = ACCESS_READ;
const W: u8 = ACCESS_WRITE;

#[test]
fn docker_defaults_allow_the_usual_devices_and_mknod_only_elsewhere() {
    let p = policy(&docker_defaults(false));
    let prog = build(&p);
    for (kind, major, minor, access, want) in [
        (Kind::Char, 1, 3, R | W, true),    // /dev/null
        (Kind::Char, 136, 7, R | W, true),  // a pty
        (Kind::Char, 10, 200, R | W, true), // tun
        (Kind::Char, 5, 2, R | W, true),    // ptmx
        (Kind::Char, 1, 11, M, true),       // kmsg: made ...
        (Kind::Char, 1, 11, R, false),      // ... but not opened
        (Kind::Block, 8, 0, M, true),
        (Kind::Block, 8, 0, R, false),
        (Kind::Block, 8, 0, W, false),
        (Kind::Block, 1, 3, R, false), // the type counts, not just the numbers
        (Kind::Char, 10, 229, R, false),
    ] {
        assert_eq!(p.allows(kind, major, minor, access), want, "{kind:?} {major}:{minor} {access}");
        assert_eq!(program_allows(&prog, kind, major, minor, access), want, "{kind:?} {major}:{minor} {access}");
    }
}

#[test]
fn privileged_allows_everything_with_a_program_that_only_says_yes() {
    let p = policy(&docker_defaults(true));
    assert_eq!(p, Policy { default_allow: true, rules: vec![] });
    let prog = build(&p);
    assert_eq!(
        &prog[prog.len() - 2..],
        &[
            Insn { code: ALU64_MOV_K, dst: 0, src: 0, off: 0, imm: 1 },
            Insn { code: JMP_EXIT, dst: 0, src: 0, off: 0, imm: 0 }
        ]
    );
    assert!(program_allows(&prog, Kind::Block, 8, 0, R | W | M));
}

#[test]
fn a_rule_grants_only_its_permissions() {
    let mut rules = docker_defaults(false);
    rules.push(rule(true, "c", Some(1), Some(11), "r"));
    let p = policy(&rules);
    let prog = build(&p);
    for (access, want) in [(R, true), (W, false), (R | W, false), (M, true)] {
        assert_eq!(program_allows(&prog, Kind::Char, 1, 11, access), want, "access {access}");
    }
    assert!(!program_allows(&prog, Kind::Char, 1, 12, R));
}

#[test]
fn the_last_matching_rule_decides() {
    let allow = rule(true, "c", Some(1), Some(3), "rwm");
    let deny_w = rule(false, "c", Some(1), Some(3), "w");
    let p = policy(&[allow.clone(), deny_w.clone()]);
    let prog = build(&p);
    assert!(program_allows(&prog, Kind::Char, 1, 3, R));
    assert!(!program_allows(&prog, Kind::Char, 1, 3, W));
    assert!(!program_allows(&prog, Kind::Char, 1, 3, R | W), "a deny takes any permission it names");
    let prog = build(&policy(&[deny_w, allow]));
    assert!(program_allows(&prog, Kind::Char, 1, 3, R | W));
}

#[test]
fn a_reset_forgets_the_rules_before_it() {
    let p = policy(&[rule(true, "c", Some(1), Some(3), "rwm"), rule(false, "a", None, None, "rwm")]);
    assert_eq!(p, Policy { default_allow: false, rules: vec![] });
    assert!(!program_allows(&build(&p), Kind::Char, 1, 3, R));
    // Empty type and permissions are "all", as in the OCI spec.
    assert_eq!(policy(&[rule(true, "", None, Some(-1), "")]), Policy { default_allow: true, rules: vec![] });
}

#[test]
fn without_a_reset_everything_else_is_denied() {
    let p = policy(&[rule(true, "c", Some(1), Some(3), "rw")]);
    let prog = build(&p);
    assert!(program_allows(&prog, Kind::Char, 1, 3, R | W));
    assert!(!program_allows(&prog, Kind::Char, 1, 3, M));
    assert!(!program_allows(&prog, Kind::Char, 1, 5, R));
}

#[test]
fn wildcards_match_every_number_and_type_a_both_types() {
    let p = policy(&[
        rule(false, "a", None, None, "rwm"),
        rule(true, "a", Some(7), None, "r"),
        rule(true, "b", None, Some(0), "w"),
    ]);
    let prog = build(&p);
    for (kind, major, minor, access, want) in [
        (Kind::Block, 7, 3, R, true),
        (Kind::Char, 7, 9, R, true),
        (Kind::Char, 8, 9, R, false),
        (Kind::Block, 8, 0, W, true),
        (Kind::Block, 8, 1, W, false),
        (Kind::Char, 8, 0, W, false),
    ] {
        assert_eq!(program_allows(&prog, kind, major, minor, access), want, "{kind:?} {major}:{minor} {access}");
    }
}

/// The program and the policy it encodes agree on every access in a grid that covers each
/// rule's numbers, their neighbours, both types and every combination of permissions.
#[test]
fn the_program_agrees_with_the_policy_everywhere() {
    let mut lists = vec![docker_defaults(false), docker_defaults(true)];
    lists.push(vec![
        rule(true, "a", None, None, "rwm"),
        rule(false, "b", Some(8), None, "rw"),
        rule(true, "b", Some(8), Some(1), "r"),
        rule(false, "c", None, None, "m"),
        rule(false, "a", Some(1), Some(3), "w"),
    ]);
    let mut custom = docker_defaults(false);
    custom.extend([
        rule(true, "c", Some(10), Some(229), "rw"),
        rule(false, "c", Some(1), None, "w"),
        rule(true, "b", Some(7), None, "mr"),
        rule(false, "a", None, Some(200), "m"),
    ]);
    lists.push(custom);
    for rules in lists {
        let p = policy(&rules);
        let prog = build(&p);
        for kind in [Kind::Block, Kind::Char] {
            for major in [0, 1, 2, 5, 7, 8, 10, 136] {
                for minor in [0, 1, 2, 3, 4, 11, 200, 229] {
                    for access in 1..=ACCESS_ALL {
                        assert_eq!(
                            program_allows(&prog, kind, major, minor, access),
                            p.allows(kind, major, minor, access),
                            "{rules:?}: {kind:?} {major}:{minor} {access}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn instructions_are_encoded_as_the_kernel_reads_them() {
    let major = build(&policy(&[]))[4];
    // r4 = *(u32 *)(r1 + 4): dst in the low nibble, src in the high one (little-endian).
    assert_eq!(major.to_bytes(), [0x61, 0x14, 4, 0, 0, 0, 0, 0]);
    let and = Insn { code: ALU64_AND_K, dst: 2, src: 0, off: 0, imm: 0xffff };
    assert_eq!(and.to_bytes(), [0x57, 0x02, 0, 0, 0xff, 0xff, 0, 0]);
    let jne = Insn { code: JMP_JNE_K, dst: 5, src: 0, off: 3, imm: 200 };
    assert_eq!(jne.to_bytes(), [0x55, 0x05, 3, 0, 200, 0, 0, 0]);
}

#[test]
fn v1_gets_the_same_list_as_lines() {
    let mut rules = docker_defaults(false);
    rules.truncate(4);
    rules.push(rule(true, "a", Some(7), None, "mr"));
    rules.push(rule(false, "c", Some(1), Some(3), "w"));
    let lines = policy(&rules).v1_lines();
    let want = [
        ("devices.deny", "a"),
        ("devices.allow", "c *:* m"),
        ("devices.allow", "b *:* m"),
        ("devices.allow", "c 1:3 rwm"),
        // The kernel takes any line starting with "a" for "all devices".
        ("devices.allow", "b 7:* rm"),
        ("devices.allow", "c 7:* rm"),
        ("devices.deny", "c 1:3 w"),
    ];
    assert_eq!(lines.iter().map(|(f, l)| (*f, l.as_str())).collect::<Vec<_>>(), want);
    assert_eq!(policy(&docker_defaults(true)).v1_lines(), [("devices.allow", "a".to_string())]);
}

#[test]
fn rules_the_kernel_cannot_take_are_refused() {
    for bad in [
        rule(true, "x", None, None, "r"),
        rule(true, "c", Some(1), Some(3), "rx"),
        rule(true, "c", Some(1 << 40), Some(3), "r"),
    ] {
        let err = Policy::new(std::slice::from_ref(&bad)).unwrap_err().to_string();
        assert!(err.contains("invalid device rule"), "{bad:?}: {err}");
    }
}
