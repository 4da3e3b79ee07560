//! BuildKit's inline cache: `--cache-to type=inline` (or `BUILDKIT_INLINE_CACHE=1`) writes
//! the cache keys of the steps that made an image into its config, under
//! `moby.buildkit.cache.v0`, so that a build on another daemon that imports the image
//! (`--cache-from type=registry,ref=…` after a push) can take those steps from its layers.
//!
//! The value is BuildKit's: a JSON `CacheConfig` (`layers`, each a blob and its parent's
//! index; `records`, each a cache key, the record it continues and the layer its result
//! ends with) encoded as a JSON byte string (base64). Two things are berth's own, as only
//! berth's builder can match them anyway: the records' digests are berth's step keys
//! ([`crate::cache::StepKey`], which BuildKit's solver would never compute), and a layer's
//! `blob` is its diff ID, the one digest known when the build ends (the compressed blob's
//! depends on the pusher). A step that adds no layer (ENV, LABEL…) is a record whose result
//! is the layer before it, or none.
//!
//! Importing is by key: a step whose key is one of a source's records, on top of an image
//! whose history and layers begin the source's, is a hit ([`crate::cache_from`] restores
//! it from the source's layers).

use std::collections::BTreeSet;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use berth_image::{Image, ImageStore};

use crate::{BuildError, Result};

/// The image config key BuildKit keeps its inline cache under.
pub const CONFIG_KEY: &str = "moby.buildkit.cache.v0";

#[derive(Serialize, Deserialize, Default)]
struct CacheConfig {
    #[serde(default)]
    layers: Vec<CacheLayer>,
    #[serde(default)]
    records: Vec<CacheRecord>,
}

#[derive(Serialize, Deserialize)]
struct CacheLayer {
    blob: String,
    parent: i64,
}

#[derive(Serialize, Deserialize)]
struct CacheRecord {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    results: Vec<CacheResult>,
    digest: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    inputs: Vec<Vec<CacheInput>>,
}

#[derive(Serialize, Deserialize)]
struct CacheResult {
    layer: i64,
    #[serde(rename = "createdAt", default)]
    created_at: String,
}

#[derive(Serialize, Deserialize)]
struct CacheInput {
    #[serde(default)]
    selector: String,
    link: i64,
}

/// One step of an image's chain: its key and how many layers the image had after it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Step {
    pub key: String,
    pub layers: usize,
}

/// The inline cache value for `image`, made by `steps` (in order).
fn encode(image: &Image, steps: &[Step]) -> String {
    let diff_ids = &image.config.rootfs.diff_ids;
    let layers =
        diff_ids.iter().enumerate().map(|(i, d)| CacheLayer { blob: d.clone(), parent: i as i64 - 1 }).collect();
    let created = image.config.created.clone().unwrap_or_default();
    let records = steps
        .iter()
        .enumerate()
        .map(|(i, s)| CacheRecord {
            results: match s.layers.min(diff_ids.len()) {
                0 => Vec::new(),
                n => vec![CacheResult { layer: n as i64 - 1, created_at: created.clone() }],
            },
            digest: s.key.clone(),
            inputs: if i == 0 {
                Vec::new()
            } else {
                vec![vec![CacheInput { selector: String::new(), link: i as i64 - 1 }]]
            },
        })
        .collect();
    let json = serde_json::to_vec(&CacheConfig { layers, records }).unwrap_or_default();
    base64::engine::general_purpose::STANDARD.encode(json)
}

/// The step keys in `config`'s inline cache (raw config bytes); none when it has none or
/// it does not parse (a cache that cannot be read is no cache, as BuildKit treats it).
pub(crate) fn keys(config: &[u8]) -> BTreeSet<String> {
    let parsed = || -> Option<BTreeSet<String>> {
        let v: serde_json::Value = serde_json::from_slice(config).ok()?;
        let b64 = v.get(CONFIG_KEY)?.as_str()?;
        let json = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        let c: CacheConfig = serde_json::from_slice(&json).ok()?;
        Some(c.records.into_iter().map(|r| r.digest).collect())
    };
    parsed().unwrap_or_default()
}

/// `image` with its inline cache written into its config: a new image with the same layers
/// and history (its ID differs, its config does). Blocking.
pub(crate) fn with_inline_cache(images: &ImageStore, image: &Image, steps: &[Step]) -> Result<Image> {
    let raw = images.content().read(&image.id).map_err(BuildError::from)?;
    let mut v: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&raw)
        .map_err(|e| BuildError::Internal(format!("reading the config of {}: {e}", image.id)))?;
    v.insert(CONFIG_KEY.into(), serde_json::Value::String(encode(image, steps)));
    let bytes = serde_json::to_vec(&v).map_err(|e| BuildError::Internal(format!("writing an image config: {e}")))?;
    Ok(images.add_image(&bytes, &image.meta.parent, &[])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_written_are_read_back() {
        let config = berth_image::ImageConfig {
            rootfs: berth_image::config::RootFs {
                kind: "layers".into(),
                diff_ids: vec!["sha256:aa".into(), "sha256:bb".into()],
            },
            ..Default::default()
        };
        let image =
            Image { id: "sha256:00".into(), config: std::sync::Arc::new(config), meta: Default::default(), size: 0 };
        let steps = [
            Step { key: "sha256:k1".into(), layers: 1 },
            Step { key: "sha256:k2".into(), layers: 1 },
            Step { key: "sha256:k3".into(), layers: 2 },
        ];
        let value = encode(&image, &steps);
        let json = base64::engine::general_purpose::STANDARD.decode(&value).unwrap();
        let c: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(c["layers"][1]["blob"], "sha256:bb");
        assert_eq!(c["layers"][1]["parent"], 0);
        assert_eq!(c["records"][2]["results"][0]["layer"], 1);
        assert_eq!(c["records"][1]["inputs"][0][0]["link"], 0);
        let config = serde_json::json!({ "architecture": "amd64", CONFIG_KEY: value }).to_string();
        assert_eq!(
            keys(config.as_bytes()),
            BTreeSet::from(["sha256:k1".into(), "sha256:k2".into(), "sha256:k3".into()])
        );
        assert!(keys(b"{\"moby.buildkit.cache.v0\": \"!!\"}").is_empty());
        assert!(keys(b"not json").is_empty());
    }
}
