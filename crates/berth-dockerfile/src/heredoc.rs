//! Heredocs: `RUN <<EOF … EOF`, `COPY <<a.txt <<b.txt /dst/`.
//!
//! Docker's rules, which the parser follows:
//!
//! - Only `RUN`, `COPY` and `ADD` in shell form take heredocs (also as an `ONBUILD`
//!   trigger). A marker is a word `<<NAME`, optionally `<<-NAME` (strip leading tabs
//!   from the body and from the terminator line), optionally after a file-descriptor
//!   number (`3<<EOF`), optionally with blanks after `<<`. Markers inside quotes are text.
//! - Quoting any part of the name (`<<'EOF'`, `<<"EOF"`, `<<E"O"F`) means the body is
//!   not expanded; the name is the word with quotes removed.
//! - Bodies follow the instruction line, one after another in marker order, each up to
//!   a line that is exactly its name. Body lines are raw: no comments, continuations or
//!   directives. A body that reaches the end of the file is `unterminated heredoc`.
//!
//! What a builder does with them: COPY/ADD create a file named after the heredoc with
//! [`Heredoc::body`] (expanded with [`crate::expand::expand_heredoc`] when `expand`),
//! and RUN runs [`run_script`].

use crate::expand::{self, Options};

#[derive(Debug, Clone, PartialEq)]
pub struct Heredoc {
    /// The delimiter with quotes removed; also the file name for COPY/ADD.
    pub name: String,
    /// The lines between the instruction and the terminator, each ending in `\n`
    /// (CRLF input is normalized), leading tabs still in place.
    pub content: String,
    /// False when the delimiter was quoted: the body is used as written.
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from each line of the body.
    pub strip_tabs: bool,
}

impl Heredoc {
    /// The body as the file or script gets it: [`Heredoc::content`], minus leading tabs
    /// on every line for `<<-`.
    pub fn body(&self) -> String {
        if !self.strip_tabs {
            return self.content.clone();
        }
        self.content.split_inclusive('\n').map(|l| l.trim_start_matches('\t')).collect()
    }
}

/// What a marker word says about its heredoc, before the body is read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Marker {
    pub name: String,
    pub expand: bool,
    pub strip_tabs: bool,
}

/// Parses one word as a heredoc marker; `None` if it is not one.
pub(crate) fn parse_marker(word: &str) -> Option<Marker> {
    let rest = word.trim_start_matches(|c: char| c.is_ascii_digit()).strip_prefix("<<")?;
    let (strip_tabs, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let rest = rest.trim_start_matches([' ', '\t', '\n', '\r', '\x0c']);
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    // Lex the name with and without keeping quotes: if the two differ in quote
    // characters, some part of it was quoted.
    let opts = Options { skip_unset: true, ..Options::default() };
    let cooked = expand::lex_words(rest, '\\', opts).ok()?;
    let raw = expand::lex_words(rest, '\\', Options { raw_quotes: true, ..opts }).ok()?;
    let [name] = cooked.as_slice() else { return None };
    let [raw] = raw.as_slice() else { return None };
    let quotes = |s: &str| s.matches(['\'', '"']).count();
    Some(Marker { name: name.clone(), expand: quotes(name) == quotes(raw), strip_tabs })
}

/// The heredoc markers on an instruction line, in order. Always lexed with `\` as the
/// escape, whatever the escape directive says (as Docker does).
pub(crate) fn markers(line: &str) -> Vec<Marker> {
    let opts = Options { raw_quotes: true, raw_escapes: true, skip_unset: true, skip_quotes: false };
    expand::lex_words(line, '\\', opts).unwrap_or_default().iter().filter_map(|w| parse_marker(w)).collect()
}

/// How `RUN` runs a shell-form command that has heredocs. Every variant ends up as the
/// text after `sh -c` (or the SHELL); bodies are never expanded by the builder, the
/// shell does it.
#[derive(Debug, Clone, PartialEq)]
pub enum RunScript {
    /// `RUN <<EOF` whose body starts with `#!`: make `name` an executable file (mode
    /// 0755) holding `content`, mounted read-only for the step, and run its path.
    File { name: String, content: String },
    /// `RUN <<EOF` with any other body: the body is the command.
    Inline(String),
    /// The heredoc is part of a longer command (`RUN cat <<EOF > f`): the command line,
    /// then each body and terminator, rejoined for the shell to interpret itself.
    Shell(String),
}

/// Decides how to run `RUN <command>` given its heredocs; `None` if it has none.
pub fn run_script(command: &str, heredocs: &[Heredoc]) -> Option<RunScript> {
    let first = heredocs.first()?;
    if parse_marker(command.trim()).is_some() {
        let body = first.body();
        return Some(if body.starts_with("#!") {
            RunScript::File { name: first.name.clone(), content: body }
        } else {
            RunScript::Inline(body)
        });
    }
    let mut s = command.to_string();
    for h in heredocs {
        s.push('\n');
        s.push_str(&h.content);
        s.push_str(&h.name);
    }
    Some(RunScript::Shell(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, expand: bool, strip_tabs: bool) -> Marker {
        Marker { name: name.into(), expand, strip_tabs }
    }

    #[test]
    fn marker_forms() {
        assert_eq!(parse_marker("<<EOF"), Some(m("EOF", true, false)));
        assert_eq!(parse_marker("<<-EOF"), Some(m("EOF", true, true)));
        assert_eq!(parse_marker("<<'EOF'"), Some(m("EOF", false, false)));
        assert_eq!(parse_marker("<<-\"EOF\""), Some(m("EOF", false, true)));
        assert_eq!(parse_marker("<<E\"O\"F"), Some(m("EOF", false, false)));
        assert_eq!(parse_marker("3<<EOF"), Some(m("EOF", true, false)));
        assert_eq!(parse_marker("<< EOF"), Some(m("EOF", true, false)));
        assert_eq!(parse_marker("<<"), None);
        assert_eq!(parse_marker("a<<EOF"), None);
        assert_eq!(parse_marker("<<<here"), None);
    }

    #[test]
    fn markers_on_a_line() {
        let names = |l: &str| markers(l).into_iter().map(|m| m.name).collect::<Vec<_>>();
        assert_eq!(names("COPY <<a.txt <<b.txt /dst/"), vec!["a.txt", "b.txt"]);
        assert_eq!(names("RUN cat << EOF > /f"), vec!["EOF"]);
        assert_eq!(names(r#"RUN echo "<<EOF" '<<X'"#), Vec::<String>::new());
        assert_eq!(names("RUN cat <<<$word"), Vec::<String>::new());
    }

    #[test]
    fn run_scripts() {
        let h = |content: &str| Heredoc { name: "EOF".into(), content: content.into(), expand: true, strip_tabs: true };
        assert_eq!(run_script("<<EOF", &[h("\techo hi\n")]), Some(RunScript::Inline("echo hi\n".into())));
        assert_eq!(
            run_script("<<-EOF", &[h("#!/usr/bin/env python3\nprint(1)\n")]),
            Some(RunScript::File { name: "EOF".into(), content: "#!/usr/bin/env python3\nprint(1)\n".into() })
        );
        assert_eq!(
            run_script("cat <<-EOF > /f", &[h("\tx\n")]),
            Some(RunScript::Shell("cat <<-EOF > /f\n\tx\nEOF".into()))
        );
        assert_eq!(run_script("true", &[]), None);
    }
}
