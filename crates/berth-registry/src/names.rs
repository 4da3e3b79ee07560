//! The registry's vocabulary: repository names, tags, digests and manifest references.
//!
//! Every identifier that reaches the storage layer has been through one of these parsers, so
//! none can escape the root or collide with the storage's own `_`-prefixed directories.
//!
//! - **Repository name** (Docker's grammar): path components separated by `/`, each matching
//!   `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`, at most 255 characters in all. No component
//!   starts with `_` or `.`, so none is `..` or one of the storage's reserved names.
//! - **Tag**: `[\w][\w.-]{0,127}`.
//! - **Digest**: `sha256:<64 lowercase hex>` or `sha512:<128 lowercase hex>`. Other algorithms
//!   are valid by the grammar but unsupported here; both cases are `DIGEST_INVALID`.
//! - **Reference** (the last segment of a manifest URL): a digest if it contains `:`, else a tag.

use crate::error::{ErrorCode, RegistryError, Result};
use sha2::Digest as _;

pub const MAX_NAME_LEN: usize = 255;

/// Checks a repository name against Docker's grammar (`NAME_INVALID` if it fails).
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty() && name.len() <= MAX_NAME_LEN && name.split('/').all(valid_component);
    if ok { Ok(()) } else { Err(RegistryError::with_detail(ErrorCode::NameInvalid, "invalid repository name", name)) }
}

fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// Checks a tag (`TAG_INVALID` if it fails).
pub fn validate_tag(tag: &str) -> Result<()> {
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    let b = tag.as_bytes();
    let ok = !b.is_empty() && b.len() <= 128 && word(b[0]) && b[1..].iter().all(|&x| word(x) || x == b'.' || x == b'-');
    if ok { Ok(()) } else { Err(RegistryError::with_detail(ErrorCode::TagInvalid, "invalid tag", tag)) }
}

/// A hash algorithm the registry can verify content with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sha256" => Some(Algorithm::Sha256),
            "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }
}

/// A validated content digest. Its string form is `algorithm:hex`; the hex is lowercase.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    pub algorithm: Algorithm,
    pub hex: String,
}

impl Digest {
    /// Parses `algorithm:hex` (`DIGEST_INVALID` if malformed or of an unsupported algorithm).
    pub fn parse(s: &str) -> Result<Digest> {
        let invalid = || RegistryError::with_detail(ErrorCode::DigestInvalid, "invalid digest", s);
        let (alg, hex) = s.split_once(':').ok_or_else(invalid)?;
        let algorithm = Algorithm::parse(alg).ok_or_else(invalid)?;
        let ok =
            hex.len() == algorithm.hex_len() && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !ok {
            return Err(invalid());
        }
        Ok(Digest { algorithm, hex: hex.to_string() })
    }

    /// The digest of `bytes` under `algorithm`.
    pub fn of(algorithm: Algorithm, bytes: &[u8]) -> Digest {
        let mut h = Hasher::new(algorithm);
        h.update(bytes);
        h.finish()
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.algorithm.as_str(), self.hex)
    }
}

/// An incremental hash of either supported algorithm.
#[derive(Clone)]
pub enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub fn new(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    pub fn finish(self) -> Digest {
        match self {
            Hasher::Sha256(h) => Digest { algorithm: Algorithm::Sha256, hex: hex::encode(h.finalize()) },
            Hasher::Sha512(h) => Digest { algorithm: Algorithm::Sha512, hex: hex::encode(h.finalize()) },
        }
    }
}

/// What a manifest URL's last segment names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    Digest(Digest),
}

impl Reference {
    pub fn parse(s: &str) -> Result<Reference> {
        if s.contains(':') {
            Digest::parse(s).map(Reference::Digest)
        } else {
            validate_tag(s)?;
            Ok(Reference::Tag(s.to_string()))
        }
    }
}

/// Checks an upload session id: the registry only ever hands out lowercase UUIDs.
pub fn valid_upload_id(id: &str) -> bool {
    id.len() == 36 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dockers_grammar() {
        for ok in ["a", "library/busybox", "team/app", "a.b_c__d---e/f", "0/1/2", "a-b"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "A", "a//b", "/a", "a/", "_a", "a_", "a..b", "a___b", "a/../b", ".", "a/.hidden", "a:b"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        assert!(validate_name(&"a".repeat(256)).is_err());
    }

    #[test]
    fn tags_and_digests() {
        assert!(validate_tag("v1.0-rc_1").is_ok());
        assert!(validate_tag("_x").is_ok());
        assert!(validate_tag(".x").is_err());
        assert!(validate_tag(&"a".repeat(129)).is_err());
        let d = Digest::of(Algorithm::Sha256, b"");
        assert_eq!(d.to_string(), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(Digest::parse(&d.to_string()).unwrap(), d);
        assert!(Digest::parse("sha256:E3B0").is_err());
        assert!(Digest::parse("md5:abcd").is_err());
        assert!(matches!(Reference::parse("latest").unwrap(), Reference::Tag(_)));
        assert!(matches!(Reference::parse(&d.to_string()).unwrap(), Reference::Digest(_)));
    }
}
