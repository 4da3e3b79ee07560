//! `--push` and `-o type=image,push=true` to a registry on 127.0.0.1: on the "docker"
//! driver buildx pushes the result through the Engine API and asks the daemon for the
//! registry's digest (`GET /distribution/{name}/json`) for `--metadata-file`.

use berth_integration::{Registry, unique};

use super::*;

#[test]
fn push_from_a_build_reaches_the_registry_and_the_metadata_names_it() {
    let reg = Registry::open();
    let d = Daemon::with_busybox();
    let ctx = files(&d, &[("Dockerfile", "FROM busybox\nRUN echo pushed > /p\n")]);
    let repo = format!("{}/{}", reg.addr, unique("push"));
    let meta = ctx.join("meta.json");
    let meta_s = meta.display().to_string();
    let build = ["buildx", "build", "--network", "none", "--metadata-file", &meta_s];
    let mut args = build.to_vec();
    args.extend(["--push", "-t", &repo, "."]);
    docker(&d, &ctx, &args).ok();
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    assert_eq!(m["image.name"], format!("{repo}:latest"), "{m}");
    let id = d.docker(&["image", "inspect", "-f", "{{.Id}}", &repo]).ok().trim().to_string();
    assert_eq!(m["containerimage.config.digest"], id.as_str(), "{m}");
    let digests = d.docker(&["image", "inspect", "-f", "{{json .RepoDigests}}", &repo]).ok();
    let digest = m["containerimage.digest"].as_str().unwrap();
    assert!(digests.contains(&format!("{repo}@{digest}")), "{digests} {m}");

    // `-o type=image,push=true` to another tag; another daemon pulls the same image.
    let other = format!("{repo}:two");
    let mut args = build.to_vec();
    let out = format!("type=image,name={other},push=true");
    args.extend(["-o", &out, "."]);
    docker(&d, &ctx, &args).ok();
    let e = Daemon::start();
    e.docker(&["pull", &other]).ok();
    let pulled = e.docker(&["image", "inspect", "-f", "{{.Id}}", &other]).ok();
    assert_eq!(pulled.trim(), id);
    assert_eq!(e.docker(&["run", "--rm", "--network", "none", &other, "cat", "/p"]).ok(), "pushed\n");
}
