//! `FROM` an image in a private registry: buildx hands the daemon the credentials that
//! `docker login` stored, through the session's Auth service.

use std::io::{BufRead, BufReader};
use std::process::Child;

use super::*;

/// `berth registry serve` with htpasswd basic auth for one user; stopped on drop.
struct Registry {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn private_registry(user: &str, pass: &str) -> Registry {
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(&htpasswd, format!("{user}:{}\n", bcrypt::hash(pass, 4).unwrap())).unwrap();
    let mut child = Command::new(berth_integration::berth_bin())
        .args(["registry", "serve", "--addr", "127.0.0.1:0", "--root"])
        .arg(dir.path().join("data"))
        .arg("--htpasswd")
        .arg(&htpasswd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        match lines.next() {
            Some(Ok(l)) => {
                if let Some(a) = l.strip_prefix("berth registry: listening on ") {
                    break a.trim().to_string();
                }
            }
            _ => panic!("berth registry exited before listening"),
        }
    };
    std::thread::spawn(move || for _ in lines.by_ref() {});
    Registry { child, addr, _dir: dir }
}

#[test]
fn from_a_private_registry_uses_the_clients_login() {
    let d = Daemon::with_busybox();
    let reg = private_registry("carol", "pa55");
    let base = format!("{}/private/base:1", reg.addr);
    let dir = files(&d, &[("Dockerfile", &format!("FROM {base}\nRUN echo built-on-private\n"))]);
    d.docker(&["tag", "busybox", &base]).ok();
    docker(&d, &dir, &["login", "-u", "carol", "-p", "pa55", &reg.addr]).ok();
    docker(&d, &dir, &["push", &base]).ok();
    d.docker(&["rmi", &base]).ok();

    let out = docker(&d, &dir, &["build", "--network", "none", "."]).ok();
    assert!(out.stderr.contains("built-on-private"), "{}", out.stderr);

    // Without the login, the pull is refused.
    d.docker(&["rmi", &base]).ok();
    docker(&d, &dir, &["logout", &reg.addr]).ok();
    let out = docker(&d, &dir, &["build", "--no-cache", "--network", "none", "."]);
    assert_ne!(out.code, 0, "{}", out.stderr);
}
