//! A client that dies mid-upload leaves no blob and no half chunk.

use crate::common::*;
use http::{Method, StatusCode};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Sends a request head promising `promised` bytes, then `sent` bytes, then hangs up.
async fn die_mid_body(s: &Server, method: &str, path: &str, extra: &str, promised: usize, sent: usize) {
    let mut tcp = TcpStream::connect(s.addr).await.unwrap();
    let head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {promised}\r\n{extra}\r\n", s.addr);
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(&vec![b'z'; sent]).await.unwrap();
    tcp.flush().await.unwrap();
    drop(tcp);
}

/// Polls until `f` holds (the server notices the hang-up asynchronously).
async fn eventually(mut f: impl AsyncFnMut() -> bool) {
    for _ in 0..100 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("condition never held");
}

#[tokio::test]
async fn killed_monolithic_upload_leaves_no_blob() {
    let s = Server::start().await;
    let c = s.client();
    // Large enough that part of it reaches the disk before the client dies.
    let full = vec![b'z'; 4 << 20];
    let d = sha256(&full);
    die_mid_body(&s, "POST", &format!("/v2/x/blobs/uploads/?digest={d}"), "", 4 << 20, 1 << 20).await;
    let uploads = s.root.join("repositories/x/_uploads");
    eventually(async || std::fs::read_dir(&uploads).map_or(true, |mut d| d.next().is_none())).await;
    assert!(blob_files(&s.root).is_empty());
    assert_eq!(c.get(&format!("/v2/x/blobs/{d}")).await.status, StatusCode::NOT_FOUND);
    // The same blob uploads fine afterwards.
    assert_eq!(c.push_blob("x", &full).await, d);
    s.stop().await;
}

#[tokio::test]
async fn killed_chunk_is_rolled_back() {
    let s = Server::start().await;
    let c = s.client();
    let loc = c.send(Method::POST, "/v2/x/blobs/uploads/", &[], "").await.header("location").unwrap().to_string();
    c.send(Method::PATCH, &loc, &[("content-range", "0-4")], "hello").await;
    die_mid_body(&s, "PATCH", &loc, &format!("Content-Range: 5-{}\r\n", 4 + (4 << 20)), 4 << 20, 1 << 20).await;
    // Give the server time to see the hang-up, then check the offset never moved.
    tokio::time::sleep(Duration::from_millis(200)).await;
    eventually(async || c.get(&loc).await.header("range") == Some("0-4")).await;
    assert!(blob_files(&s.root).is_empty());
    let r = c.send(Method::PATCH, &loc, &[("content-range", "5-10")], " world").await;
    assert_eq!(r.header("range"), Some("0-10"));
    let d = sha256(b"hello world");
    let r = c.send(Method::PUT, &format!("{loc}?digest={d}"), &[], "").await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(&c.get(&format!("/v2/x/blobs/{d}")).await.body[..], b"hello world");
    s.stop().await;
}
