//! Legacy links (`--link name:alias`) as container configuration: removing one link
//! (`DELETE /containers/{parent}/{alias}?link=1`) without removing a container.

use crate::{ContainerError, ContainerService, Result};

/// The target and alias of a link (`name:alias`, or Docker's normalized
/// `/name:/parent/alias`; a bare `name` is its own alias).
pub fn link_parts(link: &str) -> (&str, &str) {
    let (target, alias) = link.split_once(':').unwrap_or((link, link));
    let alias = alias.trim_start_matches('/');
    (target.trim_start_matches('/'), alias.rsplit('/').next().unwrap_or(alias))
}

/// The alias a link gives its target.
pub fn link_alias(link: &str) -> &str {
    link_parts(link).1
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
        assert_eq!(super::link_parts("/db:/web/database"), ("db", "database"));
    }
}
