//! Interoperability with a real Docker (Debian's docker.io, started privately by the test
//! on its own data root and socket, with no networking of its own): image archives move
//! both ways with their tags and run on the other engine.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_integration::{Daemon, unique, unmount_under};

/// A private dockerd; killed, with its containerd, and unmounted on drop.
struct Dockerd {
    dir: tempfile::TempDir,
    child: Child,
}

impl Dockerd {
    /// Starts one, or says why it cannot.
    fn start() -> Result<Dockerd, String> {
        if Command::new("dockerd").arg("--version").output().is_err() {
            return Err("dockerd is not installed (Debian's docker.io)".into());
        }
        let dir = tempfile::Builder::new().prefix("bdk").tempdir_in("/tmp").unwrap();
        let p = |s: &str| dir.path().join(s).display().to_string();
        let child = Command::new("dockerd")
            .args([
                "--data-root",
                &p("data"),
                "--exec-root",
                &p("run"),
                "--pidfile",
                &p("pid"),
                "-H",
                &format!("unix://{}", p("d.sock")),
            ])
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--ip-masq=false",
                "--bridge=none",
                "--storage-driver=overlay2",
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("log")).unwrap())
            .spawn()
            .map_err(|e| format!("starting dockerd: {e}"))?;
        let mut d = Dockerd { dir, child };
        let start = Instant::now();
        loop {
            if d.cli(&["version"]).status.success() {
                return Ok(d);
            }
            if let Ok(Some(st)) = d.child.try_wait() {
                return Err(format!(
                    "dockerd exited ({st}): {}",
                    std::fs::read_to_string(d.dir.path().join("log")).unwrap_or_default()
                ));
            }
            if start.elapsed() > Duration::from_secs(60) {
                return Err("dockerd did not answer within a minute".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("d.sock")
    }

    fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .arg("-H")
            .arg(format!("unix://{}", self.socket().display()))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let o = self.cli(args);
        assert!(o.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Its containerd and shims are found by the directory they were given.
        let needle = self.dir.path().display().to_string();
        if let Ok(rd) = std::fs::read_dir("/proc") {
            for e in rd.flatten() {
                let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
                let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                if String::from_utf8_lossy(&cmd).contains(&needle)
                    && let Some(p) = rustix::process::Pid::from_raw(pid)
                {
                    let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                }
            }
        }
        unmount_under(self.dir.path());
    }
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn image_archives_move_between_berth_and_docker_both_ways() {
    let docker = match Dockerd::start() {
        Ok(d) => d,
        Err(why) => {
            eprintln!("skipping: {why}");
            return;
        }
    };
    let d = Daemon::with_busybox();
    let work = tempfile::tempdir().unwrap();

    // berth → Docker: a two-layer image with two tags.
    let c = unique("mk");
    d.berth(&["run", "--name", &c, "--network", "none", "busybox", "sh", "-c", "echo made-by-berth > /marker"]).ok();
    d.berth(&["commit", "-c", "CMD [\"cat\", \"/marker\"]", &c, "frommberth:1"]).ok();
    d.berth(&["tag", "frommberth:1", "frommberth:also"]).ok();
    let a = work.path().join("berth.tar");
    d.berth(&["save", "-o", &path(&a), "frommberth:1", "frommberth:also"]).ok();
    let out = docker.ok(&["load", "-i", &path(&a)]);
    assert!(out.contains("Loaded image: frommberth:1") && out.contains("Loaded image: frommberth:also"), "{out}");
    assert_eq!(docker.ok(&["run", "--rm", "--network", "none", "frommberth:also"]), "made-by-berth\n");
    let berth_id = d.berth(&["image", "inspect", "-f", "{{.Id}}", "frommberth:1"]).ok();
    assert_eq!(
        docker.ok(&["image", "inspect", "-f", "{{.Id}}", "frommberth:1"]),
        berth_id,
        "the same config, the same ID"
    );

    // Docker → berth: Docker's own archive of an image it built from a container.
    docker.ok(&[
        "run",
        "--name",
        "dk",
        "--network",
        "none",
        "frommberth:1",
        "sh",
        "-c",
        "echo made-by-docker > /marker2",
    ]);
    docker.ok(&["commit", "-c", "CMD [\"cat\", \"/marker\", \"/marker2\"]", "dk", "fromdocker:2"]);
    let b = work.path().join("docker.tar");
    docker.ok(&["save", "-o", &path(&b), "fromdocker:2"]);
    d.berth(&["rmi", "frommberth:1", "frommberth:also"]).ok();
    let out = d.berth(&["load", "-i", &path(&b)]).ok();
    assert!(out.contains("Loaded image: fromdocker:2"), "{out}");
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", "fromdocker:2"]).ok(), "made-by-berth\nmade-by-docker\n");
    let hist = d.berth(&["history", "-q", "fromdocker:2"]).ok();
    assert!(hist.lines().count() >= 2, "{hist}");
}
