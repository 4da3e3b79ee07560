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

/// Build checks (Dockerfile frontend 1.8): `build --check` reports each finding with its
/// rule, documentation link and the lines around it, builds nothing and exits 1; a clean
/// file passes. A normal build lists the findings and goes on; `# check=error=true` (or the
/// BUILDKIT_DOCKERFILE_CHECK build argument) fails it before any step runs, and
/// `skip=` silences rules.
#[test]
fn build_checks_report_findings_and_error_true_fails_the_build() {
    let d = Daemon::with_busybox();
    let tag = berth_integration::unique("checked");
    let dir = context(&d, &[("Dockerfile", "FROM busybox as Build\nRUN true\nCMD echo hi\n")]);
    let r = build(&d, &dir, &["--check", "-t", &tag]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("Check complete, 3 warnings have been found!"), "{r:?}");
    assert!(
        r.stdout.contains(
            "WARNING: JSONArgsRecommended - https://docs.docker.com/go/dockerfile/rule/json-args-recommended/"
        ),
        "{r:?}"
    );
    assert!(r.stdout.contains("Stage name 'Build' should be lowercase"), "{r:?}");
    assert!(r.stdout.contains("'as' and 'FROM' keywords' casing do not match"), "{r:?}");
    assert!(r.stdout.contains("   3 | >>> CMD echo hi"), "{r:?}");
    assert!(
        r.stderr.contains("lint violation found for rules: FromAsCasing, JSONArgsRecommended, StageNameCasing"),
        "{r:?}"
    );
    assert!(d.berth(&["image", "inspect", &tag]).code != 0, "--check builds nothing");

    let clean = context(&d, &[("Dockerfile", "FROM busybox AS base\nCMD [\"true\"]\n")]);
    let r = build(&d, &clean, &["--check"]);
    assert_eq!((r.code, r.stdout.trim()), (0, "Check complete, no warnings found."), "{r:?}");

    // A normal build lists them and builds.
    let out = build(&d, &dir, &["-t", &tag]).ok();
    assert!(out.contains(" 3 warnings found (use docker --debug to expand):"), "{out}");
    assert!(out.contains(" - JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals (line 3)"), "{out}");
    d.berth(&["image", "inspect", &tag]).ok();

    // error=true: no step runs, no image.
    let strict_tag = berth_integration::unique("strict");
    let strict = context(
        &d,
        &[(
            "Dockerfile",
            "# check=skip=StageNameCasing,FromAsCasing;error=true\nFROM busybox as Build\nRUN touch /ran\nCMD echo hi\n",
        )],
    );
    let r = build(&d, &strict, &["-t", &strict_tag]);
    assert!(r.code != 0 && r.stderr.contains("lint violation found for rules: JSONArgsRecommended"), "{r:?}");
    assert!(!r.stdout.contains("touch /ran"), "no step ran: {r:?}");
    assert!(d.berth(&["image", "inspect", &strict_tag]).code != 0);
    // The build argument wins over the directive; the docker CLI's classic build sees the same.
    build(&d, &strict, &["-t", &strict_tag, "--build-arg", "BUILDKIT_DOCKERFILE_CHECK=skip=all"]).ok();
    let mut c = d.docker_cmd();
    c.env("DOCKER_BUILDKIT", "0").args(["build", "--network", "none"]).arg(&strict);
    let o = c.output().unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("lint violation found for rules: JSONArgsRecommended"),
        "{o:?}"
    );
    d.berth(&["rmi", &tag, &strict_tag]).ok();
}

/// UndefinedVar: a variable an instruction uses that neither the base image nor an ENV or
/// ARG of the stage set is reported, with the closest name that is set; the base image's
/// own variables (busybox's PATH here, and a variable of a local image) count as set.
#[test]
fn build_checks_report_variables_used_but_never_set() {
    let d = Daemon::with_busybox();
    let base = berth_integration::unique("withenv");
    let made = context(&d, &[("Dockerfile", "FROM busybox\nENV APP_HOME=/srv/app\n")]);
    build(&d, &made, &["-t", &base]).ok();
    let text = format!(
        "FROM {base}\nENV PATH=$PATH:$APP_HOME/bin\nWORKDIR $APP_HOME\nCOPY $SRC_DIR/ .\nENV PATH=$PAHT:/more\nCMD [\"true\"]\n"
    );
    let dir = context(&d, &[("Dockerfile", &text)]);
    let r = build(&d, &dir, &["--check"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("Check complete, 2 warnings have been found!"), "{r:?}");
    assert!(
        r.stdout.contains("WARNING: UndefinedVar - https://docs.docker.com/go/dockerfile/rule/undefined-var/"),
        "{r:?}"
    );
    assert!(r.stdout.contains("Usage of undefined variable '$SRC_DIR'"), "{r:?}");
    assert!(r.stdout.contains("Usage of undefined variable '$PAHT' (did you mean $PATH?)"), "{r:?}");
    // Control: declared, it is no finding.
    let fixed =
        context(&d, &[("Dockerfile", &format!("FROM {base}\nARG SRC_DIR=.\nCOPY $SRC_DIR/ .\nCMD [\"true\"]\n"))]);
    let r = build(&d, &fixed, &["--check"]);
    assert_eq!((r.code, r.stdout.trim()), (0, "Check complete, no warnings found."), "{r:?}");
    d.berth(&["rmi", &base]).ok();
}
