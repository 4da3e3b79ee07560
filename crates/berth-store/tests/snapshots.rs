//! The snapshotter against the real kernel: layers unpacked, mounted with overlayfs, and a
//! container's changes read back as a layer.

use std::fs;
use std::io::Read;
use std::os::fd::AsFd;

use berth_archive::apply::{ApplyOptions, apply};
use berth_archive::header::{EntryType, Header};
use berth_archive::walk::{WalkOptions, write_tree};
use berth_archive::writer::TarWriter;
use berth_store::snapshot::Snapshotter;

fn layer_tar(files: &[(&str, &str)], deletions: &[&str]) -> Vec<u8> {
    let mut w = TarWriter::new(Vec::new());
    for (p, c) in files {
        let mut h = Header::new(*p, EntryType::Regular);
        h.size = c.len() as u64;
        w.append(&h, &mut c.as_bytes()).unwrap();
    }
    for d in deletions {
        w.append(&Header::new(format!(".wh.{d}"), EntryType::Regular), &mut std::io::empty()).unwrap();
    }
    w.finish().unwrap()
}

fn unpack(s: &Snapshotter, tar: &[u8]) -> String {
    let st = s.stage().unwrap();
    let a = apply(tar, &st.path(), &ApplyOptions { record_skeleton: true, ..Default::default() }).unwrap();
    s.commit_layer(st, &a.diff_id, a.tar_size, a.content_size, a.skeleton.as_ref().unwrap()).unwrap();
    a.diff_id
}

#[test]
fn layers_stack_under_overlay_and_changes_come_back_as_a_layer() {
    let dir = tempfile::tempdir().unwrap();
    let s = Snapshotter::open(dir.path()).unwrap();
    let base_tar = layer_tar(&[("a", "from base"), ("b", "to be deleted")], &[]);
    let base = unpack(&s, &base_tar);
    let top = unpack(&s, &layer_tar(&[("a", "from top")], &["b"]));
    assert_eq!(unpack(&s, &base_tar), base, "the same layer twice is stored once");
    assert_eq!(s.layers().unwrap().len(), 2);

    let mut again = Vec::new();
    s.write_layer_tar(&base, &mut again).unwrap();
    assert!(again == base_tar);

    let key = berth_api::ids::random_id();
    let spec = s.prepare(&key, &[base.clone(), top.clone()]).unwrap();
    let mnt = tempfile::tempdir().unwrap();
    rustix::mount::mount(
        "overlay",
        mnt.path(),
        "overlay",
        rustix::mount::MountFlags::empty(),
        Some(std::ffi::CString::new(spec.overlay_data()).unwrap().as_c_str()),
    )
    .unwrap();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        assert_eq!(fs::read_to_string(mnt.path().join("a")).unwrap(), "from top");
        assert!(!mnt.path().join("b").exists(), "whiteout hides the base file");
        fs::write(mnt.path().join("new"), "written in the container").unwrap();
        fs::remove_file(mnt.path().join("a")).unwrap();
    }));
    rustix::mount::unmount(mnt.path(), rustix::mount::UnmountFlags::DETACH).unwrap();
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }

    let upper = fs::File::open(s.upper_dir(&key).unwrap()).unwrap();
    let mut diff = Vec::new();
    write_tree(upper.as_fd(), "", &mut diff, WalkOptions { overlay_whiteouts: true, ..Default::default() }).unwrap();
    let mut r = berth_archive::reader::TarReader::new(&diff[..], false);
    let mut names = Vec::new();
    while let Some(h) = r.next_entry().unwrap() {
        let mut v = Vec::new();
        r.data().read_to_end(&mut v).unwrap();
        names.push(h.path);
    }
    assert_eq!(names, vec![".wh.a".to_string(), "new".to_string()]);

    s.remove(&key).unwrap();
    s.remove_layer(&top).unwrap();
    s.remove_layer(&top).unwrap();
    assert_eq!(s.layers().unwrap().len(), 1);
}

#[test]
fn interrupted_work_is_swept() {
    let dir = tempfile::tempdir().unwrap();
    let s = Snapshotter::open(dir.path()).unwrap();
    let st = s.stage().unwrap();
    fs::write(st.path().join("half"), "x").unwrap();
    std::mem::forget(st); // a crash mid-unpack
    assert_eq!(s.sweep().unwrap(), 1);
    assert!(s.layers().unwrap().is_empty());
}

#[test]
fn a_layer_repeated_in_an_image_is_mounted_once() {
    // Two build steps can make byte-identical layers; overlayfs refuses a lower directory
    // listed twice (ELOOP), and the lower copy adds nothing the upper one does not.
    let dir = tempfile::tempdir().unwrap();
    let s = Snapshotter::open(dir.path()).unwrap();
    let same = unpack(&s, &layer_tar(&[("f", "same")], &[]));
    let middle = unpack(&s, &layer_tar(&[("g", "g")], &["f"]));
    let key = berth_api::ids::random_id();
    let spec = s.prepare(&key, &[same.clone(), middle.clone(), same.clone()]).unwrap();
    let dirs: Vec<_> = spec.lower.iter().skip(1).cloned().collect();
    assert_eq!(
        dirs,
        vec![s.layer_dir(&same).unwrap(), s.layer_dir(&middle).unwrap()],
        "topmost copy kept, init layer first"
    );
    s.remove(&key).unwrap();
}

fn unpack_deferred(s: &Snapshotter, tar: &[u8]) -> String {
    let st = s.stage().unwrap();
    let a = apply(tar, &st.path(), &ApplyOptions { record_skeleton: true, ..Default::default() }).unwrap();
    s.commit_layer_deferred(st, &a.diff_id, a.tar_size, a.content_size, a.skeleton.as_ref().unwrap()).unwrap();
    a.diff_id
}

fn layer_dir(root: &std::path::Path, diff_id: &str) -> std::path::PathBuf {
    root.join("layers").join(&diff_id.trim_start_matches("sha256:")[..16])
}

#[test]
fn deferred_layers_become_durable_and_damaged_ones_are_dropped_after_a_host_crash() {
    let dir = tempfile::tempdir().unwrap();
    let s = Snapshotter::open(dir.path()).unwrap();
    let kept = unpack_deferred(&s, &layer_tar(&[("a", "intact")], &[]));
    assert!(layer_dir(dir.path(), &kept).join("unsynced").exists(), "marked until synced");
    s.sync_pending();
    assert!(!layer_dir(dir.path(), &kept).join("unsynced").exists());

    // Two layers left unsynced by a "previous boot": one intact, one that lost its data.
    let intact = unpack_deferred(&s, &layer_tar(&[("b", "still here")], &[]));
    let lost = unpack_deferred(&s, &layer_tar(&[("c", "gone with the host")], &[]));
    drop(s);
    for l in [&intact, &lost] {
        fs::write(layer_dir(dir.path(), l).join("unsynced"), "another-boot").unwrap();
    }
    fs::write(layer_dir(dir.path(), &lost).join("diff/c"), "").unwrap();

    let s = Snapshotter::open(dir.path()).unwrap();
    assert_eq!(s.recover_unsynced().unwrap(), vec![lost.clone()]);
    assert!(s.layer(&lost).unwrap().is_none(), "the damaged layer is gone");
    assert!(s.layer(&intact).unwrap().is_some() && s.layer(&kept).unwrap().is_some());
    assert!(!layer_dir(dir.path(), &intact).join("unsynced").exists(), "verified, synced, unmarked");

    // A layer of this boot is trusted (the page cache still holds it) and just synced.
    let fresh = unpack_deferred(&s, &layer_tar(&[("d", "this boot")], &[]));
    drop(s);
    let s = Snapshotter::open(dir.path()).unwrap();
    assert_eq!(s.recover_unsynced().unwrap(), Vec::<String>::new());
    assert!(s.layer(&fresh).unwrap().is_some());
    assert!(!layer_dir(dir.path(), &fresh).join("unsynced").exists());
}
