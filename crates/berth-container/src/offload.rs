//! Where the service's blocking work runs. The container service is async: its public API is
//! called from the daemon's runtime workers, and those few threads answer every request. So
//! whatever may take long without awaiting (a deletion of a large writable layer, a walk
//! that sizes one, a sweep of leftovers) goes to tokio's blocking pool through [`blocking`],
//! inside the service, never left to each caller; and polling (the freezer settling) sleeps
//! with `tokio::time`, holding no thread. Short reads and writes of small files (a record,
//! a cgroup control file) stay inline.

use std::path::PathBuf;
use std::sync::Arc;

use berth_api::models::{ContainerInspect, ContainerSummary, FilesystemChange};

use crate::inspect::ListOptions;
use crate::{ContainerError, ContainerService, Result};

/// Runs `f` on the blocking pool and waits for it.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ContainerError::Internal(format!("blocking task failed: {e}")))
}

/// Deletes the trees at `dirs` on the blocking pool; one already gone is not an error. Every
/// deletion is tried; the failures come back as text, one per tree.
pub(crate) async fn remove_trees(dirs: Vec<PathBuf>) -> Vec<String> {
    blocking(move || delete_trees(dirs)).await.unwrap_or_else(|e| vec![e.to_string()])
}

/// A container's files, all in one trip to the blocking pool: its writable layer (snapshot
/// `id`) and the trees at `dirs`. Every deletion is tried; the failures come back as text.
pub(crate) async fn remove_layer_and_trees(
    images: Arc<berth_image::ImageStore>,
    id: String,
    dirs: Vec<PathBuf>,
) -> Vec<String> {
    let work = move || {
        let mut errors: Vec<String> = images.snapshots().remove(&id).err().map(|e| e.to_string()).into_iter().collect();
        errors.extend(delete_trees(dirs));
        errors
    };
    blocking(work).await.unwrap_or_else(|e| vec![e.to_string()])
}

fn delete_trees(dirs: Vec<PathBuf>) -> Vec<String> {
    let mut errors = Vec::new();
    for dir in dirs {
        if let Err(err) = std::fs::remove_dir_all(&dir)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            errors.push(format!("removing {}: {err}", dir.display()));
        }
    }
    errors
}

/// The views that may walk writable layers, run on the blocking pool.
impl ContainerService {
    /// `GET /containers/json`, newest first (`size` walks every listed writable layer).
    pub async fn list(self: &Arc<Self>, opts: ListOptions) -> Result<Vec<ContainerSummary>> {
        let svc = self.clone();
        blocking(move || svc.list_blocking(&opts)).await?
    }

    /// `GET /containers/{id}/json` (`size` walks the writable layer).
    pub async fn inspect(self: &Arc<Self>, id: &str, size: bool) -> Result<ContainerInspect> {
        let (svc, id) = (self.clone(), id.to_string());
        blocking(move || svc.inspect_blocking(&id, size)).await?
    }

    /// `docker diff`: what the container changed relative to its image.
    pub async fn changes(self: &Arc<Self>, id: &str) -> Result<Vec<FilesystemChange>> {
        let (svc, id) = (self.clone(), id.to_string());
        blocking(move || svc.changes_blocking(&id)).await?
    }
}
