//! The gRPC services on `/grpc`: BuildKit's `moby.buildkit.v1.Control` and the gateway
//! (`moby.buildkit.v1.frontend.LLBBridge`) calls buildx makes. Anything else is answered
//! `Unimplemented`, as a BuildKit without that method would.

use std::collections::HashMap;
use std::sync::Arc;

use berth_buildkit::grpc::{Call, Code, Error, Result};
use berth_buildkit::proto::*;

use super::{Job, lock};
use crate::Daemon;

type D = Arc<Daemon>;

const CONTROL: &str = "/moby.buildkit.v1.Control/";
const GATEWAY: &str = "/moby.buildkit.v1.frontend.LLBBridge/";
/// The gateway calls' metadata key naming their build.
const BUILD_ID: &str = "buildkit-controlapi-buildid";

/// The BuildKit release whose API berth follows (what `buildx ls` shows as its version).
const BUILDKIT_VERSION: &str = "v0.13.0";

/// Serves one call.
pub async fn handle(d: D, call: Call) {
    let path = call.path.clone();
    if let Some(m) = path.strip_prefix(CONTROL) {
        match m {
            "Solve" => return solve(d, call).await,
            "Status" => return status(d, call).await,
            "ListWorkers" => return call.reply(Ok(ListWorkersResponse { record: vec![worker(&d)] })).await,
            "Info" => return call.reply(Ok(InfoResponse { buildkit_version: Some(version()) })).await,
            "DiskUsage" => return disk_usage(d, call).await,
            "Prune" => return prune(d, call).await,
            _ => {}
        }
    }
    if let Some(m) = path.strip_prefix(GATEWAY) {
        match m {
            "Ping" => return call.reply(Ok(pong(&d))).await,
            "Solve" => return gateway_solve(d, call).await,
            "Return" => return gateway_return(d, call).await,
            _ => {}
        }
    }
    call.fail(Error::status(Code::Unimplemented, format!("unknown method {path}")));
}

fn version() -> BuildkitVersion {
    BuildkitVersion {
        package: "github.com/moby/buildkit".into(),
        version: BUILDKIT_VERSION.into(),
        revision: format!("berth-{}", berth_api::ENGINE_VERSION),
    }
}

/// The one worker: this daemon's builder. No `…worker.snapshotter` label: buildx reads it
/// as "the containerd image store" and would then expect OCI and docker exporters.
fn worker(d: &Daemon) -> WorkerRecord {
    let hostname = rustix::system::uname().nodename().to_string_lossy().into_owned();
    let labels = HashMap::from([
        ("org.mobyproject.buildkit.worker.executor".to_string(), "oci".to_string()),
        ("org.mobyproject.buildkit.worker.hostname".to_string(), hostname),
        ("org.mobyproject.buildkit.worker.network".to_string(), "host".to_string()),
    ]);
    WorkerRecord {
        id: d.id.clone(),
        labels,
        platforms: vec![Platform {
            architecture: berth_image::config::host_architecture().to_string(),
            os: "linux".into(),
            variant: String::new(),
        }],
        gc_policy: vec![GcPolicy {
            all: true,
            keep_bytes: d.builder.config.cache_max_bytes as i64,
            ..Default::default()
        }],
        buildkit_version: Some(version()),
    }
}

/// The gateway capabilities berth implements (the rest are assumed absent by clients).
fn pong(d: &Daemon) -> PongResponse {
    let caps = ["solve.base", "solve.inlinereturn", "readfile", "return", "proto.refarray", "frontend.caps"];
    PongResponse {
        frontend_api_caps: caps.iter().map(|c| ApiCap { id: c.to_string(), enabled: true }).collect(),
        llb_caps: Vec::new(),
        workers: vec![worker(d)],
    }
}

async fn solve(d: D, mut call: Call) {
    let req: SolveRequest = match call.request().await {
        Ok(r) => r,
        Err(e) => return call.fail(e),
    };
    let job = d.buildkit.job(&req.r#ref);
    job.solving.send_replace(true);
    let exports = req.cache.as_ref().map(|c| c.exports.as_slice()).unwrap_or_default();
    if let Some(e) = exports.iter().find(|e| e.r#type != "inline") {
        let e = Error::status(
            Code::Unimplemented,
            format!("cache export type {:?} is not supported by berth: use --cache-to type=inline", e.r#type),
        );
        job.progress.close();
        d.buildkit.forget_later(&job);
        return call.reply::<SolveResponse>(Err(e)).await;
    }
    job.inline_cache.store(!exports.is_empty(), std::sync::atomic::Ordering::SeqCst);
    job.session.send_replace(req.session.clone());
    let r = run_solve(&d, &job, req).await;
    job.progress.close();
    d.buildkit.forget_later(&job);
    call.reply(r).await
}

async fn run_solve(d: &D, job: &Arc<Job>, req: SolveRequest) -> Result<SolveResponse> {
    let image = match req.frontend.as_str() {
        "dockerfile.v0" | "dockerfile" => Some(super::frontend::dockerfile(d, job, &req.frontend_attrs).await?),
        "" => {
            let rx = lock(&job.outcome).take();
            let Some(rx) = rx else {
                return Err(Error::status(Code::FailedPrecondition, format!("build {} is already solving", job.id)));
            };
            let session = match job.session_id().await {
                Some(s) => d.buildkit.sessions.get(&s, super::SESSION_WAIT).await,
                None => None,
            };
            let gone = async {
                match &session {
                    Some(s) => s.closed().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = rx => r.map_err(|_| Error::status(Code::Internal, "the build ended without a result"))?
                    .map_err(|m| Error::status(Code::Unknown, m))?,
                _ = gone => return Err(Error::status(Code::Cancelled, "the client's session ended")),
            }
        }
        f => {
            return Err(Error::status(
                Code::Unimplemented,
                format!(
                    "frontend {f:?} is not supported: berth builds Dockerfiles with its own builder (dockerfile.v0)"
                ),
            ));
        }
    };
    let mut exporters = req.exporters;
    if exporters.is_empty() && !req.exporter_deprecated.is_empty() {
        exporters.push(Exporter { r#type: req.exporter_deprecated, attrs: req.exporter_attrs_deprecated });
    }
    let mut response = HashMap::new();
    if let Some(id) = &image {
        response.insert("containerimage.config.digest".to_string(), id.clone());
        response.insert("containerimage.digest".to_string(), id.clone());
    }
    for (i, e) in exporters.iter().enumerate() {
        super::export::run(d, job, i, e, image.as_deref(), &mut response).await?;
    }
    Ok(SolveResponse { exporter_response: response })
}

async fn status(d: D, mut call: Call) {
    let req: StatusRequest = match call.request().await {
        Ok(r) => r,
        Err(e) => return call.fail(e),
    };
    let job = d.buildkit.job(&req.r#ref);
    let Ok(mut out) = call.stream() else { return };
    let mut seen = 0;
    loop {
        let (batch, done) = job.progress.next(seen).await;
        seen += batch.len();
        for r in &batch {
            if out.send(r).await.is_err() {
                return;
            }
        }
        if done {
            break;
        }
    }
    out.finish(Ok(()));
}

async fn gateway_solve(d: D, mut call: Call) {
    let build = call.meta(BUILD_ID).unwrap_or_default().to_string();
    let req: GatewaySolveRequest = match call.request().await {
        Ok(r) => r,
        Err(e) => return call.fail(e),
    };
    if build.is_empty() {
        return call.fail(Error::status(Code::InvalidArgument, "no build ID in the call's metadata"));
    }
    if let Some(r) = req.frontend_opt.get("requestid").filter(|r| r.starts_with("frontend.")) {
        return call.fail(Error::status(Code::Unimplemented, format!("unsupported request {r}")));
    }
    match req.frontend.as_str() {
        "dockerfile.v0" | "dockerfile" => {}
        "" if req.definition.is_some() => {
            return call.fail(Error::status(
                Code::Unimplemented,
                "LLB definitions are not supported: berth builds Dockerfiles (frontend dockerfile.v0)",
            ));
        }
        f => {
            return call.fail(Error::status(Code::Unimplemented, format!("frontend {f:?} is not supported by berth")));
        }
    }
    let job = d.buildkit.job(&build);
    let mut opts = req.frontend_opt;
    if !req.cache_imports.is_empty() && !opts.contains_key("cache-imports") {
        opts.insert("cache-imports".into(), super::frontend::cache_imports_json(&req.cache_imports));
    }
    let r = super::frontend::dockerfile(&d, &job, &opts).await;
    call.reply(r.map(|image| GatewaySolveResponse { r#ref: job.remember(&image) })).await
}

async fn gateway_return(d: D, mut call: Call) {
    let build = call.meta(BUILD_ID).unwrap_or_default().to_string();
    let req: ReturnRequest = match call.request().await {
        Ok(r) => r,
        Err(e) => return call.fail(e),
    };
    let job = d.buildkit.job(&build);
    let outcome = match (req.error.filter(|e| e.code != 0), req.result) {
        (Some(e), _) => Err(e.message),
        (None, Some(r)) => {
            let id = r.r#ref.map(|r| r.id).filter(|i| !i.is_empty()).unwrap_or(r.ref_deprecated);
            if id.is_empty() {
                Ok(None)
            } else {
                job.image_of(&id).map(Some).ok_or_else(|| format!("unknown result reference {id}"))
            }
        }
        (None, None) => Ok(None),
    };
    job.finish_gateway(outcome);
    call.reply(Ok(Empty {})).await
}

async fn disk_usage(d: D, call: Call) {
    let d2 = d.clone();
    let usage = tokio::task::spawn_blocking(move || d2.builder.cache.usage(&d2.images)).await;
    let records = match usage {
        Ok(Ok(u)) => u.into_iter().map(record).collect(),
        Ok(Err(e)) => return call.fail(Error::status(Code::Internal, e.to_string())),
        Err(e) => return call.fail(Error::status(Code::Internal, e.to_string())),
    };
    call.reply(Ok(DiskUsageResponse { record: records })).await
}

fn timestamp_of_nanos(n: i64) -> Timestamp {
    Timestamp { seconds: n.div_euclid(1_000_000_000), nanos: n.rem_euclid(1_000_000_000) as i32 }
}

fn record(u: berth_builder::cache::CacheUsage) -> UsageRecord {
    let created = berth_api::time::parse_rfc3339(&u.record.created).map(|n| timestamp_of_nanos(n as i64));
    UsageRecord {
        id: u.key.trim_start_matches("sha256:").get(..25).unwrap_or_default().to_string(),
        mutable: false,
        in_use: u.in_use,
        size: u.size,
        created_at: created,
        last_used_at: (u.record.last_used > 0).then(|| timestamp_of_nanos(u.record.last_used)),
        usage_count: u.record.usage_count as i64,
        description: u.description,
        record_type: "regular".into(),
        shared: false,
        parents: if u.parent.is_empty() { Vec::new() } else { vec![u.parent] },
    }
}

async fn prune(d: D, mut call: Call) {
    let req: PruneRequest = match call.request().await {
        Ok(r) => r,
        Err(e) => return call.fail(e),
    };
    let d2 = d.clone();
    let r = tokio::task::spawn_blocking(move || {
        let before: HashMap<String, i64> =
            d2.builder.cache.usage(&d2.images)?.into_iter().map(|u| (u.record.image.clone(), u.size)).collect();
        let users = |id: &str| d2.containers.users_of_image(id);
        let (deleted, _) = d2.builder.prune(req.all, &users)?;
        Ok::<_, berth_builder::BuildError>((deleted, before))
    })
    .await;
    let (deleted, before) = match r {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return call.fail(Error::status(Code::Internal, e.to_string())),
        Err(e) => return call.fail(Error::status(Code::Internal, e.to_string())),
    };
    let Ok(mut out) = call.stream() else { return };
    for id in &deleted {
        d.events.emit("image", "delete", id, Default::default());
        let r = UsageRecord {
            id: id.trim_start_matches("sha256:").get(..25).unwrap_or_default().to_string(),
            size: before.get(id).copied().unwrap_or_default(),
            record_type: "regular".into(),
            ..Default::default()
        };
        if out.send(&r).await.is_err() {
            return;
        }
    }
    out.finish(Ok(()));
}
