//! HTTPS: the certificate chain and key of `--tls-cert`/`--tls-key` (PEM), served with
//! rustls (ring, TLS 1.2 and 1.3, ALPN `http/1.1`) through the [`Acceptor`] seam, so routes
//! and storage never see the difference. A client that does not finish its handshake within
//! [`HANDSHAKE_TIMEOUT`] is dropped; it only ever held its own connection's task.

use crate::error::{RegistryError, Result};
use crate::server::Acceptor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a registry's certificate and key are.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM: the server certificate first, then any intermediates.
    pub cert: PathBuf,
    /// PEM: the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// A TLS acceptor loaded from [`TlsFiles`].
#[derive(Clone)]
pub struct Tls(tokio_rustls::TlsAcceptor);

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls")
    }
}

impl Tls {
    pub fn load(files: &TlsFiles) -> Result<Tls> {
        let bad = |p: &Path, e: &dyn std::fmt::Display| RegistryError::Config(format!("TLS {}: {e}", p.display()));
        let certs = CertificateDer::pem_file_iter(&files.cert)
            .map_err(|e| bad(&files.cert, &e))?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| bad(&files.cert, &e))?;
        if certs.is_empty() {
            return Err(bad(&files.cert, &"no certificate in the file"));
        }
        let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| bad(&files.key, &e))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| RegistryError::Config(format!("TLS setup: {e}")))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| bad(&files.cert, &e))?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls(tokio_rustls::TlsAcceptor::from(Arc::new(cfg))))
    }
}

impl Acceptor for Tls {
    type Io = TlsStream<TcpStream>;

    async fn accept(&self, tcp: TcpStream) -> std::io::Result<Self::Io> {
        tokio::time::timeout(HANDSHAKE_TIMEOUT, self.0.accept(tcp))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out"))?
    }
}
