//! The sidecar's own delta: from the BGP configuration it applied last to the one wanted now, as one FRR
//! configuration transaction (what `vtysh -f` makes of a file), when the change is one it can express safely: nothing → an
//! attachment, an attachment → nothing, neighbors added or removed. Anything else is left to `frr-reload.py`.
//! And the check after every apply: FRR's running BGP configuration against what was meant.
//!
//! Both work on FRR's configuration shape: a line's indentation says which context it belongs to (`router bgp`
//! > `address-family`), and `!`, `exit`, `exit-address-family` and `end` carry nothing.

use std::collections::BTreeSet;

/// A route-map created and deleted in every transaction that adds peers: creating a route-map starts bgpd's
/// route-map update timer (`bgp route-map delay-timer 1`), and while it runs bgpd does not hold the new peers
/// for a second after the transaction (docs/sidecar.md). The deletion in the same transaction leaves nothing.
pub(crate) const START_ROUTE_MAP: &str = "openpe-sidecar-start";

#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    line: String,
    children: Vec<Node>,
}

fn carries_nothing(trimmed: &str) -> bool {
    trimmed.is_empty()
        || trimmed.starts_with('!')
        || trimmed.starts_with('#')
        || matches!(trimmed, "exit" | "exit-address-family" | "exit-vrf" | "end")
}

/// The configuration as a tree by indentation.
fn parse(text: &str) -> Vec<Node> {
    // The path of open contexts: (indentation, index in its parent's children).
    let mut root: Vec<Node> = Vec::new();
    let mut open: Vec<(usize, usize)> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if carries_nothing(trimmed) {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        while open.last().is_some_and(|(i, _)| *i >= indent) {
            open.pop();
        }
        let mut siblings = &mut root;
        for (_, idx) in &open {
            siblings = &mut siblings[*idx].children;
        }
        siblings.push(Node { line: trimmed.to_string(), children: Vec::new() });
        open.push((indent, siblings.len() - 1));
    }
    root
}

fn is_router_bgp(n: &Node) -> bool {
    n.line.starts_with("router bgp ")
}

/// The neighbor (address, interface or peer-group name) a line of `router bgp` or of an address family is about.
fn neighbor_of(line: &str) -> Option<&str> {
    let mut words = line.split(' ');
    match (words.next(), words.next()) {
        (Some("neighbor"), Some(who)) => Some(who),
        _ => None,
    }
}

fn is_connect_timer(line: &str) -> bool {
    neighbor_of(line).is_some() && line.split(' ').skip(2).take(2).eq(["timers", "connect"])
}

/// Per neighbor, its lines with their address family (empty for the `router bgp` level).
type NeighborLines = BTreeSet<(String, String)>;

/// What a `router bgp` block says apart from its neighbors, and per neighbor what it says of it.
struct Router<'a> {
    line: &'a str,
    rest: BTreeSet<(String, String)>,
    neighbors: std::collections::BTreeMap<String, NeighborLines>,
}

fn router(n: &Node) -> Option<Router<'_>> {
    let mut r = Router { line: &n.line, rest: BTreeSet::new(), neighbors: Default::default() };
    for c in &n.children {
        let mut put = |context: &str, line: &str| match neighbor_of(line) {
            Some(who) => {
                r.neighbors.entry(who.to_string()).or_default().insert((context.to_string(), line.to_string()));
            }
            None => {
                r.rest.insert((context.to_string(), line.to_string()));
            }
        };
        if c.children.is_empty() {
            put("", &c.line);
        } else if c.line.starts_with("address-family ") {
            // The family itself is part of the rest: its set must not change for a neighbor-only delta.
            put("", &c.line);
            for g in &c.children {
                if !g.children.is_empty() {
                    return None;
                }
                put(&c.line, &g.line);
            }
        } else {
            return None;
        }
    }
    Some(r)
}

fn push_node(out: &mut String, n: &Node, depth: usize) {
    out.push_str(&" ".repeat(depth));
    out.push_str(&n.line);
    out.push('\n');
    for c in &n.children {
        push_node(out, c, depth + 1);
    }
    // A route-map entry opens a context even when it has no lines.
    if !n.children.is_empty() || n.line.starts_with("route-map ") {
        out.push_str(&" ".repeat(depth));
        out.push_str(if n.line.starts_with("address-family ") { "exit-address-family\n" } else { "exit\n" });
    }
}

/// The lines of `rb` about the neighbors `include` selects (all when `include` says so for every line), in the
/// order safe for a transaction: each neighbor's `router bgp` lines, then its address families (activation,
/// route-maps), and only then `timers connect`, which makes FRR start the peer at once.
fn push_router(out: &mut String, rb: &Node, include: &dyn Fn(&str) -> bool) {
    let mut timers = Vec::new();
    for c in &rb.children {
        if c.children.is_empty() {
            if !include(&c.line) {
                continue;
            }
            if is_connect_timer(&c.line) {
                timers.push(c.line.clone());
            } else {
                out.push(' ');
                out.push_str(&c.line);
                out.push('\n');
            }
        } else {
            let kept: Vec<Node> = c.children.iter().filter(|g| include(&g.line)).cloned().collect();
            if !kept.is_empty() {
                push_node(out, &Node { line: c.line.clone(), children: kept }, 1);
            }
        }
    }
    for t in timers {
        out.push(' ');
        out.push_str(&t);
        out.push('\n');
    }
}

fn start_route_map(out: &mut String) {
    out.push_str(&format!("route-map {START_ROUTE_MAP} permit 1\nexit\nno route-map {START_ROUTE_MAP}\n"));
}

/// The transaction that takes FRR from `old` to `new` (the sidecar's BGP renderings), or None when the change
/// is not one of those it expresses (then `frr-reload.py` computes it). Never empty when Some.
pub fn plan(old: &str, new: &str) -> Option<String> {
    let (old, new) = (parse(old), parse(new));
    let rb_old = old.iter().find(|n| is_router_bgp(n));
    let rb_new = new.iter().find(|n| is_router_bgp(n));
    if old.iter().filter(|n| is_router_bgp(n)).count() > 1 || new.iter().filter(|n| is_router_bgp(n)).count() > 1 {
        return None;
    }
    let mut out = String::new();
    match (rb_old, rb_new) {
        (None, Some(rb)) => {
            // Nothing → an attachment: what was there stays, the rest is added.
            if !old.iter().all(|n| new.contains(n)) {
                return None;
            }
            for n in new.iter().filter(|n| !is_router_bgp(n) && !old.contains(n)) {
                push_node(&mut out, n, 0);
            }
            start_route_map(&mut out);
            out.push_str(&rb.line);
            out.push('\n');
            push_router(&mut out, rb, &|_| true);
            out.push_str("exit\n");
        }
        (Some(rb), None) => {
            // An attachment → nothing.
            if !new.iter().all(|n| old.contains(n)) {
                return None;
            }
            out.push_str(&format!("no {}\n", rb.line));
            for n in old.iter().filter(|n| !is_router_bgp(n) && !new.contains(n)) {
                out.push_str(&format!("no {}\n", n.line));
            }
        }
        (Some(a), Some(b)) => {
            // The same router, neighbors added or removed, nothing else changed.
            let others = |v: &[Node]| v.iter().filter(|n| !is_router_bgp(n)).cloned().collect::<Vec<_>>();
            let (ra, rb_) = (router(a)?, router(b)?);
            if others(&old) != others(&new) || ra.line != rb_.line || ra.rest != rb_.rest {
                return None;
            }
            let removed: Vec<&String> = ra.neighbors.keys().filter(|k| !rb_.neighbors.contains_key(*k)).collect();
            let added: BTreeSet<&String> = rb_.neighbors.keys().filter(|k| !ra.neighbors.contains_key(*k)).collect();
            if ra.neighbors.iter().any(|(k, v)| rb_.neighbors.get(k).is_some_and(|w| w != v)) {
                return None;
            }
            if removed.is_empty() && added.is_empty() {
                return None;
            }
            if !added.is_empty() {
                start_route_map(&mut out);
            }
            out.push_str(&b.line);
            out.push('\n');
            for r in removed {
                out.push_str(&format!(" no neighbor {r}\n"));
            }
            push_router(&mut out, b, &|line| neighbor_of(line).is_some_and(|w| added.contains(&w.to_string())));
            out.push_str("exit\n");
        }
        (None, None) => {
            // Neither has BGP: top-level lines only (nothing the sidecar renders); frr-reload.py handles it.
            return None;
        }
    }
    Some(out)
}

/// The contexts of FRR's configuration that are BGP's: `router bgp`, route-maps, and bgpd's global `bgp ...`
/// lines. The sidecar owns them; zebra's and other daemons' lines (`--frr-extra` may hold some) are left to
/// frr-reload.py, which knows FRR's normalisation of them.
fn bgp_lines(text: &str) -> BTreeSet<String> {
    fn walk(n: &Node, prefix: &str, out: &mut BTreeSet<String>) {
        let q = if prefix.is_empty() { n.line.clone() } else { format!("{prefix} > {}", n.line) };
        out.insert(q.clone());
        for c in &n.children {
            walk(c, &q, out);
        }
    }
    let mut out = BTreeSet::new();
    for n in parse(text) {
        if is_router_bgp(&n) || n.line.starts_with("route-map ") || n.line.starts_with("bgp ") {
            walk(&n, "", &mut out);
        }
    }
    out
}

/// The transaction that adds to FRR what `meant` says and `running` lacks in its BGP contexts (each missing
/// line inside its contexts, in the order of [`plan`]), or None when nothing is missing. Lines that FRR
/// already holds are not repeated, so nothing that runs is touched. This repairs what frr-reload.py leaves
/// out: after bgpd alone restarted, vtysh's merged running configuration still shows zebra's copy of a
/// route-map, so frr-reload.py does not give it to bgpd again.
pub(crate) fn repair(meant: &str, running: &str) -> Option<String> {
    let have = bgp_lines(running);
    fn keep(n: &Node, prefix: &str, have: &BTreeSet<String>) -> Option<Node> {
        let q = if prefix.is_empty() { n.line.clone() } else { format!("{prefix} > {}", n.line) };
        let children: Vec<Node> = n.children.iter().filter_map(|c| keep(c, &q, have)).collect();
        (!have.contains(&q) || !children.is_empty()).then(|| Node { line: n.line.clone(), children })
    }
    let owned = |n: &Node| is_router_bgp(n) || n.line.starts_with("route-map ") || n.line.starts_with("bgp ");
    let missing: Vec<Node> = parse(meant).iter().filter(|n| owned(n)).filter_map(|n| keep(n, "", &have)).collect();
    if missing.is_empty() {
        return None;
    }
    let mut out = String::new();
    for n in missing.iter().filter(|n| !is_router_bgp(n)) {
        push_node(&mut out, n, 0);
    }
    for rb in missing.iter().filter(|n| is_router_bgp(n)) {
        start_route_map(&mut out);
        out.push_str(&rb.line);
        out.push('\n');
        push_router(&mut out, rb, &|_| true);
        out.push_str("exit\n");
    }
    Some(out)
}

/// How FRR's running configuration differs from what was meant, in its BGP contexts: `- line` meant but
/// missing, `+ line` running but not meant (each with its enclosing contexts). Empty when they agree.
pub fn differences(meant: &str, running: &str) -> Vec<String> {
    let (m, r) = (bgp_lines(meant), bgp_lines(running));
    let mut out: Vec<String> = m.difference(&r).map(|l| format!("- {l}")).collect();
    out.extend(r.difference(&m).map(|l| format!("+ {l}")));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = "\
! comment
!
bgp route-map delay-timer 1
!
route-map allowall permit 1
exit
!
router bgp 64514
 bgp router-id 10.0.0.4
 neighbor 192.168.11.2 remote-as 64512
 neighbor 192.169.10.5 remote-as 64515
 neighbor 192.169.10.5 timers connect 1
 !
 address-family ipv4 unicast
  network 192.169.10.5/32
  neighbor 192.168.11.2 activate
  neighbor 192.169.10.5 activate
  neighbor 192.169.10.5 route-map allowall in
 exit-address-family
exit
!
";

    fn with_second_underlay() -> String {
        ONE.replace(
            " neighbor 192.169.10.5 remote-as",
            " neighbor 192.168.12.2 remote-as 64513\n neighbor 192.168.12.2 timers connect 2\n neighbor 192.169.10.5 remote-as",
        )
        .replace("  neighbor 192.169.10.5 activate", "  neighbor 192.168.12.2 activate\n  neighbor 192.169.10.5 activate")
    }

    #[test]
    fn nothing_to_attachment_activates_before_connect_timers() {
        let t = plan("! nothing\n", ONE).unwrap();
        assert_eq!(
            t,
            format!(
                "bgp route-map delay-timer 1\nroute-map allowall permit 1\nexit\nroute-map {START_ROUTE_MAP} permit 1\n\
                 exit\nno route-map {START_ROUTE_MAP}\nrouter bgp 64514\n bgp router-id 10.0.0.4\n neighbor \
                 192.168.11.2 remote-as 64512\n neighbor 192.169.10.5 remote-as 64515\n address-family ipv4 \
                 unicast\n  network 192.169.10.5/32\n  neighbor 192.168.11.2 activate\n  neighbor 192.169.10.5 \
                 activate\n  neighbor 192.169.10.5 route-map allowall in\n exit-address-family\n neighbor \
                 192.169.10.5 timers connect 1\nexit\n"
            )
        );
        // The transaction says everything the rendering says, and the start route-map (removed again).
        assert_eq!(differences(ONE, &t), vec![format!("+ route-map {START_ROUTE_MAP} permit 1")]);
    }

    #[test]
    fn attachment_to_nothing() {
        assert_eq!(
            plan(ONE, "! nothing\n").unwrap(),
            "no router bgp 64514\nno bgp route-map delay-timer 1\nno route-map allowall permit 1\n"
        );
    }

    #[test]
    fn neighbor_added_and_removed() {
        let two = with_second_underlay();
        let t = plan(ONE, &two).unwrap();
        assert_eq!(
            t,
            format!(
                "route-map {START_ROUTE_MAP} permit 1\nexit\nno route-map {START_ROUTE_MAP}\nrouter bgp 64514\n \
                 neighbor 192.168.12.2 remote-as 64513\n address-family ipv4 unicast\n  neighbor 192.168.12.2 \
                 activate\n exit-address-family\n neighbor 192.168.12.2 timers connect 2\nexit\n"
            )
        );
        assert_eq!(plan(&two, ONE).unwrap(), "router bgp 64514\n no neighbor 192.168.12.2\nexit\n");
    }

    #[test]
    fn anything_else_is_left_to_frr_reload() {
        // A neighbor's lines changed, a global changed, another ASN, no change at all.
        assert_eq!(plan(ONE, &ONE.replace("remote-as 64512", "remote-as 64513")), None);
        assert_eq!(plan(ONE, &ONE.replace("10.0.0.4", "10.0.0.5")), None);
        assert_eq!(plan(ONE, &ONE.replace("router bgp 64514", "router bgp 64515")), None);
        assert_eq!(plan(ONE, &ONE.replace("network 192.169.10.5/32", "network 192.169.10.6/32")), None);
        assert_eq!(plan(ONE, ONE), None);
        assert_eq!(plan("! a\n", "! b\n"), None);
    }

    #[test]
    fn differences_normalise_layout_not_content() {
        let running = "Building configuration...\n\nCurrent configuration:\n!\nfrr version 8.4.4\nfrr defaults \
                       traditional\nhostname vm\nno ip forwarding\nbgp route-map delay-timer 1\nservice \
                       integrated-vtysh-config\n!\n";
        let running =
            format!("{running}{}", ONE.replace("! comment\n", "").replace("!\nbgp route-map delay-timer 1\n", ""));
        assert!(differences(ONE, &running).is_empty(), "{:?}", differences(ONE, &running));
        let missing = running.replace("  neighbor 192.169.10.5 route-map allowall in\n", "");
        assert_eq!(
            differences(ONE, &missing),
            vec!["- router bgp 64514 > address-family ipv4 unicast > neighbor 192.169.10.5 route-map allowall in"]
        );
        assert_eq!(repair(ONE, &running), None);
        assert_eq!(
            repair(ONE, &missing).unwrap(),
            format!(
                "route-map {START_ROUTE_MAP} permit 1\nexit\nno route-map {START_ROUTE_MAP}\nrouter bgp 64514\n \
                 address-family ipv4 unicast\n  neighbor 192.169.10.5 route-map allowall in\n exit-address-family\nexit\n"
            )
        );
        let no_map = running.replace("route-map allowall permit 1\nexit\n", "");
        assert_eq!(repair(ONE, &no_map).unwrap(), "route-map allowall permit 1\nexit\n");
        let extra = format!("{running}route-map {START_ROUTE_MAP} permit 1\nexit\n");
        assert_eq!(differences(ONE, &extra), vec![format!("+ route-map {START_ROUTE_MAP} permit 1")]);
    }
}
