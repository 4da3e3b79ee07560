//! `ADD <url>`: an HTTP(S) GET, following redirects, into a file, with berth's one HTTP
//! client (the registry client's, so https works with the system's and certs.d's CAs).
//! The daemon fetches, not a container, so the build's `--network` does not apply (as in
//! Docker).

use std::path::Path;

use tokio::io::AsyncWriteExt;

use crate::{BuildError, Result};

pub(crate) fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// The file name a URL gives its download: its path's last segment.
pub(crate) fn file_name(url: &str) -> Result<String> {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let path = rest.split_once('/').map(|(_, p)| p).unwrap_or("");
    let path = path.split(['?', '#']).next().unwrap_or("");
    match path.rsplit('/').next().filter(|n| !n.is_empty()) {
        Some(n) => Ok(n.to_string()),
        None => Err(BuildError::Invalid(format!("cannot determine filename from url: {url}"))),
    }
}

/// Downloads `url` into `dest`; returns the response's `Content-Type`, if any.
pub(crate) async fn get(url: &str, dest: &Path) -> Result<Option<String>> {
    let fail = |m: String| BuildError::Invalid(format!("failed to GET {url}: {m}"));
    let client = berth_distribution::http::HttpClient::new();
    let resp =
        berth_distribution::http::download(&client, url).await.map_err(|e| BuildError::Invalid(e.to_string()))?;
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    let mut body = berth_distribution::http::body_channel(resp);
    let mut f = tokio::fs::File::create(dest).await.map_err(|e| fail(e.to_string()))?;
    while let Some(chunk) = body.recv().await {
        f.write_all(&chunk).await.map_err(|e| fail(e.to_string()))?;
    }
    f.flush().await.map_err(|e| fail(e.to_string()))?;
    Ok(content_type)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[tokio::test]
    async fn names_and_a_real_download_through_a_redirect() {
        assert_eq!(file_name("http://h/a/b.tar.gz?x=1").unwrap(), "b.tar.gz");
        assert!(file_name("http://h/").is_err());
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            for body in [None, Some("hello")] {
                let (mut s, _) = l.accept().unwrap();
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.ends_with(b"\r\n\r\n") {
                    let n = s.read(&mut buf).unwrap();
                    req.extend_from_slice(&buf[..n]);
                }
                match body {
                    None => s.write_all(b"HTTP/1.1 302 Found\r\nLocation: /final\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap(),
                    Some(b) => write!(s, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{b}\r\n0\r\n\r\n", b.len()).unwrap(),
                }
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f");
        get(&format!("http://127.0.0.1:{port}/start"), &dest).await.unwrap();
        server.join().unwrap();
        assert_eq!(std::fs::read_to_string(dest).unwrap(), "hello");
        let err = get(&format!("http://127.0.0.1:{port}/gone"), &dir.path().join("g")).await.unwrap_err().to_string();
        assert!(err.contains("127.0.0.1"), "{err}");
    }
}
