//! `/volumes/...`.

use berth_api::models::{VolumeCreateRequest, VolumeListResponse};
use serde_json::json;

use super::{D, blocking, filters};
use crate::error::ApiResult;
use crate::http::{self, Req, Resp};

pub async fn list(d: D, req: Req) -> ApiResult<Resp> {
    let f = filters(&req)?;
    let volumes = d.volumes.list(&f)?;
    Ok(http::json(200, &VolumeListResponse { volumes, warnings: Vec::new() }))
}

pub async fn create(d: D, mut req: Req) -> ApiResult<Resp> {
    let body: VolumeCreateRequest = req.json().await?;
    let named = !body.name.is_empty();
    let v = d.volumes.clone();
    let vol = blocking(move || v.create(body)).await??;
    if named || vol.labels.contains_key(berth_volume::ANONYMOUS_LABEL) {
        d.events.emit("volume", "create", &vol.name, [("driver".to_string(), vol.driver.clone())].into());
    }
    Ok(http::json(201, &vol))
}

pub async fn inspect(d: D, req: Req) -> ApiResult<Resp> {
    Ok(http::json(200, &d.volumes.inspect(req.param(0))?))
}

pub async fn remove(d: D, req: Req) -> ApiResult<Resp> {
    let name = req.param(0).to_string();
    let force = req.q_bool("force");
    let v = d.volumes.clone();
    let n = name.clone();
    let existed = v.exists(&name);
    blocking(move || v.remove(&n, force)).await??;
    if existed {
        d.events.emit("volume", "destroy", &name, [("driver".to_string(), "local".to_string())].into());
    }
    Ok(http::empty(204))
}

pub async fn prune(d: D, req: Req) -> ApiResult<Resp> {
    let mut f = filters(&req)?;
    // API 1.42 made prune take only anonymous volumes; older clients keep the old meaning
    // (every unused local volume), as dockerd does by adding `all=true` for them.
    if req.api() < 142 {
        f.add("all", "true");
    }
    let v = d.volumes.clone();
    let (gone, freed) = blocking(move || v.prune(&f)).await??;
    for name in &gone {
        d.events.emit("volume", "destroy", name, [("driver".to_string(), "local".to_string())].into());
    }
    d.events.emit("volume", "prune", "", [("reclaimed".to_string(), freed.to_string())].into());
    Ok(http::json(
        200,
        &json!({ "VolumesDeleted": if gone.is_empty() { serde_json::Value::Null } else { json!(gone) }, "SpaceReclaimed": freed }),
    ))
}
