//! `POST /build?version=2`: a BuildKit build through the classic endpoint, as dockerd
//! runs it for clients that ask for it without buildx. With `remote=client-session` the
//! files come through the session named by `session`; otherwise the body is the context.
//! Progress goes out as `{"id":"moby.buildkit.trace","aux":"<base64 StatusResponse>"}`
//! messages and the result as `{"id":"moby.image.id","aux":{"ID":…}}`.

use std::sync::Arc;

use base64::Engine;
use berth_buildkit::grpc::{Code, Error};
use bytes::Bytes;
use serde_json::json;
use tokio::sync::mpsc;

use super::frontend::{self, Sources};
use super::progress::Progress;
use crate::Daemon;

/// Where a version 2 build's files come from.
pub enum Files {
    /// The client's session (`remote=client-session`).
    Session(String),
    /// The request body, already unpacked.
    Context(berth_builder::Context),
}

fn line(v: serde_json::Value) -> Bytes {
    let mut s = v.to_string();
    s.push_str("\r\n");
    Bytes::from(s)
}

/// Runs the build, streaming its messages into `out`.
pub async fn build(d: Arc<Daemon>, files: Files, mut opts: berth_builder::BuildOptions, out: mpsc::Sender<Bytes>) {
    let build_id = berth_api::ids::random_id();
    let progress = Arc::new(Progress::default());
    let (p2, out2) = (progress.clone(), out.clone());
    let relay = tokio::spawn(async move {
        let mut seen = 0;
        loop {
            let (batch, done) = p2.next(seen).await;
            seen += batch.len();
            for r in &batch {
                let aux = base64::engine::general_purpose::STANDARD.encode(prost::Message::encode_to_vec(r));
                // Keep building when the client goes away, as dockerd does.
                let _ = out2.send(line(json!({ "id": "moby.buildkit.trace", "aux": aux }))).await;
            }
            if done {
                break;
            }
        }
    });
    // The SSH agent relays live until the build ends.
    let mut ssh_proxies = Vec::new();
    let result = async {
        let ctx = match files {
            Files::Context(c) => c,
            Files::Session(id) => {
                let session =
                    d.buildkit.sessions.get(&id, super::SESSION_WAIT).await.ok_or_else(|| {
                        Error::status(Code::FailedPrecondition, format!("no active session for {id}"))
                    })?;
                let sources = Sources {
                    filename: opts.dockerfile.clone(),
                    dockerfile: "dockerfile".into(),
                    context: "context".into(),
                };
                let ctx = frontend::receive(&d, &session, &progress, &build_id, &sources).await?;
                if opts.registry_config.is_none() {
                    opts.registry_config = frontend::registry_config(&session, &ctx.dockerfile, &[]).await;
                }
                let ids = if opts.secrets.is_empty() || opts.ssh.is_empty() {
                    berth_builder::secrets::mount_ids(&ctx.dockerfile, &opts.build_args)
                } else {
                    Default::default()
                };
                if opts.secrets.is_empty() {
                    opts.secrets = frontend::secrets(&session, &ids.secrets).await;
                }
                if opts.ssh.is_empty() {
                    let (agents, proxies) = frontend::ssh_agents(&d, &session, &ids.ssh).await?;
                    opts.ssh = agents;
                    ssh_proxies = proxies;
                }
                ctx
            }
        };
        frontend::run(&d, ctx, opts, &progress, &build_id).await
    }
    .await;
    drop(ssh_proxies);
    progress.close();
    let _ = relay.await;
    let msg = match result {
        Ok(id) => json!({ "id": "moby.image.id", "aux": { "ID": id } }),
        Err(e) => json!({ "errorDetail": { "message": e.to_string() }, "error": e.to_string() }),
    };
    let _ = out.send(line(msg)).await;
}
