//! Linux capabilities by name, and applying a process's capability sets.

use rustix::thread::CapabilitySet;

use crate::spec::Capabilities;
use crate::{Result, RuntimeError};

/// Capability names in kernel order (`CAP_CHOWN` is 0).
pub const NAMES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Docker's default set for containers.
pub const DOCKER_DEFAULT: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// The highest capability this kernel knows.
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(NAMES.len() as u32 - 1)
}

/// Normalizes `chown`, `CHOWN`, `cap_chown` to `CAP_CHOWN`; `ALL` stays `ALL`.
pub fn normalize(name: &str) -> Option<String> {
    let up = name.trim().to_ascii_uppercase();
    if up == "ALL" {
        return Some(up);
    }
    let full = if up.starts_with("CAP_") { up } else { format!("CAP_{up}") };
    NAMES.contains(&full.as_str()).then_some(full)
}

/// Every capability the kernel supports and the calling thread may still hold (its
/// bounding set), by name: `--privileged` and `--cap-add ALL` grant what the daemon has, as
/// Docker does, so a daemon that was itself denied one (in a container, under a service
/// manager) can still start privileged containers.
pub fn all() -> Vec<String> {
    NAMES
        .iter()
        .enumerate()
        .take(last_cap() as usize + 1)
        .filter(|(i, _)| {
            rustix::thread::capability_is_in_bounding_set(CapabilitySet::from_bits_retain(1 << i)).unwrap_or(true)
        })
        .map(|(_, s)| s.to_string())
        .collect()
}

fn set_of(names: &[String]) -> Result<CapabilitySet> {
    let mut bits = 0u64;
    let last = last_cap();
    for n in names {
        let i = NAMES
            .iter()
            .position(|x| *x == n)
            .ok_or_else(|| RuntimeError::Invalid(format!("unknown capability {n:?}")))?;
        if i as u32 <= last {
            bits |= 1 << i;
        }
    }
    Ok(CapabilitySet::from_bits_retain(bits))
}

/// Drops everything outside `caps.bounding` from the bounding set. Must run while the
/// process still has CAP_SETPCAP, i.e. before changing user.
pub fn drop_bounding(caps: &Capabilities) -> Result<()> {
    let keep = set_of(&caps.bounding)?;
    for i in 0..=last_cap() {
        let c = CapabilitySet::from_bits_retain(1 << i);
        if !keep.contains(c) {
            rustix::thread::remove_capability_from_bounding_set(c).map_err(|e| {
                RuntimeError::sys(
                    format!("dropping {} from the bounding set", NAMES.get(i as usize).unwrap_or(&"?")),
                    e,
                )
            })?;
        }
    }
    Ok(())
}

/// Sets the effective, permitted and inheritable sets, then raises the ambient ones.
pub fn apply(caps: &Capabilities) -> Result<()> {
    let sets = rustix::thread::CapabilitySets {
        effective: set_of(&caps.effective)?,
        permitted: set_of(&caps.permitted)?,
        inheritable: set_of(&caps.inheritable)?,
    };
    rustix::thread::set_capabilities(None, sets).map_err(|e| RuntimeError::sys("setting capabilities", e))?;
    for n in &caps.ambient {
        let c = set_of(std::slice::from_ref(n))?;
        if !c.is_empty() {
            rustix::thread::configure_capability_in_ambient_set(c, true)
                .map_err(|e| RuntimeError::sys(format!("raising ambient {n}"), e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_what_the_bounding_set_still_holds() {
        // The bounding set is per thread: drop one in a thread of our own.
        std::thread::spawn(|| {
            let before = all();
            assert!(before.contains(&"CAP_SYS_BOOT".to_string()), "{before:?}");
            let boot = CapabilitySet::from_bits_retain(1 << NAMES.iter().position(|n| *n == "CAP_SYS_BOOT").unwrap());
            rustix::thread::remove_capability_from_bounding_set(boot).unwrap();
            let after = all();
            assert!(!after.contains(&"CAP_SYS_BOOT".to_string()));
            assert_eq!(after.len(), before.len() - 1);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn names() {
        assert_eq!(normalize("net_admin").as_deref(), Some("CAP_NET_ADMIN"));
        assert_eq!(normalize("CAP_SYS_ADMIN").as_deref(), Some("CAP_SYS_ADMIN"));
        assert_eq!(normalize("all").as_deref(), Some("ALL"));
        assert_eq!(normalize("flying"), None);
        assert!(all().len() >= 38);
    }
}
