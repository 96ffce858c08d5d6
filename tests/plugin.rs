//! The plugin through the CNI protocol, with real namespaces, veths and netlink (run as root).

mod common;

use common::*;
use serde_json::{json, Value};

fn ips_of(result: &Value) -> Vec<(String, u64)> {
    result["ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ip| (ip["address"].as_str().unwrap().to_string(), ip["interface"].as_u64().unwrap()))
        .collect()
}

#[test]
#[ignore = "needs root"]
fn every_cni_version_gets_its_own_result_format() {
    let lab = Lab::new("ver");
    let before = lab.snapshot();
    for version in ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] {
        let conf = lab.conf(version, json!({}));
        let r = lab.add(&conf);
        assert_eq!(r["cniVersion"], version);
        let ifs = r["interfaces"].as_array().unwrap();
        let names: Vec<&str> = ifs.iter().map(|i| i["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["pt-host", "pt-ns", "toswitch"]);
        assert!(ifs[0].get("sandbox").is_none(), "pt-host is on the host");
        assert_eq!(ifs[1]["sandbox"], lab.router.path_str());
        assert_eq!(ifs[2]["sandbox"], lab.router.path_str());
        for i in ifs {
            assert_eq!(i["mac"].as_str().unwrap().len(), 17, "{i}");
            assert_eq!(i.get("mtu").is_some(), version == "1.1.0", "mtu only from 1.1.0: {i}");
        }
        assert_eq!(
            ips_of(&r),
            [
                ("192.169.10.1/24".into(), 1),
                ("2001:db8:10::1/64".into(), 1),
                ("192.168.11.3/24".into(), 2),
                ("2001:db8:11::3/64".into(), 2)
            ]
        );
        for ip in r["ips"].as_array().unwrap() {
            let has_version = ip.get("version").is_some();
            assert_eq!(has_version, version.starts_with("0."), "ips[].version only below 1.0.0: {ip}");
        }
        lab.del(&conf);
        assert_eq!(lab.snapshot(), before, "DEL at {version} must restore everything");
    }
    assert!(lab.state_files().is_empty(), "{:?}", lab.state_files());
}

#[test]
#[ignore = "needs root"]
fn ipv4_only_ipv6_only_and_dual_stack() {
    let lab = Lab::new("fam");
    let cases = [
        (json!({"ipv4": "192.169.10.0/24"}), vec!["192.169.10.1/24"], vec!["192.169.10.2/24"]),
        (json!({"ipv6": "2001:db8:10::/64"}), vec!["2001:db8:10::1/64"], vec!["2001:db8:10::2/64"]),
        (
            json!({"ipv4": "192.169.10.0/24", "ipv6": "2001:db8:10::/64"}),
            vec!["192.169.10.1/24", "2001:db8:10::1/64"],
            vec!["192.169.10.2/24", "2001:db8:10::2/64"],
        ),
    ];
    for (cidrs, router, host) in cases {
        let conf = lab.conf("1.0.0", json!({"l3passthrough": {"hostsession": {"localcidr": null}}}));
        let mut conf = conf;
        conf["l3passthrough"]["hostsession"]["localcidr"] = cidrs;
        lab.add(&conf);
        assert_eq!(addrs(&lab.router, "pt-ns"), router);
        assert_eq!(addrs(&lab.host, "pt-host"), host);
        // IPv6 addresses go on without duplicate address detection: never tentative.
        for (ns, dev) in [(&lab.host, "pt-host"), (&lab.router, "pt-ns")] {
            let shown = ns.ip(&format!("addr show dev {dev}"));
            assert!(!shown.lines().any(|l| l.contains("2001:db8:10::") && l.contains("tentative")), "{shown}");
        }
        lab.del(&conf);
    }
}

#[test]
#[ignore = "needs root"]
fn node_index_sources_in_order() {
    let lab = Lab::new("idx");
    let host_v4 = |lab: &Lab| addrs(&lab.host, "pt-host")[0].clone();
    // (extra configuration, CNI_ARGS, expected host address, the source that must have given the index)
    let cases: Vec<(Value, &str, &str, &str)> = vec![
        (json!({}), "", "192.169.10.2/24", "allocated"), // lowest free
        (json!({"nodeIndex": 0}), "", "192.169.10.2/24", "nodeIndex"), // index 0 gives .2
        (json!({"nodeIndex": 3}), "", "192.169.10.5/24", "nodeIndex"), // index 3 gives .5
        (
            json!({"nodeIndexFrom": {"interface": "toswitch", "cidr": "192.168.11.0/24"}}),
            "",
            "192.169.10.5/24",
            "nodeIndexFrom",
        ),
        (json!({"nodeIndex": 3, "runtimeConfig": {"nodeIndex": 7}}), "", "192.169.10.9/24", "runtimeConfig.nodeIndex"),
        (
            json!({"runtimeConfig": {"nodeIndex": 7}, "args": {"cni": {"nodeIndex": 9}}}),
            "",
            "192.169.10.11/24",
            "args.cni.nodeIndex",
        ),
        (json!({"args": {"cni": {"nodeIndex": 9}}}), "OPENPE_NODE_INDEX=12", "192.169.10.14/24", "CNI_ARGS"),
        (
            json!({"nodeIndexFrom": {"interface": "toswitch", "cidr": "192.168.11.0/24"}}),
            "IgnoreUnknown=1;K8S_POD_NAME=x;OPENPE_NODE_INDEX=4",
            "192.169.10.6/24",
            "CNI_ARGS",
        ),
    ];
    for (extra, args, want, source) in cases {
        let conf = lab.conf("1.0.0", extra.clone());
        lab.run("ADD", &conf, &[("CNI_ARGS", args)]).ok();
        assert_eq!(host_v4(&lab), want, "for {extra} with CNI_ARGS {args:?}");
        let rec = &inspect_json(&lab)[0];
        assert_eq!(rec["indexSource"], source, "the index source recorded for {extra} with CNI_ARGS {args:?}");
        lab.del(&conf);
    }
}

fn inspect_json(lab: &Lab) -> Value {
    let out = std::process::Command::new(plugin_bin())
        .args(["inspect", "--json", "--state-dir", &lab.state.path.display().to_string()])
        .output()
        .unwrap();
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
#[ignore = "needs root"]
fn two_simulated_nodes_on_one_state_directory_get_different_addresses() {
    let a = Lab::new("twoa");
    let b = Lab::with_state("twob", TempDir::new("twobst"));
    let state = a.state.path.display().to_string();
    let conf_a = a.conf("1.0.0", json!({}));
    let conf_b = b.conf("1.0.0", json!({"stateDir": state}));
    a.add(&conf_a);
    b.add(&conf_b);
    assert_eq!(addrs(&a.host, "pt-host"), ["192.169.10.2/24", "2001:db8:10::2/64"]);
    assert_eq!(addrs(&b.host, "pt-host"), ["192.169.10.3/24", "2001:db8:10::3/64"]);
    // DEL releases the index; the next node takes the lowest free one.
    a.del(&conf_a);
    let c = Lab::with_state("twoc", TempDir::new("twocst"));
    let conf_c = c.conf("1.0.0", json!({"stateDir": state}));
    c.add(&conf_c);
    assert_eq!(addrs(&c.host, "pt-host")[0], "192.169.10.2/24");
    // An explicit index held by a live attachment is a conflict, never success.
    let conf_a3 = a.conf("1.0.0", json!({"nodeIndex": 1}));
    let before = a.snapshot();
    a.run("ADD", &conf_a3, &[]).err(11, "node index 1");
    assert_eq!(a.snapshot(), before);
    b.del(&conf_b);
    c.del(&conf_c);
    assert!(a.state_files().is_empty(), "{:?}", a.state_files());
}

#[test]
#[ignore = "needs root"]
fn nic_moves_with_addresses_mtu_and_mac_and_del_restores_it_exactly() {
    let lab = Lab::new("nic");
    lab.host.ip("link set toswitch group 7");
    let before = lab.snapshot();
    let mac = lab.host.ip("-j link show toswitch");
    let mac: Value = serde_json::from_str(&mac).unwrap();
    let mac = mac[0]["address"].as_str().unwrap().to_string();
    let conf = lab.conf("1.0.0", json!({}));
    lab.add(&conf);
    assert!(!lab.host.has_link("toswitch"), "the NIC left the host namespace");
    let moved: Value = serde_json::from_str(&lab.router.ip("-j link show toswitch")).unwrap();
    assert_eq!(moved[0]["address"], mac);
    assert_eq!(moved[0]["mtu"], 1400);
    assert!(moved[0]["flags"].as_array().unwrap().contains(&json!("UP")));
    assert_eq!(addrs(&lab.router, "toswitch"), ["192.168.11.3/24", "2001:db8:11::3/64"]);
    assert!(!lab.host.ip("route").contains("default"), "the gateway route left with the NIC");
    assert_eq!(lab.router.exec("cat /proc/sys/net/ipv4/ip_forward").trim(), "1");
    assert_eq!(lab.router.exec("cat /proc/sys/net/ipv6/conf/all/forwarding").trim(), "1");
    // The router really reaches the ToR over the moved NIC.
    lab.router.exec("ping -c1 -W2 192.168.11.2");
    let rec = &inspect_json(&lab)[0];
    assert_eq!(rec["nics"][0]["mtu"], 1400);
    assert_eq!(rec["nics"][0]["routes"].as_array().unwrap().len(), 3, "two IPv4 routes, one IPv6: {}", rec["nics"][0]);
    lab.del(&conf);
    assert_eq!(lab.snapshot(), before);
    assert!(lab.host.ip("route").contains("default via 192.168.11.2 dev toswitch metric 50"));
}

#[test]
#[ignore = "needs root"]
fn an_admin_down_nic_comes_back_down() {
    let lab = Lab::new("down");
    lab.host.ip("link set toswitch down");
    let before = lab.snapshot();
    let conf = lab.conf("1.0.0", json!({}));
    lab.add(&conf);
    lab.del(&conf);
    assert_eq!(lab.snapshot(), before);
}

#[test]
#[ignore = "needs root"]
fn mtu_sets_both_veth_ends() {
    let lab = Lab::new("mtu");
    let conf = lab.conf("1.1.0", json!({"mtu": 9000}));
    let r = lab.add(&conf);
    assert_eq!(r["interfaces"][0]["mtu"], 9000);
    assert!(lab.host.ip("link show pt-host").contains("mtu 9000"));
    assert!(lab.router.ip("link show pt-ns").contains("mtu 9000"));
    lab.del(&conf);
}

#[test]
#[ignore = "needs root"]
fn del_is_idempotent() {
    let lab = Lab::new("del");
    let conf = lab.conf("1.0.0", json!({}));
    let before = lab.snapshot();
    // Without ADD, with and without a namespace.
    lab.del(&conf);
    lab.run("DEL", &conf, &[("CNI_NETNS", "")]).ok();
    assert_eq!(lab.snapshot(), before);
    lab.add(&conf);
    lab.del(&conf);
    lab.del(&conf);
    // Without prevResult and with a configuration that no longer validates: teardown works from the record.
    lab.add(&conf);
    let broken = lab.conf("1.0.0", json!({"underlay": null, "l3passthrough": null}));
    lab.run("DEL", &broken, &[]).ok();
    assert_eq!(lab.snapshot(), before);
    assert!(lab.state_files().is_empty());
    // A DEL whose key has no record touches no link, even where pt-host exists.
    lab.add(&conf);
    let during = lab.snapshot();
    // (CNI_IFNAME is not part of the identity: DEL eth9 would find this attachment, see tests/records.rs.)
    lab.run("DEL", &conf, &[("CNI_CONTAINERID", "someone-else")]).ok();
    assert_eq!(lab.snapshot(), during);
    lab.del(&conf);
}

#[test]
#[ignore = "needs root"]
fn del_after_the_router_namespace_was_deleted() {
    let lab = Lab::new("gone");
    let conf = lab.conf("1.0.0", json!({}));
    lab.add(&conf);
    sh(&format!("ip netns del {}", lab.router.name));
    lab.del(&conf);
    assert!(!lab.host.has_link("pt-host"), "the veth died with its peer's namespace");
    assert!(lab.state_files().is_empty(), "{:?}", lab.state_files());
    // The virtual NIC died with the namespace; the host namespace is otherwise as it was.
    assert!(!lab.host.has_link("toswitch"));
    lab.del(&conf);
}

#[test]
#[ignore = "needs root"]
fn add_twice_fails_without_harming_the_first() {
    let lab = Lab::new("twice");
    let conf = lab.conf("1.0.0", json!({}));
    lab.add(&conf);
    let during = lab.snapshot();
    let files = lab.state_files();
    lab.run("ADD", &conf, &[]).err(11, "already exists");
    assert_eq!(lab.snapshot(), during);
    assert_eq!(lab.state_files(), files);
    // Another container on the same router namespace, or on the same host namespace: one attachment each.
    lab.run("ADD", &conf, &[("CNI_CONTAINERID", "other")]).err(11, "router namespace");
    let other_router = Ns::new("twice2");
    lab.run("ADD", &conf, &[("CNI_CONTAINERID", "other"), ("CNI_NETNS", &other_router.path_str())])
        .err(11, "host namespace");
    assert_eq!(lab.snapshot(), during);
    lab.del(&conf);
}

#[test]
#[ignore = "needs root"]
fn add_cleans_up_an_attachment_whose_router_namespace_is_gone() {
    let lab = Lab::new("stale");
    let conf = lab.conf("1.0.0", json!({"underlay": {"nics": []}}));
    lab.add(&conf);
    sh(&format!("ip netns del {}", lab.router.name));
    // The runtime never sent DEL; a new router pod for the same host comes up.
    let router2 = Ns::new("stale2");
    lab.run("ADD", &conf, &[("CNI_CONTAINERID", "new-pod"), ("CNI_NETNS", &router2.path_str())]).ok();
    let recs = inspect_json(&lab);
    assert_eq!(recs.as_array().unwrap().len(), 1);
    assert_eq!(recs[0]["key"]["containerId"], "new-pod");
    assert_eq!(addrs(&lab.host, "pt-host")[0], "192.169.10.2/24");
    lab.run("DEL", &conf, &[("CNI_CONTAINERID", "new-pod"), ("CNI_NETNS", &router2.path_str())]).ok();
    assert!(lab.state_files().is_empty());
}

#[test]
#[ignore = "needs root"]
fn check_reports_out_of_band_damage() {
    let lab = Lab::new("chk");
    let conf = lab.conf("1.0.0", json!({}));
    let result = lab.add(&conf);
    let mut with_prev = conf.clone();
    with_prev["prevResult"] = result;
    lab.run("CHECK", &with_prev, &[]).ok();
    assert!(lab.run("CHECK", &with_prev, &[]).stdout.is_empty(), "CHECK prints nothing on success");

    lab.run("CHECK", &conf, &[]).err(7, "prevResult");
    let mut old = with_prev.clone();
    old["cniVersion"] = json!("0.3.1");
    lab.run("CHECK", &old, &[]).err(1, "CHECK");

    lab.router.ip("addr del 192.169.10.1/24 dev pt-ns");
    lab.run("CHECK", &with_prev, &[]).err(100, "pt-ns");
    lab.router.ip("addr add 192.169.10.1/24 dev pt-ns");
    lab.run("CHECK", &with_prev, &[]).ok();

    lab.router.ip("link set toswitch down");
    lab.run("CHECK", &with_prev, &[]).err(100, "toswitch");
    lab.router.ip("link set toswitch up");

    lab.router.exec("echo 0 > /proc/sys/net/ipv4/ip_forward");
    lab.run("CHECK", &with_prev, &[]).err(100, "ip_forward");
    lab.router.exec("echo 1 > /proc/sys/net/ipv4/ip_forward");

    lab.host.ip("link del pt-host");
    lab.run("CHECK", &with_prev, &[]).err(100, "pt-host");
    lab.del(&conf);
    assert!(lab.state_files().is_empty());
}

#[test]
#[ignore = "needs root"]
fn gc_removes_what_the_runtime_no_longer_lists_and_status_reports_readiness() {
    let a = Lab::new("gca");
    let b = Lab::with_state("gcb", TempDir::new("gcbst"));
    let state = a.state.path.display().to_string();
    let conf_a = a.conf("1.1.0", json!({}));
    let conf_b = b.conf("1.1.0", json!({"stateDir": state}));
    a.add(&conf_a);
    let b_before = {
        let _ = &b;
        snapshot(&b.host.name)
    };
    let b_before_add = b_before.clone();
    b.add(&conf_b);
    let gc = a.conf("1.1.0", json!({"cni.dev/valid-attachments": [{"containerID": a.container, "ifname": "net1"}]}));
    run_plugin("GC", &[], &gc.to_string()).ok();
    assert!(a.host.has_link("pt-host"), "A is listed and stays");
    assert!(!b.host.has_link("pt-host"), "B is not listed and goes");
    assert_eq!(snapshot(&b.host.name), b_before_add, "B's NIC is restored");
    // The legacy key works too, and an empty list removes the rest.
    let gc = a.conf("1.1.0", json!({"cni.dev/attachments": []}));
    run_plugin("GC", &[], &gc.to_string()).ok();
    assert!(!a.host.has_link("pt-host"));
    assert!(a.state_files().is_empty());
    // GC needs 1.1.0.
    run_plugin("GC", &[], &a.conf("1.0.0", json!({})).to_string()).err(1, "GC");

    // STATUS: ready, then not ready when the state directory is unusable.
    run_plugin("STATUS", &[], &a.conf("1.1.0", json!({})).to_string()).ok();
    let file = TempDir::new("stfile");
    let not_dir = file.path.join("plain-file");
    std::fs::write(&not_dir, "x").unwrap();
    let out =
        run_plugin("STATUS", &[], &a.conf("1.1.0", json!({"stateDir": not_dir.display().to_string()})).to_string());
    out.err(50, "not ready");
    run_plugin("STATUS", &[], &a.conf("1.0.0", json!({})).to_string()).err(1, "STATUS");
}

#[test]
#[ignore = "needs root"]
fn chained_after_another_plugin_keeps_its_result() {
    let lab = Lab::new("chain");
    let mut conf = lab.conf("1.0.0", json!({}));
    conf["prevResult"] = json!({
        "cniVersion": "1.0.0",
        "interfaces": [{"name": "veth0a1b", "mac": "aa:aa:aa:aa:aa:01"}, {"name": "eth0", "mac": "aa:aa:aa:aa:aa:02", "sandbox": lab.router.path_str()}],
        "ips": [{"address": "10.99.0.5/24", "gateway": "10.99.0.1", "interface": 1}],
        "routes": [{"dst": "0.0.0.0/0", "gw": "10.99.0.1"}],
        "dns": {"nameservers": ["10.99.0.1"]}
    });
    let r = lab.add(&conf);
    let names: Vec<&str> = r["interfaces"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["veth0a1b", "eth0", "pt-host", "pt-ns", "toswitch"]);
    assert_eq!(r["ips"][0], json!({"address": "10.99.0.5/24", "gateway": "10.99.0.1", "interface": 1}));
    assert_eq!(r["ips"][1]["interface"], 3, "pt-ns is interface 3 after the two before");
    assert_eq!(r["routes"], conf["prevResult"]["routes"]);
    assert_eq!(r["dns"], conf["prevResult"]["dns"]);
    lab.del(&conf);
}

#[test]
fn version_needs_nothing_but_the_command() {
    let out = run_plugin("VERSION", &[], "");
    out.ok();
    let v = out.json();
    assert_eq!(v["supportedVersions"], json!(["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]));
    let out = run_plugin("VERSION", &[], r#"{"cniVersion": "0.4.0"}"#);
    assert_eq!(out.json()["cniVersion"], "0.4.0");
}

/// Every invalid input the plugin issue lists is refused with the right code and a message that names the
/// field, and changes nothing: no link, address or route in any namespace, no record.
#[test]
#[ignore = "needs root"]
fn invalid_input_is_refused_and_changes_nothing() {
    let lab = Lab::new("bad");
    let other = Lab::with_state("bado", TempDir::new("badost"));
    let state = lab.state.path.display().to_string();
    // A live attachment holding index 5, for the conflict case.
    let holder = other.conf("1.0.0", json!({"stateDir": state, "nodeIndex": 5}));
    other.add(&holder);
    let files_before = lab.state_files();
    let before = lab.snapshot();
    let scratch = TempDir::new("badscratch");
    let regular = scratch.path.join("regular-file");
    std::fs::write(&regular, "").unwrap();
    let regular = regular.display().to_string();
    let cidr = |v4: Value| json!({"l3passthrough": {"hostsession": {"localcidr": {"ipv4": v4, "ipv6": null}}}});
    let cidr6 = |v6: Value| json!({"l3passthrough": {"hostsession": {"localcidr": {"ipv4": null, "ipv6": v6}}}});
    #[allow(clippy::type_complexity)]
    let cases: Vec<(&str, Value, Vec<(&str, &str)>, u64, &str)> = vec![
        ("wrong family v4", cidr(json!("2001:db8::/64")), vec![], 7, "localcidr.ipv4"),
        ("wrong family v6", cidr6(json!("192.169.10.0/24")), vec![], 7, "localcidr.ipv6"),
        (
            "too small for the index",
            json!({"nodeIndex": 2, "l3passthrough": {"hostsession": {"localcidr": {"ipv4": "192.169.10.0/30", "ipv6": null}}}}),
            vec![],
            7,
            "localcidr.ipv4",
        ),
        ("/31", cidr(json!("192.169.10.0/31")), vec![], 7, "localcidr.ipv4"),
        ("/32", cidr(json!("192.169.10.1/32")), vec![], 7, "localcidr.ipv4"),
        ("/127", cidr6(json!("2001:db8::/127")), vec![], 7, "localcidr.ipv6"),
        ("/128", cidr6(json!("2001:db8::1/128")), vec![], 7, "localcidr.ipv6"),
        (
            "no family",
            json!({"l3passthrough": {"hostsession": {"localcidr": {"ipv4": null, "ipv6": null}}}}),
            vec![],
            7,
            "localcidr",
        ),
        ("not a CIDR", cidr(json!("192.169.10.0/33")), vec![], 7, "localcidr.ipv4"),
        ("zero ASN", json!({"underlay": {"asn": 0}}), vec![], 7, "underlay.asn"),
        ("ASN too big", json!({"underlay": {"asn": 4294967296u64}}), vec![], 7, "underlay.asn"),
        (
            "neighbor ASN a string",
            json!({"underlay": {"neighbors": [{"asn": "64512", "address": "192.168.11.2"}]}}),
            vec![],
            7,
            "underlay.neighbors[0].asn",
        ),
        (
            "hostasn and hostType",
            json!({"l3passthrough": {"hostsession": {"hostType": "External"}}}),
            vec![],
            7,
            "hostType",
        ),
        ("NIC missing", json!({"underlay": {"nics": ["nosuchnic"]}}), vec![], 7, "underlay.nics[0]"),
        ("NIC name with /", json!({"underlay": {"nics": ["a/b"]}}), vec![], 7, "underlay.nics[0]"),
        ("NIC name too long", json!({"underlay": {"nics": ["abcdefghijklmnop"]}}), vec![], 7, "underlay.nics[0]"),
        (
            "nodeIndexFrom without match",
            json!({"nodeIndexFrom": {"interface": "toswitch", "cidr": "10.9.0.0/24"}}),
            vec![],
            7,
            "nodeIndexFrom",
        ),
        ("index held by a live attachment", json!({"nodeIndex": 5}), vec![], 11, "node index 5"),
        ("hostNetns is the router", json!({"hostNetns": lab.router.path_str()}), vec![], 7, "hostNetns"),
        ("hostNetns missing", json!({"hostNetns": "/var/run/netns/does-not-exist-xyz"}), vec![], 7, "hostNetns"),
        ("hostNetns a regular file", json!({"hostNetns": regular}), vec![], 7, "hostNetns"),
        ("unsupported cniVersion", json!({"cniVersion": "0.2.0"}), vec![], 1, "cniVersion"),
        ("bad network name", json!({"name": "bad name"}), vec![], 7, "name"),
        ("stateDir relative", json!({"stateDir": "relative/dir"}), vec![], 7, "stateDir"),
        ("mtu too small for IPv6", json!({"mtu": 1000}), vec![], 7, "mtu"),
        ("CNI_NETNS missing", json!({}), vec![("CNI_NETNS", "")], 4, "CNI_NETNS"),
        ("CNI_NETNS does not exist", json!({}), vec![("CNI_NETNS", "/var/run/netns/nope-nope")], 4, "CNI_NETNS"),
        ("CNI_NETNS a regular file", json!({}), vec![("CNI_NETNS", regular.as_str())], 4, "CNI_NETNS"),
        ("container id traversal", json!({}), vec![("CNI_CONTAINERID", "../../etc")], 4, "CNI_CONTAINERID"),
        ("container id missing", json!({}), vec![("CNI_CONTAINERID", "")], 4, "CNI_CONTAINERID"),
        ("ifname with /", json!({}), vec![("CNI_IFNAME", "a/b")], 4, "CNI_IFNAME"),
        ("ifname too long", json!({}), vec![("CNI_IFNAME", "abcdefghijklmnop")], 4, "CNI_IFNAME"),
        ("unknown CNI_ARGS key", json!({}), vec![("CNI_ARGS", "FOO=bar")], 4, "CNI_ARGS"),
        ("bad OPENPE_NODE_INDEX", json!({}), vec![("CNI_ARGS", "OPENPE_NODE_INDEX=x")], 4, "OPENPE_NODE_INDEX"),
        ("unknown command", json!({}), vec![("CNI_COMMAND", "FROB")], 4, "CNI_COMMAND"),
    ];
    let total = cases.len();
    for (what, extra, env, code, field) in cases {
        let conf = lab.conf("1.0.0", json!({"stateDir": state}));
        let mut conf = conf;
        merge(&mut conf, extra);
        let cmd = env.iter().find(|(k, _)| *k == "CNI_COMMAND").map(|(_, v)| *v).unwrap_or("ADD");
        let env: Vec<(&str, &str)> = env.into_iter().filter(|(k, _)| *k != "CNI_COMMAND").collect();
        let out = lab.run(cmd, &conf, &env);
        assert_ne!(out.code, 0, "{what}: expected failure");
        let v = out.json();
        assert_eq!(v["code"], code, "{what}: {v}");
        assert!(v["msg"].as_str().unwrap().contains(field), "{what}: message must name {field}: {v}");
        assert_eq!(lab.snapshot(), before, "{what}: the host must be unchanged");
        assert_eq!(lab.state_files(), files_before, "{what}: no record may be left");
    }
    // Malformed stdin.
    let out = lab.run("ADD", &json!("x"), &[]);
    assert_eq!(out.json()["code"], 7);
    let out = run_plugin(
        "ADD",
        &[("CNI_CONTAINERID", "c"), ("CNI_NETNS", &lab.router.path_str()), ("CNI_IFNAME", "net1")],
        "{not json",
    );
    assert_eq!(out.json()["code"], 6);
    assert_eq!(lab.snapshot(), before);
    eprintln!("{} invalid inputs refused", total + 2);
    other.del(&holder);
}

#[test]
#[ignore = "needs root"]
fn records_of_an_earlier_boot_are_dropped_never_restored() {
    let lab = Lab::new("boot");
    let conf = lab.conf("1.0.0", json!({}));
    lab.add(&conf);
    let during = lab.snapshot();
    // As after a reboot onto a state directory that survived (a persistent stateDir).
    std::fs::write(lab.state.path.join("boot_id"), "00000000-0000-0000-0000-000000000000\n").unwrap();
    lab.del(&conf);
    assert_eq!(lab.snapshot(), during, "a record of another boot must not be restored over the running system");
    assert!(lab.state_files().is_empty(), "{:?}", lab.state_files());
    let now = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    assert_eq!(std::fs::read_to_string(lab.state.path.join("boot_id")).unwrap().trim(), now.trim());
}
