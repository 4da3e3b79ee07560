//! What a new process (the container's first, or an exec) needs before the runtime starts
//! it: its stdio, and its user resolved inside the container's root.

use std::io;
use std::os::fd::OwnedFd;

use berth_runtime::create::Io;

/// The shim's ends of a process's stdio pipes (none with a terminal, whose master the
/// runtime hands over; no stdin unless it is kept open).
#[derive(Default)]
pub struct Ends {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

/// Creates the stdio for a process: a terminal, or pipes (stdin a pipe when it is kept open,
/// otherwise /dev/null). Returns the runtime's view and the shim's ends.
pub fn make_io(tty: bool, stdin: bool) -> io::Result<(Io, Ends)> {
    if tty {
        return Ok((Io::Tty, Ends::default()));
    }
    let (in_r, in_w) = if stdin {
        let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        (r, Some(w))
    } else {
        (
            rustix::fs::open(
                "/dev/null",
                rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )?,
            None,
        )
    };
    let (out_r, out_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let (err_r, err_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    Ok((
        Io::Pipes { stdin: in_r, stdout: out_w, stderr: err_w },
        Ends { stdin: in_w, stdout: Some(out_r), stderr: Some(err_r) },
    ))
}

/// Resolves the user inside the container's root and fills in the uid, gids and `HOME`.
pub fn apply_user(
    process: &mut berth_runtime::spec::Process,
    root: std::os::fd::BorrowedFd<'_>,
    user: &str,
    group_add: &[String],
) -> berth_runtime::Result<()> {
    let u = berth_runtime::user::resolve(root, user, group_add)?;
    process.user.uid = u.uid;
    process.user.gid = u.gid;
    process.user.additional_gids = u.additional_gids;
    if !process.env.iter().any(|e| e.starts_with("HOME=")) {
        process.env.push(format!("HOME={}", u.home));
    }
    Ok(())
}
