//! Hostile input: a table of bad configurations, environments and planted state. Each case must get the right
//! CNI error code and a message that names the field, and change nothing: `ip -j` snapshots of every namespace
//! involved and the state directory's files are compared before and after.

mod common;

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use common::*;
use serde_json::{json, Value};

type Setup = Box<dyn Fn(&Path, &Lab)>;

struct Case {
    what: &'static str,
    /// Merged over the lab's valid configuration (a null removes a field).
    patch: Value,
    env: Vec<(&'static str, String)>,
    /// Raw stdin instead of the configuration.
    stdin: Option<Vec<u8>>,
    /// Prepares the case's own state directory (planted links, modes, owners).
    setup: Option<Setup>,
    command: &'static str,
    code: u64,
    needle: &'static str,
}

fn case(what: &'static str, patch: Value, code: u64, needle: &'static str) -> Case {
    Case { what, patch, env: vec![], stdin: None, setup: None, command: "ADD", code, needle }
}

fn env_case(what: &'static str, k: &'static str, v: &str, code: u64, needle: &'static str) -> Case {
    Case { env: vec![(k, v.to_string())], ..case(what, json!({}), code, needle) }
}

fn stdin_case(what: &'static str, stdin: &[u8], code: u64, needle: &'static str) -> Case {
    Case { stdin: Some(stdin.to_vec()), ..case(what, json!({}), code, needle) }
}

fn state_case(what: &'static str, setup: Setup, needle: &'static str) -> Case {
    Case { setup: Some(setup), ..case(what, json!({}), 102, needle) }
}

fn neighbor(extra: Value) -> Value {
    let mut n = json!({"asn": 64512, "address": "192.168.11.2"});
    merge(&mut n, extra);
    json!({"underlay": {"neighbors": [n]}})
}

fn hostsession(extra: Value) -> Value {
    json!({"l3passthrough": {"hostsession": extra}})
}

fn cidrs(v4: Value, v6: Value) -> Value {
    hostsession(json!({"localcidr": {"ipv4": v4, "ipv6": v6}}))
}

fn cases(lab: &Lab, regular_file: &str) -> Vec<Case> {
    let router = lab.router.path_str();
    let long_string = "x".repeat(300);
    vec![
        // Malformed stdin.
        stdin_case("empty stdin", b"", 6, "JSON"),
        stdin_case("truncated JSON", b"{\"cniVersion\": \"1.0.0\",", 6, "JSON"),
        stdin_case("trailing garbage", b"{} x", 6, "JSON"),
        stdin_case("not UTF-8", b"{\"name\": \"\xff\xfe\"}", 6, "JSON"),
        stdin_case("nested too deep", &[b'['; 5000], 6, "JSON"),
        stdin_case("a number beyond f64", b"{\"cniVersion\":\"1.0.0\",\"name\":\"a\",\"x\":1e400}", 6, "JSON"),
        stdin_case("a JSON array", b"[]", 7, "object"),
        stdin_case("JSON null", b"null", 7, "object"),
        // The envelope.
        case("cniVersion missing", json!({"cniVersion": null}), 1, "cniVersion"),
        case("cniVersion unknown", json!({"cniVersion": "1.2.0"}), 1, "cniVersion"),
        case("cniVersion too old", json!({"cniVersion": "0.2.0"}), 1, "cniVersion"),
        case("cniVersion a number", json!({"cniVersion": 1}), 1, "cniVersion"),
        case("name missing", json!({"name": null}), 7, "name"),
        case("name with a space", json!({"name": "open pe"}), 7, "name"),
        case("name with a slash", json!({"name": "../etc"}), 7, "name"),
        case("name with a newline", json!({"name": "a\nb"}), 7, "name"),
        case("name too long", json!({"name": long_string}), 7, "name"),
        case("stateDir relative", json!({"stateDir": "run/x"}), 7, "stateDir"),
        case("stateDir with ..", json!({"stateDir": "/run/../etc"}), 7, "stateDir"),
        case("stateDir a number", json!({"stateDir": 5}), 7, "stateDir"),
        case("logLevel unknown", json!({"logLevel": "loud"}), 7, "logLevel"),
        case("logFile relative", json!({"logFile": "x.log"}), 7, "logFile"),
        case(
            "delegateTimeoutSeconds zero",
            json!({"delegateTimeoutSeconds": 0}),
            7,
            "delegateTimeoutSeconds: must be a whole number from 1 to 3600, got 0",
        ),
        case("delegateTimeoutSeconds a string", json!({"delegateTimeoutSeconds": "x"}), 7, "delegateTimeoutSeconds: "),
        case("prevResult not an object", json!({"prevResult": 5}), 7, "prevResult"),
        // The underlay.
        case("underlay missing", json!({"underlay": null}), 7, "underlay"),
        case("underlay a string", json!({"underlay": "x"}), 7, "underlay"),
        case("underlay kind wrong", json!({"underlay": {"kind": "L3Passthrough", "spec": {}}}), 7, "underlay.kind"),
        case("asn zero", json!({"underlay": {"asn": 0}}), 7, "underlay.asn"),
        case("asn negative", json!({"underlay": {"asn": -1}}), 7, "underlay.asn"),
        case("asn above 4294967295", json!({"underlay": {"asn": 4294967296u64}}), 7, "underlay.asn"),
        case("asn beyond u64", json!({"underlay": {"asn": 1.8446744073709552e19}}), 7, "underlay.asn"),
        case("asn fractional", json!({"underlay": {"asn": 64514.5}}), 7, "underlay.asn"),
        case("asn a string", json!({"underlay": {"asn": "64514"}}), 7, "underlay.asn"),
        case("nics missing", json!({"underlay": {"nics": null}}), 7, "underlay.nics"),
        case("nics not an array", json!({"underlay": {"nics": "toswitch"}}), 7, "underlay.nics"),
        case("nic a number", json!({"underlay": {"nics": [1]}}), 7, "underlay.nics[0]"),
        case("nic name too long", json!({"underlay": {"nics": ["abcdefghijklmnop"]}}), 7, "underlay.nics[0]"),
        case("nic name with /", json!({"underlay": {"nics": ["to/switch"]}}), 7, "underlay.nics[0]"),
        case("nic name with a newline", json!({"underlay": {"nics": ["toswitch\n"]}}), 7, "underlay.nics[0]"),
        case("nic name with a space", json!({"underlay": {"nics": ["to switch"]}}), 7, "underlay.nics[0]"),
        case("nic named pt-host", json!({"underlay": {"nics": ["pt-host"]}}), 7, "underlay.nics[0]"),
        case("nic listed twice", json!({"underlay": {"nics": ["toswitch", "toswitch"]}}), 7, "underlay.nics[1]"),
        case("nic that does not exist", json!({"underlay": {"nics": ["nosuchnic"]}}), 7, "underlay.nics[0]"),
        case("neighbors missing", json!({"underlay": {"neighbors": null}}), 7, "underlay.neighbors"),
        case("neighbors empty", json!({"underlay": {"neighbors": []}}), 7, "underlay.neighbors"),
        case(
            "neighbor address injects a line",
            neighbor(json!({"address": "192.168.11.2\nrouter bgp 1"})),
            7,
            "underlay.neighbors[0].address",
        ),
        case(
            "neighbor address not an IP",
            neighbor(json!({"address": "tor.example"})),
            7,
            "underlay.neighbors[0].address",
        ),
        case(
            "neighbor address with a space",
            neighbor(json!({"address": "192.168.11.2 "})),
            7,
            "underlay.neighbors[0].address",
        ),
        case("neighbor asn and type", neighbor(json!({"type": "External"})), 7, "exactly one"),
        case("neighbor neither asn nor type", neighbor(json!({"asn": null})), 7, "underlay.neighbors[0]"),
        case(
            "neighbor type unknown",
            neighbor(json!({"asn": null, "type": "Externalish"})),
            7,
            "underlay.neighbors[0].type",
        ),
        case(
            "neighbor type with a newline",
            neighbor(json!({"asn": null, "type": "External\n"})),
            7,
            "underlay.neighbors[0].type",
        ),
        case("neighbor port zero", neighbor(json!({"port": 0})), 7, "underlay.neighbors[0].port"),
        case("neighbor port too big", neighbor(json!({"port": 65536})), 7, "underlay.neighbors[0].port"),
        case("password with a space", neighbor(json!({"password": "a b"})), 7, "underlay.neighbors[0].password"),
        case(
            "password with a newline",
            neighbor(json!({"password": "a\nno router bgp"})),
            7,
            "underlay.neighbors[0].password",
        ),
        case("password too long", neighbor(json!({"password": "p".repeat(81)})), 7, "underlay.neighbors[0].password"),
        case("password empty", neighbor(json!({"password": ""})), 7, "underlay.neighbors[0].password"),
        case("hold time 2", neighbor(json!({"holdTimeSeconds": 2, "keepaliveTimeSeconds": 1})), 7, "holdTimeSeconds"),
        case("hold time without keepalive", neighbor(json!({"holdTimeSeconds": 9})), 7, "holdTimeSeconds"),
        case(
            "keepalive above hold",
            neighbor(json!({"holdTimeSeconds": 9, "keepaliveTimeSeconds": 10})),
            7,
            "keepaliveTimeSeconds",
        ),
        case("connect time zero", neighbor(json!({"connectTimeSeconds": 0})), 7, "connectTimeSeconds"),
        case("ebgpMultiHop a string", neighbor(json!({"ebgpMultiHop": "yes"})), 7, "ebgpMultiHop"),
        case(
            "neighbor listed twice",
            json!({"underlay": {"neighbors": [{"asn": 1, "address": "192.168.11.2"}, {"asn": 2, "address": "192.168.11.2"}]}}),
            7,
            "underlay.neighbors[1].address",
        ),
        case("routerIDCIDR IPv6", json!({"underlay": {"routerIDCIDR": "2001:db8::/64"}}), 7, "routerIDCIDR"),
        case(
            "routerIDCIDR too small",
            json!({"nodeIndex": 5, "underlay": {"routerIDCIDR": "10.0.0.0/30"}}),
            7,
            "routerIDCIDR",
        ),
        // Neighbor addresses that cannot be a BGP peer over the underlay.
        case(
            "neighbor the router's own address",
            neighbor(json!({"address": "192.169.10.1"})),
            7,
            "underlay.neighbors[0].address",
        ),
        case(
            "neighbor the router's own IPv6",
            neighbor(json!({"address": "2001:db8:10::1"})),
            7,
            "underlay.neighbors[0].address",
        ),
        case(
            "neighbor inside localcidr",
            neighbor(json!({"address": "192.169.10.50"})),
            7,
            "underlay.neighbors[0].address",
        ),
        case(
            "neighbor inside IPv6 localcidr",
            neighbor(json!({"address": "2001:db8:10::99"})),
            7,
            "underlay.neighbors[0].address",
        ),
        case("neighbor unspecified", neighbor(json!({"address": "0.0.0.0"})), 7, "underlay.neighbors[0].address"),
        case("neighbor IPv6 unspecified", neighbor(json!({"address": "::"})), 7, "underlay.neighbors[0].address"),
        case("neighbor broadcast", neighbor(json!({"address": "255.255.255.255"})), 7, "underlay.neighbors[0].address"),
        case("neighbor multicast", neighbor(json!({"address": "224.0.0.5"})), 7, "underlay.neighbors[0].address"),
        case("neighbor IPv6 multicast", neighbor(json!({"address": "ff02::5"})), 7, "underlay.neighbors[0].address"),
        case("neighbor loopback", neighbor(json!({"address": "127.0.0.1"})), 7, "underlay.neighbors[0].address"),
        case("neighbor IPv6 loopback", neighbor(json!({"address": "::1"})), 7, "underlay.neighbors[0].address"),
        case("neighbor IPv6 link-local", neighbor(json!({"address": "fe80::1"})), 7, "underlay.neighbors[0].address"),
        case(
            "neighbor with leading zeros",
            neighbor(json!({"address": "192.168.011.2"})),
            7,
            "underlay.neighbors[0].address",
        ),
        // Upstream fields: EVPN-only ones refused, not-yet-rendered ones refused, naming them.
        case("underlay evpn", json!({"underlay": {"evpn": {"vtepcidr": "100.65.0.0/24"}}}), 7, "underlay.evpn"),
        case("underlay tunnelEndpoint", json!({"underlay": {"tunnelEndpoint": {}}}), 7, "underlay.tunnelEndpoint"),
        case("underlay isis", json!({"underlay": {"isis": {}}}), 7, "underlay.isis"),
        case("underlay srv6", json!({"underlay": {"srv6": {}}}), 7, "underlay.srv6"),
        // The fabric fields (issue 13): each bad value refused, naming the field.
        case(
            "gracefulRestart restartTime 0",
            json!({"underlay": {"gracefulRestart": {"restartTimeSeconds": 0}}}),
            7,
            "underlay.gracefulRestart.restartTimeSeconds",
        ),
        case(
            "gracefulRestart stalePathTime above 4095",
            json!({"underlay": {"gracefulRestart": {"stalePathTimeSeconds": 4096}}}),
            7,
            "underlay.gracefulRestart.stalePathTimeSeconds",
        ),
        case(
            "gracefulRestart not an object",
            json!({"underlay": {"gracefulRestart": true}}),
            7,
            "underlay.gracefulRestart",
        ),
        case(
            "routeReflector clusterID IPv6",
            json!({"underlay": {"routeReflector": {"clusterID": "2001:db8::1"}}}),
            7,
            "underlay.routeReflector.clusterID",
        ),
        case(
            "routeReflector clusterID inside routerIDCIDR",
            json!({"underlay": {"routeReflector": {"clusterID": "10.0.0.9"}}}),
            7,
            "underlay.routeReflector.clusterID: 10.0.0.9 lies inside underlay.routerIDCIDR",
        ),
        case(
            "neighbor address and interface",
            neighbor(json!({"interface": "toswitch"})),
            7,
            "underlay.neighbors[0].address and underlay.neighbors[0].interface: give exactly one",
        ),
        case(
            "neighbor interface and listenRange",
            neighbor(json!({"address": null, "interface": "toswitch", "listenRange": "192.168.11.0/24"})),
            7,
            "underlay.neighbors[0].interface and underlay.neighbors[0].listenRange",
        ),
        case(
            "neighbor with no peer",
            neighbor(json!({"address": null})),
            7,
            "underlay.neighbors[0].address: is required (or underlay.neighbors[0].interface",
        ),
        case(
            "neighbor interface not an underlay device",
            neighbor(json!({"address": null, "interface": "eth9"})),
            7,
            "underlay.neighbors[0].interface: \"eth9\" is not one of the underlay's devices",
        ),
        case(
            "neighbor interface too long",
            neighbor(json!({"address": null, "interface": "a234567890123456"})),
            7,
            "underlay.neighbors[0].interface",
        ),
        case(
            "neighbor interface the veth",
            json!({"underlay": {"nics": ["toswitch"], "neighbors": [{"asn": 1, "interface": "pt-ns"}]}}),
            7,
            "underlay.neighbors[0].interface: \"pt-ns\" is the plugin's own veth",
        ),
        case(
            "neighbor interface twice",
            json!({"underlay": {"neighbors": [{"asn": 1, "interface": "toswitch"}, {"asn": 2, "interface": "toswitch"}]}}),
            7,
            "underlay.neighbors[1].interface: \"toswitch\" is listed twice",
        ),
        case(
            "listenRange not a CIDR",
            neighbor(json!({"address": null, "listenRange": "192.168.11.0"})),
            7,
            "underlay.neighbors[0].listenRange",
        ),
        case(
            "listenRange IPv6 link-local",
            neighbor(json!({"address": null, "listenRange": "fe80::/64"})),
            7,
            "underlay.neighbors[0].listenRange: fe80::/64 overlaps the IPv6 link-local range",
        ),
        case(
            "listenRange overlapping another",
            json!({"underlay": {"neighbors": [{"asn": 1, "listenRange": "192.168.0.0/16"}, {"asn": 2, "listenRange": "192.168.11.0/24"}]}}),
            7,
            "underlay.neighbors[1].listenRange: 192.168.11.0/24 overlaps the listen range 192.168.0.0/16",
        ),
        case(
            "listenRange overlapping localcidr",
            neighbor(json!({"address": null, "listenRange": "192.169.0.0/16"})),
            7,
            "underlay.neighbors[0].listenRange: 192.169.0.0/16 overlaps l3passthrough.hostsession.localcidr.ipv4",
        ),
        case(
            "bfd receiveInterval below 10",
            neighbor(json!({"bfd": {"receiveInterval": 9}})),
            7,
            "underlay.neighbors[0].bfd.receiveInterval",
        ),
        case(
            "bfd transmitInterval above 60000",
            neighbor(json!({"bfd": {"transmitInterval": 60001}})),
            7,
            "underlay.neighbors[0].bfd.transmitInterval",
        ),
        case(
            "bfd detectMultiplier 1",
            neighbor(json!({"bfd": {"detectMultiplier": 1}})),
            7,
            "underlay.neighbors[0].bfd.detectMultiplier",
        ),
        case(
            "bfd sessionMode unknown",
            neighbor(json!({"bfd": {"sessionMode": "Echo"}})),
            7,
            "underlay.neighbors[0].bfd.sessionMode",
        ),
        case(
            "bfd minimumTTL single hop",
            neighbor(json!({"bfd": {"minimumTTL": 250}})),
            7,
            "underlay.neighbors[0].bfd.minimumTTL: applies to multihop BFD sessions only",
        ),
        case(
            "bfd minimumTTL 255",
            neighbor(json!({"properties": [{"type": "ebgpMultiHop"}], "bfd": {"minimumTTL": 255}})),
            7,
            "underlay.neighbors[0].bfd.minimumTTL",
        ),
        case(
            "addressFamilies evpn",
            neighbor(json!({"addressFamilies": ["evpn"]})),
            7,
            "underlay.neighbors[0].addressFamilies[0]: \"evpn\" is an EVPN/VPN family",
        ),
        case(
            "addressFamilies ipv4vpn object",
            neighbor(json!({"addressFamilies": [{"family": "ipv4vpn"}]})),
            7,
            "underlay.neighbors[0].addressFamilies[0]: \"ipv4vpn\" is an EVPN/VPN family",
        ),
        case(
            "addressFamilies empty",
            neighbor(json!({"addressFamilies": []})),
            7,
            "underlay.neighbors[0].addressFamilies: lists no family",
        ),
        case(
            "addressFamilies twice",
            neighbor(json!({"addressFamilies": ["ipv4unicast", {"family": "ipv4unicast"}]})),
            7,
            "underlay.neighbors[0].addressFamilies[1]: ipv4unicast is listed twice",
        ),
        case(
            "routeReflectorClient on eBGP",
            neighbor(
                json!({"addressFamilies": [{"family": "ipv4unicast", "properties": [{"type": "routeReflectorClient"}]}]}),
            ),
            7,
            "underlay.neighbors[0].addressFamilies[0].properties: routeReflectorClient is for Internal neighbors only",
        ),
        case(
            "addressFamilies property unknown",
            neighbor(
                json!({"asn": null, "type": "Internal", "addressFamilies": [{"family": "ipv4unicast", "properties": [{"type": "nextHopSelf"}]}]}),
            ),
            7,
            "underlay.neighbors[0].addressFamilies[0]",
        ),
        case(
            "password and passwordSecret",
            neighbor(json!({"password": "abc", "passwordSecret": "bgp"})),
            7,
            "underlay.neighbors[0].password and underlay.neighbors[0].passwordSecret: give one of the two",
        ),
        case(
            "passwordSecret not a Secret name",
            neighbor(json!({"passwordSecret": "../etc"})),
            7,
            "underlay.neighbors[0].passwordSecret: \"../etc\" is not a Secret name",
        ),
        case(
            "passwordSecret name with a capital",
            neighbor(json!({"passwordSecret": {"name": "Bgp"}})),
            7,
            "underlay.neighbors[0].passwordSecret: \"Bgp\" is not a Secret name",
        ),
        case(
            "passwordSecret key of the kubelet",
            neighbor(json!({"passwordSecret": {"name": "bgp", "key": "..data"}})),
            7,
            "underlay.neighbors[0].passwordSecret: \"..data\" is not a Secret key",
        ),
        case(
            "passwordSecret key with a slash",
            neighbor(json!({"passwordSecret": {"name": "bgp", "key": "a/b"}})),
            7,
            "underlay.neighbors[0].passwordSecret: \"a/b\" is not a Secret key",
        ),
        case(
            "passwordSecret with a namespace",
            neighbor(json!({"passwordSecret": {"name": "bgp", "namespace": "kube-system"}})),
            7,
            "underlay.neighbors[0].passwordSecret: unknown field `namespace`",
        ),
        case(
            "passwordSecret a number",
            neighbor(json!({"passwordSecret": 7})),
            7,
            "underlay.neighbors[0].passwordSecret: must be a Secret name or",
        ),
        case(
            "passwordSecret without a name",
            neighbor(json!({"passwordSecret": {"key": "password"}})),
            7,
            "underlay.neighbors[0].passwordSecret: missing field `name`",
        ),
        case(
            "CNIDevice without cniDevice",
            json!({"underlay": {"nics": null, "interfaces": [{"type": "CNIDevice"}]}}),
            7,
            "underlay.interfaces[0].cniDevice: is required",
        ),
        case(
            "cniDevice type not RawConfig",
            json!({"underlay": {"nics": null, "interfaces": [{"type": "CNIDevice", "cniDevice": {"type": "Other", "rawConfig": {}}}]}}),
            7,
            "underlay.interfaces[0].cniDevice.type: unknown variant `Other`",
        ),
        case(
            "cniDevice without rawConfig",
            json!({"underlay": {"nics": null, "interfaces": [{"type": "CNIDevice", "cniDevice": {"type": "RawConfig"}}]}}),
            7,
            "underlay.interfaces[0].cniDevice.rawConfig: is required",
        ),
        case(
            "rawConfig cniVersion before 1.0.0",
            json!({"underlay": {"nics": null, "interfaces": [{"type": "CNIDevice", "cniDevice": {"type": "RawConfig", "rawConfig": {"cniVersion": "0.4.0", "name": "u", "plugins": [{"type": "macvlan"}]}}}]}}),
            7,
            "underlay.interfaces[0].cniDevice.rawConfig.cniVersion: must be 1.0.0 or later",
        ),
        case(
            "rawConfig cniVersion not X.Y.Z",
            json!({"underlay": {"nics": null, "interfaces": [{"type": "CNIDevice", "cniDevice": {"type": "RawConfig", "rawConfig": {"cniVersion": "1.0", "name": "u", "plugins": [{"type": "macvlan"}]}}}]}}),
            7,
            "underlay.interfaces[0].cniDevice.rawConfig.cniVersion: must be 1.0.0 or later",
        ),
        case(
            "rawConfig without plugins",
            json!({"underlay": {"nics": null, "interfaces": [{"type": "CNIDevice", "cniDevice": {"type": "RawConfig", "rawConfig": {"cniVersion": "1.0.0", "name": "u", "plugins": []}}}]}}),
            7,
            "underlay.interfaces[0].cniDevice.rawConfig.plugins: is required",
        ),
        case(
            "rawConfig bad name",
            json!({"underlay": {"nics": null, "interfaces": [{"type": "CNIDevice", "cniDevice": {"type": "RawConfig", "rawConfig": {"cniVersion": "1.0.0", "name": "a b", "plugins": [{"type": "macvlan"}]}}}]}}),
            7,
            "underlay.interfaces[0].cniDevice.rawConfig.name: is required",
        ),
        case(
            "delegate type a path",
            json!({"underlay": {"nics": null, "interfaces": [{"type": "CNIDevice", "cniDevice": {"type": "RawConfig", "rawConfig": {"cniVersion": "1.0.0", "name": "u", "plugins": [{"type": "../../bin/sh"}]}}}]}}),
            7,
            "underlay.interfaces[0].cniDevice.rawConfig.plugins[0].type: is required",
        ),
        case(
            "delegate to itself",
            json!({"underlay": {"nics": null, "interfaces": [{"type": "CNIDevice", "cniDevice": {"type": "RawConfig", "rawConfig": {"cniVersion": "1.0.0", "name": "u", "plugins": [{"type": "openpe-passthrough"}]}}}]}}),
            7,
            "underlay.interfaces[0].cniDevice.rawConfig.plugins[0].type: openpe-passthrough cannot delegate to itself",
        ),
        case(
            "delegate without CNI_PATH",
            json!({"underlay": {"nics": null, "interfaces": [{"type": "CNIDevice", "cniDevice": {"type": "RawConfig", "rawConfig": {"cniVersion": "1.0.0", "name": "u", "plugins": [{"type": "macvlan"}]}}}]}}),
            4,
            "CNI_PATH: is required to find the plugins of underlay.interfaces[].cniDevice",
        ),
        case(
            "delegated interface named like the veth",
            json!({"underlay": {"nics": null, "interfaces": [{"type": "CNIDevice", "cniDevice": {"type": "RawConfig", "rawConfig": {"cniVersion": "1.0.0", "name": "u", "plugins": [{"type": "macvlan", "master": "toswitch"}]}, "interfaceName": "pt-ns"}}]}}),
            7,
            "underlay.interfaces[0].cniDevice.interfaceName: \"pt-ns\" is the name of the plugin's own veth",
        ),
        case(
            "runtimeConfig not an object",
            json!({"underlay": {"nics": null, "interfaces": [{"type": "CNIDevice", "cniDevice": {"type": "RawConfig", "rawConfig": {"cniVersion": "1.0.0", "name": "u", "plugins": [{"type": "macvlan", "master": "toswitch"}]}, "runtimeConfig": []}}]}}),
            7,
            "underlay.interfaces[0].cniDevice.runtimeConfig",
        ),
        case(
            "two delegates of one interface name",
            json!({"underlay": {"nics": null, "interfaces": [{"type": "CNIDevice", "cniDevice": {"type": "RawConfig", "rawConfig": {"cniVersion": "1.0.0", "name": "u", "plugins": [{"type": "macvlan", "master": "toswitch"}]}}}, {"type": "CNIDevice", "cniDevice": {"type": "RawConfig", "rawConfig": {"cniVersion": "1.0.0", "name": "u", "plugins": [{"type": "macvlan", "master": "toswitch"}]}}}]}}),
            7,
            "underlay.interfaces[1].cniDevice.interfaceName: \"net1\" is listed twice",
        ),
        case(
            "interfaces of two types",
            json!({"underlay": {"nics": null, "interfaces": [{"type": "CNIDevice", "cniDevice": {"type": "RawConfig", "rawConfig": {"cniVersion": "1.0.0", "name": "u", "plugins": [{"type": "macvlan", "master": "toswitch"}]}}}, {"type": "NetworkDevice", "networkDevice": {"interfaceName": "toswitch"}}]}}),
            7,
            "underlay.interfaces[1].type: all entries of underlay.interfaces must be of one type",
        ),
        case(
            "cniDevice on a NetworkDevice",
            json!({"underlay": {"nics": null, "interfaces": [{"type": "NetworkDevice", "networkDevice": {"interfaceName": "toswitch"}, "cniDevice": {}}]}}),
            7,
            "underlay.interfaces[0].cniDevice: goes with type CNIDevice",
        ),
        case(
            "interface type unknown",
            json!({"underlay": {"nics": null, "interfaces": [{"type": "Bond"}]}}),
            7,
            "underlay.interfaces[0].type",
        ),
        case(
            "networkDevice missing",
            json!({"underlay": {"nics": null, "interfaces": [{"type": "NetworkDevice"}]}}),
            7,
            "underlay.interfaces[0].networkDevice",
        ),
        case(
            "networkDevice name bad",
            json!({"underlay": {"nics": null, "interfaces": [{"type": "NetworkDevice", "networkDevice": {"interfaceName": "to/switch"}}]}}),
            7,
            "underlay.interfaces[0].networkDevice.interfaceName",
        ),
        case(
            "networkDevice that does not exist",
            json!({"underlay": {"nics": null, "interfaces": [{"type": "NetworkDevice", "networkDevice": {"interfaceName": "nosuchnic"}}]}}),
            7,
            "underlay.interfaces[0].networkDevice.interfaceName",
        ),
        case(
            "nics and interfaces",
            json!({"underlay": {"interfaces": [{"type": "NetworkDevice", "networkDevice": {"interfaceName": "toswitch"}}]}}),
            7,
            "underlay.nics and underlay.interfaces",
        ),
        case(
            "ebgpMultiHop and properties",
            neighbor(json!({"ebgpMultiHop": false, "properties": []})),
            7,
            "underlay.neighbors[0].ebgpMultiHop and",
        ),
        case(
            "property type unknown",
            neighbor(json!({"properties": [{"type": "multiHop"}]})),
            7,
            "underlay.neighbors[0].properties[0].type",
        ),
        case(
            "property ttl zero",
            neighbor(json!({"properties": [{"type": "ebgpMultiHop", "ebgpMultiHop": {"ttl": 0}}]})),
            7,
            "underlay.neighbors[0].properties[0].ebgpMultiHop.ttl",
        ),
        case(
            "property ttl 256",
            neighbor(json!({"properties": [{"type": "ebgpMultiHop", "ebgpMultiHop": {"ttl": 256}}]})),
            7,
            "underlay.neighbors[0].properties[0].ebgpMultiHop.ttl",
        ),
        case(
            "two properties",
            neighbor(json!({"properties": [{"type": "ebgpMultiHop"}, {"type": "ebgpMultiHop"}]})),
            7,
            "underlay.neighbors[0].properties",
        ),
        case("password with a tab", neighbor(json!({"password": "a\tb"})), 7, "underlay.neighbors[0].password"),
        case("password with DEL", neighbor(json!({"password": "ab\u{7f}"})), 7, "underlay.neighbors[0].password"),
        case("password not ASCII", neighbor(json!({"password": "pässword"})), 7, "underlay.neighbors[0].password"),
        case(
            "routerIDCIDR with leading zeros",
            json!({"underlay": {"routerIDCIDR": "10.0.00.0/24"}}),
            7,
            "routerIDCIDR",
        ),
        // Duplicate keys: the configuration would mean different things to different parsers.
        stdin_case(
            "a key twice",
            b"{\"cniVersion\": \"1.0.0\", \"name\": \"a\", \"name\": \"b\"}",
            7,
            "name: is given twice",
        ),
        stdin_case(
            "a nested key twice",
            b"{\"cniVersion\": \"1.0.0\", \"name\": \"a\", \"underlay\": {\"neighbors\": [{\"asn\": 1, \"asn\": 2}]}}",
            7,
            "underlay.neighbors[0].asn: is given twice",
        ),
        stdin_case(
            "two spellings on stdin",
            b"{\"cniVersion\": \"1.0.0\", \"name\": \"a\", \"l3passthrough\": {}, \"l3Passthrough\": {}}",
            7,
            "two spellings",
        ),
        // The host session.
        case("l3passthrough missing", json!({"l3passthrough": null}), 7, "l3passthrough"),
        case("hostsession missing", json!({"l3passthrough": {"hostsession": null}}), 7, "hostsession"),
        case("both spellings of hostsession", json!({"l3passthrough": {"hostSession": {}}}), 7, "two spellings"),
        case("host session asn zero", hostsession(json!({"asn": 0})), 7, "hostsession.asn"),
        case("hostasn a string", hostsession(json!({"hostasn": "64515"})), 7, "hostsession.hostasn"),
        case("hostasn and hostType", hostsession(json!({"hostType": "External"})), 7, "exactly one"),
        case("hostType unknown", hostsession(json!({"hostasn": null, "hostType": "Both"})), 7, "hostType"),
        case("localcidr missing", hostsession(json!({"localcidr": null})), 7, "localcidr"),
        case("localcidr empty", cidrs(Value::Null, Value::Null), 7, "localcidr"),
        case("ipv4 CIDR is IPv6", cidrs(json!("2001:db8::/64"), Value::Null), 7, "localcidr.ipv4"),
        case("ipv6 CIDR is IPv4", cidrs(Value::Null, json!("192.169.10.0/24")), 7, "localcidr.ipv6"),
        case("ipv4 /31", cidrs(json!("192.169.10.0/31"), Value::Null), 7, "localcidr.ipv4"),
        case("ipv4 /32", cidrs(json!("192.169.10.1/32"), Value::Null), 7, "localcidr.ipv4"),
        case("ipv6 /127", cidrs(Value::Null, json!("2001:db8::/127")), 7, "localcidr.ipv6"),
        case("ipv6 /128", cidrs(Value::Null, json!("2001:db8::/128")), 7, "localcidr.ipv6"),
        case("ipv4 prefix 33", cidrs(json!("192.169.10.0/33"), Value::Null), 7, "localcidr.ipv4"),
        case("ipv4 without prefix", cidrs(json!("192.169.10.0"), Value::Null), 7, "localcidr.ipv4"),
        case("CIDR with a newline", cidrs(json!("192.169.10.0/24\n"), Value::Null), 7, "localcidr.ipv4"),
        case("ipv4 with leading zeros", cidrs(json!("192.169.010.0/24"), Value::Null), 7, "localcidr.ipv4"),
        case("ipv4 prefix with a leading zero", cidrs(json!("192.169.10.0/024"), Value::Null), 7, "localcidr.ipv4"),
        case("localcidr loopback", cidrs(json!("127.0.0.0/24"), Value::Null), 7, "localcidr.ipv4"),
        case("localcidr link-local", cidrs(json!("169.254.10.0/24"), Value::Null), 7, "localcidr.ipv4"),
        case("localcidr multicast", cidrs(json!("224.0.10.0/24"), Value::Null), 7, "localcidr.ipv4"),
        case("localcidr unspecified", cidrs(json!("0.0.0.0/24"), Value::Null), 7, "localcidr.ipv4"),
        case("localcidr holding everything", cidrs(json!("0.0.0.0/0"), Value::Null), 7, "localcidr.ipv4"),
        case("localcidr IPv6 loopback", cidrs(Value::Null, json!("::1/128")), 7, "localcidr.ipv6"),
        case("localcidr IPv6 unspecified", cidrs(Value::Null, json!("::/64")), 7, "localcidr.ipv6"),
        case("localcidr IPv6 link-local", cidrs(Value::Null, json!("fe80::/64")), 7, "localcidr.ipv6"),
        case("localcidr IPv6 multicast", cidrs(Value::Null, json!("ff05::/64")), 7, "localcidr.ipv6"),
        case("localcidr IPv4-mapped", cidrs(Value::Null, json!("::ffff:192.169.10.0/120")), 7, "localcidr.ipv6"),
        case(
            "CIDR too small for the index",
            json!({"nodeIndex": 253, "l3passthrough": {"hostsession": {"localcidr": {"ipv4": "192.169.10.0/24", "ipv6": null}}}}),
            7,
            "localcidr.ipv4",
        ),
        // Node index, MTU, host namespace.
        case("nodeIndex negative", json!({"nodeIndex": -1}), 7, "nodeIndex"),
        case("nodeIndex above u32", json!({"nodeIndex": 4294967296u64}), 7, "nodeIndex"),
        case("nodeIndex a string", json!({"nodeIndex": "3"}), 7, "nodeIndex"),
        case("runtimeConfig nodeIndex bad", json!({"runtimeConfig": {"nodeIndex": -3}}), 7, "runtimeConfig.nodeIndex"),
        case("args.cni.nodeIndex bad", json!({"args": {"cni": {"nodeIndex": "x"}}}), 7, "args.cni.nodeIndex"),
        case(
            "nodeIndexFrom interface missing",
            json!({"nodeIndexFrom": {"interface": "nosuch", "cidr": "192.168.11.0/24"}}),
            7,
            "nodeIndexFrom.interface",
        ),
        case(
            "nodeIndexFrom cidr bad",
            json!({"nodeIndexFrom": {"interface": "toswitch", "cidr": "x"}}),
            7,
            "nodeIndexFrom.cidr",
        ),
        case("mtu zero", json!({"mtu": 0}), 7, "mtu"),
        case("mtu too big", json!({"mtu": 70000}), 7, "mtu"),
        case("mtu a string", json!({"mtu": "1500"}), 7, "mtu"),
        case("hostNetns relative", json!({"hostNetns": "netns/x"}), 7, "hostNetns"),
        case("hostNetns missing", json!({"hostNetns": "/var/run/netns/does-not-exist-9"}), 7, "hostNetns"),
        case("hostNetns a regular file", json!({"hostNetns": regular_file}), 7, "hostNetns"),
        case("hostNetns a directory", json!({"hostNetns": "/tmp"}), 7, "hostNetns"),
        case("hostNetns the router itself", json!({"hostNetns": router}), 7, "hostNetns"),
        // The environment.
        env_case("CNI_COMMAND missing", "CNI_COMMAND", "", 4, "CNI_COMMAND"),
        env_case("CNI_COMMAND unknown", "CNI_COMMAND", "DESTROY", 4, "CNI_COMMAND"),
        env_case("CNI_CONTAINERID missing", "CNI_CONTAINERID", "", 4, "CNI_CONTAINERID"),
        env_case("CNI_CONTAINERID traversal", "CNI_CONTAINERID", "../../etc/passwd", 4, "CNI_CONTAINERID"),
        env_case("CNI_CONTAINERID with a slash", "CNI_CONTAINERID", "a/b", 4, "CNI_CONTAINERID"),
        env_case("CNI_CONTAINERID with a newline", "CNI_CONTAINERID", "a\nb", 4, "CNI_CONTAINERID"),
        env_case("CNI_IFNAME missing", "CNI_IFNAME", "", 4, "CNI_IFNAME"),
        env_case("CNI_IFNAME too long", "CNI_IFNAME", "abcdefghijklmnop", 4, "CNI_IFNAME"),
        env_case("CNI_IFNAME with /", "CNI_IFNAME", "a/b", 4, "CNI_IFNAME"),
        env_case("CNI_IFNAME with :", "CNI_IFNAME", "a:b", 4, "CNI_IFNAME"),
        env_case("CNI_IFNAME ..", "CNI_IFNAME", "..", 4, "CNI_IFNAME"),
        env_case("CNI_IFNAME with a space", "CNI_IFNAME", "a b", 4, "CNI_IFNAME"),
        env_case("CNI_NETNS missing", "CNI_NETNS", "", 4, "CNI_NETNS"),
        env_case("CNI_NETNS does not exist", "CNI_NETNS", "/var/run/netns/nope-nope-9", 4, "CNI_NETNS"),
        env_case("CNI_NETNS a regular file", "CNI_NETNS", regular_file, 4, "CNI_NETNS"),
        env_case("CNI_NETNS a directory", "CNI_NETNS", "/tmp", 4, "CNI_NETNS"),
        env_case("CNI_NETNS a mount namespace", "CNI_NETNS", "/proc/self/ns/mnt", 4, "CNI_NETNS"),
        env_case("CNI_ARGS unknown key", "CNI_ARGS", "FOO=bar", 4, "CNI_ARGS"),
        env_case("CNI_ARGS without =", "CNI_ARGS", "novalue", 4, "CNI_ARGS"),
        env_case("OPENPE_NODE_INDEX negative", "CNI_ARGS", "OPENPE_NODE_INDEX=-1", 4, "OPENPE_NODE_INDEX"),
        env_case("OPENPE_NODE_INDEX huge", "CNI_ARGS", "OPENPE_NODE_INDEX=99999999999", 4, "OPENPE_NODE_INDEX"),
        // Verbs the version does not have.
        Case {
            command: "CHECK",
            ..case("CHECK at 0.3.1", json!({"cniVersion": "0.3.1", "prevResult": {}}), 1, "CHECK")
        },
        Case { command: "STATUS", ..case("STATUS at 1.0.0", json!({"cniVersion": "1.0.0"}), 1, "STATUS") },
        Case { command: "GC", ..case("GC at 0.4.0", json!({"cniVersion": "0.4.0"}), 1, "GC") },
        // Planted state.
        state_case(
            "stateDir a symlink",
            Box::new(|d: &Path, _: &Lab| {
                let target = d.with_extension("real");
                std::fs::create_dir_all(&target).unwrap();
                symlink(&target, d).unwrap();
            }),
            "symbolic link",
        ),
        state_case(
            "attachments a symlink",
            Box::new(|d: &Path, _: &Lab| {
                std::fs::create_dir_all(d).unwrap();
                std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700)).unwrap();
                symlink("/etc", d.join("attachments")).unwrap();
            }),
            "symbolic link",
        ),
        state_case(
            "lock a symlink",
            Box::new(|d: &Path, _: &Lab| {
                std::fs::create_dir_all(d).unwrap();
                std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700)).unwrap();
                symlink("/etc/passwd", d.join("lock")).unwrap();
            }),
            "symbolic link",
        ),
        state_case(
            "the record a symlink",
            Box::new(|d: &Path, lab: &Lab| {
                prepare(d);
                symlink("/etc/passwd", d.join("attachments").join(format!("openpe@{}@net1.json", lab.container)))
                    .unwrap();
            }),
            "symbolic link",
        ),
        state_case(
            "an index claim a symlink",
            Box::new(|d: &Path, _: &Lab| {
                prepare(d);
                symlink("/etc/passwd", d.join("index").join("0")).unwrap();
            }),
            "symbolic link",
        ),
        state_case(
            "a corrupt record",
            Box::new(|d: &Path, lab: &Lab| {
                prepare(d);
                std::fs::write(d.join("attachments").join(format!("openpe@{}@net1.json", lab.container)), "{not json")
                    .unwrap();
            }),
            "unreadable",
        ),
        state_case(
            "stateDir writable by others",
            Box::new(|d: &Path, _: &Lab| {
                std::fs::create_dir_all(d).unwrap();
                std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o777)).unwrap();
            }),
            "writable by group or others",
        ),
        state_case(
            "stateDir writable by group",
            Box::new(|d: &Path, _: &Lab| {
                std::fs::create_dir_all(d).unwrap();
                std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o770)).unwrap();
            }),
            "writable by group or others",
        ),
        state_case(
            "stateDir owned by another user",
            Box::new(|d: &Path, _: &Lab| {
                std::fs::create_dir_all(d).unwrap();
                std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700)).unwrap();
                std::os::unix::fs::chown(d, Some(65534), Some(65534)).unwrap();
            }),
            "owned by another user",
        ),
        state_case(
            "stateDir a regular file",
            Box::new(|d: &Path, _: &Lab| {
                std::fs::write(d, "").unwrap();
            }),
            "not a directory",
        ),
    ]
}

/// A state directory made by the plugin itself (its layout), to plant things in.
fn prepare(d: &Path) {
    for sub in ["", "attachments", "index", "netns", "hostns"] {
        let p = d.join(sub);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
}

/// Every file and link under `dir` with its kind, and the content of regular files.
fn fingerprint(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let p = e.path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.file_type().is_symlink() {
                out.push(format!("{} -> {}", p.display(), std::fs::read_link(&p).unwrap().display()));
            } else if m.is_dir() {
                out.push(format!("{}/", p.display()));
                walk(&p, out);
            } else if !p.ends_with("lock") && !p.ends_with("boot_id") {
                out.push(format!("{} = {:?}", p.display(), std::fs::read(&p).unwrap_or_default()));
            }
        }
    }
    walk(dir, &mut out);
    out.sort();
    out
}

#[test]
#[ignore = "needs root"]
fn hostile_input_gets_the_right_error_and_changes_nothing() {
    let lab = Lab::new("hos");
    let scratch = TempDir::new("hosscratch");
    let regular = scratch.path.join("regular-file");
    std::fs::write(&regular, "").unwrap();
    let passwd_before = std::fs::read("/etc/passwd").unwrap();
    let before = lab.snapshot();
    let cases = cases(&lab, &regular.display().to_string());
    let total = cases.len();
    for (i, c) in cases.into_iter().enumerate() {
        let state = scratch.path.join(format!("state-{i}"));
        if let Some(setup) = &c.setup {
            setup(&state, &lab);
        }
        let state_before = fingerprint(&scratch.path);
        let mut conf = lab.conf("1.1.0", json!({"stateDir": state.display().to_string()}));
        merge(&mut conf, c.patch.clone());
        let stdin = c.stdin.clone().unwrap_or_else(|| conf.to_string().into_bytes());
        let mut env: Vec<(String, String)> = lab.env();
        env.push(("CNI_COMMAND".into(), c.command.into()));
        for (k, v) in &c.env {
            env.retain(|(ek, _)| ek != k);
            env.push((k.to_string(), v.clone()));
        }
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let command = pairs.iter().rev().find(|(k, _)| *k == "CNI_COMMAND").map(|(_, v)| *v).unwrap();
        let pairs: Vec<(&str, &str)> = pairs.iter().copied().filter(|(k, _)| *k != "CNI_COMMAND").collect();
        let out = run_bytes(command, &pairs, &stdin);
        assert_ne!(out.code, 0, "case {i} ({}): expected failure, got {}", c.what, out.stdout);
        assert!(
            out.stdout.lines().count() == 1,
            "case {i} ({}): stdout must be one JSON object: {:?}",
            c.what,
            out.stdout
        );
        let v = out.json();
        assert_eq!(v["code"], c.code, "case {i} ({}): {v}", c.what);
        let msg = v["msg"].as_str().unwrap_or("");
        assert!(msg.contains(c.needle), "case {i} ({}): the message must name {:?}: {msg}", c.what, c.needle);
        assert_eq!(lab.snapshot(), before, "case {i} ({}): the namespaces must be unchanged", c.what);
        let mut after = fingerprint(&scratch.path);
        // A state directory the plugin was allowed to create holds only empty directories.
        after.retain(|l| state_before.contains(l) || !(l.ends_with('/') && l.contains(&format!("state-{i}"))));
        assert_eq!(after, state_before, "case {i} ({}): the state directory must be unchanged", c.what);
    }
    assert_eq!(std::fs::read("/etc/passwd").unwrap(), passwd_before);
    eprintln!("{total} hostile inputs refused with the right code, naming the field, changing nothing");
}

fn run_bytes(command: &str, env: &[(&str, &str)], stdin: &[u8]) -> Outcome {
    let mut cmd = assert_cmd::Command::cargo_bin("openpe-passthrough").unwrap();
    cmd.env_clear().env("CNI_COMMAND", command).write_stdin(stdin.to_vec());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Secrets: a neighbor password never appears in logs or `inspect`, even at debug level.
#[test]
#[ignore = "needs root"]
fn passwords_never_reach_logs_or_inspect() {
    let lab = Lab::new("sec");
    let log = TempDir::new("seclog");
    let log_file = log.path.join("plugin.log");
    let state = lab.state.path.join("private");
    let conf = lab.conf(
        "1.0.0",
        json!({"logLevel": "debug", "logFile": log_file.display().to_string(), "stateDir": state.display().to_string(),
               "underlay": {"neighbors": [{"asn": 64512, "address": "192.168.11.2", "password": "S3cretPassw0rd"}]}}),
    );
    lab.add(&conf);
    // The state directory and its records are private.
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&state).unwrap().mode() & 0o777, 0o700);
    let records: Vec<_> = std::fs::read_dir(state.join("attachments")).unwrap().flatten().collect();
    assert_eq!(records.len(), 1);
    for f in records {
        assert_eq!(f.metadata().unwrap().mode() & 0o777, 0o600);
    }
    let inspect = std::process::Command::new(plugin_bin())
        .args(["inspect", "--state-dir", &state.display().to_string()])
        .output()
        .unwrap();
    let inspect_json = std::process::Command::new(plugin_bin())
        .args(["inspect", "--json", "--state-dir", &state.display().to_string()])
        .output()
        .unwrap();
    lab.del(&conf);
    let logged = std::fs::read_to_string(&log_file).unwrap();
    assert!(logged.contains("added attachment"), "the log is written: {logged}");
    for (what, text) in [
        ("log", logged),
        ("inspect", String::from_utf8_lossy(&inspect.stdout).into_owned()),
        ("inspect --json", String::from_utf8_lossy(&inspect_json.stdout).into_owned()),
    ] {
        assert!(!text.contains("S3cretPassw0rd"), "{what} shows the password");
    }
    assert!(String::from_utf8_lossy(&inspect_json.stdout).contains("********"));
}

/// Nothing silent: an unknown field is reported at debug level (and below it, not at all), `nodeSelector` is
/// accepted and ignored with an info log saying why, and an upstream field this project does not use (EVPN) is
/// refused, naming it and saying why. (Until the issues that render them landed, the fabric and secret fields
/// were refused the same way; every upstream field is now used or refused.)
#[test]
#[ignore = "needs root"]
fn unknown_fields_reported_at_debug_unused_upstream_fields_refused() {
    let lab = Lab::new("unk");
    let logs = TempDir::new("unklog");
    let conf = |level: &str, neighbor: Value| {
        let log = logs.path.join(format!("{level}.log"));
        let extra = json!({"logLevel": level, "logFile": log.display().to_string(),
            "underlay": {"nodeSelector": {"matchLabels": {"pool": "edge"}}, "neighbors": [neighbor]}});
        (lab.conf("1.0.0", extra), log)
    };
    let tagged = json!({"asn": 64512, "address": "192.168.11.2", "colour": "blue"});
    for level in ["debug", "info"] {
        let (c, log) = conf(level, tagged.clone());
        lab.add(&c);
        lab.del(&c);
        let logged = std::fs::read_to_string(&log).unwrap();
        let unknown = logged.lines().filter(|l| l.contains("underlay.neighbors[0].colour")).collect::<Vec<_>>();
        match level {
            "debug" => assert!(
                matches!(&unknown[..], [one] if one.contains(" debug: ignoring unknown field underlay.neighbors[0].colour")),
                "the unknown field is reported once, at debug level: {logged}"
            ),
            _ => assert!(unknown.is_empty(), "the unknown field is reported above debug level: {logged}"),
        }
        assert!(
            logged.lines().any(|l| l.contains(" info: underlay.nodeSelector: accepted and ignored: ")
                && l.contains("NetworkAttachmentDefinition per node pool")),
            "nodeSelector is ignored with an info log saying why: {logged}"
        );
    }
    let before = lab.snapshot();
    // Every upstream field this project does not use is refused saying why (all the ones it will use are
    // implemented now): an EVPN one.
    let (mut c, _) = conf("debug", json!({"asn": 64512, "address": "192.168.11.2"}));
    c["underlay"]["tunnelEndpoint"] = json!({"ipv4": "10.9.0.1"});
    let v = lab.run("ADD", &c, &[]).err(7, "underlay.tunnelEndpoint: is an EVPN/SRv6 setting");
    assert!(v["msg"].as_str().unwrap().contains("no VTEP"), "{v}");
    assert_eq!(lab.snapshot(), before, "the refused ADD changed the namespaces");
}
