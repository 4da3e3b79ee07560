//! The manifest formats a pull reads and a push writes: Docker v2 schema 2 (manifest and
//! manifest list) and OCI (manifest and index), and picking this platform from a list.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{DistError, Result};

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
pub const SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";

/// What a pull accepts, in the order of preference sent in `Accept`.
pub const ACCEPT: &[&str] = &[DOCKER_MANIFEST, DOCKER_LIST, OCI_MANIFEST, OCI_INDEX];

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub size: i64,
    pub digest: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Descriptor {
    pub fn new(media_type: &str, size: i64, digest: &str) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            size,
            digest: digest.into(),
            urls: vec![],
            platform: None,
            annotations: None,
        }
    }
}

/// An image manifest (Docker schema 2 or OCI).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageManifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: i64,
    #[serde(rename = "mediaType", default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

/// A manifest list or OCI index.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Index {
    #[serde(rename = "schemaVersion")]
    pub schema_version: i64,
    #[serde(rename = "mediaType", default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    pub manifests: Vec<Descriptor>,
}

pub enum Parsed {
    Image(ImageManifest),
    Index(Index),
}

/// Parses a manifest by the media type the registry gave (or the one inside it).
pub fn parse(content_type: &str, body: &[u8]) -> Result<Parsed> {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType", default)]
        media_type: String,
        #[serde(rename = "schemaVersion", default)]
        schema_version: i64,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
    }
    let probe: Probe =
        serde_json::from_slice(body).map_err(|e| DistError::Invalid(format!("invalid manifest: {e}")))?;
    let ct = content_type.split(';').next().unwrap_or("").trim();
    let mt = if !probe.media_type.is_empty() { probe.media_type.as_str() } else { ct };
    if probe.schema_version == 1 || mt == SCHEMA1 || mt == SCHEMA1_SIGNED {
        return Err(DistError::Invalid(
            "Docker Image manifest version 2, schema 1 is not supported (it was removed from Docker too): push the image again with a current client".into(),
        ));
    }
    let is_index = mt == DOCKER_LIST
        || mt == OCI_INDEX
        || (mt != DOCKER_MANIFEST && mt != OCI_MANIFEST && probe.manifests.is_some());
    if is_index {
        let i: Index =
            serde_json::from_slice(body).map_err(|e| DistError::Invalid(format!("invalid manifest list: {e}")))?;
        Ok(Parsed::Index(i))
    } else {
        let m: ImageManifest =
            serde_json::from_slice(body).map_err(|e| DistError::Invalid(format!("invalid manifest: {e}")))?;
        Ok(Parsed::Image(m))
    }
}

/// `linux/amd64` (or what `--platform` asked for), as `os`, `architecture`, `variant`.
pub fn wanted_platform(spec: Option<&str>) -> Result<Platform> {
    let default_arch = berth_image::config::host_architecture().to_string();
    let Some(spec) = spec.filter(|s| !s.is_empty()) else {
        return Ok(Platform { os: "linux".into(), architecture: default_arch, variant: String::new() });
    };
    let parts: Vec<&str> = spec.split('/').collect();
    let norm_arch = |a: &str| match a {
        "x86_64" | "x86-64" => "amd64".to_string(),
        "aarch64" => "arm64".to_string(),
        a => a.to_string(),
    };
    match parts.as_slice() {
        [os] if *os == "linux" => {
            Ok(Platform { os: "linux".into(), architecture: default_arch, variant: String::new() })
        }
        [os, arch] => Ok(Platform { os: os.to_string(), architecture: norm_arch(arch), variant: String::new() }),
        [os, arch, v] => Ok(Platform { os: os.to_string(), architecture: norm_arch(arch), variant: v.to_string() }),
        _ => Err(DistError::Invalid(format!("\"{spec}\": unknown operating system or architecture: invalid argument"))),
    }
}

/// Picks the entry of an index for `want`: same OS and architecture, the variant matching
/// if asked for (or `v8` for arm64 by default, as Docker does), attestations skipped.
pub fn select<'a>(index: &'a Index, want: &Platform) -> Option<&'a Descriptor> {
    let candidates: Vec<&Descriptor> = index
        .manifests
        .iter()
        .filter(|d| d.platform.as_ref().is_some_and(|p| p.os == want.os && p.architecture == want.architecture))
        .filter(|d| d.annotations.as_ref().is_none_or(|a| !a.contains_key("vnd.docker.reference.type")))
        .collect();
    if !want.variant.is_empty() {
        return candidates.iter().find(|d| d.platform.as_ref().is_some_and(|p| p.variant == want.variant)).copied();
    }
    candidates
        .iter()
        .find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.variant.is_empty() || (p.architecture == "arm64" && p.variant == "v8"))
        })
        .or(candidates.first())
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_this_platform() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[
            {{"mediaType":"{OCI_MANIFEST}","size":1,"digest":"sha256:aa","platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}},
            {{"mediaType":"{OCI_MANIFEST}","size":1,"digest":"sha256:bb","platform":{{"os":"linux","architecture":"amd64"}}}},
            {{"mediaType":"{OCI_MANIFEST}","size":1,"digest":"sha256:cc","platform":{{"os":"unknown","architecture":"unknown"}},"annotations":{{"vnd.docker.reference.type":"attestation-manifest"}}}}]}}"#
        );
        let Parsed::Index(i) = parse("", body.as_bytes()).unwrap() else { panic!("not an index") };
        let amd = Platform { os: "linux".into(), architecture: "amd64".into(), variant: String::new() };
        assert_eq!(select(&i, &amd).unwrap().digest, "sha256:bb");
        assert_eq!(select(&i, &wanted_platform(Some("linux/arm64")).unwrap()).unwrap().digest, "sha256:aa");
        assert!(select(&i, &wanted_platform(Some("linux/s390x")).unwrap()).is_none());
        assert!(parse(SCHEMA1_SIGNED, br#"{"schemaVersion":1}"#).is_err());
    }
}
