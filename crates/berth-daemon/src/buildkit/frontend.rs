//! The Dockerfile frontend ("dockerfile.v0") on berth's builder: the Dockerfile, the
//! `.dockerignore` and the context come from the client's local directories through its
//! session (as BuildKit's frontend reads them: the Dockerfile's directory with only the
//! Dockerfile and its own ignore file included, the context with the ignore patterns
//! excluded by the client), then berth's builder runs as for `POST /build`, its output
//! shown as vertexes. The frontend options are BuildKit's (`filename`, `target`,
//! `build-arg:*`, `label:*`, `no-cache`, `platform`, `add-hosts`, `force-network-mode`,
//! `image-resolve-mode`, `contextkey`/`dockerfilekey`), with `cache-imports`/`cache-from`
//! (images fetched unnamed, whose inline caches supply hits) and `context:NAME` (named
//! build contexts: `docker-image://REF`, or `local:DIR` received through the session).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use berth_builder::{BuildError, BuildOptions, Event};
use berth_buildkit::grpc::{Code, Error, Result};
use berth_buildkit::session::{DirRequest, Session};

use super::Job;
use super::progress::{Progress, StepReader};
use crate::Daemon;

/// The session a build's files come from.
pub(super) async fn session_of(d: &Daemon, job: &Job) -> Result<Arc<Session>> {
    let id =
        job.session_id().await.ok_or_else(|| Error::status(Code::FailedPrecondition, "the build names no session"))?;
    d.buildkit
        .sessions
        .get(&id, super::SESSION_WAIT)
        .await
        .ok_or_else(|| Error::status(Code::FailedPrecondition, format!("no active session for {id}")))
}

fn build_error(e: &BuildError) -> Error {
    let message = match e {
        // BuildKit's wording, which users of buildx know.
        BuildError::RunFailed { command, code } => {
            format!("process \"{command}\" did not complete successfully: exit code: {code}")
        }
        e => e.to_string(),
    };
    Error::status(Code::Unknown, message)
}

/// `.dockerignore` lines as exclude patterns (comments and blank lines dropped).
fn ignore_patterns(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from).collect()
}

fn options(opts: &HashMap<String, String>, filename: &str) -> Result<BuildOptions> {
    let get = |k: &str| opts.get(k).map(String::as_str).filter(|v| !v.is_empty());
    if let Some(p) = get("platform") {
        let host = format!("linux/{}", berth_image::config::host_architecture());
        if p.split(',').any(|p| !p.starts_with(&host)) {
            return Err(Error::status(
                Code::InvalidArgument,
                format!("platform {p} is not supported: berth builds for the host platform ({host})"),
            ));
        }
    }
    let mut build_args = BTreeMap::new();
    let mut labels = BTreeMap::new();
    for (k, v) in opts {
        if let Some(name) = k.strip_prefix("build-arg:") {
            build_args.insert(name.to_string(), Some(v.clone()));
        } else if let Some(name) = k.strip_prefix("label:") {
            labels.insert(name.to_string(), v.clone());
        }
    }
    // BuildKit's values only. The mode becomes the RUN containers' network mode, so
    // anything else (`container:<id>`, a network's name) would put build steps where the
    // solve request says, with no entitlement asked.
    let network_mode = match get("force-network-mode").unwrap_or_default() {
        "" | "sandbox" => String::new(),
        m @ ("none" | "host") => m.to_string(),
        other => return Err(Error::status(Code::InvalidArgument, format!("invalid netmode {other}"))),
    };
    let extra_hosts = get("add-hosts")
        .map(|h| h.split(',').filter(|h| !h.is_empty()).map(|h| h.replacen('=', ":", 1)).collect())
        .unwrap_or_default();
    Ok(BuildOptions {
        dockerfile: filename.to_string(),
        build_args,
        labels,
        // `no-cache` with no value: every step; with stage names (`--no-cache-filter`), the
        // steps of those stages.
        no_cache: opts.get("no-cache").is_some_and(|v| v.is_empty()),
        // BuildKit's default step log limit, which buildx users know.
        step_log_max: 2 << 20,
        no_cache_stages: get("no-cache")
            .map(|v| v.split(',').map(|n| n.trim().to_ascii_lowercase()).filter(|n| !n.is_empty()).collect())
            .unwrap_or_default(),
        target: get("target").map(String::from),
        network_mode,
        extra_hosts,
        pull: get("image-resolve-mode") == Some("pull"),
        // The older way to ask for an inline cache, which BuildKit still honours.
        inline_cache: get("build-arg:BUILDKIT_INLINE_CACHE")
            .is_some_and(|v| matches!(v, "1" | "true" | "True" | "TRUE")),
        platform: get("platform").unwrap_or_default().to_string(),
        ..Default::default()
    })
}

/// Credentials for the registries the Dockerfile's `FROM` lines and `extra` name, from the client's
/// session (what `docker login` stored there), as an `X-Registry-Config` value for the
/// builder's pulls. Stage names, `scratch` and references that do not parse ask nothing.
pub(super) async fn registry_config(session: &Session, dockerfile: &str, extra: &[String]) -> Option<String> {
    use base64::Engine;
    let df = berth_dockerfile::parse(dockerfile).ok()?;
    let stages: Vec<String> = df.stages.iter().filter_map(|s| s.name.clone()).collect();
    let mut domains = std::collections::BTreeSet::new();
    for s in &df.stages {
        if s.base == "scratch" || s.base.contains('$') || stages.contains(&s.base.to_ascii_lowercase()) {
            continue;
        }
        if let Ok(r) = berth_image::Reference::parse(&s.base) {
            domains.insert(r.domain.clone());
        }
    }
    for r in extra {
        if let Ok(r) = berth_image::Reference::parse(r) {
            domains.insert(r.domain.clone());
        }
    }
    let mut all = serde_json::Map::new();
    for domain in domains {
        let host = if domain == "docker.io" { "registry-1.docker.io".to_string() } else { domain.clone() };
        let Ok(Some(c)) = session.credentials(&host).await else { continue };
        let entry = if c.username.is_empty() {
            serde_json::json!({ "identitytoken": c.secret })
        } else {
            serde_json::json!({ "username": c.username, "password": c.secret })
        };
        all.insert(domain, entry);
    }
    if all.is_empty() {
        return None;
    }
    Some(base64::engine::general_purpose::URL_SAFE.encode(serde_json::Value::Object(all).to_string()))
}

/// The secrets `ids` names (the ids the Dockerfile's `RUN --mount=type=secret` steps name,
/// expanded with the build args: [`berth_builder::secrets::mount_ids`]), from the client's
/// session (`--secret id=…`). One the client does not have is left out: the builder then
/// fails a step that requires it and leaves the others without it, as BuildKit does.
pub(super) async fn secrets(session: &Session, ids: &BTreeSet<String>) -> berth_builder::secrets::Secrets {
    let mut out = berth_builder::secrets::Secrets::default();
    for id in ids {
        // One larger than BuildKit's limit is left out, as one the client lacks.
        if let Ok(value) = session.secret(id).await
            && value.len() <= berth_builder::secrets::MAX_SECRET
        {
            out.insert(id.clone(), value);
        }
    }
    out
}

/// The SSH agents `ids` names (those the Dockerfile's `RUN --mount=type=ssh` steps name,
/// expanded with the build args) that the client forwards (`--ssh id=…`): a socket each, relayed to the
/// client's agent through the session for as long as the returned proxies live. One the
/// client does not forward is left out, as with secrets.
pub(super) async fn ssh_agents(
    d: &Daemon,
    session: &Arc<Session>,
    ids: &BTreeSet<String>,
) -> Result<(berth_builder::secrets::SshAgents, Vec<berth_buildkit::ssh::AgentProxy>)> {
    let mut agents = berth_builder::secrets::SshAgents::new();
    let mut proxies = Vec::new();
    for id in ids {
        if !berth_buildkit::ssh::has_agent(session, id).await {
            continue;
        }
        let dir = d.builder.config.scratch.join(format!("bk-ssh-{}", &berth_api::ids::random_id()[..16]));
        let proxy = berth_buildkit::ssh::AgentProxy::start(session.clone(), id, dir).await?;
        agents.insert(id.clone(), proxy.socket().to_path_buf());
        proxies.push(proxy);
    }
    Ok((agents, proxies))
}

/// A file the client sent, read inside `root`: its name comes from the client (`filename`),
/// and so do its symlinks, so neither may lead out of what was received.
async fn read_text(root: &Path, rel: &str) -> Option<String> {
    let (root, rel) = (root.to_path_buf(), rel.to_string());
    tokio::task::spawn_blocking(move || berth_builder::context::read_confined(&root, &rel).ok().flatten())
        .await
        .ok()
        .flatten()
}

/// Runs a Dockerfile build for `job`; returns the image ID.
pub(super) async fn dockerfile(d: &Arc<Daemon>, job: &Job, opts: &HashMap<String, String>) -> Result<String> {
    let session = session_of(d, job).await?;
    let filename = opts.get("filename").filter(|f| !f.is_empty()).cloned().unwrap_or_else(|| "Dockerfile".into());
    let key = |k: &str, default: &str| opts.get(k).filter(|v| !v.is_empty()).cloned().unwrap_or_else(|| default.into());
    let sources = Sources {
        filename: filename.clone(),
        dockerfile: key("dockerfilekey", "dockerfile"),
        context: key("contextkey", "context"),
    };
    let mut build_opts = options(opts, &filename)?;
    let imports = cache_imports(opts)?;
    let named = named_contexts(opts)?;
    let ctx = receive(d, &session, &job.progress, &job.id, &sources).await?;
    let mut received = Vec::new();
    for (name, c) in named {
        let c = match c {
            Named::Image(r) => berth_builder::NamedContext::Image(r),
            Named::Local(dir) => {
                let scratch =
                    Scratch(d.builder.config.scratch.join(format!("bk-named-{}", &berth_api::ids::random_id()[..16])));
                fetch_named(&session, &job.progress, &job.id, &name, &dir, &scratch.0).await?;
                let path = scratch.0.clone();
                received.push(scratch);
                berth_builder::NamedContext::Dir(path)
            }
        };
        build_opts.named_contexts.insert(name, c);
    }
    build_opts.registry_config = registry_config(&session, &ctx.dockerfile, &imports).await;
    let ids = berth_builder::secrets::mount_ids(&ctx.dockerfile, &build_opts.build_args);
    build_opts.secrets = secrets(&session, &ids.secrets).await;
    let (agents, _proxies) = ssh_agents(d, &session, &ids.ssh).await?;
    build_opts.ssh = agents;
    build_opts.inline_cache |= job.inline_cache.load(std::sync::atomic::Ordering::SeqCst);
    build_opts.cache_imports = import_caches(d, &job.progress, &job.id, &imports, &build_opts).await;
    let r = run(d, ctx, build_opts, &job.progress, &job.id).await;
    drop(received);
    r
}

/// A `--build-context` as the client sends it (`context:NAME` options).
enum Named {
    Image(String),
    /// The name of a local directory in the client's session.
    Local(String),
}

/// The `context:NAME` options: `docker-image://REF` and `local:DIR` (buildx's form for a
/// directory); any other form is refused, naming it.
fn named_contexts(opts: &HashMap<String, String>) -> Result<BTreeMap<String, Named>> {
    let mut out = BTreeMap::new();
    for (k, v) in opts {
        let Some(name) = k.strip_prefix("context:") else { continue };
        let bad = |why: &str| Error::status(Code::InvalidArgument, format!("invalid build context {name}={v}: {why}"));
        if name.is_empty() {
            return Err(bad("the name is empty"));
        }
        let c = if let Some(r) = v.strip_prefix("docker-image://") {
            let r = r.split_once('@').filter(|(_, d)| d.is_empty()).map_or(r, |(n, _)| n);
            berth_image::Reference::parse(r).map_err(|e| bad(&e.to_string()))?;
            Named::Image(r.to_string())
        } else if let Some(dir) = v.strip_prefix("local:") {
            if dir.is_empty() {
                return Err(bad("no directory"));
            }
            Named::Local(dir.to_string())
        } else {
            return Err(Error::status(
                Code::Unimplemented,
                format!(
                    "build context {name}={v} is not supported by berth: use docker-image://REF or a local directory"
                ),
            ));
        };
        out.insert(name.to_ascii_lowercase(), c);
    }
    Ok(out)
}

/// Receives the client's local directory `dir` (a named context) into `dest`.
async fn fetch_named(session: &Session, p: &Progress, build: &str, name: &str, dir: &str, dest: &Path) -> Result<()> {
    tokio::fs::create_dir_all(dest)
        .await
        .map_err(|e| Error::status(Code::Internal, format!("creating build scratch space: {e}")))?;
    let v = p.start(build, &format!("[context {name}] load from client"));
    // The directory's own `.dockerignore` applies to it, as BuildKit's frontend does.
    let ignore_dir = dest.with_extension("ignore");
    tokio::fs::create_dir_all(&ignore_dir)
        .await
        .map_err(|e| Error::status(Code::Internal, format!("creating build scratch space: {e}")))?;
    let req = DirRequest { name: dir.to_string(), include: vec![".dockerignore".into()], ..Default::default() };
    let ignore = match session.fetch_dir(&req, &ignore_dir).await {
        Ok(_) => read_text(&ignore_dir, ".dockerignore").await.unwrap_or_default(),
        Err(e) => {
            p.complete(v, false, Some(e.to_string()));
            let _ = tokio::fs::remove_dir_all(&ignore_dir).await;
            return Err(e);
        }
    };
    // Only the one small file was written there; leaving it would only cost scratch space
    // until the daemon's next start.
    let _ = tokio::fs::remove_dir_all(&ignore_dir).await;
    let req = DirRequest { name: dir.to_string(), exclude: ignore_patterns(&ignore), ..Default::default() };
    match session.fetch_dir(&req, dest).await {
        Ok(got) => {
            p.status(&v, &format!("transferring {name}: {}B", got.bytes));
            p.complete(v, false, None);
            Ok(())
        }
        Err(e) => {
            p.complete(v, false, Some(e.to_string()));
            Err(e)
        }
    }
}

/// One `--cache-from` as BuildKit's clients send it (`cache-imports`, JSON).
#[derive(serde::Serialize, serde::Deserialize)]
struct CacheImport {
    #[serde(rename = "Type", default)]
    kind: String,
    #[serde(rename = "Attrs", default)]
    attrs: HashMap<String, String>,
}

/// The gateway's `CacheImports` as the `cache-imports` frontend option.
pub(super) fn cache_imports_json(entries: &[berth_buildkit::proto::CacheOptionsEntry]) -> String {
    let list: Vec<CacheImport> =
        entries.iter().map(|e| CacheImport { kind: e.r#type.clone(), attrs: e.attrs.clone() }).collect();
    serde_json::to_string(&list).unwrap_or_default()
}

/// The image references a build imports cache from: `cache-imports` entries of type
/// `registry` (buildx's `--cache-from ref` is one), and the older `cache-from` list. An
/// entry of another type is refused: berth's cache lives in images.
fn cache_imports(opts: &HashMap<String, String>) -> Result<Vec<String>> {
    let mut refs = Vec::new();
    if let Some(json) = opts.get("cache-imports").filter(|j| !j.is_empty()) {
        let list: Vec<CacheImport> = serde_json::from_str(json)
            .map_err(|e| Error::status(Code::InvalidArgument, format!("invalid cache-imports: {e}")))?;
        for i in list {
            match (i.kind.as_str(), i.attrs.get("ref").filter(|r| !r.is_empty())) {
                ("registry", Some(r)) => refs.push(r.clone()),
                ("registry", None) => {
                    return Err(Error::status(Code::InvalidArgument, "--cache-from type=registry needs ref=<image>"));
                }
                (t, _) => {
                    return Err(Error::status(
                        Code::Unimplemented,
                        format!(
                            "cache import type {t:?} is not supported by berth: use --cache-from type=registry,ref=<image>"
                        ),
                    ));
                }
            }
        }
    }
    if let Some(list) = opts.get("cache-from") {
        refs.extend(list.split(',').map(str::trim).filter(|r| !r.is_empty()).map(String::from));
    }
    refs.dedup();
    Ok(refs)
}

/// Fetches each cache import's image from its registry, as BuildKit's importer does (one
/// vertex each); returns their IDs. One that cannot be had is a warning in its vertex's
/// log and no cache, never a failed build.
async fn import_caches(d: &Daemon, p: &Progress, build: &str, refs: &[String], opts: &BuildOptions) -> Vec<String> {
    let mut ids = Vec::new();
    for r in refs {
        let mut v = p.start(build, &format!("importing cache manifest from {r}"));
        let got = match berth_image::Reference::parse(r) {
            Ok(reference) => d
                .builder
                .fetch_cache_source(&reference, opts.registry_config.as_deref())
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(format!("invalid reference {r:?}: {e}")),
        };
        match got {
            Ok(id) => ids.push(id),
            Err(e) => p.log(&mut v, 2, format!("WARNING: no cache imported from {r}: {e}\n").as_bytes()),
        }
        p.complete(v, false, None);
    }
    ids
}

/// Where a build's files are in the client's session.
pub(super) struct Sources {
    /// The Dockerfile's name in its directory.
    pub filename: String,
    /// The local directory with the Dockerfile.
    pub dockerfile: String,
    /// The local directory that is the context.
    pub context: String,
}

/// Removes a scratch directory when dropped.
struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where the context goes: the copy kept for the session's shared key (a rebuild transfers
/// only what changed), or fresh scratch space when the client names no key.
async fn context_place(d: &Daemon, session: &Session, name: &str) -> Result<Place> {
    if session.shared_key.is_empty() {
        let dir = d.builder.config.scratch.join(format!("bk-ctx-{}", &berth_api::ids::random_id()[..16]));
        tokio::fs::create_dir_all(dir.join("root"))
            .await
            .map_err(|e| Error::status(Code::Internal, format!("creating build scratch space: {e}")))?;
        return Ok(Place::Fresh(dir));
    }
    use sha2::Digest as _;
    let key = hex::encode(sha2::Sha256::digest(format!("buildkit\0{}\0{name}", session.shared_key)));
    let store = d.builder.clone();
    let copy = tokio::task::spawn_blocking(move || store.contexts.open_for_transfer(&key))
        .await
        .map_err(|e| Error::status(Code::Internal, e.to_string()))?
        .map_err(|e| Error::status(Code::Internal, e.to_string()))?;
    Ok(Place::Kept(copy))
}

enum Place {
    Fresh(std::path::PathBuf),
    Kept(berth_builder::sync::TransferCopy),
}

impl Place {
    fn root(&self) -> std::path::PathBuf {
        match self {
            Place::Fresh(dir) => dir.join("root"),
            Place::Kept(c) => c.root(),
        }
    }

    /// The build's context. A kept copy's files are hashed here (those that changed since
    /// the last build), off the async workers.
    async fn into_context(self, dockerfile: String, name: &str) -> Result<berth_builder::Context> {
        match self {
            Place::Fresh(dir) => Ok(berth_builder::Context::received(dir, dockerfile, name)),
            Place::Kept(c) => {
                let name = name.to_string();
                tokio::task::spawn_blocking(move || c.into_context(dockerfile, &name))
                    .await
                    .map_err(|e| Error::status(Code::Internal, e.to_string()))?
                    .map_err(|e| Error::status(Code::Internal, format!("reading the build context: {e}")))
            }
        }
    }
}

/// Fetches the Dockerfile, `.dockerignore` and the context from the client.
pub(super) async fn receive(
    d: &Daemon,
    session: &Session,
    p: &Progress,
    build: &str,
    src: &Sources,
) -> Result<berth_builder::Context> {
    let filename = &src.filename;
    let scratch = Scratch(d.builder.config.scratch.join(format!("bk-{}", &berth_api::ids::random_id()[..16])));
    let dir = scratch.0.clone();
    for sub in ["df", "ignore"] {
        tokio::fs::create_dir_all(dir.join(sub))
            .await
            .map_err(|e| Error::status(Code::Internal, format!("creating build scratch space: {e}")))?;
    }

    let v = p.start(build, &format!("[internal] load build definition from {filename}"));
    let req = DirRequest {
        name: src.dockerfile.clone(),
        include: vec![filename.clone(), format!("{filename}.dockerignore")],
        ..Default::default()
    };
    let fetched = session.fetch_dir(&req, &dir.join("df")).await;
    let text = match fetched {
        Ok(_) => read_text(&dir.join("df"), filename).await,
        Err(e) => {
            p.complete(v, false, Some(e.to_string()));
            return Err(e);
        }
    };
    let Some(text) = text else {
        let msg = format!("failed to read dockerfile: open {filename}: no such file or directory");
        p.complete(v, false, Some(msg.clone()));
        return Err(Error::status(Code::NotFound, msg));
    };
    p.status(&v, &format!("transferring dockerfile: {}B", text.len()));
    p.complete(v, false, None);

    let v = p.start(build, "[internal] load .dockerignore");
    let own = read_text(&dir.join("df"), &format!("{filename}.dockerignore")).await;
    let ignore = match own {
        Some(t) => t,
        None => {
            let req =
                DirRequest { name: src.context.clone(), include: vec![".dockerignore".into()], ..Default::default() };
            if let Err(e) = session.fetch_dir(&req, &dir.join("ignore")).await {
                p.complete(v, false, Some(e.to_string()));
                return Err(e);
            }
            read_text(&dir.join("ignore"), ".dockerignore").await.unwrap_or_default()
        }
    };
    p.complete(v, false, None);

    let v = p.start(build, "[internal] load build context");
    let place = context_place(d, session, &src.context).await?;
    let req = DirRequest { name: src.context.clone(), exclude: ignore_patterns(&ignore), ..Default::default() };
    let got = match session.fetch_dir(&req, &place.root()).await {
        Ok(got) => got,
        Err(e) => {
            p.complete(v, false, Some(e.to_string()));
            if let Place::Fresh(dir) = &place {
                let _ = tokio::fs::remove_dir_all(dir).await;
            }
            return Err(e);
        }
    };
    let ctx = place.into_context(text, filename).await;
    if let Err(e) = &ctx {
        p.complete(v, false, Some(e.to_string()));
        return ctx;
    }
    p.status(&v, &format!("transferring context: {}B", got.bytes));
    p.complete(v, false, None);
    ctx
}

/// Runs berth's builder on `ctx`, its output shown as vertexes; returns the image ID.
pub(super) async fn run(
    d: &Daemon,
    ctx: berth_builder::Context,
    opts: BuildOptions,
    p: &Progress,
    build: &str,
) -> Result<String> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let b = d.builder.clone();
    let run = tokio::spawn(async move { b.build(Arc::new(ctx), opts, tx).await });
    let mut steps = StepReader::new(p, build);
    while let Some(ev) = rx.recv().await {
        match ev {
            Event::Stream(s) => steps.text(&s),
            Event::Output { stderr, data } => steps.output(stderr, &data),
            Event::Built(_) => {}
        }
    }
    match run.await {
        Ok(Ok(id)) => {
            steps.end(None);
            Ok(id)
        }
        Ok(Err(e)) => {
            let err = build_error(&e);
            steps.end(Some(err.to_string()));
            Err(err)
        }
        Err(e) => Err(Error::status(Code::Internal, format!("build task failed: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontend_options_become_build_options() {
        let opts: HashMap<String, String> = [
            ("build-arg:A", "1"),
            ("label:l", "v"),
            ("target", "t"),
            ("no-cache", ""),
            ("add-hosts", "h=10.0.0.1"),
            ("image-resolve-mode", "pull"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let o = options(&opts, "Dockerfile").unwrap();
        assert_eq!(o.build_args.get("A"), Some(&Some("1".to_string())));
        assert_eq!(o.labels.get("l").map(String::as_str), Some("v"));
        assert_eq!(o.target.as_deref(), Some("t"));
        assert!(o.no_cache && o.pull);
        assert_eq!(o.extra_hosts, ["h:10.0.0.1"]);
        let foreign = HashMap::from([("platform".to_string(), "linux/s390x".to_string())]);
        assert!(options(&foreign, "Dockerfile").is_err());
    }

    /// The solve request's network mode becomes the RUN containers': only BuildKit's
    /// values pass, so a request cannot put build steps in another container's network.
    #[test]
    fn only_buildkits_network_modes_are_accepted() {
        let mode = |m: &str| {
            let opts = HashMap::from([("force-network-mode".to_string(), m.to_string())]);
            options(&opts, "Dockerfile").map(|o| o.network_mode).map_err(|e| e.to_string())
        };
        assert_eq!(mode("").unwrap(), "");
        assert_eq!(mode("sandbox").unwrap(), "");
        assert_eq!(mode("none").unwrap(), "none");
        assert_eq!(mode("host").unwrap(), "host");
        for bad in ["container:0123abcd", "bridge", "mynet", "default"] {
            assert_eq!(mode(bad).unwrap_err(), format!("invalid netmode {bad}"));
        }
    }

    #[test]
    fn dockerignore_lines_are_patterns() {
        assert_eq!(ignore_patterns("# c\n\n node_modules \n!keep\n"), ["node_modules", "!keep"]);
    }
}
