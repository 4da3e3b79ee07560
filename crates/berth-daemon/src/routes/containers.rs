//! `/containers/...` and `/commit`.

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use serde_json::json;
use tokio::sync::mpsc;

use berth_api::models::{
    ContainerCreateRequest, ContainerCreateResponse, IdResponse, UpdateRequest, WaitExitError, WaitResponse,
};
use berth_container::attach::AttachOptions;
use berth_container::inspect::ListOptions;
use berth_container::logs::LogOptions;
use berth_container::{CreateOptions, WaitCondition};

use super::stream::{detach_keys, serve_session};
use super::{D, filters};
use crate::error::{ApiError, ApiResult};
use crate::http::{self, Req, Resp};

pub async fn list(d: D, req: Req) -> ApiResult<Resp> {
    let mut limit = req.q_i64("limit")?.filter(|l| *l > 0).map(|l| l as usize);
    if req.q_bool("latest") {
        limit = Some(1);
    }
    let opts = ListOptions {
        all: req.q_bool("all") || limit.is_some(),
        limit,
        size: req.q_bool("size"),
        filters: filters(&req)?,
    };
    let list = d.containers.list(opts).await?;
    Ok(http::json(200, &list))
}

pub async fn create(d: D, mut req: Req) -> ApiResult<Resp> {
    let body: ContainerCreateRequest = req.json().await?;
    let name = req.q("name").map(String::from);
    if body.config.image.is_empty() {
        return Err(ApiError::bad_request("Config cannot be empty in order to create a container"));
    }
    let mode = body.host_config.network_mode.as_str();
    let bridge_or_user = !matches!(mode, "host" | "none") && !mode.starts_with("container:");
    if req.api() < 144 && !body.config.mac_address.is_empty() && !bridge_or_user {
        // Before API 1.44 the container-wide MAC address was the only one, and dockerd
        // refused it where no network of the container's own takes it.
        return Err(ApiError::bad_request("conflicting options: mac-address and the network mode"));
    }
    let (id, warnings) = d.containers.create(CreateOptions { name, request: body, ..Default::default() }).await?;
    Ok(http::json(201, &ContainerCreateResponse { id, warnings }))
}

pub async fn inspect(d: D, req: Req) -> ApiResult<Resp> {
    let size = req.q_bool("size");
    let v = d.containers.inspect(req.param(0), size).await?;
    Ok(http::json(200, &v))
}

pub async fn top(d: D, req: Req) -> ApiResult<Resp> {
    let t = d.containers.top(req.param(0), req.q("ps_args").unwrap_or("")).await?;
    Ok(http::json(200, &t))
}

pub async fn logs(d: D, req: Req) -> ApiResult<Resp> {
    let stdout = req.q_bool("stdout");
    let stderr = req.q_bool("stderr");
    if !stdout && !stderr {
        return Err(ApiError::bad_request("Bad parameters: you must choose at least one stream"));
    }
    let now = berth_api::time::now_nanos();
    let time_arg = |k: &str| -> ApiResult<Option<i128>> {
        match req.q(k) {
            None | Some("") | Some("0") => Ok(None),
            Some(s) => berth_api::time::parse_time_arg(s, now)
                .map(Some)
                .ok_or_else(|| ApiError::bad_request(format!("invalid value for \"{k}\": {s}"))),
        }
    };
    // As in Docker, "all", a negative number or anything else that is not a number means
    // every line.
    let tail = req.q("tail").and_then(|t| t.parse::<i64>().ok()).and_then(|n| usize::try_from(n).ok());
    let opts = LogOptions {
        stdout,
        stderr,
        since: time_arg("since")?,
        until: time_arg("until")?,
        tail,
        follow: req.q_bool("follow"),
    };
    let timestamps = req.q_bool("timestamps");
    let (tty, mut lines) = d.containers.logs(req.param(0), opts).await?;
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        while let Some(l) = lines.recv().await {
            let mut payload = Vec::with_capacity(l.data.len() + 32);
            if timestamps {
                let t = berth_api::time::parse_rfc3339(&l.time)
                    .map(berth_api::time::rfc3339_nanos_fixed)
                    .unwrap_or(l.time.clone());
                payload.extend_from_slice(t.as_bytes());
                payload.push(b' ');
            }
            payload.extend_from_slice(&l.data);
            let chunk =
                if tty { Bytes::from(payload) } else { Bytes::from(berth_api::stream::frame(l.stream, &payload)) };
            if tx.send(chunk).await.is_err() {
                return;
            }
        }
    });
    let ct = if tty { "application/vnd.docker.raw-stream" } else { "application/vnd.docker.multiplexed-stream" };
    Ok(http::stream(ct, rx))
}

pub async fn changes(d: D, req: Req) -> ApiResult<Resp> {
    let v = d.containers.changes(req.param(0)).await?;
    Ok(http::json(200, &v))
}

pub async fn export(d: D, req: Req) -> ApiResult<Resp> {
    let rx = d.containers.export(req.param(0)).await?;
    Ok(http::stream("application/x-tar", rx))
}

pub async fn stats(d: D, req: Req) -> ApiResult<Resp> {
    let id = d.containers.get(req.param(0))?.id.clone();
    let stream = req.q("stream").is_none_or(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    let one_shot = req.q_bool("one-shot");
    if !stream {
        let first = d.containers.stats_sample(&id, None)?;
        let v = if one_shot {
            first
        } else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            d.containers.stats_sample(&id, Some(&first))?
        };
        return Ok(http::json(200, &v));
    }
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    tokio::spawn(async move {
        let mut prev: Option<serde_json::Value> = None;
        loop {
            let Ok(v) = d.containers.stats_sample(&id, prev.as_ref()) else { return };
            let mut line = serde_json::to_vec(&v).unwrap_or_default();
            line.push(b'\n');
            if tx.send(Bytes::from(line)).await.is_err() {
                return;
            }
            prev = Some(v);
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = tx.closed() => return,
            }
        }
    });
    Ok(http::stream("application/json", rx))
}

pub async fn resize(d: D, req: Req) -> ApiResult<Resp> {
    let h = req.q_i64("h")?.unwrap_or(0).clamp(0, u16::MAX as i64) as u16;
    let w = req.q_i64("w")?.unwrap_or(0).clamp(0, u16::MAX as i64) as u16;
    d.containers.resize(req.param(0), h, w).await?;
    Ok(http::empty(200))
}

pub async fn start(d: D, req: Req) -> ApiResult<Resp> {
    let started = d.containers.start(req.param(0)).await?;
    Ok(http::empty(if started { 204 } else { 304 }))
}

fn stop_args(req: &Req) -> ApiResult<(Option<i64>, Option<String>)> {
    Ok((req.q_i64("t")?, req.q("signal").filter(|s| !s.is_empty()).map(String::from)))
}

pub async fn stop(d: D, req: Req) -> ApiResult<Resp> {
    let (t, sig) = stop_args(&req)?;
    let stopped = d.containers.stop(req.param(0), t, sig).await?;
    Ok(http::empty(if stopped { 204 } else { 304 }))
}

pub async fn restart(d: D, req: Req) -> ApiResult<Resp> {
    let (t, sig) = stop_args(&req)?;
    d.containers.restart(req.param(0), t, sig).await?;
    Ok(http::empty(204))
}

pub async fn kill(d: D, req: Req) -> ApiResult<Resp> {
    d.containers.kill(req.param(0), req.q("signal")).await?;
    Ok(http::empty(204))
}

pub async fn update(d: D, mut req: Req) -> ApiResult<Resp> {
    let u: UpdateRequest = req.json().await?;
    let r = d.containers.update(req.param(0), u).await?;
    Ok(http::json(200, &r))
}

pub async fn rename(d: D, req: Req) -> ApiResult<Resp> {
    let name = req.q("name").unwrap_or("");
    if name.is_empty() {
        return Err(ApiError::bad_request("Neither old nor new names may be empty"));
    }
    d.containers.rename(req.param(0), name).await?;
    Ok(http::empty(204))
}

pub async fn pause(d: D, req: Req) -> ApiResult<Resp> {
    d.containers.pause(req.param(0), true).await?;
    Ok(http::empty(204))
}

pub async fn unpause(d: D, req: Req) -> ApiResult<Resp> {
    d.containers.pause(req.param(0), false).await?;
    Ok(http::empty(204))
}

pub async fn attach(d: D, mut req: Req) -> ApiResult<Resp> {
    let keys = detach_keys(req.q("detachKeys").unwrap_or(""))?;
    let opts = AttachOptions { stdin: req.q_bool("stdin"), stdout: req.q_bool("stdout"), stderr: req.q_bool("stderr") };
    let id = req.param(0).to_string();
    let rec = d.containers.get(&id)?.record();
    // The log so far streams ahead of the live output, a line at a time. It is read up to
    // where it was when asked for: what the session delivers live is not repeated.
    let prefix = if req.q_bool("logs") {
        let (_, mut lines) = d
            .containers
            .logs(&id, LogOptions { stdout: opts.stdout, stderr: opts.stderr, ..Default::default() })
            .await
            .unwrap_or_else(|_| (false, mpsc::channel(1).1));
        let (tx, rx) = mpsc::channel::<Bytes>(64);
        let tty = rec.config.tty;
        tokio::spawn(async move {
            while let Some(l) = lines.recv().await {
                let b = if tty { l.data } else { Bytes::from(berth_api::stream::frame(l.stream, &l.data)) };
                if tx.send(b).await.is_err() {
                    return;
                }
            }
        });
        Some(rx)
    } else {
        None
    };
    // dockerd logs the attach once the log is replayed, streaming or not.
    d.containers.emit(&rec, "attach", &[]);
    let session = if req.q_bool("stream") || !req.q_bool("logs") {
        d.containers.attach(&id, opts).await?
    } else {
        // logs=1 without stream=1: the log and nothing live.
        let (tx, rx) = mpsc::channel(1);
        drop(tx);
        berth_container::attach::Session { tty: rec.config.tty, output: rx, input: None }
    };
    Ok(serve_session(&mut req, session, Some(keys), prefix))
}

pub async fn wait(d: D, req: Req) -> ApiResult<Resp> {
    let cond = WaitCondition::parse(req.q("condition").unwrap_or(""))?;
    let id = d.containers.get(req.param(0))?.id.clone();
    // Headers go out at once; the body comes when the condition holds (the CLI waits before
    // it starts a container, to catch quick exits).
    let (tx, rx) = mpsc::channel::<Bytes>(1);
    tokio::spawn(async move {
        let r = match d.containers.wait(&id, cond).await {
            Ok(code) => WaitResponse { status_code: code, error: None },
            Err(e) => WaitResponse { status_code: -1, error: Some(WaitExitError { message: e.to_string() }) },
        };
        let mut v = serde_json::to_vec(&r).unwrap_or_default();
        v.push(b'\n');
        let _ = tx.send(Bytes::from(v)).await;
    });
    Ok(http::stream("application/json", rx))
}

pub async fn remove(d: D, req: Req) -> ApiResult<Resp> {
    d.containers.remove(req.param(0), req.q_bool("force"), req.q_bool("v")).await?;
    Ok(http::empty(204))
}

/// `DELETE /containers/{parent}/{alias}?link=1`: removes one legacy link.
pub async fn remove_link(d: D, req: Req) -> ApiResult<Resp> {
    if !req.q_bool("link") {
        return Err(ApiError::bad_request("removing a link needs link=1"));
    }
    d.containers.remove_link(req.param(0), req.param(1)).await?;
    Ok(http::empty(204))
}

fn path_arg(req: &Req) -> ApiResult<String> {
    match req.q("path") {
        Some(p) if !p.is_empty() => Ok(p.to_string()),
        _ => Err(ApiError::bad_request("bad parameter: path cannot be empty")),
    }
}

fn stat_header(stat: &berth_api::models::PathStat) -> ::http::HeaderValue {
    let v = base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(stat).unwrap_or_default());
    ::http::HeaderValue::from_str(&v).unwrap_or(::http::HeaderValue::from_static(""))
}

pub async fn archive_head(d: D, req: Req) -> ApiResult<Resp> {
    let stat = d.containers.archive_stat(req.param(0), &path_arg(&req)?).await?;
    let mut r = http::empty(200);
    r.headers_mut().insert("X-Docker-Container-Path-Stat", stat_header(&stat));
    Ok(r)
}

pub async fn archive_get(d: D, req: Req) -> ApiResult<Resp> {
    let (stat, rx) = d.containers.archive_get(req.param(0), &path_arg(&req)?).await?;
    let mut r = http::stream("application/x-tar", rx);
    r.headers_mut().insert("X-Docker-Container-Path-Stat", stat_header(&stat));
    Ok(r)
}

pub async fn archive_put(d: D, mut req: Req) -> ApiResult<Resp> {
    let path = path_arg(&req)?;
    let no_overwrite = req.q_bool("noOverwriteDirNonDir");
    let copy_uid_gid = req.q_bool("copyUIDGID");
    let body = req.body_stream();
    d.containers.archive_put(req.param(0), &path, body, no_overwrite, copy_uid_gid).await?;
    Ok(http::empty(200))
}

pub async fn prune(d: D, req: Req) -> ApiResult<Resp> {
    let f = filters(&req)?;
    f.check_names(&["until", "label", "label!"]).map_err(ApiError::bad_request)?;
    let until = f.prune_until(berth_api::time::now_nanos()).map_err(ApiError::bad_request)?;
    let (deleted, reclaimed) = d
        .containers
        .prune(|rec| {
            until.is_none_or(|u| berth_api::time::parse_rfc3339(&rec.created).unwrap_or(0) <= u)
                && f.prune_labels_match(&rec.config.labels)
        })
        .await;
    Ok(http::json(
        200,
        &json!({"ContainersDeleted": if deleted.is_empty() { serde_json::Value::Null } else { json!(deleted) }, "SpaceReclaimed": reclaimed}),
    ))
}

pub async fn commit(d: D, mut req: Req) -> ApiResult<Resp> {
    let container = req.q("container").unwrap_or("").to_string();
    if container.is_empty() {
        return Err(ApiError::bad_request("container is required"));
    }
    let repo = req.q("repo").unwrap_or("").to_string();
    let tag = req.q("tag").unwrap_or("").to_string();
    let reference = match (repo.is_empty(), tag.is_empty()) {
        (true, _) => None,
        (false, true) => Some(repo),
        (false, false) => Some(format!("{repo}:{tag}")),
    };
    let changes: Vec<String> = req
        .q_all("changes")
        .iter()
        .flat_map(|c| c.split('\n'))
        .filter(|c| !c.trim().is_empty())
        .map(String::from)
        .collect();
    let opts = berth_image::commit::CommitOptions {
        reference,
        author: req.q("author").unwrap_or("").to_string(),
        comment: req.q("comment").unwrap_or("").to_string(),
        changes,
        ..Default::default()
    };
    let pause = req.q("pause").is_none_or(|p| p != "0" && !p.eq_ignore_ascii_case("false"));
    let _ = req.bytes().await?;
    let image = d.containers.commit(&container, opts, pause).await?;
    Ok(http::json(201, &IdResponse { id: image.id }))
}
