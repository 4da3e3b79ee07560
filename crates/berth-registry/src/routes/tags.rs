//! `GET /v2/<name>/tags/list?n=&last=`, and the pagination the catalog shares.
//!
//! Results are sorted; `last` is exclusive; `n` caps the page. When more remain the
//! response has `Link: </v2/<name>/tags/list?last=<last returned>&n=<n>>; rel="next"`.
//! Without `n` everything is returned. An unparsable `n` is ignored.

use crate::error::{ErrorCode, RegistryError, Result};
use crate::http_util::{self, Body, encode};
use crate::router::Ctx;
use crate::{Registry, blocking};
use http::{Response, StatusCode, header};

pub async fn list(reg: &Registry, ctx: &Ctx, name: &str) -> Result<Response<Body>> {
    let (s, n) = (reg.storage.clone(), name.to_string());
    let tags = blocking(move || {
        if !s.repo_exists(&n) {
            return Err(RegistryError::with_detail(ErrorCode::NameUnknown, "repository name not known to registry", n));
        }
        s.tags(&n)
    })
    .await?;
    let (page, next) = paginate(tags, ctx, &format!("/v2/{name}/tags/list"));
    let mut resp = http_util::json(StatusCode::OK, &serde_json::json!({ "name": name, "tags": page }));
    if let Some(link) = next {
        resp.headers_mut().insert(header::LINK, link.parse().expect("encoded link"));
    }
    Ok(resp)
}

/// One page of sorted `items` after `?last=`, at most `?n=`, and the `Link` value for the
/// next page if there is one.
pub(crate) fn paginate(items: Vec<String>, ctx: &Ctx, path: &str) -> (Vec<String>, Option<String>) {
    let n = ctx.query.number("n").ok().flatten();
    let last = ctx.query.get("last").filter(|l| !l.is_empty());
    let mut rest: Vec<String> = items.into_iter().filter(|i| last.is_none_or(|l| i.as_str() > l)).collect();
    let Some(n) = n else { return (rest, None) };
    if rest.len() <= n {
        return (rest, None);
    }
    rest.truncate(n);
    let next = rest.last().map(|l| format!("<{path}?last={}&n={n}>; rel=\"next\"", encode(l)));
    (rest, next)
}
