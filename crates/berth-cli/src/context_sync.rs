//! The client half of berth's incremental build context (`berth_api::models::build`):
//! list the context, ask the daemon what it lacks, send only that.
//!
//! A daemon that does not know the protocol (Docker's) answers the first request with
//! `404`; [`sync_build`] then returns `None` and the caller sends the classic tar.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use berth_api::models::build::{ContextEntry, ContextManifest, ContextNeed, SecretValues};
use berth_archive::header::{EntryType, Header};
use berth_archive::writer::TarWriter;

use crate::client::{Body, Client, ClientError, Response};

/// A context directory ready to be synced.
pub struct LocalContext {
    pub root: PathBuf,
    /// Paths `.dockerignore` leaves out (whole directories, or files).
    pub exclude: Vec<String>,
    /// A Dockerfile from outside the directory: its name in the context and its text.
    pub extra: Option<(String, Vec<u8>)>,
}

/// How many times a build is retried when the daemon's copy changed in between.
const ATTEMPTS: usize = 3;

/// Lists `ctx` as a manifest; `None` if it holds something the protocol does not carry
/// (a device, a socket, a name that is not UTF-8): the classic tar handles those.
fn manifest(ctx: &LocalContext) -> std::io::Result<Option<ContextManifest>> {
    let exclude: HashSet<&str> = ctx.exclude.iter().map(String::as_str).collect();
    let mut entries = Vec::new();
    if !walk(&ctx.root, "", &exclude, &mut entries)? {
        return Ok(None);
    }
    if let Some((name, data)) = &ctx.extra {
        entries.push(ContextEntry {
            path: name.clone(),
            kind: 'f',
            mode: 0o644,
            size: data.len() as u64,
            mtime: 0,
            link: String::new(),
        });
    }
    Ok(Some(ContextManifest { entries, ..Default::default() }))
}

fn walk(root: &Path, rel: &str, exclude: &HashSet<&str>, out: &mut Vec<ContextEntry>) -> std::io::Result<bool> {
    let mut names = Vec::new();
    for e in std::fs::read_dir(root.join(rel))? {
        match e?.file_name().into_string() {
            Ok(n) => names.push(n),
            Err(_) => return Ok(false),
        }
    }
    names.sort();
    for name in names {
        let path = if rel.is_empty() { name } else { format!("{rel}/{name}") };
        if exclude.contains(path.as_str()) {
            continue;
        }
        let m = std::fs::symlink_metadata(root.join(&path))?;
        let ft = m.file_type();
        let kind = if ft.is_file() {
            'f'
        } else if ft.is_dir() {
            'd'
        } else if ft.is_symlink() {
            'l'
        } else {
            return Ok(false);
        };
        let link = if kind == 'l' {
            match std::fs::read_link(root.join(&path))?.into_os_string().into_string() {
                Ok(t) => t,
                Err(_) => return Ok(false),
            }
        } else {
            String::new()
        };
        let mtime = m.mtime() * 1_000_000_000 + m.mtime_nsec();
        let size = if kind == 'f' { m.len() } else { 0 };
        out.push(ContextEntry { path: path.clone(), kind, mode: m.permissions().mode() & 0o7777, size, mtime, link });
        if kind == 'd' && !walk(root, &path, exclude, out)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The key naming this directory's copy on the daemon: this host and the directory.
fn key(root: &Path) -> String {
    let host = rustix::system::uname().nodename().to_string_lossy().into_owned();
    let mut h = Sha256::new();
    for part in [b"berth-build-context".as_slice(), host.as_bytes(), root.as_os_str().as_encoded_bytes()] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    hex::encode(h.finalize())
}

/// Writes the framed manifest, then a tar of the `need`ed entries.
fn write_body(ctx: &LocalContext, m: &ContextManifest, need: &[String], out: &mut impl Write) -> std::io::Result<()> {
    let json = serde_json::to_vec(m).map_err(std::io::Error::other)?;
    out.write_all(&(json.len() as u64).to_be_bytes())?;
    out.write_all(&json)?;
    let need: HashSet<&str> = need.iter().map(String::as_str).collect();
    let mut tar = TarWriter::new(out);
    for e in m.entries.iter().filter(|e| need.contains(e.path.as_str())) {
        let kind = match e.kind {
            'd' => EntryType::Directory,
            'l' => EntryType::Symlink,
            _ => EntryType::Regular,
        };
        let mut h = Header::new(e.path.clone(), kind);
        h.mode = e.mode;
        h.mtime = e.mtime.div_euclid(1_000_000_000);
        h.mtime_nsec = e.mtime.rem_euclid(1_000_000_000) as u32;
        h.link = e.link.clone();
        if e.kind == 'f' {
            h.size = e.size;
            match &ctx.extra {
                Some((name, data)) if *name == e.path => tar.append(&h, &mut &data[..])?,
                _ => {
                    let mut f = std::fs::File::open(ctx.root.join(&e.path))?;
                    tar.append(&h, &mut f as &mut dyn Read)?;
                }
            }
        } else {
            tar.append_header(&h)?;
        }
    }
    tar.into_inner().write_all(&berth_archive::writer::trailer())
}

/// Starts a build (`path_and_query` is `/build?…`) from a synced copy of `ctx`. `None` when
/// the daemon does not speak the protocol or the context cannot be carried by it.
pub fn sync_build(
    c: &Client,
    path_and_query: &str,
    headers: &[(&str, String)],
    ctx: &LocalContext,
    secrets: &SecretValues,
    ssh: &std::collections::BTreeMap<String, String>,
) -> anyhow::Result<Option<Response>> {
    let root = std::fs::canonicalize(&ctx.root)?;
    let key = key(&root);
    for attempt in 1..=ATTEMPTS {
        let Some(m) = manifest(ctx)? else { return Ok(None) };
        let need: ContextNeed = match c.post_json(&format!("/build/contexts/{key}/diff"), &m) {
            Ok(r) => r.json()?,
            Err(ClientError::Api { status: 404 | 405 | 501, .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        // The secrets go with phase two only, never with the diff request.
        let m = ContextManifest { secrets: secrets.clone(), ssh: ssh.clone(), ..m };
        let (mut reader, mut writer) = std::io::pipe()?;
        let sender = std::thread::scope(|s| {
            let t = s.spawn(|| {
                let r = write_body(ctx, &m, &need.need, &mut writer);
                drop(writer);
                r
            });
            let sep = if path_and_query.contains('?') { '&' } else { '?' };
            let r = c.request(
                "POST",
                &format!("{path_and_query}{sep}berthcontext={key}"),
                headers,
                Body::Stream(&mut reader, "application/octet-stream"),
            );
            drop(reader);
            (r, t.join())
        });
        match sender {
            (Ok(resp), _) => return Ok(Some(resp)),
            (Err(ClientError::Api { status: 409, .. }), _) if attempt < ATTEMPTS => continue,
            (Err(e), Ok(Err(send))) if !matches!(e, ClientError::Api { .. }) => {
                return Err(anyhow::anyhow!("sending the build context: {send}"));
            }
            (Err(e), _) => return Err(e.into()),
        }
    }
    Err(anyhow::anyhow!("the build context kept changing while it was being sent"))
}
