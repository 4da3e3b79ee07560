//! Binds whose mount events cross between the host and the container (`shared`/`rshared`:
//! Docker's `-v src:dst:rshared`, the CRI's Bidirectional; `slave`/`rslave`: the CRI's
//! HostToContainer), checked and prepared in the host's mount namespace.
//!
//! The shim leaves the host's mount namespace for one of its own, a slave of the host's, and
//! the container's is a copy of that. A bind made there from a host path can receive the
//! host's mount events but never send any back: a mount the container makes under a shared
//! bind would not reach the host. So the source of each shared bind is cloned while the shim
//! is still in the host's namespace (`open_tree`); the clone belongs to the source's peer
//! group, and once attached in the container, mounts under it propagate both ways.

use std::os::fd::OwnedFd;

use rustix::fs::{Mode, OFlags, StatxFlags};
use rustix::mount::{MountPropagationFlags, OpenTreeFlags};

use crate::mounts::parse_options;
use crate::spec::{Mount, Spec};
use crate::{Result, RuntimeError};

/// The shared binds' sources, cloned in the host's mount namespace, by the index of their
/// mount in the spec.
#[derive(Debug, Default)]
pub struct SharedBinds(Vec<(usize, OwnedFd)>);

/// How a mount takes part in propagation, from its optional fields in mountinfo.
#[derive(Debug, Default, PartialEq)]
struct Tags {
    shared: bool,
    slave: bool,
}

impl SharedBinds {
    /// Checks every bind that asks for propagation, as Docker and containerd do: a shared
    /// bind needs its source on a shared mount, a slave bind one on a shared or slave mount
    /// (on a private one it would silently never see a host mount). Clones the sources of
    /// the shared ones. To be called in the host's mount namespace.
    pub fn open(spec: &Spec) -> Result<SharedBinds> {
        let mut out = Vec::new();
        for (i, m) in spec.mounts.iter().enumerate() {
            let opts = parse_options(&m.options);
            let Some(p) = opts.propagation.filter(|_| opts.bind || m.kind == "bind") else { continue };
            let shared = p.contains(MountPropagationFlags::SHARED);
            if !shared && !p.contains(MountPropagationFlags::DOWNSTREAM) {
                continue;
            }
            let src = open_source(m)?;
            let (point, tags) = mount_of(&src).map_err(|e| {
                RuntimeError::Start(format!("finding the mount of {:?} to check its propagation: {e}", m.source))
            })?;
            if !(tags.shared || (!shared && tags.slave)) {
                let kind = if shared { "shared" } else { "shared or slave" };
                return Err(RuntimeError::Start(format!(
                    "path {} is mounted on {point} but it is not a {kind} mount",
                    m.source
                )));
            }
            if shared {
                let mut flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC;
                if opts.recursive {
                    flags |= OpenTreeFlags::AT_RECURSIVE;
                }
                let tree = rustix::mount::open_tree(&src, c"", flags | OpenTreeFlags::AT_EMPTY_PATH)
                    .map_err(|e| RuntimeError::sys(format!("cloning the mount of {:?}", m.source), e))?;
                out.push((i, tree));
            }
        }
        Ok(SharedBinds(out))
    }

    /// The descriptors a container's init keeps until its mounts are made.
    pub(crate) fn raw_fds(&self) -> impl Iterator<Item = std::os::fd::RawFd> + '_ {
        self.0.iter().map(|(_, fd)| std::os::fd::AsRawFd::as_raw_fd(fd))
    }

    /// The clone prepared for the spec's mount number `i`.
    pub(crate) fn get(&self, i: usize) -> Option<&OwnedFd> {
        self.0.iter().find(|(j, _)| *j == i).map(|(_, fd)| fd)
    }
}

/// The bind's source, as the bind itself would resolve it.
fn open_source(m: &Mount) -> Result<OwnedFd> {
    let err = |e| RuntimeError::sys(format!("opening the bind source {:?}", m.source), e);
    let base = rustix::fs::open(m.source.as_str(), OFlags::PATH | OFlags::CLOEXEC, Mode::empty()).map_err(err)?;
    match &m.beneath {
        Some(rel) => crate::paths::open_in_root(&base, rel, OFlags::PATH).map_err(err),
        None => Ok(base),
    }
}

/// Where the mount holding `fd` is mounted, and how it propagates.
fn mount_of(fd: &OwnedFd) -> std::io::Result<(String, Tags)> {
    let st = rustix::fs::statx(fd, c"", rustix::fs::AtFlags::EMPTY_PATH, StatxFlags::MNT_ID)?;
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    find_mount(&info, st.stx_mnt_id).ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, format!("mount {} is not in mountinfo", st.stx_mnt_id))
    })
}

/// Mount `id`'s mount point and tags in a mountinfo text.
fn find_mount(info: &str, id: u64) -> Option<(String, Tags)> {
    info.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        if fields.first()?.parse::<u64>().ok()? != id {
            return None;
        }
        let point = unescape(fields.get(4)?);
        let optional = fields.get(6..)?.iter().take_while(|f| **f != "-");
        let mut tags = Tags::default();
        for f in optional {
            tags.shared |= f.starts_with("shared:");
            tags.slave |= f.starts_with("master:");
        }
        Some((point, tags))
    })
}

/// A mountinfo path with its octal escapes (`\040` for a space) decoded.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b.get(i + 1..i + 4).filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                out.push(d.iter().fold(0u8, |n, c| n.wrapping_mul(8).wrapping_add(c - b'0')));
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
267 27 254:0 /run/netns /run/netns rw,relatime shared:1 - ext4 /dev/vda rw
300 27 0:50 / /tmp/a\\040b rw,relatime shared:7 master:3 - tmpfs tmpfs rw
301 27 0:51 / /mnt/s rw,relatime master:9 - tmpfs tmpfs rw
";

    #[test]
    fn a_mounts_point_and_propagation_are_read_from_mountinfo() {
        assert_eq!(find_mount(INFO, 27), Some(("/".into(), Tags::default())));
        assert_eq!(find_mount(INFO, 267), Some(("/run/netns".into(), Tags { shared: true, slave: false })));
        assert_eq!(find_mount(INFO, 300), Some(("/tmp/a b".into(), Tags { shared: true, slave: true })));
        assert_eq!(find_mount(INFO, 301), Some(("/mnt/s".into(), Tags { shared: false, slave: true })));
        assert_eq!(find_mount(INFO, 2), None);
    }

    #[test]
    fn octal_escapes_are_decoded_and_anything_else_is_kept() {
        assert_eq!(unescape(r"/a\040b\011c\134d"), "/a b\tc\\d");
        assert_eq!(unescape(r"/a\09"), r"/a\09");
        assert_eq!(unescape(r"/end\"), r"/end\");
    }
}
