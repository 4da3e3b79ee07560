//! The harness every integration test uses: a real `berth daemon` on a temporary data root,
//! exec root, socket and cgroup parent, torn down (containers, shims, cgroups, files) when
//! the test ends, whether it passed or not.
//!
//! Tests need root, the berth binaries (`cargo build` first; `BERTH_BIN_DIR` overrides where
//! they are looked for) and Debian's busybox-static at /bin/busybox.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;

/// Where `berth` and `berth-shim` are.
pub fn bin_dir() -> PathBuf {
    if let Ok(d) = std::env::var("BERTH_BIN_DIR") {
        return PathBuf::from(d);
    }
    // The test executable sits in <profile dir>/deps, beside the binaries built with it
    // (whatever CARGO_TARGET_DIR was).
    let beside = std::env::current_exe().ok().and_then(|e| Some(e.parent()?.parent()?.to_path_buf()));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    let fallbacks = [root.join("target/x86_64-unknown-linux-gnu").join(profile), root.join("target").join(profile)];
    for cand in beside.into_iter().chain(fallbacks) {
        if cand.join("berth").exists() {
            return cand;
        }
    }
    panic!("berth binaries not found; run `cargo build` first or set BERTH_BIN_DIR");
}

pub fn berth_bin() -> PathBuf {
    bin_dir().join("berth")
}

/// A busybox root filesystem tar (static busybox, its applets as symlinks, /etc/passwd and
/// /etc/group with root, nobody and postgres, /tmp). Made once per busybox binary and kept
/// in the build directory (next to the test executables), so runs leave nothing in /tmp.
pub fn busybox_tar() -> &'static Path {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        use std::os::unix::fs::MetadataExt;
        let md = std::fs::metadata("/bin/busybox").expect("busybox-static must be installed (/bin/busybox)");
        let exe = std::env::current_exe().unwrap();
        let cache = exe.parent().unwrap().join("berth-test-busybox");
        let tar = cache.join(format!("busybox-{}-{}.tar", md.size(), md.mtime()));
        if tar.exists() {
            return tar;
        }
        let dir = cache.join(format!("make-{}", std::process::id()));
        let root = dir.join("root");
        let _ = std::fs::remove_dir_all(&dir);
        for d in ["bin", "etc", "tmp", "root", "var/opt", "home"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
        let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            if applet != "busybox" && !applet.is_empty() {
                let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(applet));
            }
        }
        std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\npostgres:x:70:70::/var/lib/postgresql:/bin/sh\n").unwrap();
        std::fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\npostgres:x:70:\n").unwrap();
        std::fs::set_permissions(root.join("tmp"), std::os::unix::fs::PermissionsExt::from_mode(0o1777)).unwrap();
        let made = dir.join("busybox.tar");
        let st = Command::new("tar").arg("-C").arg(&root).arg("-cf").arg(&made).arg(".").status().unwrap();
        assert!(st.success(), "making the busybox tar");
        // Several test processes may race here; each renames a whole file into place.
        std::fs::rename(&made, &tar).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        tar
    })
}

/// The result of a CLI run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(self) -> String {
        assert_eq!(self.code, 0, "command failed: stdout={:?} stderr={:?}", self.stdout, self.stderr);
        self.stdout
    }

    /// Asserts failure and returns stderr.
    #[track_caller]
    pub fn fails(self) -> String {
        assert_ne!(self.code, 0, "command unexpectedly succeeded: stdout={:?}", self.stdout);
        self.stderr
    }
}

pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub cgroup_parent: String,
    /// This daemon's default bridge (unique, so tests run side by side).
    pub bridge: String,
    /// The default bridge's subnet prefix, e.g. `10.123.4` (a /24).
    pub bridge_net: String,
    /// Run the daemon inside this network namespace (multi-host tests), entered with
    /// [`in_netns`].
    pub netns: Option<String>,
    /// A command the daemon runs under (`setpriv …`), which execs it.
    wrapper: Vec<String>,
    child: Option<Child>,
    extra_args: Vec<String>,
    /// Environment variables the daemon (and so its shims) start with.
    pub env: Vec<(String, String)>,
}

/// Addresses for one test daemon: a /24 for its default bridge and a /24 its user-defined
/// networks are carved from (as /28s). Unique per process and call.
fn addresses() -> (String, String, String) {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let a = 100 + (std::process::id() % 100);
    let b = (n * 2) % 250;
    (format!("bt{:x}{n}", std::process::id() % 0xfffff), format!("10.{a}.{b}"), format!("10.{a}.{}", b + 1))
}

/// The firewall table a daemon on `data_root` uses (mirrors berth-daemon's naming).
pub fn table_for(data_root: &Path) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in data_root.display().to_string().bytes() {
        h = (h ^ b as u64).wrapping_mul(0x100000001b3);
    }
    format!("berth_{:08x}", h as u32)
}

/// The iptables chain in which a daemon on `data_root` accepts its bridges' traffic
/// (mirrors berth-network's `iptables::chain_for`).
pub fn iptables_chain_for(data_root: &Path) -> String {
    let t = table_for(data_root);
    format!("BERTH{}", &t["berth".len()..])
}

fn short_tmp() -> tempfile::TempDir {
    // Unix socket paths are limited to 108 bytes; keep the prefix short.
    tempfile::Builder::new().prefix("bt").tempdir_in("/tmp").unwrap()
}

impl Daemon {
    /// Starts a daemon with its own everything.
    pub fn start() -> Daemon {
        Daemon::start_with(&[])
    }

    pub fn start_with(args: &[&str]) -> Daemon {
        Daemon::start_in(None, args)
    }

    /// Starts a daemon inside the network namespace `netns` (made by the test with `ip netns`).
    pub fn start_in(netns: Option<&str>, args: &[&str]) -> Daemon {
        Daemon::start_full(netns, &[], args)
    }

    /// Starts a daemon under `wrapper` (a command that execs the rest of its arguments, such
    /// as `setpriv --bounding-set -sys_boot`).
    pub fn start_under(wrapper: &[&str], args: &[&str]) -> Daemon {
        Daemon::start_full(None, wrapper, args)
    }

    fn start_full(netns: Option<&str>, wrapper: &[&str], args: &[&str]) -> Daemon {
        let dir = short_tmp();
        let name = dir.path().file_name().unwrap().to_string_lossy().into_owned();
        let (bridge, bridge_net, pool) = addresses();
        // Tests never give containers a way out: no masquerade, no new connections leaving
        // container networks.
        std::fs::write(
            dir.path().join("daemon.json"),
            format!(r#"{{"bridge": "{bridge}", "bip": "{bridge_net}.1/24", "default-address-pools": [{{"base": "{pool}.0/24", "size": 28}}], "ip-masq": false, "ip-forward": false}}"#),
        )
        .unwrap();
        let mut d = Daemon {
            socket: dir.path().join("berth.sock"),
            cgroup_parent: format!("berth-test-{name}"),
            dir,
            bridge,
            bridge_net,
            netns: netns.map(String::from),
            wrapper: wrapper.iter().map(|s| s.to_string()).collect(),
            child: None,
            extra_args: args.iter().map(|s| s.to_string()).collect(),
            env: Vec::new(),
        };
        d.spawn();
        d
    }

    pub fn data_root(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn exec_root(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Starts the daemon process and waits until it says it is listening.
    pub fn spawn(&mut self) {
        if let Err(e) = self.try_spawn() {
            panic!("berth daemon exited before listening: {e}");
        }
    }

    /// Starts the daemon process; `Err` holds what it said if it exited before listening.
    pub fn try_spawn(&mut self) -> Result<(), String> {
        let mut cmd = match &self.netns {
            Some(ns) => in_netns(ns, berth_bin()),
            None => match self.wrapper.split_first() {
                Some((first, rest)) => {
                    let mut c = Command::new(first);
                    c.args(rest).arg(berth_bin());
                    c
                }
                None => Command::new(berth_bin()),
            },
        };
        cmd.arg("daemon")
            .arg("--data-root")
            .arg(self.data_root())
            .arg("--exec-root")
            .arg(self.exec_root())
            .arg("-H")
            .arg(self.host())
            .arg("--cgroup-parent")
            .arg(&self.cgroup_parent)
            .arg("--config-file")
            .arg(self.config_file())
            .args(&self.extra_args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("starting berth daemon");
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let mut seen = Vec::new();
        loop {
            match lines.next() {
                Some(Ok(l)) => {
                    let ready = l.contains("API listening on");
                    seen.push(l);
                    if ready {
                        break;
                    }
                }
                _ => {
                    let _ = child.wait();
                    return Err(seen.join("\n"));
                }
            }
        }
        // Keep draining the daemon's stderr so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.by_ref() {});
        self.child = Some(child);
        Ok(())
    }

    /// The daemon's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    fn config_file(&self) -> PathBuf {
        self.dir.path().join("daemon.json")
    }

    /// Sets keys in daemon.json (takes effect at the next start): `extra` is JSON object
    /// members such as `"live-restore": false`; a key already there takes the new value.
    pub fn set_config(&self, extra: &str) {
        let p = self.config_file();
        let mut cur: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        let add: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&format!("{{{extra}}}")).unwrap();
        cur.extend(add);
        std::fs::write(&p, serde_json::to_vec_pretty(&cur).unwrap()).unwrap();
    }

    /// Stops the daemon with SIGTERM (containers keep running, as with live restore). A
    /// daemon still running a minute later is killed and the test fails, rather than hang.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_raw(c.id() as i32).unwrap(),
                rustix::process::Signal::TERM,
            );
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while matches!(c.try_wait(), Ok(None)) {
                if std::time::Instant::now() > deadline {
                    let _ = c.kill();
                    let _ = c.wait();
                    panic!("berth daemon did not stop within 60 s of SIGTERM");
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }

    /// Kills the daemon with SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A simulated host reboot: the daemon, every shim and every container process are
    /// killed with SIGKILL at once. The next `spawn` is the boot.
    pub fn crash_host(&mut self) {
        self.kill();
        kill_shims(&self.exec_root());
        for ctrl in ["pids", "memory", "unified", ""] {
            let base = Path::new("/sys/fs/cgroup").join(ctrl).join(&self.cgroup_parent);
            let Ok(rd) = std::fs::read_dir(&base) else { continue };
            for e in rd.flatten() {
                for pid in std::fs::read_to_string(e.path().join("cgroup.procs")).unwrap_or_default().lines() {
                    if let Some(p) = pid.trim().parse().ok().and_then(rustix::process::Pid::from_raw) {
                        let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                    }
                }
            }
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Runs `berth <args>` against this daemon.
    pub fn berth(&self, args: &[&str]) -> Run {
        Run::from(
            Command::new(berth_bin()).arg("-H").arg(self.host()).args(args).stdin(Stdio::null()).output().unwrap(),
        )
    }

    /// Runs `berth <args>` with `input` on stdin.
    pub fn berth_stdin(&self, args: &[&str], input: &[u8]) -> Run {
        run_with_stdin(Command::new(berth_bin()).arg("-H").arg(self.host()).args(args), input)
    }

    /// Runs the real `docker` CLI against this daemon.
    pub fn docker(&self, args: &[&str]) -> Run {
        Run::from(self.docker_cmd().args(args).stdin(Stdio::null()).output().unwrap())
    }

    pub fn docker_stdin(&self, args: &[&str], input: &[u8]) -> Run {
        run_with_stdin(self.docker_cmd().args(args), input)
    }

    /// Runs a Python script with docker-py 6.1.3 importable and `DOCKER_HOST` set to this
    /// daemon (scripts/test.sh installs it: `BERTH_DOCKER_PY_PYTHON`, else the repo's
    /// `.cache/docker-py-venv`).
    pub fn docker_py(&self, script: &str, args: &[&str]) -> Run {
        let python = std::env::var_os("BERTH_DOCKER_PY_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/docker-py-venv/bin/python"));
        assert!(python.exists(), "docker-py is not installed ({}): scripts/test.sh installs it", python.display());
        Run::from(
            Command::new(python)
                .arg("-c")
                .arg(script)
                .args(args)
                .env("DOCKER_HOST", self.host())
                .stdin(Stdio::null())
                .output()
                .unwrap(),
        )
    }

    /// One request on the daemon's socket, as an API client sends it: the status and body.
    pub fn api(&self, method: &str, path: &str, body: &[u8]) -> (u16, String) {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(&self.socket).unwrap();
        // A request that never gets an answer fails the test instead of hanging it.
        s.set_read_timeout(Some(std::time::Duration::from_secs(60))).unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: berth\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        // The daemon may answer (and stop reading) before the whole body is sent.
        let _ = s.write_all(body);
        let mut out = Vec::new();
        match s.read_to_end(&mut out) {
            Ok(_) => {}
            // A daemon that answered before reading the whole body closes with part of it
            // unread, and the kernel then resets the connection: what came before stands.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !out.is_empty() => {}
            Err(e) => panic!("reading the answer to {method} {path}: {e}"),
        }
        let text = String::from_utf8_lossy(&out).into_owned();
        let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        (status, body)
    }

    pub fn docker_cmd(&self) -> Command {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"))
            .env_remove("DOCKER_CONTEXT");
        c
    }

    /// Imports the busybox rootfs as `name`.
    pub fn import_busybox(&self, name: &str) {
        self.berth(&["import", &busybox_tar().display().to_string(), name]).ok();
    }

    /// A daemon with `busybox:latest` ready.
    pub fn with_busybox() -> Daemon {
        let d = Daemon::start();
        d.import_busybox("busybox:latest");
        d
    }

    /// Removes every container, then stops the daemon and anything it left running.
    fn teardown(&mut self) {
        if self.child.is_some() {
            // The CRI's pods and containers are listed only when their namespace is asked for.
            let ids = self.berth(&["ps", "-aq", "--no-trunc"]).stdout
                + &self.berth(&["ps", "-aq", "--no-trunc", "--filter", "label=io.berth.namespace"]).stdout;
            let ids: Vec<&str> = ids.lines().filter(|l| !l.is_empty()).collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f"];
                args.extend(ids);
                let _ = self.berth(&args);
            }
        }
        if self.child.is_some() {
            let nets = self.berth(&["network", "ls", "-q", "--filter", "type=custom"]).stdout;
            for n in nets.lines().filter(|l| !l.is_empty()) {
                let _ = self.berth(&["network", "rm", n]);
            }
        }
        if self.child.is_some() {
            let vols = self.berth(&["volume", "ls", "-q"]).stdout;
            for v in vols.lines().filter(|l| !l.is_empty()) {
                let _ = self.berth(&["volume", "rm", "-f", v]);
            }
        }
        self.kill();
        // Shims left behind (live restore keeps them) are found by their socket directory.
        kill_shims(&self.exec_root());
        let in_ns = |args: &[&str]| {
            let mut c = match &self.netns {
                Some(ns) => in_netns(ns, args[0]),
                None => Command::new(args[0]),
            };
            let _ = c.args(&args[1..]).stdout(Stdio::null()).stderr(Stdio::null()).status();
        };
        in_ns(&["ip", "link", "del", &self.bridge]);
        in_ns(&["nft", "delete", "table", "inet", &table_for(&self.data_root())]);
        // The daemon's iptables chain (a concurrent change by another daemon can make one
        // command fail: it is retried while the chain is there).
        let chain = iptables_chain_for(&self.data_root());
        let ns_cmd = |args: &[&str]| -> bool {
            let mut c = match &self.netns {
                Some(ns) => in_netns(ns, args[0]),
                None => Command::new(args[0]),
            };
            c.args(&args[1..]).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
        };
        for cmd in ["iptables", "ip6tables"] {
            for _ in 0..5 {
                if !ns_cmd(&[cmd, "-w", "-S", &chain]) {
                    break;
                }
                while ns_cmd(&[cmd, "-w", "-D", "FORWARD", "-j", &chain]) {}
                ns_cmd(&[cmd, "-w", "-F", &chain]);
                ns_cmd(&[cmd, "-w", "-X", &chain]);
            }
        }
        if let Ok(rd) = std::fs::read_dir(self.exec_root().join("netns")) {
            for e in rd.flatten() {
                let _ = rustix::mount::unmount(e.path(), rustix::mount::UnmountFlags::DETACH);
            }
        }
        // Whatever is still mounted under the daemon's directories (volumes backed by a
        // bind or tmpfs) goes before the directories are deleted: deleting through a bind
        // would delete the host's files.
        unmount_under(self.dir.path());
        // Killed containers leave their cgroups a moment after the kill: retry for a while.
        for _ in 0..50 {
            let mut left = false;
            for ctrl in ["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "unified", ""] {
                let base = Path::new("/sys/fs/cgroup").join(ctrl).join(&self.cgroup_parent);
                remove_cgroup_tree(&base);
                left |= base.exists();
            }
            if !left {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

/// Detaches every mount at or below `dir`, deepest first.
pub fn unmount_under(dir: &Path) {
    let prefix = dir.display().to_string();
    let mut points: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(|p| p.replace("\\040", " ")))
        .filter(|p| p == &prefix || p.starts_with(&format!("{prefix}/")))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = rustix::mount::unmount(p.as_str(), rustix::mount::UnmountFlags::DETACH);
    }
}

/// A directory bound onto itself on the host, with the propagation asked for (`shared`,
/// `private`…): a mount point of its own for tests of bind propagation. Whatever is mounted
/// at or below it is detached when it goes.
pub struct HostMount(pub PathBuf);

impl HostMount {
    pub fn new(dir: &Path, propagation: &str) -> HostMount {
        std::fs::create_dir_all(dir).unwrap();
        let m = HostMount(dir.to_path_buf());
        let ok = |args: &[&str]| {
            let out = Command::new("mount").args(args).arg(dir).output().unwrap();
            assert!(out.status.success(), "mount {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        ok(&["--bind", dir.to_str().unwrap()]);
        ok(&[&format!("--make-{propagation}")]);
        m
    }

    pub fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for HostMount {
    fn drop(&mut self) {
        unmount_under(&self.0);
    }
}

/// Kills every berth-shim whose configuration lives under `exec_root`.
pub fn kill_shims(exec_root: &Path) {
    let needle = exec_root.display().to_string();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
            let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
            let cmd = String::from_utf8_lossy(&cmd);
            if cmd.contains("berth-shim")
                && cmd.contains(&needle)
                && let Some(p) = rustix::process::Pid::from_raw(pid)
            {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
        }
    }
}

fn run_with_stdin(cmd: &mut Command, input: &[u8]) -> Run {
    use std::io::Write;
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    let _ = writer.join();
    Run::from(out)
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// A ustar header for a regular file (mode 0644, root's) written byte by byte: for archives
/// berth's own writer would not produce (a name that climbs out, entries that are not
/// layers).
pub fn raw_tar_header(name: &[u8], size: u64) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name);
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| *b as u32).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

/// One tar member (see [`raw_tar_header`]) with its data, padded to whole blocks.
pub fn raw_tar_entry(name: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = raw_tar_header(name, data.len() as u64).to_vec();
    out.extend_from_slice(data);
    out.resize(512 + data.len().div_ceil(512) * 512, 0);
    out
}

/// A name unique to this test process and call, for objects that share a namespace.
pub fn unique(prefix: &str) -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    format!("{prefix}{}x{}", std::process::id(), N.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

/// A network namespace made by a test (another "host"), with lo up; deleted on drop.
pub struct TestNs(pub String);

impl TestNs {
    pub fn new(prefix: &str) -> TestNs {
        let name = unique(prefix);
        assert!(Command::new("ip").args(["netns", "add", &name]).status().unwrap().success());
        let ns = TestNs(name);
        ns.sh("ip link set lo up");
        ns
    }

    /// Runs a shell command inside the namespace; returns (success, stdout).
    pub fn sh(&self, cmd: &str) -> (bool, String) {
        sh_in(&self.0, cmd)
    }
}

/// A command that runs `program` in the network namespace `ns` (pinned by `ip netns add`)
/// and nothing else: unlike `ip netns exec`, which also gives it a new mount namespace with
/// a fresh /sys, the host's mounts stay in view, the cgroup hierarchies among them (a
/// daemon that cannot see the devices controller refuses every container).
pub fn in_netns(ns: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new("nsenter");
    c.arg(format!("--net=/run/netns/{ns}")).arg("--").arg(program);
    c
}

/// Runs a shell command inside the network namespace `ns`; returns (success, stdout).
pub fn sh_in(ns: &str, cmd: &str) -> (bool, String) {
    let o = Command::new("ip").args(["netns", "exec", ns, "sh", "-c", cmd]).output().unwrap();
    (o.status.success(), String::from_utf8_lossy(&o.stdout).into_owned())
}

impl Drop for TestNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// A TCP port free on IPv4 and IPv6 (a dual-stack socket on `::` takes it in both).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("[::]:0").unwrap().local_addr().unwrap().port()
}

/// One HTTP/1.0 GET of `/` at `addr`: the whole response, headers included.
pub fn http_get(addr: impl Into<std::net::SocketAddr>) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr.into(), std::time::Duration::from_secs(5))?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// What `addr` answers once a container's server is up (it needs a moment to bind).
pub fn until_serving(addr: impl Into<std::net::SocketAddr>) -> String {
    let addr = addr.into();
    for _ in 0..200 {
        if let Ok(r) = http_get(addr)
            && r.contains("200")
        {
            return r;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("nothing answered on {addr}");
}

/// Starts a detached container `name` whose busybox httpd answers `body` on port 80; returns
/// its ID.
pub fn web(d: &Daemon, name: &str, extra: &[&str], body: &str) -> String {
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(extra);
    let script = format!("mkdir -p /www && echo {body} > /www/index.html && exec httpd -f -p 80 -h /www");
    args.extend_from_slice(&["busybox", "sh", "-c", &script]);
    d.berth(&args).ok().trim().to_string()
}

/// A registry process (berth's, or another a test starts) on a loopback port, killed when
/// dropped.
pub struct Registry {
    pub child: Child,
    /// `127.0.0.1:<port>`
    pub addr: String,
    pub dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Registry {
    /// `berth registry serve` on a free port; `setup` may write files (an htpasswd) into the
    /// registry's directory first and returns the extra flags naming them.
    pub fn berth(setup: impl FnOnce(&Path) -> Vec<String>) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let extra = setup(dir.path());
        let mut child = Command::new(berth_bin())
            .args(["registry", "serve", "--addr", "127.0.0.1:0", "--root"])
            .arg(dir.path().join("data"))
            .args(&extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = loop {
            match lines.next() {
                Some(Ok(l)) => {
                    if let Some(a) = l.strip_prefix("berth registry: listening on ") {
                        break a.trim().to_string();
                    }
                }
                _ => panic!("berth registry exited before listening"),
            }
        };
        std::thread::spawn(move || for _ in lines.by_ref() {});
        Registry { child, addr, dir }
    }

    /// Without authentication.
    pub fn open() -> Registry {
        Registry::berth(|_| Vec::new())
    }

    /// With htpasswd basic auth for `user`/`pass` (and bearer tokens with `token`).
    pub fn with_htpasswd(user: &str, pass: &str, token: bool) -> Registry {
        let entry = format!("{user}:{}\n", bcrypt::hash(pass, 4).unwrap());
        Registry::berth(|d| {
            let p = d.join("htpasswd");
            std::fs::write(&p, entry).unwrap();
            let mut f = vec!["--htpasswd".to_string(), p.display().to_string()];
            if token {
                f.push("--token".into());
            }
            f
        })
    }
}

/// Removes a cgroup directory and the groups below it, deepest first (a cgroup directory
/// goes with `rmdir` once its children have; its files are the kernel's).
fn remove_cgroup_tree(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}
