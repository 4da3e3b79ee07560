//! What a container's names are to the others: the embedded DNS's answers (names, aliases,
//! links, reverse lookups) and the legacy links of the default bridge.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use berth_core::links::link_parts;
use berth_core::network::ContainerView;

use crate::attach::primary;
use crate::service::{NetworkService, find_in};
use crate::{NetError, Result, dns};

impl NetworkService {
    /// The addresses `name` has for `asker` on the user-defined networks they share.
    fn resolve(&self, name: &str, asker: &str) -> Option<Vec<IpAddr>> {
        let st = self.lock();
        let mut out = Vec::new();
        for n in st.nets.values().filter(|n| n.is_user_defined() && n.endpoints.contains_key(asker)) {
            let mut local = name.strip_suffix(&format!(".{}", n.name)).unwrap_or(name);
            // The asker's own links on this network: `alias` stands for the target.
            if let Some(own) = n.endpoints.get(asker)
                && let Some(target) = own.links.iter().find_map(|l| {
                    let (t, a) = link_parts(l);
                    a.eq_ignore_ascii_case(local).then_some(t)
                })
            {
                local = target;
            }
            for e in n.endpoints.values() {
                let hit = e.name.eq_ignore_ascii_case(local)
                    || e.aliases.iter().any(|a| a.eq_ignore_ascii_case(local))
                    || (local.len() >= 12 && e.container.starts_with(local));
                if hit {
                    for ip in std::iter::once(IpAddr::V4(e.ip)).chain(e.ip6.map(IpAddr::V6)) {
                        if !out.contains(&ip) {
                            out.push(ip);
                        }
                    }
                }
            }
        }
        self.overlay_resolve(&st, name, asker, &mut out);
        (!out.is_empty()).then_some(out)
    }

    fn reverse(&self, ip: IpAddr, asker: &str) -> Option<String> {
        let st = self.lock();
        st.nets
            .values()
            .filter(|n| n.is_user_defined() && n.endpoints.contains_key(asker))
            .flat_map(|n| n.endpoints.values().map(move |e| (n, e)))
            .find(|(_, e)| IpAddr::V4(e.ip) == ip || e.ip6.map(IpAddr::V6) == Some(ip))
            .map(|(n, e)| format!("{}.{}", e.name, n.name))
            .or_else(|| match ip {
                IpAddr::V4(ip) => self.overlay_reverse(&st, ip, asker),
                IpAddr::V6(_) => None,
            })
    }

    pub(crate) fn start_dns(self: &Arc<Self>, c: &ContainerView, ns: &Path, forward: bool) -> Result<()> {
        let me = Arc::downgrade(self);
        let me2 = me.clone();
        let lookup: dns::Lookup = Arc::new(move |n: &str, a: &str| me.upgrade().and_then(|s| s.resolve(n, a)));
        let reverse: dns::Reverse = Arc::new(move |ip: IpAddr, a: &str| me2.upgrade().and_then(|s| s.reverse(ip, a)));
        // `--dns` servers (or the daemon's) are the upstreams; the host's otherwise.
        let given: Vec<std::net::SocketAddr> = if !c.dns.is_empty() { &c.dns } else { &self.opts.dns }
            .iter()
            .filter_map(|s| s.parse::<IpAddr>().ok())
            .map(|ip| std::net::SocketAddr::new(ip, 53))
            .collect();
        let upstreams = if given.is_empty() { dns::host_upstreams() } else { given };
        let server = dns::start(ns, &self.rt, c.id.clone(), lookup, reverse, upstreams, forward)
            .map_err(|e| NetError::System(format!("starting the embedded DNS server: {e}")))?;
        self.lock().dns.insert(c.id.clone(), server);
        Ok(())
    }

    /// `docker rename`: the container's endpoints (and so the embedded DNS) answer to its
    /// new name. Endpoints on overlay networks keep the old name in the cluster store until
    /// the container next joins.
    pub(crate) fn rename_endpoints(&self, c: &ContainerView) -> Result<()> {
        let mut st = self.lock();
        for n in st.nets.values_mut() {
            if let Some(ep) = n.endpoints.get_mut(&c.id)
                && ep.name != c.name
            {
                ep.name = c.name.clone();
                self.save(n)?;
            }
        }
        Ok(())
    }

    /// `--link name:alias`: /etc/hosts lines and Docker's environment variables.
    pub(crate) fn links(&self, c: &ContainerView) -> Result<Links> {
        let mut hosts = Vec::new();
        let mut env = Vec::new();
        // Off the default bridge, links are names of the embedded DNS (see reserve_endpoint):
        // no /etc/hosts lines, no variables, as with Docker.
        let on_default =
            find_in(&self.lock().nets, primary(c.network_mode_or_default())).is_ok_and(|n| !n.is_user_defined());
        if !on_default {
            return Ok(Links { hosts, env });
        }
        for l in &c.links {
            let (target, alias) = link_parts(l);
            let other = self
                .containers
                .get(target)
                .map_err(|_| NetError::Invalid(format!("could not get container for {target}")))?;
            if !other.running {
                return Err(NetError::Invalid(format!(
                    "cannot link to a non running container: /{} AS /{}/{alias}",
                    other.name, c.name
                )));
            }
            let ip = other.network.ip_address.clone();
            if ip.is_empty() {
                return Err(NetError::Invalid(format!(
                    "cannot link to /{}: it has no address on the default bridge",
                    other.name
                )));
            }
            hosts.push((ip.clone(), format!("{alias} {} {}", &other.id[..12], other.name)));
            let up = alias.to_ascii_uppercase().replace('-', "_");
            env.push(format!("{up}_NAME=/{}/{alias}", c.name));
            let mut ports: Vec<(u16, String)> = other
                .exposed_ports
                .iter()
                .filter_map(|k| {
                    let (p, proto) = k.split_once('/').unwrap_or((k, "tcp"));
                    Some((p.parse().ok()?, proto.to_string()))
                })
                .collect();
            ports.sort();
            if let Some((p, proto)) = ports.first() {
                env.push(format!("{up}_PORT={proto}://{ip}:{p}"));
            }
            for (p, proto) in &ports {
                let pfx = format!("{up}_PORT_{p}_{}", proto.to_ascii_uppercase());
                env.push(format!("{pfx}={proto}://{ip}:{p}"));
                env.push(format!("{pfx}_ADDR={ip}"));
                env.push(format!("{pfx}_PORT={p}"));
                env.push(format!("{pfx}_PROTO={proto}"));
            }
            for e in &other.env {
                if let Some((k, v)) = e.split_once('=')
                    && !matches!(k, "HOME" | "HOSTNAME" | "PATH")
                {
                    env.push(format!("{up}_ENV_{k}={v}"));
                }
            }
        }
        Ok(Links { hosts, env })
    }
}

/// What `--link` gives a container on the default bridge: /etc/hosts lines (address, names)
/// and Docker's `<ALIAS>_…` environment variables.
pub(crate) struct Links {
    pub hosts: Vec<(String, String)>,
    pub env: Vec<String>,
}
