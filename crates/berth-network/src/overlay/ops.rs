//! Overlay operations of the network service: joining the cluster, create and remove,
//! claiming and releasing endpoint addresses, and the DNS view of remote endpoints.
//! Called from blocking contexts (API handlers, the container service), like the rest of
//! the service.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant;

use berth_api::models::{EndpointSettings, NetworkCreateRequest};
use berth_core::network::ContainerView;
use berth_store::schema::NETWORKS;

use super::plan::{self, ClusterEndpoint};
use super::{Cluster, ClusterOptions, dataplane};
use crate::etcd::{self, Cmp, Op};
use crate::ipam::Subnet;
use crate::model::{Endpoint, NetworkRecord};
use crate::service::{NetworkService, State};
use crate::{NetError, Result};

/// How often a create or a claim starts over after losing a race before giving up.
const ATTEMPTS: usize = 16;

impl NetworkService {
    /// Joins the cluster: resolves the advertise address and sets up the store client. No
    /// store traffic yet (the sync loop reports an unreachable store), so a daemon whose
    /// store is down still starts.
    pub async fn join_cluster(&self, opts: ClusterOptions) -> Result<()> {
        let client = etcd::Client::parse(&opts.store).map_err(NetError::Invalid)?;
        let adv = opts
            .advertise
            .rsplit_once(':')
            .filter(|(_, p)| p.parse::<u16>().is_ok())
            .map_or(opts.advertise.as_str(), |(h, _)| h);
        let advertise = match adv.parse::<Ipv4Addr>() {
            Ok(ip) => ip,
            Err(_) => dataplane::interface_address(&self.nl, adv)
                .await
                .map_err(|e| NetError::Invalid(format!("cluster-advertise {adv:?}: {e}")))?,
        };
        let cluster = Cluster {
            client,
            advertise,
            opts,
            lease: tokio::sync::Mutex::new(0),
            remote: Default::default(),
            kick: tokio::sync::Notify::new(),
            reachable: Default::default(),
            pending: Default::default(),
        };
        self.cluster.set(Arc::new(cluster)).map_err(|_| NetError::System("already joined a cluster".into()))
    }

    pub(crate) fn cluster(&self) -> Result<Arc<Cluster>> {
        self.cluster.get().cloned().ok_or_else(|| {
            NetError::Invalid("overlay networks need a cluster store: start the daemon with --cluster-store etcd://HOST:2379 and --cluster-advertise ADDRESS (or cluster-store and cluster-advertise in daemon.json)".into())
        })
    }

    /// `network create -d overlay`.
    pub(crate) fn create_overlay(&self, req: NetworkCreateRequest) -> Result<(String, String)> {
        let cl = self.cluster()?;
        if req.options.contains_key("encrypted") {
            return Err(NetError::Invalid(
                "encrypted overlay networks (-o encrypted) are not yet available in berth".into(),
            ));
        }
        if req.enable_ipv6.unwrap_or(false) {
            return Err(NetError::Invalid("IPv6 is not yet available on overlay networks".into()));
        }
        let cfgs = req.ipam.as_ref().and_then(|i| i.config.clone()).unwrap_or_default();
        if cfgs.len() > 1 || cfgs.iter().any(|c| c.subnet.contains(':')) {
            return Err(NetError::Invalid("berth supports one IPv4 subnet per overlay network".into()));
        }
        let cfg = cfgs.into_iter().next().unwrap_or_default();
        let given =
            if cfg.subnet.is_empty() { None } else { Some(Subnet::parse(&cfg.subnet).map_err(NetError::Invalid)?) };
        let wanted_vni = plan::requested_vni(&req.options)?;
        let local_subnets: Vec<Subnet> = self.lock().nets.values().filter_map(|n| n.subnet).collect();
        if self.lock().nets.values().any(|n| n.name == req.name) {
            return Err(NetError::Conflict(format!("network with name {} already exists", req.name)));
        }
        let rec = self.rt.block_on(async {
            for _ in 0..ATTEMPTS {
                let seq = cl.client.get(&plan::networks_seq_key()).await?.map_or(0, |k| k.mod_revision);
                let existing = list_networks(&cl).await?;
                let subnet = match given {
                    Some(s) => s,
                    None => {
                        let mut taken = local_subnets.clone();
                        taken.extend(existing.iter().filter_map(|n| n.subnet));
                        plan::pick_subnet(&taken).ok_or_else(|| {
                            NetError::Forbidden("no free /24 left in 10.0.0.0/8 for an overlay network".into())
                        })?
                    }
                };
                let vni = match wanted_vni {
                    Some(v) => v,
                    None => plan::pick_vni(&existing.iter().filter_map(plan::vni_of).collect())
                        .ok_or_else(|| NetError::Forbidden("no free VXLAN ID".into()))?,
                };
                plan::check_new(&existing, &req.name, vni, &subnet)?;
                let rec = overlay_record(&req, &cfg, subnet, given.is_some(), vni)?;
                let value = serde_json::to_vec(&rec).map_err(|e| NetError::System(e.to_string()))?;
                let ops = [
                    Op::Put { key: plan::network_key(&rec.id), value, lease: 0 },
                    Op::Put { key: plan::networks_seq_key(), value: rec.id.clone().into_bytes(), lease: 0 },
                ];
                if cl.client.txn(&[Cmp::ModRevision(plan::networks_seq_key(), seq)], &ops).await? {
                    return Ok(rec);
                }
            }
            Err(NetError::Unavailable("the cluster's networks kept changing; try again".into()))
        })?;
        self.save(&rec)?;
        self.lock().nets.insert(rec.id.clone(), rec.clone());
        if let Err(e) = self.apply_rules() {
            eprintln!("berth daemon: {e}");
        }
        self.emit("create", &rec);
        cl.kick.notify_one();
        Ok((rec.id, String::new()))
    }

    /// `network rm` of an overlay network: gone from the store (unless an endpoint on any
    /// host still uses it), then from this host; the other hosts follow at their next sync.
    pub(crate) fn remove_overlay(&self, rec: NetworkRecord) -> Result<()> {
        let cl = self.cluster()?;
        self.rt.block_on(async {
            let when = [Cmp::Empty(plan::endpoints_prefix(&rec.id)), Cmp::Present(plan::network_key(&rec.id))];
            let ops = [
                Op::Delete(plan::network_key(&rec.id)),
                Op::Put { key: plan::networks_seq_key(), value: rec.id.clone().into_bytes(), lease: 0 },
            ];
            if cl.client.txn(&when, &ops).await? {
                return Ok(());
            }
            if cl.client.get(&plan::network_key(&rec.id)).await?.is_none() {
                return Ok(());
            }
            let (eps, _) = cl.client.list(&plan::endpoints_prefix(&rec.id)).await?;
            let hosts: BTreeSet<String> = eps
                .iter()
                .filter_map(|k| serde_json::from_slice::<ClusterEndpoint>(&k.value).ok())
                .map(|e| e.host.to_string())
                .collect();
            Err(NetError::Forbidden(format!(
                "error while removing network: network {} id {} has active endpoints (on hosts {})",
                rec.name,
                rec.id,
                hosts.into_iter().collect::<Vec<_>>().join(", ")
            )))
        })?;
        self.drop_local_overlay(&rec);
        self.emit("destroy", &rec);
        cl.kick.notify_one();
        Ok(())
    }

    /// Forgets an overlay network on this host: its devices, record and rules.
    pub(crate) fn drop_local_overlay(&self, rec: &NetworkRecord) {
        let nl = self.nl.clone();
        if let Err(e) = self.rt.block_on(async move { dataplane::remove(&nl, rec).await }) {
            eprintln!("berth daemon: removing the devices of overlay network {}: {e}", rec.name);
        }
        self.forget_overlay(rec);
    }

    /// Drops the record of an overlay network whose devices are gone.
    pub(crate) fn forget_overlay(&self, rec: &NetworkRecord) {
        let _ = self.db.delete(NETWORKS, &rec.id);
        self.lock().nets.remove(&rec.id);
        if let Err(e) = self.apply_rules() {
            eprintln!("berth daemon: {e}");
        }
    }

    /// Claims, cluster-wide, the address of `c` on the overlay network `net_name` (the
    /// address it asked for, or the lowest free one). `None` for other drivers.
    pub(crate) fn claim_overlay_ip(
        &self,
        net_name: &str,
        c: &ContainerView,
        settings: Option<&EndpointSettings>,
    ) -> Result<Option<Ipv4Addr>> {
        let Ok(net) = self.find(net_name) else { return Ok(None) };
        if net.driver != "overlay" {
            return Ok(None);
        }
        let cl = self.cluster()?;
        let wanted = match settings
            .and_then(|s| s.ipam_config.as_ref())
            .map(|i| i.ipv4_address.as_str())
            .filter(|s| !s.is_empty())
        {
            Some(w) => Some(w.parse::<Ipv4Addr>().map_err(|_| NetError::Invalid(format!("invalid IPv4 address {w}")))?),
            None => None,
        };
        let ip = self.rt.block_on(async {
            for _ in 0..ATTEMPTS {
                let (kvs, _) = cl.client.list(&plan::endpoints_prefix(&net.id)).await?;
                let eps: Vec<ClusterEndpoint> =
                    kvs.iter().filter_map(|k| serde_json::from_slice(&k.value).ok()).collect();
                if let Some(mine) = eps
                    .iter()
                    .find(|e| e.container == c.id && e.host == cl.advertise && wanted.is_none_or(|w| w == e.ip))
                {
                    return Ok(mine.ip);
                }
                let taken: BTreeSet<Ipv4Addr> = eps.iter().map(|e| e.ip).collect();
                let ip = plan::pick_ip(&net, wanted, &taken)?;
                let lease = cl.lease().await?;
                let ep = ClusterEndpoint {
                    network: net.id.clone(),
                    container: c.id.clone(),
                    name: c.name.clone(),
                    ip,
                    mac: String::new(),
                    aliases: vec![],
                    host: cl.advertise,
                };
                let value = serde_json::to_vec(&ep).map_err(|e| NetError::System(e.to_string()))?;
                let key = plan::endpoint_key(&net.id, ip);
                cl.pending.lock().unwrap_or_else(|p| p.into_inner()).insert((net.id.clone(), ip), Instant::now());
                if cl
                    .client
                    .txn(
                        &[Cmp::Absent(key.clone()), Cmp::Present(plan::network_key(&net.id))],
                        &[Op::Put { key, value, lease }],
                    )
                    .await?
                {
                    return Ok(ip);
                }
                cl.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&(net.id.clone(), ip));
                if cl.client.get(&plan::network_key(&net.id)).await?.is_none() {
                    return Err(NetError::NotFound(format!("network {} not found", net.name)));
                }
            }
            Err(NetError::Unavailable(format!(
                "could not claim an address on network {}: too much contention",
                net.name
            )))
        })?;
        Ok(Some(ip))
    }

    /// After the endpoint is recorded: the data plane on this host, and the endpoint's full
    /// record (name, aliases, MAC) in the store.
    pub(crate) fn publish_overlay_endpoint(&self, net: &NetworkRecord, ep: &Endpoint) -> Result<()> {
        let cl = self.cluster()?;
        let nl = self.nl.clone();
        let mtu = cl.mtu(self.opts.mtu);
        let remote = cl.remote_of(&net.id);
        let value = serde_json::to_vec(&cluster_endpoint(net, ep, cl.advertise))
            .map_err(|e| NetError::System(e.to_string()))?;
        let key = plan::endpoint_key(&net.id, ep.ip);
        let r = self.rt.block_on(async {
            dataplane::ensure(&nl, net, cl.advertise, mtu).await?;
            dataplane::program(&nl, net, &remote).await?;
            let lease = cl.lease().await?;
            cl.client.put(&key, &value, lease).await?;
            Ok::<(), NetError>(())
        });
        cl.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&(net.id.clone(), ep.ip));
        crate::service::set_bridge_sysctls(net, self.opts.ip_forward);
        r
    }

    /// The endpoint is gone from this host: withdraw it from the store (if the store is
    /// unreachable, the next sync does it).
    pub(crate) fn release_overlay_endpoint(&self, net: &NetworkRecord, ep: &Endpoint) {
        let Some(cl) = self.cluster.get().cloned() else { return };
        cl.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&(net.id.clone(), ep.ip));
        let key = plan::endpoint_key(&net.id, ep.ip);
        let container = ep.container.clone();
        let _ = self.rt.block_on(async {
            if let Some(kv) = cl.client.get(&key).await? {
                let owner: Option<ClusterEndpoint> = serde_json::from_slice(&kv.value).ok();
                if owner.is_some_and(|o| o.container == container && o.host == cl.advertise) {
                    cl.client.delete(&key).await?;
                }
            }
            Ok::<(), NetError>(())
        });
        cl.kick.notify_one();
    }

    /// Adds the addresses of remote endpoints that `name` names on the overlay networks
    /// `asker` is on.
    pub(crate) fn overlay_resolve(&self, st: &State, name: &str, asker: &str, out: &mut Vec<std::net::IpAddr>) {
        let Some(cl) = self.cluster.get() else { return };
        let nets: Vec<(&str, &str)> = st
            .nets
            .values()
            .filter(|n| n.driver == "overlay" && n.endpoints.contains_key(asker))
            .map(|n| (n.id.as_str(), n.name.as_str()))
            .collect();
        cl.resolve(&nets, name, out);
    }

    pub(crate) fn overlay_reverse(&self, st: &State, ip: Ipv4Addr, asker: &str) -> Option<String> {
        let cl = self.cluster.get()?;
        let nets: Vec<(&str, &str)> = st
            .nets
            .values()
            .filter(|n| n.driver == "overlay" && n.endpoints.contains_key(asker))
            .map(|n| (n.id.as_str(), n.name.as_str()))
            .collect();
        cl.reverse(&nets, ip)
    }
}

pub(crate) fn cluster_endpoint(net: &NetworkRecord, ep: &Endpoint, host: Ipv4Addr) -> ClusterEndpoint {
    ClusterEndpoint {
        network: net.id.clone(),
        container: ep.container.clone(),
        name: ep.name.clone(),
        ip: ep.ip,
        mac: ep.mac.clone(),
        aliases: ep.aliases.clone(),
        host,
    }
}

/// The overlay networks in the store.
pub(crate) async fn list_networks(cl: &Cluster) -> Result<Vec<NetworkRecord>> {
    let (kvs, _) = cl.client.list(&plan::networks_prefix()).await?;
    Ok(kvs.iter().filter_map(|k| serde_json::from_slice::<NetworkRecord>(&k.value).ok()).collect())
}

fn overlay_record(
    req: &NetworkCreateRequest,
    cfg: &berth_api::models::IpamConfig,
    subnet: Subnet,
    user_subnet: bool,
    vni: u32,
) -> Result<NetworkRecord> {
    let gateway = match cfg.gateway.as_str() {
        "" => subnet.first_host(),
        g => {
            let ip: Ipv4Addr = g.parse().map_err(|_| NetError::Invalid(format!("invalid gateway address {g}")))?;
            if !subnet.contains(ip) {
                return Err(NetError::Invalid(format!("gateway {ip} is not in subnet {subnet}")));
            }
            ip
        }
    };
    let ip_range = match cfg.ip_range.as_str() {
        "" => None,
        r => {
            let rg = Subnet::parse(r).map_err(NetError::Invalid)?;
            if !subnet.contains(rg.network()) || !subnet.contains(rg.broadcast()) {
                return Err(NetError::Invalid(format!("ip-range {rg} is not within subnet {subnet}")));
            }
            Some(rg)
        }
    };
    let mut aux = BTreeMap::new();
    for (k, v) in cfg.auxiliary_addresses.clone().unwrap_or_default() {
        let ip: Ipv4Addr = v.parse().map_err(|_| NetError::Invalid(format!("invalid auxiliary address {v}")))?;
        if !subnet.contains(ip) {
            return Err(NetError::Invalid(format!("auxiliary address {ip} is not in subnet {subnet}")));
        }
        aux.insert(k, ip);
    }
    let mut options = req.options.clone();
    options.remove("vxlan-id");
    options.insert(plan::VNI_OPTION.to_string(), vni.to_string());
    Ok(NetworkRecord {
        id: berth_api::ids::random_id(),
        name: req.name.clone(),
        driver: "overlay".into(),
        created: berth_api::time::rfc3339_now(),
        subnet: Some(subnet),
        gateway: Some(gateway),
        ip_range,
        aux,
        internal: req.internal,
        attachable: req.attachable,
        ipv6: false,
        v6: None,
        options,
        labels: req.labels.clone(),
        ifname: plan::bridge_name(vni),
        default_bridge: false,
        user_subnet,
        made_parent: false,
        adopted: None,
        route_localnet_was: None,
        endpoints: BTreeMap::new(),
    })
}
