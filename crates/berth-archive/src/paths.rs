//! Lexical path rules for archive entries, and confined lookups under a root directory.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use rustix::fs::{Mode, OFlags, ResolveFlags, openat2};

use crate::{ArchiveError, Result, errno};

/// Cleans an entry name the way Docker does (`filepath.Clean` relative to the root):
/// leading `/` and `./` are dropped, `.` components removed, `..` applied. A name that climbs
/// above the root is refused. Returns `None` for the root itself.
pub fn clean_entry_path(name: &str) -> Result<Option<String>> {
    let mut parts: Vec<&str> = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(ArchiveError::Unsafe(format!("{name}: path escapes the root")));
                }
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() { Ok(None) } else { Ok(Some(parts.join("/"))) }
}

/// Splits a cleaned path into its parent (possibly empty) and last component.
pub fn split_parent(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    }
}

/// Docker refuses a relative symlink whose target, taken from the link's directory, climbs
/// above the root (absolute targets are read relative to the container's root and are fine).
pub fn check_symlink(entry: &str, target: &str) -> Result<()> {
    if target.starts_with('/') {
        return Ok(());
    }
    let (dir, _) = split_parent(entry);
    let joined = if dir.is_empty() { target.to_string() } else { format!("{dir}/{target}") };
    clean_entry_path(&joined)
        .map(|_| ())
        .map_err(|_| ArchiveError::Unsafe(format!("{entry}: symlink target {target:?} points outside the root")))
}

/// Docker's rule for a symlink `entry` (its path from the container's root) unpacked by
/// `docker cp` into the directory `under` (likewise, `""` for the root itself): a relative
/// target, read from the link's directory with `..` stopping at the root as it does in the
/// container, must stay under `under`. At the root nothing can leave, so nothing is refused.
pub fn check_symlink_under(under: &str, entry: &str, target: &str) -> Result<()> {
    if target.starts_with('/') || within(&clean_clamped(&format!("{}/{target}", split_parent(entry).0)), under) {
        return Ok(());
    }
    Err(ArchiveError::Unsafe(format!("invalid symlink \"/{entry}\" -> {target:?}: it points outside /{under}")))
}

/// Where a hard link unpacked by `docker cp` into `under` points: its target is a path in
/// the archive, so under `under`, with `..` stopping at the container's root (Docker's rule,
/// as for [`check_symlink_under`]).
pub fn hardlink_target_under(under: &str, entry: &str, target: &str) -> Result<String> {
    let joined = clean_clamped(&format!("{under}/{target}"));
    if joined.is_empty() || !within(&joined, under) {
        return Err(ArchiveError::Unsafe(format!(
            "invalid hardlink \"/{entry}\" -> {target:?}: its target is outside /{under}"
        )));
    }
    Ok(joined)
}

/// Cleans a path relative to a root the way the kernel resolves it there: `..` at the root
/// stays at the root. `""` is the root.
fn clean_clamped(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

/// Whether the clean relative path `path` is `dir` or below it.
fn within(path: &str, dir: &str) -> bool {
    dir.is_empty() || path == dir || path.strip_prefix(dir).is_some_and(|rest| rest.starts_with('/'))
}

/// A hard link's target is a path inside the archive; it must stay inside the root.
pub fn clean_hardlink_target(entry: &str, target: &str) -> Result<String> {
    match clean_entry_path(target) {
        Ok(Some(t)) => Ok(t),
        _ => Err(ArchiveError::Unsafe(format!("{entry}: hard link target {target:?} is outside the root"))),
    }
}

/// Opens `path` (relative) under `root` with every symlink resolved as if `root` were `/`.
pub fn open_in_root(root: impl AsFd, path: &str, flags: OFlags) -> rustix::io::Result<OwnedFd> {
    let p = if path.is_empty() { "." } else { path };
    openat2(root, p, flags | OFlags::CLOEXEC, Mode::empty(), ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS)
}

/// Opens for reading the file an `O_PATH` descriptor names, only if it is a regular file
/// (`None` otherwise). Whatever a container may have put at a path is never opened itself:
/// opening a device node from the host acts on the host's device, outside the container's
/// device cgroup (a watchdog starts, a tape rewinds), and a FIFO blocks the reader. The
/// descriptor pins the inode, so what is checked is what is opened.
pub fn reopen_regular(path_fd: &OwnedFd) -> rustix::io::Result<Option<OwnedFd>> {
    let st = rustix::fs::fstat(path_fd)?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return Ok(None);
    }
    let proc_path = format!("/proc/self/fd/{}", path_fd.as_raw_fd());
    rustix::fs::open(proc_path, OFlags::RDONLY | OFlags::NOCTTY | OFlags::CLOEXEC, Mode::empty()).map(Some)
}

/// [`open_in_root`] for reading, of a regular file only (`None` for anything else, links
/// included): see [`reopen_regular`].
pub fn open_regular_in_root(root: impl AsFd, path: &str) -> rustix::io::Result<Option<OwnedFd>> {
    reopen_regular(&open_in_root(root, path, OFlags::PATH | OFlags::NOFOLLOW)?)
}

/// Opens the directory `path` under `root`, creating missing components (mode 0755).
pub fn ensure_dir_in_root(root: impl AsFd, path: &str) -> Result<OwnedFd> {
    let root = root.as_fd();
    match open_in_root(root, path, OFlags::PATH | OFlags::DIRECTORY) {
        Ok(fd) => return Ok(fd),
        Err(rustix::io::Errno::NOENT) => {}
        Err(rustix::io::Errno::NOTDIR) => {
            return Err(ArchiveError::Corrupt(format!("{path}: a parent is not a directory")));
        }
        Err(e) => return Err(errno(format!("opening {path}"), e)),
    }
    let comps: Vec<&str> = path.split('/').collect();
    let mut cur = open_in_root(root, "", OFlags::PATH | OFlags::DIRECTORY).map_err(|e| errno("opening root", e))?;
    for i in 0..comps.len() {
        let prefix = comps[..=i].join("/");
        match open_in_root(root, &prefix, OFlags::PATH | OFlags::DIRECTORY) {
            Ok(fd) => cur = fd,
            Err(rustix::io::Errno::NOENT) => {
                match rustix::fs::mkdirat(&cur, comps[i], Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err(errno(format!("creating {prefix}"), e)),
                }
                cur = open_in_root(root, &prefix, OFlags::PATH | OFlags::DIRECTORY)
                    .map_err(|e| errno(format!("opening {prefix}"), e))?;
            }
            Err(rustix::io::Errno::NOTDIR) => return Err(ArchiveError::Corrupt(format!("{prefix}: not a directory"))),
            Err(e) => return Err(errno(format!("opening {prefix}"), e)),
        }
    }
    Ok(cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether anything opened `path` while `f` ran (inotify's IN_OPEN, which an `O_PATH`
    /// descriptor does not raise: it opens nothing).
    fn opened_during(path: &std::path::Path, f: impl FnOnce()) -> bool {
        use rustix::fs::inotify;
        let ino = inotify::init(inotify::CreateFlags::NONBLOCK | inotify::CreateFlags::CLOEXEC).unwrap();
        inotify::add_watch(&ino, path, inotify::WatchFlags::OPEN).unwrap();
        f();
        let mut buf = [std::mem::MaybeUninit::uninit(); 1024];
        let mut events = inotify::Reader::new(&ino, &mut buf);
        events.next().is_ok()
    }

    #[test]
    fn only_regular_files_are_opened_for_reading() {
        let d = tempfile::tempdir().unwrap();
        let root = rustix::fs::open(d.path(), OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
        std::fs::write(d.path().join("plain"), "data").unwrap();
        let fifo = d.path().join("fifo");
        rustix::fs::mknodat(&root, "fifo", rustix::fs::FileType::Fifo, Mode::from(0o644), 0).unwrap();
        std::os::unix::fs::symlink("plain", d.path().join("link")).unwrap();

        let mut s = String::new();
        let fd = open_regular_in_root(&root, "plain").unwrap().expect("a plain file is opened");
        std::io::Read::read_to_string(&mut std::fs::File::from(fd), &mut s).unwrap();
        assert_eq!(s, "data");
        // A FIFO (as a device node would be) is looked at, never opened: no IN_OPEN, no block.
        assert!(!opened_during(&fifo, || assert!(open_regular_in_root(&root, "fifo").unwrap().is_none())));
        // The control: a reader that does open it is seen.
        assert!(opened_during(&fifo, || {
            drop(rustix::fs::openat(&root, "fifo", OFlags::RDONLY | OFlags::NONBLOCK, Mode::empty()).unwrap());
        }));
        // A link is not followed, even inside the root.
        assert!(open_regular_in_root(&root, "link").unwrap().is_none());
    }

    #[test]
    fn cleaning() {
        assert_eq!(clean_entry_path("./etc/passwd").unwrap().as_deref(), Some("etc/passwd"));
        assert_eq!(clean_entry_path("/bin//sh").unwrap().as_deref(), Some("bin/sh"));
        assert_eq!(clean_entry_path("a/../b").unwrap().as_deref(), Some("b"));
        assert_eq!(clean_entry_path("./").unwrap(), None);
        assert!(clean_entry_path("../etc/passwd").is_err());
        assert!(clean_entry_path("a/../../x").is_err());
    }

    #[test]
    fn cp_link_rules_confine_at_the_root() {
        // Unpacked at the container's root, `..` cannot leave it: accepted, as Docker does.
        assert!(check_symlink_under("", "uplink", "../../etc").is_ok());
        assert!(check_symlink_under("", "a/b/l", "../../../../x").is_ok());
        // Below it, a link may not climb out of the directory it was unpacked into.
        assert!(check_symlink_under("tmp", "tmp/l", "../etc").is_err());
        assert!(check_symlink_under("tmp", "tmp/a/l", "../x").is_ok());
        assert!(check_symlink_under("tmp", "tmp/l", "../tmpx/y").is_err());
        assert!(check_symlink_under("tmp", "tmp/l", "/etc").is_ok());
        assert_eq!(hardlink_target_under("", "hl", "../etc/passwd").unwrap(), "etc/passwd");
        assert_eq!(hardlink_target_under("tmp", "hl", "a/f").unwrap(), "tmp/a/f");
        assert!(hardlink_target_under("tmp", "hl", "../etc/passwd").is_err());
    }

    #[test]
    fn symlink_rules() {
        assert!(check_symlink("bin/sh", "/bin/busybox").is_ok());
        assert!(check_symlink("usr/bin/x", "../lib/x").is_ok());
        assert!(check_symlink("a/evil", "../../etc").is_err());
        assert!(check_symlink("evil", "..").is_err());
    }
}
