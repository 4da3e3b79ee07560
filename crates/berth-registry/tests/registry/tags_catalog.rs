//! Tag listing and the catalog, with `n`/`last` pagination and `Link` headers.

use crate::common::Server;
use http::StatusCode;
use serde_json::json;

#[tokio::test]
async fn tags_are_sorted_and_paginated() {
    let s = Server::start().await;
    let c = s.client();
    let (md, _, _) = c.push_image("team/app", "c", b"l").await;
    let body = c.get(&format!("/v2/team/app/manifests/{md}")).await.body;
    for t in ["a", "e", "b", "d"] {
        let r = c
            .send(
                http::Method::PUT,
                &format!("/v2/team/app/manifests/{t}"),
                &[("content-type", crate::common::OCI_MANIFEST)],
                body.clone(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let r = c.get("/v2/team/app/tags/list").await;
    assert_eq!(r.json(), json!({"name": "team/app", "tags": ["a", "b", "c", "d", "e"]}));
    assert!(r.header("link").is_none());

    let r = c.get("/v2/team/app/tags/list?n=2").await;
    assert_eq!(r.json()["tags"], json!(["a", "b"]));
    let link = r.header("link").unwrap();
    assert_eq!(link, "</v2/team/app/tags/list?last=b&n=2>; rel=\"next\"");
    let next = link.trim_start_matches('<').split('>').next().unwrap();
    let r = c.get(next).await;
    assert_eq!(r.json()["tags"], json!(["c", "d"]));
    let r = c.get("/v2/team/app/tags/list?n=2&last=d").await;
    assert_eq!(r.json()["tags"], json!(["e"]));
    assert!(r.header("link").is_none());

    let r = c.get("/v2/nobody/tags/list").await;
    assert_eq!((r.status, r.code().as_str()), (StatusCode::NOT_FOUND, "NAME_UNKNOWN"));
    s.stop().await;
}

#[tokio::test]
async fn catalog_lists_nested_repositories() {
    let s = Server::start().await;
    let c = s.client();
    for repo in ["zeta", "team/app", "team", "alpha/beta/gamma"] {
        c.push_image(repo, "latest", repo.as_bytes()).await;
    }
    let r = c.get("/v2/_catalog").await;
    assert_eq!(r.json(), json!({"repositories": ["alpha/beta/gamma", "team", "team/app", "zeta"]}));
    let r = c.get("/v2/_catalog?n=3").await;
    assert_eq!(r.json()["repositories"], json!(["alpha/beta/gamma", "team", "team/app"]));
    assert_eq!(r.header("link"), Some("</v2/_catalog?last=team/app&n=3>; rel=\"next\""));
    let r = c.get("/v2/_catalog?n=3&last=team/app").await;
    assert_eq!(r.json()["repositories"], json!(["zeta"]));
    s.stop().await;
}
