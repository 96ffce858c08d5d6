//! End to end with real FRR (and BIRD 2) in network namespaces: the lab's ToR runs FRR as the fabric switch
//! (AS 64512 at 192.168.11.2, advertising 172.30.0.0/24 and 2001:db8:99::/64), the plugin's ADD builds the
//! router namespace, FRR and openpe-sidecar run there as in a pod, and a BGP speaker in the host namespace
//! (AS 64515, advertising 172.31.0.0/24 and 2001:db8:88::/64) peers with the router addresses.
//!
//! The lab's parts are tests/common's: the daemons in tests/common/routing.rs (every FRR instance with its own
//! pathspace, each daemon stopped by pid and its directories removed by a guard, even when a test fails), the
//! ToR, the router and the host's speakers in tests/common/bgp.rs. Waiting for convergence uses generous
//! timeouts; nothing asserts on time.

#[path = "common/bgp.rs"]
mod bgp;
mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use bgp::*;
use common::*;
use serde_json::json;

/// Whether one line of `log` contains every one of `parts`.
fn logged(log: &str, parts: &[&str]) -> bool {
    log.lines().any(|l| parts.iter().all(|p| l.contains(p)))
}

/// Wait until one line of the sidecar's log contains every one of `parts`: the sidecar logs an apply after it has
/// checked FRR's running configuration, which is after the sessions and routes that a test waits for changed.
fn wait_logged(sidecar: &Sidecar, parts: &[&str]) {
    wait_for(
        &format!("the sidecar's log line {parts:?}"),
        || if logged(&sidecar.log(), parts) { Ok(()) } else { Err("not logged yet".into()) },
        || sidecar.log(),
    );
}

/// The router's frr.conf is the sidecar's rendering, not FRR's own (`vtysh write`).
fn assert_sidecars_file(router: &Frr) {
    let file = fs::read_to_string(router.etc().join("frr.conf")).unwrap();
    assert!(file.starts_with("! Written by openpe-sidecar"), "frr.conf was rewritten by someone else:\n{file}");
}

/// The router's FRR starts empty: the sidecar gives it its configuration.
fn start_router(lab: &Lab) -> (Frr, Sidecar) {
    bgp::start_router(lab, FrrOptions::default(), &[])
}

/// Diagnostics for a failed wait: what every party sees.
fn context(lab: &Lab, router: &Frr, tor: &Frr, sidecar: &Sidecar) -> String {
    format!(
        "router status:\n{}\nrouter running config:\n{}\ntor neighbors:\n{}\nhost routes:\n{}\nsidecar log:\n{}",
        sidecar_status_text(router),
        router.vtysh("show running-config"),
        tor.vtysh("show bgp summary"),
        sh(&format!("ip -n {} route; ip -n {} -6 route", lab.host.name, lab.host.name)),
        sidecar.log()
    )
}

/// The fabric's prefix is in the host's kernel through the router, and the host's prefix and host address
/// are in the ToR's BGP table.
fn routes_flow(lab: &Lab, tor: &Frr, v4: bool, v6: bool) -> Result<(), String> {
    if v4 {
        if !kernel_route(&lab.host, "172.30.0.0/24")? {
            return Err("172.30.0.0/24 (the ToR's) is not in the host's kernel table".into());
        }
        let p = tor.bgp_prefixes("ipv4")?;
        for want in ["172.31.0.0/24", "192.169.10.2/32"] {
            if !p.iter().any(|x| x == want) {
                return Err(format!("{want} is not at the ToR (it has {p:?})"));
            }
        }
    }
    if v6 {
        if !kernel_route(&lab.host, "2001:db8:99::/64")? {
            return Err("2001:db8:99::/64 (the ToR's) is not in the host's kernel table".into());
        }
        let p = tor.bgp_prefixes("ipv6")?;
        for want in ["2001:db8:88::/64", "2001:db8:10::2/128"] {
            if !p.iter().any(|x| x == want) {
                return Err(format!("{want} is not at the ToR (it has {p:?})"));
            }
        }
    }
    Ok(())
}

/// After DEL: the host's prefix and address are withdrawn from the ToR.
fn withdrawn(tor: &Frr) -> Result<(), String> {
    let p4 = tor.bgp_prefixes("ipv4")?;
    let p6 = tor.bgp_prefixes("ipv6")?;
    for gone in ["172.31.0.0/24", "192.169.10.2/32", "2001:db8:88::/64", "2001:db8:10::2/128"] {
        if p4.iter().chain(&p6).any(|x| x == gone) {
            return Err(format!("{gone} is still at the ToR"));
        }
    }
    Ok(())
}

/// The IPv4 underlay and host sessions Established, and routes flowing both ways.
fn ipv4_sessions_and_routes(lab: &Lab, router: &Frr, tor: &Frr, ctx: impl Fn() -> String + Copy) {
    wait_for("every session Established", || reported_established(router, &["192.168.11.2", "192.169.10.2"]), ctx);
    wait_for("routes both ways", || routes_flow(lab, tor, true, false), ctx);
}

#[test]
#[ignore = "needs root"]
fn frr_dual_stack_converges_survives_restart_and_del_add() {
    let lab = Lab::new("bd");
    let conf = lab.conf("1.0.0", json!({}));
    let tor = start_tor(&lab);
    lab.add(&conf);
    let (mut router, sidecar) = start_router(&lab);
    let host = HOST_FRR.start(&lab);
    let ctx = || context(&lab, &router, &tor, &sidecar);

    let peers = ["192.168.11.2", "192.169.10.2", "2001:db8:10::2"];
    wait_for("every session Established", || reported_established(&router, &peers), ctx);
    wait_for("routes both ways", || routes_flow(&lab, &tor, true, true), ctx);
    lab.host.exec("ping -c 1 -W 5 172.30.0.1");
    lab.host.exec("ping -6 -c 1 -W 5 2001:db8:99::1");
    // The host speaker sees its sessions too.
    let mut states = host.session_states();
    states.sort();
    assert_eq!(
        states,
        vec![("192.169.10.1".into(), "Established".into()), ("2001:db8:10::1".into(), "Established".into())]
    );
    // Start-up goes through frr-reload.py, and the file on disk stays the sidecar's rendering (with a
    // pathspace frr-reload.py ends with `vtysh write`, which the sidecar undoes).
    wait_logged(&sidecar, &["applied the configuration for attachment", "by frr-reload.py"]);
    assert_sidecars_file(&router);

    // FRR restarts (bgpd loses its configuration): the sidecar re-applies it, through the full path.
    router.stop_daemon("bgpd");
    router.start_daemon("bgpd");
    let ctx = || context(&lab, &router, &tor, &sidecar);
    wait_for("sessions after a bgpd restart", || reported_established(&router, &peers), ctx);
    // bgpd holds everything again, `allowall` included (frr-reload.py alone leaves it out: vtysh still shows
    // zebra's copy), so routes flow to and from the host.
    wait_for("routes both ways after a bgpd restart", || routes_flow(&lab, &tor, true, true), ctx);
    wait_logged(&sidecar, &["FRR restarted; re-applied the configuration", "by frr-reload.py"]);
    let log = sidecar.log();
    assert!(!logged(&log, &["warn: after frr-reload.py"]), "{log}");
    assert_sidecars_file(&router);
    let bgpd = router.pid_of("bgpd");

    // DEL: the sidecar removes the BGP configuration, the ToR loses the host's prefixes.
    lab.del(&conf);
    wait_for("withdrawal at the ToR after DEL", || withdrawn(&tor), ctx);
    wait_for(
        "no BGP configuration in the router",
        || match router.vtysh("show running-config").contains("router bgp") {
            true => Err("router bgp is still configured".into()),
            false => Ok(()),
        },
        ctx,
    );
    assert_eq!(kernel_route(&lab.host, "172.30.0.0/24"), Ok(false));
    // Attachment → nothing is one transaction of the sidecar's own delta.
    wait_logged(&sidecar, &["the configuration for no attachment", "by one configuration transaction"]);
    let log = sidecar.log();
    let deltas = log.matches("by one configuration transaction").count();

    // ADD again with a second underlay neighbor: a second fabric switch (BIRD, AS 64513) two hops away at
    // 192.168.12.2, behind the ToR, so an ebgp-multihop session. FRR and the sidecar keep running.
    let tor2_ns = Ns::new("bd2");
    lab.tor.ip(&format!("link add t2-link type veth peer name up-link netns {}", tor2_ns.name));
    lab.tor.ip("addr add 192.168.12.1/24 dev t2-link");
    lab.tor.ip("link set t2-link up");
    lab.tor.exec("sysctl -qw net.ipv4.ip_forward=1");
    tor2_ns.ip("addr add 192.168.12.2/24 dev up-link");
    tor2_ns.ip("link set up-link up");
    tor2_ns.ip("route add default via 192.168.12.1");
    let tor2 = Bird::start(
        &tor2_ns,
        "router id 192.168.12.2;\nprotocol device {}\nprotocol static { ipv4; route 172.29.0.0/24 blackhole; }\n\
         protocol bgp fabric2 { local 192.168.12.2 as 64513; neighbor 192.168.11.3 as 64514; multihop;\n\
         connect retry time 2; ipv4 { import all; export where source = RTS_STATIC; }; }\n",
    );
    let conf2 = lab.conf(
        "1.0.0",
        json!({"underlay": {"neighbors": [{"asn": 64512, "address": "192.168.11.2"},
            {"asn": 64513, "address": "192.168.12.2", "ebgpMultiHop": true, "connectTimeSeconds": 2}]}}),
    );
    lab.add(&conf2);
    // The plugin moves the NIC's addresses, not its routes: the route to the second switch is the operator's.
    lab.router.ip("route add 192.168.12.0/24 via 192.168.11.2 dev toswitch");
    let peers2 = ["192.168.11.2", "192.168.12.2", "192.169.10.2", "2001:db8:10::2"];
    let ctx2 = || {
        format!(
            "{}\nrouter routes:\n{}\nsecond switch:\n{}",
            ctx(),
            lab.router.ip("route"),
            tor2.birdc("show protocols all fabric2")
        )
    };
    wait_for("every session after DEL and ADD", || reported_established(&router, &peers2), ctx2);
    wait_for("routes both ways after DEL and ADD", || routes_flow(&lab, &tor, true, true), ctx);
    wait_for(
        "the second switch's prefix in the host's kernel",
        || match kernel_route(&lab.host, "172.29.0.0/24")? {
            true => Ok(()),
            false => Err(format!("not there; BIRD: {}", tor2.birdc("show protocols"))),
        },
        ctx,
    );
    assert_eq!(router.pid_of("bgpd"), bgpd, "FRR was restarted");
    assert!(sidecar.running(), "the sidecar exited: {}", sidecar.log());
    // Nothing → the attachment with its second neighbor: a delta too, and FRR's running configuration is the
    // sidecar's rendering.
    assert_eq!(sidecar.log().matches("by one configuration transaction").count(), deltas + 1, "{}", sidecar.log());
    // The checks read bgpd's vty socket, not a vtysh process.
    assert!(!sidecar.log().contains("bgpd's vty socket:"), "{}", sidecar.log());
    assert_sidecars_file(&router);
    let running = router.vtysh("show running-config");
    let file = fs::read_to_string(router.etc().join("frr.conf")).unwrap();
    assert_eq!(openpe::sidecar::delta::differences(&file, &running), Vec::<String>::new());
    lab.del(&conf2);
    drop(tor2);
}

#[test]
#[ignore = "needs root"]
fn bird_host_ipv4_converges_and_reconverges_after_del_add() {
    let lab = Lab::new("bb");
    let conf = lab.conf(
        "1.0.0",
        json!({"l3passthrough": {"hostsession": {"localcidr": {"ipv4": "192.169.10.0/24", "ipv6": null}}}}),
    );
    let tor = start_tor(&lab);
    lab.add(&conf);
    let (router, sidecar) = start_router(&lab);
    lab.host.ip("addr add 172.31.0.1/32 dev lo");
    let bird = HostBird { routes6: None, kernel: true, ..HOST_BIRD }.start(&lab);
    let ctx =
        || format!("{}\nbird:\n{}", context(&lab, &router, &tor, &sidecar), bird.birdc("show protocols all openpe4"));
    wait_for("every session Established", || reported_established(&router, &["192.168.11.2", "192.169.10.2"]), ctx);
    wait_for("routes both ways", || routes_flow(&lab, &tor, true, false), ctx);
    lab.host.exec("ping -c 1 -W 5 172.30.0.1");
    assert_eq!(bird.protocol_state("openpe4"), "Established");
    let bgpd = router.pid_of("bgpd");
    lab.del(&conf);
    wait_for("withdrawal at the ToR after DEL", || withdrawn(&tor), ctx);

    // DEL then ADD with a changed configuration (timers on the underlay neighbor), FRR and the sidecar
    // running all along: the sidecar converges FRR to it.
    let mut conf2 = conf.clone();
    conf2["underlay"]["neighbors"][0]["holdTimeSeconds"] = json!(9);
    conf2["underlay"]["neighbors"][0]["keepaliveTimeSeconds"] = json!(3);
    lab.add(&conf2);
    wait_for(
        "the changed configuration applied",
        || match router.vtysh("show running-config").contains("neighbor 192.168.11.2 timers 3 9") {
            true => Ok(()),
            false => Err("no timers 3 9 yet".into()),
        },
        ctx,
    );
    wait_for(
        "every session Established after DEL and ADD",
        || reported_established(&router, &["192.168.11.2", "192.169.10.2"]),
        ctx,
    );
    wait_for("routes both ways after DEL and ADD", || routes_flow(&lab, &tor, true, false), ctx);
    assert_eq!(router.pid_of("bgpd"), bgpd, "FRR was restarted");
    lab.del(&conf2);
    wait_for("withdrawal at the ToR after the second DEL", || withdrawn(&tor), ctx);
    assert!(sidecar.running(), "the sidecar exited: {}", sidecar.log());
}

/// hostType External, and a host session ASN (hostsession.asn) that differs from the underlay's: the host
/// peers with AS 64600, which the router presents with local-as.
#[test]
#[ignore = "needs root"]
fn frr_host_type_external_with_its_own_session_asn() {
    let lab = Lab::new("be");
    let conf = lab.conf(
        "1.0.0",
        json!({"l3passthrough": {"hostsession": {"asn": 64600, "hostasn": null, "hostType": "External",
            "localcidr": {"ipv4": "192.169.10.0/24", "ipv6": null}}}}),
    );
    let tor = start_tor(&lab);
    lab.add(&conf);
    let (router, sidecar) = start_router(&lab);
    let host = HostFrr { router_as: 64600, v6: false, ..HOST_FRR }.start(&lab);
    let ctx = || context(&lab, &router, &tor, &sidecar);
    ipv4_sessions_and_routes(&lab, &router, &tor, ctx);
    // The host sees the router as AS 64600.
    let peer = host.json("show bgp neighbors 192.169.10.1 json");
    assert_eq!(peer["192.169.10.1"]["remoteAs"], 64600, "{peer}");
    lab.del(&conf);
    wait_for("withdrawal at the ToR after DEL", || withdrawn(&tor), ctx);
}

/// An iBGP host: hostasn equal to the underlay ASN.
#[test]
#[ignore = "needs root"]
fn frr_ibgp_host() {
    let lab = Lab::new("bi");
    let conf = lab.conf(
        "1.0.0",
        json!({"l3passthrough": {"hostsession": {"hostasn": 64514,
            "localcidr": {"ipv4": "192.169.10.0/24", "ipv6": null}}}}),
    );
    let tor = start_tor(&lab);
    lab.add(&conf);
    let (router, sidecar) = start_router(&lab);
    // --once applies and exits 0 in the router namespace (the watching sidecar runs too: applying twice is
    // harmless), and fails clearly where no attachment holds the namespace.
    let once = |ns: &Ns| {
        Command::new("ip")
            .args(["netns", "exec", &ns.name])
            .arg(sidecar_bin())
            .arg("--state-dir")
            .arg(&lab.state.path)
            .args(["--frr-pathspace", &router.name, "--once"])
            .output()
            .unwrap()
    };
    let out = once(&lab.router);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(router.vtysh("show running-config").contains("router bgp 64514"));
    let out = once(&lab.tor);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no attachment"), "{}", String::from_utf8_lossy(&out.stderr));
    let host = HostFrr { asn: 64514, v6: false, ..HOST_FRR }.start(&lab);
    let ctx = || context(&lab, &router, &tor, &sidecar);
    ipv4_sessions_and_routes(&lab, &router, &tor, ctx);
    let peer = host.json("show bgp neighbors 192.169.10.1 json");
    assert_eq!(peer["192.169.10.1"]["nbrInternalLink"], true, "{peer}");
    lab.del(&conf);
    wait_for("withdrawal at the ToR after DEL", || withdrawn(&tor), ctx);
}

/// Upstream's current Underlay and L3Passthrough pasted whole into the plugin configuration, as JSON
/// (`netconf/upstream/*.yaml`, copied from upstream as users copy them): ADD, `openpe-sidecar --once` applies the
/// configuration, every session comes up with the sample's timers (its `ebgpMultiHop` TTL of 1 is FRR's single-hop
/// default), routes flow, and DEL
/// withdraws the host's routes from the fabric.
#[test]
#[ignore = "needs root"]
fn upstream_sample_pasted_whole_converges() {
    let lab = Lab::new("bu");
    let mut conf = lab.conf("1.0.0", json!({}));
    for (key, file) in [("underlay", "underlay.yaml"), ("l3passthrough", "l3passthrough.yaml")] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("netconf/upstream").join(file);
        conf[key] = serde_norway::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    }
    assert_eq!(conf["underlay"]["spec"]["interfaces"][0]["networkDevice"]["interfaceName"], "toswitch");
    let tor = start_tor(&lab);
    lab.add(&conf);
    let router = Frr::start(&lab.router, "rtr", "! configured by openpe-sidecar --once\n");
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.router.name])
        .arg(sidecar_bin())
        .arg("--state-dir")
        .arg(&lab.state.path)
        .args(["--frr-pathspace", &router.name, "--once"])
        .output()
        .unwrap();
    assert!(out.status.success(), "openpe-sidecar --once: {}", String::from_utf8_lossy(&out.stderr));
    let running = router.vtysh("show running-config");
    for line in [" neighbor 192.168.11.2 remote-as 64512\n", " neighbor 192.168.11.2 timers 3 9\n"] {
        assert!(running.contains(line), "{line:?} is not in FRR's running configuration:\n{running}");
    }
    // TTL 1 is FRR's single-hop default: not rendered, and not in the running configuration either.
    assert!(!running.contains("ebgp-multihop"), "{running}");
    let _host = HOST_FRR.start(&lab);
    let ctx = || {
        format!(
            "router status:\n{}\nrouter running config:\n{}\ntor neighbors:\n{}",
            sidecar_status_text(&router),
            router.vtysh("show running-config"),
            tor.vtysh("show bgp summary")
        )
    };
    let peers = ["192.168.11.2", "192.169.10.2", "2001:db8:10::2"];
    wait_for("every session of the upstream sample Established", || reported_established(&router, &peers), ctx);
    wait_for("routes both ways", || routes_flow(&lab, &tor, true, true), ctx);
    let tor_side = router.json("show bgp neighbors 192.168.11.2 json");
    assert_eq!(tor_side["192.168.11.2"]["bgpTimerConfiguredHoldTimeMsecs"], 9000, "{tor_side}");
    assert_eq!(tor_side["192.168.11.2"]["bgpTimerConfiguredKeepAliveIntervalMsecs"], 3000, "{tor_side}");
    lab.del(&conf);
    assert!(lab.host.has_link("toswitch"), "DEL moves the NIC back to the host");
    wait_for("withdrawal at the ToR after DEL", || withdrawn(&tor), ctx);
}

/// The golden cases of tests/render.rs (the renderer's output, checked there).
const GOLDEN: &[&str] =
    &["ipv4", "dualstack", "host-external", "host-internal", "ibgp-host", "host-local-as", "neighbors"];

/// `text` without any line about neighbor `who`.
fn without_neighbor(text: &str, who: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with(&format!("neighbor {who} ")))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// For every golden case, FRR ends up with the same running configuration whether the sidecar's delta
/// (one configuration transaction, on the daemons' vty sockets) or `frr-reload.py --reload` of the whole file took it there: nothing → the
/// case, the case → nothing, and each of its neighbors added to or removed from the rest. And that running
/// configuration is the rendering.
#[test]
#[ignore = "needs root"]
fn delta_and_frr_reload_give_the_same_running_configuration() {
    use openpe::sidecar::delta::{differences, plan};
    let ns = Ns::new("bg");
    let frr = Frr::start(&ns, "gold", "! empty\n");
    let f = openpe::sidecar::Frr::new(Some(frr.name.clone()), None).unwrap();
    let nothing = openpe::bgp::unconfigured();
    let running = || f.running_config().unwrap();
    let full = |text: &str| {
        f.write_config(text).unwrap();
        f.reload().unwrap_or_else(|e| panic!("frr-reload.py: {}\n{text}", e.msg));
        running()
    };
    let delta = |from: &str, to: &str| {
        let t = plan(from, to).unwrap_or_else(|| panic!("no delta from\n{from}\nto\n{to}"));
        f.apply_transaction(&t).unwrap_or_else(|e| panic!("the delta: {}\n{t}", e.msg));
        running()
    };
    let same = |what: &str, a: &str, b: &str| {
        let d = differences(a, b);
        assert!(d.is_empty(), "{what}: {d:?}\n--- meant:\n{a}\n--- running:\n{b}");
    };
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut compared = 0;
    for case in GOLDEN {
        let text = fs::read_to_string(golden.join(format!("{case}.frr"))).unwrap();
        full(&nothing);
        let by_reload = full(&text);
        same(&format!("{case}: frr-reload.py"), &text, &by_reload);
        full(&nothing);
        let by_delta = delta(&nothing, &text);
        same(&format!("{case}: delta against frr-reload.py"), &by_reload, &by_delta);
        same(&format!("{case}: delta → nothing"), &nothing, &delta(&text, &nothing));
        assert!(!running().contains("router bgp"), "{case}: BGP left after the delta to nothing");
        let neighbors: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix(" neighbor "))
            .filter(|l| l.contains(" remote-as "))
            .map(|l| l.split(' ').next().unwrap().to_string())
            .collect();
        assert!(!neighbors.is_empty());
        for who in &neighbors {
            let rest = without_neighbor(&text, who);
            let rest_by_reload = full(&rest);
            same(&format!("{case} without {who}: frr-reload.py"), &rest, &rest_by_reload);
            same(&format!("{case}: {who} added by a delta"), &by_reload, &delta(&rest, &text));
            same(&format!("{case}: {who} removed by a delta"), &rest_by_reload, &delta(&text, &rest));
            compared += 1;
        }
        full(&nothing);
    }
    assert!(compared >= GOLDEN.len() * 2, "every case has its underlay and host neighbors");
    // The comparison can fail: a running configuration with a line the rendering lacks differs.
    let text = fs::read_to_string(golden.join("ipv4.frr")).unwrap();
    same("ipv4 again", &text, &full(&text));
    f.apply_transaction("router bgp 64514\n neighbor 192.168.11.2 timers connect 9\nexit\n").unwrap();
    assert!(!differences(&text, &running()).is_empty());
    full(&nothing);
}

/// A `--frr-extra` FRR refuses: the sidecar logs the refused line (no terminal colour codes, the password in
/// it masked) and backs off; fixed while the backoff has grown to seconds, it is applied at once. The file on
/// disk is the sidecar's rendering throughout.
#[test]
#[ignore = "needs root"]
fn bad_frr_extra_logged_masked_and_fixed_at_once() {
    let lab = Lab::new("bx");
    let conf = lab.conf(
        "1.0.0",
        json!({"underlay": {"neighbors": [{"asn": 64512, "address": "192.168.11.2", "password": "s3cr#t!x"}]},
               "l3passthrough": {"hostsession": {"localcidr": {"ipv4": "192.169.10.0/24", "ipv6": null}}}}),
    );
    lab.add(&conf);
    let extra_dir = TempDir::new("bxe");
    let extra = extra_dir.path.join("extra.frr");
    // A misspelt keyword on a line that carries the attachment's password.
    fs::write(&extra, "router bgp 64514\n neighbor 192.168.11.2 passwrd s3cr#t!x\nexit\n").unwrap();
    let (router, sidecar) = bgp::start_router(&lab, FrrOptions::default(), &["--frr-extra", extra.to_str().unwrap()]);
    let ctx = || format!("sidecar log:\n{}", sidecar.log());
    // Wait until the backoff has grown to two seconds or more.
    wait_for(
        "the backoff at 2 s",
        || match sidecar.log().lines().any(|l| l.contains("retrying in 2000 ms") || l.contains("retrying in 4000 ms")) {
            true => Ok(()),
            false => Err("not yet".into()),
        },
        ctx,
    );
    let log = sidecar.log();
    assert!(!log.contains('\u{1b}'), "terminal codes in the log:\n{log:?}");
    assert!(!log.contains("s3cr#t!x"), "the password in the log:\n{log}");
    assert!(
        logged(&log, &["FRR refused line", "neighbor 192.168.11.2 passwrd ********"]),
        "the refused line is not logged:\n{log}"
    );
    assert!(!router.vtysh("show running-config").contains("router bgp"), "a refused file was applied");

    // Fixed: applied at once, not at the end of the backoff. The sidecar starts the apply within a second of
    // the fix (its log's clock is this one); the apply itself is frr-reload.py (a failed apply leaves FRR in an
    // unknown state), whose duration depends on the machine's load and is logged.
    let fixed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    fs::write(&extra, "route-map openpe-extra permit 10\n set metric 7\nexit\n").unwrap();
    wait_for(
        "the fixed --frr-extra applied",
        || match logged(&sidecar.log(), &["applied after earlier failures"]) {
            true => Ok(()),
            false => Err("not yet".into()),
        },
        ctx,
    );
    let log = sidecar.log();
    let line = log
        .lines()
        .find(|l| l.contains("applied the configuration for attachment") && l.contains("by frr-reload.py in "))
        .unwrap_or_else(|| panic!("no apply logged:\n{log}"));
    let at: f64 = line.split(' ').next().unwrap().parse().unwrap();
    let ms: f64 = line.split("by frr-reload.py in ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    let reaction = at - ms / 1000.0 - fixed;
    eprintln!("fixed --frr-extra: apply started {:.0} ms after the fix, took {ms} ms", reaction * 1000.0);
    assert!(reaction < 1.0, "the apply started {reaction:.3} s after the fix (the backoff was 2 s or more):\n{log}");
    assert!(router.vtysh("show running-config").contains(" set metric 7"));
    let running = router.vtysh("show running-config");
    assert!(running.contains("router bgp 64514"), "{running}");
    assert_sidecars_file(&router);
    let log = sidecar.log();
    assert!(logged(&log, &["applied after earlier failures"]), "{log}");
    // Passwords never reach the log, masked in the changes too.
    assert!(!log.contains("s3cr#t!x"), "{log}");
    assert!(logged(&log, &["+ router bgp 64514 > neighbor 192.168.11.2 password ********"]), "{log}");
    lab.del(&conf);
    wait_for(
        "no BGP configuration after DEL",
        || match router.vtysh("show running-config").contains("router bgp") {
            true => Err("router bgp still there".into()),
            false => Ok(()),
        },
        ctx,
    );
}

/// The sidecar's own transaction on the daemons' vty sockets does what `vtysh -f` of the same text does, to
/// every daemon (zebra, bgpd, bfdd): for every golden case, nothing → the case, a neighbor
/// removed, added back, the case → nothing, first all with `vtysh -f`, then all on the sockets, from the
/// same start, and after each step the whole merged running configuration (`show running-config`) and
/// zebra's own (route-maps and prefix-lists live there too) are the same text.
#[test]
#[ignore = "needs root"]
fn transaction_on_vty_sockets_equals_vtysh_f() {
    use openpe::sidecar::delta::plan;
    let ns = Ns::new("bv");
    let frr = Frr::start_with(&ns, "sock", "! empty\n", FrrOptions { daemons: &["bfdd"], ..FrrOptions::default() });
    let f = openpe::sidecar::Frr::new(Some(frr.name.clone()), None).unwrap();
    let nothing = openpe::bgp::unconfigured();
    let reset = || {
        f.write_config(&nothing).unwrap();
        f.reload().unwrap_or_else(|e| panic!("frr-reload.py: {}", e.msg));
    };
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut cases: Vec<String> = fs::read_dir(&golden)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".frr").map(str::to_string))
        .filter(|n| !n.ends_with(".masked"))
        .collect();
    cases.sort();
    let mut compared = 0;
    for case in &cases {
        let text = fs::read_to_string(golden.join(format!("{case}.frr"))).unwrap();
        let who = text
            .lines()
            .filter_map(|l| l.strip_prefix(" neighbor "))
            .find(|l| l.contains(" remote-as "))
            .map(|l| l.split(' ').next().unwrap().to_string())
            .unwrap();
        let rest = without_neighbor(&text, &who);
        let steps = [(&nothing, &text), (&text, &rest), (&rest, &text), (&text, &nothing)];
        let run = |sockets: bool| -> Vec<(String, String, String)> {
            reset();
            steps
                .iter()
                .map(|(from, to)| {
                    let t = plan(from, to).unwrap_or_else(|| panic!("{case}: no delta from\n{from}\nto\n{to}"));
                    let applied = if sockets { f.apply_on_sockets(&t) } else { f.apply_with_vtysh(&t) };
                    applied.unwrap_or_else(|e| panic!("{case} (sockets: {sockets}): {}\n{t}", e.msg));
                    let of = |d: &str| sh(&format!("vtysh -N {} -d {d} -c 'show running-config'", frr.name));
                    (frr.vtysh("show running-config"), of("zebra"), of("bfdd"))
                })
                .collect()
        };
        let by_vtysh = run(false);
        let by_sockets = run(true);
        for (i, (a, b)) in by_vtysh.iter().zip(&by_sockets).enumerate() {
            assert_eq!(a.0, b.0, "{case}, step {i}: merged running configuration, vtysh -f then sockets");
            assert_eq!(a.1, b.1, "{case}, step {i}: zebra's running configuration, vtysh -f then sockets");
            assert_eq!(a.2, b.2, "{case}, step {i}: bfdd's running configuration, vtysh -f then sockets");
        }
        if text.contains("\nbfd\n") {
            assert!(by_sockets[0].2.contains(" profile openpe-bfd\n"), "{case}: bfdd has the profiles");
        }
        assert!(by_sockets[0].1.contains("route-map allowall permit 1"), "{case}: zebra has the route-map");
        assert!(by_sockets[0].0.contains("router bgp"), "{case}: BGP configured");
        assert!(!by_sockets[3].0.contains("router bgp"), "{case}: BGP removed");
        compared += 1;
    }
    assert!(compared >= 20, "golden cases compared: {compared}");
    // A refused line is reported as vtysh reports it, with bgpd's reason, and the rest is still applied.
    reset();
    let e = f
        .apply_on_sockets("router bgp 64514\n neighbor 192.168.11.2 timers connect 9\n bgp router-id 10.9.9.9\nexit\n")
        .unwrap_err();
    assert!(e.msg.contains("line 2: Failure to communicate[13] to bgpd"), "{}", e.msg);
    assert!(e.msg.contains("% Specify remote-as or peer-group commands first"), "{}", e.msg);
    assert!(frr.vtysh("show running-config").contains(" bgp router-id 10.9.9.9"));
    // A line the sidecar does not know the daemons of is not sent: vtysh -f applies that transaction.
    reset();
    assert!(f.apply_on_sockets("interface lo\n description x\nexit\n").is_err());
    assert!(!frr.vtysh("show running-config").contains("description x"));
    f.apply_transaction("interface lo\n description x\nexit\n").unwrap();
    assert!(frr.vtysh("show running-config").contains(" description x"));
    reset();
}
