//! The step cache: content-addressed keys, and the persistent index from key to image.
//!
//! # Keys
//!
//! A [`StepKey`] is a SHA-256 over length-prefixed fields, so no two different field
//! sequences hash alike. Every step key starts from its parent's key; a stage's first key
//! is [`from_key`] of its base image ID (or `scratch`). What a step adds is decided by the
//! executor: the instruction after substitution, the build args in scope (RUN), and for
//! COPY/ADD the digest of the sources' paths, types, modes and contents. Nothing
//! time-dependent goes in, so touching a file without changing it keeps every key.
//!
//! # Index
//!
//! Bucket [`berth_store::schema::BUILD_CACHE`]: [`index_key`] → [`CacheRecord`] (the image
//! the step produced, and when it was made and last used). The index key is the step key
//! bound to the ID of the image the step ran on: step keys chain on keys alone, so that
//! an imported inline cache can match them, but an image reached through a cache source
//! (`--cache-from`) is only as good as that source. Binding the parent's ID means steps
//! built on top of such an image are found only by builds that reach the same image,
//! that is builds trusting the same source, never by one that rebuilt the step itself.
//! Hits from cache sources are never recorded (see the executor's `lookup`). The images themselves live in the image
//! store as untagged intermediate images (Docker's classic cache); a record whose image
//! is gone is a miss and is dropped on sight.
//!
//! Bucket [`berth_store::schema::BUILD_LAYERS`]: a COPY/ADD's content key → the layer it
//! made ([`LayerRecord`]). The content key is the step key without the parent: what was
//! copied, how, and what the destination's directories looked like. A miss on the step
//! key that hits here commits the existing layer under the new parent instead of copying
//! again (the layer's files keep the modification times of the first copy, as a cache hit
//! would). Entries whose layer is gone are dropped on sight; `builder prune --all` empties
//! the bucket.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use berth_image::{ContainerUse, Image, ImageStore};
use berth_store::db::Db;
use berth_store::schema::{BUILD_CACHE, BUILD_LAYERS};

use crate::Result;

/// Builds one step's cache key.
#[derive(Clone)]
pub struct StepKey {
    h: Sha256,
    /// The fields as added, for `--debug-cache-key`.
    fields: Vec<(String, String)>,
}

impl StepKey {
    /// Starts a key from the parent step's key.
    pub fn new(parent: &str) -> StepKey {
        StepKey { h: Sha256::new(), fields: Vec::new() }.field("parent", parent)
    }

    /// Adds a named field. Names and values are length-prefixed.
    pub fn field(mut self, name: &str, value: &str) -> StepKey {
        for s in [name, value] {
            self.h.update((s.len() as u64).to_be_bytes());
            self.h.update(s.as_bytes());
        }
        self.fields.push((name.to_string(), value.to_string()));
        self
    }

    /// What went into the key, one `name: value` line each (long values cut), so two
    /// builds' outputs can be compared to see why a step missed.
    pub fn explain(&self) -> String {
        self.fields
            .iter()
            .map(|(k, v)| {
                let v = v.replace('\n', "\\n");
                let cut: String = v.chars().take(160).collect();
                let more = if cut.len() < v.len() { "…" } else { "" };
                format!("     {k}: {cut}{more}\n")
            })
            .collect()
    }

    pub fn finish(self) -> String {
        format!("sha256:{}", hex::encode(self.h.finalize()))
    }
}

/// Where the index keeps step `key` when it runs on the image `parent` (`None`: scratch).
pub fn index_key(key: &str, parent: Option<&str>) -> String {
    StepKey::new(key).field("on image", parent.unwrap_or("scratch")).finish()
}

/// The key of a stage's `FROM`: its base image's ID, or scratch.
pub fn from_key(base_image: Option<&str>) -> String {
    StepKey::new("").field("from", base_image.unwrap_or("scratch")).finish()
}

/// One index entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CacheRecord {
    pub image: String,
    #[serde(default)]
    pub created: String,
    /// Nanoseconds since the epoch of the last build that used it.
    #[serde(default)]
    pub last_used: i64,
    #[serde(default)]
    pub usage_count: u64,
}

/// A layer made by COPY/ADD, by content key: the step's instruction, owner and sources
/// digest and the destination's digest, without the parent's key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LayerRecord {
    pub diff_id: String,
}

/// One entry as `system df` shows it.
#[derive(Debug, Clone)]
pub struct CacheUsage {
    pub key: String,
    pub record: CacheRecord,
    pub parent: String,
    pub description: String,
    pub size: i64,
    pub in_use: bool,
}

pub struct BuildCache {
    db: Arc<Db>,
}

fn now() -> i64 {
    berth_api::time::now_nanos() as i64
}

impl BuildCache {
    pub fn new(db: Arc<Db>) -> BuildCache {
        BuildCache { db }
    }

    /// The image cached for `key`, if it still exists; marks the entry used.
    pub fn lookup(&self, images: &ImageStore, key: &str) -> Result<Option<Image>> {
        let Some(mut rec) = self.db.get::<CacheRecord>(BUILD_CACHE, key)? else {
            return Ok(None);
        };
        match images.get(&rec.image) {
            Some(img) => {
                rec.last_used = now();
                rec.usage_count += 1;
                self.db.put(BUILD_CACHE, key, &rec)?;
                Ok(Some(img))
            }
            None => {
                self.db.delete(BUILD_CACHE, key)?;
                Ok(None)
            }
        }
    }

    /// Records that `key` produced `image_id`.
    pub fn record(&self, key: &str, image_id: &str) -> Result<()> {
        let rec = CacheRecord {
            image: image_id.to_string(),
            created: berth_api::time::rfc3339_now(),
            last_used: now(),
            usage_count: 0,
        };
        self.db.put(BUILD_CACHE, key, &rec)?;
        Ok(())
    }

    /// The layer a COPY/ADD with this content key made before, if the store still has it.
    pub fn layer_lookup(&self, images: &ImageStore, content_key: &str) -> Result<Option<String>> {
        let Some(rec) = self.db.get::<LayerRecord>(BUILD_LAYERS, content_key)? else {
            return Ok(None);
        };
        if images.snapshots().layer(&rec.diff_id)?.is_some() {
            return Ok(Some(rec.diff_id));
        }
        self.db.delete(BUILD_LAYERS, content_key)?;
        Ok(None)
    }

    /// Records that a COPY/ADD with this content key made the layer `diff_id`.
    pub fn layer_record(&self, content_key: &str, diff_id: &str) -> Result<()> {
        self.db.put(BUILD_LAYERS, content_key, &LayerRecord { diff_id: diff_id.to_string() })?;
        Ok(())
    }

    pub fn entries(&self) -> Result<Vec<(String, CacheRecord)>> {
        Ok(self.db.list(BUILD_CACHE)?)
    }

    /// Images that must stay whatever the cache does: tagged ones, those containers use,
    /// and every ancestor of those.
    fn needed(images: &ImageStore, users: &dyn Fn(&str) -> Vec<ContainerUse>) -> BTreeSet<String> {
        let mut keep = BTreeSet::new();
        for img in images.all() {
            if images.refs_of(&img.id).is_empty() && users(&img.id).is_empty() {
                continue;
            }
            let mut cur = Some(img);
            while let Some(i) = cur {
                if !keep.insert(i.id.clone()) {
                    break;
                }
                cur = (!i.meta.parent.is_empty()).then(|| images.get(&i.meta.parent)).flatten();
            }
        }
        keep
    }

    /// What `system df` lists.
    pub fn usage(&self, images: &ImageStore) -> Result<Vec<CacheUsage>> {
        let keep = Self::needed(images, &|_| Vec::new());
        let mut out = Vec::new();
        for (key, record) in self.entries()? {
            let Some(img) = images.get(&record.image) else { continue };
            let description = img.config.history.last().and_then(|h| h.created_by.clone()).unwrap_or_default();
            out.push(CacheUsage {
                key,
                parent: img.meta.parent.clone(),
                description,
                size: own_layer_size(images, &img),
                in_use: keep.contains(&img.id),
                record,
            });
        }
        Ok(out)
    }

    /// See [`crate::Builder::prune`].
    pub fn prune(
        &self,
        images: &ImageStore,
        all: bool,
        users: &dyn Fn(&str) -> Vec<ContainerUse>,
    ) -> Result<(Vec<String>, i64)> {
        let keep = Self::needed(images, users);
        if all {
            for (key, _) in self.db.list::<LayerRecord>(BUILD_LAYERS)? {
                self.db.delete(BUILD_LAYERS, &key)?;
            }
        }
        let mut candidates = BTreeSet::new();
        for (key, rec) in self.entries()? {
            if all || !keep.contains(&rec.image) {
                self.db.delete(BUILD_CACHE, &key)?;
                if !keep.contains(&rec.image) {
                    candidates.insert(rec.image);
                }
            }
        }
        self.delete_images(images, candidates, users)
    }

    /// Deletes the given unneeded images, children before parents.
    fn delete_images(
        &self,
        images: &ImageStore,
        mut candidates: BTreeSet<String>,
        users: &dyn Fn(&str) -> Vec<ContainerUse>,
    ) -> Result<(Vec<String>, i64)> {
        let layer_total =
            || -> i64 { images.snapshots().layers().map(|l| l.iter().map(|x| x.size as i64).sum()).unwrap_or(0) };
        let before = layer_total();
        let mut deleted = Vec::new();
        loop {
            let ready: Vec<String> = candidates
                .iter()
                .filter(|id| {
                    images.get(id).is_some() && images.children(id).is_empty() && images.refs_of(id).is_empty()
                })
                .cloned()
                .collect();
            if ready.is_empty() {
                break;
            }
            for id in ready {
                candidates.remove(&id);
                if images.delete(&id, false, false, users).is_ok() {
                    deleted.push(id);
                }
            }
        }
        Ok((deleted, (before - layer_total()).max(0)))
    }

    /// Evicts least recently used entries whose images only the cache keeps, until the
    /// layers those images add fit in `max_bytes`.
    pub fn evict(&self, images: &ImageStore, max_bytes: u64) -> Result<()> {
        let keep = Self::needed(images, &|_| Vec::new());
        let mut entries: Vec<(String, CacheRecord, i64)> = self
            .entries()?
            .into_iter()
            .filter(|(_, r)| !keep.contains(&r.image))
            .filter_map(|(k, r)| images.get(&r.image).map(|img| (k, r, own_layer_size(images, &img))))
            .collect();
        let mut total: i64 = entries.iter().map(|(_, _, s)| *s).sum();
        if total <= max_bytes as i64 {
            return Ok(());
        }
        entries.sort_by_key(|(_, r, _)| r.last_used);
        let mut doomed = BTreeSet::new();
        for (key, rec, size) in entries {
            if total <= max_bytes as i64 {
                break;
            }
            self.db.delete(BUILD_CACHE, &key)?;
            doomed.insert(rec.image);
            total -= size;
        }
        self.delete_images(images, doomed, &|_| Vec::new())?;
        Ok(())
    }
}

/// The size of the layer a step added (0 for config-only steps).
fn own_layer_size(images: &ImageStore, img: &Image) -> i64 {
    let added = img.config.history.last().is_some_and(|h| !h.empty_layer);
    let parent_layers = images.get(&img.meta.parent).map(|p| p.config.rootfs.diff_ids.len()).unwrap_or(0);
    if !added || img.config.rootfs.diff_ids.len() <= parent_layers {
        return 0;
    }
    img.config
        .rootfs
        .diff_ids
        .last()
        .and_then(|d| images.snapshots().layer(d).ok().flatten())
        .map(|l| l.size as i64)
        .unwrap_or(0)
}

/// Sorted `NAME=value` lines of the build args a RUN step sees, for its key and history.
pub fn args_field(args: &BTreeMap<String, String>) -> String {
    args.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_depend_on_every_field_and_nothing_else() {
        let a = StepKey::new("p").field("ins", "RUN echo hi").finish();
        let b = StepKey::new("p").field("ins", "RUN echo hi").finish();
        assert_eq!(a, b, "same inputs, same key");
        assert!(a.starts_with("sha256:") && a.len() == 71);
        assert_ne!(a, StepKey::new("q").field("ins", "RUN echo hi").finish(), "parent matters");
        assert_ne!(a, StepKey::new("p").field("ins", "RUN echo ho").finish(), "instruction matters");
        assert_ne!(a, StepKey::new("p").field("ins", "RUN echo hi").field("args", "A=1\n").finish(), "args matter");
        // Length prefixes keep field boundaries: ("ab","c") differs from ("a","bc").
        assert_ne!(StepKey::new("p").field("ab", "c").finish(), StepKey::new("p").field("a", "bc").finish());
        assert_ne!(from_key(None), from_key(Some("sha256:00")));
    }

    #[test]
    fn args_field_is_sorted_and_unambiguous() {
        let mut m = BTreeMap::new();
        m.insert("B".to_string(), "2".to_string());
        m.insert("A".to_string(), "1".to_string());
        assert_eq!(args_field(&m), "A=1\nB=2\n");
    }

    #[test]
    fn index_survives_reopening_and_drops_missing_images() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(&dir.path().join("berth.db")).unwrap());
        let content = berth_store::content::ContentStore::open(&dir.path().join("content")).unwrap();
        let snaps = Arc::new(berth_store::snapshot::Snapshotter::open(&dir.path().join("snapshots")).unwrap());
        let (images, _) = ImageStore::open(db.clone(), content, snaps).unwrap();
        let img = images
            .commit(
                None,
                dir.path(),
                &Default::default(),
                &berth_image::commit::CommitOptions { empty_layer: true, ..Default::default() },
            )
            .unwrap();
        let cache = BuildCache::new(db.clone());
        cache.record("k1", &img.id).unwrap();
        cache.record("k2", "sha256:0000000000000000000000000000000000000000000000000000000000000000").unwrap();
        drop(cache);
        let cache = BuildCache::new(db);
        assert_eq!(cache.lookup(&images, "k1").unwrap().map(|i| i.id), Some(img.id.clone()));
        assert!(cache.lookup(&images, "k2").unwrap().is_none());
        assert_eq!(cache.entries().unwrap().len(), 1, "the dangling entry was dropped");
        assert!(cache.lookup(&images, "nope").unwrap().is_none());
        // Prune with nothing tagged: the entry and its image go.
        let (deleted, _) = cache.prune(&images, false, &|_| Vec::new()).unwrap();
        assert_eq!(deleted, vec![img.id]);
        assert!(cache.entries().unwrap().is_empty());
    }
}
