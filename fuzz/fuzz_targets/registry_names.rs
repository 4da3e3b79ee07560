//! The registry's parsers of client-controlled strings: repository names
//! (`names::validate_name`), tags, digests and manifest references, upload ids, token
//! scopes (`auth::Scope::parse`), `Authorization: Basic` values, bearer tokens
//! (`TokenIssuer::verify`) and pushed manifests (`manifest::parse`).
//!
//! Input: one selector byte, then the string (or manifest bytes).
//! Checks: nothing panics, plus the promises the storage layer relies on:
//! - a valid name has only `[a-z0-9._-]` components, none empty, `.`/`..`, or starting
//!   with `_` or `.` (so no path escapes the root or hits a reserved `_` directory), and at
//!   most 255 bytes;
//! - a valid tag is 1-128 word characters and dots/dashes, never with `/` or `:`;
//! - digests and scopes print back to what was parsed;
//! - a token the registry issued verifies to the scopes it was issued for;
//! - every digest a valid manifest needs (`Parsed::blobs`, `manifests`, `subject`) is also
//!   one garbage collection sees (`manifest::references`, `subject_of`): otherwise GC
//!   could delete a blob a stored manifest needs.
#![no_main]

use berth_registry::TokenConfig;
use berth_registry::auth::Scope;
use berth_registry::auth::htpasswd::parse_basic;
use berth_registry::auth::token::TokenIssuer;
use berth_registry::manifest;
use berth_registry::names::{Digest, Reference, valid_upload_id, validate_name, validate_tag};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn issuer() -> &'static TokenIssuer {
    static I: OnceLock<TokenIssuer> = OnceLock::new();
    I.get_or_init(|| {
        let mut cfg = TokenConfig::new("registry.fuzz");
        cfg.key = Some(b"fuzz-key".to_vec());
        TokenIssuer::new(&cfg, false)
    })
}

fn check_name(s: &str) {
    if validate_name(s).is_ok() {
        assert!(!s.is_empty() && s.len() <= 255, "{s:?}");
        for c in s.split('/') {
            assert!(!c.is_empty() && c != "." && c != "..", "{s:?}: component {c:?}");
            assert!(!c.starts_with('_') && !c.starts_with('.'), "{s:?}: component {c:?}");
            assert!(c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)), "{s:?}");
        }
    }
}

fn check_tag(s: &str) {
    if validate_tag(s).is_ok() {
        assert!(!s.is_empty() && s.len() <= 128, "{s:?}");
        assert!(!s.contains('/') && !s.contains(':') && !s.starts_with('.') && !s.starts_with('-'), "{s:?}");
    }
}

fn check_reference(s: &str) {
    if let Ok(d) = Digest::parse(s) {
        assert_eq!(d.to_string(), s);
    }
    match Reference::parse(s) {
        Ok(Reference::Tag(t)) => {
            assert_eq!(t, s);
            check_tag(&t);
        }
        Ok(Reference::Digest(d)) => assert_eq!(d.to_string(), s),
        Err(_) => {}
    }
    let _ = valid_upload_id(s);
}

fn check_scope(s: &str) {
    if let Some(scope) = Scope::parse(s) {
        let printed = scope.to_string();
        let again = Scope::parse(&printed).unwrap_or_else(|| panic!("{s:?} parsed but {printed:?} does not"));
        assert_eq!(again, scope);
    }
}

fn check_tokens(s: &str) {
    let i = issuer();
    let _ = i.verify(s);
    // Issue a token for the scopes in the input (one per line) and verify it.
    let scopes: Vec<Scope> = s.lines().filter_map(Scope::parse).collect();
    let subject = s.lines().next().unwrap_or("");
    let issued = i.issue(subject, &scopes);
    assert_eq!(i.verify(&issued.token), Ok(scopes), "an issued token does not verify to its scopes");
    let _ = parse_basic(s);
}

fn check_manifest(data: &[u8]) {
    let (content_type, bytes) = match data.iter().position(|&b| b == b'\n') {
        Some(i) if i < 100 => (std::str::from_utf8(&data[..i]).ok(), &data[i + 1..]),
        _ => (None, data),
    };
    let _ = manifest::media_type_of(bytes);
    let refs = manifest::references(bytes);
    let subject = manifest::subject_of(bytes);
    if let Ok(p) = manifest::parse(content_type, bytes) {
        for d in p.blobs.iter().chain(&p.manifests) {
            assert!(refs.contains(d), "manifest needs {d} but GC does not see it as referenced");
        }
        assert_eq!(p.subject, subject, "parse and GC disagree about the subject");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    if which % 6 == 5 {
        check_manifest(rest);
        return;
    }
    let Ok(s) = std::str::from_utf8(rest) else { return };
    match which % 6 {
        0 => check_name(s),
        1 => check_tag(s),
        2 => check_reference(s),
        3 => check_scope(s),
        _ => check_tokens(s),
    }
});
