//! `docker commit` (and the builder's steps): a container's changes become a new layer on
//! top of its image.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use berth_api::models::ContainerConfig;
use berth_archive::apply::{ApplyOptions, apply};
use berth_archive::walk::{WalkOptions, write_tree};

use berth_store::snapshot::Staging;

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
    /// Publish the new layer without waiting for the disk (the builder's steps); the caller
    /// makes it durable later with `Snapshotter::sync_pending`.
    pub defer_sync: bool,
    /// The committed container's own configuration (`ContainerConfig` in inspect, naming
    /// the image the container was made from).
    pub container_config: Option<ContainerConfig>,
}

/// Where a committed image's new layer comes from.
pub enum NewLayer {
    /// None: a metadata-only step (`empty_layer` in its history row).
    Empty,
    /// A directory (a container's overlay upper directory) to copy into a new layer.
    Copy(PathBuf),
    /// A staging directory already laid out as the layer (the builder's COPY): it is
    /// hashed where it is and published as is, without a second copy. `content_ids` are
    /// the content digests of files in it (by path) known to the caller: with them the
    /// layer's digest resumes where an earlier layer's stream began the same way
    /// (`berth_archive::prefix`).
    Staged { staging: Staging, content_ids: HashMap<String, String> },
    /// A layer the store already has, by diff ID (the builder reusing identical content).
    Existing(String),
}

impl ImageStore {
    /// Turns the overlay upper directory `upper` into a layer (unless `empty_layer`) and
    /// records an image of `base` plus that layer, with `config` as its container config.
    pub fn commit(
        &self,
        base: Option<&Image>,
        upper: &Path,
        config: &ContainerConfig,
        opts: &CommitOptions,
    ) -> Result<Image> {
        let layer = if opts.empty_layer { NewLayer::Empty } else { NewLayer::Copy(upper.to_path_buf()) };
        self.commit_layer(base, layer, config, opts)
    }

    /// Records an image of `base` plus `layer`, with `config` as its container config.
    /// `opts.empty_layer` is taken from `layer`.
    pub fn commit_layer(
        &self,
        base: Option<&Image>,
        layer: NewLayer,
        config: &ContainerConfig,
        opts: &CommitOptions,
    ) -> Result<Image> {
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
            empty_layer: matches!(layer, NewLayer::Empty),
        });

        let staged = match layer {
            NewLayer::Empty => None,
            NewLayer::Existing(diff_id) => {
                image.rootfs.diff_ids.push(diff_id);
                None
            }
            NewLayer::Copy(upper) => {
                let staging = self.snapshots.stage()?;
                let dir = std::fs::File::open(&upper)
                    .map_err(|e| ImageError::io(format!("opening {}", upper.display()), e))?;
                let (reader, writer) = std::io::pipe().map_err(|e| ImageError::io("pipe", e))?;
                let applied = std::thread::scope(|s| {
                    let producer = s.spawn(move || {
                        write_tree(
                            dir.as_fd(),
                            "",
                            writer,
                            WalkOptions { overlay_whiteouts: true, ..Default::default() },
                        )
                    });
                    let applied =
                        apply(reader, &staging.path(), &ApplyOptions { record_skeleton: true, ..Default::default() });
                    let walked = producer.join().map_err(|_| ImageError::Invalid("layer writer panicked".into()))?;
                    walked?;
                    Ok::<_, ImageError>(applied?)
                })?;
                image.rootfs.diff_ids.push(applied.diff_id.clone());
                Some((
                    staging,
                    applied.diff_id,
                    applied.tar_size,
                    applied.content_size,
                    applied.skeleton.unwrap_or_default(),
                ))
            }
            NewLayer::Staged { staging, content_ids } => {
                let dir =
                    std::fs::File::open(staging.path()).map_err(|e| ImageError::io("opening the staged layer", e))?;
                let opts = WalkOptions {
                    overlay_whiteouts: true,
                    record_skeleton: true,
                    skip_content: true,
                    ..Default::default()
                };
                let w = write_tree(dir.as_fd(), "", std::io::sink(), opts)?;
                let skeleton = w.skeleton.unwrap_or_default();
                let (digest, tar_size) = self.prefixes.digest(dir.as_fd(), &skeleton, &content_ids)?;
                image.rootfs.diff_ids.push(digest.clone());
                Some((staging, digest, tar_size, w.content_size, skeleton))
            }
        };

        let _g = self.write_lock();
        if let Some((staging, diff_id, tar_size, size, skeleton)) = staged {
            if opts.defer_sync {
                self.snapshots.commit_layer_deferred(staging, &diff_id, tar_size, size, &skeleton)?;
            } else {
                self.snapshots.commit_layer(staging, &diff_id, tar_size, size, &skeleton)?;
            }
        }
        let parent = base.map(|b| b.id.clone()).unwrap_or_default();
        self.add_image_locked(&image.to_bytes(), &parent, &reference.into_iter().collect::<Vec<_>>())
    }
}
