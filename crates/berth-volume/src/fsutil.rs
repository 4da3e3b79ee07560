//! Filesystem helpers for volumes: mount detection, the local driver's mounts, copying an
//! image's content into a new volume, and measuring a volume.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use rustix::fs::{AtFlags, CWD, StatxAttributes, StatxFlags};
use rustix::mount::MountFlags;

/// Whether `path` is the root of a mount (statx's MOUNT_ROOT; /proc/self/mountinfo on a
/// kernel without it). Device numbers cannot tell: a bind of a directory on the same
/// filesystem keeps the device.
pub fn is_mount_point(path: &Path) -> bool {
    match rustix::fs::statx(CWD, path, AtFlags::NO_AUTOMOUNT | AtFlags::SYMLINK_NOFOLLOW, StatxFlags::empty()) {
        Ok(r) if r.stx_attributes_mask.contains(StatxAttributes::MOUNT_ROOT) => {
            r.stx_attributes.contains(StatxAttributes::MOUNT_ROOT)
        }
        Ok(_) | Err(rustix::io::Errno::NOSYS) => {
            let want = path.display().to_string();
            std::fs::read_to_string("/proc/self/mountinfo")
                .map(|m| m.lines().any(|l| l.split(' ').nth(4).is_some_and(|p| p.replace("\\040", " ") == want)))
                .unwrap_or(false)
        }
        Err(_) => false,
    }
}

/// Mounts what the local driver's options describe on `target`: `type`/`device`/`o` as
/// `mount -t TYPE -o O DEVICE TARGET` would, with `o=bind` (or `rbind`) for a host directory.
pub fn mount_local(opts: &BTreeMap<String, String>, target: &Path) -> io::Result<()> {
    let kind = opts.get("type").map(|s| s.as_str()).unwrap_or("none");
    let device = opts.get("device").map(|s| s.as_str()).unwrap_or(kind);
    let mut flags = MountFlags::empty();
    let mut data = Vec::new();
    let o = opts.get("o").map(|s| s.as_str()).unwrap_or("");
    for opt in o.split(',').filter(|s| !s.is_empty()) {
        match opt {
            "ro" => flags |= MountFlags::RDONLY,
            "rw" => {}
            "bind" => flags |= MountFlags::BIND,
            "rbind" => flags |= MountFlags::BIND | MountFlags::REC,
            "nosuid" => flags |= MountFlags::NOSUID,
            "nodev" => flags |= MountFlags::NODEV,
            "noexec" => flags |= MountFlags::NOEXEC,
            "sync" => flags |= MountFlags::SYNCHRONOUS,
            "noatime" => flags |= MountFlags::NOATIME,
            "nodiratime" => flags |= MountFlags::NODIRATIME,
            "relatime" => flags |= MountFlags::RELATIME,
            "strictatime" => flags |= MountFlags::STRICTATIME,
            other => data.push(other.to_string()),
        }
    }
    if let Some(size) = opts.get("size") {
        data.push(format!("size={size}"));
    }
    if flags.contains(MountFlags::BIND) {
        let src = Path::new(device);
        if !src.is_dir() {
            return Err(io::Error::new(io::ErrorKind::NotFound, format!("no such file or directory: {device}")));
        }
        rustix::mount::mount(src, target, "", flags, None)?;
        if flags.contains(MountFlags::RDONLY) {
            rustix::mount::mount_remount(target, MountFlags::BIND | MountFlags::RDONLY, "")?;
        }
        return Ok(());
    }
    let data = std::ffi::CString::new(data.join(","))
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "mount options contain a NUL byte"))?;
    rustix::mount::mount(device, target, kind, flags, Some(data.as_c_str()))?;
    Ok(())
}

pub fn dir_is_empty(path: &Path) -> bool {
    std::fs::read_dir(path).map(|mut d| d.next().is_none()).unwrap_or(false)
}

/// The bytes of every regular file under `path`, not following symlinks or crossing into
/// other mounts.
pub fn dir_size(path: &Path) -> u64 {
    let Ok(top) = std::fs::symlink_metadata(path) else { return 0 };
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else { continue };
        for e in rd.flatten() {
            let Ok(md) = e.metadata() else { continue };
            if md.is_dir() && md.dev() == top.dev() {
                stack.push(e.path());
            } else if md.is_file() {
                total += md.len();
            }
        }
    }
    total
}

/// Copies the content of directory `src` into the (empty) directory `dst`: files, symlinks,
/// directories, device nodes and fifos with their owners, modes and times. `dst` itself
/// takes `src`'s owner and mode, as Docker does when it fills a new volume from an image.
pub fn copy_tree(src: &Path, dst: &Path) -> io::Result<()> {
    copy_attrs(src, dst)?;
    for e in std::fs::read_dir(src)? {
        let e = e?;
        let from = e.path();
        let to = dst.join(e.file_name());
        let md = std::fs::symlink_metadata(&from)?;
        let ft = md.file_type();
        if ft.is_dir() {
            std::fs::create_dir(&to)?;
            copy_tree(&from, &to)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
            // Unlike a file's, a symlink's owner gives no access (its target's permissions
            // decide), so a refused lchown does not fail the copy.
            let _ = rustix::fs::chownat(CWD, &to, Some(uid(md.uid())), Some(gid(md.gid())), AtFlags::SYMLINK_NOFOLLOW);
        } else if ft.is_file() {
            std::fs::copy(&from, &to)?;
            copy_attrs(&from, &to)?;
        } else {
            use std::os::unix::fs::FileTypeExt;
            let kind = if ft.is_fifo() {
                rustix::fs::FileType::Fifo
            } else if ft.is_char_device() {
                rustix::fs::FileType::CharacterDevice
            } else if ft.is_block_device() {
                rustix::fs::FileType::BlockDevice
            } else {
                // Sockets are not content.
                continue;
            };
            rustix::fs::mknodat(CWD, &to, kind, rustix::fs::Mode::from_raw_mode(md.mode() & 0o7777), md.rdev())?;
            copy_attrs(&from, &to)?;
        }
    }
    Ok(())
}

fn uid(u: u32) -> rustix::fs::Uid {
    rustix::fs::Uid::from_raw(u)
}

fn gid(g: u32) -> rustix::fs::Gid {
    rustix::fs::Gid::from_raw(g)
}

/// Owner, then mode (chown clears set-id bits), then times.
fn copy_attrs(from: &Path, to: &Path) -> io::Result<()> {
    let md = std::fs::metadata(from)?;
    rustix::fs::chown(to, Some(uid(md.uid())), Some(gid(md.gid())))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(md.mode() & 0o7777))?;
    let ts = |s: i64, ns: i64| rustix::fs::Timespec { tv_sec: s, tv_nsec: ns as _ };
    let times = rustix::fs::Timestamps {
        last_access: ts(md.atime(), md.atime_nsec()),
        last_modification: ts(md.mtime(), md.mtime_nsec()),
    };
    rustix::fs::utimensat(CWD, to, &times, AtFlags::empty())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_keep_modes_links_and_content() {
        let d = tempfile::tempdir().unwrap();
        let (src, dst) = (d.path().join("src"), d.path().join("dst"));
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("sub/f"), "hello").unwrap();
        std::fs::set_permissions(src.join("sub/f"), std::fs::Permissions::from_mode(0o640)).unwrap();
        std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o1777)).unwrap();
        std::os::unix::fs::symlink("sub/f", src.join("link")).unwrap();
        std::fs::create_dir(&dst).unwrap();
        copy_tree(&src, &dst).unwrap();
        assert_eq!(std::fs::read_to_string(dst.join("link")).unwrap(), "hello");
        assert_eq!(std::fs::read_link(dst.join("link")).unwrap(), Path::new("sub/f"));
        assert_eq!(std::fs::metadata(dst.join("sub/f")).unwrap().mode() & 0o7777, 0o640);
        assert_eq!(std::fs::metadata(&dst).unwrap().mode() & 0o7777, 0o1777);
        assert_eq!(dir_size(&dst), 5);
        assert!(!dir_is_empty(&dst) && !is_mount_point(&dst));
    }
}
