//! `network connect` and `network disconnect`: a container joins or leaves one network, now if
//! it runs, else at its next start.

use std::path::PathBuf;
use std::sync::Arc;

use berth_api::models::EndpointSettings;
use berth_core::network::Membership;

use crate::attach::{Placement, wanted_networks};
use crate::nl::Nl;
use crate::service::NetworkService;
use crate::{NetError, Result};

impl NetworkService {
    /// `POST /networks/{id}/connect`: a stopped container joins at its next start; a running
    /// one gets the interface now.
    pub fn connect_container(
        self: &Arc<Self>,
        network: &str,
        container: &str,
        settings: EndpointSettings,
    ) -> Result<()> {
        let net = self.find(network)?;
        if matches!(net.driver.as_str(), "host" | "null") {
            return Err(NetError::Forbidden(
                "container cannot be disconnected from host network or connected to host network".to_string(),
            ));
        }
        let rec = self.containers.get(container).map_err(NetError::NotFound)?;
        let mode = rec.network_mode_or_default().to_string();
        if mode == "host" || mode.starts_with("container:") {
            return Err(NetError::Forbidden("container sharing network namespace with another container or host cannot be connected to any other network".to_string()));
        }
        // A container on no network (`none`, or disconnected from its last one) joins this
        // one as its primary network.
        let becomes_primary = mode == "none";
        if net.endpoints.contains_key(&rec.id) || wanted_networks(&rec).contains(&net.name) && !rec.running {
            return Err(NetError::Forbidden(format!(
                "endpoint with name {} already exists in network {}",
                rec.name, net.name
            )));
        }
        // What inspect shows of it from now on: its endpoint if it runs, else the network
        // as asked for (addresses come at start).
        let shown = if rec.running {
            let idx = self.lock().nets.values().filter(|n| n.endpoints.contains_key(&rec.id)).count();
            let ns = PathBuf::from(format!("/proc/{}/ns/net", rec.pid));
            let (netr, ep) = self.reserve_endpoint(&net.name, &rec, Some(&settings), idx)?;
            if netr.driver == "overlay"
                && let Err(err) = self.publish_overlay_endpoint(&netr, &ep)
            {
                self.release_endpoint(&netr.id, &rec.id);
                return Err(err);
            }
            let ns_nl = {
                let _g = self.rt.enter();
                Nl::in_ns(&ns, &self.rt)?
            };
            if netr.v6.is_some() {
                // The container had IPv6 off (no IPv6 network until now).
                crate::v6::set_disabled_in(&ns, false);
            }
            let nl = self.nl.clone();
            let (n2, e2, ns2) = (netr.clone(), ep.clone(), ns.clone());
            let mtu = self.endpoint_mtu(&netr);
            let r = self.rt.block_on(async move {
                let ifname = format!("eth{idx}");
                let at = Placement { ns: &ns2, ifname: &ifname, default_route: idx == 0, mtu };
                NetworkService::plumb(&nl, &ns_nl, &n2, &e2, at).await
            });
            if let Err(err) = r {
                self.release_endpoint(&netr.id, &rec.id);
                return Err(err);
            }
            if netr.is_user_defined() && !self.lock().dns.contains_key(&rec.id) {
                let own = self.ns_path(&rec.id);
                let _ = self.start_dns(&rec, if own.exists() { &own } else { &ns }, !netr.internal);
            }
            Self::endpoint_settings(&netr, &ep, Some(&settings))
        } else {
            EndpointSettings { network_id: net.id.clone(), ..settings.clone() }
        };
        let joined = Membership::Joined {
            network: net.name.clone(),
            shown: Box::new(shown),
            asked: Box::new(settings),
            primary: becomes_primary,
        };
        self.containers.record_membership(&rec.id, joined).map_err(NetError::System)?;
        self.emit_container("connect", &net, &rec.id);
        Ok(())
    }

    /// `POST /networks/{id}/disconnect`.
    pub fn disconnect_container(&self, network: &str, container: &str, force: bool) -> Result<()> {
        let net = self.find(network)?;
        let rec = match self.containers.get(container) {
            Ok(rec) => rec,
            Err(_) if force => {
                let st_id = net
                    .endpoints
                    .values()
                    .find(|ep| ep.name == container || ep.container.starts_with(container))
                    .map(|ep| ep.container.clone());
                if let Some(id) = st_id {
                    self.release_endpoint(&net.id, &id);
                }
                return Ok(());
            }
            Err(e) => return Err(NetError::NotFound(e)),
        };
        let in_config = wanted_networks(&rec).contains(&net.name);
        if !net.endpoints.contains_key(&rec.id) && !in_config {
            return Err(NetError::Forbidden(format!("container {} is not connected to network {}", rec.id, net.name)));
        }
        if let Some((n, ep)) = self.release_endpoint(&net.id, &rec.id) {
            if n.driver == "bridge" || n.driver == "overlay" {
                let nl = self.nl.clone();
                let _ = self.rt.block_on(async move { nl.delete(&ep.host_ifname).await });
            }
            if n.driver != "bridge" && rec.running {
                // macvlan/ipvlan children (overlay endpoints among them) live in the
                // container: find them by address.
                let ns = PathBuf::from(format!("/proc/{}/ns/net", rec.pid));
                let ns_nl = {
                    let _g = self.rt.enter();
                    Nl::in_ns(&ns, &self.rt)
                };
                if let Ok(ns_nl) = ns_nl {
                    let ip = ep.ip;
                    let _ = self.rt.block_on(async move { ns_nl.delete_by_addr(ip).await });
                }
            }
        }
        let left = Membership::Left { network: net.name.clone(), was_primary: rec.network_mode == net.name };
        self.containers.record_membership(&rec.id, left).map_err(NetError::System)?;
        self.emit_container("disconnect", &net, &rec.id);
        Ok(())
    }
}
