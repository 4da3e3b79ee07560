//! Network records and the `/networks` operations.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use berth_api::ids::{PrefixMatch, match_prefix};
use berth_api::models::{IpamConfig, NetworkCreateRequest};
use berth_core::events::EventBus;
use berth_core::network::Containers;
use berth_store::db::Db;
use berth_store::schema::NETWORKS;

use crate::ipam::Subnet;
use crate::model::NetworkRecord;
use crate::nft::{BridgeRules, PortRule, Ruleset};
use crate::nl::Nl;
use crate::ports::{Mapping, Reservation};
use crate::{NetError, Result, dns};

/// Daemon settings the network service uses (dockerd's names in daemon.json).
#[derive(Debug, Clone)]
pub struct Options {
    /// berth's nftables table (unique per daemon, so several can run side by side).
    pub table: String,
    /// The default bridge's interface name (dockerd's `--bridge`; `berth0` by default).
    pub bridge: String,
    /// The default bridge's address (`bip`); 172.17.0.1/16 by default.
    pub bip: Option<String>,
    /// Pools user-defined networks take subnets from (`default-address-pools`).
    pub pools: Vec<(Subnet, u8)>,
    /// Masquerade outbound traffic (`ip-masq`).
    pub ip_masq: bool,
    /// Let containers open connections beyond their networks (`ip-forward`): when false,
    /// berth neither enables forwarding nor lets new connections leave container networks.
    pub ip_forward: bool,
    pub exec_root: PathBuf,
    /// The daemon's `dns` servers: upstreams of the embedded resolver when a container
    /// names none.
    pub dns: Vec<String>,
    pub mtu: Option<u32>,
    /// IPv6 on the default bridge (`ipv6`), in `fixed-cidr-v6` if given, else in a unique
    /// local /64 berth picks.
    pub ipv6: bool,
    pub fixed_cidr_v6: Option<String>,
}

pub(crate) struct State {
    pub nets: BTreeMap<String, NetworkRecord>,
    /// Per container: its published ports.
    pub ports: BTreeMap<String, Published>,
    /// Per container: its resolver.
    pub dns: BTreeMap<String, dns::Server>,
}

/// A container's published ports: the addresses they lead to (on its primary network), and
/// the sockets reserving them.
pub(crate) struct Published {
    pub ip: Ipv4Addr,
    pub ip6: Option<std::net::Ipv6Addr>,
    pub maps: Vec<Mapping>,
    /// Held, never read: closing them gives the ports back.
    #[allow(dead_code)]
    pub reservations: Vec<Reservation>,
}

pub struct NetworkService {
    pub(crate) opts: Options,
    pub(crate) db: Arc<Db>,
    pub(crate) rt: tokio::runtime::Handle,
    pub(crate) nl: Nl,
    /// Host ends of veths to delete, for the reaper thread (see [`spawn_reaper`]).
    pub(crate) reaper: std::sync::mpsc::Sender<u32>,
    pub(crate) state: Mutex<State>,
    /// The containers, as the contract lets the network service read them.
    pub(crate) containers: Arc<dyn Containers>,
    pub(crate) events: Arc<EventBus>,
    /// Set when the daemon has a cluster store (overlay networks).
    pub(crate) cluster: OnceLock<Arc<crate::overlay::Cluster>>,
    /// The bridges (IPv4, IPv6) iptables' FORWARD last accepted (see [`crate::iptables`]).
    pub(crate) forward_accepted: Mutex<Option<(Vec<String>, Vec<String>)>>,
}

fn now() -> String {
    berth_api::time::rfc3339_now()
}

fn builtin(id: &str, name: &str, driver: &str) -> NetworkRecord {
    NetworkRecord {
        id: id.to_string(),
        name: name.to_string(),
        driver: driver.to_string(),
        created: now(),
        subnet: None,
        gateway: None,
        ip_range: None,
        aux: BTreeMap::new(),
        internal: false,
        attachable: false,
        ipv6: false,
        v6: None,
        options: BTreeMap::new(),
        labels: BTreeMap::new(),
        ifname: String::new(),
        adopted: None,
        route_localnet_was: None,
        default_bridge: false,
        user_subnet: false,
        made_parent: false,
        endpoints: BTreeMap::new(),
    }
}

/// How long a leftover veth is given to go away with its namespace before the reaper
/// deletes it itself.
const REAP_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// Starts the thread that deletes leftover veths by index. Deleting a link waits for the
/// kernel to let go of it (RCU grace periods, tens of milliseconds here) inside the netlink
/// `sendmsg`, holding up whatever else is queued on that connection; and usually there is
/// nothing to delete, since the kernel destroys a veth with its namespace. So deletions get
/// a connection and a thread of their own, and a batch waits [`REAP_AFTER`] after its first
/// request: by then the link is normally gone and the request is a cheap `ENODEV`, not a
/// second teardown competing with the next container's setup.
fn spawn_reaper() -> Result<std::sync::mpsc::Sender<u32>> {
    let (tx, rx) = std::sync::mpsc::channel::<u32>();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| NetError::System(format!("starting the link reaper: {e}")))?;
    let nl = Nl::here(rt.handle())?;
    std::thread::Builder::new()
        .name("berth-link-reaper".into())
        .spawn(move || {
            while let Ok(idx) = rx.recv() {
                let due = std::time::Instant::now() + REAP_AFTER;
                let mut batch = vec![idx];
                while let Some(left) = due.checked_duration_since(std::time::Instant::now()) {
                    match rx.recv_timeout(left) {
                        Ok(i) => batch.push(i),
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => break,
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                }
                for idx in batch {
                    if let Err(e) = rt.block_on(nl.delete_index(idx)) {
                        eprintln!("berth daemon: {e}");
                    }
                }
            }
        })
        .map_err(|e| NetError::System(format!("starting the link reaper: {e}")))?;
    Ok(tx)
}

/// `-o com.docker.network.bridge.name=NAME` for a bridge network: `None` if berth makes the
/// bridge; for an existing bridge made by someone else, `Some(whether berth adds the
/// gateway address)`. An existing interface that is not a bridge, and the loopback
/// interface, are refused: the gateway address and the isolation rules would land on it.
/// Someone else's bridge is used only with a subnet the user chose, so berth never puts an
/// address of its own choosing on it.
async fn adopt_check(nl: &Nl, ifname: &str, user_subnet: bool, gateway: Ipv4Addr) -> Result<Option<bool>> {
    if ifname == "lo" {
        return Err(NetError::Invalid("the loopback interface lo cannot be a network's bridge".into()));
    }
    match nl.lookup(ifname).await? {
        None => Ok(None),
        Some((_, false)) => Err(NetError::Invalid(format!("existing interface {ifname} is not a bridge"))),
        Some((_, true)) if !user_subnet => Err(NetError::Invalid(format!(
            "bridge {ifname} exists and was not made by berth: give the network a --subnet (and --gateway) for berth to use it"
        ))),
        Some((_, true)) => Ok(Some(!nl.has_addr(gateway).await?)),
    }
}

impl NetworkService {
    /// Loads the records, creates the built-in networks on first use of a data root, and
    /// re-applies the firewall rules.
    pub fn open(
        opts: Options,
        db: Arc<Db>,
        events: Arc<EventBus>,
        containers: Arc<dyn Containers>,
        rt: tokio::runtime::Handle,
    ) -> Result<Arc<NetworkService>> {
        let nl = {
            let _g = rt.enter();
            Nl::here(&rt)?
        };
        let mut nets: BTreeMap<String, NetworkRecord> = db.list::<NetworkRecord>(NETWORKS)?.into_iter().collect();
        let has = |d: &str, nets: &BTreeMap<String, NetworkRecord>| nets.values().any(|n| n.name == d);
        let mut new = Vec::new();
        if !has("bridge", &nets) {
            let (gw, sn) =
                Subnet::parse_cidr_host(opts.bip.as_deref().unwrap_or("172.17.0.1/16")).map_err(NetError::Invalid)?;
            let mut b = builtin(&berth_api::ids::random_id(), "bridge", "bridge");
            b.subnet = Some(sn);
            b.gateway = Some(gw);
            b.ifname = opts.bridge.clone();
            b.default_bridge = true;
            b.options.insert("com.docker.network.bridge.name".into(), opts.bridge.clone());
            b.options.insert("com.docker.network.bridge.default_bridge".into(), "true".into());
            new.push(b);
        }
        if !has("host", &nets) {
            new.push(builtin(&berth_api::ids::random_id(), "host", "host"));
        }
        if !has("none", &nets) {
            new.push(builtin(&berth_api::ids::random_id(), "none", "null"));
        }
        for n in new {
            db.put(NETWORKS, &n.id, &n)?;
            nets.insert(n.id.clone(), n);
        }
        let bridge_v6 = match nets.values().find(|n| n.default_bridge) {
            Some(b) => Some(default_bridge_v6(&opts, b, &nets)?),
            None => None,
        };
        if let (Some(b), Some(want)) = (nets.values_mut().find(|n| n.default_bridge), bridge_v6)
            && b.v6 != want
        {
            b.ipv6 = want.is_some();
            b.v6 = want;
            db.put(NETWORKS, &b.id, &*b)?;
        }
        // Endpoints of containers that are gone are forgotten at recovery; the kernel side
        // of running ones is rebuilt by `restore`.
        let svc = Arc::new(NetworkService {
            opts,
            db,
            rt,
            nl,
            reaper: spawn_reaper()?,
            state: Mutex::new(State { nets, ports: BTreeMap::new(), dns: BTreeMap::new() }),
            containers,
            events,
            cluster: OnceLock::new(),
            forward_accepted: Mutex::new(None),
        });
        Ok(svc)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn save(&self, n: &NetworkRecord) -> Result<()> {
        self.db.put(NETWORKS, &n.id, n)?;
        Ok(())
    }

    /// Finds a network by full ID, exact name, or unique ID prefix (Docker's order).
    pub fn find(&self, name_or_id: &str) -> Result<NetworkRecord> {
        let st = self.lock();
        find_in(&st.nets, name_or_id).cloned()
    }

    /// Re-renders and applies the firewall table.
    pub(crate) fn apply_rules(&self) -> Result<()> {
        let rs = {
            let st = self.lock();
            let bridges = st
                .nets
                .values()
                .filter(|n| (n.driver == "bridge" || n.driver == "overlay") && n.subnet.is_some())
                .map(|n| BridgeRules {
                    ifname: n.ifname.clone(),
                    subnet: n.subnet.unwrap_or(Subnet { addr: Ipv4Addr::UNSPECIFIED, prefix: 0 }),
                    subnet6: n.v6.as_ref().map(|v| v.subnet),
                    internal: n.internal,
                    masquerade: self.opts.ip_masq
                        && n.options.get("com.docker.network.bridge.enable_ip_masquerade").is_none_or(|v| v != "false"),
                    untracked_within: if n.driver == "overlay" { n.gateway } else { None },
                })
                .collect();
            let ports = st
                .ports
                .values()
                .flat_map(|p| {
                    p.maps.iter().filter_map(|m| {
                        // Without an IPv6 address, IPv6 ports are relayed (ports::relayed).
                        let container_ip =
                            if m.host_ip.is_ipv6() { std::net::IpAddr::V6(p.ip6?) } else { std::net::IpAddr::V4(p.ip) };
                        Some(PortRule {
                            proto: m.proto.clone(),
                            host_ip: m.host_ip,
                            host_port: m.host_port,
                            container_ip,
                            container_port: m.container_port,
                        })
                    })
                })
                .collect();
            Ruleset { table: self.opts.table.clone(), bridges, ports, no_egress: !self.opts.ip_forward }
        };
        rs.apply()?;
        self.accept_in_iptables(&rs);
        Ok(())
    }

    /// Keeps iptables' FORWARD chain from dropping the traffic of berth's bridges (dockerd
    /// beside berth sets its policy to DROP). Only when the bridges changed: each sync runs
    /// a few commands.
    fn accept_in_iptables(&self, rs: &Ruleset) {
        let v4: Vec<String> = rs.bridges.iter().map(|b| b.ifname.clone()).collect();
        let v6: Vec<String> = rs.bridges.iter().filter(|b| b.subnet6.is_some()).map(|b| b.ifname.clone()).collect();
        let mut last = self.forward_accepted.lock().unwrap_or_else(|p| p.into_inner());
        if last.as_ref().is_some_and(|(a, b)| *a == v4 && *b == v6) {
            return;
        }
        match crate::iptables::sync(&self.opts.table, &v4, &v6) {
            Ok(()) => *last = Some((v4, v6)),
            Err(e) => eprintln!("berth daemon: accepting berth's bridges in iptables' FORWARD chain: {e}"),
        }
    }

    fn next_pool_subnet(&self, nets: &BTreeMap<String, NetworkRecord>) -> Result<Subnet> {
        let pools: Vec<(Subnet, u8)> = if self.opts.pools.is_empty() {
            vec![
                (
                    Subnet::parse("172.17.0.0/12").unwrap_or(Subnet { addr: Ipv4Addr::new(172, 16, 0, 0), prefix: 12 }),
                    16,
                ),
                (Subnet { addr: Ipv4Addr::new(192, 168, 0, 0), prefix: 16 }, 20),
            ]
        } else {
            self.opts.pools.clone()
        };
        let used: Vec<Subnet> = nets.values().filter_map(|n| n.subnet).collect();
        for (base, size) in pools {
            let step = 1u64 << (32 - size as u32);
            let mut a = u32::from(base.network()) as u64;
            let end = a + base.size();
            while a + step <= end {
                let cand = Subnet { addr: Ipv4Addr::from(a as u32), prefix: size };
                if !used.iter().any(|u| u.overlaps(&cand)) && !host_routes_overlap(&cand) {
                    return Ok(cand);
                }
                a += step;
            }
        }
        Err(NetError::Forbidden("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network".into()))
    }

    /// `POST /networks/create`.
    pub fn create(&self, req: NetworkCreateRequest) -> Result<(String, String)> {
        if req.name.is_empty() {
            return Err(NetError::Invalid("network name is required".into()));
        }
        // Docker takes any name (spaces too); berth refuses only what cannot be shown or
        // addressed: control characters, a slash, or nothing but blanks.
        let valid = !req.name.trim().is_empty()
            && !req.name.contains('/')
            && !req.name.chars().any(char::is_control)
            && req.name.len() <= 255;
        if !valid {
            return Err(NetError::Invalid(format!(
                "invalid network name {:?}: it must not be blank or contain '/' or control characters",
                req.name
            )));
        }
        let driver = if req.driver.is_empty() { "bridge".to_string() } else { req.driver.clone() };
        if driver == "overlay" {
            return self.create_overlay(req);
        }
        if !matches!(driver.as_str(), "bridge" | "macvlan" | "ipvlan") {
            if driver == "host" || driver == "null" {
                return Err(NetError::Forbidden(format!("only one instance of \"{driver}\" network is allowed")));
            }
            return Err(NetError::NotFound(format!("plugin \"{driver}\" not found")));
        }
        let st = self.lock();
        if st.nets.values().any(|n| n.name == req.name) {
            return Err(NetError::Conflict(format!("network with name {} already exists", req.name)));
        }
        let cfgs = req.ipam.as_ref().and_then(|i| i.config.clone()).unwrap_or_default();
        let v4: Vec<&IpamConfig> = cfgs.iter().filter(|c| !crate::v6::is_v6(c)).collect();
        if v4.len() > 1 {
            return Err(NetError::Invalid("berth supports one IPv4 subnet per network".into()));
        }
        let (subnet, user_subnet) = match v4.first().filter(|c| !c.subnet.is_empty()) {
            Some(c) => (Subnet::parse(&c.subnet).map_err(NetError::Invalid)?, true),
            None => {
                if v4.first().is_some_and(|c| !c.gateway.is_empty() || !c.ip_range.is_empty()) {
                    return Err(NetError::Invalid("gateway and ip-range need a subnet".into()));
                }
                (self.next_pool_subnet(&st.nets)?, false)
            }
        };
        if user_subnet
            && let Some(other) =
                st.nets.values().find(|n| n.subnet.is_some_and(|s| s.overlaps(&subnet)) && n.driver == "bridge")
            && driver == "bridge"
        {
            return Err(NetError::Forbidden(format!(
                "invalid pool request: Pool overlaps with other one on this address space (network {})",
                other.name
            )));
        }
        let c = v4.first();
        let gateway = match c.map(|c| c.gateway.as_str()).filter(|g| !g.is_empty()) {
            Some(g) => {
                let ip: Ipv4Addr = g.parse().map_err(|_| NetError::Invalid(format!("invalid gateway address {g}")))?;
                if !subnet.contains(ip) {
                    return Err(NetError::Invalid(format!("gateway {ip} is not in subnet {subnet}")));
                }
                ip
            }
            None => subnet.first_host(),
        };
        let ip_range = match c.map(|c| c.ip_range.as_str()).filter(|r| !r.is_empty()) {
            Some(r) => {
                let rg = Subnet::parse(r).map_err(NetError::Invalid)?;
                if !subnet.contains(rg.network()) || !subnet.contains(rg.broadcast()) {
                    return Err(NetError::Invalid(format!("ip-range {rg} is not within subnet {subnet}")));
                }
                Some(rg)
            }
            None => None,
        };
        let mut aux = BTreeMap::new();
        for (k, v) in c.and_then(|c| c.auxiliary_addresses.clone()).unwrap_or_default() {
            let ip: Ipv4Addr = v.parse().map_err(|_| NetError::Invalid(format!("invalid auxiliary address {v}")))?;
            if !subnet.contains(ip) {
                return Err(NetError::Invalid(format!("auxiliary address {ip} is not in subnet {subnet}")));
            }
            aux.insert(k, ip);
        }
        let id = berth_api::ids::random_id();
        let v6 = crate::v6::ipam_for(&req.name, req.enable_ipv6, &cfgs, &st.nets, &id, driver == "bridge")?;
        let ifname = match driver.as_str() {
            "bridge" => req
                .options
                .get("com.docker.network.bridge.name")
                .cloned()
                .unwrap_or_else(|| format!("br-{}", &id[..12])),
            _ => req
                .options
                .get("parent")
                .cloned()
                .ok_or_else(|| NetError::Invalid(format!("{driver} networks need -o parent=<interface>")))?,
        };
        if ifname.len() > 15 {
            return Err(NetError::Invalid(format!("interface name {ifname} is longer than 15 characters")));
        }
        // The name lands in nftables sets and iptables rules, where `+` and `*` are wildcards
        // (`-i +` is every interface: an ACCEPT of all forwarded traffic).
        if ifname.is_empty() || !ifname.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)) {
            return Err(NetError::Invalid(format!(
                "interface name {ifname:?} may hold only letters, digits, '_', '.' and '-'"
            )));
        }
        if driver == "bridge" && st.nets.values().any(|n| n.driver == "bridge" && n.ifname == ifname) {
            return Err(NetError::Conflict(format!("bridge {ifname} is already used by another network")));
        }
        let mut rec = builtin(&id, &req.name, &driver);
        rec.subnet = Some(subnet);
        rec.gateway = Some(gateway);
        rec.ip_range = ip_range;
        rec.aux = aux;
        rec.internal = req.internal;
        rec.attachable = req.attachable;
        rec.ipv6 = v6.is_some();
        rec.v6 = v6;
        rec.options = req.options.clone();
        rec.labels = req.labels.clone();
        rec.ifname = ifname.clone();
        rec.user_subnet = user_subnet;
        drop(st);

        // The kernel side first; the record only once that worked.
        match driver.as_str() {
            "bridge" => {
                let nl = self.nl.clone();
                let mtu =
                    req.options.get("com.docker.network.driver.mtu").and_then(|m| m.parse().ok()).or(self.opts.mtu);
                let prefix = subnet.prefix;
                let gw6 = rec.v6.as_ref().map(|v| (v.gateway, v.subnet.prefix));
                rec.adopted = self.rt.block_on(adopt_check(&nl, &ifname, user_subnet, gateway))?;
                if rec.adopted.is_some() {
                    // As for IPv4: someone else's bridge gets no address the user did not choose.
                    if rec.v6.as_ref().is_some_and(|v| !v.user_subnet) {
                        return Err(NetError::Invalid(format!(
                            "bridge {ifname} exists and was not made by berth: \
                             give the network an IPv6 --subnet for berth to use it with IPv6"
                        )));
                    }
                    rec.route_localnet_was =
                        std::fs::read_to_string(route_localnet(&ifname)).ok().map(|v| v.trim().into());
                }
                self.rt.block_on(async move {
                    let idx = nl.ensure_bridge(&ifname, Some((gateway, prefix)), mtu).await?;
                    match gw6 {
                        Some(g) => nl.add_addr6(idx, g).await,
                        None => Ok(()),
                    }
                })?;
                set_bridge_sysctls(&rec, self.opts.ip_forward);
            }
            _ => {
                let nl = self.nl.clone();
                let parent = rec.ifname.clone();
                let kind = driver.clone();
                rec.made_parent = self.rt.block_on(async move {
                    let (idx, made) = match nl.index(&parent).await? {
                        Some(i) => (i, false),
                        None => match parent.split_once('.') {
                            Some((base, vid)) => {
                                let vid: u16 = vid
                                    .parse()
                                    .map_err(|_| NetError::Invalid(format!("invalid VLAN id in {parent}")))?;
                                let b = nl.index(base).await?.ok_or_else(|| {
                                    NetError::Invalid(format!("parent interface {base} does not exist"))
                                })?;
                                (nl.ensure_vlan(&parent, b, vid).await?, true)
                            }
                            None => return Err(NetError::Invalid(format!("parent interface {parent} does not exist"))),
                        },
                    };
                    let probed = nl.probe_child(&kind, idx).await;
                    if probed.is_err() && made {
                        let _ = nl.delete_index(idx).await;
                    }
                    probed.map(|()| made)
                })?;
            }
        }
        let mut st = self.lock();
        if st.nets.values().any(|n| n.name == req.name) {
            return Err(NetError::Conflict(format!("network with name {} already exists", req.name)));
        }
        self.save(&rec)?;
        st.nets.insert(id.clone(), rec.clone());
        drop(st);
        if driver == "bridge" {
            self.apply_rules()?;
        }
        self.emit("create", &rec);
        Ok((id, String::new()))
    }

    pub(crate) fn emit(&self, action: &str, n: &NetworkRecord) {
        let mut a = BTreeMap::new();
        a.insert("name".to_string(), n.name.clone());
        a.insert("type".to_string(), n.driver.clone());
        self.events.emit("network", action, &n.id, a);
    }

    /// A `connect` or `disconnect` event: the network, naming the container, as dockerd
    /// logs them (for `network connect`/`disconnect` and at a container's start and stop).
    pub(crate) fn emit_container(&self, action: &str, n: &NetworkRecord, container: &str) {
        let mut a = BTreeMap::new();
        a.insert("container".to_string(), container.to_string());
        a.insert("name".to_string(), n.name.clone());
        a.insert("type".to_string(), n.driver.clone());
        self.events.emit("network", action, &n.id, a);
    }

    /// `DELETE /networks/{id}`.
    pub fn remove(&self, name_or_id: &str) -> Result<()> {
        let rec = self.find(name_or_id)?;
        if matches!(rec.name.as_str(), "bridge" | "host" | "none") && !rec.is_user_defined() {
            return Err(NetError::Forbidden(format!("{} is a pre-defined network and cannot be removed", rec.name)));
        }
        if !rec.endpoints.is_empty() {
            return Err(NetError::Forbidden(format!(
                "error while removing network: network {} id {} has active endpoints",
                rec.name, rec.id
            )));
        }
        if rec.driver == "overlay" {
            return self.remove_overlay(rec);
        }
        // Stopped containers that name it keep working the way Docker's do: they fail to
        // start until the network exists again.
        let parent_shared = self.lock().nets.values().any(|n| n.id != rec.id && n.ifname == rec.ifname);
        if let Some(added_gateway) = rec.adopted {
            // Someone else's bridge: it stays; only the address berth gave it goes, and its
            // route_localnet is what it was.
            if let (true, Some(gw)) = (added_gateway, rec.gateway) {
                let nl = self.nl.clone();
                self.rt.block_on(async move { nl.release_addr(gw, false).await })?;
            }
            if let Some(v) = &rec.route_localnet_was
                && let Err(e) = std::fs::write(route_localnet(&rec.ifname), v)
            {
                eprintln!("berth: network {}: restoring route_localnet on {}: {e}", rec.id, rec.ifname);
            }
        } else if rec.driver == "bridge" || (rec.made_parent && !parent_shared) {
            let nl = self.nl.clone();
            let ifname = rec.ifname.clone();
            self.rt.block_on(async move { nl.delete(&ifname).await })?;
        }
        self.db.delete(NETWORKS, &rec.id)?;
        self.lock().nets.remove(&rec.id);
        if rec.driver == "bridge" {
            self.apply_rules()?;
        }
        self.emit("destroy", &rec);
        Ok(())
    }
}

pub(crate) fn find_in<'a>(nets: &'a BTreeMap<String, NetworkRecord>, name_or_id: &str) -> Result<&'a NetworkRecord> {
    if let Some(n) = nets.get(name_or_id) {
        return Ok(n);
    }
    if let Some(n) = nets.values().find(|n| n.name == name_or_id) {
        return Ok(n);
    }
    if berth_api::ids::is_id_prefix(name_or_id) {
        match match_prefix(name_or_id, nets.iter().map(|(k, v)| (k.as_str(), v))) {
            PrefixMatch::One(n) => return Ok(n),
            PrefixMatch::Ambiguous => return Err(NetError::Invalid(format!("network {name_or_id} is ambiguous"))),
            PrefixMatch::None => {}
        }
    }
    Err(NetError::NotFound(format!("network {name_or_id} not found")))
}

/// The default bridge's IPv6 side as the daemon's settings ask for it: `fixed-cidr-v6`, or the
/// unique local /64 it already has, or a new one.
fn default_bridge_v6(
    opts: &Options,
    bridge: &NetworkRecord,
    nets: &BTreeMap<String, NetworkRecord>,
) -> Result<Option<crate::model::Ipam6>> {
    if !opts.ipv6 {
        if let Some(c) = &opts.fixed_cidr_v6 {
            return Err(NetError::Invalid(format!(
                "fixed-cidr-v6 {c} needs IPv6 on the default bridge (\"ipv6\": true)"
            )));
        }
        return Ok(None);
    }
    match &opts.fixed_cidr_v6 {
        Some(c) => {
            let subnet =
                crate::ipam::Subnet6::parse(c).map_err(|e| NetError::Invalid(format!("fixed-cidr-v6: {e}")))?;
            Ok(Some(crate::model::Ipam6 {
                subnet,
                gateway: subnet.first_host(),
                ip_range: None,
                aux: BTreeMap::new(),
                user_subnet: true,
            }))
        }
        None if bridge.v6.as_ref().is_some_and(|v| !v.user_subnet) => Ok(bridge.v6.clone()),
        None => crate::v6::ipam_for(&bridge.name, Some(true), &[], nets, &bridge.id, false),
    }
}

/// Whether the host already routes `s` somewhere (then a pool subnet must not take it).
fn host_routes_overlap(s: &Subnet) -> bool {
    let Ok(text) = std::fs::read_to_string("/proc/net/route") else { return false };
    for l in text.lines().skip(1) {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 8 {
            continue;
        }
        let (Ok(dst), Ok(mask)) = (u32::from_str_radix(f[1], 16), u32::from_str_radix(f[7], 16)) else { continue };
        if mask == 0 {
            continue;
        }
        let dst = Ipv4Addr::from(u32::from_be(dst));
        let prefix = u32::from_be(mask).count_ones() as u8;
        if (Subnet { addr: dst, prefix }).overlaps(s) {
            return true;
        }
    }
    false
}

fn route_localnet(ifname: &str) -> String {
    format!("/proc/sys/net/ipv4/conf/{ifname}/route_localnet")
}

/// Per-bridge kernel settings: loopback-published ports need `route_localnet`; forwarding is
/// switched on when containers may reach beyond their networks (as Docker does), for IPv6
/// too on a network with IPv6 (see [`crate::v6::enable_forwarding`]).
pub(crate) fn set_bridge_sysctls(net: &NetworkRecord, ip_forward: bool) {
    let _ = std::fs::write(route_localnet(&net.ifname), "1");
    if ip_forward {
        let _ = std::fs::write("/proc/sys/net/ipv4/ip_forward", "1");
        if net.v6.is_some() && !net.internal {
            crate::v6::enable_forwarding(
                std::path::Path::new("/proc/sys/net/ipv6/conf"),
                std::path::Path::new("/proc/net/ipv6_route"),
            );
        }
    }
}
