//! Files reached beneath a directory with no symlink on the way, for logs written as root in
//! a tree that others can write to.
//!
//! A CRI container logs to kubelet's path: the pod's log directory (under /var/log/pods)
//! joined with the container's relative `log_path`. A pod that mounts that tree (a hostPath
//! of /var/log/pods, as log collectors have) can plant links in it; followed, they would make
//! the daemon and the shim create directories and write, as root, wherever they point. So
//! everything past the log directory is opened one component at a time from the descriptor
//! of the one before, with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`: a link anywhere
//! there (an intermediate directory or the file itself) is refused with an error naming it,
//! and a directory swapped for a link between two steps cannot redirect what follows. The log
//! directory itself is kubelet's and is taken as given.

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// Directories made on the way, as `mkdir -p` makes them.
const DIR_MODE: u32 = 0o755;

fn resolve() -> ResolveFlags {
    ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS
}

/// `rel`'s components, which must all be plain names (no `..`, not absolute).
fn names(rel: &Path) -> io::Result<Vec<&std::ffi::OsStr>> {
    rel.components()
        .filter(|c| *c != Component::CurDir)
        .map(|c| match c {
            Component::Normal(n) => Ok(n),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a relative path without '..'", rel.display()),
            )),
        })
        .collect()
}

/// The error for step `at` of the walk (`root` joined with the names up to it), whose
/// directory is `parent`.
fn step_error(root: &Path, names: &[&std::ffi::OsStr], at: usize, parent: &OwnedFd, what: &str, e: Errno) -> io::Error {
    let path: PathBuf = std::iter::once(root.as_os_str()).chain(names[..=at].iter().copied()).collect();
    // A link is refused with ELOOP, or ENOTDIR where a directory is wanted.
    let link = matches!(e, Errno::LOOP | Errno::NOTDIR)
        && rustix::fs::statat(parent, names[at], rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|st| rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Symlink);
    match e {
        _ if link => io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{} is a symbolic link: a log path is not followed through links", path.display()),
        ),
        e => io::Error::new(io::Error::from(e).kind(), format!("{what} {}: {e}", path.display())),
    }
}

/// Opens the directory `rel` beneath `root`, making the directories that are missing when
/// `create` is set.
pub fn dir(root: &Path, rel: &Path, create: bool) -> io::Result<OwnedFd> {
    let names = names(rel)?;
    let mut cur: OwnedFd = File::open(root)
        .map_err(|e| io::Error::new(e.kind(), format!("opening the log directory {}: {e}", root.display())))?
        .into();
    for (i, name) in names.iter().enumerate() {
        if create {
            match rustix::fs::mkdirat(&cur, *name, Mode::from_raw_mode(DIR_MODE)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(step_error(root, &names, i, &cur, "creating", e)),
            }
        }
        let flags = OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::RDONLY;
        cur = rustix::fs::openat2(&cur, *name, flags, Mode::empty(), resolve())
            .map_err(|e| step_error(root, &names, i, &cur, "opening", e))?;
    }
    Ok(cur)
}

/// Opens the file `rel` beneath `root` with `flags` (and `mode` when it is created), making
/// its missing directories. Neither they nor the file may be links.
pub fn open(root: &Path, rel: &Path, flags: OFlags, mode: u32) -> io::Result<File> {
    let all = names(rel)?;
    let Some((file, dirs)) = all.split_last() else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "a log path names a file"));
    };
    let parent = dir(root, &dirs.iter().collect::<PathBuf>(), true)?;
    let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    rustix::fs::openat2(&parent, *file, flags, Mode::from_raw_mode(mode), resolve())
        .map(File::from)
        .map_err(|e| step_error(root, &all, all.len() - 1, &parent, "opening", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append() -> OFlags {
        OFlags::WRONLY | OFlags::APPEND | OFlags::CREATE
    }

    #[test]
    fn missing_directories_are_made_and_the_file_is_created_beneath_the_root() {
        let t = tempfile::tempdir().unwrap();
        let mut f = open(t.path(), Path::new("./c/d/0.log"), append(), 0o640).unwrap();
        io::Write::write_all(&mut f, b"x").unwrap();
        assert_eq!(std::fs::read(t.path().join("c/d/0.log")).unwrap(), b"x");
        // Again: everything exists now.
        open(t.path(), Path::new("c/d/0.log"), append(), 0o640).unwrap();
    }

    #[test]
    fn a_link_anywhere_past_the_root_is_refused_and_named() {
        let t = tempfile::tempdir().unwrap();
        let target = t.path().join("target");
        std::fs::create_dir(&target).unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::os::unix::fs::symlink(&target, root.join("a/b")).unwrap();
        std::os::unix::fs::symlink(target.join("f"), root.join("a/0.log")).unwrap();
        for (rel, link) in [("a/b/0.log", "a/b"), ("a/b/c/0.log", "a/b"), ("a/0.log", "a/0.log")] {
            let e = open(&root, Path::new(rel), append(), 0o640).unwrap_err();
            assert!(e.to_string().contains(&format!("{} is a symbolic link", root.join(link).display())), "{e}");
        }
        assert!(dir(&root, Path::new("a/b"), true).is_err());
        assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0, "nothing was made through the link");
    }

    #[test]
    fn paths_that_climb_or_are_absolute_are_refused() {
        let t = tempfile::tempdir().unwrap();
        for rel in ["../x.log", "a/../../x.log", "/x.log", ""] {
            assert!(open(t.path(), Path::new(rel), append(), 0o640).is_err(), "{rel}");
        }
    }
}
