//! `anonymous_pull`: reads without credentials, writes only after a login.

use crate::auth_token::{token, token_server};
use crate::common::*;
use http::{Method, StatusCode};

#[tokio::test]
async fn basic_mode_anonymous_pull() {
    let dir = tempfile::tempdir().unwrap();
    let path = htpasswd(dir.path(), &[("alice", "secret")]);
    let s = Server::start_with(|c| {
        c.htpasswd = Some(path.clone());
        c.anonymous_pull = true;
    })
    .await;
    let alice = s.client().basic("alice", "secret");
    let (md, _, layer) = alice.push_image("pub/app", "v1", b"open layer").await;

    let anon = s.client();
    // The ping still challenges, so clients learn that auth exists.
    assert_eq!(anon.get("/v2/").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anon.get("/v2/pub/app/manifests/v1").await.status, StatusCode::OK);
    assert_eq!(&anon.get(&format!("/v2/pub/app/blobs/{layer}")).await.body[..], b"open layer");
    assert_eq!(anon.get("/v2/pub/app/tags/list").await.status, StatusCode::OK);
    assert_eq!(anon.get("/v1/search?q=app").await.json()["num_results"], serde_json::json!(1));

    let r = anon.send(Method::POST, "/v2/pub/app/blobs/uploads/", &[], "").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.header("www-authenticate").unwrap().starts_with("Basic "));
    let r = anon.send(Method::DELETE, &format!("/v2/pub/app/manifests/{md}"), &[], "").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Wrong credentials are refused even for a pull.
    assert_eq!(anon.basic("alice", "bad").get("/v2/pub/app/manifests/v1").await.status, StatusCode::UNAUTHORIZED);
    s.stop().await;
}

#[tokio::test]
async fn token_mode_anonymous_pull() {
    let (s, _htpasswd) = token_server(true).await;
    let realm = format!("http://{}/token", s.addr);
    let anon = s.client();
    let t = token(&anon.basic("alice", "secret"), &realm, "berth.test", &["repository:pub/app:pull,push"]).await;
    anon.bearer(t.json()["token"].as_str().unwrap()).push_image("pub/app", "v1", b"l").await;

    // Without credentials the token endpoint grants only pull, whatever was asked.
    let t = token(&anon, &realm, "berth.test", &["repository:pub/app:pull,push"]).await;
    assert_eq!(t.status, StatusCode::OK);
    let reader = anon.bearer(t.json()["token"].as_str().unwrap());
    assert_eq!(reader.get("/v2/pub/app/manifests/v1").await.status, StatusCode::OK);
    let r = reader.send(Method::POST, "/v2/pub/app/blobs/uploads/", &[], "").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // And pulls work with no Authorization header at all.
    assert_eq!(anon.get("/v2/pub/app/manifests/v1").await.status, StatusCode::OK);
    assert_eq!(anon.send(Method::POST, "/v2/pub/app/blobs/uploads/", &[], "").await.status, StatusCode::UNAUTHORIZED);
    s.stop().await;
}
