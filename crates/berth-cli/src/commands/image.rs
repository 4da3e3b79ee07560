//! Image commands.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use anyhow::{Result, anyhow, bail};
use clap::Args;
use serde_json::{Value, json};

use berth_api::models::{HistoryItem, ImageDeleteItem, ImageSummary};
use berth_api::progress::JsonMessage;

use super::container::{confirm, created_at, filter_json, write_out};
use super::{Exit, ago, for_each};
use crate::client::{Body, Client, enc, query};
use crate::format::{self, ellipsis};

#[derive(Args, Debug)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Show only images in this repository[:tag]
    pub repository: Option<String>,
}

fn split_tag(t: &str) -> (String, String) {
    match t.rsplit_once(':') {
        Some((r, tag)) if !tag.contains('/') => (r.to_string(), tag.to_string()),
        _ => (t.to_string(), "<none>".to_string()),
    }
}

pub fn images(c: &Client, a: &ImagesArgs) -> Exit {
    let mut filters = a.filter.clone();
    if let Some(r) = &a.repository {
        filters.push(format!("reference={r}"));
    }
    let q = query(&[("all", if a.all { "1".into() } else { String::new() }), ("filters", filter_json(&filters)?)]);
    let list: Vec<ImageSummary> = c.get_json(&format!("/images/json{q}"))?;
    let id = |s: &str| if a.no_trunc { s.to_string() } else { berth_api::ids::short_id(s).to_string() };
    if a.quiet {
        let mut seen = std::collections::BTreeSet::new();
        for i in &list {
            let v = id(&i.id);
            if seen.insert(v.clone()) {
                println!("{v}");
            }
        }
        return Ok(0);
    }
    let mut rows = Vec::new();
    for i in &list {
        let digest = i
            .repo_digests
            .first()
            .and_then(|d| d.split_once('@').map(|(_, d)| d.to_string()))
            .unwrap_or_else(|| "<none>".into());
        let tags: Vec<(String, String)> = if i.repo_tags.is_empty() && !i.repo_digests.is_empty() {
            // Pulled by digest only: the repository is known, the tag is not (as docker shows it).
            i.repo_digests
                .iter()
                .map(|d| (d.split_once('@').map(|(r, _)| r).unwrap_or(d).to_string(), "<none>".to_string()))
                .collect()
        } else if i.repo_tags.is_empty() {
            vec![("<none>".into(), "<none>".into())]
        } else {
            i.repo_tags.iter().map(|t| split_tag(t)).collect()
        };
        for (repo, tag) in tags {
            rows.push(json!({
                "ID": id(&i.id),
                "Repository": repo,
                "Tag": tag,
                "Digest": digest,
                "CreatedSince": ago(i.created),
                "CreatedAt": created_at(i.created),
                "Size": berth_api::units::human_size(i.size),
                "VirtualSize": berth_api::units::human_size(i.virtual_size),
                "SharedSize": if i.shared_size >= 0 { berth_api::units::human_size(i.shared_size) } else { "N/A".into() },
                "UniqueSize": "N/A",
                "Containers": if i.containers >= 0 { i.containers.to_string() } else { "N/A".into() },
                "LabelsMap": i.labels,
            }));
        }
    }
    let default = if a.digests {
        "{{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    } else {
        "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    };
    let headers: BTreeMap<&str, &str> = [
        ("ID", "IMAGE ID"),
        ("Repository", "REPOSITORY"),
        ("Tag", "TAG"),
        ("Digest", "DIGEST"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("Size", "SIZE"),
        ("VirtualSize", "VIRTUAL SIZE"),
        ("SharedSize", "SHARED SIZE"),
        ("UniqueSize", "UNIQUE SIZE"),
        ("Containers", "CONTAINERS"),
    ]
    .into_iter()
    .collect();
    print!(
        "{}",
        format::render(&format::parse(a.format.as_deref().unwrap_or("")), &rows, default, &headers)
            .map_err(|e| anyhow!(e))?
    );
    Ok(0)
}

/// Prints a progress stream; fails with the stream's error message, if any.
pub fn progress(r: crate::client::Response, quiet: bool, mut on_status: impl FnMut(&JsonMessage)) -> Result<()> {
    let mut err = None;
    r.each_line(|l| {
        let m: JsonMessage = match serde_json::from_slice(l) {
            Ok(m) => m,
            Err(_) => return Ok(true),
        };
        if let Some(e) = m.error_detail.as_ref().map(|d| d.message.clone()).or(m.error.clone()) {
            err = Some(e);
            return Ok(false);
        }
        on_status(&m);
        if !quiet {
            if let Some(s) = &m.stream {
                print!("{s}");
                // `print!` has written it (it panics if it cannot); a flush error only delays it.
                let _ = std::io::stdout().flush();
            } else if let Some(s) = &m.status {
                match &m.id {
                    Some(id) => println!("{id}: {s}"),
                    None => println!("{s}"),
                }
            }
        }
        Ok(true)
    })?;
    match err {
        Some(e) => bail!("{e}"),
        None => Ok(()),
    }
}

/// Pulls an image, as `run` does when the image is missing.
pub fn pull_quiet(c: &Client, image: &str, quiet: bool) -> Result<()> {
    let (name, tag) = match image.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n.to_string(), t.to_string()),
        _ => (image.to_string(), if image.contains('@') { String::new() } else { "latest".into() }),
    };
    let q = query(&[("fromImage", name), ("tag", tag)]);
    let r =
        c.request("POST", &format!("/images/create{q}"), &[super::distribution::auth_header_for(image)], Body::None)?;
    progress(r, quiet, |_| {})
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long)]
    pub change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// A file, an http(s) URL, or - for stdin
    pub source: String,
    pub repository: Option<String>,
}

pub fn import(c: &Client, a: &ImportArgs) -> Exit {
    let mut q = query(&[
        (
            "fromSrc",
            if a.source.starts_with("http://") || a.source.starts_with("https://") {
                a.source.clone()
            } else {
                "-".into()
            },
        ),
        ("repo", a.repository.clone().unwrap_or_default()),
        ("message", a.message.clone().unwrap_or_default()),
    ]);
    for ch in &a.change {
        q.push_str(&format!("&changes={}", enc(ch)));
    }
    let path = format!("/images/create{q}");
    let r = if a.source.starts_with("http://") || a.source.starts_with("https://") {
        // The daemon fetches it: no body.
        c.request("POST", &path, &[], Body::None)?
    } else {
        let mut input: Box<dyn Read> = if a.source == "-" {
            Box::new(std::io::stdin())
        } else {
            Box::new(std::fs::File::open(&a.source).map_err(|e| anyhow!("open {}: {e}", a.source))?)
        };
        c.request("POST", &path, &[], Body::Stream(&mut input, "text/plain"))?
    };
    let mut id = String::new();
    progress(r, true, |m| {
        if let Some(s) = &m.status {
            id = s.clone();
        }
    })?;
    println!("{id}");
    Ok(0)
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set)]
    pub human: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    pub image: String,
}

pub fn history(c: &Client, a: &HistoryArgs) -> Exit {
    let h: Vec<HistoryItem> = c.get_json(&format!("/images/{}/history", a.image))?;
    let id = |s: &str| {
        if s.starts_with("sha256:") && !a.no_trunc { berth_api::ids::short_id(s).to_string() } else { s.to_string() }
    };
    if a.quiet {
        for r in &h {
            println!("{}", id(&r.id));
        }
        return Ok(0);
    }
    let rows: Vec<Value> = h
        .iter()
        .map(|r| {
            let by = r.created_by.replace('\t', " ");
            json!({
                "ID": id(&r.id),
                "CreatedSince": if a.human { ago(r.created) } else { created_at(r.created) },
                "CreatedAt": created_at(r.created),
                "CreatedBy": if a.no_trunc { by } else { ellipsis(&by, 45) },
                "Size": if a.human { berth_api::units::human_size(r.size) } else { r.size.to_string() },
                "Comment": r.comment,
            })
        })
        .collect();
    let headers: BTreeMap<&str, &str> = [
        ("ID", "IMAGE"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("CreatedBy", "CREATED BY"),
        ("Size", "SIZE"),
        ("Comment", "COMMENT"),
    ]
    .into_iter()
    .collect();
    let default = "{{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";
    print!(
        "{}",
        format::render(&format::parse(a.format.as_deref().unwrap_or("")), &rows, default, &headers)
            .map_err(|e| anyhow!(e))?
    );
    Ok(0)
}

#[derive(Args, Debug)]
pub struct TagArgs {
    pub source: String,
    pub target: String,
}

pub fn tag(c: &Client, a: &TagArgs) -> Exit {
    let (repo, tag) = match a.target.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r.to_string(), t.to_string()),
        _ => (a.target.clone(), String::new()),
    };
    c.post(&format!("/images/{}/tag{}", a.source, query(&[("repo", repo), ("tag", tag)])))?;
    Ok(0)
}

#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Do not delete untagged parents
    #[arg(long = "no-prune")]
    pub no_prune: bool,
    #[arg(required = true)]
    pub images: Vec<String>,
}

pub fn rmi(c: &Client, a: &RmiArgs) -> Exit {
    let q = query(&[
        ("force", if a.force { "1".into() } else { String::new() }),
        ("noprune", if a.no_prune { "1".into() } else { String::new() }),
    ]);
    for_each(&a.images, |n| {
        let items: Vec<ImageDeleteItem> = c.delete(&format!("/images/{n}{q}"))?.json()?;
        for i in items {
            if let Some(u) = i.untagged {
                println!("Untagged: {u}");
            }
            if let Some(d) = i.deleted {
                println!("Deleted: {d}");
            }
        }
        Ok(())
    })
}

#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    #[arg(required = true)]
    pub images: Vec<String>,
}

pub fn save(c: &Client, a: &SaveArgs) -> Exit {
    let q: Vec<String> = a.images.iter().map(|n| format!("names={}", enc(n))).collect();
    let r = c.get(&format!("/images/get?{}", q.join("&")))?;
    write_out(r.into_reader(), a.output.as_deref(), "save")
}

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short = 'i', long)]
    pub input: Option<String>,
    /// Suppress the load output
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

pub fn load(c: &Client, a: &LoadArgs) -> Exit {
    let mut input: Box<dyn Read> = match &a.input {
        Some(p) => Box::new(std::fs::File::open(p).map_err(|e| anyhow!("open {p}: {e}"))?),
        None => {
            if crate::tty::stdin_is_tty() {
                bail!("requested load from stdin, but stdin is empty");
            }
            Box::new(std::io::stdin())
        }
    };
    let q = if a.quiet { "?quiet=1" } else { "" };
    let r = c.request("POST", &format!("/images/load{q}"), &[], Body::Stream(&mut input, "application/x-tar"))?;
    progress(r, false, |_| {})?;
    Ok(0)
}

#[derive(Args, Debug)]
pub struct ImagePruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long)]
    pub filter: Vec<String>,
}

pub fn prune(c: &Client, a: &ImagePruneArgs) -> Exit {
    let warn = if a.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !a.force && !confirm(&format!("{warn}\nAre you sure you want to continue?")) {
        return Ok(0);
    }
    let freed = prune_images(c, a.all, &a.filter)?;
    println!("Total reclaimed space: {}", berth_api::units::human_size(freed));
    Ok(0)
}

/// `POST /images/prune` (dangling images, or with `all` every unused one), printing Docker's
/// "Deleted Images:" section; returns the bytes freed. `image prune` and `system prune` use it.
pub fn prune_images(c: &Client, all: bool, filter: &[String]) -> Result<i64> {
    let mut filters = filter.to_vec();
    if all {
        filters.push("dangling=false".into());
    }
    let v: Value = c.post(&format!("/images/prune{}", query(&[("filters", filter_json(&filters)?)])))?.json()?;
    if let Some(items) = v["ImagesDeleted"].as_array().filter(|a| !a.is_empty()) {
        println!("Deleted Images:");
        for i in items {
            if let Some(u) = i["Untagged"].as_str() {
                println!("untagged: {u}");
            }
            if let Some(d) = i["Deleted"].as_str() {
                println!("deleted: {d}");
            }
        }
        println!();
    }
    Ok(v["SpaceReclaimed"].as_i64().unwrap_or(0))
}
