//! FROM and multi-stage builds: bases, stages, `--target`, parallel stages.

use super::*;

#[test]
fn multi_stage_copies_from_stages_and_images_and_skips_unneeded_ones() {
    let d = Daemon::with_busybox();
    let df = r#"FROM busybox AS build
RUN mkdir /out && echo artifact > /out/app && echo second > /out/other
FROM busybox AS unused
RUN exit 7
FROM busybox
COPY --from=build /out/app /app
COPY --from=0 /out/other /other
COPY --from=busybox /bin/busybox /copied-busybox
CMD ["cat", "/app", "/other"]
"#;
    let dir = context(&d, &[("Dockerfile", df)]);
    let out = build(&d, &dir, &["-t", "multi"]).ok();
    assert!(!out.contains("exit 7"), "the unused stage is skipped: {out}");
    assert!(out.contains("Step 1/7 : FROM busybox AS build"), "{out}");
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", "multi"]).ok(), "artifact\nsecond\n");
    assert_eq!(
        d.berth(&["run", "--rm", "--network", "none", "multi", "sh", "-c", "test -x /copied-busybox && echo ok"]).ok(),
        "ok\n"
    );

    // --target stops at a stage.
    let out = build(&d, &dir, &["-t", "multi-build", "--target", "build"]).ok();
    assert!(out.contains("Step 2/2 :"), "{out}");
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", "multi-build", "cat", "/out/app"]).ok(), "artifact\n");
    let err = build(&d, &dir, &["--target", "unused"]).fails();
    assert!(err.contains("The command '/bin/sh -c exit 7' returned a non-zero code: 7"), "{err}");
}

/// Two stages that can only finish together: one waits for a connection the other makes.
/// Built one after the other, the listener would time out and fail the build.
#[test]
fn independent_stages_build_in_parallel_and_print_in_order() {
    let d = Daemon::with_busybox();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let df = format!(
        r#"FROM busybox AS listener
RUN timeout 60 nc -l -p {port} -e sh -c 'head -c 5 > /got' && test -s /got
FROM busybox AS talker
RUN i=0; until echo hello | nc 127.0.0.1 {port}; do i=$((i+1)); [ $i -lt 600 ] || exit 1; sleep 0.1; done
FROM busybox
COPY --from=listener /got /got
COPY --from=talker /bin/busybox /talker-busybox
CMD ["cat", "/got"]
"#
    );
    let dir = context(&d, &[("Dockerfile", &df)]);
    let out = d.berth(&["build", "--network", "host", "-t", "parallel", &dir.display().to_string()]).ok();
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", "parallel"]).ok(), "hello");
    let steps: Vec<&str> = out.lines().filter(|l| l.starts_with("Step ")).collect();
    assert_eq!(steps.len(), 8, "{out}");
    for (i, l) in steps.iter().enumerate() {
        assert!(l.starts_with(&format!("Step {}/8 : ", i + 1)), "steps are shown in order: {out}");
    }
    let listener = out.find("Step 2/8").unwrap();
    let talker = out.find("Step 3/8").unwrap();
    assert!(out[listener..talker].contains(" ---> Running in "), "each stage's output stays together: {out}");

    // A failing stage fails the build with its own error; nothing is tagged or left running.
    let df = "FROM busybox AS fine\nRUN echo fine > /f\nFROM busybox AS bad\nRUN exit 3\nFROM busybox\nCOPY --from=fine /f /f\nCOPY --from=bad /etc/passwd /p\n";
    let dir = context(&d, &[("Dockerfile", df)]);
    let r = build(&d, &dir, &["-t", "parallel-bad"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("The command '/bin/sh -c exit 3' returned a non-zero code: 3"), "{r:?}");
    assert_eq!(d.berth(&["images", "-q", "parallel-bad"]).ok(), "");
    assert_eq!(d.berth(&["ps", "-aq"]).ok(), "");
}

/// A RUN mount's `from=` may name its stage through a build arg (a mount's flags are expanded):
/// the stage it names is built first and its files are the ones mounted. COPY's `--from`
/// takes none, as in Docker.
#[test]
fn a_run_mount_from_expands_build_args_to_name_a_stage() {
    let d = Daemon::with_busybox();
    let df = r#"FROM busybox AS one
RUN echo one > /f
FROM busybox AS two
RUN echo two > /f
FROM busybox
ARG SRC=two
RUN --mount=type=bind,from=${SRC},target=/m cat /m/f > /mounted
CMD ["cat", "/mounted"]
"#;
    let dir = context(&d, &[("Dockerfile", df)]);
    let tag = berth_integration::unique("fromarg");
    build(&d, &dir, &["-t", &tag, "--build-arg", "SRC=one"]).ok();
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", &tag]).ok(), "one\n");
    build(&d, &dir, &["-t", &tag]).ok();
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", &tag]).ok(), "two\n");
    d.berth(&["rmi", &tag]).ok();
    let copy = context(&d, &[("Dockerfile", "FROM busybox AS one\nFROM busybox\nARG S=one\nCOPY --from=$S /bin /b\n")]);
    let err = build(&d, &copy, &[]).fails();
    assert!(err.contains("variable expansion is not supported for --from"), "{err}");
}

/// A `COPY --from` naming a stage further down the file builds that stage first, as
/// BuildKit does (no pull of an image by that name); a ring of such stages, an index past
/// the last stage and a name that is no valid reference are refused naming what is wrong.
#[test]
fn copy_from_a_later_stage_builds_it_and_bad_names_say_why() {
    let d = Daemon::with_busybox();
    let df = "FROM busybox AS final\nCOPY --from=builder /out /out\nCOPY --from=2 /other /other\nCMD [\"cat\", \"/out\", \"/other\"]\n\
              FROM busybox AS builder\nRUN echo built > /out\n\
              FROM busybox\nRUN echo other > /other\n";
    let dir = context(&d, &[("Dockerfile", df)]);
    let out = build(&d, &dir, &["-t", "later-stage", "--target", "final"]).ok();
    assert!(!out.contains("pull"), "no image is pulled for a stage's name: {out}");
    assert_eq!(d.berth(&["run", "--rm", "--network", "none", "later-stage"]).ok(), "built\nother\n");
    let cases = [
        (
            "FROM busybox AS a\nCOPY --from=b /x /x\nFROM busybox AS b\nCOPY --from=a /y /y\n",
            "circular dependency detected on stage: ",
        ),
        ("FROM busybox AS a\nCOPY --from=a /x /x\n", "circular dependency detected on stage: a"),
        ("FROM busybox\nCOPY --from=5 /x /x\n", "invalid stage index 5"),
        ("FROM busybox\nCOPY --from=Not:A:Ref /x /x\n", "failed to parse stage name \"Not:A:Ref\""),
    ];
    for (df, want) in cases {
        let dir = context(&d, &[("Dockerfile", df)]);
        let err = build(&d, &dir, &[]).fails();
        assert!(err.contains(want), "{df}: {err}");
        assert!(!err.contains("pull access denied"), "{df}: nothing is pulled: {err}");
    }
}

/// A typo in `--from` is taken for an image, as in BuildKit: the daemon tries it (in a
/// network namespace of the test's own, where no registry answers), and the error names
/// the value, why the image failed, that no stage has that name, and the stage meant.
#[test]
fn copy_from_a_typo_names_the_stage_it_was_likely_meant_to_be() {
    let ns = berth_integration::TestNs::new("bttypo");
    let d = Daemon::start_in(Some(&ns.0), &[]);
    d.import_busybox("busybox:latest");
    let df = "FROM busybox AS builder\nRUN echo built > /out\nFROM busybox\nCOPY --from=buidler /out /out\n";
    let dir = context(&d, &[("Dockerfile", df)]);
    let err = build(&d, &dir, &[]).fails();
    assert!(err.contains("invalid from flag value buidler: pull access denied for buidler"), "{err}");
    assert!(err.contains("no build stage is named \"buidler\" (did you mean builder?)"), "{err}");
    // Control: with the name spelled right, the same Dockerfile builds.
    let dir = context(&d, &[("Dockerfile", &df.replace("buidler", "builder"))]);
    build(&d, &dir, &["-t", "typo-fixed"]).ok();
}
