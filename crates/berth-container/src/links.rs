//! Legacy links (`--link name:alias`) as container configuration: removing one link
//! (`DELETE /containers/{parent}/{alias}?link=1`) without removing a container.

use crate::{ContainerError, ContainerService, Result};

/// The alias a `HostConfig.Links` entry gives its target (`name:alias`, or Docker's
/// normalized `/name:/parent/alias`).
pub fn link_alias(link: &str) -> &str {
    let (_, alias) = link.split_once(':').unwrap_or((link, link));
    alias.trim_start_matches('/').rsplit('/').next().unwrap_or(alias)
}

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

#[cfg(test)]
mod tests {
    #[test]
    fn aliases_of_both_link_forms() {
        assert_eq!(super::link_alias("db:database"), "database");
        assert_eq!(super::link_alias("/db:/web/database"), "database");
        assert_eq!(super::link_alias("db"), "db");
    }
}
