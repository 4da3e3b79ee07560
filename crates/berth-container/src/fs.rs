//! A container's filesystem from outside: export, `docker cp` both ways, diff, commit.
//!
//! A running container's root is reached through `/proc/<pid>/root`; a stopped one's is
//! mounted for the duration of the call in a private mount namespace of a dedicated thread,
//! so the mount can never outlive the call or show up on the host.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_api::models::{ContainerConfig, FilesystemChange, PathStat};
use berth_archive::ArchiveError;
use berth_archive::apply::{ApplyOptions, Whiteouts, apply_at};
use berth_archive::scope::{Source, locate_source, resolve_in_root};
use berth_archive::walk::{WalkOptions, write_tree};
use bytes::Bytes;
use rustix::fs::{FileType, Mode, OFlags};
use tokio::sync::mpsc;

use crate::record::Record;
use crate::{ContainerError, ContainerService, Result};

/// A `Read` over chunks arriving on a channel (used from blocking threads).
pub struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    buf: Bytes,
}

impl ChannelReader {
    pub fn new(rx: mpsc::Receiver<Bytes>) -> ChannelReader {
        ChannelReader { rx, buf: Bytes::new() }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.buf.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.buf = b,
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        self.buf = self.buf.slice(n..);
        Ok(n)
    }
}

/// A `Write` that sends chunks on a channel (used from blocking threads).
pub struct ChannelWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    pub fn new(tx: mpsc::Sender<Bytes>) -> ChannelWriter {
        ChannelWriter { tx, buf: Vec::with_capacity(64 * 1024) }
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 64 * 1024 {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let chunk = Bytes::from(std::mem::take(&mut self.buf));
            self.tx.blocking_send(chunk).map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))?;
        }
        Ok(())
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

fn proc_root(pid: i64) -> Result<OwnedFd> {
    rustix::fs::open(
        format!("/proc/{pid}/root").as_str(),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ContainerError::io("opening the container's root", e.into()))
}

/// Go's `os.FileMode` bits for a stat result, as `docker cp` expects them.
fn go_mode(raw: u32) -> u32 {
    let mut m = raw & 0o777;
    m |= match FileType::from_raw_mode(raw) {
        FileType::Directory => 1 << 31,
        FileType::Symlink => 1 << 27,
        FileType::BlockDevice => 1 << 26,
        FileType::CharacterDevice => (1 << 26) | (1 << 21),
        FileType::Fifo => 1 << 25,
        FileType::Socket => 1 << 24,
        _ => 0,
    };
    if raw & 0o4000 != 0 {
        m |= 1 << 23;
    }
    if raw & 0o2000 != 0 {
        m |= 1 << 22;
    }
    if raw & 0o1000 != 0 {
        m |= 1 << 20;
    }
    m
}

/// Finds the source of `docker cp CONTAINER:path` inside `root`, as Docker resolves it.
fn locate(root: BorrowedFd<'_>, rec: &Record, path: &str) -> Result<Source> {
    locate_source(root, path).map_err(|e| match e {
        ArchiveError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound => {
            ContainerService::not_found_in(rec, path)
        }
        e => e.into(),
    })
}

fn path_stat(src: &Source) -> PathStat {
    let st = &src.stat;
    PathStat {
        name: src.name.clone(),
        size: st.st_size,
        mode: go_mode(st.st_mode),
        mtime: berth_api::time::rfc3339_nanos(st.st_mtime as i128 * 1_000_000_000 + st.st_mtime_nsec as i128),
        link_target: src.link_target.clone().unwrap_or_default(),
    }
}

impl ContainerService {
    /// Runs `f` on a blocking thread with the container's root open.
    pub(crate) async fn with_root<R: Send + 'static>(
        &self,
        rec: &Record,
        writable: bool,
        f: impl FnOnce(BorrowedFd<'_>) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        if rec.state.is_running() {
            let root = proc_root(rec.state.pid)?;
            return tokio::task::spawn_blocking(move || f(root.as_fd()))
                .await
                .map_err(|e| ContainerError::Internal(format!("filesystem task failed: {e}")))?;
        }
        let mount = self.images.snapshots().mounts(&rec.id, &rec.layers)?;
        let point = self.container_dir(&rec.id).join("merged");
        let mounts = rec.mounts.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let r = (|| -> Result<R> {
                berth_runtime::sys::unshare(rustix::thread::UnshareFlags::FS)
                    .map_err(|e| ContainerError::io("unshare", e))?;
                berth_runtime::sys::unshare(rustix::thread::UnshareFlags::NEWNS)
                    .map_err(|e| ContainerError::io("unshare", e))?;
                rustix::mount::mount_change(
                    c"/",
                    rustix::mount::MountPropagationFlags::PRIVATE | rustix::mount::MountPropagationFlags::REC,
                )
                .map_err(|e| ContainerError::io("making mounts private", e.into()))?;
                std::fs::create_dir_all(&point).map_err(|e| ContainerError::io("creating mount point", e))?;
                let data = if writable {
                    berth_shim::proto::RootfsMount {
                        lower: mount.lower.clone(),
                        upper: mount.upper.clone(),
                        work: mount.work.clone(),
                    }
                    .data()
                } else {
                    // Read-only: the changes as the top lower layer, no work directory needed,
                    // so this can run beside any other access.
                    let mut lower = vec![mount.upper.display().to_string()];
                    lower.extend(mount.lower.iter().map(|p| p.display().to_string()));
                    format!("lowerdir={}", lower.join(":"))
                };
                let data =
                    std::ffi::CString::new(data).map_err(|_| ContainerError::Internal("mount options".into()))?;
                let target = std::ffi::CString::new(point.display().to_string())
                    .map_err(|_| ContainerError::Internal("mount point".into()))?;
                let flags =
                    if writable { rustix::mount::MountFlags::empty() } else { rustix::mount::MountFlags::RDONLY };
                rustix::mount::mount(c"overlay", target.as_c_str(), c"overlay", flags, Some(data.as_c_str()))
                    .map_err(|e| ContainerError::io("mounting the container's filesystem", e.into()))?;
                let root = rustix::fs::open(&point, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
                    .map_err(|e| ContainerError::io("opening the container's filesystem", e.into()))?;
                crate::mounts::bind_mounts(root.as_fd(), &mounts)?;
                f(root.as_fd())
            })();
            let _ = tx.send(r);
        });
        rx.await.map_err(|_| ContainerError::Internal("filesystem thread failed".into()))?
    }

    /// `docker export`: the whole filesystem as a tar stream.
    pub async fn export(self: &Arc<Self>, id: &str) -> Result<mpsc::Receiver<Bytes>> {
        let rec = self.get(id)?.record();
        let (tx, rx) = mpsc::channel(16);
        let svc = self.clone();
        let walk = move |root: BorrowedFd<'_>| {
            let w = ChannelWriter::new(tx);
            // The container's own files, as Docker exports them: what its volumes, binds and
            // tmpfs mounts hold is not (`-v /:/host` exported the host), nor are the
            // runtime's filesystems of a running one; their mount points are.
            let mut opts = WalkOptions { one_file_system: true, ..Default::default() };
            (opts.user_names, opts.group_names) = berth_runtime::user::id_names(root);
            write_tree(root, "", w, opts)?;
            Ok(())
        };
        // Stream while the walk runs; an error ends the stream early, which the client sees
        // as a truncated archive.
        tokio::spawn(async move {
            let _ = svc.with_root(&rec, false, walk).await;
        });
        Ok(rx)
    }

    fn not_found_in(rec: &Record, path: &str) -> ContainerError {
        ContainerError::NotFoundPath(format!("Could not find the file {path} in container {}", rec.name))
    }

    /// `HEAD /containers/{id}/archive`.
    pub async fn archive_stat(&self, id: &str, path: &str) -> Result<PathStat> {
        let rec = self.get(id)?.record();
        let p = path.to_string();
        let rec2 = rec.clone();
        self.with_root(&rec, false, move |root| locate(root, &rec2, &p).map(|src| path_stat(&src))).await
    }

    /// `GET /containers/{id}/archive`: the stat of `path` and a tar of it.
    ///
    /// The client unpacks the tar as it comes, so what it holds is what the host gets: a
    /// directory reached through a link (`etcl/`, `etcl/.`) is sent as the directory, under
    /// the name asked for, never as the link.
    pub async fn archive_get(self: &Arc<Self>, id: &str, path: &str) -> Result<(PathStat, mpsc::Receiver<Bytes>)> {
        let rec = self.get(id)?.record();
        let p = path.to_string();
        let rec2 = rec.clone();
        let src = self.with_root(&rec, false, move |root| locate(root, &rec2, &p)).await?;
        let stat = path_stat(&src);
        let (tx, rx) = mpsc::channel(16);
        let svc = self.clone();
        let walk = move |root: BorrowedFd<'_>| {
            let w = ChannelWriter::new(tx);
            // Owners by name too, from the container's own user database.
            let (user_names, group_names) = berth_runtime::user::id_names(root);
            let opts = WalkOptions { archive_name: src.name, user_names, group_names, ..Default::default() };
            write_tree(root, &src.path, w, opts)?;
            Ok(())
        };
        self.emit(&rec, "archive-path", &[]);
        tokio::spawn(async move {
            let _ = svc.with_root(&rec, false, walk).await;
        });
        Ok((stat, rx))
    }

    /// `PUT /containers/{id}/archive`: unpack a tar into the directory `path`.
    pub async fn archive_put(
        &self,
        id: &str,
        path: &str,
        body: mpsc::Receiver<Bytes>,
        no_overwrite_dir_non_dir: bool,
        copy_uid_gid: bool,
    ) -> Result<()> {
        let e = self.get(id)?;
        let _op = if e.record().state.is_running() { None } else { Some(e.op.lock().await) };
        let rec = e.record();
        if rec.host_config.readonly_rootfs {
            return Err(ContainerError::Conflict("container rootfs is marked read-only".into()));
        }
        let p = path.to_string();
        let rec2 = rec.clone();
        self.with_root(&rec, true, move |root| {
            // Every link followed, the last one too: a link to a directory is a place to
            // unpack into. The archive is then unpacked from the container's root, so that
            // absolute links in it resolve there as they will in the container.
            let dest = resolve_in_root(root, &p)?;
            let dir = berth_runtime::paths::open_in_root(root, &dest, OFlags::PATH).map_err(|err| {
                if err == rustix::io::Errno::NOENT {
                    Self::not_found_in(&rec2, &p)
                } else {
                    ContainerError::io("opening the destination", err.into())
                }
            })?;
            let st = rustix::fs::fstat(&dir).map_err(|e| ContainerError::io("stat", e.into()))?;
            if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                return Err(ContainerError::Invalid("extraction point is not a directory".into()));
            }
            // As dockerd: the archive's owners stay; with `-a` (copyUIDGID) in a container that
            // has a user, everything becomes that user's.
            let chown = match rec2.config.user.as_str() {
                user if copy_uid_gid && !user.is_empty() => {
                    let u = berth_runtime::user::resolve(root, user, &[])
                        .map_err(|e| ContainerError::Invalid(format!("resolving the container's user: {e}")))?;
                    Some((u.uid, u.gid))
                }
                _ => None,
            };
            let opts = ApplyOptions {
                whiteouts: Whiteouts::Plain,
                record_skeleton: false,
                chown,
                no_overwrite_dir_non_dir,
                writeback: false,
                under: Some(dest.trim_start_matches('/').to_string()),
            };
            apply_at(ChannelReader::new(body), root, &opts)?;
            Ok(())
        })
        .await?;
        self.emit(&rec, "extract-to-dir", &[]);
        Ok(())
    }

    /// `docker diff`: what the container changed relative to its image.
    pub(crate) fn changes_blocking(&self, id: &str) -> Result<Vec<FilesystemChange>> {
        let rec = self.get(id)?.record();
        let mount = self.images.snapshots().mounts(&rec.id, &rec.layers)?;
        let mut out = Vec::new();
        walk_changes(&mount.upper, Path::new(""), &mount.lower, &mut out);
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// `docker commit`.
    pub async fn commit(
        self: &Arc<Self>,
        id: &str,
        opts: berth_image::commit::CommitOptions,
        pause: bool,
    ) -> Result<berth_image::Image> {
        let e = self.get(id)?;
        let rec = e.record();
        let paused_here =
            pause && rec.state.status() == crate::state::Status::Running && self.set_paused(&e, true).await.is_ok();
        let base = self.images.get(&rec.image_id);
        let upper = self.images.snapshots().upper_dir(&rec.id)?;
        let images = self.images.clone();
        let mut config: ContainerConfig = rec.config.clone();
        // The image remembers the command, not the terminal or stdin of this run.
        config.attach_stdin = false;
        config.attach_stdout = false;
        config.attach_stderr = false;
        config.open_stdin = false;
        config.stdin_once = false;
        config.tty = false;
        // The image is what is being made; the config does not name the one it came from.
        config.image = String::new();
        let mut o = opts;
        if o.created_by.is_empty() {
            let mut parts = vec![rec.path.clone()];
            parts.extend(rec.args.iter().cloned());
            o.created_by = parts.join(" ");
        }
        o.container_id = rec.id.clone();
        o.container_config = Some(rec.config.clone());
        let r = tokio::task::spawn_blocking(move || images.commit(base.as_ref(), &upper, &config, &o))
            .await
            .map_err(|e| ContainerError::Internal(format!("commit task failed: {e}")))?;
        if paused_here {
            let _ = self.set_paused(&e, false).await;
        }
        let image = r?;
        self.emit(&rec, "commit", &[]);
        Ok(image)
    }
}

fn exists_below(lowers: &[PathBuf], rel: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    for l in lowers {
        match std::fs::symlink_metadata(l.join(rel)) {
            Ok(md) if md.file_type().is_char_device() && md.rdev() == 0 => return false,
            Ok(_) => return true,
            Err(_) => {}
        }
    }
    false
}

fn walk_changes(upper: &Path, rel: &Path, lowers: &[PathBuf], out: &mut Vec<FilesystemChange>) {
    use std::os::unix::fs::FileTypeExt;
    let Ok(rd) = std::fs::read_dir(upper.join(rel)) else { return };
    for e in rd.flatten() {
        let child = rel.join(e.file_name());
        let Ok(md) = std::fs::symlink_metadata(e.path()) else { continue };
        let path = format!("/{}", child.display());
        if md.file_type().is_char_device() && md.rdev() == 0 {
            out.push(FilesystemChange { path, kind: 2 });
            continue;
        }
        let kind = if exists_below(lowers, &child) { 0 } else { 1 };
        out.push(FilesystemChange { path, kind });
        if md.is_dir() {
            walk_changes(upper, &child, lowers, out);
        }
    }
}
