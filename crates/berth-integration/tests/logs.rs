//! `docker logs` and the log an attach replays (issue 16, points 4 and 21): the daemon reads
//! a log a line at a time, whatever its size, and `--tail` from its end.

use std::io::Read;
use std::process::Stdio;

use berth_integration::{Daemon, unique};

/// A field of /proc/<pid>/status, in kB.
fn status_kb(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in the daemon's status"))
}

/// How much the daemon's peak RSS grows while `f` runs, in MB: the peak is reset first
/// (`5` to clear_refs) and compared with the RSS then.
fn peak_growth_mb(pid: u32, f: impl FnOnce()) -> u64 {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
    let before = status_kb(pid, "VmHWM:");
    f();
    let after = status_kb(pid, "VmHWM:");
    eprintln!("daemon peak RSS: {before} kB before, {after} kB after");
    after.saturating_sub(before) / 1024
}

/// Counts the bytes and lines a command writes, without keeping them.
fn count_output(mut cmd: std::process::Command) -> (u64, u64, Vec<u8>) {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let (mut bytes, mut lines, mut last) = (0u64, 0u64, Vec::new());
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = out.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        bytes += n as u64;
        lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
        last.extend_from_slice(&buf[..n]);
        let keep = last.len().saturating_sub(256);
        last.drain(..keep);
    }
    assert!(child.wait().unwrap().success(), "{cmd:?}");
    (bytes, lines, last)
}

/// `docker logs --tail 1` of a ~200 MB log (rotated by max-size into five files) adds at
/// most 32 MB to the daemon's peak RSS (before: every file was read into memory first, the
/// peak grew by hundreds of MB). So do a whole `docker logs` and an attach with `logs=1`,
/// which stream it, and both still deliver every line in order.
#[test]
fn logs_of_a_200mb_log_keep_the_daemon_small() {
    let d = Daemon::with_busybox();
    let pid = d.pid().unwrap();
    let name = unique("biglog");
    // 200,000 lines of 1000 bytes: about 200 MB of payload, 215 MB of json-file log.
    d.docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "--log-opt",
        "max-size=50m",
        "--log-opt",
        "max-file=6",
        "busybox",
        "sh",
        "-c",
        "yes \"$(head -c 999 /dev/zero | tr '\\0' x)\" | head -n 200000; echo last line",
    ])
    .ok();
    assert_eq!(d.docker(&["wait", &name]).ok().trim(), "0");
    let log = d.docker(&["inspect", "-f", "{{.LogPath}}", &name]).ok();
    let total: u64 = std::fs::read_dir(std::path::Path::new(log.trim()).parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("json.log"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(total > 200_000_000, "the log holds {total} bytes");

    let mut tail = String::new();
    let grew = peak_growth_mb(pid, || tail = d.docker(&["logs", "--tail", "1", &name]).ok());
    assert_eq!(tail, "last line\n");
    assert!(grew <= 32, "logs --tail 1 raised the daemon's peak RSS by {grew} MB");

    let mut tail = String::new();
    let grew = peak_growth_mb(pid, || tail = d.docker(&["logs", "--tail", "2", &name]).ok());
    assert_eq!(tail, format!("{}\nlast line\n", "x".repeat(999)));
    assert!(grew <= 32, "logs --tail 2 raised the daemon's peak RSS by {grew} MB");

    let mut got = (0, 0, Vec::new());
    let mut cmd = d.docker_cmd();
    cmd.args(["logs", &name]);
    let grew = peak_growth_mb(pid, || got = count_output(cmd));
    assert_eq!((got.0, got.1), (200_000 * 1000 + 10, 200_001), "the whole log");
    assert!(got.2.ends_with(b"xxx\nlast line\n"));
    assert!(grew <= 32, "a whole docker logs raised the daemon's peak RSS by {grew} MB");

    // The attach route's log replay (logs=1, no live stream) of the same log.
    let mut cmd = std::process::Command::new("curl");
    cmd.args(["-sS", "--unix-socket"]).arg(&d.socket).args([
        "-X",
        "POST",
        &format!("http://berth/containers/{name}/attach?logs=1&stdout=1&stderr=1"),
    ]);
    let grew = peak_growth_mb(pid, || got = count_output(cmd));
    // Each line comes framed: an 8-byte header per line.
    assert_eq!(got.0, 200_001 * 8 + 200_000 * 1000 + 10, "the whole log, framed");
    assert!(got.2.ends_with(b"last line\n"));
    assert!(grew <= 32, "attach with logs=1 raised the daemon's peak RSS by {grew} MB");
    d.docker(&["rm", &name]).ok();
}

/// `--tail` counts lines from the end; a negative number (and "all") means every line, as
/// in Docker (berth printed nothing for `--tail -1`).
#[test]
fn logs_tail_minus_one_prints_everything() {
    let d = Daemon::with_busybox();
    let name = unique("tail");
    d.docker(&["run", "--name", &name, "--network", "none", "busybox", "sh", "-c", "echo a; echo b >&2; echo c"]).ok();
    let logs = |tail: &str| {
        let out = d.docker_cmd().args(["logs", "--tail", tail, &name]).output().unwrap();
        assert!(out.status.success(), "logs --tail {tail}");
        (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    assert_eq!(logs("-1"), ("a\nc\n".to_string(), "b\n".to_string()));
    assert_eq!(logs("all"), ("a\nc\n".to_string(), "b\n".to_string()));
    assert_eq!(logs("0"), (String::new(), String::new()));
    // Lines count across both streams, as Docker's tail does.
    assert_eq!(logs("2"), ("c\n".to_string(), "b\n".to_string()));
    d.docker(&["rm", &name]).ok();
}

/// `logs -f` follows a log through its rotations (every line once, in order, and it ends
/// when the container does); `--since` and `--until` take a line's own timestamp as
/// Docker does (since: from that line on; until: up to it).
#[test]
fn logs_follow_through_rotation_and_since_until() {
    let d = Daemon::with_busybox();
    let name = unique("follow");
    d.docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "--log-opt",
        "max-size=10k",
        "--log-opt",
        "max-file=100",
        "busybox",
        "sh",
        "-c",
        "i=1; while [ $i -le 3000 ]; do echo line $i; i=$((i+1)); done",
    ])
    .ok();
    let followed = d.docker(&["logs", "-f", &name]).ok();
    let want: String = (1..=3000).map(|i| format!("line {i}\n")).collect();
    assert_eq!(followed, want);
    let stamped = d.docker(&["logs", "-t", "--tail", "3", &name]).ok();
    let stamps: Vec<&str> = stamped.lines().map(|l| l.split_once(' ').unwrap().0).collect();
    assert_eq!(stamps.len(), 3, "{stamped}");
    assert_eq!(d.docker(&["logs", "--since", stamps[1], &name]).ok(), "line 2999\nline 3000\n");
    let until = d.docker(&["logs", "--until", stamps[1], &name]).ok();
    assert!(
        until.ends_with("line 2998\nline 2999\n") && until.starts_with("line 1\n"),
        "{}",
        &until[until.len() - 40..]
    );
    d.docker(&["rm", &name]).ok();
}

/// `logs -f` follows compressed rotations too: a rotated file it held is found again once
/// gzipped into a new file (by its first entry), and every file rotated after it is read.
#[test]
fn logs_follow_through_compressed_rotations() {
    let d = Daemon::with_busybox();
    let name = unique("gzfollow");
    let opts = ["--log-opt", "max-size=10k", "--log-opt", "max-file=100", "--log-opt", "compress=true"];
    let script = "i=1; while [ $i -le 3000 ]; do echo line $i; i=$((i+1)); done";
    let mut args = vec!["run", "-d", "--name", &name, "--network", "none"];
    args.extend(opts);
    args.extend(["busybox", "sh", "-c", script]);
    d.docker(&args).ok();
    let followed = d.docker(&["logs", "-f", &name]).ok();
    let want: String = (1..=3000).map(|i| format!("line {i}\n")).collect();
    assert!(followed == want, "{} lines of 3000", followed.lines().count());
    d.docker(&["rm", &name]).ok();
}

/// With `max-file=1` the log starts over when full; `logs -f` goes on with the new file (it
/// held the old one at its end, and read nothing more from a file truncated under it), and
/// ends with the container's last line. Lines rotated away before the follower got to them
/// are gone, as in Docker; those it shows are in order.
#[test]
fn logs_follow_a_single_file_log_as_it_starts_over() {
    let d = Daemon::with_busybox();
    let name = unique("onefile");
    d.docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "--log-opt",
        "max-size=10k",
        "--log-opt",
        "max-file=1",
        "busybox",
        "sh",
        "-c",
        "i=1; while [ $i -le 3000 ]; do echo line $i; i=$((i+1)); done",
    ])
    .ok();
    let followed = d.docker(&["logs", "-f", &name]).ok();
    let numbers: Vec<u32> = followed
        .lines()
        .map(|l| l.strip_prefix("line ").and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{l:?}")))
        .collect();
    assert_eq!(numbers.last(), Some(&3000), "the follower saw the last line");
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "in order, none twice");
    // The file holds at most max-size: the last lines, read back whole.
    let kept = d.docker(&["logs", &name]).ok();
    assert!(kept.ends_with("line 2999\nline 3000\n") && kept.len() < 10 * 1024, "{}", kept.len());
    d.docker(&["rm", &name]).ok();
}
