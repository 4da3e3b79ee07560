//! The host's resolv.conf: where containers' own resolv.conf comes from (container service)
//! and where the embedded DNS forwards to when no `--dns` is given (network service).

use std::path::PathBuf;

/// The host's resolv.conf: /etc/resolv.conf, or systemd-resolved's full list when that file
/// only names the local stub (127.0.0.53), as dockerd picks it. `BERTH_HOST_RESOLV_CONF` in
/// the daemon's environment names another file (for tests, which may not change the host's).
pub fn host_resolv_conf_path() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_HOST_RESOLV_CONF").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let etc = PathBuf::from("/etc/resolv.conf");
    let resolved = PathBuf::from("/run/systemd/resolve/resolv.conf");
    let servers = nameservers(&std::fs::read_to_string(&etc).unwrap_or_default());
    if !servers.is_empty() && servers.iter().all(|s| s == "127.0.0.53") && resolved.exists() {
        return resolved;
    }
    etc
}

/// The `nameserver` lines of a resolv.conf.
pub fn nameservers(resolv: &str) -> Vec<String> {
    resolv
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("nameserver"))
        .filter_map(|s| s.split_whitespace().next().map(String::from))
        .collect()
}

/// The nameservers of the host's resolv.conf.
pub fn host_nameservers() -> Vec<String> {
    nameservers(&std::fs::read_to_string(host_resolv_conf_path()).unwrap_or_default())
}
