//! `GET /v2/_catalog?n=&last=` and Docker's `GET /v1/search?q=&n=&page=`.
//!
//! Search is a case-insensitive substring match over the catalog, answered in the v1 JSON
//! that `docker search` reads: `{"num_results","query","page","page_size","num_pages",
//! "results":[{"name","description","star_count","is_official","is_automated"}]}`. `n`
//! defaults to 25 and is capped at 100; `page` starts at 1.

use super::tags::paginate;
use crate::error::Result;
use crate::http_util::{self, Body};
use crate::router::Ctx;
use crate::{Registry, blocking};
use http::{Response, StatusCode, header};
use serde_json::json;

pub async fn catalog(reg: &Registry, ctx: &Ctx) -> Result<Response<Body>> {
    let s = reg.storage.clone();
    let repos = blocking(move || s.catalog()).await?;
    let (page, next) = paginate(repos, ctx, "/v2/_catalog");
    let mut resp = http_util::json(StatusCode::OK, &json!({ "repositories": page }));
    if let Some(link) = next {
        resp.headers_mut().insert(header::LINK, link.parse().expect("encoded link"));
    }
    Ok(resp)
}

pub async fn search(reg: &Registry, ctx: &Ctx) -> Result<Response<Body>> {
    let q = ctx.query.get("q").unwrap_or("").to_string();
    let page_size = ctx.query.number("n").ok().flatten().filter(|&n| n > 0).unwrap_or(25).min(100);
    let page = ctx.query.number("page").ok().flatten().filter(|&p| p > 0).unwrap_or(1);
    let s = reg.storage.clone();
    let needle = q.to_lowercase();
    let matches: Vec<String> =
        blocking(move || s.catalog()).await?.into_iter().filter(|r| r.contains(&needle)).collect();
    let total = matches.len();
    let results: Vec<_> = matches
        .into_iter()
        .skip((page - 1).saturating_mul(page_size))
        .take(page_size)
        .map(|name| {
            json!({ "name": name, "description": "", "star_count": 0, "is_official": false, "is_automated": false })
        })
        .collect();
    Ok(http_util::json(
        StatusCode::OK,
        &json!({
            "num_results": total,
            "query": q,
            "page": page,
            "page_size": page_size,
            "num_pages": total.div_ceil(page_size),
            "results": results,
        }),
    ))
}
