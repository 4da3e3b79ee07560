//! Changes to a running container that are neither its start nor its end: pause and
//! unpause, rename, and its terminal's size.

use berth_shim::proto::{Reply, Request};

use crate::{ContainerError, ContainerService, Entry, Result, shim_client};

impl ContainerService {
    pub(crate) fn set_paused(&self, e: &Entry, paused: bool) -> Result<()> {
        let rec = e.record();
        let cg = berth_cgroups::Cgroup::host(&crate::cgroup_path(&self.cfg.cgroup_parent, &rec))
            .map_err(|e| ContainerError::Internal(e.to_string()))?;
        cg.freeze(paused).map_err(|e| ContainerError::Internal(e.to_string()))?;
        e.update(|r| {
            r.state.paused = paused;
            r.state.status = if paused { "paused".into() } else { "running".into() };
        });
        self.persist(e)
    }

    /// `docker pause` / `unpause`.
    pub async fn pause(&self, id: &str, paused: bool) -> Result<()> {
        let e = self.get(id)?;
        let _op = e.op.lock().await;
        let rec = e.record();
        if !rec.state.running {
            return Err(ContainerError::Conflict(format!("Container {} is not running", rec.id)));
        }
        if paused && rec.state.paused {
            return Err(ContainerError::Conflict(format!("Container {} is already paused", rec.id)));
        }
        if !paused && !rec.state.paused {
            return Err(ContainerError::Conflict(format!("Container {} is not paused", rec.id)));
        }
        self.set_paused(&e, paused)?;
        self.emit(&rec, if paused { "pause" } else { "unpause" }, &[]);
        Ok(())
    }

    /// `docker rename`.
    pub async fn rename(&self, id: &str, new_name: &str) -> Result<()> {
        let e = self.get(id)?;
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
        self.emit(&e.record(), "rename", &[("oldName", format!("/{old}"))]);
        Ok(())
    }

    /// `POST /containers/{id}/resize`.
    pub async fn resize(&self, id: &str, rows: u16, cols: u16) -> Result<()> {
        let e = self.get(id)?;
        let rec = e.record();
        if !rec.state.running {
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
