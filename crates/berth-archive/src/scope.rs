//! Paths inside a root read the way Docker reads them for `docker cp`: as names, with every
//! symlink followed in the root's scope.
//!
//! The docker CLI unpacks what a container sends on the client side and follows whatever it
//! gets, so the daemon decides what a symlink becomes on the host. Docker's rules, kept here
//! (moby's `FollowSymlinkInScope`, `container.ResolvePath` and `StatPath`):
//!
//! - A request is cleaned lexically first (`/a/../b` is `/b` even when `a` is a link); a
//!   trailing `/` or `/.` is kept, since it asks for the directory a link leads to.
//! - Every component but the last is followed: a link's target takes its place, an absolute
//!   target restarting from the root and `..` never climbing above it. A component that does
//!   not exist is taken as written, so a dangling link resolves to the path it names. More than
//!   255 links is a loop (`ELOOP`).
//! - The last component is followed too when the request ends in `/` or `/.`; otherwise a
//!   symlink there is the answer itself, and its stat carries the fully resolved target, not
//!   the target as written (the CLI's `cp -L` follows that once, so a chain must be resolved
//!   here or the host is left with a link).
//!
//! Every lookup opens the part already resolved with `openat2(RESOLVE_IN_ROOT)`: a tree that
//! changes underneath (a running container) can make an answer stale, never lead outside.

use std::os::fd::BorrowedFd;

use rustix::fs::{AtFlags, FileType, OFlags, Stat};
use rustix::io::Errno;

use berth_api::paths::clean_abs;

use crate::paths::open_in_root;
use crate::{Result, errno};

/// Docker's limit (`evalSymlinksInScope`); the kernel's own is 40.
const MAX_LINKS: usize = 255;

/// The path `path` leads to inside `root`, every symlink followed; absolute, lexically clean.
pub fn resolve_in_root(root: BorrowedFd<'_>, path: &str) -> Result<String> {
    let mut resolved: Vec<String> = Vec::new();
    // Components still to look at, the next one last.
    let mut todo: Vec<String> = lexical_components(path).into_iter().rev().collect();
    let mut links = 0;
    while let Some(c) = todo.pop() {
        match c.as_str() {
            "" | "." => continue,
            ".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        let parent = format!("/{}", resolved.join("/"));
        let dir = match open_in_root(root, rel(&parent), OFlags::PATH | OFlags::DIRECTORY) {
            Ok(dir) => dir,
            // Below a missing component: missing too, taken as written.
            Err(Errno::NOENT) => {
                resolved.push(c);
                continue;
            }
            Err(e) => return Err(errno(format!("lstat {}", join(&parent, &c)), e)),
        };
        let st = match rustix::fs::statat(&dir, c.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => {
                resolved.push(c);
                continue;
            }
            Err(e) => return Err(errno(format!("lstat {}", join(&parent, &c)), e)),
        };
        if FileType::from_raw_mode(st.st_mode) != FileType::Symlink {
            resolved.push(c);
            continue;
        }
        links += 1;
        if links > MAX_LINKS {
            return Err(errno(format!("too many links in {}", clean_abs(path)), Errno::LOOP));
        }
        let target = rustix::fs::readlinkat(&dir, c.as_str(), Vec::new())
            .map_err(|e| errno(format!("readlink {}", join(&parent, &c)), e))?;
        let target = target.to_string_lossy().into_owned();
        if target.starts_with('/') {
            resolved.clear();
        }
        todo.extend(target.split('/').rev().map(str::to_string));
    }
    Ok(format!("/{}", resolved.join("/")))
}

/// What a `docker cp` source path names, and how Docker archives it.
#[derive(Debug)]
pub struct Source {
    /// The name the stat reports and the archive's top entry takes: the request's last
    /// component (`.` for `dir/.`, `/` for the root), whatever it resolved to.
    pub name: String,
    /// Where the named thing is inside the root, resolved (`/etc` for `/etcl/`, `/etcl` for
    /// `/etcl`): the path to archive, its last component not to be followed.
    pub path: String,
    /// Its `lstat`.
    pub stat: Stat,
    /// For a symlink, where it leads with every link followed (absolute, inside the root).
    pub link_target: Option<String>,
}

/// Finds the source of `docker cp CONTAINER:request` under `root`.
///
/// A missing path is an [`crate::ArchiveError::Io`] of kind `NotFound`; a non-directory
/// where the request needs a directory (`/bin/sh/`) is `ENOTDIR`, which Docker answers
/// with a server error, not "not found".
pub fn locate_source(root: BorrowedFd<'_>, request: &str) -> Result<Source> {
    let abs = preserve_trailing(&clean_abs(request), request);
    let (dir, base) = match abs.rfind('/') {
        Some(i) => (&abs[..=i], &abs[i + 1..]),
        None => ("/", abs.as_str()),
    };
    let resolved_dir = resolve_in_root(root, dir)?;
    // Docker names the path it failed on in the message; this is it, inside the root.
    let looked_up = format!("{}/{base}", resolved_dir.trim_end_matches('/'));
    let lstat_err = |e: Errno| errno(format!("lstat {looked_up}"), e);
    let parent = open_in_root(root, rel(&resolved_dir), OFlags::PATH | OFlags::DIRECTORY).map_err(lstat_err)?;
    let (path, stat) = if base.is_empty() || base == "." {
        // `dir/` and `dir/.` are the directory `dir` leads to.
        (resolved_dir.clone(), rustix::fs::fstat(&parent).map_err(lstat_err)?)
    } else {
        (join(&resolved_dir, base), rustix::fs::statat(&parent, base, AtFlags::SYMLINK_NOFOLLOW).map_err(lstat_err)?)
    };
    let link_target = if FileType::from_raw_mode(stat.st_mode) == FileType::Symlink {
        Some(resolve_in_root(root, &abs)?)
    } else {
        None
    };
    Ok(Source { name: go_base(&abs), path, stat, link_target })
}

fn lexical_components(path: &str) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c.to_string()),
        }
    }
    parts
}

/// Puts back the trailing `/.` or `/` that cleaning took off `original` (Docker's
/// `PreserveTrailingDotOrSeparator`).
fn preserve_trailing(cleaned: &str, original: &str) -> String {
    let mut out = cleaned.to_string();
    if go_base(&out) != "." && go_base(original) == "." {
        if !out.ends_with('/') {
            out.push('/');
        }
        out.push('.');
    }
    if !out.ends_with('/') && original.ends_with('/') {
        out.push('/');
    }
    out
}

/// Go's `filepath.Base`: the last component, trailing slashes ignored.
fn go_base(path: &str) -> String {
    let p = path.trim_end_matches('/');
    if p.is_empty() {
        return if path.is_empty() { ".".into() } else { "/".into() };
    }
    p.rsplit('/').next().unwrap_or(p).to_string()
}

/// An absolute path inside the root as [`open_in_root`] takes it.
fn rel(path: &str) -> &str {
    path.trim_start_matches('/')
}

fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') { format!("{dir}{name}") } else { format!("{dir}/{name}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_dot_and_slash_survive_cleaning() {
        for (req, abs) in [
            ("/etcl/.", "/etcl/."),
            ("etcl/", "/etcl/"),
            ("/etcl/./", "/etcl/./"),
            ("/a/../etcl/.", "/etcl/."),
            ("/", "/"),
            ("/.", "/."),
            ("/etcl", "/etcl"),
        ] {
            assert_eq!(preserve_trailing(&clean_abs(req), req), abs, "{req}");
        }
    }

    #[test]
    fn names_are_gos_base() {
        assert_eq!(go_base("/etcl/."), ".");
        assert_eq!(go_base("/etcl/"), "etcl");
        assert_eq!(go_base("/"), "/");
        assert_eq!(go_base("/bin/sh"), "sh");
    }
}
