//! `/build` (the classic builder's API) and `/build/prune`.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde_json::json;
use tokio::sync::mpsc;

use berth_api::models::build::{ContextManifest, ContextNeed};
use berth_api::progress::{ErrorDetail, JsonMessage};
use berth_builder::{BuildOptions, Event};
use berth_container::fs::ChannelReader;
use berth_image::Reference;

use super::D;
use crate::error::{ApiError, ApiResult, IntoApiError};
use crate::http::{self, Req, Resp};

/// A JSON query parameter (`buildargs`, `labels`, `cachefrom`, …); absent, empty or
/// `null` means none, as Docker reads them (Go clients send `null` for a nil map or list).
fn json_param<T: serde::de::DeserializeOwned + Default>(req: &Req, key: &str) -> ApiResult<T> {
    match req.q(key).map(str::trim) {
        None | Some("") | Some("null") => Ok(T::default()),
        Some(s) => serde_json::from_str::<Option<T>>(s)
            .map(Option::unwrap_or_default)
            .map_err(|e| ApiError::bad_request(format!("invalid {key} JSON: {e}"))),
    }
}

/// A boolean query value as Docker reads it (`0`, `no`, `false`, `none` are false).
fn bool_value(v: &str) -> bool {
    !matches!(v.trim().to_ascii_lowercase().as_str(), "" | "0" | "no" | "false" | "none")
}

fn options(req: &Req) -> ApiResult<BuildOptions> {
    let mut tags = Vec::new();
    for t in req.q_all("t").into_iter().filter(|t| !t.is_empty()) {
        let r = Reference::parse(t).map_err(|e| ApiError::bad_request(format!("invalid tag {t:?}: {e}")))?;
        if r.digest.is_some() {
            return Err(ApiError::bad_request(format!("invalid tag {t:?}: a build cannot be tagged with a digest")));
        }
        tags.push(t.to_string());
    }
    let network_mode = match req.q("networkmode").unwrap_or("") {
        "" | "default" => String::new(),
        m => m.to_string(),
    };
    let extra_hosts: Vec<String> = req
        .q_all("extrahosts")
        .into_iter()
        .flat_map(|h| h.split(','))
        .filter(|h| !h.is_empty())
        .map(|h| if h.contains(':') { h.to_string() } else { h.replacen('=', ":", 1) })
        .collect();
    Ok(BuildOptions {
        tags,
        // The first value, as Docker reads it: docker-py sends the name, then the text of a
        // Dockerfile from outside the context, under the same key.
        dockerfile: req
            .q_all("dockerfile")
            .first()
            .filter(|s| !s.is_empty())
            .copied()
            .unwrap_or("Dockerfile")
            .to_string(),
        build_args: json_param::<BTreeMap<String, Option<String>>>(req, "buildargs")?,
        no_cache: req.q_bool("nocache"),
        // The classic API has no per-stage switch.
        no_cache_stages: Default::default(),
        step_log_max: berth_builder::STEP_LOG_MAX,
        target: req.q("target").filter(|s| !s.is_empty()).map(String::from),
        labels: json_param::<BTreeMap<String, String>>(req, "labels")?,
        network_mode,
        extra_hosts,
        debug_cache_key: req.q_bool("debugcachekey"),
        pull: req.q_bool("pull"),
        registry_config: req.header("X-Registry-Config").map(String::from),
        cache_from: json_param::<Vec<String>>(req, "cachefrom")?,
        // `rm` defaults to true; `rm=0` keeps the RUN containers unless `forcerm`.
        keep_containers: req.q("rm").is_some_and(|v| !v.trim().is_empty() && !bool_value(v)) && !req.q_bool("forcerm"),
        platform: req.q("platform").unwrap_or("").to_string(),
        // The classic API carries none; berth's synced contexts carry secrets (below).
        secrets: Default::default(),
        ssh: Default::default(),
        // BuildKit's cache options; the classic builder's `--cache-from` is `cache_from`
        // (whose images' inline caches count too).
        inline_cache: false,
        cache_imports: Vec::new(),
        // BuildKit's `--build-context`; the classic API has none.
        named_contexts: Default::default(),
    })
}

fn line(m: &JsonMessage) -> Bytes {
    Bytes::from(m.to_line())
}

fn error_line(e: &berth_builder::BuildError) -> Bytes {
    let message = e.to_string();
    line(&JsonMessage {
        error_detail: Some(ErrorDetail { code: e.code(), message: message.clone() }),
        error: Some(message),
        ..Default::default()
    })
}

/// `POST /build/contexts/{key}/diff` (berth's extension, see `berth_api::models::build`):
/// which entries of the client's context manifest the daemon's copy needs.
pub async fn context_diff(d: D, mut req: Req) -> ApiResult<Resp> {
    let key = req.param(0).to_string();
    let manifest: ContextManifest = req.json().await?;
    let need = super::blocking(move || d.builder.contexts.diff(&key, &manifest)).await?.map_err(|e| e.api())?;
    Ok(http::json(200, &ContextNeed { need }))
}

/// Where a build's context comes from.
enum Source {
    /// The request body, a tar of the whole context.
    Tar(mpsc::Receiver<Bytes>),
    /// A synced copy, already brought up to date, and the secrets sent with it.
    Synced(berth_builder::Context, berth_builder::secrets::Secrets, berth_builder::secrets::SshAgents),
    /// A URL to download it from (`remote=`).
    Remote(String),
}

/// `POST /build`: the body is the context; the answer streams the build as JSON messages.
/// With `berthcontext=KEY` the body updates a synced context instead, before the stream
/// starts, so a copy that changed meanwhile is a plain `409` the client can retry.
pub async fn build(d: D, mut req: Req) -> ApiResult<Resp> {
    let mut opts = options(&req)?;
    if req.q("version") == Some("2") {
        return buildkit(d, req, opts);
    }
    let quiet = req.q_bool("q");
    let body = req.body_stream();
    let remote = req.q("remote").filter(|r| !r.is_empty()).map(String::from);
    let source = match (req.q("berthcontext").filter(|k| !k.is_empty()), remote) {
        (None, Some(url)) => Source::Remote(url),
        (None, None) => Source::Tar(body),
        (Some(key), _) => {
            let (b, key, name) = (d.builder.clone(), key.to_string(), opts.dockerfile.clone());
            let (ctx, secrets, ssh) =
                super::blocking(move || b.open_synced_context(&key, ChannelReader::new(body), &name))
                    .await?
                    .map_err(|e| e.api())?;
            Source::Synced(ctx, secrets, ssh)
        }
    };
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let b = d.builder.clone();
        let name = opts.dockerfile.clone();
        let ctx = match source {
            Source::Synced(c, secrets, ssh) => {
                opts.secrets = secrets;
                opts.ssh = ssh;
                Ok(Ok(c))
            }
            Source::Remote(url) => Ok(b.open_remote_context(&url, &name).await),
            Source::Tar(body) => {
                tokio::task::spawn_blocking(move || b.open_context(ChannelReader::new(body), &name)).await
            }
        };
        let ctx = match ctx {
            Ok(Ok(c)) => std::sync::Arc::new(c),
            Ok(Err(e)) => {
                let _ = tx.send(error_line(&e)).await;
                return;
            }
            Err(e) => {
                let _ = tx.send(line(&JsonMessage::error(format!("reading the build context failed: {e}")))).await;
                return;
            }
        };
        let (etx, mut erx) = mpsc::unbounded_channel();
        let b = d.builder.clone();
        let tags = opts.tags.clone();
        let run = tokio::spawn(async move { b.build(ctx, opts, etx).await });
        let mut client_gone = false;
        while let Some(ev) = erx.recv().await {
            let msg = match ev {
                Event::Stream(s) if quiet => {
                    let _ = s;
                    continue;
                }
                Event::Output { .. } if quiet => continue,
                Event::Stream(s) => JsonMessage::stream(s),
                Event::Output { stderr: false, data } => {
                    JsonMessage::stream(String::from_utf8_lossy(&data).into_owned())
                }
                // Docker shows a RUN step's stderr in red.
                Event::Output { stderr: true, data } => {
                    JsonMessage::stream(format!("\x1b[91m{}\x1b[0m", String::from_utf8_lossy(&data)))
                }
                Event::Built(id) => {
                    if quiet {
                        let _ = tx.send(line(&JsonMessage::stream(format!("{id}\n")))).await;
                    }
                    JsonMessage::aux(json!({ "ID": id }))
                }
            };
            // Keep building when the client goes away, as Docker does: the image still lands.
            if !client_gone && tx.send(line(&msg)).await.is_err() {
                client_gone = true;
            }
        }
        match run.await {
            Ok(Ok(id)) => {
                let mut attrs = BTreeMap::new();
                for t in &tags {
                    if let Ok(r) = Reference::parse(t) {
                        attrs.insert("name".to_string(), r.with_default_tag().familiar());
                        d.events.emit("image", "tag", &id, attrs.clone());
                    }
                }
            }
            Ok(Err(e)) => {
                let _ = tx.send(error_line(&e)).await;
            }
            Err(e) => {
                let _ = tx.send(line(&JsonMessage::error(format!("build task failed: {e}")))).await;
            }
        }
    });
    Ok(http::stream("application/json", rx))
}

/// `POST /build?version=2`: BuildKit's progress messages over the same stream
/// ([`crate::buildkit::classic`]).
fn buildkit(d: D, mut req: Req, opts: BuildOptions) -> ApiResult<Resp> {
    use crate::buildkit::classic::{self, Files};
    let session = req.q("session").unwrap_or_default().to_string();
    let from_session = req.q("remote") == Some("client-session");
    if from_session && session.is_empty() {
        return Err(ApiError::bad_request("remote=client-session needs a session"));
    }
    let body = req.body_stream();
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let files = if from_session {
            Files::Session(session)
        } else {
            let (b, name) = (d.builder.clone(), opts.dockerfile.clone());
            match tokio::task::spawn_blocking(move || b.open_context(ChannelReader::new(body), &name)).await {
                Ok(Ok(c)) => Files::Context(c),
                Ok(Err(e)) => {
                    let _ = tx.send(error_line(&e)).await;
                    return;
                }
                Err(e) => {
                    let _ = tx.send(line(&JsonMessage::error(format!("reading the build context failed: {e}")))).await;
                    return;
                }
            }
        };
        classic::build(d, files, opts, tx).await;
    });
    Ok(http::stream("application/json", rx))
}

/// `POST /build/prune`.
pub async fn prune(d: D, req: Req) -> ApiResult<Resp> {
    let all = req.q_bool("all");
    let d2 = d.clone();
    let (deleted, reclaimed) = super::blocking(move || {
        let users = |id: &str| d2.containers.users_of_image(id);
        d2.builder.prune(all, &users)
    })
    .await?
    .map_err(|e| e.api())?;
    for id in &deleted {
        d.events.emit("image", "delete", id, BTreeMap::new());
    }
    Ok(http::json(200, &json!({ "CachesDeleted": deleted, "SpaceReclaimed": reclaimed })))
}

/// The build cache as `GET /system/df` lists it: step records, then cache mounts.
pub fn df_entries(d: &crate::Daemon) -> Vec<serde_json::Value> {
    let usage = d.builder.cache.usage(&d.images).unwrap_or_default();
    let mounts = d.builder.cache_mounts.usage().into_iter().map(|m| {
        let last_used = m.last_used.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
        json!({
            "ID": m.name.get(..25).unwrap_or_default(),
            "Parents": null,
            "Type": "exec.cachemount",
            "Description": format!("cached mount with id {:?}", m.info.id),
            "InUse": m.in_use,
            "Shared": false,
            "Size": m.size,
            "CreatedAt": m.info.created,
            "LastUsedAt": last_used.map(|t| berth_api::time::rfc3339_nanos(t.as_nanos() as i128)),
            "UsageCount": 0,
        })
    });
    usage
        .into_iter()
        .map(|u| {
            let last_used = berth_api::time::rfc3339_nanos(u.record.last_used as i128);
            json!({
                "ID": u.key.trim_start_matches("sha256:").get(..25).unwrap_or_default(),
                "Parents": if u.parent.is_empty() { json!(null) } else { json!([u.parent]) },
                "Type": "regular",
                "Description": u.description,
                "InUse": u.in_use,
                "Shared": false,
                "Size": u.size,
                "CreatedAt": u.record.created,
                "LastUsedAt": last_used,
                "UsageCount": u.record.usage_count,
            })
        })
        .chain(mounts)
        .collect()
}
