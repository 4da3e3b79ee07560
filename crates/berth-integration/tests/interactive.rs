//! Terminals: `run -it`, detaching with ctrl-p ctrl-q, `attach`, `exec -it`, and ctrl-c,
//! driven through a real pseudo-terminal as a user's shell would.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_integration::{Daemon, berth_bin, unique};

/// A CLI process on a pseudo-terminal.
struct Pty {
    master: std::fs::File,
    child: Child,
    seen: String,
}

impl Pty {
    fn spawn(d: &Daemon, args: &[&str]) -> Pty {
        use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
        let master: OwnedFd = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).unwrap();
        grantpt(&master).unwrap();
        unlockpt(&master).unwrap();
        let name = ptsname(&master, Vec::new()).unwrap();
        let slave = std::fs::OpenOptions::new().read(true).write(true).open(name.to_str().unwrap()).unwrap();
        let mut cmd = Command::new(berth_bin());
        cmd.arg("-H").arg(d.host()).args(args);
        cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        // The terminal becomes the CLI's controlling terminal, as in a login shell.
        #[allow(unsafe_code)]
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                rustix::process::setsid().map_err(std::io::Error::from)?;
                rustix::process::ioctl_tiocsctty(rustix::stdio::stdin()).map_err(std::io::Error::from)?;
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap();
        let fl = rustix::fs::fcntl_getfl(&master).unwrap();
        rustix::fs::fcntl_setfl(&master, fl | rustix::fs::OFlags::NONBLOCK).unwrap();
        Pty { master: std::fs::File::from(master), child, seen: String::new() }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).unwrap();
    }

    /// Reads until `needle` has appeared in the output (up to 30 s).
    #[track_caller]
    fn expect(&mut self, needle: &str) {
        let start = Instant::now();
        let mut buf = [0u8; 4096];
        while !self.seen.contains(needle) {
            match self.master.read(&mut buf) {
                Ok(0) => {}
                Ok(n) => self.seen.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    let mut fds = [rustix::event::PollFd::new(&self.master, rustix::event::PollFlags::IN)];
                    let _ = rustix::event::poll(
                        &mut fds,
                        Some(&rustix::event::Timespec { tv_sec: 0, tv_nsec: 100_000_000 }),
                    );
                }
                // EIO: the other side is closed.
                Err(_) => {}
            }
            assert!(start.elapsed() < Duration::from_secs(30), "never saw {needle:?}; output so far: {:?}", self.seen);
        }
        // Later expectations look only at what comes after.
        let at = self.seen.find(needle).unwrap() + needle.len();
        self.seen = self.seen[at..].to_string();
    }

    /// Waits for the CLI to exit and returns its code.
    #[track_caller]
    fn exit_code(&mut self) -> i32 {
        let start = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code().unwrap_or(-1);
            }
            // Keep the terminal drained so the CLI never blocks writing to it.
            let mut buf = [0u8; 4096];
            let _ = self.master.read(&mut buf);
            assert!(start.elapsed() < Duration::from_secs(30), "the CLI did not exit; output: {:?}", self.seen);
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = self.master.as_raw_fd();
    }
}

fn status(d: &Daemon, name: &str) -> String {
    d.berth(&["inspect", "-f", "{{.State.Status}}", name]).ok().trim().to_string()
}

#[test]
fn run_it_detach_with_ctrl_p_ctrl_q_then_attach_and_exit() {
    let d = Daemon::with_busybox();
    let name = unique("tty");
    let mut t = Pty::spawn(&d, &["run", "-it", "--name", &name, "busybox", "sh"]);
    t.send(b"echo hello-$((6*7))\r");
    t.expect("hello-42");
    // A terminal, sized, and the shell's own line discipline.
    t.send(b"tty; stty size\r");
    t.expect("/dev/pts/0");
    t.send(b"\x10\x11");
    assert_eq!(t.exit_code(), 0, "detaching leaves the CLI with 0: {:?}", t.seen);
    assert_eq!(status(&d, &name), "running", "detached, not stopped");

    let mut a = Pty::spawn(&d, &["attach", &name]);
    a.send(b"echo again-$((2+3))\r");
    a.expect("again-5");
    a.send(b"exit 3\r");
    assert_eq!(a.exit_code(), 3, "attach returns the container's exit code");
    assert_eq!(status(&d, &name), "exited");
}

#[test]
fn custom_detach_keys_and_ctrl_c_stops_an_it_container() {
    let d = Daemon::with_busybox();
    let name = unique("keys");
    let mut t = Pty::spawn(&d, &["run", "-it", "--detach-keys", "ctrl-x,x", "--name", &name, "busybox", "sh"]);
    t.send(b"echo ready\r");
    t.expect("ready");
    t.send(b"\x18x");
    assert_eq!(t.exit_code(), 0);
    assert_eq!(status(&d, &name), "running");

    // ctrl-c reaches the container's process, which ends on it. (As with Docker, a PID 1
    // without a SIGINT handler ignores it; `--init` is the usual answer and is what this uses.)
    let sleeper = unique("sleeper");
    let mut s = Pty::spawn(&d, &["run", "-it", "--init", "--name", &sleeper, "busybox", "sleep", "1000"]);
    // The process must be running before the interrupt is sent.
    let start = Instant::now();
    while d.berth(&["top", &sleeper]).stdout.lines().count() < 2 {
        assert!(start.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(20));
    }
    s.send(b"\x03");
    assert_eq!(s.exit_code(), 130, "ctrl-c: {:?}", s.seen);
    assert_eq!(status(&d, &sleeper), "exited");
}

#[test]
fn exec_it_gets_its_own_terminal() {
    let d = Daemon::with_busybox();
    let name = unique("ex");
    d.berth(&["run", "-d", "--name", &name, "busybox", "sleep", "1000"]).ok();
    let mut t = Pty::spawn(&d, &["exec", "-it", &name, "sh"]);
    t.send(b"echo in-$((1+1)); tty\r");
    t.expect("in-2");
    t.expect("/dev/pts/");
    t.send(b"exit 7\r");
    assert_eq!(t.exit_code(), 7);
    assert_eq!(status(&d, &name), "running", "the exec ended, the container did not");
}
