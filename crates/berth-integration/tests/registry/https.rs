//! Registries over HTTPS: a registry whose CA is in `certs.d`, and berth's own registry
//! serving with `--tls-cert`/`--tls-key`.

use super::*;

/// A CA put where the daemon looks for a registry's CA, removed when dropped.
struct TrustedCa(PathBuf);

impl Drop for TrustedCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn https_to_a_registry_whose_ca_is_in_certs_d() {
    let bin = PathBuf::from("/usr/bin/docker-registry");
    if !bin.exists() || Command::new("openssl").arg("version").output().is_err() {
        println!(
            "skipping https_to_a_registry_whose_ca_is_in_certs_d: needs /usr/bin/docker-registry (as a TLS server) and openssl"
        );
        return;
    }
    let d = Daemon::with_busybox();
    let dir = tempfile::tempdir().unwrap();
    let p = |f: &str| dir.path().join(f).display().to_string();
    make_certs(dir.path());
    let port = free_port();
    std::fs::write(
        p("config.yml"),
        format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n  tls:\n    certificate: {}\n    key: {}\n",
            p("data"),
            p("srv.crt"),
            p("srv.key")
        ),
    )
    .unwrap();
    let mut child = Command::new(&bin)
        .arg("serve")
        .arg(p("config.yml"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let guard = Registry { child, addr: format!("127.0.0.1:{port}"), dir: tempfile::tempdir().unwrap() };
    let ready = lines.by_ref().map_while(Result::ok).any(|l| l.contains("listening on"));
    std::thread::spawn(move || for _ in lines {});
    assert!(ready, "docker-registry did not start");

    push_and_pull_over_https(&d, &guard.addr, dir.path());
}

/// A test CA (`ca.crt`, `ca.key`) and a server certificate for 127.0.0.1 signed by it
/// (`srv.crt`, `srv.key`), written into `dir` with openssl.
fn make_certs(dir: &Path) {
    let p = |f: &str| dir.join(f).display().to_string();
    let ssl = |args: &[&str]| {
        assert!(
            Command::new("openssl").args(args).stderr(Stdio::null()).status().unwrap().success(),
            "openssl {args:?}"
        )
    };
    ssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        &p("ca.key"),
        "-out",
        &p("ca.crt"),
        "-days",
        "2",
        "-subj",
        "/CN=berth test CA",
    ]);
    ssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        &p("srv.key"),
        "-out",
        &p("srv.csr"),
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(p("ext"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
        .unwrap();
    ssl(&[
        "x509",
        "-req",
        "-in",
        &p("srv.csr"),
        "-CA",
        &p("ca.crt"),
        "-CAkey",
        &p("ca.key"),
        "-CAcreateserial",
        "-out",
        &p("srv.crt"),
        "-days",
        "2",
        "-extfile",
        &p("ext"),
    ]);
}

/// Against an HTTPS registry at `addr` whose CA is `certs/ca.crt`: a push is refused while
/// the CA is unknown, then (the CA in certs.d) pushes, and the image pulls back.
fn push_and_pull_over_https(d: &Daemon, addr: &str, certs: &Path) {
    let name = format!("{addr}/secure:1");
    d.berth(&["tag", "busybox", &name]).ok();
    let e = d.berth(&["push", &name]).fails();
    assert!(e.contains("tls") || e.contains("certificate"), "an unknown CA is refused: {e}");
    let ca_dir = PathBuf::from("/etc/berth/certs.d").join(addr);
    std::fs::create_dir_all(&ca_dir).unwrap();
    let _ca = TrustedCa(ca_dir.clone());
    std::fs::copy(certs.join("ca.crt"), ca_dir.join("ca.crt")).unwrap();
    assert!(d.berth(&["push", &name]).ok().contains(": Pushed"));
    d.berth(&["rmi", "busybox", &name]).ok();
    assert!(d.berth(&["pull", &name]).ok().contains("Pull complete"));
}

#[test]
fn berths_registry_serves_https_with_tls_cert_and_key() {
    if Command::new("openssl").arg("version").output().is_err() {
        println!("skipping berths_registry_serves_https_with_tls_cert_and_key: needs openssl");
        return;
    }
    let d = Daemon::with_busybox();
    let certs = tempfile::tempdir().unwrap();
    make_certs(certs.path());
    let flags = ["--tls-cert", "--tls-key"].into_iter().zip(["srv.crt", "srv.key"]);
    let flags: Vec<String> =
        flags.flat_map(|(f, n)| [f.to_string(), certs.path().join(n).display().to_string()]).collect();
    let reg = Registry::berth(|_| flags);
    // Plain HTTP to the HTTPS port gets no registry answer.
    let plain = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", &format!("http://{}/v2/", reg.addr)])
        .output();
    if let Ok(o) = plain {
        assert_ne!(String::from_utf8_lossy(&o.stdout), "200", "the registry does not answer plain HTTP");
    }
    push_and_pull_over_https(&d, &reg.addr, certs.path());
    // A certificate that does not load stops the registry before it listens.
    let bad = Command::new(berth_bin())
        .args(["registry", "serve", "--addr", "127.0.0.1:0", "--root"])
        .arg(certs.path().join("data"))
        .arg("--tls-cert")
        .arg(certs.path().join("ext"))
        .arg("--tls-key")
        .arg(certs.path().join("srv.key"))
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("no certificate"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}
