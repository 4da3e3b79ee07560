//! Arbitrary bytes unpacked by `berth_archive::apply::apply` into a fresh directory, as a
//! layer (overlay whiteouts, skeleton recorded) and as `docker cp` does (plain whiteouts,
//! `chown`, no dir/non-dir overwrite). Run as root: whiteouts are device nodes and the
//! opaque marker is a trusted xattr (as an unprivileged user most archives fail early).
//!
//! Checks: nothing panics; confinement: the sandbox around the root (a sibling directory
//! holding a canary file) is exactly as it was, whatever the archive did; and for a layer
//! that applied: `diff_id`/`tar_size` describe the input, the skeleton survives
//! encode/decode, and reassembling it from the unpacked files either fails or gives back
//! the input byte for byte (a different stream under the same diff ID would be a corrupt
//! push or save).
//!
//! The archive applied is the input with its header checksums fixed (see
//! `common/tarfix.rs`; tar_reader covers bad checksums), so a crash's tar is
//! `fix_checksums(input)`.
//!
//! The sandbox is `$TMPDIR/berth-fuzz-apply.<pid>/{root,outside/canary}`, removed and
//! recreated per input; it is left behind if the process dies.
#![no_main]

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use berth_archive::apply::{ApplyOptions, Whiteouts, apply};
use berth_archive::hash::sha256_digest;
use berth_archive::skeleton::Skeleton;
use libfuzzer_sys::fuzz_target;

#[path = "common/tarfix.rs"]
mod tarfix;

struct Sandbox {
    base: PathBuf,
    root: PathBuf,
    canary: PathBuf,
    canary_meta: (u64, u32, u32, u64, i64, i64, u64),
}

fn meta_of(p: &Path) -> (u64, u32, u32, u64, i64, i64, u64) {
    let m = fs::symlink_metadata(p).expect("canary is gone");
    (m.ino(), m.mode(), m.uid(), m.size(), m.mtime(), m.mtime_nsec(), m.nlink())
}

fn sandbox() -> &'static Sandbox {
    static S: OnceLock<Sandbox> = OnceLock::new();
    S.get_or_init(|| {
        let base = std::env::temp_dir().join(format!("berth-fuzz-apply.{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(base.join("outside")).unwrap();
        let canary = base.join("outside").join("canary");
        fs::write(&canary, b"must not change\n").unwrap();
        let canary_meta = meta_of(&canary);
        Sandbox { root: base.join("root"), base, canary, canary_meta }
    })
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

fn fresh_root(s: &Sandbox) {
    if let Err(e) = fs::remove_dir_all(&s.root) {
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "cleaning the root: {e}");
    }
    fs::create_dir(&s.root).unwrap();
}

fn check_confined(s: &Sandbox, what: &str) {
    assert_eq!(names(&s.base), ["outside", "root"], "{what}: something appeared next to the root");
    assert_eq!(names(&s.base.join("outside")), ["canary"], "{what}: something appeared outside the root");
    assert_eq!(meta_of(&s.canary), s.canary_meta, "{what}: the canary outside the root changed");
    assert_eq!(fs::read(&s.canary).unwrap(), b"must not change\n", "{what}: the canary's content changed");
    let m = fs::symlink_metadata(&s.root).unwrap();
    assert!(m.file_type().is_dir(), "{what}: the root itself was replaced");
}

fuzz_target!(|input: &[u8]| {
    let s = sandbox();
    let fixed = tarfix::fix_checksums(input);
    let data = &fixed[..];

    // As a layer.
    fresh_root(s);
    let opts = ApplyOptions { whiteouts: Whiteouts::Overlay, record_skeleton: true, ..Default::default() };
    let applied = apply(data, &s.root, &opts);
    check_confined(s, "layer");
    if let Ok(a) = applied {
        assert_eq!(a.diff_id, sha256_digest(data), "diff_id is not the input's digest");
        assert_eq!(a.tar_size, data.len() as u64);
        let sk = a.skeleton.expect("a skeleton was asked for");
        assert_eq!(sk.tar_size(), data.len() as u64, "the skeleton describes a stream of another size");
        assert_eq!(Skeleton::decode(&sk.encode()).expect("own skeleton decodes"), sk);
        let mut again = Vec::new();
        if sk.write_tar(&s.root, &mut again).is_ok() {
            assert!(
                again == data,
                "reassembled layer differs from the applied archive ({} vs {} bytes) under the same diff ID",
                again.len(),
                data.len()
            );
        }
        check_confined(s, "reassembly");
    }

    // As `docker cp` into a container.
    fresh_root(s);
    let opts = ApplyOptions {
        whiteouts: Whiteouts::Plain,
        chown: Some((1000, 1000)),
        no_overwrite_dir_non_dir: true,
        ..Default::default()
    };
    let _ = apply(data, &s.root, &opts);
    check_confined(s, "cp");
});
