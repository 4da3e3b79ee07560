//! Variable substitution as Docker's builder does it ("environment replacement").
//!
//! # Which instructions expand, and what
//!
//! The builder substitutes from the stage's environment (ENV, plus the ARGs declared in
//! the stage with their build-arg or default values) into these arguments only:
//!
//! | instruction | expanded                                                            |
//! |-------------|---------------------------------------------------------------------|
//! | `FROM`      | the image and `--platform`, from the ARGs before the first FROM only |
//! | `ARG`       | each name and default ([`crate::words::parse_arg_raw`])              |
//! | `ENV`, `LABEL` | each key and value ([`crate::words::parse_pairs_raw`])            |
//! | `ADD`, `COPY` | sources and destination ([`crate::Instruction::arg_words`] then [`expand_words`]), `--chown`, `--chmod`, ADD's `--checksum`; heredoc bodies whose delimiter was unquoted ([`expand_heredoc`]). Not COPY's `--from`: the parser rejects a variable there, as Docker does |
//! | `RUN`       | only the `--mount` options                                          |
//! | `EXPOSE`    | each word with [`expand_split`] (one word may expand to several)    |
//! | `VOLUME`    | each path ([`expand_words`])                                       |
//! | `WORKDIR`, `USER`, `STOPSIGNAL` | the whole argument ([`expand`])                 |
//! | `ONBUILD`   | nothing now; the trigger expands when it runs in the child build    |
//!
//! `RUN`'s command, `CMD`, `ENTRYPOINT`, `SHELL`, `HEALTHCHECK` and `MAINTAINER` are not
//! expanded: their shell does it at run time, with the environment the builder passes.
//!
//! # Syntax
//!
//! `$VAR` and `${VAR}`; `${VAR:-word}` (word if unset or empty), `${VAR-word}` (if
//! unset), `${VAR:+word}` / `${VAR+word}` (word if set and non-empty / if set, else
//! empty), `${VAR:?msg}` / `${VAR?msg}` (error if unset-or-empty / unset);
//! `${VAR#pat}` `${VAR##pat}` `${VAR%pat}` `${VAR%%pat}` (strip shortest/longest
//! prefix/suffix matching a `*`/`?` pattern) and `${VAR/pat/repl}` `${VAR//pat/repl}`.
//! An unset variable expands to nothing. The word after an operator is itself expanded.
//!
//! Quoting is the shell's: inside `'…'` nothing is special; inside `"…"` only `$` and the
//! escape character (before `"`, `$` or itself) are; elsewhere the escape character
//! makes the next character literal (`\$HOME` stays `$HOME`). The quotes and escapes are
//! removed from the result: expansion is also the builder's quote removal, so it takes
//! words as Docker's parser left them ([`crate::words`]'s `*_raw` functions).
//!
//! # Nesting
//!
//! The word after an operator may itself hold `${…}`, so the lexer recurses once per
//! level. A Dockerfile is untrusted input read by the root daemon, and running out of
//! stack aborts the whole process, so nesting deeper than [`MAX_NESTING`] is a syntax
//! error. (BuildKit's lexer has no limit, but Go's stacks grow to a gigabyte; no
//! Dockerfile written by hand comes near the cap.)

use std::collections::BTreeSet;

use crate::{DockerfileError, Result};

mod pattern;

/// The instructions whose arguments the builder expands (see the module table).
pub const EXPANDED: &[&str] =
    &["ADD", "ARG", "COPY", "ENV", "EXPOSE", "FROM", "LABEL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"];

/// How deeply `${…}` may nest inside the words of other `${…}` (see the module doc).
pub const MAX_NESTING: usize = 64;

/// Looks a variable up: `None` is unset, which differs from set-but-empty for `${V-w}`.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Expands one word: substitution plus quote and escape removal, spaces kept.
pub fn expand(s: &str, env: Env, escape: char) -> Result<String> {
    Expander::new(env, escape).word(s)
}

/// [`expand`], also returning every variable name the word referred to, set or not: a
/// step's cache key must change when any of those changes (or becomes set).
pub fn expand_with_vars(s: &str, env: Env, escape: char) -> Result<(String, BTreeSet<String>)> {
    let mut e = Expander::new(env, escape);
    let out = e.word(s)?;
    Ok((out, e.used))
}

/// Expands each word on its own (exec-form arguments, or [`crate::Instruction::arg_words`]).
pub fn expand_words(words: &[String], env: Env, escape: char) -> Result<Vec<String>> {
    let mut e = Expander::new(env, escape);
    words.iter().map(|w| e.word(w)).collect()
}

/// Expands, then splits into words on whitespace that did not come from quotes (what
/// EXPOSE does: `EXPOSE $PORTS` with `PORTS="80 443"` is two ports).
pub fn expand_split(s: &str, env: Env, escape: char) -> Result<Vec<String>> {
    Expander::new(env, escape).words(s)
}

/// Expands a heredoc body (`COPY <<EOF`, delimiter unquoted): like [`expand`] except that
/// quotes are ordinary characters, and the escape character is always `\`.
pub fn expand_heredoc(body: &str, env: Env) -> Result<String> {
    Expander::new(env, '\\').heredoc(body)
}

/// Expands several words against one environment and remembers the names they used;
/// use one per build step and read [`Expander::used`] for its cache key.
pub struct Expander<'a> {
    env: Env<'a>,
    escape: char,
    used: BTreeSet<String>,
}

impl<'a> Expander<'a> {
    pub fn new(env: Env<'a>, escape: char) -> Self {
        Expander { env, escape, used: BTreeSet::new() }
    }

    pub fn word(&mut self, s: &str) -> Result<String> {
        self.run(s, self.escape, Options::default()).map(|(w, _)| w)
    }

    pub fn words(&mut self, s: &str) -> Result<Vec<String>> {
        self.run(s, self.escape, Options::default()).map(|(_, ws)| ws)
    }

    /// See [`expand_heredoc`].
    pub fn heredoc(&mut self, body: &str) -> Result<String> {
        self.run(body, '\\', Options { skip_quotes: true, ..Options::default() }).map(|(w, _)| w)
    }

    /// Every variable name referred to so far, set or not.
    pub fn used(&self) -> &BTreeSet<String> {
        &self.used
    }

    fn run(&mut self, s: &str, escape: char, opts: Options) -> Result<(String, Vec<String>)> {
        let mut lex = Lex::new(s, escape, opts, self.env, &mut self.used);
        lex.stop_on(None, opts.raw_escapes)
            .map_err(|m| DockerfileError::Syntax(format!("failed to process {s:?}: {m}")))
    }
}

/// The lexer's modes. Heredoc detection needs to keep quotes, keep escapes, and leave
/// unset variables as written instead of expanding them to nothing; heredoc bodies
/// treat quotes as ordinary characters.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Options {
    pub raw_quotes: bool,
    pub raw_escapes: bool,
    pub skip_unset: bool,
    pub skip_quotes: bool,
}

/// Splits `s` into words with no variables set, in the given modes.
pub(crate) fn lex_words(s: &str, escape: char, opts: Options) -> std::result::Result<Vec<String>, String> {
    let mut used = BTreeSet::new();
    Lex::new(s, escape, opts, &|_| None, &mut used).stop_on(None, opts.raw_escapes).map(|(_, w)| w)
}

struct Lex<'s> {
    src: Vec<char>,
    pos: usize,
    escape: char,
    opts: Options,
    /// Whether escapes are kept right now; `${V#pat}` patterns keep them, other words not.
    raw_escapes: bool,
    env: Env<'s>,
    used: &'s mut BTreeSet<String>,
    /// How many [`Lex::stop_on`] calls are under way: the recursion depth.
    depth: usize,
}

/// Accumulates whitespace-separated words; characters from quotes or escapes never split.
#[derive(Default)]
struct Words {
    buf: String,
    out: Vec<String>,
}

impl Words {
    fn split_char(&mut self, c: char) {
        if !c.is_whitespace() {
            self.buf.push(c);
        } else if !self.buf.is_empty() {
            self.out.push(std::mem::take(&mut self.buf));
        }
    }
    fn finish(mut self) -> Vec<String> {
        if !self.buf.is_empty() {
            self.out.push(self.buf);
        }
        self.out
    }
}

type LexResult<T> = std::result::Result<T, String>;

impl<'s> Lex<'s> {
    fn new(s: &str, escape: char, opts: Options, env: Env<'s>, used: &'s mut BTreeSet<String>) -> Self {
        Lex { src: s.chars().collect(), pos: 0, escape, opts, raw_escapes: opts.raw_escapes, env, used, depth: 0 }
    }

    fn peek(&self) -> Option<char> {
        self.src.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.pos += c.is_some() as usize;
        c
    }

    /// Reads up to `stop` (consumed) or the end, returning the text and its words.
    /// Every recursion of the lexer passes through here, so this is where depth is capped.
    fn stop_on(&mut self, stop: Option<char>, raw_escapes: bool) -> LexResult<(String, Vec<String>)> {
        // The top-level word is depth 1; each `${…}` operand one more.
        if self.depth > MAX_NESTING {
            return Err(format!("variable substitutions nested more than {MAX_NESTING} levels deep"));
        }
        self.depth += 1;
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let r = self.stop_on_inner(stop);
        self.raw_escapes = saved;
        self.depth -= 1;
        r
    }

    fn stop_on_inner(&mut self, stop: Option<char>) -> LexResult<(String, Vec<String>)> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.next();
                return Ok((result, words.finish()));
            }
            let piece = match c {
                '$' => {
                    let v = self.dollar()?;
                    v.chars().for_each(|c| words.split_char(c));
                    result.push_str(&v);
                    continue;
                }
                '<' => self.heredoc_marker(),
                '\'' if !self.opts.skip_quotes => self.single_quote()?,
                '"' if !self.opts.skip_quotes => self.double_quote()?,
                _ => {
                    self.next();
                    if c != self.escape {
                        words.split_char(c);
                        result.push(c);
                        continue;
                    }
                    // The escaped character is literal and never splits words; a
                    // trailing escape is dropped (kept in raw mode).
                    let kept = if self.raw_escapes { c.to_string() } else { String::new() };
                    match self.next() {
                        Some(n) => format!("{kept}{n}"),
                        None => {
                            words.buf.push_str(&kept);
                            result.push_str(&kept);
                            break;
                        }
                    }
                }
            };
            words.buf.push_str(&piece);
            result.push_str(&piece);
        }
        match stop {
            Some(s) => Err(format!("unexpected end of statement while looking for matching {s}")),
            None => Ok((result, words.finish())),
        }
    }

    fn single_quote(&mut self) -> LexResult<String> {
        self.next();
        let mut r = String::new();
        if self.opts.raw_quotes {
            r.push('\'');
        }
        loop {
            match self.next() {
                None => return Err("unexpected end of statement while looking for matching single-quote".into()),
                Some('\'') => {
                    if self.opts.raw_quotes {
                        r.push('\'');
                    }
                    return Ok(r);
                }
                Some(c) => r.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> LexResult<String> {
        self.next();
        let mut r = String::new();
        if self.opts.raw_quotes {
            r.push('"');
        }
        loop {
            match self.peek() {
                None => return Err("unexpected end of statement while looking for matching double-quote".into()),
                Some('"') => {
                    self.next();
                    if self.opts.raw_quotes {
                        r.push('"');
                    }
                    return Ok(r);
                }
                Some('$') => r.push_str(&self.dollar()?),
                Some(c) => {
                    self.next();
                    // Only `"`, `$` and the escape itself can be escaped; otherwise the
                    // escape character is literal, as in sh.
                    if c == self.escape
                        && let Some(n) = self.peek().filter(|&n| n == '"' || n == '$' || n == self.escape)
                    {
                        self.next();
                        if self.raw_escapes {
                            r.push(c);
                        }
                        r.push(n);
                    } else {
                        r.push(c);
                    }
                }
            }
        }
    }

    /// `<<` and the blanks after it stay one word, so `<< EOF` reads as a heredoc marker.
    fn heredoc_marker(&mut self) -> String {
        self.next();
        if self.peek() != Some('<') {
            return "<".into();
        }
        self.next();
        let mut s = String::from("<<");
        while let Some(c) = self.peek().filter(|c| matches!(c, ' ' | '\t' | '\r')) {
            s.push(c);
            self.next();
        }
        s
    }

    fn lookup(&mut self, name: &str) -> Option<String> {
        self.used.insert(name.to_string());
        (self.env)(name)
    }

    /// A variable name: letters, digits and `_`; or all digits (`$1`); or one of the
    /// shell's special parameters (`$@`, `$#`…), which Docker never sets.
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if name.is_empty() && c.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    name.push(d);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && "@*#?-$!0".contains(c) {
                self.next();
                return c.to_string();
            }
            if !c.is_alphanumeric() && c != '_' {
                break;
            }
            name.push(c);
            self.next();
        }
        name
    }

    fn dollar(&mut self) -> LexResult<String> {
        const MISSING: &str = "syntax error: missing '}'";
        self.next();
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.opts.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.next();
        match self.peek() {
            None => return Err(MISSING.into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            _ => {}
        }
        let name = self.name();
        let c = self.next().ok_or(MISSING)?;
        match c {
            '}' => Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.opts.skip_unset => format!("${{{name}}}"),
                None => String::new(),
            }),
            ':' | '+' | '-' | '?' | '#' | '%' => {
                let colon = c == ':';
                let op = if colon { self.next().ok_or(MISSING)? } else { c };
                let chs = if colon { format!(":{op}") } else { op.to_string() };
                let pattern_op = op == '#' || op == '%';
                if colon && pattern_op {
                    return Err(format!("unsupported modifier ({chs}) in substitution"));
                }
                let word = self.operand('}', pattern_op, MISSING)?;
                let value = self.lookup(&name);
                if value.is_none() && self.opts.skip_unset {
                    return Ok(format!("${{{name}{chs}{word}}}"));
                }
                let empty = value.is_none() || (colon && value.as_deref() == Some(""));
                match op {
                    '-' if empty => Ok(word),
                    '-' => Ok(value.unwrap_or_default()),
                    '+' if empty => Ok(String::new()),
                    '+' => Ok(word),
                    '?' if empty => {
                        let default =
                            if value.is_none() { "is not allowed to be unset" } else { "is not allowed to be empty" };
                        Err(format!("{name}: {}", if word.is_empty() { default } else { &word }))
                    }
                    '?' => Ok(value.unwrap_or_default()),
                    '#' | '%' => {
                        let (greedy, pat) = match word.strip_prefix(op) {
                            Some(p) => (true, p),
                            None => (false, word.as_str()),
                        };
                        let toks = pattern::compile(pat)
                            .map_err(|e| format!("invalid pattern ({pat}) in substitution: {e}"))?;
                        let value = value.unwrap_or_default();
                        Ok(if op == '#' {
                            pattern::trim_prefix(&value, &toks, greedy)
                        } else {
                            pattern::trim_suffix(&value, &toks, greedy)
                        })
                    }
                    _ => Err(format!("unsupported modifier ({chs}) in substitution")),
                }
            }
            '/' => {
                let all = self.peek() == Some('/');
                if all {
                    self.next();
                }
                let pat = self.operand('/', true, "syntax error: missing '/' in ${}")?;
                let repl = self.operand('}', true, MISSING)?;
                let value = self.lookup(&name);
                if value.is_none() && self.opts.skip_unset {
                    return Ok(format!("${{{name}/{pat}/{repl}}}"));
                }
                let toks =
                    pattern::compile(&pat).map_err(|e| format!("invalid pattern ({pat}) in substitution: {e}"))?;
                Ok(pattern::replace(&value.unwrap_or_default(), &toks, &repl, all))
            }
            other => Err(format!("unsupported modifier ({other}) in substitution")),
        }
    }

    /// The word after a `${name<op>` up to `stop`; running out of text is `at_eof`.
    fn operand(&mut self, stop: char, raw_escapes: bool, at_eof: &str) -> LexResult<String> {
        match self.stop_on(Some(stop), raw_escapes) {
            Ok((w, _)) => Ok(w),
            Err(_) if self.peek().is_none() => Err(at_eof.into()),
            Err(e) => Err(e),
        }
    }
}
