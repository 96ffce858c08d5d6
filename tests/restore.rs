//! DEL gives the host back exactly what ADD took, on the uplink shapes L3 fabrics use (issue 11): /32 with an
//! onlink default, point-to-point peers, RFC 5549 next hops, route metrics, other tables, address flags and
//! lifetimes, permanent neighbours, device sysctls, two NICs; NICs that cannot move faithfully are refused up
//! front; a NIC renamed or given another MAC inside the router still comes home. The comparison is
//! `full_snapshot`: links (with master and promiscuity), every address with its flags, routes of every table,
//! permanent neighbours and per-device sysctls.

mod common;

use common::*;
use serde_json::{json, Value};

/// A lab whose NIC `toswitch` has no address or route but those `setup` adds (one `ip` command per line,
/// run in the host namespace).
fn shaped(tag: &str, setup: &str) -> Lab {
    let lab = Lab::new(tag);
    // The kernel's own link-local address stays; it comes back with the link.
    lab.host.ip("addr flush dev toswitch scope global");
    lab.host.ip("-6 route del 2001:db8:99::/64 dev toswitch");
    for cmd in setup.lines().map(str::trim).filter(|l| !l.is_empty()) {
        lab.host.ip(cmd);
    }
    lab
}

/// ADD, then DEL, and the host namespace must be exactly as before (and the router and ToR too). Returns the
/// snapshot taken before ADD.
fn round_trip(lab: &Lab, conf: &Value) -> String {
    let before = full_snapshot(&lab.host);
    let before_lab = lab.snapshot();
    lab.add(conf);
    for nic in conf["underlay"]["nics"].as_array().unwrap() {
        let nic = nic.as_str().unwrap();
        assert!(lab.router.has_link(nic) && !lab.host.has_link(nic), "{nic} moved into the router");
    }
    lab.del(conf);
    let after = full_snapshot(&lab.host);
    assert!(after == before, "the host must be as it was; differences:\n{}", diff(&before, &after));
    assert_eq!(lab.snapshot(), before_lab);
    assert!(lab.state_files().is_empty(), "{:?}", lab.state_files());
    before
}

/// Whether one line of the snapshot holds every fragment (`"key":value` pairs of the JSON `ip` gave, in any
/// order).
fn has_line(snapshot: &str, fragments: &[&str]) -> bool {
    snapshot.lines().any(|l| fragments.iter().all(|f| l.contains(f)))
}

#[test]
#[ignore = "needs root"]
fn slash32_with_an_onlink_default_route() {
    let lab = shaped(
        "r32",
        "addr add 192.168.11.3/32 dev toswitch
         route add default via 192.168.11.2 dev toswitch onlink
         -6 addr add 2001:db8:11::3/128 dev toswitch nodad
         -6 route add default via fe80::1 dev toswitch",
    );
    let before = round_trip(&lab, &lab.conf("1.0.0", json!({})));
    assert!(has_line(
        &before,
        &[r#""dst":"default""#, r#""gateway":"192.168.11.2""#, r#""dev":"toswitch""#, r#""flags":["onlink"]"#]
    ));
    assert!(has_line(&before, &[r#""dst":"default""#, r#""gateway":"fe80::1""#]), "{before}");
}

#[test]
#[ignore = "needs root"]
fn point_to_point_peer_address_with_a_route_via_the_peer() {
    let lab = shaped(
        "rpeer",
        "addr add 192.168.11.3 peer 192.168.11.2/32 dev toswitch
         route add default via 192.168.11.2 dev toswitch
         route add 10.50.0.0/16 via 192.168.11.2 dev toswitch metric 20",
    );
    let before = round_trip(&lab, &lab.conf("1.0.0", json!({})));
    assert!(
        has_line(&before, &[r#""local":"192.168.11.3""#, r#""address":"192.168.11.2""#, r#""prefixlen":32"#]),
        "{before}"
    );
    // The router got the peer too: it reaches the ToR over a /32.
    lab.add(&lab.conf("1.0.0", json!({})));
    let router: Value = serde_json::from_str(&lab.router.ip("-j -4 addr show dev toswitch")).unwrap();
    assert_eq!(router[0]["addr_info"][0]["address"], "192.168.11.2", "{router}");
    lab.del(&lab.conf("1.0.0", json!({})));
}

#[test]
#[ignore = "needs root"]
fn ipv4_route_via_an_ipv6_next_hop_and_route_metrics() {
    let lab = shaped(
        "rvia",
        "addr add 192.168.11.3/24 dev toswitch
         route add 10.60.0.0/16 via inet6 fe80::2 dev toswitch
         route add 10.70.0.0/16 via 192.168.11.2 dev toswitch mtu 1300 advmss 1260 initcwnd 10
         route add 10.71.0.0/16 via 192.168.11.2 dev toswitch mtu lock 1280 congctl reno",
    );
    let before = round_trip(&lab, &lab.conf("1.0.0", json!({})));
    assert!(
        has_line(&before, &[r#""dst":"10.60.0.0/16""#, r#""via":{"family":"inet6","host":"fe80::2"}"#]),
        "{before}"
    );
    assert!(has_line(&before, &[r#""metrics":[{"advmss":1260,"initcwnd":10,"mtu":1300}]"#]), "{before}");
}

#[test]
#[ignore = "needs root"]
fn routes_in_other_tables_and_a_user_route_in_table_local() {
    let lab = shaped(
        "rtab",
        "addr add 192.168.11.3/24 dev toswitch
         -6 addr add 2001:db8:11::3/64 dev toswitch nodad
         route add 10.80.0.0/16 via 192.168.11.2 dev toswitch table 100
         route add default via 192.168.11.2 dev toswitch table 1000 proto static
         route add 10.81.0.0/16 dev toswitch table local scope link
         -6 route add 2001:db8:81::/64 via 2001:db8:11::2 dev toswitch table 200 pref high
         -6 route add 2001:db8:82::/64 from 2001:db8:11::/64 via 2001:db8:11::2 dev toswitch",
    );
    let before = round_trip(&lab, &lab.conf("1.0.0", json!({})));
    let needles: [&[&str]; 5] = [
        &[r#""dst":"10.80.0.0/16""#, r#""table":"100""#],
        &[r#""dst":"2001:db8:82::/64""#, r#""from":"2001:db8:11::/64""#],
        &[r#""dst":"default""#, r#""table":"1000""#, r#""protocol":"static""#],
        &[r#""dst":"10.81.0.0/16""#, r#""table":"local""#, r#""scope":"link""#],
        &[r#""dst":"2001:db8:81::/64""#, r#""table":"200""#, r#""pref":"high""#],
    ];
    for needle in needles {
        assert!(has_line(&before, needle), "{needle:?} in {before}");
    }
}

#[test]
#[ignore = "needs root"]
fn address_label_noprefixroute_lifetimes_and_ipv6_without_nodad() {
    let lab = shaped(
        "raddr",
        "addr add 192.168.11.3/24 dev toswitch
         addr add 192.168.11.9/24 dev toswitch label toswitch:9
         addr add 10.90.0.1/24 dev toswitch noprefixroute
         addr add 10.91.0.1/24 dev toswitch valid_lft 3000 preferred_lft 2000
         -6 addr add 2001:db8:91::1/64 dev toswitch valid_lft 3000 preferred_lft 1000
         -6 addr add 2001:db8:12::3/64 dev toswitch",
    );
    let lifetimes = |lab: &Lab, ip: &str| -> (u64, u64) {
        let v: Value = serde_json::from_str(&lab.host.ip("-j addr show dev toswitch")).unwrap();
        let a = v[0]["addr_info"].as_array().unwrap().iter().find(|a| a["local"] == ip).cloned().unwrap();
        (a["valid_life_time"].as_u64().unwrap(), a["preferred_life_time"].as_u64().unwrap())
    };
    settle(&lab.host);
    let (valid0, _) = lifetimes(&lab, "10.91.0.1");
    std::thread::sleep(std::time::Duration::from_secs(2));
    let before = round_trip(&lab, &lab.conf("1.0.0", json!({})));
    assert!(has_line(
        &before,
        &[r#""local":"192.168.11.9""#, r#""prefixlen":24"#, r#""scope":"global""#, r#""label":"toswitch:9""#]
    ));
    assert!(has_line(
        &before,
        &[r#""local":"10.90.0.1""#, r#""prefixlen":24"#, r#""scope":"global""#, r#""noprefixroute":true"#]
    ));
    assert!(
        !has_line(&before, &[r#""local":"2001:db8:12::3""#, r#""prefixlen":64"#, r#""scope":"global""#, r#""nodad""#]),
        "{before}"
    );
    // Restored with what was left of the lifetimes, never reset and never permanent.
    for ip in ["10.91.0.1", "2001:db8:91::1"] {
        let (valid, preferred) = lifetimes(&lab, ip);
        assert!(valid <= valid0 - 2 && valid > 2900, "{ip}: valid {valid} (was {valid0} two seconds before ADD)");
        assert!(preferred < valid, "{ip}: preferred {preferred}, valid {valid}");
    }
}

#[test]
#[ignore = "needs root"]
fn an_address_that_expires_while_away_is_skipped() {
    let lab = shaped(
        "rexp",
        "addr add 192.168.11.3/24 dev toswitch
         addr add 10.92.0.1/24 dev toswitch valid_lft 3 preferred_lft 3
         route add 10.93.0.0/16 via 192.168.11.2 dev toswitch",
    );
    let before = full_snapshot(&lab.host);
    let conf = lab.conf("1.0.0", json!({}));
    lab.add(&conf);
    std::thread::sleep(std::time::Duration::from_secs(4));
    let out = lab.run("DEL", &conf, &[]);
    out.ok();
    assert!(out.stderr.contains("address 10.92.0.1/24 of toswitch expired"), "{}", out.stderr);
    // As if it had stayed home: the kernel would have removed it and its prefix route by now.
    let want: String = before.lines().filter(|l| !l.contains("10.92.0.")).collect::<Vec<_>>().join("\n");
    let after = full_snapshot(&lab.host);
    assert!(after == want, "differences:\n{}", diff(&want, &after));
    assert!(lab.state_files().is_empty());
}

#[test]
#[ignore = "needs root"]
fn permanent_neighbours_and_device_sysctls() {
    let lab = shaped(
        "rnei",
        "addr add 192.168.11.3/24 dev toswitch
         -6 addr add 2001:db8:11::3/64 dev toswitch nodad
         neigh add 192.168.11.50 lladdr 02:00:00:00:00:50 dev toswitch nud permanent
         -6 neigh add 2001:db8:11::50 lladdr 02:00:00:00:00:51 dev toswitch nud permanent router",
    );
    lab.host.exec(
        "echo 2 > /proc/sys/net/ipv4/conf/toswitch/rp_filter; echo 1 > /proc/sys/net/ipv4/conf/toswitch/arp_ignore; \
         echo 2 > /proc/sys/net/ipv4/conf/toswitch/arp_announce; echo 2 > /proc/sys/net/ipv6/conf/toswitch/accept_ra",
    );
    let before = round_trip(&lab, &lab.conf("1.0.0", json!({})));
    let needles: [&[&str]; 6] = [
        &["ipv4/conf/toswitch/rp_filter = 2"],
        &["ipv4/conf/toswitch/arp_ignore = 1"],
        &["ipv4/conf/toswitch/arp_announce = 2"],
        &["ipv6/conf/toswitch/accept_ra = 2"],
        &[r#""dst":"192.168.11.50""#, r#""lladdr":"02:00:00:00:00:50""#, r#""state":["PERMANENT"]"#],
        &[r#""dst":"2001:db8:11::50""#, r#""lladdr":"02:00:00:00:00:51""#, r#""router":null"#],
    ];
    for needle in needles {
        assert!(has_line(&before, needle), "{needle:?} in {before}");
    }
}

/// The device sysctls the link dump carries in other units (jiffies as milliseconds, unsigned values), the one
/// past Debian's headers (`force_forwarding`), those it does not carry at all (`stable_secret`,
/// `regen_min_advance`, `ra_honor_pio_life`), `stable_secret`'s effect on `addr_gen_mode`; and a host `conf/default` changed while the NIC was away: the NIC still comes back as it was.
#[test]
#[ignore = "needs root"]
fn device_sysctls_in_every_form_and_a_default_changed_while_the_nic_was_away() {
    let lab = shaped("rsys", "addr add 192.168.11.3/24 dev toswitch");
    let v6 = "/proc/sys/net/ipv6/conf/toswitch";
    let v4 = "/proc/sys/net/ipv4/conf/toswitch";
    lab.host.exec(&format!(
        "echo 7 > {v6}/router_solicitation_interval; echo 33 > {v6}/router_probe_interval; \
         echo 2 > {v6}/router_solicitation_delay; echo 100 > {v6}/router_solicitation_max_interval; \
         echo 4294967295 > {v6}/ra_defrtr_metric; echo 5 > {v6}/ioam6_id_wide; echo 1 > {v6}/force_forwarding; \
         echo 5 > {v6}/regen_min_advance; echo 1 > {v6}/ra_honor_pio_life; \
         echo 2001:db8::5 > {v6}/stable_secret; echo 0 > {v6}/addr_gen_mode; \
         echo 777 > {v4}/igmpv2_unsolicited_report_interval; echo 3 > {v4}/medium_id"
    ));
    let conf = lab.conf("1.0.0", json!({}));
    let before = full_snapshot(&lab.host);
    for needle in [
        "ipv6/conf/toswitch/router_solicitation_interval = 7",
        "ipv6/conf/toswitch/ra_defrtr_metric = 4294967295",
        "ipv6/conf/toswitch/stable_secret = 2001:0db8:0000:0000:0000:0000:0000:0005",
        "ipv6/conf/toswitch/addr_gen_mode = 0",
        "ipv4/conf/toswitch/medium_id = 3",
    ] {
        assert!(before.lines().any(|l| l.ends_with(needle)), "{needle} in {before}");
    }
    lab.add(&conf);
    // The host's defaults change while the NIC is away: it comes home with them, and DEL must undo that too.
    let read = |key: &str| lab.host.exec(&format!("cat /proc/sys/net/{key}")).trim().to_string();
    let keys = ["ipv4/conf/default/arp_ignore", "ipv6/conf/default/accept_ra"];
    let was: Vec<String> = keys.iter().map(|k| read(k)).collect();
    let set = |values: &[&str]| {
        for (k, v) in keys.iter().zip(values) {
            lab.host.exec(&format!("echo {v} > /proc/sys/net/{k}"));
        }
    };
    set(&["2", "2"]);
    lab.del(&conf);
    let nic = [read("ipv4/conf/toswitch/arp_ignore"), read("ipv6/conf/toswitch/accept_ra")];
    assert_eq!(nic.to_vec(), was, "the NIC's own values, not the changed defaults");
    set(&[&was[0], &was[1]]);
    let after = full_snapshot(&lab.host);
    assert!(after == before, "the host must be as it was; differences:\n{}", diff(&before, &after));
    assert!(lab.state_files().is_empty(), "{:?}", lab.state_files());
}

/// A second NIC `toswitch2` (192.168.12.3/24) to the same ToR.
fn second_nic(lab: &Lab) {
    lab.host.ip(&format!("link add toswitch2 type veth peer name tor-side2 netns {}", lab.tor.name));
    lab.host.ip("link set toswitch2 up");
    lab.host.ip("addr add 192.168.12.3/24 dev toswitch2");
    lab.tor.ip("link set tor-side2 up");
}

#[test]
#[ignore = "needs root"]
fn two_nics_with_a_route_on_one_using_a_source_on_the_other_and_multipath_routes_over_both() {
    let lab = shaped("rtwo", "addr add 192.168.11.3/24 dev toswitch");
    second_nic(&lab);
    lab.host.ip("route add 10.100.0.0/16 via 192.168.11.2 dev toswitch src 192.168.12.3");
    lab.host.ip(
        "route add 10.101.0.0/16 nexthop via 192.168.11.2 dev toswitch nexthop via 192.168.12.2 dev toswitch2 weight 3",
    );
    lab.host.ip("-6 route add 2001:db8:101::/64 nexthop via fe80::2 dev toswitch nexthop via fe80::3 dev toswitch2");
    let conf = lab.conf("1.0.0", json!({"underlay": {"nics": ["toswitch", "toswitch2"]}}));
    let before = round_trip(&lab, &conf);
    assert!(has_line(&before, &[r#""dst":"2001:db8:101::/64""#, r#""gateway":"fe80::3""#]), "{before}");
    assert!(
        has_line(&before, &[r#""dst":"10.100.0.0/16""#, r#""dev":"toswitch""#, r#""prefsrc":"192.168.12.3""#]),
        "{before}"
    );
    assert!(has_line(&before, &[r#""dst":"10.101.0.0/16""#, r#""weight":3"#]), "{before}");
}

#[test]
#[ignore = "needs root"]
fn a_bridge_port_a_nic_with_a_macvlan_on_it_and_a_bridge_are_refused_changing_nothing() {
    let lab = Lab::new("rref");
    second_nic(&lab);
    lab.host.ip("link add br0 type bridge");
    lab.host.ip("link set toswitch2 master br0");
    lab.host.ip("link add mv0 link toswitch type macvlan mode bridge");
    let before = full_snapshot(&lab.host);
    let before_lab = lab.snapshot();
    let cases = [
        (json!(["toswitch"]), "underlay.nics[0]: toswitch has devices stacked on it: mv0 (macvlan)"),
        (json!(["toswitch2"]), "underlay.nics[0]: toswitch2 is a port of the bridge br0"),
        (json!(["mv0", "br0"]), "underlay.nics[1]: br0 is a bridge, which the kernel does not move"),
    ];
    for (nics, msg) in cases {
        let conf = lab.conf("1.0.0", json!({"underlay": {"nics": nics}}));
        lab.run("ADD", &conf, &[]).err(7, msg);
        let after = full_snapshot(&lab.host);
        assert!(after == before, "{msg}: nothing may change:\n{}", diff(&before, &after));
        assert_eq!(lab.snapshot(), before_lab);
        assert!(lab.state_files().is_empty(), "{:?}", lab.state_files());
    }
}

#[test]
#[ignore = "needs root"]
fn a_macvlan_that_is_itself_the_nic_moves_and_comes_back() {
    let lab = Lab::new("rmv");
    lab.host.ip("link add mvnic link toswitch type macvlan mode bridge");
    lab.host.ip("link set mvnic up");
    lab.host.ip("addr add 192.168.11.40/24 dev mvnic");
    round_trip(&lab, &lab.conf("1.0.0", json!({"underlay": {"nics": ["mvnic"]}})));
}

#[test]
#[ignore = "needs root"]
fn renamed_or_given_another_mac_inside_the_router_it_comes_home_as_recorded() {
    let cases = [
        ("mac", "link set toswitch address 02:aa:bb:cc:dd:ee"),
        ("name", "link set toswitch down\nlink set toswitch name uplink0\nlink set uplink0 up"),
        (
            "both",
            "link set toswitch down\nlink set toswitch name uplink0 address 02:aa:bb:cc:dd:ef\nlink set uplink0 up",
        ),
    ];
    for (what, change) in cases {
        let lab = Lab::new(&format!("rren{what}"));
        let before = full_snapshot(&lab.host);
        let conf = lab.conf("1.0.0", json!({}));
        lab.add(&conf);
        for cmd in change.lines() {
            lab.router.ip(cmd);
        }
        lab.del(&conf);
        let after = full_snapshot(&lab.host);
        assert!(after == before, "{what}: the NIC must come home as recorded:\n{}", diff(&before, &after));
        assert!(!lab.router.has_link("uplink0") && !lab.router.has_link("toswitch"), "{what}");
        assert!(lab.state_files().is_empty(), "{what}: {:?}", lab.state_files());
    }
}

#[test]
#[ignore = "needs root"]
fn del_keeps_the_record_when_the_router_side_ifindex_belongs_to_another_device() {
    let lab = Lab::new("rcon");
    let before = full_snapshot(&lab.host);
    let conf = lab.conf("1.0.0", json!({}));
    lab.add(&conf);
    let v: Value = serde_json::from_str(&lab.router.ip("-j link show toswitch")).unwrap();
    let index = v[0]["ifindex"].as_u64().unwrap();
    // The NIC leaves for a namespace the plugin does not know, renamed, and another kind of device takes its
    // index.
    let elsewhere = Ns::new("rcone");
    lab.router.ip(&format!("link set toswitch netns {} name away0", elsewhere.name));
    lab.router.ip(&format!("link add toswitch index {index} type bridge"));
    let out = lab.run("DEL", &conf, &[]);
    out.err(100, &format!("ifindex {index} that toswitch had there now belongs to another device"));
    assert_eq!(lab.state_files().iter().filter(|f| f.starts_with("attachments/")).count(), 1, "the record stays");
    // Put things right by hand: the next DEL finishes the job.
    lab.router.ip("link del toswitch");
    elsewhere.ip(&format!("link set away0 netns {} name toswitch", lab.router.name));
    lab.del(&conf);
    let after = full_snapshot(&lab.host);
    assert!(after == before, "differences:\n{}", diff(&before, &after));
    assert!(lab.state_files().is_empty());
}

/// Records written before this release hold addresses as CIDR strings and routes without the newer fields;
/// they still restore.
#[test]
#[ignore = "needs root"]
fn a_record_of_the_earlier_format_restores() {
    let lab = Lab::new("rold");
    let before = lab.snapshot();
    let conf = lab.conf("1.0.0", json!({}));
    lab.add(&conf);
    let dir = lab.state.path.join("attachments");
    let file = std::fs::read_dir(&dir).unwrap().flatten().find(|e| !e.file_name().to_string_lossy().starts_with('.'));
    let path = file.unwrap().path();
    let mut rec: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    // Strip the record to the earlier format's fields.
    let nic = rec["nics"][0].as_object_mut().unwrap();
    nic.retain(|k, _| ["name", "mac", "mtu", "up", "addresses", "routes"].contains(&k.as_str()));
    for r in nic["routes"].as_array_mut().unwrap() {
        r.as_object_mut().unwrap().retain(|k, _| {
            ["destination", "gateway", "metric", "source", "scope", "protocol", "kind", "table"].contains(&k.as_str())
        });
    }
    std::fs::write(&path, serde_json::to_string_pretty(&rec).unwrap()).unwrap();
    lab.del(&conf);
    assert_eq!(lab.snapshot(), before);
    assert!(lab.state_files().is_empty());
}
