//! `/containers/{id}/exec` and `/exec/...`.

use berth_api::models::{ExecCreateRequest, ExecStartRequest, IdResponse};
use bytes::Bytes;

use super::stream::{detach_keys, serve_session};
use super::D;
use crate::error::ApiResult;
use crate::http::{self, Req, Resp};

pub async fn create(d: D, mut req: Req) -> ApiResult<Resp> {
    let body: ExecCreateRequest = req.json().await?;
    detach_keys(&body.detach_keys)?;
    let id = d.containers.exec_create(req.param(0), body)?;
    Ok(http::json(201, &IdResponse { id }))
}

pub async fn start(d: D, mut req: Req) -> ApiResult<Resp> {
    let body: ExecStartRequest = req.json().await?;
    let id = req.param(0).to_string();
    let ex = d.containers.exec_get(&id)?;
    let keys = detach_keys(&ex.config.detach_keys)?;
    match d.containers.exec_start(&id, body.detach, body.console_size).await {
        Ok(None) => Ok(http::empty(200)),
        Ok(Some(session)) => Ok(serve_session(&mut req, session, Some(keys), Vec::new())),
        // As Docker does: once the client asked for the stream, a failure to start is written
        // into it, and the exit code (126/127) is left for `GET /exec/{id}/json`.
        Err(e) if !body.detach && req.upgrade.is_some() => {
            let msg = Bytes::from(format!("{e}\r\n"));
            let tty = ex.config.tty;
            let chunk = if tty { msg } else { Bytes::from(berth_api::stream::frame(berth_api::stream::STDOUT, &msg)) };
            let (_tx, rx) = tokio::sync::mpsc::channel(1);
            let session = berth_container::attach::Session { tty: true, output: rx, input: None };
            Ok(serve_session(&mut req, session, None, vec![chunk]))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn resize(d: D, req: Req) -> ApiResult<Resp> {
    let h = req.q_i64("h")?.unwrap_or(0).clamp(0, u16::MAX as i64) as u16;
    let w = req.q_i64("w")?.unwrap_or(0).clamp(0, u16::MAX as i64) as u16;
    d.containers.exec_resize(req.param(0), h, w).await?;
    Ok(http::empty(200))
}

pub async fn inspect(d: D, req: Req) -> ApiResult<Resp> {
    Ok(http::json(200, &d.containers.exec_inspect(req.param(0))?))
}
