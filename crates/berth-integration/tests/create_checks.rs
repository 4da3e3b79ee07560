//! What dockerd checks when a container is created, and the answers clients act on: each
//! refusal through the docker CLI with dockerd's words (400, nothing created), the valid
//! combinations beside them accepted, the 404s a `create` may answer (only for the image:
//! the docker CLI pulls on any other), and dockerd's text for a user's mistake at start.

use berth_integration::{Daemon, unique};

/// Runs `docker create` with `args` and asserts it is refused with `want` in its message,
/// and that nothing was created.
#[track_caller]
fn refused(d: &Daemon, args: &[&str], want: &str) {
    let name = unique("chk");
    let mut full = vec!["create", "--name", name.as_str()];
    full.extend_from_slice(args);
    full.push("busybox");
    full.push("true");
    let run = d.docker(&full);
    let shown = format!("{}{}", run.stdout, run.stderr);
    if run.code == 0 {
        d.docker(&["rm", "-f", &name]);
    }
    assert_ne!(run.code, 0, "{args:?} was accepted");
    assert!(shown.contains(&format!("Error response from daemon: {want}")), "{args:?}: {shown}");
    assert!(!shown.contains("Unable to find image"), "{args:?}: the CLI took the answer for a missing image: {shown}");
    let ls = d.docker(&["ps", "-aq", "--filter", &format!("name=^{name}$")]).ok();
    assert!(ls.trim().is_empty(), "{args:?} left a container behind");
}

#[test]
fn dockerd_refusals_at_create() {
    let d = Daemon::with_busybox();
    let target = unique("netowner");
    d.docker(&["create", "--name", &target, "busybox", "sleep", "100"]).ok();
    let shared = format!("container:{target}");
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().display().to_string();
    let bind = |opts: &str| format!("{src}:/x{opts}");
    let cases: Vec<(Vec<String>, String)> = vec![
        (
            vec!["--network=host".into(), "--link".into(), format!("{target}:alias")],
            "conflicting options: host type networking can't be used with links. This would result in undefined behavior".into(),
        ),
        (
            vec![format!("--network={shared}"), "--link".into(), format!("{target}:alias")],
            "conflicting options: container type network can't be used with links. This would result in undefined behavior".into(),
        ),
        (vec![format!("--network={shared}"), "--dns".into(), "127.0.0.9".into()], "conflicting options: dns and the network mode".into()),
        (
            vec![format!("--network={shared}"), "-p".into(), "127.0.0.1:8080:80".into()],
            "conflicting options: port publishing and the container type network mode".into(),
        ),
        (
            vec![format!("--network={shared}"), "--expose".into(), "80".into()],
            "conflicting options: port exposing and the container type network mode".into(),
        ),
        (vec![format!("--network={shared}"), "--hostname".into(), "h".into()], "conflicting options: hostname and the network mode".into()),
        (
            vec![format!("--network={shared}"), "--add-host".into(), "a:127.0.0.9".into()],
            "conflicting options: custom host-to-IP mapping and the network mode".into(),
        ),
        (vec!["--uts=host".into(), "--hostname".into(), "h".into()], "conflicting options: hostname and the UTS mode".into()),
        (vec!["--cpuset-cpus".into(), "1-a".into()], "Invalid value 1-a for cpuset cpus: invalid format: 1-a".into()),
        (vec!["--cpuset-cpus".into(), "3-1".into()], "Invalid value 3-1 for cpuset cpus: invalid format: 3-1".into()),
        (vec!["--cpuset-cpus".into(), "4095".into()], "Requested CPUs are not available - requested 4095, available: ".into()),
        (vec!["--cpuset-mems".into(), "0,x".into()], "Invalid value 0,x for cpuset mems: invalid format: 0,x".into()),
        (vec!["-v".into(), bind(""), "-v".into(), "/tmp:/x".into()], "Duplicate mount point: /x".into()),
        (vec!["--tmpfs".into(), "/x".into(), "-v".into(), bind("")], "Duplicate mount point: /x".into()),
        (
            vec!["-v".into(), bind(":nocopy")],
            format!("invalid volume specification: '{}': invalid mount config for type \"bind\": field VolumeOptions must not be specified", bind(":nocopy")),
        ),
        (vec!["--memory".into(), "4m".into()], "Minimum memory limit allowed is 6MB".into()),
        (vec!["--memory-reservation".into(), "1m".into()], "Minimum memory reservation allowed is 6MB".into()),
        (
            vec!["--memory".into(), "10m".into(), "--memory-reservation".into(), "20m".into()],
            "Minimum memory limit can not be less than memory reservation limit, see usage".into(),
        ),
        (
            vec!["--cpu-period".into(), "100".into()],
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)".into(),
        ),
        (vec!["--cpu-quota".into(), "500".into()], "CPU cfs quota can not be less than 1ms (i.e. 1000)".into()),
        (vec!["--cpus".into(), "1".into(), "--cpu-quota".into(), "5000".into()], "Conflicting options: Nano CPUs and CPU Quota cannot both be set".into()),
        (vec!["--blkio-weight".into(), "5".into()], "Range of blkio weight is from 10 to 1000".into()),
        (vec!["--ipc".into(), "bogus".into()], "invalid IPC mode: bogus".into()),
        (vec!["--isolation".into(), "hyperv".into()], "invalid isolation (hyperv): linux only supports 'default'".into()),
        (vec!["--stop-signal".into(), "SIGNOPE".into()], "invalid signal: SIGNOPE".into()),
        (vec!["-w".into(), "relative".into()], "the working directory 'relative' is invalid, it needs to be an absolute path".into()),
        (vec!["--health-cmd".into(), "true".into(), "--health-interval".into(), "10us".into()], "Interval in Healthcheck cannot be less than 1ms".into()),
        (
            vec!["--cpu-rt-runtime".into(), "20000".into(), "--cpu-rt-period".into(), "10000".into()],
            // The period is checked against the runtime only where the kernel schedules
            // real-time groups (dockerd's sysinfo: cpu.rt_period_us in the cpu cgroup).
            if std::path::Path::new("/sys/fs/cgroup/cpu/cpu.rt_period_us").exists() {
                "cpu real-time runtime cannot be higher than cpu real-time period".into()
            } else {
                "kernel does not support CPU real-time scheduler".into()
            },
        ),
    ];
    for (args, want) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(&d, &args, want);
    }

    // What the checks must let through: host networking takes DNS servers, a hostname and
    // (discarded, with dockerd's warning) published ports; a shared namespace alone; a
    // cpuset on this host; a -v beside a --tmpfs elsewhere.
    let ok = unique("ok");
    d.docker(&[
        "create",
        "--name",
        &ok,
        "--network=host",
        "--dns",
        "127.0.0.9",
        "--hostname",
        "h",
        "-p",
        "127.0.0.1:8080:80",
        "--cpuset-cpus",
        "0",
        "--tmpfs",
        "/y",
        "-v",
        &bind(""),
        "busybox",
        "true",
    ])
    .ok();
    let ok2 = unique("ok");
    d.docker(&["create", "--name", &ok2, &format!("--network={shared}"), "busybox", "true"]).ok();

    // Through the API: malformed `Env` (the docker CLI refuses `-e =x` itself), volume options
    // on a bind mount (`--mount …,volume-nocopy` is refused by the CLI too), and dockerd's
    // container-wide MAC address before API 1.44.
    for (path, body, want) in [
        (
            "/v1.45/containers/create",
            r#"{"Image":"busybox","Env":["=x"]}"#.to_string(),
            "invalid environment variable: =x",
        ),
        (
            "/v1.45/containers/create",
            format!(
                r#"{{"Image":"busybox","HostConfig":{{"Mounts":[{{"Type":"bind","Source":"{src}","Target":"/x","VolumeOptions":{{"NoCopy":true}}}}]}}}}"#
            ),
            "VolumeOptions must not be specified on mount type \\\"bind\\\"",
        ),
        (
            "/v1.43/containers/create",
            r#"{"Image":"busybox","MacAddress":"02:42:ac:11:00:99","HostConfig":{"NetworkMode":"host"}}"#.to_string(),
            "conflicting options: mac-address and the network mode",
        ),
    ] {
        let (status, answer) = d.api("POST", path, body.as_bytes());
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(answer.contains(want), "{body}: {answer}");
    }
    let (status, answer) = d.api("GET", "/events?since=2000000000&until=1000000000", b"");
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("`since` time (2000000000) cannot be after `until` time (1000000000)"), "{answer}");

    // A user id outside dockerd's range is refused at start with its words, unwrapped.
    let bad_user = unique("baduser");
    let err = d.docker(&["run", "--name", &bad_user, "-u", "2147483648", "busybox", "true"]).fails();
    assert!(err.contains("Error response from daemon: uids and gids must be in range 0-2147483647"), "{err}");
    assert!(!err.contains("OCI runtime"), "{err}");
    for n in [&target, &ok, &ok2, &bad_user] {
        d.docker(&["rm", "-f", n]).ok();
    }
}

#[test]
fn create_answers_404_only_for_the_image() {
    let d = Daemon::with_busybox();
    let missing = unique("missing");
    // A network namespace, or a network, that does not exist: created, refused at start
    // (the docker CLI would pull the image on a 404 from create).
    for net in [format!("container:{missing}"), missing.clone()] {
        let name = unique("late");
        let run = d.docker(&["create", "--name", &name, "--network", &net, "busybox", "true"]);
        let shown = format!("{}{}", run.stdout, run.stderr);
        d.docker(&["rm", "-f", &name]);
        assert_eq!(run.code, 0, "--network {net}: {shown}");
        assert!(!shown.contains("Unable to find image"), "{shown}");
        let name = unique("late");
        d.docker(&["create", "--name", &name, "--network", &net, "busybox", "true"]).ok();
        let err = d.docker(&["start", &name]).fails();
        d.docker(&["rm", "-f", &name]).ok();
        assert!(err.contains(&missing), "--network {net}: {err}");
    }
    // Containers named by --volumes-from and --link: dockerd's 400, no pull.
    let link = format!("{missing}:alias");
    for (args, want) in [
        (["--volumes-from", missing.as_str()], format!("No such container: {missing}")),
        (["--link", link.as_str()], format!("could not get container for {missing}: No such container: {missing}")),
    ] {
        let mut full = vec!["create"];
        full.extend(args);
        full.extend(["busybox", "true"]);
        let run = d.docker(&full);
        let shown = format!("{}{}", run.stdout, run.stderr);
        assert_ne!(run.code, 0, "{args:?}: {shown}");
        assert!(shown.contains(&format!("Error response from daemon: {want}")), "{args:?}: {shown}");
        assert!(!shown.contains("Unable to find image"), "{args:?}: {shown}");
    }
    // The image itself: 404, which the CLI answers by pulling (here: refused by the registry
    // it cannot reach, after saying so).
    let (status, body) = d.api("POST", "/v1.45/containers/create", br#"{"Image":"no-such-image-here:1"}"#);
    assert_eq!(status, 404, "{body}");

    // `GET /networks/` lists as `/networks` does (dockerd routes both); other lists answer
    // 404 with a trailing slash, as dockerd's router does.
    let (status, plain) = d.api("GET", "/networks", b"");
    assert_eq!(status, 200, "{plain}");
    let (status, slash) = d.api("GET", "/networks/", b"");
    assert_eq!(status, 200, "{slash}");
    let names = |body: &str| {
        let v: serde_json::Value =
            body.lines().find(|l| l.starts_with('[')).and_then(|l| serde_json::from_str(l).ok()).unwrap_or_default();
        let mut n: Vec<String> =
            v.as_array().into_iter().flatten().filter_map(|n| n["Name"].as_str().map(String::from)).collect();
        n.sort();
        n
    };
    assert!(names(&slash).contains(&"bridge".to_string()), "{slash}");
    assert_eq!(names(&plain), names(&slash));
    let (status, _) = d.api("GET", "/volumes/", b"");
    assert_eq!(status, 404);
}

#[test]
fn log_options_are_checked_as_dockerd_checks_them() {
    let d = Daemon::with_busybox();
    // Unknown keys and a bad mode: refused at create.
    refused(&d, &["--log-opt", "max-sise=1m"], "unknown log opt 'max-sise' for json-file log driver");
    refused(&d, &["--log-driver", "local", "--log-opt", "tag=x"], "unknown log opt 'tag' for log driver local");
    refused(&d, &["--log-opt", "mode=fast"], "logger: logging mode not supported: fast");
    refused(
        &d,
        &["--log-opt", "max-buffer-size=4m"],
        "logger: max-buffer-size option is only supported with 'mode=non-blocking'",
    );
    // Malformed values: dockerd's driver refuses them when the container starts; berth
    // refuses them at create, in the driver's words, so no container exists that cannot start.
    refused(&d, &["--log-opt", "max-size=lots"], "failed to initialize logging driver: invalid size: 'lots'");
    refused(&d, &["--log-opt", "max-file=0"], "failed to initialize logging driver: max-file cannot be less than 1");
    refused(
        &d,
        &["--log-opt", "compress=maybe"],
        "failed to initialize logging driver: strconv.ParseBool: parsing \"maybe\": invalid syntax",
    );
    refused(&d, &["--log-driver", "nosuchdriver"], "logger: no log driver named 'nosuchdriver' is registered");
    // Valid options still run.
    let out = d
        .docker(&[
            "run",
            "--rm",
            "--log-opt",
            "max-size=1m",
            "--log-opt",
            "max-file=2",
            "--log-opt",
            "mode=non-blocking",
            "--log-opt",
            "max-buffer-size=4m",
            "busybox",
            "echo",
            "logged",
        ])
        .ok();
    assert_eq!(out, "logged\n");
}

#[test]
fn a_volume_driver_berth_lacks_is_refused() {
    let d = Daemon::with_busybox();
    let vol = unique("drv");
    let spec = format!("{vol}:/data");
    refused(
        &d,
        &["--volume-driver", "nosuchplugin", "-v", &spec],
        &format!("create {vol}: error looking up volume plugin nosuchplugin: plugin \"nosuchplugin\" not found"),
    );
    refused(
        &d,
        &["--volume-driver", "nosuchplugin", "-v", "/anon"],
        "error looking up volume plugin nosuchplugin: plugin \"nosuchplugin\" not found",
    );
    // A mount's own driver (VolumeOptions.DriverConfig), for a named and an anonymous volume.
    let named = format!("type=volume,source={vol},target=/data,volume-driver=nosuchplugin");
    refused(
        &d,
        &["--mount", &named],
        &format!("create {vol}: error looking up volume plugin nosuchplugin: plugin \"nosuchplugin\" not found"),
    );
    refused(
        &d,
        &["--mount", "type=volume,target=/anon,volume-driver=nosuchplugin"],
        "error looking up volume plugin nosuchplugin: plugin \"nosuchplugin\" not found",
    );
    let err = d.docker(&["volume", "create", "-d", "nosuchplugin", &vol]).fails();
    assert!(err.contains("error looking up volume plugin nosuchplugin: plugin \"nosuchplugin\" not found"), "{err}");
    assert!(d.docker(&["volume", "ls", "-q"]).ok().trim().is_empty(), "a refused create left a volume");
    let name = unique("local");
    d.docker(&["create", "--name", &name, "--volume-driver", "local", "-v", &spec, "busybox", "true"]).ok();
    d.docker(&["rm", "-f", &name]).ok();
    d.docker(&["volume", "rm", &vol]).ok();
}

#[test]
fn cpu_real_time_limits_are_written_or_refused() {
    let d = Daemon::with_busybox();
    let cpu = std::path::Path::new("/sys/fs/cgroup/cpu");
    if !cpu.join("cpu.rt_runtime_us").exists() {
        // No real-time group scheduling (or cgroup v2): dockerd's refusal.
        refused(&d, &["--cpu-rt-runtime", "10000"], "kernel does not support CPU real-time scheduler");
        return;
    }
    // As with dockerd and runc, the daemon's cgroup must grant a budget first (dockerd's
    // --cpu-rt-runtime); without one the kernel refuses the container's and start fails.
    let name = unique("rt");
    let rt = ["--cpu-rt-period", "1000000", "--cpu-rt-runtime", "10000"];
    let mut args = vec!["run", "--name", name.as_str()];
    args.extend(rt);
    args.extend(["busybox", "true"]);
    let err = d.docker(&args).fails();
    d.docker(&["rm", "-f", &name]).ok();
    assert!(err.contains("cpu.rt_runtime_us"), "{err}");
    let parent = cpu.join(&d.cgroup_parent);
    std::fs::create_dir_all(&parent).unwrap();
    std::fs::write(parent.join("cpu.rt_runtime_us"), "20000").unwrap();
    let mut args = vec!["run", "-d", "--name", name.as_str()];
    args.extend(rt);
    args.extend(["busybox", "sleep", "100"]);
    let run = d.docker(&args);
    let id = run.stdout.trim().to_string();
    let got = std::fs::read_to_string(parent.join(&id).join("cpu.rt_runtime_us")).unwrap_or_default();
    // `docker update` changes the running budget too (it was accepted and ignored).
    let update = d.docker(&["update", "--cpu-rt-runtime", "5000", &name]);
    let updated = std::fs::read_to_string(parent.join(&id).join("cpu.rt_runtime_us")).unwrap_or_default();
    let shown = d.docker(&["inspect", "-f", "{{.HostConfig.CpuRealtimeRuntime}}", &name]).stdout;
    d.docker(&["rm", "-f", &name]).ok();
    let _ = std::fs::write(parent.join("cpu.rt_runtime_us"), "0");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(got.trim(), "10000");
    assert_eq!(update.code, 0, "{}", update.stderr);
    assert_eq!((updated.trim(), shown.trim()), ("5000", "5000"));
}

/// berth keeps `io.berth.*` labels for itself (a namespace hides a container from `ps`, and
/// the CRI's state is in them): a Docker API client may not set them, and an image's are
/// dropped, so neither can hide a container or forge a pod for kubelet. Docker has no such
/// labels; this is berth's own rule.
#[test]
fn berths_own_labels_cannot_be_set_through_the_docker_api() {
    let d = Daemon::with_busybox();
    refused(&d, &["--label", "io.berth.namespace=k8s.io"], r#"label "io.berth.namespace": labels starting with"#);
    refused(&d, &["--label", "io.berth.cri.kind=sandbox"], r#"label "io.berth.cri.kind": labels starting with"#);
    // An image that carries one: the container is created, listed, and has no such label.
    let dir = d.dir.path().join(unique("ctx"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), "FROM busybox\nLABEL io.berth.namespace=hidden keep=yes\n").unwrap();
    let tag = unique("labelled");
    d.berth(&["build", "--network", "none", "-t", &tag, &dir.display().to_string()]).ok();
    let name = unique("visible");
    d.docker(&["create", "--name", &name, "--network", "none", &tag, "true"]).ok();
    let listed = d.docker(&["ps", "-a", "--format", "{{.Names}}"]).ok();
    assert!(listed.lines().any(|l| l == name), "{listed}");
    let labels = d.docker(&["inspect", "-f", "{{json .Config.Labels}}", &name]).ok();
    assert_eq!(labels.trim(), r#"{"keep":"yes"}"#);
    d.docker(&["rm", &name]).ok();
}
