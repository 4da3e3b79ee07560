//! Read-only mode: reads work, every write is `405 UNSUPPORTED`.

use crate::common::*;
use http::{Method, StatusCode};

#[tokio::test]
async fn writes_are_unsupported_reads_work() {
    let s = Server::start().await;
    let (md, _, layer) = s.client().push_image("ro", "v1", b"frozen").await;
    let s = s.restart_with(|c| c.read_only = true).await;
    let c = s.client();
    assert_eq!(c.get("/v2/ro/manifests/v1").await.status, StatusCode::OK);
    assert_eq!(&c.get(&format!("/v2/ro/blobs/{layer}")).await.body[..], b"frozen");
    assert_eq!(c.get("/v2/ro/tags/list").await.status, StatusCode::OK);
    assert_eq!(c.get("/v2/_catalog").await.status, StatusCode::OK);
    let writes = [
        (Method::POST, "/v2/ro/blobs/uploads/".to_string()),
        (Method::PUT, "/v2/ro/manifests/v2".into()),
        (Method::DELETE, format!("/v2/ro/manifests/{md}")),
        (Method::DELETE, format!("/v2/ro/blobs/{layer}")),
        (Method::PATCH, "/v2/ro/blobs/uploads/00000000-0000-4000-8000-000000000000".into()),
    ];
    for (m, p) in writes {
        let r = c.send(m.clone(), &p, &[], "x").await;
        assert_eq!((r.status, r.code().as_str()), (StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED"), "{m} {p}");
    }
    assert_eq!(c.get("/v2/ro/manifests/v1").await.status, StatusCode::OK, "nothing changed");
    s.stop().await;
}
