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
        // berth's own `build --check`; Docker's classic API has no such parameter.
        check_only: req.q_bool("check"),
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
        let (etx, erx) = mpsc::unbounded_channel();
        let b = d.builder.clone();
        let tags = opts.tags.clone();
        let run = tokio::spawn(async move { b.build(ctx, opts, etx).await });
        forward(erx, &tx, quiet, MAX_QUEUED_OUTPUT).await;
        match run.await {
            // `--check` builds nothing.
            Ok(Ok(id)) if id.is_empty() => {}
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

/// The most step output a build holds for a client that reads slower than the build
/// prints. Docker's classic builder holds all of it; berth drops output beyond this (and says
/// so once in the stream) rather than let a client that stops reading grow the daemon
/// without bound. Progress lines, errors and the image ID are always kept.
const MAX_QUEUED_OUTPUT: usize = 64 << 20;

/// Carries the build's events to the client as JSON lines. The builder never waits for
/// the client (its stages run in parallel and print in turn, so waiting could stall it):
/// what the client has not taken yet waits here, output up to `budget` bytes.
async fn forward(mut events: mpsc::UnboundedReceiver<Event>, tx: &mpsc::Sender<Bytes>, quiet: bool, budget: usize) {
    let mut pending: std::collections::VecDeque<(Bytes, bool)> = std::collections::VecDeque::new();
    let mut queued_output = 0usize;
    let mut dropped = false;
    let mut client_gone = false;
    let mut open = true;
    while open || (!pending.is_empty() && !client_gone) {
        tokio::select! {
            ev = events.recv(), if open => {
                let Some(ev) = ev else {
                    open = false;
                    continue;
                };
                let (msg, output) = match ev {
                    Event::Stream(_) | Event::Output { .. } if quiet => continue,
                    Event::Stream(s) => (JsonMessage::stream(s), false),
                    Event::Output { stderr: false, data } => {
                        (JsonMessage::stream(String::from_utf8_lossy(&data).into_owned()), true)
                    }
                    // Docker shows a RUN step's stderr in red.
                    Event::Output { stderr: true, data } => {
                        (JsonMessage::stream(format!("\x1b[91m{}\x1b[0m", String::from_utf8_lossy(&data))), true)
                    }
                    Event::Built(id) => {
                        if quiet {
                            pending.push_back((line(&JsonMessage::stream(format!("{id}\n"))), false));
                        }
                        (JsonMessage::aux(json!({ "ID": id })), false)
                    }
                };
                // Keep building when the client goes away, as Docker does: the image still lands.
                if client_gone {
                    continue;
                }
                let bytes = line(&msg);
                if output {
                    if queued_output + bytes.len() > budget {
                        if !dropped {
                            dropped = true;
                            let note = format!(
                                "berth: the client is not reading; step output beyond {} MiB is left out\n",
                                budget >> 20
                            );
                            pending.push_back((line(&JsonMessage::stream(note)), false));
                        }
                        continue;
                    }
                    queued_output += bytes.len();
                }
                pending.push_back((bytes, output));
            }
            permit = tx.reserve(), if !pending.is_empty() && !client_gone => match permit {
                Ok(permit) => {
                    if let Some((bytes, output)) = pending.pop_front() {
                        if output {
                            queued_output -= bytes.len();
                        }
                        permit.send(bytes);
                    }
                }
                Err(_) => {
                    client_gone = true;
                    pending.clear();
                    queued_output = 0;
                }
            },
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn text(b: &Bytes) -> String {
        String::from_utf8_lossy(b).into_owned()
    }

    /// A client that reads nothing until the build is over: the output held for it stops at
    /// the budget (one note says so), while progress and the image ID all arrive.
    #[tokio::test]
    async fn output_for_a_client_that_does_not_read_is_bounded_and_the_rest_arrives() {
        let (etx, erx) = mpsc::unbounded_channel();
        let (tx, mut rx) = mpsc::channel::<Bytes>(1);
        let fwd = tokio::spawn(async move { forward(erx, &tx, false, 10_000).await });
        etx.send(Event::Stream("Step 1/2 : RUN yes\n".into())).unwrap();
        for _ in 0..1000 {
            etx.send(Event::Output { stderr: false, data: vec![b'y'; 100] }).unwrap();
        }
        etx.send(Event::Stream("Step 2/2 : LABEL a=b\n".into())).unwrap();
        etx.send(Event::Built("sha256:abc".into())).unwrap();
        drop(etx);
        // The client reads nothing until the forwarder has taken every event: on this
        // single-threaded runtime, yielding runs it until it waits for the client.
        for _ in 0..1000 {
            tokio::task::yield_now().await;
        }
        let mut lines = Vec::new();
        while let Some(b) = rx.recv().await {
            lines.push(text(&b));
        }
        fwd.await.unwrap();
        let output: usize = lines.iter().filter(|l| l.contains("yyyy")).map(|l| l.len()).sum();
        // The budget, and the one line the channel to the client holds.
        assert!(output <= 10_000 + 200, "{output} bytes of output kept");
        assert!(output >= 9_000, "{output} bytes of output kept");
        assert_eq!(lines.iter().filter(|l| l.contains("is left out")).count(), 1);
        assert!(lines[0].contains("Step 1/2"));
        assert!(lines.iter().any(|l| l.contains("Step 2/2")));
        assert!(lines.last().unwrap().contains("sha256:abc"), "{lines:?}");
    }

    /// A client that keeps up gets every byte, however much there is.
    #[tokio::test]
    async fn a_client_that_reads_gets_all_the_output() {
        let (etx, erx) = mpsc::unbounded_channel();
        let (tx, mut rx) = mpsc::channel::<Bytes>(1);
        let fwd = tokio::spawn(async move { forward(erx, &tx, false, 1_000).await });
        let reader = tokio::spawn(async move {
            let mut n = 0;
            while let Some(b) = rx.recv().await {
                n += text(&b).matches('y').count();
            }
            n
        });
        for _ in 0..100 {
            etx.send(Event::Output { stderr: false, data: vec![b'y'; 100] }).unwrap();
            // Each event waits for the reader, as a client reading along does.
            tokio::task::yield_now().await;
        }
        drop(etx);
        fwd.await.unwrap();
        assert_eq!(reader.await.unwrap(), 10_000);
    }

    /// A client that went away does not stop the forwarding: the build runs to its end.
    #[tokio::test]
    async fn a_client_that_went_away_lets_the_build_finish() {
        let (etx, erx) = mpsc::unbounded_channel();
        let (tx, rx) = mpsc::channel::<Bytes>(1);
        drop(rx);
        let fwd = tokio::spawn(async move { forward(erx, &tx, false, 1_000).await });
        for _ in 0..100 {
            etx.send(Event::Output { stderr: false, data: vec![b'y'; 100] }).unwrap();
        }
        drop(etx);
        fwd.await.unwrap();
    }
}
