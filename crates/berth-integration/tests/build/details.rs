//! Builder details a Docker user meets (issue 16, point 18): the Go SDK's `null` query
//! parameters, the default PATH, `-f -` with a directory context, git contexts,
//! `--rm=false`, multi-stage ARG scoping, `--cache-from` with loaded images, and EXPOSE's
//! text in history and the cache.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use super::*;
use berth_integration::unique;

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The docker CLI with the classic builder: (exit code, stdout, stderr).
fn docker_build(d: &Daemon, args: &[&str], stdin: Option<&[u8]>) -> (i32, String, String) {
    let mut c = d.docker_cmd();
    c.env("DOCKER_BUILDKIT", "0").arg("build").args(args);
    let o = match stdin {
        None => c.stdin(Stdio::null()).output().unwrap(),
        Some(input) => {
            use std::io::Write;
            let mut child = c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
            child.stdin.take().unwrap().write_all(input).unwrap();
            child.wait_with_output().unwrap()
        }
    };
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A tar holding one Dockerfile, as a raw API client sends the context.
fn dockerfile_tar(text: &str) -> Vec<u8> {
    let mut t = raw_tar_entry(b"Dockerfile", text.as_bytes());
    t.extend_from_slice(&[0u8; 1024]);
    t
}

#[test]
fn null_json_query_parameters_are_accepted() {
    let d = Daemon::with_busybox();
    let tag = unique("sdk");
    // What the Go SDK (and compose v2) send for a build without args, labels or cache-from.
    let path = format!(
        "/v1.45/build?t={tag}&buildargs=null&labels=null&cachefrom=null&ulimits=null&outputs=null&networkmode=none&rm=1"
    );
    let (status, body) = d.api("POST", &path, &dockerfile_tar("FROM busybox\nLABEL built=yes\n"));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Successfully built") && !body.contains("errorDetail"), "{body}");
    assert_eq!(inspect(&d, &tag, "{{.Config.Labels.built}}"), "yes");
    // A wrong type is still refused, naming the parameter.
    let (status, body) = d.api("POST", "/v1.45/build?buildargs=[1]", &dockerfile_tar("FROM busybox\n"));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("buildargs"), "{body}");
}

#[test]
fn stages_get_the_default_path_when_their_base_has_none() {
    let d = Daemon::with_busybox();
    // The imported busybox sets no environment at all.
    assert!(!d.docker(&["image", "inspect", "-f", "{{json .Config.Env}}", "busybox"]).ok().contains("PATH"));
    let dir = context(&d, &[("Dockerfile", "FROM busybox\nENV A=1\nRUN echo \"$PATH\" > /path\n"), ("f", "x")]);
    let (code, out, err) = docker_build(&d, &["--network", "none", "-t", "withpath", &dir.display().to_string()], None);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        d.docker(&["image", "inspect", "-f", "{{json .Config.Env}}", "withpath"]).ok().trim(),
        format!(r#"["{DEFAULT_PATH}","A=1"]"#)
    );
    assert_eq!(
        d.docker(&["run", "--rm", "--network", "none", "withpath", "cat", "/path"]).ok().trim(),
        DEFAULT_PATH.trim_start_matches("PATH=")
    );
    // FROM scratch gets it too.
    let scratch = context(&d, &[("Dockerfile", "FROM scratch\nCOPY f /f\n"), ("f", "x")]);
    let (code, out, err) =
        docker_build(&d, &["--network", "none", "-t", "scratchpath", &scratch.display().to_string()], None);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        d.docker(&["image", "inspect", "-f", "{{json .Config.Env}}", "scratchpath"]).ok().trim(),
        format!(r#"["{DEFAULT_PATH}"]"#)
    );
    // A base that sets its own PATH keeps it.
    for (tag, df) in [("optpath", "FROM withpath\nENV PATH=/opt/bin\n"), ("ownpath", "FROM optpath\nLABEL a=b\n")] {
        let own = context(&d, &[("Dockerfile", df)]);
        let (code, out, err) = docker_build(&d, &["--network", "none", "-t", tag, &own.display().to_string()], None);
        assert_eq!(code, 0, "{out}{err}");
    }
    assert_eq!(
        d.docker(&["image", "inspect", "-f", "{{json .Config.Env}}", "ownpath"]).ok().trim(),
        r#"["PATH=/opt/bin","A=1"]"#
    );
}

#[test]
fn a_dockerfile_on_stdin_builds_with_a_directory_context() {
    let d = Daemon::with_busybox();
    let dir = context(
        &d,
        &[("msg", "from the directory\n"), ("Dockerfile", "FROM busybox\nCMD [\"echo\", \"wrong file\"]\n")],
    );
    let df = b"FROM busybox\nCOPY . /ctx/\nCMD [\"cat\", \"/ctx/msg\"]\n";
    let (code, out, err) =
        docker_build(&d, &["--network", "none", "-t", "stdindf", "-f", "-", &dir.display().to_string()], Some(df));
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(d.docker(&["run", "--rm", "--network", "none", "stdindf"]).ok(), "from the directory\n");
    // The Dockerfile the CLI adds under a random name stays out of COPY, as in Docker.
    let listed = d.docker(&["run", "--rm", "--network", "none", "stdindf", "ls", "-a", "/ctx"]).ok();
    assert!(!listed.contains(".dockerfile."), "{listed}");
}

/// A git repository served by `git daemon` on 127.0.0.1: `main` has a Dockerfile at the
/// root; branch `other` has one in `sub/`. Killed on drop.
struct GitServer {
    child: std::process::Child,
    port: u16,
}

impl Drop for GitServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn git(dir: &Path, args: &[&str]) {
    let st = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "git {args:?}");
}

fn git_server(d: &Daemon) -> GitServer {
    let base = d.dir.path().join(unique("git"));
    let repo = base.join("repo.git");
    std::fs::create_dir_all(repo.join("sub")).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("Dockerfile"), "FROM busybox\nCOPY msg /msg\nCMD [\"cat\", \"/msg\"]\n").unwrap();
    std::fs::write(repo.join("msg"), "from main\n").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "main"]);
    git(&repo, &["checkout", "-q", "-b", "other"]);
    std::fs::write(repo.join("sub/Dockerfile"), "FROM busybox\nCOPY note /note\nCMD [\"cat\", \"/note\"]\n").unwrap();
    std::fs::write(repo.join("sub/note"), "from other:sub\n").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "other"]);
    git(&repo, &["checkout", "-q", "main"]);
    let port = berth_integration::free_port();
    let mut child = Command::new("git")
        .args(["daemon", "--verbose", "--export-all", "--reuseaddr", "--listen=127.0.0.1"])
        .arg(format!("--port={port}"))
        .arg(format!("--base-path={}", base.display()))
        .arg(&base)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    loop {
        match lines.next() {
            Some(Ok(l)) if l.contains("Ready to rumble") => break,
            Some(Ok(_)) => {}
            _ => panic!("git daemon did not start"),
        }
    }
    std::thread::spawn(move || for _ in lines.by_ref() {});
    GitServer { child, port }
}

#[test]
fn git_url_contexts_are_cloned() {
    let d = Daemon::with_busybox();
    let server = git_server(&d);
    let url = format!("git://127.0.0.1:{}/repo.git", server.port);
    // berth's CLI and a raw API client send the URL (`remote=`): the daemon clones it.
    d.berth(&["build", "--network", "none", "-t", "gitmain", &url]).ok();
    assert_eq!(d.docker(&["run", "--rm", "--network", "none", "gitmain"]).ok(), "from main\n");
    let remote = format!("{url}%23other:sub");
    let (status, body) = d.api("POST", &format!("/build?remote={remote}&t=gitsub&networkmode=none"), b"");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Successfully tagged gitsub:latest"), "{body}");
    assert_eq!(d.docker(&["run", "--rm", "--network", "none", "gitsub"]).ok(), "from other:sub\n");
    // The docker CLI clones on the client and sends the checkout.
    let (code, out, err) = docker_build(&d, &["--network", "none", "-t", "gitcli", &format!("{url}#other:sub")], None);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(d.docker(&["run", "--rm", "--network", "none", "gitcli"]).ok(), "from other:sub\n");
    // A ref that does not exist is an error naming the URL.
    let err = d.berth(&["build", "-t", "gitbad", &format!("{url}#nosuchbranch")]).fails();
    assert!(err.contains("unable to prepare context") && err.contains("repo.git"), "{err}");
}

#[test]
fn git_contexts_without_git_and_web_pages_fail_clearly() {
    let mut d = Daemon::start();
    // No git client on the daemon's PATH.
    let empty = d.dir.path().join("empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    d.stop();
    d.env.push(("PATH".into(), empty.display().to_string()));
    d.spawn();
    let port = berth_integration::free_port();
    let (status, body) = d.api("POST", &format!("/build?remote=git://127.0.0.1:{port}/repo.git&t=nogit"), b"");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("unable to find 'git'"), "{body}");
    // A web page (text/html) is not read as a Dockerfile.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = l.accept().unwrap();
        let mut req = Vec::new();
        let mut buf = [0u8; 1024];
        while !req.ends_with(b"\r\n\r\n") {
            let n = s.read(&mut buf).unwrap();
            req.extend_from_slice(&buf[..n]);
        }
        let page = "<!DOCTYPE html><html><body>FROM busybox</body></html>";
        write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
            page.len()
        )
        .unwrap();
    });
    let (status, body) = d.api("POST", &format!("/build?remote=http://127.0.0.1:{port}/user/repo&t=webpage"), b"");
    server.join().unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("text/html") && body.contains("errorDetail"), "{body}");
    assert!(!body.contains("Step 1/"), "{body}");
}

#[test]
fn rm_false_keeps_the_intermediate_containers() {
    let d = Daemon::with_busybox();
    let dir = context(&d, &[("Dockerfile", "FROM busybox\nRUN echo one > /one\nRUN echo two > /two\n")]);
    let ctx = dir.display().to_string();
    let (code, out, err) = docker_build(&d, &["--network", "none", "--rm=false", "-t", "kept", &ctx], None);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("Removed intermediate container"), "{out}");
    let kept = d.docker(&["ps", "-aq", "--no-trunc"]).ok();
    assert_eq!(kept.lines().count(), 2, "{kept}");
    for id in out.lines().filter_map(|l| l.strip_prefix(" ---> Running in ")) {
        assert!(kept.contains(id.trim()), "{id} not kept: {kept}");
    }
    // The default removes them.
    let (code, out, err) = docker_build(&d, &["--network", "none", "--no-cache", "-t", "removed", &ctx], None);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.matches("Removed intermediate container").count(), 2, "{out}");
    assert_eq!(d.docker(&["ps", "-aq", "--no-trunc"]).ok(), kept);
}

#[test]
fn global_args_are_seen_only_by_from_unless_redeclared() {
    let d = Daemon::with_busybox();
    let df = "ARG IMG=busybox\nARG V=global\nFROM $IMG AS first\nARG S=first-stage\nRUN echo \"first: IMG=[$IMG] V=[$V] S=[$S]\" > /out\nFROM ${IMG}\nARG V\nCOPY --from=first /out /first\nRUN cat /first > /out && echo \"second: IMG=[$IMG] V=[$V] S=[$S]\" >> /out\nCMD [\"cat\", \"/out\"]\n";
    let dir = context(&d, &[("Dockerfile", df)]);
    let (code, out, err) = docker_build(
        &d,
        &["--network", "none", "--build-arg", "V=given", "-t", "argscope", &dir.display().to_string()],
        None,
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        d.docker(&["run", "--rm", "--network", "none", "argscope"]).ok(),
        "first: IMG=[] V=[] S=[first-stage]\nsecond: IMG=[] V=[given] S=[]\n"
    );
}

#[test]
fn cache_from_uses_images_loaded_from_another_daemon() {
    let df = "FROM busybox\nRUN echo built once > /once && cat /proc/sys/kernel/random/uuid >> /once\nCOPY f /f\nENV A=1\nCMD [\"cat\", \"/once\"]\n";
    let saved;
    let first;
    {
        let a = Daemon::with_busybox();
        let dir = context(&a, &[("Dockerfile", df), ("f", "file\n")]);
        let (code, out, err) =
            docker_build(&a, &["--network", "none", "-t", "cached:1", &dir.display().to_string()], None);
        assert_eq!(code, 0, "{out}{err}");
        first = a.docker(&["run", "--rm", "--network", "none", "cached:1"]).ok();
        saved = a.dir.path().join("cached.tar");
        // busybox travels with it: an import stamps the time, so a busybox imported into the
        // second daemon in another second would be another base image.
        a.docker(&["save", "-o", &saved.display().to_string(), "cached:1", "busybox"]).ok();
        let b = Daemon::start();
        b.docker(&["load", "-i", &saved.display().to_string()]).ok();
        let id = b.docker(&["image", "inspect", "-f", "{{.Id}}", "cached:1"]).ok();
        let dir = context(&b, &[("Dockerfile", df), ("f", "file\n")]);
        let ctx = dir.display().to_string();
        // Without --cache-from the loaded image is no cache: RUN runs.
        let (code, out, err) = docker_build(&b, &["--network", "none", "-t", "fresh", &ctx], None);
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("Running in"), "{out}");
        let (code, out, err) =
            docker_build(&b, &["--network", "none", "--cache-from", "cached:1", "-t", "rebuilt", &ctx], None);
        assert_eq!(code, 0, "{out}{err}");
        assert_eq!(steps_cached(&out), 4, "{out}");
        assert!(!out.contains("Running in"), "{out}");
        assert_eq!(b.docker(&["image", "inspect", "-f", "{{.Id}}", "rebuilt"]).ok(), id);
        assert_eq!(b.docker(&["run", "--rm", "--network", "none", "rebuilt"]).ok(), first);
        // A changed step and what follows it are built; the steps before still hit.
        let changed = context(&b, &[("Dockerfile", df), ("f", "changed\n")]);
        let (code, out, err) = docker_build(
            &b,
            &["--network", "none", "--cache-from", "cached:1", "-t", "partly", &changed.display().to_string()],
            None,
        );
        assert_eq!(code, 0, "{out}{err}");
        assert_eq!(steps_cached(&out), 1, "{out}");
        assert_eq!(b.docker(&["run", "--rm", "--network", "none", "partly"]).ok(), first);
    }
}

#[test]
fn expose_is_committed_as_written_and_its_order_counts() {
    let d = Daemon::with_busybox();
    let a = context(&d, &[("Dockerfile", "FROM busybox\nEXPOSE 80 443/tcp 53/udp\n")]);
    let b = context(&d, &[("Dockerfile", "FROM busybox\nEXPOSE 53/udp 443/tcp 80\n")]);
    let (code, out, err) = docker_build(&d, &["--network", "none", "-t", "expa", &a.display().to_string()], None);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = docker_build(&d, &["--network", "none", "-t", "expb", &b.display().to_string()], None);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(steps_cached(&out), 0, "another order is another step, as in Docker: {out}");
    let history = |t: &str| d.docker(&["history", "--no-trunc", "--format", "{{.CreatedBy}}", t]).ok();
    assert!(history("expa").contains("/bin/sh -c #(nop)  EXPOSE 80 443/tcp 53/udp\n"), "{}", history("expa"));
    assert!(history("expb").contains("/bin/sh -c #(nop)  EXPOSE 53/udp 443/tcp 80\n"), "{}", history("expb"));
    let ports = |t: &str| d.docker(&["image", "inspect", "-f", "{{json .Config.ExposedPorts}}", t]).ok();
    assert_eq!(ports("expa"), ports("expb"));
}

/// `ADD <git URL>` is named by the Dockerfile: git runs with none of the daemon's own git
/// settings (config, credentials, SSH keys, agent). Here the daemon's HOME rewrites the
/// server's URL to a dead port: ADD still clones; a context URL, which the client names,
/// is cloned with the daemon's settings, as dockerd does (the control: it fails).
#[test]
fn add_of_a_git_url_never_uses_the_daemons_git_settings() {
    let mut d = Daemon::with_busybox();
    let server = git_server(&d);
    let url = format!("git://127.0.0.1:{}/repo.git", server.port);
    let home = d.dir.path().join("daemon-home");
    std::fs::create_dir_all(&home).unwrap();
    let dead = berth_integration::free_port();
    std::fs::write(
        home.join(".gitconfig"),
        format!("[url \"git://127.0.0.1:{dead}/\"]\n\tinsteadOf = git://127.0.0.1:{}/\n", server.port),
    )
    .unwrap();
    d.stop();
    d.env.push(("HOME".into(), home.display().to_string()));
    d.spawn();
    let dir = context(&d, &[("Dockerfile", &format!("FROM busybox\nADD {url} /src\nCMD [\"cat\", \"/src/msg\"]\n"))]);
    d.berth(&["build", "--network", "none", "-t", "addgit", &dir.display().to_string()]).ok();
    assert_eq!(d.docker(&["run", "--rm", "--network", "none", "addgit"]).ok(), "from main\n");
    let err = d.berth(&["build", "--network", "none", "-t", "ctxgit", &url]).fails();
    assert!(err.contains("unable to prepare context"), "{err}");
}
