//! Which sysctls a container may set: only those that belong to a namespace of its own, so
//! that a write changes the container and never the host (runc's validator, which dockerd
//! relies on; Docker's CLI refuses the rest before asking).
//!
//! - `kernel.msgmax`, `kernel.msgmnb`, `kernel.msgmni`, `kernel.sem`, `kernel.shmall`,
//!   `kernel.shmmax`, `kernel.shmmni`, `kernel.shm_rmid_forced` and `fs.mqueue.*`: with an
//!   IPC namespace that is not the host's;
//! - `net.*`: with a network namespace that is not the host's;
//! - `kernel.domainname`: with a UTS namespace of its own (`kernel.hostname` conflicts with
//!   the hostname setting and is refused);
//! - nothing else, and no name that is not plain dotted words (a `/` or an empty or `..`
//!   component would walk /proc/sys to another setting).

/// Whether the container's namespaces are its own (or another container's), not the host's.
#[derive(Debug, Clone, Copy)]
pub struct Namespaces {
    pub ipc: bool,
    pub net: bool,
    pub uts: bool,
}

const IPC: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// Checks one sysctl name; the error is the message a user sees.
pub fn check(name: &str, own: Namespaces) -> Result<(), String> {
    if name.is_empty() || name.contains('/') || name.split('.').any(|c| c.is_empty() || c == "..") {
        return Err(format!("sysctl {name:?} is not a valid sysctl name"));
    }
    if IPC.contains(&name) || name.starts_with("fs.mqueue.") {
        return if own.ipc {
            Ok(())
        } else {
            Err(format!("sysctl {name:?} is not allowed in the hosts ipc namespace"))
        };
    }
    if name.starts_with("net.") {
        return if own.net {
            Ok(())
        } else {
            Err(format!("sysctl {name:?} is not allowed in the hosts network namespace"))
        };
    }
    if own.uts {
        match name {
            "kernel.domainname" => return Ok(()),
            "kernel.hostname" => {
                return Err(format!("sysctl {name:?} is not allowed as it conflicts with the OCI \"hostname\" field"));
            }
            _ => {}
        }
    }
    Err(format!("sysctl {name:?} is not in a separate kernel namespace"))
}

/// The path under /proc/sys that `name` (already checked) is written to.
pub fn proc_path(name: &str) -> String {
    format!("/proc/sys/{}", name.replace('.', "/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Namespaces = Namespaces { ipc: true, net: true, uts: true };
    const NONE: Namespaces = Namespaces { ipc: false, net: false, uts: false };

    #[test]
    fn namespaced_sysctls_pass_with_their_namespace() {
        for n in [
            "net.ipv4.ip_forward",
            "net.core.somaxconn",
            "kernel.shmmax",
            "kernel.sem",
            "fs.mqueue.msg_max",
            "kernel.domainname",
        ] {
            assert_eq!(check(n, ALL), Ok(()), "{n}");
        }
    }

    #[test]
    fn host_settings_are_refused() {
        let e = check("kernel.printk_ratelimit_burst", ALL).unwrap_err();
        assert_eq!(e, "sysctl \"kernel.printk_ratelimit_burst\" is not in a separate kernel namespace");
        for n in [
            "kernel.core_pattern",
            "vm.overcommit_memory",
            "fs.file-max",
            "kernel.hostname",
            "kernel.modprobe",
            "user.max_user_namespaces",
        ] {
            assert!(check(n, ALL).is_err(), "{n}");
        }
    }

    #[test]
    fn shared_host_namespaces_refuse_their_sysctls() {
        assert!(check("net.ipv4.ip_forward", NONE).unwrap_err().contains("hosts network namespace"));
        assert!(check("kernel.shmmax", NONE).unwrap_err().contains("hosts ipc namespace"));
        assert!(check("fs.mqueue.msg_max", NONE).is_err());
        assert!(check("kernel.domainname", NONE).is_err());
    }

    #[test]
    fn names_that_walk_proc_sys_are_refused() {
        for n in [
            "net.ipv4/../../kernel.core_pattern",
            "net..ipv4",
            "net.ipv4.",
            "",
            "net/ipv4/ip_forward",
            "net.ipv4...kernel",
        ] {
            assert!(check(n, ALL).is_err(), "{n}");
        }
        assert_eq!(proc_path("net.ipv4.ip_forward"), "/proc/sys/net/ipv4/ip_forward");
    }
}
