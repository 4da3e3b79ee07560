//! Layer round trips and hostile archives, against the real filesystem (run as root: overlay
//! whiteouts are device nodes and opaque markers are trusted xattrs).

use std::fs;
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;

use berth_archive::ArchiveError;
use berth_archive::apply::{ApplyOptions, Whiteouts, apply, apply_buffered};
use berth_archive::header::{EntryType, Header};
use berth_archive::walk::{WalkOptions, write_tree};
use berth_archive::writer::TarWriter;

fn open_dir(p: &Path) -> fs::File {
    fs::File::open(p).unwrap()
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

fn sym(path: &str, target: &str) -> Header {
    let mut h = Header::new(path, EntryType::Symlink);
    h.link = target.to_string();
    h
}

#[test]
fn a_tree_survives_walk_apply_and_reassembly_byte_for_byte() {
    let src = tempfile::tempdir().unwrap();
    let s = src.path();
    fs::create_dir_all(s.join("etc/conf.d")).unwrap();
    fs::write(s.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::write(s.join("etc/conf.d/big"), vec![b'x'; 100_000]).unwrap();
    fs::set_permissions(s.join("etc/conf.d/big"), fs::Permissions::from_mode(0o4755)).unwrap();
    symlink("/bin/busybox", s.join("sh")).unwrap();
    fs::hard_link(s.join("etc/passwd"), s.join("passwd-link")).unwrap();

    let mut tar = Vec::new();
    let walked = write_tree(open_dir(s).as_fd(), "", &mut tar, WalkOptions::default()).unwrap();
    assert_eq!(walked.tar_size as usize, tar.len());

    let dst = tempfile::tempdir().unwrap();
    let applied = apply(&tar[..], dst.path(), &ApplyOptions { record_skeleton: true, ..Default::default() }).unwrap();
    assert_eq!(applied.diff_id, walked.digest);
    let d = dst.path();
    assert_eq!(fs::read_to_string(d.join("etc/passwd")).unwrap(), "root:x:0:0:root:/root:/bin/sh\n");
    assert_eq!(fs::read_link(d.join("sh")).unwrap().to_str(), Some("/bin/busybox"));
    assert_eq!(fs::metadata(d.join("etc/conf.d/big")).unwrap().mode() & 0o7777, 0o4755);
    assert_eq!(fs::metadata(d.join("passwd-link")).unwrap().ino(), fs::metadata(d.join("etc/passwd")).unwrap().ino());

    let mut again = Vec::new();
    applied.skeleton.unwrap().write_tar(d, &mut again).unwrap();
    assert!(again == tar, "reassembled stream differs from the original");
}

/// A buffered reader that lends at most 7 bytes at a time, so every header and file is
/// split across many of its buffers.
struct Trickle<'a>(&'a [u8]);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.0.len()).min(7);
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

impl std::io::BufRead for Trickle<'_> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        Ok(&self.0[..self.0.len().min(7)])
    }
    fn consume(&mut self, n: usize) {
        self.0 = &self.0[n..];
    }
}

#[test]
fn a_buffered_input_is_written_from_its_buffer_with_the_same_result() {
    let data: Vec<u8> = (0..70_001u32).map(|i| (i % 253) as u8).collect();
    let mut tar = tar_of(&[
        (Header::new("d/", EntryType::Directory), b""),
        (Header::new("d/f", EntryType::Regular), &data),
        (Header::new("g", EntryType::Regular), b""),
    ]);
    tar.extend(vec![0u8; 2048]);
    let opts = ApplyOptions { record_skeleton: true, ..Default::default() };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let plain = apply(&tar[..], a.path(), &opts).unwrap();
    let buffered = apply_buffered(Trickle(&tar), b.path(), &opts).unwrap();
    assert_eq!((&buffered.diff_id, buffered.tar_size), (&plain.diff_id, plain.tar_size));
    assert_eq!(buffered.tar_size, tar.len() as u64);
    assert!(fs::read(b.path().join("d/f")).unwrap() == data);
    assert_eq!(fs::metadata(b.path().join("g")).unwrap().len(), 0);
    let mut again = Vec::new();
    buffered.skeleton.unwrap().write_tar(b.path(), &mut again).unwrap();
    assert!(again == tar, "reassembled stream differs from the original");
    // Cut inside the file: refused as a damaged archive, as with an unbuffered input.
    let err = apply_buffered(Trickle(&tar[..30_000]), tempfile::tempdir().unwrap().path(), &opts).unwrap_err();
    assert!(matches!(err, ArchiveError::Corrupt(_)), "{err}");
}

#[test]
fn foreign_tars_reassemble_exactly_including_trailer_padding() {
    // A stream with PAX headers and a long trailer, as other tools write them.
    let mut long = Header::new(format!("{}/file", "d".repeat(150)), EntryType::Regular);
    long.mtime = 1_600_000_000;
    let mut tar = tar_of(&[(Header::new("./", EntryType::Directory), b""), (long, b"content")]);
    tar.extend(vec![0u8; 10240 - tar.len() % 10240]);
    let dst = tempfile::tempdir().unwrap();
    let applied = apply(&tar[..], dst.path(), &ApplyOptions { record_skeleton: true, ..Default::default() }).unwrap();
    let mut again = Vec::new();
    applied.skeleton.unwrap().write_tar(dst.path(), &mut again).unwrap();
    assert_eq!(again.len(), tar.len());
    assert!(again == tar);
}

#[test]
fn oci_whiteouts_become_overlay_whiteouts_and_back() {
    let tar = tar_of(&[
        (Header::new("gone-file", EntryType::Regular).with_name(".wh.gone"), b""),
        (Header::new("dir/", EntryType::Directory), b""),
        (Header::new("dir/.wh..wh..opq", EntryType::Regular), b""),
        (Header::new("dir/kept", EntryType::Regular), b"k"),
    ]);
    let dst = tempfile::tempdir().unwrap();
    apply(&tar[..], dst.path(), &ApplyOptions::default()).unwrap();
    let wh = fs::symlink_metadata(dst.path().join("gone")).unwrap();
    assert_eq!(wh.rdev(), 0);
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(&wh.file_type()));

    let mut out = Vec::new();
    write_tree(
        open_dir(dst.path()).as_fd(),
        "",
        &mut out,
        WalkOptions { overlay_whiteouts: true, ..Default::default() },
    )
    .unwrap();
    let names = entry_names(&out);
    assert!(names.contains(&"dir/.wh..wh..opq".to_string()), "{names:?}");
    assert!(names.contains(&".wh.gone".to_string()), "{names:?}");
}

/// Overlayfs's xattrs in an archive are dropped: a layer that carried `trusted.overlay.*`
/// (a `redirect` to another path, an `opaque` without the OCI marker) would change how the
/// layers under it read. Other xattrs still apply (the control).
#[test]
fn overlay_xattrs_from_an_archive_are_never_applied() {
    let with = |h: Header, xattrs: &[(&str, &[u8])]| {
        let mut h = h;
        h.xattrs = xattrs.iter().map(|(k, v)| (k.to_string(), v.to_vec())).collect();
        h
    };
    let tar = tar_of(&[
        (
            with(
                Header::new("dir/", EntryType::Directory),
                &[("trusted.overlay.opaque", b"y"), ("trusted.overlay.redirect", b"/etc"), ("trusted.kept", b"d")],
            ),
            b"",
        ),
        (
            with(
                Header::new("dir/f", EntryType::Regular),
                &[("trusted.overlay.metacopy", b""), ("trusted.kept", b"f")],
            ),
            b"f",
        ),
    ]);
    let dst = tempfile::tempdir().unwrap();
    apply(&tar[..], dst.path(), &ApplyOptions::default()).unwrap();
    let get = |path: &str, name: &str| {
        let mut buf = [0u8; 64];
        rustix::fs::lgetxattr(dst.path().join(path), name, &mut buf[..]).map(|n| buf[..n].to_vec())
    };
    assert_eq!(get("dir", "trusted.kept").unwrap(), b"d", "the control xattr is applied");
    assert_eq!(get("dir/f", "trusted.kept").unwrap(), b"f");
    for (path, name) in
        [("dir", "trusted.overlay.opaque"), ("dir", "trusted.overlay.redirect"), ("dir/f", "trusted.overlay.metacopy")]
    {
        assert_eq!(get(path, name), Err(rustix::io::Errno::NODATA), "{path} {name}");
    }
}

fn entry_names(tar: &[u8]) -> Vec<String> {
    let mut r = berth_archive::reader::TarReader::new(tar, false);
    let mut v = Vec::new();
    while let Some(h) = r.next_entry().unwrap() {
        let mut sink = Vec::new();
        r.data().read_to_end(&mut sink).unwrap();
        v.push(h.path);
    }
    v
}

trait WithName {
    fn with_name(self, n: &str) -> Self;
}
impl WithName for Header {
    fn with_name(mut self, n: &str) -> Self {
        self.path = n.to_string();
        self
    }
}

fn refused(entries: &[(Header, &[u8])]) -> (ArchiveError, tempfile::TempDir, tempfile::TempDir) {
    let outside = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let tar = tar_of(entries);
    let err =
        apply(&tar[..], root.path(), &ApplyOptions { whiteouts: Whiteouts::Plain, ..Default::default() }).unwrap_err();
    (err, root, outside)
}

#[test]
fn dot_dot_paths_are_refused() {
    let (err, _r, _o) = refused(&[(Header::new("../escape", EntryType::Regular), b"x")]);
    assert!(matches!(err, ArchiveError::Unsafe(_)), "{err}");
    assert!(err.to_string().contains("escapes the root"));
}

#[test]
fn relative_symlinks_out_of_the_root_are_refused() {
    let (err, _r, _o) = refused(&[(sym("evil", "../../../../etc"), b"")]);
    assert!(err.to_string().contains("points outside the root"), "{err}");
}

#[test]
fn writes_through_an_absolute_symlink_stay_inside() {
    let outside = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let target = outside.path().to_str().unwrap().to_string();
    let tar = tar_of(&[(sym("link", &target), b""), (Header::new("link/planted", EntryType::Regular), b"pwned")]);
    // The link's target does not exist inside the root, so the write fails…
    assert!(apply(&tar[..], root.path(), &ApplyOptions::default()).is_err());
    assert!(!outside.path().join("planted").exists(), "wrote outside the root");
    // …and when it does exist there, the write lands inside the root.
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join(target.trim_start_matches('/'))).unwrap();
    apply(&tar[..], root.path(), &ApplyOptions::default()).unwrap();
    assert!(!outside.path().join("planted").exists(), "wrote outside the root");
    assert!(root.path().join(target.trim_start_matches('/')).join("planted").exists());
}

#[test]
fn hard_links_out_of_the_tree_are_refused() {
    let mut h = Header::new("passwd", EntryType::HardLink);
    h.link = "../../etc/passwd".into();
    let (err, _r, _o) = refused(&[(h, b"")]);
    assert!(err.to_string().contains("hard link target"), "{err}");
}

#[test]
fn device_nodes_are_refused() {
    let mut h = Header::new("dev/sda", EntryType::Block);
    h.dev_major = 8;
    let (err, _r, _o) = refused(&[(h, b"")]);
    assert!(err.to_string().contains("device node"), "{err}");
}

#[test]
fn truncated_and_garbage_archives_are_corrupt() {
    let tar = tar_of(&[(Header::new("f", EntryType::Regular), &[1u8; 3000][..])]);
    let root = tempfile::tempdir().unwrap();
    let err = apply(&tar[..1500], root.path(), &ApplyOptions::default()).unwrap_err();
    assert!(matches!(err, ArchiveError::Corrupt(_)), "{err}");
    let err = apply(&b"this is not a tar archive at all"[..].repeat(40)[..], root.path(), &ApplyOptions::default())
        .unwrap_err();
    assert!(matches!(err, ArchiveError::Corrupt(_)), "{err}");
}

#[test]
fn walking_a_single_path_renames_it() {
    let src = tempfile::tempdir().unwrap();
    fs::create_dir_all(src.path().join("etc")).unwrap();
    fs::write(src.path().join("etc/hosts"), "127.0.0.1 localhost\n").unwrap();
    let mut out = Vec::new();
    write_tree(
        open_dir(src.path()).as_fd(),
        "/etc/hosts",
        &mut out,
        WalkOptions { archive_name: "copied".into(), ..Default::default() },
    )
    .unwrap();
    assert_eq!(entry_names(&out), vec!["copied".to_string()]);
}

/// fuzz/regressions/tar_apply/uid-minus-one.tar: uid 0xffffffff is chown's "leave as it is"
/// (the file stayed root's) and tripped rustix's debug assertion; it is refused.
#[test]
fn an_owner_of_minus_one_is_refused() {
    let input =
        fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/regressions/tar_apply/uid-minus-one.tar")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = apply(&input[..], dir.path(), &ApplyOptions::default()).unwrap_err();
    assert!(err.to_string().contains("invalid uid"), "{err}");
}

/// Fuzz finds (fuzz/regressions/tar_apply): data on entries the unpacker skips (a root entry
/// `./` with content, a whiteout with content) was left out of the layer's skeleton, so the
/// layer reassembled for save and push was shorter than the stream its diff ID names.
#[test]
fn content_of_skipped_entries_stays_in_the_skeleton() {
    for name in ["root-entry-with-data.tar", "whiteout-with-data.tar"] {
        let input =
            fs::read(format!("{}/../../fuzz/regressions/tar_apply/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let opts = ApplyOptions { whiteouts: Whiteouts::Overlay, record_skeleton: true, ..Default::default() };
        let applied = apply(&input[..], dir.path(), &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
        let sk = applied.skeleton.unwrap();
        assert_eq!(sk.tar_size(), input.len() as u64, "{name}");
        let mut again = Vec::new();
        sk.write_tar(dir.path(), &mut again).unwrap();
        assert!(again == input, "{name}: reassembled {} bytes of {}", again.len(), input.len());
    }
}
