//! Errors of the registry, and the one place where they become HTTP responses.
//!
//! Every failure a client can see is an [`ErrorCode`] from the OCI Distribution Spec (plus
//! the few Docker's registry added, such as `UNSUPPORTED`), rendered in the spec's envelope:
//!
//! ```json
//! {"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry","detail":"sha256:…"}]}
//! ```
//!
//! [`ErrorCode::status`] is the only mapping from codes to statuses. Two responses need more
//! than a code: `401` carries a `WWW-Authenticate` challenge ([`RegistryError::Unauthorized`]),
//! and `416` carries the range the server does have ([`RegistryError::RangeNotSatisfiable`]).
//! Anything else (I/O failures, bugs) is a `500` whose body says nothing about the host.

use berth_api::{ErrorKind, HasKind};
use http::StatusCode;
use serde_json::Value;

/// The spec's error codes. The string form (`BLOB_UNKNOWN`) is what goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    TagInvalid,
    Unauthorized,
    Denied,
    Unsupported,
    TooManyRequests,
    /// An upstream (the pull-through cache's remote) failed.
    Unavailable,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BlobUnknown => "BLOB_UNKNOWN",
            ErrorCode::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            ErrorCode::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            ErrorCode::DigestInvalid => "DIGEST_INVALID",
            ErrorCode::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            ErrorCode::ManifestInvalid => "MANIFEST_INVALID",
            ErrorCode::ManifestUnknown => "MANIFEST_UNKNOWN",
            ErrorCode::NameInvalid => "NAME_INVALID",
            ErrorCode::NameUnknown => "NAME_UNKNOWN",
            ErrorCode::SizeInvalid => "SIZE_INVALID",
            ErrorCode::TagInvalid => "TAG_INVALID",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::Denied => "DENIED",
            ErrorCode::Unsupported => "UNSUPPORTED",
            ErrorCode::TooManyRequests => "TOOMANYREQUESTS",
            ErrorCode::Unavailable => "UNAVAILABLE",
        }
    }

    /// The HTTP status of each code, as the spec's table gives it. The only such mapping.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::BlobUnknown
            | ErrorCode::BlobUploadUnknown
            | ErrorCode::ManifestUnknown
            | ErrorCode::NameUnknown => StatusCode::NOT_FOUND,
            ErrorCode::BlobUploadInvalid
            | ErrorCode::DigestInvalid
            | ErrorCode::ManifestBlobUnknown
            | ErrorCode::ManifestInvalid
            | ErrorCode::NameInvalid
            | ErrorCode::SizeInvalid
            | ErrorCode::TagInvalid => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Denied => StatusCode::FORBIDDEN,
            ErrorCode::Unsupported => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A spec error: code, human message, optional structured detail.
    #[error("{code}: {message}")]
    Api { code: ErrorCode, message: String, detail: Option<Value> },
    /// Credentials missing, wrong, or not enough for the request. `challenge` is the full
    /// `WWW-Authenticate` value that tells the client how to get better ones.
    #[error("UNAUTHORIZED: {message}")]
    Unauthorized { message: String, challenge: String },
    /// A `Range` or `Content-Range` that does not fit what the server has. `content_range`
    /// (for blob reads, `bytes */<size>`) and `range` (for uploads, `0-<end>`) are echoed.
    #[error("requested range not satisfiable")]
    RangeNotSatisfiable { content_range: Option<String>, range: Option<String>, location: Option<String> },
    /// The configuration handed to [`crate::Registry::open`] cannot work.
    #[error("invalid registry configuration: {0}")]
    Config(String),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

impl RegistryError {
    pub fn api(code: ErrorCode, message: impl Into<String>) -> Self {
        RegistryError::Api { code, message: message.into(), detail: None }
    }

    pub fn with_detail(code: ErrorCode, message: impl Into<String>, detail: impl Into<Value>) -> Self {
        RegistryError::Api { code, message: message.into(), detail: Some(detail.into()) }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        RegistryError::Io { context: context.into(), source }
    }

    /// The spec code, if this error is one a client is meant to act on.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            RegistryError::Api { code, .. } => Some(*code),
            RegistryError::Unauthorized { .. } => Some(ErrorCode::Unauthorized),
            RegistryError::RangeNotSatisfiable { .. } => Some(ErrorCode::BlobUploadInvalid),
            _ => None,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            RegistryError::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            other => other.code().map_or(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::status),
        }
    }

    /// The spec's JSON envelope for this error.
    pub fn envelope(&self) -> Value {
        let (code, message, detail) = match self {
            RegistryError::Api { code, message, detail } => (code.as_str(), message.clone(), detail.clone()),
            RegistryError::Io { .. } | RegistryError::Internal(_) | RegistryError::Config(_) => {
                ("UNKNOWN", "internal server error".to_string(), None)
            }
            other => (other.code().map_or("UNKNOWN", ErrorCode::as_str), other.to_string(), None),
        };
        let mut e = serde_json::json!({ "code": code, "message": message });
        if let Some(d) = detail {
            e["detail"] = d;
        }
        serde_json::json!({ "errors": [e] })
    }
}

impl From<std::io::Error> for RegistryError {
    fn from(source: std::io::Error) -> Self {
        RegistryError::Io { context: "i/o".into(), source }
    }
}

impl HasKind for RegistryError {
    fn kind(&self) -> ErrorKind {
        match self {
            RegistryError::Api { code, .. } => match code.status().as_u16() {
                404 => ErrorKind::NotFound,
                401 => ErrorKind::Unauthorized,
                403 => ErrorKind::Forbidden,
                405 => ErrorKind::NotImplemented,
                429 => ErrorKind::Unavailable,
                _ => ErrorKind::InvalidArgument,
            },
            RegistryError::Unauthorized { .. } => ErrorKind::Unauthorized,
            RegistryError::RangeNotSatisfiable { .. } | RegistryError::Config(_) => ErrorKind::InvalidArgument,
            RegistryError::Io { .. } | RegistryError::Internal(_) => ErrorKind::Internal,
        }
    }
}
