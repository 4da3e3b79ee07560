//! Requests and responses as the handlers see them.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::body::Body;
use crate::error::{ApiError, ApiResult};

pub type Resp = Response<Body>;

/// The most a request body kept in memory may hold. A container's whole configuration is
/// kilobytes; 16 MiB leaves room for any real one and bounds what one request can make the
/// daemon hold (a 200 MB create body once made it 1.15 GB).
pub const MAX_BODY: usize = 16 << 20;

/// The most values (numbers, strings, members, elements) a JSON body may hold. Each becomes
/// a `serde_json::Value` of 32 bytes or more before it is typed, so a 16 MiB body of
/// `[0,0,…]` was about 300 MB in memory; real requests hold hundreds of values, the largest
/// thousands.
const MAX_JSON_VALUES: usize = 1 << 18;

/// An upper bound on the values in JSON text: one more than its separators and openings
/// outside strings. Linear, and it reads no further than the bound.
fn too_many_values(b: &[u8], max: usize) -> bool {
    let (mut n, mut in_string, mut escaped) = (1usize, false, false);
    for &c in b {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            b'"' => in_string = true,
            b',' | b'[' | b'{' | b':' => {
                n += 1;
                if n > max {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

pub struct Req {
    pub method: Method,
    /// Path without the `/vX.Y` prefix.
    pub path: String,
    /// The API version the client asked for (`None` if unversioned).
    pub version: Option<(u32, u32)>,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    /// Path parameters captured by the router (a name or ID, an image name…).
    pub params: Vec<String>,
    pub body: Option<Incoming>,
    pub upgrade: Option<hyper::upgrade::OnUpgrade>,
}

impl Req {
    pub fn param(&self, i: usize) -> &str {
        self.params.get(i).map(String::as_str).unwrap_or("")
    }

    pub fn q(&self, key: &str) -> Option<&str> {
        self.query.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub fn q_all(&self, key: &str) -> Vec<&str> {
        self.query.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
    }

    /// Docker's boolean query values: `1`, `true`, `True` (and anything but `0`/`false`/empty).
    pub fn q_bool(&self, key: &str) -> bool {
        matches!(self.q(key), Some(v) if !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
    }

    pub fn q_i64(&self, key: &str) -> ApiResult<Option<i64>> {
        match self.q(key) {
            None | Some("") => Ok(None),
            Some(v) => {
                v.parse().map(Some).map_err(|_| ApiError::bad_request(format!("invalid value for {key}: {v:?}")))
            }
        }
    }

    /// A JSON-valued query parameter (`filters`, `buildargs`, `labels`, `cachefrom`…):
    /// `None` when absent, empty or `null` (Go clients send `null` for what they leave
    /// unset, and dockerd decodes it as the zero value).
    pub fn q_json<T: serde::de::DeserializeOwned>(&self, key: &str) -> ApiResult<Option<T>> {
        match self.q(key).map(str::trim) {
            None | Some("") | Some("null") => Ok(None),
            Some(s) => {
                serde_json::from_str(s).map(Some).map_err(|e| ApiError::bad_request(format!("invalid {key} JSON: {e}")))
            }
        }
    }

    pub fn header(&self, key: &str) -> Option<&str> {
        self.headers.get(key).and_then(|v| v.to_str().ok())
    }

    /// The API version as a comparable number (1.45 → 145); the newest berth speaks when
    /// unversioned, as dockerd's version middleware assumes.
    pub fn api(&self) -> u32 {
        self.version.map(|(a, b)| a * 100 + b).unwrap_or_else(|| {
            let (a, b) = berth_api::API_VERSION.split_once('.').unwrap_or(("1", "45"));
            a.parse::<u32>().unwrap_or(1) * 100 + b.parse::<u32>().unwrap_or(45)
        })
    }

    /// The whole body, for bodies kept in memory (JSON): at most [`MAX_BODY`]. What can be
    /// large (archives, images, build contexts) is read as a stream instead.
    pub async fn bytes(&mut self) -> ApiResult<Bytes> {
        match self.body.take() {
            None => Ok(Bytes::new()),
            Some(b) => http_body_util::Limited::new(b, MAX_BODY).collect().await.map(|c| c.to_bytes()).map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    ApiError::bad_request(format!("request body is larger than {} MiB", MAX_BODY >> 20))
                } else {
                    ApiError::bad_request(format!("reading request body: {e}"))
                }
            }),
        }
    }

    /// The JSON body (see [`Req::bytes`] for its bound); an empty body is the type's default (clients send none for defaults).
    pub async fn json<T: DeserializeOwned + Default>(&mut self) -> ApiResult<T> {
        let b = self.bytes().await?;
        if b.iter().all(|c| c.is_ascii_whitespace()) {
            return Ok(T::default());
        }
        if too_many_values(&b, MAX_JSON_VALUES) {
            return Err(ApiError::bad_request(format!("invalid JSON body: more than {MAX_JSON_VALUES} values")));
        }
        // Go clients send `null` for fields they leave unset, and Go decodes that as the zero
        // value; dropping null members gives the same result with serde's defaults.
        let mut v: serde_json::Value =
            serde_json::from_slice(&b).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
        strip_nulls(&mut v);
        serde_json::from_value(v).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
    }

    /// The body as a channel of chunks, read by a background task.
    ///
    /// Once the reader has gone (it refused the input: a hostile tar, a bad archive), the
    /// rest of the body is read and dropped, so the client can finish sending and read the
    /// answer instead of failing on a broken pipe. Nothing of it is kept.
    pub fn body_stream(&mut self) -> mpsc::Receiver<Bytes> {
        let (tx, rx) = mpsc::channel(16);
        if let Some(mut body) = self.body.take() {
            tokio::spawn(async move {
                let mut reading = true;
                while let Some(frame) = body.frame().await {
                    match frame {
                        Ok(f) => {
                            if let (Ok(data), true) = (f.into_data(), reading) {
                                reading = tx.send(data).await.is_ok();
                            }
                        }
                        Err(_) => break,
                    }
                }
            });
        }
        rx
    }
}

pub fn with_status(status: u16, body: Body) -> Resp {
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r
}

pub fn json<T: Serialize>(status: u16, v: &T) -> Resp {
    let mut body = serde_json::to_vec(v).unwrap_or_default();
    body.push(b'\n');
    let mut r = with_status(status, Body::full(body));
    r.headers_mut().insert("Content-Type", HeaderValue::from_static("application/json"));
    r
}

pub fn empty(status: u16) -> Resp {
    with_status(status, Body::Empty)
}

pub fn stream(content_type: &'static str, rx: mpsc::Receiver<Bytes>) -> Resp {
    let mut r = with_status(200, Body::Stream(rx));
    r.headers_mut().insert("Content-Type", HeaderValue::from_static(content_type));
    r
}

/// The response for an error. Every 5xx is logged with its cause (in the request's span: its
/// method and path); the rest at debug level.
pub fn error(e: &ApiError) -> Resp {
    if e.status() >= 500 {
        tracing::error!(status = e.status(), "{}", e.message);
    } else {
        tracing::debug!(status = e.status(), "{}", e.message);
    }
    json(e.status(), &berth_api::error::ErrorResponse { message: without_os_error_codes(&e.message) })
}

/// Drops Rust's ` (os error N)` from a message: dockerd's errors name the failure alone, and
/// clients match on its text.
pub fn without_os_error_codes(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(i) = rest.find(" (os error ") {
        let tail = &rest[i + " (os error ".len()..];
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && tail[digits..].starts_with(')') {
            out.push_str(&rest[..i]);
            rest = &tail[digits + 1..];
        } else {
            out.push_str(&rest[..i + 1]);
            rest = &rest[i + 1..];
        }
    }
    out.push_str(rest);
    out
}

/// Removes every object member whose value is `null`, at any depth.
fn strip_nulls(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::percent::{decode, decode_query};

    #[test]
    fn json_values_are_counted_outside_strings_only() {
        assert!(!too_many_values(br#"{"Env":["A=1","B=2"]}"#, 5));
        assert!(too_many_values(br#"{"Env":["A=1","B=2","C=3"]}"#, 5));
        // Separators inside strings, escaped quotes included, are text.
        assert!(!too_many_values(br#"{"Cmd":["a,b,c,[d],{e:f}","x\",y,z"]}"#, 5));
        assert!(too_many_values(&[b"[".as_slice(), &b"0,".repeat(1000), b"0]"].concat(), 1000));
        assert!(!too_many_values(&[b"[".as_slice(), &b"0,".repeat(1000), b"0]"].concat(), 1002));
    }

    #[test]
    fn os_error_codes_are_dropped() {
        assert_eq!(
            without_os_error_codes("open /x: No such file or directory (os error 2): more (os error 13)"),
            "open /x: No such file or directory: more"
        );
        assert_eq!(without_os_error_codes("a (os error x) b"), "a (os error x) b");
    }

    #[test]
    fn query_decoding() {
        assert_eq!(decode_query("a%20b+c"), "a b c");
        assert_eq!(decode_query("%7B%22a%22%3A1%7D"), "{\"a\":1}");
        assert_eq!(decode_query("100%"), "100%");
        assert_eq!(decode("localhost%3A5000/a+b"), "localhost:5000/a+b");
    }

    #[test]
    fn nulls_read_as_zero_values_like_go() {
        let mut v = serde_json::json!({"Healthcheck": {"Test": ["CMD", "true"], "Interval": null}, "Env": null, "List": [{"A": null}]});
        strip_nulls(&mut v);
        assert_eq!(v, serde_json::json!({"Healthcheck": {"Test": ["CMD", "true"]}, "List": [{}]}));
        let h: berth_api::models::HealthConfig = serde_json::from_value(v["Healthcheck"].clone()).unwrap();
        assert_eq!(h.interval, 0);
    }
}
