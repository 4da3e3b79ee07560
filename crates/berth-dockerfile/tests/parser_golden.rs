//! Golden-file tests for the Dockerfile parser.
//!
//! Each directory under `tests/testdata/` is a case: `Dockerfile` is parsed and the
//! dump below must equal `expected` byte for byte. For a file that must not parse,
//! `expected` is one line, `error: <the exact message>`.
//!
//! The dump, one item per line, strings JSON-quoted:
//!
//! ```text
//! directives escape="\\" syntax=null check=null
//! before-from
//!   L1 ARG shell "V=1"
//! stage 0 L2 base="alpine:$V" name="build" platform=null
//!   L3 RUN flags=["mount=type=cache,target=/x"] shell "make"
//!   L4 COPY exec ["a","/b"]
//!     heredoc "EOF" expand=true strip_tabs=false "body\n"
//! ```
//!
//! To accept new output after an intended change: `BERTH_UPDATE_GOLDEN=1 cargo test -p
//! berth-dockerfile --test parser_golden`, then review the diff.

use std::fmt::Write;
use std::path::Path;

use berth_dockerfile::{Args, Dockerfile, Line, parse};

use serde_json::Value;

fn q(s: &str) -> String {
    Value::from(s).to_string()
}

fn qv(v: &[String]) -> String {
    Value::from(v.to_vec()).to_string()
}

fn qo(o: &Option<String>) -> String {
    o.as_deref().map_or("null".into(), q)
}

fn dump_line(out: &mut String, l: &Line) {
    let ins = &l.instruction;
    write!(out, "  L{} {}", l.line_no, ins.keyword).unwrap();
    if !ins.flags.is_empty() {
        let flags: Vec<String> = ins.flags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        write!(out, " flags={}", qv(&flags)).unwrap();
    }
    match &ins.args {
        Args::Exec(v) => writeln!(out, " exec {}", qv(v)).unwrap(),
        Args::Shell(s) => writeln!(out, " shell {}", q(s)).unwrap(),
    }
    for h in &l.heredocs {
        writeln!(out, "    heredoc {} expand={} strip_tabs={} {}", q(&h.name), h.expand, h.strip_tabs, q(&h.content))
            .unwrap();
    }
}

fn dump(df: &Dockerfile) -> String {
    let d = &df.directives;
    let mut out =
        format!("directives escape={} syntax={} check={}\n", q(&d.escape.to_string()), qo(&d.syntax), qo(&d.check));
    if !df.args_before_from.is_empty() {
        out.push_str("before-from\n");
        df.args_before_from.iter().for_each(|l| dump_line(&mut out, l));
    }
    for (i, s) in df.stages.iter().enumerate() {
        writeln!(
            out,
            "stage {i} L{} base={} name={} platform={}",
            s.from.line_no,
            q(&s.base),
            qo(&s.name),
            qo(&s.platform)
        )
        .unwrap();
        s.instructions.iter().for_each(|l| dump_line(&mut out, l));
    }
    out
}

fn render(text: &str) -> String {
    match parse(text) {
        Ok(df) => dump(&df),
        Err(e) => format!("error: {e}\n"),
    }
}

#[test]
fn golden_cases() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata");
    let update = std::env::var_os("BERTH_UPDATE_GOLDEN").is_some();
    let mut dirs: Vec<_> =
        std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    assert!(dirs.len() >= 20, "expected the golden cases under {}", root.display());
    let mut failures = Vec::new();
    for dir in &dirs {
        let text = String::from_utf8(std::fs::read(dir.join("Dockerfile")).unwrap()).unwrap();
        let actual = render(&text);
        let expected_path = dir.join("expected");
        if update {
            std::fs::write(&expected_path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if actual != expected {
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            failures.push(format!("--- {name}: expected\n{expected}--- {name}: actual\n{actual}"));
        }
    }
    assert!(failures.is_empty(), "{} golden case(s) differ:\n{}", failures.len(), failures.join("\n"));
}

/// Every case's Dockerfile re-parses identically from each line's [`Line::source`], so
/// the text the builder records (history, ONBUILD triggers) is faithful.
#[test]
fn sources_reparse_to_the_same_instructions() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata");
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        let Ok(text) = std::fs::read_to_string(dir.join("Dockerfile")) else { continue };
        let Ok(df) = parse(&text) else { continue };
        let escape = df.directives.escape;
        for l in df.stages.iter().flat_map(|s| &s.instructions) {
            let prefix = if escape == '`' { "# escape=`\nFROM x\n" } else { "FROM x\n" };
            let again =
                parse(&format!("{prefix}{}\n", l.source())).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            let l2 = &again.stages[0].instructions[0];
            assert_eq!(l2.instruction, l.instruction, "{}", dir.display());
            assert_eq!(l2.heredocs, l.heredocs, "{}", dir.display());
        }
    }
}
