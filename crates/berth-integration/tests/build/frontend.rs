//! What BuildKit's Dockerfile frontend 1.x adds around the instructions: the `# syntax`
//! directive and the automatic platform ARGs.

use super::*;

#[test]
fn syntax_names_the_builtin_frontend_or_is_refused() {
    let d = Daemon::with_busybox();
    let digest = "a".repeat(64);
    for syntax in [
        "docker/dockerfile:1".to_string(),
        "docker/dockerfile:1.7-labs".into(),
        format!("docker.io/docker/dockerfile:1.9@sha256:{digest}"),
    ] {
        let dir = context(
            &d,
            &[(
                "Dockerfile",
                &format!("# syntax={syntax}\nFROM busybox\nRUN --mount=type=tmpfs,target=/t touch /t/x\n"),
            )],
        );
        build(&d, &dir, &[]).ok();
    }
    let dir = context(&d, &[("Dockerfile", "# syntax=example.com/team/frontend:2\nFROM busybox\n")]);
    let r = build(&d, &dir, &[]);
    assert!(r.code != 0 && r.stderr.contains("unsupported frontend \"example.com/team/frontend:2\""), "{r:?}");
    // The docker CLI's classic build gets the same answer.
    let mut c = d.docker_cmd();
    c.env("DOCKER_BUILDKIT", "0").args(["build", "--network", "none"]).arg(&dir);
    let o = c.output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("example.com/team/frontend:2"), "{o:?}");
}

#[test]
fn platform_args_are_the_hosts_and_a_foreign_platform_is_refused() {
    let d = Daemon::with_busybox();
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let dir = context(
        &d,
        &[(
            "Dockerfile",
            "FROM --platform=$BUILDPLATFORM busybox AS build\n\
             ARG TARGETARCH\nARG TARGETOS\nARG BUILDPLATFORM\nARG TARGETPLATFORM\n\
             RUN echo \"$TARGETOS $TARGETARCH $BUILDPLATFORM $TARGETPLATFORM\" > /p\n\
             RUN echo \"unset:${BUILDARCH}\" > /q\n",
        )],
    );
    build(&d, &dir, &["-t", "plat", "--platform", &format!("linux/{arch}")]).ok();
    let seen = d.berth(&["run", "--rm", "--network", "none", "plat", "cat", "/p", "/q"]).ok();
    assert_eq!(seen, format!("linux {arch} linux/{arch} linux/{arch}\nunset:\n"), "undeclared in the stage: empty");

    let foreign = if arch == "arm64" { "linux/amd64" } else { "linux/arm64" };
    let r = build(&d, &dir, &["--platform", foreign]);
    assert!(r.code != 0 && r.stderr.contains(foreign) && r.stderr.contains("this host's platform only"), "{r:?}");
    let dir = context(&d, &[("Dockerfile", &format!("FROM --platform={foreign} busybox\n"))]);
    let r = build(&d, &dir, &[]);
    assert!(r.code != 0 && r.stderr.contains(&format!("FROM --platform= {foreign}")), "{r:?}");
}
