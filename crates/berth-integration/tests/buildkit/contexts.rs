//! `--build-context NAME=…` (named contexts) through buildx: a local directory synced
//! through the session for `COPY --from=NAME`, `docker-image://REF` for `COPY --from` and
//! for a stage it replaces, and the forms berth cannot serve refused by name.

use super::*;

#[test]
fn named_contexts_replace_stages_and_feed_copy_from() {
    let d = Daemon::with_busybox();
    let ctx = files(
        &d,
        &[
            (
                "Dockerfile",
                "FROM nosuchimage-berth AS base\nRUN exit 3\nFROM base\nCOPY --from=extra note /note\nCOPY --from=img /bin/busybox /bb\n",
            ),
            ("extra/note", "from a named context\n"),
        ],
    );
    let tag = berth_integration::unique("named");
    let args = [
        "buildx",
        "build",
        "--network",
        "none",
        "--build-context",
        "extra=./extra",
        "--build-context",
        "base=docker-image://busybox",
        "--build-context",
        "img=docker-image://busybox:latest",
        "-t",
        &tag,
        ".",
    ];
    let out = docker(&d, &ctx, &args).ok();
    assert!(out.stderr.contains("[context extra] load from client"), "{}", out.stderr);
    let got = d.docker(&["run", "--rm", "--network", "none", &tag, "cat", "/note"]).ok();
    assert_eq!(got, "from a named context\n");
    d.docker(&["run", "--rm", "--network", "none", &tag, "cmp", "/bb", "/bin/busybox"]).ok();

    // A form berth does not serve, and FROM a directory, are refused by name.
    let out = docker(&d, &ctx, &["buildx", "build", "--build-context", "x=https://127.0.0.1:1/x.tar", "."]);
    assert!(
        out.code != 0 && out.stderr.contains("build context x=https://127.0.0.1:1/x.tar is not supported"),
        "{}",
        out.stderr
    );
    let out = docker(&d, &ctx, &["buildx", "build", "--build-context", "base=./extra", "."]);
    assert!(out.code != 0 && out.stderr.contains("build context base is a local directory"), "{}", out.stderr);
    d.docker(&["rmi", &tag]).ok();
}

/// `RUN --mount=type=bind,from=NAME` takes its files from a named context (a local
/// directory, or an image), and a local named context leaves out what its own
/// `.dockerignore` excludes, as BuildKit does.
#[test]
fn run_mounts_take_named_contexts_and_a_named_directory_keeps_its_dockerignore() {
    let d = Daemon::with_busybox();
    let df = "FROM busybox\n\
              RUN --mount=type=bind,from=extra,target=/x cat /x/note > /note && ls /x > /listed\n\
              RUN --mount=type=bind,from=img,target=/i cmp /i/bin/busybox /bin/busybox && echo same > /img\n";
    let ctx = files(
        &d,
        &[
            ("Dockerfile", df),
            ("extra/note", "mounted from a named context\n"),
            ("extra/secret.key", "must stay out\n"),
            ("extra/.dockerignore", "*.key\n"),
        ],
    );
    let tag = berth_integration::unique("namedmount");
    let args = [
        "buildx",
        "build",
        "--load",
        "--network",
        "none",
        "--build-context",
        "extra=./extra",
        "--build-context",
        "img=docker-image://busybox:latest",
        "-t",
        &tag,
        ".",
    ];
    docker(&d, &ctx, &args).ok();
    let got = d.docker(&["run", "--rm", "--network", "none", &tag, "cat", "/note", "/listed", "/img"]).ok();
    assert_eq!(got, "mounted from a named context\nnote\nsame\n");
    d.docker(&["rmi", &tag]).ok();
}

/// `COPY --from=IMAGE` of an image the daemon does not have pulls it first, as BuildKit
/// (and dockerd's classic builder) do.
#[test]
fn copy_from_an_image_the_daemon_lacks_pulls_it() {
    let reg = berth_integration::Registry::open();
    let d = Daemon::with_busybox();
    let remote = format!("{}/{}:1", reg.addr, berth_integration::unique("copysrc"));
    d.docker(&["tag", "busybox", &remote]).ok();
    d.docker(&["push", &remote]).ok();
    d.docker(&["rmi", &remote]).ok();
    assert_ne!(d.docker(&["image", "inspect", &remote]).code, 0);
    let df = format!("FROM busybox\nCOPY --from={remote} /bin/busybox /bb\n");
    let ctx = files(&d, &[("Dockerfile", df.as_str())]);
    let tag = berth_integration::unique("copyfrom");
    docker(&d, &ctx, &["buildx", "build", "--load", "--network", "none", "-t", &tag, "."]).ok();
    d.docker(&["run", "--rm", "--network", "none", &tag, "cmp", "/bb", "/bin/busybox"]).ok();
    d.docker(&["rmi", &tag]).ok();
}
