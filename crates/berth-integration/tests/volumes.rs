//! Volumes: named and anonymous volumes, bind mounts, `--volumes-from`, driver options
//! (tmpfs- and bind-backed volumes), `cp` through volumes, and the volume commands.

use berth_integration::{Daemon, unique};

fn volume_names(d: &Daemon, filter: &[&str]) -> Vec<String> {
    let mut args = vec!["volume", "ls", "-q"];
    for f in filter {
        args.extend_from_slice(&["-f", f]);
    }
    d.berth(&args).ok().lines().map(String::from).collect()
}

#[test]
fn named_volume_data_outlives_containers_and_daemon_restarts() {
    let mut d = Daemon::with_busybox();
    let vol = unique("data");
    let c = unique("writer");
    d.berth(&["run", "--name", &c, "-v", &format!("{vol}:/data"), "busybox", "sh", "-c", "echo kept > /data/f"]).ok();
    assert_eq!(volume_names(&d, &[&format!("name={vol}")]), vec![vol.clone()], "run -v NAME creates the volume");
    let mountpoint = d.berth(&["volume", "inspect", "-f", "{{.Mountpoint}}", &vol]).ok();
    assert_eq!(std::fs::read_to_string(format!("{}/f", mountpoint.trim())).unwrap(), "kept\n");
    assert_eq!(
        d.berth(&["inspect", "-f", "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.RW}}{{end}}", &c])
            .ok()
            .trim(),
        format!("volume {vol} /data true")
    );

    // A stopped container still uses it.
    let err = d.berth(&["volume", "rm", &vol]).fails();
    assert!(err.contains("volume is in use"), "{err}");
    assert!(volume_names(&d, &["dangling=true"]).is_empty());
    d.berth(&["rm", &c]).ok();
    assert_eq!(volume_names(&d, &["dangling=true"]), vec![vol.clone()]);

    d.restart();
    let out = d
        .berth(&[
            "run",
            "--rm",
            "-v",
            &format!("{vol}:/data:ro"),
            "busybox",
            "sh",
            "-c",
            "cat /data/f; touch /data/g 2>/dev/null || echo read-only",
        ])
        .ok();
    assert_eq!(out, "kept\nread-only\n");
    assert_eq!(d.berth(&["volume", "rm", &vol]).ok().trim(), vol);
    let err = d.berth(&["volume", "inspect", &vol]).fails();
    assert!(err.contains("No such volume"), "{err}");
}

#[test]
fn a_new_volume_is_filled_from_the_image_unless_nocopy() {
    let d = Daemon::with_busybox();
    let (a, b) = (unique("etc"), unique("etcnc"));
    let out = d.berth(&["run", "--rm", "-v", &format!("{a}:/etc"), "busybox", "cat", "/etc/passwd"]).ok();
    assert!(out.starts_with("root:"), "{out}");
    let out = d.berth(&["run", "--rm", "-v", &format!("{b}:/etc:nocopy"), "busybox", "ls", "-A", "/etc"]).ok();
    assert_eq!(out, "");
    // Once filled, a volume keeps its own content over the image's.
    d.berth(&["run", "--rm", "-v", &format!("{a}:/etc"), "busybox", "sh", "-c", "echo mine > /etc/passwd"]).ok();
    assert_eq!(d.berth(&["run", "--rm", "-v", &format!("{a}:/etc"), "busybox", "cat", "/etc/passwd"]).ok(), "mine\n");
}

/// The attack on a subpath checked at create: another container that shares the volume
/// swaps the directory for a symlink to a host directory before the victim starts again.
/// The victim must never get the host's directory (berth resolves the subpath inside the
/// volume at each start); the control shows the probe reads what the subpath holds.
#[test]
fn a_volume_subpath_swapped_for_a_symlink_never_reaches_the_host() {
    let d = Daemon::with_busybox();
    let v = unique("swapvol");
    d.docker(&["volume", "create", &v]).ok();
    let vol = format!("{v}:/v");
    let fill = "mkdir /v/sub && echo in-volume > /v/sub/marker";
    d.docker(&["run", "--rm", "--network", "none", "-v", &vol, "busybox", "sh", "-c", fill]).ok();
    let victim = unique("victim");
    let mount = format!("type=volume,src={v},dst=/data,volume-subpath=sub");
    d.docker(&["create", "--name", &victim, "--network", "none", "--mount", &mount, "busybox", "cat", "/data/marker"])
        .ok();
    // Control: the subpath's file is what the victim reads.
    assert_eq!(d.docker(&["start", "-a", &victim]).ok(), "in-volume\n");
    let host = d.dir.path().join(unique("hostdir"));
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("marker"), "host file\n").unwrap();
    let swap = format!("rm -r /v/sub && ln -s {} /v/sub", host.display());
    d.docker(&["run", "--rm", "--network", "none", "-v", &vol, "busybox", "sh", "-c", &swap]).ok();
    let r = d.docker(&["start", "-a", &victim]);
    assert!(!r.stdout.contains("host file"), "the victim read the host's directory: {r:?}");
    d.docker(&["rm", "-f", &victim]).ok();
}

/// `--mount type=volume,volume-subpath=` (API 1.45 `VolumeOptions.Subpath`): only that
/// directory of the volume is mounted; a missing or escaping subpath is refused.
#[test]
fn a_volume_subpath_mounts_only_that_directory() {
    let d = Daemon::with_busybox();
    let v = unique("subvol");
    d.docker(&["volume", "create", &v]).ok();
    let fill = "mkdir -p /data/sub/deeper && echo in-sub > /data/sub/f && echo at-top > /data/top && ln -s / /data/up";
    d.docker(&["run", "--rm", "--network", "none", "-v", &format!("{v}:/data"), "busybox", "sh", "-c", fill]).ok();
    let mount = |sub: &str| format!("type=volume,src={v},dst=/m,volume-subpath={sub}");
    let out = d.docker(&["run", "--rm", "--network", "none", "--mount", &mount("sub"), "busybox", "ls", "/m"]).ok();
    assert_eq!(out, "deeper\nf\n");
    // Writes land in the subdirectory of the volume.
    d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--mount",
        &mount("sub/deeper"),
        "busybox",
        "sh",
        "-c",
        "echo new > /m/n",
    ])
    .ok();
    let out = d
        .docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            &format!("{v}:/data"),
            "busybox",
            "cat",
            "/data/sub/deeper/n",
        ])
        .ok();
    assert_eq!(out, "new\n");
    for bad in ["missing", "../..", "/etc", "up/etc"] {
        let err = d.docker(&["run", "--rm", "--network", "none", "--mount", &mount(bad), "busybox", "true"]).fails();
        assert!(err.contains("subpath"), "{bad}: {err}");
    }
}

#[test]
fn anonymous_volumes_go_with_rm_v_and_rm_flag_and_prune() {
    let d = Daemon::with_busybox();
    // An image with a VOLUME and content under it.
    let (base, img) = (unique("vbase"), unique("volimg"));
    d.berth(&["run", "--name", &base, "busybox", "sh", "-c", "mkdir /seed && echo seeded > /seed/s"]).ok();
    d.berth(&["commit", "-c", "VOLUME /seed", &base, &img]).ok();
    d.berth(&["rm", &base]).ok();

    let out = d.berth(&["run", "--rm", &img, "cat", "/seed/s"]).ok();
    assert_eq!(out, "seeded\n");
    assert!(volume_names(&d, &[]).is_empty(), "--rm removes the anonymous volume");

    let c = unique("anon");
    d.berth(&["run", "--name", &c, "-v", "/scratch", &img, "true"]).ok();
    let anon = volume_names(&d, &[]);
    assert_eq!(anon.len(), 2, "{anon:?}");
    assert!(anon.iter().all(|v| v.len() == 64));
    let labels = d.berth(&["volume", "inspect", "-f", "{{json .Labels}}", &anon[0]]).ok();
    assert!(labels.contains("com.docker.volume.anonymous"), "{labels}");
    d.berth(&["rm", "-v", &c]).ok();
    assert!(volume_names(&d, &[]).is_empty(), "rm -v removes anonymous volumes");

    // Without -v they stay, dangling; prune takes anonymous ones, prune -a named ones too.
    let named = unique("keep");
    d.berth(&["volume", "create", &named]).ok();
    d.berth(&["run", "--name", &c, &img, "true"]).ok();
    d.berth(&["rm", &c]).ok();
    assert_eq!(volume_names(&d, &[]).len(), 2);
    let out = d.berth(&["volume", "prune", "-f"]).ok();
    assert!(out.contains("Deleted Volumes:") && out.contains("Total reclaimed space:"), "{out}");
    assert_eq!(volume_names(&d, &[]), vec![named.clone()]);
    d.berth(&["volume", "prune", "-a", "-f"]).ok();
    assert!(volume_names(&d, &[]).is_empty());
    d.berth(&["rmi", &img]).ok();
}

#[test]
fn bind_mounts_are_read_write_or_read_only_and_missing_sources_are_made_for_v() {
    let d = Daemon::with_busybox();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("in"), "from host\n").unwrap();
    let src = host.path().display().to_string();
    let out = d
        .berth(&["run", "--rm", "-v", &format!("{src}:/h"), "busybox", "sh", "-c", "cat /h/in; echo back > /h/out"])
        .ok();
    assert_eq!(out, "from host\n");
    assert_eq!(std::fs::read_to_string(host.path().join("out")).unwrap(), "back\n");
    let out = d
        .berth(&[
            "run",
            "--rm",
            "--mount",
            &format!("type=bind,source={src},target=/h,readonly"),
            "busybox",
            "sh",
            "-c",
            "touch /h/x 2>/dev/null || echo refused",
        ])
        .ok();
    assert_eq!(out, "refused\n");
    // -v makes a missing host directory; --mount refuses it, as Docker does.
    let missing = host.path().join("made/by/v");
    d.berth(&["run", "--rm", "-v", &format!("{}:/m", missing.display()), "busybox", "true"]).ok();
    assert!(missing.is_dir());
    let err = d
        .berth(&["run", "--rm", "--mount", &format!("type=bind,source={}/nope,target=/m", src), "busybox", "true"])
        .fails();
    assert!(err.contains("bind source path does not exist"), "{err}");
}

#[test]
fn volumes_from_shares_another_containers_mounts() {
    let d = Daemon::with_busybox();
    let (src, vol) = (unique("src"), unique("shared"));
    d.berth(&[
        "run",
        "--name",
        &src,
        "-v",
        &format!("{vol}:/shared"),
        "-v",
        "/anon",
        "busybox",
        "sh",
        "-c",
        "echo one > /shared/f; echo two > /anon/g",
    ])
    .ok();
    let out = d.berth(&["run", "--rm", "--volumes-from", &src, "busybox", "sh", "-c", "cat /shared/f /anon/g"]).ok();
    assert_eq!(out, "one\ntwo\n");
    let out = d
        .berth(&[
            "run",
            "--rm",
            "--volumes-from",
            &format!("{src}:ro"),
            "busybox",
            "sh",
            "-c",
            "touch /shared/x 2>/dev/null || echo ro",
        ])
        .ok();
    assert_eq!(out, "ro\n");
}

#[test]
fn driver_options_make_tmpfs_and_bind_backed_volumes() {
    let d = Daemon::with_busybox();
    let (t, b) = (unique("tmpv"), unique("bindv"));
    d.berth(&["volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m", &t]).ok();
    let out =
        d.berth(&["run", "--rm", "-v", &format!("{t}:/t"), "busybox", "sh", "-c", "grep ' /t ' /proc/mounts"]).ok();
    assert!(out.starts_with("tmpfs /t tmpfs") && out.contains("size=1024k"), "{out}");

    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("precious"), "keep me").unwrap();
    d.berth(&[
        "volume",
        "create",
        "-o",
        "type=none",
        "-o",
        "o=bind",
        "-o",
        &format!("device={}", host.path().display()),
        &b,
    ])
    .ok();
    let out = d
        .berth(&[
            "run",
            "--rm",
            "-v",
            &format!("{b}:/b"),
            "busybox",
            "sh",
            "-c",
            "cat /b/precious; echo new > /b/added",
        ])
        .ok();
    assert_eq!(out, "keep me");
    assert!(host.path().join("added").exists());
    // Removing the volume unmounts it and never deletes the host directory's files.
    d.berth(&["volume", "rm", &b, &t]).ok();
    assert_eq!(std::fs::read_to_string(host.path().join("precious")).unwrap(), "keep me");
}

#[test]
fn cp_reaches_volumes_of_a_stopped_container() {
    let d = Daemon::with_busybox();
    let c = unique("cpv");
    d.berth(&["create", "--name", &c, "-v", "/vol1", "busybox", "cat", "/vol1/file"]).ok();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("file"), "copied in\n").unwrap();
    d.berth(&["cp", &host.path().join("file").display().to_string(), &format!("{c}:/vol1/")]).ok();
    let out = d.berth(&["start", "-a", &c]).ok();
    assert_eq!(out, "copied in\n");
    let back = host.path().join("back");
    d.berth(&["cp", &format!("{c}:/vol1/file"), &back.display().to_string()]).ok();
    assert_eq!(std::fs::read_to_string(back).unwrap(), "copied in\n");
}

#[test]
fn bad_volume_input_is_refused_and_changes_nothing() {
    let d = Daemon::with_busybox();
    let err = d.berth(&["volume", "create", "a/b"]).fails();
    assert!(err.contains("includes invalid characters for a local volume name"), "{err}");
    let err = d.berth(&["volume", "create", "-d", "nosuchdriver", &unique("v")]).fails();
    assert!(err.contains("plugin \"nosuchdriver\" not found"), "{err}");
    let err = d.berth(&["volume", "create", "-o", "colour=blue", &unique("v")]).fails();
    assert!(err.contains("invalid option"), "{err}");
    let err = d.berth(&["run", "--rm", "-v", "rel/path:/x", "busybox", "true"]).fails();
    assert!(err.contains("includes invalid characters for a local volume name"), "{err}");
    let err = d.berth(&["run", "--rm", "-v", "/a:/x", "-v", "/b:/x", "busybox", "true"]).fails();
    assert!(err.contains("Duplicate mount point: /x"), "{err}");
    let err = d.berth(&["volume", "rm", "nosuchvolume"]).fails();
    assert!(err.contains("no such volume"), "{err}");
    assert!(volume_names(&d, &[]).is_empty());
    assert_eq!(d.berth(&["ps", "-aq"]).ok(), "");
}

#[test]
fn the_docker_cli_manages_volumes() {
    let d = Daemon::with_busybox();
    let v = unique("dockervol");
    assert_eq!(d.docker(&["volume", "create", "--label", "team=blue", &v]).ok().trim(), v);
    let out = d.docker(&["volume", "ls", "--filter", "label=team=blue", "--format", "{{.Name}} {{.Driver}}"]).ok();
    assert_eq!(out.trim(), format!("{v} local"));
    let out = d
        .docker(&[
            "run",
            "--rm",
            "--mount",
            &format!("type=volume,source={v},target=/v"),
            "busybox",
            "sh",
            "-c",
            "echo hi > /v/x && cat /v/x",
        ])
        .ok();
    assert_eq!(out, "hi\n");
    let df = d.docker(&["system", "df", "-v"]).ok();
    assert!(df.contains(&v), "{df}");
    assert_eq!(d.docker(&["volume", "rm", &v]).ok().trim(), v);
}
