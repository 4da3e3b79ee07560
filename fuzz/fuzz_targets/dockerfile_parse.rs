//! Dockerfile text through `berth_dockerfile::parse` and the I/O-free build semantics that
//! run on a parsed file.
//!
//! Checks: nothing panics (parse, variable expansion of every instruction's words, the
//! config-only `changes::apply`, `heredoc::run_script`, `build_args::declared`); every line
//! number is within the file; and the round trip the parser promises for history and
//! ONBUILD: re-parsing an instruction's `original` text (with the file's escape character)
//! gives the same instruction.
#![no_main]

use berth_api::models::ContainerConfig;
use berth_dockerfile::{Instruction, Line, build_args, changes, expand, heredoc, parse, words};
use libfuzzer_sys::fuzz_target;

fn env(name: &str) -> Option<String> {
    match name {
        "HOME" => Some("/root".into()),
        "EMPTY" => Some(String::new()),
        "V" => Some("a b  *c".into()),
        _ => None,
    }
}

fn check_line(line: &Line, escape: char, physical_lines: usize) {
    assert!(line.line_no >= 1 && line.line_no <= physical_lines, "line {} of {physical_lines}", line.line_no);
    let ins = &line.instruction;
    let again = Instruction::parse_with_escape(&ins.original, escape)
        .unwrap_or_else(|e| panic!("{:?} parsed, but its original text does not: {e}", ins.original));
    assert_eq!(&again, ins, "re-parsing the original text changed the instruction");

    let _ = line.source();
    if let Some(trigger) = line.onbuild_trigger() {
        let _ = Instruction::parse_with_escape(&trigger, escape);
    }
    let e: expand::Env = &env;
    let text = ins.shell_text();
    let _ = expand::expand(&text, e, escape);
    let _ = expand::expand_with_vars(&text, e, escape);
    let _ = expand::expand_split(&text, e, escape);
    let _ = expand::expand_words(&ins.arg_words(), e, escape);
    for (_, v) in &ins.flags {
        let _ = expand::expand(v, e, escape);
    }
    let _ = words::split_words(&text, escape);
    let _ = words::parse_pairs_raw(&text, escape, &ins.keyword);
    let _ = words::parse_arg_raw(&text, escape);
    for h in &line.heredocs {
        let _ = expand::expand_heredoc(&h.content, e);
    }
    if ins.keyword == "RUN" {
        let _ = heredoc::run_script(&text, &line.heredocs);
    }
    if ins.keyword == "HEALTHCHECK" {
        let _ = changes::healthcheck(ins);
    }
    let mut config = ContainerConfig::default();
    let _ = changes::apply(&mut config, ins, escape);
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(df) = parse(&text) else { return };
    let physical_lines = text.split_inclusive('\n').count();
    let escape = df.directives.escape;
    for line in df.args_before_from.iter().chain(df.stages.iter().flat_map(|s| s.instructions.iter())) {
        check_line(line, escape, physical_lines);
    }
    for (i, stage) in df.stages.iter().enumerate() {
        assert!(stage.line_no >= 1 && stage.line_no <= physical_lines);
        if let Some(name) = &stage.name {
            assert!(df.stage_index(name).is_some_and(|j| j <= i), "stage {name:?} not found by name");
        }
    }
    let _ = build_args::declared(&df);
});
