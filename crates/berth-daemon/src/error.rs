//! API errors: every library error becomes `{"message": …}` with the status its kind maps to
//! (the mapping itself lives in berth_api::ErrorKind::http_status, the one place for it).

use std::fmt::Display;

use berth_api::{ErrorKind, HasKind};

#[derive(Debug)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ApiError {
        ApiError { kind, message: message.into() }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::InvalidArgument, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::NotFound, message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Internal, message)
    }

    pub fn status(&self) -> u16 {
        self.kind.http_status()
    }
}

/// Any typed library error converts, keeping its kind and message.
pub trait IntoApiError {
    fn api(self) -> ApiError;
}

impl<E: HasKind + Display> IntoApiError for E {
    fn api(self) -> ApiError {
        ApiError { kind: self.kind(), message: self.to_string() }
    }
}

macro_rules! from_lib_error {
    ($($t:ty),*) => {
        $(impl From<$t> for ApiError {
            fn from(e: $t) -> ApiError {
                e.api()
            }
        })*
    };
}

from_lib_error!(
    berth_container::ContainerError,
    berth_image::ImageError,
    berth_store::StoreError,
    berth_archive::ArchiveError,
    berth_dockerfile::DockerfileError,
    berth_volume::VolumeError
);

pub type ApiResult<T> = std::result::Result<T, ApiError>;
