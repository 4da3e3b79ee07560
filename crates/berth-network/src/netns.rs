//! Network namespaces held open by a bind mount, so they outlive any process in them.

use std::fs::File;
use std::io;
use std::path::Path;

/// Creates a new network namespace and binds it to `path` (a file that must not exist).
pub fn create(path: &Path) -> io::Result<()> {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p)?;
    }
    File::create(path)?;
    let target = path.to_path_buf();
    std::thread::scope(|s| {
        s.spawn(|| -> io::Result<()> {
            // Only this short-lived thread changes namespace; the daemon's threads stay put.
            berth_runtime::sys::unshare(rustix::thread::UnshareFlags::NEWNET)?;
            let src =
                std::ffi::CString::new(format!("/proc/self/task/{}/ns/net", rustix::thread::gettid().as_raw_nonzero()))
                    .map_err(io::Error::other)?;
            let dst = std::ffi::CString::new(target.display().to_string()).map_err(io::Error::other)?;
            rustix::mount::mount_bind(src.as_c_str(), dst.as_c_str())?;
            Ok(())
        })
        .join()
        .map_err(|_| io::Error::other("namespace thread panicked"))?
    })
    .inspect_err(|_| {
        let _ = std::fs::remove_file(path);
    })
}

/// Unbinds and deletes a namespace file. Missing is fine.
pub fn remove(path: &Path) {
    let _ = rustix::mount::unmount(path, rustix::mount::UnmountFlags::DETACH);
    let _ = std::fs::remove_file(path);
}

/// Runs `f` on a thread that has joined the namespace `ns` (a netns file or
/// `/proc/<pid>/ns/net`). Sockets `f` creates belong to that namespace for good.
pub fn run_in<T: Send>(ns: &Path, f: impl FnOnce() -> T + Send) -> io::Result<T> {
    let file = File::open(ns)?;
    std::thread::scope(|s| {
        s.spawn(move || -> io::Result<T> {
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&file),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )?;
            Ok(f())
        })
        .join()
        .map_err(|_| io::Error::other("namespace thread panicked"))?
    })
}
