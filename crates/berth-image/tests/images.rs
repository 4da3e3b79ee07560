//! The image service against a real store: import, tag, save, load, delete, commit.

use std::fs;
use std::io::Write;
use std::os::fd::AsFd;
use std::sync::Arc;

use berth_archive::walk::{WalkOptions, write_tree};
use berth_image::import::ImportOptions;
use berth_image::{ContainerUse, ImageError, ImageStore};
use berth_store::content::ContentStore;
use berth_store::db::Db;
use berth_store::snapshot::Snapshotter;

fn store(dir: &std::path::Path) -> ImageStore {
    let db = Arc::new(Db::open(&dir.join("berth.db")).unwrap());
    let content = ContentStore::open(&dir.join("content")).unwrap();
    let snaps = Arc::new(Snapshotter::open(&dir.join("snapshots")).unwrap());
    ImageStore::open(db, content, snaps).unwrap().0
}

/// A small rootfs tar: a few files and a symlink.
fn rootfs_tar(marker: &str) -> Vec<u8> {
    let src = tempfile::tempdir().unwrap();
    fs::create_dir_all(src.path().join("etc")).unwrap();
    fs::create_dir_all(src.path().join("bin")).unwrap();
    fs::write(src.path().join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::write(src.path().join("marker"), marker).unwrap();
    std::os::unix::fs::symlink("busybox", src.path().join("bin/sh")).unwrap();
    let mut out = Vec::new();
    write_tree(fs::File::open(src.path()).unwrap().as_fd(), "", &mut out, WalkOptions::default()).unwrap();
    out
}

fn import(s: &ImageStore, marker: &str, tag: Option<&str>) -> berth_image::Image {
    s.import(
        &rootfs_tar(marker)[..],
        &ImportOptions { reference: tag.map(String::from), source: "-".into(), ..Default::default() },
    )
    .unwrap()
}

fn no_users(_: &str) -> Vec<ContainerUse> {
    Vec::new()
}

#[test]
fn import_names_and_describes_an_image() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let img = s
        .import(
            &rootfs_tar("a")[..],
            &ImportOptions {
                reference: Some("myimp:1".into()),
                changes: vec!["CMD [\"/bin/sh\"]".into(), "ENV A=b".into()],
                source: "-".into(),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(s.resolve("myimp:1").unwrap().id, img.id);
    assert_eq!(s.resolve(&img.id[7..19]).unwrap().id, img.id, "id prefix");
    assert_eq!(img.config.config.cmd, Some(vec!["/bin/sh".to_string()]));
    assert_eq!(img.config.config.env, vec!["A=b".to_string()]);
    assert!(matches!(s.resolve("myimp"), Err(ImageError::NotFound(m)) if m == "myimp:latest"));
    let h = s.history(&img);
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].comment, "Imported from -");
    assert_eq!(h[0].tags, vec!["myimp:1".to_string()]);
}

#[test]
fn bad_imports_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let tar = rootfs_tar("x");
    // Cut one byte into the second block: inside the first entry's data or the next header
    // (a stream cut in the padding after an entry's data is complete, as Go's reader reads it).
    assert!(s.import(&tar[..513], &ImportOptions::default()).is_err());
    assert!(s.import(&b""[..], &ImportOptions::default()).is_err());
    assert!(s.import(&tar[..], &ImportOptions { changes: vec!["RUN true".into()], ..Default::default() }).is_err());
    assert!(s.import(&tar[..], &ImportOptions { reference: Some("Bad:Name".into()), ..Default::default() }).is_err());
    assert!(s.all().is_empty());
    assert!(s.snapshots().layers().unwrap().is_empty());
    assert_eq!(fs::read_dir(dir.path().join("snapshots/staging")).unwrap().count(), 0);
}

#[test]
fn save_and_load_keep_tags_and_bytes() {
    let a = tempfile::tempdir().unwrap();
    let s = store(a.path());
    let one = import(&s, "one", Some("one:latest"));
    let two = import(&s, "two", Some("two:v2"));
    s.tag("two:v2", "two:also").unwrap();
    let mut archive = Vec::new();
    s.save(&["one".into(), "two".into()], &mut archive).unwrap();

    let b = tempfile::tempdir().unwrap();
    let t = store(b.path());
    let msgs = t.load(&archive[..]).unwrap();
    assert!(msgs.contains(&"Loaded image: one:latest".to_string()), "{msgs:?}");
    assert!(msgs.contains(&"Loaded image: two:also".to_string()), "{msgs:?}");
    assert_eq!(t.resolve("one").unwrap().id, one.id);
    assert_eq!(t.resolve("two:v2").unwrap().id, two.id);
    // Loading again changes nothing and stores nothing twice.
    t.load(&archive[..]).unwrap();
    assert_eq!(t.all().len(), 2);
    // And the re-saved archive is identical: layers are reproduced byte for byte.
    let mut again = Vec::new();
    t.save(&["one".into(), "two".into()], &mut again).unwrap();
    assert!(again == archive);
}

#[test]
fn corrupt_archives_are_refused_whole() {
    let a = tempfile::tempdir().unwrap();
    let s = store(a.path());
    import(&s, "one", Some("one:latest"));
    let mut archive = Vec::new();
    s.save(&["one".into()], &mut archive).unwrap();
    let b = tempfile::tempdir().unwrap();
    let t = store(b.path());
    for cut in [100, archive.len() / 2, archive.len() - 1536] {
        assert!(t.load(&archive[..cut]).is_err(), "cut at {cut}");
    }
    let err = t.load(&b"garbage garbage garbage"[..].repeat(50)[..]).unwrap_err();
    assert!(err.to_string().contains("invalid archive") || err.to_string().contains("header checksum"), "{err}");
    assert!(t.all().is_empty());
    assert!(t.snapshots().layers().unwrap().is_empty());
}

#[test]
fn rmi_untags_then_deletes_and_respects_users() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let img = import(&s, "x", Some("x:1"));
    s.tag("x:1", "x:2").unwrap();
    let out = s.delete("x:1", false, true, &no_users).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].untagged.as_deref(), Some("x:1"));
    assert!(s.get(&img.id).is_some());

    let used = |id: &str| vec![ContainerUse { container_id: format!("c0ffee{id}"), running: false }];
    let err = s.delete("x:2", false, true, &used).unwrap_err();
    assert!(err.to_string().contains("must force"), "{err}");
    let running = |_: &str| vec![ContainerUse { container_id: "c0ffee".into(), running: true }];
    let err = s.delete(&img.id, true, true, &running).unwrap_err();
    assert!(err.to_string().contains("cannot be forced"), "{err}");

    let out = s.delete("x:2", false, true, &no_users).unwrap();
    assert_eq!(out.last().unwrap().deleted.as_deref(), Some(img.id.as_str()));
    assert!(s.all().is_empty());
    assert!(s.snapshots().layers().unwrap().is_empty(), "layers go with the last image");
}

#[test]
fn commit_adds_a_layer_over_the_base() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let base = import(&s, "base", Some("base:latest"));
    let upper = tempfile::tempdir().unwrap();
    fs::File::create(upper.path().join("added")).unwrap().write_all(b"new").unwrap();
    let mut cfg = base.config.config.clone();
    cfg.cmd = Some(vec!["sh".into()]);
    let img = s
        .commit(
            Some(&base),
            upper.path(),
            &cfg,
            &berth_image::commit::CommitOptions {
                reference: Some("derived".into()),
                author: "me".into(),
                created_by: "sh".into(),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(img.config.rootfs.diff_ids.len(), 2);
    assert_eq!(img.meta.parent, base.id);
    let layer = s.snapshots().layer_dir(&img.config.rootfs.diff_ids[1]).unwrap();
    assert_eq!(fs::read_to_string(layer.join("added")).unwrap(), "new");
    assert_eq!(s.history(&img)[0].created_by, "sh");
    assert_eq!(s.history(&img)[1].id, base.id);
    // The base can't go while the derived image needs it.
    assert!(s.delete(&base.id, false, true, &no_users).is_err() || s.get(&base.id).is_some());
}

#[test]
fn reopening_recovers_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let s = store(dir.path());
        import(&s, "p", Some("persist:1")).id
    };
    let s = store(dir.path());
    assert_eq!(s.resolve("persist:1").unwrap().id, id);
}
