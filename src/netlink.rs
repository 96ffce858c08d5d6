//! A thin typed netlink layer: one small blocking function per kernel operation.
//!
//! Messages are built with rtnetlink's typed builders (netlink-packet-route underneath) and sent over a plain
//! blocking NETLINK_ROUTE socket. The plugin is a short-lived, single-threaded process that does a dozen
//! requests: an async runtime would add start-up cost and threads, and threads make `setns` unsafe. A socket
//! keeps the namespace it was opened in, so one [`Netlink`] is opened per namespace (see `netns::Netns::netlink`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::RawFd;

use ipnet::IpNet;
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteHeader, RouteMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use rtnetlink::{AddressMessageBuilder, LinkMessageBuilder, LinkUnspec, LinkVeth};
use serde::{Deserialize, Serialize};

/// A failed netlink request: the kernel's errno, or a local failure (errno of the socket call).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NlError {
    pub errno: i32,
    pub what: String,
}

impl std::fmt::Display for NlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.what, std::io::Error::from_raw_os_error(self.errno))
    }
}

impl std::error::Error for NlError {}

impl NlError {
    pub fn is(&self, errno: i32) -> bool {
        self.errno == errno
    }
    pub fn not_found(&self) -> bool {
        matches!(self.errno, libc::ENODEV | libc::ENOENT | libc::ESRCH | libc::EADDRNOTAVAIL)
    }
}

pub type NlResult<T> = std::result::Result<T, NlError>;

/// What the plugin needs to know about a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub mac: String,
    pub mtu: u32,
    pub up: bool,
    pub alias: Option<String>,
    pub group: u32,
}

/// A route through a link, as saved before the link moves and re-added when it returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    pub destination: IpNet,
    pub gateway: Option<IpAddr>,
    pub metric: Option<u32>,
    pub source: Option<IpAddr>,
    pub scope: u8,
    pub protocol: u8,
    pub kind: u8,
    pub table: u32,
}

pub fn format_mac(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

pub struct Netlink {
    socket: Socket,
    /// The namespace the socket lives in, named in every error.
    place: String,
    seq: u32,
    buf: Vec<u8>,
}

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

impl Netlink {
    /// Open a NETLINK_ROUTE socket in the calling thread's current network namespace, which `place` names
    /// (for errors).
    pub fn open(place: &str) -> NlResult<Netlink> {
        let err = |e: std::io::Error| NlError {
            errno: e.raw_os_error().unwrap_or(libc::EIO),
            what: "opening a netlink socket".into(),
        };
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(err)?;
        socket.bind_auto().map_err(err)?;
        socket.connect(&SocketAddr::new(0, 0)).map_err(err)?;
        // Extended acks give the kernel's own message.
        let _ = socket.set_ext_ack(true);
        // Strict checking makes the kernel honour dump filters (an address dump by link, a route dump by table
        // and output device), so a host with a large routing table is not read whole.
        let _ = socket.set_netlink_get_strict_chk(true);
        Ok(Netlink { socket, place: place.to_string(), seq: 0, buf: vec![0; 64 * 1024] })
    }

    /// Send one request and collect the answers until the ack, the end of a dump, or an error.
    fn request(&mut self, msg: RouteNetlinkMessage, flags: u16, what: &str) -> NlResult<Vec<RouteNetlinkMessage>> {
        let fail = |errno: i32| NlError { errno, what: format!("{what} (in namespace {})", self.place) };
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = self.seq;
        let mut req = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        req.finalize();
        let mut out = vec![0u8; req.buffer_len()];
        req.serialize(&mut out);
        self.socket.send(&out, 0).map_err(|e| fail(e.raw_os_error().unwrap_or(libc::EIO)))?;
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut answers = Vec::new();
        loop {
            let n = loop {
                match self.socket.recv(&mut &mut self.buf[..], 0) {
                    Ok(n) => break n,
                    Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                    Err(e) => return Err(fail(e.raw_os_error().unwrap_or(libc::EIO))),
                }
            };
            let mut offset = 0;
            while offset < n {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[offset..n])
                    .map_err(|_| fail(libc::EBADMSG))?;
                let len = msg.header.length as usize;
                if len == 0 {
                    return Err(fail(libc::EBADMSG));
                }
                offset += (len + 3) & !3;
                if msg.header.sequence_number != self.seq {
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(answers),
                            Some(code) => Err(fail(-code.get())),
                        }
                    }
                    NetlinkPayload::Done(_) => return Ok(answers),
                    NetlinkPayload::InnerMessage(m) => {
                        answers.push(m);
                        if !dump && flags & NLM_F_ACK == 0 {
                            return Ok(answers);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// A request that changes something in the kernel; a fault point follows each one.
    fn ack(&mut self, msg: RouteNetlinkMessage, extra: u16, what: &str) -> NlResult<()> {
        let r = self.request(msg, NLM_F_REQUEST | NLM_F_ACK | extra, what).map(|_| ());
        crate::fault::point(what);
        r
    }

    // --- links -------------------------------------------------------------------------------------------------

    fn link_of(msg: LinkMessage) -> Link {
        let mut link = Link {
            index: msg.header.index,
            name: String::new(),
            mac: String::new(),
            mtu: 0,
            up: msg.header.flags.contains(LinkFlags::Up),
            alias: None,
            group: 0,
        };
        for attr in msg.attributes {
            match attr {
                LinkAttribute::IfName(n) => link.name = n,
                LinkAttribute::Address(a) => link.mac = format_mac(&a),
                LinkAttribute::Mtu(m) => link.mtu = m,
                LinkAttribute::IfAlias(a) => link.alias = Some(a),
                LinkAttribute::Group(g) => link.group = g,
                _ => {}
            }
        }
        link
    }

    /// The link called `name`, or None when there is none.
    pub fn link_by_name(&mut self, name: &str) -> NlResult<Option<Link>> {
        let msg = LinkUnspec::new_with_name(name).build();
        match self.request(RouteNetlinkMessage::GetLink(msg), NLM_F_REQUEST, &format!("looking up link {name}")) {
            Ok(mut msgs) => Ok(msgs.pop().and_then(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(Self::link_of(l)),
                _ => None,
            })),
            Err(e) if e.not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Create the veth `name` here with its peer `peer` made directly in the namespace `peer_ns`, both in link
    /// group `group` (the kernel applies a group at creation, so the pair is marked from its first instant), with
    /// `mtu` when given. One request: the pair never exists half-made. Both start down: this kernel refuses
    /// IFF_UP in a veth creation request (ENOTCONN) and ignores an alias there.
    pub fn create_veth(
        &mut self,
        name: &str,
        peer: &str,
        peer_ns: RawFd,
        mtu: Option<u32>,
        group: u32,
    ) -> NlResult<()> {
        let mut peer_msg =
            LinkMessageBuilder::<LinkUnspec>::new().name(peer.to_string()).link_group(group).setns_by_fd(peer_ns);
        let mut main =
            LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth).name(name.to_string()).link_group(group);
        if let Some(m) = mtu {
            peer_msg = peer_msg.mtu(m);
            main = main.mtu(m);
        }
        let msg = main.set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg.build()))).build();
        self.ack(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL, &format!("creating veth {name}/{peer}"))
    }

    fn set_link(&mut self, msg: LinkMessage, what: &str) -> NlResult<()> {
        self.ack(RouteNetlinkMessage::SetLink(msg), 0, what)
    }

    pub fn set_up(&mut self, index: u32, up: bool) -> NlResult<()> {
        let b = LinkUnspec::new_with_index(index);
        let msg = if up { b.up() } else { b.down() }.build();
        self.set_link(msg, &format!("setting link {index} {}", if up { "up" } else { "down" }))
    }

    /// Bring a link up and give it an alias, in one request.
    pub fn set_up_with_alias(&mut self, index: u32, alias: &str) -> NlResult<()> {
        let msg = LinkUnspec::new_with_index(index).up().alias(alias.to_string()).build();
        self.set_link(msg, &format!("setting link {index} up"))
    }

    pub fn set_mtu(&mut self, index: u32, mtu: u32) -> NlResult<()> {
        self.set_link(
            LinkUnspec::new_with_index(index).mtu(mtu).build(),
            &format!("setting the MTU of link {index} to {mtu}"),
        )
    }

    /// Move a link into the namespace open at `ns_fd`. The kernel drops its addresses and routes.
    pub fn move_to_netns(&mut self, index: u32, ns_fd: RawFd, what: &str) -> NlResult<()> {
        self.set_link(LinkUnspec::new_with_index(index).setns_by_fd(ns_fd).build(), what)
    }

    pub fn delete_link(&mut self, index: u32, what: &str) -> NlResult<()> {
        let msg = LinkUnspec::new_with_index(index).build();
        self.ack(RouteNetlinkMessage::DelLink(msg), 0, what)
    }

    // --- addresses ---------------------------------------------------------------------------------------------

    /// The addresses on link `index`, IPv6 link-local ones left out (the kernel makes those itself).
    pub fn addresses(&mut self, index: u32) -> NlResult<Vec<IpNet>> {
        let mut msg = AddressMessage::default();
        msg.header.index = index;
        let answers =
            self.request(RouteNetlinkMessage::GetAddress(msg), NLM_F_REQUEST | NLM_F_DUMP, "listing addresses")?;
        let mut out = Vec::new();
        for a in answers {
            let RouteNetlinkMessage::NewAddress(a) = a else {
                continue;
            };
            if a.header.index != index {
                continue;
            }
            let mut local = None;
            let mut address = None;
            for attr in &a.attributes {
                match attr {
                    AddressAttribute::Local(ip) => local = Some(*ip),
                    AddressAttribute::Address(ip) => address = Some(*ip),
                    _ => {}
                }
            }
            let Some(ip) = local.or(address) else {
                continue;
            };
            if let IpAddr::V6(v6) = ip {
                if v6.segments()[0] & 0xffc0 == 0xfe80 {
                    continue;
                }
            }
            if let Ok(net) = IpNet::new(ip, a.header.prefix_len) {
                out.push(net);
            }
        }
        Ok(out)
    }

    /// Add `net` to link `index`. IPv6 addresses skip duplicate address detection, so they are usable at once.
    pub fn add_address(&mut self, index: u32, net: IpNet) -> NlResult<()> {
        let msg = match net.addr() {
            IpAddr::V4(a) => AddressMessageBuilder::<Ipv4Addr>::new().index(index).address(a, net.prefix_len()).build(),
            IpAddr::V6(a) => {
                let mut m = AddressMessageBuilder::<Ipv6Addr>::new().index(index).address(a, net.prefix_len()).build();
                m.attributes.push(AddressAttribute::Flags(AddressFlags::Nodad));
                m
            }
        };
        self.ack(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            &format!("adding address {net} to link {index}"),
        )
    }

    // --- routes ------------------------------------------------------------------------------------------------

    /// The routes of the main table whose output device is link `index`, in both families. Kernel routes (they
    /// come back with the addresses), router-advertisement routes and multipath routes are left out.
    pub fn routes_via(&mut self, index: u32) -> NlResult<Vec<Route>> {
        // One dump of both families (AF_UNSPEC), filtered by the kernel to the main table and this device.
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Unspec;
        msg.header.table = RouteHeader::RT_TABLE_MAIN;
        msg.attributes.push(RouteAttribute::Oif(index));
        let answers = self.request(RouteNetlinkMessage::GetRoute(msg), NLM_F_REQUEST | NLM_F_DUMP, "listing routes")?;
        Ok(answers
            .iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewRoute(r) => Self::route_of(r, index),
                _ => None,
            })
            .collect())
    }

    fn route_of(r: &RouteMessage, index: u32) -> Option<Route> {
        let protocol: u8 = r.header.protocol.into();
        // 2 = kernel, 9 = router advertisement.
        if protocol == 2 || protocol == 9 {
            return None;
        }
        let mut oif = None;
        let mut table = r.header.table as u32;
        let mut dst = None;
        let mut gateway = None;
        let mut metric = None;
        let mut source = None;
        for attr in &r.attributes {
            match attr {
                RouteAttribute::Oif(i) => oif = Some(*i),
                RouteAttribute::Table(t) => table = *t,
                RouteAttribute::Destination(a) => dst = ip_of(a),
                RouteAttribute::Gateway(a) => gateway = ip_of(a),
                RouteAttribute::Priority(p) => metric = Some(*p),
                RouteAttribute::PrefSource(a) => source = ip_of(a),
                RouteAttribute::MultiPath(_) => return None,
                _ => {}
            }
        }
        if oif != Some(index) || table != RouteHeader::RT_TABLE_MAIN as u32 {
            return None;
        }
        let dst = dst.unwrap_or(match r.header.address_family {
            AddressFamily::Inet6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        });
        Some(Route {
            destination: IpNet::new(dst, r.header.destination_prefix_length).ok()?,
            gateway,
            metric,
            source,
            scope: r.header.scope.into(),
            protocol,
            kind: r.header.kind.into(),
            table,
        })
    }

    pub fn add_route(&mut self, index: u32, route: &Route) -> NlResult<()> {
        let mut msg = RouteMessage::default();
        msg.header.address_family =
            if route.destination.addr().is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
        msg.header.destination_prefix_length = route.destination.prefix_len();
        msg.header.table = if route.table < 256 { route.table as u8 } else { 0 };
        msg.header.protocol = route.protocol.into();
        msg.header.scope = route.scope.into();
        msg.header.kind = route.kind.into();
        if route.table >= 256 {
            msg.attributes.push(RouteAttribute::Table(route.table));
        }
        if route.destination.prefix_len() > 0 {
            msg.attributes.push(RouteAttribute::Destination(route.destination.addr().into()));
        }
        if let Some(gw) = route.gateway {
            msg.attributes.push(RouteAttribute::Gateway(gw.into()));
        }
        if let Some(src) = route.source {
            msg.attributes.push(RouteAttribute::PrefSource(src.into()));
        }
        if let Some(m) = route.metric {
            msg.attributes.push(RouteAttribute::Priority(m));
        }
        msg.attributes.push(RouteAttribute::Oif(index));
        let what = format!(
            "adding route {}{} via link {index}",
            route.destination,
            route.gateway.map(|g| format!(" via {g}")).unwrap_or_default()
        );
        self.ack(RouteNetlinkMessage::NewRoute(msg), NLM_F_CREATE | NLM_F_EXCL, &what)
    }
}
