//! Percent-encoding, one copy for every place berth reads or writes it: query strings
//! (the API's and the registry's), URL paths, gRPC status messages and session metadata.
//! Decoding works on bytes, so no input can split a UTF-8 character or panic; what is not
//! valid UTF-8 after decoding is replaced, as `String::from_utf8_lossy` does.

/// Decodes `%XX` escapes; a `%` not followed by two hex digits stays as it is.
pub fn decode(s: &str) -> String {
    decode_bytes(s.as_bytes(), false)
}

/// Decodes a query component (`application/x-www-form-urlencoded`): `%XX`, and `+` is a
/// space.
pub fn decode_query(s: &str) -> String {
    decode_bytes(s.as_bytes(), true)
}

fn decode_bytes(b: &[u8], plus_is_space: bool) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|v| v as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Encodes every byte for which `keep` is false as `%XX` (upper-case hex).
pub fn encode(s: &str, keep: impl Fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if keep(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// RFC 3986's unreserved characters: what a query component keeps as it is.
pub fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.~".contains(&b)
}

/// Encodes a query component: everything but the unreserved characters.
pub fn encode_query(s: &str) -> String {
    encode(s, unreserved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_decode_and_broken_ones_stay() {
        assert_eq!(decode_query("a%20b+c%2Bd"), "a b c+d");
        assert_eq!(decode("a+b%2F"), "a+b/");
        assert_eq!(decode("%"), "%");
        assert_eq!(decode("%4"), "%4");
        assert_eq!(decode("%zz%41"), "%zzA");
        assert_eq!(decode("x%41"), "xA");
    }

    #[test]
    fn escapes_next_to_multibyte_characters_do_not_panic() {
        assert_eq!(decode("%a\u{e9}"), "%a\u{e9}");
        assert_eq!(decode("%\u{e9}"), "%\u{e9}");
        assert_eq!(decode("%C3%A9"), "\u{e9}");
        assert_eq!(decode("%FF"), "\u{fffd}");
    }

    #[test]
    fn encoding_round_trips() {
        let s = "name=a b/c?d&e%f\u{e9}";
        assert_eq!(encode_query(s), "name%3Da%20b%2Fc%3Fd%26e%25f%C3%A9");
        assert_eq!(decode_query(&encode_query(s)), s);
        assert_eq!(encode("a/b c", |b| unreserved(b) || b == b'/'), "a/b%20c");
    }
}
