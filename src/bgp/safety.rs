//! Routing safety in FRR's terms, generated from typed values: split horizon between underlay neighbors, and
//! the limits on what the host session accepts ([`HostLimits`]). [`super::render`] calls these at three
//! places: the policy objects before `router bgp`, the underlay neighbors' lines and the host session's lines
//! in each address family.
//!
//! **Split horizon.** A route learned from an underlay neighbor gets the large community `ASN:4242:1` (ASN:
//! the underlay's, so the value is ours by RFC 8092's convention) on the way in, and no underlay neighbor is
//! sent a route carrying it. The fabric thus hears only the host's address (`network`, originated here, not
//! tagged) and the host session's routes (not tagged), and the host still hears the whole fabric. An AS-path
//! filter cannot do this: every node shares the underlay ASN and eBGP underlay neighbors have `allowas-in`, so
//! another node's host route arrives with a path that looks like this node's own host route (with iBGP
//! underlay neighbors, exactly like it). A tag set locally on the way in depends on nothing the fabric sends.
//! A route from the host that carries the tag (fabric routes the host's speaker re-announces) stays away from
//! the fabric too, which is what split horizon is for.

use std::fmt::Write as _;

use ipnet::IpNet;

use crate::config::Neighbor;
use crate::limits::HostLimits;

/// The route maps and the community list of split horizon, and the prefix lists and route maps of the host
/// session's `allowedPrefixes` (FRR's names are plain words; these cannot clash with `allowall`).
const UNDERLAY_IN: &str = "openpe-underlay-in";
const UNDERLAY_OUT: &str = "openpe-underlay-out";
const FROM_UNDERLAY: &str = "openpe-from-underlay";
const HOST_IN: &str = "openpe-host-in";
const HOST_ALLOWED: &str = "openpe-host-allowed";

/// The middle part of the split-horizon community `ASN:4242:1` (4242 is also upstream's link group of managed
/// NICs); the last part, 1, means "learned from an underlay neighbor".
const COMMUNITY_FUNCTION: u32 = 4242;

/// The route map that the host session's routes of `family` (`ipv4` or `ipv6`) go through on the way in:
/// `allowall` without `allowedPrefixes`, as upstream.
fn host_in_map(limits: &HostLimits, family: &str) -> String {
    match limits.allowed_prefixes {
        None => "allowall".to_string(),
        Some(_) => format!("{HOST_IN}-{family}"),
    }
}

/// The policy objects, written before `router bgp`: split horizon's community list and route maps, and for
/// each address family of the host session (`families`: `ipv4`, `ipv6`) with `allowedPrefixes` its prefix
/// list and route map.
pub(crate) fn policies(out: &mut String, asn: u32, limits: &HostLimits, families: &[&str]) {
    let tag = format!("{asn}:{COMMUNITY_FUNCTION}:1");
    let _ = writeln!(
        out,
        "! split horizon: routes from underlay neighbors are tagged {tag} on the way in and never sent to an \
         underlay neighbor, so the node is no transit between fabric switches; a community, not an AS path, \
         since every node shares AS {asn} and eBGP underlay neighbors have allowas-in"
    );
    let _ = writeln!(out, "bgp large-community-list standard {FROM_UNDERLAY} seq 5 permit {tag}");
    let _ = writeln!(out, "!\nroute-map {UNDERLAY_IN} permit 10\n set large-community {tag} additive\nexit\n!");
    let _ = writeln!(out, "route-map {UNDERLAY_OUT} deny 10\n match large-community {FROM_UNDERLAY}\nexit\n!");
    let _ = writeln!(out, "route-map {UNDERLAY_OUT} permit 20\nexit\n!");
    for family in families {
        let ipv4 = *family == "ipv4";
        let Some(allowed) = limits.allowed_in(ipv4) else {
            continue;
        };
        let map = host_in_map(limits, family);
        let shown = if ipv4 { "IPv4" } else { "IPv6" };
        if allowed.is_empty() {
            let _ = writeln!(out, "! allowedPrefixes has no {shown} network: the host's {shown} routes are refused");
            let _ = writeln!(out, "route-map {map} deny 10\nexit\n!");
            continue;
        }
        let _ = writeln!(
            out,
            "! allowedPrefixes: an {shown} route from the host is accepted only inside one of these networks"
        );
        let list = format!("{HOST_ALLOWED}-{family}");
        let keyword = if ipv4 { "ip" } else { "ipv6" };
        for (i, net) in allowed.iter().enumerate() {
            let seq = 5 * (i + 1);
            let _ = write!(out, "{keyword} prefix-list {list} seq {seq} permit {net}");
            // Longer prefixes inside the network match too; a full-length one has none (FRR accepts `le` equal
            // to the length, but writing it would say nothing).
            if net.prefix_len() < net.max_prefix_len() {
                let _ = write!(out, " le {}", net.max_prefix_len());
            }
            out.push('\n');
        }
        let _ = writeln!(out, "!\nroute-map {map} permit 10\n match {keyword} address prefix-list {list}\nexit\n!");
    }
}

/// An underlay neighbor's split-horizon lines in an address family: tagged on the way in, the tag refused on
/// the way out.
///
/// The hook for route reflection (issue 13): a route-reflector client keeps the inbound tag (its routes are not
/// sent to the other underlay neighbors) but gets no outbound map, so that reflection to clients stays. This is
/// the one place that decides which underlay neighbors split horizon applies to.
pub(crate) fn underlay_neighbor_af(out: &mut String, n: &Neighbor, rr_client: bool) {
    let a = n.peer_name();
    let _ = writeln!(out, "  neighbor {a} route-map {UNDERLAY_IN} in");
    // A route-reflector client is reflected to on purpose (routeReflector): it gets the fabric's routes.
    if !rr_client {
        let _ = writeln!(out, "  neighbor {a} route-map {UNDERLAY_OUT} out");
    }
}

/// The host session's inbound lines in the address family of `host_route` (the host's address): `maxPrefixes`
/// and the inbound route map.
///
/// `maximum-prefix` counts the routes the inbound route map accepts, without FRR's `force` (which would also
/// count the routes `allowedPrefixes` refuses). In FRR 8.4 (Debian 12) and 9.1 (the router image) `force`
/// cannot be relied on: it needs `soft-reconfiguration inbound`, whose Adj-RIB-In then holds every refused
/// route, and FRR checks the limit only when it accepts a route, so a flood of refused routes is never caught
/// and grows that memory without bound; and its count of refused routes is wrong (bgpd's
/// `bgp_filtered_routes_count` never resets its flag before FRR 10.5, so after the first refused prefix every
/// later one counts, accepted ones twice), closing hosts that announce fewer routes than the limit. Refused
/// routes are dropped on arrival and cost nothing, so counting the accepted ones is what protects the router.
pub(crate) fn host_neighbor_af(out: &mut String, host_route: &IpNet, limits: &HostLimits) {
    let a = host_route.addr();
    let family = match host_route {
        IpNet::V4(_) => "ipv4",
        IpNet::V6(_) => "ipv6",
    };
    if let Some(max) = limits.max_prefixes {
        let _ = writeln!(out, "  neighbor {a} maximum-prefix {max} restart {}", limits.max_prefixes_restart_minutes);
    }
    let _ = writeln!(out, "  neighbor {a} route-map {} in", host_in_map(limits, family));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(allowed: Option<&[&str]>, max: Option<u32>) -> HostLimits {
        HostLimits {
            allowed_prefixes: allowed.map(|l| l.iter().map(|s| s.parse().unwrap()).collect()),
            max_prefixes: max,
            ..HostLimits::default()
        }
    }

    #[test]
    fn split_horizon_is_written_without_limits() {
        let mut out = String::new();
        policies(&mut out, 4_200_000_001, &HostLimits::default(), &["ipv4", "ipv6"]);
        assert!(out.contains("bgp large-community-list standard openpe-from-underlay seq 5 permit 4200000001:4242:1\n"));
        assert!(out.contains(" set large-community 4200000001:4242:1 additive\n"));
        assert!(!out.contains("prefix-list"), "{out}");
        let mut af = String::new();
        host_neighbor_af(&mut af, &"192.169.10.2/32".parse().unwrap(), &limits(None, None));
        assert_eq!(af, "  neighbor 192.169.10.2 route-map allowall in\n");
    }

    #[test]
    fn allowed_prefixes_per_family() {
        let l = limits(Some(&["172.31.0.0/16", "10.9.9.9/32"]), Some(100));
        let mut out = String::new();
        policies(&mut out, 64514, &l, &["ipv4", "ipv6"]);
        assert!(out.contains("ip prefix-list openpe-host-allowed-ipv4 seq 5 permit 172.31.0.0/16 le 32\n"), "{out}");
        assert!(out.contains("ip prefix-list openpe-host-allowed-ipv4 seq 10 permit 10.9.9.9/32\n"), "{out}");
        assert!(out.contains(
            "route-map openpe-host-in-ipv4 permit 10\n match ip address prefix-list openpe-host-allowed-ipv4\n"
        ));
        // No IPv6 entry: the host's IPv6 routes are refused.
        assert!(out.contains("route-map openpe-host-in-ipv6 deny 10\nexit\n"), "{out}");
        let mut af = String::new();
        host_neighbor_af(&mut af, &"2001:db8:10::2/128".parse().unwrap(), &l);
        assert_eq!(
            af,
            "  neighbor 2001:db8:10::2 maximum-prefix 100 restart 5\n  neighbor 2001:db8:10::2 route-map openpe-host-in-ipv6 in\n"
        );
    }
}
