//! Contexts: .dockerignore, stdin, URLs, and bad input.

use super::*;

#[test]
fn dockerignore_keeps_files_out() {
    let d = Daemon::with_busybox();
    let dir = context(
        &d,
        &[
            ("Dockerfile", "FROM busybox\nCOPY . /ctx/\n"),
            (".dockerignore", "# comment\n*.log\nsecret/\n**/tmp*\n!keep.log\nDockerfile\n"),
            ("app.txt", "app"),
            ("debug.log", "no"),
            ("keep.log", "yes"),
            ("secret/key", "no"),
            ("a/b/tmpfile", "no"),
            ("a/b/real", "yes"),
        ],
    );
    build(&d, &dir, &["-t", "ignored"]).ok();
    let out = d.berth(&["run", "--rm", "--network", "none", "ignored", "find", "/ctx", "-type", "f"]).ok();
    let mut files: Vec<&str> = out.lines().collect();
    files.sort();
    assert_eq!(files, vec!["/ctx/.dockerignore", "/ctx/a/b/real", "/ctx/app.txt", "/ctx/keep.log"]);
    // Building never changes the context.
    assert!(dir.join("debug.log").exists() && dir.join("secret/key").exists());
}

#[test]
fn stdin_contexts() {
    let d = Daemon::with_busybox();
    // A bare Dockerfile on stdin.
    let r = d.berth_stdin(&["build", "--network", "none", "-t", "fromstdin", "-"], b"FROM busybox\nLABEL via=stdin\n");
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(inspect(&d, "fromstdin", "{{.Config.Labels.via}}"), "stdin");
    // `-f -` with a directory context.
    let dir = context(&d, &[("data.txt", "data")]);
    let r = d.berth_stdin(
        &["build", "-q", "-f", "-", "-t", "dfstdin", dir.to_str().unwrap()],
        b"FROM busybox\nCOPY data.txt /\n",
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.trim().starts_with("sha256:"), "-q prints the ID: {r:?}");
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", "dfstdin", "cat", "/data.txt"]).ok(), "data");
    // A Dockerfile elsewhere, and --iidfile.
    let df = d.dir.path().join("elsewhere.Dockerfile");
    std::fs::write(&df, "FROM busybox\nCOPY data.txt /again\n").unwrap();
    let iid = d.dir.path().join("iid");
    build(&d, &dir, &["-f", df.to_str().unwrap(), "--iidfile", iid.to_str().unwrap(), "-t", "elsewhere"]).ok();
    assert_eq!(std::fs::read_to_string(iid).unwrap(), inspect(&d, "elsewhere", "{{.Id}}"));
}

#[test]
fn remote_contexts_from_tar_and_dockerfile_urls() {
    let d = Daemon::with_busybox();
    let src = context(
        &d,
        &[("Dockerfile", "FROM busybox\nCOPY msg /msg\nCMD [\"cat\", \"/msg\"]\n"), ("msg", "from a remote tar\n")],
    );
    let tgz = d.dir.path().join(berth_integration::unique("ctx")).with_extension("tar.gz");
    let ok = std::process::Command::new("tar").arg("-C").arg(&src).arg("-czf").arg(&tgz).arg(".").status().unwrap();
    assert!(ok.success());
    let files = vec![
        ("/ctx.tar.gz", std::fs::read(&tgz).unwrap()),
        ("/Dockerfile", b"FROM busybox\nRUN echo from a remote Dockerfile > /msg\nCMD [\"cat\", \"/msg\"]\n".to_vec()),
    ];
    let (port, server) = serve(files, 4);
    let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
    d.berth(&["build", "--network", "none", "-t", "remote-tar", &url("/ctx.tar.gz")]).ok();
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", "remote-tar"]).ok(), "from a remote tar\n");
    d.berth(&["build", "--network", "none", "-t", "remote-df", &url("/Dockerfile")]).ok();
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", "remote-df"]).ok(), "from a remote Dockerfile\n");
    // The docker CLI sends the URL for the daemon to fetch, too.
    d.docker(&["build", "--network", "none", "-t", "remote-docker", &url("/ctx.tar.gz")]).ok();
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", "remote-docker"]).ok(), "from a remote tar\n");
    let err = d.berth(&["build", "-t", "remote-missing", &url("/missing.tar")]).fails();
    assert!(err.contains("404") && err.contains("/missing.tar"), "{err}");
    server.join().unwrap();
    let err = d.berth(&["build", "-t", "remote-git", "git://127.0.0.1/repo.git"]).fails();
    assert!(err.contains("unable to prepare context") && err.contains("git://127.0.0.1/repo.git"), "{err}");
    assert_eq!(d.berth(&["images", "-q", "remote-missing"]).ok() + &d.berth(&["images", "-q", "remote-git"]).ok(), "");
}

#[test]
fn bad_input_gives_clear_errors() {
    let d = Daemon::with_busybox();
    let dir = context(&d, &[("other", "x")]);
    assert!(build(&d, &dir, &[]).fails().contains("Cannot locate specified Dockerfile: Dockerfile"));
    let dir = context(&d, &[("Dockerfile", "FROM busybox\nFORM x\n")]);
    assert!(build(&d, &dir, &[]).fails().contains("dockerfile parse error on line 2: unknown instruction: FORM"));
    let dir = context(&d, &[("Dockerfile", "FROM busybox\nCOPY --from=nosuchstage /a /a\n")]);
    let err = build(&d, &dir, &[]).fails();
    // Not a stage: an image, pulled as dockerd does (and refused by the registry).
    assert!(err.contains("invalid from flag value nosuchstage: pull access denied for nosuchstage"), "{err}");
    let dir = context(&d, &[("Dockerfile", "FROM nosuchimage:1\n")]);
    let err = build(&d, &dir, &[]).fails();
    assert!(err.contains("pull access denied for nosuchimage, repository does not exist"), "{err}");
    let dir = context(&d, &[("Dockerfile", "FROM busybox\nCOPY missing.txt /\n")]);
    let err = build(&d, &dir, &[]).fails();
    assert!(err.contains("file not found in build context or excluded by .dockerignore: stat missing.txt"), "{err}");
    let dir = context(&d, &[("Dockerfile", "FROM busybox\nCOPY ../outside /\n")]);
    assert!(build(&d, &dir, &[]).fails().contains("forbidden path outside the build context"));
    let dir = context(&d, &[("Dockerfile", "FROM busybox\nCOPY a b /dest\n"), ("a", ""), ("b", "")]);
    assert!(build(&d, &dir, &[]).fails().contains("the destination must be a directory and end with a /"));
    // The daemon keeps serving, and no container or image was left behind.
    assert_eq!(d.berth(&["ps", "-aq"]).ok(), "");
}
