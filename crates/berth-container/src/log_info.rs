//! What a remote log driver is told about its container (Docker's `logger.Info`): the
//! `tag` option rendered as a Go template over the container's fields, and the attributes
//! the `labels`, `labels-regex`, `env` and `env-regex` options pick. Checked at create,
//! evaluated at each start (the shim then only formats).

use std::collections::BTreeMap;

use berth_shim::sinks::LogInfo;

use crate::record::Record;

/// The tag when the options give none (the ID's first 12 characters).
const DEFAULT_TAG: &str = "{{.ID}}";

/// The fields a tag template sees: Docker's `logger.Info` fields and its methods' values.
fn context(info: &LogInfo, rec: &Record, opts: &BTreeMap<String, String>) -> serde_json::Value {
    let short = |s: &str| {
        let s = s.strip_prefix("sha256:").unwrap_or(s);
        s[..s.len().min(12)].to_string()
    };
    serde_json::json!({
        "ID": info.short_id(),
        "FullID": info.id,
        "Name": info.name,
        "ImageID": short(&info.image_id),
        "ImageFullID": info.image_id,
        "ImageName": info.image_name,
        "Command": info.command,
        "Hostname": info.hostname,
        "DaemonName": "docker",
        "ContainerID": info.id,
        "ContainerName": format!("/{}", info.name),
        "ContainerEntrypoint": rec.path,
        "ContainerArgs": rec.args,
        "ContainerImageID": info.image_id,
        "ContainerImageName": info.image_name,
        "ContainerCreated": info.created,
        "ContainerEnv": rec.config.env,
        "ContainerLabels": rec.config.labels,
        "Config": opts,
        "LogPath": "",
    })
}

fn template(src: &str) -> Result<gotmpl::Template, String> {
    gotmpl::Template::new("log-tag").parse(src).map_err(|e| format!("template: log-tag: {e}"))
}

/// Checks the options a remote driver renders at start: the tag template parses, the
/// regular expressions compile.
pub fn check(opts: &BTreeMap<String, String>) -> Result<(), String> {
    if let Some(t) = opts.get("tag").filter(|t| !t.is_empty()) {
        template(t)?;
    }
    for k in ["labels-regex", "env-regex"] {
        if let Some(r) = opts.get(k).filter(|r| !r.is_empty()) {
            regex::Regex::new(r).map_err(|e| format!("error parsing regexp: {e}"))?;
        }
    }
    Ok(())
}

/// The container's log info for its driver's options.
pub fn build(rec: &Record, opts: &BTreeMap<String, String>) -> Result<LogInfo, String> {
    let mut command = vec![rec.path.clone()];
    command.extend(rec.args.iter().cloned());
    let mut info = LogInfo {
        id: rec.id.clone(),
        name: rec.name.trim_start_matches('/').to_string(),
        image_id: rec.image_id.clone(),
        image_name: rec.config.image.clone(),
        command: command.join(" "),
        created: rec.created.clone(),
        tag: String::new(),
        hostname: berth_shim::sinks::hostname(),
        extra: extra(rec, opts)?,
    };
    let src = opts.get("tag").filter(|t| !t.is_empty()).map(String::as_str).unwrap_or(DEFAULT_TAG);
    let value = gotmpl::to_value(&context(&info, rec, opts)).map_err(|e| format!("template: log-tag: {e}"))?;
    info.tag = template(src)?.execute_to_string(&value).map_err(|e| format!("template: log-tag: {e}"))?;
    Ok(info)
}

/// Docker's `ExtraAttributes`: labels named in `labels` or matching `labels-regex`, and
/// environment variables named in `env` or matching `env-regex`.
fn extra(rec: &Record, opts: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let labels = &rec.config.labels;
    if let Some(names) = opts.get("labels").filter(|s| !s.is_empty()) {
        for n in names.split(',') {
            if let Some(v) = labels.get(n) {
                out.insert(n.to_string(), v.clone());
            }
        }
    }
    if let Some(r) = opts.get("labels-regex").filter(|s| !s.is_empty()) {
        let re = regex::Regex::new(r).map_err(|e| format!("error parsing regexp: {e}"))?;
        for (k, v) in labels.iter().filter(|(k, _)| re.is_match(k)) {
            out.insert(k.clone(), v.clone());
        }
    }
    let env: BTreeMap<&str, &str> = rec.config.env.iter().filter_map(|e| e.split_once('=')).collect();
    if let Some(names) = opts.get("env").filter(|s| !s.is_empty()) {
        for n in names.split(',') {
            if let Some(v) = env.get(n) {
                out.insert(n.to_string(), v.to_string());
            }
        }
    }
    if let Some(r) = opts.get("env-regex").filter(|s| !s.is_empty()) {
        let re = regex::Regex::new(r).map_err(|e| format!("error parsing regexp: {e}"))?;
        for (k, v) in env.iter().filter(|(k, _)| re.is_match(k)) {
            out.insert(k.to_string(), v.to_string());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> Record {
        let mut r = Record {
            id: "0123456789abcdef".repeat(4),
            name: "web".into(),
            image_id: "sha256:fedcba9876543210".into(),
            path: "sh".into(),
            args: vec!["-c".into(), "echo hi".into()],
            ..Default::default()
        };
        r.config.image = "busybox:latest".into();
        r.config.labels = [("team".to_string(), "blue".to_string()), ("tier".into(), "web".into())].into();
        r.config.env = vec!["REGION=eu".into(), "PATH=/bin".into()];
        r
    }

    fn opts(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn tags_render_dockers_fields() {
        let tag = |t: &str| build(&rec(), &opts(&[("tag", t)])).unwrap().tag;
        assert_eq!(build(&rec(), &opts(&[])).unwrap().tag, "0123456789ab");
        assert_eq!(tag("{{.Name}}/{{.ImageName}}"), "web/busybox:latest");
        assert_eq!(tag("{{.ImageID}} {{.DaemonName}}"), "fedcba987654 docker");
        assert_eq!(tag("{{.FullID}}"), "0123456789abcdef".repeat(4));
        assert_eq!(tag("plain"), "plain");
        assert!(check(&opts(&[("tag", "{{.Name")])).is_err());
        assert!(check(&opts(&[("labels-regex", "(")])).is_err());
    }

    #[test]
    fn attributes_from_labels_and_env() {
        let i = build(&rec(), &opts(&[("labels", "team,nope"), ("env-regex", "^REG")])).unwrap();
        assert_eq!(i.extra, opts(&[("team", "blue"), ("REGION", "eu")]));
        assert_eq!(i.command, "sh -c echo hi");
    }
}
