//! Puts an overlay network's data plane back on this host after its VXLAN device was
//! deleted behind the daemon's back (by hand, say): the device's macvlan children, the
//! host's gateway and every local container's interface, went with it.

use super::{Cluster, dataplane};
use crate::Result;
use crate::attach::{Placement, wanted_networks};
use crate::model::NetworkRecord;
use crate::nl::Nl;
use crate::service::NetworkService;

impl NetworkService {
    /// For `net`, which has endpoints here but no VXLAN device (the sync found it so):
    /// makes the device and the gateway again and gives each running local container its
    /// interface back (same address and MAC, its old name if free, the default route if
    /// this is its primary network). A repair that fails is tried again at the next sync.
    pub(crate) async fn repair(&self, cl: &Cluster, net: &NetworkRecord) -> Result<()> {
        eprintln!("berth daemon: overlay network {}: its VXLAN device is gone; making it again", net.name);
        let mtu = cl.mtu(self.opts.mtu);
        dataplane::ensure(&self.nl, net, cl.advertise, mtu).await?;
        if dataplane::bridge_layout(&self.nl, net).await? {
            // The bridge layout: the containers' veths are still on the bridge.
            return Ok(());
        }
        // Endpoints still being set up (claimed, data plane not yet made) are their
        // joiner's to plumb.
        let pending = cl.pending.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for (id, ep) in &net.endpoints {
            if pending.contains_key(&(net.id.clone(), ep.ip)) {
                continue;
            }
            let Ok(rec) = self.containers.get(id) else { continue };
            let ns = self.ns_path(id);
            if !rec.running || !ns.exists() {
                continue;
            }
            let ns_nl = {
                let _g = self.rt.enter();
                Nl::in_ns(&ns, &self.rt)?
            };
            let wanted = wanted_networks(&rec);
            let at = wanted.iter().position(|w| *w == net.name);
            let mut ifname = format!("eth{}", at.unwrap_or(wanted.len()));
            let mut k = 0;
            while ns_nl.index(&ifname).await?.is_some() {
                ifname = format!("eth{k}");
                k += 1;
            }
            let place = Placement { ns: &ns, ifname: &ifname, default_route: at == Some(0), mtu: Some(mtu) };
            NetworkService::plumb(&self.nl, &ns_nl, net, ep, place).await?;
        }
        Ok(())
    }
}
