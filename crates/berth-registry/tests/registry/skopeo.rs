//! Interoperability with a real client: `skopeo copy` between an OCI layout and the server,
//! open and with Docker Hub's token flow. Skipped (with a message) without skopeo.

use crate::common::*;
use berth_registry::TokenConfig;
use serde_json::json;
use std::path::Path;
use tokio::process::Command;

fn have_skopeo() -> bool {
    std::process::Command::new("skopeo").arg("--version").output().is_ok_and(|o| o.status.success())
}

/// Writes an OCI image layout holding a one-file image tagged `v1`; returns its manifest digest.
fn write_layout(dir: &Path) -> String {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("hello.txt"), "hello from berth\n").unwrap();
    let tar = dir.join("layer.tar");
    let ok = std::process::Command::new("tar").arg("-cf").arg(&tar).arg("-C").arg(&src).arg(".").status().unwrap();
    assert!(ok.success());
    let layer = std::fs::read(&tar).unwrap();
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [sha256(&layer)]}
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256(&layer), "size": layer.len()}]
    }))
    .unwrap();
    let layout = dir.join("layout");
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    for b in [&layer, &config, &manifest] {
        let d = sha256(b);
        std::fs::write(layout.join("blobs/sha256").join(d.strip_prefix("sha256:").unwrap()), b).unwrap();
    }
    std::fs::write(layout.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": OCI_MANIFEST, "digest": sha256(&manifest), "size": manifest.len(),
        "annotations": {"org.opencontainers.image.ref.name": "v1"}
    }]});
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    sha256(&manifest)
}

async fn skopeo(home: &Path, args: &[&str]) -> String {
    let out = Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .env("HOME", home)
        .env("XDG_RUNTIME_DIR", home)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "skopeo {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A token from the server's endpoint for `user:pass`.
async fn bearer(c: &Client, creds: &str, scope: &str) -> String {
    let (u, p) = creds.split_once(':').unwrap();
    let r = c.basic(u, p).get(&format!("/token?service=berth.test&scope={scope}")).await;
    r.json()["token"].as_str().unwrap().to_string()
}

async fn round_trip(s: &Server, creds: &[&str]) {
    let work = tempfile::tempdir().unwrap();
    let md = write_layout(work.path());
    let layout = format!("oci:{}:v1", work.path().join("layout").display());
    let remote = format!("docker://{}/interop/app:v1", s.addr);
    let home = work.path();
    let mut push = vec!["copy", "--dest-tls-verify=false"];
    if !creds.is_empty() {
        push.extend(["--dest-creds", creds[0]]);
    }
    push.extend([layout.as_str(), remote.as_str()]);
    skopeo(home, &push).await;

    let mut inspect = vec!["inspect", "--raw", "--tls-verify=false"];
    if !creds.is_empty() {
        inspect.extend(["--creds", creds[0]]);
    }
    inspect.push(&remote);
    // skopeo compresses the tar layer on the way, so the pushed manifest is a new one: the
    // one the server stores must be exactly the one skopeo sees.
    let raw = skopeo(home, &inspect).await;
    let pushed = sha256(raw.trim_end_matches('\n').as_bytes());
    assert_ne!(pushed, md);
    let mut c = s.client();
    if !creds.is_empty() {
        c.auth = Some(format!("Bearer {}", bearer(&c, creds[0], "repository:interop/app:pull").await));
    }
    let r = c.get("/v2/interop/app/manifests/v1").await;
    assert_eq!(r.header("docker-content-digest"), Some(pushed.as_str()));
    let layer = r.json()["layers"][0]["digest"].as_str().unwrap().to_string();
    assert_eq!(sha256(&c.get(&format!("/v2/interop/app/blobs/{layer}")).await.body), layer);

    // Registry to registry inside the server: exercises HEAD checks and cross-repo mounts.
    let copy = format!("docker://{}/interop/copy:v1", s.addr);
    let mut cp = vec!["copy", "--src-tls-verify=false", "--dest-tls-verify=false"];
    if !creds.is_empty() {
        cp.extend(["--src-creds", creds[0], "--dest-creds", creds[0]]);
    }
    cp.extend([remote.as_str(), copy.as_str()]);
    skopeo(home, &cp).await;

    let back = format!("oci:{}:v1", work.path().join("back").display());
    let mut pull = vec!["copy", "--src-tls-verify=false"];
    if !creds.is_empty() {
        pull.extend(["--src-creds", creds[0]]);
    }
    pull.extend([copy.as_str(), back.as_str()]);
    skopeo(home, &pull).await;
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(work.path().join("back/index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["digest"], json!(pushed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_copies_to_and_from_the_registry() {
    if !have_skopeo() {
        eprintln!("skipping skopeo interoperability test: skopeo is not installed (apt-get install skopeo)");
        return;
    }
    let s = Server::start().await;
    round_trip(&s, &[]).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_follows_the_token_flow() {
    if !have_skopeo() {
        eprintln!("skipping skopeo token-flow test: skopeo is not installed (apt-get install skopeo)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = htpasswd(dir.path(), &[("alice", "secret")]);
    let s = Server::start_with(|c| {
        c.htpasswd = Some(path.clone());
        c.token = Some(TokenConfig::new("berth.test"));
    })
    .await;
    round_trip(&s, &["alice:secret"]).await;
    s.stop().await;
}
