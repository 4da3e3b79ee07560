//! Tar streams out of a container carry owners' names (issue 16, point 11): `docker cp
//! ctr:/path -` and `docker export` fill `uname`/`gname` from the container's own
//! /etc/passwd and /etc/group; an ID they do not name stays a number.

use std::io::Write;
use std::process::{Command, Stdio};

use berth_integration::{Daemon, unique};

/// `tar tv` of a stream: one line per entry.
fn tar_tv(tar: &[u8]) -> String {
    let mut c = Command::new("tar").args(["tvf", "-"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    c.stdin.take().unwrap().write_all(tar).unwrap();
    let o = c.wait_with_output().unwrap();
    assert!(o.status.success(), "tar tv failed");
    String::from_utf8(o.stdout).unwrap()
}

/// The `owner/group` column of the entry whose name ends with `name`.
fn owner(listing: &str, name: &str) -> String {
    let line = listing.lines().find(|l| l.ends_with(name)).unwrap_or_else(|| panic!("no {name} in {listing}"));
    line.split_whitespace().nth(1).unwrap().to_string()
}

fn docker_bytes(d: &Daemon, args: &[&str]) -> Vec<u8> {
    let o = d.docker_cmd().args(args).output().unwrap();
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    o.stdout
}

#[test]
fn cp_and_export_name_owners_from_the_containers_passwd() {
    let d = Daemon::with_busybox();
    let name = unique("names");
    d.docker(&[
        "run",
        "--name",
        &name,
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "mkdir /data && touch /data/pg /data/anon && chown postgres:postgres /data/pg && chown 4242:4243 /data/anon",
    ])
    .ok();
    let cp = tar_tv(&docker_bytes(&d, &["cp", &format!("{name}:/data"), "-"]));
    assert_eq!(owner(&cp, "data/pg"), "postgres/postgres", "{cp}");
    assert_eq!(owner(&cp, "data/anon"), "4242/4243", "{cp}");
    assert_eq!(owner(&cp, "data/"), "root/root", "{cp}");
    let export = tar_tv(&docker_bytes(&d, &["export", &name]));
    assert_eq!(owner(&export, "data/pg"), "postgres/postgres");
    assert_eq!(owner(&export, "bin/busybox"), "root/root");
}
