//! The route table: which path and method go to which handler, needing which access.
//!
//! ```text
//! GET        /v2/                                   base        (identity only)
//! GET        /v2/_catalog?n=&last=                  catalog     registry:catalog:*
//! GET        /v2/<name>/tags/list?n=&last=          tags        repository:<name>:pull
//! GET|HEAD   /v2/<name>/manifests/<ref>             manifests   pull
//! PUT        /v2/<name>/manifests/<ref>                         push
//! DELETE     /v2/<name>/manifests/<ref>                         delete
//! GET|HEAD   /v2/<name>/blobs/<digest>              blobs       pull
//! DELETE     /v2/<name>/blobs/<digest>                          delete
//! POST       /v2/<name>/blobs/uploads/              uploads     push (+ pull on ?from= to mount)
//! GET|PATCH|PUT|DELETE /v2/<name>/blobs/uploads/<uuid>          push
//! GET        /v2/<name>/referrers/<digest>          referrers   pull
//! GET        /v1/search?q=&n=&page=                 search      registry:catalog:search
//! GET        /v1/_ping                              ping        (none: `docker search` probes it)
//! GET        /token?service=&scope=                 token       (checks credentials itself)
//! ```
//!
//! `<name>` may have several `/`-separated components; a route is recognised by its tail, so
//! `/v2/team/app/blobs/uploads/` is an upload start for `team/app`. Every response, errors
//! included, carries `Docker-Distribution-API-Version: registry/2.0`. Writes answer
//! `405 UNSUPPORTED` in read-only mode before any credential check.

use crate::Registry;
use crate::auth::{Grants, Scope};
use crate::error::{ErrorCode, RegistryError, Result};
use crate::http_util::{self, Body, BoxError, Query, ReqBody};
use crate::names::{Digest, Reference, validate_name};
use crate::routes;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    Base,
    Catalog,
    Search,
    Token,
    Ping,
    Tags(String),
    Manifest(String, String),
    Blob(String, String),
    UploadStart(String),
    Upload(String, String),
    Referrers(String, String),
}

impl Route {
    pub(crate) fn parse(path: &str) -> Option<Route> {
        match path {
            "/v2" | "/v2/" => return Some(Route::Base),
            "/v2/_catalog" => return Some(Route::Catalog),
            "/v1/search" => return Some(Route::Search),
            "/token" | "/v2/token" => return Some(Route::Token),
            "/v1/_ping" => return Some(Route::Ping),
            _ => {}
        }
        let rest = path.strip_prefix("/v2/")?;
        let segs: Vec<&str> = rest.split('/').collect();
        let n = segs.len();
        let name = |k: usize| (n > k).then(|| segs[..n - k].join("/"));
        let tail = |k: usize| segs.get(n.wrapping_sub(k)).copied().unwrap_or("");
        let route = if n >= 3 && tail(2) == "tags" && tail(1) == "list" {
            Route::Tags(name(2)?)
        } else if n >= 4 && tail(3) == "blobs" && tail(2) == "uploads" {
            if tail(1).is_empty() { Route::UploadStart(name(3)?) } else { Route::Upload(name(3)?, tail(1).into()) }
        } else if n >= 3 && tail(2) == "blobs" && tail(1) == "uploads" {
            Route::UploadStart(name(2)?)
        } else if n >= 3 && tail(2) == "manifests" {
            Route::Manifest(name(2)?, tail(1).into())
        } else if n >= 3 && tail(2) == "blobs" {
            Route::Blob(name(2)?, tail(1).into())
        } else if n >= 3 && tail(2) == "referrers" {
            Route::Referrers(name(2)?, tail(1).into())
        } else {
            return None;
        };
        Some(route)
    }

    fn name(&self) -> Option<&str> {
        match self {
            Route::Tags(n)
            | Route::Manifest(n, _)
            | Route::Blob(n, _)
            | Route::UploadStart(n)
            | Route::Upload(n, _)
            | Route::Referrers(n, _) => Some(n),
            _ => None,
        }
    }

    /// The access a method on this route needs; `None` if the method is not allowed.
    fn needs(&self, method: &Method) -> Option<Vec<Scope>> {
        let repo = |a: &str| Some(vec![Scope::repository(self.name().unwrap_or(""), &[a])]);
        let read = method == Method::GET || method == Method::HEAD;
        match self {
            Route::Base if read => Some(vec![]),
            Route::Catalog if read => Some(vec![Scope::catalog("*")]),
            Route::Search if read => Some(vec![Scope::catalog("search")]),
            Route::Token | Route::Ping if read => Some(vec![]),
            Route::Tags(_) | Route::Referrers(..) if read => repo("pull"),
            Route::Manifest(..) | Route::Blob(..) if read => repo("pull"),
            Route::Manifest(..) if method == Method::PUT => repo("push"),
            Route::Manifest(..) | Route::Blob(..) if method == Method::DELETE => repo("delete"),
            Route::UploadStart(_) if method == Method::POST => repo("push"),
            Route::Upload(..) if [Method::GET, Method::PATCH, Method::PUT, Method::DELETE].contains(method) => {
                repo("push")
            }
            _ => None,
        }
    }
}

/// What a handler gets besides the body.
pub(crate) struct Ctx {
    pub method: Method,
    pub headers: HeaderMap,
    pub query: Query,
    pub grants: Grants,
}

impl Ctx {
    pub fn header(&self, name: impl http::header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Registry {
    /// Handles one request end to end: routing, name checks, read-only mode, auth, the
    /// handler, and the API-version header. Never fails: errors become spec responses.
    /// Tests call this directly, without a socket.
    pub async fn handle<B>(&self, req: Request<B>) -> Response<Body>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let req = req.map(|b| b.map_err(Into::into).boxed_unsync());
        let (method, path) = (req.method().clone(), req.uri().path().to_string());
        let mut resp = match self.dispatch(req).await {
            Ok(r) => r,
            Err(e) => {
                // The client gets the spec's envelope; the cause (a full disk, say) goes to the log.
                if e.status().is_server_error() {
                    tracing::error!(status = e.status().as_u16(), method = %method, path = %path, "{e}");
                }
                http_util::error_response(&e)
            }
        };
        resp.headers_mut().insert("docker-distribution-api-version", HeaderValue::from_static("registry/2.0"));
        resp
    }

    async fn dispatch(&self, req: Request<ReqBody>) -> Result<Response<Body>> {
        let (parts, body) = req.into_parts();
        let Some(route) = Route::parse(parts.uri.path()) else {
            return Ok(not_found());
        };
        if let Some(name) = route.name() {
            validate_name(name)?;
        }
        let Some(needs) = route.needs(&parts.method) else {
            return Err(RegistryError::api(ErrorCode::Unsupported, "method not allowed on this endpoint"));
        };
        let write = !(parts.method == Method::GET || parts.method == Method::HEAD);
        if write && self.config.read_only {
            return Err(RegistryError::api(ErrorCode::Unsupported, "the registry is in read-only mode"));
        }
        if let (true, Some(p)) = (write, &self.config.proxy) {
            return Err(RegistryError::api(
                ErrorCode::Unsupported,
                format!("the registry is a pull-through cache of {}: it accepts no pushes or deletes", p.remote),
            ));
        }
        let host = parts
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or(parts.uri.authority().map(|a| a.as_str()))
            // It goes into challenges: nothing that could break out of a quoted string.
            .filter(|h| h.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b)))
            .unwrap_or("localhost")
            .to_string();
        let query = Query::parse(parts.uri.query());
        match route {
            Route::Token => return routes::token::get(self, &parts.headers, &query).await,
            // `docker search` probes this before `/v1/search`, without credentials.
            Route::Ping => return Ok(http_util::json(StatusCode::OK, &serde_json::json!({}))),
            _ => {}
        }
        let grants = self.auth.authorize(&parts.headers, &host, &needs).await?;
        let ctx = Ctx { method: parts.method, headers: parts.headers, query, grants };
        match route {
            Route::Base => Ok(http_util::json(StatusCode::OK, &serde_json::json!({}))),
            Route::Catalog => routes::catalog::catalog(self, &ctx).await,
            Route::Search => routes::catalog::search(self, &ctx).await,
            Route::Tags(name) => routes::tags::list(self, &ctx, &name).await,
            Route::Manifest(name, r) => {
                if let Some(p) = &self.proxy {
                    p.manifest(&self.storage, &name, &Reference::parse(&r)?).await?;
                }
                routes::manifests::handle(self, &ctx, &name, &r, body).await
            }
            Route::Blob(name, d) => {
                if let Some(p) = &self.proxy {
                    p.blob(&self.storage, &name, &Digest::parse(&d)?).await?;
                }
                routes::blobs::handle(self, &ctx, &name, &d).await
            }
            Route::UploadStart(name) => routes::uploads::start(self, &ctx, &name, body).await,
            Route::Upload(name, id) => routes::uploads::handle(self, &ctx, &name, &id, body).await,
            Route::Referrers(name, d) => routes::referrers::list(self, &ctx, &name, &d).await,
            Route::Token | Route::Ping => unreachable!("handled above"),
        }
    }
}

fn not_found() -> Response<Body> {
    let mut r = Response::new(http_util::full("404 page not found\n"));
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}

/// A cloneable handle that serves requests for one registry; see [`Registry::handle`].
#[derive(Clone)]
pub struct Router(pub Arc<Registry>);

/// The registry's request handler, usable with or without a socket.
pub fn router(state: Arc<Registry>) -> Router {
    Router(state)
}

impl Router {
    pub async fn handle<B>(&self, req: Request<B>) -> Response<Body>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        self.0.handle(req).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_accept_multi_segment_names() {
        let p = |s: &str| Route::parse(s);
        assert_eq!(p("/v2/"), Some(Route::Base));
        assert_eq!(p("/v2/team/app/tags/list"), Some(Route::Tags("team/app".into())));
        assert_eq!(p("/v2/a/b/c/manifests/latest"), Some(Route::Manifest("a/b/c".into(), "latest".into())));
        assert_eq!(p("/v2/team/app/blobs/uploads/"), Some(Route::UploadStart("team/app".into())));
        assert_eq!(p("/v2/team/app/blobs/uploads"), Some(Route::UploadStart("team/app".into())));
        assert_eq!(p("/v2/x/blobs/uploads/abc"), Some(Route::Upload("x".into(), "abc".into())));
        assert_eq!(p("/v2/x/blobs/sha256:ab"), Some(Route::Blob("x".into(), "sha256:ab".into())));
        assert_eq!(p("/v2/x/referrers/sha256:ab"), Some(Route::Referrers("x".into(), "sha256:ab".into())));
        assert_eq!(p("/v2/manifests/latest"), None);
        assert_eq!(p("/v3/x"), None);
    }
}
