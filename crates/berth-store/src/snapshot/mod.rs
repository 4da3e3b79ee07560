//! The snapshotter: unpacked layers and the writable layers of containers, on overlayfs.
//!
//! # Vocabulary
//!
//! - A **layer** is one unpacked image layer, identified by its diff ID (the SHA-256 of its
//!   uncompressed tar). Its directory holds the files exactly as overlayfs expects a lower
//!   directory: deletions are overlay whiteouts (0:0 character devices) and directories that
//!   hide lower content carry `trusted.overlay.opaque=y`. A layer's content does not depend on
//!   the layers below it, so a diff ID names one directory however many images share it.
//! - A **staging** directory is where a layer is unpacked before it exists. It has no name
//!   anyone can look up; [`Snapshotter::commit_layer`] publishes it by one rename.
//! - An **active snapshot** is a container's writable layer: an `upper` directory that
//!   receives its changes and the `work` directory overlayfs needs, keyed by container ID.
//!   [`Snapshotter::prepare`] creates it and returns the [`MountSpec`] that mounts the
//!   container's root: the image's layers read-only, the upper directory on top.
//!
//! # Lifecycle
//!
//! ```text
//!  stage() ──unpack (berth-archive)──► commit_layer(diff_id) ──► layer ─┐
//!     │                                                                  │ remove_layer()
//!     └─ dropped / crash: swept at next start                           ▼
//!  prepare(container, [layers]) ──► MountSpec ──(runtime mounts it)──► remove(container)
//! ```
//!
//! # Guarantees
//!
//! - A layer directory is complete or absent: staging is published by rename, after its
//!   contents and metadata are written and the filesystem is synced. The builder publishes
//!   its steps' layers before the sync (`commit_layer_deferred`) and flushes once per build;
//!   such a layer is marked until then, and a marked layer found at start after the host
//!   went down is re-hashed and removed if damaged (`recover_unsynced`).
//! - Each layer keeps a skeleton of its tar (see `berth_archive::skeleton`), so
//!   [`Snapshotter::write_layer_tar`] reproduces the original stream byte for byte and its
//!   digest is the layer's diff ID.
//! - The snapshotter never mounts anything itself. Mounting happens in the container's own
//!   mount namespace (the shim's), so a crash never leaves a mount behind on the host.
//! - Removal of a layer still used by an image is the image service's concern; here removal
//!   is unconditional and idempotent.

mod overlay;

pub use overlay::{Snapshotter, Staging, dir_size};

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// What is stored beside each layer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LayerInfo {
    pub diff_id: String,
    /// Length of the layer's uncompressed tar.
    pub tar_size: u64,
    /// Bytes of file content the layer holds (what `docker history` shows as its size).
    pub size: u64,
    /// Whether a skeleton was kept (layers always have one; kept for older stores).
    pub has_skeleton: bool,
}

/// How to mount a container's root filesystem: overlayfs with `lower` (topmost first)
/// under `upper`, using `work`. A container with no layers gets one empty lower directory.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MountSpec {
    pub lower: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
}

impl MountSpec {
    /// The classic comma-separated overlay mount data. `index` and `redirect_dir` are off so
    /// the upper directory stays a plain diff that can be turned into a layer.
    pub fn overlay_data(&self) -> String {
        let lower: Vec<String> = self.lower.iter().map(|p| p.display().to_string()).collect();
        format!(
            "lowerdir={},upperdir={},workdir={},index=off,redirect_dir=off",
            lower.join(":"),
            self.upper.display(),
            self.work.display()
        )
    }
}
