//! `docker push`: layers (only the missing ones), then the config, then the manifest.
//!
//! For each layer, in this order: a blob the registry is known to have for it in the target
//! repository or another one of the same registry is asked about with `HEAD` (`Layer
//! already exists`); one known in another repository of the same registry is mounted
//! (`Mounted from …`); otherwise the layer's tar is reassembled from its unpacked files,
//! gzip-compressed on every core while it streams (see [`crate::compress`]), and sent in
//! one chunked `PATCH`, each compressed member as it is (no copy), whose digest is computed
//! on the way and given to the closing `PUT`. Up to [`MAX_CONCURRENT_UPLOADS`]
//! layers move at once. The manifest (Docker v2 schema 2) goes last, so the tag only ever
//! names complete content.

use std::io::{self, Write};
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use tokio::task::JoinSet;

use berth_image::{Image, Reference};

use crate::auth::AuthConfig;
use crate::compress::{Members, ParallelGzip};
use crate::endpoint::{Attempts, Endpoint};
use crate::heap;
use crate::http::{ReqBody, drain};
use crate::manifest::{DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, Descriptor, ImageManifest};
use crate::metadata::{self, BlobSource};
use crate::progress::{Progress, Throttle, short};
use crate::pull::{Stores, sha256};
use crate::session::{Session, enc, error_of};
use crate::{DistError, Distribution, Result};

pub const MAX_CONCURRENT_UPLOADS: usize = 5;

#[derive(Debug, Clone)]
pub struct PushOptions {
    /// `repo` (every tag of it) or `repo:tag`.
    pub reference: Reference,
    pub auth: AuthConfig,
}

impl Distribution {
    pub async fn push(&self, stores: &Stores, opts: &PushOptions, progress: &Progress) -> Result<()> {
        let r = &opts.reference;
        let _transfer = heap::Transfer::begin();
        progress.status(format!("The push refers to repository [{}]", r.repository()));
        let tags: Vec<(String, Image)> = match &r.tag {
            Some(t) => {
                let img = stores.images.resolve(&r.full()).map_err(|_| no_such_tag(r))?;
                vec![(t.clone(), img)]
            }
            None => {
                let list: Vec<(String, Image)> = stores
                    .images
                    .tags_in_repository(r)
                    .into_iter()
                    .filter_map(|(full, id)| {
                        let tag = Reference::parse(&full).ok()?.tag?;
                        Some((tag, stores.images.get(&id)?))
                    })
                    .collect();
                if list.is_empty() {
                    return Err(no_such_tag(r));
                }
                list
            }
        };
        let mut attempts = Attempts::default();
        // Mirrors only serve pulls.
        let hub = r.domain == crate::endpoint::HUB_DOMAIN;
        for ep in self.options.endpoints(&r.domain).into_iter().filter(|e| !(hub && e.mirror)) {
            match self.push_to(&ep, stores, opts, &tags, progress).await {
                Ok(()) => return Ok(()),
                Err(e) => attempts.failed(e, &ep)?,
            }
        }
        Err(attempts.error(&r.domain))
    }

    async fn push_to(
        &self,
        ep: &Endpoint,
        stores: &Stores,
        opts: &PushOptions,
        tags: &[(String, Image)],
        progress: &Progress,
    ) -> Result<()> {
        let r = &opts.reference;
        // Every scope the push may need, asked for at once: uploads cannot be replayed.
        let mut scopes = vec![format!("repository:{}:pull,push", r.path)];
        for (_, img) in tags {
            for d in &img.config.rootfs.diff_ids {
                for src in metadata::sources(&stores.db, d) {
                    let sc = format!("repository:{}:pull", src.repository);
                    if src.registry == r.domain && src.repository != r.path && !scopes.contains(&sc) {
                        scopes.push(sc);
                    }
                }
            }
        }
        let s = Session::open(self.http.clone(), &ep.base, &opts.auth, scopes).await.map_err(|e| push_denied(e, r))?;
        for (tag, img) in tags {
            push_image(&s, stores, r, tag, img, progress).await.map_err(|e| push_denied(e, r))?;
        }
        Ok(())
    }
}

fn no_such_tag(r: &Reference) -> DistError {
    DistError::NotFound(format!("An image does not exist locally with the tag: {}", r.familiar_repository()))
}

fn push_denied(e: DistError, _r: &Reference) -> DistError {
    match e {
        DistError::Unauthorized(m) if !m.starts_with("unauthorized") => {
            DistError::Unauthorized(format!("unauthorized: {m}"))
        }
        e => e,
    }
}

async fn push_image(
    s: &Session,
    stores: &Stores,
    r: &Reference,
    tag: &str,
    img: &Image,
    progress: &Progress,
) -> Result<()> {
    let diff_ids = img.config.rootfs.diff_ids.clone();
    let mut unique: Vec<String> = Vec::new();
    for d in &diff_ids {
        if !unique.contains(d) {
            unique.push(d.clone());
            progress.layer(&short(d), "Preparing");
        }
    }
    for d in unique.iter().skip(MAX_CONCURRENT_UPLOADS) {
        progress.layer(&short(d), "Waiting");
    }
    let sem = Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_UPLOADS));
    let mut set = JoinSet::new();
    for (i, d) in unique.iter().enumerate() {
        let (s, stores, r, d, progress, sem) =
            (s.clone(), stores.clone(), r.clone(), d.clone(), progress.clone(), sem.clone());
        set.spawn(async move {
            let _p = sem.acquire_owned().await.map_err(|_| DistError::Internal("upload queue closed".into()))?;
            push_layer(s, &stores, &r, &d, &progress).await.map(|desc| (i, desc))
        });
    }
    let mut descs: Vec<Option<Descriptor>> = vec![None; unique.len()];
    while let Some(res) = set.join_next().await {
        let (i, desc) = res.map_err(|e| DistError::Internal(format!("upload task: {e}")))??;
        descs[i] = Some(desc);
    }
    let layers: Vec<Descriptor> = diff_ids
        .iter()
        .map(|d| {
            descs[unique.iter().position(|u| u == d).unwrap_or(0)]
                .clone()
                .ok_or_else(|| DistError::Internal("a layer was not pushed".into()))
        })
        .collect::<Result<_>>()?;

    let config_bytes = stores.images.content().read(&img.id)?;
    let mut s = s.clone();
    if !blob_exists(&mut s, r, &img.id).await? {
        let loc = start_upload(&mut s, r).await?;
        let url = with_digest(&s.resolve(&loc), &img.id);
        let mut h = HeaderMap::new();
        h.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/octet-stream"));
        let resp = s.send(Method::PUT, &url, h, ReqBody::full(config_bytes.clone())).await?;
        if resp.status() != StatusCode::CREATED {
            return Err(error_of(resp, "uploading the image config").await);
        }
        drain(resp).await;
    }

    let m = ImageManifest {
        schema_version: 2,
        media_type: DOCKER_MANIFEST.into(),
        config: Descriptor::new(DOCKER_CONFIG, config_bytes.len() as i64, &img.id),
        layers,
    };
    let body = serde_json::to_vec_pretty(&m).map_err(|e| DistError::Internal(format!("encoding the manifest: {e}")))?;
    let digest = sha256(&body);
    let mut h = HeaderMap::new();
    h.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(DOCKER_MANIFEST));
    let url = s.url(&format!("{}/manifests/{tag}", r.path));
    let resp = s.send(Method::PUT, &url, h, ReqBody::full(body.clone())).await?;
    if !resp.status().is_success() {
        return Err(error_of(resp, "").await);
    }
    drain(resp).await;
    let repo_digest = Reference { tag: None, digest: Some(digest.clone()), ..r.clone() };
    let images = stores.images.clone();
    let id = img.id.clone();
    tokio::task::spawn_blocking(move || images.set_ref(&repo_digest.full(), &id))
        .await
        .map_err(|e| DistError::Internal(e.to_string()))??;
    progress.status(format!("{tag}: digest: {digest} size: {}", body.len()));
    progress.aux(json!({ "Tag": tag, "Digest": digest, "Size": body.len() }));
    Ok(())
}

fn with_digest(url: &str, digest: &str) -> String {
    format!("{url}{}digest={}", if url.contains('?') { "&" } else { "?" }, enc(digest))
}

async fn blob_exists(s: &mut Session, r: &Reference, digest: &str) -> Result<bool> {
    let resp = s.head(&s.url(&format!("{}/blobs/{digest}", r.path))).await?;
    let st = resp.status();
    drain(resp).await;
    match st {
        StatusCode::OK => Ok(true),
        StatusCode::NOT_FOUND => Ok(false),
        StatusCode::UNAUTHORIZED => Err(DistError::Unauthorized("unauthorized: authentication required".into())),
        StatusCode::FORBIDDEN => Err(DistError::Denied("denied: requested access to the resource is denied".into())),
        st => Err(DistError::Registry(format!("checking blob {digest}: unexpected status {st}"))),
    }
}

/// `POST /blobs/uploads/`: the upload session's location.
async fn start_upload(s: &mut Session, r: &Reference) -> Result<String> {
    let url = s.url(&format!("{}/blobs/uploads/", r.path));
    let resp = s.send(Method::POST, &url, HeaderMap::new(), ReqBody::Empty).await?;
    if resp.status() != StatusCode::ACCEPTED {
        return Err(error_of(resp, "").await);
    }
    let loc = location(&resp)?;
    drain(resp).await;
    Ok(loc)
}

fn location(resp: &http::Response<hyper::body::Incoming>) -> Result<String> {
    resp.headers()
        .get(http::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
        .ok_or_else(|| DistError::Registry("the registry sent no Location for the upload".into()))
}

async fn push_layer(
    mut s: Session,
    stores: &Stores,
    r: &Reference,
    diff_id: &str,
    progress: &Progress,
) -> Result<Descriptor> {
    let id = short(diff_id);
    let record = |d: &Descriptor| {
        metadata::record(
            &stores.db,
            diff_id,
            BlobSource {
                digest: d.digest.clone(),
                media_type: d.media_type.clone(),
                size: d.size,
                registry: r.domain.clone(),
                repository: r.path.clone(),
            },
        )
    };
    let known: Vec<BlobSource> =
        metadata::sources(&stores.db, diff_id).into_iter().filter(|b| b.registry == r.domain).collect();
    let mut asked: Vec<&str> = Vec::new();
    for src in &known {
        if asked.contains(&src.digest.as_str()) {
            continue;
        }
        asked.push(&src.digest);
        if blob_exists(&mut s, r, &src.digest).await? {
            let d = Descriptor::new(&src.media_type, src.size, &src.digest);
            record(&d);
            progress.layer(&id, "Layer already exists");
            return Ok(d);
        }
        if src.repository == r.path {
            metadata::forget(&stores.db, diff_id, &src.digest, &src.registry, &src.repository);
        }
    }
    let mut session_loc = None;
    for src in known.iter().filter(|k| k.repository != r.path) {
        let url = s.url(&format!("{}/blobs/uploads/?mount={}&from={}", r.path, enc(&src.digest), enc(&src.repository)));
        let resp = s.send(Method::POST, &url, HeaderMap::new(), ReqBody::Empty).await?;
        match resp.status() {
            StatusCode::CREATED => {
                drain(resp).await;
                let d = Descriptor::new(&src.media_type, src.size, &src.digest);
                record(&d);
                progress.layer(&id, format!("Mounted from {}", src.repository));
                return Ok(d);
            }
            // The registry opened an ordinary upload instead: use it.
            StatusCode::ACCEPTED => {
                session_loc = location(&resp).ok();
                drain(resp).await;
                break;
            }
            _ => drain(resp).await,
        }
    }
    let loc = match session_loc {
        Some(l) => l,
        None => start_upload(&mut s, r).await?,
    };
    let total = stores.images.snapshots().layer(diff_id)?.map(|l| l.tar_size).unwrap_or(0);
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(16);
    let images = stores.images.clone();
    let (d2, p2, id2) = (diff_id.to_string(), progress.clone(), id.clone());
    let compress = tokio::task::spawn_blocking(move || -> Result<(String, u64)> {
        let gz = ParallelGzip::new(Upload { tx: tx.clone(), hasher: Sha256::new(), n: 0 });
        let mut counting = Counting { inner: gz, n: 0, total, throttle: Throttle::new(total), progress: p2, id: id2 };
        let r = images.snapshots().write_layer_tar(&d2, &mut counting);
        if let Err(e) = r {
            // The upload may have stopped already; the error is returned anyway.
            let _ = tx.blocking_send(Err(io::Error::other(e.to_string())));
            return Err(e.into());
        }
        let up = counting.inner.finish().map_err(|e| DistError::Unavailable(format!("uploading layer {d2}: {e}")))?;
        Ok((format!("sha256:{}", hex::encode(up.hasher.finalize())), up.n))
    });
    let mut h = HeaderMap::new();
    h.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/octet-stream"));
    let url = s.resolve(&loc);
    let resp = s.send(Method::PATCH, &url, h, ReqBody::Stream(rx)).await;
    let produced = compress.await.map_err(|e| DistError::Internal(format!("compressing: {e}")))?;
    let resp = resp?;
    if resp.status() != StatusCode::ACCEPTED && resp.status() != StatusCode::NO_CONTENT {
        return Err(error_of(resp, &format!("uploading layer {id}")).await);
    }
    let next = location(&resp).unwrap_or(loc);
    drain(resp).await;
    let (digest, size) = produced?;
    let url = with_digest(&s.resolve(&next), &digest);
    let resp = s.send(Method::PUT, &url, HeaderMap::new(), ReqBody::Empty).await?;
    if resp.status() != StatusCode::CREATED {
        return Err(error_of(resp, &format!("finishing the upload of layer {id}")).await);
    }
    drain(resp).await;
    let d = Descriptor::new(DOCKER_LAYER_GZIP, size as i64, &digest);
    record(&d);
    progress.layer(&id, "Pushed");
    Ok(d)
}

/// The compressed layer on its way out: hashed for its digest, counted, and handed to the
/// request body as is.
struct Upload {
    tx: tokio::sync::mpsc::Sender<io::Result<Bytes>>,
    hasher: Sha256,
    n: u64,
}

impl Members for Upload {
    fn member(&mut self, gz: Vec<u8>) -> io::Result<()> {
        self.hasher.update(&gz);
        self.n += gz.len() as u64;
        self.tx
            .blocking_send(Ok(Bytes::from(gz)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the upload was cut off"))
    }
}

/// Counts the uncompressed bytes of a layer for the progress bar.
struct Counting<W: Write> {
    inner: W,
    n: u64,
    total: u64,
    throttle: Throttle,
    progress: Progress,
    id: String,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        if self.throttle.due(self.n) {
            self.progress.bar(&self.id, "Pushing", self.n, self.total);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
