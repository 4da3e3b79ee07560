//! `docker buildx du` and `docker buildx prune` over berth's build cache.

use super::*;

#[test]
fn du_lists_the_build_cache_and_prune_empties_it() {
    let d = Daemon::with_busybox();
    let ctx = files(&d, &[("Dockerfile", "FROM busybox\nRUN echo cached-step > /f\n")]);
    docker(&d, &ctx, &["build", "--network", "none", "."]).ok();
    let du = docker(&d, &ctx, &["buildx", "du", "--verbose"]).ok();
    assert!(du.stdout.contains("echo cached-step"), "{}", du.stdout);
    let pruned = docker(&d, &ctx, &["buildx", "prune", "-af"]).ok();
    assert!(pruned.stdout.contains("Total:"), "{}", pruned.stdout);
    let du = docker(&d, &ctx, &["buildx", "du", "--verbose"]).ok();
    assert!(!du.stdout.contains("echo cached-step"), "{}", du.stdout);
    // The next build runs the step again.
    let out = docker(&d, &ctx, &["build", "--network", "none", "."]).ok();
    assert!(cached_steps(&out.stderr).is_empty(), "{}", out.stderr);
}
