//! `FROM` an image in a private registry: buildx hands the daemon the credentials that
//! `docker login` stored, through the session's Auth service.

use super::*;

#[test]
fn from_a_private_registry_uses_the_clients_login() {
    let d = Daemon::with_busybox();
    let reg = berth_integration::Registry::with_htpasswd("carol", "pa55", false);
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
