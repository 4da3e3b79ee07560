//! `POST /session` and `POST /grpc`: BuildKit's API for buildx's "docker" driver. Both are
//! HTTP/1.1 requests with `Upgrade: h2c`, answered `101 Switching Protocols`; the
//! connection then carries HTTP/2. On `/grpc` the daemon serves BuildKit's control API
//! (`crate::buildkit`); on `/session` it becomes the client of the services the build
//! client offers (`berth_buildkit::session`).

use hyper_util::rt::TokioIo;

use super::D;
use crate::error::{ApiError, ApiResult};
use crate::http::{self, Req, Resp};

fn switching_protocols() -> Resp {
    let mut r = http::empty(101);
    let h = r.headers_mut();
    h.insert("Connection", ::http::HeaderValue::from_static("Upgrade"));
    h.insert("Upgrade", ::http::HeaderValue::from_static("h2c"));
    r
}

fn upgrade(req: &mut Req) -> ApiResult<hyper::upgrade::OnUpgrade> {
    let proto = req.header("Upgrade").unwrap_or_default();
    if !proto.eq_ignore_ascii_case("h2c") {
        return Err(ApiError::bad_request(format!("protocol {proto:?} not supported: expected Upgrade: h2c")));
    }
    req.upgrade.take().ok_or_else(|| ApiError::bad_request("no upgrade proto in request"))
}

/// `POST /session`.
pub async fn session(d: D, mut req: Req) -> ApiResult<Resp> {
    let on = upgrade(&mut req)?;
    let headers = req.headers.clone();
    tokio::spawn(async move {
        let Ok(up) = on.await else { return };
        if let Err(e) = d.buildkit.sessions.attach(TokioIo::new(up), &headers).await {
            tracing::error!("build session failed: {e}");
        }
    });
    Ok(switching_protocols())
}

/// `POST /grpc`.
pub async fn grpc(d: D, mut req: Req) -> ApiResult<Resp> {
    let on = upgrade(&mut req)?;
    tokio::spawn(async move {
        let Ok(up) = on.await else { return };
        let served =
            berth_buildkit::grpc::serve(TokioIo::new(up), move |call| crate::buildkit::handle(d.clone(), call));
        if let Err(e) = served.await {
            tracing::warn!("BuildKit API connection ended: {e}");
        }
    });
    Ok(switching_protocols())
}
