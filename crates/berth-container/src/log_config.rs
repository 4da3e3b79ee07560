//! A container's log options, parsed once, at create. dockerd checks the keys at create
//! and leaves the values to its driver at start (`failed to initialize logging driver: …`);
//! berth checks both at create, with the same words, so a container that exists can start,
//! and keeps the result in the container's `LogConfig`, merged with the daemon's defaults as
//! dockerd merges them. The daemon's own `log-opts` go through the same checks at its start.

use std::collections::BTreeMap;

use berth_api::models::LogConfig;

/// How the json-file and local drivers rotate (berth writes json-file lines for both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// Rotate after this many bytes.
    pub max_size: u64,
    /// Keep this many files, the current one included.
    pub max_files: u32,
    pub compress: bool,
}

/// The drivers berth has: its own files, and the remote ones the shim sends to
/// (`berth_shim::sinks`), which keep a local file beside (Docker's dual logging).
const DRIVERS: &[&str] = &["json-file", "local", "none", "syslog", "journald", "gelf", "fluentd"];

/// Whether a driver sends the log somewhere else.
pub fn is_remote(driver: &str) -> bool {
    berth_shim::sinks::DRIVERS.contains(&driver)
}

/// Whether berth keeps a file of this log, which `docker logs` reads: not for `none`, nor
/// for a remote driver whose cache is disabled.
pub fn keeps_file(driver: &str, cfg: &BTreeMap<String, String>) -> bool {
    driver != "none" && !(is_remote(driver) && cfg.get("cache-disabled").is_some_and(|v| parse_bool(v) == Ok(true)))
}

/// The daemon's own options, which every driver takes (dockerd's built-in log opts).
fn is_builtin(k: &str) -> bool {
    berth_shim::sinks::is_builtin(k)
}

fn parse_bool(s: &str) -> std::result::Result<bool, String> {
    berth_shim::sinks::parse_bool(s)
}

/// The container's log config as it is kept: the daemon's driver when it names none, and
/// the daemon's options under its own when both use the daemon's driver (dockerd's
/// `mergeAndVerifyLogConfig`), with how it rotates; refused if a key or value is wrong.
pub(crate) fn resolve(
    lc: &LogConfig,
    daemon_driver: &str,
    daemon_opts: &BTreeMap<String, String>,
) -> std::result::Result<(LogConfig, Rotation), String> {
    let mut out = lc.clone();
    if out.kind.is_empty() {
        out.kind = daemon_driver.to_string();
    }
    if out.kind == daemon_driver {
        for (k, v) in daemon_opts {
            out.config.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    let r = check(&out.kind, &out.config)?;
    Ok((out, r))
}

/// Checks a driver's options (the daemon's at its start, a container's at create) and
/// returns how the log rotates. Errors are dockerd's texts.
pub fn check(driver: &str, cfg: &BTreeMap<String, String>) -> std::result::Result<Rotation, String> {
    if !DRIVERS.contains(&driver) && driver != "cri" {
        return Err(format!("logger: no log driver named '{driver}' is registered"));
    }
    if driver != "none" {
        keys(driver, cfg)?;
    }
    if is_remote(driver) {
        berth_shim::sinks::check(driver, cfg)?;
        crate::log_info::check(cfg)?;
        return cache(cfg).map_err(|e| format!("failed to initialize logging driver: {e}"));
    }
    rotation(driver, cfg).map_err(|e| format!("failed to initialize logging driver: {e}"))
}

/// How a remote driver's local cache rotates: as the `local` driver, from the `cache-*`
/// options (dockerd's `loggerutils/cache`).
fn cache(cfg: &BTreeMap<String, String>) -> std::result::Result<Rotation, String> {
    if let Some(v) = cfg.get("cache-disabled").filter(|v| !v.is_empty()) {
        parse_bool(v).map_err(|_| format!("invalid value for option cache-disabled: {v}"))?;
    }
    let local: BTreeMap<String, String> = cfg
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("cache-").map(|k| (k.to_string(), v.clone())))
        .filter(|(k, _)| k != "disabled")
        .collect();
    rotation("local", &local)
}

/// `logger.ValidateLogOpts` and the json-file and local drivers' key validators.
fn keys(driver: &str, cfg: &BTreeMap<String, String>) -> std::result::Result<(), String> {
    let mode = cfg.get("mode").map(String::as_str).unwrap_or("");
    if !matches!(mode, "" | "blocking" | "non-blocking") {
        return Err(format!("logger: logging mode not supported: {mode}"));
    }
    if let Some(s) = cfg.get("max-buffer-size") {
        if mode != "non-blocking" {
            return Err("logger: max-buffer-size option is only supported with 'mode=non-blocking'".into());
        }
        berth_api::units::parse_ram_bytes(s).map_err(|e| format!("error parsing option max-buffer-size: {e}"))?;
    }
    if is_remote(driver) {
        return Ok(());
    }
    let known: &[&str] = match driver {
        "json-file" => &["max-file", "max-size", "compress", "labels", "labels-regex", "env", "env-regex", "tag"],
        "local" => &["max-file", "max-size", "compress"],
        _ => return Ok(()),
    };
    match cfg.keys().find(|k| !is_builtin(k) && !known.contains(&k.as_str())) {
        Some(k) if driver == "local" => Err(format!("unknown log opt '{k}' for log driver local")),
        Some(k) => Err(format!("unknown log opt '{k}' for json-file log driver")),
        None => Ok(()),
    }
}

/// The values, as the drivers read them. Without `max-size` berth still rotates (at 10 MB
/// for json-file, 20 MB for local, Docker's local defaults), so `max-file` alone has effect.
fn rotation(driver: &str, cfg: &BTreeMap<String, String>) -> std::result::Result<Rotation, String> {
    let local = driver == "local";
    let mut r = Rotation {
        max_size: if local { 20 } else { 10 } * 1024 * 1024,
        max_files: if local { 5 } else { 3 },
        compress: local,
    };
    if driver == "cri" {
        // kubelet rotates CRI logs itself.
        return Ok(Rotation { max_size: 0, ..r });
    }
    if !matches!(driver, "json-file" | "local") {
        return Ok(r);
    }
    if let Some(s) = cfg.get("max-size") {
        let n = berth_api::units::parse_ram_bytes(s)?;
        if n <= 0 {
            return Err(if local {
                "max size should be a positive number".into()
            } else {
                "max-size must be a positive number".into()
            });
        }
        r.max_size = n as u64;
    }
    if let Some(s) = cfg.get("max-file") {
        let n: i64 = s.parse().map_err(|_| format!("strconv.Atoi: parsing {s:?}: invalid syntax"))?;
        if n < 1 {
            return Err(if local {
                "max file count cannot be less than 1".into()
            } else {
                "max-file cannot be less than 1".into()
            });
        }
        r.max_files = u32::try_from(n).map_err(|_| format!("strconv.Atoi: parsing {s:?}: value out of range"))?;
    }
    if let Some(s) = cfg.get("compress") {
        r.compress = parse_bool(s)?;
    }
    if local && r.compress && r.max_files == 1 {
        return Err("compression cannot be enabled when max file count is 1".into());
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn keys_and_values_as_dockerd_words_them() {
        let e = |d: &str, kv: &[(&str, &str)]| check(d, &opts(kv)).unwrap_err();
        assert_eq!(e("json-file", &[("max-sise", "1m")]), "unknown log opt 'max-sise' for json-file log driver");
        assert_eq!(e("local", &[("tag", "x")]), "unknown log opt 'tag' for log driver local");
        assert!(e("local", &[("mode", "fast")]).contains("logging mode not supported: fast"));
        assert_eq!(e("json-file", &[("max-size", "abc")]), "failed to initialize logging driver: invalid size: 'abc'");
        assert!(e("json-file", &[("max-file", "0")]).ends_with("max-file cannot be less than 1"));
        assert!(e("json-file", &[("compress", "yes")]).contains("strconv.ParseBool"));
        assert!(e("splunk", &[]).contains("no log driver named 'splunk'"));
        assert!(check("json-file", &opts(&[("cache-disabled", "true")])).is_ok(), "the cache's options are everyone's");
        let ok = [("max-size", "1m"), ("max-file", "2"), ("mode", "non-blocking"), ("max-buffer-size", "4m")];
        let r = check("json-file", &opts(&ok)).unwrap();
        assert_eq!((r.max_size, r.max_files, r.compress), (1024 * 1024, 2, false));
        assert!(check("none", &opts(&[("anything", "x")])).is_ok());
    }

    #[test]
    fn remote_drivers_check_their_options_and_their_cache() {
        let e = |d: &str, kv: &[(&str, &str)]| check(d, &opts(kv)).unwrap_err();
        assert_eq!(e("syslog", &[("max-size", "1m")]), "unknown log opt 'max-size' for syslog log driver");
        assert_eq!(e("journald", &[("gelf-address", "x")]), "unknown log opt 'gelf-address' for journald log driver");
        assert_eq!(e("gelf", &[]), "gelf-address is a required parameter");
        assert_eq!(
            e("fluentd", &[("fluentd-address", "ftp://x")]),
            "invalid fluentd-address (ftp://x): unsupported scheme: 'ftp'"
        );
        assert_eq!(
            e("journald", &[("cache-disabled", "maybe")]),
            "failed to initialize logging driver: invalid value for option cache-disabled: maybe"
        );
        assert!(e("journald", &[("cache-max-file", "0")]).ends_with("max file count cannot be less than 1"));
        assert!(e("syslog", &[("tag", "{{.Name")]).starts_with("template: log-tag"));
        let r =
            check("syslog", &opts(&[("syslog-address", "udp://127.0.0.1:5514"), ("cache-max-size", "1m")])).unwrap();
        assert_eq!((r.max_size, r.max_files, r.compress), (1024 * 1024, 5, true));
        assert!(keeps_file("gelf", &opts(&[])));
        assert!(!keeps_file("gelf", &opts(&[("cache-disabled", "true")])));
        assert!(keeps_file("json-file", &opts(&[("cache-disabled", "true")])));
    }

    #[test]
    fn the_daemons_options_fill_in_for_its_driver_only() {
        let daemon = opts(&[("max-size", "5m"), ("max-file", "7")]);
        let mine = LogConfig { kind: String::new(), config: opts(&[("max-file", "2")]) };
        let (got, r) = resolve(&mine, "json-file", &daemon).unwrap();
        assert_eq!((r.max_size, r.max_files), (5 * 1024 * 1024, 2));
        assert_eq!(got.kind, "json-file");
        assert_eq!(got.config, opts(&[("max-size", "5m"), ("max-file", "2")]));
        let other = LogConfig { kind: "none".into(), config: BTreeMap::new() };
        assert!(resolve(&other, "json-file", &daemon).unwrap().0.config.is_empty());
    }
}
