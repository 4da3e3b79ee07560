//! TLS for the API's TCP listeners, as dockerd does it: `--tls`, `--tlsverify`,
//! `--tlscacert`, `--tlscert`, `--tlskey` (daemon.json `tls`, `tlsverify`, `tlscacert`,
//! `tlscert`, `tlskey`). Unix sockets stay plain.
//!
//! dockerd's rules: giving `--tlsverify` at all (true or false) turns TLS on; TLS on without
//! an explicit `--tlsverify=false` verifies clients, so `--tls` alone requires a client
//! certificate signed by `--tlscacert` too, and `--tls --tlsverify=false` is TLS without
//! client authentication. Certificate paths default to `$DOCKER_CERT_PATH` (else
//! `$DOCKER_CONFIG`, else `~/.docker`) `/ca.pem`, `/cert.pem`, `/key.pem`.
//!
//! Anyone who can reach the API is root on this host: a TCP address that is not loopback is
//! refused unless clients are verified or TLS was set explicitly (`--tls=false` to serve plain
//! HTTP anyway, or `--tlsverify=false`), where dockerd 28 warns and sleeps 15 s.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use berth_api::pem::{cert_dir, certs, private_key};
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use crate::config::{FileConfig, Flags};

/// A client that has not finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// What Go's TLS server answers to plain HTTP, so a client pointed at the wrong scheme says why.
const PLAIN_HTTP_ANSWER: &[u8] = b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// The TLS the API's TCP listeners speak.
#[derive(Clone)]
pub struct ApiTls {
    /// Clients must present a certificate signed by the CA (`--tlsverify`).
    pub verify: bool,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl std::fmt::Debug for ApiTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiTls").field("verify", &self.verify).finish_non_exhaustive()
    }
}

impl ApiTls {
    /// The TLS side of one accepted connection, or `None` if the client did not complete a
    /// handshake (no certificate, one from another CA, plain HTTP, a timeout).
    pub async fn accept(&self, mut tcp: TcpStream) -> Option<TlsStream<TcpStream>> {
        let handshake = async {
            let mut first = [0u8; 1];
            tcp.peek(&mut first).await.ok()?;
            // A TLS handshake record starts with 0x16; an HTTP request with its method.
            if first[0].is_ascii_uppercase() {
                let _ = tcp.write_all(PLAIN_HTTP_ANSWER).await;
                let _ = tcp.shutdown().await;
                return None;
            }
            self.acceptor.accept(tcp).await.ok()
        };
        tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await.ok().flatten()
    }
}

/// Whether TLS is on and clients verified, from the flags and the file as dockerd reads them:
/// `(tls, verify)`, each `None` when neither gave it.
fn tls_switches(flags: &Flags, file: &FileConfig) -> (Option<bool>, Option<bool>) {
    let verify = flags.tlsverify.or(file.tlsverify);
    let tls = if verify.is_some() { Some(true) } else { flags.tls.or(file.tls) };
    (tls, verify.or(tls))
}

/// The port a `tcp://` host without one gets (dockerd's: 2376 with TLS, 2375 without), and
/// 127.0.0.1 for an empty address.
pub fn normalize_tcp_host(host: &str, tls: bool) -> String {
    let Some(addr) = host.strip_prefix("tcp://") else { return host.to_string() };
    let addr = addr.trim_end_matches('/');
    let has_port = match addr.rfind(']') {
        Some(i) => addr[i..].contains(':'),
        None => addr.contains(':'),
    };
    let addr = if has_port { addr.to_string() } else { format!("{addr}:{}", if tls { 2376 } else { 2375 }) };
    if addr.starts_with(':') { format!("tcp://127.0.0.1{addr}") } else { format!("tcp://{addr}") }
}

/// Whether TLS is on for the API (`--tls`, or `--tlsverify` given at all).
pub fn enabled(flags: &Flags, file: &FileConfig) -> bool {
    tls_switches(flags, file).0 == Some(true)
}

/// Reads the TLS settings, refuses what would expose the API, and loads the certificates:
/// `None` when TLS is off.
pub fn settle(flags: &Flags, file: &FileConfig, hosts: &[String]) -> Result<Option<ApiTls>, String> {
    let (tls, verify) = tls_switches(flags, file);
    let authenticated = tls == Some(true) && verify != Some(false);
    check_tcp_hosts(hosts, tls.is_some(), authenticated)?;
    if tls != Some(true) {
        return Ok(None);
    }
    let dir = cert_dir();
    let path = |flag: &Option<PathBuf>, key: &Option<PathBuf>, name: &str| {
        flag.clone().or(key.clone()).unwrap_or_else(|| dir.join(name))
    };
    let ca = path(&flags.tlscacert, &file.tlscacert, "ca.pem");
    let cert = path(&flags.tlscert, &file.tlscert, "cert.pem");
    let key = path(&flags.tlskey, &file.tlskey, "key.pem");
    let acceptor = load(authenticated.then_some(ca.as_path()), &cert, &key)
        .map_err(|e| format!("invalid TLS configuration: {e}"))?;
    Ok(Some(ApiTls { verify: authenticated, acceptor }))
}

/// What the log says about the API's TCP listeners when clients are not verified (as
/// dockerd's warning).
pub fn warnings(hosts: &[String], tls: Option<&ApiTls>) -> Vec<String> {
    if tls.is_some_and(|t| t.verify) {
        return Vec::new();
    }
    hosts
        .iter()
        .filter(|h| h.starts_with("tcp://"))
        .map(|h| format!("binding to {h} without --tlsverify is insecure and gives root access on this machine to everyone who can reach it"))
        .collect()
}

/// A TCP address that is not loopback is refused unless clients are verified or TLS was set
/// explicitly (`--tls=false`, `--tlsverify=false`).
fn check_tcp_hosts(hosts: &[String], explicit: bool, authenticated: bool) -> Result<(), String> {
    if authenticated || explicit {
        return Ok(());
    }
    for h in hosts {
        let Some(addr) = h.strip_prefix("tcp://") else { continue };
        let host = addr.rsplit_once(':').map(|(h, _)| h).unwrap_or(addr).trim_start_matches('[').trim_end_matches(']');
        let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            return Err(format!(
                "refusing to serve the API on {h} without --tlsverify: binding to an IP address without --tlsverify gives root access on this machine to everyone who can reach it; give --tlsverify with --tlscacert, --tlscert and --tlskey, or explicitly specify --tls=false or --tlsverify=false"
            ));
        }
    }
    Ok(())
}

/// The server's configuration: its certificate and key, and the CA clients' certificates must
/// be signed by when `ca` is given.
fn load(ca: Option<&Path>, cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor, String> {
    let chain = certs(cert, "certificate", "tlscert")?;
    let private = private_key(key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in certs(ca, "CA certificate", "tlscacert")? {
                roots.add(c).map_err(|e| format!("the CA certificate {} (--tlscacert): {e}", ca.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("the CA certificate {} (--tlscacert): {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder.with_single_cert(chain, private).map_err(|e| {
        format!("the certificate {} and the key {} (--tlscert, --tlskey): {e}", cert.display(), key.display())
    })?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(h: &[&str]) -> Vec<String> {
        h.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_api_on_a_network_address_needs_tlsverify_or_an_explicit_choice() {
        let local = hosts(&["unix:///run/x.sock", "tcp://127.0.0.1:2375", "tcp://[::1]:2375", "tcp://localhost:1"]);
        assert!(check_tcp_hosts(&local, false, false).is_ok());
        for h in ["tcp://0.0.0.0:2375", "tcp://192.0.2.1:2375", "tcp://[::]:2375", "tcp://example.com:2375"] {
            let err = check_tcp_hosts(&hosts(&[h]), false, false).unwrap_err();
            assert!(err.contains("--tls=false") && err.contains(h), "{err}");
            assert!(check_tcp_hosts(&hosts(&[h]), true, false).is_ok(), "{h}");
            assert!(check_tcp_hosts(&hosts(&[h]), false, true).is_ok(), "{h}");
        }
    }

    #[test]
    fn switches_follow_dockerd() {
        let file = FileConfig::default();
        let sw = |tls, tlsverify| tls_switches(&Flags { tls, tlsverify, ..Default::default() }, &file);
        assert_eq!(sw(None, None), (None, None));
        assert_eq!(sw(Some(true), None), (Some(true), Some(true)), "--tls alone verifies clients");
        assert_eq!(sw(Some(true), Some(false)), (Some(true), Some(false)));
        assert_eq!(sw(None, Some(false)), (Some(true), Some(false)), "--tlsverify=false still means TLS");
        assert_eq!(sw(Some(false), Some(true)), (Some(true), Some(true)));
        assert_eq!(sw(Some(false), None), (Some(false), Some(false)));
        let file = FileConfig { tlsverify: Some(true), ..Default::default() };
        assert_eq!(tls_switches(&Flags::default(), &file), (Some(true), Some(true)));
    }

    #[test]
    fn tcp_hosts_get_dockerds_default_port() {
        assert_eq!(normalize_tcp_host("tcp://0.0.0.0", true), "tcp://0.0.0.0:2376");
        assert_eq!(normalize_tcp_host("tcp://10.0.0.1", false), "tcp://10.0.0.1:2375");
        assert_eq!(normalize_tcp_host("tcp://:4000", false), "tcp://127.0.0.1:4000");
        assert_eq!(normalize_tcp_host("tcp://[::1]", true), "tcp://[::1]:2376");
        assert_eq!(normalize_tcp_host("tcp://[::1]:9", true), "tcp://[::1]:9");
        assert_eq!(normalize_tcp_host("unix:///x.sock", true), "unix:///x.sock");
    }

    #[test]
    fn missing_or_bad_files_are_named() {
        let d = tempfile::tempdir().unwrap();
        let p = |f: &str| d.path().join(f);
        std::fs::write(p("cert.pem"), "not a certificate").unwrap();
        std::fs::write(p("empty.pem"), "").unwrap();
        let err = |r: Result<tokio_rustls::TlsAcceptor, String>| r.err().unwrap();
        let e = err(load(None, &p("nope.pem"), &p("key.pem")));
        assert!(e.contains(&p("nope.pem").display().to_string()) && e.contains("--tlscert"), "{e}");
        let e = err(load(None, &p("cert.pem"), &p("key.pem")));
        assert!(e.contains("holds no certificate") && e.contains("cert.pem"), "{e}");
        let flags = Flags {
            tlsverify: Some(true),
            tlscacert: Some(p("ca.pem")),
            tlscert: Some(p("empty.pem")),
            tlskey: Some(p("missing-key.pem")),
            ..Default::default()
        };
        let e = settle(&flags, &FileConfig::default(), &[]).unwrap_err();
        assert!(e.starts_with("invalid TLS configuration") && e.contains("empty.pem"), "{e}");
    }
}
