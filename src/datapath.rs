//! The datapath: the veth pair, the NICs moved into the router namespace and back, forwarding. Setting up is
//! a sequence of steps that stop at the first failure; tearing down is best-effort and idempotent (a missing
//! link, address or namespace counts as done) and reports every failure together.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::config::{HOST_IFNAME, ROUTER_IFNAME};
use crate::error::{Error, Input, Result};
use crate::fault;
use crate::netlink::{Address, DevConf, Link, Netlink};
use crate::netns::Netns;
use crate::state::{NicState, Record};
use crate::{log_debug, log_info, log_warn};

/// The link group of both veth ends: it marks them as this plugin's from the instant they exist, so cleanup
/// never removes a `pt-host` or `pt-ns` that someone else made. (Upstream marks the NICs it manages 4242.)
pub(crate) const VETH_GROUP: u32 = 4243;

/// Ours: the plugin's group. The alias names the attachment, for people.
pub(crate) fn is_ours(link: &Link) -> bool {
    link.group == VETH_GROUP
}

/// A namespace opened for work: the namespace and a netlink socket inside it.
pub struct Side {
    pub ns: Netns,
    pub nl: Netlink,
}

impl Side {
    pub fn open(ns: Netns) -> Result<Side> {
        let nl = ns.netlink()?;
        Ok(Side { ns, nl })
    }

    fn path(&self) -> String {
        self.ns.id.path.display().to_string()
    }

    pub fn link(&mut self, name: &str) -> Result<Option<Link>> {
        Ok(self.nl.link_by_name(name)?)
    }
}

/// A device sysctl under `net/<family>/conf/<nic>/` as the NIC had it at ADD (records of earlier releases hold
/// only those that differed from `conf/default/`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sysctl {
    /// "ipv4" or "ipv6".
    pub family: String,
    pub key: String,
    pub value: String,
}

/// IFA_F_NOPREFIXROUTE.
const NOPREFIXROUTE: u32 = 0x200;

/// Seconds since boot, counting suspend (CLOCK_BOOTTIME): address lifetimes are recorded as deadlines on it.
fn boot_seconds() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec into the valid, exclusively borrowed `ts`.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    ts.tv_sec.max(0) as u64
}

/// Device kinds the kernel refuses to move to another namespace (NETIF_F_NETNS_LOCAL, `netns_local`).
const NETNS_LOCAL_KINDS: &[&str] = &["bridge", "bond", "team", "vrf", "openvswitch", "ppp", "lo"];

/// The devices stacked on `nic` in its namespace: links whose IFLA_LINK is the NIC, in the same namespace
/// (no link-netnsid), other than a veth peer (IFLA_LINK of a veth is its peer, not a lower device).
pub(crate) fn uppers_of<'a>(nic: &Link, links: &'a [Link]) -> Vec<&'a Link> {
    links
        .iter()
        .filter(|l| {
            l.index != nic.index
                && l.lower == Some(nic.index)
                && l.link_netnsid.is_none()
                && l.kind.as_deref() != Some("veth")
        })
        .collect()
}

/// Why the NIC cannot be moved into the router namespace and back faithfully, if it cannot: it is a port of a
/// bridge, bond, team or VRF (the master would lose it); devices are stacked on it (VLAN, macvlan, ipvlan: they
/// would keep running over a device in another namespace); or the kernel will not move it at all. A macvlan or
/// vxlan that is itself the NIC is fine.
pub(crate) fn refusal(nic: &Link, links: &[Link]) -> Option<String> {
    if let Some(kind) = nic.kind.as_deref().filter(|k| NETNS_LOCAL_KINDS.contains(k)) {
        return Some(format!("{} is a {kind}, which the kernel does not move to another namespace", nic.name));
    }
    if nic.name == "lo" {
        return Some("lo is the loopback device, which the kernel does not move".into());
    }
    if let Some(m) = nic.master {
        let master = links.iter().find(|l| l.index == m);
        let name = master.map(|l| l.name.clone()).unwrap_or_else(|| format!("ifindex {m}"));
        let kind = master.and_then(|l| l.kind.clone()).unwrap_or_else(|| "master device".into());
        return Some(format!(
            "{} is a port of the {kind} {name}; moving it would take it out of {name} (remove it from {name} first)",
            nic.name
        ));
    }
    let uppers = uppers_of(nic, links);
    if !uppers.is_empty() {
        let names: Vec<String> =
            uppers.iter().map(|l| format!("{} ({})", l.name, l.kind.as_deref().unwrap_or("device"))).collect();
        return Some(format!(
            "{} has devices stacked on it: {}; they would keep running over a NIC in another namespace (remove them first)",
            nic.name,
            names.join(", ")
        ));
    }
    None
}

/// The device sysctls a link message carries (IFLA_INET_CONF): the name under `net/ipv4/conf/<nic>/` of
/// `IPV4_DEVCONF_*` number i + 1 (include/uapi/linux/ip.h).
const IPV4_DEVCONF: [&str; 33] = [
    "forwarding",
    "mc_forwarding",
    "proxy_arp",
    "accept_redirects",
    "secure_redirects",
    "send_redirects",
    "shared_media",
    "rp_filter",
    "accept_source_route",
    "bootp_relay",
    "log_martians",
    "tag",
    "arp_filter",
    "medium_id",
    "disable_xfrm",
    "disable_policy",
    "force_igmp_version",
    "arp_announce",
    "arp_ignore",
    "promote_secondaries",
    "arp_accept",
    "arp_notify",
    "accept_local",
    "src_valid_mark",
    "proxy_arp_pvlan",
    "route_localnet",
    "igmpv2_unsolicited_report_interval",
    "igmpv3_unsolicited_report_interval",
    "ignore_routes_with_linkdown",
    "drop_unicast_in_l2_multicast",
    "drop_gratuitous_arp",
    "bc_forwarding",
    "arp_evict_nocarrier",
];

/// The same for IFLA_INET6_CONF: the name under `net/ipv6/conf/<nic>/` of `DEVCONF_*` number i
/// (include/uapi/linux/ipv6.h; `force_forwarding`, 59, is Linux 6.17's).
const IPV6_DEVCONF: [&str; 60] = [
    "forwarding",
    "hop_limit",
    "mtu",
    "accept_ra",
    "accept_redirects",
    "autoconf",
    "dad_transmits",
    "router_solicitations",
    "router_solicitation_interval",
    "router_solicitation_delay",
    "use_tempaddr",
    "temp_valid_lft",
    "temp_prefered_lft",
    "regen_max_retry",
    "max_desync_factor",
    "max_addresses",
    "force_mld_version",
    "accept_ra_defrtr",
    "accept_ra_pinfo",
    "accept_ra_rtr_pref",
    "router_probe_interval",
    "accept_ra_rt_info_max_plen",
    "proxy_ndp",
    "optimistic_dad",
    "accept_source_route",
    "mc_forwarding",
    "disable_ipv6",
    "accept_dad",
    "force_tllao",
    "ndisc_notify",
    "mldv1_unsolicited_report_interval",
    "mldv2_unsolicited_report_interval",
    "suppress_frag_ndisc",
    "accept_ra_from_local",
    "use_optimistic",
    "accept_ra_mtu",
    "stable_secret",
    "use_oif_addrs_only",
    "accept_ra_min_hop_limit",
    "ignore_routes_with_linkdown",
    "drop_unicast_in_l2_multicast",
    "drop_unsolicited_na",
    "keep_addr_on_down",
    "router_solicitation_max_interval",
    "seg6_enabled",
    "seg6_require_hmac",
    "enhanced_dad",
    "addr_gen_mode",
    "disable_policy",
    "accept_ra_rt_info_min_plen",
    "ndisc_tclass",
    "rpl_seg_enabled",
    "ra_defrtr_metric",
    "ioam6_enabled",
    "ioam6_id",
    "ioam6_id_wide",
    "ndisc_evict_nocarrier",
    "accept_untracked_na",
    "accept_ra_min_lft",
    "force_forwarding",
];

/// Device sysctls never recorded: read-only ones, and IPv6's `mtu`, which the kernel sets to the link's MTU
/// whenever the link comes up with carrier (so it follows the link MTU, which is restored).
fn not_recorded(family: &str, key: &str) -> bool {
    key == "mc_forwarding" || (family == "ipv6" && key == "mtu")
}

/// The value of the device sysctl `family`/`key` as /proc/sys shows it, from the link message's devconf; None
/// when the message does not carry it: a key this release does not know, one past what the running kernel
/// sends, or `stable_secret`, whose place the kernel leaves 0 (those are read from /proc/sys).
fn devconf_value(conf: &DevConf, family: &str, key: &str) -> Option<String> {
    let (table, values): (&[&str], _) = match family {
        "ipv4" => (&IPV4_DEVCONF, &conf.ipv4),
        "ipv6" => (&IPV6_DEVCONF, &conf.ipv6),
        _ => return None,
    };
    if key == "stable_secret" {
        return None;
    }
    let v = *values.get(table.iter().position(|k| *k == key)?)?;
    Some(match key {
        // Jiffies: netlink sends milliseconds, /proc/sys seconds (proc_dointvec_jiffies).
        "router_solicitation_interval"
        | "router_solicitation_delay"
        | "router_solicitation_max_interval"
        | "router_probe_interval" => (v / 1000).to_string(),
        // Unsigned 32-bit values (proc_douintvec).
        "ioam6_id" | "ioam6_id_wide" | "ra_defrtr_metric" => (v as u32).to_string(),
        _ => v.to_string(),
    })
}

/// A sysctl file's value, with one read (sysctl values are short); None when it cannot be read (absent, or
/// `stable_secret` while unset).
fn read_sysctl_file(path: &str) -> Option<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).ok()?;
    let mut buf = [0u8; 1024];
    let n = f.read(&mut buf).ok().filter(|n| *n < buf.len())?;
    Some(String::from_utf8_lossy(&buf[..n]).trim_end().to_string())
}

/// Device sysctls that link messages do not carry, read from their files when the NIC has them: IPv6's
/// `stable_secret` (whose place in the devconf the kernel leaves 0) and those Linux 6.8 and later added
/// without a devconf number.
const FILE_ONLY_SYSCTLS: [&str; 4] = ["stable_secret", "regen_min_advance", "ra_honor_pio_life", "ra_honor_pio_pflag"];

/// Each NIC's writable device sysctls under `net/ipv4/conf/<nic>/` and `net/ipv6/conf/<nic>/`, as they are now:
/// what the link dump carries (`conf`), named by the kernel's devconf numbers, and [`FILE_ONLY_SYSCTLS`] read
/// from their files in one visit of the namespace. Devconf entries past what this release knows (a newer
/// kernel's) cannot be named, so they are not recorded; that is logged.
fn device_sysctls(ns: &Netns, nics: &[(&str, &DevConf)]) -> Result<Vec<Vec<Sysctl>>> {
    ns.run(|| {
        nics.iter()
            .map(|(nic, conf)| {
                let mut out = Vec::new();
                for (family, table, values) in [("ipv4", &IPV4_DEVCONF[..], &conf.ipv4), ("ipv6", &IPV6_DEVCONF[..], &conf.ipv6)] {
                    if values.len() > table.len() {
                        log_debug!(
                            "{nic}: the kernel reports {} {family} device settings this release cannot name; they are not recorded",
                            values.len() - table.len()
                        );
                    }
                    for key in table.iter().take(values.len()).filter(|k| !not_recorded(family, k)) {
                        if let Some(value) = devconf_value(conf, family, key) {
                            out.push(Sysctl { family: family.to_string(), key: key.to_string(), value });
                        }
                    }
                }
                if !conf.ipv6.is_empty() {
                    for key in FILE_ONLY_SYSCTLS {
                        // Absent on older kernels; unreadable: stable_secret while unset.
                        if let Some(value) = read_sysctl_file(&format!("/proc/sys/net/ipv6/conf/{nic}/{key}")) {
                            out.push(Sysctl { family: "ipv6".into(), key: key.to_string(), value });
                        }
                    }
                }
                out.sort_by(|a, b| (&a.family, &a.key).cmp(&(&b.family, &b.key)));
                out
            })
            .collect()
    })
}

/// Read what DEL will need to put the NICs back (link, addresses, routes of every table, permanent neighbours,
/// device sysctls), refusing up front a NIC that cannot move faithfully. `fields[i]` names NIC i's field.
pub(crate) fn snapshot_nics(host: &mut Side, names: &[String], fields: &[String]) -> Result<Vec<(NicState, u32)>> {
    let path = host.path();
    let with_conf = host.nl.links_with_conf()?;
    let links: Vec<Link> = with_conf.iter().map(|(l, _)| l.clone()).collect();
    let mut found = Vec::new();
    for (name, field) in names.iter().zip(fields) {
        let link = links.iter().find(|l| &l.name == name).ok_or_else(|| {
            Error::config(format!("{field}: there is no interface {name:?} in the host namespace {path}"))
        })?;
        if let Some(why) = refusal(link, &links) {
            return Err(Error::config(format!("{field}: {why}")));
        }
        found.push(link.clone());
    }
    let moving: std::collections::HashMap<u32, String> = found.iter().map(|l| (l.index, l.name.clone())).collect();
    let now = boot_seconds();
    let confs: Vec<(&str, &DevConf)> = found
        .iter()
        .map(|l| {
            let conf = with_conf.iter().find(|(w, _)| w.index == l.index).map(|(_, c)| c).expect("from this dump");
            (l.name.as_str(), conf)
        })
        .collect();
    let sysctls = device_sysctls(&host.ns, &confs)?;
    let mut out = Vec::new();
    for (link, sysctls) in found.into_iter().zip(sysctls) {
        let address_details = host.nl.address_details(link.index, now)?;
        let addresses = address_details.iter().filter_map(Address::net).collect();
        let routes = host.nl.routes_via(link.index, &moving)?;
        let neighbours = host.nl.permanent_neighbours(link.index)?;
        let state = NicState {
            name: link.name.clone(),
            mac: link.mac.clone(),
            mtu: link.mtu,
            up: link.up,
            addresses,
            routes,
            address_details,
            neighbours,
            sysctls,
            perm_mac: link.perm_mac.clone(),
            kind: link.kind.clone(),
            router_index: None,
        };
        out.push((state, link.index));
    }
    Ok(out)
}

/// The NIC's addresses with their details; a record written before details were kept has only CIDRs, which
/// are restored as plain permanent addresses.
fn addresses_of(nic: &NicState) -> Vec<Address> {
    if !nic.address_details.is_empty() {
        return nic.address_details.clone();
    }
    nic.addresses
        .iter()
        .map(|n| Address {
            local: n.addr(),
            prefix_len: n.prefix_len(),
            peer: None,
            broadcast: None,
            label: None,
            flags: 0,
            scope: 0,
            metric: None,
            lifetimes: None,
        })
        .collect()
}

/// Whether the address's valid lifetime ran out by `now`; logs it.
fn expired(a: &Address, nic: &str, now: u64) -> bool {
    match a.lifetimes {
        Some(l) if l.valid_until <= now => {
            log_warn!("address {a} of {nic} expired while the NIC was away; not restoring it");
            true
        }
        _ => false,
    }
}

fn add_addresses(side: &mut Side, index: u32, addrs: &[IpNet], ifname: &str) -> Result<()> {
    for a in addrs {
        match side.nl.add_address(index, *a) {
            Ok(()) => {}
            Err(e) if e.is(libc::EEXIST) => {}
            Err(e) => return Err(Error::from(e).context(format!("configuring {ifname}"))),
        }
    }
    Ok(())
}

/// Step 2 of ADD: `pt-host` here with `pt-ns` made directly in the router namespace, then up and addressed.
/// Returns the two links as created.
pub(crate) fn create_veth(host: &mut Side, router: &mut Side, rec: &Record) -> Result<(Link, Link)> {
    let alias = rec.veth_alias();
    host.nl.create_veth(HOST_IFNAME, ROUTER_IFNAME, router.ns.fd(), rec.mtu, VETH_GROUP)?;
    let mut ends = Vec::new();
    for (side, name, addrs) in
        [(host, HOST_IFNAME, &rec.addresses.host), (router, ROUTER_IFNAME, &rec.addresses.router)]
    {
        let path = side.path();
        let link =
            side.link(name)?.ok_or_else(|| Error::kernel(format!("{name} vanished from {path} after creation")))?;
        if addrs.iter().any(|a| a.addr().is_ipv6()) {
            // No duplicate address detection on either end, for the link-local address too: it is a
            // point-to-point link we just made, and FRR waits for a usable link-local address before an IPv6
            // session starts (a second lost to DAD otherwise).
            side.ns.write_sysctl(&format!("net/ipv6/conf/{name}/accept_dad"), "0")?;
        }
        side.nl.set_up_with_alias(link.index, &alias)?;
        add_addresses(side, link.index, addrs, name)?;
        ends.push(Link { up: true, alias: Some(alias.clone()), ..link });
    }
    let router_link = ends.pop().expect("two ends");
    let host_link = ends.pop().expect("two ends");
    Ok((host_link, router_link))
}

/// Step 3 of ADD: move a NIC into the router namespace and give it back its addresses there (with peer, label,
/// flags and what is left of their lifetimes; IPv6 ones without duplicate address detection, so FRR can use
/// them at once), up. MTU and MAC survive the move; addresses and routes do not. Returns the link there: its
/// ifindex is what DEL finds it by.
pub(crate) fn move_nic_in(host: &mut Side, router: &mut Side, nic: &NicState, index: u32) -> Result<Link> {
    let rpath = router.path();
    host.nl.move_to_netns(index, router.ns.fd(), &format!("moving {} into the router namespace {rpath}", nic.name))?;
    let link = router
        .link(&nic.name)?
        .ok_or_else(|| Error::kernel(format!("{} is not in {rpath} after the move", nic.name)))?;
    let now = boot_seconds();
    for a in addresses_of(nic) {
        if expired(&a, &nic.name, now) {
            continue;
        }
        match router.nl.add_address_as(link.index, &a, now, a.local.is_ipv6()) {
            Ok(()) => {}
            Err(e) if e.is(libc::EEXIST) => {}
            Err(e) => return Err(Error::from(e).context(format!("configuring {}", nic.name))),
        }
    }
    router.nl.set_up(link.index, true)?;
    Ok(link)
}

/// Step 4 of ADD: the router forwards, in both families.
pub(crate) fn enable_forwarding(router: &Side) -> Result<()> {
    router.ns.write_sysctls(&[("net/ipv4/ip_forward", "1"), ("net/ipv6/conf/all/forwarding", "1")])?;
    fault::point("add:forwarding-set");
    Ok(())
}

/// A namespace a teardown may need: open, provably gone (its path does not exist, or now names another
/// namespace), or failed to open for another reason (an error that keeps the record if it matters).
pub(crate) enum Opened {
    Open(Side),
    Gone,
    Failed(Error),
}

impl Opened {
    fn side(&mut self) -> Option<&mut Side> {
        match self {
            Opened::Open(s) => Some(s),
            _ => None,
        }
    }

    /// Open the recorded namespace, with its netlink socket, in one visit. Only ENOENT, or a path that now
    /// opens to something else or to another namespace (judged as `NsId::is_alive` does), count as gone.
    fn recorded(id: &crate::netns::NsId, what: &str) -> Opened {
        match Netns::open_recorded(id, what) {
            Ok(Some((ns, nl))) => Opened::Open(Side { ns, nl }),
            Ok(None) => Opened::Gone,
            Err(e) => Opened::Failed(e),
        }
    }

    /// The error to report when the NIC was not found and this namespace could not be searched.
    fn failure(&self) -> Option<Error> {
        match self {
            Opened::Failed(e) => Some(Error::new(e.kind, e.msg.clone())),
            _ => None,
        }
    }
}

/// The namespaces a teardown can reach.
pub(crate) struct Reach {
    pub host: Opened,
    pub router: Opened,
    /// The initial namespace, where the kernel returns physical NICs of a destroyed namespace (Gone when it is
    /// the host namespace itself). Opened the first time a NIC is not found in the router or host namespace.
    init: Option<Opened>,
}

impl Reach {
    pub fn open(rec: &Record) -> Reach {
        let host = Opened::recorded(&rec.host_netns, "host namespace");
        let router = Opened::recorded(&rec.netns, "router namespace");
        Reach { host, router, init: None }
    }

    fn init(&mut self) -> &mut Opened {
        let host = &self.host;
        self.init.get_or_insert_with(|| {
            match Netns::open(std::path::Path::new("/proc/1/ns/net"), Input::Runtime, "the initial namespace") {
                Ok(ns) => {
                    let same_as_host = match host {
                        Opened::Open(h) => h.ns.id.same_ns(&ns.id),
                        _ => false,
                    };
                    if same_as_host {
                        Opened::Gone
                    } else {
                        match Side::open(ns) {
                            Ok(s) => Opened::Open(s),
                            Err(e) => Opened::Failed(e),
                        }
                    }
                }
                Err(e) => Opened::Failed(Error::kernel(e.msg.clone()).with_source(e)),
            }
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Place {
    Router,
    Host,
    Init,
}

/// Whether `l` is provably another device than the recorded NIC: one of our veth ends, a different permanent
/// address, or a different kind of device.
fn foreign(l: &Link, nic: &NicState) -> bool {
    is_ours(l) || (nic.perm_mac.is_some() && l.perm_mac != nic.perm_mac) || l.kind != nic.kind
}

/// The NIC among the router namespace's links: by the ifindex it got there unless that index now belongs to
/// another device (then returned as the conflict), then by permanent address, then by name (and, for a record
/// written before the ifindex was kept, MAC, as then).
fn pick_in_router<'a>(links: &'a [Link], nic: &NicState) -> (Option<&'a Link>, Option<&'a Link>) {
    let mut conflict = None;
    match nic.router_index.and_then(|i| links.iter().find(|l| l.index == i)) {
        Some(l) if !foreign(l, nic) => return (Some(l), None),
        Some(l) => conflict = Some(l),
        None => {}
    }
    if let Some(l) = nic.perm_mac.as_ref().and_then(|p| links.iter().find(|l| l.perm_mac.as_ref() == Some(p))) {
        return (Some(l), None);
    }
    let old = nic.router_index.is_none();
    let by_name = links
        .iter()
        .find(|l| l.name == nic.name && if old { l.mac == nic.mac && !is_ours(l) } else { !foreign(l, nic) });
    (by_name, conflict)
}

/// Where the NIC is now. In the router namespace by the ifindex it got there (unless that index now belongs to
/// another device), then by permanent address, then by name; in the host or initial namespace by permanent
/// address, or by name and MAC (DEL sets the MAC before moving the NIC home, so an interrupted DEL leaves it
/// findable). None when it is in none of them, which is an error if a namespace could not be searched or if
/// the router-side ifindex now belongs to another device.
fn locate(reach: &mut Reach, nic: &NicState) -> Result<Option<(Place, Link)>> {
    let mut conflict = None;
    if let Some(router) = reach.router.side() {
        let links = router.nl.links()?;
        match pick_in_router(&links, nic) {
            (Some(l), _) => return Ok(Some((Place::Router, l.clone()))),
            (None, c) => conflict = c.cloned(),
        }
    }
    for place in [Place::Host, Place::Init] {
        let opened = if place == Place::Host { &mut reach.host } else { reach.init() };
        let Some(side) = opened.side() else { continue };
        let links = side.nl.links()?;
        let hit = links.iter().find(|l| {
            (nic.perm_mac.is_some() && l.perm_mac == nic.perm_mac) || (l.name == nic.name && l.mac == nic.mac)
        });
        if let Some(l) = hit {
            return Ok(Some((place, l.clone())));
        }
    }
    if let Some(l) = conflict {
        return Err(Error::kernel(format!(
            "the router namespace's ifindex {} that {} had there now belongs to another device ({}, {}), and no \
             device in the router, host or initial namespace matches {}'s permanent address or name; keeping the record",
            l.index, nic.name, l.name, l.mac, nic.name
        )));
    }
    // Gone needs proof: the router namespace died (its NIC then died with it or went to the initial namespace,
    // searched when it can be opened), or the NIC is in none of the three namespaces.
    let router_died = matches!(reach.router, Opened::Gone);
    let init = reach.init().failure();
    for (what, failure) in [("router", reach.router.failure()), ("initial", init)] {
        if let Some(e) = failure.filter(|_| !router_died) {
            return Err(e.context(format!(
                "{} was not found, and the {what} namespace could not be searched; keeping the record",
                nic.name
            )));
        }
    }
    Ok(None)
}

/// Step 1 of restoring a NIC: bring it into the host namespace under its recorded name and MAC, with its MTU.
/// Returns its ifindex there, or None when it is gone (a virtual NIC dies with the router namespace; a physical
/// one always comes back).
fn bring_home(reach: &mut Reach, nic: &NicState) -> Result<Option<u32>> {
    let Some((place, link)) = locate(reach, nic)? else {
        log_warn!("{} ({}) is gone: it is in none of the router, host and initial namespaces", nic.name, nic.mac);
        return Ok(None);
    };
    let Opened::Open(host) = &reach.host else { unreachable!("bring_home runs with the host namespace open") };
    let host_fd = host.ns.fd();
    let hpath = host.path();
    if place != Place::Host {
        let away = if place == Place::Router { &mut reach.router } else { reach.init() };
        let away = away.side().expect("located in an open namespace");
        // The MAC first, so that an interrupted DEL leaves the NIC findable by name and MAC at home. A device
        // that refuses a MAC change while up gets it at home instead.
        if link.mac != nic.mac {
            if let Err(e) = away.nl.set_mac(link.index, &nic.mac) {
                log_debug!("setting the MAC of {} before the move failed ({e}); setting it at home", nic.name);
            }
        }
        away.nl.move_to_netns_as(
            link.index,
            host_fd,
            &nic.name,
            &format!("returning {} (now {}) to the host namespace {hpath} as {}", nic.name, link.name, nic.name),
        )?;
    }
    let Opened::Open(host) = &mut reach.host else { unreachable!() };
    let here = if place == Place::Host { host.nl.link_by_index(link.index)? } else { host.link(&nic.name)? };
    let here = here.ok_or_else(|| Error::kernel(format!("{} is not in {hpath} after the move", nic.name)))?;
    if here.name != nic.name {
        // Found at home under another name (by its permanent address): renaming needs it down.
        host.nl.set_up(here.index, false)?;
        host.nl.set_name(here.index, &nic.name)?;
    }
    if here.mac != nic.mac {
        host.nl.set_mac(here.index, &nic.mac)?;
    }
    if here.mtu != nic.mtu {
        host.nl.set_mtu(here.index, nic.mtu)?;
    }
    Ok(Some(here.index))
}

/// A NIC that is back home, and what of it could not be restored because it expired.
struct Home<'a> {
    nic: &'a NicState,
    index: u32,
    expired: Vec<IpAddr>,
}

/// The device sysctls of the NICs that are home, in one visit of the host namespace. A device that changes
/// namespace gets that namespace's `conf/default/` values, so what each NIC has now (its link message, and the
/// files for the few keys it does not carry) is compared with the record and only what differs is written.
/// Keys read from files go first: writing `stable_secret` also sets `addr_gen_mode`, which is then compared
/// again. Returns every failure.
fn restore_sysctls(host: &mut Side, homes: &[Home]) -> Vec<Error> {
    if homes.iter().all(|h| h.nic.sysctls.is_empty()) {
        return Vec::new();
    }
    let hpath = host.path();
    let Side { ns, nl } = host;
    let done = ns.run(|| {
        let mut failed = Vec::new();
        let write = |s: &Sysctl, nic: &str| -> Result<()> {
            let key = format!("net/{}/conf/{nic}/{}", s.family, s.key);
            std::fs::OpenOptions::new()
                .write(true)
                .open(format!("/proc/sys/{key}"))
                .and_then(|mut f| std::io::Write::write_all(&mut f, s.value.as_bytes()))
                .map_err(|e| Error::kernel(format!("setting {key}={} in {hpath}: {e}", s.value)).with_source(e))
        };
        for h in homes.iter().filter(|h| !h.nic.sysctls.is_empty()) {
            let name = &h.nic.name;
            let conf = match nl.link_conf(h.index) {
                Ok(Some(c)) => c,
                Ok(None) => DevConf::default(),
                Err(e) => {
                    failed.push(Error::from(e).context(format!("reading the device sysctls of {name}")));
                    continue;
                }
            };
            let mut wrote = false;
            for s in h.nic.sysctls.iter().filter(|s| devconf_value(&conf, &s.family, &s.key).is_none()) {
                let now = read_sysctl_file(&format!("/proc/sys/net/{}/conf/{name}/{}", s.family, s.key));
                if now.as_ref() != Some(&s.value) {
                    match write(s, name) {
                        Ok(()) => wrote = true,
                        Err(e) => failed.push(e),
                    }
                }
            }
            let conf = match wrote {
                true => match nl.link_conf(h.index) {
                    Ok(c) => c.unwrap_or_default(),
                    Err(e) => {
                        failed.push(Error::from(e).context(format!("reading the device sysctls of {name}")));
                        continue;
                    }
                },
                false => conf,
            };
            for s in &h.nic.sysctls {
                if let Some(now) = devconf_value(&conf, &s.family, &s.key) {
                    if now != s.value {
                        failed.extend(write(s, name).err());
                    }
                }
            }
        }
        failed
    });
    match done {
        Ok(f) => f,
        Err(e) => vec![e],
    }
}

/// Put every NIC back as recorded, in dependency order, trying everything: for all NICs the link (name, MAC,
/// MTU), then the device sysctls, then the addresses, then the admin state; then the routes of all NICs (a route
/// on one may use a source address or next hop of another); then the permanent neighbours. Every failure is
/// returned; the caller keeps the record while there is any.
fn restore_nics(reach: &mut Reach, nics: &[NicState], errors: &mut Vec<Error>) {
    if !matches!(reach.host, Opened::Open(_)) {
        if let Some(e) = reach.host.failure() {
            errors.push(e.context("restoring the NICs"));
        } else if !nics.is_empty() {
            log_warn!("the host namespace is gone; there is nowhere to restore the NICs into");
        }
        return;
    }
    let mut homes = Vec::new();
    let mut gone = Vec::new();
    for nic in nics {
        match bring_home(reach, nic) {
            Ok(Some(index)) => homes.push(Home { nic, index, expired: Vec::new() }),
            Ok(None) => gone.push(nic.name.clone()),
            Err(e) => errors.push(e.context(format!("returning {}", nic.name))),
        }
    }
    let Opened::Open(host) = &mut reach.host else { unreachable!() };
    let hpath = host.path();
    errors.extend(restore_sysctls(host, &homes));
    fault::point("del:sysctls-restored");
    let now = boot_seconds();
    for h in &mut homes {
        for a in addresses_of(h.nic) {
            if expired(&a, &h.nic.name, now) {
                h.expired.push(a.local);
                continue;
            }
            match host.nl.add_address_as(h.index, &a, now, false) {
                Ok(()) => {}
                Err(e) if e.is(libc::EEXIST) => {}
                Err(e) => errors.push(Error::from(e).context(format!("restoring the addresses of {}", h.nic.name))),
            }
        }
    }
    for h in &homes {
        if let Err(e) = host.nl.set_up(h.index, h.nic.up) {
            errors.push(Error::from(e).context(format!("restoring the admin state of {}", h.nic.name)));
        }
    }
    for h in homes.iter().filter(|h| h.nic.up) {
        for a in addresses_of(h.nic) {
            let refresh = a.local.is_ipv6() && a.lifetimes.is_some() && a.flags & NOPREFIXROUTE == 0;
            if refresh && !h.expired.contains(&a.local) {
                if let Err(e) = host.nl.refresh_address(h.index, &a, now) {
                    errors.push(Error::from(e).context(format!("restoring the prefix route of {a} on {}", h.nic.name)));
                }
            }
        }
    }
    let index_of = |name: &str| homes.iter().find(|h| h.nic.name == name).map(|h| h.index);
    for h in &homes {
        for r in &h.nic.routes {
            if let Some(src) = r.source.filter(|s| homes.iter().any(|o| o.expired.contains(s))) {
                log_warn!("route {} of {} uses the expired address {src}; not restoring it", r.destination, h.nic.name);
                continue;
            }
            if let Some(nh) = r.nexthops.iter().find(|nh| index_of(&nh.dev).is_none()) {
                if gone.contains(&nh.dev) {
                    log_warn!(
                        "multipath route {} has a next hop on {}, which is gone; not restoring it",
                        r.destination,
                        nh.dev
                    );
                }
                // Otherwise that NIC's own failure is reported, and the next DEL restores the route.
                continue;
            }
            match host.nl.add_route(h.index, r, &index_of) {
                Ok(()) => {}
                Err(e) if e.is(libc::EEXIST) => {}
                Err(e) => errors.push(Error::from(e).context(format!("restoring the routes of {}", h.nic.name))),
            }
        }
    }
    for h in &homes {
        for n in &h.nic.neighbours {
            if let Err(e) = host.nl.add_neighbour(h.index, n) {
                errors.push(Error::from(e).context(format!("restoring the neighbours of {}", h.nic.name)));
            }
        }
    }
    fault::point("del:nic-restored");
    for h in &homes {
        log_info!("restored {} in {hpath}", h.nic.name);
    }
}

/// Remove one of our veth ends if it is there and carries our mark (never a link someone else made).
fn remove_veth_end(side: &mut Side, name: &str) -> Result<bool> {
    let path = side.path();
    match side.link(name)? {
        Some(l) if is_ours(&l) => match side.nl.delete_link(l.index, &format!("deleting {name}")) {
            Ok(()) => Ok(true),
            Err(e) if e.not_found() => Ok(true),
            Err(e) => Err(Error::from(e)),
        },
        Some(_) => {
            log_warn!("{name} in {path} was not made by this plugin (link group is not {VETH_GROUP}); leaving it");
            Ok(false)
        }
        None => Ok(false),
    }
}

/// Undo everything a record describes, in order: NICs back, then the veth pair. Best-effort: every step is
/// tried, failures are reported together. The caller removes claims and record only when this succeeds.
pub fn teardown(rec: &Record) -> Result<()> {
    let mut reach = Reach::open(rec);
    let mut errors = Vec::new();
    restore_nics(&mut reach, &rec.nics, &mut errors);
    let mut removed = false;
    match &mut reach.host {
        Opened::Open(host) => match remove_veth_end(host, HOST_IFNAME) {
            Ok(r) => removed = r,
            Err(e) => errors.push(e),
        },
        Opened::Failed(_) if rec.nics.is_empty() => errors.extend(reach.host.failure()),
        _ => {}
    }
    if !removed {
        match &mut reach.router {
            Opened::Open(router) => {
                if let Err(e) = remove_veth_end(router, ROUTER_IFNAME) {
                    errors.push(e);
                }
            }
            Opened::Failed(_) if !matches!(reach.host, Opened::Open(_)) => errors.extend(reach.router.failure()),
            _ => {}
        }
    }
    fault::point("del:veth-removed");
    match Error::join(errors) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(index: u32, name: &str, kind: Option<&str>) -> Link {
        Link {
            index,
            name: name.into(),
            mac: "02:00:00:00:00:01".into(),
            mtu: 1500,
            up: true,
            alias: None,
            group: 0,
            perm_mac: None,
            kind: kind.map(str::to_string),
            master: None,
            lower: None,
            link_netnsid: None,
        }
    }

    /// A NIC as records before this release hold it: CIDR strings and routes with eight fields.
    const OLD_NIC: &str = r#"{"name": "toswitch", "mac": "02:00:00:00:00:01", "mtu": 1400, "up": true,
        "addresses": ["192.168.11.3/24", "2001:db8:11::3/64"],
        "routes": [{"destination": "0.0.0.0/0", "gateway": "192.168.11.2", "metric": 50, "source": null,
                    "scope": 0, "protocol": 3, "kind": 1, "table": 254}]}"#;

    #[test]
    fn an_old_nic_record_loads_and_restores_as_plain_addresses_and_routes() {
        let nic: NicState = serde_json::from_str(OLD_NIC).unwrap();
        let addrs = addresses_of(&nic);
        assert_eq!(addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>(), ["192.168.11.3/24", "2001:db8:11::3/64"]);
        assert!(addrs.iter().all(|a| a.flags == 0 && a.lifetimes.is_none() && a.peer.is_none() && a.label.is_none()));
        let r = &nic.routes[0];
        assert_eq!((r.gateway, r.metric, r.table), (Some("192.168.11.2".parse().unwrap()), Some(50), 254));
        assert_eq!((r.via, r.flags, r.metrics.len(), r.nexthops.len(), r.preference), (None, 0, 0, 0, None));
        assert_eq!((nic.router_index, nic.perm_mac.as_deref(), nic.kind.as_deref()), (None, None, None));
        assert!(nic.sysctls.is_empty() && nic.neighbours.is_empty());
        // Found in the router as then, by name and MAC, since it has no router-side ifindex.
        let other_mac = Link { mac: "02:00:00:00:00:99".into(), ..link(7, "toswitch", None) };
        let it = link(9, "toswitch", None);
        assert_eq!(pick_in_router(std::slice::from_ref(&other_mac), &nic), (None, None));
        assert_eq!(pick_in_router(&[other_mac, it.clone()], &nic).0, Some(&it));
        // And it is written back in the same form plus nothing but what it has.
        let again: NicState = serde_json::from_str(&serde_json::to_string(&nic).unwrap()).unwrap();
        assert_eq!(again, nic);
    }

    #[test]
    fn a_moved_nic_is_found_by_router_ifindex_then_permanent_address_then_name() {
        let mut nic: NicState = serde_json::from_str(OLD_NIC).unwrap();
        nic.router_index = Some(9);
        nic.kind = Some("veth".into());
        // Renamed and given another MAC: the index finds it.
        let renamed = Link { mac: "02:aa:00:00:00:01".into(), ..link(9, "uplink0", Some("veth")) };
        assert_eq!(pick_in_router(std::slice::from_ref(&renamed), &nic), (Some(&renamed), None));
        // Another kind of device holds the index, and nothing else matches: a conflict.
        let usurper = link(9, "toswitch", Some("bridge"));
        assert_eq!(pick_in_router(std::slice::from_ref(&usurper), &nic), (None, Some(&usurper)));
        // Our own veth end is never taken for the NIC.
        let ours = Link { group: VETH_GROUP, ..link(9, "toswitch", Some("veth")) };
        assert_eq!(pick_in_router(std::slice::from_ref(&ours), &nic).0, None);
        // A physical NIC that moved under another index is found by its permanent address.
        nic.kind = None;
        nic.perm_mac = Some("00:11:22:33:44:55".into());
        let phys = Link { perm_mac: nic.perm_mac.clone(), ..link(12, "eth7", None) };
        assert_eq!(pick_in_router(&[usurper.clone(), phys.clone()], &nic), (Some(&phys), None));
        // One with a different permanent address at the index is another device.
        let other = Link { perm_mac: Some("00:11:22:33:44:66".into()), ..link(9, "toswitch", None) };
        assert_eq!(pick_in_router(std::slice::from_ref(&other), &nic), (None, Some(&other)));
    }

    fn ns_at(path: &str) -> crate::netns::NsId {
        crate::netns::NsId { path: path.into(), dev: 4, ino: 1, cookie: None }
    }

    #[test]
    fn only_a_missing_path_or_another_namespace_counts_as_gone() {
        assert!(matches!(Opened::recorded(&ns_at("/nonexistent-openpe/ns"), "router namespace"), Opened::Gone));
        // Another object at the path (here a regular file): not the recorded namespace, so it died.
        assert!(matches!(Opened::recorded(&ns_at("/proc/self/status"), "router namespace"), Opened::Gone));
        // A path that cannot be looked at for another reason (ENOTDIR here; EPERM, EMFILE alike) is an error.
        match Opened::recorded(&ns_at("/proc/self/status/ns"), "router namespace") {
            Opened::Failed(e) => {
                assert!(e.msg.starts_with("cannot look at the router namespace /proc/self/status/ns: "), "{}", e.msg)
            }
            _ => panic!("ENOTDIR must not count as gone"),
        }
    }

    /// An RTM_NEWLINK message as the kernel sends it: netlink header, ifinfomsg, then IFLA_AF_SPEC holding
    /// AF_INET / IFLA_INET_CONF and AF_INET6 / IFLA_INET6_CONF (the latter with one entry more than this
    /// release knows).
    fn link_message(v4: &[i32], v6: &[i32]) -> Vec<u8> {
        fn attr(kind: u16, value: &[u8]) -> Vec<u8> {
            let mut a = ((4 + value.len()) as u16).to_ne_bytes().to_vec();
            a.extend(kind.to_ne_bytes());
            a.extend(value);
            a.resize((a.len() + 3) & !3, 0);
            a
        }
        let ints = |v: &[i32]| v.iter().flat_map(|i| i.to_ne_bytes()).collect::<Vec<u8>>();
        let inet = attr(libc::AF_INET as u16, &attr(1, &ints(v4)));
        let inet6 = attr(libc::AF_INET6 as u16, &[attr(1, &[0; 4]), attr(0x8000 | 2, &ints(v6))].concat());
        let mut msg = vec![0u8; 32];
        msg.extend(attr(3, b"toswitch\0"));
        msg.extend(attr(0x8000 | 26, &[inet, inet6].concat()));
        msg
    }

    #[test]
    fn devconf_values_are_named_by_the_kernels_numbers_in_proc_sys_units() {
        let mut v4 = vec![0; IPV4_DEVCONF.len()];
        v4[7] = 2; // IPV4_DEVCONF_RP_FILTER = 8
        v4[26] = 777; // IPV4_DEVCONF_IGMPV2_UNSOLICITED_REPORT_INTERVAL = 27, milliseconds both ways
        let mut v6 = vec![0; IPV6_DEVCONF.len() + 1];
        v6[8] = 7000; // DEVCONF_RTR_SOLICIT_INTERVAL: milliseconds here, seconds in /proc/sys
        v6[20] = 33000; // DEVCONF_RTR_PROBE_INTERVAL
        v6[36] = 0; // DEVCONF_STABLE_SECRET: the kernel leaves it 0
        v6[52] = -1; // DEVCONF_RA_DEFRTR_METRIC, unsigned
        v6[59] = 1; // DEVCONF_FORCE_FORWARDING (Linux 6.17)
        v6[60] = 5; // one this release cannot name
        let conf = DevConf::of_link_message(&link_message(&v4, &v6));
        assert_eq!((conf.ipv4.len(), conf.ipv6.len()), (33, 61));
        let value = |f: &str, k: &str| devconf_value(&conf, f, k);
        assert_eq!(value("ipv4", "rp_filter").as_deref(), Some("2"));
        assert_eq!(value("ipv4", "igmpv2_unsolicited_report_interval").as_deref(), Some("777"));
        assert_eq!(value("ipv6", "router_solicitation_interval").as_deref(), Some("7"));
        assert_eq!(value("ipv6", "router_probe_interval").as_deref(), Some("33"));
        assert_eq!(value("ipv6", "ra_defrtr_metric").as_deref(), Some("4294967295"));
        assert_eq!(value("ipv6", "force_forwarding").as_deref(), Some("1"));
        assert_eq!(value("ipv6", "stable_secret"), None);
        assert_eq!(value("ipv6", "regen_min_advance"), None);
        // A kernel that sends fewer entries: the missing ones are not guessed.
        let old = DevConf::of_link_message(&link_message(&v4, &v6[..59]));
        assert_eq!(devconf_value(&old, "ipv6", "force_forwarding"), None);
        // A message without IFLA_AF_SPEC, or cut short, has none.
        assert_eq!(DevConf::of_link_message(&[0u8; 32]), DevConf::default());
        let whole = link_message(&v4, &v6);
        assert!(DevConf::of_link_message(&whole[..whole.len() - 100]).ipv6.is_empty());
    }

    #[test]
    fn a_port_of_any_master_is_refused() {
        for kind in ["bridge", "bond", "team", "vrf"] {
            let master = link(5, "m0", Some(kind));
            let nic = Link { master: Some(5), ..link(3, "eth1", None) };
            let why = refusal(&nic, &[master, nic.clone()]).expect("refused");
            assert_eq!(
                why,
                format!("eth1 is a port of the {kind} m0; moving it would take it out of m0 (remove it from m0 first)")
            );
        }
    }

    #[test]
    fn devices_stacked_on_the_nic_are_refused_but_not_a_veth_peer_or_another_namespace() {
        let nic = link(3, "eth1", None);
        for kind in ["vlan", "macvlan", "ipvlan", "macvtap"] {
            let upper = Link { lower: Some(3), ..link(7, "up0", Some(kind)) };
            let why = refusal(&nic, &[nic.clone(), upper]).expect("refused");
            assert!(why.starts_with(&format!("eth1 has devices stacked on it: up0 ({kind})")), "{why}");
        }
        let peer = Link { lower: Some(3), ..link(8, "peer", Some("veth")) };
        let elsewhere = Link { lower: Some(3), link_netnsid: Some(0), ..link(9, "mv", Some("macvlan")) };
        assert_eq!(refusal(&nic, &[nic.clone(), peer, elsewhere]), None);
    }

    #[test]
    fn devices_the_kernel_will_not_move_are_refused_and_a_macvlan_or_vxlan_nic_is_fine() {
        for kind in ["bridge", "bond", "team", "vrf", "openvswitch"] {
            let nic = link(3, "x0", Some(kind));
            let why = refusal(&nic, std::slice::from_ref(&nic)).expect("refused");
            assert_eq!(why, format!("x0 is a {kind}, which the kernel does not move to another namespace"));
        }
        let lower = link(2, "eth0", None);
        for kind in ["macvlan", "vxlan", "veth"] {
            let nic = Link { lower: Some(2), ..link(3, "x0", Some(kind)) };
            assert_eq!(refusal(&nic, &[lower.clone(), nic.clone()]), None, "{kind}");
        }
    }
}
