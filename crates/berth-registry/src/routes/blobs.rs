//! `HEAD|GET|DELETE /v2/<name>/blobs/<digest>`.
//!
//! Reads stream the file (a single `Range: bytes=a-b`, `a-` or `-n` gives `206`; several
//! ranges are answered with the whole blob, which HTTP allows). `DELETE` unlinks the blob
//! from the repository; its bytes go when GC finds nothing else referencing them.

use super::bare;
use crate::error::{ErrorCode, RegistryError, Result};
use crate::http_util::{self, Body};
use crate::names::Digest;
use crate::router::Ctx;
use crate::{Registry, blocking};
use http::{Method, Response, StatusCode, header};

pub async fn handle(reg: &Registry, ctx: &Ctx, name: &str, digest: &str) -> Result<Response<Body>> {
    let d = Digest::parse(digest)?;
    if ctx.method == Method::DELETE {
        let (s, n, d2) = (reg.storage.clone(), name.to_string(), d.clone());
        if !blocking(move || s.unlink_blob(&n, &d2)).await? {
            return Err(unknown(&d));
        }
        return Ok(bare(StatusCode::ACCEPTED, [("docker-content-digest", d.to_string())]));
    }
    let (s, n, d2) = (reg.storage.clone(), name.to_string(), d.clone());
    if blocking(move || s.repo_blob_size(&n, &d2)).await?.is_none() {
        return Err(unknown(&d));
    }
    // Open, then stat the open file: a GC unlinking the path in between cannot make the
    // length and the bytes disagree.
    let path = reg.storage.blob_path(&d);
    let opened = blocking(move || match std::fs::File::open(path) {
        Ok(f) => {
            let meta = f.metadata().map_err(|e| RegistryError::io("stat blob", e))?;
            Ok(Some((f, meta)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RegistryError::io("open blob", e)),
    });
    let (file, meta) = opened.await?.ok_or_else(|| unknown(&d))?;
    let size = meta.len();
    let range = match ctx.header(header::RANGE) {
        Some(r) if ctx.method == Method::GET => parse_range(r, size)?,
        _ => None,
    };
    let mut resp = Response::builder()
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header("docker-content-digest", d.to_string())
        .header(header::ETAG, format!("\"{d}\""))
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CACHE_CONTROL, "max-age=31536000");
    let (status, start, len) = match range {
        Some((a, b)) => {
            resp = resp.header(header::CONTENT_RANGE, format!("bytes {a}-{b}/{size}"));
            (StatusCode::PARTIAL_CONTENT, a, b - a + 1)
        }
        None => (StatusCode::OK, 0, size),
    };
    let body = if ctx.method == Method::HEAD {
        http_util::empty()
    } else {
        http_util::file_body(file, &meta, start, len, &reg.maps)
    };
    Ok(resp.status(status).header(header::CONTENT_LENGTH, len).body(body).expect("valid headers"))
}

fn unknown(d: &Digest) -> RegistryError {
    RegistryError::with_detail(ErrorCode::BlobUnknown, "blob unknown to registry", d.to_string())
}

/// Parses a single `bytes=` range against `size` into inclusive bounds. `Ok(None)` means
/// "ignore it and send everything" (multiple ranges, other units); an unsatisfiable range
/// is `416` with `Content-Range: bytes */<size>`.
fn parse_range(header: &str, size: u64) -> Result<Option<(u64, u64)>> {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let unsatisfiable = || RegistryError::RangeNotSatisfiable {
        content_range: Some(format!("bytes */{size}")),
        range: None,
        location: None,
    };
    let (a, b) = spec.split_once('-').ok_or_else(unsatisfiable)?;
    let (a, b) = (a.trim(), b.trim());
    let bounds = match (a.parse::<u64>().ok(), b.parse::<u64>().ok()) {
        (Some(a), Some(b)) if a <= b => (a, b.min(size.saturating_sub(1))),
        (Some(a), None) if b.is_empty() => (a, size.saturating_sub(1)),
        (None, Some(n)) if a.is_empty() && n > 0 => (size.saturating_sub(n), size.saturating_sub(1)),
        _ => return Err(unsatisfiable()),
    };
    if size == 0 || bounds.0 >= size {
        return Err(unsatisfiable());
    }
    Ok(Some(bounds))
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-4", 10).unwrap(), Some((0, 4)));
        assert_eq!(parse_range("bytes=5-", 10).unwrap(), Some((5, 9)));
        assert_eq!(parse_range("bytes=-3", 10).unwrap(), Some((7, 9)));
        assert_eq!(parse_range("bytes=8-100", 10).unwrap(), Some((8, 9)));
        assert_eq!(parse_range("bytes=0-1,3-4", 10).unwrap(), None);
        assert!(parse_range("bytes=10-12", 10).is_err());
        assert!(parse_range("bytes=4-2", 10).is_err());
    }
}
