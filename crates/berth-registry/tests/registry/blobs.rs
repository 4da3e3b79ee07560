//! Blob reads (`HEAD`, `GET`, ranges) and deletes.

use crate::common::{Server, sha256};
use berth_registry::names::{Algorithm, Digest};
use http::{Method, StatusCode};

#[tokio::test]
async fn head_get_and_ranges() {
    let s = Server::start().await;
    let c = s.client();
    let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    let d = c.push_blob("team/app", &data).await;
    let path = format!("/v2/team/app/blobs/{d}");

    let r = c.send(Method::HEAD, &path, &[], "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-length"), Some("1000"));
    assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
    assert!(r.body.is_empty());

    let r = c.get(&path).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(&r.body[..], &data[..]);

    let r = c.send(Method::GET, &path, &[("range", "bytes=10-19")], "").await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.header("content-range"), Some("bytes 10-19/1000"));
    assert_eq!(&r.body[..], &data[10..20]);

    let r = c.send(Method::GET, &path, &[("range", "bytes=990-")], "").await;
    assert_eq!(&r.body[..], &data[990..]);

    let r = c.send(Method::GET, &path, &[("range", "bytes=5000-6000")], "").await;
    assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(r.header("content-range"), Some("bytes */1000"));
    s.stop().await;
}

/// Large blobs are sent from a mapping of the file, in slices: every byte and every range
/// (at unaligned offsets, across slice boundaries, to the end) must come out the same.
#[tokio::test]
async fn large_blobs_and_their_ranges_are_served_exactly() {
    let s = Server::start().await;
    let c = s.client();
    let data: Vec<u8> = (0..(3u32 << 20) + 12_345).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let d = c.push_blob("big/app", &data).await;
    let path = format!("/v2/big/app/blobs/{d}");
    let r = c.get(&path).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body.len(), data.len());
    assert!(r.body[..] == data[..], "the whole blob");
    let n = data.len();
    for (a, b) in [(4097, (2 << 20) + 3), ((1 << 20) - 1, n - 1), (5, 5 + (1 << 20)), (n - 10, n - 1)] {
        let r = c.send(Method::GET, &path, &[("range", &format!("bytes={a}-{b}"))], "").await;
        assert_eq!(r.status, StatusCode::PARTIAL_CONTENT, "{a}-{b}");
        assert!(r.body[..] == data[a..=b], "bytes {a}-{b}");
    }
    s.stop().await;
}

/// Requests for a large blob read one mapping of it (no page faults and teardown per
/// request): two clients in the middle of reading it, and those that come after, share it.
#[tokio::test]
async fn readers_of_a_large_blob_share_one_mapping_of_it() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let s = Server::start().await;
    let c = s.client();
    // Larger than both ends' socket buffers, so a client that stops reading holds its
    // response (and whatever mapping it reads from) open.
    let data: Vec<u8> = (0..(32u32 << 20) + 7).map(|i| (i % 253) as u8).collect();
    let d = c.push_blob("kept/app", &data).await;
    let path = format!("/v2/kept/app/blobs/{d}");
    let root = s.root.to_string_lossy().into_owned();
    let mappings = || std::fs::read_to_string("/proc/self/maps").unwrap().lines().filter(|l| l.contains(&root)).count();
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let mut tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
        tcp.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await.unwrap();
        let mut head = Vec::new();
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let mut buf = [0u8; 4096];
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(n > 0, "the registry hung up");
            head.extend_from_slice(&buf[..n]);
        }
        assert!(head.starts_with(b"HTTP/1.1 200"));
        stalled.push(tcp);
    }
    assert_eq!(mappings(), 1, "two responses under way read one mapping");
    let r = c.send(Method::GET, &path, &[("range", "bytes=4099-1052675")], "").await;
    assert!(r.body[..] == data[4099..=1052675]);
    assert!(c.get(&path).await.body[..] == data[..]);
    drop(stalled);
    assert_eq!(mappings(), 1);
    s.stop().await;
}

#[tokio::test]
async fn blobs_are_per_repository_and_delete_unlinks() {
    let s = Server::start().await;
    let c = s.client();
    let d = c.push_blob("one", b"hello").await;
    assert_eq!(c.get(&format!("/v2/two/blobs/{d}")).await.code(), "BLOB_UNKNOWN");

    let r = c.send(Method::DELETE, &format!("/v2/one/blobs/{d}"), &[], "").await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let r = c.get(&format!("/v2/one/blobs/{d}")).await;
    assert_eq!((r.status, r.code().as_str()), (StatusCode::NOT_FOUND, "BLOB_UNKNOWN"));
    let r = c.send(Method::DELETE, &format!("/v2/one/blobs/{d}"), &[], "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    s.stop().await;
}

#[tokio::test]
async fn sha512_digests_are_verified_and_served() {
    let s = Server::start().await;
    let c = s.client();
    let d = Digest::of(Algorithm::Sha512, b"five hundred twelve").to_string();
    let r = c.send(Method::POST, &format!("/v2/x/blobs/uploads/?digest={d}"), &[], "five hundred twelve").await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.header("location"), Some(format!("/v2/x/blobs/{d}").as_str()));
    let r = c.get(&format!("/v2/x/blobs/{d}")).await;
    assert_eq!(&r.body[..], b"five hundred twelve");
    assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
    // The same bytes under sha256 are a different name.
    assert_eq!(c.get(&format!("/v2/x/blobs/{}", sha256(b"five hundred twelve"))).await.status, StatusCode::NOT_FOUND);
    s.stop().await;
}
