//! `network …` commands.

use std::collections::BTreeMap;

use anyhow::{Result, anyhow, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::container::{InspectArgs, confirm, filter_json};
use super::{Exit, for_each};
use crate::client::{Client, enc, query};
use crate::format;

#[derive(Subcommand, Debug)]
pub enum NetworkCmd {
    /// Create a network
    Create(CreateArgs),
    /// List networks
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more networks
    Inspect(InspectNetArgs),
    /// Remove one or more networks
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Connect a container to a network
    Connect(ConnectArgs),
    /// Disconnect a container from a network
    Disconnect(DisconnectArgs),
    /// Remove all unused networks
    Prune(PruneArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Driver to manage the Network
    #[arg(short = 'd', long, default_value = "bridge")]
    pub driver: String,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long)]
    pub subnet: Vec<String>,
    /// IPv4 or IPv6 Gateway for the master subnet
    #[arg(long)]
    pub gateway: Vec<String>,
    /// Allocate container ip from a sub-range
    #[arg(long = "ip-range")]
    pub ip_range: Vec<String>,
    /// Auxiliary IPv4 or IPv6 addresses used by Network driver
    #[arg(long = "aux-address")]
    pub aux_address: Vec<String>,
    /// Restrict external access to the network
    #[arg(long)]
    pub internal: bool,
    /// Enable manual container attachment
    #[arg(long)]
    pub attachable: bool,
    /// Enable or disable IPv6 networking
    #[arg(long)]
    pub ipv6: bool,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt")]
    pub opt: Vec<String>,
    /// Set metadata on a network
    #[arg(long)]
    pub label: Vec<String>,
    pub name: String,
}

fn kv(list: &[String]) -> BTreeMap<String, String> {
    list.iter()
        .map(|s| s.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).unwrap_or((s.clone(), String::new())))
        .collect()
}

fn create(c: &Client, a: &CreateArgs) -> Exit {
    let cfgs = ipam_configs(a)?;
    let mut body = json!({
        "Name": a.name,
        "Driver": a.driver,
        "Internal": a.internal,
        "Attachable": a.attachable,
        "IPAM": {"Driver": "default", "Config": cfgs, "Options": {}},
        "Options": kv(&a.opt),
        "Labels": kv(&a.label),
    });
    if a.ipv6 {
        // Absent otherwise, as the docker CLI sends it: an IPv6 subnet alone turns IPv6 on.
        body["EnableIPv6"] = json!(true);
    }
    let v: Value = c.post_json("/networks/create", &body)?.json()?;
    println!("{}", v["Id"].as_str().unwrap_or(""));
    Ok(0)
}

/// Whether `cidr` (an address/prefix) contains `addr` (an address, or another address/prefix).
fn cidr_contains(cidr: &str, addr: &str) -> Option<bool> {
    let (net, len) = cidr.split_once('/')?;
    let len: u32 = len.parse().ok()?;
    let bits = |s: &str| -> Option<(u128, u32)> {
        match s.split_once('/').map_or(s, |(a, _)| a).parse::<std::net::IpAddr>().ok()? {
            std::net::IpAddr::V4(v) => Some((u32::from(v) as u128, 32)),
            std::net::IpAddr::V6(v) => Some((u128::from(v), 128)),
        }
    };
    let ((n, width), (a, w2)) = (bits(net)?, bits(addr)?);
    if width != w2 || len > width {
        return Some(false);
    }
    let shift = width - len;
    Some(shift >= 128 || n.checked_shr(shift) == a.checked_shr(shift))
}

/// The IPAM config entries of `network create`: each gateway, ip-range and auxiliary
/// address goes with the subnet that contains it, as Docker's CLI pairs them.
fn ipam_configs(a: &CreateArgs) -> Result<Vec<Value>> {
    let mut cfgs: Vec<Value> = a.subnet.iter().map(|s| json!({"Subnet": s})).collect();
    let place = |cfgs: &mut Vec<Value>, what: &str, key: &str, value: &str, aux_name: Option<&str>| -> Result<()> {
        let i = a
            .subnet
            .iter()
            .position(|s| cidr_contains(s, value).unwrap_or(false))
            .ok_or_else(|| anyhow!("no matching subnet for {what} {value}"))?;
        match aux_name {
            Some(n) => cfgs[i][key][n] = json!(value),
            None => {
                if cfgs[i].get(key).is_some() {
                    bail!("cannot configure multiple {what}s for the same subnet {}", a.subnet[i]);
                }
                cfgs[i][key] = json!(value);
            }
        }
        Ok(())
    };
    if a.subnet.is_empty() {
        if !a.ip_range.is_empty() || !a.aux_address.is_empty() {
            bail!("--ip-range and --aux-address need --subnet");
        }
        return Ok(a.gateway.iter().map(|g| json!({"Gateway": g})).collect());
    }
    for g in &a.gateway {
        place(&mut cfgs, "gateway", "Gateway", g, None)?;
    }
    for r in &a.ip_range {
        place(&mut cfgs, "ip-range", "IPRange", r, None)?;
    }
    for (k, v) in kv(&a.aux_address) {
        place(&mut cfgs, "auxiliary address", "AuxiliaryAddresses", &v, Some(&k))?;
    }
    Ok(cfgs)
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Provide filter values (e.g. "driver=bridge")
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Do not truncate the output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only display network IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

fn ls(c: &Client, a: &LsArgs) -> Exit {
    let list: Vec<Value> = c.get_json(&format!("/networks{}", query(&[("filters", filter_json(&a.filter)?)])))?;
    let id = |v: &Value| {
        let s = v["Id"].as_str().unwrap_or("");
        if a.no_trunc { s.to_string() } else { s.chars().take(12).collect() }
    };
    if a.quiet {
        for n in &list {
            println!("{}", id(n));
        }
        return Ok(0);
    }
    let rows: Vec<Value> = list
        .iter()
        .map(|n| {
            json!({
                "ID": id(n),
                "Name": n["Name"],
                "Driver": n["Driver"],
                "Scope": n["Scope"],
                "IPv6": n["EnableIPv6"].as_bool().unwrap_or(false).to_string(),
                "Internal": n["Internal"].as_bool().unwrap_or(false).to_string(),
                "CreatedAt": n["Created"],
                "Labels": n["Labels"].as_object().map(|m| m.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect::<Vec<_>>().join(",")).unwrap_or_default(),
                "LabelsMap": n["Labels"],
            })
        })
        .collect();
    let headers: BTreeMap<&str, &str> = [
        ("ID", "NETWORK ID"),
        ("Name", "NAME"),
        ("Driver", "DRIVER"),
        ("Scope", "SCOPE"),
        ("IPv6", "IPV6"),
        ("Internal", "INTERNAL"),
        ("CreatedAt", "CREATED"),
        ("Labels", "LABELS"),
    ]
    .into_iter()
    .collect();
    print!(
        "{}",
        format::render(
            &format::parse(a.format.as_deref().unwrap_or("")),
            &rows,
            "{{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
            &headers
        )
        .map_err(|e| anyhow!(e))?
    );
    Ok(0)
}

#[derive(Args, Debug)]
pub struct InspectNetArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// Verbose output for diagnostics
    #[arg(short = 'v', long)]
    pub verbose: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Do not error if the network does not exist
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(required = true)]
    pub networks: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ConnectArgs {
    /// Add network-scoped alias for the container
    #[arg(long)]
    pub alias: Vec<String>,
    /// IPv4 address (e.g., "172.30.100.104")
    #[arg(long)]
    pub ip: Option<String>,
    /// IPv6 address
    #[arg(long)]
    pub ip6: Option<String>,
    /// Add link to another container
    #[arg(long)]
    pub link: Vec<String>,
    pub network: String,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct DisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short = 'f', long)]
    pub force: bool,
    pub network: String,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long)]
    pub filter: Vec<String>,
}

pub fn run(c: &Client, cmd: NetworkCmd) -> Exit {
    match cmd {
        NetworkCmd::Create(a) => create(c, &a),
        NetworkCmd::Ls(a) => ls(c, &a),
        NetworkCmd::Inspect(a) => super::container::inspect(
            c,
            &InspectArgs { format: a.format, size: false, kind: None, names: a.names },
            Some("network"),
        ),
        NetworkCmd::Rm(a) => for_each(&a.networks, |n| match c.delete(&format!("/networks/{}", enc(n))) {
            Ok(_) => {
                println!("{n}");
                Ok(())
            }
            Err(crate::client::ClientError::Api { status: 404, .. }) if a.force => Ok(()),
            Err(e) => Err(e.into()),
        }),
        NetworkCmd::Connect(a) => {
            let ipam = (a.ip.is_some() || a.ip6.is_some()).then(|| json!({"IPv4Address": a.ip.clone().unwrap_or_default(), "IPv6Address": a.ip6.clone().unwrap_or_default()}));
            let body = json!({"Container": a.container, "EndpointConfig": {"Aliases": a.alias, "Links": a.link, "IPAMConfig": ipam}});
            c.post_json(&format!("/networks/{}/connect", enc(&a.network)), &body)?;
            Ok(0)
        }
        NetworkCmd::Disconnect(a) => {
            c.post_json(
                &format!("/networks/{}/disconnect", enc(&a.network)),
                &json!({"Container": a.container, "Force": a.force}),
            )?;
            Ok(0)
        }
        NetworkCmd::Prune(a) => {
            if !a.force
                && !confirm(
                    "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue?",
                )
            {
                return Ok(0);
            }
            let v: Value =
                c.post(&format!("/networks/prune{}", query(&[("filters", filter_json(&a.filter)?)])))?.json()?;
            if let Some(n) = v["NetworksDeleted"].as_array().filter(|a| !a.is_empty()) {
                println!("Deleted Networks:");
                for x in n {
                    println!("{}", x.as_str().unwrap_or(""));
                }
            }
            Ok(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateways_go_with_the_subnet_that_contains_them() {
        assert_eq!(cidr_contains("10.0.0.0/24", "10.0.0.1"), Some(true));
        assert_eq!(cidr_contains("10.0.0.0/24", "10.0.1.1"), Some(false));
        assert_eq!(cidr_contains("fd00:1::/64", "fd00:1::1"), Some(true));
        assert_eq!(cidr_contains("fd00:1::/64", "10.0.0.1"), Some(false));
        assert_eq!(cidr_contains("fd00:1::/64", "fd00:1::/80"), Some(true));
        assert_eq!(cidr_contains("0.0.0.0/0", "1.2.3.4"), Some(true));
    }
}
