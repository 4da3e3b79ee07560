//! The docker CLI building through berth.

use super::*;

#[test]
fn the_docker_cli_builds_through_berth() {
    let d = Daemon::with_busybox();
    let dir = context(
        &d,
        &[
            ("Dockerfile", "FROM busybox\nCOPY msg /msg\nRUN cat /msg\nCMD [\"cat\", \"/msg\"]\n"),
            ("msg", "hello docker\n"),
        ],
    );
    let run = |args: &[&str]| {
        let mut c = d.docker_cmd();
        c.env("DOCKER_BUILDKIT", "0").args(args);
        let o = c.output().unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let ctx = dir.display().to_string();
    let (code, out, err) = run(&["build", "--network", "none", "-t", "viadocker:1", &ctx]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("Step 1/4 : FROM busybox")
            && out.contains("hello docker")
            && out.contains("Successfully tagged viadocker:1"),
        "{out}"
    );
    let (code, out, _) = run(&["build", "--network", "none", "-t", "viadocker:1", &ctx]);
    assert_eq!(code, 0);
    assert_eq!(steps_cached(&out), 3, "{out}");
    assert_eq!(d.docker(&["run", "--rm", "--network", "none", "viadocker:1"]).ok(), "hello docker\n");
    // A failing build: docker shows Docker's message and exits with the command's code.
    let bad = context(&d, &[("Dockerfile", "FROM busybox\nRUN exit 2\n")]);
    let (code, _, err) = run(&["build", "--network", "none", &bad.display().to_string()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("The command '/bin/sh -c exit 2' returned a non-zero code: 2"), "{err}");
}
