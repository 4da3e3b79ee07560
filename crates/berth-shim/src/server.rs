//! The shim process: start the container, then serve its streams until it is gone.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};
use rustix::process::{Pid, Signal, WaitOptions};

use berth_runtime::create::Spawned;
use berth_runtime::spec::Spec;

use crate::logfile::LogWriter;
use crate::proto::{self, ExitStatus, Reply, Request, ShimConfig, StartFailure, State};
use crate::setup::{Ends, apply_user, make_io};

/// The first process is keyed by the empty string; exec'd ones by their exec ID.
const INIT: &str = "";

/// How long output may keep flowing after the first process has exited (from processes that
/// escaped its pid namespace, e.g. with `--pid host`) before the shim stops waiting for it.
const DRAIN_GRACE: Duration = Duration::from_secs(2);
/// How much of an exec's output the shim holds for one client before it stops reading the
/// exec's pipes (see [`Shim::backed_up`]).
const EXEC_BACKLOG: usize = 1 << 20;
/// How long the shim lingers for clients still reading when everything has ended.
const LINGER: Duration = Duration::from_secs(5);

/// Input held for a process that is not reading it: past this, its attach clients are not
/// read until it takes some (their sockets fill, and the writers upstream wait), so a
/// process that never reads its stdin cannot fill the shim's memory.
const STDIN_HELD_MAX: usize = 1 << 20;

struct Proc {
    pid: i32,
    pidfd: Option<OwnedFd>,
    stdin: Option<OwnedFd>,
    stdin_buf: Vec<u8>,
    /// Stdin ends once `stdin_buf` is written: the client's input ended behind that data.
    stdin_closing: bool,
    /// stdout, or the terminal master.
    out: Option<OwnedFd>,
    err: Option<OwnedFd>,
    tty: bool,
    exit: Option<i32>,
    exited_at: Option<Instant>,
    stdin_once: bool,
    announced: bool,
}

impl Proc {
    fn new(s: Spawned, ends: Ends, stdin_once: bool) -> Proc {
        let Ends { stdin, stdout: out, stderr: err } = ends;
        let tty = s.pty_master.is_some();
        let (stdin, out) = match s.pty_master {
            Some(m) => {
                let dup = rustix::io::dup(&m).ok();
                (dup, Some(m))
            }
            None => (stdin, out),
        };
        for fd in [&stdin, &out, &err].into_iter().flatten() {
            if let Err(e) = set_nonblocking(fd) {
                // Cannot happen to a descriptor we hold open; if it did, the poll loop could
                // block on it.
                eprintln!("berth-shim: making the process's stdio non-blocking: {e}");
            }
        }
        Proc {
            pid: s.pid,
            pidfd: Some(s.pidfd),
            stdin,
            stdin_buf: Vec::new(),
            stdin_closing: false,
            out,
            err,
            tty,
            exit: None,
            exited_at: None,
            stdin_once,
            announced: false,
        }
    }

    /// Exited, and its output is all read (or has had its grace period).
    fn finished(&self) -> bool {
        self.exit.is_some()
            && ((self.out.is_none() && self.err.is_none()) || self.exited_at.is_some_and(|t| t.elapsed() > DRAIN_GRACE))
    }
}

#[derive(Clone, PartialEq)]
enum Kind {
    /// Waiting for its request line.
    New,
    Waiter,
    Attach {
        target: String,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
}

struct Client {
    stream: UnixStream,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    kind: Kind,
    /// Close once `wbuf` is flushed.
    closing: bool,
    dead: bool,
    /// The client has shut down its sending side (stdin ended); output still flows to it.
    read_closed: bool,
}

impl Client {
    fn new(stream: UnixStream, kind: Kind) -> Client {
        // FIONBIO on a connected socket we hold fails only if it is not open, which it is.
        let _ = stream.set_nonblocking(true);
        Client { stream, rbuf: Vec::new(), wbuf: Vec::new(), kind, closing: false, dead: false, read_closed: false }
    }

    fn send(&mut self, data: &[u8]) {
        // A client that stops reading must not make the shim hold unbounded output.
        if self.wbuf.len() > 8 << 20 {
            self.dead = true;
            return;
        }
        self.wbuf.extend_from_slice(data);
    }

    fn reply<T: serde::Serialize>(&mut self, v: &T) {
        let mut line = serde_json::to_vec(v).unwrap_or_default();
        line.push(b'\n');
        self.send(&line);
    }
}

fn set_nonblocking(fd: &impl AsFd) -> io::Result<()> {
    let flags = rustix::fs::fcntl_getfl(fd)?;
    rustix::fs::fcntl_setfl(fd, flags | rustix::fs::OFlags::NONBLOCK)?;
    Ok(())
}

pub struct Shim {
    cfg: ShimConfig,
    spec: Spec,
    listener: UnixListener,
    init_pidfd: OwnedFd,
    procs: BTreeMap<String, Proc>,
    clients: Vec<Client>,
    log: LogWriter,
    /// The daemon's end of the start pipe, kept to tell it the exit status.
    report: Option<std::fs::File>,
    status: Option<ExitStatus>,
    cgroup: Option<berth_cgroups::Cgroup>,
    done_at: Option<Instant>,
}

/// Writes a value as one JSON line to the report pipe, ignoring a daemon that has gone.
/// Writes one report line to the daemon; an error means the daemon is no longer listening.
pub fn report<T: serde::Serialize>(f: &mut std::fs::File, v: &T) -> io::Result<()> {
    let mut line = serde_json::to_vec(v).unwrap_or_default();
    line.push(b'\n');
    f.write_all(&line)
}

fn exit_code(status: rustix::process::WaitStatus) -> i32 {
    if let Some(c) = status.exit_status() {
        c
    } else if let Some(s) = status.terminating_signal() {
        128 + s
    } else {
        255
    }
}

impl Shim {
    /// Takes over a started container: its process and stdio, the socket to serve, the
    /// daemon's report pipe, a first attach client, and the open log.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: ShimConfig,
        spec: Spec,
        listener: UnixListener,
        spawned: Spawned,
        ends: Ends,
        report: Option<std::fs::File>,
        initial: Option<(UnixStream, bool)>,
        log: LogWriter,
    ) -> io::Result<Shim> {
        listener.set_nonblocking(true)?;
        let init_pidfd = spawned.pidfd.try_clone()?;
        let mut procs = BTreeMap::new();
        procs.insert(INIT.to_string(), Proc::new(spawned, ends, cfg.stdin_once));
        let cgroup = berth_runtime::create::cgroup_of(&spec).ok().flatten();
        let mut clients = Vec::new();
        if let Some((stream, stdin)) = initial {
            clients.push(Client::new(stream, Kind::Attach { target: INIT.into(), stdin, stdout: true, stderr: true }));
        }
        Ok(Shim { cfg, spec, listener, init_pidfd, procs, clients, log, report, status: None, cgroup, done_at: None })
    }

    /// Serves until the container has ended and every client has been told.
    pub fn run(mut self) {
        let mut buf = vec![0u8; 32 * 1024];
        // Once the container has settled in, the start-up code (the runtime) is not needed
        // again: give its pages back so the shim's resident set is what supervising takes.
        let began = Instant::now();
        let mut trimmed = false;
        loop {
            self.settle();
            if let Some(t) = self.done_at {
                let idle = self.clients.iter().all(|c| c.wbuf.is_empty() && !matches!(c.kind, Kind::New));
                // A remote log driver gets the same grace to take what is queued for it.
                if (self.procs.is_empty() && idle && self.log.drained()) || t.elapsed() > LINGER {
                    break;
                }
            }
            let retrying = self.log.sink_tick(Instant::now()).is_some();
            let ready = match self.poll(!trimmed || retrying) {
                Ok(r) => r,
                Err(_) => continue,
            };
            if !trimmed && began.elapsed() > Duration::from_millis(500) {
                berth_runtime::sys::trim_resident_memory();
                trimmed = true;
            }
            for (tok, flags) in ready {
                self.handle(tok, flags, &mut buf);
            }
            self.clients.retain(|c| !c.dead);
        }
        self.log.close();
        // Usually gone already (`settle` removed it when the container ended); a leftover
        // socket is removed by the container's next start before it binds.
        let _ = std::fs::remove_file(&self.cfg.socket);
    }

    /// Waits for events; `soon` keeps the wait short (the start-up trim is still to come).
    fn poll(&self, soon: bool) -> io::Result<Vec<(Tok, PollFlags)>> {
        let mut toks = Vec::new();
        let mut fds = Vec::new();
        let inp = PollFlags::IN;
        if self.done_at.is_none() {
            toks.push(Tok::Listener);
            fds.push(PollFd::new(&self.listener, inp));
        }
        for (k, p) in &self.procs {
            if let Some(fd) = &p.pidfd {
                toks.push(Tok::Pid(k.clone()));
                fds.push(PollFd::new(fd, inp));
            }
            if self.backed_up(k) {
                continue;
            }
            if let Some(fd) = &p.out {
                toks.push(Tok::Out(k.clone()));
                fds.push(PollFd::new(fd, inp));
            }
            if let Some(fd) = &p.err {
                toks.push(Tok::Err(k.clone()));
                fds.push(PollFd::new(fd, inp));
            }
            if let (Some(fd), false) = (&p.stdin, p.stdin_buf.is_empty()) {
                toks.push(Tok::In(k.clone()));
                fds.push(PollFd::new(fd, PollFlags::OUT));
            }
        }
        for (i, c) in self.clients.iter().enumerate() {
            let stdin_full = match &c.kind {
                Kind::Attach { target, stdin: true, .. } => {
                    self.procs.get(target).is_some_and(|p| p.stdin_buf.len() >= STDIN_HELD_MAX)
                }
                _ => false,
            };
            let mut f = if c.read_closed || stdin_full { PollFlags::empty() } else { inp };
            if !c.wbuf.is_empty() {
                f |= PollFlags::OUT;
            }
            toks.push(Tok::Client(i));
            fds.push(PollFd::new(&c.stream, f));
        }
        let sink = self.log.sink_interest();
        if let Some((fd, f)) = &sink {
            toks.push(Tok::Sink);
            fds.push(PollFd::new(fd, *f));
        }
        // Wake up now and then: often while a drain or linger deadline runs, rarely otherwise
        // (to reap orphans that escaped the container's pid namespace), so an idle shim
        // stays idle.
        let deadlines = soon || self.done_at.is_some() || self.procs.values().any(|p| p.exit.is_some());
        let timeout = if deadlines {
            rustix::event::Timespec { tv_sec: 0, tv_nsec: 250_000_000 }
        } else {
            rustix::event::Timespec { tv_sec: 5, tv_nsec: 0 }
        };
        rustix::event::poll(&mut fds, Some(&timeout))?;
        Ok(toks.into_iter().zip(fds.iter().map(|f| f.revents())).filter(|(_, r)| !r.is_empty()).collect())
    }

    /// Whether an exec's output waits for its readers: while a client reading it has more than
    /// [`EXEC_BACKLOG`] unsent, the exec's pipes are not read, so the process blocks on them
    /// instead of the shim dropping that client (and with it the exit code). The container's
    /// own process is held up only when it has no log (a build's RUN step, `--log-driver
    /// none`): otherwise its output goes to the log whoever attaches, and a slow client is
    /// dropped; without one, the clients are all its output has, and none may lose it.
    fn backed_up(&self, key: &str) -> bool {
        (key != INIT || !self.log.keeps_output())
            && self
                .clients
                .iter()
                .any(|c| matches!(&c.kind, Kind::Attach { target, .. } if target == key) && c.wbuf.len() > EXEC_BACKLOG)
    }

    fn handle(&mut self, tok: Tok, flags: PollFlags, buf: &mut [u8]) {
        match tok {
            Tok::Listener => {
                while let Ok((s, _)) = self.listener.accept() {
                    self.clients.push(Client::new(s, Kind::New));
                }
            }
            Tok::Pid(k) => self.reap(&k),
            Tok::Sink => self.log.sink_ready(flags),
            Tok::Out(k) => self.read_output(&k, proto::FRAME_STDOUT, buf),
            Tok::Err(k) => self.read_output(&k, proto::FRAME_STDERR, buf),
            Tok::In(k) => {
                if let Some(p) = self.procs.get_mut(&k) {
                    flush_stdin(p);
                }
            }
            Tok::Client(i) => {
                if flags.intersects(PollFlags::OUT) {
                    self.write_client(i);
                }
                if flags.intersects(PollFlags::HUP | PollFlags::ERR) && self.clients[i].read_closed {
                    // The peer is gone both ways (its input had already ended): nothing can
                    // reach it, and the hangup would be reported on every poll.
                    self.clients[i].dead = true;
                } else if flags.intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR) {
                    self.read_client(i, buf);
                }
            }
        }
    }

    fn reap(&mut self, key: &str) {
        // Reap every child that has exited: ours, and orphans re-parented to us.
        while let Ok(Some((pid, status))) = rustix::process::wait(WaitOptions::NOHANG) {
            let code = exit_code(status);
            for p in self.procs.values_mut() {
                if p.pid == pid.as_raw_nonzero().get() && p.exit.is_none() {
                    p.exit = Some(code);
                    p.exited_at = Some(Instant::now());
                    p.pidfd = None;
                }
            }
        }
        if let Some(p) = self.procs.get_mut(key)
            && p.exit.is_none()
        {
            // Readable pidfd but not yet reapable (a race with another waiter): retry
            // on the next round.
            if p.pidfd.is_some()
                && let Ok(Some((_, status))) = rustix::process::waitpid(Pid::from_raw(p.pid), WaitOptions::NOHANG)
            {
                p.exit = Some(exit_code(status));
                p.exited_at = Some(Instant::now());
                p.pidfd = None;
            }
        }
    }

    fn read_output(&mut self, key: &str, stream: u8, buf: &mut [u8]) {
        let Some(p) = self.procs.get_mut(key) else { return };
        let fd = if stream == proto::FRAME_STDERR { &mut p.err } else { &mut p.out };
        let Some(f) = fd.as_ref() else { return };
        match rustix::io::read(f, &mut *buf) {
            Ok(0) => *fd = None,
            Ok(n) => {
                let data = &buf[..n];
                if key == INIT {
                    self.log.write(stream, data);
                }
                let framed = proto::frame(stream, data);
                for c in &mut self.clients {
                    if let Kind::Attach { target, stdout, stderr, .. } = &c.kind {
                        let wants = if stream == proto::FRAME_STDERR { *stderr } else { *stdout };
                        if target == key && wants && !c.closing {
                            c.send(&framed);
                        }
                    }
                }
            }
            Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => {}
            // EIO: the terminal's other side is gone.
            Err(_) => *fd = None,
        }
    }

    fn write_client(&mut self, i: usize) {
        let c = &mut self.clients[i];
        match c.stream.write(&c.wbuf) {
            Ok(n) => {
                c.wbuf.drain(..n);
                if c.wbuf.is_empty() && c.closing {
                    // The client may have left already; it is dropped either way.
                    let _ = c.stream.shutdown(std::net::Shutdown::Both);
                    c.dead = true;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => c.dead = true,
        }
    }

    fn read_client(&mut self, i: usize, buf: &mut [u8]) {
        let n = match self.clients[i].stream.read(buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(_) => 0,
        };
        if n == 0 {
            self.client_gone(i);
            return;
        }
        self.clients[i].rbuf.extend_from_slice(&buf[..n]);
        match self.clients[i].kind.clone() {
            Kind::New => {
                let Some(nl) = self.clients[i].rbuf.iter().position(|&b| b == b'\n') else { return };
                let line: Vec<u8> = self.clients[i].rbuf.drain(..=nl).collect();
                match serde_json::from_slice::<Request>(&line) {
                    Ok(req) => self.request(i, req),
                    Err(e) => {
                        self.clients[i].reply(&Reply::error(Some(format!("bad request: {e}"))));
                        self.clients[i].closing = true;
                    }
                }
                // Frames may have arrived right behind the request.
                if matches!(self.clients[i].kind, Kind::Attach { .. }) && !self.clients[i].rbuf.is_empty() {
                    self.client_frames(i);
                }
            }
            Kind::Attach { .. } => self.client_frames(i),
            Kind::Waiter => self.clients[i].rbuf.clear(),
        }
    }

    fn client_gone(&mut self, i: usize) {
        let c = &mut self.clients[i];
        if matches!(c.kind, Kind::Attach { .. }) {
            // A half-closed attach client still reads output until the process ends.
            c.read_closed = true;
        } else {
            c.dead = true;
        }
        if let Kind::Attach { target, stdin: true, .. } = c.kind.clone()
            && let Some(p) = self.procs.get_mut(&target)
            && p.stdin_once
            && !p.tty
        {
            close_stdin(p);
        }
    }

    fn client_frames(&mut self, i: usize) {
        let Kind::Attach { target, stdin, .. } = self.clients[i].kind.clone() else { return };
        let frames = proto::take_frames(&mut self.clients[i].rbuf);
        let Some(p) = self.procs.get_mut(&target) else { return };
        let mut end_attach = false;
        for (kind, data) in frames {
            match kind {
                proto::FRAME_STDIN if stdin && p.stdin.is_some() => {
                    p.stdin_buf.extend_from_slice(&data);
                    flush_stdin(p);
                }
                proto::FRAME_STDIN_CLOSE if stdin => {
                    if p.stdin_once {
                        close_stdin(p);
                    } else {
                        // As in Docker: without StdinOnce the container's stdin stays open for
                        // the next client, and this attach ends (its output with it).
                        end_attach = true;
                    }
                }
                proto::FRAME_RESIZE if data.len() == 4 => {
                    let rows = u16::from_be_bytes([data[0], data[1]]);
                    let cols = u16::from_be_bytes([data[2], data[3]]);
                    if let (true, Some(m)) = (p.tty, &p.out) {
                        // A resize frame has no reply: a terminal that refuses it (its
                        // process gone) has no one to tell.
                        let _ = berth_runtime::pty::set_size(m, rows, cols);
                    }
                }
                _ => {}
            }
        }
        if end_attach {
            self.clients[i].closing = true;
        }
    }

    fn request(&mut self, i: usize, req: Request) {
        match req {
            Request::State => {
                let init = self.procs.get(INIT);
                let st = State {
                    pid: init.map(|p| p.pid).unwrap_or(0),
                    running: init.is_some_and(|p| p.exit.is_none()),
                    exit: self.status.clone(),
                };
                self.clients[i].reply(&st);
                self.clients[i].closing = true;
            }
            Request::Wait => {
                if let Some(st) = self.status.clone() {
                    self.clients[i].reply(&st);
                    self.clients[i].closing = true;
                } else {
                    self.clients[i].kind = Kind::Waiter;
                }
            }
            Request::Attach { stdin, stdout, stderr } => {
                self.clients[i].kind = Kind::Attach { target: INIT.into(), stdin, stdout, stderr };
                if self.status.is_some() || self.procs.get(INIT).is_none_or(|p| p.announced) {
                    let code = self.status.as_ref().map(|s| s.exit_code).unwrap_or(0);
                    self.clients[i].send(&proto::frame(proto::FRAME_EXIT, &code.to_be_bytes()));
                    self.clients[i].closing = true;
                }
            }
            Request::Kill { signal, all } => {
                let r = self.kill(signal, all);
                self.clients[i].reply(&Reply::error(r.err()));
                self.clients[i].closing = true;
            }
            Request::Resize { exec, rows, cols } => {
                let key = exec.unwrap_or_default();
                let r = match self.procs.get(&key) {
                    Some(p) if p.tty => p
                        .out
                        .as_ref()
                        .map(|m| berth_runtime::pty::set_size(m, rows, cols).map_err(|e| e.to_string()))
                        .unwrap_or(Ok(())),
                    Some(_) => Ok(()),
                    None => Err(format!("no such process {key:?}")),
                };
                self.clients[i].reply(&Reply::error(r.err()));
                self.clients[i].closing = true;
            }
            Request::CloseStdin => {
                if let Some(p) = self.procs.get_mut(INIT) {
                    close_stdin(p);
                }
                self.clients[i].reply(&Reply::ok());
                self.clients[i].closing = true;
            }
            Request::ReopenLog => {
                let r = self.log.reopen().map_err(|e| format!("reopening the log: {e}"));
                self.clients[i].reply(&Reply::error(r.err()));
                self.clients[i].closing = true;
            }
            Request::Exec { id, process, user, group_add, stdin } => {
                match self.exec(&id, *process, &user, &group_add, stdin) {
                    Ok(pid) => {
                        self.clients[i].reply(&Reply::started(pid));
                        self.clients[i].kind = Kind::Attach { target: id, stdin, stdout: true, stderr: true };
                    }
                    Err(e) => {
                        self.clients[i].reply(&Reply::failed(e));
                        self.clients[i].closing = true;
                    }
                }
            }
        }
    }

    /// The daemon that asked for this container went away before it heard that it started:
    /// no daemon will know of the process, so it does not run on untracked.
    pub fn abandon(&self) {
        eprintln!("berth-shim: the daemon went away during the start; killing the container");
        if let Err(e) = self.kill(9, true) {
            eprintln!("berth-shim: killing the container: {e}");
        }
    }

    fn kill(&self, signal: i32, all: bool) -> Result<(), String> {
        let Some(init) = self.procs.get(INIT) else { return Err("container is not running".into()) };
        if init.exit.is_some() {
            return Err("container is not running".into());
        }
        let sig = Signal::from_named_raw(signal).ok_or_else(|| format!("invalid signal: {signal}"))?;
        if all && let Some(cg) = &self.cgroup {
            cg.kill_all(signal);
        }
        match &init.pidfd {
            Some(fd) => rustix::process::pidfd_send_signal(fd, sig)
                .map_err(|e| format!("sending signal {signal}: {}", io::Error::from(e))),
            None => Ok(()),
        }
    }

    fn exec(
        &mut self,
        id: &str,
        mut process: berth_runtime::spec::Process,
        user: &str,
        group_add: &[String],
        stdin: bool,
    ) -> Result<i32, StartFailure> {
        if id.is_empty() || self.procs.contains_key(id) {
            return Err(StartFailure::Other(format!("exec {id:?} already exists")));
        }
        let not_running = || StartFailure::Other("container is not running".into());
        let init = self.procs.get(INIT).ok_or_else(not_running)?;
        if init.exit.is_some() {
            return Err(not_running());
        }
        let root = rustix::fs::open(
            format!("/proc/{}/root", init.pid).as_str(),
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| StartFailure::Other(format!("opening the container's root: {}", io::Error::from(e))))?;
        apply_user(&mut process, root.as_fd(), user, group_add).map_err(|e| StartFailure::User(e.to_string()))?;
        drop(root);
        let (io, ends) = make_io(process.terminal, stdin).map_err(|e| StartFailure::Other(e.to_string()))?;
        let spawned = berth_runtime::exec::exec(self.init_pidfd.as_fd(), &self.spec, &process, io)
            .map_err(|e| StartFailure::from_runtime(&e))?;
        let pid = spawned.pid;
        let mut p = Proc::new(spawned, ends, true);
        p.stdin_once = true;
        self.procs.insert(id.to_string(), p);
        Ok(pid)
    }

    /// Announces finished processes, and notes when everything has ended.
    fn settle(&mut self) {
        let keys: Vec<String> = self.procs.keys().cloned().collect();
        for k in keys {
            let finished = self.procs.get(&k).is_some_and(|p| p.finished() && !p.announced);
            if !finished {
                continue;
            }
            let code = self.procs[&k].exit.unwrap_or(255);
            if k == INIT {
                self.log.flush();
                let st = ExitStatus {
                    exit_code: code,
                    finished_at: berth_api::time::rfc3339_now(),
                    oom_killed: self.cgroup.as_ref().is_some_and(|c| c.oom_killed()),
                };
                write_exit_file(&self.cfg.exit_file, &st);
                if let Some(r) = self.report.as_mut() {
                    // A daemon gone meanwhile reads the exit file or asks again.
                    let _ = report(r, &st);
                }
                self.report = None;
                for c in &mut self.clients {
                    if c.kind == Kind::Waiter {
                        c.reply(&st);
                        c.closing = true;
                    }
                }
                self.status = Some(st);
            }
            let frame = proto::frame(proto::FRAME_EXIT, &code.to_be_bytes());
            for c in &mut self.clients {
                if let Kind::Attach { target, .. } = &c.kind
                    && *target == k
                {
                    c.send(&frame);
                    c.closing = true;
                }
            }
            if let Some(p) = self.procs.get_mut(&k) {
                p.announced = true;
                p.out = None;
                p.err = None;
                p.stdin = None;
            }
            if k != INIT {
                self.procs.remove(&k);
            }
        }
        let init_done = self.procs.get(INIT).is_none_or(|p| p.announced);
        if init_done && self.done_at.is_none() {
            // Whatever is left in the container dies with its first process.
            if let Some(cg) = &self.cgroup
                && let Err(e) = cg.destroy()
            {
                eprintln!("berth-shim: removing the container's cgroup: {e}");
            }
            self.procs.retain(|k, p| k == INIT || p.exit.is_none());
            self.done_at = Some(Instant::now());
            // No new clients from now on; if it stays, one that connects anyway is closed
            // unanswered (below), and the container's next start removes it before binding.
            let _ = std::fs::remove_file(&self.cfg.socket);
        }
        if self.done_at.is_some() {
            self.procs.retain(|k, _| k != INIT);
            for c in &mut self.clients {
                if c.wbuf.is_empty() && (c.closing || matches!(c.kind, Kind::New)) {
                    c.dead = true;
                }
            }
        }
        for c in &mut self.clients {
            if c.closing && c.wbuf.is_empty() {
                c.dead = true;
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Tok {
    Listener,
    Pid(String),
    Out(String),
    Err(String),
    In(String),
    Client(usize),
    /// The remote log driver's socket.
    Sink,
}

fn flush_stdin(p: &mut Proc) {
    let Some(fd) = &p.stdin else {
        p.stdin_buf.clear();
        return;
    };
    while !p.stdin_buf.is_empty() {
        match rustix::io::write(fd, &p.stdin_buf) {
            Ok(n) => {
                p.stdin_buf.drain(..n);
            }
            Err(rustix::io::Errno::AGAIN) => return,
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => {
                p.stdin_buf.clear();
                p.stdin = None;
                return;
            }
        }
    }
    if p.stdin_closing {
        p.stdin = None;
    }
}

/// Ends the process's stdin after what is still buffered for it (the pipe may be full: the
/// rest goes as the process reads, then EOF).
fn close_stdin(p: &mut Proc) {
    p.stdin_closing = true;
    flush_stdin(p);
}

/// Writes the exit status atomically next to where the daemon expects it.
pub fn write_exit_file(path: &Path, st: &ExitStatus) {
    let tmp = path.with_extension("tmp");
    let written =
        std::fs::write(&tmp, serde_json::to_vec(st).unwrap_or_default()).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        // A daemon that was away now learns nothing of how the container ended.
        eprintln!("berth-shim: writing the exit status to {}: {e}", path.display());
    }
}
