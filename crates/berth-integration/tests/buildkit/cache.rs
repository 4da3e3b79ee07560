//! Cache through a registry, as buildx's "docker" driver allows it: `--cache-to type=inline`
//! writes the step keys into the image's config (`moby.buildkit.cache.v0`), the image is
//! pushed, and a daemon that never built it takes the steps from the pushed layers with
//! `--cache-from type=registry,ref=…` (or buildx's bare `--cache-from ref`): CACHED, no
//! RUN executes (its output, which its step's name does not contain, would show), and the result is the pushed image.

use berth_integration::{Registry, unique};

use super::*;

/// The pushed image's config, as the registry serves it.
fn registry_config(reg: &Registry, repo: &str, tag: &str) -> serde_json::Value {
    let get = |path: &str, accept: &str| {
        let o = Command::new("curl")
            .args(["-sf", "-H", &format!("Accept: {accept}"), &format!("http://{}/v2/{repo}/{path}", reg.addr)])
            .output()
            .unwrap();
        assert!(o.status.success(), "GET {path}: {}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let m = get(&format!("manifests/{tag}"), "application/vnd.docker.distribution.manifest.v2+json");
    get(&format!("blobs/{}", m["config"]["digest"].as_str().unwrap()), "*/*")
}

#[test]
fn inline_cache_pushed_to_a_registry_is_the_cache_of_another_daemon() {
    let reg = Registry::open();
    let a = Daemon::with_busybox();
    // Both daemons build on the same base, as two machines pulling it would.
    let base = format!("{}/{}:1", reg.addr, unique("base"));
    a.docker(&["tag", "busybox", &base]).ok();
    a.docker(&["push", &base]).ok();
    let repo = unique("inline");
    let name = format!("{}/{repo}:1", reg.addr);
    let dockerfile = format!(
        "FROM {base}\nCOPY msg /msg\nRUN echo ran-first-$((40+2)) && cat /msg > /out\nENV STAGE=one\nRUN echo ran-second-$((40+2)) && echo two >> /out\n"
    );
    let files_of = |d: &Daemon| files(d, &[("Dockerfile", &dockerfile), ("msg", "from the context\n")]);
    let build = ["buildx", "build", "--network", "none"];

    let ctx = files_of(&a);
    let mut args = build.to_vec();
    args.extend(["--cache-to", "type=inline", "-t", &name, "--push", "."]);
    let out = docker(&a, &ctx, &args).ok();
    assert!(out.stderr.contains("ran-second-42"), "{}", out.stderr);
    let config = registry_config(&reg, &repo, "1");
    assert!(config["moby.buildkit.cache.v0"].is_string(), "{config}");

    // Another daemon, with nothing of the image: every step comes from the pushed layers.
    let b = Daemon::start();
    let ctx = files_of(&b);
    let from = format!("type=registry,ref={name}");
    let mut args = build.to_vec();
    args.extend(["--cache-from", &from, "-t", "rebuilt", "."]);
    let out = docker(&b, &ctx, &args).ok();
    assert!(!out.stderr.contains("ran-first-42") && !out.stderr.contains("ran-second-42"), "{}", out.stderr);
    let cached = cached_steps(&out.stderr);
    for step in ["[2/5] COPY", "[3/5] RUN", "[5/5] RUN"] {
        assert!(cached.iter().any(|s| s.starts_with(step)), "{step} not CACHED: {cached:?}\n{}", out.stderr);
    }
    // The same layers; the configuration is this build's own, not the pushed image's (whose
    // inline cache this build did not ask for).
    let layers = |d: &Daemon, n: &str| d.docker(&["image", "inspect", "-f", "{{json .RootFS.Layers}}", n]).ok();
    assert_eq!(layers(&b, "rebuilt"), layers(&a, &name));
    let again = format!("{}/{repo}:rebuilt", reg.addr);
    b.docker(&["tag", "rebuilt", &again]).ok();
    b.docker(&["push", &again]).ok();
    let config = registry_config(&reg, &repo, "rebuilt");
    assert!(config.get("moby.buildkit.cache.v0").is_none(), "the source's config was taken: {config}");
    assert!(config["config"]["Env"].to_string().contains("STAGE=one"), "{config}");
    b.docker(&["rmi", &again]).ok();
    assert_eq!(
        b.docker(&["run", "--rm", "--network", "none", "rebuilt", "cat", "/out"]).ok(),
        "from the context\ntwo\n"
    );
    // The cache import names nothing: only what the build was told to name is listed.
    let listed = b.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]).ok();
    assert!(!listed.contains(&repo), "{listed}");

    // Wiped (image and build cache), then buildx's bare `--cache-from ref`; one changed
    // file runs only the steps after it.
    b.docker(&["rmi", "rebuilt"]).ok();
    docker(&b, &ctx, &["builder", "prune", "-af"]).ok();
    std::fs::write(ctx.join("msg"), "changed\n").unwrap();
    let mut args = build.to_vec();
    args.extend(["--cache-from", &name, "-t", "rebuilt", "."]);
    let out = docker(&b, &ctx, &args).ok();
    assert!(out.stderr.contains("ran-first-42") && out.stderr.contains("ran-second-42"), "{}", out.stderr);
    assert_eq!(b.docker(&["run", "--rm", "--network", "none", "rebuilt", "cat", "/out"]).ok(), "changed\ntwo\n");
    std::fs::write(ctx.join("msg"), "from the context\n").unwrap();
    let out = docker(&b, &ctx, &args).ok();
    let cached = cached_steps(&out.stderr);
    assert!(cached.iter().any(|s| s.starts_with("[5/5] RUN")), "{cached:?}\n{}", out.stderr);
}

#[test]
fn cache_export_and_import_kinds_berth_cannot_serve_are_refused_or_warned() {
    let d = Daemon::with_busybox();
    let ctx = files(&d, &[("Dockerfile", "FROM busybox\nRUN echo built\n")]);
    // buildx itself refuses cache export other than inline on this driver.
    let out = docker(&d, &ctx, &["buildx", "build", "--network", "none", "--cache-to", "type=local,dest=c", "."]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("Cache export is not supported for the docker driver"), "{}", out.stderr);
    // An import that cannot be had is a warning: the build goes on without it.
    let reg = Registry::open();
    let missing = format!("{}/{}:1", reg.addr, unique("nocache"));
    let from = format!("type=registry,ref={missing}");
    let out = docker(&d, &ctx, &["buildx", "build", "--network", "none", "--cache-from", &from, "."]).ok();
    assert!(out.stderr.contains(&format!("WARNING: no cache imported from {missing}")), "{}", out.stderr);
}
