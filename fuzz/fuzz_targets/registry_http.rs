//! The registry's HTTP-level parsers, driven through the public `Registry::handle` (the
//! parsers themselves, `routes::blobs::parse_range`, `routes::uploads::parse_content_range`
//! and `router::Route::parse`, are private): a blob `GET` with a fuzzed `Range` header,
//! an upload `PATCH` with a fuzzed `Content-Range` and body, and `GET`/`HEAD` of a fuzzed
//! request path (route parsing, repository-name, tag and digest checks, query strings).
//!
//! Input: one selector byte, then the header value (for `PATCH`: the value, a newline, the
//! body) or the request target.
//! Checks: nothing panics and no request is a 5xx; a `206` says `Content-Range: bytes
//! a-b/size` with `a <= b < size`, a matching `Content-Length`, and carries exactly those
//! bytes of the blob; a `200` carries the whole blob; an accepted `PATCH` stored exactly
//! the body and, with a `Content-Range`, only one that covers exactly the body.
//!
//! A registry is opened once per process under `$TMPDIR/berth-fuzz-registry.<pid>` with two
//! blobs in `fuzz/repo` (1000 bytes and empty); only uploads write, and each upload session
//! is deleted again, so the storage does not drift between inputs.
#![no_main]

use std::sync::{Arc, OnceLock};

use berth_registry::names::{Algorithm, Digest};
use berth_registry::{Config, Registry};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use libfuzzer_sys::fuzz_target;

const REPO: &str = "fuzz/repo";

struct World {
    rt: tokio::runtime::Runtime,
    reg: Arc<Registry>,
    blob: Vec<u8>,
    blob_digest: Digest,
    empty_digest: Digest,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("berth-fuzz-registry.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let reg = Registry::open(Config::new("127.0.0.1:0".parse().unwrap(), &root)).expect("open registry");
        let blob: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        let blob_digest = Digest::of(Algorithm::Sha256, &blob);
        let empty_digest = Digest::of(Algorithm::Sha256, b"");
        for (d, b) in [(&blob_digest, &blob[..]), (&empty_digest, &b""[..])] {
            reg.storage().put_blob_bytes(d, b).unwrap();
            reg.storage().link_blob(REPO, d).unwrap();
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        World { rt, reg, blob, blob_digest, empty_digest }
    })
}

struct Got {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

fn send(w: &World, req: Request<Full<Bytes>>) -> Got {
    w.rt.block_on(async {
        let resp: Response<_> = w.reg.handle(req).await;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.expect("response body").to_bytes().to_vec();
        let got = Got { status: parts.status, headers: parts.headers, body };
        assert!(!got.status.is_server_error(), "{}: {}", got.status, String::from_utf8_lossy(&got.body));
        got
    })
}

fn header<'a>(g: &'a Got, name: &str) -> Option<&'a str> {
    g.headers.get(name).and_then(|v| v.to_str().ok())
}

fn get_range(w: &World, range: &[u8], empty: bool) {
    let Ok(value) = http::HeaderValue::from_bytes(range) else { return };
    let (d, blob) = if empty { (&w.empty_digest, &b""[..]) } else { (&w.blob_digest, &w.blob[..]) };
    let req = Request::get(format!("/v2/{REPO}/blobs/{d}")).header("range", value).body(Full::default()).unwrap();
    let g = send(w, req);
    let size = blob.len() as u64;
    match g.status {
        StatusCode::OK => assert!(g.body == blob, "200 without the whole blob"),
        StatusCode::PARTIAL_CONTENT => {
            let cr = header(&g, "content-range").expect("206 without Content-Range");
            let (a, b, total) = (|| {
                let rest = cr.strip_prefix("bytes ")?;
                let (ab, total) = rest.split_once('/')?;
                let (a, b) = ab.split_once('-')?;
                Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?, total.parse::<u64>().ok()?))
            })()
            .unwrap_or_else(|| panic!("bad Content-Range {cr:?}"));
            assert_eq!(total, size, "{cr}");
            assert!(a <= b && b < size, "Range {range:?} gave Content-Range {cr:?}");
            assert_eq!(header(&g, "content-length"), Some((b - a + 1).to_string().as_str()));
            assert!(g.body == blob[a as usize..=b as usize], "206 body is not bytes {a}-{b}");
        }
        StatusCode::RANGE_NOT_SATISFIABLE => {
            assert_eq!(header(&g, "content-range"), Some(format!("bytes */{size}").as_str()));
        }
        s => panic!("Range {range:?}: unexpected status {s}"),
    }
}

fn patch(w: &World, rest: &[u8]) {
    let (cr, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &b""[..]),
    };
    let Ok(cr) = http::HeaderValue::from_bytes(cr) else { return };
    let start = send(w, Request::post(format!("/v2/{REPO}/blobs/uploads/")).body(Full::default()).unwrap());
    assert_eq!(start.status, StatusCode::ACCEPTED);
    let location = header(&start, "location").expect("upload location").to_string();
    let req = Request::patch(&location)
        .header("content-range", cr.clone())
        .body(Full::new(Bytes::copy_from_slice(body)))
        .unwrap();
    let g = send(w, req);
    if g.status == StatusCode::ACCEPTED {
        let want = format!("0-{}", (body.len() as u64).saturating_sub(1));
        assert_eq!(header(&g, "range"), Some(want.as_str()), "Content-Range {cr:?}, {} body bytes", body.len());
        let status = send(w, Request::get(&location).body(Full::default()).unwrap());
        assert_eq!(header(&status, "range"), Some(want.as_str()));
    }
    let del = send(w, Request::delete(&location).body(Full::default()).unwrap());
    assert_eq!(del.status, StatusCode::NO_CONTENT, "cancelling the session");
}

fn any_path(w: &World, target: &[u8], method: Method) {
    let Ok(uri) = http::Uri::try_from(target) else { return };
    let Ok(req) = Request::builder().method(method).uri(uri).body(Full::default()) else { return };
    let _ = send(w, req);
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    let w = world();
    match which % 5 {
        0 => get_range(w, rest, false),
        1 => get_range(w, rest, true),
        2 => patch(w, rest),
        3 => any_path(w, rest, Method::GET),
        _ => any_path(w, rest, Method::HEAD),
    }
});
