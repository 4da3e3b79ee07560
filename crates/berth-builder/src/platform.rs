//! Platforms: the one berth builds for (the host's), and the automatic platform ARGs.
//!
//! berth runs RUN steps natively and has no emulation, so a build targets the host's
//! platform only. As BuildKit's Dockerfile frontend does, `BUILDPLATFORM`, `BUILDOS`,
//! `BUILDARCH`, `BUILDVARIANT` and their `TARGET…` twins are ARGs of the global scope
//! (usable in `FROM`, and in a stage after a bare `ARG TARGETARCH`); `--platform` and
//! `FROM --platform=` may name the host's platform in any usual spelling, and anything
//! else is an error that says what the host is.

use std::collections::BTreeMap;

use crate::{BuildError, Result};

/// `os`, `architecture` and `variant` as OCI spells them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: String,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

/// The platform of this build of berth.
pub fn host() -> Platform {
    let (arch, variant) = match std::env::consts::ARCH {
        "x86_64" => ("amd64", ""),
        "aarch64" => ("arm64", ""),
        "arm" => ("arm", "v7"),
        "x86" => ("386", ""),
        "powerpc64" => ("ppc64le", ""),
        "s390x" => ("s390x", ""),
        "riscv64" => ("riscv64", ""),
        other => (other, ""),
    };
    Platform { os: "linux".into(), arch: arch.into(), variant: variant.into() }
}

/// Reads `os[/arch[/variant]]` (or a bare arch), normalized as containerd does
/// (`x86_64` is `amd64`, `aarch64` is `arm64`, arm64's `v8` is no variant).
pub fn parse(s: &str) -> Result<Platform> {
    let lower = s.trim().to_ascii_lowercase();
    let parts: Vec<&str> = lower.split('/').collect();
    let host = host();
    let (os, arch, variant) = match parts.as_slice() {
        [os] if *os == host.os => (*os, host.arch.as_str(), ""),
        [a] => ("linux", *a, ""),
        [os, a] => (*os, *a, ""),
        [os, a, v] => (*os, *a, *v),
        _ => return Err(BuildError::Invalid(format!("invalid platform {s:?}: expected os/arch[/variant]"))),
    };
    let (arch, variant) = match (arch, variant) {
        ("x86_64" | "x86-64", v) => ("amd64", v),
        ("aarch64", "" | "v8") | ("arm64", "v8") => ("arm64", ""),
        ("i386" | "i686", v) => ("386", v),
        ("armhf" | "armel", v) => ("arm", v),
        (a, v) => (a, v),
    };
    if os.is_empty() || arch.is_empty() {
        return Err(BuildError::Invalid(format!("invalid platform {s:?}: expected os/arch[/variant]")));
    }
    Ok(Platform { os: os.into(), arch: arch.into(), variant: variant.into() })
}

/// Checks that `s` (from `what`: `--platform`, a `FROM --platform=`) is the host's
/// platform; empty is the host's.
pub fn check(s: &str, what: &str) -> Result<()> {
    if s.trim().is_empty() {
        return Ok(());
    }
    let host = host();
    let p = parse(s)?;
    let same = p.os == host.os && p.arch == host.arch && (p.variant.is_empty() || p.variant == host.variant);
    if same {
        return Ok(());
    }
    Err(BuildError::Invalid(format!(
        "{what} {s}: berth builds for this host's platform only ({host}) and cannot run steps for {p}"
    )))
}

/// The automatic platform ARGs, for the host.
pub fn args() -> BTreeMap<String, String> {
    let h = host();
    let mut m = BTreeMap::new();
    for side in ["BUILD", "TARGET"] {
        m.insert(format!("{side}PLATFORM"), h.to_string());
        m.insert(format!("{side}OS"), h.os.clone());
        m.insert(format!("{side}ARCH"), h.arch.clone());
        m.insert(format!("{side}VARIANT"), h.variant.clone());
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_spellings_pass_and_others_fail() {
        let h = host();
        check(&h.to_string(), "--platform").unwrap();
        check("", "--platform").unwrap();
        if h.arch == "amd64" {
            check("linux/x86_64", "--platform").unwrap();
            check("amd64", "--platform").unwrap();
            let e = check("linux/arm64", "FROM --platform=").unwrap_err().to_string();
            assert!(e.contains("linux/arm64") && e.contains("linux/amd64"), "{e}");
        }
        assert_eq!(parse("linux/aarch64/v8").unwrap().to_string(), "linux/arm64");
        assert!(check("windows/amd64", "--platform").is_err());
        let a = args();
        assert_eq!(a["TARGETPLATFORM"], h.to_string());
        assert_eq!(a["BUILDARCH"], h.arch);
    }
}
