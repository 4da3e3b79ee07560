//! What the daemon keeps is root's: a local user who is not root (here `nobody`) can read
//! neither a container's environment (`-e DB_PASSWORD=…`) nor its logs, from the metadata
//! database, the container's files or the log files; and the API socket is 0660, group
//! `docker` or the one given with `-G`.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

use berth_integration::{Daemon, unique};

/// Searches `dir` as the user `nobody`: what grep finds of `needle`, and what it could not
/// open.
fn grep_as_nobody(dir: &std::path::Path, needle: &str) -> String {
    let o = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "grep", "-rl", needle])
        .arg(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().mode() & 0o7777
}

#[test]
fn a_local_user_reads_no_secret_the_daemon_keeps() {
    let d = Daemon::with_busybox();
    // The test's own directory is private (0700); open it up so only berth's modes decide.
    std::fs::set_permissions(d.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let secret = unique("s3cret");
    let name = unique("db");
    d.berth(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "-e",
        &format!("DB_PASSWORD={secret}"),
        "busybox",
        "sh",
        "-c",
        &format!("echo log-{secret}; sleep 600"),
    ])
    .ok();
    let start = std::time::Instant::now();
    while !d.berth(&["logs", &name]).stdout.contains(&secret) {
        assert!(start.elapsed() < std::time::Duration::from_secs(30), "the log line never came");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(grep_as_nobody(d.dir.path(), &secret), "", "nobody read the secret");
    // Control: root finds it in the database, the container's files and its log.
    let as_root = String::from_utf8_lossy(
        &Command::new("grep").arg("-rl").arg(&secret).arg(d.dir.path()).output().unwrap().stdout,
    )
    .into_owned();
    assert!(as_root.contains("berth.db") || as_root.contains("berth.db-wal"), "{as_root}");
    assert!(as_root.contains("-json.log"), "{as_root}");

    assert_eq!(mode(&d.data_root()), 0o710);
    assert_eq!(mode(&d.exec_root()), 0o700);
    assert_eq!(mode(&d.data_root().join("berth.db")), 0o600);
    for f in as_root.lines() {
        let m = mode(std::path::Path::new(f));
        if f.ends_with("-json.log") {
            assert_eq!(m, 0o640, "{f}");
        } else {
            assert_eq!(m & 0o077, 0, "{f}: {m:o}");
        }
    }
    assert_eq!(mode(&d.socket), 0o660);
}

#[test]
fn the_socket_belongs_to_the_group_given_with_dash_g() {
    let users = std::fs::read_to_string("/etc/group").unwrap();
    let gid: u32 = users
        .lines()
        .find_map(|l| l.strip_prefix("users:x:"))
        .and_then(|r| r.split(':').next())
        .unwrap()
        .parse()
        .unwrap();
    let d = Daemon::start_with(&["-G", "users"]);
    let md = std::fs::metadata(&d.socket).unwrap();
    assert_eq!((md.uid(), md.gid(), md.mode() & 0o777), (0, gid, 0o660));
    // A group that does not exist stops the daemon before it makes anything.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let sock = format!("unix://{}", dir.path().join("s.sock").display());
    std::fs::write(dir.path().join("none.json"), "{}").unwrap();
    let out = Command::new(berth_integration::berth_bin())
        .args(["daemon", "--data-root"])
        .arg(&root)
        .arg("--exec-root")
        .arg(dir.path().join("run"))
        .args(["-H", &sock, "-G", "no-such-group-berth"])
        .arg("--config-file")
        .arg(dir.path().join("none.json"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("group no-such-group-berth not found"), "{err}");
    assert!(!root.exists());
}
