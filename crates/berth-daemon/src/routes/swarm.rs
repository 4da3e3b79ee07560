//! Swarm mode is not something berth does. A node outside a swarm answers Docker's way, so
//! clients that probe or clean up (`docker info`, `swarm leave --force`, docker-py's test
//! teardown) behave as they do against a standalone dockerd.

use berth_api::ErrorKind;

use super::D;
use crate::error::{ApiError, ApiResult};
use crate::http::{Req, Resp};

const NOT_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";

/// `GET /swarm`, `/nodes`, `/services`, `/tasks`, `/secrets`, `/configs`…
pub async fn not_a_manager(_d: D, _req: Req) -> ApiResult<Resp> {
    Err(ApiError::new(ErrorKind::Unavailable, NOT_MANAGER))
}

/// `POST /swarm/leave`.
pub async fn leave(_d: D, _req: Req) -> ApiResult<Resp> {
    Err(ApiError::new(ErrorKind::Unavailable, "This node is not part of a swarm"))
}

/// `POST /swarm/init` and `/swarm/join`.
pub async fn init(_d: D, _req: Req) -> ApiResult<Resp> {
    Err(ApiError::new(
        ErrorKind::NotImplemented,
        "berth does not do swarm mode; for containers across hosts use overlay networks with a cluster store (cluster-store in daemon.json)",
    ))
}
