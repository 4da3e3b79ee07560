//! Image references through `berth_image::Reference::parse` (`busybox`,
//! `localhost:5000/team/app:1.0`, `alpine@sha256:…`), as the CLI and the API take them.
//!
//! Checks: nothing panics; normalization is stable: a parsed reference's `full()` and
//! `familiar()` forms parse back to the same reference (both are stored, displayed and
//! re-parsed: a familiar form that parses to another repository would make `docker push`
//! of what `docker images` shows go elsewhere; Docker's own ambiguity for Hub paths whose
//! first component looks like a registry is exempt); `reference::familiar(full)` agrees with
//! `familiar()`; and the repository path and tag are ones berth's own registry accepts.
#![no_main]

use berth_image::Reference;
use berth_image::reference::familiar;
use berth_registry::names::{validate_name, validate_tag};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let Ok(r) = Reference::parse(s) else { return };
    assert!(!r.domain.is_empty() && !r.path.is_empty(), "{r:?}");

    let full = r.full();
    match Reference::parse(&full) {
        Ok(again) => assert_eq!(again, r, "{s:?}: the full form {full:?} parses to another reference"),
        Err(e) => panic!("{s:?} parses, but its full form {full:?} does not: {e}"),
    }
    let fam = r.familiar();
    // Docker's own ambiguity, not checked: `docker.io/foo.bar/app` is shown as `foo.bar/app`,
    // which reads as registry `foo.bar` (distribution/reference's familiarizeName does the same).
    let first = r.path.split('/').next().unwrap_or("");
    let hub_path_looks_like_a_domain =
        r.domain == "docker.io" && r.path.contains('/') && (first.contains(['.', ':']) || first == "localhost");
    if !hub_path_looks_like_a_domain {
        match Reference::parse(&fam) {
            Ok(again) => assert_eq!(again, r, "{s:?}: the familiar form {fam:?} parses to another reference"),
            Err(e) => panic!("{s:?} parses, but its familiar form {fam:?} does not: {e}"),
        }
    }
    assert_eq!(familiar(&full), fam);
    assert_eq!(r.to_string(), fam);

    let d = r.clone().with_default_tag();
    assert!(d.tag.is_some() || d.digest.is_some());
    assert_eq!(d.clone().with_default_tag(), d);

    assert!(validate_name(&r.path).is_ok(), "{s:?}: berth's registry refuses the repository {:?}", r.path);
    if let Some(t) = &r.tag {
        assert!(validate_tag(t).is_ok(), "{s:?}: berth's registry refuses the tag {t:?}");
    }
});
