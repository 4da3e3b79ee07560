//! The small, closed set of error kinds every berth library maps its errors onto.
//!
//! Library crates keep their own typed errors (thiserror) with the detail a user needs; each
//! of them implements [`HasKind`] so the daemon can turn any error into an HTTP status in one
//! place without string matching. The kinds mirror the ones the Engine API distinguishes:
//! a client that gets a 404 knows the object is missing, a 409 that the request conflicts with
//! the object's state, and so on.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The named object (image, container, exec, volume, network…) does not exist.
    NotFound,
    /// The request itself is malformed: a bad flag value, an invalid name, a corrupt archive.
    InvalidArgument,
    /// The request is well-formed but clashes with the current state (a name in use, a
    /// container that is running when it must not be, an image in use).
    Conflict,
    /// Credentials are missing or wrong.
    Unauthorized,
    /// Credentials are fine, the action is not allowed.
    Forbidden,
    /// A dependency (registry, runtime, kernel feature) is unreachable or busy right now.
    Unavailable,
    /// berth does not do this (yet); the message says what instead.
    NotImplemented,
    /// Anything else: a bug or an I/O failure the user cannot fix by changing the request.
    Internal,
}

impl ErrorKind {
    /// The HTTP status code that represents this kind in the Engine API. This is the only
    /// place where kinds become status codes.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::NotFound => 404,
            ErrorKind::InvalidArgument => 400,
            ErrorKind::Conflict => 409,
            ErrorKind::Unauthorized => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::Unavailable => 503,
            ErrorKind::NotImplemented => 501,
            ErrorKind::Internal => 500,
        }
    }

    /// The inverse of [`ErrorKind::http_status`], used by clients reading an error response.
    pub fn from_http_status(status: u16) -> ErrorKind {
        match status {
            404 => ErrorKind::NotFound,
            400 => ErrorKind::InvalidArgument,
            409 => ErrorKind::Conflict,
            401 => ErrorKind::Unauthorized,
            403 => ErrorKind::Forbidden,
            503 => ErrorKind::Unavailable,
            501 => ErrorKind::NotImplemented,
            _ => ErrorKind::Internal,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::InvalidArgument => "invalid argument",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::NotImplemented => "not implemented",
            ErrorKind::Internal => "internal error",
        };
        f.write_str(s)
    }
}

/// Implemented by every library error type so the daemon can classify it.
pub trait HasKind {
    fn kind(&self) -> ErrorKind;
}

impl HasKind for std::io::Error {
    fn kind(&self) -> ErrorKind {
        match std::io::Error::kind(self) {
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => ErrorKind::InvalidArgument,
            std::io::ErrorKind::AlreadyExists => ErrorKind::Conflict,
            std::io::ErrorKind::PermissionDenied => ErrorKind::Forbidden,
            _ => ErrorKind::Internal,
        }
    }
}

/// The JSON body of every Engine API error response: `{"message": "..."}`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ErrorResponse {
    pub message: String,
}
