//! `docker pull`: manifest → config → layers, streamed, verified, published at once.
//!
//! Each missing layer is downloaded and unpacked at the same time, in a pipeline of two
//! threads so that both cores work on it: the HTTP body flows through a channel into a
//! blocking task that hashes the compressed bytes and decompresses them (gzip, zstd, or
//! none, recognised by their first bytes), and from there into another that unpacks the tar
//! into a staging directory (hashing it for the diff ID, and starting the disk writes of
//! large files early so the final sync has little left to wait for). Only when the blob's digest and size and the layer's diff ID all
//! match is the layer kept; the image is published with every layer in one step at the end
//! (see the crate docs). Up to [`MAX_CONCURRENT_DOWNLOADS`] layers move at once.

use std::io::{self, Read as _};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use tokio::task::JoinSet;

use berth_archive::apply::{ApplyOptions, apply_buffered};
use berth_archive::compress::decompressed_buf;
use berth_image::pulled::PulledLayer;
use berth_image::{ImageConfig, ImageStore, Reference};
use berth_store::db::Db;

use crate::auth::AuthConfig;
use crate::endpoint::{Attempts, Endpoint};
use crate::heap;
use crate::http::read_limited;
use crate::manifest::{self, Descriptor, ImageManifest, Parsed, Platform};
use crate::metadata::{self, BlobSource};
use crate::pipe::{self, ChannelReader};
use crate::progress::{Progress, Throttle, short};
use crate::session::{Session, error_message, error_of};
use crate::{DistError, Distribution, Result};

pub const MAX_CONCURRENT_DOWNLOADS: usize = 3;
const MAX_MANIFEST: usize = 4 << 20;
const MAX_CONFIG: usize = 16 << 20;

/// What the daemon's stores a transfer needs.
#[derive(Clone)]
pub struct Stores {
    pub images: Arc<ImageStore>,
    pub db: Arc<Db>,
}

#[derive(Debug, Clone)]
pub struct PullOptions {
    /// What to pull: `repo`, `repo:tag` or `repo@digest` (no tag means `latest`).
    pub reference: Reference,
    /// Every tag of the repository.
    pub all_tags: bool,
    /// `os/arch[/variant]`; default this host's.
    pub platform: Option<String>,
    pub auth: AuthConfig,
}

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

impl Distribution {
    /// Pulls `opts.reference`, reporting on `progress`. Errors found before the first
    /// message (an unknown manifest, a refused login) come back without any message sent,
    /// so the API can answer them with a status code, as Docker does.
    pub async fn pull(&self, stores: &Stores, opts: &PullOptions, progress: &Progress) -> Result<()> {
        let r = &opts.reference;
        let want = manifest::wanted_platform(opts.platform.as_deref())?;
        let _transfer = heap::Transfer::begin();
        let mut attempts = Attempts::default();
        for ep in self.options.endpoints(&r.domain) {
            match self.pull_from(&ep, stores, opts, &want, progress).await {
                Ok(()) => return Ok(()),
                Err(e) => attempts.failed(e, &ep)?,
            }
        }
        Err(attempts.error(&r.domain))
    }

    async fn pull_from(
        &self,
        ep: &Endpoint,
        stores: &Stores,
        opts: &PullOptions,
        want: &Platform,
        progress: &Progress,
    ) -> Result<()> {
        let r = &opts.reference;
        let scope = format!("repository:{}:pull", r.path);
        let mut s = Session::open(self.http.clone(), &ep.base, &opts.auth, vec![scope]).await?;
        if !opts.all_tags {
            let r = r.clone().with_default_tag();
            let (new, _) = pull_one(&mut s, stores, &r, want, Naming::Named, progress).await?;
            let what = if new { "Downloaded newer image for" } else { "Image is up to date for" };
            progress.status(format!("Status: {what} {}", r.familiar()));
            return Ok(());
        }
        let tags = list_tags(&mut s, r).await?;
        let mut any_new = false;
        for t in tags {
            let tr = Reference { tag: Some(t), digest: None, ..r.clone() };
            any_new |= pull_one(&mut s, stores, &tr, want, Naming::Named, progress).await?.0;
        }
        let what = if any_new { "Downloaded newer image for" } else { "Image is up to date for" };
        progress.status(format!("Status: {what} {}", r.familiar_repository()));
        Ok(())
    }
}

impl Distribution {
    /// Fetches the image `reference` names (one tag or digest, this host's platform) into
    /// the image store under no name, and returns its ID: what a build imports as cache
    /// (`--cache-from type=registry`) must not appear as a pulled image, as BuildKit's
    /// cache import does not. Its layers are the store's like any other's.
    pub async fn fetch_unnamed(
        &self,
        stores: &Stores,
        reference: &Reference,
        auth: &AuthConfig,
        progress: &Progress,
    ) -> Result<String> {
        let r = reference.clone().with_default_tag();
        let want = manifest::wanted_platform(None)?;
        let _transfer = heap::Transfer::begin();
        let mut attempts = Attempts::default();
        for ep in self.options.endpoints(&r.domain) {
            let scope = format!("repository:{}:pull", r.path);
            let got = match Session::open(self.http.clone(), &ep.base, auth, vec![scope]).await {
                Ok(mut s) => pull_one(&mut s, stores, &r, &want, Naming::Unnamed, progress).await,
                Err(e) => Err(e),
            };
            match got {
                Ok((_, id)) => return Ok(id),
                Err(e) => attempts.failed(e, &ep)?,
            }
        }
        Err(attempts.error(&r.domain))
    }
}

impl Distribution {
    /// What the registry serves for `reference` (`GET /distribution/{name}/json`): the
    /// manifest's descriptor and the platforms it has (an index's entries, or an image
    /// manifest's config's), without pulling anything.
    pub async fn inspect(&self, reference: &Reference, auth: &AuthConfig) -> Result<(Descriptor, Vec<Platform>)> {
        let r = reference.clone().with_default_tag();
        let which = r.digest.clone().or_else(|| r.tag.clone()).unwrap_or_else(|| "latest".into());
        let mut attempts = Attempts::default();
        for ep in self.options.endpoints(&r.domain) {
            let scope = format!("repository:{}:pull", r.path);
            let got = async {
                let mut s = Session::open(self.http.clone(), &ep.base, auth, vec![scope]).await?;
                let (body, ct, digest) = fetch_manifest(&mut s, &r, &which).await?;
                let platforms = match manifest::parse(&ct, &body)? {
                    Parsed::Index(i) => i.manifests.into_iter().filter_map(|m| m.platform).collect(),
                    Parsed::Image(m) => {
                        let config = fetch_blob_small(&mut s, &r, &m.config, MAX_CONFIG).await?;
                        let c = ImageConfig::parse(&config)?;
                        vec![Platform { architecture: c.architecture, os: c.os, variant: c.variant }]
                    }
                };
                let media_type = ct.split(';').next().unwrap_or_default().trim().to_string();
                Ok::<_, DistError>((Descriptor::new(&media_type, body.len() as i64, &digest), platforms))
            }
            .await;
            match got {
                Ok(v) => return Ok(v),
                Err(e) => attempts.failed(e, &ep)?,
            }
        }
        Err(attempts.error(&r.domain))
    }
}

/// Whether a pulled image gets the names it was pulled by.
#[derive(Clone, Copy, PartialEq)]
enum Naming {
    Named,
    Unnamed,
}

async fn list_tags(s: &mut Session, r: &Reference) -> Result<Vec<String>> {
    #[derive(Deserialize)]
    struct Tags {
        #[serde(default)]
        tags: Option<Vec<String>>,
    }
    let mut url = s.url(&format!("{}/tags/list?n=1000", r.path));
    let mut out = Vec::new();
    loop {
        let resp = s.get(&url, &[]).await?;
        if !resp.status().is_success() {
            return Err(denied_or(error_of(resp, "").await, r));
        }
        let next = resp
            .headers()
            .get(http::header::LINK)
            .and_then(|v| v.to_str().ok())
            .and_then(|l| l.split(';').next())
            .map(|l| l.trim().trim_start_matches('<').trim_end_matches('>').to_string());
        let body = read_limited(resp, MAX_MANIFEST).await?;
        let t: Tags = serde_json::from_slice(&body)
            .map_err(|e| DistError::Invalid(format!("tag list of {}: {e}", r.familiar_repository())))?;
        out.extend(t.tags.unwrap_or_default());
        match next {
            Some(n) if !n.is_empty() => url = s.resolve(&n),
            _ => break,
        }
    }
    if out.is_empty() {
        return Err(DistError::NotFound(format!("no tags found for {}", r.familiar_repository())));
    }
    Ok(out)
}

/// Docker's wording for a repository the caller may not read.
fn denied_or(e: DistError, r: &Reference) -> DistError {
    match e {
        DistError::Unauthorized(m) | DistError::Denied(m) => DistError::NotFound(format!(
            "pull access denied for {}, repository does not exist or may require 'docker login': {m}",
            r.familiar_repository()
        )),
        e => e,
    }
}

/// Fetches a manifest by tag or digest; returns its bytes, media type and digest.
async fn fetch_manifest(s: &mut Session, r: &Reference, which: &str) -> Result<(Bytes, String, String)> {
    let url = s.url(&format!("{}/manifests/{which}", r.path));
    let resp = s.get(&url, manifest::ACCEPT).await?;
    if !resp.status().is_success() {
        let status = resp.status();
        let e = error_of(resp, "").await;
        return Err(match (status, e) {
            (http::StatusCode::NOT_FOUND, DistError::NotFound(m)) => {
                let name = if which.starts_with("sha256:") {
                    format!("{}@{which}", r.familiar_repository())
                } else {
                    format!("{}:{which}", r.familiar_repository())
                };
                DistError::NotFound(format!("manifest for {name} not found: {m}"))
            }
            (_, e) => denied_or(e, r),
        });
    }
    let ct = resp.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let body = read_limited(resp, MAX_MANIFEST).await?;
    let digest = sha256(&body);
    if which.starts_with("sha256:") && digest != which {
        return Err(DistError::Invalid(format!("manifest verification failed for digest {which}")));
    }
    Ok((body, ct, digest))
}

/// Pulls one tag or digest; returns whether the local name now points somewhere new, and
/// the image's ID.
async fn pull_one(
    s: &mut Session,
    stores: &Stores,
    r: &Reference,
    want: &Platform,
    naming: Naming,
    progress: &Progress,
) -> Result<(bool, String)> {
    let which = r.digest.clone().or_else(|| r.tag.clone()).unwrap_or_else(|| "latest".into());
    let (body, ct, top_digest) = fetch_manifest(s, r, &which).await?;
    let m: ImageManifest = match manifest::parse(&ct, &body)? {
        Parsed::Image(m) => m,
        Parsed::Index(i) => {
            let d = manifest::select(&i, want).ok_or_else(|| {
                let v = if want.variant.is_empty() { String::new() } else { format!("/{}", want.variant) };
                DistError::NotFound(format!(
                    "no matching manifest for {}/{}{v} in the manifest list entries",
                    want.os, want.architecture
                ))
            })?;
            let (b, ct, _) = fetch_manifest(s, r, &d.digest).await?;
            match manifest::parse(&ct, &b)? {
                Parsed::Image(m) => m,
                Parsed::Index(_) => {
                    return Err(DistError::Invalid("a manifest list names another manifest list".into()));
                }
            }
        }
    };
    progress.send(berth_api::progress::JsonMessage::status_id(format!("Pulling from {}", r.path), which.clone()));

    let config_bytes = fetch_blob_small(s, r, &m.config, MAX_CONFIG).await?;
    let config = ImageConfig::parse(&config_bytes)?;
    let layers: Vec<&Descriptor> = m.layers.iter().collect();
    if let Some(f) = layers
        .iter()
        .find(|l| !l.urls.is_empty() || l.media_type.contains("foreign") || l.media_type.contains("nondistributable"))
    {
        return Err(DistError::Invalid(format!(
            "layer {} is a foreign layer, which berth does not download",
            f.digest
        )));
    }
    if config.rootfs.diff_ids.len() != layers.len() {
        return Err(DistError::Invalid(format!(
            "the image config lists {} layers but the manifest {}",
            config.rootfs.diff_ids.len(),
            layers.len()
        )));
    }
    let image_id = m.config.digest.clone();
    let mut refs = vec![Reference { tag: None, digest: Some(top_digest.clone()), ..r.clone() }];
    if r.digest.is_none() {
        refs.push(r.clone());
    }
    if naming == Naming::Unnamed {
        refs.clear();
    }
    let before = stores.images.resolve(&r.full()).ok().map(|i| i.id);

    // Which layers are missing, each once.
    let mut fetch: Vec<(Descriptor, String)> = Vec::new();
    for (l, diff_id) in layers.iter().zip(&config.rootfs.diff_ids) {
        let id = short(&l.digest);
        if stores.images.snapshots().layer(diff_id)?.is_some() {
            progress.layer(&id, "Already exists");
        } else if !fetch.iter().any(|(_, d)| d == diff_id) {
            progress.layer(&id, "Pulling fs layer");
            fetch.push(((*l).clone(), diff_id.clone()));
        }
    }
    for (l, _) in fetch.iter().skip(MAX_CONCURRENT_DOWNLOADS) {
        progress.layer(&short(&l.digest), "Waiting");
    }
    let pulled = download_all(s, stores, r, fetch, progress).await?;

    let images = stores.images.clone();
    let cb = config_bytes.clone();
    let refs2 = refs.clone();
    let image = tokio::task::spawn_blocking(move || images.add_pulled(pulled, &cb, &refs2))
        .await
        .map_err(|e| DistError::Internal(format!("publishing the image: {e}")))??;
    if image.id != image_id {
        return Err(DistError::Invalid(format!(
            "image config digest mismatch: manifest says {image_id}, got {}",
            image.id
        )));
    }
    for (l, diff_id) in layers.iter().zip(&config.rootfs.diff_ids) {
        metadata::record(
            &stores.db,
            diff_id,
            BlobSource {
                digest: l.digest.clone(),
                media_type: l.media_type.clone(),
                size: l.size,
                registry: r.domain.clone(),
                repository: r.path.clone(),
            },
        );
    }
    progress.status(format!("Digest: {top_digest}"));
    Ok((before.as_deref() != Some(image_id.as_str()), image_id))
}

async fn fetch_blob_small(s: &mut Session, r: &Reference, d: &Descriptor, limit: usize) -> Result<Bytes> {
    let url = s.url(&format!("{}/blobs/{}", r.path, d.digest));
    let resp = s.get(&url, &[]).await?;
    if !resp.status().is_success() {
        return Err(denied_or(error_of(resp, &format!("fetching blob {}", d.digest)).await, r));
    }
    let body = read_limited(resp, limit).await?;
    if sha256(&body) != d.digest {
        return Err(DistError::Invalid(format!(
            "blob {} failed verification: its content has a different digest",
            d.digest
        )));
    }
    Ok(body)
}

async fn download_all(
    s: &Session,
    stores: &Stores,
    r: &Reference,
    fetch: Vec<(Descriptor, String)>,
    progress: &Progress,
) -> Result<Vec<PulledLayer>> {
    let sem = Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_DOWNLOADS));
    let mut set = JoinSet::new();
    for (d, diff_id) in fetch {
        let (s, images, progress, sem, path) =
            (s.clone(), stores.images.clone(), progress.clone(), sem.clone(), r.path.clone());
        set.spawn(async move {
            let _permit = sem.acquire_owned().await.map_err(|_| DistError::Internal("download queue closed".into()))?;
            download_layer(s, images, &path, d, diff_id, progress).await
        });
    }
    let mut out = Vec::new();
    while let Some(res) = set.join_next().await {
        // The first failure ends the pull; dropping the set aborts the other downloads.
        out.push(res.map_err(|e| DistError::Internal(format!("download task: {e}")))??);
    }
    Ok(out)
}

async fn download_layer(
    mut s: Session,
    images: Arc<ImageStore>,
    repo: &str,
    d: Descriptor,
    diff_id: String,
    progress: Progress,
) -> Result<PulledLayer> {
    let id = short(&d.digest);
    let url = s.url(&format!("{repo}/blobs/{}", d.digest));
    let resp = s.get(&url, &[]).await?;
    if !resp.status().is_success() {
        let msg = error_message(resp).await;
        return Err(DistError::Registry(format!("fetching layer {}: {msg}", d.digest)));
    }
    let total = if d.size > 0 { d.size as u64 } else { 0 };
    let staging = images.snapshots().stage()?;
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(32);
    let (plain_tx, plain_rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(16);
    let want_digest = d.digest.clone();
    let inflate = tokio::task::spawn_blocking(move || inflate_stage(rx, plain_tx, &want_digest, total));
    let target = staging.path();
    let unpack = tokio::task::spawn_blocking(move || {
        apply_buffered(
            ChannelReader::new(plain_rx),
            &target,
            &ApplyOptions { record_skeleton: true, writeback: true, ..Default::default() },
        )
    });
    let mut body = resp.into_body();
    let mut n = 0u64;
    let mut throttle = Throttle::new(total);
    let mut cut = None;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => {
                let Ok(data) = f.into_data() else { continue };
                n += data.len() as u64;
                if tx.send(Ok(data)).await.is_err() {
                    break;
                }
                if throttle.due(n) {
                    progress.bar(&id, "Downloading", n, total);
                }
            }
            Err(e) => {
                let msg = format!("downloading layer {}: {e}", d.digest);
                // The reader may have stopped already; the error is returned below anyway.
                let _ = tx.send(Err(io::Error::other(msg.clone()))).await;
                cut = Some(msg);
                break;
            }
        }
    }
    drop(tx);
    let inflated = inflate.await.map_err(|e| DistError::Internal(format!("decompressing layer: {e}")));
    let applied = unpack.await.map_err(|e| DistError::Internal(format!("unpacking layer: {e}")));
    if let Some(msg) = cut {
        return Err(DistError::Unavailable(msg));
    }
    let applied = match (inflated?, applied?) {
        (Ok(()), Ok(a)) => a,
        (Err(Some(e)), _) => return Err(e),
        (_, Err(e)) => return Err(e.into()),
        (Err(None), Ok(_)) => return Err(DistError::Internal(format!("unpacking layer {}: stopped early", d.digest))),
    };
    if applied.diff_id != diff_id {
        return Err(DistError::Invalid(format!(
            "layer {} unpacks to {}, not the {diff_id} its image config names",
            d.digest, applied.diff_id
        )));
    }
    progress.layer(&id, "Verifying Checksum");
    progress.layer(&id, "Download complete");
    progress.bar(&id, "Extracting", applied.tar_size, applied.tar_size);
    progress.layer(&id, "Pull complete");
    Ok(PulledLayer {
        staging,
        diff_id,
        tar_size: applied.tar_size,
        size: applied.content_size,
        skeleton: applied.skeleton.unwrap_or_default(),
    })
}

/// The first stage of unpacking a layer, on its own thread so that it overlaps the second
/// (the tar unpacked, and hashed for the diff ID, by [`apply_buffered`]): hashes the blob as it
/// arrives, decompresses it (gzip, zstd or none, recognised by its first bytes) into
/// `out`, and checks the blob's digest and size at the end. A failure is also sent down
/// `out`, so the unpacking stops too. `Err(None)`: the unpacking stopped reading first, and
/// its error is the one to report.
fn inflate_stage(
    rx: tokio::sync::mpsc::Receiver<io::Result<Bytes>>,
    out: tokio::sync::mpsc::Sender<io::Result<Bytes>>,
    want_digest: &str,
    total: u64,
) -> std::result::Result<(), Option<DistError>> {
    let mut raw = ChannelReader::new(rx).hashing();
    let copied = (|| -> io::Result<()> {
        {
            // Enough of the start to recognise the compression by, however the body was cut.
            raw.fill_at_least(8)?;
            let (_, mut plain) = decompressed_buf(&mut raw)?;
            let mut chunks = pipe::Recycler::default();
            loop {
                // Decompressed straight into the chunk that is sent on: no copy in between.
                let mut chunk = chunks.take();
                let mut filled = 0;
                while filled < chunk.len() {
                    match plain.read(&mut chunk[filled..]) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    }
                }
                if filled > 0 {
                    chunk.truncate(filled);
                    out.blocking_send(Ok(chunks.sent(chunk.freeze())))
                        .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the unpacking stopped reading"))?;
                }
                if filled < pipe::CHUNK {
                    break;
                }
            }
        }
        // The rest of the blob (compression trailer, padding) counts for its digest too.
        io::copy(&mut raw, &mut io::sink()).map(drop)
    })();
    let failed = |msg: String| {
        // The reader may have stopped already; the message is returned anyway.
        let _ = out.blocking_send(Err(io::Error::other(msg.clone())));
        msg
    };
    match copied {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Err(None),
        Err(e) => return Err(Some(DistError::Unavailable(failed(format!("reading layer {want_digest}: {e}"))))),
        Ok(()) => {}
    }
    let (got, n) = raw.digest().unwrap_or_default();
    if got != want_digest || (total > 0 && n != total) {
        return Err(Some(DistError::Invalid(failed(format!(
            "filesystem layer verification failed for digest {want_digest}"
        )))));
    }
    Ok(())
}
