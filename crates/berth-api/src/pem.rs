//! The TLS files of the API's two ends, as dockerd and the docker CLI find and read them:
//! the default directory (`$DOCKER_CERT_PATH`, else `$DOCKER_CONFIG`, else `~/.docker`) and
//! PEM certificates and keys, each error naming the file and the flag that gave it.

use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Where `ca.pem`, `cert.pem` and `key.pem` are when no flag names them.
pub fn cert_dir() -> PathBuf {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    env("DOCKER_CERT_PATH")
        .or_else(|| env("DOCKER_CONFIG"))
        .unwrap_or_else(|| env("HOME").unwrap_or_else(|| PathBuf::from("/root")).join(".docker"))
}

fn read(path: &Path, what: &str, flag: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("reading the {what} {} (--{flag}): {e}", path.display()))
}

/// The certificates in a PEM file (at least one).
pub fn certs(path: &Path, what: &str, flag: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read(path, what, flag)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the {what} {} (--{flag}) is not valid PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("the {what} {} (--{flag}) holds no certificate", path.display()));
    }
    Ok(certs)
}

/// The private key of `--tlskey`.
pub fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem = read(path, "key", "tlskey")?;
    PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| format!("the key {} (--tlskey) holds no usable private key: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_that_are_missing_empty_or_not_pem_are_named_with_their_flag() {
        let d = std::env::temp_dir().join(format!("berth-pem-test-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("empty.pem"), "").unwrap();
        let e = certs(&d.join("nope.pem"), "certificate", "tlscert").unwrap_err();
        assert!(e.contains("nope.pem") && e.contains("--tlscert"), "{e}");
        let e = certs(&d.join("empty.pem"), "CA certificate", "tlscacert").unwrap_err();
        assert!(e.contains("holds no certificate") && e.contains("--tlscacert"), "{e}");
        let e = private_key(&d.join("empty.pem")).unwrap_err();
        assert!(e.contains("no usable private key") && e.contains("--tlskey"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
