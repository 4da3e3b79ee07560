//! The `--flags` an instruction accepts, and Docker's rules for spelling them.
//!
//! Every instruction may start with flags (`ENV --x=1` is an "unknown flag" error, not an
//! ENV named `--x`); a word `--` ends them. A flag word may quote or escape parts of its
//! value (`--mount=type=secret,id="my id"`). After [`check`], an instruction's flags are
//! `(name, value)` pairs without the dashes where:
//!
//! - a [`FlagKind::Bool`] flag's value is `"true"` or `"false"` (`--link` alone is true);
//! - a [`FlagKind::String`] flag appears at most once and always had `=`;
//! - a [`FlagKind::Strings`] flag (`--mount`, `--exclude`) may repeat, in order.
//!
//! Values are as written, unexpanded: which flags the builder expands is in [`crate::expand`].

use crate::{DockerfileError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagKind {
    Bool,
    String,
    Strings,
}

use FlagKind::{Bool, Strings};
const STR: FlagKind = FlagKind::String;

/// Every instruction Docker knows. Keywords outside this list are not errors at the
/// single-line level (`docker commit -c` reports them its own way); [`crate::parse`]
/// rejects them as `unknown instruction`.
pub const INSTRUCTIONS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// The flags `keyword` accepts; `None` if the keyword is not an instruction at all.
pub fn spec(keyword: &str) -> Option<&'static [(&'static str, FlagKind)]> {
    Some(match keyword {
        "FROM" => &[("platform", STR)],
        "RUN" => &[("mount", Strings), ("network", STR), ("security", STR), ("device", Strings)],
        "COPY" => {
            &[("from", STR), ("chown", STR), ("chmod", STR), ("link", Bool), ("parents", Bool), ("exclude", Strings)]
        }
        "ADD" => &[
            ("chown", STR),
            ("chmod", STR),
            ("link", Bool),
            ("keep-git-dir", Bool),
            ("checksum", STR),
            ("unpack", Bool),
            ("exclude", Strings),
        ],
        "HEALTHCHECK" => {
            &[("interval", STR), ("timeout", STR), ("start-period", STR), ("start-interval", STR), ("retries", STR)]
        }
        k if INSTRUCTIONS.contains(&k) => &[],
        _ => return None,
    })
}

/// Splits the leading flag words off an instruction's argument text, returning them
/// (dashes kept, quotes and escapes resolved) and the rest of the text.
pub(crate) fn extract(line: &str, escape: char) -> (Vec<String>, &str) {
    let mut words = Vec::new();
    let mut rest = line;
    loop {
        let trimmed = rest.trim_start();
        if !trimmed.starts_with("--") {
            return (words, trimmed);
        }
        let (word, quoted, after) = flag_word(trimmed, escape);
        if word == "--" && !quoted {
            return (words, after.trim_start());
        }
        if !word.is_empty() || quoted {
            words.push(word);
        }
        rest = after;
    }
}

/// Reads one whitespace-delimited word: quotes group and are removed, the escape
/// character takes the next character literally (a trailing one is dropped).
fn flag_word(s: &str, escape: char) -> (String, bool, &str) {
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut quoted = false;
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match quote {
            None if c.is_whitespace() => return (word, quoted, &s[i..]),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                quoted = true;
            }
            Some(q) if c == q => quote = None,
            _ if c == escape => {
                if let Some((_, n)) = chars.next() {
                    word.push(n);
                }
            }
            _ => word.push(c),
        }
    }
    (word, quoted, "")
}

/// Checks flag words against what `keyword` accepts, with Docker's messages. For a
/// keyword that is not an instruction the words are split leniently and not checked.
pub(crate) fn check(keyword: &str, words: &[String]) -> Result<Vec<(String, String)>> {
    let err = |m: String| Err(DockerfileError::Syntax(m));
    let mut out: Vec<(String, String)> = Vec::new();
    let Some(spec) = spec(keyword) else {
        for w in words {
            let (k, v) = w.trim_start_matches('-').split_once('=').unwrap_or((w.trim_start_matches('-'), ""));
            out.push((k.to_string(), v.to_string()));
        }
        return Ok(out);
    };
    for w in words {
        let Some(body) = w.strip_prefix("--") else {
            return err(format!("arg should start with -- : {w}"));
        };
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let Some(&(_, kind)) = spec.iter().find(|(n, _)| *n == name) else {
            return err(format!("unknown flag: --{name}"));
        };
        if kind != Strings && out.iter().any(|(n, _)| n == name) {
            return err(format!("duplicate flag specified: --{name}"));
        }
        let value = match (kind, value) {
            (Bool, None) => "true".to_string(),
            (Bool, Some(v)) => match v.to_ascii_lowercase().as_str() {
                "" => return err(format!("missing a value on flag: --{name}")),
                "true" => "true".to_string(),
                "false" => "false".to_string(),
                _ => return err(format!("expecting boolean value for flag --{name}, not: {v}")),
            },
            (_, None) => return err(format!("missing a value on flag: --{name}")),
            (_, Some(v)) => v.to_string(),
        };
        out.push((name.to_string(), value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_quoted_flags_and_stops_at_double_dash() {
        let (w, rest) = extract(r#"--mount=type=secret,id="a b" --link -- --not-a-flag x"#, '\\');
        assert_eq!(w, vec!["--mount=type=secret,id=a b", "--link"]);
        assert_eq!(rest, "--not-a-flag x");
        let (w, rest) = extract("  plain --x", '\\');
        assert!(w.is_empty());
        assert_eq!(rest, "plain --x");
    }

    #[test]
    fn checks_like_docker() {
        let ok =
            check("COPY", &["--link".into(), "--from=b".into(), "--exclude=a".into(), "--exclude=b".into()]).unwrap();
        assert_eq!(ok[0], ("link".into(), "true".into()));
        assert_eq!(ok.len(), 4);
        let msg = |k: &str, w: &[&str]| match check(k, &w.iter().map(|s| s.to_string()).collect::<Vec<_>>()) {
            Err(DockerfileError::Syntax(m)) => m,
            other => panic!("{other:?}"),
        };
        assert_eq!(msg("ENV", &["--x=1"]), "unknown flag: --x");
        assert_eq!(msg("COPY", &["--from"]), "missing a value on flag: --from");
        assert_eq!(msg("COPY", &["--from=a", "--from=b"]), "duplicate flag specified: --from");
        assert_eq!(msg("COPY", &["--link=maybe"]), "expecting boolean value for flag --link, not: maybe");
    }
}
