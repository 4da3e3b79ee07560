//! `/networks/...`. The network service is synchronous: every handler calls it through
//! [`blocking`].

use berth_api::models::{NetworkConnectRequest, NetworkCreateRequest, NetworkCreateResponse};
use serde_json::json;

use super::{D, blocking, filters};
use crate::error::{ApiError, ApiResult, IntoApiError};
use crate::http::{self, Req, Resp};

pub async fn list(d: D, req: Req) -> ApiResult<Resp> {
    let f = filters(&req)?;
    let n = d.networks.clone();
    let v = blocking(move || n.list(&f)).await?.map_err(|e| e.api())?;
    Ok(http::json(200, &v))
}

pub async fn inspect(d: D, req: Req) -> ApiResult<Resp> {
    let n = d.networks.clone();
    let name = req.param(0).to_string();
    let v = blocking(move || n.find(&name).map(|rec| n.view(&rec, true))).await?.map_err(|e| e.api())?;
    Ok(http::json(200, &v))
}

pub async fn create(d: D, mut req: Req) -> ApiResult<Resp> {
    let body: NetworkCreateRequest = req.json().await?;
    let n = d.networks.clone();
    let (id, warning) = blocking(move || n.create(body)).await?.map_err(|e| e.api())?;
    Ok(http::json(201, &NetworkCreateResponse { id, warning }))
}

pub async fn remove(d: D, req: Req) -> ApiResult<Resp> {
    let n = d.networks.clone();
    let name = req.param(0).to_string();
    blocking(move || n.remove(&name)).await?.map_err(|e| e.api())?;
    Ok(http::empty(204))
}

pub async fn connect(d: D, mut req: Req) -> ApiResult<Resp> {
    let body: NetworkConnectRequest = req.json().await?;
    if body.container.is_empty() {
        return Err(ApiError::bad_request("container is required"));
    }
    let n = d.networks.clone();
    let net = req.param(0).to_string();
    blocking(move || n.connect_container(&net, &body.container, body.endpoint_config.unwrap_or_default()))
        .await?
        .map_err(|e| e.api())?;
    Ok(http::empty(200))
}

pub async fn disconnect(d: D, mut req: Req) -> ApiResult<Resp> {
    let body: NetworkConnectRequest = req.json().await?;
    let n = d.networks.clone();
    let net = req.param(0).to_string();
    blocking(move || n.disconnect_container(&net, &body.container, body.force)).await?.map_err(|e| e.api())?;
    Ok(http::empty(200))
}

pub async fn prune(d: D, req: Req) -> ApiResult<Resp> {
    let f = filters(&req)?;
    let n = d.networks.clone();
    let gone = blocking(move || n.prune(&f)).await?.map_err(|e| e.api())?;
    Ok(http::json(
        200,
        &json!({ "NetworksDeleted": if gone.is_empty() { serde_json::Value::Null } else { json!(gone) } }),
    ))
}
