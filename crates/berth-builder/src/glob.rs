//! Source patterns of COPY and ADD: Go's `filepath.Match`, one path component at a time.
//!
//! `*` is any run of characters but `/`, `?` one character but `/`, `[a-z]` / `[^a-z]` a
//! class, and `\` makes the next character literal. A pattern matches a whole name.

/// Whether `s` has any pattern character (otherwise it names one path).
pub fn has_meta(s: &str) -> bool {
    s.contains(['*', '?', '[', '\\'])
}

/// Whether `name` (one component) matches `pattern` (one component).
pub fn matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

fn go(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => (0..=n.len()).any(|i| n[..i].iter().all(|c| *c != '/') && go(&p[1..], &n[i..])),
        Some('?') => n.first().is_some_and(|c| *c != '/') && go(&p[1..], &n[1..]),
        Some('[') => match (class(&p[1..]), n.first()) {
            (Some((ok, len)), Some(c)) => ok(*c) && go(&p[1 + len..], &n[1..]),
            _ => false,
        },
        Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && go(&p[2..], &n[1..]),
        Some(c) => n.first() == Some(c) && go(&p[1..], &n[1..]),
    }
}

type ClassFn = Box<dyn Fn(char) -> bool>;

/// Parses a class after `[`: a predicate and how many characters it took (with `]`).
fn class(p: &[char]) -> Option<(ClassFn, usize)> {
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
    Some((Box::new(move |c: char| c != '/' && ranges.iter().any(|(a, b)| *a <= c && c <= *b) != negate), i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_filepath_match() {
        assert!(matches("*.txt", "a.txt"));
        assert!(!matches("*.txt", "a.txtx"));
        assert!(matches("a?c", "abc"));
        assert!(matches("[a-c]x", "bx"));
        assert!(!matches("[^a-c]x", "bx"));
        assert!(matches("[^a-c]x", "dx"));
        assert!(matches("\\*", "*"));
        assert!(!matches("\\*", "a"));
        assert!(matches("*", ""));
        assert!(!matches("[", "["));
        assert!(has_meta("a*") && !has_meta("plain/path"));
    }
}
