//! The image config document (OCI image config with Docker's fields). Its SHA-256 is the
//! image ID, so the bytes are kept exactly as received or first written; this struct is the
//! parsed view of them.

use serde::{Deserialize, Serialize};

use berth_api::models::ContainerConfig;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RootFs {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default, deserialize_with = "berth_api::models::null_default")]
    pub diff_ids: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub architecture: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub docker_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub container: String,
    #[serde(default, deserialize_with = "berth_api::models::null_default")]
    pub config: ContainerConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_config: Option<ContainerConfig>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub parent: String,
    #[serde(default)]
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "berth_api::models::null_default")]
    pub history: Vec<History>,
}

impl ImageConfig {
    /// A fresh config for this machine's platform.
    pub fn new_local() -> ImageConfig {
        ImageConfig {
            architecture: host_architecture().to_string(),
            os: "linux".to_string(),
            created: Some(berth_api::time::rfc3339_now()),
            rootfs: RootFs { kind: "layers".into(), diff_ids: Vec::new() },
            ..Default::default()
        }
    }

    pub fn parse(bytes: &[u8]) -> Result<ImageConfig, crate::ImageError> {
        let c: ImageConfig = serde_json::from_slice(bytes)
            .map_err(|e| crate::ImageError::Invalid(format!("invalid image config: {e}")))?;
        if c.rootfs.kind != "layers" && !(c.rootfs.kind.is_empty() && c.rootfs.diff_ids.is_empty()) {
            return Err(crate::ImageError::Invalid(format!("unsupported rootfs type {:?}", c.rootfs.kind)));
        }
        for d in &c.rootfs.diff_ids {
            berth_store::content::parse_digest(d)
                .map_err(|_| crate::ImageError::Invalid(format!("invalid layer diff id {d:?} in image config")))?;
        }
        Ok(c)
    }

    /// Serialized for storage. The config's digest is the image ID.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn created_nanos(&self) -> i128 {
        self.created.as_deref().and_then(berth_api::time::parse_rfc3339).unwrap_or(0)
    }
}

/// The GOARCH-style name of this machine's architecture.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}
