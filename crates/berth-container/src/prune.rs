//! `docker container prune`.

use std::sync::Arc;

use crate::ContainerService;
use crate::record::{NAMESPACE_LABEL, Record};

impl ContainerService {
    /// Removes every container that is down (not running, restarting or paused), belongs to
    /// no other namespace (kubelet keeps its exited containers for restarts and logs) and is
    /// `selected`. Returns the removed IDs and the bytes their writable layers held, sized
    /// before removal. Sizing walks and deletions run on the blocking pool.
    pub async fn prune(self: &Arc<Self>, selected: impl Fn(&Record) -> bool) -> (Vec<String>, i64) {
        let mut deleted = Vec::new();
        let mut reclaimed = 0i64;
        for e in self.all() {
            let rec = e.record();
            if rec.state.is_running() || rec.state.is_restarting() || rec.state.is_paused() {
                continue;
            }
            if rec.config.labels.contains_key(NAMESPACE_LABEL) || !selected(&rec) {
                continue;
            }
            let upper = self.images.snapshots().upper_dir(&rec.id).ok();
            let size = match upper {
                Some(p) => {
                    crate::offload::blocking(move || berth_store::snapshot::dir_size(&p) as i64).await.unwrap_or(0)
                }
                None => 0,
            };
            if self.remove(&rec.id, false, false).await.is_ok() {
                deleted.push(rec.id.clone());
                reclaimed += size;
            }
        }
        (deleted, reclaimed)
    }
}
