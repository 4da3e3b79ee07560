//! `run`: the first process is the container; its output, exit code, and configuration.

use berth_integration::{Daemon, unique};

#[test]
fn run_prints_output_and_returns_the_exit_code() {
    let d = Daemon::with_busybox();
    assert_eq!(d.berth(&["run", "--rm", "busybox", "echo", "hello from berth"]).ok(), "hello from berth\n");
    let r = d.berth(&["run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(r.code, 3);
    assert_eq!(r.stdout, "out\n");
    assert_eq!(r.stderr, "err\n");
}

#[test]
fn a_killed_process_exits_128_plus_the_signal() {
    let d = Daemon::with_busybox();
    let id = d.berth(&["run", "-d", "busybox", "sleep", "1000"]).ok();
    d.berth(&["kill", "-s", "KILL", id.trim()]).ok();
    assert_eq!(d.berth(&["wait", id.trim()]).ok(), "137\n");
    // A process killed by a signal it does not handle, inside the container, too.
    let r = d.berth(&["run", "--rm", "busybox", "sh", "-c", "sh -c 'kill -TERM $$'; exit $?"]);
    assert_eq!(r.code, 143, "{r:?}");
}

#[test]
fn rm_removes_the_container_after_it_exits() {
    let d = Daemon::with_busybox();
    let name = unique("rm");
    d.berth(&["run", "--rm", "--name", &name, "busybox", "true"]).ok();
    assert_eq!(d.berth(&["ps", "-aq", "--filter", &format!("name={name}")]).ok(), "");
}

#[test]
fn configuration_flags_reach_the_process() {
    let d = Daemon::with_busybox();
    let env_file = d.dir.path().join("env");
    std::fs::write(&env_file, "# comment\nFROM_FILE=yes\n").unwrap();
    let out = d
        .berth(&[
            "run",
            "--rm",
            "-e",
            "A=1",
            "--env-file",
            env_file.to_str().unwrap(),
            "-w",
            "/tmp/work",
            "-u",
            "nobody",
            "-h",
            "myhost",
            "busybox",
            "sh",
            "-c",
            "echo $A $FROM_FILE $(pwd) $(id -u) $(hostname) $HOSTNAME $HOME",
        ])
        .ok();
    assert_eq!(out, "1 yes /tmp/work 65534 myhost myhost /nonexistent\n");
}

#[test]
fn entrypoint_and_command_combine_like_docker() {
    let d = Daemon::with_busybox();
    d.berth(&[
        "import",
        "-c",
        "ENTRYPOINT [\"echo\", \"ep\"]",
        "-c",
        "CMD [\"default\"]",
        berth_integration::busybox_tar().to_str().unwrap(),
        "epimg",
    ])
    .ok();
    assert_eq!(d.berth(&["run", "--rm", "epimg"]).ok(), "ep default\n");
    assert_eq!(d.berth(&["run", "--rm", "epimg", "given"]).ok(), "ep given\n");
    assert_eq!(d.berth(&["run", "--rm", "--entrypoint", "echo", "epimg", "other"]).ok(), "other\n");
}

#[test]
fn detached_containers_run_in_the_background() {
    let d = Daemon::with_busybox();
    let id = d.berth(&["run", "-d", "busybox", "sleep", "1000"]).ok();
    let id = id.trim();
    assert_eq!(id.len(), 64);
    let ps = d.berth(&["ps", "--no-trunc", "-q"]).ok();
    assert!(ps.contains(id));
    assert_eq!(d.berth(&["inspect", "-f", "{{.State.Status}} {{.State.Running}}", id]).ok(), "running true\n");
}

#[test]
fn a_missing_command_exits_127_and_a_missing_image_is_reported() {
    let d = Daemon::with_busybox();
    let r = d.berth(&["run", "--rm", "busybox", "nosuchcmd"]);
    assert_eq!(r.code, 127, "{r:?}");
    assert!(r.stderr.contains("executable file not found in $PATH"), "{}", r.stderr);
    let r = d.berth(&["run", "--rm", "nosuchimage"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("nosuchimage"), "{}", r.stderr);
}

#[test]
fn names_are_unique() {
    let d = Daemon::with_busybox();
    let name = unique("dup");
    d.berth(&["create", "--name", &name, "busybox", "true"]).ok();
    let err = d.berth(&["create", "--name", &name, "busybox", "true"]).fails();
    assert!(err.contains("is already in use"), "{err}");
    let err = d.berth(&["create", "--name", "bad/name", "busybox", "true"]).fails();
    assert!(err.contains("Invalid container name"), "{err}");
}

#[test]
fn invalid_flag_values_are_refused_before_anything_is_created() {
    let d = Daemon::with_busybox();
    for args in [
        vec!["run", "--memory", "1k", "busybox", "true"],
        vec!["run", "--restart", "sometimes", "busybox", "true"],
        vec!["run", "--rm", "--restart", "always", "busybox", "true"],
        vec!["run", "--cap-add", "FLY", "busybox", "true"],
        vec!["run", "-p", "80:http", "busybox", "true"],
        vec!["run", "--ulimit", "nofile=2:1", "busybox", "true"],
        vec!["run", "-v", "relative/path:/x", "busybox", "true"],
    ] {
        let r = d.berth(&args);
        assert_ne!(r.code, 0, "{args:?} should fail");
        assert!(!r.stderr.is_empty(), "{args:?} should explain");
    }
    assert_eq!(d.berth(&["ps", "-aq"]).ok(), "");
}

#[test]
fn processes_start_with_signals_unblocked_with_and_without_init() {
    let d = Daemon::with_busybox();
    for init in [&[][..], &["--init"][..]] {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(init);
        // `timeout` must be able to kill its child: 143 is SIGTERM's status; a blocked
        // signal would let sleep finish and report 0.
        args.extend_from_slice(&[
            "busybox",
            "sh",
            "-c",
            "grep SigBlk /proc/self/status; timeout 1 sleep 60; echo status=$?",
        ]);
        let out = d.berth(&args).ok();
        assert!(out.contains("SigBlk:\t0000000000000000"), "{init:?}: {out}");
        assert!(out.contains("status=143"), "{init:?}: {out}");
    }
}

/// A chatty container's log rotates at max-size, keeps max-file files, and `logs` reads
/// across them in order.
#[test]
fn logs_rotate_and_read_across_files() {
    let d = Daemon::with_busybox();
    let name = unique("chatty");
    d.berth(&[
        "run",
        "--name",
        &name,
        "--network",
        "none",
        "--log-opt",
        "max-size=10k",
        "--log-opt",
        "max-file=3",
        "busybox",
        "sh",
        "-c",
        "i=1; while [ $i -le 2000 ]; do echo line $i; i=$((i+1)); done",
    ])
    .ok();
    let path = d.berth(&["inspect", "-f", "{{.LogPath}}", &name]).ok();
    let path = std::path::PathBuf::from(path.trim());
    let sizes: Vec<u64> = (0..4)
        .map(|n| if n == 0 { path.clone() } else { std::path::PathBuf::from(format!("{}.{n}", path.display())) })
        .map(|p| std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0))
        .collect();
    assert!(sizes[0] > 0 && sizes[1] > 0 && sizes[2] > 0, "three files: {sizes:?}");
    assert_eq!(sizes[3], 0, "no fourth file: {sizes:?}");
    assert!(sizes.iter().all(|s| *s <= 10 * 1024), "each at most max-size: {sizes:?}");
    let logs = d.berth(&["logs", &name]).ok();
    let lines: Vec<&str> = logs.lines().collect();
    assert_eq!(lines.last(), Some(&"line 2000"));
    let first: u32 = lines[0].trim_start_matches("line ").parse().unwrap();
    assert!(first > 1, "the oldest lines were rotated away");
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(*l, format!("line {}", first + i as u32), "in order across files");
    }
    assert_eq!(d.berth(&["logs", "--tail", "2", &name]).ok(), "line 1999\nline 2000\n");
}

/// Piped stdin: the input ends (EOF), the output still arrives whole — for run -i, exec -i
/// and start -ai, with berth's CLI and Docker's — and so does all the input.
#[test]
fn piped_stdin_ends_and_all_output_arrives() {
    let d = Daemon::with_busybox();
    let input: Vec<u8> = (0..2000).flat_map(|i| format!("line {i}\n").into_bytes()).collect();
    let want = String::from_utf8(input.clone()).unwrap();
    assert_eq!(d.berth_stdin(&["run", "-i", "--rm", "--network", "none", "busybox", "cat"], &input).ok(), want);
    assert_eq!(d.docker_stdin(&["run", "-i", "--rm", "--network", "none", "busybox", "cat"], &input).ok(), want);
    let name = unique("stdin");
    d.berth(&["run", "-d", "--name", &name, "--network", "none", "busybox", "sleep", "1000"]).ok();
    assert_eq!(
        d.berth_stdin(&["exec", "-i", &name, "sh", "-c", "cat; echo done"], &input).ok(),
        format!("{want}done\n")
    );
    assert_eq!(d.docker_stdin(&["exec", "-i", &name, "wc", "-l"], &input).ok().trim(), "2000");
    // More than a pipe holds (64 KiB): what the shim still buffers when the input ends is
    // written before the EOF (it used to be dropped).
    let big = vec![b'x'; 300_000];
    assert_eq!(d.berth_stdin(&["exec", "-i", &name, "wc", "-c"], &big).ok().trim(), "300000");
    let run_wc = ["run", "-i", "--rm", "--network", "none", "busybox", "wc", "-c"];
    assert_eq!(d.docker_stdin(&run_wc, &big).ok().trim(), "300000");
    let created = unique("startai");
    d.berth(&["create", "-i", "--name", &created, "--network", "none", "busybox", "wc", "-c"]).ok();
    assert_eq!(d.berth_stdin(&["start", "-ai", &created], &input).ok().trim(), input.len().to_string());
}

/// The `local` driver (and json-file with compress=true) gzips rotated files; `logs` reads
/// them; `--log-driver none` keeps nothing.
#[test]
fn local_and_compressed_logs_and_none() {
    let d = Daemon::with_busybox();
    let chatty = "i=1; while [ $i -le 1500 ]; do echo line $i; i=$((i+1)); done";
    for (name, opts) in [
        (unique("local"), vec!["--log-driver", "local", "--log-opt", "max-size=8k"]),
        (unique("gz"), vec!["--log-opt", "max-size=8k", "--log-opt", "compress=true"]),
    ] {
        let mut args = vec!["run", "--name", &name, "--network", "none"];
        args.extend(opts.iter().copied());
        args.extend(["busybox", "sh", "-c", chatty]);
        d.berth(&args).ok();
        let path = d.berth(&["inspect", "-f", "{{.LogPath}}", &name]).ok();
        let path = path.trim();
        assert!(std::path::Path::new(&format!("{path}.1.gz")).exists(), "{name}: rotated files are gzipped");
        assert!(!std::path::Path::new(&format!("{path}.1")).exists(), "{name}");
        let logs = d.berth(&["logs", &name]).ok();
        assert_eq!(logs.lines().last(), Some("line 1500"), "{name}");
        let first: u32 = logs.lines().next().unwrap().trim_start_matches("line ").parse().unwrap();
        assert_eq!(logs.lines().count() as u32, 1500 - first + 1, "{name}: contiguous across files");
    }
    let quiet = unique("none");
    d.berth(&["run", "--name", &quiet, "--network", "none", "--log-driver", "none", "busybox", "echo", "hidden"]).ok();
    let r = d.berth(&["logs", &quiet]);
    assert!(!r.stdout.contains("hidden"));
}

/// `system df -v` reports what `du` measures for a volume, and inspect -s what a container
/// changed (df's table rounds to Docker's units).
#[test]
fn system_df_agrees_with_du() {
    let d = Daemon::with_busybox();
    let vol = unique("dfvol");
    let name = unique("dfc");
    d.berth(&[
        "run",
        "--name",
        &name,
        "--network",
        "none",
        "-v",
        &format!("{vol}:/v"),
        "busybox",
        "sh",
        "-c",
        "head -c 3000000 /dev/zero > /v/data; head -c 1000000 /dev/zero > /changed",
    ])
    .ok();
    let du = |p: &str| -> u64 {
        let o = std::process::Command::new("du").args(["-s", "-b", p]).output().unwrap();
        String::from_utf8_lossy(&o.stdout).split_whitespace().next().unwrap().parse().unwrap()
    };
    let mountpoint = d.berth(&["volume", "inspect", "-f", "{{.Mountpoint}}", &vol]).ok();
    let vol_du = du(mountpoint.trim());
    let api = d.berth(&["inspect", "-s", "-f", "{{.SizeRw}}", &name]).ok();
    let size_rw: u64 = api.trim().parse().unwrap();
    assert!((1_000_000..1_100_000).contains(&size_rw), "container changes {size_rw} vs 1 MB written");
    let vols = d.docker(&["system", "df", "-v", "--format", "{{range .Volumes}}{{.Name}} {{.Size}}\n{{end}}"]).ok();
    let line = vols.lines().find(|l| l.starts_with(&vol)).unwrap_or_else(|| panic!("{vols}"));
    assert!(line.ends_with("3MB"), "df says {line}, du says {vol_du} bytes");
    assert!((3_000_000..3_100_000).contains(&vol_du), "{vol_du}");
}

#[test]
fn a_stop_that_waits_for_ever_does_not_hold_other_operations_back() {
    let d = Daemon::with_busybox();
    let name = unique("patient");
    // A process that ignores SIGTERM: `stop -t -1` waits until something else ends it.
    d.berth(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "trap '' TERM; while :; do sleep 1; done",
    ])
    .ok();
    let mut stop = d.docker_cmd();
    stop.args(["stop", "-t", "-1", &name]).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped());
    let mut stopping = stop.spawn().unwrap();
    // The stop signal has gone out once the kill event is there.
    let start = std::time::Instant::now();
    while !d
        .berth(&[
            "events",
            "--since",
            "1m",
            "--until",
            "0s",
            "--filter",
            &format!("container={name}"),
            "--filter",
            "event=kill",
            "--format",
            "{{.Action}}",
        ])
        .ok()
        .contains("kill")
    {
        assert!(start.elapsed() < std::time::Duration::from_secs(30), "the stop signal never went out");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Meanwhile the container can be updated, paused and unpaused (each given 30 s; they
    // used to wait for the stop).
    let mut failed = Vec::new();
    for args in [vec!["update", "--cpu-shares", "512", &name], vec!["pause", &name], vec!["unpause", &name]] {
        let out = std::process::Command::new("timeout")
            .args(["30", "docker"])
            .args(&args)
            .env("DOCKER_HOST", d.host())
            .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
            .env_remove("DOCKER_CONTEXT")
            .output()
            .unwrap();
        if !out.status.success() {
            failed.push(format!("{args:?}: {}", String::from_utf8_lossy(&out.stderr)));
        }
    }
    let still_stopping = stopping.try_wait().unwrap().is_none();
    // Ended by a kill (which takes no lock), so a failure below leaves nothing waiting.
    d.berth(&["kill", &name]).ok();
    assert!(failed.is_empty(), "{failed:?}");
    assert!(still_stopping, "stop -t -1 returned before the container ended");
    assert!(stopping.wait().unwrap().success());
    assert_eq!(d.berth(&["inspect", "-f", "{{.State.Status}}", &name]).ok().trim(), "exited");
}
