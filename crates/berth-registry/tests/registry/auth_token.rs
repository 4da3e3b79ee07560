//! Bearer tokens: Docker Hub's flow, with scopes enforced per repository and action.

use crate::common::*;
use berth_registry::TokenConfig;
use http::{Method, StatusCode};

pub async fn server(anonymous_pull: bool) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = htpasswd(dir.path(), &[("alice", "secret")]);
    let s = Server::start_with(|c| {
        c.htpasswd = Some(path.clone());
        c.token = Some(TokenConfig::new("berth.test"));
        c.anonymous_pull = anonymous_pull;
    })
    .await;
    (s, dir)
}

/// Parses `Bearer realm="…",service="…",scope="…"` into its parameters.
fn challenge(r: &Resp) -> std::collections::HashMap<String, String> {
    let h = r.header("www-authenticate").expect("challenge").strip_prefix("Bearer ").expect("bearer challenge");
    h.split("\",")
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_string(), v.trim_matches('"').to_string())
        })
        .collect()
}

/// What the docker CLI does: GET the realm with basic credentials (or none) and the scope.
pub async fn token(c: &Client, realm: &str, service: &str, scopes: &[&str]) -> Resp {
    let prefix = format!("http://{}", c.addr);
    let path = realm.strip_prefix(&prefix).expect("realm is this server");
    let mut q = format!("{path}?service={service}");
    for s in scopes {
        q.push_str(&format!("&scope={s}"));
    }
    c.get(&q).await
}

#[tokio::test]
async fn docker_token_flow_with_scope_enforcement() {
    let (s, _htpasswd) = server(false).await;
    let anon = s.client();
    let r = anon.get("/v2/").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let ch = challenge(&r);
    assert_eq!(ch["realm"], format!("http://{}/token", s.addr));
    assert_eq!(ch["service"], "berth.test");

    // A push first meets a challenge naming the scope it needs.
    let r = anon.send(Method::POST, "/v2/team/app/blobs/uploads/", &[], "").await;
    assert_eq!(challenge(&r)["scope"], "repository:team/app:push");

    let alice = anon.basic("alice", "secret");
    let t = token(&alice, &ch["realm"], "berth.test", &["repository:team/app:pull,push"]).await;
    assert_eq!(t.status, StatusCode::OK);
    let j = t.json();
    assert_eq!(j["token"], j["access_token"]);
    assert_eq!(j["expires_in"], serde_json::json!(300));
    assert!(j["issued_at"].as_str().unwrap().ends_with('Z'));
    let pusher = anon.bearer(j["token"].as_str().unwrap());
    assert_eq!(pusher.get("/v2/").await.status, StatusCode::OK);
    let (md, _, _) = pusher.push_image("team/app", "v1", b"layer").await;
    assert_eq!(pusher.get("/v2/team/app/manifests/v1").await.status, StatusCode::OK);

    // A pull-only token reads but cannot push; the challenge says what is missing.
    let t = token(&alice, &ch["realm"], "berth.test", &["repository:team/app:pull"]).await;
    let puller = anon.bearer(t.json()["token"].as_str().unwrap());
    assert_eq!(puller.get(&format!("/v2/team/app/manifests/{md}")).await.status, StatusCode::OK);
    let r = puller.send(Method::POST, "/v2/team/app/blobs/uploads/", &[], "").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let ch2 = challenge(&r);
    assert_eq!(ch2["scope"], "repository:team/app:push");
    assert_eq!(ch2["error"], "insufficient_scope");
    let r = puller.send(Method::DELETE, &format!("/v2/team/app/manifests/{md}"), &[], "").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // ... nor read another repository.
    assert_eq!(puller.get("/v2/other/tags/list").await.status, StatusCode::UNAUTHORIZED);
    // The catalog is its own scope.
    assert_eq!(puller.get("/v2/_catalog").await.status, StatusCode::UNAUTHORIZED);
    let t = token(&alice, &ch["realm"], "berth.test", &["registry:catalog:*"]).await;
    let lister = anon.bearer(t.json()["token"].as_str().unwrap());
    assert_eq!(lister.get("/v2/_catalog").await.json()["repositories"], serde_json::json!(["team/app"]));

    // Several scopes in one request, as for a cross-repository mount.
    let t =
        token(&alice, &ch["realm"], "berth.test", &["repository:other:pull,push", "repository:team/app:pull"]).await;
    let mounter = anon.bearer(t.json()["token"].as_str().unwrap());
    let layer = sha256(b"layer");
    let r = mounter.send(Method::POST, &format!("/v2/other/blobs/uploads/?mount={layer}&from=team/app"), &[], "").await;
    assert_eq!(r.status, StatusCode::CREATED);
    // Without pull on `from`, a mount quietly becomes an upload.
    let t = token(&alice, &ch["realm"], "berth.test", &["repository:third:push"]).await;
    let r = anon
        .bearer(t.json()["token"].as_str().unwrap())
        .send(Method::POST, &format!("/v2/third/blobs/uploads/?mount={layer}&from=team/app"), &[], "")
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    s.stop().await;
}

#[tokio::test]
async fn bad_credentials_and_bad_tokens() {
    let (s, _htpasswd) = server(false).await;
    let anon = s.client();
    let realm = format!("http://{}/token", s.addr);
    let r = token(&anon.basic("alice", "nope"), &realm, "berth.test", &["repository:x:pull"]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // No credentials and no anonymous access: log in first.
    let r = token(&anon, &realm, "berth.test", &["repository:x:pull"]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.header("www-authenticate").unwrap().starts_with("Basic "));

    let r = anon.bearer("not.a.token").get("/v2/").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge(&r)["error"], "invalid_token");
    // Basic credentials stand in for a token (`docker search` sends them), when right.
    assert_eq!(anon.basic("alice", "secret").get("/v1/search?q=x").await.status, StatusCode::OK);
    let r = anon.basic("alice", "wrong").get("/v1/search?q=x").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.header("www-authenticate").unwrap().starts_with("Bearer "));
    // The v1 ping needs nothing.
    assert_eq!(anon.get("/v1/_ping").await.status, StatusCode::OK);
    s.stop().await;
}

pub use server as token_server;
