//! Device access control: one rule list, read once, written for either layout.
//!
//! # Contract
//!
//! A container's device rules (`linux.resources.devices` of the OCI spec, a list of
//! [`DeviceRule`]) are read into a [`Policy`] the way the v1 `devices` controller reads
//! writes to `devices.allow` and `devices.deny`, in order:
//!
//! - A rule for *every* device (type `a` or empty, both numbers wildcards, all of `rwm`)
//!   resets: it sets the default (allow or deny) and forgets every rule before it.
//!   Docker's lists start with one (deny all; `--privileged` is a single allow all).
//! - Any other rule is an exception, and the **last** exception matching an access decides
//!   it. Type `a` matches block and character devices; a missing or negative number matches
//!   every number.
//! - An allow rule matches an access only if it grants every permission the access asks
//!   for (an open for reading and writing needs `rw`); a deny rule matches if it takes any
//!   of them. `m` is mknod, `r` and `w` are opening for reading and writing.
//! - When no exception matches, the default decides; a list without a reset denies by
//!   default (it never inherits the parent's "allow all").
//!
//! The same [`Policy`] becomes, on v1, the lines written to `devices.allow`/`devices.deny`
//! (the reset first, as `a`) and, on v2, an eBPF program of type `BPF_PROG_TYPE_CGROUP_DEVICE`
//! attached to the group ([`program`], [`kernel`]). The encodings agree wherever rules name
//! the same devices; where a later rule with wildcards overlaps an earlier exact one, v1's
//! controller (which only removes exceptions equal to a deny rule) can grant more than
//! the program, never less.
//!
//! An empty rule list leaves device access as it is: `docker update` applies resources
//! without devices, and must not detach or replace what the container started with.
//! On v2, a group with rules whose program the kernel refuses to load or attach is an
//! error: the caller must not start the container without device control.

pub mod kernel;
pub mod program;

use crate::{CgroupError, DeviceRule, Result};

/// `BPF_DEVCG_ACC_*`, also used for v1's `m`, `r` and `w`.
pub const ACCESS_MKNOD: u8 = 1;
pub const ACCESS_READ: u8 = 2;
pub const ACCESS_WRITE: u8 = 4;
pub const ACCESS_ALL: u8 = ACCESS_MKNOD | ACCESS_READ | ACCESS_WRITE;

/// Which devices a rule is about; the values are `BPF_DEVCG_DEV_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Any = 0,
    Block = 1,
    Char = 2,
}

/// One exception of a [`Policy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    pub kind: Kind,
    /// `None` matches every number.
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// Some of `ACCESS_*`, never none.
    pub access: u8,
}

/// A rule list as the kernel is to enforce it: a default and the exceptions after the last
/// reset, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub default_allow: bool,
    pub rules: Vec<Rule>,
}

impl Policy {
    /// Reads `rules` as the contract says. Fails on a type or permission the kernel does not
    /// know, and on numbers past `i32::MAX` (no device has them; the program compares
    /// against sign-extended immediates).
    pub fn new(rules: &[DeviceRule]) -> Result<Policy> {
        let mut p = Policy { default_allow: false, rules: Vec::new() };
        for r in rules {
            let bad = |what: &str| CgroupError::Invalid(format!("invalid device rule {r:?}: {what}"));
            let kind = match r.kind.as_str() {
                "" | "a" => Kind::Any,
                "b" => Kind::Block,
                "c" | "u" => Kind::Char,
                _ => return Err(bad("the type is none of a, b, c")),
            };
            let number = |n: Option<i64>| -> Result<Option<u32>> {
                match n {
                    Some(v) if v > i64::from(i32::MAX) => Err(bad("device number out of range")),
                    Some(v) if v >= 0 => Ok(Some(v as u32)),
                    _ => Ok(None),
                }
            };
            let (major, minor) = (number(r.major)?, number(r.minor)?);
            let access = parse_access(&r.access).ok_or_else(|| bad("the permissions are not some of r, w, m"))?;
            let rule = Rule { allow: r.allow, kind, major, minor, access };
            if rule.is_reset() {
                p = Policy { default_allow: r.allow, rules: Vec::new() };
            } else {
                p.rules.push(rule);
            }
        }
        Ok(p)
    }

    /// Whether the policy lets `access` (one or more `ACCESS_*`) to device `kind`
    /// `major:minor` through: the reference the encodings are tested against.
    pub fn allows(&self, kind: Kind, major: u32, minor: u32, access: u8) -> bool {
        for r in self.rules.iter().rev() {
            let device = (r.kind == Kind::Any || r.kind == kind)
                && r.major.is_none_or(|m| m == major)
                && r.minor.is_none_or(|m| m == minor);
            if !device {
                continue;
            }
            if r.allow && access & !r.access == 0 {
                return true;
            }
            if !r.allow && access & r.access != 0 {
                return false;
            }
        }
        self.default_allow
    }

    /// The v1 encoding: `(file, line)` writes for the group's `devices` directory, in order.
    pub fn v1_lines(&self) -> Vec<(&'static str, String)> {
        let file = |allow: bool| if allow { "devices.allow" } else { "devices.deny" };
        let mut out = vec![(file(self.default_allow), "a".to_string())];
        for r in &self.rules {
            let num = |n: Option<u32>| n.map(|v| v.to_string()).unwrap_or_else(|| "*".into());
            let access: String = [(ACCESS_READ, 'r'), (ACCESS_WRITE, 'w'), (ACCESS_MKNOD, 'm')]
                .into_iter()
                .filter(|(bit, _)| r.access & bit != 0)
                .map(|(_, c)| c)
                .collect();
            // v1 reads any line starting with `a` as a reset, so "both types" is two lines.
            let kinds: &[char] = match r.kind {
                Kind::Any => &['b', 'c'],
                Kind::Block => &['b'],
                Kind::Char => &['c'],
            };
            for k in kinds {
                out.push((file(r.allow), format!("{k} {}:{} {access}", num(r.major), num(r.minor))));
            }
        }
        out
    }
}

impl Rule {
    fn is_reset(&self) -> bool {
        self.kind == Kind::Any && self.major.is_none() && self.minor.is_none() && self.access == ACCESS_ALL
    }
}

/// `rwm` permissions as `ACCESS_*` bits; empty is all three, as in the OCI spec.
fn parse_access(s: &str) -> Option<u8> {
    if s.is_empty() {
        return Some(ACCESS_ALL);
    }
    s.chars().try_fold(0, |acc, c| match c {
        'r' => Some(acc | ACCESS_READ),
        'w' => Some(acc | ACCESS_WRITE),
        'm' => Some(acc | ACCESS_MKNOD),
        _ => None,
    })
}

/// The rules Docker gives a container: everything denied but mknod, then the devices every
/// container has (null, zero, full, random, urandom, tty, console, ptmx), the pseudo
/// terminals (136:*) and tun (10:200). `privileged` allows everything.
pub fn docker_defaults(privileged: bool) -> Vec<DeviceRule> {
    let rule = |allow: bool, kind: &str, major: Option<i64>, minor: Option<i64>, access: &str| DeviceRule {
        allow,
        kind: kind.into(),
        major,
        minor,
        access: access.into(),
    };
    if privileged {
        return vec![rule(true, "a", None, None, "rwm")];
    }
    let mut v =
        vec![rule(false, "a", None, None, "rwm"), rule(true, "c", None, None, "m"), rule(true, "b", None, None, "m")];
    for (ma, mi) in [(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 1), (5, 2), (10, 200)] {
        v.push(rule(true, "c", Some(ma), Some(mi), "rwm"));
    }
    v.push(rule(true, "c", Some(136), None, "rwm"));
    v
}

#[cfg(test)]
mod tests;
