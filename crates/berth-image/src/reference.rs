//! Image references (`busybox`, `localhost:5000/team/app:1.0`, `alpine@sha256:…`) parsed
//! and normalized the way Docker does it: a name without a registry is on `docker.io`, and
//! a one-part name there is under `library/`.

use std::fmt;

use crate::ImageError;

pub const DEFAULT_DOMAIN: &str = "docker.io";
pub const DEFAULT_TAG: &str = "latest";

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    pub domain: String,
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

fn invalid(s: &str) -> ImageError {
    ImageError::InvalidReference(format!("invalid reference format: {s:?}"))
}

fn valid_component(c: &str) -> bool {
    // [a-z0-9]+ ((\.|_|__|-+)[a-z0-9]+)*
    let b = c.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let ch = b[i];
        if ch.is_ascii_lowercase() || ch.is_ascii_digit() {
            i += 1;
            continue;
        }
        // A separator run.
        let start = i;
        while i < b.len() && matches!(b[i], b'.' | b'_' | b'-') {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok || i == start {
            return false;
        }
    }
    true
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) if !h.contains(']') || h.ends_with(']') => (h, Some(p)),
        _ => (d, None),
    };
    if let Some(p) = port
        && (p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()))
    {
        return false;
    }
    if host.starts_with('[') && host.ends_with(']') {
        return true; // IPv6 literal
    }
    !host.is_empty()
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

impl Reference {
    /// Parses and normalizes a reference. A reference with neither tag nor digest gets no
    /// tag here; use [`Reference::with_default_tag`] where Docker assumes `latest`.
    pub fn parse(s: &str) -> Result<Reference, ImageError> {
        if s.is_empty() || s.len() > 512 {
            return Err(invalid(s));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                let hex = d.strip_prefix("sha256:").ok_or_else(|| invalid(s))?;
                if !berth_api::ids::is_full_id(hex) {
                    return Err(invalid(s));
                }
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        // A tag follows the last ':' that comes after the last '/'.
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let t = &rest[last_slash + i + 1..];
                if !valid_tag(t) {
                    return Err(invalid(s));
                }
                (&rest[..last_slash + i], Some(t.to_string()))
            }
            None => (rest, None),
        };
        if name.is_empty() || name.len() > 255 {
            return Err(invalid(s));
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains('.')
                    || first.contains(':')
                    || first == "localhost"
                    || first.bytes().any(|c| c.is_ascii_uppercase()) =>
            {
                (first.to_string(), remainder.to_string())
            }
            _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
        };
        let domain = if domain == "index.docker.io" { DEFAULT_DOMAIN.to_string() } else { domain };
        if !valid_domain(&domain) {
            return Err(invalid(s));
        }
        if path.bytes().any(|c| c.is_ascii_uppercase()) {
            return Err(ImageError::InvalidReference(format!(
                "invalid reference format: repository name ({path}) must be lowercase"
            )));
        }
        if !path.split('/').all(valid_component) {
            return Err(invalid(s));
        }
        let path = if domain == DEFAULT_DOMAIN && !path.contains('/') { format!("library/{path}") } else { path };
        // Docker's limit is on the normalized name (`docker.io/library/…`).
        if domain.len() + 1 + path.len() > 255 {
            return Err(ImageError::InvalidReference(
                "invalid reference format: repository name must not be more than 255 characters".into(),
            ));
        }
        Ok(Reference { domain, path, tag, digest })
    }

    /// The reference with `latest` when it has neither tag nor digest.
    pub fn with_default_tag(mut self) -> Reference {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_string());
        }
        self
    }

    /// Full repository name: `docker.io/library/busybox`.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// Repository as users write it: `busybox`, `localhost:5000/app`.
    pub fn familiar_repository(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            // Only an official image's `library/` goes: `library/e/a` is a repository of its
            // own, which `e/a` would name differently.
            match self.path.strip_prefix("library/") {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.path.clone(),
            }
        } else {
            self.repository()
        }
    }

    /// Normalized full form, the key under which references are stored.
    pub fn full(&self) -> String {
        let mut s = self.repository();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }

    /// Familiar form: `busybox:latest`.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_repository();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.familiar())
    }
}

/// Turns a stored full reference back into its familiar form for display.
pub fn familiar(full: &str) -> String {
    Reference::parse(full).map(|r| r.familiar()).unwrap_or_else(|_| full.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_docker() {
        let r = Reference::parse("busybox").unwrap().with_default_tag();
        assert_eq!(r.full(), "docker.io/library/busybox:latest");
        assert_eq!(r.familiar(), "busybox:latest");
        let r = Reference::parse("localhost:5000/team/app:1.0").unwrap();
        assert_eq!(r.domain, "localhost:5000");
        assert_eq!(r.path, "team/app");
        assert_eq!(r.familiar(), "localhost:5000/team/app:1.0");
        let r = Reference::parse("user/app").unwrap();
        assert_eq!(r.full(), "docker.io/user/app");
        let d = format!("alpine@sha256:{}", "a".repeat(64));
        let r = Reference::parse(&d).unwrap();
        assert_eq!(r.digest.as_deref(), Some(&d[7..]));
        assert_eq!(Reference::parse("index.docker.io/library/x:1").unwrap().familiar(), "x:1");
        assert_eq!(Reference::parse("my.registry:443/a/b/c").unwrap().path, "a/b/c");
    }

    #[test]
    fn rejects_bad_references() {
        for bad in ["", "UPPER", "a:b:c", "-x", "x-", "a//b", "a@sha256:zz", "a:", ":tag", "x y", "a/b__-c"] {
            assert!(Reference::parse(bad).is_err(), "{bad} should be rejected");
        }
        let e = Reference::parse("Busybox").unwrap_err().to_string();
        assert!(e.contains("must be lowercase"), "{e}");
    }

    /// fuzz/regressions/image_reference: `library/e/a` lost its `library/` (another
    /// repository) and 250-letter names parsed though their full form is too long.
    #[test]
    fn familiar_names_and_the_length_limit_follow_docker() {
        let r = Reference::parse("library/e/a").unwrap();
        assert_eq!((r.full().as_str(), r.familiar().as_str()), ("docker.io/library/e/a", "library/e/a"));
        assert_eq!(Reference::parse(&r.familiar()).unwrap().full(), r.full());
        assert_eq!(Reference::parse("busybox").unwrap().familiar(), "busybox");
        assert!(Reference::parse(&"a".repeat(250)).is_err());
        assert!(Reference::parse(&"a".repeat(237)).is_ok());
    }
}
