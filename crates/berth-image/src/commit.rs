//! `docker commit` (and the builder's steps): a container's changes become a new layer on
//! top of its image.

use std::os::fd::AsFd;
use std::path::Path;

use berth_api::models::ContainerConfig;
use berth_archive::apply::{apply, ApplyOptions};
use berth_archive::walk::{write_tree, WalkOptions};

use crate::config::{History, ImageConfig};
use crate::reference::Reference;
use crate::{Image, ImageError, ImageStore, Result};

#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    pub reference: Option<String>,
    pub author: String,
    pub comment: String,
    pub changes: Vec<String>,
    /// The history line (`created_by`).
    pub created_by: String,
    /// The ID of the container committed, recorded in the config as Docker does.
    pub container_id: String,
    /// Record the step without a layer (a metadata-only build step).
    pub empty_layer: bool,
    /// The committed container's own configuration (`ContainerConfig` in inspect, naming
    /// the image the container was made from).
    pub container_config: Option<ContainerConfig>,
}

impl ImageStore {
    /// Turns the overlay upper directory `upper` into a layer (unless `empty_layer`) and
    /// records an image of `base` plus that layer, with `config` as its container config.
    pub fn commit(&self, base: Option<&Image>, upper: &Path, config: &ContainerConfig, opts: &CommitOptions) -> Result<Image> {
        let reference = opts.reference.as_deref().filter(|s| !s.is_empty()).map(Reference::parse).transpose()?;
        let mut new_config = config.clone();
        for c in &opts.changes {
            berth_dockerfile::changes::apply_change(&mut new_config, c)?;
        }
        let mut image = match base {
            Some(b) => ImageConfig { created: Some(berth_api::time::rfc3339_now()), ..(*b.config).clone() },
            None => ImageConfig::new_local(),
        };
        image.config = new_config;
        image.author = opts.author.clone();
        image.comment = opts.comment.clone();
        image.container = opts.container_id.clone();
        image.container_config = opts.container_config.clone();
        image.parent = String::new();
        image.rootfs.kind = "layers".into();
        image.history.push(History {
            created: image.created.clone(),
            created_by: Some(opts.created_by.clone()),
            author: (!opts.author.is_empty()).then(|| opts.author.clone()),
            comment: (!opts.comment.is_empty()).then(|| opts.comment.clone()),
            empty_layer: opts.empty_layer,
        });

        let staged = if opts.empty_layer {
            None
        } else {
            let staging = self.snapshots.stage()?;
            let dir = std::fs::File::open(upper).map_err(|e| ImageError::io(format!("opening {}", upper.display()), e))?;
            let (reader, writer) = std::io::pipe().map_err(|e| ImageError::io("pipe", e))?;
            let applied = std::thread::scope(|s| {
                let producer = s.spawn(move || {
                    write_tree(dir.as_fd(), "", writer, WalkOptions { overlay_whiteouts: true, ..Default::default() })
                });
                let applied = apply(reader, &staging.path(), &ApplyOptions { record_skeleton: true, ..Default::default() });
                let walked = producer.join().map_err(|_| ImageError::Invalid("layer writer panicked".into()))?;
                walked?;
                Ok::<_, ImageError>(applied?)
            })?;
            image.rootfs.diff_ids.push(applied.diff_id.clone());
            Some((staging, applied))
        };

        let _g = self.write_lock();
        if let Some((staging, a)) = staged {
            self.snapshots.commit_layer(staging, &a.diff_id, a.tar_size, a.content_size, &a.skeleton.unwrap_or_default())?;
        }
        let parent = base.map(|b| b.id.clone()).unwrap_or_default();
        self.add_image_locked(&image.to_bytes(), &parent, &reference.into_iter().collect::<Vec<_>>())
    }
}
