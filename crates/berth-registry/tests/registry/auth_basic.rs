//! htpasswd basic auth.

use crate::common::*;
use http::{Method, StatusCode};

async fn server() -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = htpasswd(dir.path(), &[("alice", "secret"), ("bob", "hunter2")]);
    (Server::start_with(|c| c.htpasswd = Some(path.clone())).await, dir)
}

#[tokio::test]
async fn challenge_good_and_bad_credentials() {
    let (s, _htpasswd) = server().await;
    let anon = s.client();
    let r = anon.get("/v2/").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"berth-registry\""));
    assert_eq!(r.code(), "UNAUTHORIZED");

    assert_eq!(anon.basic("alice", "secret").get("/v2/").await.status, StatusCode::OK);
    assert_eq!(anon.basic("bob", "hunter2").get("/v2/").await.status, StatusCode::OK);
    let r = anon.basic("alice", "wrong").get("/v2/").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.header("www-authenticate").is_some());
    assert_eq!(anon.basic("mallory", "secret").get("/v2/").await.status, StatusCode::UNAUTHORIZED);
    s.stop().await;
}

#[tokio::test]
async fn every_endpoint_needs_credentials() {
    let (s, _htpasswd) = server().await;
    let alice = s.client().basic("alice", "secret");
    let (md, _, layer) = alice.push_image("team/app", "v1", b"private").await;
    let anon = s.client();
    for path in [
        "/v2/team/app/manifests/v1".to_string(),
        format!("/v2/team/app/blobs/{layer}"),
        "/v2/team/app/tags/list".into(),
        "/v2/_catalog".into(),
        "/v1/search?q=app".into(),
    ] {
        assert_eq!(anon.get(&path).await.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(alice.get(&path).await.status, StatusCode::OK, "{path}");
    }
    let r = anon.send(Method::POST, "/v2/team/app/blobs/uploads/", &[], "").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = anon.send(Method::DELETE, &format!("/v2/team/app/manifests/{md}"), &[], "").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    s.stop().await;
}
