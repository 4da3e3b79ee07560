//! HTTPS to registries (rustls with ring).
//!
//! Trusted roots, as dockerd takes them: the system's bundle
//! (`/etc/ssl/certs/ca-certificates.crt`, Debian's `ca-certificates`) plus, per registry,
//! every `*.crt` in `/etc/docker/certs.d/<host[:port]>/` and `/etc/berth/certs.d/<host[:port]>/`
//! (a private registry's CA).

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::{DistError, Result};

const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
const CERTS_DIRS: &[&str] = &["/etc/docker/certs.d", "/etc/berth/certs.d"];

fn add_pem_file(roots: &mut rustls::RootCertStore, path: &Path) -> usize {
    let Ok(iter) = CertificateDer::pem_file_iter(path) else { return 0 };
    let certs: Vec<CertificateDer<'static>> = iter.filter_map(|c| c.ok()).collect();
    roots.add_parsable_certificates(certs).0
}

/// The system bundle, read once.
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        CertificateDer::pem_file_iter(SYSTEM_BUNDLE).map(|i| i.filter_map(|c| c.ok()).collect()).unwrap_or_default()
    })
}

/// The client configuration for `authority`; certs.d is read on every call so a CA added
/// while the daemon runs is used from the next connection on, as with dockerd.
fn config_for(authority: &str) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(system_roots().iter().cloned());
    for dir in CERTS_DIRS {
        let Ok(rd) = std::fs::read_dir(Path::new(dir).join(authority)) else { continue };
        for e in rd.flatten() {
            if e.path().extension().is_some_and(|x| x == "crt") {
                add_pem_file(&mut roots, &e.path());
            }
        }
    }
    if roots.is_empty() {
        return Err(DistError::Unavailable(format!(
            "no trusted certificates: install ca-certificates ({SYSTEM_BUNDLE}) or put the registry's CA in /etc/docker/certs.d/{authority}/"
        )));
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| DistError::Internal(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Performs the TLS handshake with `host` (`authority` is `host[:port]`, which names its
/// certs.d directory) over `tcp`.
pub async fn connect(tcp: TcpStream, host: &str, authority: &str, url: &http::Uri) -> Result<TlsStream<TcpStream>> {
    let cfg = config_for(authority)?;
    let name = ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']').to_string())
        .map_err(|e| DistError::Invalid(format!("Get \"{url}\": invalid server name {host}: {e}")))?;
    tokio_rustls::TlsConnector::from(cfg)
        .connect(name, tcp)
        .await
        .map_err(|e| DistError::Unavailable(format!("Get \"{url}\": tls: {e}")))
}
