//! BuildKit's wire protocols, as berth's daemon speaks them to buildx, compose and other
//! BuildKit clients (the "docker" driver: the daemon is the BuildKit).
//!
//! # Shape
//!
//! ```text
//!  client ──POST /grpc (Upgrade: h2c)────► grpc::serve ─► the daemon's Control and
//!                                                          LLBBridge handlers
//!  client ──POST /session (Upgrade: h2c)─► session::Sessions::attach: the daemon is the
//!                                          gRPC *client* of the services the client lists
//!                                          in X-Docker-Expose-Session-Grpc-Method
//!                                          (FileSync, FileSend, Auth, Secrets, SSH, …)
//! ```
//!
//! # Contract
//!
//! - **Messages are declared by hand** ([`proto`]) with BuildKit's field numbers and only
//!   the fields berth uses; unknown fields from newer clients are skipped, as protobuf does.
//! - **A session is found by its ID** (the `Session` field of a solve); a solve that names
//!   one not yet attached waits for it for a while, since the client opens both at once.
//!   A session ends when its connection does; calls on it then fail.
//! - **Files move with fsutil's packet protocol** ([`fsutil`]): a local source is received
//!   into a directory with every path confined to it; an export is sent from a list of
//!   entries in the order fsutil's receiver expects.
//! - Nothing here knows about images or the builder: the daemon maps solves to its builder.

pub mod fsutil;
pub mod grpc;
pub mod proto;
pub mod session;
pub mod ssh;
