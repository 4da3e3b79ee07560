//! The vocabulary shared by every part of berth that speaks the Docker Engine API.
//!
//! The daemon serves these types, the CLI reads them, and the library crates use the
//! [`ErrorKind`] set to say what went wrong without knowing about HTTP. Field names follow
//! the Engine API definition (PascalCase JSON) so a value can be handed to the docker CLI,
//! docker-py or any other client unchanged.

pub mod error;
pub mod filters;
pub mod glob;
pub mod ids;
pub mod models;
pub mod names;
pub mod paths;
pub mod pem;
pub mod percent;
pub mod progress;
pub mod stream;
pub mod time;
pub mod units;

pub use error::{ErrorKind, HasKind};

/// The newest Engine API version berth implements; advertised in `/_ping` and `/version`.
pub const API_VERSION: &str = "1.45";
/// The oldest versioned path (`/v1.24/...`) berth accepts.
pub const MIN_API_VERSION: &str = "1.24";
/// The engine version reported to clients.
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");
