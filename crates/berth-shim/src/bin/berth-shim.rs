//! `berth-shim <bundle>/shim.json`: supervises one container (see the crate docs).
//!
//! The daemon starts it with descriptor 3 the write end of a pipe, on which the shim
//! reports `{"pid": N}` or `{"error": "…"}` once the container's process has started or
//! failed, and later the exit status; and, when clients were attached before the start, with
//! descriptor 4 a connected socket that becomes the first attach client, so no output is lost.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};

use berth_runtime::spec::Spec;
use berth_shim::proto::{Reply, ShimConfig, StartFailure};
use berth_shim::server::{Shim, report};
use berth_shim::setup::{apply_user, make_io};

/// Takes ownership of a descriptor the daemon passed by number, if it is open.
#[allow(unsafe_code)]
fn inherited(fd: i32) -> Option<OwnedFd> {
    // A descriptor number is valid here only if fcntl(F_GETFD) succeeds on it.
    rustix::io::fcntl_getfd(
        // SAFETY: borrowing a raw descriptor number for one fcntl call; if it is not open the
        // call fails with EBADF and nothing else happens.
        unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
    )
    .ok()?;
    // SAFETY: by the shim's contract with the daemon, descriptors 3 and 4 are handed to the
    // shim for its exclusive use, and nothing in this process has taken them before.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("init") {
        std::process::exit(berth_shim_init::run(&args[2..]));
    }
    if args.get(1).map(String::as_str) == Some("pause") {
        std::process::exit(berth_shim_init::pause());
    }
    let mut report_pipe = inherited(3).map(File::from);
    let initial = inherited(4).map(UnixStream::from);
    let Some(path) = args.get(1) else {
        eprintln!("usage: berth-shim <shim.json>");
        std::process::exit(2);
    };
    match start(path, initial) {
        Ok((shim_parts, pid)) => {
            let heard = report_pipe.as_mut().is_none_or(|r| report(r, &Reply::started(pid)).is_ok());
            let shim = shim_parts(report_pipe);
            if !heard {
                shim.abandon();
            }
            shim.run();
        }
        Err(e) => {
            if let Some(r) = report_pipe.as_mut() {
                // A daemon gone meanwhile finds the shim exited; the error is on stderr below.
                let _ = report(r, &Reply::failed(e.clone()));
            }
            eprintln!("berth-shim: {}", e.message());
            std::process::exit(1);
        }
    }
}

type Parts = Box<dyn FnOnce(Option<File>) -> Shim>;

/// Starts the container. Every failure is [`StartFailure::Other`] but those whose kind is known
/// where they happen: the user, the log driver, and what the runtime reports.
fn start(path: &str, initial: Option<UnixStream>) -> Result<(Parts, i32), StartFailure> {
    let cfg: ShimConfig = serde_json::from_slice(&std::fs::read(path).map_err(|e| format!("reading {path}: {e}"))?)
        .map_err(|e| format!("parsing {path}: {e}"))?;
    let spec_path = cfg.bundle.join("config.json");
    let mut spec: Spec = serde_json::from_slice(
        &std::fs::read(&spec_path).map_err(|e| format!("reading {}: {e}", spec_path.display()))?,
    )
    .map_err(|e| format!("parsing {}: {e}", spec_path.display()))?;

    // Detach from the daemon: own session, reaper of our descendants, and the last process
    // the OOM killer picks (it is tiny; losing it would orphan the container). Not dumpable,
    // so what it forks stays out of reach of ptrace and pidfd_getfd until it execs.
    // A step that fails leaves the shim less independent of the daemon but able to run the
    // container: a line in its log (which the daemon passes on), not a failed start.
    let note = |what: &str, r: std::io::Result<()>| {
        if let Err(e) = r {
            eprintln!("berth-shim: {what}: {e}");
        }
    };
    note("setsid", rustix::process::setsid().map(drop).map_err(Into::into));
    berth_runtime::sys::set_non_dumpable().map_err(|e| format!("making the shim non-dumpable: {e}"))?;
    note(
        "becoming the subreaper",
        rustix::process::set_child_subreaper(Some(
            rustix::process::Pid::from_raw(rustix::process::getpid().as_raw_nonzero().get()).ok_or("pid")?,
        ))
        .map_err(Into::into),
    );
    note("setting oom_score_adj", std::fs::write("/proc/self/oom_score_adj", "-999"));
    note("changing to /", std::env::set_current_dir("/"));

    // Binds that propagate back to the host are prepared while the host's mounts are ours.
    let shared = berth_runtime::propagation::SharedBinds::open(&spec).map_err(|e| StartFailure::from_runtime(&e))?;
    // A mount namespace of our own: the root filesystem exists only here and in the
    // container, and disappears with them, whatever happens to the daemon.
    berth_runtime::sys::unshare(rustix::thread::UnshareFlags::NEWNS)
        .map_err(|e| format!("unshare mount namespace: {e}"))?;
    rustix::mount::mount_change(
        c"/",
        rustix::mount::MountPropagationFlags::DOWNSTREAM | rustix::mount::MountPropagationFlags::REC,
    )
    .map_err(|e| format!("making mounts private: {}", std::io::Error::from(e)))?;
    std::fs::create_dir_all(&spec.root.path).map_err(|e| format!("creating {}: {e}", spec.root.path))?;
    let data = CString::new(cfg.rootfs.data()).map_err(|_| "bad rootfs options")?;
    let target = CString::new(spec.root.path.clone()).map_err(|_| "bad root path")?;
    rustix::mount::mount(
        c"overlay",
        target.as_c_str(),
        c"overlay",
        rustix::mount::MountFlags::empty(),
        Some(data.as_c_str()),
    )
    .map_err(|e| format!("mounting the container's root filesystem (overlay): {}", std::io::Error::from(e)))?;

    // A socket left by an earlier shim; if it cannot go, the bind below says why.
    let _ = std::fs::remove_file(&cfg.socket);
    let listener =
        UnixListener::bind(&cfg.socket).map_err(|e| format!("listening on {}: {e}", cfg.socket.display()))?;

    let root = rustix::fs::open(
        spec.root.path.as_str(),
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| format!("opening root: {}", std::io::Error::from(e)))?;
    apply_user(&mut spec.process, root.as_fd(), &cfg.user, &cfg.group_add)
        .map_err(|e| StartFailure::User(e.to_string()))?;
    drop(root);

    // The log before the container: a collector that cannot be reached fails the start
    // (as Docker's drivers do) with nothing running yet.
    let log = berth_shim::logfile::LogWriter::open(cfg.log.clone())
        .map_err(|e| StartFailure::LogDriver(format!("failed to initialize logging driver: {e}")))?;
    let (io, ends) = make_io(cfg.tty, cfg.open_stdin).map_err(|e| format!("creating stdio: {e}"))?;
    let spawned = berth_runtime::create::create(&spec, io, &shared).map_err(|e| StartFailure::from_runtime(&e))?;
    let pid = spawned.pid;
    let attach_stdin = cfg.open_stdin;
    let parts: Parts = Box::new(move |report| {
        let initial = initial.map(|s| (s, attach_stdin));
        match Shim::new(cfg, spec, listener, spawned, ends, report, initial, log) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("berth-shim: {e}");
                std::process::exit(1);
            }
        }
    });
    Ok((parts, pid))
}

mod berth_shim_init {
    /// `--init`: run the command as a child and stand in as PID 1 (forward signals, reap
    /// zombies). Implemented in `berth_shim::init`.
    pub fn run(args: &[String]) -> i32 {
        berth_shim::init::run(args)
    }

    /// A CRI pod sandbox's holder process (`berth_shim::init::pause`).
    pub fn pause() -> i32 {
        berth_shim::init::pause()
    }
}
