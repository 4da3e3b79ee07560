//! The `overlay` driver: one network across hosts, over VXLAN, with etcd as the cluster
//! store (the pre-swarm design of Docker's overlay driver).
//!
//! # Vocabulary
//!
//! - **cluster store**: one etcd (`cluster-store: etcd://HOST:2379`) shared by every daemon.
//!   It is the truth about overlay networks and their endpoints; each daemon's database
//!   keeps a copy of the networks so that a daemon that cannot reach the store still knows
//!   them and its running containers keep working.
//! - **host**: a daemon, named by its advertise address (`cluster-advertise`), which is also
//!   its VTEP: the local end of its VXLAN tunnels.
//! - **lease**: each host registers itself and its endpoints under one etcd lease that it
//!   renews every `discovery.heartbeat`; if it stops renewing (it stopped, crashed or was
//!   cut off) the store deletes them after `discovery.ttl`, and the other hosts forget them.
//!
//! # Store layout ([`plan`])
//!
//! ```text
//! /berth/v1/overlay/networks/<id>          the network record (no lease)
//! /berth/v1/overlay/networks-seq           bumped by every create/remove (optimistic locking)
//! /berth/v1/overlay/endpoints/<id>/<ip>    one endpoint, under its host's lease
//! /berth/v1/overlay/hosts/<advertise>      a live host, under its lease
//! ```
//!
//! # Lifecycles
//!
//! - **create** reads the networks, checks name, VNI and subnet against them, and writes the
//!   new one in a transaction that fails if any network was created in between (then it
//!   starts over). Nothing is made in the kernel until a container joins.
//! - **join**: the address is claimed by creating its endpoint key (a transaction that
//!   fails if the key exists or the network is gone), so two hosts never hand out the same
//!   address. Then the VXLAN device and the host's gateway interface are made if missing,
//!   the container gets a macvlan interface on the VXLAN device ([`dataplane`] says why not
//!   a bridge and veths), and the endpoint key is rewritten with the container's name,
//!   aliases and MAC.
//! - **leave** deletes the endpoint key; **remove** deletes the network in a transaction
//!   that fails while any endpoint key exists on any host.
//! - **sync** ([`sync`]) is level-triggered: on every change seen by a watch, and every
//!   heartbeat anyway, it reads the store and makes this host match it: networks copied in
//!   or dropped, this host's endpoints re-registered (after a lease expired, say at the end
//!   of a partition) or withdrawn, and each VXLAN device's neighbour and forwarding entries
//!   set to exactly the remote endpoints ([`dataplane`]); a VXLAN device deleted behind the
//!   daemon's back is made again, with its local containers' interfaces ([`repair`]).
//!   Remote endpoints also feed the embedded DNS, so names resolve across hosts.
//!
//! If the store is unreachable, overlay operations fail with an `unavailable` error that
//! names it; running containers keep their kernel state and the next sync after the store
//! returns converges everything. Encryption (`-o encrypted`) is not available yet.

pub mod dataplane;
mod ops;
pub mod plan;
mod repair;
mod sync;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use crate::NetError;
use crate::etcd::{self, EtcdError};
use plan::ClusterEndpoint;

/// How this daemon joins a cluster (dockerd's `cluster-store`, `cluster-advertise` and
/// `cluster-store-opts`).
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// `etcd://HOST:PORT`.
    pub store: String,
    /// An IPv4 address, or an interface whose IPv4 address is used.
    pub advertise: String,
    /// `discovery.ttl`: how long a silent host's endpoints survive.
    pub ttl: Duration,
    /// `discovery.heartbeat`: how often the lease is renewed and the store re-read.
    pub heartbeat: Duration,
}

impl ClusterOptions {
    /// Reads `discovery.ttl` and `discovery.heartbeat` (seconds, or Go durations such as
    /// `20s`) from `cluster-store-opts`; other keys are refused.
    pub fn new(store: &str, advertise: &str, opts: &BTreeMap<String, String>) -> Result<ClusterOptions, String> {
        etcd::Client::parse(store)?;
        if advertise.is_empty() {
            return Err("cluster-advertise is required with cluster-store (an IP address or an interface name)".into());
        }
        let secs = |k: &str| -> Result<Option<u64>, String> {
            opts.get(k)
                .map(|v| {
                    v.trim_end_matches('s')
                        .parse::<u64>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| format!("invalid {k} {v:?}: a number of seconds"))
                })
                .transpose()
        };
        for k in opts.keys() {
            if k != "discovery.ttl" && k != "discovery.heartbeat" {
                return Err(format!(
                    "unsupported cluster-store-opts key {k:?} (berth knows discovery.ttl and discovery.heartbeat)"
                ));
            }
        }
        let ttl = secs("discovery.ttl")?.unwrap_or(20);
        let heartbeat = secs("discovery.heartbeat")?.unwrap_or((ttl / 3).max(1));
        if heartbeat >= ttl {
            return Err(format!("discovery.heartbeat ({heartbeat}s) must be shorter than discovery.ttl ({ttl}s)"));
        }
        Ok(ClusterOptions {
            store: store.to_string(),
            advertise: advertise.to_string(),
            ttl: Duration::from_secs(ttl),
            heartbeat: Duration::from_secs(heartbeat),
        })
    }
}

/// This daemon's membership of the cluster.
pub struct Cluster {
    pub(crate) client: etcd::Client,
    pub(crate) advertise: Ipv4Addr,
    pub(crate) opts: ClusterOptions,
    /// The current lease (0: none yet, or the last one expired).
    pub(crate) lease: tokio::sync::Mutex<i64>,
    /// Endpoints of other hosts, per network id, as last read from the store.
    pub(crate) remote: std::sync::Mutex<BTreeMap<String, Vec<ClusterEndpoint>>>,
    /// Wakes the sync loop (a watch event, or a local change).
    pub(crate) kick: tokio::sync::Notify,
    /// Whether the last sync reached the store (logged on change only).
    pub(crate) reachable: std::sync::Mutex<Option<bool>>,
    /// Addresses claimed in the store whose endpoints are not recorded locally yet: the
    /// sync must not withdraw them as stale.
    pub(crate) pending: std::sync::Mutex<BTreeMap<(String, Ipv4Addr), std::time::Instant>>,
}

impl Cluster {
    /// The MTU of overlay interfaces: the underlay's 1500 less the VXLAN overhead.
    pub(crate) fn mtu(&self, configured: Option<u32>) -> u32 {
        configured.unwrap_or(1500).saturating_sub(plan::VXLAN_OVERHEAD)
    }

    pub(crate) fn remote_of(&self, net: &str) -> Vec<ClusterEndpoint> {
        self.remote.lock().unwrap_or_else(|p| p.into_inner()).get(net).cloned().unwrap_or_default()
    }

    /// The lease this host's keys live under, granted (and the host registered) if needed.
    pub(crate) async fn lease(&self) -> Result<i64, EtcdError> {
        let mut l = self.lease.lock().await;
        if *l == 0 {
            let id = self.client.grant(self.opts.ttl.as_secs() as i64).await?;
            let me = serde_json::json!({"addr": self.advertise.to_string(), "since": berth_api::time::rfc3339_now()});
            self.client.put(&plan::host_key(self.advertise), me.to_string().as_bytes(), id).await?;
            *l = id;
        }
        Ok(*l)
    }

    /// Names and aliases of remote endpoints on `nets` (id, name: networks the asker is on).
    pub(crate) fn resolve(&self, nets: &[(&str, &str)], name: &str, out: &mut Vec<std::net::IpAddr>) {
        let remote = self.remote.lock().unwrap_or_else(|p| p.into_inner());
        for (id, net_name) in nets {
            let local = name.strip_suffix(&format!(".{net_name}")).unwrap_or(name);
            for e in remote.get(*id).into_iter().flatten() {
                if e.answers(local) && !out.contains(&e.ip.into()) {
                    out.push(e.ip.into());
                }
            }
        }
    }

    pub(crate) fn reverse(&self, nets: &[(&str, &str)], ip: Ipv4Addr) -> Option<String> {
        let remote = self.remote.lock().unwrap_or_else(|p| p.into_inner());
        nets.iter()
            .find_map(|(id, name)| remote.get(*id)?.iter().find(|e| e.ip == ip).map(|e| format!("{}.{name}", e.name)))
    }
}

impl From<EtcdError> for NetError {
    fn from(e: EtcdError) -> NetError {
        NetError::Unavailable(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_options() {
        let none = BTreeMap::new();
        let o = ClusterOptions::new("etcd://10.0.0.1:2379", "eth0", &none).unwrap();
        assert_eq!((o.ttl.as_secs(), o.heartbeat.as_secs()), (20, 6));
        let mut opts = BTreeMap::new();
        opts.insert("discovery.ttl".to_string(), "6s".to_string());
        let o = ClusterOptions::new("etcd://10.0.0.1:2379", "10.0.0.2", &opts).unwrap();
        assert_eq!((o.ttl.as_secs(), o.heartbeat.as_secs()), (6, 2));
        opts.insert("discovery.heartbeat".to_string(), "9".to_string());
        assert!(ClusterOptions::new("etcd://h", "10.0.0.2", &opts).unwrap_err().contains("shorter"));
        assert!(ClusterOptions::new("etcd://h", "", &none).unwrap_err().contains("cluster-advertise is required"));
        assert!(ClusterOptions::new("zk://h", "eth0", &none).unwrap_err().contains("etcd://"));
        let mut bad = BTreeMap::new();
        bad.insert("kv.cacertfile".to_string(), "/x".to_string());
        assert!(ClusterOptions::new("etcd://h", "eth0", &bad).unwrap_err().contains("unsupported"));
    }
}
