//! Registries: berth's own registry server, berth's daemon pulling and pushing through it
//! (with berth's CLI and the docker CLI), login/logout with htpasswd and token auth, search,
//! the `registry` image run as a container, and Debian's docker-registry (distribution 2.8)
//! when it is installed. All traffic stays on 127.0.0.1.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use berth_integration::{Daemon, Registry, Run, berth_bin, free_port, unique};

mod https;

/// Commits a container that ran `script` (a shell command in busybox) as the image `name`.
fn image_from(d: &Daemon, prefix: &str, script: &str, name: &str) {
    let c = unique(prefix);
    d.berth(&["run", "--name", &c, "--network", "none", "busybox", "sh", "-c", script]).ok();
    d.berth(&["commit", &c, name]).ok();
    d.berth(&["rm", &c]).ok();
}

/// `berth` against `d` with its own Docker client configuration directory.
fn berth_cfg(d: &Daemon, cfg: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    use std::io::Write;
    let mut child = Command::new(berth_bin())
        .arg("-H")
        .arg(d.host())
        .args(args)
        .env("DOCKER_CONFIG", cfg)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    let o = child.wait_with_output().unwrap();
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// The digest in a push's last line (`t: digest: sha256:… size: N`).
fn pushed_digest(out: &str) -> String {
    let l = out.lines().find(|l| l.contains(": digest: ")).unwrap_or_else(|| panic!("no digest line in {out:?}"));
    l.split(": digest: ").nth(1).unwrap().split_whitespace().next().unwrap().to_string()
}

fn repo_digests(d: &Daemon, name: &str) -> String {
    d.berth(&["image", "inspect", "--format", "{{json .RepoDigests}}", name]).ok()
}

#[test]
fn push_remove_pull_and_run_through_berths_registry() {
    let d = Daemon::with_busybox();
    let reg = Registry::open();
    let name = format!("{}/team/bb:t1", reg.addr);
    d.berth(&["tag", "busybox", &name]).ok();
    let out = d.berth(&["push", &name]).ok();
    assert!(out.contains(&format!("The push refers to repository [{}/team/bb]", reg.addr)), "{out}");
    assert!(out.contains(": Pushed"), "{out}");
    let digest = pushed_digest(&out);
    assert!(repo_digests(&d, &name).contains(&format!("{}/team/bb@{digest}", reg.addr)));

    let id = d.berth(&["image", "inspect", "--format", "{{.Id}}", &name]).ok();
    let rmi = d.berth(&["rmi", "busybox", &name]).ok();
    assert!(rmi.contains("Deleted: "), "{rmi}");
    d.berth(&["image", "inspect", id.trim()]).fails();

    let out = d.berth(&["pull", &name]).ok();
    assert!(out.contains("Pull complete"), "{out}");
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
    assert!(out.contains(&format!("Status: Downloaded newer image for {name}")), "{out}");
    assert_eq!(
        d.berth(&["image", "inspect", "--format", "{{.Id}}", &name]).ok(),
        id,
        "the pulled image has the pushed image's ID"
    );
    assert_eq!(d.berth(&["run", "--rm", &name, "echo", "pulled and running"]).ok(), "pulled and running\n");
    let again = d.berth(&["pull", &name]).ok();
    assert!(again.contains(&format!("Status: Image is up to date for {name}")), "{again}");
}

#[test]
fn a_build_pulls_a_missing_base_image_and_pull_refreshes_one() {
    let d = Daemon::with_busybox();
    let reg = Registry::open();
    let base = format!("{}/bases/marked:1", reg.addr);
    image_from(&d, "mark", "echo base-layer > /marker", &base);
    d.berth(&["push", &base]).ok();
    d.berth(&["rmi", &base]).ok();
    d.berth(&["image", "inspect", &base]).fails();

    let dir = d.dir.path().join(unique("ctx"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), format!("FROM {base}\nRUN cat /marker > /copied\n")).unwrap();
    let ctx = dir.display().to_string();
    let out = d.berth(&["build", "--network", "none", "-t", "on-pulled", &ctx]).ok();
    assert!(out.contains("Pulling from bases/marked"), "{out}");
    assert!(out.contains(&format!("Status: Downloaded newer image for {base}")), "{out}");
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", "on-pulled", "cat", "/copied"]).ok(), "base-layer\n");

    // --pull asks the registry even though the image is here now.
    let out = d.berth(&["build", "--pull", "--network", "none", "-t", "on-pulled", &ctx]).ok();
    assert!(out.contains(&format!("Status: Image is up to date for {base}")), "{out}");

    // A base the registry does not have either: a clear error, nothing tagged.
    std::fs::write(dir.join("Dockerfile"), format!("FROM {}/bases/absent:1\nRUN true\n", reg.addr)).unwrap();
    let err = d.berth(&["build", "--network", "none", "-t", "on-absent", &ctx]).fails();
    assert!(err.contains("pull access denied for") && err.contains("bases/absent"), "{err}");
    d.berth(&["image", "inspect", "on-absent"]).fails();
}

#[test]
fn a_pull_through_cache_serves_and_keeps_what_the_remote_has() {
    let d = Daemon::with_busybox();
    let upstream = Registry::open();
    let up_name = format!("{}/team/app:1", upstream.addr);
    image_from(&d, "cached", "echo from-upstream > /origin", &up_name);
    d.berth(&["push", &up_name]).ok();
    d.berth(&["rmi", &up_name]).ok();

    let remote = format!("http://{}", upstream.addr);
    let cache = Registry::berth(|_| vec!["--proxy-remote".into(), remote.clone()]);
    let name = format!("{}/team/app:1", cache.addr);
    let out = d.berth(&["pull", &name]).ok();
    assert!(out.contains("Status: Downloaded newer image"), "{out}");
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", &name, "cat", "/origin"]).ok(), "from-upstream\n");

    // The cache accepts no pushes, and says why.
    let mine = format!("{}/team/mine:1", cache.addr);
    d.berth(&["tag", "busybox", &mine]).ok();
    let err = d.berth(&["push", &mine]).fails();
    assert!(err.contains("pull-through cache"), "{err}");

    // Something the remote does not have is the remote's "unknown".
    let err = d.berth(&["pull", &format!("{}/team/absent:1", cache.addr)]).fails();
    assert!(err.contains("manifest unknown") || err.contains("not found"), "{err}");

    // With the remote gone, what the cache kept is still served, by tag and by digest.
    drop(upstream);
    d.berth(&["rmi", &name]).ok();
    let out = d.berth(&["pull", &name]).ok();
    assert!(out.contains("Status: Downloaded newer image"), "{out}");
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", &name, "cat", "/origin"]).ok(), "from-upstream\n");
    let err = d.berth(&["pull", &format!("{}/team/other:1", cache.addr)]).fails();
    assert!(err.contains(&remote), "an unreachable remote is named: {err}");
}

#[test]
fn a_second_push_uploads_only_missing_blobs_and_mounts_across_repositories() {
    let d = Daemon::with_busybox();
    let reg = Registry::open();
    let a = format!("{}/a:1", reg.addr);
    let b = format!("{}/b:1", reg.addr);
    d.berth(&["tag", "busybox", &a]).ok();
    d.berth(&["tag", "busybox", &b]).ok();
    assert!(d.berth(&["push", &a]).ok().contains(": Pushed"));
    let blobs = || {
        std::fs::read_dir(reg.dir.path().join("data/blobs/sha256"))
            .unwrap()
            .flat_map(|e| std::fs::read_dir(e.unwrap().path()).unwrap())
            .count()
    };
    let before = blobs();
    let again = d.berth(&["push", &a]).ok();
    assert!(again.contains(": Layer already exists"), "{again}");
    assert!(!again.contains(": Pushed"), "{again}");
    let other = d.berth(&["push", &b]).ok();
    assert!(other.contains(": Mounted from a"), "{other}");
    // Nothing new: b's manifest is a's, byte for byte, and the layer was mounted.
    assert_eq!(blobs(), before);
    // Pushing a repository without a tag and -a pushes every tag of it.
    d.berth(&["tag", "busybox", &format!("{}/a:2", reg.addr)]).ok();
    let all = d.berth(&["push", "-a", &format!("{}/a", reg.addr)]).ok();
    assert!(all.contains("1: digest: ") && all.contains("2: digest: "), "{all}");
}

#[test]
fn pull_by_digest_and_all_tags() {
    let d = Daemon::with_busybox();
    let reg = Registry::open();
    let name = format!("{}/dig:v1", reg.addr);
    d.berth(&["tag", "busybox", &name]).ok();
    let digest = pushed_digest(&d.berth(&["push", &name]).ok());
    d.berth(&["tag", "busybox", &format!("{}/dig:v2", reg.addr)]).ok();
    d.berth(&["push", &format!("{}/dig:v2", reg.addr)]).ok();
    d.berth(&["rmi", "busybox", &name, &format!("{}/dig:v2", reg.addr)]).ok();

    let by_digest = format!("{}/dig@{digest}", reg.addr);
    let out = d.berth(&["pull", &by_digest]).ok();
    assert!(out.contains(&format!("Status: Downloaded newer image for {by_digest}")), "{out}");
    assert_eq!(d.berth(&["run", "--rm", &by_digest, "true"]).code, 0);
    let listed = d.berth(&["images", "--digests", "--format", "{{.Repository}} {{.Digest}}"]).ok();
    assert!(listed.contains(&format!("{}/dig {digest}", reg.addr)), "{listed}");
    // A digest that does not match what the registry serves is refused.
    let wrong = format!("{}/dig@sha256:{}", reg.addr, "0".repeat(64));
    let e = d.berth(&["pull", &wrong]).fails();
    assert!(e.contains("not found"), "{e}");

    let out = d.berth(&["pull", "-a", &format!("{}/dig", reg.addr)]).ok();
    assert!(out.contains("v1: Pulling from dig") && out.contains("v2: Pulling from dig"), "{out}");
    let tags = d.berth(&["images", "--format", "{{.Tag}}", &format!("{}/dig", reg.addr)]).ok();
    assert!(tags.contains("v1") && tags.contains("v2"), "{tags}");
}

#[test]
fn unknown_images_and_unreachable_registries_are_clear_errors() {
    let d = Daemon::with_busybox();
    let reg = Registry::open();
    let e = d.berth(&["pull", &format!("{}/nope:1", reg.addr)]).fails();
    assert!(e.contains(&format!("manifest for {}/nope:1 not found", reg.addr)), "{e}");
    let e = d.berth(&["push", &format!("{}/missing:1", reg.addr)]).fails();
    assert!(e.contains("An image does not exist locally with the tag"), "{e}");
    let e = d.berth(&["pull", &format!("127.0.0.1:{}/x", free_port())]).fails();
    assert!(e.contains("connection refused") || e.contains("Connection refused"), "{e}");
}

#[test]
fn login_logout_and_authenticated_push_with_htpasswd() {
    for token in [false, true] {
        let d = Daemon::with_busybox();
        let reg = Registry::with_htpasswd("alice", "s3cret", token);
        let cfg = d.dir.path().join(unique("cfg"));
        let name = format!("{}/private:1", reg.addr);
        d.berth(&["tag", "busybox", &name]).ok();

        let e = berth_cfg(&d, &cfg, &["push", &name], None).fails();
        assert!(e.contains("unauthorized") || e.contains("authentication required"), "token={token}: {e}");
        let e = berth_cfg(&d, &cfg, &["login", "-u", "alice", "--password-stdin", &reg.addr], Some("wrong\n")).fails();
        assert!(e.contains("unauthorized") || e.contains("401"), "token={token}: {e}");
        assert!(
            !cfg.join("config.json").exists()
                || !std::fs::read_to_string(cfg.join("config.json")).unwrap().contains(&reg.addr)
        );

        let out = berth_cfg(&d, &cfg, &["login", "-u", "alice", "--password-stdin", &reg.addr], Some("s3cret\n")).ok();
        assert_eq!(out, "Login Succeeded\n");
        let conf: serde_json::Value = serde_json::from_slice(&std::fs::read(cfg.join("config.json")).unwrap()).unwrap();
        assert_eq!(conf["auths"][&reg.addr]["auth"], "YWxpY2U6czNjcmV0", "base64 of alice:s3cret");

        let out = berth_cfg(&d, &cfg, &["push", &name], None).ok();
        assert!(out.contains(": Pushed"), "token={token}: {out}");
        berth_cfg(&d, &cfg, &["rmi", "busybox", &name], None).ok();
        assert!(berth_cfg(&d, &cfg, &["pull", &name], None).ok().contains("Pull complete"));
        let found = berth_cfg(&d, &cfg, &["search", "--format", "{{.Name}}", &format!("{}/priv", reg.addr)], None).ok();
        assert_eq!(found, "private\n", "token={token}");

        assert_eq!(
            berth_cfg(&d, &cfg, &["logout", &reg.addr], None).ok(),
            format!("Removing login credentials for {}\n", reg.addr)
        );
        berth_cfg(&d, &cfg, &["rmi", &name], None).ok();
        let e = berth_cfg(&d, &cfg, &["pull", &name], None).fails();
        assert!(e.contains("pull access denied") || e.contains("unauthorized"), "token={token}: {e}");
    }
}

#[test]
fn search_lists_matching_repositories() {
    let d = Daemon::with_busybox();
    let reg = Registry::open();
    for r in ["findme/one", "findme/two", "other"] {
        let n = format!("{}/{r}:1", reg.addr);
        d.berth(&["tag", "busybox", &n]).ok();
        d.berth(&["push", &n]).ok();
    }
    let out = d.berth(&["search", &format!("{}/findme", reg.addr)]).ok();
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("NAME") && lines[0].contains("DESCRIPTION") && lines[0].contains("STARS"), "{out}");
    assert_eq!(lines.len(), 3, "{out}");
    let one = d.berth(&["search", "--limit", "1", "--format", "{{.Name}}", &format!("{}/findme", reg.addr)]).ok();
    assert_eq!(one.lines().count(), 1, "{one}");
    let none =
        d.berth(&["search", "--filter", "stars=1", "--format", "{{.Name}}", &format!("{}/findme", reg.addr)]).ok();
    assert_eq!(none, "");
}

/// Docker Hub names come from the daemon's `registry-mirrors`, tried in order (one that does
/// not answer is passed over; the mirror here has what is asked for, so nothing falls back to
/// the Hub), and `docker info` lists the mirrors and the insecure ranges. A mirror that is not
/// an http(s) URL stops the daemon at start, naming it.
#[test]
fn hub_names_are_pulled_from_the_mirrors_in_order() {
    let mut d = Daemon::with_busybox();
    let reg = Registry::open();
    let repo = unique("mirrored");
    let on_mirror = format!("{}/library/{repo}:1", reg.addr);
    image_from(&d, "mir", "echo from-the-mirror > /marker", &on_mirror);
    d.berth(&["push", &on_mirror]).ok();
    let user_repo = format!("{}/someone/{repo}:2", reg.addr);
    d.berth(&["tag", &on_mirror, &user_repo]).ok();
    d.berth(&["push", &user_repo]).ok();
    d.berth(&["rmi", &on_mirror, &user_repo]).ok();

    let dead = free_port();
    d.set_config(&format!(r#""registry-mirrors": ["http://127.0.0.1:{dead}", "http://{}"]"#, reg.addr));
    d.restart();
    let out = d.berth(&["pull", &format!("{repo}:1")]).ok();
    assert!(out.contains(&format!("Status: Downloaded newer image for {repo}:1")), "{out}");
    assert_eq!(
        d.berth(&["run", "--rm", "--network", "none", &format!("{repo}:1"), "cat", "/marker"]).ok(),
        "from-the-mirror\n"
    );
    let out = d.docker(&["pull", &format!("someone/{repo}:2")]).ok();
    assert!(out.contains(&format!("docker.io/someone/{repo}:2")), "{out}");

    let info = d.docker(&["info"]).ok();
    let mirrors = format!(" Registry Mirrors:\n  http://127.0.0.1:{dead}/\n  http://{}/\n", reg.addr);
    assert!(info.contains(&mirrors), "{info}");
    assert!(info.contains(" Insecure Registries:\n") && info.contains("  127.0.0.0/8\n"), "{info}");

    d.stop();
    d.set_config(r#""registry-mirrors": ["ftp://mirror.example"]"#);
    let err = d.try_spawn().unwrap_err();
    assert!(err.contains(r#"invalid mirror: unsupported scheme "ftp" in "ftp://mirror.example""#), "{err}");
}

#[test]
fn the_docker_cli_pushes_and_pulls_through_berth() {
    let d = Daemon::with_busybox();
    let reg = Registry::with_htpasswd("bob", "pw", false);
    let name = format!("{}/viadocker:1", reg.addr);
    d.docker(&["tag", "busybox", &name]).ok();
    let out = d.docker_stdin(&["login", "-u", "bob", "--password-stdin", &reg.addr], b"pw\n").ok();
    assert!(out.contains("Login Succeeded"), "{out}");
    let out = d.docker(&["push", &name]).ok();
    assert!(out.contains(": Pushed") && out.contains("1: digest: sha256:"), "{out}");
    d.docker(&["rmi", "busybox", &name]).ok();
    let out = d.docker(&["pull", &name]).ok();
    assert!(out.contains("Pull complete") && out.contains(&format!("Downloaded newer image for {name}")), "{out}");
    assert_eq!(d.docker(&["run", "--rm", &name, "echo", "via docker"]).ok(), "via docker\n");
    let digests = d.docker(&["image", "inspect", "--format", "{{join .RepoDigests \",\"}}", &name]).ok();
    assert!(digests.contains(&format!("{}/viadocker@sha256:", reg.addr)), "{digests}");
    let e = d.docker_stdin(&["login", "-u", "bob", "--password-stdin", &reg.addr], b"nope\n").fails();
    assert!(e.contains("401") || e.contains("unauthorized"), "{e}");
}

/// Waits for a container's log to say the registry listens (an event, not a delay).
fn wait_for_log(d: &Daemon, id: &str, needle: &str) {
    let mut logs = Command::new(berth_bin())
        .arg("-H")
        .arg(d.host())
        .args(["logs", "-f", id])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = logs.stderr.take().unwrap();
    let found = BufReader::new(err).lines().map_while(Result::ok).any(|l| l.contains(needle));
    let _ = logs.kill();
    let _ = logs.wait();
    assert!(found, "the container never logged {needle:?}");
}

#[test]
fn the_registry_image_serves_from_a_container() {
    let d = Daemon::with_busybox();
    let out = Command::new(berth_bin()).args(["registry", "image", "-H", &d.host()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let store = d.dir.path().join("myregistry");
    let port = free_port();
    let id = d
        .berth(&[
            "run",
            "-d",
            "-p",
            &format!("127.0.0.1:{port}:5000"),
            "--restart=always",
            "-v",
            &format!("{}:/var/lib/registry", store.display()),
            "registry",
        ])
        .ok();
    wait_for_log(&d, id.trim(), "listening on 0.0.0.0:5000");
    let name = format!("127.0.0.1:{port}/incontainer:1");
    d.berth(&["tag", "busybox", &name]).ok();
    assert!(d.berth(&["push", &name]).ok().contains(": Pushed"));
    assert!(store.join("repositories/incontainer").is_dir(), "the registry stores into the volume");
    d.berth(&["rmi", "busybox", &name]).ok();
    assert!(d.berth(&["pull", &name]).ok().contains("Pull complete"));
    assert_eq!(d.berth(&["run", "--rm", &name, "echo", "round trip"]).ok(), "round trip\n");
}

#[test]
fn interop_with_debians_docker_registry() {
    let bin = PathBuf::from("/usr/bin/docker-registry");
    if !bin.exists() {
        println!(
            "skipping interop_with_debians_docker_registry: /usr/bin/docker-registry is not installed (apt-get install docker-registry)"
        );
        return;
    }
    let d = Daemon::with_busybox();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = dir.path().join("config.yml");
    std::fs::write(
        &cfg,
        format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(&bin)
        .arg("serve")
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let guard = Registry { child, addr: format!("127.0.0.1:{port}"), dir };
    let mut lines = lines;
    let ready = lines.by_ref().map_while(Result::ok).any(|l| l.contains("listening on"));
    std::thread::spawn(move || for _ in lines {});
    assert!(ready, "docker-registry did not start");

    let name = format!("{}/interop:1", guard.addr);
    d.berth(&["tag", "busybox", &name]).ok();
    let out = d.berth(&["push", &name]).ok();
    assert!(out.contains(": Pushed"), "{out}");
    assert!(d.berth(&["push", &name]).ok().contains("Layer already exists"));
    d.berth(&["rmi", "busybox", &name]).ok();
    assert!(d.berth(&["pull", &name]).ok().contains("Pull complete"));
    assert_eq!(d.berth(&["run", "--rm", &name, "echo", "from distribution"]).ok(), "from distribution\n");
}

/// A TCP relay to `upstream` on a loopback port that cuts every connection once `limit`
/// bytes have come back from upstream. It stops when dropped.
struct CuttingRelay {
    addr: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl CuttingRelay {
    fn start(upstream: &str, limit: usize) -> CuttingRelay {
        use std::io::{Read, Write};
        use std::net::{Shutdown, TcpListener, TcpStream};
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (up, stop2) = (upstream.to_string(), stop.clone());
        std::thread::spawn(move || {
            while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok((client, _)) = l.accept() else {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    continue;
                };
                let _ = client.set_nonblocking(false);
                let Ok(server) = TcpStream::connect(&up) else { continue };
                let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c_in, &mut s_out);
                });
                std::thread::spawn(move || {
                    let (mut s_in, mut c_out) = (server, client);
                    let mut sent = 0;
                    let mut buf = [0u8; 16384];
                    while let Ok(n) = s_in.read(&mut buf) {
                        if n == 0 || sent + n > limit {
                            break;
                        }
                        if c_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        sent += n;
                    }
                    let _ = c_out.shutdown(Shutdown::Both);
                    let _ = s_in.shutdown(Shutdown::Both);
                });
            }
        });
        CuttingRelay { addr, stop }
    }
}

impl Drop for CuttingRelay {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

#[test]
fn a_connection_cut_mid_pull_leaves_nothing_half_made() {
    let d = Daemon::with_busybox();
    let reg = Registry::open();
    // An image with a layer of several megabytes of incompressible data.
    let name = format!("{}/cut/big:1", reg.addr);
    image_from(&d, "big", "head -c 6000000 /dev/urandom > /blob", &name);
    d.berth(&["push", &name]).ok();
    d.berth(&["rmi", &name]).ok();

    // Through the relay, the connection dies a megabyte into the layer.
    let relay = CuttingRelay::start(&reg.addr, 1_000_000);
    let via = format!("{}/cut/big:1", relay.addr);
    let r = d.berth(&["pull", &via]);
    assert_ne!(r.code, 0, "a cut pull cannot succeed: {}", r.stdout);
    assert!(!r.stderr.contains("tls:"), "the error is the cut, not the HTTPS probe before it: {}", r.stderr);
    let images = d.berth(&["images", "--format", "{{.Repository}}:{{.Tag}}"]).ok();
    assert!(!images.contains("cut/big"), "nothing half-pulled is listed: {images}");
    let check = d.berth(&["system", "check"]).ok();
    assert!(check.contains("no problems found"), "{check}");

    // The same image pulls whole once the path is good.
    d.berth(&["pull", &name]).ok();
    assert_eq!(
        d.berth(&["run", "--rm", "--network", "none", &name, "sh", "-c", "wc -c < /blob"]).ok().trim(),
        "6000000"
    );
}

/// The largest blob file under a registry's data directory (a layer, in these tests).
fn largest_blob(dir: &Path) -> PathBuf {
    let mut best: Option<(u64, PathBuf)> = None;
    let mut stack = vec![dir.join("data/blobs")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else if best.as_ref().is_none_or(|(n, _)| m.len() > *n) {
                best = Some((m.len(), e.path()));
            }
        }
    }
    best.expect("the registry holds blobs").1
}

#[test]
fn a_layer_whose_bytes_do_not_match_its_digest_is_refused() {
    let d = Daemon::with_busybox();
    let reg = Registry::open();
    let name = format!("{}/tamper/bb:1", reg.addr);
    d.berth(&["tag", "busybox", &name]).ok();
    d.berth(&["push", &name]).ok();
    d.berth(&["rmi", "busybox", &name]).ok();

    // Still valid gzip of the same tar, with other bytes: only the blob digest can tell.
    // (Byte 9 of a gzip header names the operating system that wrote it.)
    let blob = largest_blob(reg.dir.path());
    let good = std::fs::read(&blob).unwrap();
    assert_eq!(&good[..2], &[0x1f, 0x8b], "the layer blob is gzip");
    let mut bad = good.clone();
    bad[9] ^= 0x01;
    std::fs::write(&blob, &bad).unwrap();
    let r = d.berth(&["pull", &name]);
    assert_ne!(r.code, 0, "a tampered layer cannot be pulled: {}", r.stdout);
    assert!(r.stderr.contains("verification failed"), "{}", r.stderr);
    let images = d.berth(&["images", "--format", "{{.Repository}}:{{.Tag}}"]).ok();
    assert!(!images.contains("tamper/bb"), "nothing is listed: {images}");
    let check = d.berth(&["system", "check"]).ok();
    assert!(check.contains("no problems found"), "{check}");

    std::fs::write(&blob, &good).unwrap();
    assert!(d.berth(&["pull", &name]).ok().contains("Pull complete"));
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", &name, "echo", "whole again"]).ok(), "whole again\n");
}

#[test]
fn go_clients_read_the_gzip_layers_berth_pushes() {
    if Command::new("skopeo").arg("--version").output().is_err() {
        println!("skipping go_clients_read_the_gzip_layers_berth_pushes: needs skopeo");
        return;
    }
    let d = Daemon::with_busybox();
    let reg = Registry::open();
    // Incompressible data (pushed as stored gzip members) and text (deflated members).
    let fill =
        "head -c 3000000 /dev/urandom > /random && seq 1 300000 > /text && head -c 1500000 /dev/urandom >> /text";
    let name = format!("{}/go/mix:1", reg.addr);
    image_from(&d, "mix", fill, &name);
    d.berth(&["push", &name]).ok();
    let id = d.berth(&["image", "inspect", "--format", "{{.Id}}", &name]).ok();
    let sums = d.berth(&["run", "--rm", "--network", "none", &name, "sh", "-c", "md5sum /random /text"]).ok();

    // skopeo (containers/image, Go's compress/gzip) decompresses every layer for a
    // docker-archive; berth loads that back as the same image with the same files.
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("mix.tar");
    let out = Command::new("skopeo")
        .args([
            "copy",
            "-q",
            "--src-tls-verify=false",
            &format!("docker://{name}"),
            &format!("docker-archive:{}:{name}", archive.display()),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "skopeo: {}", String::from_utf8_lossy(&out.stderr));
    d.berth(&["rmi", &name]).ok();
    d.berth(&["load", "-i", &archive.display().to_string()]).ok();
    assert_eq!(d.berth(&["image", "inspect", "--format", "{{.Id}}", &name]).ok(), id);
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", &name, "sh", "-c", "md5sum /random /text"]).ok(), sums);
}

fn curl(args: &[&str]) -> String {
    let o = std::process::Command::new("curl").args(["-s", "--max-time", "30"]).args(args).output().unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_pull_through_cache_serves_a_cached_blob_only_under_a_repository_that_holds_it() {
    let d = Daemon::with_busybox();
    let upstream = Registry::open();
    let up_name = format!("{}/private/app:1", upstream.addr);
    image_from(&d, "secretlayer", "echo private > /origin", &up_name);
    d.berth(&["push", &up_name]).ok();
    let remote = format!("http://{}", upstream.addr);
    let cache = Registry::berth(|_| vec!["--proxy-remote".into(), remote.clone()]);
    d.berth(&["pull", &format!("{}/private/app:1", cache.addr)]).ok();
    let manifest = curl(&[
        "-H",
        "Accept: application/vnd.docker.distribution.manifest.v2+json",
        &format!("http://{}/v2/private/app/manifests/1", cache.addr),
    ]);
    let m: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    let layer = m["layers"].as_array().unwrap().last().unwrap()["digest"].as_str().unwrap().to_string();
    let status = |repo: &str| {
        curl(&["-o", "/dev/null", "-w", "%{http_code}", &format!("http://{}/v2/{repo}/blobs/{layer}", cache.addr)])
    };

    // Control: the repository that holds it gets it.
    assert_eq!(status("private/app"), "200");
    // Another name, which the remote does not have, gets the remote's "unknown" ...
    assert_eq!(status("curious/reader"), "404");
    // ... and does not appear in the catalog.
    let catalog = curl(&[&format!("http://{}/v2/_catalog", cache.addr)]);
    assert!(catalog.contains("private/app") && !catalog.contains("curious"), "{catalog}");
    // A repository the remote has with the same layer is linked (the remote said so).
    let twin = format!("{}/public/twin:1", upstream.addr);
    d.berth(&["tag", &up_name, &twin]).ok();
    d.berth(&["push", &twin]).ok();
    assert_eq!(status("public/twin"), "200");
    // With the remote gone, nobody new gets it.
    drop(upstream);
    assert_ne!(status("another/reader"), "200");
    assert_eq!(status("private/app"), "200");
}
