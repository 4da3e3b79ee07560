//! Go's `path.Match`, which Docker uses for image `reference` filters and for COPY/ADD
//! source patterns: `*` is any run of characters but `/`, `?` one character but `/`,
//! `[a-z]` / `[^a-z]` a class (never `/`), and `\` makes the next character literal. A
//! pattern matches a whole name.
//!
//! Matching is linear: the pattern runs as a set of positions over the name (time
//! O(pattern × name)), so no pattern can make it backtrack. A recursive matcher is
//! exponential in the number of `*`: one API request with a long pattern pinned a runtime
//! worker.

/// One step of a compiled pattern. The three pattern languages berth reads (Go's
/// `path.Match` here, `.dockerignore`'s, and the shell patterns of `${V#pat}` in
/// berth-dockerfile) compile to these, and all run on [`run`].
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Lit(char),
    /// One character; `/` only if `slash`.
    One {
        slash: bool,
    },
    /// One character in (or, negated, not in) the ranges; `/` only if `slash`.
    Class {
        negate: bool,
        ranges: Vec<(char, char)>,
        slash: bool,
    },
    /// Any run of characters; `/` only if `slash`.
    Star {
        slash: bool,
    },
    /// Empty, or any run of characters that ends in `/` (`**/` of `.dockerignore`).
    Dirs,
}

/// Whether the tokens match the whole of `s`. The tokens run as a set of positions over
/// `s`, so the time is O(tokens × length) whatever the pattern.
pub fn run(toks: &[Tok], s: &[char]) -> bool {
    // reach[j]: the tokens so far can match exactly s[..j].
    let mut reach = vec![false; s.len() + 1];
    reach[0] = true;
    for t in toks {
        let mut next = vec![false; s.len() + 1];
        let allowed = |c: char, slash: bool| slash || c != '/';
        match t {
            Tok::Lit(c) => (0..s.len()).for_each(|j| next[j + 1] = reach[j] && s[j] == *c),
            Tok::One { slash } => (0..s.len()).for_each(|j| next[j + 1] = reach[j] && allowed(s[j], *slash)),
            Tok::Class { negate, ranges, slash } => (0..s.len()).for_each(|j| {
                next[j + 1] = reach[j]
                    && allowed(s[j], *slash)
                    && ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&s[j])) != *negate
            }),
            Tok::Star { slash } => {
                for j in 0..=s.len() {
                    next[j] = reach[j] || (j > 0 && next[j - 1] && allowed(s[j - 1], *slash));
                }
            }
            Tok::Dirs => {
                // From any reachable start up to and including some `/`.
                let mut open = false;
                for j in 0..=s.len() {
                    next[j] = reach[j] || (open && s[j - 1] == '/');
                    open |= reach[j];
                }
            }
        }
        reach = next;
    }
    reach[s.len()]
}

/// A compiled pattern.
pub struct Pattern(Vec<Tok>);

impl Pattern {
    /// Compiles `pattern`; `None` if it is malformed (an unclosed class, a trailing `\`),
    /// which, as in Go, matches nothing.
    pub fn new(pattern: &str) -> Option<Pattern> {
        let p: Vec<char> = pattern.chars().collect();
        let mut toks = Vec::new();
        let mut i = 0;
        while i < p.len() {
            match p[i] {
                '*' => {
                    // Runs of stars are one star.
                    if !matches!(toks.last(), Some(Tok::Star { .. })) {
                        toks.push(Tok::Star { slash: false });
                    }
                    i += 1;
                }
                '?' => {
                    toks.push(Tok::One { slash: false });
                    i += 1;
                }
                '[' => {
                    let (tok, len) = class(&p[i + 1..])?;
                    toks.push(tok);
                    i += 1 + len;
                }
                '\\' => {
                    toks.push(Tok::Lit(*p.get(i + 1)?));
                    i += 2;
                }
                c => {
                    toks.push(Tok::Lit(c));
                    i += 1;
                }
            }
        }
        Some(Pattern(toks))
    }

    /// Whether the whole of `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        run(&self.0, &name.chars().collect::<Vec<_>>())
    }
}

/// Whether `s` has any pattern character (otherwise it names one path).
pub fn has_meta(s: &str) -> bool {
    s.contains(['*', '?', '[', '\\'])
}

/// Whether `name` matches `pattern` (a malformed pattern matches nothing).
pub fn matches(pattern: &str, name: &str) -> bool {
    Pattern::new(pattern).is_some_and(|p| p.matches(name))
}

/// Parses a class after `[`: the token and how many characters it took (with `]`).
fn class(p: &[char]) -> Option<(Tok, usize)> {
    let mut i = 0;
    let negate = matches!(p.first(), Some('^'));
    if negate {
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let c = *p.get(i)?;
        if c == ']' && !first {
            i += 1;
            break;
        }
        first = false;
        let lo = if c == '\\' {
            i += 1;
            *p.get(i)?
        } else {
            c
        };
        i += 1;
        let hi = if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|c| *c != ']') {
            i += 1;
            let h = if p[i] == '\\' {
                i += 1;
                *p.get(i)?
            } else {
                p[i]
            };
            i += 1;
            h
        } else {
            lo
        };
        ranges.push((lo, hi));
    }
    Some((Tok::Class { negate, ranges, slash: false }, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_path_match() {
        assert!(matches("*.txt", "a.txt"));
        assert!(!matches("*.txt", "a.txtx"));
        assert!(matches("a?c", "abc"));
        assert!(!matches("a?c", "a/c"));
        assert!(matches("[a-c]x", "bx"));
        assert!(!matches("[^a-c]x", "bx"));
        assert!(matches("[^a-c]x", "dx"));
        assert!(!matches("[^a-c]x", "/x"));
        assert!(matches("\\*", "*"));
        assert!(!matches("\\*", "a"));
        assert!(matches("*", ""));
        assert!(!matches("*", "a/b"));
        assert!(matches("a*/b*", "abc/bcd"));
        assert!(!matches("[", "["));
        assert!(!matches("a\\", "a"));
        assert!(matches("busybox:*", "busybox:latest"));
        assert!(has_meta("a*") && !has_meta("plain/path"));
    }

    #[test]
    fn many_stars_do_not_backtrack() {
        // 2^40 ways to split for a backtracking matcher; a few thousand steps here.
        let pattern = "*a".repeat(40) + "b";
        let name = "a".repeat(200);
        assert!(!matches(&pattern, &name));
        assert!(matches(&("*a".repeat(40)), &name));
    }
}
