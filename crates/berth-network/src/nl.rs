//! Netlink operations (links, addresses, routes) through rtnetlink, in the host's namespace or
//! inside a container's.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::path::Path;

use futures_util::TryStreamExt;
use rtnetlink::{Handle, LinkBridge, LinkIpVlan, LinkMacVlan, LinkUnspec, LinkVeth, LinkVlan, RouteMessageBuilder};

use crate::{NetError, Result};

fn err(context: &str, e: rtnetlink::Error) -> NetError {
    // EOPNOTSUPP when making a link: the kernel was built without that link type.
    if let rtnetlink::Error::NetlinkError(m) = &e
        && m.raw_code() == -95
    {
        return NetError::Invalid(format!(
            "{context}: this kernel does not support that kind of link (is the ipvlan, macvlan or 8021q module available?)"
        ));
    }
    NetError::System(format!("{context}: {e}"))
}

/// A netlink connection; its socket lives in the namespace it was opened in.
#[derive(Clone)]
pub struct Nl {
    pub handle: Handle,
}

impl Nl {
    /// A connection in the calling thread's namespace, driven on `rt`.
    pub fn here(rt: &tokio::runtime::Handle) -> Result<Nl> {
        // The socket registers with the runtime's reactor as it is made.
        let _g = rt.enter();
        let (conn, handle, _) = rtnetlink::new_connection().map_err(|e| NetError::System(format!("netlink: {e}")))?;
        rt.spawn(conn);
        Ok(Nl { handle })
    }

    /// A connection inside the network namespace at `ns`.
    pub fn in_ns(ns: &Path, rt: &tokio::runtime::Handle) -> Result<Nl> {
        let rt2 = rt.clone();
        crate::netns::run_in(ns, move || Nl::here(&rt2))
            .map_err(|e| NetError::System(format!("entering {}: {e}", ns.display())))?
    }

    pub async fn index(&self, name: &str) -> Result<Option<u32>> {
        Ok(self.lookup(name).await?.map(|(idx, _)| idx))
    }

    /// The index of `name`, and whether it is a bridge; None if there is no such interface.
    pub async fn lookup(&self, name: &str) -> Result<Option<(u32, bool)>> {
        use rtnetlink::packet_route::link::{InfoKind, LinkAttribute, LinkInfo};
        let mut links = self.handle.link().get().match_name(name.to_string()).execute();
        let link = match links.try_next().await {
            Ok(l) => l,
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => None,
            Err(e) => return Err(err(&format!("looking up {name}"), e)),
        };
        let bridge = |a: &LinkAttribute| matches!(a, LinkAttribute::LinkInfo(infos) if infos.iter().any(|i| matches!(i, LinkInfo::Kind(InfoKind::Bridge))));
        Ok(link.map(|l| (l.header.index, l.attributes.iter().any(bridge))))
    }

    pub async fn require(&self, name: &str) -> Result<u32> {
        self.index(name).await?.ok_or_else(|| NetError::Invalid(format!("interface {name} does not exist")))
    }

    /// Creates the bridge `name` (if missing) with `addr/prefix`, and brings it up. An
    /// existing interface of that name that is not a bridge is refused, never addressed.
    pub async fn ensure_bridge(&self, name: &str, addr: Option<(Ipv4Addr, u8)>, mtu: Option<u32>) -> Result<u32> {
        let idx = match self.lookup(name).await? {
            Some((i, true)) => i,
            Some((_, false)) => return Err(NetError::Invalid(format!("existing interface {name} is not a bridge"))),
            None => {
                let mut b = LinkBridge::new(name);
                if let Some(m) = mtu {
                    b = b.mtu(m);
                }
                match self.handle.link().add(b.build()).execute().await {
                    Ok(()) => {}
                    // Made meanwhile by another container's start.
                    Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EEXIST => {}
                    Err(e) => return Err(err(&format!("creating bridge {name}"), e)),
                }
                self.require(name).await?
            }
        };
        if let Some(a) = addr {
            self.ensure_addr(idx, a, &format!("bridge {name}")).await?;
        }
        self.up(idx).await?;
        Ok(idx)
    }

    /// Gives the interface `idx` the address `ip/prefix` unless it has it already.
    pub async fn ensure_addr(&self, idx: u32, (ip, prefix): (Ipv4Addr, u8), what: &str) -> Result<()> {
        match self.handle.address().add(idx, ip.into(), prefix).execute().await {
            Ok(()) => Ok(()),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EEXIST => Ok(()),
            Err(e) => Err(err(&format!("addressing {what}"), e)),
        }
    }

    /// Adds an IPv6 address without duplicate address detection: berth's IPAM already makes
    /// it unique, and a tentative address would not be usable for a second or more.
    pub async fn add_addr6(&self, idx: u32, (ip, prefix): (Ipv6Addr, u8)) -> Result<()> {
        use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags};
        let mut req = self.handle.address().add(idx, ip.into(), prefix);
        req.message_mut().attributes.push(AddressAttribute::Flags(AddressFlags::Nodad));
        match req.execute().await {
            Ok(()) => Ok(()),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EEXIST => Ok(()),
            Err(rtnetlink::Error::NetlinkError(e))
                if e.raw_code() == -libc::EACCES || e.raw_code() == -libc::EAFNOSUPPORT =>
            {
                Err(NetError::Invalid(format!(
                    "adding the IPv6 address {ip}/{prefix}: IPv6 is disabled on this host or interface"
                )))
            }
            Err(e) => Err(err(&format!("adding the IPv6 address {ip}/{prefix}"), e)),
        }
    }

    /// Inside a container: the IPv6 address of `ifname` and, if given, the IPv6 default route.
    pub async fn configure6(&self, ifname: &str, addr: (Ipv6Addr, u8), gateway: Option<Ipv6Addr>) -> Result<()> {
        let idx = self.require(ifname).await?;
        self.add_addr6(idx, addr).await?;
        match gateway {
            Some(gw) => {
                self.add_route(
                    RouteMessageBuilder::<Ipv6Addr>::new().gateway(gw).output_interface(idx).build(),
                    "the IPv6 default route",
                )
                .await
            }
            None => Ok(()),
        }
    }

    /// Adds a route; one already there is not an error.
    async fn add_route(&self, route: rtnetlink::packet_route::route::RouteMessage, what: &str) -> Result<()> {
        match self.handle.route().add(route).execute().await {
            Ok(()) => Ok(()),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EEXIST => Ok(()),
            Err(e) => Err(err(&format!("adding {what}"), e)),
        }
    }

    pub async fn up(&self, idx: u32) -> Result<()> {
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(idx).up().build())
            .execute()
            .await
            .map_err(|e| err("bringing a link up", e))
    }

    /// Deletes the interface with index `idx`; one that is already gone is not an error.
    pub async fn delete_index(&self, idx: u32) -> Result<()> {
        match self.handle.link().del(idx).execute().await {
            Ok(()) => Ok(()),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(()),
            Err(e) => Err(err(&format!("deleting interface {idx}"), e)),
        }
    }

    pub async fn delete(&self, name: &str) -> Result<()> {
        if let Some(idx) = self.index(name).await? {
            match self.handle.link().del(idx).execute().await {
                Ok(()) => {}
                Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => {}
                Err(e) => return Err(err(&format!("deleting {name}"), e)),
            }
        }
        Ok(())
    }

    /// Creates a veth pair whose `peer` end is made directly inside the namespace (moving an
    /// interface between namespaces waits for an RCU grace period, tens of milliseconds here),
    /// and attaches `host` to `bridge`.
    pub async fn veth_into(&self, host: &str, peer: &str, bridge: u32, ns: &Path, mtu: Option<u32>) -> Result<()> {
        use rtnetlink::packet_route::link::{InfoData, InfoVeth, LinkAttribute, LinkInfo};
        let nsf = std::fs::File::open(ns).map_err(|e| NetError::System(format!("opening {}: {e}", ns.display())))?;
        let mut v = LinkVeth::new(host, peer);
        if let Some(m) = mtu {
            v = v.mtu(m);
        }
        let mut msg = v.build();
        for a in msg.attributes.iter_mut() {
            if let LinkAttribute::LinkInfo(infos) = a {
                for i in infos.iter_mut() {
                    if let LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))) = i {
                        p.attributes.push(LinkAttribute::NetNsFd(nsf.as_raw_fd()));
                        if let Some(m) = mtu {
                            // The container's end needs the MTU as much as the host's.
                            p.attributes.push(LinkAttribute::Mtu(m));
                        }
                    }
                }
            }
        }
        self.handle.link().add(msg).execute().await.map_err(|e| err(&format!("creating veth {host}"), e))?;
        let h = self.require(host).await?;
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(h).controller(bridge).up().build())
            .execute()
            .await
            .map_err(|e| err("attaching veth to the bridge", e))?;
        Ok(())
    }

    /// Creates a macvlan or ipvlan child of `parent` named `name` inside the namespace.
    pub async fn child_into(&self, kind: &str, mode: &str, name: &str, parent: u32, ns: &Path) -> Result<()> {
        let msg = match kind {
            "macvlan" => {
                let m = match mode {
                    "private" => rtnetlink::packet_route::link::MacVlanMode::Private,
                    "vepa" => rtnetlink::packet_route::link::MacVlanMode::Vepa,
                    "passthru" => rtnetlink::packet_route::link::MacVlanMode::Passthrough,
                    _ => rtnetlink::packet_route::link::MacVlanMode::Bridge,
                };
                LinkMacVlan::new(name, parent, m).build()
            }
            _ => {
                let m = match mode {
                    "l3" => rtnetlink::packet_route::link::IpVlanMode::L3,
                    "l3s" => rtnetlink::packet_route::link::IpVlanMode::L3S,
                    _ => rtnetlink::packet_route::link::IpVlanMode::L2,
                };
                LinkIpVlan::new(name, parent, m).build()
            }
        };
        self.handle.link().add(msg).execute().await.map_err(|e| err(&format!("creating {kind} {name}"), e))?;
        let idx = self.require(name).await?;
        let nsf = std::fs::File::open(ns).map_err(|e| NetError::System(format!("opening {}: {e}", ns.display())))?;
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(idx).setns_by_fd(nsf.as_raw_fd()).build())
            .execute()
            .await
            .map_err(|e| err("moving the interface into the container", e))?;
        Ok(())
    }

    /// Checks that the kernel can make `kind` (macvlan, ipvlan) children of `parent` by making
    /// one and deleting it, so that a kernel built without the driver fails `network create`
    /// with a reason rather than the first container's start.
    pub async fn probe_child(&self, kind: &str, parent: u32) -> Result<()> {
        use rtnetlink::packet_route::link::{IpVlanMode, MacVlanMode};
        let name = format!("bp{}", &berth_api::ids::random_id()[..10]);
        let msg = match kind {
            "macvlan" => LinkMacVlan::new(&name, parent, MacVlanMode::Bridge).build(),
            _ => LinkIpVlan::new(&name, parent, IpVlanMode::L2).build(),
        };
        match self.handle.link().add(msg).execute().await {
            Ok(()) => self.delete(&name).await,
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EOPNOTSUPP => {
                Err(NetError::Invalid(format!(
                    "{kind} networks are not available on this host: its kernel was built without {kind} support (CONFIG_{})",
                    kind.to_ascii_uppercase()
                )))
            }
            Err(e) => Err(err(&format!("checking that {kind} interfaces can be made"), e)),
        }
    }

    /// Creates the 802.1q interface `name` (`eth0.50`) on `parent` if missing.
    pub async fn ensure_vlan(&self, name: &str, parent: u32, id: u16) -> Result<u32> {
        if let Some(i) = self.index(name).await? {
            return Ok(i);
        }
        match self.handle.link().add(LinkVlan::new(name, parent, id).build()).execute().await {
            Ok(()) => {}
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EOPNOTSUPP => {
                return Err(NetError::Invalid(format!(
                    "cannot make the VLAN interface {name}: this host's kernel was built without 802.1q support (CONFIG_VLAN_8021Q)"
                )));
            }
            Err(e) => return Err(err(&format!("creating {name}"), e)),
        }
        let i = self.require(name).await?;
        self.up(i).await?;
        Ok(i)
    }

    /// Inside a container: renames `tmp` to `ifname`, sets its MAC and address, brings it and
    /// loopback up, and (if given) adds the default route.
    pub async fn configure(
        &self,
        tmp: &str,
        ifname: &str,
        mac: Option<[u8; 6]>,
        addr: (Ipv4Addr, u8),
        gateway: Option<Ipv4Addr>,
    ) -> Result<()> {
        let idx = self.require(tmp).await?;
        let mut set = LinkUnspec::new_with_index(idx).name(ifname.to_string());
        if let Some(m) = mac {
            set = set.address(m.to_vec());
        }
        self.handle.link().set(set.build()).execute().await.map_err(|e| match (&e, mac) {
            // macvlan (and overlay) interfaces on one parent must differ in MAC.
            (rtnetlink::Error::NetlinkError(m), Some(mac)) if m.raw_code() == -libc::EADDRINUSE => NetError::Conflict(
                format!("MAC address {} is already in use on this network", crate::ipam::mac_string(&mac)),
            ),
            _ => err("naming the container's interface", e),
        })?;
        self.handle
            .address()
            .add(idx, addr.0.into(), addr.1)
            .execute()
            .await
            .map_err(|e| err("addressing the container's interface", e))?;
        self.up(idx).await?;
        if let Some(lo) = self.index("lo").await? {
            self.up(lo).await?;
        }
        match gateway {
            Some(gw) => {
                self.add_route(
                    RouteMessageBuilder::<Ipv4Addr>::new().gateway(gw).output_interface(idx).build(),
                    "the default route",
                )
                .await
            }
            None => Ok(()),
        }
    }

    /// The address message of `ip`, which names the interface that carries it (inside a
    /// container's namespace).
    async fn find_addr(&self, ip: Ipv4Addr) -> Result<Option<rtnetlink::packet_route::address::AddressMessage>> {
        use rtnetlink::packet_route::address::AddressAttribute;
        let mut addrs = self.handle.address().get().execute();
        while let Some(a) = addrs.try_next().await.map_err(|e| err("listing addresses", e))? {
            if a.attributes
                .iter()
                .any(|at| matches!(at, AddressAttribute::Address(std::net::IpAddr::V4(x)) if *x == ip))
            {
                return Ok(Some(a));
            }
        }
        Ok(None)
    }

    /// Inside a container's namespace that may outlive the container (another container
    /// shares it, or the kernel has not torn it down yet): takes `ip` off the interface that
    /// carries it and, with `new_mac`, gives that interface a random MAC, so the address (and
    /// MAC), free again, can be used by the container's next start or another container at
    /// once. Cheaper than deleting the interface, which waits for an RCU grace period.
    pub async fn release_addr(&self, ip: Ipv4Addr, new_mac: bool) -> Result<()> {
        let Some(a) = self.find_addr(ip).await? else { return Ok(()) };
        let idx = a.header.index;
        self.handle.address().del(a).execute().await.map_err(|e| err(&format!("removing {ip}"), e))?;
        if !new_mac {
            return Ok(());
        }
        use std::hash::BuildHasher;
        let r = std::collections::hash_map::RandomState::new().hash_one(ip).to_le_bytes();
        let mac = [(r[0] & 0xfe) | 0x02, r[1], r[2], r[3], r[4], r[5]]; // unicast, locally administered
        let set = LinkUnspec::new_with_index(idx).address(mac.to_vec()).build();
        self.handle.link().set(set).execute().await.map_err(|e| err("changing a released interface's MAC", e))
    }

    /// Whether any interface of this namespace has `ip`.
    pub async fn has_addr(&self, ip: Ipv4Addr) -> Result<bool> {
        Ok(self.find_addr(ip).await?.is_some())
    }

    /// Deletes the interface that carries `ip` (inside a container's namespace).
    pub async fn delete_by_addr(&self, ip: Ipv4Addr) -> Result<()> {
        if let Some(a) = self.find_addr(ip).await? {
            let _ = self.handle.link().del(a.header.index).execute().await;
        }
        Ok(())
    }

    pub async fn loopback_up(&self) -> Result<()> {
        if let Some(lo) = self.index("lo").await? {
            self.up(lo).await?;
        }
        Ok(())
    }
}
