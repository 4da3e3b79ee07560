//! BuildKit's API on berth's builder: what buildx's "docker" driver and compose v2 use
//! (`POST /grpc` and `POST /session`, see `routes::buildkit`).
//!
//! # How a build goes
//!
//! ```text
//!  buildx ─ Control.Solve(ref, session, exporters) ─┐     ┌─ Control.Status(ref) ─► vertexes, logs
//!         ─ LLBBridge.Solve(buildid=ref,            │ Job │
//!             frontend "dockerfile.v0", opts) ──────┤ ref ├─ frontend: sources through the
//!         ─ LLBBridge.Return(ref id) ───────────────┘     │  session, berth's builder
//!                                                          └─ export: tag (moby), files (local, tar)
//! ```
//!
//! buildx runs its "frontend" on the client (BuildKit's gateway API): `Control.Solve` names
//! no frontend and waits for the client's `LLBBridge.Return`; the client asks for the
//! Dockerfile frontend with `LLBBridge.Solve`, which berth answers by running its own
//! builder, not LLB. A client that names the frontend in `Control.Solve` (buildctl) gets the
//! same build directly. Jobs are keyed by the build ref the client picks; the gateway calls
//! carry it in `buildkit-controlapi-buildid`.

pub mod classic;
mod control;
mod export;
mod frontend;
pub mod progress;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_buildkit::session::Sessions;
use tokio::sync::{oneshot, watch};

pub use control::handle;

/// What the gateway's `Return` hands to the waiting `Control.Solve`: the image, if any.
type Outcome = Result<Option<String>, String>;

/// One build, from its first call to a while after it ends.
pub struct Job {
    pub id: String,
    pub progress: progress::Progress,
    session: watch::Sender<String>,
    /// Set by the build's `Control.Solve`: a job that never gets one is dropped.
    solving: watch::Sender<bool>,
    returned: Mutex<Option<oneshot::Sender<Outcome>>>,
    outcome: Mutex<Option<oneshot::Receiver<Outcome>>>,
    /// Gateway result refs → image IDs.
    refs: Mutex<HashMap<String, String>>,
    /// The solve asks for an inline cache (`--cache-to type=inline`); set with the
    /// session, before the frontend reads it.
    inline_cache: std::sync::atomic::AtomicBool,
}

impl Job {
    fn new(id: &str) -> Job {
        let (tx, rx) = oneshot::channel();
        Job {
            id: id.to_string(),
            progress: progress::Progress::default(),
            session: watch::channel(String::new()).0,
            solving: watch::channel(false).0,
            returned: Mutex::new(Some(tx)),
            outcome: Mutex::new(Some(rx)),
            refs: Mutex::new(HashMap::new()),
            inline_cache: Default::default(),
        }
    }

    /// The session the build's `Control.Solve` names, waiting for that call.
    async fn session_id(&self) -> Option<String> {
        let mut rx = self.session.subscribe();
        let r = tokio::time::timeout(SESSION_WAIT, rx.wait_for(|s| !s.is_empty())).await;
        r.ok().and_then(|r| r.ok()).map(|s| s.clone())
    }

    fn finish_gateway(&self, outcome: Outcome) {
        if let Some(tx) = lock(&self.returned).take() {
            let _ = tx.send(outcome);
        }
    }

    fn remember(&self, image: &str) -> String {
        let mut refs = lock(&self.refs);
        let id = format!("berth-{}-{}", refs.len(), &image.trim_start_matches("sha256:")[..12.min(image.len())]);
        refs.insert(id.clone(), image.to_string());
        id
    }

    fn image_of(&self, r: &str) -> Option<String> {
        lock(&self.refs).get(r).cloned()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// How long a build waits for its session (the client opens it with the solve).
const SESSION_WAIT: Duration = Duration::from_secs(60);
/// How long a finished job stays, for a `Status` call that comes after the solve ended.
const KEEP_FINISHED: Duration = Duration::from_secs(120);

/// BuildKit's state in the daemon: sessions and builds in flight.
#[derive(Default)]
pub struct BuildKit {
    pub sessions: Sessions,
    jobs: Mutex<HashMap<String, Arc<Job>>>,
}

impl BuildKit {
    /// The job for build ref `id`, made by whichever of its calls comes first (`Status`
    /// and the gateway's calls may precede `Control.Solve`). One that no `Control.Solve`
    /// claims within [`SESSION_WAIT`] is ended (its `Status` streams close) and dropped, so
    /// calls for refs nobody solves hold nothing.
    fn job(self: &Arc<Self>, id: &str) -> Arc<Job> {
        let mut jobs = lock(&self.jobs);
        if let Some(j) = jobs.get(id) {
            return j.clone();
        }
        let job = Arc::new(Job::new(id));
        jobs.insert(id.to_string(), job.clone());
        drop(jobs);
        let (me, j) = (self.clone(), job.clone());
        let mut solving = job.solving.subscribe();
        tokio::spawn(async move {
            if tokio::time::timeout(SESSION_WAIT, solving.wait_for(|s| *s)).await.is_err() {
                j.progress.close();
                me.forget(&j);
            }
        });
        job
    }

    /// Drops `job`, unless its ref has since gone to another job.
    fn forget(&self, job: &Arc<Job>) {
        let mut jobs = lock(&self.jobs);
        if jobs.get(&job.id).is_some_and(|j| Arc::ptr_eq(j, job)) {
            jobs.remove(&job.id);
        }
    }

    fn forget_later(self: &Arc<Self>, job: &Arc<Job>) {
        let (me, job) = (self.clone(), job.clone());
        tokio::spawn(async move {
            tokio::time::sleep(KEEP_FINISHED).await;
            me.forget(&job);
        });
    }
}
