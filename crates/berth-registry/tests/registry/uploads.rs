//! Upload sessions: chunked, streamed, monolithic, mounts, status, cancel, digest checks.

use crate::common::{Server, blob_files, sha256};
use bytes::Bytes;
use http::{Method, StatusCode};

#[tokio::test]
async fn chunked_upload_with_content_ranges() {
    let s = Server::start().await;
    let c = s.client();
    let r = c.send(Method::POST, "/v2/team/app/blobs/uploads/", &[], "").await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.header("range"), Some("0-0"));
    let loc = r.header("location").unwrap().to_string();
    let uuid = r.header("docker-upload-uuid").unwrap().to_string();
    assert!(loc.starts_with("/v2/team/app/blobs/uploads/") && loc.ends_with(&uuid));

    let r = c
        .send(Method::PATCH, &loc, &[("content-range", "0-4"), ("content-type", "application/octet-stream")], "hello")
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.header("range"), Some("0-4"));
    assert_eq!(r.header("docker-upload-uuid"), Some(uuid.as_str()));

    // Out of order: the server still has 5 bytes, and says so.
    let r = c.send(Method::PATCH, &loc, &[("content-range", "9-13")], "world").await;
    assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(r.header("range"), Some("0-4"));
    // A range that does not match the body is refused and leaves the session unchanged.
    let r = c.send(Method::PATCH, &loc, &[("content-range", "5-20")], " world").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // A range to u64::MAX is refused the same way (fuzz/regressions/registry_http: its
    // length overflowed).
    let r = c.send(Method::PATCH, &loc, &[("content-range", "5-18446744073709551615")], " world").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let r = c.get(&loc).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.header("range"), Some("0-4"));

    let r = c.send(Method::PATCH, &loc, &[("content-range", "5-10")], " world").await;
    assert_eq!(r.header("range"), Some("0-10"));

    let d = sha256(b"hello world!");
    let r = c.send(Method::PUT, &format!("{loc}?digest={}", d.replace(':', "%3A")), &[], "!").await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.header("location"), Some(format!("/v2/team/app/blobs/{d}").as_str()));
    assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
    assert_eq!(&c.get(&format!("/v2/team/app/blobs/{d}")).await.body[..], b"hello world!");
    // The session is gone once committed.
    assert_eq!(c.get(&loc).await.code(), "BLOB_UPLOAD_UNKNOWN");
    s.stop().await;
}

#[tokio::test]
async fn streamed_upload_is_not_buffered_and_hashes_on_the_fly() {
    let s = Server::start().await;
    let c = s.client();
    let r = c.send(Method::POST, "/v2/big/blobs/uploads/", &[], "").await;
    let loc = r.header("location").unwrap().to_string();
    // 16 MiB in 64 KiB chunks, sent with chunked transfer encoding.
    let chunk: Vec<u8> = (0..65536u32).map(|i| (i * 7 % 256) as u8).collect();
    let mut whole = Vec::new();
    for _ in 0..256 {
        whole.extend_from_slice(&chunk);
    }
    let d = sha256(&whole);
    let stream = futures_util::stream::iter(
        (0..256).map(move |_| Ok::<_, std::io::Error>(hyper::body::Frame::data(Bytes::from(chunk.clone())))),
    );
    let r = c.send_body(Method::PATCH, &loc, &[], http_body_util::StreamBody::new(stream)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.header("range"), Some("0-16777215"));
    let r = c.send(Method::PUT, &format!("{loc}?digest={d}"), &[], "").await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = c.send(Method::HEAD, &format!("/v2/big/blobs/{d}"), &[], "").await;
    assert_eq!(r.header("content-length"), Some("16777216"));
    let r = c.get(&format!("/v2/big/blobs/{d}")).await;
    assert_eq!(sha256(&r.body), d);
    s.stop().await;
}

#[tokio::test]
async fn digest_mismatch_stores_nothing() {
    let s = Server::start().await;
    let c = s.client();
    let wrong = sha256(b"something else");
    // Monolithic.
    let r = c.send(Method::POST, &format!("/v2/x/blobs/uploads/?digest={wrong}"), &[], "actual bytes").await;
    assert_eq!((r.status, r.code().as_str()), (StatusCode::BAD_REQUEST, "DIGEST_INVALID"));
    // Chunked then committed with the wrong digest.
    let loc = c.send(Method::POST, "/v2/x/blobs/uploads/", &[], "").await.header("location").unwrap().to_string();
    c.send(Method::PATCH, &loc, &[], "actual bytes").await;
    let r = c.send(Method::PUT, &format!("{loc}?digest={wrong}"), &[], "").await;
    assert_eq!((r.status, r.code().as_str()), (StatusCode::BAD_REQUEST, "DIGEST_INVALID"));
    assert!(blob_files(&s.root).is_empty(), "{:?}", blob_files(&s.root));
    assert_eq!(c.get(&format!("/v2/x/blobs/{wrong}")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(c.get(&loc).await.code(), "BLOB_UPLOAD_UNKNOWN");
    assert!(std::fs::read_dir(s.root.join("repositories/x/_uploads")).unwrap().next().is_none());
    // A PUT without a digest is refused too.
    let loc = c.send(Method::POST, "/v2/x/blobs/uploads/", &[], "").await.header("location").unwrap().to_string();
    assert_eq!(c.send(Method::PUT, &loc, &[], "").await.code(), "DIGEST_INVALID");
    s.stop().await;
}

#[tokio::test]
async fn cancel_and_unknown_sessions() {
    let s = Server::start().await;
    let c = s.client();
    let loc = c.send(Method::POST, "/v2/x/blobs/uploads/", &[], "").await.header("location").unwrap().to_string();
    c.send(Method::PATCH, &loc, &[], "partial").await;
    let r = c.send(Method::DELETE, &loc, &[], "").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = c.get(&loc).await;
    assert_eq!((r.status, r.code().as_str()), (StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN"));
    assert_eq!(c.send(Method::DELETE, &loc, &[], "").await.status, StatusCode::NOT_FOUND);
    assert_eq!(c.send(Method::PATCH, "/v2/x/blobs/uploads/../../etc", &[], "x").await.status, StatusCode::NOT_FOUND);
    assert_eq!(c.get("/v2/x/blobs/uploads/not-a-uuid").await.code(), "BLOB_UPLOAD_UNKNOWN");
    s.stop().await;
}

#[tokio::test]
async fn cross_repository_mount() {
    let s = Server::start().await;
    let c = s.client();
    let d = c.push_blob("library/base", b"shared layer").await;
    let r = c.send(Method::POST, &format!("/v2/team/app/blobs/uploads/?mount={d}&from=library/base"), &[], "").await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.header("location"), Some(format!("/v2/team/app/blobs/{d}").as_str()));
    assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
    assert_eq!(&c.get(&format!("/v2/team/app/blobs/{d}")).await.body[..], b"shared layer");

    // Not in `from`: a normal upload session instead.
    let other = sha256(b"nowhere");
    let r =
        c.send(Method::POST, &format!("/v2/team/app/blobs/uploads/?mount={other}&from=library/base"), &[], "").await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert!(r.header("docker-upload-uuid").is_some());
    s.stop().await;
}
