//! What the registry understands of a manifest: its media type, what it references, and
//! its subject.
//!
//! Four media types are accepted: Docker v2 schema 2 manifests and manifest lists, OCI image
//! manifests and indexes. The registry does not interpret images; it only needs the edges of
//! the content graph, to refuse a manifest whose parts are missing (`MANIFEST_BLOB_UNKNOWN`),
//! to keep referenced blobs through GC, and to answer the referrers API.

use crate::error::{ErrorCode, RegistryError, Result};
use crate::names::Digest;
use serde_json::Value;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// The largest manifest accepted (the spec asks registries to take at least 4 MiB).
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// A validated manifest's edges.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub media_type: String,
    /// Blobs that must exist in the repository: config and layers (foreign layers excluded).
    pub blobs: Vec<Digest>,
    /// Child manifests that must exist in the repository (indexes and lists).
    pub manifests: Vec<Digest>,
    pub subject: Option<Digest>,
    /// `artifactType`, or for an image manifest without one, its config's media type.
    pub artifact_type: Option<String>,
    pub annotations: Option<Value>,
}

fn invalid(msg: impl Into<String>) -> RegistryError {
    RegistryError::api(ErrorCode::ManifestInvalid, msg)
}

fn is_known(mt: &str) -> bool {
    matches!(mt, DOCKER_MANIFEST | DOCKER_LIST | OCI_MANIFEST | OCI_INDEX)
}

/// The `mediaType` field of a manifest, if it has one.
pub fn media_type_of(bytes: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    v.get("mediaType")?.as_str().map(str::to_string)
}

/// Validates a pushed manifest. `content_type` is the request's `Content-Type` (parameters
/// ignored); when it is absent or generic (`application/json`), the `mediaType` field, or
/// failing that the document's shape, decides.
pub fn parse(content_type: Option<&str>, bytes: &[u8]) -> Result<Parsed> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| invalid(format!("manifest is not valid JSON: {e}")))?;
    if !v.is_object() {
        return Err(invalid("manifest is not a JSON object"));
    }
    if v.get("schemaVersion").and_then(Value::as_u64) != Some(2) {
        return Err(invalid("unsupported manifest schemaVersion (only 2 is accepted)"));
    }
    let field = v.get("mediaType").and_then(Value::as_str);
    let header = content_type
        .map(|c| c.split(';').next().unwrap_or("").trim())
        .filter(|c| !c.is_empty() && *c != "application/json" && *c != "application/octet-stream");
    let media_type = match (header, field) {
        (Some(h), _) if !is_known(h) => {
            return Err(invalid(format!("unsupported manifest media type {h}")));
        }
        (Some(h), Some(f)) if h != f => {
            return Err(invalid(format!("Content-Type {h} does not match mediaType {f}")));
        }
        (Some(h), _) => h.to_string(),
        (None, Some(f)) if is_known(f) => f.to_string(),
        (None, Some(f)) => return Err(invalid(format!("unsupported manifest media type {f}"))),
        (None, None) if v.get("manifests").is_some() => OCI_INDEX.to_string(),
        (None, None) if v.get("config").is_some() => OCI_MANIFEST.to_string(),
        (None, None) => return Err(invalid("cannot tell the manifest's media type")),
    };
    let mut out = Parsed {
        media_type: media_type.clone(),
        blobs: Vec::new(),
        manifests: Vec::new(),
        subject: None,
        artifact_type: v.get("artifactType").and_then(Value::as_str).map(str::to_string),
        annotations: v.get("annotations").filter(|a| a.is_object()).cloned(),
    };
    if let Some(s) = v.get("subject") {
        out.subject = Some(descriptor_digest(s)?);
    }
    if media_type == DOCKER_LIST || media_type == OCI_INDEX {
        let list =
            v.get("manifests").and_then(Value::as_array).ok_or_else(|| invalid("index has no manifests array"))?;
        for m in list {
            out.manifests.push(descriptor_digest(m)?);
        }
    } else {
        let config = v.get("config").ok_or_else(|| invalid("manifest has no config"))?;
        out.blobs.push(descriptor_digest(config)?);
        if out.artifact_type.is_none() {
            out.artifact_type = config.get("mediaType").and_then(Value::as_str).map(str::to_string);
        }
        let layers = match v.get("layers") {
            Some(l) => l.as_array().ok_or_else(|| invalid("layers is not an array"))?.as_slice(),
            None if media_type == DOCKER_MANIFEST => return Err(invalid("manifest has no layers")),
            None => &[],
        };
        for l in layers {
            let d = descriptor_digest(l)?;
            if !is_foreign(l) {
                out.blobs.push(d);
            }
        }
    }
    Ok(out)
}

fn descriptor_digest(desc: &Value) -> Result<Digest> {
    let d = desc.get("digest").and_then(Value::as_str).ok_or_else(|| invalid("descriptor without digest"))?;
    if desc.get("size").and_then(Value::as_u64).is_none() {
        return Err(invalid(format!("descriptor {d} has no valid size")));
    }
    Digest::parse(d).map_err(|_| invalid(format!("descriptor has invalid digest {d}")))
}

/// Foreign (non-distributable) layers live elsewhere: the registry need not have them.
fn is_foreign(desc: &Value) -> bool {
    let mt = desc.get("mediaType").and_then(Value::as_str).unwrap_or("");
    let has_urls = desc.get("urls").and_then(Value::as_array).is_some_and(|u| !u.is_empty());
    has_urls && (mt.contains("foreign") || mt.contains("nondistributable"))
}

/// Every digest a stored manifest references (config, layers, child manifests), leniently:
/// used by GC, which must not stop on one odd document.
pub fn references(bytes: &[u8]) -> Vec<Digest> {
    let Ok(v) = serde_json::from_slice::<Value>(bytes) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut push = |d: &Value| {
        if let Some(d) = d.get("digest").and_then(Value::as_str).and_then(|s| Digest::parse(s).ok()) {
            out.push(d);
        }
    };
    if let Some(c) = v.get("config") {
        push(c);
    }
    for key in ["layers", "manifests"] {
        for d in v.get(key).and_then(Value::as_array).into_iter().flatten() {
            push(d);
        }
    }
    out
}

/// The subject of a stored manifest, leniently.
pub fn subject_of(bytes: &[u8]) -> Option<Digest> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    Digest::parse(v.get("subject")?.get("digest")?.as_str()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

    #[test]
    fn media_type_comes_from_header_field_or_shape() {
        let m = format!(r#"{{"schemaVersion":2,"config":{{"mediaType":"x","digest":"{CFG}","size":2}},"layers":[]}}"#);
        assert_eq!(parse(None, m.as_bytes()).unwrap().media_type, OCI_MANIFEST);
        assert_eq!(parse(Some(DOCKER_MANIFEST), m.as_bytes()).unwrap().media_type, DOCKER_MANIFEST);
        assert_eq!(parse(None, m.as_bytes()).unwrap().artifact_type.as_deref(), Some("x"));
        let typed =
            format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"digest":"{CFG}","size":2}}}}"#);
        assert!(parse(Some(DOCKER_MANIFEST), typed.as_bytes()).is_err());
        assert!(parse(Some("text/plain"), m.as_bytes()).is_err());
        assert!(parse(None, b"{").is_err());
        assert!(parse(None, br#"{"schemaVersion":1}"#).is_err());
    }

    #[test]
    fn foreign_layers_are_not_required() {
        let m = format!(
            r#"{{"schemaVersion":2,"config":{{"digest":"{CFG}","size":2}},"layers":[
            {{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"{CFG}","size":1,"urls":["https://x"]}}]}}"#
        );
        assert_eq!(parse(None, m.as_bytes()).unwrap().blobs.len(), 1);
        assert_eq!(references(m.as_bytes()).len(), 2);
    }
}
