//! The build context: the files a build may read, unpacked in scratch space.
//!
//! The client sends the context as a tar (possibly compressed). It is unpacked, confined,
//! with every file owned by root (COPY sets ownership itself), then the Dockerfile is read
//! and `.dockerignore` is applied: excluded files are deleted, so no step can read them.
//! The Dockerfile and `.dockerignore` are read before that, so excluding them only keeps
//! them out of COPY, as in Docker. The directory goes away when the [`Context`] is dropped.
//!
//! berth's own CLI keeps a copy of the context on the daemon instead ([`crate::sync`]):
//! such a context is only locked while the build runs, and brings the content digests of
//! its files along so COPY does not read them again.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use berth_archive::apply::{ApplyOptions, Whiteouts, apply};
use berth_archive::compress::decompressed;
use berth_dockerfile::Ignore;

use crate::{BuildError, Result};

pub struct Context {
    /// Holds `root/`; removed on drop unless the context is a synced copy.
    dir: PathBuf,
    /// A synced copy's lock (see [`crate::sync`]): held for as long as the build reads it.
    synced: Option<std::fs::File>,
    /// Content digests (`sha256` hex) already known, by path relative to the root.
    pub(crate) digests: HashMap<String, String>,
    /// The Dockerfile's text.
    pub dockerfile: String,
    /// Where it was found in the context (as given, or `dockerfile` for the fallback).
    pub dockerfile_name: String,
}

impl Drop for Context {
    fn drop(&mut self) {
        if self.synced.is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Context {
    /// Unpacks `input` under `scratch` and reads the Dockerfile named `dockerfile`.
    pub fn extract(input: impl Read, scratch: &Path, dockerfile: &str) -> Result<Context> {
        let dir = scratch.join(format!("ctx-{}", &berth_api::ids::random_id()[..16]));
        let root = dir.join("root");
        std::fs::create_dir_all(&root).map_err(|e| BuildError::io("creating the context directory", e))?;
        // The Context owns `dir` from here on, so an error below still removes it.
        let mut ctx = Context {
            dir,
            synced: None,
            digests: HashMap::new(),
            dockerfile: String::new(),
            dockerfile_name: String::new(),
        };
        let (_, plain) = decompressed(input).map_err(|e| BuildError::io("reading the build context", e))?;
        let opts = ApplyOptions { whiteouts: Whiteouts::Plain, chown: Some((0, 0)), ..Default::default() };
        apply(plain, &root, &opts).map_err(|e| {
            if e.is_no_space() {
                BuildError::Archive(e)
            } else {
                BuildError::Invalid(format!("the build context is not a valid tar archive: {e}"))
            }
        })?;
        ctx.finish(dockerfile)?;
        Ok(ctx)
    }

    /// A context already in place at `dir/root` (a git checkout): the Dockerfile is read
    /// and `.dockerignore` applied; `dir` is removed on drop.
    pub(crate) fn prepared(dir: PathBuf, dockerfile: &str) -> Result<Context> {
        let mut ctx = Context {
            dir,
            synced: None,
            digests: HashMap::new(),
            dockerfile: String::new(),
            dockerfile_name: String::new(),
        };
        ctx.finish(dockerfile)?;
        Ok(ctx)
    }

    /// A context a BuildKit client sent into `dir/root` through its session, with the
    /// Dockerfile from wherever the client keeps it; `dir` is removed on drop. The client
    /// applied `.dockerignore` while sending, so nothing is pruned here.
    pub fn received(dir: PathBuf, dockerfile: String, dockerfile_name: &str) -> Context {
        Context { dir, synced: None, digests: HashMap::new(), dockerfile, dockerfile_name: dockerfile_name.to_string() }
    }

    /// A synced copy at `dir/root`, locked by `lock`.
    pub(crate) fn synced(dir: PathBuf, lock: std::fs::File, digests: HashMap<String, String>) -> Context {
        Context { dir, synced: Some(lock), digests, dockerfile: String::new(), dockerfile_name: String::new() }
    }

    /// Reads the Dockerfile, then applies `.dockerignore`; returns the paths it removed.
    pub(crate) fn finish(&mut self, dockerfile: &str) -> Result<Vec<String>> {
        self.read_dockerfile(dockerfile)?;
        let root = self.root();
        let ignore_text = read_confined(&root, ".dockerignore")?.unwrap_or_default();
        let mut removed = Vec::new();
        if !ignore_text.trim().is_empty() {
            let ignore = Ignore::parse(&ignore_text);
            if let Some(bad) = ignore.invalid().first() {
                return Err(BuildError::Invalid(format!(
                    "error checking context: syntax error in pattern {bad:?} in .dockerignore"
                )));
            }
            prune(&root, "", &ignore, &mut removed)?;
        }
        Ok(removed)
    }

    /// The content digest of the context file at `host`, if known without reading it.
    pub(crate) fn known_digest(&self, host: &Path) -> Option<String> {
        let root = self.root();
        let rel = host.strip_prefix(&root).ok()?.to_str()?;
        self.digests.get(rel).cloned()
    }

    /// Where the context's files are.
    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    fn read_dockerfile(&mut self, name: &str) -> Result<()> {
        let name = if name.is_empty() { "Dockerfile" } else { name };
        let clean = berth_dockerfile::changes::clean_abs(name);
        let rel = clean.trim_start_matches('/');
        let root = self.root();
        let mut found = read_confined(&root, rel)?.map(|t| (t, rel.to_string()));
        if found.is_none() && rel == "Dockerfile" {
            found = read_confined(&root, "dockerfile")?.map(|t| (t, "dockerfile".to_string()));
        }
        let Some((text, used)) = found else {
            return Err(BuildError::Invalid(format!("Cannot locate specified Dockerfile: {name}")));
        };
        self.dockerfile = text;
        self.dockerfile_name = used;
        Ok(())
    }
}

/// A downloaded context: a tar (possibly compressed) is the context; plain text is the
/// Dockerfile, alone in the context (`dockerfile` is then not used). Anything else the
/// server labelled (a web page) is refused rather than read as a Dockerfile.
pub(crate) fn open_download(
    file: &Path,
    content_type: Option<&str>,
    url: &str,
    scratch: &Path,
    dockerfile: &str,
) -> Result<Context> {
    let open = || std::fs::File::open(file).map_err(|e| BuildError::io("reading the downloaded context", e));
    let mut head = Vec::new();
    open()?.take(512).read_to_end(&mut head).map_err(|e| BuildError::io("reading the downloaded context", e))?;
    let is_tar = berth_archive::compress::Compression::detect(&head) != berth_archive::compress::Compression::None
        || (head.len() >= 262 && &head[257..262] == b"ustar");
    if is_tar {
        return Context::extract(open()?, scratch, dockerfile);
    }
    if let Some(ct) =
        content_type.filter(|ct| !ct.is_empty() && !matches!(*ct, "text/plain" | "application/octet-stream"))
    {
        return Err(BuildError::Invalid(format!(
            "unable to prepare context: {url} is {ct}, neither a tar archive nor a Dockerfile (plain text)"
        )));
    }
    // A web page the server did not label (Docker sniffs the type too).
    let start = String::from_utf8_lossy(&head).trim_start().to_ascii_lowercase();
    if start.starts_with("<!doctype html") || start.starts_with("<html") {
        return Err(BuildError::Invalid(format!(
            "unable to prepare context: {url} is a web page (text/html), neither a tar archive nor a Dockerfile"
        )));
    }
    let text = std::fs::read(file).map_err(|e| BuildError::io("reading the downloaded Dockerfile", e))?;
    Context::extract(&berth_archive::writer::single_file("Dockerfile", &text, true)[..], scratch, "Dockerfile")
}

/// The most [`read_confined`] reads: far more than any Dockerfile or `.dockerignore`
/// written by hand, and a bound on what a hostile context makes the daemon hold.
pub const MAX_TEXT_FILE: u64 = 16 << 20;

/// Reads a regular file inside `root` without following links out of it (`None` when
/// there is no file there, or a directory). Anything else (a FIFO, a device node from a
/// tar context) is an error, and is never opened: opening a FIFO would block a daemon
/// thread forever, waiting for a writer that never comes.
pub fn read_confined(root: &Path, rel: &str) -> Result<Option<String>> {
    use rustix::fs::{FileType, Mode, OFlags};
    let dir = rustix::fs::open(root, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| BuildError::io("opening the context", e.into()))?;
    let path_fd = match berth_archive::paths::open_in_root(&dir, rel, OFlags::PATH) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => return Ok(None),
        Err(e) => return Err(BuildError::io(format!("opening {rel}"), e.into())),
    };
    let fd = match berth_archive::paths::reopen_regular(&path_fd) {
        Ok(Some(fd)) => fd,
        Ok(None) => {
            let st = rustix::fs::fstat(&path_fd).map_err(|e| BuildError::io(format!("opening {rel}"), e.into()))?;
            return match FileType::from_raw_mode(st.st_mode) {
                FileType::Directory => Ok(None),
                _ => Err(BuildError::Invalid(format!("the context's {rel} is not a regular file"))),
            };
        }
        Err(e) => return Err(BuildError::io(format!("opening {rel}"), e.into())),
    };
    let mut s = String::new();
    std::fs::File::from(fd)
        .take(MAX_TEXT_FILE + 1)
        .read_to_string(&mut s)
        .map_err(|e| BuildError::io(format!("reading {rel}"), e))?;
    if s.len() as u64 > MAX_TEXT_FILE {
        return Err(BuildError::Invalid(format!("the context's {rel} is larger than {} MiB", MAX_TEXT_FILE >> 20)));
    }
    Ok(Some(s))
}

/// The entries of `root/rel`: their paths relative to `root`, the entries, and whether
/// each is a directory (not following links).
pub(crate) fn children(root: &Path, rel: &str) -> Result<Vec<(String, std::fs::DirEntry, bool)>> {
    let dir = root.join(rel);
    let rd = std::fs::read_dir(&dir).map_err(|e| BuildError::io(format!("reading {}", dir.display()), e))?;
    Ok(rd
        .flatten()
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let child = if rel.is_empty() { name } else { format!("{rel}/{name}") };
            let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
            (child, e, is_dir)
        })
        .collect())
}

/// Deletes what `.dockerignore` excludes under `root/rel`.
fn prune(root: &Path, rel: &str, ignore: &Ignore, removed: &mut Vec<String>) -> Result<()> {
    for (child, e, is_dir) in children(root, rel)? {
        let excluded = ignore.matches(&child);
        if is_dir {
            if excluded && !ignore.may_match_below(&child) {
                std::fs::remove_dir_all(e.path()).map_err(|e| BuildError::io(format!("removing {child}"), e))?;
                removed.push(child);
            } else {
                prune(root, &child, ignore, removed)?;
            }
        } else if excluded {
            std::fs::remove_file(e.path()).map_err(|e| BuildError::io(format!("removing {child}"), e))?;
            removed.push(child);
        }
    }
    Ok(())
}
