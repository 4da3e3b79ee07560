//! `.dockerignore` patterns (`berth_dockerfile::Ignore`) matched against context paths.
//!
//! Input: the `.dockerignore` text, then a NUL byte, then newline-separated paths.
//! Checks: nothing panics, and `may_match_below`'s promise to a pruning walker: when a
//! directory is excluded and `may_match_below(dir)` is false, every path below it is
//! excluded too (a walker that skipped the directory would otherwise lose files).
#![no_main]

use berth_dockerfile::Ignore;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (patterns, paths) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"a/b/c\nbuild/x.o\n.git/HEAD"[..]),
    };
    let ig = Ignore::parse(&String::from_utf8_lossy(patterns));
    let _ = ig.invalid();
    let _ = ig.has_exceptions();
    let paths = String::from_utf8_lossy(paths);
    for path in paths.lines().take(16) {
        let excluded = ig.matches(path);
        let _ = ig.may_match_below(path);
        // Each ancestor that is excluded and promises nothing below can be re-included.
        let clean = path.trim_start_matches('/');
        if clean.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
            continue; // cleaning would move it: not simply below its prefixes
        }
        for (i, _) in clean.match_indices('/') {
            let dir = &clean[..i];
            if ig.matches(dir) && !ig.may_match_below(dir) {
                assert!(excluded, "{dir:?} is excluded with nothing below re-includable, but {path:?} is included");
            }
        }
    }
});
