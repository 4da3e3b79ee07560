//! Unpacking a tar stream into a directory, confined to it.

use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, XattrFlags};

use crate::hash::HashingReader;
use crate::header::{EntryType, Header};
use crate::paths::{
    check_symlink, check_symlink_under, clean_entry_path, clean_hardlink_target, ensure_dir_in_root,
    hardlink_target_under, open_in_root, split_parent,
};
use crate::reader::TarReader;
use crate::skeleton::Skeleton;
use crate::writeback::Writeback;
use crate::{ArchiveError, OPAQUE_MARKER, OPAQUE_XATTR, Result, WHITEOUT_PREFIX, errno};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whiteouts {
    /// `.wh.` entries become overlayfs whiteouts: for unpacking image layers.
    Overlay,
    /// `.wh.` entries are ordinary files: for `cp` and `ADD`.
    Plain,
}

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub whiteouts: Whiteouts,
    /// Keep a skeleton so the exact stream can be produced again.
    pub record_skeleton: bool,
    /// Owner for everything created, instead of the archive's (`docker cp` without `-a`).
    pub chown: Option<(u32, u32)>,
    /// Refuse to replace a directory with a non-directory or the reverse (`docker cp`'s
    /// `noOverwriteDirNonDir`).
    pub no_overwrite_dir_non_dir: bool,
    /// Start writing large files out to disk while unpacking (see [`crate::writeback`]), for
    /// callers that sync the result before using it, as layer stores do.
    pub writeback: bool,
    /// Unpack into this directory below the root (a clean relative path, `""` for the root
    /// itself) rather than into the root: `docker cp` into a container, whose root this
    /// then is, so that absolute symlinks, in the archive or already there, lead where they
    /// lead inside the container. Links follow Docker's rules for `cp`
    /// ([`check_symlink_under`]): a relative one may point anywhere under this directory, and
    /// at the root `..` stops there, so none is refused. `None` (layers, builds): unpack in
    /// the root, and a link that climbs above it is refused.
    pub under: Option<String>,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            whiteouts: Whiteouts::Overlay,
            record_skeleton: false,
            chown: None,
            no_overwrite_dir_non_dir: false,
            writeback: false,
            under: None,
        }
    }
}

#[derive(Debug)]
pub struct Applied {
    /// `sha256:` digest of the (uncompressed) tar stream: the layer's diff ID.
    pub diff_id: String,
    /// Length of the tar stream.
    pub tar_size: u64,
    /// Sum of regular-file sizes: what the layer adds on disk.
    pub content_size: u64,
    pub skeleton: Option<Skeleton>,
}

/// Unpacks `input` (an uncompressed tar) into the existing directory `root`.
///
/// Every path is resolved inside `root` (see the crate docs); entries that try to escape, and
/// device nodes, are refused. On error the directory is left partly written: callers unpack
/// into a staging directory they discard on failure.
pub fn apply(input: impl Read, root: &Path, opts: &ApplyOptions) -> Result<Applied> {
    let root_fd = rustix::fs::open(root, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| errno(format!("opening {}", root.display()), e))?;
    apply_at(input, root_fd.as_fd(), opts)
}

/// Like [`apply`], with the root given as an open directory (e.g. a container's root opened
/// through `/proc/<pid>/root`).
pub fn apply_at(input: impl Read, root: BorrowedFd<'_>, opts: &ApplyOptions) -> Result<Applied> {
    apply_buffered_at(BufReader::with_capacity(128 << 10, input), root, opts)
}

/// Like [`apply`], for input that is buffered already (its buffer is written to the files
/// as it is, not copied into another first).
pub fn apply_buffered(input: impl BufRead, root: &Path, opts: &ApplyOptions) -> Result<Applied> {
    let root_fd = rustix::fs::open(root, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| errno(format!("opening {}", root.display()), e))?;
    apply_buffered_at(input, root_fd.as_fd(), opts)
}

fn apply_buffered_at(input: impl BufRead, root: BorrowedFd<'_>, opts: &ApplyOptions) -> Result<Applied> {
    let hashing = HashingReader::new(input);
    let mut tar = TarReader::new(hashing, opts.record_skeleton);
    let mut skeleton = opts.record_skeleton.then(Skeleton::default);
    let mut content_size = 0u64;
    let mut dir_times: Vec<(String, i64, u32)> = Vec::new();
    let mut cache = ParentCache::default();

    while let Some(h) = tar.next_entry()? {
        if let Some(sk) = skeleton.as_mut() {
            sk.push_raw(tar.take_raw());
        }
        let Some(path) = clean_entry_path(&h.path)? else {
            continue; // the root entry ("./") itself
        };
        let path = match opts.under.as_deref() {
            Some(under) if !under.is_empty() => format!("{under}/{path}"),
            _ => path,
        };
        let (parent, name) = split_parent(&path);

        if opts.whiteouts == Whiteouts::Overlay {
            if name == OPAQUE_MARKER {
                let dir = ensure_dir(&mut cache, root, parent)?;
                let fd = reopen_dir(&dir, parent)?;
                rustix::fs::fsetxattr(&fd, OPAQUE_XATTR, b"y", XattrFlags::empty())
                    .map_err(|e| errno(format!("marking {parent} opaque"), e))?;
                continue;
            }
            if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
                if hidden.is_empty() || hidden == "." || hidden == ".." {
                    return Err(ArchiveError::Corrupt(format!("{}: bad whiteout", h.path)));
                }
                let dir = ensure_dir(&mut cache, root, parent)?;
                let hidden_path = if parent.is_empty() { hidden.to_string() } else { format!("{parent}/{hidden}") };
                cache.invalidate(&hidden_path);
                remove_existing(&dir, hidden, &hidden_path)?;
                rustix::fs::mknodat(&dir, hidden, FileType::CharacterDevice, Mode::empty(), rustix::fs::makedev(0, 0))
                    .map_err(|e| errno(format!("creating whiteout for {hidden_path}"), e))?;
                continue;
            }
        }

        cache.invalidate(&path);
        let dir = ensure_dir(&mut cache, root, parent)?;
        // Replace whatever is there unless both are directories.
        match rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => {
                let existing_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
                let new_dir = h.kind == EntryType::Directory;
                if opts.no_overwrite_dir_non_dir && existing_dir != new_dir {
                    return Err(ArchiveError::Unsafe(format!(
                        "cannot overwrite {} {path} with a {}",
                        if existing_dir { "directory" } else { "non-directory" },
                        if new_dir { "directory" } else { "non-directory" }
                    )));
                }
                if !(existing_dir && new_dir) {
                    remove_existing(&dir, name, &path)?;
                }
            }
            Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(errno(format!("inspecting {path}"), e)),
        }

        match h.kind {
            EntryType::Directory => {
                match rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(0o700)) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err(errno(format!("creating {path}"), e)),
                }
                dir_times.push((path.clone(), h.mtime, h.mtime_nsec));
            }
            EntryType::Regular => {
                let fd = rustix::fs::openat(
                    &dir,
                    name,
                    OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(|e| errno(format!("creating {path}"), e))?;
                let mut f = std::fs::File::from(fd);
                let mut left = h.size;
                let mut wb = Writeback::at(0);
                while left > 0 {
                    let data = tar.data_buf().map_err(|e| ArchiveError::io(format!("reading {path}"), e))?;
                    let n = data.len();
                    io::Write::write_all(&mut f, data).map_err(|e| ArchiveError::io(format!("writing {path}"), e))?;
                    tar.consume_data(n);
                    if opts.writeback {
                        wb.wrote(&f, n);
                    }
                    left -= n as u64;
                }
                content_size += h.size;
                if let Some(sk) = skeleton.as_mut() {
                    sk.push_file(path.clone(), h.size);
                }
            }
            EntryType::Symlink => {
                match opts.under.as_deref() {
                    Some(under) => check_symlink_under(under, &path, &h.link)?,
                    None => check_symlink(&path, &h.link)?,
                }
                rustix::fs::symlinkat(h.link.as_str(), &dir, name)
                    .map_err(|e| errno(format!("creating symlink {path}"), e))?;
            }
            EntryType::HardLink => {
                let target = match opts.under.as_deref() {
                    Some(under) => hardlink_target_under(under, &path, &h.link)?,
                    None => clean_hardlink_target(&path, &h.link)?,
                };
                let (tparent, tname) = split_parent(&target);
                let tdir = open_in_root(root, tparent, OFlags::PATH | OFlags::DIRECTORY)
                    .map_err(|e| errno(format!("hard link {path}: target {target}"), e))?;
                let st = rustix::fs::statat(&tdir, tname, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| errno(format!("hard link {path}: target {target}"), e))?;
                if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                    return Err(ArchiveError::Unsafe(format!("{path}: hard link to directory {target}")));
                }
                rustix::fs::linkat(&tdir, tname, &dir, name, AtFlags::empty())
                    .map_err(|e| errno(format!("creating hard link {path} to {target}"), e))?;
                continue; // a hard link shares its target's metadata
            }
            EntryType::Fifo => {
                rustix::fs::mknodat(&dir, name, FileType::Fifo, Mode::from_raw_mode(0o600), 0)
                    .map_err(|e| errno(format!("creating fifo {path}"), e))?;
            }
            EntryType::Char | EntryType::Block => {
                return Err(ArchiveError::Unsafe(format!(
                    "{path}: device node ({}:{}); archives may not create devices",
                    h.dev_major, h.dev_minor
                )));
            }
        }
        set_metadata(&dir, name, &path, &h, opts)?;
    }
    if let Some(sk) = skeleton.as_mut() {
        sk.push_raw(tar.take_raw());
    }

    // Directory times last, deepest first, since creating children changed them.
    for (path, mtime, nsec) in dir_times.iter().rev() {
        let (parent, name) = split_parent(path);
        if let Ok(dir) = open_in_root(root, parent, OFlags::PATH | OFlags::DIRECTORY) {
            let t = Timespec { tv_sec: *mtime, tv_nsec: *nsec as _ };
            // Times only: neither the layer's content nor its digest depends on them.
            let _ = rustix::fs::utimensat(
                &dir,
                name,
                &Timestamps { last_access: t, last_modification: t },
                AtFlags::SYMLINK_NOFOLLOW,
            );
        }
    }

    let hashing = tar.into_inner();
    let (diff_id, tar_size) = hashing.finish();
    Ok(Applied { diff_id, tar_size, content_size, skeleton })
}

/// The last parent directory opened, since archives list siblings together.
#[derive(Default)]
struct ParentCache {
    path: Option<String>,
    fd: Option<OwnedFd>,
}

impl ParentCache {
    /// Forgets the cached directory if `changed` is it or one of its ancestors.
    fn invalidate(&mut self, changed: &str) {
        if let Some(p) = &self.path
            && (p == changed || p.starts_with(&format!("{changed}/")))
        {
            self.path = None;
            self.fd = None;
        }
    }
}

fn ensure_dir(cache: &mut ParentCache, root: BorrowedFd<'_>, parent: &str) -> Result<OwnedFd> {
    if cache.path.as_deref() == Some(parent)
        && let Some(fd) = &cache.fd
    {
        return fd.try_clone().map_err(|e| ArchiveError::io("dup", e));
    }
    let fd = ensure_dir_in_root(root, parent)?;
    cache.path = Some(parent.to_string());
    cache.fd = Some(fd.try_clone().map_err(|e| ArchiveError::io("dup", e))?);
    Ok(fd)
}

fn reopen_dir(dir: &OwnedFd, what: &str) -> Result<OwnedFd> {
    rustix::fs::openat(dir, ".", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| errno(format!("opening {what}"), e))
}

/// Removes `name` in `dir`, recursively if it is a directory. Missing is fine.
pub fn remove_existing(dir: impl AsFd, name: &str, what: &str) -> Result<()> {
    let dir = dir.as_fd();
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(errno(format!("inspecting {what}"), e)),
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
            let sub = rustix::fs::openat(
                dir,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| errno(format!("opening {what}"), e))?;
            let mut names = Vec::new();
            let mut d = rustix::fs::Dir::read_from(&sub).map_err(|e| errno(format!("listing {what}"), e))?;
            while let Some(ent) = d.read() {
                let ent = ent.map_err(|e| errno(format!("listing {what}"), e))?;
                let n = ent.file_name().to_string_lossy().into_owned();
                if n != "." && n != ".." {
                    names.push(n);
                }
            }
            for n in names {
                remove_existing(&sub, &n, &format!("{what}/{n}"))?;
            }
            rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR).map_err(|e| errno(format!("removing {what}"), e))
        }
        Ok(_) => rustix::fs::unlinkat(dir, name, AtFlags::empty()).map_err(|e| errno(format!("removing {what}"), e)),
    }
}

fn set_metadata(dir: &OwnedFd, name: &str, path: &str, h: &Header, opts: &ApplyOptions) -> Result<()> {
    // An id must fit in 32 bits and not be -1, which chown reads as "leave as it is" (the
    // file would stay root's).
    let id = |v: u64, what: &str| match u32::try_from(v) {
        Ok(n) if n != u32::MAX => Ok(n),
        _ => Err(ArchiveError::Unsafe(format!("{}: invalid {what} {v}", h.path))),
    };
    let (uid, gid) = match opts.chown {
        Some(ids) => ids,
        None => (id(h.uid, "uid")?, id(h.gid, "gid")?),
    };
    rustix::fs::chownat(
        dir,
        name,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| errno(format!("setting owner of {path}"), e))?;
    if h.kind != EntryType::Symlink {
        // After chown, which clears set-id bits.
        rustix::fs::chmodat(dir, name, Mode::from_raw_mode(h.mode & 0o7777), AtFlags::empty())
            .map_err(|e| errno(format!("setting mode of {path}"), e))?;
    }
    if !h.xattrs.is_empty() {
        let proc_path = format!("/proc/self/fd/{}/{}", dir.as_raw_fd(), name);
        // Never overlayfs's own (see OVERLAY_XATTR_PREFIX): a layer carrying a
        // `redirect` or `opaque` would change how the layers below it are read.
        for (k, v) in h.xattrs.iter().filter(|(k, _)| !k.starts_with(crate::OVERLAY_XATTR_PREFIX)) {
            match rustix::fs::lsetxattr(proc_path.as_str(), k.as_str(), v, XattrFlags::empty()) {
                Ok(()) | Err(rustix::io::Errno::NOTSUP) => {}
                Err(e) => return Err(errno(format!("setting xattr {k} on {path}"), e)),
            }
        }
    }
    if h.kind != EntryType::Directory {
        let t = Timespec { tv_sec: h.mtime, tv_nsec: h.mtime_nsec as _ };
        rustix::fs::utimensat(
            dir,
            name,
            &Timestamps { last_access: t, last_modification: t },
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| errno(format!("setting times of {path}"), e))?;
    }
    Ok(())
}
