//! Splitting instruction arguments into words and `key=value` pairs, with Docker's quoting:
//! double and single quotes group, the escape character (default `\`) escapes the next
//! character, and inside single quotes nothing is special.

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
        assert_eq!(parse_pairs("PATH /usr/bin:/bin", '\\', "ENV").unwrap(), vec![("PATH".into(), "/usr/bin:/bin".into())]);
        assert_eq!(parse_pairs("MSG hello world", '\\', "ENV").unwrap(), vec![("MSG".into(), "hello world".into())]);
        assert!(parse_pairs("=x", '\\', "ENV").is_err());
        assert!(parse_pairs("", '\\', "LABEL").is_err());
    }
}
