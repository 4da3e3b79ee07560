//! `/containers/{id}/exec` and `/exec/...`.

use berth_api::models::{ExecCreateRequest, ExecStartRequest, IdResponse};
use bytes::Bytes;

use super::D;
use super::stream::{detach_keys, pump_upgraded, serve_session, upgrade_response};
use crate::error::{ApiError, ApiResult};
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
    if body.detach {
        d.containers.exec_start(&id, true, body.tty, body.console_size).await?;
        return Ok(http::empty(200));
    }
    let Some(upgrade) = req.upgrade.take() else {
        let session = d
            .containers
            .exec_start(&id, false, body.tty, body.console_size)
            .await?
            .ok_or_else(|| ApiError::internal("exec produced no session"))?;
        return Ok(serve_session(&mut req, session, Some(keys), None));
    };
    // As Docker does: answer 101 first and start the process on the taken-over connection,
    // so no output can arrive mixed into the response headers. A failure to start is written
    // into the stream; its exit code (126) is left for `GET /exec/{id}/json`.
    tokio::spawn(async move {
        let Ok(up) = upgrade.await else { return };
        match d.containers.exec_start(&id, false, body.tty, body.console_size).await {
            Ok(Some(session)) => pump_upgraded(up, session, Some(keys), None).await,
            Ok(None) => {}
            Err(e) => {
                let msg = Bytes::from(format!("{e}\r\n"));
                let chunk =
                    if body.tty { msg } else { Bytes::from(berth_api::stream::frame(berth_api::stream::STDOUT, &msg)) };
                // A session whose output ends at once: just the message, then the close.
                let (tx, rx) = tokio::sync::mpsc::channel(1);
                drop(tx);
                let session = berth_container::attach::Session { tty: true, output: rx, input: None };
                let (ptx, prx) = tokio::sync::mpsc::channel(1);
                let _ = ptx.try_send(chunk);
                drop(ptx);
                pump_upgraded(up, session, None, Some(prx)).await;
            }
        }
    });
    Ok(upgrade_response(body.tty))
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
