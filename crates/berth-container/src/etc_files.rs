//! A container's /etc/hostname, /etc/hosts and /etc/resolv.conf, written at each start.
//!
//! As dockerd writes them: a copy of the host's /etc/hosts for `--net=host`, unless
//! `--add-host` entries are given (then, as Docker >= 27.4, a file of the container's own,
//! so an entry can override one of the host's); the container's own otherwise, naming it by
//! its full name and, for an FQDN, its first label. On a user-defined network resolv.conf
//! names the embedded resolver (127.0.0.11), which forwards other names to `--dns` servers
//! (or the daemon's, or the host's); elsewhere it lists the servers asked for as given, or
//! the host's without loopback ones (and IPv6 ones where IPv6 is off), falling back to
//! Docker's public defaults when none are left.

use crate::network::Attachment;
use crate::record::Record;
use crate::{ContainerError, Result};

/// Docker's resolvers for a container left with none (`defaultIPv4Dns`, `defaultIPv6Dns`).
pub const DEFAULT_NAMESERVERS_V4: [&str; 2] = ["8.8.8.8", "8.8.4.4"];
pub const DEFAULT_NAMESERVERS_V6: [&str; 2] = ["2001:4860:4860::8888", "2001:4860:4860::8844"];

pub use berth_core::resolv::{host_resolv_conf_path, nameservers};

fn is_loopback(server: &str) -> bool {
    server.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The names of the container's own /etc/hosts line: its full name, and the first label of
/// an FQDN (`a.b.c a`), whether given as `--hostname a.b.c` or with `--domainname`.
fn host_names(hostname: &str, domainname: &str) -> String {
    let full = if domainname.is_empty() { hostname.to_string() } else { format!("{hostname}.{domainname}") };
    match full.split_once('.') {
        Some((short, _)) if !short.is_empty() => format!("{full} {short}"),
        _ => full,
    }
}

/// The /etc/hosts line for an `--add-host` entry (`name:addr`, `name=addr`), with
/// `host-gateway` replaced by `gateway`.
fn extra_host_line(entry: &str, gateway: Option<&str>) -> Option<String> {
    let (name, addr) = entry.split_once('=').or_else(|| entry.split_once(':'))?;
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    let addr = if addr == "host-gateway" { gateway.unwrap_or("127.0.0.1") } else { addr };
    Some(format!("{addr}\t{name}\n"))
}

/// Writes the three files for a container about to start on `att`. `gateway` is the address
/// `host-gateway` stands for.
pub fn write(rec: &Record, att: &Attachment, cfg: &crate::Config, gateway: Option<&str>) -> Result<()> {
    let io = |what: &str, e| ContainerError::io(format!("writing {what}"), e);
    std::fs::write(&rec.hostname_path, format!("{}\n", rec.config.hostname)).map_err(|e| io("hostname", e))?;
    let extra: String =
        rec.host_config.extra_hosts.iter().flatten().filter_map(|h| extra_host_line(h, gateway)).collect();

    // `--network container:X`: X's files, as Docker shares them.
    if let Some((hosts, resolv)) = &att.shared_etc
        && let (Ok(h), Ok(r)) = (std::fs::read_to_string(hosts), std::fs::read_to_string(resolv))
    {
        std::fs::write(&rec.hosts_path, h).map_err(|e| io("hosts", e))?;
        std::fs::write(&rec.resolv_conf_path, r).map_err(|e| io("resolv.conf", e))?;
        return Ok(());
    }

    let mut hosts = String::new();
    if att.host && extra.is_empty() {
        hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    } else {
        hosts.push_str("127.0.0.1\tlocalhost\n");
        if att.ipv6 {
            hosts.push_str("::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n");
        }
        for (addr, names) in &att.hosts {
            hosts.push_str(&format!("{addr}\t{names}\n"));
        }
        hosts.push_str(&extra);
        if let Some(a) = &att.address {
            let names = host_names(&rec.config.hostname, &rec.config.domainname);
            hosts.push_str(&format!("{a}\t{names}\n"));
            if let Some(a6) = &att.address6 {
                hosts.push_str(&format!("{a6}\t{names}\n"));
            }
        }
    }
    std::fs::write(&rec.hosts_path, hosts).map_err(|e| io("hosts", e))?;

    let host_resolv = std::fs::read_to_string(host_resolv_conf_path()).unwrap_or_default();
    // The embedded resolver stays the container's only server: `--dns` servers are its
    // upstreams (see the network service), so container names keep resolving.
    let servers: Vec<String> = if let Some(ns) = &att.nameservers {
        ns.clone()
    } else {
        let asked = if !rec.host_config.dns.is_empty() { &rec.host_config.dns } else { &cfg.dns };
        let mut servers = if asked.is_empty() { nameservers(&host_resolv) } else { asked.clone() };
        if !att.host && asked.is_empty() {
            // Loopback resolvers of the host are unreachable from a container's own network,
            // IPv6 ones from one without IPv6.
            servers.retain(|s| !is_loopback(s) && (att.ipv6 || !s.contains(':')));
            if servers.is_empty() {
                servers.extend(DEFAULT_NAMESERVERS_V4.iter().map(|s| s.to_string()));
                if att.ipv6 {
                    servers.extend(DEFAULT_NAMESERVERS_V6.iter().map(|s| s.to_string()));
                }
            }
        }
        servers
    };
    let search: Vec<String> = if !rec.host_config.dns_search.is_empty() {
        rec.host_config.dns_search.clone()
    } else if !cfg.dns_search.is_empty() {
        cfg.dns_search.clone()
    } else {
        host_resolv
            .lines()
            .filter_map(|l| l.strip_prefix("search"))
            .flat_map(|s| s.split_whitespace().map(String::from))
            .collect()
    };
    let mut options: Vec<String> = if !rec.host_config.dns_options.is_empty() {
        rec.host_config.dns_options.clone()
    } else if !cfg.dns_options.is_empty() {
        cfg.dns_options.clone()
    } else {
        Vec::new()
    };
    // What the embedded resolver wants (`ndots:0`), unless the user set it.
    for o in &att.dns_options {
        let key = o.split(':').next().unwrap_or(o);
        if !options.iter().any(|u| u.split(':').next() == Some(key)) {
            options.push(o.clone());
        }
    }
    let mut resolv = String::new();
    if !search.is_empty() {
        resolv.push_str(&format!("search {}\n", search.join(" ")));
    }
    for s in servers {
        resolv.push_str(&format!("nameserver {s}\n"));
    }
    if !options.is_empty() {
        resolv.push_str(&format!("options {}\n", options.join(" ")));
    }
    std::fs::write(&rec.resolv_conf_path, resolv).map_err(|e| io("resolv.conf", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_hosts_forms() {
        assert_eq!(extra_host_line("a:1.2.3.4", None).unwrap(), "1.2.3.4\ta\n");
        assert_eq!(extra_host_line("a=::1", None).unwrap(), "::1\ta\n");
        assert_eq!(extra_host_line("a:[::2]", None).unwrap(), "::2\ta\n");
        assert_eq!(extra_host_line("gw:host-gateway", Some("10.1.0.1")).unwrap(), "10.1.0.1\tgw\n");
        assert!(extra_host_line("nothing", None).is_none());
    }

    #[test]
    fn own_names() {
        assert_eq!(host_names("abc", ""), "abc");
        assert_eq!(host_names("a.b.c", ""), "a.b.c a");
        assert_eq!(host_names("a", "b.c"), "a.b.c a");
    }

    #[test]
    fn nameserver_lines() {
        assert_eq!(nameservers("# x\nnameserver 1.1.1.1\n nameserver ::1 \nsearch a\n"), vec!["1.1.1.1", "::1"]);
        assert!(is_loopback("127.0.0.53") && is_loopback("::1") && !is_loopback("10.0.0.1"));
    }
}
