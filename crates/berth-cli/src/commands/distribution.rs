//! Registry commands: `pull`, `push`, `login`, `logout`, `search`.
//!
//! Credentials come from (and `login` writes them to) Docker's client configuration (see
//! [`crate::credentials`]) and travel to the daemon in `X-Registry-Auth`, as the docker CLI
//! sends them. Progress is drawn like the docker CLI draws it: one line per layer, updated
//! in place on a terminal; on anything else only the status changes are printed.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use anyhow::{Result, anyhow, bail};
use clap::Args;
use serde_json::{Value, json};

use berth_api::progress::JsonMessage;

use super::Exit;
use crate::client::{Client, query};
use crate::credentials;
use crate::format;

const HUB: &str = "docker.io";
const HUB_KEY: &str = "https://index.docker.io/v1/";

/// `(domain, path)` of an image name, Docker's way (`busybox` → `docker.io`, `library/busybox`).
fn split_name(name: &str) -> (String, String) {
    match name.split_once('/') {
        Some((first, rest)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            let d = if first == "index.docker.io" { HUB.to_string() } else { first.to_string() };
            (d, rest.to_string())
        }
        _ => (HUB.to_string(), if name.contains('/') { name.to_string() } else { format!("library/{name}") }),
    }
}

/// `name` without its tag or digest, and the tag or digest (`None` if neither).
fn split_tag(name: &str) -> (String, Option<String>) {
    if let Some((n, d)) = name.split_once('@') {
        return (n.to_string(), Some(d.to_string()));
    }
    let last_slash = name.rfind('/').map(|i| i + 1).unwrap_or(0);
    match name[last_slash..].rfind(':') {
        Some(i) => (name[..last_slash + i].to_string(), Some(name[last_slash + i + 1..].to_string())),
        None => (name.to_string(), None),
    }
}

fn cred_key(domain: &str) -> String {
    if domain == HUB { HUB_KEY.to_string() } else { domain.to_string() }
}

/// The `X-Registry-Auth` header for the registry of image `name`.
pub fn auth_header_for(name: &str) -> (&'static str, String) {
    let (domain, _) = split_name(&split_tag(name).0);
    ("X-Registry-Auth", credentials::registry_auth_header(&domain, &cred_key(&domain)))
}

/// Draws a progress stream; fails with its error message, if any.
pub fn show_progress(r: crate::client::Response, quiet: bool) -> Result<()> {
    let tty = crate::tty::stdout_is_tty() && !quiet;
    let mut ids: Vec<String> = Vec::new();
    let mut err = None;
    let mut out = std::io::stdout();
    r.each_line(|l| {
        let Ok(m) = serde_json::from_slice::<JsonMessage>(l) else { return Ok(true) };
        if let Some(e) = m.error_detail.as_ref().map(|d| d.message.clone()).or(m.error.clone()) {
            err = Some(e);
            return Ok(false);
        }
        if quiet {
            return Ok(true);
        }
        let Some(status) = m.status.as_deref() else { return Ok(true) };
        let bar = m.progress.as_deref().unwrap_or("");
        // Progress lines: a closed output (piped into `head`, say) does not stop the pull or
        // push, so their write errors are dropped here and below.
        match (&m.id, tty) {
            (Some(id), true) => {
                let text = if bar.is_empty() { format!("{id}: {status}") } else { format!("{id}: {status} {bar}") };
                match ids.iter().position(|x| x == id) {
                    Some(pos) => {
                        let up = ids.len() - pos;
                        let _ = write!(out, "\x1b[{up}A\r\x1b[2K{text}\x1b[{up}B\r");
                    }
                    None => {
                        ids.push(id.clone());
                        let _ = writeln!(out, "{text}");
                    }
                }
            }
            (Some(id), false) => {
                if bar.is_empty() {
                    let _ = writeln!(out, "{id}: {status}");
                }
            }
            (None, _) => {
                ids.clear();
                let _ = writeln!(out, "{status}");
            }
        }
        let _ = out.flush();
        Ok(true)
    })?;
    match err {
        Some(e) => bail!("{e}"),
        None => Ok(()),
    }
}

#[derive(Args, Debug)]
pub struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Skip image verification (accepted for compatibility)
    #[arg(long = "disable-content-trust", default_value_t = true)]
    pub disable_content_trust: bool,
    pub name: String,
}

/// Pulls `name` (`latest` when it has no tag), as `pull` and `run` do.
pub fn pull_image(c: &Client, name: &str, all_tags: bool, platform: Option<&str>, quiet: bool) -> Result<()> {
    let (repo, tag) = split_tag(name);
    if all_tags && tag.is_some() {
        bail!("tag can't be used with --all-tags/-a");
    }
    let tag = match tag {
        Some(t) => t,
        None if all_tags => String::new(),
        None => {
            if !quiet {
                println!("Using default tag: latest");
            }
            "latest".into()
        }
    };
    let (domain, path) = split_name(&repo);
    let full_repo = format!("{domain}/{path}");
    let q = query(&[
        ("fromImage", full_repo.clone()),
        ("tag", tag.clone()),
        ("platform", platform.unwrap_or("").to_string()),
    ]);
    let r = c.request("POST", &format!("/images/create{q}"), &[auth_header_for(name)], crate::client::Body::None)?;
    show_progress(r, quiet)?;
    let shown = if tag.is_empty() {
        full_repo
    } else if tag.starts_with("sha256:") {
        format!("{full_repo}@{tag}")
    } else {
        format!("{full_repo}:{tag}")
    };
    println!("{shown}");
    Ok(())
}

pub fn pull(c: &Client, a: &PullArgs) -> Exit {
    pull_image(c, &a.name, a.all_tags, a.platform.as_deref(), a.quiet)?;
    Ok(0)
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// Push all tags of an image to the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Skip image signing (accepted for compatibility)
    #[arg(long = "disable-content-trust", default_value_t = true)]
    pub disable_content_trust: bool,
    pub name: String,
}

pub fn push(c: &Client, a: &PushArgs) -> Exit {
    let (repo, tag) = split_tag(&a.name);
    if tag.as_deref().is_some_and(|t| t.starts_with("sha256:")) {
        bail!("invalid reference format: cannot push a digest reference");
    }
    if a.all_tags && tag.is_some() {
        bail!("tag can't be used with --all-tags/-a");
    }
    let tag = match tag {
        Some(t) => t,
        None if a.all_tags => String::new(),
        None => {
            if !a.quiet {
                println!("Using default tag: latest");
            }
            "latest".into()
        }
    };
    let q = query(&[("tag", tag.clone())]);
    let r =
        c.request("POST", &format!("/images/{repo}/push{q}"), &[auth_header_for(&a.name)], crate::client::Body::None)?;
    show_progress(r, a.quiet)?;
    if a.quiet {
        println!("{}", if tag.is_empty() { repo } else { format!("{repo}:{tag}") });
    }
    Ok(0)
}

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Username
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Password
    #[arg(short = 'p', long)]
    pub password: Option<String>,
    /// Take the password from stdin
    #[arg(long = "password-stdin")]
    pub password_stdin: bool,
    /// The registry (default Docker Hub)
    pub server: Option<String>,
}

/// `https://index.docker.io/v1/`, `http://h:5000/` → `(domain, config key)`.
fn server_of(server: Option<&str>) -> (String, String) {
    let s = server.unwrap_or("").trim();
    let s = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://")).unwrap_or(s);
    let host = s.split('/').next().unwrap_or("");
    let domain = match host {
        "" | "docker.io" | "index.docker.io" | "registry-1.docker.io" => HUB.to_string(),
        h => h.to_string(),
    };
    let key = cred_key(&domain);
    (domain, key)
}

fn prompt(label: &str, hide: bool) -> Result<String> {
    eprint!("{label}");
    // An unshown prompt still reads the answer.
    let _ = std::io::stderr().flush();
    let stdin = std::io::stdin();
    let raw = hide.then(crate::tty::RawMode::enable);
    let mut line = String::new();
    if hide {
        // Raw mode: read byte by byte without echo until Enter.
        use std::io::Read;
        let mut b = [0u8; 1];
        while stdin.lock().read(&mut b)? == 1 && b[0] != b'\r' && b[0] != b'\n' {
            if b[0] == 3 {
                drop(raw);
                bail!("interrupted");
            }
            line.push(b[0] as char);
        }
        drop(raw);
        eprintln!();
    } else {
        stdin.lock().read_line(&mut line)?;
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

pub fn login(c: &Client, a: &LoginArgs) -> Exit {
    let (domain, key) = server_of(a.server.as_deref());
    if a.password.is_some() && a.password_stdin {
        bail!("--password and --password-stdin are mutually exclusive");
    }
    let mut password = a.password.clone();
    if password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    if a.password_stdin {
        if a.username.is_none() {
            bail!("Must provide --username with --password-stdin");
        }
        let mut s = String::new();
        std::io::stdin().read_line(&mut s)?;
        password = Some(s.trim_end_matches(['\r', '\n']).to_string());
    }
    let stored = credentials::get(&key).ok().flatten();
    let username = match a.username.clone() {
        Some(u) => u,
        None if password.is_none() && stored.is_some() && !crate::tty::stdin_is_tty() => {
            stored.as_ref().map(|s| s.0.clone()).unwrap_or_default()
        }
        None => {
            if !crate::tty::stdin_is_tty() {
                bail!("Error: Cannot perform an interactive login from a non TTY device");
            }
            prompt("Username: ", false)?
        }
    };
    let password = match password {
        Some(p) => p,
        None if stored.as_ref().is_some_and(|s| s.0 == username) && !crate::tty::stdin_is_tty() => {
            stored.map(|s| s.1).unwrap_or_default()
        }
        None => {
            if !crate::tty::stdin_is_tty() {
                bail!("Error: Cannot perform an interactive login from a non TTY device");
            }
            prompt("Password: ", true)?
        }
    };
    if username.is_empty() {
        bail!("Error: Non-null Username Required");
    }
    let server_address = if domain == HUB { HUB_KEY.to_string() } else { domain.clone() };
    let body = json!({ "username": username, "password": password, "serveraddress": server_address });
    let v: Value = c.post_json("/auth", &body)?.json()?;
    let status = v["Status"].as_str().unwrap_or("Login Succeeded").to_string();
    if let Some(path) = credentials::store(&key, &username, &password)? {
        eprintln!(
            "WARNING! Your credentials are stored unencrypted in '{path}'.\nConfigure a credential helper to remove this warning. See\nhttps://docs.docker.com/go/credential-store/\n"
        );
    }
    println!("{status}");
    Ok(0)
}

#[derive(Args, Debug)]
pub struct LogoutArgs {
    /// The registry (default Docker Hub)
    pub server: Option<String>,
}

pub fn logout(_c: &Client, a: &LogoutArgs) -> Exit {
    let (_, key) = server_of(a.server.as_deref());
    if credentials::erase(&key)? {
        println!("Removing login credentials for {key}");
    } else {
        println!("Not logged in to {key}");
    }
    Ok(0)
}

#[derive(Args, Debug)]
pub struct SearchArgs {
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Pretty-print search using a Go template
    #[arg(long)]
    pub format: Option<String>,
    /// Max number of search results
    #[arg(long, default_value_t = 0)]
    pub limit: usize,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    pub term: String,
}

pub fn search(c: &Client, a: &SearchArgs) -> Exit {
    let filters = super::container::filter_json(&a.filter)?;
    let limit = if a.limit == 0 { String::new() } else { a.limit.to_string() };
    let q = query(&[("term", a.term.clone()), ("limit", limit), ("filters", filters)]);
    let results: Vec<Value> = c
        .request("GET", &format!("/images/search{q}"), &[auth_header_for(&a.term)], crate::client::Body::None)?
        .json()?;
    let rows: Vec<Value> = results
        .iter()
        .map(|r| {
            let desc = r["description"].as_str().unwrap_or("").replace('\n', " ");
            json!({
                "Name": r["name"],
                "Description": if a.no_trunc { desc } else { format::ellipsis(&desc, 45) },
                "StarCount": r["star_count"].as_i64().unwrap_or(0).to_string(),
                "IsOfficial": if r["is_official"].as_bool().unwrap_or(false) { "[OK]" } else { "" },
                "IsAutomated": if r["is_automated"].as_bool().unwrap_or(false) { "[OK]" } else { "" },
            })
        })
        .collect();
    let headers: BTreeMap<&str, &str> = [
        ("Name", "NAME"),
        ("Description", "DESCRIPTION"),
        ("StarCount", "STARS"),
        ("IsOfficial", "OFFICIAL"),
        ("IsAutomated", "AUTOMATED"),
    ]
    .into_iter()
    .collect();
    let default = "{{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}";
    print!(
        "{}",
        format::render(&format::parse(a.format.as_deref().unwrap_or("")), &rows, default, &headers)
            .map_err(|e| anyhow!(e))?
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(split_name("busybox"), ("docker.io".into(), "library/busybox".into()));
        assert_eq!(split_name("127.0.0.1:5000/a/b"), ("127.0.0.1:5000".into(), "a/b".into()));
        assert_eq!(split_tag("127.0.0.1:5000/a:v1"), ("127.0.0.1:5000/a".into(), Some("v1".into())));
        assert_eq!(split_tag("127.0.0.1:5000/a"), ("127.0.0.1:5000/a".into(), None));
        assert_eq!(split_tag("a@sha256:00"), ("a".into(), Some("sha256:00".into())));
        assert_eq!(server_of(Some("http://127.0.0.1:5000/")), ("127.0.0.1:5000".into(), "127.0.0.1:5000".into()));
        assert_eq!(server_of(None).1, HUB_KEY);
    }
}
