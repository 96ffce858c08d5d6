//! The FRR configuration of one attachment, rendered from typed, validated values.
//!
//! Every value written here is an ASN (`u32`), an IP address or network (`std::net`, `ipnet`), a number, or a
//! password that validation limited to 1..80 printable ASCII characters without spaces: no field can end a
//! line or start a new one, so nothing from the user's configuration can inject FRR configuration.
//!
//! The shape follows upstream OpenPERouter's passthrough template, plus `local-as` for a host session whose
//! ASN (`hostsession.asn`) differs from the underlay's, which upstream ignores, and the routing safety upstream
//! lacks (split horizon, the host session's limits), which `bgp/safety.rs` renders.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::IpAddr;

use ipnet::IpNet;

use super::fabric;
use super::safety;
use crate::addressing::{router_id, VethAddresses};
use crate::config::{Family, HostSession, Neighbor, Peer, RemoteAs, Underlay};
use crate::error::{Error, Result};

/// What a password looks like in output meant for people.
pub(crate) const MASK: &str = "********";

/// Whether passwords are written as they are (for FRR) or masked (for people and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrets {
    Show,
    Mask,
}

/// The connect-retry timer of the host session. The host's speaker often starts after the router, or refuses
/// the router's first connection (GoBGP right after a DEL): a one-second retry brings the session up within a
/// second of the speaker being ready (upstream uses 5). The sidecar's delta gives this line after the peer is
/// activated: FRR starts the peer when it gets `timers connect`, and before activation its OPEN would carry no
/// address family.
pub(crate) const HOST_CONNECT_SECONDS: u16 = 1;

/// The configuration that leaves FRR without any BGP configuration (frr-reload.py refuses an empty file).
pub fn unconfigured() -> String {
    "! openpe-passthrough: no attachment holds this router namespace, so there is no BGP configuration\n".to_string()
}

fn family_name(net: &IpNet) -> Family {
    match net {
        IpNet::V4(_) => Family::Ipv4Unicast,
        IpNet::V6(_) => Family::Ipv6Unicast,
    }
}

/// The host session of one address family.
struct HostPeer {
    family: Family,
    address: IpAddr,
    host_route: IpNet,
}

fn host_peers(hs: &HostSession, addrs: &VethAddresses) -> Result<Vec<HostPeer>> {
    let mut out = Vec::new();
    let wanted = [(Family::Ipv4Unicast, hs.ipv4.is_some()), (Family::Ipv6Unicast, hs.ipv6.is_some())];
    for (family, configured) in wanted {
        if !configured {
            continue;
        }
        let host = addrs.host.iter().find(|n| family_name(n) == family).ok_or_else(|| {
            Error::config(format!(
                "l3passthrough.hostsession.localcidr.{f} is set but the attachment has no {f} host address; run \
                 DEL and ADD again so that the addresses match the configuration",
                f = family.frr()
            ))
        })?;
        let address = host.addr();
        let host_route = IpNet::new(address, host.max_prefix_len()).expect("full-length prefix");
        out.push(HostPeer { family, address, host_route });
    }
    Ok(out)
}

fn is_ebgp(remote: RemoteAs, local_asn: u32) -> bool {
    match remote {
        RemoteAs::External => true,
        RemoteAs::Internal => false,
        RemoteAs::Asn(n) => n != local_asn,
    }
}

fn remote_as_word(remote: RemoteAs) -> String {
    match remote {
        RemoteAs::Asn(n) => n.to_string(),
        RemoteAs::External => "external".into(),
        RemoteAs::Internal => "internal".into(),
    }
}

fn underlay_neighbor(out: &mut String, n: &Neighbor, hs: &HostSession, local_asn: u32) {
    fabric::declare(out, n, &remote_as_word(n.remote_as));
    let a = n.peer_name();
    if let Some(port) = n.port {
        let _ = writeln!(out, " neighbor {a} port {port}");
    }
    if let Some(pw) = &n.password {
        let _ = writeln!(out, " neighbor {a} password {pw}");
    } else if n.password_secret.is_some() {
        // Only in masked output (a configuration for FRR needs the Secret resolved first, see `render`).
        let _ = writeln!(out, " neighbor {a} password {MASK}");
    }
    // FRR ignores ebgp-multihop on iBGP sessions (they are multihop already), and a TTL of 1 is its single-hop
    // default, which its running configuration does not show: writing either would leave a difference between
    // this text and FRR's running configuration forever, and re-apply it on every reload.
    let multihop = n.ebgp_multi_hop.filter(|ttl| *ttl > 1 && is_ebgp(n.remote_as, local_asn));
    if let Some(ttl) = multihop {
        let _ = writeln!(out, " neighbor {a} ebgp-multihop {ttl}");
    }
    let families = n.families(hs);
    let carries = |f: Family| families.iter().any(|af| af.family == f);
    // IPv4 routes learned over an IPv6 session have an IPv6 next hop, which only the extended next hop
    // capability (RFC 8950) makes usable. Interface peers get it from FRR itself, which never shows it.
    let ipv6_peer = match &n.peer {
        Peer::Address(addr) => addr.is_ipv6(),
        Peer::ListenRange(net) => net.addr().is_ipv6(),
        Peer::Interface(_) => false,
    };
    if ipv6_peer && carries(Family::Ipv4Unicast) {
        let _ = writeln!(out, " neighbor {a} capability extended-nexthop");
    }
    // As upstream's template: single-hop eBGP carrying IPv6 unicast (its next hop is often not on a connected
    // subnet of the session's family).
    let unnumbered = matches!(n.peer, Peer::Interface(_));
    if !unnumbered && multihop.is_none() && is_ebgp(n.remote_as, local_asn) && carries(Family::Ipv6Unicast) {
        let _ = writeln!(out, " neighbor {a} disable-connected-check");
    }
    if let (Some(hold), Some(keepalive)) = (n.hold_time_seconds, n.keepalive_time_seconds) {
        // FRR's order is keepalive, then hold time.
        let _ = writeln!(out, " neighbor {a} timers {keepalive} {hold}");
    }
    if let Some(connect) = n.connect_time_seconds {
        let _ = writeln!(out, " neighbor {a} timers connect {connect}");
    }
    fabric::bfd_line(out, n);
}

/// The whole FRR configuration of an attachment: the router id from the node index, the underlay neighbors,
/// and one host session per address family of `localcidr`, each advertising the host's address.
pub fn render(
    underlay: &Underlay,
    hs: &HostSession,
    node_index: u32,
    addrs: &VethAddresses,
    secrets: Secrets,
) -> Result<String> {
    let asn = underlay.asn;
    let rid = router_id(underlay.router_id_cidr, node_index)?;
    let hosts = host_peers(hs, addrs)?;
    // A password held by a Secret is read by openpe-sidecar (which renders the neighbor with the password it
    // read, or leaves the neighbor out): never a session without it.
    if let Some((i, n)) =
        underlay.neighbors.iter().enumerate().find(|(_, n)| n.password.is_none() && n.password_secret.is_some())
    {
        if secrets == Secrets::Show {
            let r = n.password_secret.as_ref().expect("checked");
            return Err(Error::config(format!(
                "underlay.neighbors[{i}].passwordSecret: the password is in the Secret {:?} (key {:?}), which only \
                 openpe-sidecar reads (--secrets-dir); this configuration cannot be shown with it",
                r.name, r.key
            )));
        }
    }

    // The host session presents hostsession.asn; FRR's `local-as` does that when it differs from the underlay's.
    let presented = hs.asn;
    let host_remote = match hs.host_as {
        // `internal` in FRR means "the router's own ASN"; with another presented ASN, name it.
        RemoteAs::Internal if presented != asn => presented.to_string(),
        other => remote_as_word(other),
    };
    let host_ibgp_in_frr = presented == asn && !is_ebgp(hs.host_as, asn);

    let mut out = String::new();
    let _ =
        writeln!(out, "! openpe-passthrough: node index {node_index}, underlay AS {asn}, host session AS {presented}");
    // After a configuration transaction (`vtysh -f`) bgpd holds new peers for the whole seconds left of its
    // route-map update timer, or for one second when that timer is not running (`delay-timer 0`). With a one
    // second timer set off by a route-map created in the same transaction, less than a second remains, which
    // FRR rounds to 0: the peers start at once (docs/sidecar.md).
    out.push_str("!\nbgp route-map delay-timer 1\n!\nroute-map allowall permit 1\nexit\n!\n");
    // Routing safety (split horizon, the host's limits): bgp/safety.rs.
    safety::policies(&mut out, asn, &hs.limits, &hosts.iter().map(|h| h.family.frr()).collect::<Vec<_>>());
    out.push_str(&fabric::bfd_block(underlay));
    let _ = writeln!(out, "router bgp {asn}");
    let _ = writeln!(out, " bgp router-id {rid}");
    out.push_str(&fabric::global_lines(underlay));
    out.push_str(" no bgp ebgp-requires-policy\n");
    out.push_str(" no bgp default ipv4-unicast\n");
    out.push_str(" no bgp network import-check\n");
    for n in &underlay.neighbors {
        underlay_neighbor(&mut out, n, hs, asn);
    }
    out.push_str(&fabric::listen_lines(underlay));
    for h in &hosts {
        let a = h.address;
        let _ = writeln!(out, " neighbor {a} remote-as {host_remote}");
        if presented != asn {
            let _ = writeln!(out, " neighbor {a} local-as {presented} no-prepend replace-as");
        }
        let _ = writeln!(out, " neighbor {a} timers connect {HOST_CONNECT_SECONDS}");
    }
    // A family block for every family the host session or an underlay neighbor carries.
    let families: BTreeSet<Family> = (hosts.iter().map(|h| h.family))
        .chain(underlay.neighbors.iter().flat_map(|n| n.families(hs)).map(|f| f.family))
        .collect();
    for family in families {
        out.push_str(" !\n");
        let _ = writeln!(out, " address-family {} unicast", family.frr());
        let host = hosts.iter().find(|h| h.family == family);
        if let Some(h) = host {
            let _ = writeln!(out, "  network {}", h.host_route);
        }
        for n in &underlay.neighbors {
            let Some(af) = n.families(hs).into_iter().find(|f| f.family == family) else {
                continue;
            };
            let a = n.peer_name();
            let _ = writeln!(out, "  neighbor {a} activate");
            if is_ebgp(n.remote_as, asn) {
                // Every node of the fabric shares the underlay ASN: accept paths that already carry it.
                let _ = writeln!(out, "  neighbor {a} allowas-in");
            } else {
                let _ = writeln!(out, "  neighbor {a} next-hop-self force");
            }
            if af.route_reflector_client {
                let _ = writeln!(out, "  neighbor {a} route-reflector-client");
            }
            safety::underlay_neighbor_af(&mut out, n, af.route_reflector_client);
        }
        if let Some(h) = host {
            let a = h.address;
            let _ = writeln!(out, "  neighbor {a} activate");
            if host_ibgp_in_frr {
                let _ = writeln!(out, "  neighbor {a} next-hop-self force");
            }
            safety::host_neighbor_af(&mut out, &h.host_route, &hs.limits);
            let _ = writeln!(out, "  neighbor {a} route-map allowall out");
        }
        out.push_str(" exit-address-family\n");
    }
    out.push_str("exit\n!\n");
    Ok(match secrets {
        Secrets::Show => out,
        Secrets::Mask => mask(&out, &[]),
    })
}

/// The one password mask for text meant for people and logs: every known password (`known`: the attachment's
/// neighbor passwords, wherever they appear, e.g. quoted by FRR in an error) and the word after any
/// `password` keyword (a password FRR or `--frr-extra` holds that the sidecar does not know) become [`MASK`].
pub(crate) fn mask(text: &str, known: &[String]) -> String {
    let mut out = text.to_string();
    for p in known {
        if !p.is_empty() {
            out = out.replace(p.as_str(), MASK);
        }
    }
    let masked: Vec<String> = out
        .split('\n')
        .map(|line| {
            let mut words: Vec<&str> = line.split(' ').collect();
            let mut i = 0;
            while i + 1 < words.len() {
                if words[i] == "password" && !words[i + 1].is_empty() {
                    words[i + 1] = MASK;
                    i += 1;
                }
                i += 1;
            }
            words.join(" ")
        })
        .collect();
    masked.join("\n")
}

/// Every configuration line with the lines that enclose it (`router bgp 64514 > address-family ipv4 unicast >
/// neighbor ... activate`), in order; comments and `exit` lines carry nothing.
pub(crate) fn qualified_lines(config: &str) -> Vec<String> {
    let mut stack: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for line in config.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty()
            || trimmed.starts_with('!')
            || trimmed.starts_with('#')
            || matches!(trimmed, "exit" | "exit-address-family" | "end")
        {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        stack.truncate(indent);
        while stack.len() < indent {
            stack.push(String::new());
        }
        stack.push(trimmed.to_string());
        out.push(stack.iter().filter(|s| !s.is_empty()).cloned().collect::<Vec<_>>().join(" > "));
    }
    out
}

/// What changes from `old` to `new`: lines removed (`- ...`) and added (`+ ...`), each with its enclosing
/// context, passwords masked. Empty when the two configurations say the same.
pub fn diff(old: &str, new: &str) -> Vec<String> {
    let old_lines = qualified_lines(old);
    let new_lines = qualified_lines(new);
    let mut out = Vec::new();
    for l in &old_lines {
        if !new_lines.contains(l) {
            out.push(format!("- {}", mask(l, &[])));
        }
    }
    for l in &new_lines {
        if !old_lines.contains(l) {
            out.push(format!("+ {}", mask(l, &[])));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking() {
        assert_eq!(mask(" neighbor 1.2.3.4 password s3cr#t", &[]), format!(" neighbor 1.2.3.4 password {MASK}"));
        assert_eq!(mask("router bgp 1", &[]), "router bgp 1");
        assert_eq!(mask("password", &[]), "password");
        assert_eq!(mask("password  x", &[]), "password  x", "only the word right after the keyword");
        // Known passwords wherever they appear, e.g. quoted by FRR in an error; several lines at once.
        let text = "line 3: % Unknown command: neighbor 10.0.0.1 passwd s3cr#t\nother-Secret\n neighbor x password pw2";
        assert_eq!(
            mask(text, &["s3cr#t".into(), "other-Secret".into(), String::new()]),
            format!("line 3: % Unknown command: neighbor 10.0.0.1 passwd {MASK}\n{MASK}\n neighbor x password {MASK}")
        );
    }

    #[test]
    fn diff_is_contextual() {
        let a = "router bgp 1\n neighbor 1.1.1.1 remote-as 2\n !\n address-family ipv4 unicast\n  neighbor 1.1.1.1 activate\n exit-address-family\nexit\n";
        let b = "router bgp 1\n neighbor 1.1.1.1 remote-as 2\n neighbor 1.1.1.1 password x\n !\n address-family ipv4 unicast\n exit-address-family\nexit\n";
        assert_eq!(
            diff(a, b),
            vec![
                "- router bgp 1 > address-family ipv4 unicast > neighbor 1.1.1.1 activate".to_string(),
                format!("+ router bgp 1 > neighbor 1.1.1.1 password {MASK}"),
            ]
        );
        assert!(diff(a, a).is_empty());
    }
}
