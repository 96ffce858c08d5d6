//! The sidecar's HTTP endpoints end to end (issue 16), with real FRR as the ToR and as the router, and BIRD 2
//! as the host's speaker (IPv4 and IPv6 sessions), in the lab of tests/bgp_e2e.rs. The sidecar runs in the
//! router namespace with `--http-listen 127.0.0.1:PORT`; the test reaches it from inside that namespace
//! (`ip netns exec ... curl`). `/metrics` is read with a strict parser of the Prometheus text format
//! (tests/common/prom.rs). Waiting uses generous timeouts; nothing asserts on time.

#[path = "common/bgp.rs"]
mod bgp;
mod common;
#[path = "common/prom.rs"]
mod prom;

use std::fs;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use bgp::*;
use common::*;
use serde_json::json;

const LISTEN: &str = "127.0.0.1:9479";

/// GET `path` from the sidecar, inside the router namespace: the status code and the body.
fn get(lab: &Lab, path: &str) -> (u16, String) {
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.router.name, "curl", "-sS", "-m", "20", "-w", "\n%{http_code}"])
        .arg(format!("http://{LISTEN}{path}"))
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    // 000: no answer at all (the sidecar is not listening yet).
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn scrape(lab: &Lab) -> prom::Exposition {
    let (code, body) = get(lab, "/metrics");
    assert_eq!(code, 200, "/metrics: {body}");
    prom::parse(&body).unwrap_or_else(|e| panic!("/metrics is not the Prometheus text format: {e}\n{body}"))
}

fn expect_code(lab: &Lab, path: &str, code: u16) -> Result<String, String> {
    match get(lab, path) {
        (c, body) if c == code => Ok(body),
        (c, body) => Err(format!("{path}: {c} {body}")),
    }
}

/// The session gauges: exactly these peers, with these `session` labels and values.
fn sessions_are(ex: &prom::Exposition, want: &[(&str, &str, f64)]) -> Result<(), String> {
    let got: Vec<(String, String, f64)> = ex
        .all("openpe_bgp_session_up")
        .iter()
        .map(|s| (s.labels["peer"].clone(), s.labels["session"].clone(), s.value))
        .collect();
    let mut got_sorted = got.clone();
    got_sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut want: Vec<(String, String, f64)> =
        want.iter().map(|(p, s, v)| (p.to_string(), s.to_string(), *v)).collect();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    if got_sorted == want {
        Ok(())
    } else {
        Err(format!("openpe_bgp_session_up is {got_sorted:?}, wanted {want:?}"))
    }
}

fn value(ex: &prom::Exposition, name: &str, labels: &[(&str, &str)]) -> Result<f64, String> {
    ex.get(name, labels).ok_or_else(|| format!("no {name}{labels:?}"))
}

const TOR: &str = "192.168.11.2";
const HOST4: &str = "192.169.10.2";
const HOST6: &str = "2001:db8:10::2";

#[test]
#[ignore = "needs root"]
fn metrics_probes_and_readiness_follow_the_sessions_and_the_applies() {
    let started_unix = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
    let lab = Lab::new("mx");
    let conf = lab.conf("1.0.0", json!({}));
    let mut tor = start_tor(&lab);
    lab.add(&conf);
    // In a directory of its own, removed with it (beside the state directory it would outlive the test).
    let extra_dir = TempDir::new("mxextra");
    let extra = extra_dir.path.join("extra.conf");
    fs::write(&extra, "! nothing extra yet\n").unwrap();
    let extra_arg = extra.display().to_string();
    // A startup window longer than the test: readiness waits for every session throughout.
    let (mut router, sidecar) = start_router(
        &lab,
        FrrOptions::default(),
        &["--http-listen", LISTEN, "--startup-window", "3600", "--frr-extra", &extra_arg],
    );
    let ctx = || {
        format!(
            "router:\n{}\nsidecar log:\n{}\n/readyz: {:?}",
            router.vtysh("show bgp summary"),
            sidecar.log(),
            get(&lab, "/readyz")
        )
    };

    // Before the host speaker exists: FRR answers, the configuration is applied, the host sessions are down,
    // so not ready.
    wait_for("/healthz 200", || expect_code(&lab, "/healthz", 200), ctx);
    wait_for(
        "the first apply counted",
        || match scrape(&lab).get("openpe_sidecar_applies_total", &[("result", "ok")]) {
            Some(v) if v >= 1.0 => Ok(()),
            other => Err(format!("applies ok: {other:?}")),
        },
        ctx,
    );
    let body = expect_code(&lab, "/readyz", 503).unwrap_or_else(|e| panic!("{e}\n{}", ctx()));
    assert!(body.starts_with("not ready: "), "{body}");
    assert!(body.contains(&format!("{HOST4} (host) ")), "{body}");
    assert_eq!(body.lines().count(), 1, "one line: {body}");
    let ex = scrape(&lab);
    assert_eq!(value(&ex, "openpe_bgp_session_up", &[("peer", HOST4), ("session", "host")]), Ok(0.0));

    // The host's BIRD: every session Established, ready, every gauge at 1.
    let bird = HOST_BIRD.start(&lab);
    let ctx = || format!("{}\nbird:\n{}", ctx(), bird.birdc("show protocols"));
    let body = wait_for("/readyz 200", || expect_code(&lab, "/readyz", 200), ctx);
    assert_eq!(body, "ready: all 3 sessions Established\n");
    let all_up = [(TOR, "underlay", 1.0), (HOST4, "host", 1.0), (HOST6, "host", 1.0)];
    sessions_are(&scrape(&lab), &all_up).unwrap_or_else(|e| panic!("{e}\n{}", ctx()));
    // Prefix counts. From each host session exactly the one prefix BIRD announces per family. With the ToR,
    // whose session echoes routes back (the router accepts its own AS with allowas-in), the counts settle
    // later: what the router received is what the ToR says it sent, and what the router advertised is what
    // the router's FRR says it sent, each read from the other party's vtysh.
    wait_for(
        "prefix counts",
        || {
            let ex = scrape(&lab);
            for (peer, afi) in [(HOST4, "ipv4"), (HOST6, "ipv6")] {
                let got = value(&ex, "openpe_bgp_prefixes_received", &[("peer", peer), ("afi", afi)])?;
                if got != 1.0 {
                    return Err(format!("received from {peer} {afi}: {got}"));
                }
            }
            let at_tor = tor.json("show bgp neighbors 192.168.11.3 json");
            let at_router = router.json(&format!("show bgp neighbors {TOR} json"));
            for (afi, key) in [("ipv4", "ipv4Unicast"), ("ipv6", "ipv6Unicast")] {
                let count = |v: &serde_json::Value, peer: &str, field: &str| {
                    v[peer]["addressFamilyInfo"][key][field].as_f64().ok_or(format!("no {key} {field} in {v}"))
                };
                let sent_by_tor = count(&at_tor, "192.168.11.3", "sentPrefixCounter")?;
                let received = value(&ex, "openpe_bgp_prefixes_received", &[("peer", TOR), ("afi", afi)])?;
                let sent_by_router = count(&at_router, TOR, "sentPrefixCounter")?;
                let advertised = value(&ex, "openpe_bgp_prefixes_advertised", &[("peer", TOR), ("afi", afi)])?;
                if received != sent_by_tor || advertised != sent_by_router || received < 1.0 || advertised < 2.0 {
                    return Err(format!(
                        "{afi}: received {received} (the ToR sent {sent_by_tor}), advertised {advertised} \
                         (FRR says {sent_by_router})"
                    ));
                }
            }
            Ok(())
        },
        ctx,
    );
    let ex = scrape(&lab);
    assert_eq!(ex.types["openpe_sidecar_apply_duration_seconds"], "histogram");
    assert_eq!(ex.types["openpe_sidecar_applies_total"], "counter");
    let ok = value(&ex, "openpe_sidecar_applies_total", &[("result", "ok")]).unwrap();
    assert!(ex.get("openpe_sidecar_applies_total", &[("result", "failed")]).is_none(), "no failure yet");
    assert_eq!(value(&ex, "openpe_sidecar_apply_duration_seconds_count", &[]), Ok(ok));
    let last = value(&ex, "openpe_sidecar_last_apply_success_timestamp_seconds", &[]).unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
    assert!(started_unix <= last && last <= now, "last success at {last}, test ran {started_unix}..{now}");
    // No BFD and no prefix limit are rendered: neither gauge has a series.
    assert!(ex.all("openpe_bfd_session_up").is_empty() && ex.all("openpe_bgp_max_prefix_exceeded").is_empty());

    // An apply that fails (FRR refuses a line of --frr-extra): still live, not ready, the failure counted,
    // the sessions untouched.
    fs::write(&extra, "this is not an frr command\n").unwrap();
    let body = wait_for(
        "/readyz 503 for the failing apply",
        || match expect_code(&lab, "/readyz", 503) {
            Ok(b) if b.contains("the last apply of FRR's configuration failed") => Ok(b),
            Ok(b) => Err(format!("503 for another reason: {b}")),
            Err(e) => Err(e),
        },
        ctx,
    );
    assert_eq!(body.lines().count(), 1, "one line: {body}");
    let live = expect_code(&lab, "/healthz", 200).unwrap_or_else(|e| panic!("{e}\n{}", ctx()));
    assert!(live.starts_with("ok: FRR answers"), "{live}");
    let ex = scrape(&lab);
    assert!(value(&ex, "openpe_sidecar_applies_total", &[("result", "failed")]).unwrap() >= 1.0);
    sessions_are(&ex, &all_up).unwrap();
    // `status --http` says the same for a person.
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.router.name])
        .arg(sidecar_bin())
        .args(["status", "--frr-pathspace", &router.name, "--http", LISTEN])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("sidecar: ready: no (the last apply of FRR's configuration failed"), "{text}");
    let applies = text.lines().find(|l| l.starts_with("applies: ")).unwrap_or_else(|| panic!("no applies: {text}"));
    let counts: Vec<u64> = applies
        .trim_start_matches("applies: ")
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .take(2)
        .map(|w| w.parse().unwrap())
        .collect();
    assert!(applies.contains(" ok, ") && counts[0] >= 1 && counts[1] >= 1, "{applies}");
    assert!(text.contains("last apply failed: ") && text.contains("Unknown command"), "{text}");
    assert!(text.lines().any(|l| l.trim_start().starts_with(TOR) && l.ends_with("underlay  Established")), "{text}");

    // Fixed: ready again.
    fs::write(&extra, "! fixed\n").unwrap();
    wait_for("/readyz 200 after the fix", || expect_code(&lab, "/readyz", 200), ctx);

    // The ToR's bgpd stops: once the router's FRR sees the session down, the very next scrape says 0.
    tor.stop_daemon("bgpd");
    wait_for(
        "the router's FRR to see the ToR session down",
        || {
            let n = router.json(&format!("show bgp neighbors {TOR} json"));
            match n[TOR]["bgpState"].as_str() {
                Some("Established") => Err("still Established".into()),
                Some(_) => Ok(()),
                None => Err(format!("no state in {n}")),
            }
        },
        ctx,
    );
    sessions_are(&scrape(&lab), &[(TOR, "underlay", 0.0), (HOST4, "host", 1.0), (HOST6, "host", 1.0)])
        .unwrap_or_else(|e| panic!("{e}\n{}", ctx()));
    let body = expect_code(&lab, "/readyz", 503).unwrap_or_else(|e| panic!("{e}\n{}", ctx()));
    assert!(body.contains(&format!("{TOR} (underlay) ")), "{body}");

    // The router's own bgpd stops: FRR no longer answers for BGP, so not live; every session counts as down.
    router.stop_daemon("bgpd");
    let body = expect_code(&lab, "/healthz", 503).unwrap_or_else(|e| panic!("{e}\n{}", sidecar.log()));
    assert!(body.starts_with("not live: "), "{body}");
    let ex = scrape(&lab);
    assert_eq!(value(&ex, "openpe_frr_up", &[]), Ok(0.0));
    sessions_are(&ex, &[(TOR, "underlay", 0.0), (HOST4, "host", 0.0), (HOST6, "host", 0.0)]).unwrap();
    assert!(sidecar.running(), "the sidecar exited: {}", sidecar.log());
    lab.del(&conf);
}

/// After the startup window one underlay session is enough for readiness (the host's speaker may be down for
/// reasons of its own); none is not. Unknown paths and methods are refused.
#[test]
#[ignore = "needs root"]
fn after_the_startup_window_one_underlay_session_makes_the_router_ready() {
    let lab = Lab::new("mw");
    let conf = lab.conf("1.0.0", json!({}));
    let mut tor = start_tor(&lab);
    lab.add(&conf);
    let (router, sidecar) =
        start_router(&lab, FrrOptions::default(), &["--http-listen", LISTEN, "--startup-window", "0"]);
    let ctx = || format!("router:\n{}\nsidecar log:\n{}", router.vtysh("show bgp summary"), sidecar.log());
    // No host speaker at all: ready once the ToR's session is up, saying which sessions are not.
    let body = wait_for("/readyz 200", || expect_code(&lab, "/readyz", 200), ctx);
    assert!(body.starts_with("ready: startup window of 0 s over and 1 underlay session(s) up; 1 of 3"), "{body}");
    assert!(body.contains(&format!("{HOST4} (host) ")) && body.contains(&format!("{HOST6} (host) ")), "{body}");
    sessions_are(&scrape(&lab), &[(TOR, "underlay", 1.0), (HOST4, "host", 0.0), (HOST6, "host", 0.0)]).unwrap();
    // Without the underlay: not ready.
    tor.stop_daemon("bgpd");
    let body = wait_for("/readyz 503", || expect_code(&lab, "/readyz", 503), ctx);
    assert!(body.starts_with("not ready: no underlay session Established; 0 of 3"), "{body}");
    assert_eq!(get(&lab, "/nothing-here").0, 404);
    let out = sh(&format!(
        "ip netns exec {} curl -s -o /dev/null -w '%{{http_code}}' -X POST http://{LISTEN}/metrics",
        lab.router.name
    ));
    assert_eq!(out, "405");
    lab.del(&conf);
}

const RANGE: &str = "192.168.11.0/24";

/// How many prefixes FRR's `peer` says it sent to `to` in `afi` (`ipv4Unicast`, `ipv6Unicast`).
fn sent(frr: &Frr, to: &str, afi: &str) -> Result<f64, String> {
    let v = frr.neighbor(to)?;
    v["addressFamilyInfo"][afi]["sentPrefixCounter"]
        .as_f64()
        .ok_or(format!("{} has no {afi} sentPrefixCounter: {v}", frr.name))
}

/// A ToR connecting into the router's listen range: while none has, the range is reported by itself at 0 and
/// the router is not ready; once the ToR's session is Established its gauge appears under its address, with
/// its prefix counts, and the router is ready. When the ToR's bgpd stops, FRR deletes the dynamic peer: its
/// series is gone from the next scrape, the range's own series at 0 is back, and the router is not ready.
#[test]
#[ignore = "needs root"]
fn a_listen_range_reports_its_dynamic_peer_and_gates_readiness() {
    let lab = Lab::new("ml");
    let conf = lab.conf("1.0.0", json!({"underlay": {"neighbors": [{"type": "External", "listenRange": RANGE}]}}));
    lab.add(&conf);
    let (router, sidecar) =
        start_router(&lab, FrrOptions::default(), &["--http-listen", LISTEN, "--startup-window", "3600"]);
    let bird = HOST_BIRD.start(&lab);
    let ctx = || {
        format!(
            "router:\n{}\nsidecar log:\n{}\nbird:\n{}\n/readyz: {:?}",
            router.vtysh("show bgp summary"),
            sidecar.log(),
            bird.birdc("show protocols"),
            get(&lab, "/readyz")
        )
    };
    let no_tor = [(RANGE, "underlay", 0.0), (HOST4, "host", 1.0), (HOST6, "host", 1.0)];
    // Once applied (the sessions can be up a moment before the sidecar has recorded its apply), the range alone
    // keeps the router from being ready.
    let body = wait_for(
        "the host sessions up, the range by itself at 0, not ready for it",
        || {
            sessions_are(&scrape(&lab), &no_tor)?;
            match expect_code(&lab, "/readyz", 503)? {
                b if b.contains("not applied yet") => Err(b),
                b => Ok(b),
            }
        },
        ctx,
    );
    assert!(
        body.starts_with("not ready: waiting for every session")
            && body.ends_with(
                "2 of 3 sessions Established; not Established: listen range 192.168.11.0/24 (underlay) no dynamic peer\n"
            ),
        "{body}"
    );

    let mut tor = start_tor(&lab);
    let with_tor = || format!("{}\ntor:\n{}", ctx(), tor.vtysh("show bgp summary"));
    let body = wait_for("/readyz 200 once the ToR connected", || expect_code(&lab, "/readyz", 200), with_tor);
    assert_eq!(body, "ready: all 3 sessions Established\n");
    sessions_are(&scrape(&lab), &[(TOR, "underlay", 1.0), (HOST4, "host", 1.0), (HOST6, "host", 1.0)])
        .unwrap_or_else(|e| panic!("{e}\n{}", with_tor()));
    // It is a dynamic peer of the range indeed, not a configured neighbor.
    let n = router.neighbor(TOR).unwrap();
    assert_eq!(n["peerGroup"], "range-192-168-11-0-24", "{n}");
    assert_eq!(n["peerSubnetRangeGroup"], RANGE, "{n}");
    assert!(!router.vtysh("show running-config").contains(&format!("neighbor {TOR} ")));
    // Its prefix counts, under its address: what the ToR says it sent, what the router's FRR says it sent.
    wait_for(
        "the dynamic peer's prefix counts",
        || {
            let ex = scrape(&lab);
            for (afi, key) in [("ipv4", "ipv4Unicast"), ("ipv6", "ipv6Unicast")] {
                let received = value(&ex, "openpe_bgp_prefixes_received", &[("peer", TOR), ("afi", afi)])?;
                let advertised = value(&ex, "openpe_bgp_prefixes_advertised", &[("peer", TOR), ("afi", afi)])?;
                let (by_tor, by_router) = (sent(&tor, "192.168.11.3", key)?, sent(&router, TOR, key)?);
                if received != by_tor || advertised != by_router || received < 1.0 || advertised < 2.0 {
                    return Err(format!(
                        "{afi}: received {received} (the ToR sent {by_tor}), advertised {advertised} (FRR: {by_router})"
                    ));
                }
            }
            Ok(())
        },
        with_tor,
    );

    tor.stop_daemon("bgpd");
    wait_for(
        "the router's FRR to delete the dynamic peer",
        || {
            let v = router.json("show bgp vrf default neighbors json");
            match v.as_object() {
                Some(m) if !m.contains_key(TOR) => Ok(()),
                Some(_) => Err(format!("FRR still lists {TOR}: {}", v[TOR]["bgpState"])),
                None => Err(format!("not an object: {v}")),
            }
        },
        ctx,
    );
    sessions_are(&scrape(&lab), &no_tor).unwrap_or_else(|e| panic!("{e}\n{}", ctx()));
    let ex = scrape(&lab);
    assert!(ex.all("openpe_bgp_prefixes_received").iter().all(|s| s.labels["peer"] != TOR), "stale counts");
    let body = expect_code(&lab, "/readyz", 503).unwrap_or_else(|e| panic!("{e}\n{}", ctx()));
    assert!(body.ends_with("not Established: listen range 192.168.11.0/24 (underlay) no dynamic peer\n"), "{body}");
    lab.del(&conf);
}

/// An unnumbered neighbor (IPv6 link-local, `interface: toswitch`) is reported by its interface, the name the
/// operator configured (FRR keys it so; its link-local address is FRR's `bgpNeighborAddr`), and counts for
/// readiness like any underlay session.
#[test]
#[ignore = "needs root"]
fn an_unnumbered_neighbor_is_reported_by_its_interface() {
    let lab = Lab::new("mu");
    unnumbered_uplink(&lab);
    let conf = lab.conf(
        "1.0.0",
        json!({"underlay": {"neighbors": [{"type": "External", "interface": "toswitch"}]},
               "l3passthrough": {"hostsession": {"localcidr": {"ipv6": null}}}}),
    );
    lab.add(&conf);
    let (router, sidecar) =
        start_router(&lab, FrrOptions::default(), &["--http-listen", LISTEN, "--startup-window", "3600"]);
    let bird = HOST_BIRD_V4.start(&lab);
    let ctx = || {
        format!(
            "router:\n{}\nsidecar log:\n{}\nbird:\n{}\n/readyz: {:?}",
            router.vtysh("show bgp summary"),
            sidecar.log(),
            bird.birdc("show protocols"),
            get(&lab, "/readyz")
        )
    };
    let body = wait_for(
        "the host session up, the unnumbered one down, not ready for it",
        || {
            sessions_are(&scrape(&lab), &[("toswitch", "underlay", 0.0), (HOST4, "host", 1.0)])?;
            match expect_code(&lab, "/readyz", 503)? {
                b if b.contains("not applied yet") => Err(b),
                b => Ok(b),
            }
        },
        ctx,
    );
    assert!(body.contains("1 of 2 sessions Established; not Established: toswitch (underlay) "), "{body}");

    let mut tor = start_unnumbered_tor(&lab);
    let with_tor = || format!("{}\ntor:\n{}", ctx(), tor.vtysh("show bgp summary"));
    let body = wait_for("/readyz 200 with the unnumbered session", || expect_code(&lab, "/readyz", 200), with_tor);
    assert_eq!(body, "ready: all 2 sessions Established\n");
    sessions_are(&scrape(&lab), &[("toswitch", "underlay", 1.0), (HOST4, "host", 1.0)])
        .unwrap_or_else(|e| panic!("{e}\n{}", with_tor()));
    let n = router.neighbor("toswitch").unwrap();
    assert!(n["bgpNeighborAddr"].as_str().is_some_and(|a| a.starts_with("fe80:")), "not over link-local: {n}");
    wait_for(
        "the unnumbered peer's prefix counts",
        || {
            let ex = scrape(&lab);
            let received = value(&ex, "openpe_bgp_prefixes_received", &[("peer", "toswitch"), ("afi", "ipv4")])?;
            let advertised = value(&ex, "openpe_bgp_prefixes_advertised", &[("peer", "toswitch"), ("afi", "ipv4")])?;
            let (by_tor, by_router) =
                (sent(&tor, "tor-side", "ipv4Unicast")?, sent(&router, "toswitch", "ipv4Unicast")?);
            match received == by_tor && advertised == by_router && received >= 1.0 && advertised >= 1.0 {
                true => Ok(()),
                false => Err(format!(
                    "received {received} (the ToR sent {by_tor}), advertised {advertised} (FRR: {by_router})"
                )),
            }
        },
        with_tor,
    );

    tor.stop_daemon("bgpd");
    wait_for(
        "the router's FRR to see the unnumbered session down",
        || match router.neighbor("toswitch")?["bgpState"].as_str() {
            Some("Established") => Err("still Established".into()),
            Some(_) => Ok(()),
            None => Err("no state".into()),
        },
        ctx,
    );
    sessions_are(&scrape(&lab), &[("toswitch", "underlay", 0.0), (HOST4, "host", 1.0)])
        .unwrap_or_else(|e| panic!("{e}\n{}", ctx()));
    let body = expect_code(&lab, "/readyz", 503).unwrap_or_else(|e| panic!("{e}\n{}", ctx()));
    assert!(body.contains("not Established: toswitch (underlay) "), "{body}");
    lab.del(&conf);
}

/// BFD and `maxPrefixes` configured: the ToR's BFD session Up gives `openpe_bfd_session_up` 1, and 0 once the
/// ToR's bfdd stops; a host announcing three IPv4 prefixes against `maxPrefixes: 2` has its IPv4 session closed
/// by FRR, which `openpe_bgp_max_prefix_exceeded` says (1 for it, 0 for the IPv6 session under the limit).
#[test]
#[ignore = "needs root"]
fn bfd_and_an_exceeded_prefix_limit_show_in_their_gauges() {
    let lab = Lab::new("mb");
    let conf = lab.conf(
        "1.0.0",
        json!({"underlay": {"neighbors": [{"asn": 64512, "address": TOR, "bfd": {}}]},
               "l3passthrough": {"hostsession": {"maxPrefixes": 2}}}),
    );
    let mut tor = Tor { daemons: &["bfdd"], neighbor: " neighbor 192.168.11.3 bfd\n", ..bgp::TOR }.start(&lab.tor);
    lab.add(&conf);
    let (router, sidecar) = start_router(
        &lab,
        FrrOptions { daemons: &["bfdd"], ..FrrOptions::default() },
        &["--http-listen", LISTEN, "--startup-window", "3600"],
    );
    let bird = HostBird { routes4: &["172.31.0.0/24", "172.31.1.0/24", "172.31.2.0/24"], ..HOST_BIRD }.start(&lab);
    let ctx = || {
        format!(
            "router:\n{}\nrouter bfd:\n{}\nsidecar log:\n{}\nbird:\n{}",
            router.vtysh("show bgp summary"),
            router.vtysh("show bfd peers"),
            sidecar.log(),
            bird.birdc("show protocols")
        )
    };
    let series = |ex: &prom::Exposition, name: &str| -> Vec<(String, f64)> {
        let mut v: Vec<(String, f64)> = ex.all(name).iter().map(|s| (s.labels["peer"].clone(), s.value)).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    wait_for(
        "BFD up, the IPv4 host session closed for its prefixes",
        || {
            let ex = scrape(&lab);
            sessions_are(&ex, &[(TOR, "underlay", 1.0), (HOST4, "host", 0.0), (HOST6, "host", 1.0)])?;
            let bfd = series(&ex, "openpe_bfd_session_up");
            let exceeded = series(&ex, "openpe_bgp_max_prefix_exceeded");
            match (bfd.as_slice(), exceeded.as_slice()) {
                ([(p, b)], [(p4, e4), (p6, e6)])
                    if p == TOR && *b == 1.0 && p4 == HOST4 && *e4 == 1.0 && p6 == HOST6 && *e6 == 0.0 =>
                {
                    Ok(())
                }
                _ => Err(format!("openpe_bfd_session_up {bfd:?}, openpe_bgp_max_prefix_exceeded {exceeded:?}")),
            }
        },
        ctx,
    );
    let n = router.neighbor(HOST4).unwrap();
    assert_eq!(
        n["lastNotificationReason"], "Cease/Maximum Number of Prefixes Reached",
        "FRR closed the host session for another reason: {n}"
    );

    tor.stop_daemon("bfdd");
    wait_for(
        "the router's bgpd to see BFD down",
        || match router.neighbor(TOR)?["peerBfdInfo"]["status"].as_str() {
            Some("Up") => Err("BFD still Up".into()),
            Some(_) => Ok(()),
            None => Err("no BFD status".into()),
        },
        ctx,
    );
    let ex = scrape(&lab);
    assert_eq!(value(&ex, "openpe_bfd_session_up", &[("peer", TOR)]), Ok(0.0), "{}", ctx());
    lab.del(&conf);
}

/// The parser the test above relies on fails on what it does not understand (a negative control).
#[test]
fn the_text_format_parser_rejects_what_it_does_not_understand() {
    let good = "# HELP a_total A.\n# TYPE a_total counter\na_total{result=\"ok\"} 3\n\
                # TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 0.5\nh_count 1\n";
    let ex = prom::parse(good).unwrap();
    assert_eq!(ex.get("a_total", &[("result", "ok")]), Some(3.0));
    assert_eq!(ex.get("h_count", &[]), Some(1.0));
    for bad in [
        "a 1",                              // no newline at the end
        "a 1\n",                            // no # TYPE
        "# TYPE a gauge\na{x=\"1\" 1\n",    // unterminated labels
        "# TYPE a gauge\na{x=1} 1\n",       // unquoted value
        "# TYPE a gauge\na one\n",          // not a number
        "# TYPE a gauge\na 1\na 2\n",       // the same series twice
        "# TYPE a gauge\n# EOF\n",          // a comment of another format
        "# TYPE a gauge\n\na 1\n",          // an empty line
        "# TYPE h histogram\nh_bucket 1\n", // a bucket without le
        "# TYPE a gauge\na 1 2 3\n",        // too many fields
        "# TYPE a widget\na 1\n",           // unknown type
    ] {
        assert!(prom::parse(bad).is_err(), "accepted {bad:?}");
    }
}
