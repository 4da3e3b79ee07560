//! `docker cp` paths inside a root, as Docker reads them: symlinks followed in the root's
//! scope (chains, relative and absolute, dangling, loops, `..` above the root), the source a
//! request names, and unpacking under a directory of the root with Docker's link rules.

use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::symlink;
use std::path::Path;

use berth_archive::ArchiveError;
use berth_archive::apply::{ApplyOptions, Whiteouts, apply_at};
use berth_archive::header::{EntryType, Header};
use berth_archive::reader::TarReader;
use berth_archive::scope::{locate_source, resolve_in_root};
use berth_archive::walk::{WalkOptions, write_tree};
use berth_archive::writer::TarWriter;
use rustix::fs::FileType;

/// A root with every link shape `docker cp` meets.
fn shapes() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    for d in ["etc", "bin", "d/sub"] {
        fs::create_dir_all(r.join(d)).unwrap();
    }
    fs::write(r.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    fs::write(r.join("bin/busybox"), "").unwrap();
    fs::write(r.join("d/sub/f"), "hi\n").unwrap();
    for (link, target) in [
        ("bin/sh", "busybox"),
        ("etcl", "/etc"),
        ("etcr", "etc"),
        ("etcll", "etcl"),
        ("d/rel", "../etc/passwd"),
        ("chain1", "chain2"),
        ("chain2", "/d/chain3"),
        ("d/chain3", "../etc/passwd"),
        ("dangle", "/nonexistent"),
        ("dangler", "nothere"),
        ("up", "../../../etc"),
        ("d/parent", ".."),
        ("loop1", "loop2"),
        ("loop2", "loop1"),
    ] {
        symlink(target, r.join(link)).unwrap();
    }
    t
}

fn root_fd(p: &Path) -> fs::File {
    fs::File::open(p).unwrap()
}

#[test]
fn resolution_follows_every_link_inside_the_root() {
    let t = shapes();
    let root = root_fd(t.path());
    let resolve = |p: &str| resolve_in_root(root.as_fd(), p).unwrap();
    assert_eq!(resolve("/etcl"), "/etc");
    assert_eq!(resolve("etcr/"), "/etc");
    assert_eq!(resolve("/etcll/passwd"), "/etc/passwd");
    assert_eq!(resolve("/chain1"), "/etc/passwd", "a chain of relative and absolute links");
    assert_eq!(resolve("/up"), "/etc", "`..` stops at the root");
    assert_eq!(resolve("/d/parent/d/parent"), "/");
    // Missing components are taken as written, so a dangling link names its target.
    assert_eq!(resolve("/dangle"), "/nonexistent");
    assert_eq!(resolve("/dangler/x/../y"), "/nothere/y");
    // The request is cleaned before any link is read, as Docker does.
    assert_eq!(resolve("/etcl/../bin/sh"), "/bin/busybox");
    let err = resolve_in_root(root.as_fd(), "/loop1").unwrap_err();
    assert!(err.to_string().contains("too many links in /loop1"), "{err}");
    let err = resolve_in_root(root.as_fd(), "/bin/sh/x/y").unwrap_err();
    assert!(err.to_string().contains("lstat /bin/busybox/x"), "{err}");
}

#[test]
fn a_source_is_the_link_itself_unless_the_request_ends_in_slash_or_dot() {
    let t = shapes();
    let root = root_fd(t.path());
    let src = |p: &str| locate_source(root.as_fd(), p);

    let s = src("/etcl").unwrap();
    assert_eq!((s.name.as_str(), s.path.as_str(), s.link_target.as_deref()), ("etcl", "/etcl", Some("/etc")));
    assert_eq!(FileType::from_raw_mode(s.stat.st_mode), FileType::Symlink);
    for (req, name) in [
        ("/etcl/", "etcl"),
        ("/etcl/.", "."),
        ("/etcr/.", "."),
        ("/etcll/", "etcll"),
        ("/up/.", "."),
        ("/.", "."),
        ("/", "/"),
    ] {
        let s = src(req).unwrap();
        assert_eq!(FileType::from_raw_mode(s.stat.st_mode), FileType::Directory, "{req}");
        assert_eq!((s.name.as_str(), s.link_target), (name, None), "{req}");
    }
    assert_eq!(src("/up/").unwrap().path, "/etc");
    assert_eq!(src("/d/rel").unwrap().link_target.as_deref(), Some("/etc/passwd"), "relative links resolved fully");
    assert_eq!(src("/chain1").unwrap().link_target.as_deref(), Some("/etc/passwd"));
    assert_eq!(src("/dangle").unwrap().link_target.as_deref(), Some("/nonexistent"));

    // Missing: not found. A non-directory asked for as one: ENOTDIR, which Docker answers
    // with a server error.
    for req in ["/dangle/", "/dangle/.", "/dangler/", "/nonexist", "/dangle/x"] {
        match src(req) {
            Err(ArchiveError::Io { source, .. }) => assert_eq!(source.kind(), std::io::ErrorKind::NotFound, "{req}"),
            other => panic!("{req}: {other:?}"),
        }
    }
    for req in ["/bin/sh/", "/bin/sh/.", "/chain1/", "/bin/sh/x"] {
        match src(req) {
            Err(ArchiveError::Io { source, .. }) => {
                assert_eq!(source.raw_os_error(), Some(rustix::io::Errno::NOTDIR.raw_os_error()), "{req}")
            }
            other => panic!("{req}: {other:?}"),
        }
    }
    assert!(src("/loop1").is_err());
}

fn names(tar: &[u8]) -> Vec<String> {
    let mut r = TarReader::new(tar, false);
    let mut v = Vec::new();
    while let Some(h) = r.next_entry().unwrap() {
        let mut sink = Vec::new();
        std::io::Read::read_to_end(&mut r.data(), &mut sink).unwrap();
        v.push(h.path);
    }
    v
}

#[test]
fn the_root_walked_under_a_name_has_its_own_entry() {
    let t = tempfile::tempdir().unwrap();
    fs::create_dir(t.path().join("bin")).unwrap();
    fs::write(t.path().join("bin/f"), "x").unwrap();
    for (name, want) in [("/", ["/", "/bin/", "/bin/f"]), (".", ["./", "./bin/", "./bin/f"])] {
        let mut out = Vec::new();
        write_tree(
            root_fd(t.path()).as_fd(),
            "",
            &mut out,
            WalkOptions { archive_name: name.into(), ..Default::default() },
        )
        .unwrap();
        assert_eq!(names(&out), want, "{name}");
    }
}

fn tar_of(entries: &[(Header, &[u8])]) -> Vec<u8> {
    let mut w = TarWriter::new(Vec::new());
    for (h, data) in entries {
        let mut h = h.clone();
        if h.kind == EntryType::Regular {
            h.size = data.len() as u64;
        }
        w.append(&h, &mut &data[..]).unwrap();
    }
    w.finish().unwrap()
}

fn link(kind: EntryType, path: &str, target: &str) -> Header {
    let mut h = Header::new(path, kind);
    h.link = target.to_string();
    h
}

fn cp_in(root: &Path, under: &str, tar: &[u8]) -> Result<(), ArchiveError> {
    let opts = ApplyOptions { whiteouts: Whiteouts::Plain, under: Some(under.into()), ..Default::default() };
    apply_at(tar, root_fd(root).as_fd(), &opts).map(|_| ())
}

#[test]
fn unpacking_under_a_directory_resolves_links_from_the_root() {
    let t = shapes();
    let r = t.path();
    // An absolute link in the archive, then a file through it: lands in the root's /etc.
    let tar = tar_of(&[
        (link(EntryType::Symlink, "abs", "/etc"), b""),
        (Header::new("abs/planted", EntryType::Regular), b"x"),
    ]);
    cp_in(r, "d", &tar).unwrap();
    assert_eq!(fs::read_to_string(r.join("etc/planted")).unwrap(), "x");
    assert!(!r.join("d/etc").exists());
    // A link already there (etcl -> /etc, at the root) is read the same way from below.
    fs::create_dir(r.join("d/x")).unwrap();
    symlink("/etc", r.join("d/x/e")).unwrap();
    cp_in(r, "d/x", &tar_of(&[(Header::new("e/second", EntryType::Regular), b"y")])).unwrap();
    assert_eq!(fs::read_to_string(r.join("etc/second")).unwrap(), "y");
}

#[test]
fn links_above_the_root_are_confined_at_the_root_and_refused_below_it() {
    let t = shapes();
    let r = t.path();
    let up = tar_of(&[(link(EntryType::Symlink, "uplink", "../../etc"), b"")]);
    cp_in(r, "", &up).unwrap();
    assert_eq!(fs::read_link(r.join("uplink")).unwrap().to_str(), Some("../../etc"));
    let hl = tar_of(&[(link(EntryType::HardLink, "hl", "../etc/passwd"), b"")]);
    cp_in(r, "", &hl).unwrap();
    assert_eq!(fs::read_to_string(r.join("hl")).unwrap(), "root:x:0:0::/root:/bin/sh\n");

    let err = cp_in(r, "d", &up).unwrap_err();
    assert!(err.to_string().contains("invalid symlink \"/d/uplink\""), "{err}");
    let err = cp_in(r, "d", &hl).unwrap_err();
    assert!(err.to_string().contains("invalid hardlink"), "{err}");
    // Entry names still may not climb out, at the root or below.
    for under in ["", "d"] {
        let err = cp_in(r, under, &tar_of(&[(Header::new("../escape", EntryType::Regular), b"z")])).unwrap_err();
        assert!(matches!(err, ArchiveError::Unsafe(_)), "{err}");
    }
}
