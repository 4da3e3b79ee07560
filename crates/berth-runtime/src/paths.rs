//! Paths inside a container's root, resolved so they can never leave it.

use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::{Result, RuntimeError};

/// Opens `rel` under `root` with every symlink resolved inside `root`.
pub fn open_in_root(root: impl AsFd, rel: &str, flags: OFlags) -> rustix::io::Result<OwnedFd> {
    let rel = rel.trim_start_matches('/');
    rustix::fs::openat2(
        root,
        if rel.is_empty() { "." } else { rel },
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
}

/// Creates the directory `rel` (and its parents, mode 0755) under `root` and opens it.
pub fn mkdir_all(root: impl AsFd, rel: &str) -> Result<OwnedFd> {
    let root = root.as_fd();
    let rel = rel.trim_matches('/');
    match open_in_root(root, rel, OFlags::PATH | OFlags::DIRECTORY) {
        Ok(fd) => return Ok(fd),
        Err(Errno::NOENT) => {}
        Err(e) => return Err(RuntimeError::sys(format!("opening /{rel}"), e)),
    }
    let mut cur =
        open_in_root(root, "", OFlags::PATH | OFlags::DIRECTORY).map_err(|e| RuntimeError::sys("opening root", e))?;
    let comps: Vec<&str> = rel.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    for i in 0..comps.len() {
        let prefix = comps[..=i].join("/");
        match open_in_root(root, &prefix, OFlags::PATH | OFlags::DIRECTORY) {
            Ok(fd) => cur = fd,
            Err(Errno::NOENT) => {
                match rustix::fs::mkdirat(&cur, comps[i], Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(RuntimeError::sys(format!("creating /{prefix}"), e)),
                }
                cur = open_in_root(root, &prefix, OFlags::PATH | OFlags::DIRECTORY)
                    .map_err(|e| RuntimeError::sys(format!("opening /{prefix}"), e))?;
            }
            Err(e) => return Err(RuntimeError::sys(format!("opening /{prefix}"), e)),
        }
    }
    Ok(cur)
}

/// Makes sure a mount point exists at `rel`: a directory, or an empty file when the mount
/// source is a file. Returns an `O_PATH` descriptor of it.
pub fn ensure_mountpoint(root: impl AsFd, rel: &str, file: bool) -> Result<OwnedFd> {
    let root = root.as_fd();
    let rel = rel.trim_matches('/');
    if !file {
        return mkdir_all(root, rel);
    }
    if let Ok(fd) = open_in_root(root, rel, OFlags::PATH) {
        return Ok(fd);
    }
    let (parent, name) = match rel.rfind('/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => ("", rel),
    };
    let dir = mkdir_all(root, parent)?;
    match rustix::fs::openat(
        &dir,
        name,
        OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::from_raw_mode(0o644),
    ) {
        Ok(_) | Err(Errno::EXIST) => {}
        Err(e) => return Err(RuntimeError::sys(format!("creating mount point /{rel}"), e)),
    }
    open_in_root(root, rel, OFlags::PATH).map_err(|e| RuntimeError::sys(format!("opening /{rel}"), e))
}

/// The `/proc/self/fd/N` path of a descriptor, for system calls that take paths.
pub fn fd_path(fd: &impl std::os::fd::AsRawFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}
