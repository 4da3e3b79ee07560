//! Where layers are known to live remotely (Docker's "v2 metadata").
//!
//! A layer is stored unpacked under its diff ID; registries hold it compressed under a blob
//! digest that depends on how it was compressed. Every pull and push records, per diff ID,
//! the blobs it moved: digest, media type, size, and the registry and repository that have
//! it. A push uses these to ask the target repository (`HEAD`) before uploading, and to
//! mount the blob from another repository of the same registry. The records are hints: a
//! registry may have deleted a blob since, which the `HEAD` or mount then reveals.
//!
//! Stored in the metadata database's `distribution` bucket (see berth-store's schema),
//! keyed by diff ID.

use serde::{Deserialize, Serialize};

use berth_store::db::Db;
use berth_store::schema::DISTRIBUTION;

/// At most this many sources are kept per layer (newest first).
const MAX_SOURCES: usize = 16;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BlobSource {
    pub digest: String,
    pub media_type: String,
    pub size: i64,
    /// The registry's domain (`docker.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// The repository path in that registry (`library/busybox`).
    pub repository: String,
}

/// The sources recorded for `diff_id`, newest first.
pub fn sources(db: &Db, diff_id: &str) -> Vec<BlobSource> {
    db.get::<Vec<BlobSource>>(DISTRIBUTION, diff_id).ok().flatten().unwrap_or_default()
}

/// Records that `src` holds the layer `diff_id`. Failures are ignored: the records only
/// save work.
pub fn record(db: &Db, diff_id: &str, src: BlobSource) {
    let mut list = sources(db, diff_id);
    list.retain(|s| !(s.digest == src.digest && s.registry == src.registry && s.repository == src.repository));
    list.insert(0, src);
    list.truncate(MAX_SOURCES);
    // Ignored: see above.
    let _ = db.put(DISTRIBUTION, diff_id, &list);
}

/// Forgets that `registry/repository` holds `digest` (a `HEAD` said it does not).
pub fn forget(db: &Db, diff_id: &str, digest: &str, registry: &str, repository: &str) {
    let mut list = sources(db, diff_id);
    let before = list.len();
    list.retain(|s| !(s.digest == digest && s.registry == registry && s.repository == repository));
    if list.len() != before {
        // A source not forgotten costs one more `HEAD` that fails again.
        let _ = db.put(DISTRIBUTION, diff_id, &list);
    }
}
