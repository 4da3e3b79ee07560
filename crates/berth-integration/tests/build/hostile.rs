//! Hostile Dockerfiles and contexts: the daemon runs as root and reads them, so each must
//! come back as a clear error while the daemon lives on and leaves nothing behind.

use super::*;

/// Regression: `${a:-${a:-…}}` nested 4,000 deep overflowed a runtime worker's stack in
/// the variable lexer, and the overflow aborted the whole daemon.
#[test]
fn deeply_nested_substitution_is_refused_and_the_daemon_lives() {
    let d = Daemon::with_busybox();
    let n = 4000;
    let df = format!("FROM busybox\nENV X={}x{}\nRUN true\n", "${a:-".repeat(n), "}".repeat(n));
    let dir = context(&d, &[("Dockerfile", &df)]);
    let r = build(&d, &dir, &[]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(all.contains("nested more than 64 levels deep"), "{}", &all[all.len().saturating_sub(500)..]);
    // The daemon still answers, and still builds.
    let ok = context(&d, &[("Dockerfile", "FROM busybox\nENV X=${a:-${b:-fine}}\nRUN test \"$X\" = fine\n")]);
    build(&d, &ok, &[]).ok();
}
