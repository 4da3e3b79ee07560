//! `docker build` and `docker buildx build --load` through buildx's "docker" driver.

use super::*;

const DOCKERFILE: &str =
    "FROM busybox\nCOPY . /ctx\nRUN cat /ctx/msg && test ! -e /ctx/ignored.txt\nCMD [\"cat\", \"/ctx/msg\"]\n";

#[test]
fn docker_build_goes_through_buildx_and_the_image_runs() {
    let d = Daemon::with_busybox();
    let ctx = files(
        &d,
        &[
            ("Dockerfile", DOCKERFILE),
            ("msg", "hello buildx\n"),
            ("ignored.txt", "x"),
            (".dockerignore", "ignored.txt\n"),
        ],
    );
    let tag = berth_integration::unique("bx");
    let out = docker(&d, &ctx, &["build", "--network", "none", "-t", &tag, "."]).ok();
    // buildx's plain progress: steps by name, RUN's output, the image named.
    assert!(out.stderr.contains("[3/4] RUN cat /ctx/msg"), "{}", out.stderr);
    assert!(out.stderr.contains("hello buildx"), "{}", out.stderr);
    assert!(out.stderr.contains(&format!("naming to docker.io/library/{tag}:latest")), "{}", out.stderr);
    assert!(!out.stderr.contains("legacy builder"), "{}", out.stderr);
    assert_eq!(d.docker(&["run", "--rm", "--network", "none", &tag]).ok(), "hello buildx\n");

    // Again: every step after FROM is a cache hit, and buildx says so.
    let out =
        docker(&d, &ctx, &["buildx", "build", "--load", "--network", "none", "-t", &format!("{tag}:two"), "."]).ok();
    let cached = cached_steps(&out.stderr);
    assert!(cached.iter().any(|s| s.starts_with("[3/4] RUN")), "{cached:?}\n{}", out.stderr);
    assert!(cached.iter().any(|s| s.starts_with("[2/4] COPY")), "{cached:?}\n{}", out.stderr);
    let a = d.docker(&["image", "inspect", "-f", "{{.Id}}", &tag]).ok();
    let b = d.docker(&["image", "inspect", "-f", "{{.Id}}", &format!("{tag}:two")]).ok();
    assert_eq!(a, b);
    d.docker(&["rmi", &tag, &format!("{tag}:two")]).ok();
}

#[test]
fn build_args_targets_and_a_dockerfile_elsewhere() {
    let d = Daemon::with_busybox();
    let ctx = files(&d, &[("data", "from the context\n")]);
    let df = files(
        &d,
        &[(
            "build.Dockerfile",
            "FROM busybox AS base\nARG WHO=nobody\nRUN echo \"hi $WHO\" > /who\nFROM base AS final\nCOPY data /data\nRUN cat /who /data\n",
        )],
    );
    let tag = berth_integration::unique("bxargs");
    let f = df.join("build.Dockerfile").display().to_string();
    let out = docker(
        &d,
        &ctx,
        &[
            "buildx",
            "build",
            "--load",
            "--network",
            "none",
            "-f",
            &f,
            "--build-arg",
            "WHO=berth",
            "--target",
            "final",
            "-t",
            &tag,
            ".",
        ],
    )
    .ok();
    assert!(out.stderr.contains("hi berth"), "{}", out.stderr);
    let got = d.docker(&["run", "--rm", "--network", "none", &tag, "cat", "/who", "/data"]).ok();
    assert_eq!(got, "hi berth\nfrom the context\n");
    d.docker(&["rmi", &tag]).ok();
}

#[test]
fn a_failing_run_fails_the_build_with_buildkits_message() {
    let d = Daemon::with_busybox();
    let ctx = files(&d, &[("Dockerfile", "FROM busybox\nRUN echo about to fail && exit 3\n")]);
    let out = docker(&d, &ctx, &["build", "--network", "none", "."]);
    assert_ne!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("about to fail"), "{}", out.stderr);
    assert!(out.stderr.contains("did not complete successfully: exit code: 3"), "{}", out.stderr);
}

#[test]
fn the_classic_builder_stays_with_docker_buildkit_0() {
    let d = Daemon::with_busybox();
    let ctx = files(&d, &[("Dockerfile", "FROM busybox\nRUN echo classic\n")]);
    let tag = berth_integration::unique("classic");
    let out = docker_env(&d, &ctx, &["build", "--network", "none", "-t", &tag, "."], &[("DOCKER_BUILDKIT", "0")]).ok();
    assert!(out.stdout.contains("Step 2/2 : RUN echo classic"), "{}", out.stdout);
    d.docker(&["rmi", &tag]).ok();
}

#[test]
fn post_build_version_2_streams_buildkit_traces() {
    let d = Daemon::with_busybox();
    let ctx = files(&d, &[("Dockerfile", "FROM busybox\nRUN echo from-v2 > /v2\nCMD [\"cat\", \"/v2\"]\n")]);
    let tar = Command::new("tar").arg("-C").arg(&ctx).arg("-c").arg(".").output().unwrap().stdout;
    let tag = berth_integration::unique("v2");
    let (status, body) = d.api("POST", &format!("/build?version=2&networkmode=none&t={tag}"), &tar);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"id\":\"moby.buildkit.trace\""), "{body}");
    assert!(body.contains("\"id\":\"moby.image.id\""), "{body}");
    assert!(!body.contains("\"error\""), "{body}");
    assert_eq!(d.docker(&["run", "--rm", "--network", "none", &tag]).ok(), "from-v2\n");
    d.docker(&["rmi", &tag]).ok();
}

#[test]
fn bake_builds_its_targets() {
    let d = Daemon::with_busybox();
    let one = berth_integration::unique("bakeone");
    let two = berth_integration::unique("baketwo");
    let hcl = format!(
        "group \"default\" {{\n  targets = [\"one\", \"two\"]\n}}\ntarget \"one\" {{\n  context = \"one\"\n  tags = [\"{one}\"]\n  network = \"none\"\n}}\ntarget \"two\" {{\n  context = \"two\"\n  tags = [\"{two}\"]\n  args = {{ WORD = \"baked\" }}\n}}\n"
    );
    let dir = files(
        &d,
        &[
            ("docker-bake.hcl", hcl.as_str()),
            ("one/Dockerfile", "FROM busybox\nCMD [\"echo\", \"one\"]\n"),
            ("two/Dockerfile", "FROM busybox\nARG WORD\nRUN echo $WORD > /w\nCMD [\"cat\", \"/w\"]\n"),
        ],
    );
    docker(&d, &dir, &["buildx", "bake"]).ok();
    assert_eq!(d.docker(&["run", "--rm", "--network", "none", &one]).ok(), "one\n");
    assert_eq!(d.docker(&["run", "--rm", "--network", "none", &two]).ok(), "baked\n");
    d.docker(&["rmi", &one, &two]).ok();
}

/// The bytes the "load build context" step says it transferred.
fn context_bytes(progress: &str) -> u64 {
    let at = progress.find("transferring context: ").unwrap_or_else(|| panic!("{progress}"));
    let rest = &progress[at + "transferring context: ".len()..];
    rest[..rest.find('B').unwrap()].parse().unwrap()
}

#[test]
fn a_rebuild_transfers_only_the_changed_files() {
    let d = Daemon::with_busybox();
    let big = "x".repeat(300_000);
    let ctx = files(
        &d,
        &[
            ("Dockerfile", "FROM busybox\nCOPY . /ctx\nCMD [\"cat\", \"/ctx/small\"]\n"),
            ("big", big.as_str()),
            ("small", "one\n"),
            ("gone", "soon removed\n"),
        ],
    );
    let tag = berth_integration::unique("incr");
    let out = docker(&d, &ctx, &["build", "-t", &tag, "."]).ok();
    assert!(context_bytes(&out.stderr) >= 300_000, "{}", out.stderr);
    std::fs::write(ctx.join("small"), "two, longer\n").unwrap();
    std::fs::remove_file(ctx.join("gone")).unwrap();
    let out = docker(&d, &ctx, &["build", "-t", &tag, "."]).ok();
    assert_eq!(context_bytes(&out.stderr), "two, longer\n".len() as u64, "{}", out.stderr);
    assert_eq!(d.docker(&["run", "--rm", "--network", "none", &tag]).ok(), "two, longer\n");
    let listed = d.docker(&["run", "--rm", "--network", "none", &tag, "ls", "/ctx"]).ok();
    assert_eq!(listed, "Dockerfile\nbig\nsmall\n");
    d.docker(&["rmi", &tag]).ok();
}

/// The daemon remembers the content digests of a kept context between builds; an edit that
/// keeps the file's size is still seen (the step is not taken from the cache), and an
/// untouched context is all cache hits.
#[test]
fn a_same_size_edit_is_built_again_and_an_untouched_context_is_cached() {
    let d = Daemon::with_busybox();
    let ctx =
        files(&d, &[("Dockerfile", "FROM busybox\nCOPY . /ctx\nCMD [\"cat\", \"/ctx/word\"]\n"), ("word", "one\n")]);
    let tag = berth_integration::unique("samesize");
    docker(&d, &ctx, &["buildx", "build", "--load", "-t", &tag, "."]).ok();
    let again = docker(&d, &ctx, &["buildx", "build", "--progress=plain", "--load", "-t", &tag, "."]).ok();
    assert!(again.stderr.contains("COPY . /ctx\n") && again.stderr.contains("CACHED"), "{}", again.stderr);
    std::fs::write(ctx.join("word"), "two\n").unwrap();
    let edited = docker(&d, &ctx, &["buildx", "build", "--progress=plain", "--load", "-t", &tag, "."]).ok();
    assert!(!edited.stderr.contains("CACHED"), "{}", edited.stderr);
    assert_eq!(d.docker(&["run", "--rm", "--network", "none", &tag]).ok(), "two\n");
    d.docker(&["rmi", &tag]).ok();
}

/// `--secret` through buildx: the step that mounts it sees it, and the image does not keep
/// it; without `--secret` the step finds no secret (optional by default, as in BuildKit).
#[test]
fn secrets_from_buildx_reach_their_step_only() {
    let d = Daemon::with_busybox();
    let value = berth_integration::unique("s3cret-value-");
    let secret_file = d.dir.path().join("token");
    std::fs::write(&secret_file, &value).unwrap();
    let df = format!(
        "FROM busybox\nRUN --mount=type=secret,id=tok test \"$(cat /run/secrets/tok)\" = \"{value}\" && echo seen > /seen\nRUN --mount=type=secret,id=tok,env=TOK test \"$TOK\" = \"{value}\" && echo env > /env\n"
    )
    .replace(&value, "$(cat /expected)");
    // The Dockerfile must not hold the value itself: it compares with a file from the context.
    let df = df.replacen("FROM busybox\n", "FROM busybox\nCOPY expected /expected\n", 1);
    let ctx = files(&d, &[("Dockerfile", &df), ("expected", &value)]);
    let tag = berth_integration::unique("bxsecret");
    let src = format!("id=tok,src={}", secret_file.display());
    let out = docker(&d, &ctx, &["buildx", "build", "--load", "--network", "none", "--secret", &src, "-t", &tag, "."]);
    let out = out.ok();
    assert_eq!(d.docker(&["run", "--rm", "--network", "none", &tag, "cat", "/seen", "/env"]).ok(), "seen\nenv\n");
    // Nothing of the build kept the value but the file the test put in the context.
    let saved = d.dir.path().join("saved.tar");
    d.docker(&["save", "-o", &saved.display().to_string(), &tag]).ok();
    let tar = std::fs::read(&saved).unwrap();
    let hits = tar.windows(value.len()).filter(|w| *w == value.as_bytes()).count();
    assert_eq!(hits, 1, "the secret is in the image beyond the context's copy");
    let history = d.docker(&["history", "--no-trunc", &tag]).ok();
    assert!(!history.contains(&value), "{history}");
    assert!(!out.stderr.contains(&value), "{}", out.stderr);
    // Without --secret the file is absent and the step's test fails (built anew: a secret
    // is not part of the cache key, in BuildKit either, so a cached step would not run).
    let no = format!("{tag}:no");
    let out = docker(&d, &ctx, &["buildx", "build", "--no-cache", "--load", "--network", "none", "-t", &no, "."]);
    assert_ne!(out.code, 0, "{}", out.stderr);
    d.docker(&["rmi", &tag]).ok();
}

/// `--no-cache-filter STAGE` runs that stage's steps anew and keeps the cache for the others;
/// a name that is no stage is refused (BuildKit lets a typo pass, and the build silently
/// uses the cache).
#[test]
fn no_cache_filter_runs_the_named_stages_anew() {
    let d = Daemon::with_busybox();
    let df = "FROM busybox AS deps\nRUN echo deps\nFROM deps AS app\nRUN echo app\n";
    let ctx = files(&d, &[("Dockerfile", df)]);
    let tag = berth_integration::unique("ncf");
    let build = |extra: &[&str]| {
        let mut args = vec!["buildx", "build", "--load", "--network", "none", "-t", &tag];
        args.extend_from_slice(extra);
        args.push(".");
        docker(&d, &ctx, &args)
    };
    build(&[]).ok();
    let cached = cached_steps(&build(&[]).ok().stderr);
    assert!(cached.iter().any(|s| s.contains("RUN echo app")), "{cached:?}");
    let cached = cached_steps(&build(&["--no-cache-filter", "app"]).ok().stderr);
    assert!(!cached.iter().any(|s| s.contains("RUN echo app")), "the filtered stage ran: {cached:?}");
    assert!(cached.iter().any(|s| s.contains("RUN echo deps")), "the stage before it kept its cache: {cached:?}");
    let out = build(&["--no-cache-filter", "nosuch"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("no stage named nosuch"), "{}", out.stderr);
    d.docker(&["rmi", &tag]).ok();
}

/// Through buildx a RUN step's output is clipped at BuildKit's 2 MiB, in BuildKit's words.
/// Long lines: buildx's plain printer takes a while over a million short ones, and BuildKit's
/// client ends the status stream 3 s after the build, which a loaded machine can miss.
#[test]
fn a_run_steps_output_is_clipped_at_buildkits_limit() {
    let d = Daemon::with_busybox();
    let word = "y".repeat(500);
    let df = format!("FROM busybox\nRUN yes {word} | head -c 3000000\n");
    let ctx = files(&d, &[("Dockerfile", &df)]);
    let tag = berth_integration::unique("bkclip");
    let out = docker(&d, &ctx, &["buildx", "build", "--load", "--network", "none", "-t", &tag, "."]).ok();
    assert!(
        out.stderr.contains("[output clipped, log limit 2MiB reached]"),
        "{}",
        &out.stderr[..2000.min(out.stderr.len())]
    );
    let lines = out.stderr.lines().filter(|l| l.ends_with(&format!(" {word}"))).count();
    assert!((3000..=(2 << 20) / 501).contains(&lines), "{lines} lines of output");
    d.docker(&["rmi", &tag]).ok();
}

/// Through buildx as through berth's CLI: a `COPY --from` naming a later stage builds that
/// stage; a typo fails naming the stage meant (the daemon in a network namespace of the
/// test's own, where no registry answers the pull BuildKit tries).
#[test]
fn copy_from_a_later_stage_or_a_typo() {
    let ns = berth_integration::TestNs::new("btbxfrom");
    let d = Daemon::start_in(Some(&ns.0), &[]);
    d.import_busybox("busybox:latest");
    let df = "FROM busybox AS final\nCOPY --from=builder /out /out\nFROM busybox AS builder\nRUN echo built > /out\n";
    let ctx = files(&d, &[("Dockerfile", df)]);
    let tag = berth_integration::unique("bxlater");
    docker(&d, &ctx, &["buildx", "build", "--load", "--network", "none", "--target", "final", "-t", &tag, "."]).ok();
    assert_eq!(d.docker(&["run", "--rm", "--network", "none", &tag, "cat", "/out"]).ok(), "built\n");
    let ctx = files(&d, &[("Dockerfile", &df.replace("--from=builder", "--from=buidler"))]);
    let out = docker(&d, &ctx, &["buildx", "build", "--load", "--network", "none", "--target", "final", "."]);
    assert_ne!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("no build stage is named \"buidler\" (did you mean builder?)"), "{}", out.stderr);
    d.docker(&["rmi", &tag]).ok();
}
