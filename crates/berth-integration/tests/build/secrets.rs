//! `RUN --mount=type=secret` and `--secret`: the step sees the secret; nothing the build
//! leaves does (layers, config, history, cache records, output, anything under the data
//! root).

use super::*;

fn sha256_hex(data: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("v");
    std::fs::write(&f, data).unwrap();
    let out = std::process::Command::new("sha256sum").arg(&f).output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_string()
}

/// How many times `needle` occurs in the files under `dir`, named with their counts.
fn hits_under(dir: &Path, needle: &[u8]) -> Vec<(PathBuf, usize)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else { return out };
    for e in rd.flatten() {
        let p = e.path();
        let Ok(t) = e.file_type() else { continue };
        if t.is_dir() {
            out.extend(hits_under(&p, needle));
        } else if t.is_file() {
            let data = std::fs::read(&p).unwrap_or_default();
            let n = data.windows(needle.len()).filter(|w| *w == needle).count();
            if n > 0 {
                if let Some(i) = data.windows(needle.len()).position(|w| w == needle) {
                    let (a, b) = (i.saturating_sub(120), (i + needle.len() + 120).min(data.len()));
                    eprintln!("hit in {}: {}", p.display(), String::from_utf8_lossy(&data[a..b]));
                }
                out.push((p, n));
            }
        }
    }
    out
}

fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

#[test]
fn a_secret_reaches_its_step_and_nothing_else() {
    let d = Daemon::with_busybox();
    let value = berth_integration::unique("s3cr3t-value");
    let env_value = berth_integration::unique("env-secret");
    let dir = context(
        &d,
        &[(
            "Dockerfile",
            "FROM busybox\n\
             RUN --mount=type=secret,id=tok sha256sum /run/secrets/tok | cut -d' ' -f1 > /seen && stat -c '%a %u' /run/secrets/tok > /perm\n\
             RUN --mount=type=secret,id=envtok,env=TOKEN printf %s \"$TOKEN\" | sha256sum | cut -d' ' -f1 > /seen-env\n\
             RUN --mount=type=secret,id=tok,target=/etc/app.key,mode=0440,uid=65534 stat -c '%a %u' /etc/app.key > /perm2\n\
             RUN --mount=type=secret,id=absent test ! -e /run/secrets/absent && echo absent-ok > /absent\n",
        )],
    );
    let secret_file = d.dir.path().join(berth_integration::unique("secret"));
    std::fs::write(&secret_file, &value).unwrap();
    let src = format!("id=tok,src={}", secret_file.display());
    let out = d.dir.path().join("secret-build.out");
    let r = std::process::Command::new(berth_integration::berth_bin())
        .args(["-H", &d.host(), "build", "--network", "none", "--debug-cache-key", "-t", "with-secret"])
        .args(["--secret", &src, "--secret", "id=envtok,env=BERTH_TEST_TOKEN"])
        .arg(&dir)
        .env("BERTH_TEST_TOKEN", &env_value)
        .output()
        .unwrap();
    let output = format!("{}{}", String::from_utf8_lossy(&r.stdout), String::from_utf8_lossy(&r.stderr));
    std::fs::write(&out, &output).unwrap();
    assert!(r.status.success(), "{output}");

    // Control: the steps saw the secrets.
    let cat = |f: &str| d.berth(&["run", "--rm", "--network", "none", "with-secret", "cat", f]).ok();
    assert_eq!(cat("/seen").trim(), sha256_hex(value.as_bytes()));
    assert_eq!(cat("/seen-env").trim(), sha256_hex(env_value.as_bytes()));
    assert_eq!(cat("/perm"), "400 0\n");
    assert_eq!(cat("/perm2"), "440 65534\n");
    assert_eq!(cat("/absent"), "absent-ok\n", "a secret nobody gave is simply absent");
    let probe = d.berth(&["run", "--rm", "--network", "none", "with-secret", "ls", "/run/secrets", "/etc/app.key"]);
    assert!(probe.code != 0, "no mount point is left in the image: {probe:?}");

    // Nothing else has them: the saved image (layers, config, history), inspect,
    // history, the cache records (system df), the output, any file of the data root.
    let saved = d.dir.path().join("saved.tar");
    d.berth(&["save", "-o", &saved.display().to_string(), "with-secret"]).ok();
    let unpacked = d.dir.path().join("saved");
    std::fs::create_dir_all(&unpacked).unwrap();
    assert!(
        std::process::Command::new("tar").arg("-xf").arg(&saved).arg("-C").arg(&unpacked).status().unwrap().success()
    );
    let inspect = d.berth(&["image", "inspect", "with-secret"]).ok();
    let history = d.berth(&["history", "--no-trunc", "with-secret"]).ok();
    let (_, df) = d.api("GET", "/system/df?verbose=1", b"");
    for v in [&value, &env_value] {
        assert_eq!(hits_under(&unpacked, v.as_bytes()), vec![], "docker save");
        assert_eq!(count(&inspect, v), 0, "{inspect}");
        assert_eq!(count(&history, v), 0, "{history}");
        assert_eq!(count(&df, v), 0, "{df}");
        assert_eq!(count(&output, v), 0, "{output}");
        assert_eq!(hits_under(&d.data_root(), v.as_bytes()), vec![], "the data root");
        assert_eq!(hits_under(&d.exec_root(), v.as_bytes()), vec![], "the exec root");
    }
    // The compressed tar itself too (layers may be stored compressed inside it).
    assert_eq!(count(&String::from_utf8_lossy(&std::fs::read(&saved).unwrap()), &value), 0);

    // A changed secret is not a changed step (BuildKit's rule): all cached.
    std::fs::write(&secret_file, "another value").unwrap();
    let again = d
        .berth(&[
            "build",
            "--network",
            "none",
            "--secret",
            &src,
            "--secret",
            "id=envtok,env=HOME",
            &dir.display().to_string(),
        ])
        .ok();
    assert_eq!(steps_cached(&again), 4, "{again}");
}

#[test]
fn a_required_secret_that_is_missing_is_a_clear_error() {
    let d = Daemon::with_busybox();
    let dir = context(&d, &[("Dockerfile", "FROM busybox\nRUN --mount=type=secret,id=npmrc,required=true true\n")]);
    let r = build(&d, &dir, &[]);
    assert!(r.code != 0 && r.stderr.contains("secret npmrc not found"), "{r:?}");
    // The docker CLI's classic build has no way to send one: the same error.
    let mut c = d.docker_cmd();
    c.env("DOCKER_BUILDKIT", "0").args(["build", "--network", "none"]).arg(&dir);
    let o = c.output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("secret npmrc not found"), "{o:?}");
    // And an SSH agent likewise.
    let ssh = context(&d, &[("Dockerfile", "FROM busybox\nRUN --mount=type=ssh,required=true true\n")]);
    let r = build(&d, &ssh, &[]);
    assert!(r.code != 0 && r.stderr.contains("no SSH agent for id \"default\""), "{r:?}");
    let optional = context(&d, &[("Dockerfile", "FROM busybox\nRUN --mount=type=ssh test -z \"$SSH_AUTH_SOCK\"\n")]);
    build(&d, &optional, &[]).ok();
}

#[test]
fn secret_flags_are_checked_by_the_cli() {
    let d = Daemon::with_busybox();
    let dir = context(&d, &[("Dockerfile", "FROM busybox\n")]);
    let ctx = dir.display().to_string();
    let r = d.berth(&["build", "--secret", "src=/nonexistent", &ctx]);
    assert!(r.code != 0 && r.stderr.contains("--secret"), "{r:?}");
    let r = d.berth(&["build", "--secret", "id=x,src=/nonexistent/file", &ctx]);
    assert!(r.code != 0 && r.stderr.contains("/nonexistent/file"), "{r:?}");
}

#[test]
fn ssh_forwards_an_agent_socket_to_the_steps_that_ask() {
    let d = Daemon::with_busybox();
    // A socket standing in for an agent: the steps only check that it is there.
    let sock = d.dir.path().join("agent.sock");
    let _agent = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let dir = context(
        &d,
        &[(
            "Dockerfile",
            "FROM busybox\n\
             RUN --mount=type=ssh test -S \"$SSH_AUTH_SOCK\" && echo \"$SSH_AUTH_SOCK\" > /sock\n\
             RUN --mount=type=ssh,id=other,target=/agent,required test -S /agent && echo ok > /other\n",
        )],
    );
    let s = sock.display().to_string();
    let r = d.berth(&[
        "build",
        "--network",
        "none",
        "-t",
        "with-ssh",
        "--ssh",
        &format!("default={s}"),
        "--ssh",
        &format!("other={s}"),
        &dir.display().to_string(),
    ]);
    r.ok();
    let cat = |f: &str| d.berth(&["run", "--rm", "--network", "none", "with-ssh", "cat", f]).ok();
    assert_eq!(cat("/sock"), "/run/buildkit/ssh_agent.0\n");
    assert_eq!(cat("/other"), "ok\n");
    let probe = d.berth(&["run", "--rm", "--network", "none", "with-ssh", "ls", "/run/buildkit", "/agent"]);
    assert!(probe.code != 0, "no mount point is left in the image: {probe:?}");
    let r = d.berth(&[
        "build",
        "--ssh",
        &format!("default={}", dir.join("Dockerfile").display()),
        &dir.display().to_string(),
    ]);
    assert!(r.code != 0 && r.stderr.contains("no such socket on the daemon's host"), "{r:?}");
}

/// An SSH mount's id and options may use build args; the step's socket is its own, owned
/// as `uid`/`gid`/`mode` say (BuildKit's defaults 0, 0, 0600).
#[test]
fn ssh_mount_options_expand_build_args_and_set_the_socket_owner() {
    let d = Daemon::with_busybox();
    let sock = d.dir.path().join("agent2.sock");
    let _agent = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let df = "FROM busybox\nARG AGENT\nARG OWNER=0\n\
              RUN --mount=type=ssh,id=$AGENT,uid=${OWNER},required stat -c '%a %u %g' \"$SSH_AUTH_SOCK\" > /owned\n\
              RUN --mount=type=ssh,id=${AGENT},required,mode=0640,gid=$OWNER stat -c '%a %u %g' \"$SSH_AUTH_SOCK\" > /mode\n";
    let dir = context(&d, &[("Dockerfile", df)]);
    let s = format!("named={}", sock.display());
    build(&d, &dir, &["-t", "ssh-opts", "--ssh", &s, "--build-arg", "AGENT=named", "--build-arg", "OWNER=1000"]).ok();
    let cat = |f: &str| d.berth(&["run", "--rm", "--network", "none", "ssh-opts", "cat", f]).ok();
    assert_eq!(cat("/owned"), "600 1000 0\n");
    assert_eq!(cat("/mode"), "640 0 1000\n");
    // Control: the id is the build arg's value; one naming no agent the build was given
    // fails the required mount.
    let err = build(&d, &dir, &["--ssh", &s, "--build-arg", "AGENT=other"]).fails();
    assert!(err.contains("no SSH agent for id \"other\""), "{err}");
}
