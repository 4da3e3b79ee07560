//! TLS to a daemon's TCP address, as the docker CLI does it: `--tls` (encrypt, do not verify
//! the daemon), `--tlsverify` (verify the daemon's certificate against `--tlscacert`; giving
//! it at all turns TLS on), a client certificate from `--tlscert`/`--tlskey` when given or
//! present; `DOCKER_TLS` and `DOCKER_TLS_VERIFY` (any non-empty value) set the defaults of
//! the two switches, `DOCKER_CERT_PATH` (else `$DOCKER_CONFIG`, else `~/.docker`) the directory
//! of `ca.pem`, `cert.pem` and `key.pem`.

use std::path::PathBuf;
use std::sync::Arc;

use berth_api::pem::{cert_dir, certs, private_key};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// The global TLS flags as given (`None`: not given).
#[derive(Debug, Clone, Default)]
pub struct TlsFlags {
    pub tls: Option<bool>,
    pub tlsverify: Option<bool>,
    pub tlscacert: Option<PathBuf>,
    pub tlscert: Option<PathBuf>,
    pub tlskey: Option<PathBuf>,
}

fn env_set(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty())
}

/// The client configuration for a TCP daemon, or `None` when TLS is off.
pub fn client_config(f: &TlsFlags) -> Result<Option<Arc<rustls::ClientConfig>>, String> {
    let verify = f.tlsverify.unwrap_or_else(|| env_set("DOCKER_TLS_VERIFY"));
    let tls = f.tlsverify.is_some() || verify || f.tls.unwrap_or_else(|| env_set("DOCKER_TLS"));
    if !tls {
        return Ok(None);
    }
    let dir = cert_dir();
    // A client certificate is used if given, or if the default files are there.
    let default_if_present = |given: &Option<PathBuf>, name: &str| match given {
        Some(p) => Some(p.clone()),
        None => Some(dir.join(name)).filter(|p| p.exists()),
    };
    let cert = default_if_present(&f.tlscert, "cert.pem");
    let key = default_if_present(&f.tlskey, "key.pem");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = if verify {
        let ca = f.tlscacert.clone().unwrap_or_else(|| dir.join("ca.pem"));
        let mut roots = rustls::RootCertStore::empty();
        for c in certs(&ca, "CA certificate", "tlscacert")? {
            roots.add(c).map_err(|e| format!("the CA certificate {} (--tlscacert): {e}", ca.display()))?;
        }
        builder.with_root_certificates(roots)
    } else {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
    };
    let config = match (cert, key) {
        (Some(cert), Some(key)) => {
            let chain = certs(&cert, "certificate", "tlscert")?;
            let private = private_key(&key)?;
            builder.with_client_auth_cert(chain, private).map_err(|e| {
                format!("the certificate {} and the key {} (--tlscert, --tlskey): {e}", cert.display(), key.display())
            })?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err("both the certificate and key must be provided (--tlscert and --tlskey)".into()),
    };
    Ok(Some(Arc::new(config)))
}

/// `--tls` without `--tlsverify`: the daemon's certificate is not checked (the handshake's
/// signatures still are), as the docker CLI's InsecureSkipVerify.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
