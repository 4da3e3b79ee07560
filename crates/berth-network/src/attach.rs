//! Joining containers to networks: the `Networks` contract of the container service (the
//! `network connect`/`disconnect` requests are in `connect.rs`).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_api::models::{EndpointIpamConfig, EndpointSettings, NetworkSettings};
use berth_core::links::link_parts;
use berth_core::network::{Attachment, ContainerView, Networks};

use crate::ipam::{self, Subnet};
use crate::model::{Endpoint, NetworkRecord};
use crate::nl::Nl;
use crate::service::{NetworkService, Published, find_in, set_bridge_sysctls};
use crate::{NetError, Result, dns, netns, ports};

pub(crate) fn primary(mode: &str) -> &str {
    match mode {
        "" | "default" => "bridge",
        m => m,
    }
}

/// The networks a container joins, the primary one first.
pub(crate) fn wanted_networks(c: &ContainerView) -> Vec<String> {
    let p = primary(c.network_mode_or_default()).to_string();
    let mut v = vec![p.clone()];
    for k in c.endpoints.keys() {
        if *k != p && k != "host" && k != "none" && !v.contains(k) {
            v.push(k.clone());
        }
    }
    v
}

impl NetworkService {
    pub(crate) fn ns_path(&self, id: &str) -> PathBuf {
        self.opts.exec_root.join("netns").join(id)
    }

    /// Reserves an address on `net` for the container (static if asked) and records the
    /// endpoint. Returns the updated record.
    pub(crate) fn reserve_endpoint(
        &self,
        net_name: &str,
        c: &ContainerView,
        settings: Option<&EndpointSettings>,
        index: usize,
    ) -> Result<(NetworkRecord, Endpoint)> {
        // Overlay addresses are claimed cluster-wide first (without holding the lock).
        let claimed = self.claim_overlay_ip(net_name, c, settings)?;
        let mut st = self.lock();
        let net = find_in(&st.nets, net_name)
            .map_err(|_| NetError::NotFound(format!("network {net_name} not found")))?
            .clone();
        if matches!(net.driver.as_str(), "host" | "null") {
            return Err(NetError::Invalid(format!("container cannot be connected to network {}", net.name)));
        }
        let subnet = net.subnet.ok_or_else(|| NetError::Invalid(format!("network {} has no subnet", net.name)))?;
        let used = net.used_ips();
        let wanted =
            settings.and_then(|s| s.ipam_config.as_ref()).map(|i| i.ipv4_address.clone()).filter(|s| !s.is_empty());
        let (ip, static_ip) = match (claimed, wanted) {
            (Some(ip), w) => (ip, w.is_some()),
            (None, Some(w)) => {
                if !net.is_user_defined() {
                    return Err(NetError::Invalid(
                        "user specified IP address is supported on user defined networks only".into(),
                    ));
                }
                let ip: Ipv4Addr = w.parse().map_err(|_| NetError::Invalid(format!("invalid IPv4 address {w}")))?;
                if !subnet.contains(ip) {
                    return Err(NetError::Invalid(format!(
                        "invalid address {ip}: it does not belong to any of this network's subnets ({subnet})"
                    )));
                }
                if used.contains(&ip) && net.endpoints.get(&c.id).is_none_or(|e| e.ip != ip) {
                    return Err(NetError::Conflict(format!(
                        "Address already in use: {ip} is used on network {}",
                        net.name
                    )));
                }
                (ip, true)
            }
            (None, None) => (
                ipam::allocate(&subnet, net.ip_range.as_ref(), &used).ok_or_else(|| {
                    NetError::Forbidden(format!("no available IPv4 addresses on network {}", net.name))
                })?,
                false,
            ),
        };
        let (ip6, static_ip6) = Self::pick_ip6(&net, c, settings)?;
        let mac = settings
            .map(|s| s.mac_address.clone())
            .filter(|m| !m.is_empty())
            .or_else(|| (index == 0 && !c.mac_address.is_empty()).then(|| c.mac_address.clone()))
            .unwrap_or_else(|| ipam::mac_string(&ipam::mac_for(ip)));
        let mut aliases: Vec<String> = settings.and_then(|s| s.aliases.clone()).unwrap_or_default();
        if net.is_user_defined() && !aliases.contains(&c.id[..12].to_string()) {
            aliases.push(c.id[..12].to_string());
        }
        let ep = Endpoint {
            container: c.id.clone(),
            name: c.name.clone(),
            ip,
            mac,
            aliases,
            static_ip,
            host_ifname: format!("veth{}{}", &c.id[..7], if index == 0 { String::new() } else { index.to_string() }),
            endpoint_id: berth_api::ids::random_id(),
            links: {
                // On a user-defined network, `--link`s (HostConfig.Links) are names the
                // linking container resolves through the embedded DNS, as with Docker.
                let mut l = settings.and_then(|s| s.links.clone()).unwrap_or_default();
                if net.is_user_defined() {
                    for hl in &c.links {
                        let (t, a) = link_parts(hl);
                        if !l.iter().any(|x| link_parts(x) == (t, a)) {
                            l.push(format!("{t}:{a}"));
                        }
                    }
                }
                l
            },
            ip6,
            static_ip6,
        };
        let rec =
            st.nets.get_mut(&net.id).ok_or_else(|| NetError::NotFound(format!("network {net_name} not found")))?;
        rec.endpoints.insert(c.id.clone(), ep.clone());
        let rec = rec.clone();
        self.save(&rec)?;
        Ok((rec, ep))
    }

    /// The endpoint's IPv6 address: `--ip6` if given (on a network with IPv6, inside its
    /// subnet, not taken), else the next free one; none on a network without IPv6.
    fn pick_ip6(
        net: &NetworkRecord,
        c: &ContainerView,
        settings: Option<&EndpointSettings>,
    ) -> Result<(Option<Ipv6Addr>, bool)> {
        let wanted =
            settings.and_then(|s| s.ipam_config.as_ref()).map(|i| i.ipv6_address.as_str()).filter(|s| !s.is_empty());
        let Some(v6) = &net.v6 else {
            return match wanted {
                Some(w) => Err(NetError::Invalid(format!(
                    "invalid IPv6 address {w}: network {} has no IPv6 (create it with --ipv6)",
                    net.name
                ))),
                None => Ok((None, false)),
            };
        };
        let used = net.used_ips6();
        match wanted {
            Some(w) => {
                if !net.is_user_defined() {
                    return Err(NetError::Invalid(
                        "user specified IP address is supported on user defined networks only".into(),
                    ));
                }
                let ip: Ipv6Addr = w.parse().map_err(|_| NetError::Invalid(format!("invalid IPv6 address {w}")))?;
                if !v6.subnet.contains(ip) {
                    return Err(NetError::Invalid(format!(
                        "invalid address {ip}: it does not belong to any of this network's subnets ({})",
                        v6.subnet
                    )));
                }
                if used.contains(&ip) && net.endpoints.get(&c.id).is_none_or(|e| e.ip6 != Some(ip)) {
                    return Err(NetError::Conflict(format!(
                        "Address already in use: {ip} is used on network {}",
                        net.name
                    )));
                }
                Ok((Some(ip), true))
            }
            None => {
                let ip = ipam::allocate6(&v6.subnet, v6.ip_range.as_ref(), &used).ok_or_else(|| {
                    NetError::Forbidden(format!("no available IPv6 addresses on network {}", net.name))
                })?;
                Ok((Some(ip), false))
            }
        }
    }

    /// Starts the relays for published ports NAT cannot serve (see [`ports::relayed`]): to
    /// the container's IPv6 address if it has one, else to its IPv4 address.
    fn with_relays(&self, mut p: Published) -> Published {
        let to: IpAddr = p.ip6.map(IpAddr::V6).unwrap_or(IpAddr::V4(p.ip));
        for r in p.reservations.iter_mut().filter(|r| ports::relayed(&r.proto, r.host.ip(), p.ip6.is_some())) {
            let Some(m) =
                p.maps.iter().find(|m| m.proto == r.proto && m.host_ip == r.host.ip() && m.host_port == r.host.port())
            else {
                continue;
            };
            if let Err(e) = r.relay_to(std::net::SocketAddr::new(to, m.container_port), &self.rt) {
                eprintln!("berth daemon: relaying {} to the container: {e}", r.host);
            }
        }
        p
    }

    pub(crate) fn release_endpoint(&self, net_id: &str, container: &str) -> Option<(NetworkRecord, Endpoint)> {
        let (rec, ep) = {
            let mut st = self.lock();
            let rec = st.nets.get_mut(net_id)?;
            let ep = rec.endpoints.remove(container)?;
            let rec = rec.clone();
            let _ = self.save(&rec);
            (rec, ep)
        };
        if rec.driver == "overlay" {
            self.release_overlay_endpoint(&rec, &ep);
        }
        Some((rec, ep))
    }

    /// Kernel side of one endpoint: the interface inside the namespace, addressed and routed.
    pub(crate) async fn plumb(
        nl: &Nl,
        ns_nl: &Nl,
        net: &NetworkRecord,
        ep: &Endpoint,
        at: Placement<'_>,
    ) -> Result<()> {
        let Placement { ns, ifname, default_route, mtu } = at;
        let subnet = net.subnet.unwrap_or(Subnet { addr: Ipv4Addr::UNSPECIFIED, prefix: 0 });
        let tmp = format!("bt{}", &berth_api::ids::random_id()[..10]);
        // An overlay container's interface is a macvlan child of the network's VXLAN device
        // (see overlay::dataplane), unless an older berth made the network with a bridge.
        let overlay_parent = match net.driver.as_str() {
            "overlay" => crate::overlay::dataplane::parent_for_container(nl, net).await?,
            _ => None,
        };
        match (net.driver.as_str(), overlay_parent) {
            ("overlay", Some(vx)) => nl.child_into("macvlan", "bridge", &tmp, vx, ns).await?,
            ("bridge" | "overlay", _) => {
                let br = nl.ensure_bridge(&net.ifname, net.gateway.map(|g| (g, subnet.prefix)), mtu).await?;
                if let Some(v6) = &net.v6 {
                    nl.add_addr6(br, (v6.gateway, v6.subnet.prefix)).await?;
                }
                nl.delete(&ep.host_ifname).await?;
                nl.veth_into(&ep.host_ifname, &tmp, br, ns, mtu).await?;
            }
            (kind, _) => {
                let parent = nl.require(&net.ifname).await?;
                let mode = net.options.get(&format!("{kind}_mode")).cloned().unwrap_or_default();
                nl.child_into(kind, &mode, &tmp, parent, ns).await?;
            }
        }
        let mac = if net.driver == "ipvlan" { None } else { ipam::parse_mac(&ep.mac) };
        let gw = if default_route && !net.internal { net.gateway } else { None };
        let mut configured = ns_nl.configure(&tmp, ifname, mac, (ep.ip, subnet.prefix), gw).await;
        if let (Ok(()), Some(v6), Some(ip6)) = (&configured, &net.v6, ep.ip6) {
            let gw6 = (default_route && !net.internal).then_some(v6.gateway);
            configured = ns_nl.configure6(ifname, (ip6, v6.subnet.prefix), gw6).await;
        }
        if configured.is_err() {
            // Not left half made in a running container (`network connect`): still under
            // its temporary name if the renaming failed (then `ifname` may be another
            // interface's), else under `ifname`, which the renaming proved was free.
            let name = if ns_nl.index(&tmp).await.ok().flatten().is_some() { tmp.as_str() } else { ifname };
            let _ = ns_nl.delete(name).await;
        }
        configured
    }

    /// Overlay interfaces leave room for the VXLAN header.
    pub(crate) fn endpoint_mtu(&self, net: &NetworkRecord) -> Option<u32> {
        match self.cluster.get() {
            Some(cl) if net.driver == "overlay" => Some(cl.mtu(self.opts.mtu)),
            _ => self.opts.mtu,
        }
    }

    /// What inspect shows for an endpoint: its addresses, and the settings asked for
    /// (IPAM config, links, driver options), as Docker echoes them.
    pub(crate) fn endpoint_settings(
        net: &NetworkRecord,
        ep: &Endpoint,
        asked: Option<&EndpointSettings>,
    ) -> EndpointSettings {
        let asked_ipam = asked.and_then(|a| a.ipam_config.clone());
        EndpointSettings {
            ipam_config: asked_ipam.or_else(|| {
                (ep.static_ip || ep.static_ip6).then(|| EndpointIpamConfig {
                    ipv4_address: if ep.static_ip { ep.ip.to_string() } else { String::new() },
                    ipv6_address: ep.ip6.filter(|_| ep.static_ip6).map(|i| i.to_string()).unwrap_or_default(),
                    ..Default::default()
                })
            }),
            links: asked.and_then(|a| a.links.clone()).filter(|l| !l.is_empty()),
            aliases: if ep.aliases.is_empty() { None } else { Some(ep.aliases.clone()) },
            mac_address: ep.mac.clone(),
            driver_opts: asked.and_then(|a| a.driver_opts.clone()).filter(|o| !o.is_empty()),
            network_id: net.id.clone(),
            endpoint_id: ep.endpoint_id.clone(),
            gateway: net.gateway.map(|g| g.to_string()).unwrap_or_default(),
            ip_address: ep.ip.to_string(),
            ip_prefix_len: net.subnet.map(|s| s.prefix).unwrap_or(0),
            ipv6_gateway: net
                .v6
                .as_ref()
                .filter(|_| ep.ip6.is_some())
                .map(|v| v.gateway.to_string())
                .unwrap_or_default(),
            global_ipv6_address: ep.ip6.map(|i| i.to_string()).unwrap_or_default(),
            global_ipv6_prefix_len: net.v6.as_ref().filter(|_| ep.ip6.is_some()).map(|v| v.subnet.prefix).unwrap_or(0),
            dns_names: if net.is_user_defined() {
                let mut v = vec![ep.name.clone()];
                v.extend(ep.aliases.iter().cloned());
                Some(v)
            } else {
                None
            },
        }
    }

    fn connect_inner(self: &Arc<Self>, c: &ContainerView) -> Result<Attachment> {
        let mode = c.network_mode_or_default().to_string();
        if mode == "host" {
            return Ok(Attachment { host: true, ipv6: ports::host_has_ipv6(), ..Default::default() });
        }
        if let Some(other) = mode.strip_prefix("container:") {
            let o = self.containers.get(other).map_err(NetError::Invalid)?;
            if !o.running {
                return Err(NetError::Conflict(format!(
                    "cannot join network namespace of a non running container: container {} is not running",
                    o.id
                )));
            }
            return Ok(Attachment {
                netns: Some(PathBuf::from(format!("/proc/{}/ns/net", o.pid))),
                settings: o.network,
                shared_etc: Some((o.hosts_path, o.resolv_conf_path)),
                ipv6: true,
                ..Default::default()
            });
        }
        let ns = self.ns_path(&c.id);
        netns::remove(&ns);
        netns::create(&ns).map_err(|e| NetError::System(format!("creating the network namespace: {e}")))?;
        // One visit to the namespace: its settings, and a netlink connection made inside it.
        let rt = self.rt.clone();
        let ns_nl = netns::run_in(&ns, move || {
            crate::v6::refuse_router_advertisements(Path::new("/proc/sys/net/ipv6/conf"));
            Nl::here(&rt)
        })
        .map_err(|e| NetError::System(format!("entering {}: {e}", ns.display())))??;
        let mut att = Attachment { netns: Some(ns.clone()), ..Default::default() };
        if mode == "none" {
            self.rt.block_on(ns_nl.loopback_up())?;
            att.settings.sandbox_key = ns.display().to_string();
            att.ipv6 = true;
            return Ok(att);
        }
        let mut settings = NetworkSettings {
            sandbox_key: ns.display().to_string(),
            sandbox_id: berth_api::ids::random_id(),
            ..Default::default()
        };
        let mut user_defined = false;
        let mut internal_only = true;
        for (i, name) in wanted_networks(c).iter().enumerate() {
            let (net, ep) = self.reserve_endpoint(name, c, c.endpoints.get(name), i)?;
            if net.driver == "overlay" {
                self.publish_overlay_endpoint(&net, &ep)?;
            }
            let nl = self.nl.clone();
            let ns_nl2 = ns_nl.clone();
            let (net2, ep2, ns2) = (net.clone(), ep.clone(), ns.clone());
            let mtu = self.endpoint_mtu(&net);
            self.rt.block_on(async move {
                let ifname = format!("eth{i}");
                let at = Placement { ns: &ns2, ifname: &ifname, default_route: i == 0, mtu };
                NetworkService::plumb(&nl, &ns_nl2, &net2, &ep2, at).await
            })?;
            if net.driver == "bridge" {
                // After plumbing: the default bridge is made on first use.
                set_bridge_sysctls(&net, self.opts.ip_forward);
            }
            user_defined |= net.is_user_defined();
            internal_only &= net.internal;
            att.ipv6 |= net.v6.is_some();
            let es = Self::endpoint_settings(&net, &ep, c.endpoints.get(name));
            if net.default_bridge {
                settings.ip_address = es.ip_address.clone();
                settings.ip_prefix_len = es.ip_prefix_len;
                settings.gateway = es.gateway.clone();
                settings.mac_address = es.mac_address.clone();
                settings.endpoint_id = es.endpoint_id.clone();
                settings.global_ipv6_address = es.global_ipv6_address.clone();
                settings.global_ipv6_prefix_len = es.global_ipv6_prefix_len;
                settings.ipv6_gateway = es.ipv6_gateway.clone();
            }
            if i == 0 {
                att.address = Some(ep.ip.to_string());
                att.address6 = ep.ip6.map(|i| i.to_string());
                // Published ports go to the primary network's address.
                let exposed: Vec<String> = c.exposed_ports.clone();
                let taken = {
                    let st = self.lock();
                    let used: Vec<(String, u16)> =
                        st.ports.values().flat_map(|p| p.maps.iter().map(|x| (x.proto.clone(), x.host_port))).collect();
                    move |proto: &str, p: u16| used.iter().any(|(pr, hp)| pr == proto && *hp == p)
                };
                let (maps, res) =
                    ports::allocate(&c.port_bindings, &exposed, c.publish_all_ports, ep.ip6.is_some(), &taken)?;
                settings.ports = ports::port_map(&maps, &exposed);
                if !maps.is_empty() {
                    let p = self.with_relays(Published { ip: ep.ip, ip6: ep.ip6, maps, reservations: res });
                    self.lock().ports.insert(c.id.clone(), p);
                    self.apply_rules()?;
                }
            }
            settings.networks.insert(net.name.clone(), es);
            self.emit_container("connect", &net, &c.id);
        }
        if !att.ipv6 {
            // No network with IPv6: IPv6 is off inside, as Docker leaves it (a `--sysctl`
            // of the user's, applied later, still wins).
            crate::v6::set_disabled_in(&ns, true);
        }
        if user_defined {
            self.start_dns(c, &ns, !internal_only)?;
            att.nameservers = Some(vec![dns::ADDR.to_string()]);
            att.dns_options = vec!["ndots:0".into()];
        }
        let links = self.links(c)?;
        att.hosts = links.hosts;
        att.env = links.env;
        att.settings = settings;
        Ok(att)
    }

    fn disconnect_inner(&self, c: &ContainerView) -> Vec<String> {
        let mut errors = Vec::new();
        self.lock().dns.remove(&c.id);
        let had_ports = self.lock().ports.remove(&c.id).is_some();
        if had_ports && let Err(e) = self.apply_rules() {
            errors.push(e.to_string());
        }
        let nets: Vec<String> =
            self.lock().nets.values().filter(|n| n.endpoints.contains_key(&c.id)).map(|n| n.id.clone()).collect();
        let mut veths = Vec::new();
        // Interfaces that live in the namespace (macvlan and ipvlan children, overlay ones
        // among them), and whether each has a MAC of its own to give back.
        let mut children = Vec::new();
        for id in nets {
            if let Some((net, ep)) = self.release_endpoint(&id, &c.id) {
                self.emit_container("disconnect", &net, &c.id);
                if net.driver != "bridge" {
                    children.push((ep.ip, net.driver != "ipvlan"));
                }
                if net.driver == "bridge" || net.driver == "overlay" {
                    let nl = self.nl.clone();
                    match self.rt.block_on(async move { nl.index(&ep.host_ifname).await }) {
                        Ok(Some(idx)) => veths.push(idx),
                        Ok(None) => {}
                        Err(e) => errors.push(e.to_string()),
                    }
                }
            }
        }
        // A macvlan or ipvlan child (an overlay endpoint's too) outlives this call with the
        // namespace, and its parent refuses its address (and MAC) to anyone else until then:
        // it gives them back first (see release_addr).
        let ns = self.ns_path(&c.id);
        if !children.is_empty() && ns.exists() {
            let released = {
                let _g = self.rt.enter();
                Nl::in_ns(&ns, &self.rt)
            }
            .and_then(|ns_nl| {
                self.rt.block_on(async move {
                    for (ip, mac) in children {
                        ns_nl.release_addr(ip, mac).await?;
                    }
                    Ok(())
                })
            });
            if let Err(e) = released {
                errors.push(e.to_string());
            }
        }
        netns::remove(&ns);
        // Dropping the namespace destroys its veths in the kernel's own time; deleting them
        // here would wait for an RCU grace period on the exit path. The deletion by index
        // (never by name, which the container's next start reuses) catches a namespace that
        // something else still holds, e.g. a container sharing it.
        for idx in veths {
            let _ = self.reaper.send(idx);
        }
        errors
    }

    /// Brings back, for a running container after a daemon restart, what only lived in the
    /// previous daemon: port reservations (and rules) and its resolver.
    fn restore_inner(self: &Arc<Self>, c: &ContainerView) -> Result<()> {
        let ns = self.ns_path(&c.id);
        if !ns.exists() {
            return Ok(());
        }
        let mut maps = Vec::new();
        let mut res = Vec::new();
        let primary_ep = {
            let st = self.lock();
            find_in(&st.nets, primary(c.network_mode_or_default())).ok().and_then(|n| n.endpoints.get(&c.id).cloned())
        };
        let has_v6 = primary_ep.as_ref().is_some_and(|ep| ep.ip6.is_some());
        for (key, binds) in &c.network.ports {
            let (p, proto) = key.split_once('/').unwrap_or((key, "tcp"));
            let Ok(cp) = p.parse::<u16>() else { continue };
            for b in binds.iter().flatten() {
                let Ok(hp) = b.host_port.parse::<u16>() else { continue };
                let Ok(ip) = b.host_ip.parse::<IpAddr>() else { continue };
                let mut one = BTreeMap::new();
                one.insert(
                    format!("{cp}/{proto}"),
                    Some(vec![berth_api::models::PortBinding {
                        host_ip: b.host_ip.clone(),
                        host_port: hp.to_string(),
                    }]),
                );
                if let Ok((m, r)) = ports::allocate(&one, &[], false, has_v6, &|_, _| false) {
                    maps.extend(m);
                    res.extend(r);
                } else {
                    // The reservation is lost (the port is held by the old daemon's socket,
                    // still open somewhere, or taken); the rule still leads to the container,
                    // but a relay cannot be started.
                    if ports::relayed(proto, ip, has_v6) {
                        eprintln!(
                            "berth daemon: {} of container {} could not be taken back: connections to it are not relayed",
                            std::net::SocketAddr::new(ip, hp),
                            &c.id[..12]
                        );
                    }
                    maps.push(ports::Mapping {
                        proto: proto.to_string(),
                        host_ip: ip,
                        host_port: hp,
                        container_port: cp,
                    });
                }
            }
        }
        if let (Some(ep), false) = (primary_ep, maps.is_empty()) {
            let p = self.with_relays(Published { ip: ep.ip, ip6: ep.ip6, maps, reservations: res });
            self.lock().ports.insert(c.id.clone(), p);
        }
        let (user, forward) = {
            let st = self.lock();
            let mine: Vec<&NetworkRecord> = st.nets.values().filter(|n| n.endpoints.contains_key(&c.id)).collect();
            (mine.iter().any(|n| n.is_user_defined()), !mine.iter().all(|n| n.internal))
        };
        if user {
            self.start_dns(c, &ns, forward)?;
        }
        self.apply_rules()
    }

    /// At start-up: forgets endpoints of containers that are not running and re-applies the
    /// rules. Called after the container service has recovered; containers that a restart
    /// policy is bringing back (status `restarting`) keep theirs, as their start may be
    /// plumbing them right now.
    pub fn reconcile(self: &Arc<Self>) {
        let running: std::collections::BTreeSet<String> =
            self.containers.all().into_iter().filter(|r| r.running || r.restarting).map(|r| r.id).collect();
        let stale: Vec<(String, String)> = {
            let st = self.lock();
            st.nets
                .values()
                .flat_map(|n| {
                    n.endpoints.keys().filter(|c| !running.contains(*c)).map(move |c| (n.id.clone(), c.clone()))
                })
                .collect()
        };
        for (net, c) in stale {
            if let Some((n, ep)) = self.release_endpoint(&net, &c)
                && (n.driver == "bridge" || n.driver == "overlay")
            {
                let nl = self.nl.clone();
                let _ = self.rt.block_on(async move { nl.delete(&ep.host_ifname).await });
            }
            netns::remove(&self.ns_path(&c));
        }
        let _ = self.apply_rules();
    }
}

/// The `Networks` the container service calls, implemented by a shared handle.
pub struct Handle(pub Arc<NetworkService>);

impl Networks for Handle {
    fn validate(&self, mode: &str, endpoints: &BTreeMap<String, EndpointSettings>) -> Result<()> {
        let m = primary(mode);
        // A network that does not exist (yet) is refused at start, as dockerd does: a 404
        // from create would make the docker CLI take it for a missing image and pull.
        let net = if m != "host" && m != "none" && !m.starts_with("container:") { self.0.find(m).ok() } else { None };
        if let Some(net) = net {
            if let Some(s) =
                endpoints.get(m).and_then(|s| s.ipam_config.as_ref()).filter(|i| !i.ipv4_address.is_empty())
            {
                if !net.is_user_defined() {
                    return Err(NetError::Invalid(
                        "user specified IP address is supported on user defined networks only".into(),
                    ));
                }
                let ip: Ipv4Addr = s
                    .ipv4_address
                    .parse()
                    .map_err(|_| NetError::Invalid(format!("invalid IPv4 address {}", s.ipv4_address)))?;
                if let Some(sn) = net.subnet
                    && !sn.contains(ip)
                {
                    return Err(NetError::Invalid(format!(
                        "invalid address {ip}: it does not belong to any of this network's subnets ({sn})"
                    )));
                }
            }
            if let Some(w) = endpoints
                .get(m)
                .and_then(|s| s.ipam_config.as_ref())
                .map(|i| i.ipv6_address.as_str())
                .filter(|s| !s.is_empty())
            {
                if !net.is_user_defined() {
                    return Err(NetError::Invalid(
                        "user specified IP address is supported on user defined networks only".into(),
                    ));
                }
                let ip: Ipv6Addr = w.parse().map_err(|_| NetError::Invalid(format!("invalid IPv6 address {w}")))?;
                match &net.v6 {
                    None => {
                        return Err(NetError::Invalid(format!(
                            "invalid IPv6 address {ip}: network {} has no IPv6 (create it with --ipv6)",
                            net.name
                        )));
                    }
                    Some(v6) if !v6.subnet.contains(ip) => {
                        return Err(NetError::Invalid(format!(
                            "invalid address {ip}: it does not belong to any of this network's subnets ({})",
                            v6.subnet
                        )));
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(())
    }

    fn connect(&self, c: &ContainerView) -> Result<Attachment> {
        match self.0.connect_inner(c) {
            Ok(a) => Ok(a),
            Err(e) => {
                self.0.disconnect_inner(c);
                Err(e)
            }
        }
    }

    fn disconnect(&self, c: &ContainerView) {
        for e in self.0.disconnect_inner(c) {
            eprintln!("berth: network teardown for {}: {e}", &c.id[..12]);
        }
    }

    fn removed(&self, c: &ContainerView) {
        self.0.disconnect_inner(c);
    }

    fn restore(&self, c: &ContainerView) {
        if let Err(e) = self.0.restore_inner(c) {
            eprintln!("berth: restoring the network of {}: {e}", &c.id[..12]);
        }
    }

    fn renamed(&self, c: &ContainerView) {
        if let Err(e) = self.0.rename_endpoints(c) {
            eprintln!("berth: renaming the endpoints of {}: {e}", &c.id[..12]);
        }
    }

    fn host_gateway(&self) -> Option<String> {
        let st = self.0.lock();
        st.nets.values().find(|n| n.default_bridge).and_then(|n| n.gateway).map(|g| g.to_string())
    }
}

/// Where an endpoint's interface appears in a container, and how.
pub(crate) struct Placement<'a> {
    /// The container's network namespace.
    pub ns: &'a Path,
    /// The interface's name inside (`eth0`, …).
    pub ifname: &'a str,
    /// Whether the network's gateway becomes the container's default route.
    pub default_route: bool,
    pub mtu: Option<u32>,
}
