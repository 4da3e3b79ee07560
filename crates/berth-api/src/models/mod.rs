//! Engine API request and response bodies.
//!
//! Conventions: every struct accepts missing fields (`#[serde(default)]`) because clients of
//! different API versions send different subsets; `Option` is used where Docker distinguishes
//! "not set" from "set to empty" (a `Cmd` of `null` inherits the image's, `[]` does not).

pub mod build;
pub mod container;
pub mod exec;
pub mod image;
pub mod network;
pub mod system;
pub mod volume;

pub use container::*;
pub use exec::*;
pub use image::*;
pub use network::*;
pub use system::*;
pub use volume::*;

use serde::{Deserialize, Deserializer};

/// Docker's `StrSlice`: a JSON string or array of strings (old clients send a bare string
/// for `Cmd` and `Entrypoint`).
pub fn str_or_vec<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<Either>::deserialize(d)? {
        None => None,
        Some(Either::One(s)) => Some(vec![s]),
        Some(Either::Many(v)) => Some(v),
    })
}

/// Deserializes `null` as the type's default, for fields Go clients may send as null.
pub fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}
