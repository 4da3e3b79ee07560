//! RUN: a container per step, its output, its failure.

use super::*;

#[test]
fn a_simple_build_runs_and_tags() {
    let d = Daemon::with_busybox();
    let dir = context(
        &d,
        &[
            (
                "Dockerfile",
                "FROM busybox\nRUN echo built > /built.txt && echo from-run\nCMD [\"cat\", \"/built.txt\"]\n",
            ),
            ("x", "x"),
        ],
    );
    let out = build(&d, &dir, &["-t", "simple:1", "-t", "simple:2"]).ok();
    assert!(out.contains("Step 1/3 : FROM busybox\n"), "{out}");
    assert!(out.contains("Step 2/3 : RUN echo built > /built.txt && echo from-run\n"), "{out}");
    assert!(out.contains(" ---> Running in "), "{out}");
    assert!(out.contains("from-run\n"), "{out}");
    assert!(out.contains("Successfully built "), "{out}");
    assert!(out.contains("Successfully tagged simple:1\n") && out.contains("Successfully tagged simple:2\n"), "{out}");
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", "simple:1"]).ok(), "built\n");
    assert_eq!(d.berth(&["ps", "-aq"]).ok(), "", "no intermediate container is left");
}

#[test]
fn a_failing_run_ends_the_build_with_dockers_message() {
    let d = Daemon::with_busybox();
    let dir = context(&d, &[("Dockerfile", "FROM busybox\nRUN echo before\nRUN exit 1\nRUN echo never\n")]);
    let r = build(&d, &dir, &["-t", "failing"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("The command '/bin/sh -c exit 1' returned a non-zero code: 1"), "{r:?}");
    assert!(!r.stdout.contains("never"), "{r:?}");
    assert!(d.berth(&["image", "inspect", "failing"]).code != 0, "nothing is tagged");
    assert_eq!(d.berth(&["ps", "-aq"]).ok(), "", "the failed step's container is removed");
    let dir = context(&d, &[("Dockerfile", "FROM busybox\nRUN exit 3\n")]);
    assert_eq!(build(&d, &dir, &[]).code, 3, "the CLI exits with the command's code");
}

/// A RUN step's output is passed on up to 64 MiB, then clipped with a line saying so (stages
/// run in parallel and a later one's output waits in the daemon's memory for its turn; Docker's
/// classic builder has no limit). The step itself runs to its end.
#[test]
fn a_run_steps_output_is_clipped_at_64_mib() {
    let d = Daemon::with_busybox();
    let df = "FROM busybox\nRUN yes | head -c 70000000; touch /finished\n";
    let dir = context(&d, &[("Dockerfile", df)]);
    let tag = berth_integration::unique("clip");
    let out = build(&d, &dir, &["-t", &tag]).ok();
    assert!(out.contains("\n[output clipped, log limit 64MiB reached]\n"), "{}", &out[out.len().saturating_sub(300)..]);
    let ys = out.matches("y\n").count();
    assert!((30_000_000..=(64 << 20) / 2).contains(&ys), "{ys} lines of output");
    d.berth(&["run", "--rm", "--network", "none", &tag, "test", "-e", "/finished"]).ok();
    d.berth(&["rmi", &tag]).ok();
}
