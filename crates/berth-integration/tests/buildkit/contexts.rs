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
