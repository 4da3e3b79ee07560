//! berth's registry server: the OCI Distribution Spec v1.1 plus what Docker clients expect.
//!
//! `berth registry serve` runs [`serve`]; tests and embedders can build a [`Registry`] with
//! [`Registry::open`] and call [`Registry::handle`] (or a [`Router`]) without a socket, or
//! hand their own listener to [`serve_listener`].
//!
//! # What it speaks
//!
//! The full route table, with the access each route needs, is in `router.rs`. In short:
//! `GET /v2/`; blob `HEAD`/`GET` (with `Range`) and `DELETE`; uploads (monolithic,
//! chunked/streamed `PATCH` with `Content-Range` checks, cross-repository mount, status,
//! cancel); manifests by tag or digest for Docker v2 schema 2, Docker manifest lists, OCI
//! manifests and OCI indexes (with `subject`); tag listing and catalog with `Link`
//! pagination; the referrers API; Docker's `GET /v1/search`; and a token endpoint at
//! `/token`. Errors use the spec's envelope and codes ([`ErrorCode`]).
//!
//! # Storage
//!
//! A plain directory tree under [`Config::root`], documented in full in [`storage`]:
//!
//! ```text
//! blobs/<alg>/<hex[0..2]>/<hex>/data                      content by digest (layers, configs, manifests)
//! repositories/<name…>/_layers/<alg>/<hex>/link           blobs this repository has
//! repositories/<name…>/_manifests/revisions/<alg>/<hex>/  manifests it has (link, media_type)
//! repositories/<name…>/_manifests/tags/<tag>/current      tag -> digest
//! repositories/<name…>/_referrers/<alg>/<subject hex>/    manifests whose subject is that digest
//! repositories/<name…>/_uploads/<uuid>/                   upload sessions (data, startedat)
//! _tmp/                                                   staging for atomic renames
//! ```
//!
//! Every file is
//! written to a temp file, fsynced and renamed, so a crash or a killed upload never leaves
//! a partial blob or manifest where a reader could see it. Blob bodies stream both ways and
//! are hashed while they are written.
//!
//! # Auth
//!
//! Open, htpasswd basic auth, or Docker Hub's bearer-token flow; see [`auth`].
//!
//! # Garbage collection
//!
//! [`garbage_collect`] (and [`gc::garbage_collect_with`]) may run while the registry
//! serves; see [`gc`] for how it avoids deleting content an in-flight push still needs.
//!
//! # Pull-through cache
//!
//! With [`Config::proxy`] (`--proxy-remote`) the registry mirrors one remote registry,
//! fetching what clients ask for and keeping it; see [`proxy`].
//!
//! # TLS
//!
//! [`Config::tls`] (`--tls-cert`, `--tls-key`) makes [`serve`] and [`serve_listener`]
//! speak HTTPS; see [`tls`]. The seam is [`Acceptor`]: [`serve_listener_with`] hands each
//! accepted TCP stream to it before speaking HTTP, so routes and storage never know.

pub mod auth;
mod config;
mod error;
pub mod gc;
mod http_util;
pub mod manifest;
mod mapped;
pub mod names;
pub mod proxy;
mod router;
mod routes;
mod server;
pub mod storage;
pub mod tls;

pub use config::{Config, TokenConfig};
pub use error::{ErrorCode, RegistryError, Result};
pub use gc::{GcOptions, GcReport, garbage_collect};
pub use http_util::{Body, BoxError};
pub use router::{Router, router};
pub use server::{Acceptor, Plain, serve, serve_listener, serve_listener_with};
pub use tls::{Tls, TlsFiles};

use auth::{Auth, Mode, htpasswd::Htpasswd, token::TokenIssuer};
use routes::uploads::UploadTable;
use std::sync::Arc;
use storage::Storage;

/// One registry: its configuration, storage and auth. Shared by every connection.
pub struct Registry {
    config: Config,
    storage: Storage,
    auth: Auth,
    uploads: UploadTable,
    /// Loaded from [`Config::tls`] when the registry opens, so bad files fail early.
    tls: Option<Tls>,
    /// Pull-through cache mode ([`Config::proxy`]).
    proxy: Option<proxy::Proxy>,
    /// Blob files kept mapped between requests.
    maps: mapped::Maps,
}

impl Registry {
    /// Opens the storage root (creating it) and loads credentials. Fails on a configuration
    /// that cannot work: a token config without htpasswd, an unreadable htpasswd file.
    pub fn open(config: Config) -> Result<Arc<Registry>> {
        let storage = Storage::open(&config.root)?;
        let htpasswd = config
            .htpasswd
            .as_deref()
            .map(|p| Htpasswd::load(p).map_err(|e| RegistryError::Config(format!("htpasswd {}: {e}", p.display()))))
            .transpose()?;
        let mode = match (htpasswd, &config.token) {
            (None, None) => Mode::Open,
            (Some(h), None) => Mode::Basic(h),
            (Some(h), Some(t)) => Mode::Token(h, TokenIssuer::new(t, config.tls.is_some())),
            (None, Some(_)) => {
                return Err(RegistryError::Config("token auth needs an htpasswd file".into()));
            }
        };
        let auth = Auth { mode, anonymous_pull: config.anonymous_pull, basic_realm: config.basic_realm.clone() };
        let tls = config.tls.as_ref().map(Tls::load).transpose()?;
        let proxy = config.proxy.clone().map(proxy::Proxy::new);
        Ok(Arc::new(Registry {
            config,
            storage,
            auth,
            uploads: UploadTable::default(),
            tls,
            proxy,
            maps: mapped::Maps::default(),
        }))
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The TLS acceptor, when the registry serves HTTPS.
    pub fn tls(&self) -> Option<&Tls> {
        self.tls.as_ref()
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }
}

/// Runs blocking storage work off the async runtime.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| RegistryError::Internal(format!("storage task: {e}")))?
}
