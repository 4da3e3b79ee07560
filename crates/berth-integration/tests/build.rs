//! `build`: Dockerfiles built through the daemon, checked the way a user would (run the
//! image, inspect it, read the build output). RUN steps use `--network none`.

use std::path::{Path, PathBuf};

use berth_integration::{Daemon, Run};

/// A build context directory with the given files.
fn context(d: &Daemon, files: &[(&str, &str)]) -> PathBuf {
    let dir = d.dir.path().join(berth_integration::unique("ctx"));
    for (name, content) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn build(d: &Daemon, dir: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["build", "--network", "none"];
    args.extend_from_slice(extra);
    let ctx = dir.display().to_string();
    args.push(&ctx);
    d.berth(&args)
}

fn inspect(d: &Daemon, image: &str, format: &str) -> String {
    d.berth(&["image", "inspect", "-f", format, image]).ok().trim().to_string()
}

#[test]
fn a_simple_build_runs_and_tags() {
    let d = Daemon::with_busybox();
    let dir = context(&d, &[("Dockerfile", "FROM busybox\nRUN echo built > /built.txt && echo from-run\nCMD [\"cat\", \"/built.txt\"]\n"), ("x", "x")]);
    let out = build(&d, &dir, &["-t", "simple:1", "-t", "simple:2"]).ok();
    assert!(out.contains("Step 1/3 : FROM busybox\n"), "{out}");
    assert!(out.contains("Step 2/3 : RUN echo built > /built.txt && echo from-run\n"), "{out}");
    assert!(out.contains(" ---> Running in "), "{out}");
    assert!(out.contains("from-run\n"), "{out}");
    assert!(out.contains("Successfully built "), "{out}");
    assert!(out.contains("Successfully tagged simple:1\n") && out.contains("Successfully tagged simple:2\n"), "{out}");
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", "simple:1"]).ok(), "built\n");
    assert_eq!(d.berth(&["ps", "-aq"]).ok(), "", "no intermediate container is left");
}

fn steps_cached(out: &str) -> usize {
    out.matches(" ---> Using cache").count()
}

#[test]
fn config_instructions_reach_the_image() {
    let d = Daemon::with_busybox();
    let dockerfile = r#"FROM busybox
ARG GREETING=hello
ENV APP_HOME=/srv/app MSG="$GREETING world"
LABEL org.example.name="demo app" version=1
MAINTAINER someone@example.com
EXPOSE 8080 53/udp
WORKDIR $APP_HOME
WORKDIR sub
USER nobody
VOLUME ["/data"]
STOPSIGNAL SIGKILL
HEALTHCHECK --interval=5s --retries=2 CMD true
SHELL ["/bin/sh", "-ec"]
ONBUILD RUN echo triggered
ENTRYPOINT ["/bin/echo", "ep"]
CMD ["default"]
"#;
    let dir = context(&d, &[("Dockerfile", dockerfile)]);
    build(&d, &dir, &["-t", "cfg", "--build-arg", "GREETING=hi", "--build-arg", "UNUSED=1"]).ok();
    assert_eq!(inspect(&d, "cfg", "{{json .Config.Env}}"), r#"["APP_HOME=/srv/app","MSG=hi world"]"#);
    assert_eq!(inspect(&d, "cfg", "{{index .Config.Labels \"org.example.name\"}} {{.Config.Labels.version}}"), "demo app 1");
    assert_eq!(inspect(&d, "cfg", "{{.Author}}"), "someone@example.com");
    assert_eq!(inspect(&d, "cfg", "{{json .Config.ExposedPorts}}"), r#"{"53/udp":{},"8080/tcp":{}}"#);
    assert_eq!(inspect(&d, "cfg", "{{.Config.WorkingDir}} {{.Config.User}} {{.Config.StopSignal}}"), "/srv/app/sub nobody SIGKILL");
    assert_eq!(inspect(&d, "cfg", "{{json .Config.Volumes}}"), r#"{"/data":{}}"#);
    assert_eq!(inspect(&d, "cfg", "{{json .Config.Healthcheck.Test}} {{.Config.Healthcheck.Retries}}"), r#"["CMD-SHELL","true"] 2"#);
    assert_eq!(inspect(&d, "cfg", "{{json .Config.Shell}} {{json .Config.OnBuild}}"), r#"["/bin/sh","-ec"] ["RUN echo triggered"]"#);
    assert_eq!(inspect(&d, "cfg", "{{json .Config.Entrypoint}} {{json .Config.Cmd}}"), r#"["/bin/echo","ep"] ["default"]"#);
    // At run time arguments replace CMD and are appended to ENTRYPOINT; WORKDIR exists.
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", "cfg"]).ok(), "ep default\n");
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", "cfg", "given"]).ok(), "ep given\n");
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", "--entrypoint", "pwd", "cfg"]).ok(), "/srv/app/sub\n");
}

#[test]
fn user_and_shell_change_how_later_runs_execute() {
    let d = Daemon::with_busybox();
    let df = "FROM busybox\nUSER nobody\nRUN echo \"uid=$(id -u)\"\nUSER root\nSHELL [\"/bin/echo\", \"through-shell\"]\nRUN hello\nUSER 65534:65534\n";
    let dir = context(&d, &[("Dockerfile", df)]);
    let out = build(&d, &dir, &["-t", "user-shell"]).ok();
    assert!(out.contains("uid=65534\n"), "RUN runs as the USER: {out}");
    assert!(out.contains("through-shell hello\n"), "RUN's shell form goes through SHELL: {out}");
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", "user-shell", "id", "-u"]).ok(), "65534\n", "the image runs as its last USER");
}

#[test]
fn build_args_and_the_unused_warning() {
    let d = Daemon::with_busybox();
    let df = "ARG BASE=busybox\nFROM $BASE\nARG V=default\nARG BASE\nRUN echo \"v=$V base=$BASE\" > /out\nENV V=env-wins\nRUN echo \"after=$V\" >> /out\nCMD [\"cat\", \"/out\"]\n";
    let dir = context(&d, &[("Dockerfile", df)]);
    let out = build(&d, &dir, &["-t", "args", "--build-arg", "V=given", "--build-arg", "NOPE=1"]).ok();
    assert!(out.contains("[Warning] One or more build-args [NOPE] were not consumed"), "{out}");
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", "args"]).ok(), "v=given base=busybox\nafter=env-wins\n");
    // Build args are not kept in the image's environment.
    assert!(!inspect(&d, "args", "{{json .Config.Env}}").contains("given"));
    // ...but they are part of RUN's cache key: a different value reruns it.
    let again = build(&d, &dir, &["-t", "args", "--build-arg", "V=other"]).ok();
    assert!(!again.contains("Step 5/8 : RUN echo \"v=$V base=$BASE\" > /out\n ---> Using cache"), "{again}");
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", "args"]).ok(), "v=other base=busybox\nafter=env-wins\n");
}

#[test]
fn the_cache_reuses_steps_until_the_first_change() {
    let d = Daemon::with_busybox();
    let mut df = String::from("FROM busybox\nCOPY a.txt /a.txt\nRUN echo one > /one\nRUN echo two > /two\nCMD [\"cat\", \"/a.txt\"]\n");
    let dir = context(&d, &[("Dockerfile", &df), ("a.txt", "content\n")]);
    let first = build(&d, &dir, &["-t", "cached"]).ok();
    assert_eq!(steps_cached(&first), 0, "{first}");
    let id1 = inspect(&d, "cached", "{{.Id}}");

    // Nothing changed: every step is cached and the result is the same image.
    let second = build(&d, &dir, &["-t", "cached"]).ok();
    assert_eq!(steps_cached(&second), 4, "{second}");
    assert!(!second.contains("Running in"), "{second}");
    assert_eq!(inspect(&d, "cached", "{{.Id}}"), id1);

    // Touching a file without changing it keeps the cache.
    let f = std::fs::File::options().write(true).open(dir.join("a.txt")).unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(100)).unwrap();
    let touched = build(&d, &dir, &["-t", "cached"]).ok();
    assert_eq!(steps_cached(&touched), 4, "{touched}");

    // Editing a late line reruns only from there.
    df = df.replace("echo two", "echo TWO");
    std::fs::write(dir.join("Dockerfile"), &df).unwrap();
    let edited = build(&d, &dir, &["-t", "cached"]).ok();
    assert_eq!(steps_cached(&edited), 2, "{edited}");
    assert_eq!(edited.matches("Running in").count(), 1, "{edited}");

    // Changing the copied file's content reruns the COPY and everything after it.
    std::fs::write(dir.join("a.txt"), "changed\n").unwrap();
    let changed = build(&d, &dir, &["-t", "cached"]).ok();
    assert_eq!(steps_cached(&changed), 0, "{changed}");
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", "cached"]).ok(), "changed\n");

    // --no-cache runs everything.
    let nocache = build(&d, &dir, &["-t", "cached", "--no-cache"]).ok();
    assert_eq!(steps_cached(&nocache), 0, "{nocache}");
    assert_eq!(nocache.matches("Running in").count(), 2, "{nocache}");
}

#[test]
fn the_cache_survives_a_daemon_restart() {
    let mut d = Daemon::with_busybox();
    let dir = context(&d, &[("Dockerfile", "FROM busybox\nRUN echo x > /x\nLABEL a=b\n")]);
    build(&d, &dir, &["-t", "persist"]).ok();
    d.restart();
    let out = build(&d, &dir, &["-t", "persist"]).ok();
    assert_eq!(steps_cached(&out), 2, "{out}");
}

#[test]
fn history_has_one_row_per_step() {
    let d = Daemon::with_busybox();
    let dir = context(&d, &[("Dockerfile", "FROM busybox\nENV A=1\nCOPY f /f\nRUN echo hi > /g\nCMD [\"sh\"]\n"), ("f", "f")]);
    build(&d, &dir, &["-t", "hist"]).ok();
    let rows = d.berth(&["history", "--no-trunc", "--format", "{{.CreatedBy}}", "hist"]).ok();
    let rows: Vec<&str> = rows.lines().collect();
    assert_eq!(rows[0], r#"/bin/sh -c #(nop)  CMD ["sh"]"#, "{rows:?}");
    assert_eq!(rows[1], "/bin/sh -c echo hi > /g", "{rows:?}");
    assert!(rows[2].starts_with("/bin/sh -c #(nop) COPY file:") && rows[2].ends_with(" in /f "), "{rows:?}");
    assert_eq!(rows[3], "/bin/sh -c #(nop)  ENV A=1", "{rows:?}");
    assert_eq!(rows.len(), 5, "the four steps and the base image's row: {rows:?}");
}

#[test]
fn multi_stage_copies_from_stages_and_images_and_skips_unneeded_ones() {
    let d = Daemon::with_busybox();
    let df = r#"FROM busybox AS build
RUN mkdir /out && echo artifact > /out/app && echo second > /out/other
FROM busybox AS unused
RUN exit 7
FROM busybox
COPY --from=build /out/app /app
COPY --from=0 /out/other /other
COPY --from=busybox /bin/busybox /copied-busybox
CMD ["cat", "/app", "/other"]
"#;
    let dir = context(&d, &[("Dockerfile", df)]);
    let out = build(&d, &dir, &["-t", "multi"]).ok();
    assert!(!out.contains("exit 7"), "the unused stage is skipped: {out}");
    assert!(out.contains("Step 1/7 : FROM busybox AS build"), "{out}");
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", "multi"]).ok(), "artifact\nsecond\n");
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", "multi", "sh", "-c", "test -x /copied-busybox && echo ok"]).ok(), "ok\n");

    // --target stops at a stage.
    let out = build(&d, &dir, &["-t", "multi-build", "--target", "build"]).ok();
    assert!(out.contains("Step 2/2 :"), "{out}");
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", "multi-build", "cat", "/out/app"]).ok(), "artifact\n");
    let err = build(&d, &dir, &["--target", "unused"]).fails();
    assert!(err.contains("The command '/bin/sh -c exit 7' returned a non-zero code: 7"), "{err}");
}

/// Two stages that can only finish together: one waits for a connection the other makes.
/// Built one after the other, the listener would time out and fail the build.
#[test]
fn independent_stages_build_in_parallel_and_print_in_order() {
    let d = Daemon::with_busybox();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let df = format!(
        r#"FROM busybox AS listener
RUN timeout 60 nc -l -p {port} -e sh -c 'head -c 5 > /got' && test -s /got
FROM busybox AS talker
RUN i=0; until echo hello | nc 127.0.0.1 {port}; do i=$((i+1)); [ $i -lt 600 ] || exit 1; sleep 0.1; done
FROM busybox
COPY --from=listener /got /got
COPY --from=talker /bin/busybox /talker-busybox
CMD ["cat", "/got"]
"#
    );
    let dir = context(&d, &[("Dockerfile", &df)]);
    let out = d.berth(&["build", "--network", "host", "-t", "parallel", &dir.display().to_string()]).ok();
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", "parallel"]).ok(), "hello");
    let steps: Vec<&str> = out.lines().filter(|l| l.starts_with("Step ")).collect();
    assert_eq!(steps.len(), 8, "{out}");
    for (i, l) in steps.iter().enumerate() {
        assert!(l.starts_with(&format!("Step {}/8 : ", i + 1)), "steps are shown in order: {out}");
    }
    let listener = out.find("Step 2/8").unwrap();
    let talker = out.find("Step 3/8").unwrap();
    assert!(out[listener..talker].contains(" ---> Running in "), "each stage's output stays together: {out}");

    // A failing stage fails the build with its own error; nothing is tagged or left running.
    let df = "FROM busybox AS fine\nRUN echo fine > /f\nFROM busybox AS bad\nRUN exit 3\nFROM busybox\nCOPY --from=fine /f /f\nCOPY --from=bad /etc/passwd /p\n";
    let dir = context(&d, &[("Dockerfile", df)]);
    let r = build(&d, &dir, &["-t", "parallel-bad"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("The command '/bin/sh -c exit 3' returned a non-zero code: 3"), "{r:?}");
    assert_eq!(d.berth(&["images", "-q", "parallel-bad"]).ok(), "");
    assert_eq!(d.berth(&["ps", "-aq"]).ok(), "");
}

#[test]
fn a_failing_run_ends_the_build_with_dockers_message() {
    let d = Daemon::with_busybox();
    let dir = context(&d, &[("Dockerfile", "FROM busybox\nRUN echo before\nRUN exit 1\nRUN echo never\n")]);
    let r = build(&d, &dir, &["-t", "failing"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("The command '/bin/sh -c exit 1' returned a non-zero code: 1"), "{r:?}");
    assert!(!r.stdout.contains("never"), "{r:?}");
    assert!(d.berth(&["image", "inspect", "failing"]).code != 0, "nothing is tagged");
    assert_eq!(d.berth(&["ps", "-aq"]).ok(), "", "the failed step's container is removed");
    let dir = context(&d, &[("Dockerfile", "FROM busybox\nRUN exit 3\n")]);
    assert_eq!(build(&d, &dir, &[]).code, 3, "the CLI exits with the command's code");
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
    assert!(err.contains("invalid from flag value nosuchstage") && err.contains("No such image"), "{err}");
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

/// A tar of `files` compressed with `flag` (`""`, `-z`, `-j`, `-J`, `--zstd`).
fn make_tar(dir: &Path, name: &str, flag: &str, files: &[(&str, &str)]) {
    let src = dir.join(format!("{name}.src"));
    for (f, c) in files {
        let p = src.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, c).unwrap();
    }
    let mut cmd = std::process::Command::new("tar");
    cmd.arg("-C").arg(&src).arg("-c");
    if !flag.is_empty() {
        cmd.arg(flag);
    }
    let st = cmd.arg("-f").arg(dir.join(name)).arg(".").status().unwrap();
    assert!(st.success());
    std::fs::remove_dir_all(src).unwrap();
}

#[test]
fn add_extracts_local_archives_and_copy_does_not() {
    let d = Daemon::with_busybox();
    let dir = context(&d, &[]);
    for (name, flag) in [("plain.tar", ""), ("g.tar.gz", "-z"), ("b.tar.bz2", "-j"), ("x.tar.xz", "-J"), ("z.tar.zst", "--zstd")] {
        make_tar(&dir, name, flag, &[(&format!("{name}.d/inside.txt"), name)]);
    }
    let df = "FROM busybox\nADD plain.tar g.tar.gz b.tar.bz2 x.tar.xz z.tar.zst /ex/\nCOPY g.tar.gz /copied/\n";
    std::fs::write(dir.join("Dockerfile"), df).unwrap();
    build(&d, &dir, &["-t", "adds"]).ok();
    let out = d
        .berth(&["run", "--rm", "--network", "none", "adds", "sh", "-c", "cat /ex/*.d/inside.txt; echo; ls /copied"])
        .ok();
    assert_eq!(out, "b.tar.bz2g.tar.gzplain.tarx.tar.xzz.tar.zst\ng.tar.gz\n");
}

#[test]
fn add_refuses_archives_that_escape() {
    let d = Daemon::with_busybox();
    let dir = context(&d, &[]);
    // A tar whose member climbs out of the destination.
    let mut h = [0u8; 512];
    let name = b"../../escaped";
    h[..name.len()].copy_from_slice(name);
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(b"00000000002\0");
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| *b as u32).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut tar = h.to_vec();
    tar.extend_from_slice(b"hi");
    tar.resize(512 * 2, 0);
    tar.resize(512 * 4, 0);
    std::fs::write(dir.join("evil.tar"), tar).unwrap();
    std::fs::write(dir.join("Dockerfile"), "FROM busybox\nADD evil.tar /dest/\n").unwrap();
    let err = build(&d, &dir, &["-t", "evil"]).fails();
    assert!(err.contains("refused archive entry") || err.contains("escape"), "{err}");
    assert!(d.berth(&["image", "inspect", "evil"]).code != 0);
}

#[test]
fn add_downloads_urls_without_unpacking() {
    use std::io::{Read, Write};
    let d = Daemon::with_busybox();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut req = Vec::new();
        let mut buf = [0u8; 1024];
        while !req.ends_with(b"\r\n\r\n") {
            let n = s.read(&mut buf).unwrap();
            req.extend_from_slice(&buf[..n]);
        }
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\ndownload\n").unwrap();
    });
    let df = format!("FROM busybox\nADD http://127.0.0.1:{port}/files/remote.txt /r/\n");
    let dir = context(&d, &[("Dockerfile", &df)]);
    build(&d, &dir, &["-t", "url"]).ok();
    server.join().unwrap();
    let out = d.berth(&["run", "--rm", "--network", "none", "url", "sh", "-c", "cat /r/remote.txt; stat -c %a /r/remote.txt"]).ok();
    assert_eq!(out, "download\n600\n");
}

/// Serves `files` (path → body) on 127.0.0.1 for `requests` requests.
fn serve(files: Vec<(&'static str, Vec<u8>)>, requests: usize) -> (u16, std::thread::JoinHandle<()>) {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        for _ in 0..requests {
            let (mut s, _) = l.accept().unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.ends_with(b"\r\n\r\n") {
                let n = s.read(&mut buf).unwrap();
                req.extend_from_slice(&buf[..n]);
            }
            let path = String::from_utf8_lossy(&req).split(' ').nth(1).unwrap_or("").to_string();
            match files.iter().find(|(p, _)| *p == path) {
                Some((_, body)) => {
                    write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).unwrap();
                    s.write_all(body).unwrap();
                }
                None => s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap(),
            }
        }
    });
    (port, t)
}

#[test]
fn remote_contexts_from_tar_and_dockerfile_urls() {
    let d = Daemon::with_busybox();
    let src = context(&d, &[("Dockerfile", "FROM busybox\nCOPY msg /msg\nCMD [\"cat\", \"/msg\"]\n"), ("msg", "from a remote tar\n")]);
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
    assert!(err.contains("git repository is not supported"), "{err}");
    assert_eq!(d.berth(&["images", "-q", "remote-missing"]).ok() + &d.berth(&["images", "-q", "remote-git"]).ok(), "");
}

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
fn copy_destinations_owners_and_modes() {
    let d = Daemon::with_busybox();
    let df = "FROM busybox
WORKDIR /w
COPY f1 rel/
COPY f1 renamed
COPY dir /tree
COPY --chown=postgres:postgres --chmod=640 f1 f2 /owned/
COPY *.glob /globbed/
COPY <<EOF /inline.txt
heredoc $HOME
EOF
RUN <<EOF
echo from-heredoc > /run-heredoc
EOF
";
    let dir = context(
        &d,
        &[("Dockerfile", df), ("f1", "one"), ("f2", "two"), ("dir/sub/x", "x"), ("dir/y", "y"), ("a.glob", "a"), ("b.glob", "b")],
    );
    build(&d, &dir, &["-t", "copies"]).ok();
    let script = "cat /w/rel/f1 /w/renamed; echo; ls /tree /tree/sub; stat -c '%U:%G %a' /owned/f1 /owned/f2; ls /globbed; cat /inline.txt /run-heredoc";
    let out = d.berth(&["run", "--rm", "--network", "none", "copies", "sh", "-c", script]).ok();
    assert_eq!(out, "oneone\n/tree:\nsub\ny\n\n/tree/sub:\nx\npostgres:postgres 640\npostgres:postgres 640\na.glob\nb.glob\nheredoc \nfrom-heredoc\n");
}

#[test]
fn volume_discards_later_run_changes_and_onbuild_triggers_run_in_children() {
    let d = Daemon::with_busybox();
    let parent = "FROM busybox\nRUN mkdir /data && echo kept > /data/a\nVOLUME /data\nRUN echo lost > /data/b && echo changed > /data/a\nONBUILD RUN echo triggered > /trigger\n";
    let dir = context(&d, &[("Dockerfile", parent)]);
    build(&d, &dir, &["-t", "onbuild-parent"]).ok();
    let out = d.berth(&["run", "--rm", "--network", "none", "onbuild-parent", "sh", "-c", "ls /data; cat /data/a; ls /trigger 2>&1 || true"]).ok();
    assert!(out.starts_with("a\nkept\n"), "{out}");
    let dir = context(&d, &[("Dockerfile", "FROM onbuild-parent\nRUN cat /trigger\n")]);
    let child = build(&d, &dir, &["-t", "onbuild-child"]).ok();
    assert!(child.contains("# Executing 1 build trigger"), "{child}");
    assert!(child.contains("triggered\n"), "{child}");
    assert!(!inspect(&d, "onbuild-child", "{{json .Config.OnBuild}}").contains("triggered"), "triggers run once, in the direct child only");
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
    let r = d.berth_stdin(&["build", "-q", "-f", "-", "-t", "dfstdin", dir.to_str().unwrap()], b"FROM busybox\nCOPY data.txt /\n");
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
fn labels_from_the_command_line_and_builder_prune() {
    let d = Daemon::with_busybox();
    let dir = context(&d, &[("Dockerfile", "FROM busybox\nRUN echo a > /a\n")]);
    let out = build(&d, &dir, &["-t", "labeled", "--label", "team=core"]).ok();
    assert!(out.contains("Step 3/3 : LABEL \"team\"=\"core\""), "{out}");
    assert_eq!(inspect(&d, "labeled", "{{.Config.Labels.team}}"), "core");
    // An untagged earlier build is cache only: prune removes it, keeps the tagged one.
    let dir2 = context(&d, &[("Dockerfile", "FROM busybox\nRUN echo b > /b\n")]);
    build(&d, &dir2, &[]).ok();
    let pruned = d.berth(&["builder", "prune", "-f"]).ok();
    assert!(pruned.contains("Deleted: sha256:"), "{pruned}");
    assert!(pruned.contains("Total:"), "{pruned}");
    let again = build(&d, &dir, &["-t", "labeled", "--label", "team=core"]).ok();
    assert_eq!(steps_cached(&again), 2, "the tagged image's steps stay cached: {again}");
    let again2 = build(&d, &dir2, &[]).ok();
    assert_eq!(steps_cached(&again2), 0, "{again2}");
    d.berth(&["builder", "prune", "-a", "-f"]).ok();
    let after_all = build(&d, &dir, &["-t", "labeled", "--label", "team=core"]).ok();
    assert_eq!(steps_cached(&after_all), 0, "{after_all}");
}

#[test]
fn the_docker_cli_builds_through_berth() {
    let d = Daemon::with_busybox();
    let dir = context(&d, &[("Dockerfile", "FROM busybox\nCOPY msg /msg\nRUN cat /msg\nCMD [\"cat\", \"/msg\"]\n"), ("msg", "hello docker\n")]);
    let run = |args: &[&str]| {
        let mut c = d.docker_cmd();
        c.env("DOCKER_BUILDKIT", "0").args(args);
        let o = c.output().unwrap();
        (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    let ctx = dir.display().to_string();
    let (code, out, err) = run(&["build", "--network", "none", "-t", "viadocker:1", &ctx]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("Step 1/4 : FROM busybox") && out.contains("hello docker") && out.contains("Successfully tagged viadocker:1"), "{out}");
    let (code, out, _) = run(&["build", "--network", "none", "-t", "viadocker:1", &ctx]);
    assert_eq!(code, 0);
    assert_eq!(steps_cached(&out), 3, "{out}");
    assert_eq!(d.docker(&["run", "--rm", "--network", "none", "viadocker:1"]).ok(), "hello docker\n");
    // A failing build: docker shows Docker's message and exits with the command's code.
    let bad = context(&d, &[("Dockerfile", "FROM busybox\nRUN exit 2\n")]);
    let (code, _, err) = run(&["build", "--network", "none", &bad.display().to_string()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("The command '/bin/sh -c exit 2' returned a non-zero code: 2"), "{err}");
}

#[test]
fn identical_layers_twice_and_steps_that_change_nothing() {
    let d = Daemon::with_busybox();
    // The two COPYs make byte-identical layers; the RUN after them must still start.
    let df = "FROM busybox\nCOPY f /f\nRUN true\nCOPY f /f\nRUN cat /f\nRUN echo err >&2\n";
    let dir = context(&d, &[("Dockerfile", df), ("f", "same\n")]);
    let out = build(&d, &dir, &["-t", "dupes"]).ok();
    assert!(out.contains("same\n"), "{out}");
    assert!(out.contains("\u{1b}[91merr\n\u{1b}[0m"), "stderr is shown in red, as Docker does: {out:?}");
    let sizes = d.berth(&["history", "--format", "{{.Size}}", "dupes"]).ok();
    let sizes: Vec<&str> = sizes.lines().collect();
    assert_eq!(sizes[..5], ["0B", "0B", "5B", "0B", "5B"], "RUN steps that change nothing add no bytes");
}

#[test]
fn cache_from_and_debug_cache_key() {
    let d = Daemon::with_busybox();
    let dir = context(&d, &[("Dockerfile", "FROM busybox\nENV FOO=bar\nRUN touch /baz\n")]);
    build(&d, &dir, &["-t", "cf1"]).ok();
    let out = build(&d, &dir, &["-t", "cf2", "--cache-from", "cf1"]).ok();
    assert_eq!(steps_cached(&out), 2, "{out}");
    let out = build(&d, &dir, &["-t", "cf3", "--cache-from", "nosuchtag"]).ok();
    assert_eq!(steps_cached(&out), 0, "only the named images are cache sources: {out}");
    let out = build(&d, &dir, &["--debug-cache-key"]).ok();
    assert!(out.contains(" ---> cache key sha256:") && out.contains("instruction: ENV FOO=bar") && out.contains("run: [\"/bin/sh\",\"-c\",\"touch /baz\"]"), "{out}");
}
