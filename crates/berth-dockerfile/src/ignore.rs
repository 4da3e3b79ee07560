//! `.dockerignore`: which files of the build context the client leaves out.
//!
//! # Contract
//!
//! [`Ignore::parse`] reads the file as Docker does:
//!
//! - a UTF-8 byte-order mark is ignored; lines *starting* with `#` are comments, blank
//!   lines are skipped, every other line is trimmed and is a pattern;
//! - a pattern starting with `!` is an exception (re-includes what earlier patterns
//!   excluded);
//! - patterns are cleaned like Go's `filepath.Clean` (`./a//b/../c` is `a/c`, `dir/` is
//!   `dir`) and a leading `/` is dropped, so patterns are relative to the context root.
//!
//! [`Ignore::matches`] decides one path (relative to the context, `/`-separated): every
//! pattern is tried in order and the last one that matches wins (excluded, or included
//! again for an exception). A pattern matches a path if it matches the path itself *or
//! any of its parent directories*, so `build` excludes everything under `build/`.
//! Within a pattern: `*` is any run of characters but `/`; `?` one character but `/`;
//! `[a-z]` / `[^a-z]` a character class; `\` escapes the next character; `**` any number
//! of directories, including none (`**/x` matches `x` and `a/b/x`; `a/**` all below `a`).
//!
//! [`Ignore::may_match_below`] lets a context walker prune: when a directory is
//! excluded and this is false, nothing below it can be re-included, so it need not be
//! read. It may answer true needlessly (then the walker descends and [`Ignore::matches`]
//! decides each path) but never false wrongly.
//!
//! Not decided here: the Dockerfile and the `.dockerignore` itself are always sent to
//! the builder even if a pattern excludes them; the caller adds them back.

use berth_api::glob::{self, Tok};

/// Parsed `.dockerignore` patterns.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    patterns: Vec<Pattern>,
    invalid: Vec<String>,
}

#[derive(Debug, Clone)]
struct Pattern {
    /// Cleaned, without the `!`.
    text: String,
    exception: bool,
    matcher: Matcher,
}

#[derive(Debug, Clone)]
enum Matcher {
    Tokens(Vec<Tok>),
    /// Docker's shortcut for `**` followed by plain text: the path ends with that text
    /// (so `**foo` matches `barfoo`, unlike what the glob reading would say).
    Suffix(String),
}

impl Ignore {
    /// Reads `.dockerignore` text. Malformed patterns (an unclosed `[`, a trailing `\`,
    /// a lone `!`) match nothing and are listed by [`Ignore::invalid`]; Docker refuses
    /// to build with them, so a caller wanting that checks it.
    pub fn parse(text: &str) -> Ignore {
        let mut ig = Ignore::default();
        for line in text.strip_prefix('\u{feff}').unwrap_or(text).lines() {
            if line.starts_with('#') {
                continue;
            }
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (exception, body) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let mut text = clean(body);
            if text.len() > 1 && text.starts_with('/') {
                text.remove(0);
            }
            match (body.is_empty(), compile(&text)) {
                (false, Some(matcher)) => ig.patterns.push(Pattern { text, exception, matcher }),
                _ => ig.invalid.push(line.to_string()),
            }
        }
        ig
    }

    /// Whether the context path `rel_path` is left out of the build context.
    pub fn matches(&self, rel_path: &str) -> bool {
        let path = clean(rel_path.trim_start_matches('/'));
        if path == "." || path.is_empty() {
            return false;
        }
        let path: Vec<char> = path.chars().collect();
        let parents: Vec<usize> = path.iter().enumerate().filter(|(_, c)| **c == '/').map(|(i, _)| i).collect();
        let mut excluded = false;
        for p in &self.patterns {
            // Last match wins, so only patterns that could flip the answer matter.
            if p.exception != excluded {
                continue;
            }
            if p.matches(&path) || parents.iter().any(|&end| p.matches(&path[..end])) {
                excluded = !p.exception;
            }
        }
        excluded
    }

    /// Whether some exception could re-include a path below the directory `dir`.
    pub fn may_match_below(&self, dir: &str) -> bool {
        let dir = clean(dir.trim_start_matches('/'));
        let dirs: Vec<&str> = if dir == "." { Vec::new() } else { dir.split('/').collect() };
        self.patterns.iter().filter(|p| p.exception).any(|p| p.may_match_below(&dirs))
    }

    /// Whether any pattern is an exception (`!…`); without one, an excluded directory's
    /// whole subtree is excluded.
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exception)
    }

    /// Lines whose pattern is malformed (see [`Ignore::parse`]).
    pub fn invalid(&self) -> &[String] {
        &self.invalid
    }
}

impl Pattern {
    fn matches(&self, path: &[char]) -> bool {
        match &self.matcher {
            Matcher::Tokens(toks) => glob::run(toks, path),
            Matcher::Suffix(suffix) => {
                let path: String = path.iter().collect();
                path.ends_with(suffix.as_str()) || suffix.strip_prefix('/').is_some_and(|s| path == s)
            }
        }
    }

    /// Conservative: false only if a leading pattern segment cannot match the
    /// corresponding directory name.
    fn may_match_below(&self, dirs: &[&str]) -> bool {
        if matches!(self.matcher, Matcher::Suffix(_)) || self.text.contains("**") || self.text.contains("[^") {
            return true;
        }
        let segs: Vec<&str> = self.text.split('/').collect();
        // Segments past the directory's depth, or a pattern matching the directory or
        // an ancestor (exceptions re-include whole subtrees), both mean "maybe".
        dirs.iter().zip(&segs).all(|(d, seg)| match compile(seg) {
            Some(Matcher::Tokens(toks)) => glob::run(&toks, &d.chars().collect::<Vec<_>>()),
            _ => true,
        })
    }
}

/// Compiles a cleaned pattern; `None` if it is malformed.
fn compile(p: &str) -> Option<Matcher> {
    let chars: Vec<char> = p.chars().collect();
    let mut toks = Vec::new();
    // Docker treats a pattern that starts with `**` and has no other special
    // characters as a plain suffix test.
    let mut plain_after_leading_stars = true;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' if chars.get(i) == Some(&'*') => {
                plain_after_leading_stars &= i == 1;
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                // `**` at the end is anything; elsewhere (or `**/`) empty or anything ending in `/`.
                toks.push(if i == chars.len() { Tok::Star { slash: true } } else { Tok::Dirs });
            }
            '*' => {
                plain_after_leading_stars = false;
                toks.push(Tok::Star { slash: false });
            }
            '?' => {
                plain_after_leading_stars = false;
                toks.push(Tok::One { slash: false });
            }
            '\\' => {
                plain_after_leading_stars = false;
                toks.push(Tok::Lit(*chars.get(i)?));
                i += 1;
            }
            '[' => {
                plain_after_leading_stars = false;
                let (class, next) = class(&chars, i)?;
                toks.push(class);
                i = next;
            }
            ']' => {
                plain_after_leading_stars = false;
                toks.push(Tok::Lit(']'));
            }
            c => toks.push(Tok::Lit(c)),
        }
    }
    if p.starts_with("**") && plain_after_leading_stars {
        return Some(Matcher::Suffix(p[2..].to_string()));
    }
    Some(Matcher::Tokens(toks))
}

/// Parses a class body starting after `[`; returns it and the index after `]`.
fn class(chars: &[char], mut i: usize) -> Option<(Tok, usize)> {
    let negated = chars.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    // A range end; as in Go's filepath.Match, `-` and `]` must be escaped to be one.
    let end = |i: &mut usize| -> Option<char> {
        let c = *chars.get(*i)?;
        *i += 1;
        match c {
            '-' | ']' => None,
            '\\' => {
                let e = *chars.get(*i)?;
                *i += 1;
                Some(e)
            }
            c => Some(c),
        }
    };
    loop {
        if chars.get(i)? == &']' && !ranges.is_empty() {
            // `[^...]` also matches `/`, as in Docker.
            return Some((Tok::Class { negate: negated, ranges, slash: true }, i + 1));
        }
        let lo = end(&mut i)?;
        let hi = if chars.get(i) == Some(&'-') {
            i += 1;
            end(&mut i)?
        } else {
            lo
        };
        if hi < lo {
            return None;
        }
        ranges.push((lo, hi));
    }
}

/// Lexical path cleaning, as Go's `filepath.Clean` on Unix.
fn clean(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." if parts.last().is_some_and(|l| *l != "..") => {
                parts.pop();
            }
            ".." if rooted => {}
            s => parts.push(s),
        }
    }
    match (rooted, parts.is_empty()) {
        (true, _) => format!("/{}", parts.join("/")),
        (false, true) => ".".into(),
        (false, false) => parts.join("/"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_like_go() {
        assert_eq!(clean("./a//b/../c/"), "a/c");
        assert_eq!(clean("../x"), "../x");
        assert_eq!(clean("/../x"), "/x");
        assert_eq!(clean(""), ".");
        assert_eq!(clean("/"), "/");
    }
}
