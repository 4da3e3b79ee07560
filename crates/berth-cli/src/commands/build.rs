//! `build` and `builder prune`.
//!
//! On a terminal the output is compact (`build_progress`); elsewhere it is the daemon's
//! stream as is. A directory context is kept in sync on a berth daemon (only what changed is sent, see
//! `context_sync`); any other daemon, or a context on stdin, gets it as a tar, as the
//! docker CLI sends it. `.dockerignore` is applied here (the daemon applies it again). A
//! Dockerfile outside the context (or `-f -`) travels in it under a name made from its text.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use clap::Args;
use sha2::Digest as _;

use berth_api::models::build::SecretValues;
use berth_api::progress::JsonMessage;
use berth_archive::walk::{WalkOptions, write_tree};
use berth_dockerfile::Ignore;

use super::Exit;
use crate::client::{Body, Client, query};
use crate::context_sync::{LocalContext, sync_build};

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Name and optionally a tag in the "name:tag" format
    #[arg(short = 't', long = "tag")]
    pub tags: Vec<String>,
    /// Name of the Dockerfile (default: "PATH/Dockerfile"; "-" reads it from stdin)
    #[arg(short = 'f', long = "file")]
    pub file: Option<String>,
    /// Set build-time variables
    #[arg(long = "build-arg")]
    pub build_args: Vec<String>,
    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Set the target build stage to build
    #[arg(long)]
    pub target: Option<String>,
    /// Set metadata for an image
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Suppress the build output and print image ID on success
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Write the image ID to the file
    #[arg(long)]
    pub iidfile: Option<String>,
    /// Set the networking mode for the RUN instructions during build
    #[arg(long)]
    pub network: Option<String>,
    /// Add a custom host-to-IP mapping ("host:ip")
    #[arg(long = "add-host")]
    pub add_hosts: Vec<String>,
    /// Images to consider as cache sources
    #[arg(long = "cache-from")]
    pub cache_from: Vec<String>,
    /// Show each step's cache key and what went into it
    #[arg(long = "debug-cache-key")]
    pub debug_cache_key: bool,
    /// Always attempt to pull a newer version of the image
    #[arg(long)]
    pub pull: bool,
    /// Remove intermediate containers after a successful build (always done)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub rm: bool,
    /// Always remove intermediate containers (always done)
    #[arg(long = "force-rm")]
    pub force_rm: bool,
    /// Secret to expose to the build (format: "id=mysecret[,src=/local/secret]" or
    /// "id=mysecret,env=VAR"); RUN --mount=type=secret mounts it
    #[arg(long = "secret")]
    pub secrets: Vec<String>,
    /// SSH agent socket to expose to the build (format: "default|<id>[=<socket>]"; a bare
    /// id takes $SSH_AUTH_SOCK); RUN --mount=type=ssh mounts it. The daemon must be on
    /// this host
    #[arg(long = "ssh")]
    pub ssh: Vec<String>,
    /// Set platform if server is multi-platform capable (berth builds for its host's only)
    #[arg(long)]
    pub platform: Option<String>,
    /// Run the build checks (the Dockerfile's lint rules) instead of building; exits 1 when
    /// a check finds something
    #[arg(long)]
    pub check: bool,
    /// Build context: a directory, or "-" for a tar or a Dockerfile on stdin
    pub context: String,
}

#[derive(Args, Debug)]
pub struct BuilderPruneArgs {
    /// Remove all unused build cache, not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

fn is_tar(head: &[u8]) -> bool {
    berth_archive::compress::Compression::detect(head) != berth_archive::compress::Compression::None
        || (head.len() >= 262 && &head[257..262] == b"ustar")
}

/// What to leave out of the context for `.dockerignore`: whole directories where nothing
/// below can come back, else single files.
fn excluded(root: &Path, rel: &str, ignore: &Ignore, keep: &[&str], out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(root.join(rel)) else { return };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let child = if rel.is_empty() { name } else { format!("{rel}/{name}") };
        let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
        let ex = ignore.matches(&child) && !keep.contains(&child.as_str());
        if is_dir {
            if ex && !ignore.may_match_below(&child) && !keep.iter().any(|k| k.starts_with(&format!("{child}/"))) {
                out.push(child);
            } else {
                excluded(root, &child, ignore, keep, out);
            }
        } else if ex {
            out.push(child);
        }
    }
}

/// What `build` sends: a tar it already has (stdin), or a directory.
enum Prepared {
    Tar(Box<dyn Read + Send>),
    Dir(LocalContext),
    /// A URL the daemon fetches the context from (`remote=`).
    Remote(String),
}

/// What the docker CLI sends as a remote context rather than a path.
fn is_remote(context: &str) -> bool {
    ["http://", "https://", "git://", "git@", "github.com/"].iter().any(|p| context.starts_with(p))
}

/// Reads the context argument (and `-f`): the context and the Dockerfile's name in it.
fn prepare_context(a: &BuildArgs) -> Result<(Prepared, String)> {
    let mut stdin_df = None;
    if a.file.as_deref() == Some("-") {
        let mut s = Vec::new();
        std::io::stdin().read_to_end(&mut s)?;
        stdin_df = Some(s);
    }
    if a.context == "-" {
        if stdin_df.is_some() {
            bail!("invalid argument: can't use stdin for both build context and dockerfile");
        }
        let mut data = Vec::new();
        std::io::stdin().read_to_end(&mut data)?;
        if is_tar(&data[..data.len().min(512)]) {
            let name = a.file.clone().unwrap_or_else(|| "Dockerfile".into());
            return Ok((Prepared::Tar(Box::new(std::io::Cursor::new(data))), name));
        }
        return Ok((
            Prepared::Tar(Box::new(std::io::Cursor::new(berth_archive::writer::single_file(
                "Dockerfile",
                &data,
                true,
            )))),
            "Dockerfile".into(),
        ));
    }
    if is_remote(&a.context) {
        if stdin_df.is_some() {
            bail!("invalid argument: can't use stdin for the dockerfile of a remote build context");
        }
        return Ok((Prepared::Remote(a.context.clone()), a.file.clone().unwrap_or_else(|| "Dockerfile".into())));
    }
    let root = PathBuf::from(&a.context);
    let meta = std::fs::metadata(&root)
        .map_err(|e| anyhow!("unable to prepare context: path {:?} not found: {e}", a.context))?;
    if !meta.is_dir() {
        bail!("unable to prepare context: context must be a directory: {}", a.context);
    }
    let root_abs = std::fs::canonicalize(&root)?;
    // Where the Dockerfile is: in the context (sent as is) or outside (added under a name
    // derived from its text, so an unchanged one does not look new to a synced context).
    let outside = |data: Vec<u8>| {
        let name = format!(".dockerfile.{}", &hex::encode(sha2::Sha256::digest(&data))[..20]);
        (name, Some(data))
    };
    let (df_name, extra): (String, Option<Vec<u8>>) = match (&a.file, stdin_df) {
        (_, Some(data)) => outside(data),
        (None, None) => ("Dockerfile".into(), None),
        (Some(f), None) => {
            let p = std::fs::canonicalize(f).map_err(|e| {
                anyhow!("unable to prepare context: unable to evaluate symlinks in Dockerfile path: {e}")
            })?;
            match p.strip_prefix(&root_abs) {
                Ok(rel) => (rel.to_string_lossy().into_owned(), None),
                Err(_) => outside(std::fs::read(&p).with_context(|| format!("reading {f}"))?),
            }
        }
    };
    let ignore_text = std::fs::read_to_string(root.join(".dockerignore")).unwrap_or_default();
    let mut exclude = Vec::new();
    if !ignore_text.trim().is_empty() {
        let ignore = Ignore::parse(&ignore_text);
        excluded(&root, "", &ignore, &[df_name.as_str(), ".dockerignore"], &mut exclude);
    }
    let extra = extra.map(|d| (df_name.clone(), d));
    Ok((Prepared::Dir(LocalContext { root, exclude, extra }), df_name))
}

/// A directory context as a tar stream, read from a pipe fed by a thread.
fn tar_stream(ctx: LocalContext) -> Result<Box<dyn Read + Send>> {
    let dir = std::fs::File::open(&ctx.root).with_context(|| format!("opening {}", ctx.root.display()))?;
    // A file that cannot be read fails the build (the upload ends with the error) rather
    // than leaving it out of the context.
    let reader = crate::piped::spawn(move |mut writer| {
        let opts = WalkOptions { exclude: ctx.exclude, no_trailer: true, ..Default::default() };
        write_tree(dir.as_fd(), "", &mut writer, opts).map_err(std::io::Error::other)?;
        if let Some((name, data)) = ctx.extra {
            writer.write_all(&berth_archive::writer::single_file(&name, &data, false))?;
        }
        writer.write_all(&berth_archive::writer::trailer())
    })?;
    Ok(Box::new(reader))
}

fn pairs(items: &[String], what: &str) -> Result<BTreeMap<String, Option<String>>> {
    let mut m = BTreeMap::new();
    for it in items {
        match it.split_once('=') {
            Some((k, v)) => m.insert(k.to_string(), Some(v.to_string())),
            // `--build-arg NAME` takes the value from the environment, or leaves it unset.
            None if what == "build-arg" => m.insert(it.clone(), std::env::var(it).ok()),
            None => m.insert(it.clone(), Some(String::new())),
        };
    }
    Ok(m)
}

/// Reads `--secret` values as buildx does: `id=` names the secret; its value is the file
/// `src=` (or `source=`), or the variable `env=`; with neither, the variable named like
/// the id, else the file named like it.
fn read_secrets(specs: &[String]) -> Result<SecretValues> {
    let mut out = SecretValues::default();
    for spec in specs {
        let (mut id, mut src, mut env, mut kind) = (None, None, None, None);
        for field in spec.split(',') {
            match field.split_once('=') {
                Some(("id", v)) => id = Some(v.to_string()),
                Some(("src" | "source", v)) => src = Some(v.to_string()),
                Some(("env", v)) => env = Some(v.to_string()),
                Some(("type", v)) => kind = Some(v.to_string()),
                _ => bail!("invalid --secret {spec:?}: unexpected {field:?} (use id=ID,src=FILE or id=ID,env=VAR)"),
            }
        }
        let Some(id) = id.filter(|i| !i.is_empty()) else { bail!("invalid --secret {spec:?}: id= is required") };
        let from_file = |path: &str| std::fs::read(path).with_context(|| format!("--secret id={id}: reading {path}"));
        let from_env = |var: &str| {
            std::env::var_os(var)
                .map(|v| v.into_encoded_bytes())
                .ok_or_else(|| anyhow!("--secret id={id}: environment variable {var} is not set"))
        };
        let value = match (kind.as_deref(), src, env) {
            (Some("env"), s, e) => from_env(&e.or(s).unwrap_or_else(|| id.clone()))?,
            (Some("file") | None, Some(s), _) => from_file(&s)?,
            (None, None, Some(e)) => from_env(&e)?,
            (Some("file"), None, _) => from_file(&id)?,
            (None, None, None) => match std::env::var_os(&id) {
                Some(v) => v.into_encoded_bytes(),
                None => from_file(&id)?,
            },
            (Some(other), _, _) => bail!("invalid --secret {spec:?}: unsupported type {other:?} (file or env)"),
        };
        out.0.insert(id, hex::encode(value));
    }
    Ok(out)
}

/// Reads `--ssh` values: `id[=socket]`, the socket defaulting to `$SSH_AUTH_SOCK`, made
/// absolute (the daemon, on this host, mounts it).
fn read_ssh(specs: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for spec in specs {
        let (id, path) = match spec.split_once('=') {
            Some((id, p)) => (id.to_string(), p.to_string()),
            None => {
                let sock = std::env::var("SSH_AUTH_SOCK")
                    .map_err(|_| anyhow!("invalid --ssh {spec:?}: SSH_AUTH_SOCK is not set, give {spec}=SOCKET"))?;
                (spec.clone(), sock)
            }
        };
        if path.contains(',') {
            bail!("invalid --ssh {spec:?}: berth forwards agent sockets, not key files");
        }
        let abs = std::path::absolute(&path).with_context(|| format!("--ssh {spec}"))?;
        out.insert(id, abs.display().to_string());
    }
    Ok(out)
}

pub fn build(c: &Client, a: &BuildArgs) -> Exit {
    let secrets = read_secrets(&a.secrets)?;
    let ssh = read_ssh(&a.ssh)?;
    let (prepared, df_name) = prepare_context(a)?;
    if (!secrets.is_empty() || !ssh.is_empty()) && !matches!(prepared, Prepared::Dir(_)) {
        bail!("--secret and --ssh need a context directory: they travel with berth's synced build context");
    }
    let labels: BTreeMap<String, String> =
        pairs(&a.labels, "label")?.into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect();
    let mut q: Vec<(&str, String)> = a.tags.iter().map(|t| ("t", t.clone())).collect();
    q.push(("dockerfile", df_name));
    if !a.build_args.is_empty() {
        q.push(("buildargs", serde_json::to_string(&pairs(&a.build_args, "build-arg")?)?));
    }
    if !labels.is_empty() {
        q.push(("labels", serde_json::to_string(&labels)?));
    }
    if a.no_cache {
        q.push(("nocache", "1".into()));
    }
    if a.debug_cache_key {
        q.push(("debugcachekey", "1".into()));
    }
    if !a.cache_from.is_empty() {
        q.push(("cachefrom", serde_json::to_string(&a.cache_from)?));
    }
    if let Some(t) = &a.target {
        q.push(("target", t.clone()));
    }
    if let Some(p) = &a.platform {
        q.push(("platform", p.clone()));
    }
    if a.quiet {
        q.push(("q", "1".into()));
    }
    if a.pull {
        q.push(("pull", "1".into()));
    }
    if let Some(n) = &a.network {
        q.push(("networkmode", n.clone()));
    }
    if !a.add_hosts.is_empty() {
        q.push(("extrahosts", a.add_hosts.join(",")));
    }
    q.push(("rm", "1".into()));
    if a.check {
        q.push(("check", "1".into()));
    }
    if let Prepared::Remote(url) = &prepared {
        q.push(("remote", url.clone()));
    }
    let path = format!("/build{}", query(&q));
    let auth = [("X-Registry-Config", crate::credentials::registry_config_header())];
    let r = match prepared {
        Prepared::Remote(_) => c.request("POST", &path, &auth, Body::None)?,
        Prepared::Tar(mut input) => c.request("POST", &path, &auth, Body::Stream(&mut input, "application/x-tar"))?,
        Prepared::Dir(ctx) => match sync_build(c, &path, &auth, &ctx, &secrets, &ssh)? {
            Some(r) => r,
            None if !secrets.is_empty() || !ssh.is_empty() => {
                bail!(
                    "--secret/--ssh: this daemon takes neither with a classic build (only berth's synced context carries them)"
                )
            }
            None => c.request("POST", &path, &auth, Body::Stream(&mut tar_stream(ctx)?, "application/x-tar"))?,
        },
    };
    let mut id = None;
    let mut err: Option<(String, i64)> = None;
    let mut compact = crate::tty::stdout_is_tty().then(super::build_progress::Compact::default);
    let stdout = std::io::stdout();
    r.each_line(|l| {
        let m: JsonMessage = match serde_json::from_slice(l) {
            Ok(m) => m,
            Err(_) => return Ok(true),
        };
        if let Some(d) = &m.error_detail {
            err = Some((d.message.clone(), d.code.unwrap_or(1)));
            return Ok(false);
        }
        if let Some(e) = &m.error {
            err = Some((e.clone(), 1));
            return Ok(false);
        }
        if let Some(v) = m.aux.as_ref().and_then(|a| a.get("ID")).and_then(|v| v.as_str()) {
            id = Some(v.to_string());
        }
        if let Some(s) = m.stream.as_ref().filter(|_| !a.quiet) {
            let mut out = stdout.lock();
            // A closed stdout (piped into `head`, say) does not stop the build.
            let _ = match compact.as_mut() {
                Some(c) => c.feed(s, &mut out),
                None => out.write_all(s.as_bytes()).and_then(|_| out.flush()),
            };
        }
        Ok(true)
    })?;
    if let Some(c) = compact.as_mut() {
        // As above: the build's outcome does not depend on its output being shown.
        let _ = c.finish(&mut stdout.lock());
    }
    if let Some((msg, code)) = err {
        eprintln!("{msg}");
        return Ok(if code > 0 && code < 256 { code as i32 } else { 1 });
    }
    let Some(id) = id else {
        if a.check {
            return Ok(0);
        }
        bail!("the daemon did not report the built image")
    };
    if a.quiet {
        println!("{id}");
    }
    if let Some(f) = &a.iidfile {
        std::fs::write(f, &id).with_context(|| format!("writing {f}"))?;
    }
    Ok(0)
}

pub fn builder_prune(c: &Client, a: &BuilderPruneArgs) -> Exit {
    let q = if a.all { "?all=1" } else { "" };
    let v: serde_json::Value = c.post(&format!("/build/prune{q}"))?.json()?;
    for id in v["CachesDeleted"].as_array().into_iter().flatten() {
        if let Some(s) = id.as_str() {
            println!("Deleted: {s}");
        }
    }
    let n = v["SpaceReclaimed"].as_i64().unwrap_or(0);
    println!("Total:\t{}", berth_api::units::human_size(n));
    Ok(0)
}
