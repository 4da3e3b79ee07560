//! htpasswd files: `user:$2y$…` lines, bcrypt only (as Docker's registry).
//!
//! The file is re-read when its mtime changes, so users can be added while serving. Lines
//! that are blank, comments (`#`), or use another hash (`$apr1$`, `{SHA}`) are ignored.
//! bcrypt is slow on purpose, so a successful check is remembered for a few minutes, keyed
//! by a hash of user, password and stored hash (changing the password invalidates it).

use base64::Engine as _;
use sha2::Digest as _;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

const CACHE_TTL: Duration = Duration::from_secs(300);

pub struct Htpasswd {
    path: PathBuf,
    users: Mutex<(Option<SystemTime>, HashMap<String, String>)>,
    verified: Mutex<HashMap<[u8; 32], Instant>>,
    /// Whether the last re-read failed: a failure is logged once, when it starts, not on every
    /// request (any client, authenticated or not, makes one).
    unreadable: AtomicBool,
}

impl Htpasswd {
    /// Loads the file; errors if it cannot be read (a typo in the path must not open the
    /// registry to nobody, or to everybody).
    pub fn load(path: &Path) -> std::io::Result<Htpasswd> {
        let h = Htpasswd {
            path: path.to_path_buf(),
            users: Mutex::new((None, HashMap::new())),
            verified: Mutex::default(),
            unreadable: AtomicBool::new(false),
        };
        h.reload()?;
        Ok(h)
    }

    fn reload(&self) -> std::io::Result<()> {
        let mtime = std::fs::metadata(&self.path)?.modified().ok();
        let mut users = self.users.lock().expect("htpasswd lock");
        if users.0.is_some() && users.0 == mtime {
            return Ok(());
        }
        *users = (mtime, parse(&std::fs::read_to_string(&self.path)?));
        Ok(())
    }

    /// Whether `user` / `password` match an entry.
    pub async fn verify(&self, user: &str, password: &str) -> bool {
        match self.reload() {
            Ok(()) => {
                if self.unreadable.swap(false, Ordering::Relaxed) {
                    tracing::info!(file = %self.path.display(), "the htpasswd file is readable again");
                }
            }
            Err(e) => {
                if !self.unreadable.swap(true, Ordering::Relaxed) {
                    tracing::warn!(file = %self.path.display(), "reading the htpasswd file (the users read before stay): {e}");
                }
            }
        }
        let Some(hash) = self.users.lock().expect("htpasswd lock").1.get(user).cloned() else {
            return false;
        };
        let key: [u8; 32] = sha2::Sha256::new()
            .chain_update(user)
            .chain_update([0])
            .chain_update(password)
            .chain_update([0])
            .chain_update(&hash)
            .finalize()
            .into();
        if self.verified.lock().expect("cache lock").get(&key).is_some_and(|t| t.elapsed() < CACHE_TTL) {
            return true;
        }
        let password = password.to_string();
        let ok = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
            .await
            .unwrap_or(false);
        if ok {
            let mut cache = self.verified.lock().expect("cache lock");
            cache.retain(|_, t| t.elapsed() < CACHE_TTL);
            cache.insert(key, Instant::now());
        }
        ok
    }
}

fn parse(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.trim().split_once(':'))
        .filter(|(u, h)| {
            !u.starts_with('#') && (h.starts_with("$2y$") || h.starts_with("$2b$") || h.starts_with("$2a$"))
        })
        .map(|(u, h)| (u.to_string(), h.to_string()))
        .collect()
}

/// Decodes an `Authorization: Basic …` value into user and password.
pub fn parse_basic(header: &str) -> Option<(String, String)> {
    let b64 = header.strip_prefix("Basic ").or_else(|| header.strip_prefix("basic "))?;
    let raw = base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bcrypt_lines_only() {
        let m = parse("# c\nalice:$2y$04$abc\nbob:$apr1$x\n\ncarol:$2b$04$def\n");
        assert_eq!(m.len(), 2);
        assert!(m.contains_key("alice") && m.contains_key("carol"));
        assert_eq!(parse_basic("Basic YWxpY2U6c2VjcmV0"), Some(("alice".into(), "secret".into())));
        assert_eq!(parse_basic("Bearer x"), None);
    }
}
