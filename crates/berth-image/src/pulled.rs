//! Publishing an image that arrived from a registry.

use berth_archive::skeleton::Skeleton;
use berth_store::snapshot::Staging;

use crate::reference::Reference;
use crate::{Image, ImageStore, Result};

/// A layer a pull unpacked into a staging directory and verified.
pub struct PulledLayer {
    pub staging: Staging,
    pub diff_id: String,
    pub tar_size: u64,
    pub size: u64,
    pub skeleton: Skeleton,
}

impl ImageStore {
    /// Publishes `layers` and records the image described by `config_bytes`, pointing
    /// `refs` (tags and `repo@digest` references) at it, all under the store's write lock, so
    /// no layer collection runs between the layers appearing and the image that uses them.
    /// Layers the pull found already present must still be there; if one was removed in
    /// the meantime the pull fails cleanly and can be run again.
    pub fn add_pulled(&self, layers: Vec<PulledLayer>, config_bytes: &[u8], refs: &[Reference]) -> Result<Image> {
        let _g = self.write_lock();
        for l in layers {
            self.snapshots.commit_layer(l.staging, &l.diff_id, l.tar_size, l.size, &l.skeleton)?;
        }
        self.add_image_locked(config_bytes, "", refs)
    }
}
