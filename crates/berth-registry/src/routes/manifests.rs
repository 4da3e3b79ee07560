//! `GET|HEAD|PUT|DELETE /v2/<name>/manifests/<tag|digest>`.
//!
//! `PUT` validates (see [`crate::manifest`]), requires every referenced blob, or for an
//! index every child manifest, to be in this repository (`MANIFEST_BLOB_UNKNOWN` names the
//! first missing one), stores the exact bytes under their digest and points the tag at
//! them. A manifest with a `subject` is recorded as its referrer and the response carries
//! `OCI-Subject`. `GET` serves the stored bytes with the stored media type, whatever the
//! `Accept` header says (the registry never converts). `DELETE` by digest removes the
//! revision and every tag pointing at it; by tag it only untags.

use super::bare;
use crate::error::{ErrorCode, RegistryError, Result};
use crate::http_util::{self, Body, ReqBody};
use crate::manifest::{self, MAX_MANIFEST_BYTES};
use crate::names::{Algorithm, Digest, Reference};
use crate::router::Ctx;
use crate::storage::StoredManifest;
use crate::{Registry, blocking};
use http::{Method, Response, StatusCode, header};
use http_body_util::BodyExt as _;

pub async fn handle(reg: &Registry, ctx: &Ctx, name: &str, reference: &str, body: ReqBody) -> Result<Response<Body>> {
    let r = Reference::parse(reference)?;
    match ctx.method {
        Method::PUT => put(reg, ctx, name, r, body).await,
        Method::DELETE => delete(reg, name, r).await,
        _ => get(reg, ctx, name, r).await,
    }
}

fn unknown(what: &str) -> RegistryError {
    RegistryError::with_detail(ErrorCode::ManifestUnknown, "manifest unknown to registry", what)
}

async fn get(reg: &Registry, ctx: &Ctx, name: &str, r: Reference) -> Result<Response<Body>> {
    let (s, n) = (reg.storage.clone(), name.to_string());
    let m = blocking(move || {
        let d = match &r {
            Reference::Digest(d) => d.clone(),
            Reference::Tag(t) => s.resolve_tag(&n, t)?.ok_or_else(|| missing(&s, &n, t))?,
        };
        s.get_manifest(&n, &d)?.ok_or_else(|| missing(&s, &n, &d.to_string()))
    })
    .await?;
    let len = m.bytes.len();
    let body = if ctx.method == Method::HEAD { http_util::empty() } else { http_util::full(m.bytes) };
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, m.media_type)
        .header("docker-content-digest", m.digest.to_string())
        .header(header::ETAG, format!("\"{}\"", m.digest))
        .header(header::CONTENT_LENGTH, len)
        .body(body)
        .expect("valid headers"))
}

/// `NAME_UNKNOWN` for a repository that does not exist, else `MANIFEST_UNKNOWN`.
fn missing(s: &crate::storage::Storage, name: &str, what: &str) -> RegistryError {
    if s.repo_exists(name) {
        unknown(what)
    } else {
        RegistryError::with_detail(ErrorCode::NameUnknown, "repository name not known to registry", name)
    }
}

async fn put(reg: &Registry, ctx: &Ctx, name: &str, r: Reference, mut body: ReqBody) -> Result<Response<Body>> {
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| RegistryError::api(ErrorCode::ManifestInvalid, format!("reading body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > MAX_MANIFEST_BYTES {
                return Err(RegistryError::api(ErrorCode::ManifestInvalid, "manifest too large"));
            }
            bytes.extend_from_slice(&data);
        }
    }
    let parsed = manifest::parse(ctx.header(header::CONTENT_TYPE), &bytes)?;
    let (digest, tag) = match r {
        Reference::Digest(want) => {
            let got = Digest::of(want.algorithm, &bytes);
            if got != want {
                return Err(RegistryError::with_detail(
                    ErrorCode::DigestInvalid,
                    "manifest digest does not match its content",
                    serde_json::json!({ "expected": want.to_string(), "actual": got.to_string() }),
                ));
            }
            (want, None)
        }
        Reference::Tag(t) => (Digest::of(Algorithm::Sha256, &bytes), Some(t)),
    };
    let stored = StoredManifest { digest: digest.clone(), media_type: parsed.media_type.clone(), bytes };
    let (s, n, subject) = (reg.storage.clone(), name.to_string(), parsed.subject.clone());
    blocking(move || {
        for b in &parsed.blobs {
            // Refresh first: once seen here, a concurrent GC's grace period covers the blob.
            s.touch_blob(b)?;
            if s.repo_blob_size(&n, b)?.is_none() {
                return Err(blob_unknown(b));
            }
        }
        for m in &parsed.manifests {
            s.touch_blob(m)?;
            if !s.has_manifest(&n, m) {
                return Err(blob_unknown(m));
            }
        }
        s.put_manifest(&n, &stored, tag.as_deref(), parsed.subject.as_ref())
    })
    .await?;
    let mut headers =
        vec![("location", format!("/v2/{name}/manifests/{digest}")), ("docker-content-digest", digest.to_string())];
    if let Some(sub) = subject {
        headers.push(("oci-subject", sub.to_string()));
    }
    Ok(bare(StatusCode::CREATED, headers))
}

fn blob_unknown(d: &Digest) -> RegistryError {
    RegistryError::with_detail(
        ErrorCode::ManifestBlobUnknown,
        "manifest references a blob unknown to the repository",
        d.to_string(),
    )
}

async fn delete(reg: &Registry, name: &str, r: Reference) -> Result<Response<Body>> {
    let (s, n) = (reg.storage.clone(), name.to_string());
    blocking(move || match &r {
        Reference::Tag(t) => s.untag(&n, t)?.then_some(()).ok_or_else(|| missing(&s, &n, t)),
        Reference::Digest(d) => {
            let subject = s.get_manifest(&n, d)?.and_then(|m| manifest::subject_of(&m.bytes));
            s.delete_manifest(&n, d, subject.as_ref())?.then_some(()).ok_or_else(|| missing(&s, &n, &d.to_string()))
        }
    })
    .await?;
    Ok(bare(StatusCode::ACCEPTED, []))
}
