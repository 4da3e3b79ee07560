//! Pull-through cache mode (`--proxy-remote URL`, distribution's `proxy.remoteurl`): the
//! registry serves another registry's content, keeping a copy of what it served.
//!
//! # Contract
//!
//! - A manifest asked for **by tag** is fetched from the remote every time (tags move) and
//!   stored with the tag; if the remote cannot be reached or fails, the copy is served
//!   when there is one, so a cache keeps working through an upstream outage.
//! - A manifest **by digest** and a **blob** are fetched only if missing: content-addressed
//!   things never change. But a blob cached for one repository is served under another
//!   only when that one is known to hold it (a manifest pulled through it names it, or
//!   the remote answers a HEAD for it there): a private repository's layers must not be
//!   readable under any name. Each is checked against its digest before it is stored (a blob
//!   is streamed to a temporary file while hashed), so nothing wrong is ever served.
//! - The remote's answer for something it does not have is the client's answer (its error
//!   code and status); anything else from the remote (unreachable, a 5xx) becomes
//!   `UNAVAILABLE` naming the remote.
//! - Pushes and deletes are refused (`UNSUPPORTED`), as in distribution: the cache mirrors
//!   one upstream and has no content of its own.
//! - Credentials for the remote (`--proxy-username`, `--proxy-password`) go to it through
//!   the registry client's usual 401 → token flow; the cache's own clients authenticate
//!   against the cache's auth, as for any registry.

use std::io::Write;
use std::sync::Arc;

use berth_distribution::AuthConfig;
use berth_distribution::http::HttpClient;
use berth_distribution::session::Session;
use http::StatusCode;
use http_body_util::BodyExt as _;
use sha2::{Digest as _, Sha256};

use crate::error::{ErrorCode, RegistryError, Result};
use crate::manifest::MAX_MANIFEST_BYTES;
use crate::names::{Algorithm, Digest, Reference};
use crate::storage::{Storage, StoredManifest};

/// What `Accept` asks the remote for: every manifest type the registry stores.
const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
];

#[derive(Debug, Clone, Default)]
pub struct ProxyConfig {
    /// `scheme://host[:port]` of the remote registry.
    pub remote: String,
    pub username: String,
    pub password: String,
}

pub(crate) struct Proxy {
    config: ProxyConfig,
    http: Arc<HttpClient>,
}

fn unavailable(remote: &str, e: impl std::fmt::Display) -> RegistryError {
    RegistryError::api(ErrorCode::Unavailable, format!("the remote registry {remote} failed: {e}"))
}

impl Proxy {
    pub(crate) fn new(config: ProxyConfig) -> Proxy {
        Proxy { config, http: Arc::new(HttpClient::new()) }
    }

    async fn session(&self, name: &str) -> Result<Session> {
        let auth = AuthConfig {
            username: self.config.username.clone(),
            password: self.config.password.clone(),
            ..Default::default()
        };
        Session::open(self.http.clone(), &self.config.remote, &auth, vec![format!("repository:{name}:pull")])
            .await
            .map_err(|e| unavailable(&self.config.remote, e))
    }

    /// The remote's error for a request it answered with `status`.
    async fn remote_error(
        &self,
        status: StatusCode,
        resp: http::Response<hyper::body::Incoming>,
        code: ErrorCode,
        what: &str,
    ) -> RegistryError {
        let msg = berth_distribution::session::error_message(resp).await;
        match status {
            StatusCode::NOT_FOUND => RegistryError::with_detail(
                code,
                format!("{what} unknown to the remote registry {}: {msg}", self.config.remote),
                what,
            ),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => RegistryError::api(
                ErrorCode::Denied,
                format!("the remote registry {} refused access: {msg}", self.config.remote),
            ),
            _ => unavailable(&self.config.remote, format!("{status}: {msg}")),
        }
    }

    /// Makes the manifest `r` of `name` current in `storage`: by tag always (falling back
    /// to the copy when the remote fails), by digest when missing.
    pub(crate) async fn manifest(&self, storage: &Storage, name: &str, r: &Reference) -> Result<()> {
        if let Reference::Digest(d) = r
            && storage.has_manifest(name, d)
        {
            return Ok(());
        }
        match self.fetch_manifest(storage, name, r).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let cached = match r {
                    Reference::Tag(t) => storage.resolve_tag(name, t)?.is_some(),
                    Reference::Digest(_) => false,
                };
                if cached && e.code() == Some(ErrorCode::Unavailable) { Ok(()) } else { Err(e) }
            }
        }
    }

    async fn fetch_manifest(&self, storage: &Storage, name: &str, r: &Reference) -> Result<()> {
        let mut s = self.session(name).await?;
        let what = match r {
            Reference::Tag(t) => t.clone(),
            Reference::Digest(d) => d.to_string(),
        };
        let url = s.url(&format!("{name}/manifests/{what}"));
        let resp = s.get(&url, MANIFEST_TYPES).await.map_err(|e| unavailable(&self.config.remote, e))?;
        let status = resp.status();
        if status != StatusCode::OK {
            return Err(self.remote_error(status, resp, ErrorCode::ManifestUnknown, &what).await);
        }
        let media_type =
            resp.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let mut body = resp.into_body();
        let mut bytes = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| unavailable(&self.config.remote, e))?;
            if let Ok(data) = frame.into_data() {
                if bytes.len() + data.len() > MAX_MANIFEST_BYTES {
                    return Err(unavailable(&self.config.remote, "manifest too large"));
                }
                bytes.extend_from_slice(&data);
            }
        }
        let parsed = crate::manifest::parse(Some(&media_type), &bytes)?;
        let digest = match r {
            Reference::Digest(want) => {
                let got = Digest::of(want.algorithm, &bytes);
                if &got != want {
                    return Err(unavailable(&self.config.remote, format!("manifest {want} arrived with digest {got}")));
                }
                got
            }
            Reference::Tag(_) => Digest::of(Algorithm::Sha256, &bytes),
        };
        let tag = match r {
            Reference::Tag(t) => Some(t.clone()),
            Reference::Digest(_) => None,
        };
        let m = StoredManifest { digest, media_type: parsed.media_type.clone(), bytes };
        let (st, n) = (storage.clone(), name.to_string());
        crate::blocking(move || st.put_manifest(&n, &m, tag.as_deref(), None)).await
    }

    /// Whether a manifest the cache holds for `name` (pulled through it from the remote)
    /// names the blob `d`.
    fn named_by_a_manifest(&self, storage: &Storage, name: &str, d: &Digest) -> Result<bool> {
        for rev in storage.revisions(name)? {
            if let Some(m) = storage.get_manifest(name, &rev)?
                && crate::manifest::parse(Some(&m.media_type), &m.bytes).is_ok_and(|p| p.blobs.contains(d))
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Makes the blob `d` of `name` present in `storage`, fetching it if missing. A blob
    /// already cached for another repository is linked to `name` only when a manifest of
    /// `name` names it or the remote confirms `name` has it.
    pub(crate) async fn blob(&self, storage: &Storage, name: &str, d: &Digest) -> Result<()> {
        if storage.repo_blob_size(name, d)?.is_some() {
            return Ok(());
        }
        if storage.blob_size(d)?.is_some() {
            // Cached for another repository: served under this one only if this one is
            // known to hold it, or the remote says so (it may be private to the other).
            if !self.named_by_a_manifest(storage, name, d)? {
                let mut s = self.session(name).await?;
                let url = s.url(&format!("{name}/blobs/{d}"));
                let resp = s.head(&url).await.map_err(|e| unavailable(&self.config.remote, e))?;
                let status = resp.status();
                if status != StatusCode::OK {
                    return Err(self.remote_error(status, resp, ErrorCode::BlobUnknown, &d.to_string()).await);
                }
            }
            storage.link_blob(name, d)?;
            return Ok(());
        }
        let mut s = self.session(name).await?;
        let url = s.url(&format!("{name}/blobs/{d}"));
        let resp = s.get(&url, &[]).await.map_err(|e| unavailable(&self.config.remote, e))?;
        let status = resp.status();
        if status != StatusCode::OK {
            return Err(self.remote_error(status, resp, ErrorCode::BlobUnknown, &d.to_string()).await);
        }
        if d.algorithm != Algorithm::Sha256 {
            return Err(RegistryError::api(ErrorCode::Unsupported, "the cache verifies sha256 blobs only"));
        }
        let tmp = storage.tmp_dir().join(format!("proxy-{}", crate::storage::random_id()));
        let mut file = std::fs::File::create(&tmp).map_err(|e| RegistryError::io("creating a blob", e))?;
        let mut h = Sha256::new();
        let mut body = resp.into_body();
        let fetched: Result<()> = async {
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| unavailable(&self.config.remote, e))?;
                if let Ok(data) = frame.into_data() {
                    h.update(&data);
                    file.write_all(&data).map_err(|e| RegistryError::io("writing a blob", e))?;
                }
            }
            let got = format!("sha256:{}", hex::encode(h.finalize()));
            if got != d.to_string() {
                return Err(unavailable(&self.config.remote, format!("blob {d} arrived with digest {got}")));
            }
            file.sync_all().map_err(|e| RegistryError::io("writing a blob", e))?;
            storage.install_blob(&tmp, d)?;
            storage.link_blob(name, d)?;
            Ok(())
        }
        .await;
        // Gone already when the blob was installed (renamed). One that stays is swept by
        // garbage-collect later.
        if let Err(e) = std::fs::remove_file(&tmp)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(file = %tmp.display(), "removing a proxied blob's temporary file: {e}");
        }
        fetched
    }
}
