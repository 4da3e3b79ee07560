//! `GET /v2/`, the version header on every response, and the socket-less handler.

use crate::common::Server;
use berth_registry::{Config, Registry};
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty};

#[tokio::test]
async fn base_endpoint_answers_empty_json_with_version_header() {
    let s = Server::start().await;
    let c = s.client();
    for path in ["/v2/", "/v2"] {
        let r = c.get(path).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json(), serde_json::json!({}));
        assert_eq!(
            r.header("docker-distribution-api-version"),
            Some("registry/2.0")
        );
    }
    let r = c.get("/v2/nope/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "BLOB_UNKNOWN");
    assert_eq!(
        r.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );
    let r = c.get("/v3/whatever").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );
    let r = c.send(Method::POST, "/v2/", &[], "").await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.code(), "UNSUPPORTED");
    s.stop().await;
}

#[tokio::test]
async fn handler_works_without_a_socket() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::open(Config::new("127.0.0.1:0".parse().unwrap(), dir.path())).unwrap();
    let router = berth_registry::router(reg);
    let req = Request::get("/v2/").body(Empty::<Bytes>::new()).unwrap();
    let resp = router.handle(req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
    assert_eq!(resp.into_body().collect().await.unwrap().to_bytes(), "{}");
}

#[tokio::test]
async fn invalid_names_and_tags_are_rejected() {
    let s = Server::start().await;
    let c = s.client();
    let r = c.get("/v2/UPPER/tags/list").await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "NAME_INVALID")
    );
    let r = c.get("/v2/a..b/manifests/latest").await;
    assert_eq!(r.code(), "NAME_INVALID");
    let r = c.get("/v2/ok/manifests/.bad").await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "TAG_INVALID")
    );
    let r = c.get("/v2/ok/blobs/sha256:xyz").await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "DIGEST_INVALID")
    );
    s.stop().await;
}
