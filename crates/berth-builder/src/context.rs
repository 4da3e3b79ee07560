//! The build context: the files a build may read, unpacked in scratch space.
//!
//! The client sends the context as a tar (possibly compressed). It is unpacked, confined,
//! with every file owned by root (COPY sets ownership itself), then the Dockerfile is read
//! and `.dockerignore` is applied: excluded files are deleted, so no step can read them.
//! The Dockerfile and `.dockerignore` are read before that, so excluding them only keeps
//! them out of COPY, as in Docker. The directory goes away when the [`Context`] is dropped.

use std::io::Read;
use std::path::{Path, PathBuf};

use berth_archive::apply::{apply, ApplyOptions, Whiteouts};
use berth_archive::compress::decompressed;
use berth_dockerfile::Ignore;

use crate::{BuildError, Result};

pub struct Context {
    dir: PathBuf,
    /// The Dockerfile's text.
    pub dockerfile: String,
    /// Where it was found in the context (as given, or `dockerfile` for the fallback).
    pub dockerfile_name: String,
}

impl Drop for Context {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Context {
    /// Unpacks `input` under `scratch` and reads the Dockerfile named `dockerfile`.
    pub fn extract(input: impl Read, scratch: &Path, dockerfile: &str) -> Result<Context> {
        let dir = scratch.join(format!("ctx-{}", &berth_api::ids::random_id()[..16]));
        let root = dir.join("root");
        std::fs::create_dir_all(&root).map_err(|e| BuildError::io("creating the context directory", e))?;
        // The Context owns `dir` from here on, so an error below still removes it.
        let mut ctx = Context { dir, dockerfile: String::new(), dockerfile_name: String::new() };
        let (_, plain) = decompressed(input).map_err(|e| BuildError::io("reading the build context", e))?;
        let opts = ApplyOptions { whiteouts: Whiteouts::Plain, chown: Some((0, 0)), ..Default::default() };
        apply(plain, &root, &opts).map_err(|e| BuildError::Invalid(format!("the build context is not a valid tar archive: {e}")))?;
        ctx.read_dockerfile(dockerfile)?;
        let ignore_text = read_confined(&root, ".dockerignore")?.unwrap_or_default();
        if !ignore_text.trim().is_empty() {
            let ignore = Ignore::parse(&ignore_text);
            if let Some(bad) = ignore.invalid().first() {
                return Err(BuildError::Invalid(format!("error checking context: syntax error in pattern {bad:?} in .dockerignore")));
            }
            prune(&root, "", &ignore)?;
        }
        Ok(ctx)
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

/// Reads a regular file inside `root` without following links out of it.
fn read_confined(root: &Path, rel: &str) -> Result<Option<String>> {
    use rustix::fs::{Mode, OFlags};
    let dir = rustix::fs::open(root, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| BuildError::io("opening the context", e.into()))?;
    let fd = match berth_archive::paths::open_in_root(&dir, rel, OFlags::RDONLY) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => return Ok(None),
        Err(e) => return Err(BuildError::io(format!("opening {rel}"), e.into())),
    };
    let mut f = std::fs::File::from(fd);
    if !f.metadata().map(|m| m.is_file()).unwrap_or(false) {
        return Ok(None);
    }
    let mut s = String::new();
    f.read_to_string(&mut s).map_err(|e| BuildError::io(format!("reading {rel}"), e))?;
    Ok(Some(s))
}

/// Deletes what `.dockerignore` excludes under `root/rel`.
fn prune(root: &Path, rel: &str, ignore: &Ignore) -> Result<()> {
    let dir = root.join(rel);
    let rd = std::fs::read_dir(&dir).map_err(|e| BuildError::io(format!("reading {}", dir.display()), e))?;
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let child = if rel.is_empty() { name } else { format!("{rel}/{name}") };
        let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
        let excluded = ignore.matches(&child);
        if is_dir {
            if excluded && !ignore.may_match_below(&child) {
                std::fs::remove_dir_all(e.path()).map_err(|e| BuildError::io(format!("removing {child}"), e))?;
            } else {
                prune(root, &child, ignore)?;
            }
        } else if excluded {
            std::fs::remove_file(e.path()).map_err(|e| BuildError::io(format!("removing {child}"), e))?;
        }
    }
    Ok(())
}
