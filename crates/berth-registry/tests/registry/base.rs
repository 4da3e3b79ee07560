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
        assert_eq!(r.header("docker-distribution-api-version"), Some("registry/2.0"));
    }
    let r = c.get("/v2/nope/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "BLOB_UNKNOWN");
    assert_eq!(r.header("docker-distribution-api-version"), Some("registry/2.0"));
    let r = c.get("/v3/whatever").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.header("docker-distribution-api-version"), Some("registry/2.0"));
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
    assert_eq!(resp.headers()["docker-distribution-api-version"], "registry/2.0");
    assert_eq!(resp.into_body().collect().await.unwrap().to_bytes(), "{}");
}

#[tokio::test]
async fn invalid_names_and_tags_are_rejected() {
    let s = Server::start().await;
    let c = s.client();
    let r = c.get("/v2/UPPER/tags/list").await;
    assert_eq!((r.status, r.code().as_str()), (StatusCode::BAD_REQUEST, "NAME_INVALID"));
    let r = c.get("/v2/a..b/manifests/latest").await;
    assert_eq!(r.code(), "NAME_INVALID");
    let r = c.get("/v2/ok/manifests/.bad").await;
    assert_eq!((r.status, r.code().as_str()), (StatusCode::BAD_REQUEST, "TAG_INVALID"));
    let r = c.get("/v2/ok/blobs/sha256:xyz").await;
    assert_eq!((r.status, r.code().as_str()), (StatusCode::BAD_REQUEST, "DIGEST_INVALID"));
    s.stop().await;
}

/// The registry's side of a connection queues at most a mebibyte unsent (see
/// `berth_distribution::http::tune_registry_socket`): found among this process's sockets
/// by its local port, apart from the listener.
#[tokio::test]
async fn accepted_connections_queue_little_unsent() {
    use std::os::fd::{FromRawFd as _, RawFd};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let s = Server::start().await;
    let mut tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    tcp.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 16];
    assert!(tcp.read(&mut buf).await.unwrap() > 0, "the registry answered");
    let int_opt = |fd: RawFd, level: libc::c_int, name: libc::c_int| {
        let (mut v, mut len) = (0 as libc::c_int, std::mem::size_of::<libc::c_int>() as libc::socklen_t);
        // SAFETY: getsockopt writes at most `len` bytes into the local it is given.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::getsockopt(fd, level, name, std::ptr::from_mut(&mut v).cast(), &mut len) };
        (rc == 0).then_some(v)
    };
    let mut accepted = Vec::new();
    for e in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Ok(fd) = e.file_name().to_string_lossy().parse::<RawFd>() else { continue };
        if !std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().starts_with("socket:")) {
            continue;
        }
        // SAFETY: borrows a descriptor this process holds open; ManuallyDrop never closes it.
        #[allow(unsafe_code)]
        let sock = std::mem::ManuallyDrop::new(unsafe { std::net::TcpStream::from_raw_fd(fd) });
        let ours = sock.local_addr().is_ok_and(|a| a == s.addr);
        if ours && int_opt(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN) == Some(0) {
            accepted.push(int_opt(fd, libc::IPPROTO_TCP, libc::TCP_NOTSENT_LOWAT));
        }
    }
    assert_eq!(accepted, [Some(1 << 20)]);
    s.stop().await;
}
