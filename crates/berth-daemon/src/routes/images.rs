//! `/images/...`.

use std::collections::BTreeMap;

use bytes::Bytes;
use tokio::sync::mpsc;

use berth_api::models::ImagePruneResponse;
use berth_api::progress::JsonMessage;
use berth_container::fs::{ChannelReader, ChannelWriter};
use berth_distribution::heap::Transfer;
use berth_image::Reference;
use berth_image::import::ImportOptions;

use super::{D, filters};
use crate::error::{ApiError, ApiResult, IntoApiError};
use crate::http::{self, Req, Resp};

pub async fn list(d: D, req: Req) -> ApiResult<Resp> {
    let f = filters(&req)?;
    f.check_names(&["before", "dangling", "label", "reference", "since", "until"]).map_err(ApiError::bad_request)?;
    let all = req.q_bool("all");
    let images = d.images.all();
    let resolve_created = |name: &str| -> ApiResult<i128> { Ok(d.images.resolve(name)?.config.created_nanos()) };
    let before = f.get("before").first().map(|n| resolve_created(n)).transpose()?;
    let since = f.get("since").first().map(|n| resolve_created(n)).transpose()?;
    let counts = d.containers.image_use_counts();
    let mut out = Vec::new();
    for img in &images {
        let tags = d.images.tags_of(&img.id);
        let dangling = tags.is_empty() && d.images.digests_of(&img.id).is_empty();
        // Intermediate images (build steps) are hidden unless --all, as in Docker.
        if !all && dangling && !d.images.children(&img.id).is_empty() {
            continue;
        }
        if let Some(v) = f.get("dangling").first() {
            let want = v == "true" || v == "1";
            if want != dangling {
                continue;
            }
        }
        if !f.labels_match("label", &img.config.config.labels) {
            continue;
        }
        if f.has("reference") && !f.get("reference").iter().any(|pat| tags.iter().any(|t| reference_matches(pat, t))) {
            continue;
        }
        let created = img.config.created_nanos();
        if before.is_some_and(|b| created >= b) || since.is_some_and(|s| created <= s) {
            continue;
        }
        let users = counts.get(&img.id).copied().unwrap_or(0);
        let mut s = d.images.summary(img, users);
        if f.has("reference") {
            s.repo_tags.retain(|t| f.get("reference").iter().any(|pat| reference_matches(pat, t)));
        }
        out.push(s);
    }
    out.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
    Ok(http::json(200, &out))
}

/// The `reference=` filter: a glob over `repo[:tag]` (`*` within a path component).
fn reference_matches(pattern: &str, tag: &str) -> bool {
    let repo = tag.rsplit_once(':').filter(|(_, t)| !t.contains('/')).map(|(r, _)| r).unwrap_or(tag);
    // A ':' before the last '/' is a registry's port, not a tag.
    let has_tag = pattern.rsplit('/').next().is_some_and(|last| last.contains(':'));
    berth_api::glob::matches(pattern, if has_tag { tag } else { repo })
}

pub async fn inspect(d: D, req: Req) -> ApiResult<Resp> {
    let img = d.images.resolve(req.param(0))?;
    Ok(http::json(200, &d.images.inspect(&img)))
}

pub async fn history(d: D, req: Req) -> ApiResult<Resp> {
    let img = d.images.resolve(req.param(0))?;
    Ok(http::json(200, &d.images.history(&img)))
}

pub async fn tag(d: D, req: Req) -> ApiResult<Resp> {
    let repo = req.q("repo").unwrap_or("");
    if repo.is_empty() {
        return Err(ApiError::bad_request("repository name must have at least one component"));
    }
    let target = match req.q("tag") {
        Some(t) if !t.is_empty() => format!("{repo}:{t}"),
        _ => repo.to_string(),
    };
    let img = d.images.tag(req.param(0), &target)?;
    let r = Reference::parse(&target)?.with_default_tag();
    let mut attrs = BTreeMap::new();
    attrs.insert("name".to_string(), r.familiar());
    d.events.emit("image", "tag", &img.id, attrs);
    Ok(http::empty(201))
}

pub async fn remove(d: D, req: Req) -> ApiResult<Resp> {
    let name = req.param(0).to_string();
    let force = req.q_bool("force");
    let prune = !req.q_bool("noprune");
    let d2 = d.clone();
    // dockerd names the image by its ID in untag events (with its labels).
    let target = d.images.resolve(&name).ok();
    let items = super::blocking(move || {
        let users = |id: &str| d2.containers.users_of_image(id);
        d2.images.delete(&name, force, prune, &users)
    })
    .await??;
    for it in &items {
        if let Some(t) = &it.untagged {
            let (id, mut a) = match &target {
                Some(img) => (img.id.clone(), img.config.config.labels.clone()),
                None => (t.clone(), BTreeMap::new()),
            };
            a.insert("name".to_string(), id.clone());
            d.events.emit("image", "untag", &id, a);
        }
        if let Some(id) = &it.deleted {
            d.events.emit("image", "delete", id, BTreeMap::new());
        }
    }
    Ok(http::json(200, &items))
}

pub async fn prune(d: D, req: Req) -> ApiResult<Resp> {
    let f = filters(&req)?;
    f.check_names(&["dangling", "until", "label", "label!"]).map_err(ApiError::bad_request)?;
    let all = f.get("dangling").first().is_some_and(|v| v == "false" || v == "0");
    let until = f.prune_until(berth_api::time::now_nanos()).map_err(ApiError::bad_request)?;
    let d2 = d.clone();
    let (deleted, reclaimed) = super::blocking(move || {
        let users = |id: &str| d2.containers.users_of_image(id);
        // What may go: as container, network and volume prune decide it (`label!` too).
        let keep = |img: &berth_image::Image| {
            until.is_none_or(|u| img.config.created_nanos() <= u) && f.prune_labels_match(&img.config.config.labels)
        };
        d2.images.prune(all, &keep, &users)
    })
    .await??;
    Ok(http::json(
        200,
        &ImagePruneResponse {
            images_deleted: if deleted.is_empty() { None } else { Some(deleted) },
            space_reclaimed: reclaimed,
        },
    ))
}

fn line(m: &JsonMessage) -> Bytes {
    Bytes::from(m.to_line())
}

/// `POST /images/create`: import (`fromSrc`), or pull (`fromImage`).
pub async fn create(d: D, mut req: Req) -> ApiResult<Resp> {
    if let Some(src) = req.q("fromSrc").filter(|s| !s.is_empty()).map(String::from) {
        let mut repo = req.q("repo").unwrap_or("").to_string();
        if let Some(t) = req.q("tag").filter(|t| !t.is_empty()) {
            repo = format!("{repo}:{t}");
        }
        let changes: Vec<String> = req
            .q_all("changes")
            .iter()
            .flat_map(|c| c.split('\n'))
            .filter(|c| !c.trim().is_empty())
            .map(String::from)
            .collect();
        let opts = ImportOptions {
            reference: (!repo.is_empty()).then_some(repo),
            changes,
            message: req.q("message").unwrap_or("").to_string(),
            source: src.clone(),
        };
        if let Some(r) = &opts.reference {
            Reference::parse(r)?;
        }
        for c in &opts.changes {
            berth_dockerfile::changes::apply_change(&mut Default::default(), c)?;
        }
        let body = if src == "-" {
            req.body_stream()
        } else if src.starts_with("http://") || src.starts_with("https://") {
            let resp = berth_distribution::http::download(&d.distribution.http, &src).await.map_err(|e| e.api())?;
            berth_distribution::http::body_channel(resp)
        } else {
            return Err(ApiError::bad_request(format!(
                "importing from {src}: a source is '-' (the request body) or an http(s) URL"
            )));
        };
        let (tx, rx) = mpsc::channel::<Bytes>(8);
        let d2 = d.clone();
        tokio::task::spawn_blocking(move || {
            let _transfer = Transfer::begin();
            let r = d2.images.import(ChannelReader::new(body), &opts);
            let msg = match &r {
                Ok(img) => JsonMessage::status(img.id.clone()),
                Err(e) => JsonMessage::error(e.to_string()),
            };
            if let Ok(img) = &r {
                d2.events.emit("image", "import", &img.id, BTreeMap::new());
            }
            let _ = tx.blocking_send(line(&msg));
        });
        return Ok(http::stream("application/json", rx));
    }
    if req.q("fromImage").is_some_and(|s| !s.is_empty()) {
        return super::distribution::pull(d, req).await;
    }
    Err(ApiError::bad_request("fromImage or fromSrc is required"))
}

pub async fn load(d: D, mut req: Req) -> ApiResult<Resp> {
    let body = req.body_stream();
    let (tx, rx) = mpsc::channel::<Bytes>(8);
    let d2 = d.clone();
    tokio::task::spawn_blocking(move || {
        let _transfer = Transfer::begin();
        match d2.images.load(ChannelReader::new(body)) {
            Ok(msgs) => {
                for m in msgs {
                    let _ = tx.blocking_send(line(&JsonMessage::stream(format!("{m}\n"))));
                    if let Some(name) = m.strip_prefix("Loaded image: ").or_else(|| m.strip_prefix("Loaded image ID: "))
                    {
                        // As dockerd: the image's ID as actor and name, with its labels.
                        let (id, mut a) = match d2.images.resolve(name) {
                            Ok(img) => (img.id.clone(), img.config.config.labels.clone()),
                            Err(_) => (name.to_string(), BTreeMap::new()),
                        };
                        a.insert("name".to_string(), id.clone());
                        d2.events.emit("image", "load", &id, a);
                    }
                }
            }
            Err(e) => {
                let _ = tx.blocking_send(line(&JsonMessage::error(e.api().message)));
            }
        }
    });
    Ok(http::stream("application/json", rx))
}

async fn save_names(d: D, names: Vec<String>) -> ApiResult<Resp> {
    if names.is_empty() {
        return Err(ApiError::bad_request("no image names given"));
    }
    for n in &names {
        let bare_repo = Reference::parse(n).ok().filter(|r| r.tag.is_none() && r.digest.is_none());
        let has_tags = bare_repo.as_ref().is_some_and(|r| !d.images.tags_in_repository(r).is_empty());
        if !has_tags {
            d.images.resolve(n)?;
        }
    }
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let d2 = d.clone();
    tokio::task::spawn_blocking(move || {
        let _transfer = Transfer::begin();
        let w = ChannelWriter::new(tx);
        // The client sees the archive end short; the cause is in the log (a client that went
        // away ends the stream the same way, which is no error of the daemon's).
        if let Err(e) = d2.images.save(&names, w) {
            tracing::warn!(images = %names.join(","), "docker save ended early: {e}");
        }
        for n in &names {
            let mut a = BTreeMap::new();
            a.insert("name".to_string(), n.clone());
            d2.events.emit("image", "save", n, a);
        }
    });
    Ok(http::stream("application/x-tar", rx))
}

pub async fn save(d: D, req: Req) -> ApiResult<Resp> {
    let names: Vec<String> = req.q_all("names").into_iter().map(String::from).collect();
    save_names(d, names).await
}

pub async fn save_one(d: D, req: Req) -> ApiResult<Resp> {
    save_names(d, vec![req.param(0).to_string()]).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_globs() {
        assert!(reference_matches("busybox", "busybox:latest"));
        assert!(reference_matches("busy*", "busybox:latest"));
        assert!(reference_matches("busybox:lat*", "busybox:latest"));
        assert!(!reference_matches("busybox:1", "busybox:latest"));
        assert!(!reference_matches("*", "team/app:1"));
        assert!(reference_matches("*/*", "team/app:1"));
        assert!(reference_matches("127.0.0.1:5000/app", "127.0.0.1:5000/app:v1"));
        assert!(reference_matches("127.0.0.1:5000/app:v1", "127.0.0.1:5000/app:v1"));
        assert!(!reference_matches("127.0.0.1:5000/app:v2", "127.0.0.1:5000/app:v1"));
    }

    #[test]
    fn json_lines() {
        let l = line(&JsonMessage::status("x"));
        assert_eq!(&l[..], b"{\"status\":\"x\"}\n");
    }
}
