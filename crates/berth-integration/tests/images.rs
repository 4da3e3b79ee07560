//! Images: import (file, URL, stdin, changes), listing and filters, history, tag, rmi rules,
//! save/load with tags, export, commit — and archives that are damaged or try to escape.

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;

use berth_integration::{Daemon, busybox_tar, unique};

/// Makes a tar with Python's tarfile: `spec` is Python code that adds members to `t`.
fn make_tar(path: &Path, spec: &str) {
    let script = format!(
        "import tarfile, io\nt = tarfile.open({:?}, 'w')\ndef add(name, data=b'', **kw):\n    i = tarfile.TarInfo(name)\n    for k, v in kw.items(): setattr(i, k, v)\n    i.size = len(data)\n    t.addfile(i, io.BytesIO(data))\n{spec}\nt.close()\n",
        path.display().to_string()
    );
    let ok = Command::new("python3").arg("-c").arg(&script).status().unwrap().success();
    assert!(ok, "making {}", path.display());
}

fn images(d: &Daemon) -> String {
    d.berth(&["images", "--format", "{{.Repository}}:{{.Tag}}"]).ok()
}

#[test]
fn import_from_a_file_stdin_and_a_url_with_changes() {
    let d = Daemon::start();
    let tar = busybox_tar().display().to_string();
    d.berth(&[
        "import",
        "-c",
        "ENV GREETING=hi",
        "-c",
        "WORKDIR /tmp",
        "-c",
        "CMD [\"sh\", \"-c\", \"echo $GREETING from $(pwd)\"]",
        "-m",
        "from a file",
        &tar,
        "imp:file",
    ])
    .ok();
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", "imp:file"]).ok(), "hi from /tmp\n");
    assert_eq!(d.berth(&["history", "--format", "{{.Comment}}", "imp:file"]).ok().trim(), "from a file");

    let bytes = std::fs::read(busybox_tar()).unwrap();
    let id = d.berth_stdin(&["import", "-", "imp:stdin"], &bytes).ok();
    assert!(id.trim().starts_with("sha256:"), "{id}");

    // A URL: a one-shot HTTP server on loopback, behind a redirect.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        for redirect in [true, false] {
            let (mut s, _) = l.accept().unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut buf).unwrap();
                req.extend_from_slice(&buf[..n]);
            }
            if redirect {
                s.write_all(
                    b"HTTP/1.1 302 Found\r\nLocation: /rootfs.tar\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .unwrap();
            } else {
                write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", bytes.len()).unwrap();
                s.write_all(&bytes).unwrap();
            }
        }
    });
    d.berth(&["import", &format!("http://127.0.0.1:{port}/start"), "imp:url"]).ok();
    server.join().unwrap();
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", "imp:url", "echo", "from a url"]).ok(), "from a url\n");
    let err = d.berth(&["import", &format!("http://127.0.0.1:{port}/gone"), "imp:gone"]).fails();
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
}

#[test]
fn listing_tagging_and_removing_follow_dockers_rules() {
    let d = Daemon::with_busybox();
    d.berth(&["tag", "busybox", "other/name:v1"]).ok();
    let list = images(&d);
    assert!(list.contains("busybox:latest") && list.contains("other/name:v1"), "{list}");
    let ids = d.berth(&["images", "-q"]).ok();
    assert_eq!(ids.lines().collect::<std::collections::BTreeSet<_>>().len(), 1, "one image, two tags: {ids}");
    let full = d.berth(&["images", "--no-trunc", "-q", "busybox"]).ok();
    assert!(full.trim().starts_with("sha256:") && full.trim().len() == 71, "{full}");

    // A container uses it: removing is refused, -f untags only.
    let c = unique("user");
    d.berth(&["create", "--name", &c, "other/name:v1", "true"]).ok();
    d.berth(&["tag", "busybox", "solo:1"]).ok();
    let out = d.berth(&["rmi", "solo:1"]).ok();
    assert_eq!(out.trim(), "Untagged: solo:1", "another tag remains, so only untag");
    d.berth(&["rmi", "busybox"]).ok();
    let err = d.berth(&["rmi", "other/name:v1"]).fails();
    assert!(err.contains("conflict: unable to remove repository reference \"other/name:v1\" (must force)"), "{err}");
    let out = d.berth(&["rmi", "-f", "other/name:v1"]).ok();
    assert!(out.contains("Untagged: other/name:v1"), "{out}");
    // Untagged, still there for the container, shown as dangling.
    let dangling = d.berth(&["images", "-f", "dangling=true", "-q"]).ok();
    assert_eq!(dangling.lines().count(), 1, "{dangling}");
    d.berth(&["rm", &c]).ok();
    d.berth(&["rmi", dangling.trim()]).ok();
    assert_eq!(d.berth(&["images", "-q"]).ok(), "");
    let err = d.berth(&["rmi", "nosuch:image"]).fails();
    assert!(err.contains("No such image: nosuch:image"), "{err}");
}

#[test]
fn save_and_load_keep_every_tag_and_commit_records_what_it_was_told() {
    let d = Daemon::with_busybox();
    let c = unique("cm");
    d.berth(&["run", "--name", &c, "--network", "none", "busybox", "sh", "-c", "echo layer > /made"]).ok();
    d.berth(&[
        "commit",
        "-a",
        "A. Author",
        "-m",
        "a message",
        "-c",
        "LABEL team=blue",
        "-c",
        "EXPOSE 8080",
        &c,
        "committed:1",
    ])
    .ok();
    let inspect = d
        .berth(&[
            "image",
            "inspect",
            "-f",
            "{{.Author}}|{{.Comment}}|{{.Config.Labels.team}}|{{json .Config.ExposedPorts}}|{{len .RootFS.Layers}}",
            "committed:1",
        ])
        .ok();
    assert_eq!(inspect.trim(), "A. Author|a message|blue|{\"8080/tcp\":{}}|2");

    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("both.tar");
    d.berth(&["tag", "committed:1", "committed:also"]).ok();
    d.berth(&["save", "-o", &archive.display().to_string(), "busybox", "committed:1", "committed:also"]).ok();
    d.berth(&["rm", &c]).ok();
    d.berth(&["rmi", "busybox", "committed:1", "committed:also"]).ok();
    let out = d.berth(&["load", "-q", "-i", &archive.display().to_string()]).ok();
    for t in ["busybox:latest", "committed:1", "committed:also"] {
        assert!(out.contains(&format!("Loaded image: {t}")), "{out}");
    }
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", "committed:also", "cat", "/made"]).ok(), "layer\n");

    // export: the container's whole filesystem.
    let e = unique("exp");
    d.berth(&["create", "--name", &e, "committed:1", "true"]).ok();
    let tarf = work.path().join("export.tar");
    d.berth(&["export", "-o", &tarf.display().to_string(), &e]).ok();
    let listing = Command::new("tar").arg("-tf").arg(&tarf).output().unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.lines().any(|l| l.trim_start_matches("./") == "made")
            && listing.lines().any(|l| l.trim_start_matches("./") == "bin/busybox"),
        "{listing}"
    );
}

#[test]
fn damaged_and_escaping_archives_are_refused_and_store_nothing() {
    let d = Daemon::with_busybox();
    let work = tempfile::tempdir().unwrap();
    let before = d.berth(&["images", "-q", "--no-trunc"]).ok();

    let cases: [(&str, &str, &str); 5] = [
        ("dotdot", "add('../escaped', b'x')", ".."),
        (
            "absolute-link",
            "add('etc', type=tarfile.DIRTYPE)\nadd('etc/evil', type=tarfile.SYMTYPE, linkname='/etc/passwd')\nadd('etc/evil/x', b'x')",
            "evil",
        ),
        (
            "relative-link",
            "add('a', type=tarfile.DIRTYPE)\nadd('a/up', type=tarfile.SYMTYPE, linkname='../../..')\nadd('a/up/x', b'x')",
            "up",
        ),
        ("hardlink-out", "add('h', type=tarfile.LNKTYPE, linkname='../../../../etc/passwd')", "h"),
        ("device", "add('dev/sda', type=tarfile.BLKTYPE, devmajor=8, devminor=0)", "sda"),
    ];
    for (name, spec, needle) in cases {
        let path = work.path().join(format!("{name}.tar"));
        make_tar(&path, spec);
        let err = d.berth(&["import", &path.display().to_string(), &format!("bad:{name}")]).fails();
        assert!(err.contains(needle), "{name}: {err}");
    }
    // Truncated: half of a good archive.
    let good = std::fs::read(busybox_tar()).unwrap();
    let cut = work.path().join("cut.tar");
    std::fs::write(&cut, &good[..good.len() / 2 + 100]).unwrap();
    let err = d.berth(&["import", &cut.display().to_string(), "bad:cut"]).fails();
    assert!(err.contains("truncated") || err.contains("unexpected end"), "{err}");
    let err = d.berth_stdin(&["load"], b"not an archive at all").fails();
    assert!(err.to_lowercase().contains("archive"), "{err}");

    assert_eq!(d.berth(&["images", "-q", "--no-trunc"]).ok(), before, "nothing was added");
    assert!(!Path::new("/escaped").exists() && !work.path().join("escaped").exists());
    let check = d.berth(&["system", "check"]).ok();
    assert!(check.contains("no problems found"), "{check}");
    assert_eq!(
        d.berth(&["run", "--rm", "--network", "none", "busybox", "echo", "still serving"]).ok(),
        "still serving\n"
    );
}

/// Issue 16, point 11: an export holds the mount points `dev`, `proc` and `sys` (empty, as
/// Docker's: their filesystems are not the container's) whether the container runs or not;
/// `/etc/mtab` is Docker's link to `/proc/mounts`; `ps` single-quotes an argument with a
/// space in COMMAND, as dockerd does.
#[test]
fn exports_hold_the_mount_points_and_etc_mtab_links_to_the_mounts() {
    let d = Daemon::with_busybox();
    let name = unique("mnts");
    d.docker(&["run", "-d", "--name", &name, "--network", "none", "busybox", "sh", "-c", "sleep 100"]).ok();
    // Control: the running container's /proc has entries an export must leave out.
    assert_eq!(d.docker(&["exec", &name, "cat", "/proc/1/comm"]).ok(), "sleep\n");
    assert_eq!(d.docker(&["exec", &name, "readlink", "/etc/mtab"]).ok(), "/proc/mounts\n");
    assert!(d.docker(&["exec", &name, "cat", "/etc/mtab"]).ok().lines().any(|l| l.split(' ').nth(1) == Some("/")));
    let cmd = d.docker(&["ps", "--no-trunc", "--filter", &format!("name=^{name}$"), "--format", "{{.Command}}"]).ok();
    assert_eq!(cmd.trim(), r#""sh -c 'sleep 100'""#);
    let work = tempfile::tempdir().unwrap();
    let listing = |tag: &str| export_listing(&d, &name, &work.path().join(format!("{tag}.tar")));
    for state in ["running", "stopped"] {
        let l = listing(state);
        let names: Vec<&str> = l.lines().filter_map(|l| l.split_whitespace().nth(5)).collect();
        for dir in ["dev/", "proc/", "sys/"] {
            assert!(names.contains(&dir), "{state}: {dir} in\n{l}");
        }
        assert!(!names.iter().any(|n| n.starts_with("proc/") && *n != "proc/"), "{state}: nothing of /proc\n{l}");
        assert!(l.lines().any(|l| l.contains("etc/mtab -> /proc/mounts")), "{state}: {l}");
        if state == "running" {
            d.docker(&["kill", &name]).ok();
            d.docker(&["wait", &name]).ok();
        }
    }
    d.docker(&["rm", &name]).ok();
}

/// An export holds the container's own files, as Docker's: a volume's or a bind mount's
/// contents are left out (their mount points stay), running or stopped (with `-v /:/host`
/// berth exported the host).
#[test]
fn exports_leave_out_what_mounts_hold() {
    let d = Daemon::with_busybox();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("secret"), "host data").unwrap();
    std::fs::write(host.path().join("single"), "host file").unwrap();
    let name = unique("expmnt");
    let dir_bind = format!("{}:/data", host.path().display());
    let file_bind = format!("{}:/etc/single", host.path().join("single").display());
    let (vol, tmp) = ("/vol", "/scratch");
    d.docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "-v",
        &dir_bind,
        "-v",
        &file_bind,
        "-v",
        vol,
        "--tmpfs",
        tmp,
        "busybox",
        "sh",
        "-c",
        "echo v > /vol/inside; echo t > /scratch/inside; echo own > /own; sleep 100",
    ])
    .ok();
    // Control: the container sees what the mounts hold.
    assert_eq!(d.docker(&["exec", &name, "cat", "/data/secret", "/etc/single"]).ok(), "host datahost file");
    let work = tempfile::tempdir().unwrap();
    for state in ["running", "stopped"] {
        if state == "running" {
            d.docker(&["exec", &name, "sh", "-c", "until [ -e /own ]; do sleep 0.05; done"]).ok();
        } else {
            d.docker(&["kill", &name]).ok();
            d.docker(&["wait", &name]).ok();
        }
        let l = export_listing(&d, &name, &work.path().join(format!("{state}.tar")));
        let names: Vec<&str> = l.lines().filter_map(|l| l.split_whitespace().nth(5)).collect();
        for kept in ["data/", "vol/", "scratch/", "own", "etc/single"] {
            assert!(names.contains(&kept), "{state}: {kept} in\n{l}");
        }
        for gone in ["data/secret", "vol/inside", "scratch/inside"] {
            assert!(!names.contains(&gone), "{state}: {gone} in\n{l}");
        }
        let single = l.lines().find(|l| l.ends_with(" etc/single")).unwrap();
        assert_eq!(single.split_whitespace().nth(2), Some("0"), "{state}: a bind-mounted file is empty: {single}");
    }
    d.docker(&["rm", "-v", &name]).ok();
}

/// A mount whose destination is reached through a symlink in the image (`/srv ->
/// /var/srv`) is mounted at the link's target; an export still leaves out what it holds
/// (a list of mount paths missed it and exported the host's files under `var/srv`).
#[test]
fn exports_leave_out_mounts_reached_through_symlinks() {
    let d = Daemon::with_busybox();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("Dockerfile"), "FROM busybox\nRUN mkdir -p /var/srv && ln -s /var/srv /srv\n")
        .unwrap();
    let tag = unique("srvlink");
    d.docker(&["build", "-q", "-t", &tag, &ctx.path().display().to_string()]).ok();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("secret"), "host data").unwrap();
    let name = unique("expsrv");
    let bind = format!("{}:/srv", host.path().display());
    d.docker(&["run", "-d", "--name", &name, "--network", "none", "-v", &bind, &tag, "sleep", "100"]).ok();
    // Control: the bind is there, through the link.
    assert_eq!(d.docker(&["exec", &name, "cat", "/var/srv/secret"]).ok(), "host data");
    let work = tempfile::tempdir().unwrap();
    for state in ["running", "stopped"] {
        if state == "stopped" {
            d.docker(&["kill", &name]).ok();
            d.docker(&["wait", &name]).ok();
        }
        let l = export_listing(&d, &name, &work.path().join(format!("{state}.tar")));
        let names: Vec<&str> = l.lines().filter_map(|l| l.split_whitespace().nth(5)).collect();
        assert!(names.contains(&"var/srv/"), "{state}: the mount point stays\n{l}");
        assert!(l.lines().any(|l| l.contains("srv -> /var/srv")), "{state}: the link stays\n{l}");
        assert!(!names.iter().any(|n| n.starts_with("var/srv/") && *n != "var/srv/"), "{state}: host files\n{l}");
    }
    d.docker(&["rm", &name]).ok();
    d.docker(&["rmi", &tag]).ok();
}

/// `docker export` of container `name` into `tarf`, listed by `tar -tv`.
fn export_listing(d: &Daemon, name: &str, tarf: &std::path::Path) -> String {
    d.docker(&["export", "-o", &tarf.display().to_string(), name]).ok();
    let out = Command::new("tar").arg("-tvf").arg(tarf).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}
