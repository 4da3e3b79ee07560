//! daemon.json keys dockerd honours that berth parses but does not act on, settled at
//! load: refused by name, or accepted with a warning the daemon logs at start.

use super::FileConfig;

/// daemon.json keys dockerd honours that berth parses but does not act on. A value that
/// asks for what berth does is accepted; one that would change what berth's containers see
/// or how they run is refused naming the key; tuning that changes no behaviour (and values
/// that real configs often spell out, such as dockerd's defaults) is accepted with a
/// warning the daemon logs at start. No setting is silently ignored.
pub(super) fn settle(file: &FileConfig) -> Result<Vec<String>, String> {
    let refuse = |key: &str, why: &str| Err(format!("daemon.json: {key}: {why}"));
    let mut warnings = Vec::new();
    let mut warn = |key: &str, why: &str| warnings.push(format!("daemon.json: {key}: {why}"));
    if file.iptables == Some(false) {
        return refuse("iptables", "false is not supported: berth always installs its own firewall rules (nftables)");
    }
    if file.userland_proxy == Some(true) {
        warn("userland-proxy", "has no effect: berth forwards published ports in the kernel, as dockerd with false");
    }
    if let Some(r) = &file.default_runtime
        && r != "runc"
        && r != "berth"
    {
        return refuse("default-runtime", &format!("{r:?} is not supported: berth runs containers itself (runc)"));
    }
    if let Some(r) = &file.runtimes
        && !r.is_empty()
    {
        let names: Vec<&str> = r.keys().map(String::as_str).collect();
        return refuse("runtimes", &format!("{names:?}: other OCI runtimes are not supported"));
    }
    for o in file.exec_opts.iter().flatten() {
        let (k, v) = o.split_once('=').unwrap_or((o, ""));
        if k.trim() != "native.cgroupdriver" || v.trim() != "cgroupfs" {
            return refuse("exec-opts", &format!("{o:?} is not supported (only native.cgroupdriver=cgroupfs)"));
        }
    }
    if file.init == Some(true) {
        return refuse("init", "true is not supported as a daemon default: give --init to the containers that need it");
    }
    if file.experimental == Some(true) {
        warn("experimental", "has no effect: berth has no experimental features");
    }
    for (k, v) in file.features.iter().flatten() {
        match (k.as_str(), *v) {
            // What berth does anyway: BuildKit's API, CDI devices, its own image store.
            ("buildkit", true) | ("cdi", true) | ("containerd-snapshotter", false) => {}
            ("buildkit", false) | ("cdi", false) | ("containerd-snapshotter", true) => {
                return refuse("features", &format!("{k}={v} is not supported by berth"));
            }
            _ => warn("features", &format!("{k} is not a feature berth knows; it has no effect")),
        }
    }
    if let Some(o) = &file.default_network_opts
        && !o.as_object().is_some_and(|m| m.is_empty())
    {
        return refuse("default-network-opts", "not supported: give the options to `network create`");
    }
    for (key, given, fixed) in [
        ("max-concurrent-downloads", file.max_concurrent_downloads, berth_distribution::pull::MAX_CONCURRENT_DOWNLOADS),
        ("max-concurrent-uploads", file.max_concurrent_uploads, berth_distribution::push::MAX_CONCURRENT_UPLOADS),
    ] {
        if let Some(n) = given
            && n as usize != fixed
        {
            warn(key, &format!("{n} has no effect: berth moves {fixed} layers at once"));
        }
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::super::{DaemonConfig, Flags};

    #[test]
    fn settings_berth_does_not_act_on_are_refused_or_warned_by_name_and_its_own_are_accepted() {
        let load = |json: &str| {
            let d = tempfile::tempdir().unwrap();
            let p = d.path().join("daemon.json");
            std::fs::write(&p, json).unwrap();
            DaemonConfig::load(&Flags { config_file: Some(p), ..Default::default() })
        };
        for (json, key) in [
            (r#"{"iptables": false}"#, "iptables"),
            (r#"{"default-runtime": "crun"}"#, "default-runtime"),
            (r#"{"runtimes": {"crun": {"path": "/usr/bin/crun"}}}"#, "runtimes"),
            (r#"{"exec-opts": ["native.cgroupdriver=systemd"]}"#, "exec-opts"),
            (r#"{"init": true}"#, "init"),
            (r#"{"features": {"containerd-snapshotter": true}}"#, "features"),
            (r#"{"features": {"buildkit": false}}"#, "features"),
            (
                r#"{"default-network-opts": {"bridge": {"com.docker.network.driver.mtu": "1400"}}}"#,
                "default-network-opts",
            ),
        ] {
            let e = load(json).unwrap_err();
            assert!(e.starts_with(&format!("daemon.json: {key}: ")), "{json}: {e}");
        }
        for (json, key) in [
            (r#"{"userland-proxy": true}"#, "userland-proxy"),
            (r#"{"experimental": true}"#, "experimental"),
            (r#"{"features": {"some-future-thing": true}}"#, "features"),
            (r#"{"max-concurrent-downloads": 10}"#, "max-concurrent-downloads"),
            (r#"{"max-concurrent-uploads": 1}"#, "max-concurrent-uploads"),
        ] {
            let w = load(json).unwrap().warnings;
            assert!(w.len() == 1 && w[0].starts_with(&format!("daemon.json: {key}: ")), "{json}: {w:?}");
        }
        let c = load(
            r#"{"iptables": true, "userland-proxy": false, "default-runtime": "runc", "runtimes": {},
                "exec-opts": ["native.cgroupdriver=cgroupfs"], "init": false, "experimental": false,
                "features": {"buildkit": true, "cdi": true, "containerd-snapshotter": false},
                "default-network-opts": {}, "max-concurrent-downloads": 3, "max-concurrent-uploads": 5}"#,
        )
        .unwrap();
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }
}
