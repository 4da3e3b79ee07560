//! One module per resource. Handlers take the request context and return a response or a
//! [`crate::RegistryError`]; the router turns errors into the spec's envelope.

pub mod blobs;
pub mod catalog;
pub mod manifests;
pub mod referrers;
pub mod tags;
pub mod token;
pub mod uploads;

use crate::http_util::{self, Body};
use http::{Response, StatusCode};

/// An empty-bodied response with `Content-Length: 0` and the given headers.
pub(crate) fn bare<'a>(status: StatusCode, headers: impl IntoIterator<Item = (&'a str, String)>) -> Response<Body> {
    let mut b = Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(k, v);
    }
    b.header(http::header::CONTENT_LENGTH, "0").body(http_util::empty()).expect("valid headers")
}
