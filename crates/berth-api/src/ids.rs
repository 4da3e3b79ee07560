//! Object identifiers: 64 hex digits, shown truncated to 12, matched by unique prefix.

use rand::RngExt;

/// A fresh random 256-bit identifier in hex, as Docker uses for containers and execs.
pub fn random_id() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill(&mut bytes[..]);
    hex::encode(bytes)
}

/// The 12-character form the CLI shows by default. A `sha256:` prefix is dropped.
pub fn short_id(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    &id[..id.len().min(12)]
}

/// True when `s` is a full 64-digit lowercase hex identifier.
pub fn is_full_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// True when `s` could be a prefix of an identifier (1–64 lowercase hex digits).
pub fn is_id_prefix(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The outcome of looking up a user-supplied reference among many identifiers.
#[derive(Debug, PartialEq, Eq)]
pub enum PrefixMatch<T> {
    None,
    One(T),
    Ambiguous,
}

/// Finds the single identifier that `prefix` starts. Docker answers an ambiguous prefix with
/// an error rather than guessing, and so does berth.
pub fn match_prefix<'a, T: Clone + 'a>(
    prefix: &str,
    candidates: impl IntoIterator<Item = (&'a str, T)>,
) -> PrefixMatch<T> {
    let mut found = PrefixMatch::None;
    for (id, value) in candidates {
        if id.starts_with(prefix) {
            if id.len() == prefix.len() {
                return PrefixMatch::One(value);
            }
            found = match found {
                PrefixMatch::None => PrefixMatch::One(value),
                _ => PrefixMatch::Ambiguous,
            };
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_hex_and_unique() {
        let a = random_id();
        assert!(is_full_id(&a));
        assert_ne!(a, random_id());
        assert_eq!(short_id(&a).len(), 12);
        assert_eq!(short_id("sha256:0123456789abcdef"), "0123456789ab");
    }

    #[test]
    fn prefixes_must_be_unique() {
        let ids = [("abc1", 1), ("abc2", 2), ("def", 3)];
        assert_eq!(match_prefix("abc1", ids.iter().map(|(a, b)| (*a, *b))), PrefixMatch::One(1));
        assert_eq!(match_prefix("abc", ids.iter().map(|(a, b)| (*a, *b))), PrefixMatch::Ambiguous);
        assert_eq!(match_prefix("x", ids.iter().map(|(a, b)| (*a, *b))), PrefixMatch::None);
    }
}
