//! Devices, system paths and the kernel's other doors: a container gets a device with exactly the permissions it was
//! given (`--device HOST:CTR:r` is read-only, not rwm), device cgroup rules take effect,
//! and the API's MaskedPaths / ReadonlyPaths are honoured rather than ignored.

use berth_integration::{Daemon, unique};

use crate::probe;

/// Opens `path` for reading, then for writing, and says which the device cgroup let
/// through. /dev/fuse (10:229) is used: not among the default rules, and opening it does
/// nothing until a filesystem is mounted on it.
fn opens(path: &str) -> String {
    format!(
        "(: < {path}) 2>/dev/null && echo r-ok || echo r-refused; (: > {path}) 2>/dev/null && echo w-ok || echo w-refused"
    )
}

#[test]
fn a_device_given_read_only_cannot_be_written() {
    let d = Daemon::with_busybox();
    let out = d
        .berth(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--device",
            "/dev/fuse:/dev/f:r",
            "busybox",
            "sh",
            "-c",
            &opens("/dev/f"),
        ])
        .ok();
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["r-ok", "w-refused"], "{out}");
    // Control: given rw, the write open goes through.
    let out = d
        .berth(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--device",
            "/dev/fuse:/dev/f:rw",
            "busybox",
            "sh",
            "-c",
            &opens("/dev/f"),
        ])
        .ok();
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["r-ok", "w-ok"], "{out}");
    let err =
        d.berth(&["run", "--rm", "--network", "none", "--device", "/dev/fuse:/dev/f:rx", "busybox", "true"]).fails();
    assert!(err.contains("invalid device mode: rx"), "{err}");
}

#[test]
fn device_cgroup_rules_grant_what_they_say() {
    let d = Daemon::with_busybox();
    // A node for 10:229 made in the container (the default rules allow mknod, not opening) ...
    let script = format!("mknod /tmp/f c 10 229 && {}", opens("/tmp/f"));
    let out = d.berth(&["run", "--rm", "--network", "none", "busybox", "sh", "-c", &script]).ok();
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["r-refused", "w-refused"], "{out}");
    // ... opens as far as a rule grants.
    let out = d
        .berth(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--device-cgroup-rule",
            "c 10:229 r",
            "busybox",
            "sh",
            "-c",
            &script,
        ])
        .ok();
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["r-ok", "w-refused"], "{out}");
    let err = d
        .berth(&["run", "--rm", "--network", "none", "--device-cgroup-rule", "c 10:229 rq", "busybox", "true"])
        .fails();
    assert!(err.contains("invalid device cgroup format"), "{err}");
}

/// Issue 15: a default container has CAP_MKNOD and a /dev without nodev, so only the device
/// cgroup (v1) or its eBPF program (v2) stands between `mknod /x b 7 0` and the host's block
/// devices. 7:0 (the first loop device) opens without a backing file, so the control, the
/// same node with a rule granting it, reaches it.
#[test]
fn a_block_device_made_in_the_container_cannot_be_opened() {
    let d = Daemon::with_busybox();
    let script = format!("mknod /tmp/b b 7 0 && echo made; {}", opens("/tmp/b"));
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["busybox", "sh", "-c", &script]);
        d.berth(&args).ok()
    };
    let out = run(&[]);
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["made", "r-refused", "w-refused"], "{out}");
    let out = run(&["--device-cgroup-rule", "b 7:0 r"]);
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["made", "r-ok", "w-refused"], "{out}");
}

#[test]
fn masked_and_readonly_paths_from_the_api_are_honoured() {
    let d = Daemon::with_busybox();
    let name = unique("paths");
    let body = serde_json::json!({
        "Image": "busybox",
        "Cmd": ["sh", "-c", "cat /etc/passwd | wc -c; touch /tmp/x && echo wrote || echo refused; cat /proc/kcore >/dev/null 2>&1 && echo kcore || echo nokcore"],
        "HostConfig": {"NetworkMode": "none", "MaskedPaths": ["/etc/passwd"], "ReadonlyPaths": ["/tmp"]}
    });
    let (status, text) = d.api("POST", &format!("/containers/create?name={name}"), body.to_string().as_bytes());
    assert_eq!(status, 201, "{text}");
    d.berth(&["start", "-a", &name]).ok();
    let out = d.berth(&["logs", &name]).ok();
    // Masked: empty; read-only: refused; /proc/kcore is no longer masked (the list replaced
    // the defaults), but reading it needs CAP_SYS_RAWIO, which the container lacks.
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["0", "refused", "nokcore"], "{out}");
    // Control: without them, the same commands see the file and write.
    let out = d
        .berth(&[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "cat /etc/passwd | wc -c; touch /tmp/x && echo wrote",
        ])
        .ok();
    assert!(out.contains("wrote") && !out.starts_with("0\n"), "{out}");
}

#[test]
fn vsock_sockets_are_refused_however_the_family_is_passed() {
    let d = Daemon::with_busybox();
    let dir = probe(&d, "vsock");
    let mount = format!("{}:/probe:ro", dir.display());
    let out = d.berth(&["run", "--rm", "--network", "none", "-v", &mount, "busybox", "/probe/vsock"]).ok();
    // EPERM from the filter (without it: EAFNOSUPPORT or an open socket); AF_UNIX opens.
    assert_eq!(out.trim(), "vsock=1 vsock_high=1 unix=0");
}

/// Issue 15: on cgroup v1 only the `devices` controller confines device nodes, so a daemon
/// that cannot see it (here: its mount namespace has the controller unmounted) refuses to
/// start containers, privileged ones too, as runc does, rather than run them unconfined.
#[test]
fn without_a_devices_controller_containers_are_refused_not_left_unconfined() {
    if !std::path::Path::new("/sys/fs/cgroup/devices/devices.allow").exists() {
        eprintln!("skipped: not a cgroup v1 host with a devices controller");
        return;
    }
    // Control: a daemon that sees the controller runs the container.
    let d = Daemon::with_busybox();
    let run = ["run", "--rm", "--network", "none", "busybox", "true"];
    d.berth(&run).ok();
    drop(d);
    // `unshare -m` makes the mount namespace private, so the host keeps its controller.
    let hide = "umount /sys/fs/cgroup/devices && exec \"$@\"";
    let d = Daemon::start_under(&["unshare", "-m", "--propagation", "private", "sh", "-c", hide, "sh"], &[]);
    d.import_busybox("busybox:latest");
    for extra in [&[][..], &["--privileged"][..]] {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["busybox", "true"]);
        let err = d.berth(&args).fails();
        assert!(err.contains("devices cgroup controller is not mounted"), "{extra:?}: {err}");
    }
}
