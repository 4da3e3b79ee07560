//! `RUN --mount` (cache, tmpfs, bind) and `RUN --network`: what the step sees, and that
//! none of it lands in the image.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use super::*;

/// Runs `cmd` in a container of `image` and returns its output.
fn run_in(d: &Daemon, image: &str, cmd: &str) -> Run {
    d.berth(&["run", "--rm", "--network", "none", image, "sh", "-c", cmd])
}

#[test]
fn a_cache_mount_persists_between_builds_stays_out_of_the_image_and_is_pruned() {
    let d = Daemon::with_busybox();
    let id = berth_integration::unique("cm");
    let first = context(
        &d,
        &[(
            "Dockerfile",
            &format!(
                "FROM busybox\nRUN --mount=type=cache,id={id},target=/var/cache/x echo from-first > /var/cache/x/f\n"
            ),
        )],
    );
    build(&d, &first, &["-t", "cm-first"]).ok();
    assert!(run_in(&d, "cm-first", "test -e /var/cache/x").code != 0, "the mount point is not left in the image");

    // Another build (another Dockerfile, so no step is cached) finds what the first wrote.
    let second = context(
        &d,
        &[(
            "Dockerfile",
            &format!(
                "FROM busybox\nRUN --mount=type=cache,id={id},target=/c,uid=65534,mode=0700 cp /c/f /got && echo more > /c/g\n"
            ),
        )],
    );
    build(&d, &second, &["-t", "cm-second"]).ok();
    assert_eq!(run_in(&d, "cm-second", "cat /got").ok(), "from-first\n");

    // What the cache holds is not part of a step's key: the first file builds from cache
    // although the cache changed since.
    let again = build(&d, &first, &["-t", "cm-first"]).ok();
    assert_eq!(steps_cached(&again), 1, "{again}");

    let (status, df) = d.api("GET", "/system/df", b"");
    assert_eq!(status, 200, "{df}");
    assert!(df.contains("exec.cachemount") && df.contains(&id), "system df lists the cache mount: {df}");

    let pruned = d.berth(&["builder", "prune", "-f"]).ok();
    assert!(pruned.contains("Total:"), "{pruned}");
    let after = context(
        &d,
        &[("Dockerfile", &format!("FROM busybox\nRUN --mount=type=cache,id={id},target=/c ls -A /c > /after\n"))],
    );
    build(&d, &after, &["-t", "cm-after"]).ok();
    assert_eq!(run_in(&d, "cm-after", "cat /after").ok(), "", "prune emptied the cache");
}

/// Starts `berth build` and returns the child with its stdout piped.
fn spawn_build(d: &Daemon, dir: &Path, tag: &str) -> std::process::Child {
    Command::new(berth_integration::berth_bin())
        .args(["-H", &d.host(), "build", "--network", "none", "-t", tag])
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The first file named `name` under `dir`.
fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if e.file_name() == name {
            return Some(p);
        }
        if e.file_type().is_ok_and(|t| t.is_dir())
            && let Some(f) = find_file(&p, name)
        {
            return Some(f);
        }
    }
    None
}

#[test]
fn locked_cache_mounts_serialize_concurrent_builds() {
    let d = Daemon::with_busybox();
    let id = berth_integration::unique("lock");
    // The first build holds the cache until the test drops a `release` file into it; the
    // second, started meanwhile, must wait, and so finds the first one's marker gone.
    let holder = context(
        &d,
        &[(
            "Dockerfile",
            &format!(
                "FROM busybox\nRUN --mount=type=cache,id={id},target=/c,sharing=locked touch /c/holder-{id} && while [ ! -e /c/release ]; do sleep 0.05; done; rm /c/holder-{id} /c/release\n"
            ),
        )],
    );
    let waiter = context(
        &d,
        &[(
            "Dockerfile",
            &format!("FROM busybox\nRUN --mount=type=cache,id={id},target=/c,sharing=locked ls -A /c > /seen\n"),
        )],
    );
    let mut a = spawn_build(&d, &holder, "lock-a");
    let marker = loop {
        if let Some(f) = find_file(&d.data_root(), &format!("holder-{id}")) {
            break f;
        }
        assert!(a.try_wait().unwrap().is_none(), "the first build ended early");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut b = spawn_build(&d, &waiter, "lock-b");
    let mut out = BufReader::new(b.stdout.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "the second build ended without waiting: {seen}");
        seen.push_str(&line);
        if line.contains("Waiting for cache mount") {
            break;
        }
    }
    std::fs::write(marker.parent().unwrap().join("release"), "").unwrap();
    assert!(a.wait().unwrap().success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert!(b.wait().unwrap().success(), "{seen}{rest}");
    assert_eq!(run_in(&d, "lock-b", "cat /seen").ok(), "", "the second build ran after the first was done");
}

/// One cache mounted twice by a step (locked and shared): one directory at both targets,
/// taken once (waiting for itself, the step never ran).
#[test]
fn a_cache_mounted_twice_in_a_step_is_one_directory() {
    let d = Daemon::with_busybox();
    let dir = context(
        &d,
        &[(
            "Dockerfile",
            "FROM busybox\nRUN --mount=type=cache,id=twice,target=/a,sharing=locked --mount=type=cache,id=twice,target=/b \\\n    echo same > /a/f && cat /b/f > /seen\n",
        )],
    );
    build(&d, &dir, &["-t", "twice"]).ok();
    assert_eq!(run_in(&d, "twice", "cat /seen").ok(), "same\n");
}

#[test]
fn tmpfs_and_bind_mounts_are_seen_by_the_step_and_never_kept() {
    let d = Daemon::with_busybox();
    let dir = context(
        &d,
        &[
            (
                "Dockerfile",
                "FROM busybox AS tool\nRUN echo from-stage > /tool.txt\n\
                 FROM busybox\n\
                 RUN --mount=type=tmpfs,target=/scratch,size=1m grep ' /scratch ' /proc/mounts > /tmpfs-line && printf '#!/bin/sh\\necho ran' > /scratch/s && chmod +x /scratch/s && /scratch/s > /ran\n\
                 RUN --mount=type=bind,source=data.txt,target=/in/data.txt cp /in/data.txt /copied\n\
                 RUN --mount=type=bind,target=/src,rw touch /src/written && ls /src > /listing\n\
                 RUN --mount=type=bind,from=tool,source=/tool.txt,target=/t.txt cat /t.txt > /from-stage\n",
            ),
            ("data.txt", "context data\n"),
        ],
    );
    build(&d, &dir, &["-t", "mounts"]).ok();
    let tmpfs = run_in(&d, "mounts", "cat /tmpfs-line").ok();
    assert!(tmpfs.starts_with("tmpfs /scratch tmpfs") && tmpfs.contains("size=1024k"), "{tmpfs}");
    assert!(!tmpfs.contains("noexec"), "{tmpfs}");
    assert_eq!(run_in(&d, "mounts", "cat /ran").ok(), "ran\n", "a program on the tmpfs runs");
    assert_eq!(run_in(&d, "mounts", "cat /copied").ok(), "context data\n");
    assert!(run_in(&d, "mounts", "cat /listing").ok().contains("written"), "the rw bind was writable");
    assert_eq!(run_in(&d, "mounts", "cat /from-stage").ok(), "from-stage\n");
    for gone in ["/scratch", "/in", "/src", "/t.txt"] {
        assert!(run_in(&d, "mounts", &format!("test -e {gone}")).code != 0, "{gone} is not in the image");
    }
    assert!(!dir.join("written").exists(), "writes to an rw bind are discarded");

    // The bound file's content is part of the step's key.
    let again = build(&d, &dir, &[]).ok();
    assert_eq!(steps_cached(&again), 5, "{again}");
    std::fs::write(dir.join("data.txt"), "changed\n").unwrap();
    let changed = build(&d, &dir, &["-t", "mounts"]).ok();
    assert_eq!(steps_cached(&changed), 2, "the steps before the bind of data.txt: {changed}");
    assert_eq!(run_in(&d, "mounts", "cat /copied").ok(), "changed\n");

    // A bind mount is read-only unless `rw`.
    let ro = context(&d, &[("Dockerfile", "FROM busybox\nRUN --mount=type=bind,target=/src touch /src/x\n")]);
    let r = build(&d, &ro, &[]);
    assert!(r.code != 0, "{r:?}");
    assert!(r.stdout.contains("Read-only file system"), "{r:?}");
}

#[test]
fn run_network_none_and_host() {
    let d = Daemon::with_busybox();
    let dir = context(
        &d,
        &[(
            "Dockerfile",
            "FROM busybox\nRUN --network=none tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' > /none\n\
             RUN --network=host cat /proc/net/dev > /host\n\
             RUN --network=default true\n",
        )],
    );
    // The Dockerfile alone cannot take the host's network (BuildKit's network.host
    // entitlement): a build that did not allow it fails at that step.
    let r = build(&d, &dir, &["-t", "nets"]);
    assert!(r.code != 0 && r.stderr.contains("granting entitlement network.host is not allowed"), "{r:?}");
    // The client allows it with --network host.
    d.berth(&["build", "--network", "host", "-t", "nets", &dir.display().to_string()]).ok();
    assert_eq!(run_in(&d, "nets", "cat /none").ok(), "lo\n");
    // The host's default-route interface: a step with the host's network sees it.
    let route = std::fs::read_to_string("/proc/net/route").unwrap();
    let uplink = route
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.get(1) == Some(&"00000000"))
        .map(|f| format!("{}:", f[0]))
        .expect("the host has a default route");
    let seen = run_in(&d, "nets", "cat /host").ok();
    assert!(seen.contains(&uplink), "the step saw the host's interfaces ({uplink}): {seen}");
    let bad = context(&d, &[("Dockerfile", "FROM busybox\nRUN --network=bridge true\n")]);
    let r = build(&d, &bad, &[]);
    assert!(r.stderr.contains("RUN --network: unsupported network mode"), "{r:?}");
}

#[test]
fn mount_errors_are_clear() {
    let d = Daemon::with_busybox();
    for (df, want) in [
        ("RUN --mount=type=cache true", "mount type cache requires a target"),
        ("RUN --mount=type=nfs,target=/x true", "unsupported mount type \"nfs\""),
        ("RUN --mount=type=bind,source=nope,target=/x true", "source \"nope\" not found in the build context"),
    ] {
        let dir = context(&d, &[("Dockerfile", &format!("FROM busybox\n{df}\n"))]);
        let r = build(&d, &dir, &[]);
        assert!(r.code != 0 && r.stderr.contains(want), "{df}: {r:?}");
    }
}

#[test]
fn the_docker_cli_builds_with_run_mounts_through_the_classic_api() {
    let d = Daemon::with_busybox();
    let id = berth_integration::unique("dcm");
    let df = format!(
        "# syntax=docker/dockerfile:1\nFROM busybox\n\
         RUN --mount=type=cache,id={id},target=/c --mount=type=tmpfs,target=/t --network=none \
         echo $((`cat /c/n 2>/dev/null || echo 0` + 1)) > /c/n && cp /c/n /n\n"
    );
    let dir = context(&d, &[("Dockerfile", &df)]);
    let docker_build = |tag: &str| {
        let mut c = d.docker_cmd();
        c.env("DOCKER_BUILDKIT", "0").args(["build", "--no-cache", "--network", "none", "-t", tag]).arg(&dir);
        let o = c.output().unwrap();
        assert!(o.status.success(), "{o:?}");
    };
    docker_build("dcm:1");
    docker_build("dcm:2");
    assert_eq!(run_in(&d, "dcm:1", "cat /n").ok(), "1\n");
    assert_eq!(run_in(&d, "dcm:2", "cat /n").ok(), "2\n", "the second build saw the first one's cache");
}
