//! Applying config-only instructions to a container config: `import -c` / `commit -c`.

use berth_api::models::ContainerConfig;

use crate::words::{parse_pairs, split_words};
use crate::{Args, DockerfileError, Instruction, Result};

/// The instructions `--change` accepts, as in Docker.
pub const ALLOWED: &[&str] = &[
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "HEALTHCHECK",
    "LABEL",
    "ONBUILD",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

fn shell_cmd(config: &ContainerConfig, text: String) -> Vec<String> {
    let mut v = config.shell.clone().unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
    v.push(text);
    v
}

/// Normalizes `80`, `80/udp` to `80/tcp`, `80/udp`, checking the number.
pub fn normalize_port(p: &str) -> Result<String> {
    let (port, proto) = p.split_once('/').unwrap_or((p, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(DockerfileError::Syntax(format!("invalid proto: {proto}")));
    }
    let valid = |s: &str| s.parse::<u16>().is_ok();
    let ok = match port.split_once('-') {
        Some((a, b)) => valid(a) && valid(b),
        None => valid(port),
    };
    if !ok {
        return Err(DockerfileError::Syntax(format!("invalid containerPort: {port}")));
    }
    Ok(format!("{port}/{proto}"))
}

/// Sets or replaces `KEY=value` in an environment list, keeping order.
pub fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    let entry = format!("{key}={value}");
    if let Some(e) = env.iter_mut().find(|e| e.split_once('=').map(|(k, _)| k) == Some(key) || e.as_str() == key) {
        *e = entry;
    } else {
        env.push(entry);
    }
}

/// Applies one change line to `config`.
pub fn apply_change(config: &mut ContainerConfig, line: &str) -> Result<()> {
    let ins = Instruction::parse(line)?;
    if !ALLOWED.contains(&ins.keyword.as_str()) {
        return Err(DockerfileError::Unsupported(format!("{} is not a valid change command", ins.keyword)));
    }
    apply(config, &ins, '\\')
}

/// Applies a parsed config-only instruction.
pub fn apply(config: &mut ContainerConfig, ins: &Instruction, escape: char) -> Result<()> {
    let text = ins.shell_text();
    match ins.keyword.as_str() {
        "CMD" => {
            config.cmd = Some(match &ins.args {
                Args::Exec(v) => v.clone(),
                Args::Shell(s) => shell_cmd(config, s.clone()),
            });
        }
        "ENTRYPOINT" => {
            config.entrypoint = Some(match &ins.args {
                Args::Exec(v) => v.clone(),
                Args::Shell(s) if s.trim().is_empty() => Vec::new(),
                Args::Shell(s) => shell_cmd(config, s.clone()),
            });
            // Docker: setting ENTRYPOINT drops a CMD inherited from the base.
            config.cmd = None;
        }
        "ENV" => {
            for (k, v) in parse_pairs(&text, escape, "ENV")? {
                set_env(&mut config.env, &k, &v);
            }
        }
        "LABEL" => {
            for (k, v) in parse_pairs(&text, escape, "LABEL")? {
                config.labels.insert(k, v);
            }
        }
        "EXPOSE" => {
            let ports = config.exposed_ports.get_or_insert_with(Default::default);
            for p in split_words(&text, escape)? {
                ports.insert(normalize_port(&p)?, serde_json::json!({}));
            }
        }
        "VOLUME" => {
            let vols = config.volumes.get_or_insert_with(Default::default);
            let list = match &ins.args {
                Args::Exec(v) => v.clone(),
                Args::Shell(s) => split_words(s, escape)?,
            };
            if list.is_empty() {
                return Err(DockerfileError::Syntax("VOLUME specified can not be an empty string".into()));
            }
            for v in list {
                if v.trim().is_empty() {
                    return Err(DockerfileError::Syntax("VOLUME specified can not be an empty string".into()));
                }
                vols.insert(v, serde_json::json!({}));
            }
        }
        "USER" => {
            let u = text.trim();
            if u.is_empty() {
                return Err(DockerfileError::Syntax("USER requires exactly one argument".into()));
            }
            config.user = u.to_string();
        }
        "WORKDIR" => {
            let w = text.trim();
            if w.is_empty() {
                return Err(DockerfileError::Syntax("WORKDIR requires exactly one argument".into()));
            }
            config.working_dir = if w.starts_with('/') || config.working_dir.is_empty() {
                clean_abs(w)
            } else {
                clean_abs(&format!("{}/{}", config.working_dir, w))
            };
        }
        "STOPSIGNAL" => {
            let s = text.trim();
            if s.is_empty() {
                return Err(DockerfileError::Syntax("STOPSIGNAL requires exactly one argument".into()));
            }
            config.stop_signal = s.to_string();
        }
        "ONBUILD" => {
            let t = text.trim();
            let first = t.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
            if matches!(first.as_str(), "ONBUILD" | "FROM" | "MAINTAINER" | "") {
                return Err(DockerfileError::Syntax(format!("{first} isn't allowed as an ONBUILD trigger")));
            }
            config.on_build.push(t.to_string());
        }
        "HEALTHCHECK" => {
            config.healthcheck = Some(crate::changes::healthcheck(ins)?);
        }
        "SHELL" => match &ins.args {
            Args::Exec(v) if !v.is_empty() => config.shell = Some(v.clone()),
            _ => return Err(DockerfileError::Syntax("SHELL requires the arguments to be in JSON form".into())),
        },
        other => return Err(DockerfileError::Unsupported(format!("{other} does not change the image config"))),
    }
    Ok(())
}

/// `--interval` and friends: a Go duration, 0 when absent; non-zero values under 1ms
/// are refused, as in Docker.
fn parse_duration_flag(ins: &Instruction, name: &str) -> Result<i64> {
    let v = match ins.flag(name) {
        None | Some("") => return Ok(0),
        Some(v) => v,
    };
    let d = berth_api::time::parse_go_duration(v)
        .ok_or_else(|| DockerfileError::Syntax(format!("time: invalid duration {v:?}")))?;
    if !d.is_zero() && d < std::time::Duration::from_millis(1) {
        return Err(DockerfileError::Syntax(format!("Interval {name:?} cannot be less than 1ms")));
    }
    Ok(d.as_nanos() as i64)
}

/// `HEALTHCHECK [--interval= --timeout= --start-period= --start-interval= --retries=] CMD …`
/// or `HEALTHCHECK NONE`, with Docker's messages.
pub fn healthcheck(ins: &Instruction) -> Result<berth_api::models::HealthConfig> {
    let err = |m: String| Err(DockerfileError::Syntax(m));
    let mut hc = berth_api::models::HealthConfig::default();
    let rest = ins.shell_text().trim().to_string();
    if rest.is_empty() {
        return err("HEALTHCHECK requires at least one argument".into());
    }
    let (kw, cmd) = rest.split_at(rest.find(char::is_whitespace).unwrap_or(rest.len()));
    let (kw, cmd) = (kw.to_ascii_uppercase(), cmd.trim());
    if kw == "NONE" {
        if !cmd.is_empty() {
            return err("HEALTHCHECK NONE takes no arguments".into());
        }
        hc.test = Some(vec!["NONE".into()]);
        return Ok(hc);
    }
    if kw != "CMD" {
        return err(format!("Unknown type {kw:?} in HEALTHCHECK (try CMD)"));
    }
    hc.test = Some(match crate::instruction::json_array(cmd).transpose()? {
        Some(v) if v.is_empty() => return err("Missing command after HEALTHCHECK CMD".into()),
        Some(v) => std::iter::once("CMD".to_string()).chain(v).collect(),
        None if cmd.is_empty() => return err("Missing command after HEALTHCHECK CMD".into()),
        None => vec!["CMD-SHELL".to_string(), cmd.to_string()],
    });
    hc.interval = parse_duration_flag(ins, "interval")?;
    hc.timeout = parse_duration_flag(ins, "timeout")?;
    hc.start_period = parse_duration_flag(ins, "start-period")?;
    hc.start_interval = parse_duration_flag(ins, "start-interval")?;
    if let Some(r) = ins.flag("retries").filter(|r| !r.is_empty()) {
        hc.retries = r
            .parse()
            .map_err(|_| DockerfileError::Syntax(format!("strconv.ParseInt: parsing {r:?}: invalid syntax")))?;
        if hc.retries < 0 {
            return err(format!("--retries cannot be negative ({})", hc.retries));
        }
    }
    Ok(hc)
}

/// Lexically cleans an absolute path (one copy, in berth-api).
pub use berth_api::paths::clean_abs;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_like_docker() {
        let mut c = ContainerConfig { cmd: Some(vec!["old".into()]), ..Default::default() };
        apply_change(&mut c, "CMD echo hi").unwrap();
        assert_eq!(c.cmd, Some(vec!["/bin/sh".into(), "-c".into(), "echo hi".into()]));
        apply_change(&mut c, r#"ENTRYPOINT ["/bin/app"]"#).unwrap();
        assert_eq!(c.entrypoint, Some(vec!["/bin/app".into()]));
        assert_eq!(c.cmd, None, "ENTRYPOINT resets CMD");
        apply_change(&mut c, "ENV A=1 B=2").unwrap();
        apply_change(&mut c, "ENV A 3").unwrap();
        assert_eq!(c.env, vec!["A=3".to_string(), "B=2".to_string()]);
        apply_change(&mut c, "WORKDIR /srv").unwrap();
        apply_change(&mut c, "WORKDIR app/../web").unwrap();
        assert_eq!(c.working_dir, "/srv/web");
        apply_change(&mut c, "EXPOSE 80 53/udp").unwrap();
        assert!(c.exposed_ports.as_ref().unwrap().contains_key("80/tcp"));
        assert!(c.exposed_ports.as_ref().unwrap().contains_key("53/udp"));
        assert!(apply_change(&mut c, "EXPOSE 99999").is_err());
        assert!(apply_change(&mut c, "RUN rm -rf /").is_err());
        apply_change(&mut c, "HEALTHCHECK --interval=5s --retries=2 CMD true").unwrap();
        let hc = c.healthcheck.unwrap();
        assert_eq!(hc.test, Some(vec!["CMD-SHELL".into(), "true".into()]));
        assert_eq!(hc.interval, 5_000_000_000);
        assert_eq!(hc.retries, 2);
    }

    #[test]
    fn healthcheck_errors_are_dockers() {
        let msg = |l: &str| healthcheck(&Instruction::parse(l).unwrap()).unwrap_err().to_string();
        assert_eq!(msg("HEALTHCHECK NONE x"), "HEALTHCHECK NONE takes no arguments");
        assert_eq!(msg("HEALTHCHECK foo x"), r#"Unknown type "FOO" in HEALTHCHECK (try CMD)"#);
        assert_eq!(msg("HEALTHCHECK CMD"), "Missing command after HEALTHCHECK CMD");
        assert_eq!(msg("HEALTHCHECK CMD []"), "Missing command after HEALTHCHECK CMD");
        assert_eq!(msg("HEALTHCHECK --retries=-1 CMD true"), "--retries cannot be negative (-1)");
        assert_eq!(msg("HEALTHCHECK --interval=1us CMD true"), r#"Interval "interval" cannot be less than 1ms"#);
        let hc = healthcheck(&Instruction::parse(r#"HEALTHCHECK cmd ["curl", "-f", "x"]"#).unwrap()).unwrap();
        assert_eq!(hc.test, Some(vec!["CMD".into(), "curl".into(), "-f".into(), "x".into()]));
        let hc = healthcheck(&Instruction::parse("HEALTHCHECK CMD [not json").unwrap()).unwrap();
        assert_eq!(hc.test, Some(vec!["CMD-SHELL".into(), "[not json".into()]));
    }
}
