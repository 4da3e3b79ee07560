//! Container networking available to the container service: `none`, `host`,
//! `container:<name>`; every other mode gets its own network namespace with loopback only.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock, Weak};

use berth_container::network::{Attachment, Networks};
use berth_container::record::Record;
use berth_container::{ContainerError, ContainerService};

#[derive(Default)]
pub struct LocalNetworks {
    containers: OnceLock<Weak<ContainerService>>,
}

impl Networks for LocalNetworks {
    fn connect(&self, c: &Record) -> berth_container::Result<Attachment> {
        let mode = c.host_config.network_mode_or_default();
        if mode == "host" {
            return Ok(Attachment { host: true, ..Default::default() });
        }
        if let Some(other) = mode.strip_prefix("container:") {
            let svc = self.containers.get().and_then(Weak::upgrade).ok_or_else(|| ContainerError::Internal("container service unavailable".into()))?;
            let o = svc.get(other)?.record();
            if !o.state.running {
                return Err(ContainerError::Conflict(format!("cannot join network namespace of a non running container: container {} is not running", o.id)));
            }
            return Ok(Attachment {
                netns: Some(PathBuf::from(format!("/proc/{}/ns/net", o.state.pid))),
                settings: o.network.clone(),
                ..Default::default()
            });
        }
        Ok(Attachment::default())
    }

    fn disconnect(&self, _c: &Record) {}
}

pub fn basic_networks() -> Arc<LocalNetworks> {
    Arc::new(LocalNetworks::default())
}

pub fn bind_lookup(n: &Arc<LocalNetworks>, svc: &Arc<ContainerService>) {
    let _ = n.containers.set(Arc::downgrade(svc));
}
