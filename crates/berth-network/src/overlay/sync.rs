//! The sync loop: keeps this host's lease alive and makes the host match the store,
//! whenever the store changes (a watch) and every heartbeat anyway.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use super::plan::{self, ClusterEndpoint};
use super::{Cluster, dataplane, ops};
use crate::etcd::{Cmp, Op};
use crate::model::NetworkRecord;
use crate::service::NetworkService;
use crate::{NetError, Result};

/// A claimed address not recorded locally within this long was abandoned (its container
/// failed to start, say) and is withdrawn.
const PENDING_GRACE: Duration = Duration::from_secs(60);

impl NetworkService {
    /// Starts the watch and the sync loop (after start-up reconciliation, so that this
    /// host's endpoints are the ones of running containers). No-op without a cluster.
    pub fn spawn_cluster_sync(self: &Arc<Self>) {
        let Some(cl) = self.cluster.get().cloned() else { return };
        let watcher = cl.clone();
        self.rt.spawn(async move {
            loop {
                // Whatever happened while no watch was open is picked up by a full sync.
                watcher.kick.notify_one();
                let _ = watcher.client.watch(plan::ROOT, 0, || watcher.kick.notify_one()).await;
                tokio::time::sleep(watcher.opts.heartbeat.min(Duration::from_secs(1))).await;
            }
        });
        let me = Arc::downgrade(self);
        self.rt.spawn(async move {
            loop {
                let Some(svc) = me.upgrade() else { return };
                let r = svc.sync_once(&cl).await;
                note(&cl, &r);
                drop(svc);
                tokio::select! {
                    _ = cl.kick.notified() => {}
                    _ = tokio::time::sleep(cl.opts.heartbeat) => {}
                }
            }
        });
    }

    /// One pass: renew (or re-grant) the lease, copy networks in and out, re-register or
    /// withdraw this host's endpoints, learn the other hosts' ones and program the kernel.
    async fn sync_once(&self, cl: &Cluster) -> Result<()> {
        let id = *cl.lease.lock().await;
        if id != 0 && !cl.client.keepalive(id).await? {
            eprintln!("berth daemon: the cluster lease of {} expired; registering again", cl.advertise);
            *cl.lease.lock().await = 0;
        }
        let lease = cl.lease().await?;

        let store: BTreeMap<String, NetworkRecord> =
            ops::list_networks(cl).await?.into_iter().map(|n| (n.id.clone(), n)).collect();
        self.copy_networks(cl, &store).await?;

        let (kvs, _) = cl.client.list(&plan::all_endpoints_prefix()).await?;
        let mut mine: BTreeMap<(String, Ipv4Addr), (ClusterEndpoint, i64)> = BTreeMap::new();
        let mut theirs: BTreeMap<(String, Ipv4Addr), ClusterEndpoint> = BTreeMap::new();
        let mut remote: BTreeMap<String, Vec<ClusterEndpoint>> = BTreeMap::new();
        for kv in &kvs {
            let Ok(e) = serde_json::from_slice::<ClusterEndpoint>(&kv.value) else { continue };
            if e.host == cl.advertise {
                mine.insert((e.network.clone(), e.ip), (e, kv.lease));
            } else {
                theirs.insert((e.network.clone(), e.ip), e.clone());
                remote.entry(e.network.clone()).or_default().push(e);
            }
        }
        *cl.remote.lock().unwrap_or_else(|p| p.into_inner()) = remote;

        // This host's endpoints: exactly the local ones, under the current lease.
        let (local, overlays) = {
            let st = self.lock();
            let overlays: Vec<NetworkRecord> = st.nets.values().filter(|n| n.driver == "overlay").cloned().collect();
            let local: BTreeMap<(String, Ipv4Addr), ClusterEndpoint> = overlays
                .iter()
                .flat_map(|n| {
                    n.endpoints.values().map(move |e| ((n.id.clone(), e.ip), ops::cluster_endpoint(n, e, cl.advertise)))
                })
                .collect();
            (local, overlays)
        };
        for (k, want) in &local {
            if mine.get(k).is_some_and(|(have, l)| have == want && *l == lease) {
                continue;
            }
            if let Some(other) = theirs.get(k) {
                eprintln!(
                    "berth daemon: address {} of {} on overlay network {} is claimed by host {} too",
                    k.1, want.name, k.0, other.host
                );
                continue;
            }
            let key = plan::endpoint_key(&k.0, k.1);
            let value = serde_json::to_vec(want).map_err(|e| NetError::System(e.to_string()))?;
            // Only onto a free key or our own: a host that came back never takes an address
            // someone else claimed meanwhile.
            if mine.contains_key(k) {
                cl.client.put(&key, &value, lease).await?;
            } else {
                cl.client
                    .txn(
                        &[Cmp::Absent(key.clone()), Cmp::Present(plan::network_key(&k.0))],
                        &[Op::Put { key, value, lease }],
                    )
                    .await?;
            }
        }
        let pending: BTreeSet<(String, Ipv4Addr)> = {
            let mut p = cl.pending.lock().unwrap_or_else(|p| p.into_inner());
            p.retain(|_, t| t.elapsed() < PENDING_GRACE);
            p.keys().cloned().collect()
        };
        for k in mine.keys() {
            if !local.contains_key(k) && !pending.contains(k) {
                cl.client.delete(&plan::endpoint_key(&k.0, k.1)).await?;
            }
        }

        for n in &overlays {
            let remote = cl.remote_of(&n.id);
            let mut programmed = dataplane::program(&self.nl, n, &remote).await;
            // No VXLAN device although containers here use the network: it was deleted
            // behind the daemon's back.
            if matches!(programmed, Ok(false)) && !n.endpoints.is_empty() {
                programmed = match self.repair(cl, n).await {
                    Ok(()) => dataplane::program(&self.nl, n, &remote).await,
                    Err(e) => Err(e),
                };
            }
            if let Err(e) = programmed {
                eprintln!("berth daemon: overlay network {}: {e}", n.name);
            }
        }
        Ok(())
    }

    /// Networks new in the store are copied into this host's records; networks gone from
    /// it are dropped here too (unless a local container still uses one: then it is put
    /// back, as after the store lost its data).
    async fn copy_networks(&self, cl: &Cluster, store: &BTreeMap<String, NetworkRecord>) -> Result<()> {
        let local: Vec<NetworkRecord> = self.lock().nets.values().filter(|n| n.driver == "overlay").cloned().collect();
        let mut copied = false;
        for n in store.values() {
            let mut st = self.lock();
            let changed = match st.nets.get(&n.id) {
                Some(have) => NetworkRecord { endpoints: have.endpoints.clone(), ..n.clone() } != *have,
                None => !st.nets.values().any(|o| o.name == n.name),
            };
            if changed {
                let endpoints = st.nets.get(&n.id).map(|h| h.endpoints.clone()).unwrap_or_default();
                let rec = NetworkRecord { endpoints, ..n.clone() };
                st.nets.insert(rec.id.clone(), rec.clone());
                drop(st);
                self.save(&rec)?;
                copied = true;
            }
        }
        // The firewall knows the network's bridge before any container joins it.
        if copied && let Err(e) = self.apply_rules() {
            eprintln!("berth daemon: {e}");
        }
        for n in local.iter().filter(|n| !store.contains_key(&n.id)) {
            // Created here a moment ago, after the store was read?
            if cl.client.get(&plan::network_key(&n.id)).await?.is_some() {
                continue;
            }
            if n.endpoints.is_empty() {
                if let Err(e) = dataplane::remove(&self.nl, n).await {
                    eprintln!("berth daemon: removing the devices of overlay network {}: {e}", n.name);
                }
                self.forget_overlay(n);
                self.emit("destroy", n);
            } else {
                let value = serde_json::to_vec(&NetworkRecord { endpoints: BTreeMap::new(), ..n.clone() })
                    .map_err(|e| NetError::System(e.to_string()))?;
                cl.client
                    .txn(
                        &[Cmp::Absent(plan::network_key(&n.id))],
                        &[Op::Put { key: plan::network_key(&n.id), value, lease: 0 }],
                    )
                    .await?;
            }
        }
        Ok(())
    }
}

/// Logs when the store becomes unreachable or reachable again (not every failed pass).
fn note(cl: &Cluster, r: &Result<()>) {
    let mut last = cl.reachable.lock().unwrap_or_else(|p| p.into_inner());
    match (r, *last) {
        (Ok(()), Some(true)) | (Err(_), Some(false)) => {}
        (Ok(()), _) => eprintln!("berth daemon: joined the cluster at {} as {}", cl.client.url, cl.advertise),
        (Err(e), _) => eprintln!(
            "berth daemon: error: {e}; overlay networks are unavailable until the cluster store answers (local networks are not affected)"
        ),
    }
    *last = Some(r.is_ok());
}
