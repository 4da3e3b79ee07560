//! `berth system check`: verifies the image store against its own digests and, with
//! `repair`, removes what is damaged so that everything still listed is whole.

use std::collections::BTreeSet;
use std::io::Write;

use serde::Serialize;
use sha2::Digest;

use crate::store::ContainerUse;
use crate::{ImageStore, Result};

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CheckReport {
    pub images: usize,
    pub layers: usize,
    pub blobs: usize,
    /// What is wrong, one sentence each.
    pub problems: Vec<String>,
    /// What `repair` did about it.
    pub repaired: Vec<String>,
}

/// A writer that only hashes.
struct HashSink(sha2::Sha256);

impl Write for HashSink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.update(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl ImageStore {
    /// Re-hashes every blob and every layer (from its files, as `save` would write it) and
    /// checks that each image's config and layers are there. With `repair`, damaged blobs are
    /// deleted and images with a damaged or missing part are removed, unless a container
    /// uses them (then the problem stays reported).
    pub fn check(&self, repair: bool, users: &dyn Fn(&str) -> Vec<ContainerUse>) -> Result<CheckReport> {
        let _g = self.write_lock();
        let mut report = CheckReport::default();
        let mut damaged_blobs = BTreeSet::new();
        for b in self.content.list()? {
            report.blobs += 1;
            if !self.content.verify(&b).unwrap_or(false) {
                report.problems.push(format!("blob {b} does not match its digest"));
                damaged_blobs.insert(b);
            }
        }
        let mut bad_layers = BTreeSet::new();
        for l in self.snapshots.layers()? {
            report.layers += 1;
            let mut sink = HashSink(sha2::Sha256::new());
            let ok = match self.snapshots.write_layer_tar(&l.diff_id, &mut sink) {
                Ok(_) => format!("sha256:{}", hex::encode(sink.0.finalize())) == l.diff_id,
                Err(_) => false,
            };
            if !ok {
                report.problems.push(format!("layer {} does not match its digest", l.diff_id));
                bad_layers.insert(l.diff_id.clone());
            }
        }
        let present: BTreeSet<String> = self.snapshots.layers()?.into_iter().map(|l| l.diff_id).collect();
        let mut doomed = Vec::new();
        for image in self.all() {
            report.images += 1;
            let mut why = Vec::new();
            if damaged_blobs.contains(&image.id) {
                why.push("its config is damaged".to_string());
            }
            for d in &image.config.rootfs.diff_ids {
                if bad_layers.contains(d) {
                    why.push(format!("layer {d} is damaged"));
                } else if !present.contains(d) {
                    why.push(format!("layer {d} is missing"));
                }
            }
            if !why.is_empty() {
                if !damaged_blobs.contains(&image.id) {
                    report.problems.push(format!("image {} is unusable: {}", image.id, why.join(", ")));
                }
                doomed.push(image.id.clone());
            }
        }
        if !repair {
            return Ok(report);
        }
        for id in doomed {
            let using = users(&id);
            if let Some(u) = using.first() {
                report.problems.push(format!(
                    "image {id} was kept: container {} uses it; remove the container, then repair again",
                    berth_api::ids::short_id(&u.container_id)
                ));
                continue;
            }
            self.remove_image(&id)?;
            report.repaired.push(format!("removed image {id}"));
        }
        for l in &bad_layers {
            if self.all().iter().all(|i| !i.config.rootfs.diff_ids.contains(l)) {
                self.snapshots.remove_layer(l)?;
                report.repaired.push(format!("removed layer {l}"));
            }
        }
        for b in &damaged_blobs {
            if self.get(b).is_none() {
                self.content.delete(b)?;
                report.repaired.push(format!("removed blob {b}"));
            }
        }
        // What was repaired is no longer a problem; what stays is.
        let fixed: BTreeSet<&str> = report.repaired.iter().filter_map(|r| r.split_whitespace().nth(2)).collect();
        report
            .problems
            .retain(|p| !p.split_whitespace().nth(1).is_some_and(|x| fixed.contains(x)) || p.contains("was kept"));
        Ok(report)
    }
}
