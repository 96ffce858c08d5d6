//! The BGP lab's topologies, built from the daemons of tests/common/routing.rs: the fabric switches (ToRs), the
//! router's FRR with openpe-sidecar, and the host's speaker as BIRD, FRR or GoBGP. The node's addresses are the
//! lab's (tests/common): 192.168.11.3 (2001:db8:11::3) on the uplink, AS 64514, and the router's end of the host
//! session 192.169.10.1 (2001:db8:10::1), the host's 192.169.10.2 (2001:db8:10::2). Every part stops by its guard.
//! Include with `#[path = "common/bgp.rs"] mod bgp;` next to `mod common;`: `use bgp::*;` brings the whole lab,
//! the daemons of tests/common/routing.rs included.
#![allow(dead_code)]

pub use crate::common::routing::*;
use crate::common::{Lab, Ns};

/// A fabric switch: FRR, AS `asn`, at `<subnet4>.2` and `<subnet6>::2` (added on `port`), peering over IPv4
/// with the node at `<subnet4>.3` (AS 64514) in both families, advertising `prefix4` and `prefix6`, with
/// `loopback4` and `loopback6` (inside them) on its loopback to answer pings.
#[derive(Clone, Copy)]
pub struct Tor<'a> {
    pub asn: u32,
    pub subnet4: &'a str,
    pub subnet6: &'a str,
    pub prefix4: &'a str,
    pub prefix6: &'a str,
    pub loopback4: &'a str,
    pub loopback6: &'a str,
    /// The ToR's end of the uplink, which gets its IPv6 address.
    pub port: &'a str,
    /// Lines in `router bgp` before the neighbor, such as ` bgp graceful-restart\n`.
    pub global: &'a str,
    /// More lines for the node's neighbor, such as ` neighbor 192.168.11.3 bfd\n`.
    pub neighbor: &'a str,
    /// A one-second keepalive (hold time 3 s), so that the ToR soon notices a router gone; false: FRR's own
    /// timers, for tests where only a NOTIFICATION may tell it.
    pub fast_timers: bool,
    /// FRR daemons besides zebra and bgpd, such as `bfdd`.
    pub daemons: &'a [&'a str],
}

/// The lab's ToR (tests/common's `Lab::tor`, the NIC's peer `tor-side`): AS 64512 at 192.168.11.2
/// (2001:db8:11::2), advertising 172.30.0.0/24 and 2001:db8:99::/64.
pub const TOR: Tor<'static> = Tor {
    asn: 64512,
    subnet4: "192.168.11",
    subnet6: "2001:db8:11",
    prefix4: "172.30.0.0/24",
    prefix6: "2001:db8:99::/64",
    loopback4: "172.30.0.1",
    loopback6: "2001:db8:99::1",
    port: "tor-side",
    global: "",
    neighbor: "",
    fast_timers: true,
    daemons: &[],
};

impl Tor<'_> {
    /// Start the ToR's FRR in `ns`.
    pub fn start(&self, ns: &Ns) -> Frr {
        ns.ip(&format!("addr add {}::2/64 dev {} nodad", self.subnet6, self.port));
        ns.ip(&format!("addr add {}/32 dev lo", self.loopback4));
        ns.ip(&format!("addr add {}/128 dev lo", self.loopback6));
        let node = format!("{}.3", self.subnet4);
        let timers = if self.fast_timers { format!(" neighbor {node} timers 1 3\n") } else { String::new() };
        let conf = format!(
            "router bgp {asn}\n bgp router-id {s}.2\n no bgp ebgp-requires-policy\n no bgp default ipv4-unicast\n \
             no bgp network import-check\n{global} neighbor {node} remote-as 64514\n neighbor {node} timers connect 2\n\
             {timers}{neighbor} address-family ipv4 unicast\n  network {p4}\n  neighbor {node} activate\n \
             exit-address-family\n address-family ipv6 unicast\n  network {p6}\n  neighbor {node} activate\n \
             exit-address-family\nexit\n",
            asn = self.asn,
            s = self.subnet4,
            global = self.global,
            neighbor = self.neighbor,
            p4 = self.prefix4,
            p6 = self.prefix6,
        );
        Frr::start_with(ns, "tor", &conf, FrrOptions { daemons: self.daemons, ..FrrOptions::default() })
    }
}

/// The lab's ToR, [`TOR`].
pub fn start_tor(lab: &Lab) -> Frr {
    TOR.start(&lab.tor)
}

/// An IPv4-only ToR in the lab's ToR namespace: FRR, AS 64512 (router id 172.30.0.1), advertising
/// 172.30.0.0/24 with 172.30.0.1 on its loopback to answer pings. `neighbor_lines` are its whole session to
/// the router, whom `peer` names (an address or an interface); `global` goes into `router bgp` before them.
pub fn start_ipv4_tor(lab: &Lab, peer: &str, neighbor_lines: &str, global: &str, daemons: &[&str]) -> Frr {
    lab.tor.ip("addr add 172.30.0.1/32 dev lo");
    let conf = format!(
        "router bgp 64512\n bgp router-id 172.30.0.1\n no bgp ebgp-requires-policy\n no bgp default ipv4-unicast\n \
         no bgp network import-check\n{global}{neighbor_lines} address-family ipv4 unicast\n  network 172.30.0.0/24\n  \
         neighbor {peer} activate\n exit-address-family\nexit\n"
    );
    Frr::start_with(&lab.tor, "tor", &conf, FrrOptions { daemons, ..FrrOptions::default() })
}

/// Makes the lab's uplink unnumbered: no IPv4 and no global IPv6 address on either side (IPv6 link-local only),
/// and without the host's IPv6 route through the ToR, whose gateway is then unreachable (DEL could not restore
/// it). Call before the ADD.
pub fn unnumbered_uplink(lab: &Lab) {
    lab.host.ip("addr flush dev toswitch scope global");
    lab.host.ip("-6 route del 2001:db8:99::/64");
    lab.tor.ip("addr flush dev tor-side scope global");
}

/// The ToR of an [`unnumbered_uplink`]: [`start_ipv4_tor`] with `neighbor tor-side interface remote-as external`
/// and a one-second keepalive (IPv4 with IPv6 next hops).
pub fn start_unnumbered_tor(lab: &Lab) -> Frr {
    start_ipv4_tor(
        lab,
        "tor-side",
        " neighbor tor-side interface remote-as external\n neighbor tor-side timers 1 3\n \
         neighbor tor-side timers connect 1\n",
        "",
        &[],
    )
}

/// The router's FRR in the router namespace, started empty with `options`, and openpe-sidecar (with more
/// arguments `args`), which gives it its configuration.
pub fn start_router(lab: &Lab, options: FrrOptions, args: &[&str]) -> (Frr, Sidecar) {
    let frr = Frr::start_with(&lab.router, "rtr", "! configured by openpe-sidecar\n", options);
    let sidecar = Sidecar::start(lab, &frr, args);
    (frr, sidecar)
}

/// The host's speaker as BIRD 2, AS 64515 (router id 192.169.10.2): protocol `openpe4`, a session with the
/// router's 192.169.10.1, announcing the static routes `routes4`, and with `routes6` protocol `openpe6` with
/// 2001:db8:10::1 announcing those. It imports all the router sends.
#[derive(Clone, Copy)]
pub struct HostBird<'a> {
    pub routes4: &'a [&'a str],
    /// IPv6 routes and an IPv6 session; None: IPv4 only.
    pub routes6: Option<&'a [&'a str]>,
    /// What it learns goes into the host's kernel, so that the host reaches the fabric.
    pub kernel: bool,
    /// After a session error it tries again within seconds (BIRD's default wait is a minute or more).
    pub quick_retry: bool,
    /// More options for each BGP protocol, such as `graceful restart on;`.
    pub options: &'a str,
}

/// Dual stack, announcing 172.31.0.0/24 and 2001:db8:88::/64, installing nothing.
pub const HOST_BIRD: HostBird<'static> = HostBird {
    routes4: &["172.31.0.0/24"],
    routes6: Some(&["2001:db8:88::/64"]),
    kernel: false,
    quick_retry: false,
    options: "",
};

/// IPv4 only, announcing 172.31.0.0/24, installing what it learns, trying again quickly.
pub const HOST_BIRD_V4: HostBird<'static> = HostBird { routes6: None, kernel: true, quick_retry: true, ..HOST_BIRD };

impl HostBird<'_> {
    /// BIRD's configuration (for [`Bird::reconfigure`] too).
    pub fn config(&self) -> String {
        let retry = if self.quick_retry { " connect delay time 1; error wait time 1, 4;" } else { "" };
        let mut c = "router id 192.169.10.2;\nprotocol device {}\n".to_string();
        let families =
            [("4", "ipv4", "192.169.10.1", Some(self.routes4)), ("6", "ipv6", "2001:db8:10::1", self.routes6)];
        for (n, family, router, routes) in families {
            let Some(routes) = routes else { continue };
            let statics: String = routes.iter().map(|r| format!(" route {r} blackhole;")).collect();
            c += &format!("protocol static {{ {family};{statics} }}\n");
            if self.kernel {
                c += &format!("protocol kernel {{ {family} {{ import none; export where source = RTS_BGP; }}; }}\n");
            }
            c += &format!(
                "protocol bgp openpe{n} {{ local as 64515; neighbor {router} as 64514; connect retry time 2;{retry} {}\n \
                 {family} {{ import all; export where source = RTS_STATIC; }}; }}\n",
                self.options
            );
        }
        c
    }

    /// Start it in the lab's host namespace.
    pub fn start(&self, lab: &Lab) -> Bird {
        Bird::start(&lab.host, &self.config())
    }
}

/// The host's speaker as FRR (router id 192.169.10.2), AS `asn`, peering with the router (AS `router_as`) at
/// 192.169.10.1 with `v4` and at 2001:db8:10::1 with `v6`, advertising 172.31.0.0/24 and 2001:db8:88::/64, with
/// 172.31.0.1 on the host's loopback; `global` goes into `router bgp`.
#[derive(Clone, Copy)]
pub struct HostFrr<'a> {
    pub asn: u32,
    pub router_as: u32,
    pub v4: bool,
    pub v6: bool,
    pub global: &'a str,
}

/// AS 64515, eBGP with the router's AS 64514, both families.
pub const HOST_FRR: HostFrr<'static> = HostFrr { asn: 64515, router_as: 64514, v4: true, v6: true, global: "" };

impl HostFrr<'_> {
    /// Start it in the lab's host namespace.
    pub fn start(&self, lab: &Lab) -> Frr {
        let (asn, router_as) = (self.asn, self.router_as);
        let mut c = format!(
            "router bgp {asn}\n bgp router-id 192.169.10.2\n no bgp ebgp-requires-policy\n no bgp default ipv4-unicast\n \
             no bgp network import-check\n{}",
            self.global
        );
        if self.v4 {
            c += &format!(" neighbor 192.169.10.1 remote-as {router_as}\n neighbor 192.169.10.1 timers connect 2\n");
        }
        if self.v6 {
            c +=
                &format!(" neighbor 2001:db8:10::1 remote-as {router_as}\n neighbor 2001:db8:10::1 timers connect 2\n");
        }
        if self.v4 {
            c += " address-family ipv4 unicast\n  network 172.31.0.0/24\n  neighbor 192.169.10.1 activate\n exit-address-family\n";
        }
        if self.v6 {
            c += " address-family ipv6 unicast\n  network 2001:db8:88::/64\n  neighbor 2001:db8:10::1 activate\n exit-address-family\n";
        }
        c += "exit\n";
        lab.host.ip("addr add 172.31.0.1/32 dev lo");
        Frr::start(&lab.host, "host", &c)
    }
}

/// The host's speaker as GoBGP, AS 64515 (router id 192.169.10.2), peering with the router's 192.169.10.1 in
/// IPv4.
pub fn start_host_gobgp(lab: &Lab) -> GoBgp {
    GoBgp::start(
        &lab.host,
        "[global.config]\n  as = 64515\n  router-id = \"192.169.10.2\"\n\
         [[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"192.169.10.1\"\n    peer-as = 64514\n\
         [[neighbors.afi-safis]]\n  [neighbors.afi-safis.config]\n    afi-safi-name = \"ipv4-unicast\"\n",
    )
}
