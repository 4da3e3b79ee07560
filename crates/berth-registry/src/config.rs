//! How a registry is set up. Build with [`Config::new`] and assign the fields you need; the
//! structs are `#[non_exhaustive]` so fields can be added without breaking callers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Where [`crate::serve`] listens.
    pub addr: SocketAddr,
    /// The storage root (see [`crate::storage`] for its layout). Created if missing.
    pub root: PathBuf,
    /// An htpasswd file (bcrypt entries). With it alone the registry uses basic auth; with
    /// [`Config::token`] as well, it is the credential store of the token endpoint.
    pub htpasswd: Option<PathBuf>,
    /// Bearer-token auth (Docker Hub's flow). Requires `htpasswd`.
    pub token: Option<TokenConfig>,
    /// Refuse every write (`POST`, `PUT`, `PATCH`, `DELETE`) with `405 UNSUPPORTED`.
    pub read_only: bool,
    /// With auth on, let callers without credentials pull, list tags, read the catalog and
    /// search; pushes and deletes still need a login.
    pub anonymous_pull: bool,
    /// The realm named in `WWW-Authenticate: Basic` challenges.
    pub basic_realm: String,
    /// Serve HTTPS with this certificate and key instead of plain HTTP.
    pub tls: Option<crate::tls::TlsFiles>,
    /// Serve as a pull-through cache of this remote registry (`--proxy-remote`).
    pub proxy: Option<crate::proxy::ProxyConfig>,
}

impl Config {
    /// An open (no auth), writable registry on `addr` storing under `root`.
    pub fn new(addr: SocketAddr, root: impl Into<PathBuf>) -> Config {
        Config {
            addr,
            root: root.into(),
            htpasswd: None,
            token: None,
            read_only: false,
            anonymous_pull: false,
            basic_realm: "berth-registry".into(),
            tls: None,
            proxy: None,
        }
    }
}

#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TokenConfig {
    /// The token endpoint URL put in challenges. `None`: `http://<Host header>/token` (or
    /// `https://` when the registry serves TLS itself), this server's own endpoint; set it
    /// explicitly behind a proxy.
    pub realm: Option<String>,
    /// The `service` of challenges and the `aud` of tokens (Docker Hub: `registry.docker.io`).
    pub service: String,
    /// The `iss` of tokens.
    pub issuer: String,
    /// HMAC key signing tokens. `None`: random per process, so tokens die with a restart.
    pub key: Option<Vec<u8>>,
    /// Token lifetime (`expires_in`).
    pub ttl: Duration,
}

impl TokenConfig {
    pub fn new(service: impl Into<String>) -> TokenConfig {
        TokenConfig {
            realm: None,
            service: service.into(),
            issuer: "berth-registry".into(),
            key: None,
            ttl: Duration::from_secs(300),
        }
    }
}
