//! berth's error kinds as gRPC statuses: the one table, as the HTTP side has its own.

use berth_api::{ErrorKind, HasKind};
use tonic::{Code, Status};

pub fn code(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::InvalidArgument => Code::InvalidArgument,
        ErrorKind::Conflict => Code::FailedPrecondition,
        ErrorKind::Unauthorized => Code::Unauthenticated,
        ErrorKind::Forbidden => Code::PermissionDenied,
        ErrorKind::Unavailable => Code::Unavailable,
        ErrorKind::NotImplemented => Code::Unimplemented,
        ErrorKind::Internal => Code::Internal,
    }
}

/// A berth error as the status the CRI client sees.
pub fn status<E: HasKind + std::fmt::Display>(e: E) -> Status {
    Status::new(code(e.kind()), e.to_string())
}

pub fn invalid(msg: impl Into<String>) -> Status {
    Status::invalid_argument(msg)
}

pub fn not_found(msg: impl Into<String>) -> Status {
    Status::not_found(msg)
}

/// A name reservation that failed because the name is taken: `AlreadyExists`, and nothing
/// was made.
pub fn name_taken<E: HasKind + std::fmt::Display>(e: E) -> Status {
    if e.kind() == ErrorKind::Conflict { Status::already_exists(e.to_string()) } else { status(e) }
}
