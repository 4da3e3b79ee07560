//! Docker's seccomp profile format, as `--security-opt seccomp=PROFILE.json` carries it.
//!
//! It is the OCI form (which it also accepts) plus what dockerd resolves before handing a
//! profile to the runtime, done here the way dockerd does it:
//!
//! - `archMap`: the entry for this machine's architecture gives `architectures` (itself and
//!   its `subArchitectures`: on x86_64, Docker's default profile adds `SCMP_ARCH_X86` and
//!   `SCMP_ARCH_X32`); a profile may give `architectures` or `archMap`, not both;
//! - `includes` / `excludes` on an entry: `arches` (Go's names: `amd64`, `arm64`) compared
//!   with this machine's, `caps` with the container's bounding set (all must be there to
//!   include, any excludes), `minKernel` with the running kernel;
//! - `name` as a one-name `names`;
//! - a profile with neither a default action nor syscalls means no filter.

use serde::{Deserialize, Deserializer};

use super::SeccompError;
use super::abi::Abi;
use crate::spec::{Seccomp, SeccompArg, SeccompSyscall};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    #[serde(default, deserialize_with = "nullable")]
    default_action: String,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default, deserialize_with = "nullable")]
    architectures: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    arch_map: Vec<ArchMap>,
    #[serde(default, deserialize_with = "nullable")]
    syscalls: Vec<Syscall>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: String,
    #[serde(default, deserialize_with = "nullable")]
    sub_architectures: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Syscall {
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default, deserialize_with = "nullable")]
    names: Vec<String>,
    action: String,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default, deserialize_with = "nullable")]
    args: Vec<SeccompArg>,
    #[serde(default, deserialize_with = "nullable")]
    includes: Filter,
    #[serde(default, deserialize_with = "nullable")]
    excludes: Filter,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default, deserialize_with = "nullable")]
    arches: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    caps: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    min_kernel: String,
}

/// `null` as the type's default, as Go's decoder leaves a nil slice.
fn nullable<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Resolves a Docker (or OCI) profile for a container whose bounding capability set is
/// `bounding` (names like `"CAP_SYS_ADMIN"`). `None` when the profile asks for no filter.
pub fn from_docker_json(json: &str, bounding: &[String]) -> Result<Option<Seccomp>, SeccompError> {
    let p: Profile = serde_json::from_str(json)
        .map_err(|e| SeccompError::Profile(format!("decoding seccomp profile failed: {e}")))?;
    if p.default_action.is_empty() && p.syscalls.is_empty() {
        return Ok(None);
    }
    if !p.architectures.is_empty() && !p.arch_map.is_empty() {
        return Err(SeccompError::Profile(
            "'architectures' and 'archMap' were specified in the seccomp profile, use either 'architectures' or \
             'archMap'"
                .into(),
        ));
    }
    let native = Abi::native();
    let mut architectures = p.architectures;
    if let Some(m) = native.and_then(|n| p.arch_map.iter().find(|m| m.architecture == n.scmp_name())) {
        architectures.push(m.architecture.clone());
        architectures.extend(m.sub_architectures.iter().cloned());
    }
    let go_arch = match native {
        Some(Abi::X86_64) => "amd64",
        Some(Abi::Aarch64) => "arm64",
        _ => std::env::consts::ARCH,
    };
    let has = |cap: &String| bounding.contains(cap);

    let mut syscalls = Vec::with_capacity(p.syscalls.len());
    for call in p.syscalls {
        let (inc, exc) = (&call.includes, &call.excludes);
        if exc.arches.iter().any(|a| a == go_arch)
            || exc.caps.iter().any(has)
            || (!exc.min_kernel.is_empty() && kernel_at_least(&exc.min_kernel)?)
            || (!inc.arches.is_empty() && !inc.arches.iter().any(|a| a == go_arch))
            || !inc.caps.iter().all(has)
            || (!inc.min_kernel.is_empty() && !kernel_at_least(&inc.min_kernel)?)
        {
            continue;
        }
        if !call.name.is_empty() && !call.names.is_empty() {
            return Err(SeccompError::Profile(
                "'name' and 'names' were specified in the seccomp profile, use either 'name' or 'names'".into(),
            ));
        }
        let names = if call.name.is_empty() { call.names } else { vec![call.name] };
        syscalls.push(SeccompSyscall { names, action: call.action, errno_ret: call.errno_ret, args: call.args });
    }
    Ok(Some(Seccomp {
        default_action: p.default_action,
        default_errno_ret: p.default_errno_ret,
        architectures,
        syscalls,
    }))
}

/// Whether the running kernel is at least `version` ("4.8", "5.10.2"), as dockerd compares.
fn kernel_at_least(version: &str) -> Result<bool, SeccompError> {
    let want = parse_release(version)
        .ok_or_else(|| SeccompError::Profile(format!("invalid kernel version in seccomp profile: {version:?}")))?;
    let uname = rustix::system::uname();
    // An unparsable release counts as new, as for the default profile's own checks.
    Ok(parse_release(&uname.release().to_string_lossy()).is_none_or(|have| have >= want))
}

/// `major.minor[.patch]`, ignoring what follows the numbers (`-generic`, `+`).
pub(super) fn parse_release(release: &str) -> Option<(u32, u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let patch = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    Some((major, minor, patch))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn names(p: &Seccomp) -> Vec<&str> {
        p.syscalls.iter().flat_map(|s| s.names.iter().map(String::as_str)).collect()
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn arch_map_gives_this_machine_s_architectures() {
        let json = r#"{"defaultAction":"SCMP_ACT_ERRNO","archMap":[
            {"architecture":"SCMP_ARCH_AARCH64","subArchitectures":["SCMP_ARCH_ARM"]},
            {"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86","SCMP_ARCH_X32"]},
            {"architecture":"SCMP_ARCH_RISCV64","subArchitectures":null}],"syscalls":null}"#;
        let p = from_docker_json(json, &[]).unwrap().unwrap();
        assert_eq!(p.architectures, ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
        let both = r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],
            "archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}"#;
        let err = from_docker_json(both, &[]).unwrap_err().to_string();
        assert!(err.contains("use either 'architectures' or 'archMap'"), "{err}");
    }

    #[test]
    fn includes_and_excludes_follow_arch_caps_and_kernel() {
        let json = r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,"syscalls":[
            {"names":["read"],"action":"SCMP_ACT_ALLOW"},
            {"name":"mount","action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}},
            {"names":["clone"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":2114060288,"op":"SCMP_CMP_MASKED_EQ"}],
             "excludes":{"caps":["CAP_SYS_ADMIN"],"arches":["s390","s390x"]}},
            {"names":["arch_prctl"],"action":"SCMP_ACT_ALLOW","includes":{"arches":["amd64","x32"]}},
            {"names":["cacheflush"],"action":"SCMP_ACT_ALLOW","includes":{"arches":["arm","arm64"]}},
            {"names":["ptrace"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"4.8"}},
            {"names":["future"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"99.0"}},
            {"names":["past"],"action":"SCMP_ACT_ALLOW","excludes":{"minKernel":"3.10"}},
            {"names":["clone3"],"action":"SCMP_ACT_ERRNO","errnoRet":38,"args":null,"excludes":{"caps":["CAP_SYS_ADMIN"]}}
        ]}"#;
        let plain = from_docker_json(json, &caps(&["CAP_CHOWN"])).unwrap().unwrap();
        let amd64 = cfg!(target_arch = "x86_64");
        let mut want = vec!["read", "clone"];
        if amd64 {
            want.push("arch_prctl");
        } else {
            want.push("cacheflush");
        }
        want.extend(["ptrace", "clone3"]);
        assert_eq!(names(&plain), want);
        assert_eq!(plain.default_errno_ret, Some(1));
        let clone3 = plain.syscalls.last().unwrap();
        assert_eq!((clone3.errno_ret, clone3.args.len()), (Some(38), 0));
        let clone = &plain.syscalls[1];
        assert_eq!((clone.args[0].value, clone.args[0].op.as_str()), (2114060288, "SCMP_CMP_MASKED_EQ"));

        let admin = from_docker_json(json, &caps(&["CAP_CHOWN", "CAP_SYS_ADMIN"])).unwrap().unwrap();
        assert!(names(&admin).contains(&"mount"));
        assert!(!names(&admin).contains(&"clone") && !names(&admin).contains(&"clone3"));
    }

    #[test]
    fn odd_profiles() {
        // No default action and no syscalls: no filter, as with dockerd.
        assert!(from_docker_json("{}", &[]).unwrap().is_none());
        let both =
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ERRNO"}]}"#;
        let err = from_docker_json(both, &[]).unwrap_err().to_string();
        assert!(err.contains("use either 'name' or 'names'"), "{err}");
        let bad_kernel = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["a"],"action":"SCMP_ACT_ERRNO",
            "includes":{"minKernel":"four"}}]}"#;
        assert!(from_docker_json(bad_kernel, &[]).is_err());
        assert!(from_docker_json("[", &[]).unwrap_err().to_string().starts_with("decoding seccomp profile failed"));
        assert_eq!(parse_release("6.18.44-fc-v1300"), Some((6, 18, 44)));
        assert_eq!(parse_release("4.8"), Some((4, 8, 0)));
    }

    /// berth's own profile, written as OCI JSON, reads back unchanged.
    #[test]
    fn oci_profiles_are_docker_profiles() {
        let profile = super::super::default_profile(&caps(&["CAP_CHOWN"]));
        let json = serde_json::to_string(&profile).unwrap();
        assert_eq!(from_docker_json(&json, &[]).unwrap().unwrap(), profile);
    }
}
