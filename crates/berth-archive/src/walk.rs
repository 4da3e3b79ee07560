//! Turning a directory tree into a tar stream: layer diffs, exports and `docker cp`.
//!
//! The walk holds directory file descriptors and never follows a symlink, so a tree that is
//! being changed underneath (a running container's root) cannot redirect it outside.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use crate::hash::HashingWriter;
use crate::header::{EntryType, Header};
use crate::paths::{open_in_root, reopen_regular, split_parent};
use crate::skeleton::Skeleton;
use crate::writer::TarWriter;
use crate::{ArchiveError, OPAQUE_MARKER, OPAQUE_XATTR, Result, WHITEOUT_PREFIX, errno};

#[derive(Debug, Clone, Default)]
pub struct WalkOptions {
    /// Convert overlayfs whiteouts and opaque directories to OCI `.wh.` entries (layer diffs).
    pub overlay_whiteouts: bool,
    /// Record a skeleton of the produced stream.
    pub record_skeleton: bool,
    /// Name the walked path has in the archive (`cp` renames; `""` puts its children at the
    /// top, as for layers and exports). The root walked under a name is an entry too.
    pub archive_name: String,
    /// Paths (relative to the walked root) to leave out, with everything under them.
    pub exclude: Vec<String>,
    /// Entries on another mount than the walked root are written without their contents:
    /// a running container's `proc`, a volume, a bind (a bind-mounted file is then an empty
    /// file). Decided by mount, not by path: a mount's destination may have been reached
    /// through a symlink in the tree (`/srv -> /var/srv`), so no list of paths names them all.
    pub one_file_system: bool,
    /// Don't write the end-of-archive trailer (the caller appends more entries).
    pub no_trailer: bool,
    /// Leave file contents out of the output (which is then not a tar stream): for
    /// recording a skeleton whose stream is hashed elsewhere ([`crate::prefix`]).
    pub skip_content: bool,
    /// Names for owners' IDs (`uname`), from the tree's own /etc/passwd (`docker cp`,
    /// `export`); an ID without one has none. Empty for layers, which carry IDs only.
    pub user_names: std::collections::BTreeMap<u32, String>,
    /// Names for groups' IDs (`gname`), from the tree's /etc/group.
    pub group_names: std::collections::BTreeMap<u32, String>,
}

#[derive(Debug)]
pub struct Walked {
    pub digest: String,
    pub tar_size: u64,
    pub content_size: u64,
    pub skeleton: Option<Skeleton>,
}

struct Walker<W: Write> {
    tar: TarWriter<HashingWriter<W>>,
    opts: WalkOptions,
    /// The walked root's mount ID, with [`WalkOptions::one_file_system`].
    root_mount: Option<u64>,
    skeleton: Option<Skeleton>,
    hardlinks: HashMap<(u64, u64), String>,
    content_size: u64,
}

/// Writes the tree at `path` under `root` (resolved confined to `root`) as a tar stream.
pub fn write_tree<W: Write>(root: BorrowedFd<'_>, path: &str, out: W, opts: WalkOptions) -> Result<Walked> {
    let mut w = Walker {
        tar: TarWriter::new(HashingWriter::new(out)),
        skeleton: opts.record_skeleton.then(Skeleton::default),
        root_mount: None,
        opts,
        hardlinks: HashMap::new(),
        content_size: 0,
    };
    if w.opts.one_file_system {
        w.root_mount = Some(mount_id(root, "").map_err(|e| errno("inspecting the root", e))?);
    }
    let path = path.trim_matches('/');
    let (parent, name) = split_parent(path);
    let start_dir = open_in_root(root, parent, OFlags::PATH | OFlags::DIRECTORY)
        .map_err(|e| errno(format!("opening {parent:?}"), e))?;
    let archive_name = w.opts.archive_name.clone();
    if path.is_empty() {
        let dir =
            open_in_root(root, "", OFlags::RDONLY | OFlags::DIRECTORY).map_err(|e| errno("opening the root", e))?;
        if archive_name.is_empty() {
            w.walk_dir(&dir, "", "")?;
        } else {
            // A named root is an entry of its own, as any other directory copied (`docker
            // cp ctr:/.` starts with `./`).
            w.entry(&dir, ".", "", &archive_name)?;
        }
    } else {
        w.entry(&start_dir, name, path, &archive_name)?;
    }
    let mut tar = w.tar;
    if !w.opts.no_trailer {
        let trailer = crate::writer::trailer();
        tar.get_mut().write_all(&trailer).map_err(|e| ArchiveError::io("writing archive", e))?;
        if let Some(sk) = w.skeleton.as_mut() {
            sk.push_raw(trailer);
        }
    }
    let hw = tar.into_inner();
    let (digest, tar_size, mut out) = hw.finish();
    out.flush().map_err(|e| ArchiveError::io("writing archive", e))?;
    Ok(Walked { digest, tar_size, content_size: w.content_size, skeleton: w.skeleton })
}

impl<W: Write> Walker<W> {
    fn excluded(&self, rel: &str) -> bool {
        self.opts.exclude.iter().any(|e| rel == e || rel.starts_with(&format!("{e}/")))
    }

    fn write_header(&mut self, h: &Header) -> Result<()> {
        let bytes = self.tar.append_header(h).map_err(|e| ArchiveError::io("writing archive", e))?;
        if let Some(sk) = self.skeleton.as_mut() {
            sk.push_raw(bytes);
        }
        Ok(())
    }

    fn walk_dir(&mut self, dir: &OwnedFd, rel: &str, arch: &str) -> Result<()> {
        let mut names = Vec::new();
        let mut d = rustix::fs::Dir::read_from(dir).map_err(|e| errno(format!("listing {rel:?}"), e))?;
        while let Some(ent) = d.read() {
            let ent = ent.map_err(|e| errno(format!("listing {rel:?}"), e))?;
            let n = ent.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(String::from_utf8_lossy(n).into_owned());
            }
        }
        names.sort();
        for n in names {
            let child_rel = if rel.is_empty() { n.clone() } else { format!("{rel}/{n}") };
            let child_arch =
                if arch.is_empty() || arch.ends_with('/') { format!("{arch}{n}") } else { format!("{arch}/{n}") };
            self.entry(dir, &n, &child_rel, &child_arch)?;
        }
        Ok(())
    }

    fn entry(&mut self, dir: &impl AsFd, name: &str, rel: &str, arch: &str) -> Result<()> {
        if self.excluded(rel) {
            return Ok(());
        }
        let dir = dir.as_fd();
        let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            // Gone since the directory was listed (a running container): skip it.
            Err(rustix::io::Errno::NOENT) => return Ok(()),
            Err(e) => return Err(errno(format!("inspecting {rel}"), e)),
        };
        let ft = FileType::from_raw_mode(st.st_mode);
        let elsewhere = match self.root_mount {
            Some(root) if matches!(ft, FileType::Directory | FileType::RegularFile) => match mount_id(dir, name) {
                Ok(id) => id != root,
                Err(rustix::io::Errno::NOENT) => return Ok(()),
                Err(e) => return Err(errno(format!("inspecting {rel}"), e)),
            },
            _ => false,
        };
        let (parent_arch, base) = split_parent(arch);
        let mut h = Header::new(arch.to_string(), EntryType::Regular);
        h.mode = st.st_mode & 0o7777;
        h.uid = st.st_uid as u64;
        h.gid = st.st_gid as u64;
        h.mtime = st.st_mtime;
        if let Some(n) = self.opts.user_names.get(&st.st_uid) {
            h.uname = n.clone();
        }
        if let Some(n) = self.opts.group_names.get(&st.st_gid) {
            h.gname = n.clone();
        }

        if ft == FileType::CharacterDevice && st.st_rdev == 0 && self.opts.overlay_whiteouts {
            let wh = if parent_arch.is_empty() {
                format!("{WHITEOUT_PREFIX}{base}")
            } else {
                format!("{parent_arch}/{WHITEOUT_PREFIX}{base}")
            };
            let mut w = Header::new(wh, EntryType::Regular);
            w.mode = h.mode & 0o777;
            w.uid = h.uid;
            w.gid = h.gid;
            w.mtime = h.mtime;
            return self.write_header(&w);
        }

        match ft {
            FileType::Directory => {
                let sub = rustix::fs::openat(
                    dir,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| errno(format!("opening {rel}"), e))?;
                h.kind = EntryType::Directory;
                // The root copied as `/` is already a directory's name.
                h.path = if arch.ends_with('/') { arch.to_string() } else { format!("{arch}/") };
                h.xattrs = capability_xattr(&sub);
                let opaque = self.opts.overlay_whiteouts && is_opaque(&sub);
                self.write_header(&h)?;
                if opaque {
                    let mut m = Header::new(format!("{arch}/{OPAQUE_MARKER}"), EntryType::Regular);
                    m.mode = h.mode & 0o777;
                    m.uid = h.uid;
                    m.gid = h.gid;
                    m.mtime = h.mtime;
                    self.write_header(&m)?;
                }
                if elsewhere {
                    return Ok(());
                }
                self.walk_dir(&sub, rel, arch)
            }
            FileType::RegularFile if elsewhere => {
                h.size = 0;
                self.write_header(&h)
            }
            FileType::RegularFile => {
                let key = (st.st_dev, st.st_ino);
                if st.st_nlink > 1 {
                    if let Some(first) = self.hardlinks.get(&key) {
                        h.kind = EntryType::HardLink;
                        h.link = first.clone();
                        return self.write_header(&h);
                    }
                    self.hardlinks.insert(key, arch.to_string());
                }
                let path_fd =
                    rustix::fs::openat(dir, name, OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
                        .map_err(|e| errno(format!("opening {rel}"), e))?;
                // A running container can swap the file for a device node or a FIFO since it
                // was inspected: then it is left out, as an entry gone since the listing is.
                let Some(fd) = reopen_regular(&path_fd).map_err(|e| errno(format!("opening {rel}"), e))? else {
                    return Ok(());
                };
                h.size = st.st_size as u64;
                h.xattrs = capability_xattr(&fd);
                self.write_header(&h)?;
                let pad = if self.opts.skip_content {
                    vec![0u8; crate::header::padding(h.size) as usize]
                } else {
                    let mut f = std::fs::File::from(fd);
                    self.tar
                        .append_data(h.size, &mut f as &mut dyn Read)
                        .map_err(|e| ArchiveError::io(format!("archiving {rel}"), e))?
                };
                self.content_size += h.size;
                if let Some(sk) = self.skeleton.as_mut() {
                    sk.push_file(arch.to_string(), h.size);
                    sk.push_raw(pad);
                }
                Ok(())
            }
            FileType::Symlink => {
                h.kind = EntryType::Symlink;
                let target = rustix::fs::readlinkat(dir, name, Vec::new())
                    .map_err(|e| errno(format!("reading link {rel}"), e))?;
                h.link = target.to_string_lossy().into_owned();
                self.write_header(&h)
            }
            FileType::CharacterDevice | FileType::BlockDevice => {
                h.kind = if ft == FileType::CharacterDevice { EntryType::Char } else { EntryType::Block };
                h.dev_major = rustix::fs::major(st.st_rdev);
                h.dev_minor = rustix::fs::minor(st.st_rdev);
                self.write_header(&h)
            }
            FileType::Fifo => {
                h.kind = EntryType::Fifo;
                self.write_header(&h)
            }
            // Sockets are not archived (as in Docker).
            _ => Ok(()),
        }
    }
}

/// The ID of the mount `name` (under `dir`; `""`: `dir` itself) is on.
/// Kernels before 5.8 give no mount ID (and a 0 for everything, which would make every mount
/// look like the root's): the walk fails rather than export what mounts hold.
fn mount_id(dir: impl AsFd, name: &str) -> rustix::io::Result<u64> {
    let flags = if name.is_empty() { AtFlags::EMPTY_PATH } else { AtFlags::SYMLINK_NOFOLLOW };
    let st = rustix::fs::statx(dir, name, flags, rustix::fs::StatxFlags::MNT_ID)?;
    if !rustix::fs::StatxFlags::from_bits_retain(st.stx_mask).contains(rustix::fs::StatxFlags::MNT_ID) {
        return Err(rustix::io::Errno::NOSYS);
    }
    Ok(st.stx_mnt_id)
}

fn is_opaque(fd: &OwnedFd) -> bool {
    let mut buf = [0u8; 4];
    matches!(rustix::fs::fgetxattr(fd, OPAQUE_XATTR, &mut buf[..]), Ok(1) if buf[0] == b'y')
}

/// Docker carries only `security.capability` into layer tars (file capabilities such as
/// ping's); other xattrs are host-specific.
fn capability_xattr(fd: &OwnedFd) -> Vec<(String, Vec<u8>)> {
    let mut buf = vec![0u8; 256];
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    match rustix::fs::getxattr(path.as_str(), "security.capability", &mut buf[..]) {
        Ok(n) if n > 0 => vec![("security.capability".to_string(), buf[..n].to_vec())],
        _ => Vec::new(),
    }
}
