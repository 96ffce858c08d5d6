//! The fabrics upstream serves (issue 13), end to end: real FRR ToRs in namespaces, the plugin's ADD, FRR and
//! openpe-sidecar in the router namespace, BIRD 2 as the host's speaker installing what it learns in the host's
//! kernel. Each test builds its own lab and its FRR instances (tests/common), all removed by guards even when it
//! fails.

#[path = "common/bgp.rs"]
mod bgp;
mod common;

use std::time::{Duration, Instant};

use bgp::*;
use common::*;
use serde_json::{json, Value};

/// The router's FRR starts empty (with `daemons` besides zebra and bgpd): the sidecar gives it its configuration.
fn start_router(lab: &Lab, daemons: &[&str], zebra_args: &str) -> (Frr, Sidecar) {
    bgp::start_router(lab, FrrOptions { daemons, zebra_args, ..FrrOptions::default() }, &[])
}

/// The lab's configuration with an IPv4-only host session and these underlay neighbors (and `underlay` merged).
fn conf(lab: &Lab, neighbors: Value, underlay: Value) -> Value {
    let mut u = json!({"neighbors": neighbors});
    merge(&mut u, underlay);
    lab.conf("1.0.0", json!({"underlay": u, "l3passthrough": {"hostsession": {"localcidr": {"ipv6": null}}}}))
}

/// What every party sees, for a failed wait.
fn context(lab: &Lab, router: &Frr, tor: &Frr, sidecar: &Sidecar) -> String {
    format!(
        "router running config:\n{}\nrouter summary:\n{}\ntor summary:\n{}\nrouter routes:\n{}\nhost routes:\n{}\n\
         tor routes:\n{}\nsidecar log:\n{}",
        router.vtysh("show running-config"),
        router.vtysh("show bgp summary"),
        tor.vtysh("show bgp summary"),
        sh(&format!("ip -n {n} route; ip -n {n} -6 route", n = lab.router.name)),
        sh(&format!("ip -n {} route", lab.host.name)),
        sh(&format!("ip -n {} route", lab.tor.name)),
        sidecar.log()
    )
}

/// The host reaches the ToR's loopback through the router, and the host's prefix and address are at the ToR.
fn fabric_reachable(lab: &Lab) -> Result<(), String> {
    if !kernel_route(&lab.host, "172.30.0.0/24")? {
        return Err("172.30.0.0/24 (the ToR's) is not in the host's kernel".into());
    }
    for want in ["172.31.0.0/24", "192.169.10.2"] {
        if !kernel_route(&lab.tor, want)? {
            return Err(format!("{want} (the host's) is not in the ToR's kernel"));
        }
    }
    match ping(&lab.host, "172.30.0.1") {
        true => Ok(()),
        false => Err("the host cannot ping the ToR's 172.30.0.1".into()),
    }
}

/// BGP unnumbered: the uplink has no IPv4 (nor global IPv6) address at all, the router and the ToR peer over
/// IPv6 link-local by interface, and IPv4 flows with IPv6 next hops.
#[test]
#[ignore = "needs root"]
fn unnumbered_tor_carries_ipv4_over_link_local() {
    let lab = Lab::new("fu");
    unnumbered_uplink(&lab);
    let tor = start_unnumbered_tor(&lab);
    let (router, sidecar) = start_router(&lab, &[], "");
    let c = conf(&lab, json!([{"type": "External", "interface": "toswitch"}]), json!({}));
    lab.add(&c);
    let _bird = HOST_BIRD_V4.start(&lab);
    let ctx = || context(&lab, &router, &tor, &sidecar);
    let addrs = sh(&format!("ip -n {} -j addr show dev toswitch", lab.router.name));
    let addrs: Value = serde_json::from_str(&addrs).unwrap();
    let info = addrs[0]["addr_info"].as_array().unwrap_or_else(|| panic!("not ip -j addr output: {addrs}"));
    assert!(info.iter().all(|a| a["family"] == "inet6"), "the uplink has IPv4 addresses: {addrs}");
    assert!(info.iter().all(|a| a["scope"] == "link"), "the uplink has global IPv6 addresses: {addrs}");
    wait_for("the unnumbered session Established", || router.established(&["toswitch"]), ctx);
    wait_for("the host reaching the ToR's IPv4 loopback", || fabric_reachable(&lab), ctx);
    lab.del(&c);
}

/// An IPv6-only ToR neighbor carrying IPv4: with the extended next hop capability the ToR's IPv4 prefix is
/// installed in the router (with an IPv6 next hop) and reached from the host, and the host's prefix reaches the
/// ToR.
#[test]
#[ignore = "needs root"]
fn ipv6_tor_carries_ipv4_with_extended_next_hop() {
    let lab = Lab::new("f6");
    lab.host.ip("addr del 192.168.11.3/24 dev toswitch");
    lab.tor.ip("addr del 192.168.11.2/24 dev tor-side");
    lab.tor.ip("addr add 2001:db8:11::2/64 dev tor-side nodad");
    let tor = start_ipv4_tor(
        &lab,
        "2001:db8:11::3",
        " neighbor 2001:db8:11::3 remote-as 64514\n neighbor 2001:db8:11::3 capability extended-nexthop\n \
         neighbor 2001:db8:11::3 timers 1 3\n",
        "",
        &[],
    );
    let (router, sidecar) = start_router(&lab, &[], "");
    let c = conf(&lab, json!([{"asn": 64512, "address": "2001:db8:11::2"}]), json!({}));
    lab.add(&c);
    let _bird = HOST_BIRD_V4.start(&lab);
    let ctx = || context(&lab, &router, &tor, &sidecar);
    wait_for("the IPv6 session Established", || router.established(&["2001:db8:11::2"]), ctx);
    wait_for(
        "172.30.0.0/24 in the router's kernel",
        || kernel_route(&lab.router, "172.30.0.0/24")?.then_some(()).ok_or("missing".to_string()),
        ctx,
    );
    wait_for("IPv4 both ways over the IPv6 session", || fabric_reachable(&lab), ctx);
    lab.del(&c);
}

/// A ToR connects into the router's listen range: the router never connects, the ToR's session is accepted
/// into the range's peer group.
#[test]
#[ignore = "needs root"]
fn tor_connects_into_the_listen_range() {
    let lab = Lab::new("fl");
    let tor = start_ipv4_tor(
        &lab,
        "192.168.11.3",
        " neighbor 192.168.11.3 remote-as 64514\n neighbor 192.168.11.3 timers 1 3\n \
         neighbor 192.168.11.3 timers connect 1\n",
        "",
        &[],
    );
    let (router, sidecar) = start_router(&lab, &[], "");
    let c = conf(&lab, json!([{"type": "External", "listenRange": "192.168.11.0/24"}]), json!({}));
    lab.add(&c);
    let _bird = HOST_BIRD_V4.start(&lab);
    let ctx = || context(&lab, &router, &tor, &sidecar);
    wait_for("the ToR's session Established", || tor.established(&["192.168.11.3"]), ctx);
    let n = router.neighbor("192.168.11.2").unwrap();
    let group = &n["addressFamilyInfo"]["ipv4Unicast"]["peerGroupMember"];
    assert_eq!(group, "range-192-168-11-0-24", "the ToR is not in the range's peer group: {n}");
    let running = router.vtysh("show running-config");
    assert!(!running.contains("neighbor 192.168.11.2"), "the ToR is configured, not accepted by range:\n{running}");
    wait_for("routes both ways", || fabric_reachable(&lab), ctx);
    lab.del(&c);
}

/// ebgp-multihop with TTL 2 to a spine's loopback two hops away (router -> ToR -> spine): the ToR's session
/// carries the route to the loopback, and the multihop session comes up over it.
#[test]
#[ignore = "needs root"]
fn ebgp_multihop_ttl_two_hops_away() {
    let lab = Lab::new("fm");
    let spine = Ns::new("fms");
    lab.tor.ip(&format!("link add tor-spine type veth peer name spine-tor netns {}", spine.name));
    lab.tor.batch("link set tor-spine up\naddr add 10.98.0.1/30 dev tor-spine\nroute add 10.99.0.1/32 via 10.98.0.2\n");
    spine.batch(
        "link set lo up\nlink set spine-tor up\naddr add 10.98.0.2/30 dev spine-tor\naddr add 10.99.0.1/32 dev lo\n\
         route add 192.168.11.0/24 via 10.98.0.1\n",
    );
    lab.tor.exec("sysctl -qw net.ipv4.ip_forward=1");
    let tor = start_ipv4_tor(
        &lab,
        "192.168.11.3",
        " neighbor 192.168.11.3 remote-as 64514\n neighbor 192.168.11.3 timers 1 3\n",
        "",
        &[],
    );
    tor.vtysh("configure\nrouter bgp 64512\naddress-family ipv4 unicast\nnetwork 10.99.0.1/32");
    let spine_frr = Frr::start(
        &spine,
        "spine",
        "router bgp 64600
 bgp router-id 10.99.0.1
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 neighbor 192.168.11.3 remote-as 64514
 neighbor 192.168.11.3 ebgp-multihop 2
 neighbor 192.168.11.3 update-source 10.99.0.1
 neighbor 192.168.11.3 timers 1 3
 address-family ipv4 unicast
  neighbor 192.168.11.3 activate
 exit-address-family
exit
",
    );
    let (router, sidecar) = start_router(&lab, &[], "");
    let c = conf(
        &lab,
        json!([{"asn": 64512, "address": "192.168.11.2"},
               {"asn": 64600, "address": "10.99.0.1", "properties": [{"type": "ebgpMultiHop", "ebgpMultiHop": {"ttl": 2}}]}]),
        json!({}),
    );
    lab.add(&c);
    let ctx = || format!("{}\nspine:\n{}", context(&lab, &router, &tor, &sidecar), spine_frr.vtysh("show bgp summary"));
    wait_for("the multihop session Established", || router.established(&["10.99.0.1"]), ctx);
    let n = router.neighbor("10.99.0.1").unwrap();
    assert_eq!(n["externalBgpNbrMaxHopsAway"], 2, "{n}");
    lab.del(&c);
}

/// BFD without bfdd: the sidecar refuses to apply, saying so, rather than let FRR drop the BFD settings.
#[test]
#[ignore = "needs root"]
fn bfd_without_bfdd_is_refused() {
    let lab = Lab::new("fn");
    let tor = start_ipv4_tor(&lab, "192.168.11.3", " neighbor 192.168.11.3 remote-as 64514\n", "", &[]);
    let (router, sidecar) = start_router(&lab, &[], "");
    let c = conf(&lab, json!([{"asn": 64512, "address": "192.168.11.2", "bfd": {}}]), json!({}));
    lab.add(&c);
    let ctx = || context(&lab, &router, &tor, &sidecar);
    wait_for(
        "the sidecar refusing BFD without bfdd",
        || match sidecar.log().contains("a neighbor has BFD but bfdd does not answer") {
            true => Ok(()),
            false => Err("no refusal in the sidecar's log".into()),
        },
        ctx,
    );
    let running = router.vtysh("show running-config");
    assert!(!running.contains("router bgp"), "the configuration was applied without bfdd:\n{running}");
    lab.del(&c);
}

/// The ToR's and the router's BFD both up (100 ms x 3); then packets between them are silently dropped (carrier
/// up): the session goes down on BFD, long before its 30 s hold time.
#[test]
#[ignore = "needs root"]
fn bfd_notices_a_silent_path_failure() {
    let lab = Lab::new("fb");
    let tor = start_ipv4_tor(
        &lab,
        "192.168.11.3",
        " neighbor 192.168.11.3 remote-as 64514\n neighbor 192.168.11.3 timers 10 30\n \
         neighbor 192.168.11.3 bfd profile fast\n",
        "",
        &["bfdd"],
    );
    tor.vtysh("configure\nbfd\nprofile fast\nreceive-interval 100\ntransmit-interval 100");
    let (router, sidecar) = start_router(&lab, &["bfdd"], "");
    let bfd = json!({"receiveInterval": 100, "transmitInterval": 100, "detectMultiplier": 3});
    let c = conf(
        &lab,
        json!([{"asn": 64512, "address": "192.168.11.2", "holdTimeSeconds": 30, "keepaliveTimeSeconds": 10, "bfd": bfd}]),
        json!({}),
    );
    lab.add(&c);
    let ctx = || format!("{}\nrouter bfd:\n{}", context(&lab, &router, &tor, &sidecar), router.vtysh("show bfd peers"));
    wait_for("the session Established", || router.established(&["192.168.11.2"]), ctx);
    let bfd_up = |f: &Frr, peer: &str| -> Result<(), String> {
        let v = f.json("show bfd peers json");
        let peers = v.as_array().ok_or_else(|| format!("show bfd peers json is not a list: {v}"))?;
        match peers.iter().find(|p| p["peer"] == peer) {
            Some(p) if p["status"] == "up" => Ok(()),
            Some(p) => Err(format!("BFD peer {peer} is {}", p["status"])),
            None => Err(format!("no BFD peer {peer}: {v}")),
        }
    };
    wait_for(
        "BFD up on both sides",
        || bfd_up(&router, "192.168.11.2").and_then(|()| bfd_up(&tor, "192.168.11.3")),
        ctx,
    );
    let n = router.json("show bfd peers json");
    let p = n.as_array().unwrap().iter().find(|p| p["peer"] == "192.168.11.2").unwrap().clone();
    assert_eq!((p["receive-interval"].as_u64(), p["transmit-interval"].as_u64()), (Some(100), Some(100)), "{p}");
    lab.tor.exec("iptables -I INPUT -i tor-side -j DROP && iptables -I OUTPUT -o tor-side -j DROP");
    let dropped = Instant::now();
    while router.established(&["192.168.11.2"]).is_ok() {
        assert!(dropped.elapsed() < Duration::from_secs(25), "the session outlived the drop: BFD did nothing");
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = dropped.elapsed();
    eprintln!("the session went down {:.0} ms after the drop", took.as_secs_f64() * 1000.0);
    let n = router.neighbor("192.168.11.2").unwrap();
    assert_eq!(n["lastNotificationReason"], "Cease/BFD Down", "the session did not go down on BFD: {n}");
    // BFD detects in 300 ms; the margin is for a loaded machine and vtysh's own polling, far below the 30 s hold.
    assert!(took < Duration::from_secs(2), "down after {took:?}: BFD's detection is 300 ms, the hold time 30 s");
    lab.del(&c);
}

/// FRR 8.4 sets the Restart State bit (R) in every OPEN it sends during the first restart time (120 s) after its
/// BGP instance is created, whether or not it restarted; a peer with R set is left out of a restarting speaker's
/// wait for End-of-RIB (RFC 4724 4.1, FRR's selection deferral and update-delay alike). A ToR of a real fabric
/// has been up for long; the lab's ToR must be as old before the router restarts, or the router rightly does not
/// wait for the ToR's routes.
const TOR_STARTUP_R_BIT: Duration = Duration::from_secs(122);

/// Graceful restart: negotiated in restart mode; the router's bgpd killed (SIGKILL) and started again without
/// configuration: meanwhile the ToR keeps the host's routes as stale and the host keeps pinging the fabric; the
/// sidecar notices the restart by itself and the sessions come back. The restarted router defers its selection
/// and its End-of-RIB to the host until the ToR's End-of-RIB too: an End-of-RIB without the fabric's routes
/// would make the host flush the routes it kept, and lose the fabric.
#[test]
#[ignore = "needs root"]
fn graceful_restart_survives_a_bgpd_kill() {
    let lab = Lab::new("fg");
    let tor_started = Instant::now();
    let tor = start_ipv4_tor(
        &lab,
        "192.168.11.3",
        " neighbor 192.168.11.3 remote-as 64514\n neighbor 192.168.11.3 timers 1 3\n \
         neighbor 192.168.11.3 timers connect 1\n",
        " bgp graceful-restart\n",
        &[],
    );
    let (mut router, sidecar) = start_router(&lab, &[], "-K 120");
    let c = conf(&lab, json!([{"asn": 64512, "address": "192.168.11.2"}]), json!({"gracefulRestart": {}}));
    lab.add(&c);
    // The host's speaker restarts gracefully too: it sends End-of-RIB, which the restarting router waits for from
    // every peer before it selects and sends its routes again.
    let bird = HostBird { options: "graceful restart on;", ..HOST_BIRD_V4 }.start(&lab);
    let ctx = || context(&lab, &router, &tor, &sidecar);
    wait_for("the session Established", || router.established(&["192.168.11.2"]), ctx);
    wait_for("routes both ways", || fabric_reachable(&lab), ctx);
    let n = tor.neighbor("192.168.11.3").unwrap();
    assert_eq!(n["gracefulRestartInfo"]["remoteGrMode"], "Restart", "the router's restart mode: {n}");
    let host_path_stale = |tor: &Frr| -> Result<bool, String> {
        let v = tor.json("show bgp ipv4 unicast 192.169.10.2/32 json");
        let paths = v["paths"].as_array().ok_or_else(|| format!("the ToR has no 192.169.10.2/32: {v}"))?;
        Ok(paths.iter().any(|p| p["stale"] == true))
    };
    assert_eq!(host_path_stale(&tor), Ok(false));
    if let Some(left) = TOR_STARTUP_R_BIT.checked_sub(tor_started.elapsed()) {
        eprintln!("waiting {} s for the ToR to stop claiming a restart (FRR 8.4's start-up R bit)", left.as_secs());
        std::thread::sleep(left);
    }

    router.kill_daemon("bgpd");
    router.start_daemon("bgpd");
    let killed = Instant::now();
    let ctx = || {
        format!(
            "{}\nrouter graceful restart:\n{}\nhost BIRD:\n{}",
            context(&lab, &router, &tor, &sidecar),
            router.vtysh("show bgp neighbors 192.169.10.2"),
            bird.birdc("show protocols all openpe4")
        )
    };
    wait_for(
        "the ToR keeping the host's route as stale",
        || host_path_stale(&tor)?.then_some(()).ok_or_else(|| "not stale".to_string()),
        ctx,
    );
    // Whether the router has sent the host its End-of-RIB (`endOfRibSend`, by family).
    let host_eor_sent = || -> Result<bool, String> {
        let n = router.neighbor("192.169.10.2")?;
        let set = n["gracefulRestartInfo"]["endOfRibSend"]
            .as_object()
            .ok_or_else(|| format!("no gracefulRestartInfo.endOfRibSend object: {n}"))?;
        Ok(set.get("ipv4Unicast") == Some(&Value::Bool(true)))
    };
    // The host keeps reaching the fabric through the router all along: while the sessions are down, while they
    // come back, and until the router has sent the host its End-of-RIB and the ToR dropped its stale marks (an
    // End-of-RIB without the fabric's routes would make BIRD flush 172.30.0.0/24 from the host's kernel).
    let mut pings = 0;
    let mut tor_checked = false;
    loop {
        assert_eq!(
            kernel_route(&lab.host, "172.30.0.0/24"),
            Ok(true),
            "the host flushed the fabric's route:\n{}",
            ctx()
        );
        assert!(
            ping(&lab.host, "172.30.0.1"),
            "the host lost the fabric {:?} after the kill:\n{}",
            killed.elapsed(),
            ctx()
        );
        pings += 1;
        if !tor_checked && router.established(&["192.168.11.2"]).is_ok() {
            let n = router.neighbor("192.168.11.2").unwrap();
            assert_eq!(n["gracefulRestartInfo"]["rBit"], false, "the ToR claimed a restart; nothing waits for it: {n}");
            tor_checked = true;
        }
        let done = tor_checked
            && router.established(&["192.169.10.2"]).is_ok()
            && host_eor_sent() == Ok(true)
            && host_path_stale(&tor) == Ok(false)
            && fabric_reachable(&lab).is_ok();
        if done {
            break;
        }
        assert!(killed.elapsed() < WAIT, "the sessions did not come back:\n{}", ctx());
    }
    eprintln!(
        "{pings} pings answered in the {:.1} s from the kill to the sessions back",
        killed.elapsed().as_secs_f64()
    );
    assert!(sidecar.log().contains("FRR restarted; re-applied"), "{}", sidecar.log());
    lab.del(&c);
}
