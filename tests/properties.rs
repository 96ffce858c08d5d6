//! Property tests of the pure parts: addressing, configuration parsing and CNI_ARGS. Fast (a few hundred cases
//! each); the coverage-guided fuzzing of the same code lives in fuzz/.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use openpe::addressing::{host_number, router_id, veth_addresses};
use openpe::cni::{code, code_of, CniArgs};
use openpe::config::{HostSession, Passthrough, RemoteAs, ASN_MAX};
use proptest::prelude::*;
use serde_json::{json, Value};

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(256)
}

fn session(ipv4: Option<Ipv4Net>, ipv6: Option<Ipv6Net>) -> HostSession {
    HostSession { asn: 64514, host_as: RemoteAs::Asn(64515), ipv4, ipv6, limits: Default::default() }
}

/// Any IPv4 CIDR the configuration accepts (prefix at most 30), as its network.
fn v4_cidr() -> impl Strategy<Value = Ipv4Net> {
    (any::<u32>(), 0u8..=30).prop_map(|(a, p)| Ipv4Net::new(Ipv4Addr::from(a), p).unwrap().trunc())
}

/// Any IPv6 CIDR the configuration accepts (prefix at most 126), as its network.
fn v6_cidr() -> impl Strategy<Value = Ipv6Net> {
    (any::<u128>(), 0u8..=126).prop_map(|(a, p)| Ipv6Net::new(Ipv6Addr::from(a), p).unwrap().trunc())
}

/// The largest node index a CIDR holds: the host address is host number `index + 2`; IPv4 keeps its broadcast.
fn max_index(cidr: &IpNet) -> u32 {
    let host_bits = (cidr.max_prefix_len() - cidr.prefix_len()) as u32;
    let last_host = match cidr {
        IpNet::V4(_) => (1u128 << host_bits) - 2,
        IpNet::V6(_) if host_bits == 128 => u128::MAX,
        IpNet::V6(_) => (1u128 << host_bits) - 1,
    };
    (last_host - 2).min(u32::MAX as u128) as u32
}

/// An index that fits, drawn from the whole range (edges included).
fn fitting(cidr: &IpNet, raw: u32, edge: bool) -> u32 {
    let max = max_index(cidr);
    if edge {
        max
    } else {
        (raw as u64 % (max as u64 + 1)) as u32
    }
}

fn plus(addr: IpAddr, n: u128) -> IpAddr {
    match addr {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from((u32::from(a) as u128 + n) as u32)),
        IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) + n)),
    }
}

fn check_pair(cidr: &IpNet, router: &IpNet, host: &IpNet, index: u32) -> Result<(), TestCaseError> {
    for x in [router, host] {
        prop_assert!(cidr.contains(&x.addr()), "{} outside {}", x, cidr);
        prop_assert_eq!(x.prefix_len(), cidr.prefix_len());
        prop_assert_ne!(x.addr(), cidr.network());
        if let IpNet::V4(n) = cidr {
            prop_assert_ne!(x.addr(), IpAddr::V4(n.broadcast()), "broadcast address handed out");
        }
    }
    prop_assert_ne!(router.addr(), host.addr());
    prop_assert_eq!(router.addr(), plus(cidr.network(), 1));
    prop_assert_eq!(host.addr(), plus(router.addr(), 1 + index as u128));
    prop_assert_eq!(host_number(cidr, router.addr()), Some(1));
    prop_assert_eq!(host_number(cidr, host.addr()), Some(index as u128 + 2));
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn ipv4_addresses_lie_in_the_cidr(cidr in v4_cidr(), raw in any::<u32>(), edge in any::<bool>()) {
        let net = IpNet::V4(cidr);
        let index = fitting(&net, raw, edge);
        let a = veth_addresses(&session(Some(cidr), None), index).unwrap();
        prop_assert_eq!(a.router.len(), 1);
        check_pair(&net, &a.router[0], &a.host[0], index)?;
        // One more does not fit: refused, naming the field, never the broadcast address.
        if let Some(next) = index.checked_add(1).filter(|_| max_index(&net) == index) {
            let e = veth_addresses(&session(Some(cidr), None), next).unwrap_err();
            prop_assert_eq!(code_of(&e), code::INVALID_CONFIG);
            prop_assert!(e.msg.contains("localcidr.ipv4"), "{}", e.msg);
        }
    }

    #[test]
    fn ipv6_addresses_lie_in_the_cidr(cidr in v6_cidr(), raw in any::<u32>(), edge in any::<bool>()) {
        let net = IpNet::V6(cidr);
        let index = fitting(&net, raw, edge);
        let a = veth_addresses(&session(None, Some(cidr)), index).unwrap();
        prop_assert_eq!(a.router.len(), 1);
        check_pair(&net, &a.router[0], &a.host[0], index)?;
        if let Some(next) = index.checked_add(1).filter(|_| max_index(&net) == index) {
            let e = veth_addresses(&session(None, Some(cidr)), next).unwrap_err();
            prop_assert_eq!(code_of(&e), code::INVALID_CONFIG);
            prop_assert!(e.msg.contains("localcidr.ipv6"), "{}", e.msg);
        }
    }

    #[test]
    fn dual_stack_is_ipv4_first_and_fits_both(v4 in v4_cidr(), v6 in v6_cidr(), raw in any::<u32>()) {
        let index = raw;
        let fits = index <= max_index(&IpNet::V4(v4)) && index <= max_index(&IpNet::V6(v6));
        match veth_addresses(&session(Some(v4), Some(v6)), index) {
            Ok(a) => {
                prop_assert!(fits);
                prop_assert_eq!(a.router.len(), 2);
                check_pair(&IpNet::V4(v4), &a.router[0], &a.host[0], index)?;
                check_pair(&IpNet::V6(v6), &a.router[1], &a.host[1], index)?;
            }
            Err(e) => {
                prop_assert!(!fits, "index {} fits but was refused: {}", index, e.msg);
                prop_assert_eq!(code_of(&e), code::INVALID_CONFIG);
            }
        }
    }

    #[test]
    fn distinct_indexes_give_distinct_host_addresses(
        v4 in v4_cidr(), v6 in v6_cidr(), a in any::<u32>(), b in any::<u32>(),
    ) {
        let hs = session(Some(v4), Some(v6));
        let max = max_index(&IpNet::V4(v4)).min(max_index(&IpNet::V6(v6))) as u64;
        let (i, j) = ((a as u64 % (max + 1)) as u32, (b as u64 % (max + 1)) as u32);
        prop_assume!(i != j);
        let (x, y) = (veth_addresses(&hs, i).unwrap(), veth_addresses(&hs, j).unwrap());
        prop_assert_eq!(&x.router, &y.router, "the router side is the same on every node");
        for (h1, h2) in x.host.iter().zip(&y.host) {
            prop_assert_ne!(h1, h2);
        }
    }

    #[test]
    fn host_number_inverts_the_address(cidr in prop_oneof![
        v4_cidr().prop_map(IpNet::V4), v6_cidr().prop_map(IpNet::V6)
    ], raw in any::<u128>()) {
        let size_bits = (cidr.max_prefix_len() - cidr.prefix_len()) as u32;
        let n = if size_bits == 128 { raw } else { raw % (1u128 << size_bits) };
        let addr = plus(cidr.network(), n);
        prop_assert!(cidr.contains(&addr));
        prop_assert_eq!(host_number(&cidr, addr), Some(n));
        // Outside the CIDR (or the other family): no host number.
        if let Some(outside) = cidr.supernet().filter(|_| cidr.prefix_len() > 0) {
            let other = outside.subnets(cidr.prefix_len()).unwrap().find(|s| *s != cidr).unwrap();
            prop_assert_eq!(host_number(&cidr, other.network()), None);
        }
        let other_family: IpAddr = if cidr.addr().is_ipv4() { Ipv6Addr::LOCALHOST.into() } else { Ipv4Addr::LOCALHOST.into() };
        prop_assert_eq!(host_number(&cidr, other_family), None);
    }

    #[test]
    fn router_id_is_host_number_index_plus_one(a in any::<u32>(), p in 0u8..=32, raw in any::<u32>()) {
        let cidr = Ipv4Net::new(Ipv4Addr::from(a), p).unwrap();
        let size = 1u64 << (32 - p);
        match router_id(cidr, raw) {
            Ok(id) => {
                prop_assert!((raw as u64) + 1 < size);
                prop_assert!(cidr.trunc().contains(&id));
                prop_assert_eq!(host_number(&IpNet::V4(cidr.trunc()), IpAddr::V4(id)), Some(raw as u128 + 1));
            }
            Err(e) => {
                prop_assert!((raw as u64) + 1 >= size);
                prop_assert_eq!(code_of(&e), code::INVALID_CONFIG);
                prop_assert!(e.msg.contains("routerIDCIDR"));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Configuration parsing.

fn base() -> Value {
    json!({
        "cniVersion": "1.0.0", "name": "openpe", "type": "openpe-passthrough",
        "underlay": {"asn": 64514, "nics": ["toswitch"], "neighbors": [{"asn": 64512, "address": "192.168.11.2"}]},
        "l3passthrough": {"hostsession": {"asn": 64514, "hostasn": 64515,
            "localcidr": {"ipv4": "192.169.10.0/24", "ipv6": "2001:db8:10::/64"}}},
        "nodeIndexFrom": {"interface": "toswitch", "cidr": "192.168.11.0/24"}
    })
}

/// `v` with the value at `path` (object keys, or array indexes as numbers) replaced.
fn with(mut v: Value, path: &str, new: Value) -> Value {
    let mut at = &mut v;
    for part in path.split('.') {
        at = match part.parse::<usize>() {
            Ok(i) => &mut at[i],
            Err(_) => &mut at[part],
        };
    }
    *at = new;
    v
}

/// The field paths as the plugin names them in errors, with the JSON path to put a value there.
const ASN_FIELDS: [(&str, &str); 4] = [
    ("underlay.asn", "underlay.asn"),
    ("underlay.neighbors[0].asn", "underlay.neighbors.0.asn"),
    ("l3passthrough.hostsession.asn", "l3passthrough.hostsession.asn"),
    ("l3passthrough.hostsession.hostasn", "l3passthrough.hostsession.hostasn"),
];

/// JSON values that are not an ASN: whole numbers outside 1..=4294967295, fractions, and every other type.
fn not_an_asn() -> impl Strategy<Value = Value> {
    prop_oneof![
        (i64::MIN..=0).prop_map(Value::from),
        (ASN_MAX + 1..=u64::MAX).prop_map(Value::from),
        any::<f64>()
            .prop_filter_map("finite non-integer", |f| { (f.is_finite() && f.fract() != 0.0).then(|| Value::from(f)) }),
        (1u64..=ASN_MAX).prop_map(|n| Value::from(n as f64 + 0.5)),
        (1u64..=ASN_MAX).prop_map(|n| Value::from(n.to_string())),
        any::<bool>().prop_map(Value::from),
        Just(json!([64514])),
        Just(json!({"asn": 64514})),
    ]
}

/// Any JSON value, nested a little.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        ".*".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-zA-Z]{0,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every leaf and object of the sample configuration, as a JSON path for [`with`].
const PATHS: [&str; 17] = [
    "cniVersion",
    "name",
    "underlay",
    "underlay.asn",
    "underlay.nics",
    "underlay.nics.0",
    "underlay.neighbors",
    "underlay.neighbors.0",
    "underlay.neighbors.0.asn",
    "underlay.neighbors.0.address",
    "l3passthrough",
    "l3passthrough.hostsession",
    "l3passthrough.hostsession.asn",
    "l3passthrough.hostsession.localcidr",
    "l3passthrough.hostsession.localcidr.ipv4",
    "nodeIndexFrom",
    "nodeIndexFrom.cidr",
];

/// The ranges docs/configuration.md says a localcidr may not touch: unspecified, loopback, link-local,
/// multicast, IPv4-mapped.
const SPECIAL: [&str; 9] = [
    "0.0.0.0/8",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "224.0.0.0/4",
    "::/128",
    "::1/128",
    "fe80::/10",
    "ff00::/8",
    "::ffff:0:0/96",
];

fn special(net: IpNet) -> bool {
    SPECIAL
        .iter()
        .map(|s| s.parse::<IpNet>().unwrap())
        .any(|r| r.contains(&net.network()) || net.contains(&r.network()))
}

fn clean(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn asn_outside_the_range_is_refused_naming_the_field(field in 0..ASN_FIELDS.len(), v in not_an_asn()) {
        let (name, path) = ASN_FIELDS[field];
        let e = Passthrough::parse(&with(base(), path, v.clone())).unwrap_err();
        prop_assert_eq!(code_of(&e), code::INVALID_CONFIG);
        prop_assert!(e.msg.starts_with(&format!("{name}:")), "{} for {}", e.msg, v);
    }

    #[test]
    fn asn_in_the_range_is_accepted(field in 0..ASN_FIELDS.len(), n in prop_oneof![1u64..=ASN_MAX, Just(1), Just(ASN_MAX)]) {
        let p = Passthrough::parse(&with(base(), ASN_FIELDS[field].1, json!(n))).unwrap();
        let got = [
            p.underlay.asn,
            match p.underlay.neighbors[0].remote_as { RemoteAs::Asn(a) => a, _ => 0 },
            p.host_session.asn,
            match p.host_session.host_as { RemoteAs::Asn(a) => a, _ => 0 },
        ];
        prop_assert_eq!(got[field] as u64, n);
    }

    #[test]
    fn strings_reaching_frr_are_refused_or_single_words(s in prop_oneof![
        ".*", "\\PC*", "[ -~]{0,90}", "[a-zA-Z0-9 .:_/%\\t\\n-]{0,20}",
    ]) {
        let cases = [
            ("underlay.neighbors.0.address", "underlay.neighbors[0].address"),
            ("underlay.neighbors.0.password", "underlay.neighbors[0].password"),
            ("underlay.nics.0", "underlay.nics[0]"),
            ("nodeIndexFrom.interface", "nodeIndexFrom.interface"),
        ];
        for (path, name) in cases {
            match Passthrough::parse(&with(base(), path, json!(s))) {
                Err(e) => {
                    prop_assert_eq!(code_of(&e), code::INVALID_CONFIG);
                    prop_assert!(e.msg.starts_with(name), "{} does not name {}", e.msg, name);
                }
                Ok(p) => {
                    let got = match path {
                        "underlay.neighbors.0.address" => p.underlay.neighbors[0].peer_name(),
                        "underlay.neighbors.0.password" => p.underlay.neighbors[0].password.clone().unwrap(),
                        "underlay.nics.0" => p.underlay.nics[0].clone(),
                        _ => p.node_index_from.unwrap().interface,
                    };
                    prop_assert!(clean(&got), "{:?} accepted for {}", got, name);
                }
            }
        }
    }

    #[test]
    fn cidrs_with_host_bits_parse_to_their_network(a4 in any::<u32>(), p4 in 0u8..=30, a6 in any::<u128>(), p6 in 0u8..=126) {
        let v4 = Ipv4Net::new(Ipv4Addr::from(a4), p4).unwrap();
        let v6 = Ipv6Net::new(Ipv6Addr::from(a6), p6).unwrap();
        let rid = Ipv4Net::new(Ipv4Addr::from(a4.rotate_left(7)), p4 + 2).unwrap();
        prop_assume!(!special(IpNet::V4(v4.trunc())) && !special(IpNet::V6(v6.trunc())));
        prop_assume!(!v4.contains(&"192.168.11.2".parse::<Ipv4Addr>().unwrap()), "the sample's neighbor");
        let mut v = with(base(), "l3passthrough.hostsession.localcidr", json!({"ipv4": v4.to_string(), "ipv6": v6.to_string()}));
        v = with(v, "nodeIndexFrom.cidr", json!(v6.to_string()));
        v = with(v, "underlay.routerIDCIDR", json!(rid.to_string()));
        let p = Passthrough::parse(&v).unwrap();
        prop_assert_eq!(p.host_session.ipv4, Some(v4.trunc()));
        prop_assert_eq!(p.host_session.ipv6, Some(v6.trunc()));
        prop_assert_eq!(p.node_index_from.unwrap().cidr, IpNet::V6(v6.trunc()));
        prop_assert_eq!(p.underlay.router_id_cidr, rid.trunc());
    }

    #[test]
    fn localcidrs_in_special_ranges_are_refused(range in 0..SPECIAL.len(), raw in any::<u128>(), extra in 0u8..=64) {
        let r: IpNet = SPECIAL[range].parse().unwrap();
        let (family, max) = if r.addr().is_ipv4() { ("ipv4", 30) } else { ("ipv6", 126) };
        // Inside the range, or around it (a shorter prefix holding it).
        let len = if extra % 2 == 0 { (r.prefix_len() + extra / 2).min(max) } else { r.prefix_len().saturating_sub(extra / 8) };
        let addr = match r {
            IpNet::V4(n) => IpAddr::V4(Ipv4Addr::from(u32::from(n.network()) | (raw as u32 & !u32::from(n.netmask())))),
            IpNet::V6(n) => IpAddr::V6(Ipv6Addr::from(u128::from(n.network()) | (raw & !u128::from(n.netmask())))),
        };
        let net = IpNet::new(addr, len).unwrap().trunc();
        let v = with(base(), &format!("l3passthrough.hostsession.localcidr.{family}"), json!(net.to_string()));
        let e = Passthrough::parse(&v).unwrap_err();
        prop_assert_eq!(code_of(&e), code::INVALID_CONFIG);
        prop_assert!(e.msg.starts_with(&format!("l3passthrough.hostsession.localcidr.{family}:")), "{}", e.msg);
    }

    #[test]
    fn any_value_anywhere_is_parsed_or_refused_with_code_7(at in 0..PATHS.len(), v in any_json()) {
        let doc = with(base(), PATHS[at], v);
        let first = Passthrough::parse(&doc);
        prop_assert_eq!(&first, &Passthrough::parse(&doc), "parsing is deterministic");
        if let Err(e) = first {
            prop_assert_eq!(code_of(&e), code::INVALID_CONFIG);
            prop_assert!(!e.msg.is_empty());
        }
    }

    #[test]
    fn cni_args_never_panic(raw in prop_oneof![
        ".*",
        prop::collection::vec(
            (prop_oneof![
                Just("OPENPE_NODE_INDEX".to_string()), Just("IgnoreUnknown".to_string()),
                Just("K8S_POD_NAME".to_string()), "[A-Za-z_]{0,8}",
             ], prop_oneof![Just("=".to_string()), Just(String::new())], "[-+0-9a-z=]{0,12}"),
            0..6,
        ).prop_map(|pairs| pairs.into_iter().map(|(k, eq, v)| format!("{k}{eq}{v}")).collect::<Vec<_>>().join(";")),
    ]) {
        match CniArgs::parse(&raw) {
            Ok(args) => {
                prop_assert!(raw.split(';').all(|p| p.is_empty() || p.contains('=')));
                if let Some(n) = args.node_index {
                    prop_assert!(raw.contains("OPENPE_NODE_INDEX="), "index {} from {:?}", n, raw);
                }
            }
            Err(e) => {
                prop_assert_eq!(code_of(&e), code::INVALID_ENV);
                prop_assert!(e.msg.contains("CNI_ARGS"));
            }
        }
    }
}
