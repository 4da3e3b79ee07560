//! What runs in the new process between `clone3` and `execve`. Nothing here returns: the
//! process either becomes the container's program or reports why not and exits.
//!
//! # Never seen unconfined
//!
//! A process that other processes of the container can see (its pid namespace is theirs)
//! must already be what the container's program will be: in the container's mount
//! namespace with the old root gone, with the container's credentials, capabilities and
//! seccomp filter, holding no descriptor but its own stdio. Otherwise a watcher inside the
//! container takes it over through /proc/P/root, /proc/P/fd, pidfd_getfd or ptrace (runc's
//! CVE-2016-9962 and CVE-2019-5736 are this family).
//!
//! - A container with a new pid namespace: its first process is pid 1 of an empty
//!   namespace; nobody sees it until it has exec'd. One process does everything.
//! - `exec` and a container joining another's pid namespace: the first process (stage 1)
//!   stays in the supervisor's pid namespace, invisible to the container; it closes every
//!   other descriptor, joins or builds the container's namespaces and root, applies limits,
//!   seccomp and credentials, and only then forks the process that appears in the
//!   container (stage 2, a sibling reaped by the supervisor), which just starts its session
//!   and execs. Stage 1 reports stage 2's pid on a pipe and exits.
//! - Every stage is non-dumpable until execve.

use std::convert::Infallible;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use rustix::fs::OFlags;
use rustix::thread::{ThreadNameSpaceType, UnshareFlags};

use crate::paths::{fd_path, mkdir_all, open_in_root};
use crate::spec::{Process, Spec};
use crate::stage2::{self, Report};
use crate::{Result, RuntimeError, caps, mounts, pty, seccomp, sys};

/// Where the new process's standard streams come from.
pub enum Stdio {
    /// Descriptors to become 0, 1 and 2.
    Fds { stdin: OwnedFd, stdout: OwnedFd, stderr: OwnedFd },
    /// Make a terminal inside the container and send its master over this socket.
    Tty { console: OwnedFd },
}

pub struct InitArgs<'a> {
    pub spec: &'a Spec,
    pub cgroup: Option<&'a berth_cgroups::Cgroup>,
    pub new_cgroup_ns: bool,
    pub new_netns: bool,
    pub seccomp: Option<&'a seccomp::Program>,
    pub shared: &'a crate::propagation::SharedBinds,
}

/// Joining an existing pid namespace (a two-stage start).
pub struct JoinPid<'a> {
    pub ns: OwnedFd,
    /// Where stage 1 reports.
    pub report: &'a Report,
    /// The filter of the helper that makes `/proc` (see [`crate::joined_proc`]).
    pub proc_filters: crate::joined_proc::Filters,
}

pub struct ExecArgs<'a> {
    pub init_pidfd: std::os::fd::BorrowedFd<'a>,
    /// The namespaces to join, the pid namespace among them.
    pub namespaces: ThreadNameSpaceType,
    pub process: &'a Process,
    pub cgroup: Option<&'a berth_cgroups::Cgroup>,
    pub seccomp: Option<&'a seccomp::Program>,
    /// Where stage 1 reports.
    pub report: &'a Report,
}

fn fail(err_fd: OwnedFd, e: RuntimeError) -> ! {
    let mut f = std::fs::File::from(err_fd);
    // A supervisor gone meanwhile has no one to tell; the exit status below still says it.
    let _ = f.write_all(e.to_string().as_bytes());
    drop(f);
    sys::exit_now(1)
}

/// A container whose first process nobody else can see yet: one process does everything.
pub fn run_init(args: InitArgs<'_>, stdio: Stdio, err_fd: OwnedFd) -> ! {
    // Already so: inherited from the shim, which fails its start if it cannot be (`berth-shim`'s
    // `start`); repeated here for any other caller.
    let _ = sys::set_non_dumpable();
    set_oom_score_adj(&args.spec.process);
    // 0-2 stay until the process's own stdio replaces them: closed, they would be the
    // numbers the next descriptors (the terminal's) get, and dup2 onto them would close those.
    let mut keep = stdio.raw_fds();
    keep.extend([0, 1, 2]);
    keep.push(err_fd.as_raw_fd());
    keep.extend(args.shared.raw_fds());
    sys::close_fds_except(&keep);
    let result = init(&args, stdio, None).and_then(|slave| {
        if let Some(slave) = slave {
            attach_tty(slave)?;
        }
        let program = confine(&args.spec.process, args.seccomp)?;
        exec_program(&args.spec.process, &program)
    });
    match result {
        Ok(never) => match never {},
        Err(e) => fail(err_fd, e),
    }
}

/// A container that joins another's pid namespace: stage 1 of a two-stage start.
pub fn run_init_joined(args: InitArgs<'_>, join: JoinPid<'_>, stdio: Stdio) -> ! {
    // Already so: inherited from the shim, which fails its start if it cannot be (`berth-shim`'s
    // `start`); repeated here for any other caller.
    let _ = sys::set_non_dumpable();
    if let Err(e) = join.report.keep_from_children() {
        join.report.failed(&format!("keeping the report page from the container: {e}"), None);
        sys::exit_now(1)
    }
    set_oom_score_adj(&args.spec.process);
    // 0-2 stay until the process's own stdio replaces them: closed, they would be the
    // numbers the next descriptors (the terminal's) get, and dup2 onto them would close those.
    let mut keep = stdio.raw_fds();
    keep.extend([0, 1, 2]);
    keep.push(join.ns.as_raw_fd());
    keep.extend(args.shared.raw_fds());
    sys::close_fds_except(&keep);
    let result = init(&args, stdio, Some(&join)).and_then(|slave| {
        let tty = slave.is_some();
        if let Some(slave) = slave {
            dup_stdio(&slave)?;
        }
        // Before the filter: a user's profile may not allow close_range.
        sys::close_fds_except(&[0, 1, 2]);
        let program = confine(&args.spec.process, args.seccomp)?;
        Ok((program, tty))
    });
    match result {
        Ok((program, tty)) => become_visible(&args.spec.process, &program, tty, join.report),
        Err(e) => {
            join.report.failed(&e.to_string(), None);
            sys::exit_now(1)
        }
    }
}

/// `exec`: stage 1 of a two-stage start.
pub fn run_exec(args: ExecArgs<'_>, stdio: Stdio) -> ! {
    // Already so: inherited from the shim, which fails its start if it cannot be (`berth-shim`'s
    // `start`); repeated here for any other caller.
    let _ = sys::set_non_dumpable();
    if let Err(e) = args.report.keep_from_children() {
        args.report.failed(&format!("keeping the report page from the container: {e}"), None);
        sys::exit_now(1)
    }
    set_oom_score_adj(args.process);
    // 0-2 stay until the process's own stdio replaces them: closed, they would be the
    // numbers the next descriptors (the terminal's) get, and dup2 onto them would close those.
    let mut keep = stdio.raw_fds();
    keep.extend([0, 1, 2]);
    keep.push(args.init_pidfd.as_raw_fd());
    sys::close_fds_except(&keep);
    match exec(&args, stdio) {
        Ok((program, tty)) => become_visible(args.process, &program, tty, args.report),
        Err(e) => {
            args.report.failed(&e.to_string(), None);
            sys::exit_now(1)
        }
    }
}

/// The shim protects itself from the OOM killer; its children must not inherit that. Set
/// first, through the host's /proc: once in the container's mount namespace, a process
/// outside its pid namespace has no /proc/self there. (Lowering the score can be refused,
/// as some hosts do for every process; the program then runs with the shim's score or 0.)
fn set_oom_score_adj(p: &Process) {
    let adj = p.oom_score_adj.unwrap_or(0);
    // Refused on some hosts (see above): the program runs on with the score it has.
    let _ = std::fs::write("/proc/self/oom_score_adj", adj.to_string());
}

impl Stdio {
    fn raw_fds(&self) -> Vec<RawFd> {
        match self {
            Stdio::Fds { stdin, stdout, stderr } => vec![stdin.as_raw_fd(), stdout.as_raw_fd(), stderr.as_raw_fd()],
            Stdio::Tty { console } => vec![console.as_raw_fd()],
        }
    }
}

/// Stage 1's end: starts the process that appears in the container (stage 2), which
/// inherits everything stage 1 set up and only starts its session, takes the terminal and
/// execs; reports how that went and exits.
fn become_visible(p: &Process, program: &Path, tty: bool, report: &Report) -> ! {
    // What `std::process::Command` does for a child: default SIGPIPE, nothing blocked. (Both
    // calls fail only on invalid arguments, and these are valid.)
    let _ = reset_signals();
    let Some(prepared) = stage2::Program::new(program, &p.args, &p.env) else {
        report.failed("exec: the command or its environment contains a NUL byte", None);
        sys::exit_now(1)
    };
    match stage2::spawn(&prepared, tty) {
        Ok(pid) => {
            report.started(pid);
            sys::exit_now(0)
        }
        Err((pid, step, e)) => {
            let msg = match step {
                stage2::Step::Exec => exec_error(&p.args[0], program, e),
                stage2::Step::Start => format!("starting the process: {e}"),
                stage2::Step::Setsid => format!("setsid: {e}"),
                stage2::Step::Terminal => format!("making the tty controlling: {e}"),
            };
            report.failed(&msg, pid);
            sys::exit_now(1)
        }
    }
}

#[allow(unsafe_code)]
fn reset_signals() -> std::io::Result<()> {
    // SAFETY: plain signal-disposition and mask calls on this single-threaded process, with
    // a zeroed (then emptied) sigset owned by this frame.
    unsafe {
        if libc::signal(libc::SIGPIPE, libc::SIG_DFL) == libc::SIG_ERR {
            return Err(std::io::Error::last_os_error());
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        if libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Builds the container's root and namespaces; returns the terminal's slave end if the
/// process gets one (not yet its stdio). Joining a pid namespace, the namespace is joined
/// for the process's children and /proc made from inside it once the old root is gone.
fn init(a: &InitArgs<'_>, stdio: Stdio, join: Option<&JoinPid<'_>>) -> Result<Option<OwnedFd>> {
    let spec = a.spec;
    if let Some(cg) = a.cgroup {
        cg.join()?;
    }
    if a.new_cgroup_ns {
        sys::unshare(UnshareFlags::NEWCGROUP).map_err(|e| RuntimeError::sys("unshare cgroup namespace", e))?;
    }
    for (kind, ty) in [
        ("network", rustix::thread::LinkNameSpaceType::Network),
        ("ipc", rustix::thread::LinkNameSpaceType::InterProcessCommunication),
        ("uts", rustix::thread::LinkNameSpaceType::HostNameAndNISDomainName),
    ] {
        if let Some(ns) = spec.linux.namespace(kind).filter(|n| !n.path.is_empty()) {
            let fd = rustix::fs::open(ns.path.as_str(), OFlags::RDONLY | OFlags::CLOEXEC, rustix::fs::Mode::empty())
                .map_err(|e| RuntimeError::sys(format!("opening {kind} namespace {}", ns.path), e))?;
            rustix::thread::move_into_link_name_space(fd.as_fd(), Some(ty))
                .map_err(|e| RuntimeError::sys(format!("joining {kind} namespace {}", ns.path), e))?;
        }
    }
    rustix::process::setsid().map_err(|e| RuntimeError::sys("setsid", e))?;
    let tty_slave = setup_stdio_early(stdio)?;

    let propagation = match spec.linux.rootfs_propagation.as_str() {
        "private" | "rprivate" => rustix::mount::MountPropagationFlags::PRIVATE,
        "shared" | "rshared" => rustix::mount::MountPropagationFlags::SHARED,
        _ => rustix::mount::MountPropagationFlags::DOWNSTREAM,
    };
    rustix::mount::mount_change(c"/", propagation | rustix::mount::MountPropagationFlags::REC)
        .map_err(|e| RuntimeError::sys("setting mount propagation", e))?;
    let root_path = PathBuf::from(&spec.root.path);
    let root_c =
        std::ffi::CString::new(spec.root.path.as_str()).map_err(|_| RuntimeError::Invalid("root path".into()))?;
    rustix::mount::mount_bind_recursive(root_c.as_c_str(), root_c.as_c_str())
        .map_err(|e| RuntimeError::sys(format!("binding the root {}", root_path.display()), e))?;
    let root = mounts::open_dir(&root_path)?;

    let cgroup_dirs: Vec<(String, PathBuf)> = match a.cgroup {
        Some(cg) if cg.mode() == berth_cgroups::Mode::V1 => cg
            .dirs()
            .into_iter()
            .filter_map(|d| {
                let rel = d.strip_prefix("/sys/fs/cgroup").ok()?;
                let ctrl = rel.components().next()?.as_os_str().to_string_lossy().into_owned();
                Some((ctrl, d))
            })
            .collect(),
        _ => Vec::new(),
    };
    for (i, m) in spec.mounts.iter().enumerate() {
        // Joining a pid namespace, /proc is made after pivot_root, from inside it.
        if join.is_none() || m.kind != "proc" {
            mounts::mount_one(&root, m, &cgroup_dirs, a.shared.get(i))?;
        }
    }
    mounts::create_devices(&root, &spec.linux.devices)?;
    mounts::dev_symlinks(&root)?;

    let slave = match tty_slave {
        TtyOrFds::Tty(console) => {
            let master = open_in_root(&root, "dev/pts/ptmx", OFlags::RDWR | OFlags::NOCTTY)
                .map_err(|e| RuntimeError::sys("opening the container's /dev/pts/ptmx", e))?;
            let (master, slave) = pty::from_master(master)?;
            if let Some(cs) = &spec.process.console_size {
                pty::set_size(&slave, cs.height as u16, cs.width as u16)?;
            }
            let console_point = crate::paths::ensure_mountpoint(&root, "dev/console", true)?;
            let sp = std::ffi::CString::new(fd_path(&slave)).unwrap_or_default();
            let cp = std::ffi::CString::new(fd_path(&console_point)).unwrap_or_default();
            rustix::mount::mount_bind(sp.as_c_str(), cp.as_c_str())
                .map_err(|e| RuntimeError::sys("binding /dev/console", e))?;
            pty::send_fd(console.as_fd(), master.as_fd())?;
            Some(slave)
        }
        TtyOrFds::Fds => None,
    };

    let cwd = if spec.process.cwd.is_empty() { "/" } else { spec.process.cwd.as_str() };
    // Docker creates a missing working directory.
    mkdir_all(&root, cwd)?;
    mounts::pivot_root(&root, propagation.contains(rustix::mount::MountPropagationFlags::SHARED))?;
    drop(root);
    if let Some(j) = join {
        for m in spec.mounts.iter().filter(|m| m.kind == "proc") {
            crate::joined_proc::mount(m, j.ns.as_fd(), &j.proc_filters)?;
        }
        rustix::thread::move_into_link_name_space(j.ns.as_fd(), Some(rustix::thread::LinkNameSpaceType::ProcessID))
            .map_err(|e| RuntimeError::sys("joining the pid namespace", e))?;
    }

    if spec.linux.namespace("uts").is_some_and(|n| n.path.is_empty()) {
        if !spec.hostname.is_empty() {
            rustix::system::sethostname(spec.hostname.as_bytes()).map_err(|e| RuntimeError::sys("sethostname", e))?;
        }
        if !spec.domainname.is_empty() {
            rustix::system::setdomainname(spec.domainname.as_bytes())
                .map_err(|e| RuntimeError::sys("setdomainname", e))?;
        }
    }
    if a.new_netns {
        sys::loopback_up().map_err(|e| RuntimeError::sys("bringing up lo", e))?;
    }
    for (k, v) in &spec.linux.sysctl {
        let path = crate::sysctl::proc_path(k);
        std::fs::write(&path, v).map_err(|e| RuntimeError::sys(format!("setting sysctl {k}"), e))?;
    }
    mounts::mask_paths(&spec.linux.masked_paths)?;
    mounts::readonly_paths(&spec.linux.readonly_paths)?;
    if spec.root.readonly {
        mounts::readonly_root()?;
    }
    Ok(slave)
}

enum TtyOrFds {
    Tty(OwnedFd),
    Fds,
}

/// Installs plain descriptors as 0/1/2 right away; for a terminal, keeps the console socket
/// until the container's devpts exists.
fn setup_stdio_early(stdio: Stdio) -> Result<TtyOrFds> {
    match stdio {
        Stdio::Fds { stdin, stdout, stderr } => {
            rustix::stdio::dup2_stdin(&stdin).map_err(|e| RuntimeError::sys("dup2 stdin", e))?;
            rustix::stdio::dup2_stdout(&stdout).map_err(|e| RuntimeError::sys("dup2 stdout", e))?;
            rustix::stdio::dup2_stderr(&stderr).map_err(|e| RuntimeError::sys("dup2 stderr", e))?;
            Ok(TtyOrFds::Fds)
        }
        Stdio::Tty { console } => Ok(TtyOrFds::Tty(console)),
    }
}

fn attach_tty(slave: OwnedFd) -> Result<()> {
    dup_stdio(&slave)?;
    rustix::process::ioctl_tiocsctty(rustix::stdio::stdin())
        .map_err(|e| RuntimeError::sys("making the tty controlling", e))?;
    Ok(())
}

/// Makes the terminal the process's stdin, stdout and stderr.
fn dup_stdio(slave: &OwnedFd) -> Result<()> {
    rustix::stdio::dup2_stdin(slave).map_err(|e| RuntimeError::sys("dup2 tty", e))?;
    rustix::stdio::dup2_stdout(slave).map_err(|e| RuntimeError::sys("dup2 tty", e))?;
    rustix::stdio::dup2_stderr(slave).map_err(|e| RuntimeError::sys("dup2 tty", e))?;
    Ok(())
}

/// `exec`'s stage 1 up to the program: joins, stdio, confinement. Returns the program and
/// whether it has a terminal.
fn exec(a: &ExecArgs<'_>, stdio: Stdio) -> Result<(PathBuf, bool)> {
    // The cgroup first, while the host's /sys/fs/cgroup is still what we see.
    if let Some(cg) = a.cgroup {
        cg.join()?;
    }
    rustix::thread::move_into_thread_name_spaces(a.init_pidfd, a.namespaces)
        .map_err(|e| RuntimeError::sys("joining the container's namespaces", e))?;
    rustix::process::setsid().map_err(|e| RuntimeError::sys("setsid", e))?;
    let tty = match setup_stdio_early(stdio)? {
        TtyOrFds::Fds => false,
        TtyOrFds::Tty(console) => {
            let master = rustix::fs::open(
                "/dev/pts/ptmx",
                OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .map_err(|e| RuntimeError::sys("opening /dev/pts/ptmx", e))?;
            let (master, slave) = pty::from_master(master)?;
            if let Some(cs) = &a.process.console_size {
                pty::set_size(&slave, cs.height as u16, cs.width as u16)?;
            }
            pty::send_fd(console.as_fd(), master.as_fd())?;
            dup_stdio(&slave)?;
            true
        }
    };
    // Before the filter: a user's profile may not allow close_range.
    sys::close_fds_except(&[0, 1, 2]);
    let program = confine(a.process, a.seccomp)?;
    Ok((program, tty))
}

/// The common tail before `execve`: limits, working directory, seccomp, identity and
/// capabilities, all inherited by a child; returns the program to run.
fn confine(p: &Process, seccomp: Option<&seccomp::Program>) -> Result<PathBuf> {
    for r in &p.rlimits {
        let res = rlimit_resource(&r.kind)?;
        rustix::process::setrlimit(res, rustix::process::Rlimit { current: Some(r.soft), maximum: Some(r.hard) })
            .map_err(|e| RuntimeError::sys(format!("setting {}", r.kind), e))?;
    }
    if let Some(m) = p.user.umask {
        rustix::process::umask(rustix::fs::Mode::from_raw_mode(m));
    }
    let cwd = if p.cwd.is_empty() { "/" } else { p.cwd.as_str() };
    rustix::process::chdir(cwd).map_err(|e| {
        RuntimeError::Start(format!("chdir to cwd ({cwd:?}) set in config.json failed: {}", std::io::Error::from(e)))
    })?;

    if !p.no_new_privileges
        && let Some(prog) = seccomp
    {
        seccomp::load(prog).map_err(|e| RuntimeError::Start(format!("loading seccomp filter: {e}")))?;
    }
    if let Some(c) = &p.capabilities {
        caps::drop_bounding(c)?;
    }
    rustix::thread::set_keep_capabilities(true).map_err(|e| RuntimeError::sys("keeping capabilities", e))?;
    let groups: Vec<rustix::fs::Gid> = p.user.additional_gids.iter().map(|g| rustix::fs::Gid::from_raw(*g)).collect();
    rustix::thread::set_thread_groups(&groups).map_err(|e| RuntimeError::sys("setgroups", e))?;
    let gid = rustix::fs::Gid::from_raw(p.user.gid);
    rustix::thread::set_thread_res_gid(gid, gid, gid)
        .map_err(|e| RuntimeError::sys(format!("setgid {}", p.user.gid), e))?;
    let uid = rustix::fs::Uid::from_raw(p.user.uid);
    rustix::thread::set_thread_res_uid(uid, uid, uid)
        .map_err(|e| RuntimeError::sys(format!("setuid {}", p.user.uid), e))?;
    rustix::thread::set_keep_capabilities(false).map_err(|e| RuntimeError::sys("keeping capabilities", e))?;
    if let Some(c) = &p.capabilities {
        caps::apply(c)?;
    }
    if p.no_new_privileges {
        rustix::thread::set_no_new_privs(true).map_err(|e| RuntimeError::sys("no_new_privs", e))?;
        if let Some(prog) = seccomp {
            seccomp::load(prog).map_err(|e| RuntimeError::Start(format!("loading seccomp filter: {e}")))?;
        }
    }
    resolve_program(p)
}

/// Replaces the process with the container's program; every descriptor but stdio and the
/// close-on-exec error pipe is already gone.
fn exec_program(p: &Process, program: &Path) -> Result<Infallible> {
    let err = std::process::Command::new(program)
        .arg0(&p.args[0])
        .args(&p.args[1..])
        .env_clear()
        .envs(p.env.iter().filter_map(|e| e.split_once('=')))
        .exec();
    Err(RuntimeError::Start(exec_error(&p.args[0], program, err)))
}

fn exec_error(arg0: &str, program: &Path, err: std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::NotFound => {
            format!("exec: {arg0:?}: stat {}: no such file or directory", program.display())
        }
        std::io::ErrorKind::PermissionDenied => format!("exec: {arg0:?}: permission denied"),
        _ => format!("exec: {arg0:?}: {err}"),
    }
}

/// Looks `args[0]` up in the process's own `PATH`, as runc does, so the message for a
/// missing command is Docker's.
fn resolve_program(p: &Process) -> Result<PathBuf> {
    let arg0 = p.args.first().ok_or_else(|| RuntimeError::Start("no command specified".into()))?;
    if arg0.is_empty() {
        return Err(RuntimeError::Start("exec: \"\": executable file not found in $PATH".into()));
    }
    if arg0.contains('/') {
        return Ok(PathBuf::from(arg0));
    }
    let path = p
        .env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let cand = Path::new(dir).join(arg0);
        if let Ok(md) = std::fs::metadata(&cand)
            && md.is_file()
            && rustix::fs::access(&cand, rustix::fs::Access::EXEC_OK).is_ok()
        {
            return Ok(cand);
        }
    }
    Err(RuntimeError::Start(format!("exec: {arg0:?}: executable file not found in $PATH")))
}

fn rlimit_resource(name: &str) -> Result<rustix::process::Resource> {
    use rustix::process::Resource::*;
    Ok(match name {
        "RLIMIT_CPU" => Cpu,
        "RLIMIT_FSIZE" => Fsize,
        "RLIMIT_DATA" => Data,
        "RLIMIT_STACK" => Stack,
        "RLIMIT_CORE" => Core,
        "RLIMIT_RSS" => Rss,
        "RLIMIT_NPROC" => Nproc,
        "RLIMIT_NOFILE" => Nofile,
        "RLIMIT_MEMLOCK" => Memlock,
        "RLIMIT_AS" => As,
        "RLIMIT_LOCKS" => Locks,
        "RLIMIT_SIGPENDING" => Sigpending,
        "RLIMIT_MSGQUEUE" => Msgqueue,
        "RLIMIT_NICE" => Nice,
        "RLIMIT_RTPRIO" => Rtprio,
        "RLIMIT_RTTIME" => Rttime,
        other => return Err(RuntimeError::Invalid(format!("unknown rlimit {other}"))),
    })
}
