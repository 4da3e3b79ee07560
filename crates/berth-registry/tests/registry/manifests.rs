//! Manifests: put/get/head by tag and digest for all four media types, validation, deletes.

use crate::common::*;
use http::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn put_and_get_by_tag_and_digest() {
    let s = Server::start().await;
    let c = s.client();
    let (md, _, _) = c.push_image("team/app", "v1", b"layer one").await;
    for reference in ["v1", md.as_str()] {
        let r = c.get(&format!("/v2/team/app/manifests/{reference}")).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("content-type"), Some(OCI_MANIFEST));
        assert_eq!(r.header("docker-content-digest"), Some(md.as_str()));
        assert_eq!(sha256(&r.body), md, "served bytes are the pushed bytes");
        let h = c.send(Method::HEAD, &format!("/v2/team/app/manifests/{reference}"), &[], "").await;
        assert_eq!(h.status, StatusCode::OK);
        assert_eq!(h.header("content-length"), Some(r.body.len().to_string().as_str()));
        assert!(h.body.is_empty());
    }
    let r = c.get("/v2/team/app/manifests/v2").await;
    assert_eq!((r.status, r.code().as_str()), (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN"));
    let r = c.get("/v2/no/such/manifests/v1").await;
    assert_eq!((r.status, r.code().as_str()), (StatusCode::NOT_FOUND, "NAME_UNKNOWN"));
    s.stop().await;
}

#[tokio::test]
async fn docker_schema2_and_manifest_list() {
    let s = Server::start().await;
    let c = s.client();
    let cfg = c.push_blob("d", b"{}").await;
    let layer = c.push_blob("d", b"tar").await;
    let m = json!({
        "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": cfg, "size": 2},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": layer, "size": 3}]
    });
    let r = c.put_manifest("d", "amd64", DOCKER_MANIFEST, &m).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let child = r.header("docker-content-digest").unwrap().to_string();
    assert_eq!(r.header("location"), Some(format!("/v2/d/manifests/{child}").as_str()));
    let list = json!({
        "schemaVersion": 2, "mediaType": DOCKER_LIST,
        "manifests": [{"mediaType": DOCKER_MANIFEST, "digest": child, "size": 100, "platform": {"architecture": "amd64", "os": "linux"}}]
    });
    let r = c.put_manifest("d", "latest", DOCKER_LIST, &list).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = c.send(Method::GET, "/v2/d/manifests/latest", &[("accept", DOCKER_MANIFEST)], "").await;
    assert_eq!(r.header("content-type"), Some(DOCKER_LIST), "serves what is stored");
    assert_eq!(c.get("/v2/d/manifests/amd64").await.header("content-type"), Some(DOCKER_MANIFEST));

    // An OCI index naming a manifest this repository lacks is refused.
    let index = json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": sha256(b"absent"), "size": 1}]
    });
    let r = c.put_manifest("d", "broken", OCI_INDEX, &index).await;
    assert_eq!((r.status, r.code().as_str()), (StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN"));
    s.stop().await;
}

#[tokio::test]
async fn validation_errors() {
    let s = Server::start().await;
    let c = s.client();
    let cfg = c.push_blob("v", b"{}").await;
    let missing = sha256(b"never pushed");
    let r = c.put_manifest("v", "t", OCI_MANIFEST, &image_manifest(&cfg, 2, &missing, 12)).await;
    assert_eq!((r.status, r.code().as_str()), (StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN"));
    assert_eq!(r.json()["errors"][0]["detail"], json!(missing));
    assert_eq!(c.get("/v2/v/manifests/t").await.status, StatusCode::NOT_FOUND, "nothing was tagged");

    let r = c.send(Method::PUT, "/v2/v/manifests/t", &[("content-type", OCI_MANIFEST)], "{not json").await;
    assert_eq!(r.code(), "MANIFEST_INVALID");
    let r = c
        .put_manifest(
            "v",
            "t",
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            &json!({"schemaVersion": 1}),
        )
        .await;
    assert_eq!(r.code(), "MANIFEST_INVALID");

    // By digest, the digest must be that of the bytes.
    let layer = c.push_blob("v", b"l").await;
    let m = image_manifest(&cfg, 2, &layer, 1);
    let r = c.put_manifest("v", &sha256(b"other"), OCI_MANIFEST, &m).await;
    assert_eq!(r.code(), "DIGEST_INVALID");
    let real = sha256(&serde_json::to_vec(&m).unwrap());
    let r = c.put_manifest("v", &real, OCI_MANIFEST, &m).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(c.get("/v2/v/tags/list").await.json()["tags"], json!([]), "a push by digest tags nothing");
    s.stop().await;
}

#[tokio::test]
async fn delete_by_tag_untags_and_by_digest_removes() {
    let s = Server::start().await;
    let c = s.client();
    let (md, _, _) = c.push_image("del", "a", b"x").await;
    let body = c.get("/v2/del/manifests/a").await.body;
    c.send(Method::PUT, "/v2/del/manifests/b", &[("content-type", OCI_MANIFEST)], body).await;

    let r = c.send(Method::DELETE, "/v2/del/manifests/a", &[], "").await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(c.get("/v2/del/manifests/a").await.status, StatusCode::NOT_FOUND);
    assert_eq!(c.get(&format!("/v2/del/manifests/{md}")).await.status, StatusCode::OK, "only untagged");
    assert_eq!(c.get("/v2/del/tags/list").await.json()["tags"], json!(["b"]));

    let r = c.send(Method::DELETE, &format!("/v2/del/manifests/{md}"), &[], "").await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(c.get(&format!("/v2/del/manifests/{md}")).await.code(), "MANIFEST_UNKNOWN");
    assert_eq!(c.get("/v2/del/manifests/b").await.status, StatusCode::NOT_FOUND, "tags pointing at it went too");
    assert_eq!(c.get("/v2/del/tags/list").await.json()["tags"], json!([]));
    assert_eq!(c.send(Method::DELETE, &format!("/v2/del/manifests/{md}"), &[], "").await.status, StatusCode::NOT_FOUND);
    assert_eq!(c.send(Method::DELETE, "/v2/del/manifests/zzz", &[], "").await.code(), "MANIFEST_UNKNOWN");
    s.stop().await;
}
