//! The `*`/`?` patterns of `${V#pat}`, `${V%pat}` and `${V/pat/repl}`: `*` is any run
//! of characters, `?` any one; shortest or longest matches as the operator asks.

use berth_api::glob::Tok;

/// `\*`, `\?` and `\\` are literal; `\}` and `\/` were escapes for the `${…}` syntax
/// and mean `}` and `/`; any other escape is an error.
pub(crate) fn compile(p: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut chars = p.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(match c {
            '*' => Tok::Star { slash: true },
            '?' => Tok::One { slash: true },
            '\\' => match chars.next() {
                Some(n @ ('*' | '?' | '\\' | '}' | '/')) => Tok::Lit(n),
                Some(n) => return Err(format!("invalid escape '\\{n}'")),
                None => return Err("invalid escape '\\'".into()),
            },
            c => Tok::Lit(c),
        });
    }
    Ok(out)
}

fn matches(toks: &[Tok], s: &[char]) -> bool {
    berth_api::glob::run(toks, s)
}

pub(crate) fn trim_prefix(v: &str, toks: &[Tok], longest: bool) -> String {
    let v: Vec<char> = v.chars().collect();
    let mut lens: Vec<usize> = (0..=v.len()).collect();
    if longest {
        lens.reverse();
    }
    match lens.into_iter().find(|&l| matches(toks, &v[..l])) {
        Some(l) => v[l..].iter().collect(),
        None => v.iter().collect(),
    }
}

pub(crate) fn trim_suffix(v: &str, toks: &[Tok], longest: bool) -> String {
    let v: Vec<char> = v.chars().collect();
    let mut starts: Vec<usize> = (0..=v.len()).collect();
    if !longest {
        starts.reverse();
    }
    match starts.into_iter().find(|&s| matches(toks, &v[s..])) {
        Some(s) => v[..s].iter().collect(),
        None => v.iter().collect(),
    }
}

/// Replaces the first (or every) leftmost-longest match; as with Go's regexp, an
/// empty match right after a previous match does not count.
pub(crate) fn replace(v: &str, toks: &[Tok], repl: &str, all: bool) -> String {
    let v: Vec<char> = v.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let mut last_end = None;
    while i <= v.len() {
        let end = (i..=v.len()).rev().find(|&e| matches(toks, &v[i..e]));
        match end {
            Some(e) if !(e == i && last_end == Some(i)) => {
                out.push_str(repl);
                if !all {
                    out.extend(&v[e..]);
                    return out;
                }
                last_end = Some(e);
                if e > i {
                    i = e;
                    continue;
                }
            }
            _ => {}
        }
        if i < v.len() {
            out.push(v[i]);
        }
        i += 1;
    }
    out
}
