//! Routing safety end to end (docs/routing-safety.md), with real FRR ToRs, the router's FRR and openpe-sidecar,
//! and BIRD 2 as the host's BGP speaker, each in a test namespace:
//! - split horizon: two ToRs on two underlay NICs, neither ever receiving the other's prefixes from the node,
//!   while the host learns both and both learn the host's;
//! - `allowedPrefixes`: of a prefix inside, one outside and a default route, only the first reaches the ToR;
//! - `maxPrefixes`: a host at the limit (plus routes `allowedPrefixes` refuses, which do not count) keeps its
//!   session; past it the session is closed, FRR and `openpe-sidecar status` saying why, and it comes back after
//!   `maxPrefixesRestartMinutes` once the host announces less;
//! - a bad limit is refused with code 7 naming the field, changing nothing.

#[path = "common/bgp.rs"]
mod bgp;
mod common;

use std::time::{Duration, Instant};

use bgp::*;
use common::*;
use serde_json::{json, Value};

/// The ToRs: the lab's, and a second one on a second NIC (AS 64513, 192.168.12.0/24), each advertising a prefix
/// of its own per family with an address inside it on its loopback. A one-second keepalive keeps waits short.
const TOR1: Tor = TOR;

const TOR2: Tor = Tor {
    asn: 64513,
    subnet4: "192.168.12",
    subnet6: "2001:db8:12",
    prefix4: "172.28.0.0/24",
    prefix6: "2001:db8:98::/64",
    loopback4: "172.28.0.1",
    loopback6: "2001:db8:98::1",
    ..TOR
};

/// A second underlay NIC `toswitch2` in the host namespace (192.168.12.3/24, 2001:db8:12::3/64), its peer
/// `tor-side` in a second ToR namespace.
fn add_second_nic(lab: &Lab) -> Ns {
    let tor2 = Ns::new("t2");
    lab.host.batch(&format!(
        "link add toswitch2 type veth peer name tor-side netns {}\nlink set toswitch2 up\n\
         addr add 192.168.12.3/24 dev toswitch2\naddr add 2001:db8:12::3/64 dev toswitch2 nodad\n",
        tor2.name
    ));
    tor2.batch("link set tor-side up\naddr add 192.168.12.2/24 dev tor-side\n");
    tor2
}

/// The router's FRR (bgpd logging to a file) starts empty: the sidecar gives it its configuration.
fn start_router(lab: &Lab) -> (Frr, Sidecar) {
    bgp::start_router(lab, FrrOptions { bgpd_log: true, ..FrrOptions::default() }, &[])
}

/// BIRD as the host's speaker (AS 64515), IPv4 and, with `v6`, IPv6 sessions to the router's addresses,
/// announcing the static routes `routes4` and `routes6` and installing what it learns in the kernel.
fn host_bird_config(routes4: &[&str], routes6: &[&str], v6: bool) -> String {
    HostBird { routes4, routes6: v6.then_some(routes6), kernel: true, options: "error wait time 1, 2;", ..HOST_BIRD }
        .config()
}

fn has(list: &[String], want: &str) -> bool {
    list.iter().any(|x| x == want)
}

/// What every party sees, for a failed wait.
fn context(router: &Frr, tors: &[&Frr], sidecar: &Sidecar, bird: &Bird) -> String {
    let mut s = format!(
        "router status: {}\nrouter running config:\n{}\nrouter ipv4 table:\n{}\nsidecar log:\n{}\nbird:\n{}\n",
        sidecar_status_text(router),
        router.vtysh("show running-config"),
        router.vtysh("show bgp ipv4 unicast"),
        sidecar.log(),
        bird.birdc("show protocols all")
    );
    for t in tors {
        s += &format!("tor {}:\n{}\n{}\n", t.name, t.vtysh("show bgp summary"), t.vtysh("show bgp ipv4 unicast"));
    }
    s
}

/// Split horizon holds at `tor` (it has none of `other`'s prefixes), checked on every poll of a wait.
fn no_leak(tor: &Frr, other: &Tor, name: &str) -> Result<(), String> {
    let p4 = tor.bgp_prefixes("ipv4")?;
    let p6 = tor.bgp_prefixes("ipv6")?;
    for leaked in [other.prefix4, other.prefix6] {
        if has(&p4, leaked) || has(&p6, leaked) {
            panic!("split horizon broken: {name} received {leaked} from the node (it has {p4:?} {p6:?})");
        }
    }
    Ok(())
}

#[test]
#[ignore = "needs root"]
fn split_horizon_between_two_tors() {
    let lab = Lab::new("ss");
    let tor2_ns = add_second_nic(&lab);
    let conf = lab.conf(
        "1.0.0",
        json!({"underlay": {"nics": ["toswitch", "toswitch2"], "neighbors": [
            {"asn": TOR1.asn, "address": "192.168.11.2"}, {"asn": TOR2.asn, "address": "192.168.12.2"}]}}),
    );
    let tor1 = TOR1.start(&lab.tor);
    let tor2 = TOR2.start(&tor2_ns);
    lab.add(&conf);
    let (router, sidecar) = start_router(&lab);
    lab.host.ip("addr add 172.31.0.1/32 dev lo");
    let bird = Bird::start(&lab.host, &host_bird_config(&["172.31.0.0/24"], &["2001:db8:88::/64"], true));
    let ctx = || context(&router, &[&tor1, &tor2], &sidecar, &bird);

    // Every poll of every wait also checks that neither ToR ever holds the other's prefixes.
    let leak_free = || no_leak(&tor1, &TOR2, "ToR 1").and(no_leak(&tor2, &TOR1, "ToR 2"));
    let peers = ["192.168.11.2", "192.168.12.2", "192.169.10.2", "2001:db8:10::2"];
    wait_for("every session Established", || leak_free().and(reported_established(&router, &peers)), ctx);
    let converged = || -> Result<(), String> {
        leak_free()?;
        // The host hears the whole fabric: both ToRs' prefixes in its kernel, both families.
        for p in [TOR1.prefix4, TOR2.prefix4, TOR1.prefix6, TOR2.prefix6] {
            if !kernel_route(&lab.host, p)? {
                return Err(format!("{p} is not in the host's kernel table"));
            }
        }
        // Both ToRs hear the host's prefixes and its address (the positive control of the leak check: the node
        // does advertise to them).
        for (tor, name) in [(&tor1, "ToR 1"), (&tor2, "ToR 2")] {
            let p4 = tor.bgp_prefixes("ipv4")?;
            let p6 = tor.bgp_prefixes("ipv6")?;
            for want in ["172.31.0.0/24", "192.169.10.2/32"] {
                if !has(&p4, want) {
                    return Err(format!("{want} is not at {name} (it has {p4:?})"));
                }
            }
            for want in ["2001:db8:88::/64", "2001:db8:10::2/128"] {
                if !has(&p6, want) {
                    return Err(format!("{want} is not at {name} (it has {p6:?})"));
                }
            }
        }
        Ok(())
    };
    wait_for("routes from both ToRs at the host, the host's at both ToRs", converged, ctx);
    // The router holds both ToRs' prefixes (it could leak them) and has tagged them as learned from the underlay.
    let r = router.json(&format!("show bgp ipv4 unicast {} json", TOR2.prefix4));
    let tags: Vec<&str> = r["paths"]
        .as_array()
        .unwrap_or_else(|| panic!("the router has no path for {}: {r}", TOR2.prefix4))
        .iter()
        .filter_map(|p| p["largeCommunity"]["string"].as_str())
        .collect();
    assert_eq!(tags, ["64514:4242:1"], "{r}");
    // The host hears the fabric's routes with the tag (FRR sends large communities to eBGP peers).
    let at_host = bird.birdc(&format!("show route {} all", TOR2.prefix4));
    assert!(at_host.contains("BGP.large_community: (64514, 4242, 1)"), "{at_host}");
    // The host reaches both ToRs through the router.
    lab.host.exec(&format!("ping -c 1 -W 5 {}", TOR1.loopback4));
    lab.host.exec(&format!("ping -c 1 -W 5 {}", TOR2.loopback4));
    lab.host.exec(&format!("ping -6 -c 1 -W 5 {}", TOR2.loopback6));
    // Keep watching a while after convergence: updates may still be in flight.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        leak_free().unwrap();
        std::thread::sleep(Duration::from_millis(200));
    }
    // The ToRs' own view of what the node sent them: exactly the host's routes and address.
    let sent = |tor: &Frr, node: &str| -> Vec<String> {
        let v = tor.json(&format!("show bgp ipv4 unicast neighbors {node} routes json"));
        let mut p: Vec<String> =
            v["routes"].as_object().unwrap_or_else(|| panic!("no routes in {v}")).keys().cloned().collect();
        p.sort();
        p
    };
    assert_eq!(sent(&tor1, "192.168.11.3"), ["172.31.0.0/24", "192.169.10.2/32"]);
    assert_eq!(sent(&tor2, "192.168.12.3"), ["172.31.0.0/24", "192.169.10.2/32"]);
    assert_eq!(reload_pending(&router).unwrap(), Vec::<String>::new(), "FRR's view differs from the render");
    assert!(sidecar.running(), "the sidecar exited: {}", sidecar.log());
    lab.del(&conf);
}

/// An IPv4-only host session with `limits` merged into `hostsession`.
fn ipv4_conf(lab: &Lab, limits: Value) -> Value {
    let mut hs = json!({"localcidr": {"ipv4": "192.169.10.0/24", "ipv6": null}});
    merge(&mut hs, limits);
    lab.conf("1.0.0", json!({"l3passthrough": {"hostsession": hs}}))
}

#[test]
#[ignore = "needs root"]
fn allowed_prefixes_filter_what_reaches_the_tor() {
    let lab = Lab::new("sa");
    let conf = lab.conf(
        "1.0.0",
        json!({"l3passthrough": {"hostsession": {"allowedPrefixes": ["172.31.0.0/16", "2001:db8:88::/48"]}}}),
    );
    let tor = TOR1.start(&lab.tor);
    lab.add(&conf);
    let (router, sidecar) = start_router(&lab);
    // Per family: one prefix inside allowedPrefixes, one outside, and a default route.
    let announced4 = ["172.31.5.0/24", "10.77.0.0/24", "0.0.0.0/0"];
    let announced6 = ["2001:db8:88:5::/64", "2001:db8:77::/64", "::/0"];
    let bird = Bird::start(&lab.host, &host_bird_config(&announced4, &announced6, true));
    let ctx = || context(&router, &[&tor], &sidecar, &bird);
    let peers = ["192.168.11.2", "192.169.10.2", "2001:db8:10::2"];
    wait_for("every session Established", || reported_established(&router, &peers), ctx);
    // The allowed prefixes and the host's own addresses (outside allowedPrefixes: they are the router's, always
    // advertised) reach the ToR.
    wait_for(
        "the allowed prefixes at the ToR",
        || {
            let p4 = tor.bgp_prefixes("ipv4")?;
            let p6 = tor.bgp_prefixes("ipv6")?;
            let want = has(&p4, "172.31.5.0/24")
                && has(&p4, "192.169.10.2/32")
                && has(&p6, "2001:db8:88:5::/64")
                && has(&p6, "2001:db8:10::2/128");
            match want {
                true => Ok(()),
                false => Err(format!("the ToR has {p4:?} {p6:?}")),
            }
        },
        ctx,
    );
    // The host does announce all of them (BIRD exports them); the router accepts one per family.
    let exported = format!("{}{}", bird.birdc("show route export openpe4"), bird.birdc("show route export openpe6"));
    for p in announced4.iter().chain(&announced6) {
        assert!(exported.contains(p), "BIRD does not export {p}: {exported}");
    }
    for (peer, family) in [("192.169.10.2", "ipv4Unicast"), ("2001:db8:10::2", "ipv6Unicast")] {
        let n = router.neighbor(peer).unwrap();
        let counts = &n["addressFamilyInfo"][family];
        assert_eq!(counts["acceptedPrefixCounter"], 1, "{peer}: {counts}");
    }
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(
        sorted(router.bgp_prefixes("ipv4").unwrap()),
        ["172.30.0.0/24", "172.31.5.0/24", "192.169.10.2/32"],
        "the router's IPv4 table"
    );
    assert_eq!(
        sorted(tor.bgp_prefixes("ipv4").unwrap()),
        ["172.30.0.0/24", "172.31.5.0/24", "192.169.10.2/32"],
        "the ToR's IPv4 table"
    );
    assert_eq!(
        sorted(tor.bgp_prefixes("ipv6").unwrap()),
        ["2001:db8:10::2/128", "2001:db8:88:5::/64", "2001:db8:99::/64"],
        "the ToR's IPv6 table"
    );
    assert_eq!(reload_pending(&router).unwrap(), Vec::<String>::new(), "FRR's view differs from the render");
    lab.del(&conf);
}

#[test]
#[ignore = "needs root"]
fn max_prefixes_closes_the_session_and_restarts_it() {
    let lab = Lab::new("sm");
    let conf = ipv4_conf(
        &lab,
        json!({"allowedPrefixes": ["172.31.0.0/16"], "maxPrefixes": 3, "maxPrefixesRestartMinutes": 1}),
    );
    let tor = TOR1.start(&lab.tor);
    lab.add(&conf);
    let (router, sidecar) = start_router(&lab);
    // At the limit: three accepted routes, and two that allowedPrefixes refuses (dropped on arrival, not counted;
    // one sorts before the accepted ones, which FRR's `force` would have counted wrongly). The session stays up.
    let at_limit = ["10.77.0.0/24", "172.31.0.0/24", "172.31.1.0/24", "172.31.2.0/24", "192.0.2.0/24"];
    let bird = Bird::start(&lab.host, &host_bird_config(&at_limit, &[], false));
    let ctx = || format!("{}\nrouter bgpd log:\n{}", context(&router, &[&tor], &sidecar, &bird), router.bgpd_log());
    let up_at_limit = || -> Result<(), String> {
        reported_established(&router, &["192.168.11.2", "192.169.10.2"])?;
        let n = router.neighbor("192.169.10.2")?;
        // FRR writes prefixesConfigExceedMax only once the limit is exceeded.
        if n.get("prefixesConfigExceedMax").is_some() || n["bgpState"] != "Established" {
            panic!("closed at the limit, not past it: {n}");
        }
        let accepted = &n["addressFamilyInfo"]["ipv4Unicast"]["acceptedPrefixCounter"];
        if accepted != 3 {
            return Err(format!("{accepted} routes accepted from the host"));
        }
        let p = tor.bgp_prefixes("ipv4")?;
        match ["172.31.0.0/24", "172.31.1.0/24", "172.31.2.0/24"].iter().all(|x| has(&p, x)) {
            true => Ok(()),
            false => Err(format!("the ToR has {p:?}")),
        }
    };
    wait_for("the host session up at the limit", up_at_limit, ctx);
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        up_at_limit().unwrap();
        std::thread::sleep(Duration::from_millis(200));
    }
    // Past the limit: five routes inside allowedPrefixes. (FRR checks the count before it adds the route it is
    // accepting, so it holds one route past the limit and closes the session on the next: five, not four.)
    let too_many = ["172.31.0.0/24", "172.31.1.0/24", "172.31.2.0/24", "172.31.3.0/24", "172.31.4.0/24"];
    bird.reconfigure(&host_bird_config(&too_many, &[], false));
    wait_for(
        "the host session closed for too many prefixes",
        || {
            let n = router.neighbor("192.169.10.2")?;
            match n["prefixesConfigExceedMax"] == true {
                true => Ok(()),
                false => {
                    Err(format!("bgpState {}, lastNotificationReason {}", n["bgpState"], n["lastNotificationReason"]))
                }
            }
        },
        ctx,
    );
    // FRR's neighbor view says why (issue 16's openpe_bgp_max_prefix_exceeded can read prefixesConfigExceedMax):
    // Idle, a Cease NOTIFICATION with subcode 1 sent, and the restart timer running (at most one minute).
    let n = router.neighbor("192.169.10.2").unwrap();
    assert_eq!(n["bgpState"], "Idle", "{n}");
    assert_eq!(n["lastNotificationReason"], "Cease/Maximum Number of Prefixes Reached", "{n}");
    assert_eq!(n["lastErrorCodeSubcode"], "0601", "{n}");
    assert_eq!(n["addressFamilyInfo"]["ipv4Unicast"]["prefixAllowedMax"], 3, "{n}");
    let restart = n["restartInTimerMsec"].as_u64().unwrap_or_else(|| panic!("no restart timer running: {n}"));
    assert!(restart > 0 && restart <= 60_000, "{n}");
    let log = router.bgpd_log();
    assert!(log.contains("MAXPFXEXCEED"), "bgpd's log does not say why: {log}");
    // The host was told (a NOTIFICATION, Cease / maximum number of prefixes reached).
    let host_side = bird.birdc("show protocols all openpe4");
    assert!(host_side.contains("Maximum number of prefixes reached"), "{host_side}");
    // `openpe-sidecar status` says so in FRR's words: Idle, closed for its prefix count.
    assert_eq!(peer_state(&sidecar_status(&router).unwrap(), "192.169.10.2").unwrap(), "Idle (PfxCt)");
    let text = sidecar_status_text(&router);
    let line = text.lines().find(|l| l.starts_with("192.169.10.2 ")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains(" Idle (PfxCt) "), "{text}");
    // The host's routes are withdrawn from the ToR (its address stays: the router's); the refused ones never
    // got there.
    wait_for(
        "the host's routes withdrawn from the ToR",
        || {
            let p = tor.bgp_prefixes("ipv4")?;
            match p.iter().any(|x| x.starts_with("172.31.") || x.starts_with("10.77.")) || !has(&p, "192.169.10.2/32") {
                true => Err(format!("the ToR has {p:?}")),
                false => Ok(()),
            }
        },
        ctx,
    );

    // The host announces less; after maxPrefixesRestartMinutes (1) FRR opens the session again.
    bird.reconfigure(&host_bird_config(&["172.31.0.0/24"], &[], false));
    wait_for(
        "the host session back after the restart timer",
        || {
            reported_established(&router, &["192.169.10.2"])?;
            match tor.bgp_prefixes("ipv4")?.iter().any(|x| x == "172.31.0.0/24") {
                true => Ok(()),
                false => Err("172.31.0.0/24 is not at the ToR".into()),
            }
        },
        ctx,
    );
    assert_eq!(reload_pending(&router).unwrap(), Vec::<String>::new(), "FRR's view differs from the render");
    lab.del(&conf);
}

#[test]
#[ignore = "needs root"]
fn bad_limits_are_refused_naming_the_field_and_change_nothing() {
    let lab = Lab::new("sb");
    let before = lab.snapshot();
    let cases = [
        (json!({"allowedPrefixes": ["172.31.0.0/16", "10.1.2.3/16"]}), "l3passthrough.hostsession.allowedPrefixes[1]:"),
        (json!({"allowedPrefixes": ["2001:db8::/32"]}), "l3passthrough.hostsession.allowedPrefixes[0]:"),
        (json!({"maxPrefixes": 0}), "l3passthrough.hostsession.maxPrefixes:"),
        (
            json!({"maxPrefixes": 5, "maxPrefixesRestartMinutes": 0}),
            "l3passthrough.hostsession.maxPrefixesRestartMinutes:",
        ),
        (json!({"maxPrefixesRestartMinutes": 2}), "l3passthrough.hostsession.maxPrefixesRestartMinutes:"),
    ];
    for (limits, field) in cases {
        let conf = ipv4_conf(&lab, limits);
        let v = lab.run("ADD", &conf, &[]).err(7, field);
        assert!(v["msg"].as_str().unwrap().starts_with(field), "{v}");
        assert_eq!(lab.snapshot(), before, "a refused ADD changed something");
        assert!(lab.state_files().is_empty(), "{:?}", lab.state_files());
    }
}
