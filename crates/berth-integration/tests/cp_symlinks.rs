//! `docker cp` and symlinks, as the docker CLI sees them: the CLI unpacks on the host
//! whatever the daemon sends and follows the stat it gets, so the daemon must answer as
//! dockerd does for every link shape (absolute, relative, chained, dangling, looping, above
//! the root, to a directory with `/` or `/.`) or the host is left with links to its own
//! files. On the way in, links in an uploaded archive resolve inside the container. Every
//! case runs against a running container and a stopped one (two ways to reach the root).

use std::io::{Read, Write};
use std::path::Path;

use berth_integration::{Daemon, unique};

/// Makes every link shape in the root of the container it runs in.
const SHAPES: &str = "mkdir -p /d/sub && echo hi > /d/sub/f \
    && ln -s /etc /etcl && ln -s etc /etcr && ln -s etcl /etcll && ln -s /etc /d/e \
    && ln -s ../etc/passwd /d/rel && ln -s chain2 /chain1 && ln -s /d/chain3 /chain2 && ln -s ../etc/passwd /d/chain3 \
    && ln -s /nonexistent /dangle && ln -s ../../../etc /up && ln -s loop2 /loop1 && ln -s loop1 /loop2";

/// A running and a stopped container, each with [`SHAPES`] made.
fn containers(d: &Daemon) -> [String; 2] {
    let running = unique("cprun");
    let stopped = unique("cpstop");
    d.docker(&[
        "run",
        "-d",
        "--name",
        &running,
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        &format!("{SHAPES} && touch /ready && exec sleep 600"),
    ])
    .ok();
    d.docker(&["run", "--name", &stopped, "--network", "none", "busybox", "sh", "-c", SHAPES]).ok();
    for _ in 0..100 {
        if d.docker(&["exec", &running, "test", "-e", "/ready"]).code == 0 {
            return [running, stopped];
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("the running container never made its links");
}

/// `HEAD /containers/{ctr}/archive?path=`: the status and the stat header, decoded (`Null`
/// when there is none).
fn head(d: &Daemon, ctr: &str, path: &str) -> (u16, serde_json::Value) {
    let mut s = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
    write!(s, "HEAD /containers/{ctr}/archive?path={path} HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let stat = text
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("x-docker-container-path-stat")))
        .map(|(_, v)| serde_json::from_slice(&base64(v.trim())).unwrap())
        .unwrap_or(serde_json::Value::Null);
    (status, stat)
}

fn base64(s: &str) -> Vec<u8> {
    let val = |c: u8| {
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".bytes().position(|x| x == c).unwrap() as u32
    };
    let digits: Vec<u32> = s.bytes().filter(|&c| c != b'=').map(val).collect();
    let mut out = Vec::new();
    for chunk in digits.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &v)| n | (v << (18 - 6 * i)));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

/// Go's `os.ModeDir` and `os.ModeSymlink` in the stat's mode.
const MODE_DIR: u64 = 1 << 31;
const MODE_SYMLINK: u64 = 1 << 27;

fn cp(d: &Daemon, args: &[&str]) -> berth_integration::Run {
    d.docker(&[&["cp"], args].concat())
}

fn is_passwd(p: &Path) -> bool {
    let md = std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    md.file_type().is_file() && std::fs::read_to_string(p).unwrap().starts_with("root:x:0:0:")
}

#[test]
fn a_link_to_a_directory_copied_with_slash_or_dot_arrives_as_the_directory() {
    let d = Daemon::with_busybox();
    let work = tempfile::tempdir().unwrap();
    for ctr in containers(&d) {
        // Before: `. -> /etc` (or `etcl -> /etc`) came back, and the host got a link to its
        // own /etc where Docker gives a copy of the container's.
        for src in ["/etcl/.", "/etcl/", "/etcr/.", "/etcll/", "/etcll/.", "/up/.", "/up/"] {
            let dst = work.path().join(unique("dst"));
            cp(&d, &[&format!("{ctr}:{src}"), dst.to_str().unwrap()]).ok();
            let md = std::fs::symlink_metadata(&dst).unwrap();
            assert!(md.is_dir(), "{ctr}:{src} arrived as {:?}", md.file_type());
            assert!(is_passwd(&dst.join("passwd")), "{ctr}:{src}");
        }
        // Into a directory that exists: `/.` copies the contents, `/` the directory by name.
        let into = work.path().join(unique("into"));
        std::fs::create_dir(&into).unwrap();
        cp(&d, &[&format!("{ctr}:/etcl/."), into.to_str().unwrap()]).ok();
        cp(&d, &[&format!("{ctr}:/etcr/"), into.to_str().unwrap()]).ok();
        assert!(is_passwd(&into.join("passwd")) && is_passwd(&into.join("etcr/passwd")), "{ctr}");

        // Without the slash the link itself is copied, as Docker does.
        let dst = work.path().join(unique("link"));
        cp(&d, &[&format!("{ctr}:/etcl"), dst.to_str().unwrap()]).ok();
        assert_eq!(std::fs::read_link(&dst).unwrap().to_str(), Some("/etc"));

        let (status, stat) = head(&d, &ctr, "/etcl/.");
        assert_eq!((status, stat["name"].as_str(), stat["linkTarget"].as_str()), (200, Some("."), Some("")), "{stat}");
        assert_ne!(stat["mode"].as_u64().unwrap() & MODE_DIR, 0, "{stat}");
        let (_, stat) = head(&d, &ctr, "/etcl/");
        assert_eq!(stat["name"].as_str(), Some("etcl"), "{stat}");
        assert_ne!(stat["mode"].as_u64().unwrap() & MODE_DIR, 0, "{stat}");
    }
}

#[test]
fn cp_follow_link_of_a_chain_gives_a_regular_file() {
    let d = Daemon::with_busybox();
    let work = tempfile::tempdir().unwrap();
    for ctr in containers(&d) {
        // The stat names where a link finally leads, not the target as written; the CLI
        // follows it once. Before: `chain2`, and `cp -L` left the host a link to chain2.
        for (src, target) in [
            ("/chain1", "/etc/passwd"),
            ("/d/rel", "/etc/passwd"),
            ("/etcll", "/etc"),
            ("/up", "/etc"),
            ("/bin/sh", "/bin/busybox"),
        ] {
            let (status, stat) = head(&d, &ctr, src);
            assert_eq!((status, stat["linkTarget"].as_str()), (200, Some(target)), "{ctr}:{src} {stat}");
            assert_ne!(stat["mode"].as_u64().unwrap() & MODE_SYMLINK, 0, "{stat}");
        }
        for src in ["/chain1", "/d/rel"] {
            let dst = work.path().join(unique("file"));
            cp(&d, &["-L", &format!("{ctr}:{src}"), dst.to_str().unwrap()]).ok();
            assert!(is_passwd(&dst), "{ctr}:{src}");
        }
        let dst = work.path().join(unique("dir"));
        cp(&d, &["-L", &format!("{ctr}:/etcll"), dst.to_str().unwrap()]).ok();
        assert!(std::fs::symlink_metadata(&dst).unwrap().is_dir() && is_passwd(&dst.join("passwd")), "{ctr}");

        // Without -L the first link is copied as written.
        let dst = work.path().join(unique("link"));
        cp(&d, &[&format!("{ctr}:/chain1"), dst.to_str().unwrap()]).ok();
        assert_eq!(std::fs::read_link(&dst).unwrap().to_str(), Some("chain2"));
    }
}

#[test]
fn a_trailing_slash_on_a_non_directory_fails() {
    let d = Daemon::with_busybox();
    let work = tempfile::tempdir().unwrap();
    for ctr in containers(&d) {
        // Before: 200 and the link `sh -> busybox`.
        for src in ["/bin/sh/", "/bin/sh/.", "/chain1/", "/d/rel/", "/bin/sh/x"] {
            let dst = work.path().join(unique("dst"));
            let err = cp(&d, &[&format!("{ctr}:{src}"), dst.to_str().unwrap()]).fails();
            assert!(err.to_lowercase().contains("not a directory"), "{ctr}:{src}: {err}");
            assert!(std::fs::symlink_metadata(&dst).is_err(), "{ctr}:{src} left {}", dst.display());
            assert_eq!(head(&d, &ctr, src).0, 500, "{ctr}:{src}");
        }
        // Control: the same links without the slash copy.
        let dst = work.path().join(unique("sh"));
        cp(&d, &[&format!("{ctr}:/bin/sh"), dst.to_str().unwrap()]).ok();
        assert_eq!(std::fs::read_link(&dst).unwrap().to_str(), Some("busybox"));
    }
}

#[test]
fn dangling_links_copy_as_links_and_fail_when_followed_or_entered() {
    let d = Daemon::with_busybox();
    let work = tempfile::tempdir().unwrap();
    for ctr in containers(&d) {
        let dst = work.path().join(unique("dangle"));
        cp(&d, &[&format!("{ctr}:/dangle"), dst.to_str().unwrap()]).ok();
        assert_eq!(std::fs::read_link(&dst).unwrap().to_str(), Some("/nonexistent"));
        let (status, stat) = head(&d, &ctr, "/dangle");
        assert_eq!((status, stat["linkTarget"].as_str()), (200, Some("/nonexistent")), "{stat}");

        let dst = work.path().join(unique("followed"));
        let err = cp(&d, &["-L", &format!("{ctr}:/dangle"), dst.to_str().unwrap()]).fails();
        assert!(err.contains("Could not find the file /nonexistent"), "{err}");
        // Before: 200 and the link.
        for src in ["/dangle/", "/dangle/."] {
            let err = cp(&d, &[&format!("{ctr}:{src}"), dst.to_str().unwrap()]).fails();
            assert!(err.contains(&format!("Could not find the file {src} in container {ctr}")), "{err}");
            assert_eq!(head(&d, &ctr, src).0, 404, "{ctr}:{src}");
        }
        assert!(std::fs::symlink_metadata(&dst).is_err());
    }
}

#[test]
fn a_link_loop_is_an_error() {
    let d = Daemon::with_busybox();
    let work = tempfile::tempdir().unwrap();
    for ctr in containers(&d) {
        for src in ["/loop1", "/loop1/"] {
            let err = cp(&d, &[&format!("{ctr}:{src}"), work.path().join("loop").to_str().unwrap()]).fails();
            assert!(err.contains("too many links"), "{ctr}:{src}: {err}");
            assert_eq!(head(&d, &ctr, src).0, 500, "{ctr}:{src}");
        }
    }
}

#[test]
fn links_in_an_uploaded_archive_resolve_inside_the_container() {
    let d = Daemon::with_busybox();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let tar = |name: &str, args: &[&str]| {
        let out = w.join(name);
        let st = std::process::Command::new("tar").arg("-C").arg(w).arg("-cf").arg(&out).args(args).status().unwrap();
        assert!(st.success());
        std::fs::read(out).unwrap()
    };
    // A relative link climbing above the root, from a host directory.
    std::fs::create_dir(w.join("up")).unwrap();
    std::os::unix::fs::symlink("../../etc", w.join("up/uplink")).unwrap();
    // A file to be unpacked through a link to /etc: only the file's entry, no directory.
    let planted = unique("planted");
    std::fs::create_dir_all(w.join("abs")).unwrap();
    std::fs::create_dir_all(w.join("e")).unwrap();
    std::fs::write(w.join("abs").join(&planted), "through the link\n").unwrap();
    std::fs::write(w.join("e").join(&planted), "through a link already there\n").unwrap();
    let link_tar = {
        std::fs::create_dir(w.join("l")).unwrap();
        std::os::unix::fs::symlink("/etc", w.join("l/abs")).unwrap();
        tar("link.tar", &["-C", "l", "abs"])
    };
    let through_tar = tar("through.tar", &[&format!("abs/{planted}")]);
    let existing_tar = tar("existing.tar", &[&format!("e/{planted}")]);
    std::fs::write(w.join("f"), "z").unwrap();
    let escape_tar = tar("escape.tar", &["--transform", "s,^f$,../escape,", "f"]);

    for ctr in containers(&d) {
        // Confined at the root (Docker accepts it there), refused below it. Before: refused.
        cp(&d, &[&format!("{}/.", w.join("up").display()), &format!("{ctr}:/")]).ok();
        let dst = w.join(unique("uplink"));
        cp(&d, &[&format!("{ctr}:/uplink/."), dst.to_str().unwrap()]).ok();
        assert!(is_passwd(&dst.join("passwd")), "{ctr}");
        let err = cp(&d, &[&format!("{}/.", w.join("up").display()), &format!("{ctr}:/tmp")]).fails();
        assert!(err.contains("invalid symlink"), "{err}");

        // Absolute links, in the archive or already in the container, lead to the
        // container's /etc. Before: resolved from the destination (/d/etc), and failed.
        d.docker_stdin(&["cp", "-", &format!("{ctr}:/d")], &link_tar).ok();
        d.docker_stdin(&["cp", "-", &format!("{ctr}:/d")], &through_tar).ok();
        let got = w.join(unique("got"));
        cp(&d, &[&format!("{ctr}:/etc/{planted}"), got.to_str().unwrap()]).ok();
        assert_eq!(std::fs::read_to_string(&got).unwrap(), "through the link\n");
        d.docker_stdin(&["cp", "-", &format!("{ctr}:/d")], &existing_tar).ok();
        let got = w.join(unique("got"));
        cp(&d, &[&format!("{ctr}:/etc/{planted}"), got.to_str().unwrap()]).ok();
        assert_eq!(std::fs::read_to_string(&got).unwrap(), "through a link already there\n");
        assert!(!Path::new("/etc").join(&planted).exists(), "wrote the host's /etc");

        // Hostile names are still refused.
        let err = d.docker_stdin(&["cp", "-", &format!("{ctr}:/tmp")], &escape_tar).fails();
        assert!(err.contains("escapes the root"), "{err}");

        // A destination reached through a chain of links is a directory to copy into.
        cp(&d, &[w.join("f").to_str().unwrap(), &format!("{ctr}:/etcll")]).ok();
        let got = w.join(unique("got"));
        cp(&d, &[&format!("{ctr}:/etc/f"), got.to_str().unwrap()]).ok();
        assert_eq!(std::fs::read_to_string(&got).unwrap(), "z");
    }
}
