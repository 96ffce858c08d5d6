//! The invariants the fuzz targets check, shared with the corpus replay test of the normal suite
//! (`tests/fuzz_corpus.rs` includes this file as a module). Every function panics, saying which invariant broke,
//! when the library misbehaves on its input; a panic anywhere in the library is a finding too.

use std::net::IpAddr;

use ipnet::IpNet;
use openpe::addressing::{host_number, router_id, veth_addresses};
use openpe::cni::result::{self, Additions, Interface, IpConfig};
use openpe::cni::{code, code_of, valid_identifier, CniArgs, Command, Envelope, ValidAttachments, SUPPORTED_VERSIONS};
use openpe::config::{self, valid_ifname, HostSession, Passthrough, RemoteAs};
use openpe::config::{HOST_IFNAME, ROUTER_IFNAME};
use openpe::error::Error;
use openpe::log::{set_level, Level};
use serde_json::Value;

/// Node indexes tried on every configuration that parses, besides the ones the configuration names itself:
/// the edges of /30, /24, /16, /8 and /0 ranges and of `u32`.
pub const INDEXES: [u32; 12] = [0, 1, 2, 3, 252, 253, 65_532, 65_533, 16_777_212, 16_777_213, u32::MAX - 1, u32::MAX];

/// At most this many `plugins` of a configuration list are checked (libFuzzer inputs can hold thousands).
const MAX_PLUGINS: usize = 8;

/// An error as the plugin would report it: one of the expected codes and a non-empty, single-line message.
fn check_error(e: &Error, codes: &[u32]) {
    assert!(codes.contains(&code_of(e)), "error code {} not in {codes:?}: {e:?}", code_of(e));
    assert!(!e.msg.trim().is_empty(), "empty error message: {e:?}");
    // Values are quoted with JSON or Debug escaping, so no line breaks or other C0 controls reach a message (DEL
    // and C1 controls are not escaped by JSON and may appear, quoted).
    assert!(!e.msg.chars().any(|c| c < ' '), "line break or control character in an error message: {e:?}");
}

/// A string that ends up as one word in FRR's configuration or in a path: no whitespace, no control characters.
fn one_word(s: &str, what: &str) {
    assert!(
        !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control()),
        "{what} {s:?} is not a single word"
    );
}

fn clean_path(p: &std::path::Path, what: &str) {
    let s = p.to_str().expect("paths from JSON are UTF-8");
    assert!(s.starts_with('/'), "{what} {s:?} is not absolute");
    assert!(!s.split('/').any(|c| c == ".."), "{what} {s:?} has a '..' component");
    assert!(!s.chars().any(char::is_control), "{what} {s:?} has control characters");
}

/// Bytes as stdin would carry them, end to end; parsing is deterministic.
pub fn check_config(bytes: &[u8]) {
    // Debug logs of unknown fields would only slow the fuzzer down (the info log of nodeSelector too).
    set_level(Level::Error);
    let first = run_config(bytes);
    let second = run_config(bytes);
    assert_eq!(first, second, "parsing the same bytes twice gave different answers");
}

fn run_config(bytes: &[u8]) -> String {
    let v = match config::parse_json(bytes) {
        Ok(v) => v,
        Err(e) => {
            // Not JSON, or a key given twice in one object.
            check_error(&e, &[code::DECODE, code::INVALID_CONFIG]);
            return format!("{e:?}");
        }
    };
    let mut out = check_plugin(&v);
    // A configuration list: libcni hands each plugin its entry with the list's cniVersion and name.
    if let Some(plugins) = v.get("plugins").and_then(Value::as_array) {
        for p in plugins.iter().take(MAX_PLUGINS) {
            if let Value::Object(m) = p {
                let mut m = m.clone();
                for k in ["cniVersion", "name"] {
                    if let Some(x) = v.get(k) {
                        m.insert(k.to_string(), x.clone());
                    }
                }
                out.push_str(&check_plugin(&Value::Object(m)));
            }
        }
    }
    out
}

fn check_plugin(v: &Value) -> String {
    let direct = Passthrough::parse(v);
    match &direct {
        Ok(p) => check_passthrough(p),
        Err(e) => check_error(e, &[code::INVALID_CONFIG]),
    }
    let envelope = Envelope::parse(v);
    let mut indexes: Vec<u32> = INDEXES.to_vec();
    match &envelope {
        Err(e) => check_error(e, &[code::INCOMPATIBLE_VERSION, code::INVALID_CONFIG]),
        Ok(env) => {
            check_envelope(env);
            let via = env.passthrough();
            assert_eq!(via, direct, "Envelope::passthrough and Passthrough::parse disagree");
            indexes.extend(env.runtime_node_index);
            indexes.extend(env.args_node_index);
        }
    }
    let mut out = format!("{direct:?}\n{envelope:?}\n");
    if let Ok(p) = &direct {
        indexes.extend(p.node_index);
        for &i in &indexes {
            let a = check_addresses(&p.host_session, i);
            let r = check_router_id(p.underlay.router_id_cidr, i);
            out.push_str(&format!("{i}: {a:?} {r:?}\n"));
        }
        if let Ok(env) = &envelope {
            let index = p.node_index.or(env.runtime_node_index).or(env.args_node_index).unwrap_or(0);
            if let Ok(a) = veth_addresses(&p.host_session, index) {
                out.push_str(&check_result(env, &a.host, &a.router));
            }
        }
    }
    out
}

fn check_envelope(env: &Envelope) {
    assert!(
        SUPPORTED_VERSIONS.contains(&env.cni_version.as_str()),
        "unsupported cniVersion {:?} accepted",
        env.cni_version
    );
    assert!(valid_identifier(&env.name) && env.name.len() <= 253, "invalid name {:?} accepted", env.name);
    clean_path(&env.settings.state_dir, "stateDir");
    if let Some(p) = &env.settings.log_file {
        clean_path(p, "logFile");
    }
    let listed = match &env.valid_attachments {
        ValidAttachments::List(list) => &list[..],
        ValidAttachments::Absent | ValidAttachments::Null => &[],
    };
    for a in listed {
        for s in [&a.container_id, &a.ifname] {
            assert!(!s.chars().any(char::is_control), "control characters in valid attachment {a:?}");
        }
    }
}

fn check_asn(a: RemoteAs, what: &str) {
    if let RemoteAs::Asn(n) = a {
        assert!(n >= 1, "{what}: ASN 0 accepted");
    }
}

fn check_passthrough(p: &Passthrough) {
    let u = &p.underlay;
    assert!(u.asn >= 1, "underlay.asn 0 accepted");
    for (i, nic) in u.nics.iter().enumerate() {
        one_word(nic, "underlay nic");
        assert!(valid_ifname(nic), "invalid NIC name {nic:?} accepted");
        assert!(nic != ROUTER_IFNAME && nic != HOST_IFNAME, "the plugin's own veth {nic:?} accepted as a NIC");
        assert!(!u.nics[..i].contains(nic), "NIC {nic:?} accepted twice");
    }
    assert!(!u.neighbors.is_empty(), "no BGP neighbor accepted");
    for (i, n) in u.neighbors.iter().enumerate() {
        let name = n.peer_name();
        one_word(&name, "neighbor name");
        assert!(!u.neighbors[..i].iter().any(|m| m.peer == n.peer), "neighbor {name} accepted twice");
        check_asn(n.remote_as, "neighbor");
        if let Some(pw) = &n.password {
            one_word(pw, "password");
            assert!(pw.len() <= 80 && pw.chars().all(|c| c.is_ascii_graphic()), "password {pw:?} accepted");
        }
        assert_ne!(n.port, Some(0), "port 0 accepted");
        assert_ne!(n.connect_time_seconds, Some(0), "connect time 0 accepted");
        match (n.hold_time_seconds, n.keepalive_time_seconds) {
            (None, None) => {}
            (Some(h), Some(k)) => {
                assert!(h == 0 || h >= 3, "hold time {h} accepted");
                assert!(k <= h, "keepalive {k} above hold time {h} accepted");
            }
            other => panic!("hold and keepalive times accepted alone: {other:?}"),
        }
    }
    assert_eq!(u.router_id_cidr, u.router_id_cidr.trunc(), "router id CIDR with host bits");
    let hs = &p.host_session;
    assert!(hs.asn >= 1, "host session asn 0 accepted");
    check_asn(hs.host_as, "host session");
    assert!(hs.ipv4.is_some() || hs.ipv6.is_some(), "no localcidr accepted");
    if let Some(n) = hs.ipv4 {
        assert!(n.prefix_len() <= 30 && n == n.trunc(), "localcidr {n}");
    }
    if let Some(n) = hs.ipv6 {
        assert!(n.prefix_len() <= 126 && n == n.trunc(), "localcidr {n}");
    }
    if let Some(mtu) = p.mtu {
        let min = if hs.ipv6.is_some() { 1280 } else { 68 };
        assert!((min..=65535).contains(&mtu), "MTU {mtu} accepted");
    }
    if let Some(f) = &p.node_index_from {
        one_word(&f.interface, "nodeIndexFrom.interface");
        assert!(valid_ifname(&f.interface));
        assert_eq!(f.cidr, f.cidr.trunc(), "nodeIndexFrom.cidr with host bits");
    }
    if let Some(ns) = &p.host_netns {
        clean_path(ns, "hostNetns");
    }
}

fn cidrs_of(hs: &HostSession) -> Vec<IpNet> {
    hs.ipv4.map(IpNet::V4).into_iter().chain(hs.ipv6.map(IpNet::V6)).collect()
}

/// Whether the node index fits, computed independently: the host address is host number `index + 2`, which
/// must exist and, for IPv4, not be the broadcast address.
fn index_fits(cidr: &IpNet, index: u32) -> bool {
    let offset = index as u128 + 2;
    match cidr {
        IpNet::V4(n) => offset < (1u128 << (32 - n.prefix_len())) - 1,
        IpNet::V6(n) => n.prefix_len() == 0 || offset < (1u128 << (128 - n.prefix_len())),
    }
}

/// The router and host addresses for one index; see `addressing`'s contract.
pub fn check_addresses(hs: &HostSession, index: u32) -> Result<(), Error> {
    let cidrs = cidrs_of(hs);
    let fits = cidrs.iter().all(|c| index_fits(c, index));
    let a = match veth_addresses(hs, index) {
        Err(e) => {
            check_error(&e, &[code::INVALID_CONFIG]);
            assert!(e.msg.contains("localcidr"), "error names no field: {e:?}");
            assert!(!fits, "index {index} fits {cidrs:?} but was refused: {e:?}");
            return Err(e);
        }
        Ok(a) => a,
    };
    assert!(fits, "index {index} does not fit {cidrs:?} but got {a:?}");
    assert_eq!(a.router.len(), cidrs.len());
    assert_eq!(a.host.len(), cidrs.len());
    for ((c, r), h) in cidrs.iter().zip(&a.router).zip(&a.host) {
        for x in [r, h] {
            assert_eq!(x.prefix_len(), c.prefix_len(), "{x} lost {c}'s prefix");
            assert!(c.contains(&x.addr()), "{x} is outside {c}");
            assert_ne!(x.addr(), c.network(), "{x} is {c}'s network address");
            if let IpNet::V4(n) = c {
                assert_ne!(x.addr(), IpAddr::V4(n.broadcast()), "{x} is {c}'s broadcast address");
            }
        }
        assert_ne!(r.addr(), h.addr(), "router and host share {r}");
        assert_eq!(host_number(c, r.addr()), Some(1));
        assert_eq!(host_number(c, h.addr()), Some(index as u128 + 2));
    }
    Ok(())
}

/// The BGP router id for one index: host number `index + 1` of the CIDR, when it exists.
pub fn check_router_id(cidr: ipnet::Ipv4Net, index: u32) -> Result<(), Error> {
    let fits = (index as u64 + 1) < (1u64 << (32 - cidr.prefix_len()));
    match router_id(cidr, index) {
        Err(e) => {
            check_error(&e, &[code::INVALID_CONFIG]);
            assert!(e.msg.contains("routerIDCIDR"), "error names no field: {e:?}");
            assert!(!fits, "index {index} fits {cidr} but was refused");
            Err(e)
        }
        Ok(a) => {
            assert!(fits, "index {index} does not fit {cidr} but got {a}");
            let net = IpNet::V4(cidr);
            assert_eq!(host_number(&net, IpAddr::V4(a)), Some(index as u128 + 1));
            Ok(())
        }
    }
}

/// The ADD result built from the addresses, chained after the configuration's `prevResult`.
fn check_result(env: &Envelope, host: &[IpNet], router: &[IpNet]) -> String {
    let add = Additions {
        interfaces: vec![
            Interface { name: HOST_IFNAME.into(), mac: "02:00:00:00:00:01".into(), mtu: 1500, sandbox: None },
            Interface {
                name: ROUTER_IFNAME.into(),
                mac: "02:00:00:00:00:02".into(),
                mtu: 1500,
                sandbox: Some("/run/netns/router".into()),
            },
        ],
        ips: host
            .iter()
            .map(|&address| IpConfig { address, interface: 0 })
            .chain(router.iter().map(|&address| IpConfig { address, interface: 1 }))
            .collect(),
    };
    let prev = env.prev_result.as_ref();
    let r = match result::build(&env.cni_version, prev, &add) {
        Err(e) => {
            check_error(&e, &[code::INVALID_CONFIG]);
            assert!(e.msg.contains("prevResult"), "error names no field: {e:?}");
            return format!("{e:?}");
        }
        Ok(r) => r,
    };
    assert_eq!(r["cniVersion"], env.cni_version.as_str());
    let count = |k: &str| prev.and_then(|p| p.get(k)).and_then(Value::as_array).map_or(0, Vec::len);
    let (prev_ifaces, prev_ips) = (count("interfaces"), count("ips"));
    let ifaces = r["interfaces"].as_array().expect("interfaces is an array");
    assert_eq!(ifaces.len(), prev_ifaces + 2);
    assert_eq!(ifaces[prev_ifaces]["name"], HOST_IFNAME);
    assert_eq!(ifaces[prev_ifaces + 1]["name"], ROUTER_IFNAME);
    let ips = r["ips"].as_array().expect("ips is an array");
    assert_eq!(ips.len(), prev_ips + add.ips.len());
    for (ours, ip) in ips[prev_ips..].iter().zip(&add.ips) {
        assert_eq!(ours["address"], ip.address.to_string().as_str());
        assert_eq!(ours["interface"], (prev_ifaces + ip.interface) as u64);
    }
    // Printed, it is JSON again (not compared value for value: serde_json's default float parsing is not exact).
    let text = r.to_string();
    let back: Value = serde_json::from_str(&text).expect("the result is valid JSON");
    let again = back["ips"].as_array().expect("ips is an array");
    assert_eq!(again[prev_ips..], ips[prev_ips..], "our ips do not survive a JSON round trip");
    text
}

/// CNI_ARGS (and CNI_COMMAND) as the environment would carry them; parsing is deterministic.
pub fn check_cni_args(bytes: &[u8]) {
    let Ok(s) = std::str::from_utf8(bytes) else {
        return; // std::env::var refuses non-UTF-8 values before parsing
    };
    let command = Command::parse(s);
    let known = ["ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC"];
    match &command {
        Ok(_) => assert!(known.contains(&s), "CNI_COMMAND {s:?} accepted"),
        Err(e) => {
            check_error(e, &[code::INVALID_ENV]);
            assert!(!known.contains(&s), "CNI_COMMAND {s:?} refused");
        }
    }
    let first = CniArgs::parse(s);
    let second = CniArgs::parse(s);
    assert_eq!(format!("{first:?}"), format!("{second:?}"), "parsing the same CNI_ARGS twice gave different answers");
    let pairs: Vec<(&str, &str)> = s.split(';').filter(|p| !p.is_empty()).filter_map(|p| p.split_once('=')).collect();
    let last = |key: &str| pairs.iter().rev().find(|(k, _)| *k == key).map(|(_, v)| *v);
    let args = match first {
        Err(e) => {
            check_error(&e, &[code::INVALID_ENV]);
            assert!(e.msg.contains("CNI_ARGS"), "error names no variable: {e:?}");
            return;
        }
        Ok(args) => args,
    };
    assert!(s.split(';').all(|p| p.is_empty() || p.contains('=')), "a pair without '=' accepted in {s:?}");
    let ignore = pairs.iter().any(|(k, v)| *k == "IgnoreUnknown" && (v.eq_ignore_ascii_case("true") || *v == "1"));
    let known_keys = [
        "IgnoreUnknown",
        "OPENPE_NODE_INDEX",
        "K8S_POD_NAMESPACE",
        "K8S_POD_NAME",
        "K8S_POD_INFRA_CONTAINER_ID",
        "K8S_POD_UID",
    ];
    assert!(
        ignore || pairs.iter().all(|(k, _)| known_keys.contains(k)),
        "unknown key accepted without IgnoreUnknown in {s:?}"
    );
    assert_eq!(args.node_index, last("OPENPE_NODE_INDEX").map(|v| v.parse::<u32>().expect("accepted, so a number")),);
    assert_eq!(args.k8s_pod_name.as_deref(), last("K8S_POD_NAME"));
    assert_eq!(args.k8s_pod_namespace.as_deref(), last("K8S_POD_NAMESPACE"));
}
