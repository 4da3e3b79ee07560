//! ADD: local archives unpacked (and refused when they escape), URLs downloaded.

use super::*;

#[test]
fn add_extracts_local_archives_and_copy_does_not() {
    let d = Daemon::with_busybox();
    let dir = context(&d, &[]);
    for (name, flag) in [("plain.tar", ""), ("g.tar.gz", "-z"), ("b.tar.bz2", "-j"), ("x.tar.xz", "-J"), ("z.tar.zst", "--zstd")] {
        make_tar(&dir, name, flag, &[(&format!("{name}.d/inside.txt"), name)]);
    }
    let df = "FROM busybox\nADD plain.tar g.tar.gz b.tar.bz2 x.tar.xz z.tar.zst /ex/\nCOPY g.tar.gz /copied/\n";
    std::fs::write(dir.join("Dockerfile"), df).unwrap();
    build(&d, &dir, &["-t", "adds"]).ok();
    let out = d
        .berth(&["run", "--rm", "--network", "none", "adds", "sh", "-c", "cat /ex/*.d/inside.txt; echo; ls /copied"])
        .ok();
    assert_eq!(out, "b.tar.bz2g.tar.gzplain.tarx.tar.xzz.tar.zst\ng.tar.gz\n");
}

#[test]
fn add_refuses_archives_that_escape() {
    let d = Daemon::with_busybox();
    let dir = context(&d, &[]);
    // A tar whose member climbs out of the destination.
    let mut h = [0u8; 512];
    let name = b"../../escaped";
    h[..name.len()].copy_from_slice(name);
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(b"00000000002\0");
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| *b as u32).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut tar = h.to_vec();
    tar.extend_from_slice(b"hi");
    tar.resize(512 * 2, 0);
    tar.resize(512 * 4, 0);
    std::fs::write(dir.join("evil.tar"), tar).unwrap();
    std::fs::write(dir.join("Dockerfile"), "FROM busybox\nADD evil.tar /dest/\n").unwrap();
    let err = build(&d, &dir, &["-t", "evil"]).fails();
    assert!(err.contains("refused archive entry") || err.contains("escape"), "{err}");
    assert!(d.berth(&["image", "inspect", "evil"]).code != 0);
}

#[test]
fn add_downloads_urls_without_unpacking() {
    use std::io::{Read, Write};
    let d = Daemon::with_busybox();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut req = Vec::new();
        let mut buf = [0u8; 1024];
        while !req.ends_with(b"\r\n\r\n") {
            let n = s.read(&mut buf).unwrap();
            req.extend_from_slice(&buf[..n]);
        }
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\ndownload\n").unwrap();
    });
    let df = format!("FROM busybox\nADD http://127.0.0.1:{port}/files/remote.txt /r/\n");
    let dir = context(&d, &[("Dockerfile", &df)]);
    build(&d, &dir, &["-t", "url"]).ok();
    server.join().unwrap();
    let out = d.berth(&["run", "--rm", "--network", "none", "url", "sh", "-c", "cat /r/remote.txt; stat -c %a /r/remote.txt"]).ok();
    assert_eq!(out, "download\n600\n");
}
