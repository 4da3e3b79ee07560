//! Placing files in a staging directory that becomes a layer: replacing whatever an
//! earlier source left in the way, copying a tree's paths (hard-linking what is safe to
//! share), and setting owners, modes and times; directories on the way take the image's
//! metadata where the image has them.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::copy::join;
use crate::rootfs::Tree;
use crate::{BuildError, Result};

/// Removes whatever is at `p` (a previous source may have put it there).
pub(crate) fn replace(p: &Path) -> Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
        Err(_) => Ok(()),
    }
    .map_err(|e| BuildError::io(format!("replacing {}", p.display()), e))
}

pub(crate) fn set_meta(p: &Path, mode: u32, (uid, gid): (u32, u32)) -> Result<()> {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid))
        .map_err(|e| BuildError::io(format!("chown {}", p.display()), e))?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .map_err(|e| BuildError::io(format!("chmod {}", p.display()), e))
}

pub(crate) fn write_file(p: &Path, bytes: &[u8], mode: u32, owner: (u32, u32)) -> Result<()> {
    replace(p)?;
    std::fs::write(p, bytes).map_err(|e| BuildError::io(format!("writing {}", p.display()), e))?;
    set_meta(p, mode, owner)
}

pub(crate) fn set_mtime(p: &Path, m: &std::fs::Metadata) {
    let t = rustix::fs::Timestamps {
        last_access: rustix::fs::Timespec { tv_sec: m.atime(), tv_nsec: m.atime_nsec() as _ },
        last_modification: rustix::fs::Timespec { tv_sec: m.mtime(), tv_nsec: m.mtime_nsec() as _ },
    };
    let _ = rustix::fs::utimensat(rustix::fs::CWD, p, &t, rustix::fs::AtFlags::SYMLINK_NOFOLLOW);
}

/// Copies one tree path (recursively) to `host`.
/// With `link`, a root-owned regular file is hard-linked instead of copied: the caller
/// vouches that the source is never changed in place (build contexts: unpacking and
/// syncing replace files, never rewrite them) and that the copy's owner and mode would
/// be the source's.
/// Regular files copied are added to `copied` as (source, destination) host paths.
pub(crate) fn copy_path(
    tree: &Tree,
    path: &str,
    host: &Path,
    owner: &dyn Fn(&std::fs::Metadata) -> (u32, u32),
    chmod: Option<u32>,
    link: bool,
    copied: &mut Vec<(PathBuf, PathBuf)>,
) -> Result<()> {
    let Some(f) = tree.lookup(path) else { return Ok(()) };
    let m = &f.meta;
    let ft = m.file_type();
    if ft.is_dir() {
        if !std::fs::symlink_metadata(host).is_ok_and(|x| x.is_dir()) {
            replace(host)?;
            std::fs::create_dir(host).map_err(|e| BuildError::io(format!("creating {}", host.display()), e))?;
        }
        for child in tree.read_dir(path) {
            copy_path(tree, &join(path, &child), &host.join(&child), owner, chmod, link, copied)?;
        }
        set_meta(host, chmod.unwrap_or(m.mode() & 0o7777), owner(m))?;
        set_mtime(host, m);
    } else if ft.is_file() {
        copied.push((f.host.clone(), host.to_path_buf()));
        if link && m.uid() == 0 && m.gid() == 0 {
            // The staging directory is new: something is in the way only when an earlier
            // source put it there, so look only when linking says so.
            let linked = match std::fs::hard_link(&f.host, host) {
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    replace(host)?;
                    std::fs::hard_link(&f.host, host)
                }
                r => r,
            };
            if linked.is_ok() {
                return Ok(());
            }
        }
        replace(host)?;
        std::fs::copy(&f.host, host).map_err(|e| BuildError::io(format!("copying {path}"), e))?;
        set_meta(host, chmod.unwrap_or(m.mode() & 0o7777), owner(m))?;
        set_mtime(host, m);
    } else if ft.is_symlink() {
        replace(host)?;
        let target = std::fs::read_link(&f.host).map_err(|e| BuildError::io(format!("reading link {path}"), e))?;
        std::os::unix::fs::symlink(&target, host)
            .map_err(|e| BuildError::io(format!("creating link {}", host.display()), e))?;
        let (uid, gid) = owner(m);
        let _ = std::os::unix::fs::lchown(host, Some(uid), Some(gid));
        set_mtime(host, m);
    } else if std::os::unix::fs::FileTypeExt::is_fifo(&ft) {
        // A FIFO is copied as a FIFO, as Docker does; never opened, which would block.
        replace(host)?;
        rustix::fs::mknodat(
            rustix::fs::CWD,
            host,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .map_err(|e| BuildError::io(format!("creating fifo {}", host.display()), e.into()))?;
        set_meta(host, chmod.unwrap_or(m.mode() & 0o7777), owner(m))?;
        set_mtime(host, m);
    }
    Ok(())
}

/// Creates `rel` (resolved, relative) and its parents in the staging root `root`:
/// with the image's metadata where the image has the directory, else 0755 and `owner`.
/// The image's directories are added to `image_dirs`: copying into them changes their
/// modification time, which is set back once everything is copied.
pub(crate) fn make_dirs(
    image: &Tree,
    root: &Path,
    rel: &str,
    owner: (u32, u32),
    image_dirs: &mut Vec<(PathBuf, std::fs::Metadata)>,
) -> Result<()> {
    let mut prefix = String::new();
    for comp in rel.split('/').filter(|c| !c.is_empty()) {
        prefix = join(&prefix, comp);
        let host = root.join(&prefix);
        if std::fs::symlink_metadata(&host).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        replace(&host)?;
        std::fs::create_dir(&host).map_err(|e| BuildError::io(format!("creating {prefix}"), e))?;
        match image.lookup(&prefix).filter(|f| f.meta.is_dir()) {
            Some(f) => {
                set_meta(&host, f.meta.mode() & 0o7777, (f.meta.uid(), f.meta.gid()))?;
                image_dirs.push((host, f.meta));
            }
            None => set_meta(&host, 0o755, owner)?,
        }
    }
    Ok(())
}
