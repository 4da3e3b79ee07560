//! One conversation with one registry endpoint: authentication, retries after a challenge,
//! redirects, and the registry's error envelope turned into Docker's messages.
//!
//! [`Session::open`] pings `GET /v2/` as Docker does. A `401` there tells which scheme the
//! registry wants: with `Basic` the credentials go with every request; with `Bearer` a token
//! for the session's scopes is fetched from the realm (sending the credentials, if any, as
//! basic auth) and sent with every request. A later `401` to a request that can be replayed
//! (no streamed body) is answered once more: its challenge may name a scope the session
//! did not ask for (a mount's source repository), which is added before fetching a new
//! token. Streamed uploads cannot be replayed, so callers open the session with every scope
//! they need. Redirects (blob downloads served from storage elsewhere) are followed for
//! `GET` and `HEAD`, and credentials are only ever sent to the registry's own origin.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;

use crate::auth::{AuthConfig, Challenge, TokenResponse, basic_header, parse_challenge};
use crate::http::{HttpClient, ReqBody, drain, read_limited};
use crate::{DistError, Result};

const MAX_REDIRECTS: usize = 8;

#[derive(Clone)]
pub struct Session {
    http: Arc<HttpClient>,
    /// `scheme://host[:port]` of the endpoint.
    pub base: String,
    creds: Option<(String, String)>,
    registry_token: String,
    scopes: Vec<String>,
    authz: Option<String>,
    challenge: Option<Challenge>,
}

/// Percent-encodes a query component.
pub fn enc(s: &str) -> String {
    berth_api::percent::encode_query(s)
}

fn same_origin(a: &str, b: &str) -> bool {
    let o = |u: &str| u.split('/').take(3).collect::<Vec<_>>().join("/");
    o(a) == o(b)
}

impl Session {
    /// Pings the endpoint and authenticates for `scopes` (`repository:team/app:pull,push`).
    pub async fn open(http: Arc<HttpClient>, base: &str, auth: &AuthConfig, scopes: Vec<String>) -> Result<Session> {
        let mut s = Session {
            http,
            base: base.trim_end_matches('/').to_string(),
            creds: auth.credentials(),
            registry_token: auth.registry_token.clone(),
            scopes,
            authz: None,
            challenge: None,
        };
        let url = format!("{}/v2/", s.base);
        let resp = s.raw(Method::GET, &url, &HeaderMap::new(), ReqBody::Empty).await?;
        match resp.status() {
            StatusCode::OK => drain(resp).await,
            StatusCode::UNAUTHORIZED => {
                let ch = challenge_of(&resp);
                drain(resp).await;
                match ch {
                    Some(c) => s.answer(c).await?,
                    None => {
                        return Err(DistError::Unauthorized(format!("{url}: 401 Unauthorized without a challenge")));
                    }
                }
            }
            st => {
                let msg = error_message(resp).await;
                return Err(DistError::Unavailable(format!("Get \"{url}\": unexpected status {st}: {msg}")));
            }
        }
        Ok(s)
    }

    /// Whether the session carries credentials of any kind.
    pub fn authenticated(&self) -> bool {
        self.authz.is_some()
    }

    /// `base/v2/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/v2/{}", self.base, path)
    }

    /// Turns a `Location` header (absolute or relative) into a URL.
    pub fn resolve(&self, location: &str) -> String {
        if location.contains("://") {
            location.to_string()
        } else if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            format!("{}/{location}", self.base)
        }
    }

    async fn answer(&mut self, ch: Challenge) -> Result<()> {
        match &ch {
            Challenge::Basic { .. } => {
                self.authz = self.creds.as_ref().map(|(u, p)| basic_header(u, p));
            }
            Challenge::Bearer { realm, service, scope, .. } => {
                for sc in scope {
                    if !self.scopes.contains(sc) {
                        self.scopes.push(sc.clone());
                    }
                }
                let token = if self.registry_token.is_empty() {
                    self.fetch_token(realm, service).await?
                } else {
                    self.registry_token.clone()
                };
                self.authz = Some(format!("Bearer {token}"));
            }
        }
        self.challenge = Some(ch);
        Ok(())
    }

    async fn fetch_token(&self, realm: &str, service: &str) -> Result<String> {
        if realm.is_empty() {
            return Err(DistError::Unauthorized("the registry's bearer challenge names no realm".into()));
        }
        let mut url = format!("{realm}{}service={}", if realm.contains('?') { "&" } else { "?" }, enc(service));
        for sc in &self.scopes {
            url.push_str(&format!("&scope={}", enc(sc)));
        }
        let mut headers = HeaderMap::new();
        if let Some((u, p)) = &self.creds {
            url.push_str(&format!("&account={}", enc(u)));
            if let Ok(v) = basic_header(u, p).parse() {
                headers.insert(http::header::AUTHORIZATION, v);
            }
        }
        let resp = self.raw(Method::GET, &url, &headers, ReqBody::Empty).await?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let msg = error_message(resp).await;
            return Err(DistError::Unauthorized(format!("unauthorized: {msg}")));
        }
        if !status.is_success() {
            let msg = error_message(resp).await;
            return Err(DistError::Unavailable(format!("fetching a token from {realm}: {status}: {msg}")));
        }
        let body = read_limited(resp, 1 << 20).await?;
        let t: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| DistError::Invalid(format!("token response from {realm}: {e}")))?;
        let t = t.value();
        if t.is_empty() {
            return Err(DistError::Unauthorized(format!("the token endpoint {realm} returned no token")));
        }
        Ok(t)
    }

    async fn raw(&self, method: Method, url: &str, headers: &HeaderMap, body: ReqBody) -> Result<Response<Incoming>> {
        let mut req = Request::builder()
            .method(method)
            .uri(url)
            .body(body)
            .map_err(|e| DistError::Invalid(format!("request to {url}: {e}")))?;
        *req.headers_mut() = headers.clone();
        req.headers_mut().insert(
            http::header::USER_AGENT,
            http::HeaderValue::from_static(concat!("berth/", env!("CARGO_PKG_VERSION"))),
        );
        self.http.send(req).await
    }

    /// Sends a request with the session's credentials, answering one more challenge and
    /// following redirects. `url` is absolute (see [`Session::url`]).
    pub async fn send(
        &mut self,
        method: Method,
        url: &str,
        headers: HeaderMap,
        body: ReqBody,
    ) -> Result<Response<Incoming>> {
        let mut url = url.to_string();
        let mut body = Some(body);
        let mut retried = false;
        for _ in 0..MAX_REDIRECTS {
            let replay = body.as_ref().and_then(ReqBody::replayable);
            let mut h = headers.clone();
            if same_origin(&url, &self.base)
                && let Some(a) = self.authz.as_ref().and_then(|a| a.parse().ok())
            {
                h.insert(http::header::AUTHORIZATION, a);
            }
            let b = body.take().ok_or_else(|| DistError::Internal("request body already sent".into()))?;
            let resp = self.raw(method.clone(), &url, &h, b).await?;
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED
                && !retried
                && replay.is_some()
                && same_origin(&url, &self.base)
                && let Some(ch) = challenge_of(&resp)
            {
                // Only worth another try if it could change the answer.
                let useful = matches!(&ch, Challenge::Bearer { .. }) || (self.authz.is_none() && self.creds.is_some());
                if useful {
                    drain(resp).await;
                    self.answer(ch).await?;
                    retried = true;
                    body = replay;
                    continue;
                }
            }
            if status.is_redirection()
                && (method == Method::GET || method == Method::HEAD)
                && let Some(loc) = resp.headers().get(http::header::LOCATION).and_then(|v| v.to_str().ok())
            {
                let next = if loc.contains("://") { loc.to_string() } else { absolute(&url, loc) };
                drain(resp).await;
                url = next;
                body = replay;
                continue;
            }
            return Ok(resp);
        }
        Err(DistError::Registry(format!("too many redirects fetching {url}")))
    }

    pub async fn get(&mut self, url: &str, accept: &[&str]) -> Result<Response<Incoming>> {
        let mut h = HeaderMap::new();
        for a in accept {
            if let Ok(v) = a.parse() {
                h.append(http::header::ACCEPT, v);
            }
        }
        self.send(Method::GET, url, h, ReqBody::Empty).await
    }

    pub async fn head(&mut self, url: &str) -> Result<Response<Incoming>> {
        self.send(Method::HEAD, url, HeaderMap::new(), ReqBody::Empty).await
    }
}

fn absolute(current: &str, loc: &str) -> String {
    let origin: String = current.split('/').take(3).collect::<Vec<_>>().join("/");
    if loc.starts_with('/') {
        format!("{origin}{loc}")
    } else {
        let dir = current.rsplit_once('/').map(|(d, _)| d).unwrap_or(&origin);
        format!("{dir}/{loc}")
    }
}

fn challenge_of(resp: &Response<Incoming>) -> Option<Challenge> {
    let all: Vec<Challenge> = resp
        .headers()
        .get_all(http::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(parse_challenge)
        .collect();
    all.iter().find(|c| matches!(c, Challenge::Bearer { .. })).or(all.first()).cloned()
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    errors: Vec<EnvelopeError>,
}

#[derive(Deserialize)]
struct EnvelopeError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// The registry's error as Docker prints it: `manifest unknown: <message>` (the spec's
/// code in lower case, then its message), or the status line when there is no envelope.
pub async fn error_message(resp: Response<Incoming>) -> String {
    let status = resp.status();
    let body = read_limited(resp, 1 << 20).await.unwrap_or_default();
    envelope_message(status, &body)
}

pub fn envelope_message(status: StatusCode, body: &Bytes) -> String {
    let parsed: Option<Envelope> = serde_json::from_slice(body).ok();
    let msgs: Vec<String> = parsed
        .map(|e| e.errors)
        .unwrap_or_default()
        .into_iter()
        .map(|e| {
            let code = e.code.to_lowercase().replace('_', " ");
            if e.message.is_empty() { code } else { format!("{code}: {}", e.message) }
        })
        .collect();
    if msgs.is_empty() {
        let reason = status.canonical_reason().unwrap_or("");
        return format!("{} {reason}", status.as_u16()).trim().to_string();
    }
    msgs.join("; ")
}

/// A failed response as a typed error, with `what` (`manifest for x`) in front.
pub async fn error_of(resp: Response<Incoming>, what: &str) -> DistError {
    let status = resp.status();
    let msg = error_message(resp).await;
    let text = if what.is_empty() { msg } else { format!("{what}: {msg}") };
    match status {
        StatusCode::NOT_FOUND => DistError::NotFound(text),
        StatusCode::UNAUTHORIZED => DistError::Unauthorized(text),
        StatusCode::FORBIDDEN => DistError::Denied(text),
        StatusCode::BAD_REQUEST => DistError::Invalid(text),
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT => {
            DistError::Unavailable(text)
        }
        _ => DistError::Registry(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_read_like_docker() {
        let b =
            Bytes::from_static(br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#);
        assert_eq!(envelope_message(StatusCode::NOT_FOUND, &b), "manifest unknown: manifest unknown");
        assert_eq!(envelope_message(StatusCode::BAD_GATEWAY, &Bytes::new()), "502 Bad Gateway");
        assert_eq!(absolute("http://h:1/v2/a/blobs/x", "/other"), "http://h:1/other");
        assert!(same_origin("http://h:1/v2/x", "http://h:1"));
        assert!(!same_origin("http://h:2/v2/x", "http://h:1"));
        assert_eq!(enc("repository:a/b:pull"), "repository%3Aa%2Fb%3Apull");
    }
}
