//! Registry credentials in Docker's client configuration, `$DOCKER_CONFIG/config.json`
//! (default `~/.docker/config.json`), shared with the docker CLI.
//!
//! Credentials live under `auths.<server>.auth` as `base64(user:password)`, keyed by the
//! registry's domain (`127.0.0.1:5000`) or, for Docker Hub, `https://index.docker.io/v1/`.
//! A credential helper named by `credHelpers.<server>` or `credsStore` is used instead when
//! configured (`docker-credential-<name> get|store|erase`, JSON on stdin and stdout). Every
//! other key of the file is kept as it was.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use serde_json::{Map, Value, json};

pub fn config_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".docker")
}

pub fn config_path() -> PathBuf {
    config_dir().join("config.json")
}

fn load() -> Result<Map<String, Value>> {
    let p = config_path();
    match std::fs::read(&p) {
        Ok(b) if b.iter().all(|c| c.is_ascii_whitespace()) => Ok(Map::new()),
        Ok(b) => {
            match serde_json::from_slice::<Value>(&b).with_context(|| format!("loading config file {}", p.display()))? {
                Value::Object(m) => Ok(m),
                _ => bail!("config file {} is not a JSON object", p.display()),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
        Err(e) => Err(anyhow!("loading config file {}: {e}", p.display())),
    }
}

fn save(m: &Map<String, Value>) -> Result<()> {
    let dir = config_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let p = config_path();
    let tmp = dir.join(format!(".config.json.{}", std::process::id()));
    let mut data = serde_json::to_vec_pretty(&Value::Object(m.clone()))?;
    data.push(b'\n');
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.write_all(&data)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &p).with_context(|| format!("writing {}", p.display()))
}

fn helper_for(m: &Map<String, Value>, key: &str) -> Option<String> {
    m.get("credHelpers")
        .and_then(|h| h.get(key))
        .and_then(Value::as_str)
        .or_else(|| m.get("credsStore").and_then(Value::as_str))
        .filter(|s| !s.is_empty())
        .map(String::from)
}

fn run_helper(helper: &str, action: &str, input: &str) -> Result<String> {
    let bin = format!("docker-credential-{helper}");
    let mut child = Command::new(&bin)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {bin}"))?;
    child.stdin.take().map(|mut s| s.write_all(input.as_bytes())).transpose()?;
    let out = child.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() {
        bail!(
            "{bin} {action}: {}",
            if text.is_empty() { String::from_utf8_lossy(&out.stderr).trim().to_string() } else { text }
        );
    }
    Ok(text)
}

/// The stored `(username, password)` for `key`, if any.
pub fn get(key: &str) -> Result<Option<(String, String)>> {
    let m = load()?;
    if let Some(h) = helper_for(&m, key) {
        return match run_helper(&h, "get", key) {
            Ok(out) => {
                let v: Value = serde_json::from_str(&out)?;
                Ok(Some((
                    v["Username"].as_str().unwrap_or("").to_string(),
                    v["Secret"].as_str().unwrap_or("").to_string(),
                )))
            }
            Err(e) if e.to_string().contains("credentials not found") => Ok(None),
            Err(e) => Err(e),
        };
    }
    let Some(entry) = m.get("auths").and_then(|a| a.get(key)) else { return Ok(None) };
    if let Some(t) = entry.get("identitytoken").and_then(Value::as_str).filter(|t| !t.is_empty()) {
        return Ok(Some(("<token>".into(), t.to_string())));
    }
    let Some(auth) = entry.get("auth").and_then(Value::as_str).filter(|a| !a.is_empty()) else { return Ok(None) };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .with_context(|| format!("invalid auth configuration for {key}"))?;
    let s = String::from_utf8(raw).map_err(|_| anyhow!("invalid auth configuration for {key}"))?;
    let (u, p) = s.split_once(':').ok_or_else(|| anyhow!("invalid auth configuration for {key}"))?;
    Ok(Some((u.to_string(), p.to_string())))
}

/// Stores credentials for `key`; returns where they went (for Docker's warning).
pub fn store(key: &str, user: &str, pass: &str) -> Result<Option<String>> {
    let mut m = load()?;
    if let Some(h) = helper_for(&m, key) {
        run_helper(&h, "store", &json!({ "ServerURL": key, "Username": user, "Secret": pass }).to_string())?;
        let auths = m.entry("auths").or_insert_with(|| json!({}));
        if let Some(a) = auths.as_object_mut() {
            a.insert(key.to_string(), json!({}));
        }
        save(&m)?;
        return Ok(None);
    }
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    let auths = m.entry("auths").or_insert_with(|| json!({}));
    if !auths.is_object() {
        *auths = json!({});
    }
    if let Some(a) = auths.as_object_mut() {
        a.insert(key.to_string(), json!({ "auth": auth }));
    }
    save(&m)?;
    Ok(Some(config_path().display().to_string()))
}

/// Forgets the credentials for `key`; false if there were none.
pub fn erase(key: &str) -> Result<bool> {
    let mut m = load()?;
    let mut found = false;
    if let Some(h) = helper_for(&m, key) {
        found = run_helper(&h, "erase", key).is_ok();
    }
    if let Some(a) = m.get_mut("auths").and_then(Value::as_object_mut) {
        found |= a.remove(key).is_some();
    }
    if found {
        save(&m)?;
    }
    Ok(found)
}

/// The `X-Registry-Auth` header value for a registry domain (empty JSON when there are no
/// credentials, as the docker CLI sends).
pub fn registry_auth_header(domain: &str, key: &str) -> String {
    let creds = get(key).ok().flatten();
    let v = match creds {
        Some((u, p)) if u == "<token>" => json!({ "identitytoken": p, "serveraddress": key }),
        Some((u, p)) => {
            json!({ "username": u, "password": p, "serveraddress": if key.starts_with("https://") { key } else { domain } })
        }
        None => json!({}),
    };
    base64::engine::general_purpose::URL_SAFE.encode(v.to_string())
}

/// The `X-Registry-Config` header a build sends: the credentials of every registry in the
/// config file (`auths` and `credHelpers` keys), by server address, for `FROM` pulls.
pub fn registry_config_header() -> String {
    let m = load().unwrap_or_default();
    let mut keys: Vec<String> =
        m.get("auths").and_then(Value::as_object).map(|a| a.keys().cloned().collect()).unwrap_or_default();
    keys.extend(
        m.get("credHelpers")
            .and_then(Value::as_object)
            .map(|a| a.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default(),
    );
    let mut all = Map::new();
    for key in keys {
        let v = match get(&key).ok().flatten() {
            Some((u, p)) if u == "<token>" => json!({ "identitytoken": p, "serveraddress": key }),
            Some((u, p)) => json!({ "username": u, "password": p, "serveraddress": key }),
            None => continue,
        };
        all.insert(key, v);
    }
    base64::engine::general_purpose::URL_SAFE.encode(Value::Object(all).to_string())
}
