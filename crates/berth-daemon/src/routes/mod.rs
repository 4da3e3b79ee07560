//! Handlers, one module per Engine API resource.

pub mod build;
pub mod buildkit;
pub mod containers;
pub mod distribution;
pub mod exec;
pub mod images;
pub mod networks;
pub mod stream;
pub mod swarm;
pub mod system;
pub mod volumes;

use std::sync::Arc;

use crate::error::{ApiError, ApiResult};
use crate::http::Req;

/// Parses the `filters` query parameter (absent, empty and `null` are no filters).
pub fn filters(req: &Req) -> ApiResult<berth_api::filters::Filters> {
    berth_api::filters::Filters::parse(req.q("filters").unwrap_or("")).map_err(ApiError::bad_request)
}

/// Runs blocking work (filesystem, tar) off the async threads.
///
/// One rule for handlers: the container service is async and moves its own blocking work
/// (walks, deletions, freezer polling) off the workers, so its methods are awaited directly,
/// never wrapped. The image, volume, network and build-cache services are synchronous: a
/// handler calls what of theirs touches the disk (removal, pruning, sizing, a context diff)
/// through this helper; their in-memory lookups (resolve, list, tag) stay inline.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> ApiResult<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::internal(format!("task failed: {e}")))
}

pub type D = Arc<crate::Daemon>;
