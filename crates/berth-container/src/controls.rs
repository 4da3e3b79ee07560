//! Changes to a running container that are neither its start nor its end: pause and
//! unpause, rename, and its terminal's size.

use std::time::Duration;

use berth_shim::proto::{Reply, Request};

use crate::state::{Event, StateError, Status};
use crate::{ContainerError, ContainerService, Entry, Result, shim_client};

impl ContainerService {
    /// Freezes or thaws the container's cgroup, then records the change. A container that
    /// is not (or no longer) in the status the change needs is refused with
    /// [`pause_refused`]'s words, its cgroup untouched. The wait for the freezer to settle
    /// sleeps asynchronously: a container that takes long to freeze holds no runtime thread.
    pub(crate) async fn set_paused(&self, e: &Entry, paused: bool) -> Result<()> {
        let event = if paused { Event::Pause } else { Event::Unpause };
        let rec = e.record();
        rec.state.check(event).map_err(|err| pause_refused(&rec.id, err))?;
        let cg = berth_cgroups::Cgroup::host(&crate::cgroup_path(&self.cfg.cgroup_parent, &rec))
            .map_err(|e| ContainerError::Internal(e.to_string()))?;
        settle_freezer(&cg, paused).await.map_err(|e| ContainerError::Internal(e.to_string()))?;
        // Not under the operation lock when `kill` thaws: the process may have ended since.
        e.update(|r| if paused { r.state.pause() } else { r.state.unpause() })
            .map_err(|err| pause_refused(&rec.id, err))?;
        self.persist(e)
    }

    /// `docker pause` / `unpause`.
    #[tracing::instrument(name = "pause", skip_all, fields(container = tracing::field::Empty))]
    pub async fn pause(&self, id: &str, paused: bool) -> Result<()> {
        let e = self.get(id)?;
        crate::name_in_span(&e);
        let _op = e.op.lock().await;
        let rec = e.record();
        self.set_paused(&e, paused).await?;
        self.emit(&rec, if paused { "pause" } else { "unpause" }, &[]);
        Ok(())
    }

    /// `docker rename`.
    #[tracing::instrument(name = "rename", skip_all, fields(container = tracing::field::Empty))]
    pub async fn rename(&self, id: &str, new_name: &str) -> Result<()> {
        let e = self.get(id)?;
        crate::name_in_span(&e);
        let _op = e.op.lock().await;
        let new_name =
            berth_api::names::validate_container_name(new_name).map_err(ContainerError::Invalid)?.to_string();
        let rec = e.record();
        if rec.name == new_name {
            return Err(ContainerError::Invalid("Renaming a container with the same name as its current name".into()));
        }
        self.reserve_name(&new_name, &rec.id)?;
        let old = rec.name.clone();
        e.update(|r| r.name = new_name.clone());
        if let Err(err) = self.persist(&e) {
            e.update(|r| r.name = old.clone());
            self.release_name(&new_name, &rec.id);
            return Err(err);
        }
        self.release_name(&old, &rec.id);
        // Names the network service answers for (its embedded DNS) follow.
        self.networks.renamed(&e.record());
        self.emit(&e.record(), "rename", &[("oldName", format!("/{old}"))]);
        Ok(())
    }

    /// `POST /containers/{id}/resize`.
    pub async fn resize(&self, id: &str, rows: u16, cols: u16) -> Result<()> {
        let e = self.get(id)?;
        let rec = e.record();
        if !rec.state.is_running() {
            return Err(ContainerError::Conflict(format!("Container {} is not running", rec.id)));
        }
        let reply: Reply =
            shim_client::call(&self.socket_path(&rec.id), &Request::Resize { exec: None, rows, cols }).await?;
        match reply.error {
            Some(e) => Err(ContainerError::Internal(e)),
            None => {
                self.emit(&rec, "resize", &[("height", rows.to_string()), ("width", cols.to_string())]);
                Ok(())
            }
        }
    }
}

/// How long a freeze may take to settle before the pause gives up: runc's bound for a cgroup v2
/// freeze. A task in uninterruptible sleep (waiting on a FUSE server, say) holds the group in
/// between until the sleep ends.
const FREEZE_DEADLINE: Duration = Duration::from_secs(10);

/// Asks for the freeze or thaw and polls until it settles, sleeping with `tokio::time`
/// between reads (1 ms, doubling up to 50 ms). A freeze that does not settle in time, that
/// cannot be read, or whose caller goes away while waiting (the request dropped with its
/// connection) is undone, as runc does: a half-frozen container would be neither running nor
/// paused, while its record still says running.
async fn settle_freezer(cg: &berth_cgroups::Cgroup, frozen: bool) -> berth_cgroups::Result<()> {
    cg.request_freeze(frozen)?;
    let mut undo = ThawUnlessSettled { cg, armed: frozen };
    let deadline = tokio::time::Instant::now() + FREEZE_DEADLINE;
    let mut wait = Duration::from_millis(1);
    loop {
        if cg.freeze_settled(frozen)? {
            undo.armed = false;
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            let what = if frozen { "freeze" } else { "thaw" };
            return Err(berth_cgroups::CgroupError::Invalid(format!(
                "the cgroup did not {what} within {}s: a process in it may be in uninterruptible sleep",
                FREEZE_DEADLINE.as_secs()
            )));
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_millis(50));
    }
}

/// Thaws the group when dropped armed: a freeze that was asked for and did not settle, on
/// every way out of [`settle_freezer`] (its error returns and its future being dropped).
/// A thaw left unfinished needs no undoing: it completes by itself, and a second `unpause`
/// finds the group thawed.
struct ThawUnlessSettled<'a> {
    cg: &'a berth_cgroups::Cgroup,
    armed: bool,
}

impl Drop for ThawUnlessSettled<'_> {
    fn drop(&mut self) {
        if self.armed
            && let Err(err) = self.cg.request_freeze(false)
        {
            tracing::error!("thawing a group that did not freeze: {err}");
        }
    }
}

/// Docker's words for a pause or unpause the container's status does not allow.
fn pause_refused(id: &str, err: StateError) -> ContainerError {
    ContainerError::Conflict(match (err.event, err.from) {
        (Event::Pause, Status::Paused) => format!("Container {id} is already paused"),
        (Event::Unpause, Status::Running) => format!("Container {id} is not paused"),
        _ => format!("Container {id} is not running"),
    })
}
