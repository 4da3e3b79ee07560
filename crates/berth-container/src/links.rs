//! Legacy links (`--link name:alias`) as container configuration: removing one link
//! (`DELETE /containers/{parent}/{alias}?link=1`) without removing a container.

use crate::{ContainerError, ContainerService, Result};

pub use berth_core::links::{link_alias, link_parts};

impl ContainerService {
    /// Removes the link `alias` from the container `parent`. The container's /etc/hosts
    /// keeps the entry until it restarts, as with Docker.
    pub async fn remove_link(&self, parent: &str, alias: &str) -> Result<()> {
        let e = self.get(parent)?;
        let _op = e.op.lock().await;
        let rec = e.record();
        let links = rec.host_config.links.clone().unwrap_or_default();
        let kept: Vec<String> = links.iter().filter(|l| link_alias(l) != alias).cloned().collect();
        if kept.len() == links.len() {
            return Err(ContainerError::NotFoundPath(format!("Could not find link: /{}/{alias}", rec.name)));
        }
        e.update(|r| r.host_config.links = if kept.is_empty() { None } else { Some(kept.clone()) });
        self.persist(&e)
    }
}
