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
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, CacheInfo};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkExtentMask, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteMetric, RouteNextHop, RouteNextHopFlags,
    RouteVia,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use rtnetlink::{LinkMessageBuilder, LinkUnspec, LinkVeth};
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
    pub(crate) fn not_found(&self) -> bool {
        matches!(self.errno, libc::ENODEV | libc::ENOENT | libc::ESRCH | libc::EADDRNOTAVAIL)
    }
}

pub(crate) type NlResult<T> = std::result::Result<T, NlError>;

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
    /// The permanent hardware address (IFLA_PERM_ADDRESS), which a MAC change does not alter; None when the
    /// device has none (veth, most virtual devices).
    pub perm_mac: Option<String>,
    /// IFLA_INFO_KIND: "veth", "bridge", "macvlan", ...; None for a physical NIC.
    pub kind: Option<String>,
    /// IFLA_MASTER: the bridge, bond, team or VRF this link is a port of.
    pub master: Option<u32>,
    /// IFLA_LINK: the device this one sits on (VLAN, macvlan, ipvlan) or its veth peer; `link_netnsid` is set
    /// when that device is in another namespace.
    pub lower: Option<u32>,
    pub link_netnsid: Option<i32>,
}

/// A link's device configuration as the kernel reports it in a link message (IFLA_AF_SPEC): AF_INET's
/// IFLA_INET_CONF, whose element i is `IPV4_DEVCONF_*` number i + 1 (include/uapi/linux/ip.h), and AF_INET6's
/// IFLA_INET6_CONF, whose element i is `DEVCONF_*` number i (ipv6.h); as many elements as the running kernel
/// sends, which may be more than this release knows. A family without configuration on the link (no IPv6 on a
/// device with an MTU below 1280) is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DevConf {
    pub ipv4: Vec<i32>,
    pub ipv6: Vec<i32>,
}

/// The attributes in `buf` as (type without the nested/byte-order flags, value).
fn attributes(mut buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if buf.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([buf[0], buf[1]]) as usize;
        let kind = u16::from_ne_bytes([buf[2], buf[3]]) & 0x3fff;
        if len < 4 || len > buf.len() {
            return None;
        }
        let value = &buf[4..len];
        buf = &buf[((len + 3) & !3).min(buf.len())..];
        Some((kind, value))
    })
}

impl DevConf {
    const IFLA_AF_SPEC: u16 = 26;
    const IFLA_INET_CONF: u16 = 1;
    const IFLA_INET6_CONF: u16 = 2;

    /// Read from a whole RTM_NEWLINK message (netlink header, ifinfomsg, attributes).
    pub(crate) fn of_link_message(msg: &[u8]) -> DevConf {
        let mut conf = DevConf::default();
        let Some(attrs) = msg.get(16 + 16..) else { return conf };
        let ints = |v: &[u8]| v.chunks_exact(4).map(|c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]])).collect();
        for (_, spec) in attributes(attrs).filter(|(k, _)| *k == Self::IFLA_AF_SPEC) {
            for (family, inner) in attributes(spec) {
                for (k, v) in attributes(inner) {
                    match (family as i32, k) {
                        (libc::AF_INET, Self::IFLA_INET_CONF) => conf.ipv4 = ints(v),
                        (libc::AF_INET6, Self::IFLA_INET6_CONF) => conf.ipv6 = ints(v),
                        _ => {}
                    }
                }
            }
        }
        conf
    }
}

/// A route through a link, as saved before the link moves and re-added when it returns. The fields after
/// `table` were added later: records written before them load with their defaults.
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
    /// RTA_VIA: a next hop of the other family (RFC 5549, `via inet6 fe80::2` on an IPv4 route).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<IpAddr>,
    /// The route's next-hop flags that a user sets: `onlink` (RTNH_F_ONLINK), `pervasive`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub flags: u32,
    #[serde(default, skip_serializing_if = "is_zero_u8")]
    pub tos: u8,
    /// RTA_METRICS: `mtu`, `advmss`, `window`, `initcwnd`, ... as (RTAX_* number, value).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<(u16, u32)>,
    /// RTAX_CC_ALGO, the one metric that is a string (`congctl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub congctl: Option<String>,
    /// RTA_PREF of an IPv6 route (0 medium, 1 high, 3 low).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preference: Option<u8>,
    /// The next hops of a multipath route (then `gateway` and `via` are None), each naming its NIC.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nexthops: Vec<NextHop>,
    /// The source prefix of an IPv6 source-specific route (`from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<IpNet>,
}

/// One next hop of a multipath route. The device is named, as NICs are restored under their recorded names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NextHop {
    pub dev: String,
    pub gateway: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<IpAddr>,
    /// rtnh_hops: the weight minus one.
    pub hops: u8,
    pub flags: u8,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

fn is_zero_u8(v: &u8) -> bool {
    *v == 0
}

/// An address of a link with everything `ip addr add` can set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    pub local: IpAddr,
    pub prefix_len: u8,
    /// The peer of a point-to-point address (`peer 192.168.11.2/32`): IFA_ADDRESS when it differs from IFA_LOCAL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broadcast: Option<Ipv4Addr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// IFA_F_* flags a user sets (nodad, noprefixroute, mngtmpaddr, home, autojoin, optimistic).
    pub flags: u32,
    pub scope: u8,
    /// IFA_RT_PRIORITY: the metric of the prefix route (`ip addr add ... metric N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<u32>,
    /// For an address with finite lifetimes: CLOCK_BOOTTIME seconds at which it stops being valid and
    /// preferred. None for a permanent address. (Records are dropped after a reboot, so boot time is enough.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetimes: Option<Lifetimes>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lifetimes {
    pub valid_until: u64,
    pub preferred_until: u64,
}

/// IFA_F_* flags that `ip addr add` sets and that are restored as they were; the others (secondary,
/// tentative, deprecated, permanent, dadfailed, temporary) are the kernel's own bookkeeping.
pub(crate) const USER_ADDRESS_FLAGS: u32 = 0x02 | 0x04 | 0x10 | 0x100 | 0x200 | 0x400;
const IFA_F_NODAD: u32 = 0x02;
const INFINITY_LIFE_TIME: u32 = u32::MAX;

impl Address {
    pub fn net(&self) -> Option<IpNet> {
        IpNet::new(self.local, self.prefix_len).ok()
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.peer {
            Some(p) => write!(f, "{} peer {p}/{}", self.local, self.prefix_len),
            None => write!(f, "{}/{}", self.local, self.prefix_len),
        }
    }
}

/// A permanent neighbour entry (`ip neigh add ... nud permanent`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Neighbour {
    pub destination: IpAddr,
    pub lladdr: Option<String>,
    /// NTF_* flags, of which `router` (NTF_ROUTER) is the one a user sets.
    pub flags: u8,
}

/// The RTAX_* metrics carried as numbers, and RTAX_CC_ALGO.
fn metric_of(m: &RouteMetric) -> Option<(u16, u32)> {
    Some(match m {
        RouteMetric::Lock(v) => (1, *v),
        RouteMetric::Mtu(v) => (2, *v),
        RouteMetric::Window(v) => (3, *v),
        RouteMetric::Rtt(v) => (4, *v),
        RouteMetric::RttVar(v) => (5, *v),
        RouteMetric::SsThresh(v) => (6, *v),
        RouteMetric::Cwnd(v) => (7, *v),
        RouteMetric::Advmss(v) => (8, *v),
        RouteMetric::Reordering(v) => (9, *v),
        RouteMetric::Hoplimit(v) => (10, *v),
        RouteMetric::InitCwnd(v) => (11, *v),
        RouteMetric::Features(v) => (12, *v),
        RouteMetric::RtoMin(v) => (13, *v),
        RouteMetric::InitRwnd(v) => (14, *v),
        RouteMetric::QuickAck(v) => (15, *v),
        RouteMetric::FastopenNoCookie(v) => (17, *v),
        _ => return None,
    })
}

fn metric_to(kind: u16, v: u32) -> Option<RouteMetric> {
    Some(match kind {
        1 => RouteMetric::Lock(v),
        2 => RouteMetric::Mtu(v),
        3 => RouteMetric::Window(v),
        4 => RouteMetric::Rtt(v),
        5 => RouteMetric::RttVar(v),
        6 => RouteMetric::SsThresh(v),
        7 => RouteMetric::Cwnd(v),
        8 => RouteMetric::Advmss(v),
        9 => RouteMetric::Reordering(v),
        10 => RouteMetric::Hoplimit(v),
        11 => RouteMetric::InitCwnd(v),
        12 => RouteMetric::Features(v),
        13 => RouteMetric::RtoMin(v),
        14 => RouteMetric::InitRwnd(v),
        15 => RouteMetric::QuickAck(v),
        17 => RouteMetric::FastopenNoCookie(v),
        _ => return None,
    })
}

fn via_of(v: &RouteVia) -> Option<IpAddr> {
    match v {
        RouteVia::Inet(a) => Some(IpAddr::V4(*a)),
        RouteVia::Inet6(a) => Some(IpAddr::V6(*a)),
        _ => None,
    }
}

fn via_to(ip: IpAddr) -> RouteVia {
    match ip {
        IpAddr::V4(a) => RouteVia::Inet(a),
        IpAddr::V6(a) => RouteVia::Inet6(a),
    }
}

/// A link request that asks the kernel to leave out the counters (IFLA_STATS*, IPv6 and ICMPv6 statistics),
/// which nothing here reads: less for the kernel to gather and for us to parse. Device configuration stays.
fn without_stats(mut msg: LinkMessage) -> LinkMessage {
    msg.attributes.push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
    msg
}

pub(crate) fn parse_mac(mac: &str) -> Option<Vec<u8>> {
    let bytes: Vec<u8> =
        mac.split(':').map(|b| u8::from_str_radix(b, 16)).collect::<std::result::Result<_, _>>().ok()?;
    (!bytes.is_empty()).then_some(bytes)
}

pub(crate) fn format_mac(bytes: &[u8]) -> String {
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
        Ok(Netlink { socket, place: place.to_string(), seq: 0, buf: Vec::with_capacity(64 * 1024) })
    }

    pub(crate) fn as_raw_fd(&self) -> RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.socket)
    }

    /// Send one request and collect the answers until the ack, the end of a dump, or an error.
    fn request(&mut self, msg: RouteNetlinkMessage, flags: u16, what: &str) -> NlResult<Vec<RouteNetlinkMessage>> {
        let mut answers = Vec::new();
        self.exchange(msg, flags, what, &mut |m, _| answers.push(m))?;
        Ok(answers)
    }

    /// Send one request and hand each answer to `each`, parsed and as the kernel's bytes (the whole netlink
    /// message), until the ack, the end of a dump, or an error.
    fn exchange(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        what: &str,
        each: &mut dyn FnMut(RouteNetlinkMessage, &[u8]),
    ) -> NlResult<()> {
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
        loop {
            // Received into the buffer's spare capacity: never zeroed, so only the pages the kernel writes are
            // touched.
            self.buf.clear();
            let n = loop {
                match self.socket.recv(&mut self.buf, 0) {
                    Ok(_) => break self.buf.len(),
                    Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                    Err(e) => return Err(fail(e.raw_os_error().unwrap_or(libc::EIO))),
                }
            };
            let mut offset = 0;
            while offset < n {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[offset..n])
                    .map_err(|_| fail(libc::EBADMSG))?;
                let len = msg.header.length as usize;
                if len == 0 || offset + len > n {
                    return Err(fail(libc::EBADMSG));
                }
                let raw = &self.buf[offset..offset + len];
                offset += (len + 3) & !3;
                if msg.header.sequence_number != self.seq {
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(()),
                            Some(code) => Err(fail(-code.get())),
                        }
                    }
                    NetlinkPayload::Done(_) => return Ok(()),
                    NetlinkPayload::InnerMessage(m) => {
                        each(m, raw);
                        if !dump && flags & NLM_F_ACK == 0 {
                            return Ok(());
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
            perm_mac: None,
            kind: None,
            master: None,
            lower: None,
            link_netnsid: None,
        };
        for attr in msg.attributes {
            match attr {
                LinkAttribute::IfName(n) => link.name = n,
                LinkAttribute::Address(a) => link.mac = format_mac(&a),
                LinkAttribute::PermAddress(a) => link.perm_mac = Some(format_mac(&a)),
                LinkAttribute::Mtu(m) => link.mtu = m,
                LinkAttribute::IfAlias(a) => link.alias = Some(a),
                LinkAttribute::Group(g) => link.group = g,
                LinkAttribute::Controller(m) if m != 0 => link.master = Some(m),
                LinkAttribute::Link(l) if l != 0 => link.lower = Some(l),
                LinkAttribute::LinkNetNsId(n) => link.link_netnsid = Some(n),
                LinkAttribute::LinkInfo(infos) => {
                    for i in infos {
                        if let LinkInfo::Kind(k) = i {
                            link.kind = Some(k.to_string());
                        }
                    }
                }
                _ => {}
            }
        }
        link
    }

    /// Every link of the namespace.
    pub fn links(&mut self) -> NlResult<Vec<Link>> {
        Ok(self.links_with_conf()?.into_iter().map(|(l, _)| l).collect())
    }

    /// Every link of the namespace with its device configuration (IFLA_AF_SPEC), from the same dump.
    pub(crate) fn links_with_conf(&mut self) -> NlResult<Vec<(Link, DevConf)>> {
        let mut out = Vec::new();
        let msg = RouteNetlinkMessage::GetLink(without_stats(LinkMessage::default()));
        self.exchange(msg, NLM_F_REQUEST | NLM_F_DUMP, "listing links", &mut |m, raw| {
            if let RouteNetlinkMessage::NewLink(l) = m {
                out.push((Self::link_of(l), DevConf::of_link_message(raw)));
            }
        })?;
        Ok(out)
    }

    /// The device configuration of link `index`, or None when there is no such link.
    pub(crate) fn link_conf(&mut self, index: u32) -> NlResult<Option<DevConf>> {
        let mut out = None;
        let msg = RouteNetlinkMessage::GetLink(without_stats(LinkUnspec::new_with_index(index).build()));
        match self.exchange(msg, NLM_F_REQUEST, &format!("looking up link {index}"), &mut |m, raw| {
            if let RouteNetlinkMessage::NewLink(_) = m {
                out = Some(DevConf::of_link_message(raw));
            }
        }) {
            Ok(()) => Ok(out),
            Err(e) if e.not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The link with ifindex `index`, or None when there is none.
    pub(crate) fn link_by_index(&mut self, index: u32) -> NlResult<Option<Link>> {
        self.one_link(LinkUnspec::new_with_index(index).build(), &format!("looking up link {index}"))
    }

    /// The link called `name`, or None when there is none.
    pub(crate) fn link_by_name(&mut self, name: &str) -> NlResult<Option<Link>> {
        self.one_link(LinkUnspec::new_with_name(name).build(), &format!("looking up link {name}"))
    }

    /// The one link `msg` (an index or a name) asks for, or None when there is no such link.
    fn one_link(&mut self, msg: LinkMessage, what: &str) -> NlResult<Option<Link>> {
        match self.request(RouteNetlinkMessage::GetLink(without_stats(msg)), NLM_F_REQUEST, what) {
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
    pub(crate) fn create_veth(
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

    pub(crate) fn set_up(&mut self, index: u32, up: bool) -> NlResult<()> {
        let b = LinkUnspec::new_with_index(index);
        let msg = if up { b.up() } else { b.down() }.build();
        self.set_link(msg, &format!("setting link {index} {}", if up { "up" } else { "down" }))
    }

    /// Bring a link up and give it an alias, in one request.
    pub(crate) fn set_up_with_alias(&mut self, index: u32, alias: &str) -> NlResult<()> {
        let msg = LinkUnspec::new_with_index(index).up().alias(alias.to_string()).build();
        self.set_link(msg, &format!("setting link {index} up"))
    }

    pub(crate) fn set_mtu(&mut self, index: u32, mtu: u32) -> NlResult<()> {
        self.set_link(
            LinkUnspec::new_with_index(index).mtu(mtu).build(),
            &format!("setting the MTU of link {index} to {mtu}"),
        )
    }

    pub(crate) fn set_name(&mut self, index: u32, name: &str) -> NlResult<()> {
        self.set_link(
            LinkUnspec::new_with_index(index).name(name.to_string()).build(),
            &format!("renaming link {index} to {name}"),
        )
    }

    pub(crate) fn set_mac(&mut self, index: u32, mac: &str) -> NlResult<()> {
        let bytes = parse_mac(mac).ok_or_else(|| NlError { errno: libc::EINVAL, what: format!("bad MAC {mac:?}") })?;
        self.set_link(
            LinkUnspec::new_with_index(index).address(bytes).build(),
            &format!("setting the MAC of link {index} to {mac}"),
        )
    }

    /// Move a link into the namespace open at `ns_fd`. The kernel drops its addresses and routes.
    pub(crate) fn move_to_netns(&mut self, index: u32, ns_fd: RawFd, what: &str) -> NlResult<()> {
        self.set_link(LinkUnspec::new_with_index(index).setns_by_fd(ns_fd).build(), what)
    }

    /// Move a link into the namespace open at `ns_fd` under the name `name`, in one request (the kernel renames
    /// it as it moves; EEXIST when the name is taken there).
    pub(crate) fn move_to_netns_as(&mut self, index: u32, ns_fd: RawFd, name: &str, what: &str) -> NlResult<()> {
        self.set_link(LinkUnspec::new_with_index(index).setns_by_fd(ns_fd).name(name.to_string()).build(), what)
    }

    pub(crate) fn delete_link(&mut self, index: u32, what: &str) -> NlResult<()> {
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

    /// Every address of link `index` a user made, with peer, label, flags and lifetimes (`now` is CLOCK_BOOTTIME
    /// seconds, to turn the remaining lifetimes into deadlines). Left out, as the kernel makes them itself:
    /// IPv6 link-local addresses, addresses of kernel origin (IFA_PROTO loopback, router advertisement,
    /// link-local) and IPv6 temporary (privacy) addresses.
    pub(crate) fn address_details(&mut self, index: u32, now: u64) -> NlResult<Vec<Address>> {
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
            let mut label = None;
            let mut broadcast = None;
            let mut flags = u32::from(a.header.flags.bits());
            let mut cache = None;
            let mut metric = None;
            let mut proto = 0u8;
            for attr in &a.attributes {
                match attr {
                    AddressAttribute::Local(ip) => local = Some(*ip),
                    AddressAttribute::Address(ip) => address = Some(*ip),
                    AddressAttribute::Label(l) => label = Some(l.clone()),
                    AddressAttribute::Broadcast(b) => broadcast = Some(*b),
                    AddressAttribute::Flags(f) => flags = f.bits(),
                    AddressAttribute::CacheInfo(c) => cache = Some(*c),
                    AddressAttribute::RoutePriority(p) => metric = Some(*p),
                    AddressAttribute::Protocol(p) => proto = (*p).into(),
                    _ => {}
                }
            }
            let Some(ip) = local.or(address) else {
                continue;
            };
            let v6 = ip.is_ipv6();
            if let IpAddr::V6(v6) = ip {
                if v6.segments()[0] & 0xffc0 == 0xfe80 {
                    continue;
                }
            }
            // IFAPROT_KERNEL_LO, _RA, _LL; IFA_F_TEMPORARY (the IPv6 meaning of 0x01).
            if matches!(proto, 1..=3) || (v6 && flags & 0x01 != 0) {
                continue;
            }
            let peer = match (local, address) {
                (Some(l), Some(p)) if l != p => Some(p),
                _ => None,
            };
            // IPv4 addresses always carry a label (the device's name by default); it is restored as it was, after
            // the device got its recorded name back.
            let label = label.filter(|_| !v6);
            let lifetimes = cache.filter(|c| c.ifa_valid != INFINITY_LIFE_TIME).map(|c| Lifetimes {
                valid_until: now + u64::from(c.ifa_valid),
                preferred_until: now + u64::from(c.ifa_preferred.min(c.ifa_valid)),
            });
            out.push(Address {
                local: ip,
                prefix_len: a.header.prefix_len,
                peer,
                broadcast,
                label,
                flags: flags & USER_ADDRESS_FLAGS,
                scope: a.header.scope.into(),
                metric,
                lifetimes,
            });
        }
        Ok(out)
    }

    /// Add `net` to link `index`. IPv6 addresses skip duplicate address detection, so they are usable at once.
    pub(crate) fn add_address(&mut self, index: u32, net: IpNet) -> NlResult<()> {
        let a = Address {
            local: net.addr(),
            prefix_len: net.prefix_len(),
            peer: None,
            broadcast: None,
            label: None,
            flags: 0,
            scope: 0,
            metric: None,
            lifetimes: None,
        };
        self.add_address_as(index, &a, 0, net.addr().is_ipv6())
    }

    /// Add `a` to link `index` as recorded: peer, broadcast, label, flags, scope, prefix-route metric, and what
    /// is left of its lifetimes at `now` (CLOCK_BOOTTIME seconds; the caller skips an expired one). `nodad`
    /// adds IFA_F_NODAD to the recorded flags.
    pub(crate) fn add_address_as(&mut self, index: u32, a: &Address, now: u64, nodad: bool) -> NlResult<()> {
        self.put_address(index, a, now, nodad, NLM_F_CREATE | NLM_F_EXCL)
    }

    /// Send an existing address again with its lifetimes (NLM_F_REPLACE). For an IPv6 address with finite
    /// lifetimes added while its link was down, this makes the kernel add the prefix route it skipped.
    pub(crate) fn refresh_address(&mut self, index: u32, a: &Address, now: u64) -> NlResult<()> {
        self.put_address(index, a, now, false, netlink_packet_core::NLM_F_REPLACE)
    }

    fn put_address(&mut self, index: u32, a: &Address, now: u64, nodad: bool, mode: u16) -> NlResult<()> {
        let mut msg = AddressMessage::default();
        msg.header.family = if a.local.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
        msg.header.prefix_len = a.prefix_len;
        msg.header.index = index;
        msg.header.scope = a.scope.into();
        let flags = a.flags | if nodad { IFA_F_NODAD } else { 0 };
        msg.header.flags = AddressHeaderFlags::from_bits_retain((flags & 0xff) as u8);
        msg.attributes.push(AddressAttribute::Local(a.local));
        msg.attributes.push(AddressAttribute::Address(a.peer.unwrap_or(a.local)));
        if let Some(b) = a.broadcast {
            msg.attributes.push(AddressAttribute::Broadcast(b));
        }
        if let Some(l) = &a.label {
            msg.attributes.push(AddressAttribute::Label(l.clone()));
        }
        msg.attributes.push(AddressAttribute::Flags(AddressFlags::from_bits_retain(flags)));
        if let Some(m) = a.metric {
            msg.attributes.push(AddressAttribute::RoutePriority(m));
        }
        if let Some(l) = a.lifetimes {
            let mut c = CacheInfo::default();
            c.ifa_valid = u32::try_from(l.valid_until.saturating_sub(now)).unwrap_or(INFINITY_LIFE_TIME - 1);
            c.ifa_preferred = u32::try_from(l.preferred_until.saturating_sub(now)).unwrap_or(c.ifa_valid);
            msg.attributes.push(AddressAttribute::CacheInfo(c));
        }
        self.ack(RouteNetlinkMessage::NewAddress(msg), mode, &format!("adding address {a} to link {index}"))
    }

    // --- neighbours --------------------------------------------------------------------------------------------

    /// The permanent neighbour entries of link `index` (proxy entries are another table, left alone).
    pub(crate) fn permanent_neighbours(&mut self, index: u32) -> NlResult<Vec<Neighbour>> {
        // A strict dump request filters by NDA_IFINDEX; the header's ifindex must stay 0.
        let mut msg = NeighbourMessage::default();
        msg.attributes.push(NeighbourAttribute::IfIndex(index));
        let answers =
            self.request(RouteNetlinkMessage::GetNeighbour(msg), NLM_F_REQUEST | NLM_F_DUMP, "listing neighbours")?;
        let mut out = Vec::new();
        for m in answers {
            let RouteNetlinkMessage::NewNeighbour(n) = m else { continue };
            if n.header.ifindex != index || n.header.state != NeighbourState::Permanent {
                continue;
            }
            let mut dst = None;
            let mut lladdr = None;
            for attr in &n.attributes {
                match attr {
                    NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => dst = Some(IpAddr::V4(*a)),
                    NeighbourAttribute::Destination(NeighbourAddress::Inet6(a)) => dst = Some(IpAddr::V6(*a)),
                    NeighbourAttribute::LinkLayerAddress(l) => lladdr = Some(format_mac(l)),
                    _ => {}
                }
            }
            if let Some(destination) = dst {
                out.push(Neighbour { destination, lladdr, flags: (n.header.flags & NeighbourFlags::Router).bits() });
            }
        }
        Ok(out)
    }

    /// Add (or replace) a permanent neighbour entry on link `index`.
    pub(crate) fn add_neighbour(&mut self, index: u32, n: &Neighbour) -> NlResult<()> {
        let mut msg = NeighbourMessage::default();
        msg.header.family = if n.destination.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
        msg.header.ifindex = index;
        msg.header.state = NeighbourState::Permanent;
        msg.header.flags = NeighbourFlags::from_bits_retain(n.flags);
        msg.attributes.push(NeighbourAttribute::Destination(match n.destination {
            IpAddr::V4(a) => NeighbourAddress::Inet(a),
            IpAddr::V6(a) => NeighbourAddress::Inet6(a),
        }));
        if let Some(l) = n.lladdr.as_deref().and_then(parse_mac) {
            msg.attributes.push(NeighbourAttribute::LinkLayerAddress(l));
        }
        self.ack(
            RouteNetlinkMessage::NewNeighbour(msg),
            NLM_F_CREATE | netlink_packet_core::NLM_F_REPLACE,
            &format!("adding neighbour {} to link {index}", n.destination),
        )
    }

    // --- routes ------------------------------------------------------------------------------------------------

    /// The routes of every table whose output device is link `index`, in both families, except what the kernel
    /// makes by itself (proto kernel or ra; types local, broadcast, anycast, multicast). A multipath route is
    /// kept when every next hop is on a link that `names` names (the NICs that move), once: on the link of its
    /// first next hop.
    pub(crate) fn routes_via(
        &mut self,
        index: u32,
        names: &std::collections::HashMap<u32, String>,
    ) -> NlResult<Vec<Route>> {
        // One dump of both families (AF_UNSPEC) and every table, filtered by the kernel to this device.
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Unspec;
        msg.header.table = RouteHeader::RT_TABLE_UNSPEC;
        msg.attributes.push(RouteAttribute::Oif(index));
        let answers = self.request(RouteNetlinkMessage::GetRoute(msg), NLM_F_REQUEST | NLM_F_DUMP, "listing routes")?;
        Ok(answers
            .iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewRoute(r) => Self::route_of(r, index, names),
                _ => None,
            })
            .collect())
    }

    fn route_of(r: &RouteMessage, index: u32, names: &std::collections::HashMap<u32, String>) -> Option<Route> {
        let protocol: u8 = r.header.protocol.into();
        let kind: u8 = r.header.kind.into();
        // proto 2 = kernel, 9 = router advertisement; types 2..=5 = local, broadcast, anycast, multicast.
        if protocol == 2 || protocol == 9 || (2..=5).contains(&kind) {
            return None;
        }
        if r.header.flags.contains(RouteFlags::Cloned) {
            return None;
        }
        let mut oif = None;
        let mut table = r.header.table as u32;
        let mut dst = None;
        let mut gateway = None;
        let mut via = None;
        let mut metric = None;
        let mut source = None;
        let mut metrics = Vec::new();
        let mut congctl = None;
        let mut preference = None;
        let mut nexthops = Vec::new();
        let mut from = None;
        for attr in &r.attributes {
            match attr {
                // A lightweight tunnel encapsulation (MPLS, seg6, ...) is not recorded: left out whole rather
                // than restored without it (docs/restore.md).
                RouteAttribute::Encap(_) | RouteAttribute::EncapType(_) => return None,
                RouteAttribute::Source(a) => {
                    from = ip_of(a).and_then(|ip| IpNet::new(ip, r.header.source_prefix_length).ok())
                }
                RouteAttribute::Oif(i) => oif = Some(*i),
                RouteAttribute::Table(t) => table = *t,
                RouteAttribute::Destination(a) => dst = ip_of(a),
                RouteAttribute::Gateway(a) => gateway = ip_of(a),
                RouteAttribute::Via(v) => via = via_of(v),
                RouteAttribute::Priority(p) => metric = Some(*p),
                RouteAttribute::PrefSource(a) => source = ip_of(a),
                RouteAttribute::Preference(p) => preference = Some(u8::from(*p)),
                RouteAttribute::Metrics(ms) => {
                    for m in ms {
                        match m {
                            RouteMetric::CcAlgo(c) => congctl = Some(c.clone()),
                            m => metrics.extend(metric_of(m)),
                        }
                    }
                }
                RouteAttribute::MultiPath(hops) => {
                    for h in hops {
                        let dev = names.get(&h.interface_index)?.clone();
                        let mut nh = NextHop { dev, gateway: None, via: None, hops: h.hops, flags: 0 };
                        nh.flags = (h.flags & (RouteNextHopFlags::Onlink | RouteNextHopFlags::Pervasive)).bits();
                        for a in &h.attributes {
                            match a {
                                RouteAttribute::Gateway(g) => nh.gateway = ip_of(g),
                                RouteAttribute::Via(v) => nh.via = via_of(v),
                                _ => {}
                            }
                        }
                        nexthops.push(nh);
                    }
                    // Recorded once, with the NIC of its first next hop.
                    oif = hops.first().map(|h| h.interface_index);
                }
                _ => {}
            }
        }
        if oif != Some(index) {
            return None;
        }
        let dst = dst.unwrap_or(match r.header.address_family {
            AddressFamily::Inet6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        });
        let flags = (r.header.flags & (RouteFlags::Onlink | RouteFlags::Pervasive)).bits();
        Some(Route {
            destination: IpNet::new(dst, r.header.destination_prefix_length).ok()?,
            gateway,
            metric,
            source,
            scope: r.header.scope.into(),
            protocol,
            kind,
            table,
            via,
            flags,
            tos: r.header.tos,
            metrics,
            congctl,
            preference,
            nexthops,
            from,
        })
    }

    /// Add `route` through link `index`; the next hops of a multipath route find their links with `index_of`.
    pub(crate) fn add_route(
        &mut self,
        index: u32,
        route: &Route,
        index_of: &dyn Fn(&str) -> Option<u32>,
    ) -> NlResult<()> {
        let mut msg = RouteMessage::default();
        msg.header.address_family =
            if route.destination.addr().is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
        msg.header.destination_prefix_length = route.destination.prefix_len();
        msg.header.table = if route.table < 256 { route.table as u8 } else { 0 };
        msg.header.protocol = route.protocol.into();
        msg.header.scope = route.scope.into();
        msg.header.kind = route.kind.into();
        msg.header.tos = route.tos;
        msg.header.flags = RouteFlags::from_bits_retain(route.flags);
        msg.attributes.push(RouteAttribute::Table(route.table));
        if route.destination.prefix_len() > 0 {
            msg.attributes.push(RouteAttribute::Destination(route.destination.addr().into()));
        }
        if let Some(f) = route.from {
            msg.header.source_prefix_length = f.prefix_len();
            msg.attributes.push(RouteAttribute::Source(f.addr().into()));
        }
        if let Some(gw) = route.gateway {
            msg.attributes.push(RouteAttribute::Gateway(gw.into()));
        }
        if let Some(v) = route.via {
            msg.attributes.push(RouteAttribute::Via(via_to(v)));
        }
        if let Some(src) = route.source {
            msg.attributes.push(RouteAttribute::PrefSource(src.into()));
        }
        if let Some(m) = route.metric {
            msg.attributes.push(RouteAttribute::Priority(m));
        }
        if let Some(p) = route.preference {
            msg.attributes.push(RouteAttribute::Preference(p.into()));
        }
        let mut metrics: Vec<RouteMetric> = route.metrics.iter().filter_map(|(k, v)| metric_to(*k, *v)).collect();
        if let Some(c) = &route.congctl {
            metrics.push(RouteMetric::CcAlgo(c.clone()));
        }
        if !metrics.is_empty() {
            msg.attributes.push(RouteAttribute::Metrics(metrics));
        }
        if route.nexthops.is_empty() {
            msg.attributes.push(RouteAttribute::Oif(index));
        } else {
            let mut hops = Vec::new();
            for nh in &route.nexthops {
                let Some(i) = index_of(&nh.dev) else {
                    return Err(NlError {
                        errno: libc::ENODEV,
                        what: format!("next hop device {} of route {} is missing", nh.dev, route.destination),
                    });
                };
                let mut h = RouteNextHop::default();
                h.interface_index = i;
                h.hops = nh.hops;
                h.flags = RouteNextHopFlags::from_bits_retain(nh.flags);
                if let Some(g) = nh.gateway {
                    h.attributes.push(RouteAttribute::Gateway(g.into()));
                }
                if let Some(v) = nh.via {
                    h.attributes.push(RouteAttribute::Via(via_to(v)));
                }
                hops.push(h);
            }
            msg.attributes.push(RouteAttribute::MultiPath(hops));
        }
        let what = format!(
            "adding route {}{}{} table {} via link {index}",
            route.destination,
            route.gateway.or(route.via).map(|g| format!(" via {g}")).unwrap_or_default(),
            if route.nexthops.is_empty() { "" } else { " (multipath)" },
            route.table
        );
        self.ack(RouteNetlinkMessage::NewRoute(msg), NLM_F_CREATE | NLM_F_EXCL, &what)
    }
}
