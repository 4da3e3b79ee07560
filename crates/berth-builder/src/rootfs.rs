//! Reading a filesystem made of overlay layers without mounting it.
//!
//! A [`Tree`] is a stack of directories, topmost first, read the way overlayfs merges
//! them: a path is found in the topmost layer that has it; a whiteout (a 0:0 character
//! device) hides it and everything below; a directory marked opaque hides the same
//! directory in lower layers; a non-directory hides lower directories of the same name.
//! An image's rootfs is its layer directories; the build context is a plain directory
//! ([`Tree::plain`]), where nothing is a whiteout or opaque and nothing is checked for it.
//!
//! Paths are relative, `/`-separated, and never leave the tree: symlinks are resolved
//! inside it as if it were `/` ([`Tree::resolve`]), so a link to `/etc` or `../../x` in
//! a context or image can never reach the host.

use std::collections::BTreeSet;
use std::fs::Metadata;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::{BuildError, Result};

#[derive(Debug, Clone)]
pub struct Tree {
    layers: Vec<PathBuf>,
    /// One ordinary directory, not overlay layers: no whiteouts or opaque markers.
    plain: bool,
    /// `COPY --exclude`: patterns, and the path they are relative to ([`Tree::excluding`]).
    exclude: Option<(std::sync::Arc<berth_dockerfile::Ignore>, String)>,
}

/// A path found in a tree: where its bytes are on the host, and its metadata.
#[derive(Debug, Clone)]
pub struct Found {
    pub host: PathBuf,
    pub meta: Metadata,
}

fn is_whiteout(m: &Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

fn is_opaque(p: &Path) -> bool {
    rustix::fs::lgetxattr(p, berth_archive::OPAQUE_XATTR, &mut [0u8; 4]).is_ok_and(|n| n == 1)
}

/// Splits a path into its components, dropping `.` and empty ones; `..` is kept.
fn components(path: &str) -> Vec<&str> {
    path.split('/').filter(|c| !c.is_empty() && *c != ".").collect()
}

impl Tree {
    /// `layers` topmost first.
    pub fn new(layers: Vec<PathBuf>) -> Tree {
        Tree { layers, plain: false, exclude: None }
    }

    /// One ordinary directory (the build context).
    pub fn plain(dir: PathBuf) -> Tree {
        Tree { layers: vec![dir], plain: true, exclude: None }
    }

    /// The same tree, where [`Tree::read_dir`] leaves out what `patterns` (`.dockerignore`
    /// syntax) match, relative to `base`: what `COPY --exclude` does not copy.
    pub fn excluding(mut self, patterns: std::sync::Arc<berth_dockerfile::Ignore>, base: &str) -> Tree {
        self.exclude = Some((patterns, base.trim_matches('/').to_string()));
        self
    }

    /// Whether `path` is left out by [`Tree::excluding`].
    pub fn excluded(&self, path: &str) -> bool {
        let Some((patterns, base)) = &self.exclude else { return false };
        let path = path.trim_matches('/');
        let rel = if base.is_empty() {
            path
        } else {
            match path.strip_prefix(base.as_str()).and_then(|r| r.strip_prefix('/')) {
                Some(r) => r,
                None => return false,
            }
        };
        patterns.matches(rel)
    }

    /// An image's root filesystem.
    pub fn of_image(images: &berth_image::ImageStore, image: Option<&berth_image::Image>) -> Result<Tree> {
        let mut layers = Vec::new();
        if let Some(img) = image {
            for d in img.config.rootfs.diff_ids.iter().rev() {
                layers.push(images.snapshots().layer_dir(d)?);
            }
        }
        Ok(Tree { layers, plain: false, exclude: None })
    }

    /// The path exactly (no symlinks followed), if the merged view has it.
    pub fn lookup(&self, path: &str) -> Option<Found> {
        let comps = components(path);
        if comps.is_empty() {
            let host = self.layers.first()?.clone();
            let meta = std::fs::symlink_metadata(&host).ok()?;
            return Some(Found { host, meta });
        }
        'layers: for layer in &self.layers {
            let mut p = layer.clone();
            for (i, c) in comps.iter().enumerate() {
                p.push(c);
                let last = i + 1 == comps.len();
                let Ok(m) = std::fs::symlink_metadata(&p) else {
                    // Not in this layer; an opaque ancestor seen above would have stopped us.
                    continue 'layers;
                };
                if !self.plain && is_whiteout(&m) {
                    return None;
                }
                if last {
                    return Some(Found { host: p, meta: m });
                }
                if !m.is_dir() {
                    return None;
                }
                if !self.plain && is_opaque(&p) {
                    // Lower layers cannot contribute below here: the rest must be in this one.
                    return self.lookup_in(&p, &comps[i + 1..]);
                }
            }
        }
        None
    }

    /// Finds `rest` below `dir` within one layer only.
    fn lookup_in(&self, dir: &Path, rest: &[&str]) -> Option<Found> {
        let mut p = dir.to_path_buf();
        for (i, c) in rest.iter().enumerate() {
            p.push(c);
            let m = std::fs::symlink_metadata(&p).ok()?;
            if is_whiteout(&m) || (i + 1 < rest.len() && !m.is_dir()) {
                return None;
            }
            if i + 1 == rest.len() {
                return Some(Found { host: p, meta: m });
            }
        }
        None
    }

    /// Resolves symlinks in `path` inside the tree (as if chrooted), following the last
    /// component too when `follow_last`. Returns the cleaned path, which may not exist.
    pub fn resolve(&self, path: &str, follow_last: bool) -> Result<String> {
        let mut todo: Vec<String> = components(path).into_iter().rev().map(String::from).collect();
        let mut done: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(c) = todo.pop() {
            if c == ".." {
                done.pop();
                continue;
            }
            done.push(c);
            let is_last = todo.is_empty();
            if is_last && !follow_last {
                break;
            }
            let cur = done.join("/");
            let Some(f) = self.lookup(&cur) else { continue };
            if !f.meta.file_type().is_symlink() {
                continue;
            }
            hops += 1;
            if hops > 255 {
                return Err(BuildError::Invalid(format!("too many levels of symbolic links resolving {path}")));
            }
            let target = std::fs::read_link(&f.host).map_err(|e| BuildError::io(format!("reading link {cur}"), e))?;
            let target = target.to_string_lossy().into_owned();
            done.pop();
            if target.starts_with('/') {
                done.clear();
            }
            todo.extend(components(&target).into_iter().rev().map(String::from));
        }
        Ok(done.join("/"))
    }

    /// Names in the directory `path` (exact, already resolved), sorted.
    pub fn read_dir(&self, path: &str) -> Vec<String> {
        let comps = components(path);
        let mut names = BTreeSet::new();
        let mut hidden = BTreeSet::new();
        for (idx, layer) in self.layers.iter().enumerate() {
            let dir = comps.iter().fold(layer.clone(), |p, c| p.join(c));
            let Ok(m) = std::fs::symlink_metadata(&dir) else { continue };
            if !m.is_dir() || !self.visible_from(idx, &comps) {
                break;
            }
            if let Ok(rd) = std::fs::read_dir(&dir) {
                for e in rd.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    // Only a character device can be a whiteout: the entry's type (from the
                    // directory itself) spares the others a stat.
                    let maybe = !self.plain && e.file_type().map(|t| t.is_char_device()).unwrap_or(true);
                    let wh = maybe && e.metadata().map(|m| is_whiteout(&m)).unwrap_or(false);
                    if wh {
                        hidden.insert(name);
                    } else if !hidden.contains(&name) {
                        names.insert(name);
                    }
                }
            }
            if self.plain || is_opaque(&dir) {
                break;
            }
        }
        let join = |n: &str| {
            if path.trim_matches('/').is_empty() { n.to_string() } else { format!("{}/{n}", path.trim_matches('/')) }
        };
        names.into_iter().filter(|n| !self.excluded(&join(n))).collect()
    }

    /// Whether layer `idx`'s copy of `comps` is not hidden by a layer above it.
    fn visible_from(&self, idx: usize, comps: &[&str]) -> bool {
        for layer in &self.layers[..idx] {
            let mut p = layer.clone();
            for c in comps {
                p.push(c);
                let Ok(m) = std::fs::symlink_metadata(&p) else { break };
                if is_whiteout(&m) || (!m.is_dir()) {
                    return false;
                }
                if is_opaque(&p) {
                    return false;
                }
            }
        }
        true
    }

    /// Reads a whole small file (passwd, group), following symlinks inside the tree.
    pub fn read_file(&self, path: &str) -> Option<Vec<u8>> {
        let p = self.resolve(path, true).ok()?;
        let f = self.lookup(&p)?;
        f.meta.is_file().then(|| std::fs::read(&f.host).ok()).flatten()
    }
}

/// `rel` under `upper` (a finished step's upper directory), if every directory on the way is
/// a real directory: a step can leave symlinks there, and removing through one (`/a -> /`
/// on the host, since the daemon walks the host's tree) would remove the host's files.
/// The step's processes have ended, so nothing changes the tree while this looks.
pub fn in_upper(upper: &Path, rel: &str) -> Option<PathBuf> {
    let mut p = upper.to_path_buf();
    let parts: Vec<&str> = rel.split('/').filter(|c| !c.is_empty()).collect();
    let (last, dirs) = parts.split_last()?;
    for c in dirs {
        if *c == ".." || *c == "." {
            return None;
        }
        p.push(c);
        if !std::fs::symlink_metadata(&p).ok()?.file_type().is_dir() {
            return None;
        }
    }
    if *last == ".." || *last == "." {
        return None;
    }
    p.push(last);
    Some(p)
}

/// `user[:group]` → uid and gid, names looked up in the tree's /etc/passwd and /etc/group
/// as Docker does for `--chown` (a numeric part is used as is; a user without a group
/// gets gid = uid when numeric, else the user's primary group).
pub fn resolve_chown(tree: &Tree, spec: &str) -> Result<(u32, u32)> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd = tree.read_file("etc/passwd").map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let groups = tree.read_file("etc/group").map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let (uid, primary) = match user.parse::<u32>() {
        Ok(n) => (n, n),
        Err(_) => {
            let entry = passwd.lines().map(|l| l.split(':').collect::<Vec<_>>()).find(|f| f.first() == Some(&user));
            match entry {
                Some(f) if f.len() > 3 => (f[2].parse().unwrap_or(0), f[3].parse().unwrap_or(0)),
                _ => {
                    return Err(BuildError::Invalid(format!(
                        "unable to convert uid/gid chown string to host mapping: can't find uid for user {user}: no such user: {user}"
                    )));
                }
            }
        }
    };
    let gid = match group {
        None => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                let entry = groups.lines().map(|l| l.split(':').collect::<Vec<_>>()).find(|f| f.first() == Some(&g));
                match entry {
                    Some(f) if f.len() > 2 => f[2].parse().unwrap_or(0),
                    _ => {
                        return Err(BuildError::Invalid(format!(
                            "unable to convert uid/gid chown string to host mapping: can't find gid for group {g}: no such group: {g}"
                        )));
                    }
                }
            }
        },
    };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn excluded_paths_are_not_listed() {
        let t = tempfile::tempdir().unwrap();
        for f in ["dir/a.txt", "dir/b.md", "dir/sub/c.txt", "top.txt"] {
            let p = t.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        }
        let patterns = std::sync::Arc::new(berth_dockerfile::Ignore::parse("*.txt\nsub"));
        let tree = Tree::plain(t.path().to_path_buf()).excluding(patterns, "dir");
        assert_eq!(tree.read_dir("dir"), vec!["b.md"], "relative to the base: a.txt and sub go");
        assert_eq!(tree.read_dir(""), vec!["dir", "top.txt"], "outside the base nothing is excluded");
        assert!(tree.excluded("dir/sub/c.txt") && !tree.excluded("top.txt"));
    }

    fn whiteout(p: &Path) {
        rustix::fs::mknodat(rustix::fs::CWD, p, rustix::fs::FileType::CharacterDevice, rustix::fs::Mode::empty(), 0)
            .unwrap();
    }

    #[test]
    fn layers_merge_like_overlayfs() {
        let t = tempfile::tempdir().unwrap();
        let (top, low) = (t.path().join("top"), t.path().join("low"));
        for d in ["etc", "data/sub", "gone"] {
            std::fs::create_dir_all(low.join(d)).unwrap();
        }
        std::fs::write(low.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/:/bin/sh\n").unwrap();
        std::fs::write(low.join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        std::fs::write(low.join("data/a"), "low a").unwrap();
        std::fs::write(low.join("data/b"), "low b").unwrap();
        std::fs::create_dir_all(top.join("data")).unwrap();
        std::fs::write(top.join("data/a"), "top a").unwrap();
        whiteout(&top.join("data/b"));
        whiteout(&top.join("gone"));
        symlink("/data", top.join("link")).unwrap();
        symlink("../../../etc", top.join("data/up")).unwrap();
        let tree = Tree::new(vec![top.clone(), low.clone()]);

        assert_eq!(std::fs::read_to_string(tree.lookup("data/a").unwrap().host).unwrap(), "top a");
        assert!(tree.lookup("data/b").is_none(), "whited out");
        assert!(tree.lookup("gone").is_none());
        assert!(tree.lookup("data/sub").is_some());
        assert_eq!(tree.read_dir("data"), vec!["a", "sub", "up"]);
        assert_eq!(tree.resolve("link/a", true).unwrap(), "data/a");
        assert_eq!(tree.resolve("link", false).unwrap(), "link");
        assert_eq!(tree.resolve("data/up/passwd", true).unwrap(), "etc/passwd", "links stay inside the tree");
        assert_eq!(resolve_chown(&tree, "app").unwrap(), (1000, 1001));
        assert_eq!(resolve_chown(&tree, "app:staff").unwrap(), (1000, 50));
        assert_eq!(resolve_chown(&tree, "7:8").unwrap(), (7, 8));
        assert_eq!(resolve_chown(&tree, "7").unwrap(), (7, 7));
        assert!(resolve_chown(&tree, "nobody").unwrap_err().to_string().contains("no such user"));
    }
}
