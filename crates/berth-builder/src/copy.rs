//! COPY and ADD (and WORKDIR's directory): files assembled into a layer.
//!
//! The sources are found and hashed first (their digest is part of the step's key); only
//! on a cache miss are they copied, into a staging directory laid out like the image's
//! root, which becomes the step's layer. Directories on the way to the destination that
//! the image already has are recreated with the image's metadata, so the layer does not
//! change them; new ones get the `--chown` owner (root by default) and mode 0755.
//! Everything copied belongs to root unless `--chown` says otherwise, whatever the
//! source, as in the classic builder.
//!
//! Destination rules (Docker's): a relative destination is under WORKDIR; with several
//! sources (or a wildcard matching several) it must end in `/`; a file goes *into* the
//! destination if it ends in `/` or is a directory in the image, else *becomes* it; a
//! directory's contents (not the directory itself) are copied. ADD also fetches `http://`
//! URLs (mode 0600, never unpacked) and unpacks local tar archives (plain, gzip, bzip2,
//! xz, zstd) into the destination, refusing entries that would land outside it.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use berth_archive::apply::{ApplyOptions, Whiteouts, apply_at};
use berth_dockerfile::Line;
use berth_dockerfile::expand::expand_heredoc;

use crate::cache::StepKey;
use berth_image::commit::NewLayer;

use crate::executor::{Build, Work};
use crate::place::{copy_path, make_dirs, replace, set_meta, set_mtime, write_file};
use crate::plan::{FromSource, from_source};
use crate::rootfs::{Tree, resolve_chown};
use crate::state::StageState;
use crate::{BuildError, Builder, Result};
use berth_api::glob;

/// One thing to copy.
enum Item {
    /// A path in a tree (the context, a stage, an image), already resolved. With
    /// `--parents`, `keep` is the path it lands at under the destination.
    Path { tree: Tree, path: String, keep: Option<String> },
    /// Bytes from a heredoc.
    Content { name: String, bytes: Vec<u8> },
    /// A downloaded file (mode 0600).
    Download { host: PathBuf, name: String },
    /// A local archive ADD unpacks.
    Archive { host: PathBuf },
}

/// Everything COPY/ADD decided before touching the destination.
struct Request {
    keyword: String,
    items: Vec<Item>,
    dest: String,
    owner: Option<(u32, u32)>,
    chmod: Option<u32>,
    dest_tree: Tree,
    /// Scratch files (downloads) to delete afterwards.
    scratch: Option<PathBuf>,
    /// The build context, when the sources come from it: it may know their digests.
    context: Option<std::sync::Arc<crate::context::Context>>,
}

impl Drop for Request {
    fn drop(&mut self) {
        if let Some(s) = &self.scratch {
            let _ = std::fs::remove_dir_all(s);
        }
    }
}

fn not_found(kw: &str, src: &str, context: bool) -> BuildError {
    if context {
        BuildError::Invalid(format!(
            "{kw} failed: file not found in build context or excluded by .dockerignore: stat {src}: file does not exist"
        ))
    } else {
        BuildError::Invalid(format!("{kw} failed: stat {src}: file does not exist"))
    }
}

/// Cleans a source path; `None` if it climbs out of its root.
pub(crate) fn clean_rel(p: &str) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            c => out.push(c),
        }
    }
    Some(out.join("/"))
}

/// Paths in `tree` matching a pattern, component by component.
fn glob_paths(tree: &Tree, pattern: &str) -> Result<Vec<String>> {
    let mut found = vec![String::new()];
    for comp in pattern.split('/').filter(|c| !c.is_empty()) {
        let mut next = Vec::new();
        for base in found {
            let dir = tree.resolve(&base, true)?;
            if glob::has_meta(comp) {
                for name in tree.read_dir(&dir) {
                    if glob::matches(comp, &name) {
                        next.push(join(&dir, &name));
                    }
                }
            } else {
                let p = join(&dir, comp);
                if tree.lookup(&p).is_some() {
                    next.push(p);
                }
            }
        }
        found = next;
    }
    Ok(found)
}

pub(crate) fn join(a: &str, b: &str) -> String {
    if a.is_empty() { b.to_string() } else { format!("{a}/{b}") }
}

fn base_name(p: &str) -> String {
    p.rsplit('/').next().unwrap_or(p).to_string()
}

fn is_heredoc_word(w: &str) -> bool {
    w.trim_start_matches(|c: char| c.is_ascii_digit()).starts_with("<<")
}

/// Whether a file is a tar archive, possibly compressed.
fn is_archive(host: &Path) -> bool {
    let Ok(f) = std::fs::File::open(host) else { return false };
    let Ok((_, mut r)) = berth_archive::compress::decompressed(f) else { return false };
    let mut head = vec![0u8; 512];
    let mut n = 0;
    while n < head.len() {
        match r.read(&mut head[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    n >= 262 && &head[257..262] == b"ustar"
}

fn sha256_file(host: &Path) -> Result<String> {
    let f = std::fs::File::open(host).map_err(|e| BuildError::io(format!("reading {}", host.display()), e))?;
    crate::known_digests::sha256_of(f).map_err(|e| BuildError::io(format!("reading {}", host.display()), e))
}

/// Content digests (`sha256` hex) of source files, by their path on the host.
pub(crate) type FileDigests = std::collections::HashMap<PathBuf, String>;

/// Hashes what a tree path holds: names, types, modes, link targets, contents; never
/// times or owners (COPY sets the owner).
pub(crate) fn digest_path(
    tree: &Tree,
    path: &str,
    rel: &str,
    known: &dyn Fn(&Path) -> Option<String>,
    h: &mut Sha256,
    files: &mut FileDigests,
) -> Result<()> {
    let Some(f) = tree.lookup(path) else { return Ok(()) };
    let m = &f.meta;
    h.update(rel.as_bytes());
    h.update([0]);
    h.update((m.mode()).to_be_bytes());
    if m.is_file() {
        let d = match known(&f.host) {
            Some(d) => d,
            None => sha256_file(&f.host)?,
        };
        h.update(d.as_bytes());
        files.insert(f.host.clone(), d);
    } else if m.file_type().is_symlink() {
        let t = std::fs::read_link(&f.host).map_err(|e| BuildError::io("reading a link", e))?;
        h.update(t.as_os_str().as_encoded_bytes());
    } else if m.is_dir() {
        for name in tree.read_dir(path) {
            digest_path(tree, &join(path, &name), &join(rel, &name), known, h, files)?;
        }
    }
    h.update([0]);
    Ok(())
}

impl Build {
    pub(crate) async fn copy_step(&mut self, st: &mut StageState, line: &Line, stage: usize) -> Result<()> {
        let req = self.copy_request(st, line, stage).await?;
        let req = std::sync::Arc::new(req);
        let r2 = req.clone();
        let (digest, kind, files) = tokio::task::spawn_blocking(move || request_digest(&r2))
            .await
            .map_err(|e| BuildError::Internal(format!("hashing task failed: {e}")))??;
        let ins = &line.instruction;
        let flags: Vec<String> = ins.flags.iter().map(|(k, v)| format!("--{k}={v}")).collect();
        let key = self.key(
            StepKey::new(&st.key)
                .field("instruction", &format!("{} {} {}", req.keyword, flags.join(" "), req.dest))
                .field("owner", &format!("{:?} {:?}", req.owner, req.chmod))
                .field("sources", &digest),
        );
        let hexd = digest.trim_start_matches("sha256:");
        let created_by = format!("/bin/sh -c #(nop) {} {kind}:{hexd} in {} ", req.keyword, req.dest);
        if let Some(img) = self.lookup(st, &key, &created_by).await? {
            st.advance(img, key);
            return Ok(());
        }
        // The same sources landing the same way make the same layer, whatever the steps
        // before: reuse it rather than copy and hash it again (an edit early in a
        // Dockerfile then costs nothing for a large COPY after it).
        let r2 = req.clone();
        let dest = tokio::task::spawn_blocking(move || destination_digest(&r2))
            .await
            .map_err(|e| BuildError::Internal(format!("hashing task failed: {e}")))??;
        let content_key = StepKey::new("")
            .field("instruction", &format!("{} {} {}", req.keyword, flags.join(" "), req.dest))
            .field("owner", &format!("{:?} {:?}", req.owner, req.chmod))
            .field("sources", &digest)
            .field("destination", &dest)
            .finish();
        if !self.opts.no_cache
            && let Some(diff_id) = self.b.cache.layer_lookup(&self.b.images, &content_key)?
            && let Ok(img) = self.commit(st, NewLayer::Existing(diff_id), created_by.clone(), String::new()).await
        {
            return self.finish(st, key, img);
        }
        let b = self.b.clone();
        let r2 = req.clone();
        let (staging, content_ids) = tokio::task::spawn_blocking(move || perform(&b, &r2, &files))
            .await
            .map_err(|e| BuildError::Internal(format!("copy task failed: {e}")))??;
        let img = self.commit(st, NewLayer::Staged { staging, content_ids }, created_by, String::new()).await?;
        if let Some(diff_id) = img.config.rootfs.diff_ids.last() {
            self.b.cache.layer_record(&content_key, diff_id)?;
        }
        self.finish(st, key, img)
    }

    async fn copy_request(&self, st: &StageState, line: &Line, stage: usize) -> Result<Request> {
        let ins = &line.instruction;
        let kw = ins.keyword.clone();
        let words = ins.arg_words();
        let (dest_word, src_words) =
            words.split_last().ok_or_else(|| BuildError::Invalid(format!("{kw} requires at least two arguments")))?;
        let mut dest = st.expand(dest_word)?;
        if !dest.starts_with('/') {
            let wd = st.config.working_dir.trim_end_matches('/');
            let keep_slash = dest.ends_with('/') || dest == "." || dest.ends_with("/.");
            dest = berth_dockerfile::changes::clean_abs(&format!("{wd}/{dest}"));
            if keep_slash && !dest.ends_with('/') {
                dest.push('/');
            }
        }
        let owner = match ins.flag("chown") {
            Some(spec) => {
                let spec = st.expand(spec)?;
                let tree = Tree::of_image(&self.b.images, st.image.as_ref())?;
                Some(resolve_chown(&tree, &spec)?)
            }
            None => None,
        };
        let chmod = match ins.flag("chmod") {
            Some(m) => {
                let m = st.expand(m)?;
                Some(
                    u32::from_str_radix(&m, 8)
                        .ok()
                        .filter(|v| *v <= 0o7777)
                        .ok_or_else(|| BuildError::Invalid(format!("invalid chmod parameter: {m}")))?,
                )
            }
            None => None,
        };
        let named_dir = ins.flag("from").and_then(|f| match self.opts.named_contexts.get(&f.to_ascii_lowercase()) {
            Some(crate::NamedContext::Dir(dir)) => Some(dir.clone()),
            _ => None,
        });
        let (src_tree, from_context) = match (ins.flag("from"), named_dir) {
            (None, _) => (Tree::plain(self.ctx.root()), true),
            (Some(_), Some(dir)) => (Tree::plain(dir), false),
            (Some(from), None) => {
                let image = match from_source(&self.df, stage, from)? {
                    FromSource::Stage(j) => self.stage_result(j)?,
                    // An image the daemon lacks is pulled, as BuildKit does.
                    FromSource::Image(r) => {
                        Some(self.base_image(&r).await.map_err(|e| crate::plan::not_a_stage(&self.df, from, &e))?)
                    }
                };
                (Tree::of_image(&self.b.images, image.as_ref())?, false)
            }
        };
        let unpack = ins.flag("unpack").map(|v| v == "true");
        let parents = ins.flag("parents") == Some("true");
        let excludes = ins.flag_values("exclude").into_iter().map(|p| st.expand(p)).collect::<Result<Vec<_>>>()?;
        let exclude =
            (!excludes.is_empty()).then(|| std::sync::Arc::new(berth_dockerfile::Ignore::parse(&excludes.join("\n"))));
        if let Some(sum) = ins.flag("checksum") {
            // BuildKit's rules: one remote source (a download or a git repository).
            if kw != "ADD" {
                return Err(BuildError::Invalid("checksum can't be specified for COPY".into()));
            }
            if src_words.len() != 1 {
                return Err(BuildError::Invalid("checksum can't be specified for multiple sources".into()));
            }
            let src = st.expand(&src_words[0])?;
            if !crate::fetch::is_url(&src) && !crate::git::is_git_url(&src) {
                return Err(BuildError::Invalid(format!(
                    "checksum can't be specified for non-HTTP(S) sources: ADD --checksum={sum} {src}"
                )));
            }
        }
        let mut heredocs = line.heredocs.iter();
        let mut items = Vec::new();
        let mut scratch = None;
        for raw in src_words {
            if is_heredoc_word(raw)
                && let Some(h) = heredocs.next()
            {
                let body = if h.expand { expand_heredoc(&h.body(), &|n| st.lookup(n))? } else { h.body() };
                items.push(Item::Content { name: h.name.clone(), bytes: body.into_bytes() });
                continue;
            }
            let src = st.expand(raw)?;
            if kw == "ADD" && crate::git::is_git_url(&src) {
                let dir = scratch
                    .get_or_insert_with(|| {
                        self.b.config.scratch.join(format!("add-{}", &berth_api::ids::random_id()[..16]))
                    })
                    .clone();
                let keep_git = ins.flag("keep-git-dir") == Some("true");
                let root = crate::git::add_checkout(&src, &dir, items.len(), keep_git, ins.flag("checksum")).await?;
                items.push(Item::Path { tree: Tree::plain(root), path: String::new(), keep: None });
                continue;
            }
            if kw == "ADD" && crate::fetch::is_url(&src) {
                let dir = scratch
                    .get_or_insert_with(|| {
                        self.b.config.scratch.join(format!("add-{}", &berth_api::ids::random_id()[..16]))
                    })
                    .clone();
                std::fs::create_dir_all(&dir).map_err(|e| BuildError::io("creating download space", e))?;
                let name = crate::fetch::file_name(&src)?;
                let host = dir.join(format!("dl{}", items.len()));
                crate::fetch::get(&src, &host).await?;
                check_checksum(ins.flag("checksum"), &host)?;
                if unpack == Some(true) && is_archive(&host) {
                    items.push(Item::Archive { host });
                } else {
                    items.push(Item::Download { host, name });
                }
                continue;
            }
            // `--parents` keeps the path after a `/./` pivot, or all of it.
            let pivot = src
                .split_once("/./")
                .map(|(before, _)| berth_dockerfile::changes::clean_abs(before).trim_start_matches('/').to_string());
            let rel = if from_context {
                clean_rel(&src)
                    .ok_or_else(|| BuildError::Invalid(format!("forbidden path outside the build context: {src} ()")))?
            } else {
                berth_dockerfile::changes::clean_abs(&src).trim_start_matches('/').to_string()
            };
            let paths = if glob::has_meta(&rel) {
                let found = glob_paths(&src_tree, &rel)?;
                if found.is_empty() {
                    return Err(BuildError::Invalid(format!("{kw} failed: no source files were specified")));
                }
                found
            } else {
                let resolved = src_tree.resolve(&rel, true)?;
                if src_tree.lookup(&resolved).is_none() {
                    return Err(not_found(&kw, &src, from_context));
                }
                vec![resolved]
            };
            for path in paths {
                let f = src_tree.lookup(&path);
                let is_dir = f.as_ref().is_some_and(|f| f.meta.is_dir());
                let mut tree = src_tree.clone();
                if let Some(ex) = &exclude {
                    // Patterns are relative to a directory source, or to a file's directory.
                    let base = if is_dir { path.as_str() } else { path.rsplit_once('/').map_or("", |(p, _)| p) };
                    tree = tree.excluding(ex.clone(), base);
                    if !is_dir && tree.excluded(&path) {
                        continue;
                    }
                }
                let archive = kw == "ADD"
                    && unpack != Some(false)
                    && f.as_ref().is_some_and(|f| f.meta.is_file() && is_archive(&f.host));
                if archive {
                    check_checksum(ins.flag("checksum"), &f.as_ref().map(|f| f.host.clone()).unwrap_or_default())?;
                    items.push(Item::Archive { host: f.map(|f| f.host).unwrap_or_default() });
                } else {
                    let keep = parents.then(|| match pivot.as_deref().filter(|p| !p.is_empty()) {
                        Some(p) => path.strip_prefix(p).map(|r| r.trim_start_matches('/')).unwrap_or(&path).to_string(),
                        None => path.clone(),
                    });
                    items.push(Item::Path { tree, path, keep });
                }
            }
        }
        if items.is_empty() {
            return Err(BuildError::Invalid(format!("{kw} failed: no source files were specified")));
        }
        if items.len() > 1 && !dest.ends_with('/') {
            return Err(BuildError::Invalid(format!(
                "When using {kw} with more than one source file, the destination must be a directory and end with a /"
            )));
        }
        let dest_tree = Tree::of_image(&self.b.images, st.image.as_ref())?;
        let context = from_context.then(|| self.ctx.clone());
        Ok(Request { keyword: kw, items, dest, owner, chmod, dest_tree, scratch, context })
    }
}

fn check_checksum(want: Option<&str>, host: &Path) -> Result<()> {
    let Some(want) = want else { return Ok(()) };
    let Some(hexd) = want.strip_prefix("sha256:") else {
        return Err(BuildError::Invalid(format!("unsupported digest algorithm in --checksum={want}")));
    };
    let got = sha256_file(host)?;
    if got != hexd {
        return Err(BuildError::Invalid(format!("digest mismatch sha256:{got}: {want}")));
    }
    Ok(())
}

/// The digest of every source and where it goes, and Docker's kind for the history line.
fn request_digest(r: &Request) -> Result<(String, &'static str, FileDigests)> {
    let mut h = Sha256::new();
    let mut files = FileDigests::new();
    let known = |host: &Path| r.context.as_ref().and_then(|c| c.known_digest(host));
    for it in &r.items {
        match it {
            Item::Path { tree, path, keep } => {
                h.update(b"path\0");
                h.update(keep.clone().unwrap_or_else(|| base_name(path)).as_bytes());
                digest_path(tree, path, "", &known, &mut h, &mut files)?;
            }
            Item::Content { name, bytes } => {
                h.update(b"content\0");
                h.update(name.as_bytes());
                h.update([0]);
                h.update(Sha256::digest(bytes));
            }
            Item::Download { host, name } => {
                h.update(b"download\0");
                h.update(name.as_bytes());
                h.update(sha256_file(host)?.as_bytes());
            }
            Item::Archive { host } => {
                h.update(b"archive\0");
                h.update(sha256_file(host)?.as_bytes());
            }
        }
    }
    let kind = match r.items.as_slice() {
        [Item::Path { tree, path, .. }] if tree.lookup(path).is_some_and(|f| f.meta.is_dir()) => "dir",
        [_] => "file",
        _ => "multi",
    };
    Ok((format!("sha256:{}", hex::encode(h.finalize())), kind, files))
}

/// Where each item lands in the layer (resolved through the image's links, relative to
/// the root), and whether it is unpacked or copied there as a directory's contents.
fn targets(r: &Request) -> Result<Vec<(String, bool)>> {
    let dest_rel = r.dest.trim_matches('/');
    let into_dir = r.dest.ends_with('/')
        || r.dest_tree
            .resolve(dest_rel, true)
            .ok()
            .and_then(|p| r.dest_tree.lookup(&p))
            .is_some_and(|f| f.meta.is_dir());
    let mut out = Vec::new();
    for it in &r.items {
        let is_dir_source =
            matches!(it, Item::Path { tree, path, .. } if tree.lookup(path).is_some_and(|f| f.meta.is_dir()));
        let target = match it {
            Item::Path { keep: Some(k), .. } => join(dest_rel, k),
            Item::Archive { .. } => dest_rel.to_string(),
            _ if is_dir_source => dest_rel.to_string(),
            Item::Path { path, .. } if into_dir => join(dest_rel, &base_name(path)),
            Item::Content { name, .. } | Item::Download { name, .. } if into_dir => join(dest_rel, name),
            _ => dest_rel.to_string(),
        };
        let dir_like = is_dir_source || matches!(it, Item::Archive { .. });
        let rel = if dir_like {
            r.dest_tree.resolve(&target, true)?
        } else {
            let (parent, name) = target.rsplit_once('/').unwrap_or(("", target.as_str()));
            join(&r.dest_tree.resolve(parent, true)?, name)
        };
        out.push((rel, dir_like));
    }
    Ok(out)
}

/// The directory `make_dirs` creates for a target: the target itself, or its parent.
fn target_dir((rel, dir_like): &(String, bool)) -> &str {
    if *dir_like { rel } else { rel.rsplit_once('/').map(|(p, _)| p).unwrap_or("") }
}

/// What the layer [`perform`] makes depends on, besides the sources' digest: where each
/// item lands and the image's directories on the way (their metadata is copied).
fn destination_digest(r: &Request) -> Result<String> {
    let mut h = Sha256::new();
    for t in targets(r)? {
        h.update(t.0.as_bytes());
        h.update([u8::from(t.1), 0]);
        let mut prefix = String::new();
        for comp in target_dir(&t).split('/').filter(|c| !c.is_empty()) {
            prefix = join(&prefix, comp);
            match r.dest_tree.lookup(&prefix).filter(|f| f.meta.is_dir()) {
                Some(f) => {
                    let m = &f.meta;
                    h.update(
                        format!("{prefix}:{:o}:{}:{}:{}.{}\0", m.mode(), m.uid(), m.gid(), m.mtime(), m.mtime_nsec())
                            .as_bytes(),
                    );
                }
                None => h.update(format!("{prefix}:new\0").as_bytes()),
            }
        }
    }
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

/// Builds the step's layer in a staging directory; also returns the content digests of
/// the files in it that `sources` knows (by path in the layer).
fn perform(
    b: &Builder,
    r: &Request,
    sources: &FileDigests,
) -> Result<(berth_store::snapshot::Staging, std::collections::HashMap<String, String>)> {
    let mut copied = Vec::new();
    let staging = b.images.snapshots().stage()?;
    let root = staging.path();
    let new_owner = r.owner.unwrap_or((0, 0));
    let mut image_dirs = Vec::new();
    for (it, t) in r.items.iter().zip(targets(r)?) {
        let is_dir_source =
            matches!(it, Item::Path { tree, path, .. } if tree.lookup(path).is_some_and(|f| f.meta.is_dir()));
        make_dirs(&r.dest_tree, &root, target_dir(&t), new_owner, &mut image_dirs)?;
        let rel = t.0;
        let host = root.join(&rel);
        match it {
            Item::Path { tree, path, .. } => {
                // Root owns what COPY makes unless --chown says otherwise, whatever the
                // source (the classic builder's rule, also for --from).
                let owner = |_: &std::fs::Metadata| r.owner.unwrap_or((0, 0));
                // Files from the context that would arrive unchanged are linked, not copied.
                let link = r.context.is_some() && r.owner.unwrap_or((0, 0)) == (0, 0) && r.chmod.is_none();
                if is_dir_source {
                    for child in tree.read_dir(path) {
                        copy_path(tree, &join(path, &child), &host.join(&child), &owner, r.chmod, link, &mut copied)?;
                    }
                } else {
                    copy_path(tree, path, &host, &owner, r.chmod, link, &mut copied)?;
                }
            }
            Item::Content { bytes, .. } => {
                write_file(&host, bytes, r.chmod.unwrap_or(0o644), new_owner)?;
            }
            Item::Download { host: src, .. } => {
                replace(&host)?;
                std::fs::copy(src, &host).map_err(|e| BuildError::io(format!("copying to {rel}"), e))?;
                set_meta(&host, r.chmod.unwrap_or(0o600), new_owner)?;
            }
            Item::Archive { host: src } => {
                let f = std::fs::File::open(src).map_err(|e| BuildError::io("opening the archive", e))?;
                let (_, plain) =
                    berth_archive::compress::decompressed(f).map_err(|e| BuildError::io("reading the archive", e))?;
                let dir = std::fs::File::open(&host).map_err(|e| BuildError::io(format!("opening {rel}"), e))?;
                use std::os::fd::AsFd;
                let opts = ApplyOptions { whiteouts: Whiteouts::Plain, chown: r.owner, ..Default::default() };
                apply_at(plain, dir.as_fd(), &opts).map_err(|e| {
                    BuildError::Invalid(format!("ADD failed: unpacking the archive into {}: {e}", r.dest))
                })?;
            }
        }
    }
    for (host, m) in &image_dirs {
        set_mtime(host, m);
    }
    let ids = copied
        .into_iter()
        .filter_map(|(src, dst)| {
            let d = sources.get(&src)?;
            Some((dst.strip_prefix(&root).ok()?.to_str()?.to_string(), d.clone()))
        })
        .collect();
    Ok((staging, ids))
}

/// WORKDIR: a layer with the directory if the image lacks it, else nothing.
pub(crate) fn workdir_layer(b: &Builder, st: &StageState, dir: &str) -> Result<Work> {
    let tree = Tree::of_image(&b.images, st.image.as_ref())?;
    let resolved = tree.resolve(dir.trim_start_matches('/'), true)?;
    if resolved.is_empty() || tree.lookup(&resolved).is_some_and(|f| f.meta.is_dir()) {
        return Ok(Work::Config);
    }
    let staging = b.images.snapshots().stage()?;
    let mut image_dirs = Vec::new();
    make_dirs(&tree, &staging.path(), &resolved, (0, 0), &mut image_dirs)?;
    for (host, m) in &image_dirs {
        set_mtime(host, m);
    }
    Ok(Work::Layer(staging))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn source_paths() {
        assert_eq!(clean_rel("./a//b/../c").as_deref(), Some("a/c"));
        assert_eq!(clean_rel("../x"), None);
        assert_eq!(clean_rel(".").as_deref(), Some(""));
        assert!(is_heredoc_word("<<EOF") && is_heredoc_word("3<<-EOF") && !is_heredoc_word("file"));
    }

    #[test]
    fn digests_ignore_times_but_not_content_or_mode() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("d/sub")).unwrap();
        std::fs::write(t.path().join("d/sub/f"), "one").unwrap();
        let tree = Tree::new(vec![t.path().to_path_buf()]);
        let digest = || {
            let mut h = Sha256::new();
            digest_path(&tree, "d", "", &|_| None, &mut h, &mut FileDigests::new()).unwrap();
            hex::encode(h.finalize())
        };
        let first = digest();
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
        std::fs::File::options().write(true).open(t.path().join("d/sub/f")).unwrap().set_modified(later).unwrap();
        assert_eq!(digest(), first, "touching a file keeps the digest");
        std::fs::write(t.path().join("d/sub/f"), "two").unwrap();
        assert_ne!(digest(), first, "new content, new digest");
        std::fs::write(t.path().join("d/sub/f"), "one").unwrap();
        assert_eq!(digest(), first);
        std::fs::set_permissions(t.path().join("d/sub/f"), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_ne!(digest(), first, "mode is part of it");
    }

    #[test]
    fn globs_walk_components() {
        let t = tempfile::tempdir().unwrap();
        for f in ["a.txt", "b.txt", "c.md", "dir/x.txt"] {
            let p = t.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        }
        let tree = Tree::new(vec![t.path().to_path_buf()]);
        assert_eq!(glob_paths(&tree, "*.txt").unwrap(), vec!["a.txt", "b.txt"]);
        assert_eq!(glob_paths(&tree, "*/x.*").unwrap(), vec!["dir/x.txt"]);
        assert!(glob_paths(&tree, "*.none").unwrap().is_empty());
    }
}
