//! Restart policies against every event that can end a container, and the daemon's own
//! restarts (live restore by default, Docker's stop-on-shutdown as an opt-out).
//!
//! | policy \ event  | exits 0 | exits 1 | user stop | daemon restart | killed while daemon down | host reboot | daemon stop, live-restore off |
//! |-----------------|---------|---------|-----------|----------------|--------------------------|-------------|-------------------------------|
//! | no              | stays   | stays   | stays     | keeps running  | stays exited (137)       | stays       | stays exited                  |
//! | always          | restart | restart | stays     | keeps running; restarted at boot even if user-stopped | restart | restart | restart |
//! | on-failure[:N]  | stays   | restart, N times at most | stays | keeps running | restart (137)    | restart     | stays exited (stopped cleanly) |
//! | unless-stopped  | restart | restart | stays     | keeps running; not restarted if user-stopped | restart | restart; not if user-stopped | restart |
//!
//! "Stays" is observed against a sibling that ends at the same moment and does restart: once
//! the sibling has restarted, the others have had the same chance.

use berth_integration::{Daemon, unique};
use std::time::{Duration, Instant};

const POLICIES: [&str; 4] = ["no", "always", "on-failure", "unless-stopped"];

/// `(status, restart count, pid)` of a container.
fn state(d: &Daemon, name: &str) -> (String, u64, u64) {
    let out = d.berth(&["inspect", "-f", "{{.State.Status}} {{.RestartCount}} {{.State.Pid}}", name]).ok();
    let mut it = out.split_whitespace();
    (
        it.next().unwrap_or("").to_string(),
        it.next().unwrap_or("0").parse().unwrap(),
        it.next().unwrap_or("0").parse().unwrap(),
    )
}

/// Waits (up to a minute) until the container's state satisfies `pred`.
#[track_caller]
fn until(d: &Daemon, name: &str, what: &str, pred: impl Fn(&str, u64) -> bool) {
    let start = Instant::now();
    loop {
        let (st, n, _) = state(d, name);
        if pred(&st, n) {
            return;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let why = d.berth(&["inspect", "-f", "{{.State.ExitCode}} {{.State.Error}}", name]).ok();
            panic!("{name} never became {what}: status {st}, restarts {n}, exit code and error: {why}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn running_again(d: &Daemon, name: &str) {
    until(d, name, "restarted", |st, n| st == "running" && n >= 1);
}

/// One container per policy running `script`, named `<prefix>-<policy>`.
fn one_per_policy(d: &Daemon, prefix: &str, script: &str, extra: &[&str]) -> Vec<(String, String)> {
    POLICIES
        .iter()
        .map(|p| {
            let name = format!("{prefix}-{p}");
            let mut args = vec!["run", "-d", "--name", &name, "--restart", p];
            args.extend_from_slice(extra);
            args.extend_from_slice(&["busybox", "sh", "-c", script]);
            d.berth(&args).ok();
            (p.to_string(), name)
        })
        .collect()
}

fn name_of<'a>(set: &'a [(String, String)], policy: &str) -> &'a str {
    &set.iter().find(|(p, _)| p == policy).unwrap().1
}

#[test]
fn exits_follow_the_policy_with_growing_back_off_and_a_retry_limit() {
    let d = Daemon::with_busybox();
    let zero = one_per_policy(&d, &unique("zero"), "exit 0", &[]);
    until(&d, name_of(&zero, "always"), "restarted twice", |_, n| n >= 2);
    until(&d, name_of(&zero, "unless-stopped"), "restarted twice", |_, n| n >= 2);
    for p in ["no", "on-failure"] {
        assert_eq!(state(&d, name_of(&zero, p)).0, "exited", "{p} after exit 0");
        assert_eq!(state(&d, name_of(&zero, p)).1, 0, "{p} after exit 0");
    }

    let one = one_per_policy(&d, &unique("one"), "exit 1", &[]);
    for p in ["always", "on-failure", "unless-stopped"] {
        until(&d, name_of(&one, p), "restarted", |_, n| n >= 1);
    }
    assert_eq!(state(&d, name_of(&one, "no")).1, 0);

    // on-failure:2 gives up after two restarts, and says so in inspect.
    let limited = unique("limited");
    d.berth(&["run", "-d", "--name", &limited, "--restart", "on-failure:2", "busybox", "sh", "-c", "exit 3"]).ok();
    until(&d, &limited, "exited after 2 restarts", |st, n| st == "exited" && n == 2);
    assert_eq!(
        d.berth(&[
            "inspect",
            "-f",
            "{{.State.ExitCode}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}",
            &limited
        ])
        .ok()
        .trim(),
        "3 on-failure:2"
    );
    let ps = d.berth(&["ps", "-a", "--filter", &format!("name={limited}"), "--format", "{{.Status}}"]).ok();
    assert!(ps.starts_with("Exited (3)"), "{ps}");
}

#[test]
fn a_user_stop_is_respected_by_every_policy() {
    let d = Daemon::with_busybox();
    let set = one_per_policy(&d, &unique("stop"), "sleep 1000", &[]);
    for (_, name) in &set {
        d.berth(&["stop", "-t", "1", name]).ok();
    }
    // A sibling that is killed (not stopped) at the same time shows restarts still happen.
    let witness = unique("witness");
    d.berth(&["run", "-d", "--name", &witness, "--restart", "always", "busybox", "sleep", "1000"]).ok();
    let (_, _, pid) = state(&d, &witness);
    rustix::process::kill_process(rustix::process::Pid::from_raw(pid as i32).unwrap(), rustix::process::Signal::KILL)
        .unwrap();
    running_again(&d, &witness);
    for (p, name) in &set {
        assert_eq!(state(&d, name).0, "exited", "{p} after stop");
        assert_eq!(state(&d, name).1, 0, "{p} after stop");
    }
    // update --restart changes the policy of an existing container.
    d.berth(&["update", "--restart", "on-failure:4", name_of(&set, "no")]).ok();
    let policy = d
        .berth(&[
            "inspect",
            "-f",
            "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}",
            name_of(&set, "no"),
        ])
        .ok();
    assert_eq!(policy.trim(), "on-failure:4");
    let err = d.berth(&["run", "--rm", "--restart", "always", "busybox", "true"]).fails();
    assert!(err.to_lowercase().contains("conflicting options") && err.contains("--rm"), "{err}");
}

#[test]
fn a_daemon_restart_keeps_containers_and_restarts_always_ones_a_user_stopped() {
    let mut d = Daemon::with_busybox();
    let up = one_per_policy(&d, &unique("up"), "sleep 1000", &[]);
    let stopped = one_per_policy(&d, &unique("stopped"), "sleep 1000", &[]);
    for (_, name) in &stopped {
        d.berth(&["stop", "-t", "1", name]).ok();
    }
    let pids: Vec<u64> = up.iter().map(|(_, n)| state(&d, n).2).collect();
    d.restart();
    for ((p, name), pid) in up.iter().zip(pids) {
        assert_eq!(state(&d, name), ("running".to_string(), 0, pid), "{p}: the same process, never restarted");
    }
    until(&d, name_of(&stopped, "always"), "started at daemon start", |st, _| st == "running");
    for p in ["no", "on-failure", "unless-stopped"] {
        assert_eq!(state(&d, name_of(&stopped, p)).0, "exited", "{p} stopped by the user stays stopped");
    }
    // exec, logs, stats and attach work on re-adopted containers.
    assert_eq!(d.berth(&["exec", name_of(&up, "no"), "echo", "adopted"]).ok(), "adopted\n");
    let stats = d.berth(&["stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", name_of(&up, "always")]).ok();
    assert_eq!(stats.trim(), format!("{} 1", name_of(&up, "always")));
    let echo = unique("echo");
    d.berth(&[
        "run",
        "-d",
        "-i",
        "--name",
        &echo,
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo ready; while read l; do echo got $l; done",
    ])
    .ok();
    d.restart();
    assert_eq!(d.berth(&["logs", &echo]).ok(), "ready\n");
    let out = d.berth_stdin(&["attach", &echo], b"one\ntwo\n").ok();
    assert_eq!(out, "got one\ngot two\n");
}

#[test]
fn containers_that_die_while_the_daemon_is_down_get_their_policy_at_start() {
    let mut d = Daemon::with_busybox();
    let set = one_per_policy(&d, &unique("down"), "sleep 1000", &[]);
    let pids: Vec<u64> = set.iter().map(|(_, n)| state(&d, n).2).collect();
    d.kill();
    for pid in &pids {
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(*pid as i32).unwrap(),
            rustix::process::Signal::KILL,
        )
        .unwrap();
    }
    // The shims reap them; wait until the processes are gone.
    for pid in &pids {
        let start = Instant::now();
        while std::path::Path::new(&format!("/proc/{pid}")).exists() {
            assert!(start.elapsed() < Duration::from_secs(30), "process {pid} survived SIGKILL");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    d.spawn();
    for p in ["always", "on-failure", "unless-stopped"] {
        running_again(&d, name_of(&set, p));
    }
    let no = name_of(&set, "no");
    assert_eq!(
        d.berth(&["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}", no]).ok().trim(),
        "exited 137 0"
    );
}

#[test]
fn after_a_host_reboot_policies_bring_containers_back() {
    let mut d = Daemon::with_busybox();
    let up = one_per_policy(&d, &unique("boot"), "sleep 1000", &[]);
    let stopped = unique("boot-stopped");
    d.berth(&["run", "-d", "--name", &stopped, "--restart", "unless-stopped", "busybox", "sleep", "1000"]).ok();
    d.berth(&["stop", "-t", "1", &stopped]).ok();
    d.crash_host();
    d.spawn();
    for p in ["always", "on-failure", "unless-stopped"] {
        running_again(&d, name_of(&up, p));
    }
    assert_eq!(state(&d, name_of(&up, "no")).0, "exited");
    assert_eq!(state(&d, &stopped).0, "exited");
    // The restarted containers are fully usable.
    assert_eq!(d.berth(&["exec", name_of(&up, "always"), "echo", "back"]).ok(), "back\n");
}

#[test]
fn with_live_restore_off_the_daemon_stops_containers_and_brings_them_back() {
    let mut d = Daemon::with_busybox();
    d.set_config(r#""live-restore": false"#);
    d.restart();
    let set = one_per_policy(&d, &unique("lr"), "trap 'exit 0' TERM; sleep 1000 & wait", &[]);
    let pids: Vec<u64> = set.iter().map(|(_, n)| state(&d, n).2).collect();
    d.stop();
    for pid in &pids {
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "stopping the daemon stopped the container");
    }
    d.spawn();
    until(&d, name_of(&set, "always"), "started", |st, _| st == "running");
    until(&d, name_of(&set, "unless-stopped"), "started", |st, _| st == "running");
    for p in ["no", "on-failure"] {
        assert_eq!(state(&d, name_of(&set, p)).0, "exited", "{p}");
    }
}

#[test]
fn shutdown_timeout_bounds_the_daemons_stop_with_live_restore_off() {
    let mut d = Daemon::with_busybox();
    d.set_config(r#""live-restore": false, "shutdown-timeout": 1"#);
    d.restart();
    let name = unique("stubborn");
    // PID 1 ignores SIGTERM, and asks for a minute before SIGKILL.
    d.berth(&["run", "-d", "--name", &name, "--network", "none", "--stop-timeout", "60", "busybox", "sleep", "1000"])
        .ok();
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    d.stop();
    d.spawn();
    assert_eq!(state(&d, &name).0, "exited");
    // It ended long before its own stop timeout: the daemon's shutdown-timeout cut the wait.
    let finished = d.berth(&["inspect", "-f", "{{.State.FinishedAt}}", &name]).ok();
    let o = std::process::Command::new("date").args(["-d", finished.trim(), "+%s"]).output().unwrap();
    let finished: u64 = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
    assert!(
        finished < before + 30,
        "killed at shutdown-timeout, not after the 60 s stop timeout ({} s)",
        finished - before
    );
}

#[test]
fn a_corrupt_daemon_config_is_a_clear_error_and_changes_nothing() {
    let mut d = Daemon::with_busybox();
    let name = unique("kept");
    d.berth(&["create", "--name", &name, "busybox", "true"]).ok();
    d.stop();
    let config = d.dir.path().join("daemon.json");
    let good = std::fs::read_to_string(&config).unwrap();
    for (bad, needle) in [
        ("{\"bridge\": ", "daemon.json"),
        ("{\"no-such-key\": 1}", "no-such-key"),
        ("{\"live-restore\": \"yes\"}", "live-restore"),
    ] {
        std::fs::write(&config, bad).unwrap();
        let out = std::process::Command::new(berth_integration::berth_bin())
            .args([
                "daemon",
                "--data-root",
                &d.data_root().display().to_string(),
                "--exec-root",
                &d.exec_root().display().to_string(),
            ])
            .args([
                "-H",
                &d.host(),
                "--config-file",
                &config.display().to_string(),
                "--cgroup-parent",
                &d.cgroup_parent,
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "started with {bad:?}");
        assert!(err.contains(needle), "{bad:?}: {err}");
    }
    std::fs::write(&config, good).unwrap();
    d.spawn();
    assert_eq!(d.berth(&["ps", "-a", "--format", "{{.Names}}"]).ok().trim(), name, "nothing stored was touched");
}
