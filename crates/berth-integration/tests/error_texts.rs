//! Error texts as dockerd words them, where clients parse them: `No such container: X` with
//! the name as the user gave it, `invalid filter '…'`, `port is already allocated` said once,
//! no Rust `(os error N)` suffixes, and a user's mistake with `--user` named plainly rather
//! than wrapped as an OCI runtime failure.

use berth_integration::{Daemon, free_port, unique};

#[test]
fn errors_read_as_dockerd_words_them() {
    let d = Daemon::with_busybox();
    let ghost = format!("No-Such-{}", unique("Ctr"));
    let want = format!("No such container: {ghost}");
    let cp_dest = format!("{ghost}:/tmp");
    let commands: Vec<Vec<&str>> = vec![
        vec!["start", &ghost],
        vec!["stop", &ghost],
        vec!["restart", &ghost],
        vec!["kill", &ghost],
        vec!["rm", &ghost],
        vec!["logs", &ghost],
        vec!["exec", &ghost, "true"],
        vec!["wait", &ghost],
        vec!["top", &ghost],
        vec!["port", &ghost],
        vec!["pause", &ghost],
        vec!["rename", &ghost, "other"],
        vec!["update", "--cpu-shares", "512", &ghost],
        vec!["diff", &ghost],
        vec!["export", &ghost],
        vec!["commit", &ghost],
        vec!["attach", &ghost],
        vec!["container", "inspect", &ghost],
        vec!["cp", "/etc/hostname", &cp_dest],
    ];
    for c in &commands {
        let err = d.docker(c).fails();
        assert!(err.contains(&want), "{c:?}: {err}");
    }

    let err = d.docker(&["ps", "--filter", "bogus=1"]).fails();
    assert!(err.contains("invalid filter 'bogus'"), "{err}");

    // A host port already published: said once, without an OS error code.
    let port = free_port().to_string();
    let first = unique("porta");
    d.docker(&["run", "-d", "--name", &first, "-p", &format!("127.0.0.1:{port}:80"), "busybox", "sleep", "100"]).ok();
    let second = unique("portb");
    let err = d
        .docker(&["run", "-d", "--name", &second, "-p", &format!("127.0.0.1:{port}:80"), "busybox", "sleep", "100"])
        .fails();
    assert_eq!(err.matches("port is already allocated").count(), 1, "{err}");
    assert!(err.contains(&format!("Bind for 127.0.0.1:{port} failed: port is already allocated")), "{err}");
    assert!(!err.contains("os error"), "{err}");

    // An unknown user: dockerd's text, not an OCI runtime failure.
    let nouser = unique("nouser");
    let err = d.docker(&["run", "--name", &nouser, "-u", "ghost-user", "busybox", "true"]).fails();
    assert!(
        err.contains("Error response from daemon: unable to find user ghost-user: no matching entries in passwd file"),
        "{err}"
    );
    assert!(!err.contains("OCI runtime"), "{err}");

    // An OS error behind an API answer carries no Rust error code.
    let (status, body) = d.api("GET", &format!("/v1.45/containers/{first}/archive?path=/no/such/path"), b"");
    assert_eq!(status, 404, "{body}");
    assert!(!body.contains("os error"), "{body}");
    for n in [&first, &second, &nouser] {
        d.docker(&["rm", "-f", n]).ok();
    }
}
