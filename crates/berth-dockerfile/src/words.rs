//! Splitting instruction arguments into words and `key=value` pairs, with Docker's quoting:
//! double and single quotes group, the escape character (default `\`) escapes the next
//! character, and inside single quotes nothing is special.
//!
//! Two families, for two callers:
//!
//! - [`split_words`] and [`parse_pairs`] resolve quotes and escapes immediately. That is
//!   right where no variables are substituted (`docker commit -c`, [`crate::changes`]).
//! - The `*_raw` functions only find the boundaries and leave quotes and escapes in each
//!   word, the way Docker's parser hands words to the builder: the builder then runs
//!   [`crate::expand::expand`] on each word, which substitutes variables *and* removes the
//!   quotes, so `ENV A='$B'` stays literal while `ENV A="$B"` expands.

use crate::{DockerfileError, Result};

/// Splits on unquoted whitespace, removing quotes and escapes.
pub fn split_words(s: &str, escape: char) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        None => return Err(DockerfileError::Syntax(format!("unterminated double quote in: {s}"))),
                        Some('"') => break,
                        Some(e) if e == escape => match chars.next() {
                            Some(n) => cur.push(n),
                            None => return Err(DockerfileError::Syntax(format!("unterminated double quote in: {s}"))),
                        },
                        Some(x) => cur.push(x),
                    }
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        None => return Err(DockerfileError::Syntax(format!("unterminated single quote in: {s}"))),
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                    }
                }
            }
            e if e == escape => {
                in_word = true;
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// Parses `ENV`/`LABEL` arguments: `k=v k2="v 2"`, or the legacy single pair `k v w`
/// (everything after the first word is the value).
pub fn parse_pairs(s: &str, escape: char, keyword: &str) -> Result<Vec<(String, String)>> {
    let trimmed = s.trim();
    if trimmed.is_empty() {
        return Err(DockerfileError::Syntax(format!("{keyword} requires at least one argument")));
    }
    let first_ws = trimmed.find(char::is_whitespace);
    let first_eq = trimmed.find('=');
    let legacy = match (first_eq, first_ws) {
        (None, _) => true,
        (Some(eq), Some(ws)) => ws < eq,
        (Some(_), None) => false,
    };
    if legacy {
        let (k, v) = match first_ws {
            Some(i) => (&trimmed[..i], trimmed[i..].trim_start()),
            None => return Err(DockerfileError::Syntax(format!("{keyword} must have two arguments"))),
        };
        // The legacy form keeps the value as written, only unquoting whole-word quotes.
        let v = split_words(v, escape)?.join(" ");
        return Ok(vec![(k.to_string(), v)]);
    }
    let mut out = Vec::new();
    for w in split_words(trimmed, escape)? {
        let (k, v) = w
            .split_once('=')
            .ok_or_else(|| DockerfileError::Syntax(format!("{keyword} names can not be blank: {w:?} has no '='")))?;
        if k.is_empty() {
            return Err(DockerfileError::Syntax(format!("{keyword} names can not be blank")));
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// Splits on unquoted whitespace, keeping quotes and escapes in the words. An escape
/// at the very end is dropped; an unterminated quote runs to the end of the text.
pub fn split_raw(s: &str, escape: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    // A quoted empty word (`""`) is still a word.
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            None if c.is_whitespace() => {
                if in_word || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                in_word = false;
                continue;
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                in_word = true;
            }
            Some(q) if c == q => quote = None,
            // Inside single quotes the escape character is an ordinary character.
            Some('\'') => {}
            _ if c == escape => match chars.next() {
                Some(n) => {
                    cur.push(c);
                    cur.push(n);
                    continue;
                }
                None => continue,
            },
            _ => {}
        }
        cur.push(c);
    }
    if in_word || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// `ENV`/`LABEL` arguments as raw (unexpanded, still quoted) `(key, value)` pairs: the
/// `k=v k2="v 2"` form, or the legacy `k rest of line` form (one pair, the value being
/// everything after the first run of whitespace), chosen by whether the first word has
/// an `=`. Errors are Docker's.
pub fn parse_pairs_raw(s: &str, escape: char, keyword: &str) -> Result<Vec<(String, String)>> {
    let words = split_raw(s, escape);
    let Some(first) = words.first() else {
        return Err(DockerfileError::Syntax(format!("{keyword} requires at least one argument")));
    };
    if !first.contains('=') {
        let trimmed = s.trim();
        return match trimmed.split_once(char::is_whitespace) {
            Some((k, v)) => Ok(vec![(k.to_string(), v.trim_start().to_string())]),
            None => Err(DockerfileError::Syntax(format!("{keyword} must have two arguments"))),
        };
    }
    words
        .iter()
        .map(|w| match w.split_once('=') {
            None => Err(DockerfileError::Syntax(format!(
                "Syntax error - can't find = in {w:?}. Must be of the form: name=value"
            ))),
            Some(("", _)) => Err(DockerfileError::Syntax(format!("{keyword} names can not be blank"))),
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
        })
        .collect()
}

/// `ARG` arguments as raw `(name, default)` pairs: `ARG a b=1 c=` declares `a` without
/// a default, `b` defaulting to `1` and `c` defaulting to the empty string.
pub fn parse_arg_raw(s: &str, escape: char) -> Result<Vec<(String, Option<String>)>> {
    let words = split_raw(s, escape);
    if words.is_empty() {
        return Err(DockerfileError::Syntax("ARG requires at least one argument".into()));
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some(("", _)) => Err(DockerfileError::Syntax("ARG names can not be blank".into())),
            Some((k, v)) => Ok((k.to_string(), Some(v.to_string()))),
            None => Ok((w, None)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        assert_eq!(split_words(r#"a "b c" 'd e' f\ g"#, '\\').unwrap(), vec!["a", "b c", "d e", "f g"]);
        assert!(split_words(r#"a "b"#, '\\').is_err());
        assert_eq!(split_words(r#""""#, '\\').unwrap(), vec![""]);
    }

    #[test]
    fn pairs() {
        assert_eq!(
            parse_pairs(r#"A=1 B="two words" C=x\ y"#, '\\', "ENV").unwrap(),
            vec![("A".into(), "1".into()), ("B".into(), "two words".into()), ("C".into(), "x y".into())]
        );
        assert_eq!(
            parse_pairs("PATH /usr/bin:/bin", '\\', "ENV").unwrap(),
            vec![("PATH".into(), "/usr/bin:/bin".into())]
        );
        assert_eq!(parse_pairs("MSG hello world", '\\', "ENV").unwrap(), vec![("MSG".into(), "hello world".into())]);
        assert!(parse_pairs("=x", '\\', "ENV").is_err());
        assert!(parse_pairs("", '\\', "LABEL").is_err());
    }

    #[test]
    fn raw_words_keep_quotes_and_escapes() {
        assert_eq!(split_raw(r#"a "b c" 'd $e' f\ g"#, '\\'), vec!["a", r#""b c""#, "'d $e'", r"f\ g"]);
        assert_eq!(split_raw(r#"'a\' b"#, '\\'), vec![r"'a\'", "b"]);
        assert_eq!(split_raw("x `\"y`\" z", '`'), vec!["x", "`\"y`\"", "z"]);
        assert_eq!(split_raw(r#""" x"#, '\\'), vec![r#""""#, "x"]);
    }

    #[test]
    fn raw_pairs_and_args() {
        assert_eq!(
            parse_pairs_raw(r#"A="$B c" D=e"#, '\\', "ENV").unwrap(),
            vec![("A".into(), r#""$B c""#.into()), ("D".into(), "e".into())]
        );
        assert_eq!(
            parse_pairs_raw("PATH  /a:$PATH  x", '\\', "ENV").unwrap(),
            vec![("PATH".into(), "/a:$PATH  x".into())]
        );
        let err = |s: &str| parse_pairs_raw(s, '\\', "ENV").unwrap_err().to_string();
        assert_eq!(err("A"), "ENV must have two arguments");
        assert_eq!(err(""), "ENV requires at least one argument");
        assert_eq!(err("A=1 B"), r#"Syntax error - can't find = in "B". Must be of the form: name=value"#);
        assert_eq!(err("A=1 =2"), "ENV names can not be blank");
        assert_eq!(
            parse_arg_raw("a b=1 c=", '\\').unwrap(),
            vec![("a".into(), None), ("b".into(), Some("1".into())), ("c".into(), Some(String::new()))]
        );
        assert!(parse_arg_raw("=x", '\\').is_err());
    }
}
