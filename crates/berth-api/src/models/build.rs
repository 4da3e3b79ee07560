//! berth's incremental build-context protocol (an extension; Docker's clients never use it).
//!
//! The classic `POST /build` sends the whole context as a tar every time, and the daemon
//! unpacks and hashes all of it again: with a 100 MB context even a fully cached build
//! costs a few hundred milliseconds. berth's own CLI instead keeps a copy of the context
//! in sync on the daemon, as BuildKit's file sync does, and sends only what changed:
//!
//! 1. `POST /build/contexts/{key}/diff` with a [`ContextManifest`]: every entry the build
//!    may read (after `.dockerignore`), with what identifies its content on the client
//!    (type, mode, size, mtime). The daemon answers a [`ContextNeed`]: the entries its copy
//!    lacks or holds in another version.
//! 2. `POST /build?…&berthcontext={key}` whose body is the manifest framed as
//!    `u64 big-endian length ‖ JSON`, then a tar of exactly the needed entries. The daemon
//!    removes what the manifest no longer lists, unpacks the tar, checks that its copy now
//!    matches the manifest entry for entry (`409 Conflict` if not: the copy changed in
//!    between, and the client starts again), and builds from it.
//!
//! The manifest of phase two may also carry the build's secrets (`--secret`, for
//! `RUN --mount=type=secret`): [`ContextManifest::secrets`], never sent in phase one. The
//! daemon takes them out before it looks at the entries and keeps them in memory only.
//! Likewise [`ContextManifest::ssh`], the agent sockets for `RUN --mount=type=ssh`.
//!
//! `key` is 64 lowercase hex digits chosen by the client to name one context directory
//! (berth hashes the host name and the directory's path). Content hashes used by cache
//! keys are computed by the daemon when a file arrives and kept with its copy, so an
//! unchanged file is neither sent nor hashed again.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One entry of a context as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ContextEntry {
    /// Relative path, `/`-separated, clean (no `.`, `..` or empty components).
    #[serde(rename = "p")]
    pub path: String,
    /// `f` regular file, `d` directory, `l` symbolic link.
    #[serde(rename = "k")]
    pub kind: char,
    /// Permission bits (and setuid/setgid/sticky).
    #[serde(rename = "m")]
    pub mode: u32,
    /// Size in bytes (files).
    #[serde(rename = "s", default)]
    pub size: u64,
    /// Modification time, nanoseconds since the epoch (files and links).
    #[serde(rename = "t", default)]
    pub mtime: i64,
    /// Target (links).
    #[serde(rename = "l", default, skip_serializing_if = "String::is_empty")]
    pub link: String,
}

/// Every entry of a context, parents before children.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ContextManifest {
    #[serde(rename = "Entries", default)]
    pub entries: Vec<ContextEntry>,
    /// Phase two only: the build's secrets.
    #[serde(rename = "Secrets", default, skip_serializing_if = "SecretValues::is_empty")]
    pub secrets: SecretValues,
    /// Phase two only: SSH agent sockets by id (`--ssh`), as paths on the daemon's host:
    /// berth's CLI forwards an agent to a daemon on the same host only.
    #[serde(rename = "Ssh", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ssh: BTreeMap<String, String>,
}

/// Secret values by id, each hex-encoded (a secret may be any bytes). `Debug` shows the
/// ids only.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct SecretValues(pub BTreeMap<String, String>);

impl SecretValues {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for SecretValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// The daemon's answer to a manifest: the paths to send, in manifest order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ContextNeed {
    #[serde(rename = "Need", default)]
    pub need: Vec<String>,
}

/// Whether `key` is acceptable as a context key (64 lowercase hex digits).
pub fn valid_context_key(key: &str) -> bool {
    key.len() == 64 && key.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
