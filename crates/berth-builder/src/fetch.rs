//! `ADD <url>`: a plain HTTP/1.1 GET, following redirects, into a file.
//!
//! Only `http://` is supported: berth's builder has no TLS client. The daemon fetches,
//! not a container, so the build's `--network` does not apply (as in Docker).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

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

/// Downloads `url` into `dest`.
pub(crate) fn get(url: &str, dest: &Path) -> Result<()> {
    let mut url = url.to_string();
    for _ in 0..10 {
        match get_once(&url, dest)? {
            None => return Ok(()),
            Some(next) => url = next,
        }
    }
    Err(BuildError::Invalid(format!("failed to GET {url}: too many redirects")))
}

/// One request: `Some(location)` for a redirect.
fn get_once(url: &str, dest: &Path) -> Result<Option<String>> {
    let fail = |m: String| BuildError::Invalid(format!("failed to GET {url}: {m}"));
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(fail("only http:// URLs are supported by berth's builder".into()));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let path = path.split('#').next().unwrap_or("/");
    let addr = if authority.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) { authority.to_string() } else { format!("{authority}:80") };
    let stream = TcpStream::connect(&addr).map_err(|e| fail(e.to_string()))?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let mut w = stream.try_clone().map_err(|e| fail(e.to_string()))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: berth-builder\r\nAccept: */*\r\nConnection: close\r\n\r\n");
    w.write_all(request.as_bytes()).map_err(|e| fail(e.to_string()))?;
    let mut r = BufReader::new(stream);
    let mut status = String::new();
    r.read_line(&mut status).map_err(|e| fail(e.to_string()))?;
    let code: u16 = status.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| fail(format!("bad status line {status:?}")))?;
    let mut headers = Vec::new();
    loop {
        let mut l = String::new();
        r.read_line(&mut l).map_err(|e| fail(e.to_string()))?;
        let l = l.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let header = |k: &str| headers.iter().find(|(h, _)| h == k).map(|(_, v)| v.clone());
    if (300..400).contains(&code) {
        let loc = header("location").ok_or_else(|| fail(format!("redirect {code} without a Location")))?;
        let next = if loc.starts_with("http://") || loc.starts_with("https://") {
            loc
        } else if loc.starts_with('/') {
            format!("http://{authority}{loc}")
        } else {
            let base = path.rsplit_once('/').map(|(b, _)| b).unwrap_or("");
            format!("http://{authority}{base}/{loc}")
        };
        return Ok(Some(next));
    }
    if !(200..300).contains(&code) {
        let reason = status.split_whitespace().skip(2).collect::<Vec<_>>().join(" ");
        return Err(BuildError::Invalid(format!("failed to GET {url} with status {code} {reason}")));
    }
    let mut out = std::fs::File::create(dest).map_err(|e| BuildError::io("creating the download file", e))?;
    let copied = if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        copy_chunked(&mut r, &mut out)
    } else if let Some(len) = header("content-length").and_then(|v| v.parse::<u64>().ok()) {
        match std::io::copy(&mut (&mut r).take(len), &mut out) {
            Ok(n) if n < len => Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed before the whole body arrived")),
            other => other.map(|_| ()),
        }
    } else {
        std::io::copy(&mut r, &mut out).map(|_| ())
    };
    copied.map_err(|e| fail(e.to_string()))?;
    Ok(None)
}

fn copy_chunked(r: &mut impl BufRead, out: &mut impl Write) -> std::io::Result<()> {
    loop {
        let mut line = String::new();
        r.read_line(&mut line)?;
        let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("bad chunk size {line:?}")))?;
        if size == 0 {
            return Ok(());
        }
        let n = std::io::copy(&mut r.take(size as u64), out)?;
        if n < size as u64 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed inside a chunk"));
        }
        let mut crlf = String::new();
        r.read_line(&mut crlf)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_a_real_download() {
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
                    None => s.write_all(b"HTTP/1.1 302 Found\r\nLocation: /final\r\nContent-Length: 0\r\n\r\n").unwrap(),
                    Some(b) => write!(s, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{b}\r\n0\r\n\r\n", b.len()).unwrap(),
                }
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f");
        get(&format!("http://127.0.0.1:{port}/start"), &dest).unwrap();
        server.join().unwrap();
        assert_eq!(std::fs::read_to_string(dest).unwrap(), "hello");
        assert!(get("https://example.invalid/x", &dir.path().join("g")).unwrap_err().to_string().contains("only http://"));
    }
}
