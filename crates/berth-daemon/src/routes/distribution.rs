//! Registry traffic: `POST /images/create?fromImage=` (pull), `POST /images/{name}/push`,
//! `GET /distribution/{name}/json`, `POST /auth`, `GET /images/search`. The work is berth-distribution's; this module turns
//! requests into its options and its progress into Docker's JSON stream.
//!
//! A transfer that fails before its first progress message (an unknown manifest, refused
//! credentials, a registry that cannot be reached) is answered with an error status, as
//! Docker does, so `docker run` can tell a missing image from a broken one. Later failures
//! end the stream with an `errorDetail` message. A client that hangs up cancels the
//! transfer; whatever it had staged is discarded.

use std::future::Future;

use bytes::Bytes;
use serde_json::json;
use tokio::sync::mpsc;

use berth_api::progress::JsonMessage;
use berth_distribution::progress::Progress;
use berth_distribution::pull::{PullOptions, Stores};
use berth_distribution::push::PushOptions;
use berth_distribution::search::SearchFilters;
use berth_distribution::{AuthConfig, DistError};
use berth_image::Reference;

use super::{D, filters};
use crate::error::{ApiError, ApiResult, IntoApiError};
use crate::http::{self, Req, Resp};

fn stores(d: &D) -> Stores {
    Stores { images: d.images.clone(), db: d.db.clone() }
}

fn auth_of(req: &Req) -> AuthConfig {
    AuthConfig::from_header(req.header("X-Registry-Auth"))
}

/// Runs `work` with a progress channel and answers as described in the module docs.
async fn stream<F, Fut>(work: F) -> ApiResult<Resp>
where
    F: FnOnce(Progress) -> Fut,
    Fut: Future<Output = Result<(), DistError>> + Send + 'static,
{
    let (progress, mut rx) = Progress::channel();
    let mut task = tokio::spawn(work(progress));
    let first = match rx.recv().await {
        Some(m) => m,
        None => {
            return match (&mut task).await {
                Ok(Ok(())) => Ok(http::stream("application/json", mpsc::channel(1).1)),
                Ok(Err(e)) => Err(e.api()),
                Err(e) => Err(ApiError::internal(format!("transfer failed: {e}"))),
            };
        }
    };
    let (tx, out) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let mut next = Some(first);
        while let Some(m) = next {
            if tx.send(Bytes::from(m.to_line())).await.is_err() {
                task.abort();
                return;
            }
            next = rx.recv().await;
        }
        let end = match task.await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(format!("transfer failed: {e}")),
        };
        if let Some(e) = end {
            let _ = tx.send(Bytes::from(JsonMessage::error(e).to_line())).await;
        }
    });
    Ok(http::stream("application/json", out))
}

/// `POST /images/create?fromImage=…&tag=…`.
pub async fn pull(d: D, req: Req) -> ApiResult<Resp> {
    let image = req.q("fromImage").unwrap_or("");
    let tag = req.q("tag").unwrap_or("");
    let name = if tag.is_empty() || image.contains('@') {
        image.to_string()
    } else if tag.starts_with("sha256:") {
        format!("{image}@{tag}")
    } else {
        format!("{image}:{tag}")
    };
    let reference = Reference::parse(&name)?;
    // The API pulls every tag when neither a tag nor a digest is given (`pull -a`).
    let all_tags = tag.is_empty() && reference.tag.is_none() && reference.digest.is_none();
    let opts = PullOptions { reference, all_tags, platform: req.q("platform").map(String::from), auth: auth_of(&req) };
    let st = stores(&d);
    let d2 = d.clone();
    stream(move |p| async move {
        let r = d2.distribution.pull(&st, &opts, &p).await;
        if r.is_ok() {
            let mut a = std::collections::BTreeMap::new();
            a.insert("name".to_string(), opts.reference.clone().with_default_tag().familiar());
            d2.events.emit("image", "pull", &opts.reference.clone().with_default_tag().familiar(), a);
        }
        r
    })
    .await
}

/// `POST /images/{name}/push?tag=…` (no tag: every tag of the repository).
pub async fn push(d: D, req: Req) -> ApiResult<Resp> {
    let mut reference = Reference::parse(req.param(0))?;
    if let Some(t) = req.q("tag").filter(|t| !t.is_empty()) {
        reference = Reference::parse(&format!("{}:{t}", reference.familiar_repository()))?;
    }
    if reference.digest.is_some() {
        return Err(ApiError::bad_request("cannot push a digest reference"));
    }
    let opts = PushOptions { reference, auth: auth_of(&req) };
    let st = stores(&d);
    let d2 = d.clone();
    stream(move |p| async move {
        let r = d2.distribution.push(&st, &opts, &p).await;
        if r.is_ok() {
            let name = opts.reference.familiar();
            let mut a = std::collections::BTreeMap::new();
            a.insert("name".to_string(), name.clone());
            d2.events.emit("image", "push", &name, a);
        }
        r
    })
    .await
}

/// `GET /distribution/{name}/json`: the registry's descriptor of the image and its
/// platforms (buildx asks for it after pushing a build's result, for its digest).
pub async fn inspect(d: D, req: Req) -> ApiResult<Resp> {
    let reference = Reference::parse(req.param(0))?;
    let (desc, platforms) = d.distribution.inspect(&reference, &auth_of(&req)).await.map_err(|e| e.api())?;
    Ok(http::json(
        200,
        &json!({
            "Descriptor": { "mediaType": desc.media_type, "digest": desc.digest, "size": desc.size },
            "Platforms": platforms,
        }),
    ))
}

/// `POST /auth`.
pub async fn auth(d: D, mut req: Req) -> ApiResult<Resp> {
    let a: AuthConfig = req.json().await?;
    let status = d.distribution.login(&a).await.map_err(|e| e.api())?;
    Ok(http::json(200, &json!({ "Status": status, "IdentityToken": "" })))
}

/// `GET /images/search?term=&limit=&filters=`.
pub async fn search(d: D, req: Req) -> ApiResult<Resp> {
    let term = req.q("term").unwrap_or("").to_string();
    let limit = req.q_i64("limit")?.unwrap_or(0).max(0) as usize;
    let f = filters(&req)?;
    f.check_names(&["stars", "is-official", "is-automated"]).map_err(ApiError::bad_request)?;
    let bool_of = |k: &str| -> ApiResult<Option<bool>> {
        f.get(k)
            .first()
            .map(|v| match v.as_str() {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                v => Err(ApiError::bad_request(format!("invalid filter '{k}={v}'"))),
            })
            .transpose()
    };
    let stars = f
        .get("stars")
        .first()
        .map(|v| v.parse::<i64>().map_err(|_| ApiError::bad_request(format!("invalid filter 'stars={v}'"))))
        .transpose()?;
    let sf = SearchFilters { stars, is_official: bool_of("is-official")?, is_automated: bool_of("is-automated")? };
    let results = d.distribution.search(&term, limit, &sf, &auth_of(&req)).await.map_err(|e| e.api())?;
    Ok(http::json(200, &results))
}
