//! What `network inspect`, `network ls` and `network prune` see: the Engine API's view of
//! a network, Docker's list filters, and removing the unused ones.

use std::collections::BTreeMap;

use berth_api::filters::Filters;
use berth_api::models::{Ipam, IpamConfig, Network, NetworkContainer};

use crate::model::NetworkRecord;
use crate::service::NetworkService;
use crate::{NetError, Result};

impl NetworkService {
    /// The Engine API's view of a network.
    pub fn view(&self, n: &NetworkRecord, verbose_containers: bool) -> Network {
        let mut config: Vec<IpamConfig> = n
            .subnet
            .map(|s| IpamConfig {
                subnet: s.to_string(),
                ip_range: n.ip_range.map(|r| r.to_string()).unwrap_or_default(),
                gateway: n.gateway.map(|g| g.to_string()).unwrap_or_default(),
                auxiliary_addresses: if n.aux.is_empty() {
                    None
                } else {
                    Some(n.aux.iter().map(|(k, v)| (k.clone(), v.to_string())).collect())
                },
            })
            .into_iter()
            .collect();
        if let Some(v6) = &n.v6 {
            config.push(IpamConfig {
                subnet: v6.subnet.to_string(),
                ip_range: v6.ip_range.map(|r| r.to_string()).unwrap_or_default(),
                gateway: v6.gateway.to_string(),
                auxiliary_addresses: if v6.aux.is_empty() {
                    None
                } else {
                    Some(v6.aux.iter().map(|(k, v)| (k.clone(), v.to_string())).collect())
                },
            });
        }
        let config = Some(config);
        let prefix = n.subnet.map(|s| s.prefix).unwrap_or(0);
        let prefix6 = n.v6.as_ref().map(|v| v.subnet.prefix).unwrap_or(0);
        let containers = if verbose_containers {
            n.endpoints
                .values()
                .map(|e| {
                    (
                        e.container.clone(),
                        NetworkContainer {
                            name: e.name.clone(),
                            endpoint_id: e.endpoint_id.clone(),
                            mac_address: e.mac.clone(),
                            ipv4_address: format!("{}/{prefix}", e.ip),
                            ipv6_address: e.ip6.map(|i| format!("{i}/{prefix6}")).unwrap_or_default(),
                        },
                    )
                })
                .collect()
        } else {
            BTreeMap::new()
        };
        Network {
            name: n.name.clone(),
            id: n.id.clone(),
            created: n.created.clone(),
            scope: if n.driver == "overlay" { "global" } else { "local" }.into(),
            driver: n.driver.clone(),
            enable_ipv4: true,
            enable_ipv6: n.ipv6,
            ipam: Ipam { driver: "default".into(), config, options: None },
            internal: n.internal,
            attachable: n.attachable,
            ingress: false,
            containers,
            options: n.options.clone(),
            labels: n.labels.clone(),
        }
    }

    /// `GET /networks`.
    pub fn list(&self, f: &Filters) -> Result<Vec<Network>> {
        f.check_names(&["dangling", "driver", "id", "label", "name", "scope", "type"]).map_err(NetError::Invalid)?;
        let st = self.lock();
        let mut out = Vec::new();
        for n in st.nets.values() {
            let kind = if n.is_user_defined() { "custom" } else { "builtin" };
            if !f.any_or_absent("driver", |v| v == n.driver)
                || !f.any_or_absent("id", |v| n.id.starts_with(v))
                || !f.matches_regex("name", &n.name)
                || !f.any_or_absent("type", |v| v == kind)
                || !f.any_or_absent("scope", |v| v == if n.driver == "overlay" { "global" } else { "local" })
                || !f.labels_match("label", &n.labels)
                || !f.any_or_absent("dangling", |v| {
                    (v == "true" || v == "1") == (n.endpoints.is_empty() && n.is_user_defined())
                })
            {
                continue;
            }
            out.push(self.view(n, false));
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// `POST /networks/prune`: user-defined networks no container uses.
    pub fn prune(&self, f: &Filters) -> Result<Vec<String>> {
        f.check_names(&["until", "label", "label!"]).map_err(NetError::Invalid)?;
        let until = f.prune_until(berth_api::time::now_nanos()).map_err(NetError::Invalid)?;
        let candidates: Vec<NetworkRecord> = self
            .lock()
            .nets
            .values()
            .filter(|n| n.is_user_defined() && n.endpoints.is_empty())
            .filter(|n| until.is_none_or(|u| berth_api::time::parse_rfc3339(&n.created).unwrap_or(0) <= u))
            .filter(|n| f.prune_labels_match(&n.labels))
            .cloned()
            .collect();
        let mut gone = Vec::new();
        let containers = if candidates.is_empty() { Vec::new() } else { self.containers.all() };
        for n in candidates {
            // Networks named by stopped containers are kept.
            let named = containers
                .iter()
                .any(|r| r.network_mode == n.name || r.network_mode == n.id || r.endpoints.contains_key(&n.name));
            if named {
                continue;
            }
            if self.remove(&n.id).is_ok() {
                gone.push(n.name);
            }
        }
        Ok(gone)
    }
}
