//! Parsing a whole Dockerfile into stages.
//!
//! # Contract
//!
//! [`parse`] accepts exactly the files Docker's (BuildKit's) Dockerfile frontend accepts,
//! and reports the first error with Docker's text and the 1-based line of the
//! instruction it is in (`dockerfile parse error on line 3: unknown instruction: FORM`).
//! What it checks: the file layout (directives, continuations, comments, heredocs), that
//! every keyword is an instruction, each instruction's flags and argument count or form,
//! `FROM`'s `AS name`, and that nothing but `ARG` comes before the first `FROM`. What it
//! does not: anything that needs build-time values (expansion, `--from` targets, whether
//! a platform or image exists); that is the builder's, with [`crate::expand`].
//!
//! # Lines
//!
//! - A UTF-8 byte-order mark is ignored; lines may end in LF or CRLF.
//! - Parser directives come first ([`Directives`] has the rules).
//! - Leading whitespace is ignored; a line whose first non-blank is `#` is a comment, so
//!   `RUN echo # hi` passes `# hi` to the shell. Blank lines are skipped.
//! - A line whose last non-blank character is the escape character (not itself
//!   escaped) continues on the next line; the escape and trailing blanks are removed and
//!   the next line is appended as is (its indentation kept). Comment lines and blank
//!   lines inside a continuation are skipped without ending it; the file may end
//!   mid-continuation.
//! - Heredoc bodies follow their instruction ([`crate::heredoc`] has the rules).
//!
//! # Deliberate choices where Docker is vague
//!
//! - A file that is empty or only whitespace is `the Dockerfile (Dockerfile) cannot be
//!   empty` (no line number: there is no line); one with only comments and directives is
//!   `file with no instructions` on its last line.
//! - Heredoc bodies from CRLF files get LF line ends (Docker keeps the `\r`, which breaks
//!   scripts).

use crate::directives::{DirectiveScan, Directives};
use crate::heredoc::{self, Heredoc};
use crate::{Args, DockerfileError, Instruction, Result, flags, validate};

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq)]
pub struct Dockerfile {
    pub directives: Directives,
    /// The `ARG`s before the first `FROM`: the only variables `FROM` lines may use, and
    /// which a stage sees only if it declares them again with a bare `ARG name`.
    pub args_before_from: Vec<Line>,
    /// One per `FROM`, in file order; a stage is addressed by its name or its index.
    pub stages: Vec<Stage>,
}

/// The instructions from one `FROM` up to the next.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// The `AS` name, lowercased; unique names are not enforced (Docker only warns).
    pub name: Option<String>,
    /// The `FROM` argument as written, to be expanded with the pre-FROM ARGs: an image
    /// reference, an earlier stage's name, or `scratch`.
    pub base: String,
    /// `--platform=` as written (commonly `$BUILDPLATFORM`), unexpanded.
    pub platform: Option<String>,
    /// The `FROM` line itself, as written (its number, its keyword's and `AS`'s casing).
    pub from: Line,
    /// Everything after the `FROM`, in order.
    pub instructions: Vec<Line>,
}

/// One instruction and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// 1-based number of the instruction's first physical line.
    pub line_no: usize,
    pub instruction: Instruction,
    /// Bodies for the heredoc markers on the line, in marker order.
    pub heredocs: Vec<Heredoc>,
    /// Whether a blank line sat inside the instruction's continuation (skipped, as Docker
    /// does; a build check reports it).
    pub empty_continuation: bool,
}

impl Line {
    /// The instruction as written followed by each heredoc body and terminator: the
    /// text that re-parses to the same line. Used for ONBUILD triggers and history.
    pub fn source(&self) -> String {
        let mut s = self.instruction.original.clone();
        for h in &self.heredocs {
            s.push('\n');
            s.push_str(&h.content);
            s.push_str(&h.name);
        }
        s
    }

    /// For `ONBUILD <trigger>`: the trigger as the image records it (with heredocs).
    pub fn onbuild_trigger(&self) -> Option<String> {
        if self.instruction.keyword != "ONBUILD" {
            return None;
        }
        let source = self.source();
        let after_keyword = source.trim_start().split_once(char::is_whitespace).map_or("", |(_, r)| r);
        Some(after_keyword.trim_start().to_string())
    }
}

impl Dockerfile {
    /// Finds a stage by `AS` name (case-insensitive) or, failing that, by index. Docker
    /// only lets `COPY --from=<index>` name an earlier stage; the caller checks that.
    pub fn stage_index(&self, name: &str) -> Option<usize> {
        let lower = name.to_ascii_lowercase();
        self.stages
            .iter()
            .position(|s| s.name.as_deref() == Some(lower.as_str()))
            .or_else(|| name.parse::<usize>().ok().filter(|&i| i < self.stages.len()))
    }
}

/// The longest physical line Docker's parser reads (its line scanner's buffer, less the
/// line end); longer is an error there, and here.
pub const MAX_LINE: usize = 64 * 1024 - 1;

/// Parses a whole Dockerfile (see the module contract).
pub fn parse(text: &str) -> Result<Dockerfile> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(DockerfileError::Syntax("the Dockerfile (Dockerfile) cannot be empty".into()));
    }
    let mut src = Source::new(text);
    if let Some(n) = src.lines.iter().position(|l| l.len() > MAX_LINE) {
        return Err(at(n + 1, format!("dockerfile line greater than max allowed size of {MAX_LINE}")));
    }
    let (directives, lines) = read_lines(&mut src)?;
    if lines.is_empty() {
        return Err(at(src.last_line(), "file with no instructions"));
    }
    group(directives, lines)
}

fn at(line: usize, message: impl Into<String>) -> DockerfileError {
    DockerfileError::Parse { line, message: message.into() }
}

/// Physical lines, without their line ends, numbered from 1.
struct Source<'a> {
    lines: Vec<&'a str>,
    next: usize,
}

impl<'a> Source<'a> {
    fn new(text: &'a str) -> Self {
        Source { lines: text.split_inclusive('\n').map(|l| l.trim_end_matches(['\r', '\n'])).collect(), next: 0 }
    }

    fn next(&mut self) -> Option<(usize, &'a str)> {
        let line = self.lines.get(self.next)?;
        self.next += 1;
        Some((self.next, line))
    }

    fn last_line(&self) -> usize {
        self.lines.len()
    }
}

/// Splits the file into logical lines and parses each into an [`Instruction`], reading
/// heredoc bodies as it goes. Nothing about stages or argument counts yet, so that (as
/// in Docker) a layout error late in the file wins over an argument error early on.
fn read_lines(src: &mut Source) -> Result<(Directives, Vec<Line>)> {
    let mut scan = DirectiveScan::default();
    let mut out = Vec::new();
    while let Some((line_no, raw)) = src.next() {
        let line = raw.trim_start();
        if scan.offer(line).map_err(|m| at(line_no, m))? {
            continue;
        }
        let escape = scan.found.escape;
        if line.starts_with('#') {
            continue;
        }
        let (first, mut more) = continuation(line, escape);
        if first.is_empty() && !more {
            continue;
        }
        let mut logical = first.to_string();
        let mut empty_continuation = false;
        while more {
            let Some((_, raw)) = src.next() else { break };
            if raw.trim().is_empty() {
                empty_continuation = true;
                continue;
            }
            if raw.trim_start().starts_with('#') {
                continue;
            }
            let (part, m) = continuation(raw, escape);
            logical.push_str(part);
            more = m;
        }
        let instruction = Instruction::parse_with_escape(&logical, escape).map_err(|e| at(line_no, e.to_string()))?;
        let heredocs = if takes_heredocs(&instruction, escape) && logical.contains("<<") {
            read_heredocs(src, &logical, line_no)?
        } else {
            Vec::new()
        };
        out.push(Line { line_no, instruction, heredocs, empty_continuation });
    }
    Ok((scan.found, out))
}

/// Strips a line-continuation escape: `(text before it, true)`, or `(line, false)`.
/// An escape preceded by another escape is literal (`C:\\`), and so, as in Docker, is
/// the last of three (`\\\`).
fn continuation(line: &str, escape: char) -> (&str, bool) {
    let body = line.trim_end_matches([' ', '\t']);
    match body.strip_suffix(escape) {
        Some(before) if !before.ends_with(escape) => (before, true),
        _ => (line, false),
    }
}

/// RUN, COPY and ADD in shell form, directly or as an ONBUILD trigger.
fn takes_heredocs(ins: &Instruction, escape: char) -> bool {
    let direct =
        |i: &Instruction| matches!(i.keyword.as_str(), "RUN" | "COPY" | "ADD") && matches!(i.args, Args::Shell(_));
    match ins.keyword.as_str() {
        "ONBUILD" => Instruction::parse_with_escape(&ins.shell_text(), escape).is_ok_and(|t| direct(&t)),
        _ => direct(ins),
    }
}

fn read_heredocs(src: &mut Source, logical: &str, line_no: usize) -> Result<Vec<Heredoc>> {
    let mut docs = Vec::new();
    for m in heredoc::markers(logical) {
        let mut content = String::new();
        loop {
            let Some((_, raw)) = src.next() else {
                return Err(at(line_no, "unterminated heredoc"));
            };
            let candidate = if m.strip_tabs { raw.trim_start_matches('\t') } else { raw };
            if candidate == m.name {
                break;
            }
            content.push_str(raw);
            content.push('\n');
        }
        docs.push(Heredoc { name: m.name, content, expand: m.expand, strip_tabs: m.strip_tabs });
    }
    Ok(docs)
}

/// Checks each instruction and sorts the lines into the pre-FROM ARGs and stages.
fn group(directives: Directives, lines: Vec<Line>) -> Result<Dockerfile> {
    let escape = directives.escape;
    let mut df = Dockerfile { directives, args_before_from: Vec::new(), stages: Vec::new() };
    for line in lines {
        let ins = &line.instruction;
        if flags::spec(&ins.keyword).is_none() {
            return Err(at(line.line_no, format!("unknown instruction: {}", ins.keyword_as_written())));
        }
        validate::check(&line, escape).map_err(|m| at(line.line_no, m))?;
        match ins.keyword.as_str() {
            "FROM" => {
                let (base, name) = validate::from_args(ins).map_err(|m| at(line.line_no, m))?;
                let platform = ins.flag("platform").map(str::to_string);
                df.stages.push(Stage { name, base, platform, from: line, instructions: Vec::new() });
            }
            "ARG" if df.stages.is_empty() => df.args_before_from.push(line),
            _ => match df.stages.last_mut() {
                Some(stage) => stage.instructions.push(line),
                None => return Err(at(line.line_no, "no build stage in current context")),
            },
        }
    }
    Ok(df)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_rules() {
        assert_eq!(continuation("RUN a \\", '\\'), ("RUN a ", true));
        assert_eq!(continuation("RUN a \\ \t", '\\'), ("RUN a ", true));
        assert_eq!(continuation("\\", '\\'), ("", true));
        assert_eq!(continuation("ENV C x\\\\", '\\'), ("ENV C x\\\\", false));
        assert_eq!(continuation("RUN a `", '`'), ("RUN a ", true));
        assert_eq!(continuation("RUN a \\", '`'), ("RUN a \\", false));
    }

    #[test]
    fn stage_lookup() {
        let df = parse("FROM a AS Build\nFROM b\n").unwrap();
        assert_eq!(df.stage_index("build"), Some(0));
        assert_eq!(df.stage_index("BUILD"), Some(0));
        assert_eq!(df.stage_index("1"), Some(1));
        assert_eq!(df.stage_index("2"), None);
        assert_eq!(df.stage_index("alpine"), None);
    }

    #[test]
    fn onbuild_trigger_keeps_heredocs() {
        let df = parse("FROM a\nonbuild  RUN <<EOF\necho hi\nEOF\n").unwrap();
        let line = &df.stages[0].instructions[0];
        assert_eq!(line.onbuild_trigger().as_deref(), Some("RUN <<EOF\necho hi\nEOF"));
        assert_eq!(line.heredocs.len(), 1);
    }
}
