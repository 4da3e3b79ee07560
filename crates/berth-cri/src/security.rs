//! The CRI's security contexts as Docker API settings: every field kubelet can send is either
//! applied or refused with an error naming it. A restriction asked for and silently dropped
//! would run the workload with less isolation than its pod spec says.
//!
//! Where the CRI leaves a choice open, berth takes the safer side:
//! - No seccomp profile named at all means berth's default profile (containerd would run
//!   unconfined); kubelet always names one (`Unconfined` when the pod says so).
//! - Empty `masked_paths` / `readonly_paths` mean berth's defaults: on the wire an empty list
//!   cannot be told from one not sent, and `procMount: Unmasked` needs user namespaces,
//!   which berth does not offer.
//! - berth applies neither AppArmor nor SELinux: an AppArmor `Localhost` profile, and SELinux
//!   options on a host that enforces SELinux, are refused rather than not applied.

use std::path::Path;

use berth_api::models::{DeviceMapping, HostConfig};
use tonic::Status;

use crate::error::invalid;
use crate::proto::{
    Capability, LinuxContainerResources, NamespaceMode, NamespaceOption, SeLinuxOption, SecurityProfile,
    SupplementalGroupsPolicy, security_profile::ProfileType,
};

/// The settings of one security context that both a pod's holder and its containers have.
#[derive(Debug, Default)]
pub struct Common<'a> {
    pub run_as_user: Option<i64>,
    pub run_as_username: &'a str,
    pub run_as_group: Option<i64>,
    pub supplemental_groups: &'a [i64],
    pub supplemental_groups_policy: i32,
    pub seccomp: Option<&'a SecurityProfile>,
    pub seccomp_profile_path: &'a str,
    pub selinux: Option<&'a SeLinuxOption>,
    pub apparmor: Option<&'a SecurityProfile>,
    pub apparmor_profile: &'a str,
}

/// `user[:group]` for the container config; run_as_group needs a user, as in containerd.
pub fn user(c: &Common) -> Result<String, Status> {
    let user = match (c.run_as_user, c.run_as_username) {
        (Some(u), _) => u.to_string(),
        (None, name) => name.to_string(),
    };
    match c.run_as_group {
        Some(_) if user.is_empty() => {
            Err(invalid("run_as_group is set without run_as_user or run_as_username: the group needs a user"))
        }
        Some(g) if g < 0 => Err(invalid(format!("run_as_group {g} is not a valid group ID"))),
        Some(g) => Ok(format!("{user}:{g}")),
        None => Ok(user),
    }
}

/// The supplemental groups, as GroupAdd: the context's own and `more` (the pod's), each once.
pub fn groups(c: &Common, more: &[i64]) -> Result<Option<Vec<String>>, Status> {
    if SupplementalGroupsPolicy::try_from(c.supplemental_groups_policy) == Ok(SupplementalGroupsPolicy::Strict) {
        return Err(Status::unimplemented(
            "supplemental_groups_policy Strict is not supported: berth adds the groups the image's /etc/group gives the user",
        ));
    }
    let mut out: Vec<i64> = Vec::new();
    for &g in c.supplemental_groups.iter().chain(more) {
        if !(0..=u32::MAX as i64).contains(&g) {
            return Err(invalid(format!("supplemental group {g} is not a valid group ID")));
        }
        if !out.contains(&g) {
            out.push(g);
        }
    }
    Ok((!out.is_empty()).then(|| out.iter().map(i64::to_string).collect()))
}

/// The `seccomp=` security option (`None`: berth's default profile).
pub fn seccomp(c: &Common) -> Result<Option<String>, Status> {
    if let Some(p) = c.seccomp {
        return match ProfileType::try_from(p.profile_type) {
            Ok(ProfileType::RuntimeDefault) => Ok(None),
            Ok(ProfileType::Unconfined) => Ok(Some("seccomp=unconfined".into())),
            Ok(ProfileType::Localhost) => localhost_seccomp(&p.localhost_ref).map(Some),
            Err(_) => Err(invalid(format!("unknown seccomp profile type {}", p.profile_type))),
        };
    }
    match c.seccomp_profile_path {
        "" | "runtime/default" | "docker/default" => Ok(None),
        "unconfined" => Ok(Some("seccomp=unconfined".into())),
        other => match other.strip_prefix("localhost/") {
            Some(path) => localhost_seccomp(path).map(Some),
            None => Err(invalid(format!("unknown seccomp profile path {other:?}"))),
        },
    }
}

/// A profile file of the node, read and checked now: a profile that cannot be applied fails
/// the create, not the start.
fn localhost_seccomp(path: &str) -> Result<String, Status> {
    if !Path::new(path).is_absolute() {
        return Err(invalid(format!("the seccomp profile path {path:?} is not absolute")));
    }
    let json =
        std::fs::read_to_string(path).map_err(|e| invalid(format!("reading the seccomp profile {path:?}: {e}")))?;
    berth_runtime::seccomp::from_docker_json(&json, &berth_runtime::caps::all())
        .map_err(|e| invalid(format!("the seccomp profile {path:?}: {e}")))?;
    Ok(format!("seccomp={json}"))
}

/// Refuses the AppArmor and SELinux settings berth would have to apply and cannot.
pub fn lsm(c: &Common) -> Result<(), Status> {
    let localhost = match c.apparmor {
        Some(p) => match ProfileType::try_from(p.profile_type) {
            Ok(ProfileType::Localhost) => Some(p.localhost_ref.as_str()),
            _ => None,
        },
        None => match c.apparmor_profile {
            "" | "runtime/default" | "unconfined" => None,
            other => Some(other.strip_prefix("localhost/").unwrap_or(other)),
        },
    };
    if let Some(name) = localhost {
        return Err(Status::unimplemented(format!(
            "AppArmor profile {name:?} cannot be applied: berth has no AppArmor support"
        )));
    }
    let asks = c
        .selinux
        .is_some_and(|s| !(s.user.is_empty() && s.role.is_empty() && s.r#type.is_empty() && s.level.is_empty()));
    if asks && selinux_enabled() {
        return Err(Status::unimplemented(
            "SELinux options cannot be applied: the host enforces SELinux and berth does not label containers",
        ));
    }
    Ok(())
}

/// Whether the host has SELinux on (its filesystem mounted with an `enforce` switch).
fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

/// Ambient capabilities are not raised by berth's runtime: asked for, they are refused.
pub fn capabilities(caps: &Capability) -> Result<(), Status> {
    if caps.add_ambient_capabilities.is_empty() {
        Ok(())
    } else {
        Err(Status::unimplemented(format!(
            "ambient capabilities {:?} are not supported",
            caps.add_ambient_capabilities
        )))
    }
}

/// User namespaces are not offered: only the node's (no mapping) is accepted.
pub fn userns(ns: &NamespaceOption) -> Result<(), Status> {
    match ns.userns_options.as_ref().map(|u| NamespaceMode::try_from(u.mode)) {
        None | Some(Ok(NamespaceMode::Node)) => Ok(()),
        Some(_) => Err(Status::unimplemented("user namespaces are not supported: only the node's user namespace")),
    }
}

/// The container's devices (`permissions` of `r`, `w`, `m`; all three when empty).
pub fn devices(devs: &[crate::proto::Device]) -> Result<Option<Vec<DeviceMapping>>, Status> {
    let mut out = Vec::new();
    for d in devs {
        if d.host_path.is_empty() || !d.container_path.starts_with('/') {
            return Err(invalid(format!("invalid device {:?} -> {:?}", d.host_path, d.container_path)));
        }
        out.push(DeviceMapping {
            path_on_host: d.host_path.clone(),
            path_in_container: d.container_path.clone(),
            cgroup_permissions: d.permissions.clone(),
        });
    }
    Ok((!out.is_empty()).then_some(out))
}

/// The container's resources on `host`; hugepage limits and `unified` are refused: berth's
/// cgroup code sets neither.
pub fn resources(res: &LinuxContainerResources, host: &mut HostConfig) -> Result<(), Status> {
    if let Some(h) = res.hugepage_limits.iter().find(|h| h.limit > 0) {
        return Err(Status::unimplemented(format!("hugepage limits ({} pages) are not supported", h.page_size)));
    }
    if !res.unified.is_empty() {
        let keys: Vec<&String> = res.unified.keys().collect();
        return Err(Status::unimplemented(format!("unified cgroup settings {keys:?} are not supported")));
    }
    host.memory = res.memory_limit_in_bytes;
    host.memory_swap = res.memory_swap_limit_in_bytes;
    host.cpu_shares = res.cpu_shares;
    host.cpu_quota = res.cpu_quota;
    host.cpu_period = res.cpu_period;
    host.cpuset_cpus = res.cpuset_cpus.clone();
    host.cpuset_mems = res.cpuset_mems.clone();
    host.oom_score_adj = crate::oom::restrict(res.oom_score_adj);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn common() -> Common<'static> {
        Common::default()
    }

    #[test]
    fn a_group_needs_a_user() {
        let c = Common { run_as_group: Some(3000), ..common() };
        assert_eq!(user(&c).unwrap_err().code(), tonic::Code::InvalidArgument);
        let c = Common { run_as_user: Some(1000), run_as_group: Some(3000), ..common() };
        assert_eq!(user(&c).unwrap(), "1000:3000");
        let c = Common { run_as_username: "nobody", run_as_group: Some(0), ..common() };
        assert_eq!(user(&c).unwrap(), "nobody:0");
        assert_eq!(user(&common()).unwrap(), "");
    }

    #[test]
    fn groups_are_merged_once() {
        let c = Common { supplemental_groups: &[10, 20], ..common() };
        assert_eq!(groups(&c, &[20, 30]).unwrap(), Some(vec!["10".into(), "20".into(), "30".into()]));
        assert_eq!(groups(&common(), &[]).unwrap(), None);
        assert!(groups(&Common { supplemental_groups: &[-1], ..common() }, &[]).is_err());
    }

    #[test]
    fn seccomp_forms_map_to_security_options() {
        let p = |t: ProfileType| SecurityProfile { profile_type: t as i32, localhost_ref: String::new() };
        let rd = p(ProfileType::RuntimeDefault);
        let un = p(ProfileType::Unconfined);
        assert_eq!(seccomp(&Common { seccomp: Some(&rd), ..common() }).unwrap(), None);
        assert_eq!(seccomp(&Common { seccomp: Some(&un), ..common() }).unwrap().as_deref(), Some("seccomp=unconfined"));
        for path in ["", "runtime/default", "docker/default"] {
            assert_eq!(seccomp(&Common { seccomp_profile_path: path, ..common() }).unwrap(), None, "{path}");
        }
        let c = Common { seccomp_profile_path: "unconfined", ..common() };
        assert_eq!(seccomp(&c).unwrap().as_deref(), Some("seccomp=unconfined"));
        assert!(seccomp(&Common { seccomp_profile_path: "localhost/relative.json", ..common() }).is_err());
        assert!(seccomp(&Common { seccomp_profile_path: "strange", ..common() }).is_err());
    }

    #[test]
    fn apparmor_localhost_is_refused() {
        let lp = SecurityProfile { profile_type: ProfileType::Localhost as i32, localhost_ref: "mine".into() };
        assert_eq!(lsm(&Common { apparmor: Some(&lp), ..common() }).unwrap_err().code(), tonic::Code::Unimplemented);
        assert!(lsm(&Common { apparmor_profile: "localhost/mine", ..common() }).is_err());
        assert!(lsm(&Common { apparmor_profile: "runtime/default", ..common() }).is_ok());
    }
}
