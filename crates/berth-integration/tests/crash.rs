//! Crash safety: the daemon killed with SIGKILL in the middle of writes (import, load, commit,
//! create, rm, build) leaves a store that the next start repairs, and `system check` finds
//! (and `--repair` removes) damage.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use berth_integration::{Daemon, berth_bin, busybox_tar, unique};

/// A pseudo-random number below `n` (the clock's nanoseconds; no crate needed).
fn random_below(n: u64) -> u64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64;
    (t ^ (t >> 7)).wrapping_mul(0x9e3779b97f4a7c15) % n
}

/// A root filesystem tar: busybox plus `mb` MiB of incompressible data, so that writing it
/// takes long enough to be interrupted.
fn big_rootfs_tar(dir: &Path, mb: usize) -> std::path::PathBuf {
    let root = dir.join("root");
    std::fs::create_dir_all(&root).unwrap();
    assert!(Command::new("tar").arg("-xf").arg(busybox_tar()).arg("-C").arg(&root).status().unwrap().success());
    let mut data = vec![0u8; mb << 20];
    let mut x: u64 = 0x2545f4914f6cdd1d;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    std::fs::write(root.join("ballast"), data).unwrap();
    let tar = dir.join("big.tar");
    assert!(Command::new("tar").arg("-cf").arg(&tar).arg("-C").arg(&root).arg(".").status().unwrap().success());
    tar
}

/// Everything `images` lists runs, `system check` is clean, and containers can be removed.
#[track_caller]
fn assert_consistent(d: &Daemon) {
    let out = d.berth(&["system", "check"]);
    assert_eq!(out.code, 0, "system check after a crash: {} {}", out.stdout, out.stderr);
    for id in d.berth(&["images", "-q", "--no-trunc"]).ok().lines() {
        d.berth(&["run", "--rm", "--network", "none", id, "true"]).ok();
    }
    for id in d.berth(&["ps", "-aq"]).ok().lines() {
        d.berth(&["rm", "-f", id]).ok();
    }
}

#[test]
fn killing_the_daemon_mid_write_leaves_a_consistent_store() {
    let mut d = Daemon::with_busybox();
    let work = tempfile::tempdir().unwrap();
    let tar = big_rootfs_tar(work.path(), 24);
    let saved = work.path().join("saved.tar");
    d.berth(&["import", &tar.display().to_string(), "big:saved"]).ok();
    d.berth(&["save", "-o", &saved.display().to_string(), "big:saved"]).ok();
    d.berth(&["rmi", "big:saved"]).ok();

    let ops = ["import", "load", "commit", "create", "rm", "build"];
    let ctx = work.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN head -c 8000000 /dev/urandom > /blob\nCOPY Dockerfile /\n",
    )
    .unwrap();
    // Two rounds per operation in the suite; BERTH_CRASH_ROUNDS=50 for a long run.
    let rounds: usize = std::env::var("BERTH_CRASH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    for round in 0..ops.len() * rounds {
        let op = ops[round % ops.len()];
        // Set up what the operation works on (outside the crash window).
        let name = unique("crash");
        if op == "commit" || op == "rm" {
            d.berth(&[
                "run",
                "--name",
                &name,
                "--network",
                "none",
                "busybox",
                "sh",
                "-c",
                "head -c 8000000 /dev/urandom > /blob",
            ])
            .ok();
        }
        let args: Vec<String> = match op {
            "import" => vec!["import".into(), tar.display().to_string(), format!("{name}:img")],
            "load" => vec!["load".into(), "-i".into(), saved.display().to_string()],
            "commit" => vec!["commit".into(), name.clone(), format!("{name}:committed")],
            "create" => vec![
                "create".into(),
                "--name".into(),
                name.clone(),
                "-v".into(),
                "/anon".into(),
                "busybox".into(),
                "true".into(),
            ],
            "build" => vec![
                "build".into(),
                "--no-cache".into(),
                "--network".into(),
                "none".into(),
                "-t".into(),
                format!("{name}:built"),
                ctx.display().to_string(),
            ],
            _ => vec!["rm".into(), "-v".into(), name.clone()],
        };
        let mut child = Command::new(berth_bin())
            .arg("-H")
            .arg(d.host())
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Anywhere from before the request arrives to after it is done.
        std::thread::sleep(Duration::from_millis(random_below(250)));
        d.kill();
        let _ = child.wait();
        d.spawn();
        assert_consistent(&d);
        // Whatever survived is whole; clean up for the next round.
        let _ = d.berth(&[
            "rmi",
            "-f",
            &format!("{name}:img"),
            &format!("{name}:committed"),
            &format!("{name}:built"),
            "big:saved",
        ]);
    }
}

#[test]
fn system_check_finds_damage_and_repair_removes_it() {
    let d = Daemon::with_busybox();
    let c = unique("dmg");
    d.berth(&[
        "run",
        "--name",
        &c,
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "mkdir /data && echo original > /data/f",
    ])
    .ok();
    d.berth(&["commit", &c, "damaged:1"]).ok();
    d.berth(&["rm", &c]).ok();
    assert_eq!(d.berth(&["system", "check"]).ok().lines().last(), Some("no problems found"));

    // Flip the content of a file inside the committed layer, behind the daemon's back.
    let top = d.berth(&["image", "inspect", "-f", "{{index .RootFS.Layers 1}}", "damaged:1"]).ok();
    let hex = top.trim().trim_start_matches("sha256:");
    let file = d.data_root().join("snapshots/layers").join(&hex[..16]).join("diff/data/f");
    std::fs::write(&file, "tampered\n").unwrap();

    let out = d.berth(&["system", "check"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.stdout.contains(&format!("layer {} does not match its digest", top.trim())), "{}", out.stdout);
    let out = d.berth(&["system", "check", "--repair"]).ok();
    assert!(out.contains("repaired: removed image"), "{out}");
    let err = d.berth(&["image", "inspect", "damaged:1"]).fails();
    assert!(err.contains("No such image"), "{err}");
    assert_eq!(d.berth(&["system", "check"]).ok().lines().last(), Some("no problems found"));
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", "busybox", "echo", "still fine"]).ok(), "still fine\n");
}

/// Processes whose command line is exactly `args` (NUL-separated, as /proc shows it).
fn processes_running(args: &[&str]) -> Vec<u32> {
    let want: Vec<u8> = args.iter().flat_map(|a| a.bytes().chain([0])).collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
        .collect()
}

/// Docker removes every `--rm` container that is not running when the daemon starts: one
/// created with `--rm` and never started, and one whose `run --rm` was in flight when the
/// daemon was killed (at a random moment), are gone after the restart, anonymous volumes
/// and all, and stay gone.
#[test]
fn rm_containers_do_not_survive_a_daemon_crash() {
    let mut d = Daemon::with_busybox();
    let rounds: usize = std::env::var("BERTH_CRASH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(50);
    for _ in 0..rounds {
        let (created, inflight) = (unique("rmc"), unique("rmf"));
        d.berth(&["create", "--rm", "--name", &created, "--network", "none", "-v", "/anon", "busybox", "true"]).ok();
        let mut child = Command::new(berth_bin())
            .arg("-H")
            .arg(d.host())
            .args(["run", "--rm", "--name", &inflight, "--network", "none", "-v", "/anon", "busybox", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(random_below(150)));
        d.kill();
        let _ = child.wait();
        d.spawn();
        for name in [&created, &inflight] {
            // Gone now, or (the in-flight one, if it was running and adopted) once it ends.
            let (status, body) = d.api("POST", &format!("/containers/{name}/wait?condition=removed"), b"");
            assert!(status == 404 || status == 200, "{name}: {status} {body}");
        }
        assert_eq!(d.berth(&["ps", "-aq"]).ok(), "", "no --rm container is left");
        assert_eq!(d.berth(&["volume", "ls", "-q"]).ok(), "", "their anonymous volumes went with them");
    }
    // And they stay gone over another restart.
    d.restart();
    assert_eq!(d.berth(&["ps", "-aq"]).ok(), "");
}

/// SIGKILL to the daemon during `docker start` must not leave a container process that no
/// daemon tracks: after the restart the container is either running (and `stop` and `rm`
/// end its process) or not (and no process of it is left). 50 rounds: every other one kills
/// the daemon the moment the container's shim is listening (its process is being created
/// and the daemon has not heard of it yet), the others at a random moment of the start.
#[test]
fn a_start_cut_short_by_a_daemon_crash_leaves_no_untracked_process() {
    let mut d = Daemon::with_busybox();
    let rounds: usize = std::env::var("BERTH_CRASH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(50);
    let (mut up, mut down) = (0, 0);
    for round in 0..rounds {
        let name = unique("start");
        // A duration of its own, to find this container's process by its command line.
        let secs = format!("{}", 3_600_000 + std::process::id() as u64 * 100 + round as u64);
        let cmd = ["sleep", secs.as_str()];
        let id = d.berth(&["create", "--name", &name, "--network", "none", "busybox", "sleep", &secs]).ok();
        let socket = d.exec_root().join("sock").join(format!("{}.sock", id.trim()));
        let mut child = Command::new(berth_bin())
            .arg("-H")
            .arg(d.host())
            .args(["start", &name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        if round % 2 == 0 {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while !socket.exists() && std::time::Instant::now() < deadline {
                std::thread::yield_now();
            }
            assert!(socket.exists(), "the shim never listened");
        } else {
            std::thread::sleep(Duration::from_millis(random_below(60)));
        }
        d.kill();
        let _ = child.wait();
        d.spawn();
        let running = d.berth(&["inspect", "-f", "{{.State.Running}} {{.State.Pid}}", &name]).ok();
        if running.starts_with("true") {
            up += 1;
            let pid: u32 = running.trim().split(' ').nth(1).unwrap().parse().unwrap();
            assert_eq!(processes_running(&cmd), vec![pid], "the running container's process is the one inspect names");
            d.berth(&["stop", "-t", "0", &name]).ok();
        } else {
            down += 1;
            assert_eq!(running.trim(), "false 0");
            assert_eq!(processes_running(&cmd), Vec::<u32>::new(), "round {round}: a process the daemon does not know");
            // And it can still be started.
            d.berth(&["start", &name]).ok();
            d.berth(&["stop", "-t", "0", &name]).ok();
        }
        d.berth(&["rm", &name]).ok();
        assert_eq!(processes_running(&cmd), Vec::<u32>::new(), "round {round}: rm left the process running");
    }
    eprintln!("{up} rounds found the container running after the restart, {down} not");
}
