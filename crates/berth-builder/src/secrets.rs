//! What a build's client lends it for single RUN steps: secrets (`--secret`) and SSH
//! agents (`--ssh`).
//!
//! # Contract
//!
//! A secret's value is held in memory only, reaches a step only through
//! `RUN --mount=type=secret` (a file on a tmpfs, or an environment variable of that one
//! command), and is never part of a layer, the image config or history, a cache key, a
//! cache record or the build's output. `Debug` shows the ids, never the values.
//!
//! An SSH agent is a Unix socket on the daemon's host (the client's agent, or a proxy to
//! it that the caller keeps open for the build), bind-mounted into the steps that ask
//! for it by id.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// The largest secret a build takes (BuildKit's limit): a secret is held in memory and
/// written to a small tmpfs for its step.
pub const MAX_SECRET: usize = 500 << 10;

/// Secrets by id.
#[derive(Clone, Default)]
pub struct Secrets(BTreeMap<String, Arc<[u8]>>);

impl Secrets {
    pub fn insert(&mut self, id: impl Into<String>, value: impl Into<Arc<[u8]>>) {
        self.0.insert(id.into(), value.into());
    }

    pub fn get(&self, id: &str) -> Option<&[u8]> {
        self.0.get(id).map(|v| &v[..])
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// SSH agent sockets on the daemon's host, by id (`default` for a bare `--ssh default`).
pub type SshAgents = BTreeMap<String, PathBuf>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_ids_only() {
        let mut s = Secrets::default();
        s.insert("token", b"hunter2".to_vec());
        assert_eq!(format!("{s:?}"), "{\"token\"}");
        assert_eq!(s.get("token"), Some(&b"hunter2"[..]));
    }
}
