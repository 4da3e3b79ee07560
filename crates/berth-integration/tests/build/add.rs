//! ADD: local archives unpacked (and refused when they escape), URLs downloaded.

use super::*;

#[test]
fn add_extracts_local_archives_and_copy_does_not() {
    let d = Daemon::with_busybox();
    let dir = context(&d, &[]);
    for (name, flag) in
        [("plain.tar", ""), ("g.tar.gz", "-z"), ("b.tar.bz2", "-j"), ("x.tar.xz", "-J"), ("z.tar.zst", "--zstd")]
    {
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
    let mut tar = raw_tar_entry(b"../../escaped", b"hi");
    tar.resize(512 * 4, 0);
    std::fs::write(dir.join("evil.tar"), tar).unwrap();
    std::fs::write(dir.join("Dockerfile"), "FROM busybox\nADD evil.tar /dest/\n").unwrap();
    let err = build(&d, &dir, &["-t", "evil"]).fails();
    assert!(err.contains("refused archive entry") || err.contains("escape"), "{err}");
    assert!(d.berth(&["image", "inspect", "evil"]).code != 0);
}

#[test]
fn add_downloads_urls_without_unpacking() {
    let d = Daemon::with_busybox();
    let (port, server) = serve(vec![("/files/remote.txt", b"download\n".to_vec())], 1);
    let df = format!("FROM busybox\nADD http://127.0.0.1:{port}/files/remote.txt /r/\n");
    let dir = context(&d, &[("Dockerfile", &df)]);
    build(&d, &dir, &["-t", "url"]).ok();
    server.join().unwrap();
    let out = d
        .berth(&["run", "--rm", "--network", "none", "url", "sh", "-c", "cat /r/remote.txt; stat -c %a /r/remote.txt"])
        .ok();
    assert_eq!(out, "download\n600\n");
}
