//! Blob uploads: `POST /v2/<name>/blobs/uploads/` and the session at its `Location`.
//!
//! - `POST` starts a session (`202`, `Location`, `Docker-Upload-UUID`, `Range: 0-0`);
//!   with `?digest=` and a body it is a monolithic upload (`201`); with `?mount=&from=` it
//!   links an existing blob from another repository the caller may pull (`201`), falling
//!   back to a new session otherwise.
//! - `PATCH` appends its body. A `Content-Range: a-b` must start at the current offset
//!   (else `416` with the offset in `Range`) and cover exactly the body.
//! - `PUT ?digest=` appends an optional last chunk and commits: the digest (sha256 or
//!   sha512) is checked, the blob installed, the session removed (`201`).
//! - `GET` reports the offset (`204`); `DELETE` cancels (`204`).
//!
//! Requests on one session are serialised. The sha256 of the bytes is computed as they are
//! written and kept in memory with the length it covers; if a session was interrupted or
//! the process restarted, the commit hashes the file again instead.

use super::bare;
use crate::auth::Scope;
use crate::error::{ErrorCode, RegistryError, Result};
use crate::http_util::{Body, ReqBody};
use crate::names::{Algorithm, Digest, Hasher, valid_upload_id, validate_name};
use crate::router::Ctx;
use crate::storage::UploadWriter;
use crate::{Registry, blocking};
use http::{Method, Response, StatusCode, header};
use http_body_util::BodyExt as _;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// In-memory state of the sessions this process has seen: a lock and the running hash.
#[derive(Default)]
pub struct UploadTable(Mutex<HashMap<String, Arc<tokio::sync::Mutex<HashState>>>>);

/// sha256 of the session's first `len` bytes, if known.
#[derive(Default)]
pub struct HashState {
    hasher: Option<Hasher>,
    len: u64,
}

impl UploadTable {
    fn get(&self, key: &str) -> Arc<tokio::sync::Mutex<HashState>> {
        self.0.lock().expect("upload table").entry(key.to_string()).or_default().clone()
    }

    fn remove(&self, key: &str) {
        self.0.lock().expect("upload table").remove(key);
    }
}

fn location(name: &str, id: &str) -> String {
    format!("/v2/{name}/blobs/uploads/{id}")
}

fn range(size: u64) -> String {
    format!("0-{}", size.saturating_sub(1))
}

fn unknown() -> RegistryError {
    RegistryError::api(ErrorCode::BlobUploadUnknown, "blob upload unknown to registry")
}

fn created(name: &str, d: &Digest) -> Response<Body> {
    bare(StatusCode::CREATED, [("location", format!("/v2/{name}/blobs/{d}")), ("docker-content-digest", d.to_string())])
}

fn in_progress(status: StatusCode, name: &str, id: &str, size: u64) -> Response<Body> {
    bare(status, [("location", location(name, id)), ("range", range(size)), ("docker-upload-uuid", id.to_string())])
}

pub async fn start(reg: &Registry, ctx: &Ctx, name: &str, body: ReqBody) -> Result<Response<Body>> {
    if let Some(d) = try_mount(reg, ctx, name).await? {
        return Ok(created(name, &d));
    }
    let (s, n) = (reg.storage.clone(), name.to_string());
    let id = blocking(move || s.create_upload(&n)).await?;
    let Some(digest) = ctx.query.get("digest") else {
        return Ok(in_progress(StatusCode::ACCEPTED, name, &id, 0));
    };
    let monolithic = async {
        let d = Digest::parse(digest)?;
        let mut st = HashState::default();
        append(reg, ctx, name, &id, body, &mut st).await?;
        commit(reg, name, &id, &d, &st).await?;
        Ok(d)
    };
    match monolithic.await {
        Ok(d) => Ok(created(name, &d)),
        Err(e) => {
            let (s, n, i) = (reg.storage.clone(), name.to_string(), id.clone());
            // The upload's error is what is returned; a session left behind is worth a line.
            if let Err(c) = blocking(move || s.cancel_upload(&n, &i)).await {
                tracing::warn!(repository = name, upload = %id, "removing the session of a failed upload: {c}");
            }
            Err(e)
        }
    }
}

/// A cross-repository mount, if asked for, allowed and possible.
async fn try_mount(reg: &Registry, ctx: &Ctx, name: &str) -> Result<Option<Digest>> {
    let (Some(m), Some(from)) = (ctx.query.get("mount"), ctx.query.get("from")) else {
        return Ok(None);
    };
    let (Ok(d), Ok(())) = (Digest::parse(m), validate_name(from)) else {
        return Ok(None);
    };
    if !reg.auth.grants_cover(&ctx.grants, &Scope::repository(from, &["pull"])) {
        return Ok(None);
    }
    let (s, n, f, d2) = (reg.storage.clone(), name.to_string(), from.to_string(), d.clone());
    let linked = blocking(move || Ok(s.repo_blob_size(&f, &d2)?.is_some() && s.link_blob(&n, &d2)?)).await?;
    Ok(linked.then_some(d))
}

pub async fn handle(reg: &Registry, ctx: &Ctx, name: &str, id: &str, body: ReqBody) -> Result<Response<Body>> {
    if !valid_upload_id(id) {
        return Err(unknown());
    }
    let key = format!("{name}/{id}");
    let state = reg.uploads.get(&key);
    let mut st = state.lock().await;
    match ctx.method {
        Method::GET => {
            let (s, n, i) = (reg.storage.clone(), name.to_string(), id.to_string());
            let size = blocking(move || s.upload_size(&n, &i)).await?.ok_or_else(unknown)?;
            Ok(in_progress(StatusCode::NO_CONTENT, name, id, size))
        }
        Method::PATCH => {
            let size = append(reg, ctx, name, id, body, &mut st).await?;
            Ok(in_progress(StatusCode::ACCEPTED, name, id, size))
        }
        Method::PUT => {
            let digest = ctx
                .query
                .get("digest")
                .ok_or_else(|| RegistryError::api(ErrorCode::DigestInvalid, "digest parameter missing"))?;
            let d = Digest::parse(digest)?;
            append(reg, ctx, name, id, body, &mut st).await?;
            let res = commit(reg, name, id, &d, &st).await;
            // Committed or discarded; after an I/O failure a fresh entry re-hashes the file.
            reg.uploads.remove(&key);
            res.map(|()| created(name, &d))
        }
        _ => {
            let (s, n, i) = (reg.storage.clone(), name.to_string(), id.to_string());
            let existed = blocking(move || s.cancel_upload(&n, &i)).await?;
            reg.uploads.remove(&key);
            if existed { Ok(bare(StatusCode::NO_CONTENT, [])) } else { Err(unknown()) }
        }
    }
}

/// Appends the request body to a session, honouring `Content-Range`; returns the new size.
/// On any failure the session is left exactly as it was.
async fn append(reg: &Registry, ctx: &Ctx, name: &str, id: &str, mut body: ReqBody, st: &mut HashState) -> Result<u64> {
    let _transfer = berth_distribution::heap::Transfer::begin();
    let mut w = reg.storage.open_upload(name, id).await?.ok_or_else(unknown)?;
    let start = w.start();
    let content_range = ctx.header(header::CONTENT_RANGE).map(parse_content_range).transpose()?;
    if let Some((a, _)) = content_range
        && a != start
    {
        return Err(RegistryError::RangeNotSatisfiable {
            content_range: None,
            range: Some(range(start)),
            location: Some(location(name, id)),
        });
    }
    if st.len != start || st.hasher.is_none() {
        st.hasher = (start == 0).then(|| Hasher::new(Algorithm::Sha256));
        st.len = 0;
    }
    let before = st.hasher.clone();
    let res = async {
        pump(&mut body, &mut w, st.hasher.as_mut()).await?;
        if let Some((a, b)) = content_range
            && b.checked_sub(a).and_then(|n| n.checked_add(1)) != Some(w.written())
        {
            return Err(RegistryError::api(ErrorCode::SizeInvalid, "body length does not match Content-Range"));
        }
        Ok(())
    }
    .await;
    if let Err(e) = res {
        w.abort().await;
        st.hasher = before;
        return Err(e);
    }
    let size = w.finish().await?;
    st.len = if st.hasher.is_some() { size } else { 0 };
    Ok(size)
}

async fn pump(body: &mut ReqBody, w: &mut UploadWriter, mut hasher: Option<&mut Hasher>) -> Result<()> {
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| RegistryError::api(ErrorCode::BlobUploadInvalid, format!("reading body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if let Some(h) = hasher.as_deref_mut() {
                h.update(&data);
            }
            w.write(&data).await?;
        }
    }
    Ok(())
}

async fn commit(reg: &Registry, name: &str, id: &str, d: &Digest, st: &HashState) -> Result<()> {
    let known = st.hasher.clone().map(|h| (h.finish(), st.len));
    let (s, n, i, d) = (reg.storage.clone(), name.to_string(), id.to_string(), d.clone());
    blocking(move || s.commit_upload(&n, &i, &d, known)).await.map(drop)
}

/// `a-b`, also accepting `bytes a-b/total` and `bytes=a-b`.
fn parse_content_range(v: &str) -> Result<(u64, u64)> {
    let bad = || RegistryError::api(ErrorCode::BlobUploadInvalid, format!("invalid Content-Range {v}"));
    let v = v.trim();
    let v = v.strip_prefix("bytes=").or_else(|| v.strip_prefix("bytes ")).unwrap_or(v);
    let v = v.split('/').next().unwrap_or(v);
    let (a, b) = v.split_once('-').ok_or_else(bad)?;
    let (a, b) = (a.trim().parse::<u64>().map_err(|_| bad())?, b.trim().parse::<u64>().map_err(|_| bad())?);
    if b < a {
        return Err(bad());
    }
    Ok((a, b))
}

#[cfg(test)]
mod tests {
    use super::parse_content_range;

    #[test]
    fn content_ranges() {
        assert_eq!(parse_content_range("0-99").unwrap(), (0, 99));
        assert_eq!(parse_content_range("bytes 100-199/*").unwrap(), (100, 199));
        assert!(parse_content_range("5-1").is_err());
        assert!(parse_content_range("x").is_err());
    }
}
