//! CNIDevice end to end (issue 14): the underlay interface is made by the reference `macvlan` plugin
//! (/usr/lib/cni/macvlan) on the lab's host NIC `toswitch` (a veth to the ToR, in the test's host namespace),
//! with `static` IPAM. ADD gives the router `net1` with its address and the MAC from `runtimeConfig`; BGP to the
//! ToR (FRR) over it is Established; CHECK passes, then fails after damage; DEL removes `net1` and leaves the
//! host as it was, also when the router namespace is gone. With the `fault-injection` feature, ADD and DEL are
//! killed around the delegation and the next DEL cleans up.

#[path = "common/bgp.rs"]
mod bgp;
mod common;

use bgp::*;
use common::*;
use serde_json::{json, Value};

const NET1: &str = "192.168.11.5/24";
const MAC: &str = "02:0e:9e:00:00:05";

fn conf(lab: &Lab) -> Value {
    let conflist = json!({
        "cniVersion": "1.0.0",
        "name": "underlay-macvlan",
        "plugins": [{
            "type": "macvlan",
            "master": "toswitch",
            "mode": "bridge",
            "capabilities": {"mac": true},
            "ipam": {"type": "static", "addresses": [{"address": NET1}]}
        }]
    });
    let mut c = lab.conf(
        "1.0.0",
        json!({"underlay": {"nics": null, "interfaces": [{"type": "CNIDevice", "cniDevice": {
            "type": "RawConfig", "rawConfig": conflist, "interfaceName": "net1",
            "runtimeConfig": {"mac": MAC, "portMappings": [{"hostPort": 1, "containerPort": 1}]}}}]}}),
    );
    c["underlay"]["nics"] = Value::Null;
    c
}

fn link_json(ns: &Ns, dev: &str) -> Value {
    let out = ns.ip(&format!("-d -j link show dev {dev}"));
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("ip -j link is not JSON ({e}): {out}"));
    v[0].clone()
}

fn records(lab: &Lab) -> usize {
    std::fs::read_dir(lab.state.path.join("attachments"))
        .map(|d| d.flatten().filter(|e| !e.file_name().to_string_lossy().starts_with('.')).count())
        .unwrap_or(0)
}

#[test]
#[ignore = "needs root"]
fn macvlan_underlay_add_bgp_check_del() {
    let lab = Lab::new("dlg");
    let conf = conf(&lab);
    let before = lab.snapshot();

    let result = lab.add(&conf);
    // The router has net1 with the static address and the MAC of runtimeConfig (a capability macvlan declares).
    assert_eq!(addrs(&lab.router, "net1"), [NET1]);
    let net1 = link_json(&lab.router, "net1");
    assert_eq!(net1["address"], MAC, "{net1}");
    assert_eq!(net1["linkinfo"]["info_kind"], "macvlan", "{net1}");
    assert!(lab.host.has_link("toswitch"), "the master stays in the host namespace");
    // The result carries the delegate's interface and address.
    let ifaces = result["interfaces"].as_array().unwrap();
    let at = ifaces.iter().position(|i| i["name"] == "net1").unwrap_or_else(|| panic!("no net1 in {result}"));
    assert_eq!(ifaces[at]["mac"], MAC);
    assert_eq!(ifaces[at]["sandbox"], lab.router.path_str());
    let ips = result["ips"].as_array().unwrap();
    assert!(ips.iter().any(|ip| ip["address"] == NET1 && ip["interface"] == at), "{result}");

    // BGP to the ToR over net1.
    let tor_conf = "router bgp 64512\n bgp router-id 192.168.11.2\n no bgp ebgp-requires-policy\n \
        neighbor 192.168.11.5 remote-as 64514\n neighbor 192.168.11.5 timers connect 2\n \
        neighbor 192.168.11.5 timers 1 3\nexit\n";
    let tor = Frr::start(&lab.tor, "tor", tor_conf);
    let router = Frr::start(&lab.router, "rtr", "! configured by openpe-sidecar\n");
    let sidecar = Sidecar::start(&lab, &router, &[]);
    wait_for(
        "the ToR session over net1 Established",
        || {
            let v = router.json("show bgp vrf default neighbors 192.168.11.2 json");
            match v["192.168.11.2"]["bgpState"].as_str() {
                Some("Established") => Ok(()),
                other => Err(format!("the session is {other:?}")),
            }
        },
        || format!("tor:\n{}\nsidecar:\n{}", tor.vtysh("show bgp summary"), sidecar.log()),
    );

    // CHECK passes, and fails once the delegated interface lost its address.
    let mut check = conf.clone();
    check["prevResult"] = result.clone();
    lab.run("CHECK", &check, &[]).ok();
    lab.router.ip(&format!("addr del {NET1} dev net1"));
    let e = lab.run("CHECK", &check, &[]).err(100, "the delegated plugin \"macvlan\" (CHECK of \"net1\"");
    assert!(e["msg"].as_str().unwrap().contains("192.168.11.5"), "{e}");

    drop(sidecar);
    drop(router);
    lab.del(&conf);
    assert!(!lab.router.has_link("net1"), "DEL removes net1");
    assert_eq!(records(&lab), 0);
    assert_eq!(lab.snapshot(), before, "the host, router and ToR are as before ADD");
}

/// The router namespace is gone before DEL: the delegate's DEL still runs (with an empty CNI_NETNS), and
/// everything else is cleaned up.
#[test]
#[ignore = "needs root"]
fn del_after_the_router_namespace_is_gone() {
    let lab = Lab::new("dlgn");
    let conf = conf(&lab);
    let host_before = snapshot(&lab.host.name);
    lab.add(&conf);
    assert!(lab.router.has_link("net1"));
    sh(&format!("ip netns del {}", lab.router.name));
    lab.del(&conf);
    assert_eq!(records(&lab), 0);
    assert_eq!(snapshot(&lab.host.name), host_before, "the host is as before ADD");
}

/// A delegate that fails during ADD (a master that does not exist) rolls ADD back completely.
#[test]
#[ignore = "needs root"]
fn a_failing_delegate_rolls_add_back() {
    let lab = Lab::new("dlgf");
    let mut conf = conf(&lab);
    conf["underlay"]["interfaces"][0]["cniDevice"]["rawConfig"]["plugins"][0]["master"] = json!("nosuchnic");
    let before = lab.snapshot();
    lab.run("ADD", &conf, &[]).err(100, "the delegated plugin \"macvlan\" (ADD of \"net1\" in the router) failed");
    assert_eq!(lab.snapshot(), before, "the failed ADD left something behind");
    assert_eq!(records(&lab), 0);
    // A plugin that is not in CNI_PATH is refused before anything changes.
    conf["underlay"]["interfaces"][0]["cniDevice"]["rawConfig"]["plugins"][0]["type"] = json!("nosuchplugin");
    lab.run("ADD", &conf, &[]).err(7, "underlay.interfaces[0].cniDevice.rawConfig.plugins[0].type: there is no plugin");
    assert_eq!(lab.snapshot(), before);
}

#[cfg(feature = "fault-injection")]
const ADD_POINTS: [&str; 3] = ["delegate:before-add", "delegate:plugin-added", "delegate:result-recorded"];
#[cfg(feature = "fault-injection")]
const DEL_POINTS: [&str; 3] = ["delegate:before-del", "delegate:plugin-deleted", "del:claims-released"];

/// ADD killed around the delegation: DEL cleans up everything (net1 included), and ADD works again.
#[cfg(feature = "fault-injection")]
#[test]
#[ignore = "needs root"]
fn add_killed_around_the_delegation_is_cleaned_up_by_del() {
    let lab = Lab::new("dlgk");
    let conf = conf(&lab);
    let before = lab.snapshot();
    for point in ADD_POINTS {
        let out = lab.run("ADD", &conf, &[("OPENPE_FAULT_POINT", point)]);
        assert_eq!(out.code, -1, "{point}: ADD was not killed: {}", out.stdout);
        assert_eq!(records(&lab), 1, "{point}: the record stays for DEL");
        if point != "delegate:before-add" {
            assert!(lab.router.has_link("net1"), "{point}: the delegate had made net1");
        }
        lab.del(&conf);
        assert_eq!(records(&lab), 0, "{point}");
        assert_eq!(lab.snapshot(), before, "{point}: DEL left something behind");
        lab.add(&conf);
        assert_eq!(addrs(&lab.router, "net1"), [NET1], "{point}");
        lab.del(&conf);
        assert_eq!(lab.snapshot(), before, "{point}");
    }
}

/// DEL killed around the delegation: the next DEL finishes the job.
#[cfg(feature = "fault-injection")]
#[test]
#[ignore = "needs root"]
fn del_killed_around_the_delegation_is_finished_by_the_next_del() {
    let lab = Lab::new("dlgd");
    let conf = conf(&lab);
    let before = lab.snapshot();
    for point in DEL_POINTS {
        lab.add(&conf);
        let out = lab.run("DEL", &conf, &[("OPENPE_FAULT_POINT", point)]);
        assert_eq!(out.code, -1, "{point}: DEL was not killed");
        assert_eq!(records(&lab), 1, "{point}: the record stays for the next DEL");
        lab.del(&conf);
        assert_eq!(records(&lab), 0, "{point}");
        assert_eq!(lab.snapshot(), before, "{point}: the second DEL left something behind");
    }
}

/// ADD killed at each of its fault points in turn (every kernel change and state write, and the delegation's
/// own points), until it completes: each time DEL restores everything.
#[cfg(feature = "fault-injection")]
#[test]
#[ignore = "needs root"]
fn add_killed_at_every_fault_point_with_delegation() {
    let lab = Lab::new("dlge");
    let conf = conf(&lab);
    let before = lab.snapshot();
    let mut n = 1;
    loop {
        let out = lab.run("ADD", &conf, &[("OPENPE_FAULT_AFTER", &n.to_string())]);
        if out.code == 0 {
            break;
        }
        assert_eq!(out.code, -1, "point {n}: ADD failed instead of dying: {}", out.stdout);
        lab.del(&conf);
        assert_eq!(records(&lab), 0, "point {n}");
        assert_eq!(lab.snapshot(), before, "point {n}: DEL left something behind");
        n += 1;
    }
    assert!(n > 5, "ADD passed only {n} fault points");
    assert_eq!(addrs(&lab.router, "net1"), [NET1]);
    lab.del(&conf);
    assert_eq!(lab.snapshot(), before);
}
