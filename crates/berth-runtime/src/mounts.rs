//! Mounting the spec's mounts into the root, `/dev`, `pivot_root`, masked and read-only paths.

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;
use rustix::mount::{MountFlags, MountPropagationFlags, MoveMountFlags, OpenTreeFlags, UnmountFlags};

use crate::paths::{ensure_mountpoint, fd_path, mkdir_all, open_in_root};
use crate::spec::{Device, Mount};
use crate::{Result, RuntimeError};

#[derive(Debug, PartialEq)]
pub struct Options {
    pub flags: MountFlags,
    /// Flags to clear (`rw`, `suid`… undo defaults; only meaningful on remount).
    pub bind: bool,
    pub recursive: bool,
    pub propagation: Option<MountPropagationFlags>,
    pub data: Vec<String>,
}

/// Splits mount option strings into flags, propagation and filesystem data.
pub fn parse_options(opts: &[String]) -> Options {
    let mut o =
        Options { flags: MountFlags::empty(), bind: false, recursive: false, propagation: None, data: Vec::new() };
    for opt in opts {
        match opt.as_str() {
            "ro" => o.flags |= MountFlags::RDONLY,
            "rw" => o.flags -= MountFlags::RDONLY,
            "nosuid" => o.flags |= MountFlags::NOSUID,
            "suid" => o.flags -= MountFlags::NOSUID,
            "nodev" => o.flags |= MountFlags::NODEV,
            "dev" => o.flags -= MountFlags::NODEV,
            "noexec" => o.flags |= MountFlags::NOEXEC,
            "exec" => o.flags -= MountFlags::NOEXEC,
            "sync" => o.flags |= MountFlags::SYNCHRONOUS,
            "dirsync" => o.flags |= MountFlags::DIRSYNC,
            "noatime" => o.flags |= MountFlags::NOATIME,
            "nodiratime" => o.flags |= MountFlags::NODIRATIME,
            "relatime" => o.flags |= MountFlags::RELATIME,
            "strictatime" => o.flags |= MountFlags::STRICTATIME,
            "async" | "atime" | "diratime" | "norelatime" | "nostrictatime" | "defaults" => {}
            "bind" => o.bind = true,
            "rbind" => {
                o.bind = true;
                o.recursive = true;
            }
            "private" => o.propagation = Some(MountPropagationFlags::PRIVATE),
            "rprivate" => o.propagation = Some(MountPropagationFlags::PRIVATE | MountPropagationFlags::REC),
            "shared" => o.propagation = Some(MountPropagationFlags::SHARED),
            "rshared" => o.propagation = Some(MountPropagationFlags::SHARED | MountPropagationFlags::REC),
            "slave" => o.propagation = Some(MountPropagationFlags::DOWNSTREAM),
            "rslave" => o.propagation = Some(MountPropagationFlags::DOWNSTREAM | MountPropagationFlags::REC),
            "unbindable" => o.propagation = Some(MountPropagationFlags::UNBINDABLE),
            "runbindable" => o.propagation = Some(MountPropagationFlags::UNBINDABLE | MountPropagationFlags::REC),
            other => o.data.push(other.to_string()),
        }
    }
    o
}

fn cstr(s: &str) -> CString {
    CString::new(s).unwrap_or_default()
}

/// Opens `rel` inside the directory `base`, links resolved as if `base` were the root.
fn open_beneath(base: &str, rel: &str) -> rustix::io::Result<OwnedFd> {
    let dir = rustix::fs::open(base, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
    open_in_root(&dir, rel, OFlags::PATH)
}

/// Mounts one spec mount inside the root open as `root` (the root's path is `root_path`).
/// A shared bind's source comes as `tree`, cloned in the host's mount namespace (see
/// [`crate::propagation`]), and is attached instead of bound by path.
pub fn mount_one(
    root: &OwnedFd,
    m: &Mount,
    cgroup_dirs: &[(String, std::path::PathBuf)],
    tree: Option<&OwnedFd>,
) -> Result<()> {
    let opts = parse_options(&m.options);
    let dest = m.destination.as_str();
    let is_bind = opts.bind || m.kind == "bind";
    if m.kind == "cgroup" || m.kind == "cgroup2" {
        return mount_cgroup(root, dest, &opts, cgroup_dirs);
    }
    // A source inside another (a volume's subpath) is opened inside it, its links resolved
    // there, and mounted through the descriptor: no path is resolved again after that.
    let confined = match (&m.beneath, is_bind) {
        (Some(rel), true) => Some(open_beneath(&m.source, rel).map_err(|e| {
            RuntimeError::Start(format!(
                "error mounting {:?} to rootfs at {dest:?}: opening {rel:?} inside {}: {}",
                m.source,
                m.source,
                std::io::Error::from(e)
            ))
        })?),
        _ => None,
    };
    let source = confined.as_ref().map_or_else(|| m.source.clone(), fd_path);
    let source_is_proc = m.kind == "proc"
        || (is_bind && rustix::fs::statfs(source.as_str()).is_ok_and(|st| st.f_type == rustix::fs::PROC_SUPER_MAGIC));
    let in_proc = || RuntimeError::Start(format!("{dest:?} cannot be mounted because it is inside /proc"));
    let named = clean(dest);
    let mountable = PROC_MOUNTABLE.contains(&named.as_str());
    if !source_is_proc && !mountable && (named == "/proc" || named.starts_with("/proc/")) {
        return Err(in_proc());
    }
    let source_is_file = is_bind
        && std::fs::metadata(&source).map(|md| !md.is_dir()).map_err(|e| {
            RuntimeError::Start(format!("error mounting {:?} to rootfs at {dest:?}: stat {}: {e}", m.source, m.source))
        })?;
    let target = ensure_mountpoint(root, dest, source_is_file)?;
    // Where the destination resolved (through the image's links, or a volume a neighbour
    // writes): checked on the very descriptor that is mounted onto, so no swap in between
    // can move the mount into /proc.
    if !source_is_proc
        && !mountable
        && rustix::fs::fstatfs(&target).is_ok_and(|st| st.f_type == rustix::fs::PROC_SUPER_MAGIC)
    {
        return Err(in_proc());
    }
    let target_path = fd_path(&target);
    let err = |what: &str, e: Errno| {
        RuntimeError::Start(format!(
            "error mounting {:?} to rootfs at {dest:?}: {what}: {}",
            m.source,
            std::io::Error::from(e)
        ))
    };
    if is_bind {
        if let Some(tree) = tree {
            rustix::mount::move_mount(
                tree,
                c"",
                &target,
                c"",
                MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
            )
            .map_err(|e| err("attaching the shared bind", e))?;
        } else {
            let mut flags = MountFlags::BIND;
            if opts.recursive {
                flags |= MountFlags::REC;
            }
            rustix::mount::mount(cstr(&source).as_c_str(), cstr(&target_path).as_c_str(), c"", flags, None)
                .map_err(|e| err("bind", e))?;
        }
        // Re-open: the descriptor still names the directory under the new mount.
        let target = open_in_root(root, dest, OFlags::PATH).map_err(|e| err("reopen", e))?;
        let target_path = fd_path(&target);
        if !opts.flags.is_empty() {
            rustix::mount::mount_remount(cstr(&target_path).as_c_str(), MountFlags::BIND | opts.flags, c"")
                .map_err(|e| err("remount", e))?;
        }
        if let Some(p) = opts.propagation {
            rustix::mount::mount_change(cstr(&target_path).as_c_str(), p).map_err(|e| err("propagation", e))?;
        }
        return Ok(());
    }
    let data = opts.data.join(",");
    let source = if m.source.is_empty() { m.kind.clone() } else { m.source.clone() };
    rustix::mount::mount(
        cstr(&source).as_c_str(),
        cstr(&target_path).as_c_str(),
        cstr(&m.kind).as_c_str(),
        opts.flags,
        Some(cstr(&data).as_c_str()),
    )
    .map_err(|e| err(&m.kind, e))?;
    if let Some(p) = opts.propagation {
        let target = open_in_root(root, dest, OFlags::PATH).map_err(|e| err("reopen", e))?;
        rustix::mount::mount_change(cstr(&fd_path(&target)).as_c_str(), p).map_err(|e| err("propagation", e))?;
    }
    Ok(())
}

/// Files of /proc that tools such as lxcfs replace with their own (runc's list): the only
/// places inside /proc something else may be mounted. A mount anywhere else there, by name or
/// where the destination resolves, could cover what the runtime writes or masks afterwards
/// (sysctls, masked and read-only paths), and is refused as runc refuses it.
const PROC_MOUNTABLE: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
];

/// `dest` without empty or `.` components: `/proc//sys/.` is `/proc/sys`.
fn clean(dest: &str) -> String {
    let comps: Vec<&str> = dest.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    format!("/{}", comps.join("/"))
}

/// `/sys/fs/cgroup`: the cgroup2 filesystem (v2), or on v1 a tmpfs with each controller's
/// directory for this container bound read-only into it.
fn mount_cgroup(root: &OwnedFd, dest: &str, opts: &Options, dirs: &[(String, std::path::PathBuf)]) -> Result<()> {
    let target = mkdir_all(root, dest)?;
    let tp = fd_path(&target);
    let ro = opts.flags.contains(MountFlags::RDONLY);
    let base = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
    if berth_cgroups::detect(Path::new("/sys/fs/cgroup")) == berth_cgroups::Mode::V2 {
        let flags = if ro { base | MountFlags::RDONLY } else { base };
        return rustix::mount::mount(c"cgroup2", cstr(&tp).as_c_str(), c"cgroup2", flags, None)
            .map_err(|e| RuntimeError::sys(format!("mounting cgroup2 at {dest}"), e));
    }
    rustix::mount::mount(c"tmpfs", cstr(&tp).as_c_str(), c"tmpfs", base, Some(c"mode=755"))
        .map_err(|e| RuntimeError::sys(format!("mounting tmpfs at {dest}"), e))?;
    for (name, host_dir) in dirs {
        let sub = mkdir_all(root, &format!("{}/{name}", dest.trim_end_matches('/')))?;
        let sp = fd_path(&sub);
        rustix::mount::mount(
            cstr(&host_dir.display().to_string()).as_c_str(),
            cstr(&sp).as_c_str(),
            c"",
            MountFlags::BIND,
            None,
        )
        .map_err(|e| RuntimeError::sys(format!("binding cgroup {name}"), e))?;
        if ro {
            let sub = open_in_root(root, &format!("{}/{name}", dest.trim_end_matches('/')), OFlags::PATH)
                .map_err(|e| RuntimeError::sys("reopen cgroup dir", e))?;
            rustix::mount::mount_remount(
                cstr(&fd_path(&sub)).as_c_str(),
                MountFlags::BIND | MountFlags::RDONLY | base,
                c"",
            )
            .map_err(|e| RuntimeError::sys(format!("remounting cgroup {name} read-only"), e))?;
        }
    }
    if ro {
        // The descriptor opened before mounting names the directory underneath; reopen it to
        // reach the tmpfs.
        let target = open_in_root(root, dest, OFlags::PATH).map_err(|e| RuntimeError::sys("reopen cgroup dir", e))?;
        rustix::mount::mount_remount(cstr(&fd_path(&target)).as_c_str(), MountFlags::RDONLY | base, c"mode=755")
            .map_err(|e| RuntimeError::sys("remounting cgroup tmpfs read-only", e))?;
    }
    Ok(())
}

/// Creates the spec's device nodes under the root's /dev.
pub fn create_devices(root: &OwnedFd, devices: &[Device]) -> Result<()> {
    for d in devices {
        let rel = d.path.trim_start_matches('/');
        let (parent, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        let dir = mkdir_all(root, parent)?;
        let ft = match d.kind.as_str() {
            "c" | "u" => FileType::CharacterDevice,
            "b" => FileType::BlockDevice,
            "p" => FileType::Fifo,
            other => return Err(RuntimeError::Invalid(format!("device {}: unknown type {other:?}", d.path))),
        };
        let mode = Mode::from_raw_mode(d.file_mode.unwrap_or(0o666) & 0o7777);
        // Whatever is there (usually nothing); if it cannot go, mknodat says why.
        let _ = rustix::fs::unlinkat(&dir, name, rustix::fs::AtFlags::empty());
        let rdev = if ft == FileType::Fifo { 0 } else { rustix::fs::makedev(d.major as u32, d.minor as u32) };
        rustix::fs::mknodat(&dir, name, ft, mode, rdev)
            .map_err(|e| RuntimeError::sys(format!("creating device {}", d.path), e))?;
        // The mode and owner are set through a descriptor of the node just made, never by
        // name: /dev may be a volume another container writes, and a link swapped in for the
        // node would be followed from the host's root (chmod 0666 of a host file).
        let node = rustix::fs::openat(&dir, name, OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| RuntimeError::sys(format!("opening device {}", d.path), e))?;
        let st = rustix::fs::fstat(&node).map_err(|e| RuntimeError::sys(format!("stat {}", d.path), e))?;
        if FileType::from_raw_mode(st.st_mode) != ft || (ft != FileType::Fifo && st.st_rdev != rdev) {
            return Err(RuntimeError::Start(format!("device {} was replaced while it was being made", d.path)));
        }
        // mknod is subject to the umask; set the mode exactly.
        rustix::fs::chmod(fd_path(&node).as_str(), mode)
            .map_err(|e| RuntimeError::sys(format!("chmod {}", d.path), e))?;
        rustix::fs::chownat(
            &node,
            "",
            Some(rustix::fs::Uid::from_raw(d.uid.unwrap_or(0))),
            Some(rustix::fs::Gid::from_raw(d.gid.unwrap_or(0))),
            rustix::fs::AtFlags::EMPTY_PATH,
        )
        .map_err(|e| RuntimeError::sys(format!("chown {}", d.path), e))?;
    }
    Ok(())
}

/// The symlinks every /dev has.
pub fn dev_symlinks(root: &OwnedFd) -> Result<()> {
    let dev = mkdir_all(root, "dev")?;
    let links = [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ];
    for (name, target) in links {
        match rustix::fs::symlinkat(target, &dev, name) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(RuntimeError::sys(format!("creating /dev/{name}"), e)),
        }
    }
    if Path::new("/proc/kcore").exists() {
        // Optional: a /dev/core that cannot be made (one exists already, say) is done without.
        let _ = rustix::fs::symlinkat("/proc/kcore", &dev, "core");
    }
    Ok(())
}

/// Makes the directory open as `root` the process's root and detaches the old one.
///
/// `old_root_shared`: the root's propagation was made shared, so the old root's mounts have
/// peers its unmount would reach. Then everything is made a slave first, as runc does: the
/// change lands on the new root (a plain lookup of "." does not climb onto the old root
/// stacked there) and recursively on all below it, and so it would also cut a shared bind's
/// link back to the host. Otherwise the old root's mounts were made slaves or private before
/// anything was mounted (see `child::init`) and nothing needs changing.
pub fn pivot_root(root: &OwnedFd, old_root_shared: bool) -> Result<()> {
    rustix::process::fchdir(root).map_err(|e| RuntimeError::sys("chdir to rootfs", e))?;
    rustix::process::pivot_root(".", ".").map_err(|e| RuntimeError::sys("pivot_root", e))?;
    if old_root_shared {
        rustix::mount::mount_change(".", MountPropagationFlags::DOWNSTREAM | MountPropagationFlags::REC)
            .map_err(|e| RuntimeError::sys("making the old root a slave", e))?;
    }
    // The old root is now stacked over the new one at "."; unmounting follows it there.
    rustix::mount::unmount(".", UnmountFlags::DETACH).map_err(|e| RuntimeError::sys("detaching the old root", e))?;
    rustix::process::chdir("/").map_err(|e| RuntimeError::sys("chdir /", e))?;
    Ok(())
}

/// The container's /dev/null, checked to be the null device (1:3). /dev may be a volume the
/// container or a neighbour writes (a pod's emptyDir at /dev): `null` there could be a link
/// to a file of procfs by the time it is bound, and the masked path would become a writable
/// view of it (runc's CVE-2025-31133). It is bound through this descriptor, not by name.
fn null_device() -> Result<OwnedFd> {
    let fd = rustix::fs::open("/dev/null", OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| RuntimeError::sys("opening /dev/null to mask paths with", e))?;
    let st = rustix::fs::fstat(&fd).map_err(|e| RuntimeError::sys("stat /dev/null", e))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::CharacterDevice || st.st_rdev != rustix::fs::makedev(1, 3) {
        return Err(RuntimeError::Start(
            "the container's /dev/null is not the null device (1:3): it cannot mask paths".into(),
        ));
    }
    Ok(fd)
}

/// Binds the file open as `source` over `target` (a path, after pivot) through the descriptor
/// itself. /proc/self may name no process (a container joining another's pid namespace sees
/// that namespace's /proc), so the mount API's descriptors are used; kernels before 5.2,
/// which lack it, bind through /proc/self/fd.
fn bind_from(source: &OwnedFd, target: &str) -> rustix::io::Result<()> {
    let flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC | OpenTreeFlags::AT_EMPTY_PATH;
    match rustix::mount::open_tree(source, "", flags) {
        Ok(tree) => {
            rustix::mount::move_mount(&tree, "", rustix::fs::CWD, target, MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH)
        }
        Err(Errno::NOSYS) => rustix::mount::mount_bind(fd_path(source).as_str(), target),
        Err(e) => Err(e),
    }
}

/// Hides `paths` (after pivot): directories get an empty read-only tmpfs, files /dev/null.
/// A link in a masked place is left alone (it leads elsewhere, and mounts never follow it).
pub fn mask_paths(paths: &[String]) -> Result<()> {
    if paths.is_empty() {
        return Ok(());
    }
    let null = null_device()?;
    for p in paths {
        let st = match rustix::fs::lstat(p.as_str()) {
            Ok(st) => st,
            Err(Errno::NOENT) => continue,
            Err(e) => return Err(RuntimeError::sys(format!("masking {p}"), e)),
        };
        let res = match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                rustix::mount::mount(c"tmpfs", cstr(p).as_c_str(), c"tmpfs", MountFlags::RDONLY, None)
            }
            FileType::Symlink => continue,
            _ => bind_from(&null, p),
        };
        match res {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => return Err(RuntimeError::sys(format!("masking {p}"), e)),
        }
    }
    Ok(())
}

/// Makes `paths` read-only (after pivot).
pub fn readonly_paths(paths: &[String]) -> Result<()> {
    for p in paths {
        match rustix::mount::mount_bind_recursive(cstr(p).as_c_str(), cstr(p).as_c_str()) {
            Ok(()) => {}
            Err(Errno::NOENT) => continue,
            Err(e) => return Err(RuntimeError::sys(format!("making {p} read-only"), e)),
        }
        let flags = MountFlags::BIND | MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
        rustix::mount::mount_remount(cstr(p).as_c_str(), flags, c"")
            .map_err(|e| RuntimeError::sys(format!("making {p} read-only"), e))?;
    }
    Ok(())
}

/// Remounts `/` read-only (`--read-only`).
pub fn readonly_root() -> Result<()> {
    rustix::mount::mount_remount(c"/", MountFlags::BIND | MountFlags::RDONLY, c"")
        .map_err(|e| RuntimeError::sys("remounting / read-only", e))
}

/// Opens a directory path on the host.
pub fn open_dir(path: &Path) -> Result<OwnedFd> {
    rustix::fs::open(path, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| RuntimeError::sys(format!("opening {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_split_into_flags_and_data() {
        let o = parse_options(&[
            "nosuid".into(),
            "mode=755".into(),
            "size=65536k".into(),
            "rbind".into(),
            "rprivate".into(),
            "ro".into(),
        ]);
        assert!(o.flags.contains(MountFlags::NOSUID | MountFlags::RDONLY));
        assert!(o.bind && o.recursive);
        assert_eq!(o.data, vec!["mode=755".to_string(), "size=65536k".to_string()]);
        assert!(o.propagation.is_some());
    }
}
