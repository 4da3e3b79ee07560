//! Parsing the values of `run`/`create` flags into the Engine API's shapes.

use std::collections::BTreeMap;

use anyhow::{Result, anyhow, bail};
use berth_api::models::{
    BindOptions, DeviceMapping, DriverConfig, Mount, PortBinding, RestartPolicy, TmpfsOptions, Ulimit, VolumeOptions,
};

/// `--env-file`: `KEY=value` lines; a bare `KEY` takes the value from this environment.
pub fn read_env_file(path: &str) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow!("open {path}: {e}"))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let l = line.trim_start();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let (k, v) = match l.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (l.trim_end(), None),
        };
        if k.is_empty() || k.contains(char::is_whitespace) {
            bail!("invalid env file {path}: line {}: variable '{k}' contains whitespaces", n + 1);
        }
        match v {
            Some(v) => out.push(format!("{k}={v}")),
            None => {
                if let Ok(val) = std::env::var(k) {
                    out.push(format!("{k}={val}"));
                }
            }
        }
    }
    Ok(out)
}

/// `-e KEY` without a value takes it from this environment (or drops it, as Docker does).
pub fn env_values(list: &[String]) -> Vec<String> {
    list.iter()
        .filter_map(
            |e| {
                if e.contains('=') { Some(e.clone()) } else { std::env::var(e).ok().map(|v| format!("{e}={v}")) }
            },
        )
        .collect()
}

/// `-l k=v` / `--label-file`.
pub fn labels(list: &[String], files: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| anyhow!("open {f}: {e}"))?;
        for l in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            out.insert(k.to_string(), v.to_string());
        }
    }
    for l in list {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        if k.is_empty() {
            bail!("invalid label '{l}': empty name");
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

fn parse_port_range(s: &str) -> Result<(u16, u16)> {
    let bad = || anyhow!("invalid containerPort: {s}");
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u16 = a.parse().map_err(|_| bad())?;
    let b: u16 = b.parse().map_err(|_| bad())?;
    if b < a {
        return Err(bad());
    }
    Ok((a, b))
}

/// `-p [ip:][hostPort:]containerPort[/proto]`, with ranges and `[v6]` addresses.
pub fn publish(
    specs: &[String],
    exposed: &mut BTreeMap<String, serde_json::Value>,
    bindings: &mut BTreeMap<String, Option<Vec<PortBinding>>>,
) -> Result<()> {
    for spec in specs {
        let (rest, proto) = match spec.rsplit_once('/') {
            Some((r, p)) => (r, p.to_ascii_lowercase()),
            None => (spec.as_str(), "tcp".to_string()),
        };
        if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
            bail!("invalid proto: {proto}");
        }
        // Split off an IPv6 literal first.
        let (ip, rest) = if let Some(r) = rest.strip_prefix('[') {
            let (ip, after) = r.split_once(']').ok_or_else(|| anyhow!("invalid IP address in {spec}"))?;
            (ip.to_string(), after.trim_start_matches(':'))
        } else {
            (String::new(), rest)
        };
        let parts: Vec<&str> = rest.split(':').collect();
        let (ip, host, ctr) = match (ip.is_empty(), parts.as_slice()) {
            (true, [c]) => (String::new(), "", *c),
            (true, [h, c]) => (String::new(), *h, *c),
            (true, [i, h, c]) => (i.to_string(), *h, *c),
            (false, [c]) => (ip, "", *c),
            (false, [h, c]) => (ip, *h, *c),
            _ => bail!("invalid publish spec: {spec}"),
        };
        if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
            bail!("invalid IP address: {ip}");
        }
        let (c0, c1) = parse_port_range(ctr)?;
        let host_range = if host.is_empty() {
            None
        } else {
            Some(parse_port_range(host).map_err(|_| anyhow!("invalid hostPort: {host}"))?)
        };
        if let Some((h0, h1)) = host_range
            && h1 - h0 != c1 - c0
            && h0 != h1
        {
            bail!("invalid ranges specified for container and host Ports: {ctr} and {host}");
        }
        for (i, p) in (c0..=c1).enumerate() {
            let key = format!("{p}/{proto}");
            exposed.insert(key.clone(), serde_json::json!({}));
            let host_port = match host_range {
                None => String::new(),
                Some((h0, h1)) if h0 == h1 && c0 != c1 => h0.to_string(),
                Some((h0, h1)) if h0 != h1 && c0 == c1 => format!("{h0}-{h1}"),
                Some((h0, _)) => (h0 as usize + i).to_string(),
            };
            bindings
                .entry(key)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(PortBinding { host_ip: ip.clone(), host_port });
        }
    }
    Ok(())
}

/// `--expose 80[/tcp]` and ranges.
pub fn expose(specs: &[String], exposed: &mut BTreeMap<String, serde_json::Value>) -> Result<()> {
    for s in specs {
        let (p, proto) = s.split_once('/').unwrap_or((s, "tcp"));
        let (a, b) = parse_port_range(p)?;
        for port in a..=b {
            exposed.insert(format!("{port}/{proto}"), serde_json::json!({}));
        }
    }
    Ok(())
}

pub fn restart_policy(s: &str) -> Result<RestartPolicy> {
    let (name, count) = s.split_once(':').unwrap_or((s, ""));
    let maximum_retry_count = if count.is_empty() {
        0
    } else {
        if name != "on-failure" {
            bail!("invalid restart policy format: maximum retry count can only be used with 'on-failure'");
        }
        count.parse().map_err(|_| anyhow!("invalid restart policy format: maximum retry count must be an integer"))?
    };
    match name {
        "" | "no" | "always" | "unless-stopped" | "on-failure" => {
            Ok(RestartPolicy { name: name.to_string(), maximum_retry_count })
        }
        _ => bail!("invalid restart policy format: unknown policy '{name}'"),
    }
}

/// `--ulimit nofile=1024[:2048]`.
pub fn ulimit(s: &str) -> Result<Ulimit> {
    let (name, vals) = s.split_once('=').ok_or_else(|| anyhow!("invalid ulimit argument: {s}"))?;
    let (soft, hard) = vals.split_once(':').unwrap_or((vals, vals));
    let p = |v: &str| -> Result<i64> { v.parse().map_err(|_| anyhow!("invalid ulimit argument: {s}")) };
    let (soft, hard) = (p(soft)?, p(hard)?);
    if soft > hard {
        bail!("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}");
    }
    Ok(Ulimit { name: name.to_string(), soft, hard })
}

/// `--mount type=bind,source=…,target=…[,readonly]…`.
pub fn mount(s: &str) -> Result<Mount> {
    let mut m = Mount { kind: "volume".into(), ..Default::default() };
    for kv in s.split(',') {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match k.trim().to_ascii_lowercase().as_str() {
            "type" => m.kind = v.to_string(),
            "source" | "src" => m.source = v.to_string(),
            "target" | "destination" | "dst" => m.target = v.to_string(),
            "readonly" | "ro" => m.read_only = v.is_empty() || v == "true" || v == "1",
            "consistency" => m.consistency = v.to_string(),
            "bind-propagation" => m.bind_options.get_or_insert_with(BindOptions::default).propagation = v.to_string(),
            "bind-create-mountpoint" => {
                m.bind_options.get_or_insert_with(BindOptions::default).create_mountpoint = v != "false"
            }
            "volume-nocopy" => {
                m.volume_options.get_or_insert_with(VolumeOptions::default).no_copy = v.is_empty() || v == "true"
            }
            "volume-label" => {
                let (lk, lv) = v.split_once('=').unwrap_or((v, ""));
                m.volume_options.get_or_insert_with(VolumeOptions::default).labels.insert(lk.into(), lv.into());
            }
            "volume-driver" => {
                m.volume_options
                    .get_or_insert_with(VolumeOptions::default)
                    .driver_config
                    .get_or_insert_with(DriverConfig::default)
                    .name = v.to_string()
            }
            "volume-opt" => {
                let (ok, ov) = v.split_once('=').unwrap_or((v, ""));
                m.volume_options
                    .get_or_insert_with(VolumeOptions::default)
                    .driver_config
                    .get_or_insert_with(DriverConfig::default)
                    .options
                    .insert(ok.into(), ov.into());
            }
            "volume-subpath" => m.volume_options.get_or_insert_with(VolumeOptions::default).subpath = v.to_string(),
            "tmpfs-size" => {
                m.tmpfs_options.get_or_insert_with(TmpfsOptions::default).size_bytes =
                    berth_api::units::parse_ram_bytes(v).map_err(|e| anyhow!(e))?
            }
            "tmpfs-mode" => {
                m.tmpfs_options.get_or_insert_with(TmpfsOptions::default).mode =
                    u32::from_str_radix(v, 8).map_err(|_| anyhow!("invalid tmpfs-mode {v}"))?
            }
            other => bail!("invalid field '{other}' must be a key=value pair"),
        }
    }
    if m.target.is_empty() {
        bail!("target is required");
    }
    Ok(m)
}

/// `--tmpfs /run[:options]`.
pub fn tmpfs(list: &[String]) -> BTreeMap<String, String> {
    list.iter()
        .map(|t| {
            let (d, o) = t.split_once(':').unwrap_or((t, ""));
            (d.to_string(), o.to_string())
        })
        .collect()
}

/// `--device /dev/x[:/dev/y[:rwm]]`.
pub fn device(s: &str) -> Result<DeviceMapping> {
    let parts: Vec<&str> = s.split(':').collect();
    let (host, ctr, perm) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, c] if c.chars().all(|x| "rwm".contains(x)) && !c.starts_with('/') => (*h, *h, *c),
        [h, c] => (*h, *c, "rwm"),
        [h, c, p] => (*h, *c, *p),
        _ => bail!("invalid device specification: {s}"),
    };
    Ok(DeviceMapping { path_on_host: host.into(), path_in_container: ctr.into(), cgroup_permissions: perm.into() })
}

/// `--cpus 1.5` → nano CPUs.
pub fn nano_cpus(s: &str) -> Result<i64> {
    let v: f64 = s.parse().map_err(|_| {
        anyhow!("invalid argument \"{s}\" for \"--cpus\" flag: failed to parse {s} as a rational number")
    })?;
    Ok((v * 1e9).round() as i64)
}

pub fn size(s: &str, flag: &str) -> Result<i64> {
    berth_api::units::parse_ram_bytes(s).map_err(|e| anyhow!("invalid argument \"{s}\" for \"{flag}\" flag: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        let mut e = BTreeMap::new();
        let mut b = BTreeMap::new();
        publish(
            &["8080:80".into(), "127.0.0.1:5353:53/udp".into(), "9000".into(), "[::1]:8443:443".into()],
            &mut e,
            &mut b,
        )
        .unwrap();
        assert_eq!(b["80/tcp"].as_ref().unwrap()[0].host_port, "8080");
        assert_eq!(b["53/udp"].as_ref().unwrap()[0].host_ip, "127.0.0.1");
        assert_eq!(b["9000/tcp"].as_ref().unwrap()[0].host_port, "");
        assert_eq!(b["443/tcp"].as_ref().unwrap()[0].host_ip, "::1");
        assert!(publish(&["80:http".into()], &mut e, &mut b).is_err());
        assert!(publish(&["1.2.3:80:80".into()], &mut e, &mut b).is_err());
    }

    #[test]
    fn others() {
        assert_eq!(restart_policy("on-failure:3").unwrap().maximum_retry_count, 3);
        assert!(restart_policy("always:3").is_err());
        assert!(restart_policy("sometimes").is_err());
        assert_eq!(ulimit("nofile=10:20").unwrap().hard, 20);
        assert!(ulimit("nofile=30:20").is_err());
        let m = mount("type=bind,source=/a,target=/b,readonly").unwrap();
        assert!(m.read_only && m.kind == "bind");
        assert!(mount("type=bind,source=/a").is_err());
        assert_eq!(nano_cpus("1.5").unwrap(), 1_500_000_000);
        assert_eq!(device("/dev/fuse").unwrap().path_in_container, "/dev/fuse");
    }
}
