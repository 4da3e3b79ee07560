//! The protobuf messages berth exchanges with BuildKit's clients, declared by hand with only
//! the fields berth reads or writes. Field numbers are BuildKit's (moby/buildkit
//! `api/services/control/control.proto`, `api/types/worker.proto`,
//! `frontend/gateway/pb/gateway.proto`, `session/filesync/filesync.proto`) and fsutil's
//! (`types/wire.proto`, `types/stat.proto`): a field left out here is skipped when decoding
//! and never sent, which protobuf allows in both directions.

use std::collections::HashMap;

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Timestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl Timestamp {
    pub fn now() -> Timestamp {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Timestamp { seconds: d.as_secs() as i64, nanos: d.subsec_nanos() as i32 }
    }
}

// ---- moby.buildkit.v1 (Control) ----

#[derive(Clone, PartialEq, prost::Message)]
pub struct SolveRequest {
    #[prost(string, tag = "1")]
    pub r#ref: String,
    /// `ExporterDeprecated`: the only exporter, from clients before `Exporters`.
    #[prost(string, tag = "3")]
    pub exporter_deprecated: String,
    #[prost(map = "string, string", tag = "4")]
    pub exporter_attrs_deprecated: HashMap<String, String>,
    #[prost(string, tag = "5")]
    pub session: String,
    #[prost(string, tag = "6")]
    pub frontend: String,
    #[prost(map = "string, string", tag = "7")]
    pub frontend_attrs: HashMap<String, String>,
    /// `--cache-to` and `--cache-from`.
    #[prost(message, optional, tag = "8")]
    pub cache: Option<CacheOptions>,
    #[prost(bool, tag = "11")]
    pub internal: bool,
    #[prost(message, repeated, tag = "13")]
    pub exporters: Vec<Exporter>,
}

/// `CacheOptions`: where a solve's cache goes and comes from.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CacheOptions {
    #[prost(message, repeated, tag = "4")]
    pub exports: Vec<CacheOptionsEntry>,
    #[prost(message, repeated, tag = "5")]
    pub imports: Vec<CacheOptionsEntry>,
}

/// One `--cache-to`/`--cache-from`: `type=…` and the rest of its `key=value` pairs.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CacheOptionsEntry {
    #[prost(string, tag = "1")]
    pub r#type: String,
    #[prost(map = "string, string", tag = "2")]
    pub attrs: HashMap<String, String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Exporter {
    #[prost(string, tag = "1")]
    pub r#type: String,
    #[prost(map = "string, string", tag = "2")]
    pub attrs: HashMap<String, String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SolveResponse {
    #[prost(map = "string, string", tag = "1")]
    pub exporter_response: HashMap<String, String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StatusRequest {
    #[prost(string, tag = "1")]
    pub r#ref: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StatusResponse {
    #[prost(message, repeated, tag = "1")]
    pub vertexes: Vec<Vertex>,
    #[prost(message, repeated, tag = "2")]
    pub statuses: Vec<VertexStatus>,
    #[prost(message, repeated, tag = "3")]
    pub logs: Vec<VertexLog>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Vertex {
    #[prost(string, tag = "1")]
    pub digest: String,
    #[prost(string, repeated, tag = "2")]
    pub inputs: Vec<String>,
    #[prost(string, tag = "3")]
    pub name: String,
    #[prost(bool, tag = "4")]
    pub cached: bool,
    #[prost(message, optional, tag = "5")]
    pub started: Option<Timestamp>,
    #[prost(message, optional, tag = "6")]
    pub completed: Option<Timestamp>,
    #[prost(string, tag = "7")]
    pub error: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct VertexStatus {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub vertex: String,
    #[prost(string, tag = "3")]
    pub name: String,
    #[prost(int64, tag = "4")]
    pub current: i64,
    #[prost(int64, tag = "5")]
    pub total: i64,
    #[prost(message, optional, tag = "6")]
    pub timestamp: Option<Timestamp>,
    #[prost(message, optional, tag = "7")]
    pub started: Option<Timestamp>,
    #[prost(message, optional, tag = "8")]
    pub completed: Option<Timestamp>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct VertexLog {
    #[prost(string, tag = "1")]
    pub vertex: String,
    #[prost(message, optional, tag = "2")]
    pub timestamp: Option<Timestamp>,
    /// 1 stdout, 2 stderr.
    #[prost(int64, tag = "3")]
    pub stream: i64,
    #[prost(bytes = "vec", tag = "4")]
    pub msg: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListWorkersResponse {
    #[prost(message, repeated, tag = "1")]
    pub record: Vec<WorkerRecord>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct WorkerRecord {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(map = "string, string", tag = "2")]
    pub labels: HashMap<String, String>,
    #[prost(message, repeated, tag = "3")]
    pub platforms: Vec<Platform>,
    #[prost(message, repeated, tag = "4")]
    pub gc_policy: Vec<GcPolicy>,
    #[prost(message, optional, tag = "5")]
    pub buildkit_version: Option<BuildkitVersion>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Platform {
    #[prost(string, tag = "1")]
    pub architecture: String,
    #[prost(string, tag = "2")]
    pub os: String,
    #[prost(string, tag = "3")]
    pub variant: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct GcPolicy {
    #[prost(bool, tag = "1")]
    pub all: bool,
    #[prost(int64, tag = "2")]
    pub keep_duration: i64,
    /// `keepBytes` in older BuildKit, `reservedSpace` since v0.17 (same field).
    #[prost(int64, tag = "3")]
    pub keep_bytes: i64,
    #[prost(string, repeated, tag = "4")]
    pub filters: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct BuildkitVersion {
    #[prost(string, tag = "1")]
    pub package: String,
    #[prost(string, tag = "2")]
    pub version: String,
    #[prost(string, tag = "3")]
    pub revision: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct InfoResponse {
    #[prost(message, optional, tag = "1")]
    pub buildkit_version: Option<BuildkitVersion>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct DiskUsageRequest {
    #[prost(string, repeated, tag = "1")]
    pub filter: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct DiskUsageResponse {
    #[prost(message, repeated, tag = "1")]
    pub record: Vec<UsageRecord>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct UsageRecord {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(bool, tag = "2")]
    pub mutable: bool,
    #[prost(bool, tag = "3")]
    pub in_use: bool,
    #[prost(int64, tag = "4")]
    pub size: i64,
    #[prost(message, optional, tag = "6")]
    pub created_at: Option<Timestamp>,
    #[prost(message, optional, tag = "7")]
    pub last_used_at: Option<Timestamp>,
    #[prost(int64, tag = "8")]
    pub usage_count: i64,
    #[prost(string, tag = "9")]
    pub description: String,
    #[prost(string, tag = "10")]
    pub record_type: String,
    #[prost(bool, tag = "11")]
    pub shared: bool,
    #[prost(string, repeated, tag = "12")]
    pub parents: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PruneRequest {
    #[prost(string, repeated, tag = "1")]
    pub filter: Vec<String>,
    #[prost(bool, tag = "2")]
    pub all: bool,
    #[prost(int64, tag = "3")]
    pub keep_duration: i64,
    #[prost(int64, tag = "4")]
    pub keep_bytes: i64,
}

/// An empty message (requests and answers without fields).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Empty {}

// ---- moby.buildkit.v1.frontend (LLBBridge, the gateway) ----

#[derive(Clone, PartialEq, prost::Message)]
pub struct PongResponse {
    #[prost(message, repeated, tag = "1")]
    pub frontend_api_caps: Vec<ApiCap>,
    #[prost(message, repeated, tag = "2")]
    pub llb_caps: Vec<ApiCap>,
    #[prost(message, repeated, tag = "3")]
    pub workers: Vec<WorkerRecord>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ApiCap {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(bool, tag = "2")]
    pub enabled: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct GatewaySolveRequest {
    /// Present when the client sends LLB of its own (berth refuses it).
    #[prost(bytes = "vec", optional, tag = "1")]
    pub definition: Option<Vec<u8>>,
    #[prost(string, tag = "2")]
    pub frontend: String,
    #[prost(map = "string, string", tag = "3")]
    pub frontend_opt: HashMap<String, String>,
    #[prost(bool, tag = "10")]
    pub r#final: bool,
    #[prost(message, repeated, tag = "12")]
    pub cache_imports: Vec<CacheOptionsEntry>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct GatewaySolveResponse {
    #[prost(string, tag = "1")]
    pub r#ref: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct GatewayResult {
    #[prost(string, tag = "1")]
    pub ref_deprecated: String,
    #[prost(message, optional, tag = "3")]
    pub r#ref: Option<GatewayRef>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct GatewayRef {
    #[prost(string, tag = "1")]
    pub id: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ReturnRequest {
    #[prost(message, optional, tag = "1")]
    pub result: Option<GatewayResult>,
    #[prost(message, optional, tag = "2")]
    pub error: Option<RpcStatus>,
}

/// `google.rpc.Status` (details left out).
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

// ---- filesync and fsutil ----

/// `moby.filesync.v1.BytesMessage` (and `moby.buildkit.v1.BytesMessage`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct BytesMessage {
    #[prost(bytes = "vec", tag = "1")]
    pub data: Vec<u8>,
}

/// `fsutil.types.Packet`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Packet {
    #[prost(enumeration = "PacketType", tag = "1")]
    pub r#type: i32,
    #[prost(message, optional, tag = "2")]
    pub stat: Option<Stat>,
    #[prost(uint32, tag = "3")]
    pub id: u32,
    #[prost(bytes = "vec", tag = "4")]
    pub data: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
pub enum PacketType {
    Stat = 0,
    Req = 1,
    Data = 2,
    Fin = 3,
    Err = 4,
}

/// `fsutil.types.Stat`. `mode` is Go's `os.FileMode`, not a unix mode: the type is in the
/// high bits (see [`crate::fsutil::mode`]).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Stat {
    #[prost(string, tag = "1")]
    pub path: String,
    #[prost(uint32, tag = "2")]
    pub mode: u32,
    #[prost(uint32, tag = "3")]
    pub uid: u32,
    #[prost(uint32, tag = "4")]
    pub gid: u32,
    #[prost(int64, tag = "5")]
    pub size: i64,
    /// Nanoseconds since the epoch.
    #[prost(int64, tag = "6")]
    pub mod_time: i64,
    #[prost(string, tag = "7")]
    pub linkname: String,
    #[prost(int64, tag = "8")]
    pub devmajor: i64,
    #[prost(int64, tag = "9")]
    pub devminor: i64,
    #[prost(map = "string, bytes", tag = "10")]
    pub xattrs: HashMap<String, Vec<u8>>,
}

// ---- session services: auth and secrets ----

/// `moby.filesync.v1.CredentialsRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CredentialsRequest {
    #[prost(string, tag = "1")]
    pub host: String,
}

/// `moby.filesync.v1.CredentialsResponse`: an empty username with a secret is an identity
/// token.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CredentialsResponse {
    #[prost(string, tag = "1")]
    pub username: String,
    #[prost(string, tag = "2")]
    pub secret: String,
}

/// `moby.sshforward.v1.CheckAgentRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CheckAgentRequest {
    #[prost(string, tag = "1")]
    pub id: String,
}

/// `moby.sshforward.v1.CheckAgentResponse` (empty).
#[derive(Clone, PartialEq, prost::Message)]
pub struct CheckAgentResponse {}

/// `moby.buildkit.secrets.v1.GetSecretRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetSecretRequest {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(map = "string, string", tag = "2")]
    pub annotations: HashMap<String, String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct GetSecretResponse {
    #[prost(bytes = "vec", tag = "1")]
    pub data: Vec<u8>,
}
