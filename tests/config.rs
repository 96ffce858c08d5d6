//! The configuration layer through its public API: the specification's form and upstream's, errors that name
//! their field, duplicate keys, and upstream's interfaces and properties. (Property tests of the same code are in
//! tests/properties.rs, the refusals end to end in tests/hostile.rs.)

use openpe::config::{parse_json, Passthrough, RemoteAs};
use openpe::error::{Error, Input, Kind};
use serde_json::{json, Value};

fn base() -> Value {
    json!({
        "cniVersion": "1.0.0", "name": "openpe", "type": "openpe-passthrough",
        "underlay": {"asn": 64514, "nics": ["toswitch"], "neighbors": [{"asn": 64512, "address": "192.168.11.2"}]},
        "l3passthrough": {"hostsession": {"asn": 64514, "hostasn": 64515,
            "localcidr": {"ipv4": "192.169.10.0/24", "ipv6": "2001:db8:10::/64"}}}
    })
}

fn err(v: Value) -> Error {
    Passthrough::parse(&v).unwrap_err()
}

#[test]
fn doc_form_parses() {
    let p = Passthrough::parse(&base()).unwrap();
    assert_eq!(p.underlay.asn, 64514);
    assert_eq!(p.host_session.host_as, RemoteAs::Asn(64515));
    assert_eq!(p.host_session.ipv6.unwrap().to_string(), "2001:db8:10::/64");
    assert_eq!(p.underlay.router_id_cidr.to_string(), "10.0.0.0/24");
}

#[test]
fn upstream_spelling_and_whole_resources() {
    let v = json!({
        "cniVersion": "1.0.0", "name": "openpe",
        "underlay": {"apiVersion": "openpe.openperouter.github.io/v1alpha1", "kind": "Underlay",
            "metadata": {"name": "underlay"}, "status": {},
            "spec": {"asn": 64514, "nics": ["toswitch"],
                "neighbors": [{"type": "External", "address": "192.168.11.2", "port": 1790,
                    "holdTimeSeconds": 9, "keepaliveTimeSeconds": 3, "connectTimeSeconds": 5, "ebgpMultiHop": true,
                    "password": "s3cret"}]}},
        "l3Passthrough": {"kind": "L3Passthrough", "spec": {"hostSession": {"asn": 64514, "hostType": "Internal",
            "localCIDR": {"ipv4": "192.169.10.7/24"}}}}
    });
    let p = Passthrough::parse(&v).unwrap();
    assert_eq!(p.underlay.neighbors[0].remote_as, RemoteAs::External);
    assert_eq!(p.underlay.neighbors[0].port, Some(1790));
    assert_eq!(p.host_session.host_as, RemoteAs::Internal);
    assert_eq!(p.host_session.ipv4.unwrap().to_string(), "192.169.10.0/24", "host bits are masked");
}

#[test]
fn errors_name_the_field() {
    let mut v = base();
    v["underlay"]["neighbors"][0]["asn"] = json!(0);
    assert!(err(v).msg.starts_with("underlay.neighbors[0].asn:"));
    let mut v = base();
    v["underlay"]["asn"] = json!(4294967296u64);
    assert!(err(v).msg.starts_with("underlay.asn:"));
    let mut v = base();
    v["l3passthrough"]["hostsession"]["localcidr"]["ipv4"] = json!("2001:db8::/64");
    assert!(err(v).msg.contains("localcidr.ipv4"));
    let mut v = base();
    v["l3passthrough"]["hostsession"]["localcidr"]["ipv4"] = json!("192.169.10.0/31");
    assert!(err(v).msg.contains("localcidr.ipv4"));
    let mut v = base();
    v["l3passthrough"]["hostsession"]["localcidr"] = json!({});
    assert!(err(v).msg.contains("at least one"));
    let mut v = base();
    v["l3passthrough"]["hostsession"]["hostType"] = json!("External");
    assert!(err(v).msg.contains("exactly one"));
    let mut v = base();
    v["underlay"]["neighbors"][0]["password"] = json!("a b");
    assert!(err(v).msg.contains("password"));
    let mut v = base();
    v["underlay"]["nics"] = json!(["bad/name"]);
    assert!(err(v).msg.starts_with("underlay.nics[0]:"));
    let mut v = base();
    v["underlay"]["neighbors"][0]["holdTimeSeconds"] = json!(9);
    assert!(err(v).msg.contains("set together"));
    assert_eq!(err(json!({"cniVersion": "1.0.0", "name": "x"})).kind, Kind::Invalid(Input::Config));
    let mut v = base();
    v["underlay"]["tunnelEndpoint"] = json!({"ipv4": "10.9.0.1"});
    let e = err(v);
    assert!(e.msg.starts_with("underlay.tunnelEndpoint: is an EVPN/SRv6 setting"), "{}", e.msg);
}

#[test]
fn duplicate_keys_are_refused_naming_the_object() {
    let e = parse_json(br#"{"underlay": {"neighbors": [{"asn": 1, "asn": 2}]}}"#).unwrap_err();
    assert_eq!(e.kind, Kind::Invalid(Input::Config));
    assert!(e.msg.starts_with("underlay.neighbors[0].asn: is given twice"), "{}", e.msg);
    assert_eq!(parse_json(b"{\"a\": 1,").unwrap_err().kind, Kind::Decode);
    assert!(parse_json(br#"{"a": {"b": 1}, "c": {"b": 1}}"#).is_ok());
}

#[test]
fn upstream_interfaces_and_properties() {
    let mut v = base();
    v["underlay"]["nics"] = Value::Null;
    v["underlay"]["interfaces"] = json!([{"type": "NetworkDevice", "networkDevice": {"interfaceName": "eth1"}}]);
    v["underlay"]["neighbors"][0]["properties"] = json!([{"type": "ebgpMultiHop", "ebgpMultiHop": {"ttl": 3}}]);
    v["underlay"]["nodeSelector"] = json!({"matchLabels": {"a": "b"}});
    let p = Passthrough::parse(&v).unwrap();
    assert_eq!(p.underlay.nics, ["eth1"]);
    assert_eq!(p.underlay.neighbors[0].ebgp_multi_hop, Some(3));
    v["underlay"]["interfaces"][0] = json!({"type": "CNIDevice"});
    let e = err(v.clone());
    assert_eq!(e.msg, "underlay.interfaces[0].cniDevice: is required");
    // A null inside rawConfig is the delegated plugin's to read: kept.
    let conflist = json!({"cniVersion": "1.0.0", "name": "under",
        "plugins": [{"type": "macvlan", "master": "eth1", "mac": null}]});
    v["underlay"]["interfaces"][0] = json!({"type": "CNIDevice", "cniDevice": {"type": "RawConfig",
        "rawConfig": conflist, "runtimeConfig": {"mac": "02:00:00:00:00:01"}}});
    let p = Passthrough::parse(&v).unwrap();
    assert!(p.underlay.nics.is_empty());
    assert_eq!(p.underlay.cni_devices.len(), 1);
    assert_eq!(p.underlay.cni_devices[0].interface_name, "net1");
    assert_eq!(p.underlay.cni_devices[0].conflist, conflist);
    assert_eq!(p.underlay.cni_devices[0].runtime_config["mac"], "02:00:00:00:00:01");
    v["underlay"]["interfaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "NetworkDevice", "networkDevice": {"interfaceName": "eth1"}}));
    assert_eq!(
        err(v.clone()).msg,
        "underlay.interfaces[1].type: all entries of underlay.interfaces must be of one type"
    );
    v["underlay"]["interfaces"][0] = json!({"type": "NetworkDevice", "networkDevice": {"interfaceName": "eth1"}});
    v["underlay"]["nics"] = json!(["eth1"]);
    assert!(err(v).msg.contains("not both"));
    let mut v = base();
    v["underlay"]["neighbors"][0]["ebgpMultiHop"] = json!(true);
    assert_eq!(Passthrough::parse(&v).unwrap().underlay.neighbors[0].ebgp_multi_hop, Some(255));
    v["underlay"]["neighbors"][0]["properties"] = json!([]);
    assert!(err(v).msg.contains("give one of the two"));
}

/// A null counts as absent, for the fields this project refuses too (YAML's `bfd:` with nothing after it).
#[test]
fn a_null_refused_field_is_absent() {
    let mut v = base();
    v["underlay"]["neighbors"][0]["bfd"] = Value::Null;
    v["underlay"]["gracefulRestart"] = Value::Null;
    assert_eq!(Passthrough::parse(&v).unwrap(), Passthrough::parse(&base()).unwrap());
    v["underlay"]["srv6"] = Value::Null;
    assert_eq!(Passthrough::parse(&v).unwrap(), Passthrough::parse(&base()).unwrap());
    v["underlay"]["srv6"] = json!({});
    assert!(err(v).msg.starts_with("underlay.srv6: is an EVPN/SRv6 setting"));
}

/// The fabric fields (issue 13) parse into their types, with upstream's defaults.
#[test]
fn fabric_fields() {
    use openpe::config::{AddressFamily, Bfd, Family, GracefulRestart, Peer};
    let mut v = base();
    v["underlay"]["nics"] = json!(["eth1"]);
    v["underlay"]["gracefulRestart"] = json!({"restartTimeSeconds": 30});
    v["underlay"]["routeReflector"] = json!({});
    v["underlay"]["neighbors"] = json!([
        {"type": "External", "interface": "eth1", "bfd": {"receiveInterval": 100, "sessionMode": "Passive"}},
        {"type": "Internal", "listenRange": "192.168.40.7/24",
         "addressFamilies": [{"family": "ipv4unicast", "properties": [{"type": "routeReflectorClient"}]}]},
        {"asn": 64512, "address": "2001:db8:11::2", "addressFamilies": ["ipv6unicast", "ipv4unicast"]}]);
    let u = Passthrough::parse(&v).unwrap().underlay;
    assert_eq!(u.graceful_restart, Some(GracefulRestart { restart_time_seconds: 30, stale_path_time_seconds: 360 }));
    assert_eq!(u.route_reflector.unwrap().cluster_id.to_string(), "192.0.2.1");
    assert_eq!(u.neighbors[0].peer, Peer::Interface("eth1".into()));
    assert_eq!(u.neighbors[0].bfd, Some(Bfd { receive_interval: Some(100), passive: true, ..Bfd::default() }));
    assert_eq!(u.neighbors[1].peer, Peer::ListenRange("192.168.40.0/24".parse().unwrap()));
    assert!(u.neighbors[1].is_rr_client() && !u.neighbors[0].is_rr_client());
    let both = [Family::Ipv4Unicast, Family::Ipv6Unicast]
        .map(|family| AddressFamily { family, route_reflector_client: false })
        .to_vec();
    assert_eq!(u.neighbors[2].address_families, Some(both));
    assert_eq!(u.peer_names(), ["eth1", "range-192-168-40-0-24", "2001:db8:11::2"]);
}
