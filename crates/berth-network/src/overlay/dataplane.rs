//! The kernel side of an overlay network on one host: a VXLAN device, and on it macvlan
//! interfaces in bridge mode, one per local container (made by the attach code) and one in
//! the host's namespace that holds the gateway address, as a bridge network's bridge does,
//! under the name a bridge would have (so the firewall rules read the same).
//!
//! Why not a bridge with veths, as Docker's overlay driver and bridge networks have: every
//! frame crossing a bridge in the host's namespace goes through br_netfilter's IPv4 hooks
//! and a route lookup (bridge-nf-call-iptables is 1 in every namespace on common kernels,
//! and the per-bridge option can only add to it), and each veth is one more queue and
//! softirq. Over macvlan a container's frame goes straight into the VXLAN device and a
//! decapsulated one straight to the container. scripts/bench-overlay.sh, alternating the
//! two layouts: iperf3 container to container across two namespace hosts at 83-86% of the
//! host-to-host throughput, against 75-76% with a bridge and veths.
//! A network made by an older berth keeps its bridge until it is removed (its containers
//! keep working across a daemon upgrade; new ones get veths on that bridge), and a kernel
//! without macvlan gets that layout too.
//!
//! The VXLAN device does not learn and does not flood: every remote endpoint is a
//! permanent neighbour entry on it (its ARP proxy answers for remote addresses, so ARP
//! never crosses hosts and every host's bridge can hold the same gateway address) and a
//! permanent forwarding entry sending that endpoint's MAC to its host's VTEP. The entries
//! are reconciled against a dump of the kernel's, so a restarted daemon fixes whatever
//! changed while it was away.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use futures_util::TryStreamExt;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::link::MacVlanMode;
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use rtnetlink::{LinkMacVlan, LinkUnspec, LinkVxlan};

use super::plan::{self, ClusterEndpoint};
use crate::model::NetworkRecord;
use crate::nl::Nl;
use crate::{NetError, Result};

fn sys(context: &str, e: rtnetlink::Error) -> NetError {
    NetError::System(format!("{context}: {e}"))
}

fn exists(e: &rtnetlink::Error) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.raw_code() == -libc::EEXIST)
}

/// The network's VNI and the name of its VXLAN device.
fn vxlan_of(net: &NetworkRecord) -> Result<(u32, String)> {
    let vni =
        plan::vni_of(net).ok_or_else(|| NetError::System(format!("overlay network {} has no VXLAN ID", net.name)))?;
    Ok((vni, plan::vxlan_name(vni)))
}

/// Creates (if missing) the network's VXLAN device and gateway interface, both up.
pub async fn ensure(nl: &Nl, net: &NetworkRecord, local: Ipv4Addr, mtu: u32) -> Result<()> {
    let (vni, vx) = vxlan_of(net)?;
    let vx_idx = match nl.index(&vx).await? {
        Some(i) => i,
        None => {
            // No outer UDP checksum (as Docker's and flannel's VXLAN devices): the inner frame
            // has its own, and a NIC that segments VXLAN but cannot also checksum it
            // (tx-udp_tnl-segmentation without tx-udp_tnl-csum-segmentation) would otherwise
            // leave the segmentation to the CPU.
            let msg = LinkVxlan::new(&vx, vni)
                .port(plan::VXLAN_PORT)
                .local(local)
                .learning(false)
                .proxy(true)
                .udp_csum(false)
                .mtu(mtu)
                .build();
            match nl.handle.link().add(msg).execute().await {
                Ok(()) => {}
                Err(e) if exists(&e) => {}
                Err(rtnetlink::Error::NetlinkError(m)) if m.raw_code() == -libc::EADDRINUSE => {
                    return Err(NetError::Conflict(format!(
                        "VXLAN ID {vni} is already in use on this host (another device has it)"
                    )));
                }
                Err(e) => return Err(sys(&format!("creating VXLAN device {vx}"), e)),
            }
            nl.require(&vx).await?
        }
    };
    nl.up(vx_idx).await?;
    let subnet = net.subnet.ok_or_else(|| NetError::System(format!("overlay network {} has no subnet", net.name)))?;
    let (gw, bridged) = match nl.lookup(&net.ifname).await? {
        Some(found) => found,
        None => {
            // The gateway takes the VXLAN device's MTU.
            let msg = LinkMacVlan::new(&net.ifname, vx_idx, MacVlanMode::Bridge).build();
            match nl.handle.link().add(msg).execute().await {
                Ok(()) => (nl.require(&net.ifname).await?, false),
                // Made meanwhile by another container's start.
                Err(e) if exists(&e) => nl
                    .lookup(&net.ifname)
                    .await?
                    .ok_or_else(|| NetError::System(format!("{} vanished as it was made", net.ifname)))?,
                // A kernel without macvlan: the bridge layout.
                Err(rtnetlink::Error::NetlinkError(m)) if m.raw_code() == -libc::EOPNOTSUPP => {
                    (nl.ensure_bridge(&net.ifname, None, Some(mtu)).await?, true)
                }
                Err(e) => return Err(sys(&format!("creating the gateway interface {} on {vx}", net.ifname), e)),
            }
        }
    };
    if bridged {
        // The bridge layout: the VXLAN device is one of the bridge's ports (again, if it was
        // deleted and made anew while the daemon was away).
        let join = LinkUnspec::new_with_index(vx_idx).controller(gw).build();
        nl.handle.link().set(join).execute().await.map_err(|e| sys(&format!("attaching {vx} to {}", net.ifname), e))?;
    }
    if let Some(g) = net.gateway {
        nl.ensure_addr(gw, (g, subnet.prefix), &format!("the gateway interface {}", net.ifname)).await?;
    }
    nl.up(gw).await
}

/// The VXLAN device a container's interface on `net` is made on, or None if the network
/// has the bridge layout (then the container gets a veth on the bridge).
pub async fn parent_for_container(nl: &Nl, net: &NetworkRecord) -> Result<Option<u32>> {
    if bridge_layout(nl, net).await? {
        return Ok(None);
    }
    nl.require(&vxlan_of(net)?.1).await.map(Some)
}

/// Whether the network's gateway on this host is a bridge (see the module docs).
pub async fn bridge_layout(nl: &Nl, net: &NetworkRecord) -> Result<bool> {
    Ok(nl.lookup(&net.ifname).await?.is_some_and(|(_, bridge)| bridge))
}

/// Deletes the network's VXLAN device (its entries, the gateway and any container's
/// macvlan interface go with it) and, with the bridge layout, the bridge.
pub async fn remove(nl: &Nl, net: &NetworkRecord) -> Result<()> {
    let mut first = Ok(());
    if let Some(vni) = plan::vni_of(net) {
        first = nl.delete(&plan::vxlan_name(vni)).await;
    }
    nl.delete(&net.ifname).await?;
    first
}

/// Makes the VXLAN device's neighbour and forwarding entries exactly those of `remote`.
/// Does nothing, and says false, if the network has no VXLAN device on this host.
pub async fn program(nl: &Nl, net: &NetworkRecord, remote: &[ClusterEndpoint]) -> Result<bool> {
    let Some(vni) = plan::vni_of(net) else { return Ok(false) };
    let Some(idx) = nl.index(&plan::vxlan_name(vni)).await? else { return Ok(false) };
    let (want_neigh, want_fdb) = plan::remote_entries(remote);
    let (have_neigh, have_fdb) = current(nl, idx).await?;
    let (add, del) = plan::diff(&have_neigh, &want_neigh);
    for (ip, mac) in del {
        let _ = nl.handle.neighbours().del(neigh_msg(idx, ip, mac)).execute().await;
    }
    for (ip, mac) in add {
        match nl
            .handle
            .neighbours()
            .add(idx, IpAddr::V4(ip))
            .link_layer_address(&mac)
            .state(NeighbourState::Permanent)
            .replace()
            .execute()
            .await
        {
            Ok(()) => {}
            Err(e) => return Err(sys(&format!("adding neighbour {ip} on {}", plan::vxlan_name(vni)), e)),
        }
    }
    let (add, del) = plan::diff(&have_fdb, &want_fdb);
    for (mac, dst) in del {
        let _ = nl.handle.neighbours().del(fdb_msg(idx, mac, dst)).execute().await;
    }
    for (mac, dst) in add {
        let r = nl
            .handle
            .neighbours()
            .add_bridge(idx, &mac)
            .destination(IpAddr::V4(dst))
            .flags(NeighbourFlags::Own)
            .state(NeighbourState::Permanent)
            .replace()
            .execute()
            .await;
        if let Err(e) = r {
            return Err(sys(&format!("adding forwarding entry to {dst} on {}", plan::vxlan_name(vni)), e));
        }
    }
    Ok(true)
}

fn neigh_msg(idx: u32, ip: Ipv4Addr, mac: [u8; 6]) -> NeighbourMessage {
    let mut m = NeighbourMessage::default();
    m.header.family = AddressFamily::Inet;
    m.header.ifindex = idx;
    m.attributes.push(NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)));
    m.attributes.push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
    m
}

fn fdb_msg(idx: u32, mac: [u8; 6], dst: Ipv4Addr) -> NeighbourMessage {
    let mut m = NeighbourMessage::default();
    m.header.family = AddressFamily::Bridge;
    m.header.ifindex = idx;
    m.header.flags = NeighbourFlags::Own;
    m.attributes.push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
    m.attributes.push(NeighbourAttribute::Destination(NeighbourAddress::Inet(dst)));
    m
}

/// The permanent neighbour entries and the VTEP forwarding entries of the device `idx`.
async fn current(nl: &Nl, idx: u32) -> Result<plan::Entries> {
    let lladdr = |m: &NeighbourMessage| {
        m.attributes.iter().find_map(|a| match a {
            NeighbourAttribute::LinkLayerAddress(b) if b.len() == 6 => Some([b[0], b[1], b[2], b[3], b[4], b[5]]),
            _ => None,
        })
    };
    let dst = |m: &NeighbourMessage| {
        m.attributes.iter().find_map(|a| match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => Some(*ip),
            _ => None,
        })
    };
    let mut neigh = BTreeSet::new();
    let mut s = nl.handle.neighbours().get().set_address_family(AddressFamily::Inet).execute();
    while let Some(m) = s.try_next().await.map_err(|e| sys("listing neighbours", e))? {
        if m.header.ifindex == idx
            && m.header.state == NeighbourState::Permanent
            && let (Some(ip), Some(mac)) = (dst(&m), lladdr(&m))
        {
            neigh.insert((ip, mac));
        }
    }
    let mut fdb = BTreeSet::new();
    let mut s = nl.handle.neighbours().get().set_address_family(AddressFamily::Bridge).execute();
    while let Some(m) = s.try_next().await.map_err(|e| sys("listing forwarding entries", e))? {
        if m.header.ifindex == idx
            && let (Some(mac), Some(ip)) = (lladdr(&m), dst(&m))
        {
            fdb.insert((mac, ip));
        }
    }
    Ok((neigh, fdb))
}

/// The IPv4 address of `name` (for `cluster-advertise: eth0`).
pub async fn interface_address(nl: &Nl, name: &str) -> Result<Ipv4Addr> {
    use rtnetlink::packet_route::address::AddressAttribute;
    let idx = nl.require(name).await?;
    let mut s = nl.handle.address().get().set_link_index_filter(idx).execute();
    while let Some(a) = s.try_next().await.map_err(|e| sys("listing addresses", e))? {
        for at in &a.attributes {
            if let AddressAttribute::Address(IpAddr::V4(ip)) = at {
                return Ok(*ip);
            }
        }
    }
    Err(NetError::Invalid(format!("interface {name} has no IPv4 address to advertise")))
}
