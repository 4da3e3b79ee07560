//! The API on TCP is root on the host for whoever reaches it. With `--tlsverify` only a
//! client holding a certificate from the daemon's CA gets an answer: a client with no
//! certificate, one from another CA, or one speaking plain HTTP is refused before any
//! request is read, while the same request with the right certificate (the control) goes
//! through. The real docker CLI and berth's own run, exec and attach over TLS (hijacked
//! streams, stdin half-closed). Certificates are made with openssl for each test; everything
//! is on 127.0.0.1.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use berth_integration::{Daemon, Run, berth_bin, free_port, unique};

/// A CA with a server certificate (127.0.0.1, localhost) and a client certificate, and a
/// second, unrelated CA with its own client certificate: `ca.pem`, `server.{pem,key}`,
/// `client.{pem,key}`, `rogue-ca.pem`, `rogue.{pem,key}`. Deleted with the test.
struct Pki(tempfile::TempDir);

impl Pki {
    fn new() -> Pki {
        let pki = Pki(tempfile::tempdir().unwrap());
        pki.ca("ca");
        pki.ca("rogue-ca");
        pki.leaf("server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
        pki.leaf("client", "ca", "extendedKeyUsage=clientAuth\n");
        pki.leaf("rogue", "rogue-ca", "extendedKeyUsage=clientAuth\n");
        pki
    }

    fn p(&self, f: &str) -> String {
        self.0.path().join(f).display().to_string()
    }

    /// Runs openssl in the directory with `args` (split at spaces; names have none).
    fn openssl(&self, args: &str) {
        let out = Command::new("openssl").args(args.split(' ')).current_dir(self.0.path()).output().expect("openssl");
        assert!(out.status.success(), "openssl {args}: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn ca(&self, name: &str) {
        self.openssl(&format!(
            "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=berth-test-{name} \
             -keyout {name}.key -out {name}.pem -addext basicConstraints=critical,CA:TRUE \
             -addext keyUsage=critical,keyCertSign,cRLSign"
        ));
    }

    fn leaf(&self, name: &str, ca: &str, ext: &str) {
        std::fs::write(self.0.path().join(format!("{name}.ext")), format!("basicConstraints=CA:FALSE\n{ext}")).unwrap();
        self.openssl(&format!(
            "req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=berth-test-{name} \
             -keyout {name}.key -out {name}.csr"
        ));
        self.openssl(&format!(
            "x509 -req -in {name}.csr -CA {ca}.pem -CAkey {ca}.key -CAcreateserial -days 2 -extfile {name}.ext \
             -out {name}.pem"
        ));
    }

    /// The docker CLI's TLS flags for a client holding `name`'s certificate.
    fn client_flags(&self, name: &str) -> Vec<String> {
        let mut v = vec!["--tlsverify".to_string(), "--tlscacert".into(), self.p("ca.pem")];
        v.extend([
            "--tlscert".into(),
            self.p(&format!("{name}.pem")),
            "--tlskey".into(),
            self.p(&format!("{name}.key")),
        ]);
        v
    }
}

/// A daemon serving its API on 127.0.0.1:<free port> with `--tlsverify` (and, as always in
/// the harness, on its unix socket, which stays plain), with busybox.
fn tls_daemon(pki: &Pki) -> (Daemon, String) {
    let host = format!("tcp://127.0.0.1:{}", free_port());
    let (ca, cert, key) = (pki.p("ca.pem"), pki.p("server.pem"), pki.p("server.key"));
    let d = Daemon::start_with(&["-H", &host, "--tlsverify", "--tlscacert", &ca, "--tlscert", &cert, "--tlskey", &key]);
    d.import_busybox("busybox:latest");
    (d, host)
}

fn run(cmd: &mut Command, input: Option<&[u8]>) -> Run {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().unwrap();
    if let Some(data) = input {
        // Dropped at the end of the block: stdin ends. A CLI that failed early stops reading.
        let _ = child.stdin.take().unwrap().write_all(data);
    }
    let o = child.wait_with_output().unwrap();
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// The real docker CLI against `host` with `flags` (its config kept in the daemon's tree).
fn docker(d: &Daemon, host: &str, flags: &[String], args: &[&str], input: Option<&[u8]>) -> Run {
    let mut c = d.docker_cmd();
    c.env_remove("DOCKER_HOST").env_remove("DOCKER_TLS_VERIFY").env_remove("DOCKER_CERT_PATH");
    run(c.arg("-H").arg(host).args(flags).args(args), input)
}

/// berth's CLI against `host` with `flags`.
fn berth(d: &Daemon, host: &str, flags: &[String], args: &[&str], input: Option<&[u8]>) -> Run {
    let mut c = Command::new(berth_bin());
    c.env_remove("DOCKER_HOST").env_remove("DOCKER_TLS_VERIFY").env_remove("DOCKER_TLS");
    c.env("DOCKER_CONFIG", d.dir.path().join("docker-config")).env("DOCKER_CERT_PATH", d.dir.path().join("no-certs"));
    run(c.arg("-H").arg(host).args(flags).args(args), input)
}

/// Whether the daemon has a container named `name` (asked on its unix socket).
fn exists(d: &Daemon, name: &str) -> bool {
    !d.berth(&["ps", "-aq", "--filter", &format!("name=^{name}$")]).ok().trim().is_empty()
}

#[test]
fn the_docker_cli_runs_execs_and_attaches_over_tls() {
    let pki = Pki::new();
    let (d, host) = tls_daemon(&pki);
    let me = pki.client_flags("client");
    assert_eq!(docker(&d, &host, &me, &["run", "--rm", "busybox", "echo", "hi"], None).ok(), "hi\n");
    // Attach with stdin: the CLI half-closes its side of the TLS stream when stdin ends.
    let out = docker(&d, &host, &me, &["run", "-i", "--rm", "busybox", "sh", "-c", "cat; echo done"], Some(b"typed\n"));
    assert_eq!(out.ok(), "typed\ndone\n");
    let name = unique("tls");
    docker(&d, &host, &me, &["run", "-d", "--name", &name, "busybox", "sleep", "600"], None).ok();
    assert_eq!(docker(&d, &host, &me, &["exec", &name, "echo", "from exec"], None).ok(), "from exec\n");
    let out = docker(&d, &host, &me, &["exec", "-i", &name, "sh", "-c", "cat; echo end"], Some(b"in\n"));
    assert_eq!(out.ok(), "in\nend\n");
    let big = "x".repeat(300_000);
    let out = docker(&d, &host, &me, &["exec", "-i", &name, "wc", "-c"], Some(big.as_bytes())).ok();
    assert_eq!(out.trim(), "300000");
    docker(&d, &host, &me, &["rm", "-f", &name], None).ok();
}

#[test]
fn clients_without_a_certificate_from_the_ca_are_refused() {
    let pki = Pki::new();
    let (d, host) = tls_daemon(&pki);
    let create =
        |flags: &[String], name: &str| docker(&d, &host, flags, &["create", "--name", name, "busybox", "true"], None);

    // The attacks: no certificate at all (verifying the daemon, or not even that), a
    // certificate from another CA, no TLS.
    let no_cert = vec!["--tlsverify".to_string(), "--tlscacert".into(), pki.p("ca.pem")];
    for (flags, what) in [
        (no_cert, "no certificate"),
        (vec!["--tls".to_string(), "--tlscacert".into(), pki.p("ca.pem")], "--tls, no certificate"),
        // The CLI holds back a certificate the daemon's CA list does not name (curl below
        // does not).
        (pki.client_flags("rogue"), "another CA's certificate"),
    ] {
        let name = unique("stolen");
        let err = create(&flags, &name).fails();
        assert!(err.contains("tls: "), "{what}: {err}");
        assert!(!exists(&d, &name), "{what}: the container was created");
    }
    // curl sends the other CA's certificate even though the daemon names the CA it takes
    // (the docker CLI then sends none): the daemon itself must refuse it.
    let curl_create = |cert: &str, name: &str| {
        let url = format!("https://{}/containers/create?name={name}", host.trim_start_matches("tcp://"));
        let (pem, key) = (pki.p(&format!("{cert}.pem")), pki.p(&format!("{cert}.key")));
        let body = r#"{"Image":"busybox","Cmd":["true"]}"#;
        run(
            Command::new("curl").args(["-sS", "--cacert", &pki.p("ca.pem"), "--cert", &pem, "--key", &key]).args([
                "-H",
                "Content-Type: application/json",
                "-d",
                body,
                &url,
            ]),
            None,
        )
    };
    let name = unique("stolen");
    let out = curl_create("rogue", &name);
    assert!(out.code != 0 && out.stderr.contains("unknown ca"), "curl with another CA's certificate: {out:?}");
    assert!(!exists(&d, &name), "curl with another CA's certificate: the container was created");
    let name = unique("curled");
    assert!(curl_create("client", &name).ok().contains("\"Id\""));
    assert!(exists(&d, &name), "the control request made nothing");

    let name = unique("stolen");
    let err = create(&[], &name).fails();
    assert!(err.contains("Client sent an HTTP request to an HTTPS server"), "plain HTTP: {err}");
    assert!(!exists(&d, &name), "plain HTTP: the container was created");

    // Plain HTTP on the socket: no API answer, Go's hint instead.
    let mut s = std::net::TcpStream::connect(host.trim_start_matches("tcp://")).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(60))).unwrap();
    let name = unique("plain");
    let body = r#"{"Image":"busybox","Cmd":["true"]}"#;
    let req = format!(
        "POST /containers/create?name={name} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(!answer.contains("Api-Version") && !answer.contains("\"Id\""), "{answer}");
    assert!(answer.contains("Client sent an HTTP request to an HTTPS server"), "{answer}");
    assert!(!exists(&d, &name));

    // The control: the same request with the CA's client certificate.
    let name = unique("allowed");
    create(&pki.client_flags("client"), &name).ok();
    assert!(exists(&d, &name));
}

#[test]
fn berths_cli_speaks_tls_from_flags_or_the_environment() {
    let pki = Pki::new();
    let (d, host) = tls_daemon(&pki);
    let me = pki.client_flags("client");
    assert_eq!(berth(&d, &host, &me, &["run", "--rm", "busybox", "echo", "hi"], None).ok(), "hi\n");
    let out = berth(&d, &host, &me, &["run", "-i", "--rm", "busybox", "sh", "-c", "cat; echo done"], Some(b"typed\n"));
    assert_eq!(out.ok(), "typed\ndone\n");
    let name = unique("btls");
    berth(&d, &host, &me, &["run", "-d", "--name", &name, "busybox", "sleep", "600"], None).ok();
    let big = "y".repeat(300_000);
    let out = berth(&d, &host, &me, &["exec", "-i", &name, "wc", "-c"], Some(big.as_bytes())).ok();
    assert_eq!(out.trim(), "300000");

    // DOCKER_TLS_VERIFY and DOCKER_CERT_PATH (ca.pem, cert.pem, key.pem), as the docker CLI.
    let certs = d.dir.path().join("client-certs");
    std::fs::create_dir(&certs).unwrap();
    for (from, to) in [("ca.pem", "ca.pem"), ("client.pem", "cert.pem"), ("client.key", "key.pem")] {
        std::fs::copy(pki.p(from), certs.join(to)).unwrap();
    }
    let out = run(
        Command::new(berth_bin())
            .env_remove("DOCKER_HOST")
            .env("DOCKER_TLS_VERIFY", "1")
            .env("DOCKER_CERT_PATH", &certs)
            .args(["-H", &host, "ps", "--format", "{{.Names}}"]),
        None,
    );
    assert_eq!(out.ok().trim(), name);

    // Refused: no certificate, another CA's, and a daemon whose certificate is not from the
    // CA berth was told to trust.
    let no_cert = vec!["--tlsverify".to_string(), "--tlscacert".into(), pki.p("ca.pem")];
    let err = berth(&d, &host, &no_cert, &["ps"], None).fails();
    assert!(err.contains("CertificateRequired"), "{err}");
    let err = berth(&d, &host, &pki.client_flags("rogue"), &["ps"], None).fails();
    assert!(err.contains("UnknownCA"), "{err}");
    let mut wrong_ca = pki.client_flags("client");
    wrong_ca[2] = pki.p("rogue-ca.pem");
    let err = berth(&d, &host, &wrong_ca, &["ps"], None).fails();
    assert!(err.contains("TLS handshake") && err.contains("certificate"), "{err}");
    let err = berth(&d, &host, &["--tlsverify".into(), "--tlscacert".into(), pki.p("nope.pem")], &["ps"], None).fails();
    assert!(err.contains(&pki.p("nope.pem")), "{err}");
}

/// `berth daemon` with `args` on a fresh temporary tree; it must refuse to start: its stderr.
/// (A daemon that starts after all is killed and fails the test.)
fn refused(args: &[&str], env: &[(&str, &str)]) -> String {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("none.json"), "{}").unwrap();
    let mut child = Command::new(berth_bin())
        .args(["daemon", "--data-root"])
        .arg(dir.path().join("data"))
        .arg("--exec-root")
        .arg(dir.path().join("run"))
        .arg("--config-file")
        .arg(dir.path().join("none.json"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = String::new();
    for line in std::io::BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap_or_default();
        if line.contains("API listening on") {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the daemon started: {err}{line}");
        }
        err.push_str(&line);
        err.push('\n');
    }
    let status = child.wait().unwrap();
    assert!(!status.success(), "the daemon exited 0: {err}");
    assert!(!dir.path().join("data").exists(), "the refused daemon made its data root");
    err
}

#[test]
fn bad_tls_settings_and_plain_network_addresses_are_refused() {
    let pki = Pki::new();
    let tcp = format!("tcp://127.0.0.1:{}", free_port());
    let (ca, cert) = (pki.p("ca.pem"), pki.p("server.pem"));
    let missing = pki.p("missing-key.pem");
    let err = refused(&["-H", &tcp, "--tlsverify", "--tlscacert", &ca, "--tlscert", &cert, "--tlskey", &missing], &[]);
    assert!(err.contains("invalid TLS configuration") && err.contains(&missing) && err.contains("--tlskey"), "{err}");
    // A key that is not the certificate's.
    let other = pki.p("client.key");
    let err = refused(&["-H", &tcp, "--tlsverify", "--tlscacert", &ca, "--tlscert", &cert, "--tlskey", &other], &[]);
    assert!(err.contains(&cert) && err.contains(&other), "{err}");
    // --tlsverify without paths looks in $DOCKER_CERT_PATH, as dockerd.
    let empty = tempfile::tempdir().unwrap();
    let err = refused(&["-H", &tcp, "--tlsverify"], &[("DOCKER_CERT_PATH", &empty.path().display().to_string())]);
    assert!(err.contains(&empty.path().join("cert.pem").display().to_string()), "{err}");
    // 192.0.2.1 is a documentation address: nothing is ever bound or sent to it here.
    let err = refused(&["-H", "tcp://192.0.2.1:2375"], &[]);
    assert!(err.contains("without --tlsverify") && err.contains("--tls=false"), "{err}");
}

#[test]
fn daemon_json_tls_keys_are_read_and_a_missing_key_is_named() {
    let pki = Pki::new();
    let host = format!("tcp://127.0.0.1:{}", free_port());
    // Loopback without TLS is served (as dockerd, with a warning); then the file turns TLS on.
    let mut d = Daemon::start_with(&["-H", &host]);
    d.import_busybox("busybox:latest");
    assert!(docker(&d, &host, &[], &["version"], None).ok().contains("Server"));
    d.stop();
    let (ca, cert, missing) = (pki.p("ca.pem"), pki.p("server.pem"), pki.p("missing.key"));
    d.set_config(&format!(r#""tlsverify": true, "tlscacert": "{ca}", "tlscert": "{cert}", "tlskey": "{missing}""#));
    let err = d.try_spawn().unwrap_err();
    assert!(err.contains(&missing), "{err}");
    d.set_config(&format!(r#""tlskey": "{}""#, pki.p("server.key")));
    d.spawn();
    let err = docker(&d, &host, &[], &["version"], None).fails();
    assert!(err.contains("Client sent an HTTP request to an HTTPS server"), "{err}");
    let out = docker(&d, &host, &pki.client_flags("client"), &["run", "--rm", "busybox", "echo", "from json"], None);
    assert_eq!(out.ok(), "from json\n");
}
