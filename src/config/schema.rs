//! The schema: what a configuration may say, as serde reads it (one struct per object, every upstream field
//! named, each spelling an `alias`), then the rules between fields that types cannot say (`validate`-style
//! functions, one per object). Values arrive validated (`values.rs`); what is left here is cross-field.

use std::path::PathBuf;

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Deserialize;
use serde_json::Value;

use super::values::*;
use super::*;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a JSON object")]
struct SettingsWire {
    state_dir: Option<AbsPath>,
    log_file: Option<AbsPath>,
    log_level: Option<LogLevel>,
}

pub(super) fn settings(v: &Value) -> Result<Settings> {
    let w: SettingsWire = lenient(v, "")?;
    Ok(Settings {
        state_dir: w.state_dir.map_or_else(|| PathBuf::from(DEFAULT_STATE_DIR), |p| p.0),
        log_file: w.log_file.map(|p| p.0),
        log_level: w.log_level.map(|l| l.0),
    })
}

/// The passthrough's part of the plugin configuration.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a JSON object")]
struct Netconf {
    /// An Underlay's spec, or the whole resource (see [`resource`]).
    underlay: Option<Value>,
    #[serde(alias = "l3Passthrough")]
    l3passthrough: Option<Value>,
    node_index: Option<u32>,
    node_index_from: Option<NodeIndexFromWire>,
    host_netns: Option<AbsPath>,
    mtu: Option<u32>,
}

#[derive(Deserialize)]
struct NodeIndexFromWire {
    interface: IfName,
    cidr: Cidr,
}

/// A Kubernetes resource pasted whole: only its `spec` matters (and its `kind`, if given, must be right).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Resource {
    kind: Option<Text>,
    spec: Value,
    // Known, and of no use here.
    #[serde(rename = "apiVersion")]
    _api_version: Option<IgnoredAny>,
    #[serde(rename = "metadata")]
    _metadata: Option<IgnoredAny>,
    #[serde(rename = "status")]
    _status: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a JSON object")]
struct UnderlayWire {
    asn: Option<Asn>,
    nics: Option<Vec<Device>>,
    interfaces: Option<Vec<InterfaceWire>>,
    neighbors: Option<Vec<NeighborWire>>,
    #[serde(rename = "routerIDCIDR", alias = "routerIdCidr", alias = "routeridcidr")]
    router_id_cidr: Option<RouterIdCidr>,
    node_selector: Option<IgnoredAny>,
    // EVPN and SRv6: refused.
    evpn: Option<IgnoredAny>,
    tunnel_endpoint: Option<IgnoredAny>,
    isis: Option<IgnoredAny>,
    srv6: Option<IgnoredAny>,
    // Rendered by later issues; refused until then.
    graceful_restart: Option<IgnoredAny>,
    route_reflector: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a JSON object")]
struct InterfaceWire {
    #[serde(rename = "type")]
    kind: InterfaceType,
    network_device: Option<NetworkDeviceWire>,
    cni_device: Option<IgnoredAny>,
}

#[derive(Deserialize, PartialEq)]
enum InterfaceType {
    NetworkDevice,
    #[serde(rename = "CNIDevice")]
    CniDevice,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NetworkDeviceWire {
    interface_name: Device,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a JSON object")]
struct NeighborWire {
    address: Option<NeighborAddress>,
    asn: Option<Asn>,
    #[serde(rename = "type")]
    peer_type: Option<PeerType>,
    port: Option<Bounded<1, 65535>>,
    password: Option<Password>,
    #[serde(alias = "holdTime")]
    hold_time_seconds: Option<Seconds>,
    #[serde(alias = "keepaliveTime")]
    keepalive_time_seconds: Option<Seconds>,
    #[serde(alias = "connectTime")]
    connect_time_seconds: Option<PositiveSeconds>,
    /// The older boolean; `properties` replaced it upstream.
    ebgp_multi_hop: Option<bool>,
    properties: Option<Vec<PropertyWire>>,
    // Rendered by later issues; refused until then.
    interface: Option<IgnoredAny>,
    listen_range: Option<IgnoredAny>,
    bfd: Option<IgnoredAny>,
    address_families: Option<IgnoredAny>,
    password_secret: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a JSON object")]
struct PropertyWire {
    #[serde(rename = "type")]
    _kind: PropertyType,
    ebgp_multi_hop: Option<MultiHopWire>,
}

#[derive(Deserialize)]
enum PropertyType {
    #[serde(rename = "ebgpMultiHop")]
    EbgpMultiHop,
}

#[derive(Deserialize)]
#[serde(expecting = "a JSON object")]
struct MultiHopWire {
    ttl: Option<Bounded<1, 255>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a JSON object")]
struct L3PassthroughWire {
    #[serde(alias = "hostSession")]
    hostsession: Option<HostSessionWire>,
    node_selector: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(expecting = "a JSON object")]
struct HostSessionWire {
    asn: Option<Asn>,
    #[serde(alias = "hostASN", alias = "hostAsn")]
    hostasn: Option<Asn>,
    #[serde(rename = "hostType", alias = "hosttype")]
    host_type: Option<PeerType>,
    #[serde(alias = "localCIDR", alias = "localCidr")]
    localcidr: Option<LocalCidrWire>,
}

#[derive(Deserialize)]
#[serde(expecting = "a JSON object")]
struct LocalCidrWire {
    #[serde(alias = "IPv4")]
    ipv4: Option<LocalCidr4>,
    #[serde(alias = "IPv6")]
    ipv6: Option<LocalCidr6>,
}

// ---------------------------------------------------------------------------------------------------------------

const NOT_YET: &str = "is not implemented in openpe-passthrough yet; remove it (refused rather than ignored, so \
                       that the router never does less than its configuration says)";
const EVPN: &str = "is an EVPN/SRv6 setting; passthrough mode has no VTEP and no tunnel, so it has no use for it";

/// What ebgp-multihop without a TTL means: FRR's maximum, written out so that the rendered text equals what FRR
/// shows in its running configuration.
const MAX_TTL: u8 = 255;

fn required<T>(v: Option<T>, path: &str, name: &str) -> Result<T> {
    v.ok_or_else(|| Error::config(format!("{}: is required", join(path, name))))
}

/// The first of `fields` that is given, refused saying `why`.
fn refuse(path: &str, fields: &[(&str, bool)], why: &str) -> Result<()> {
    match fields.iter().find(|(_, given)| *given) {
        Some((name, _)) => Err(Error::config(format!("{}: {why}", join(path, name)))),
        None => Ok(()),
    }
}

/// `asn` (a number) or `type` (External/Internal): exactly one of the two.
fn remote_as(asn: Option<Asn>, kind: Option<PeerType>, path: &str, names: [&str; 2]) -> Result<RemoteAs> {
    match (asn, kind) {
        (Some(a), None) => Ok(RemoteAs::Asn(a.u32())),
        (None, Some(t)) => Ok(t.0),
        (Some(_), Some(_)) => Err(Error::config(format!(
            "{} and {}: give exactly one of the two",
            join(path, names[0]),
            join(path, names[1])
        ))),
        (None, None) => Err(Error::config(format!(
            "{path}: one of {} or {} is required",
            join(path, names[0]),
            join(path, names[1])
        ))),
    }
}

/// A resource's spec, pasted bare or as the whole resource; returns the path of the spec too.
fn resource<T: DeserializeOwned>(v: &Value, path: &str, kind: &str) -> Result<(T, String)> {
    if v.get("spec").is_none() {
        return Ok((strict(v, path)?, path.to_string()));
    }
    let r: Resource = strict(v, path)?;
    if let Some(Text(k)) = r.kind.filter(|k| k.0 != kind) {
        return Err(Error::config(format!("{path}.kind: must be {kind:?}, got {k:?}")));
    }
    let path = format!("{path}.spec");
    Ok((strict(&r.spec, &path)?, path))
}

fn not_ignored(path: &str, given: bool, why: &str) {
    if given {
        crate::log_info!("{path}.nodeSelector: accepted and ignored: {why}");
    }
}

const NODE_SELECTOR: &str = "a plugin configuration applies wherever it is installed (in Kubernetes, one \
                             NetworkAttachmentDefinition per node pool does the selector's job)";

pub(super) fn passthrough(v: &Value) -> Result<Passthrough> {
    let n: Netconf = strict(v, "")?;
    let host_session = host_session(&required(n.l3passthrough, "", "l3passthrough")?)?;
    let underlay = underlay(&required(n.underlay, "", "underlay")?, &host_session)?;
    let node_index_from = n.node_index_from.map(|f| NodeIndexFrom { interface: f.interface.0, cidr: f.cidr.0 });
    let mtu = match n.mtu {
        Some(m) if host_session.ipv6.is_some() && !(1280..=65535).contains(&m) => {
            return Err(Error::config(format!("mtu: must be from 1280 to 65535 (IPv6 needs at least 1280), got {m}")))
        }
        Some(m) if !(68..=65535).contains(&m) => {
            return Err(Error::config(format!("mtu: must be a whole number from 68 to 65535, got {m}")))
        }
        m => m,
    };
    let pt = Passthrough {
        underlay,
        host_session,
        node_index: n.node_index,
        node_index_from,
        host_netns: n.host_netns.map(|p| p.0),
        mtu,
    };
    Ok(pt)
}

/// A neighbor inside a localcidr would be routed to the veth pair, and the router's own pt-ns address cannot
/// be its own peer.
fn outside_localcidr(n: &Neighbor, hs: &HostSession, p: &str) -> Result<()> {
    let cidrs = [hs.ipv4.map(IpNet::V4).map(|n| ("ipv4", n)), hs.ipv6.map(IpNet::V6).map(|n| ("ipv6", n))];
    let router = crate::addressing::veth_addresses(hs, 0)?.router;
    if router.iter().any(|r| r.addr() == n.address) {
        return Err(Error::config(format!("{p}.address: {} is the router's own pt-ns address", n.address)));
    }
    match cidrs.iter().flatten().find(|(_, net)| net.contains(&n.address)) {
        Some((family, net)) => Err(Error::config(format!(
            "{p}.address: {} lies inside l3passthrough.hostsession.localcidr.{family} ({net}), whose addresses \
             belong to the veth pair",
            n.address
        ))),
        None => Ok(()),
    }
}

fn underlay(v: &Value, hs: &HostSession) -> Result<Underlay> {
    let (u, path): (UnderlayWire, String) = resource(v, "underlay", "Underlay")?;
    let p = path.as_str();
    refuse(
        p,
        &[("evpn", u.evpn.is_some()), ("tunnelEndpoint", u.tunnel_endpoint.is_some()), ("isis", u.isis.is_some())],
        EVPN,
    )?;
    refuse(p, &[("srv6", u.srv6.is_some())], EVPN)?;
    refuse(
        p,
        &[("gracefulRestart", u.graceful_restart.is_some()), ("routeReflector", u.route_reflector.is_some())],
        NOT_YET,
    )?;
    not_ignored(p, u.node_selector.is_some(), NODE_SELECTOR);
    let nics = devices(u.nics, u.interfaces, p)?;
    let list = required(u.neighbors, p, "neighbors")?;
    if list.is_empty() {
        return Err(Error::config(format!("{p}.neighbors: needs at least one BGP neighbor")));
    }
    let mut neighbors: Vec<Neighbor> = Vec::new();
    for (i, n) in list.into_iter().enumerate() {
        let at = format!("{p}.neighbors[{i}]");
        let n = neighbor(n, &at)?;
        outside_localcidr(&n, hs, &at)?;
        if neighbors.iter().any(|m| m.address == n.address) {
            return Err(Error::config(format!("{p}.neighbors[{i}].address: {} is listed twice", n.address)));
        }
        neighbors.push(n);
    }
    let router_id_cidr = match u.router_id_cidr {
        Some(c) => c.0,
        None => DEFAULT_ROUTER_ID_CIDR.parse().expect("default router id CIDR"),
    };
    Ok(Underlay { asn: required(u.asn, p, "asn")?.u32(), nics, neighbors, router_id_cidr })
}

/// The devices moved into the router: `nics` (names) or `interfaces` (upstream's typed list), not both.
fn devices(nics: Option<Vec<Device>>, interfaces: Option<Vec<InterfaceWire>>, p: &str) -> Result<Vec<String>> {
    let named: Vec<(String, String)> = match (nics, interfaces) {
        (Some(_), Some(_)) => {
            return Err(Error::config(format!("{p}.nics and {p}.interfaces: give one of the two, not both")))
        }
        (None, None) => return Err(Error::config(format!("{p}.nics: is required (or {p}.interfaces)"))),
        (Some(list), None) => list.into_iter().enumerate().map(|(i, d)| (format!("{p}.nics[{i}]"), d.0)).collect(),
        (None, Some(list)) => list
            .into_iter()
            .enumerate()
            .map(|(i, d)| {
                let at = format!("{p}.interfaces[{i}]");
                if d.kind == InterfaceType::CniDevice {
                    return Err(Error::config(format!("{at}.type: CNIDevice {NOT_YET}")));
                }
                refuse(&at, &[("cniDevice", d.cni_device.is_some())], "belongs to type CNIDevice, not NetworkDevice")?;
                let dev = required(d.network_device, &at, "networkDevice")?;
                Ok((format!("{at}.networkDevice.interfaceName"), dev.interface_name.0))
            })
            .collect::<Result<_>>()?,
    };
    let mut out: Vec<String> = Vec::new();
    for (path, name) in named {
        if out.contains(&name) {
            return Err(Error::config(format!("{path}: {name:?} is listed twice")));
        }
        out.push(name);
    }
    Ok(out)
}

fn neighbor(n: NeighborWire, p: &str) -> Result<Neighbor> {
    refuse(
        p,
        &[
            ("interface", n.interface.is_some()),
            ("listenRange", n.listen_range.is_some()),
            ("bfd", n.bfd.is_some()),
            ("addressFamilies", n.address_families.is_some()),
            ("passwordSecret", n.password_secret.is_some()),
        ],
        NOT_YET,
    )?;
    let address = required(n.address, p, "address")?.0;
    let remote_as = remote_as(n.asn, n.peer_type, p, ["asn", "type"])?;
    let (hold_time_seconds, keepalive_time_seconds) = match (n.hold_time_seconds, n.keepalive_time_seconds) {
        (None, None) => (None, None),
        (Some(h), Some(k)) => {
            if h.0 != 0 && h.0 < 3 {
                return Err(Error::config(format!(
                    "{p}.holdTimeSeconds: must be 0 or at least 3 seconds, got {}",
                    h.0
                )));
            }
            if k.0 > h.0 {
                return Err(Error::config(format!(
                    "{p}.keepaliveTimeSeconds: must not exceed {p}.holdTimeSeconds ({}), got {}",
                    h.0, k.0
                )));
            }
            (Some(h.u16()), Some(k.u16()))
        }
        (Some(_), None) | (None, Some(_)) => {
            let given = if n.hold_time_seconds.is_some() { "holdTimeSeconds" } else { "keepaliveTimeSeconds" };
            return Err(Error::config(format!(
                "{p}.{given}: holdTimeSeconds and keepaliveTimeSeconds must be set together"
            )));
        }
    };
    let ebgp_multi_hop = match (n.ebgp_multi_hop, n.properties) {
        (Some(_), Some(_)) => {
            return Err(Error::config(format!(
                "{p}.ebgpMultiHop and {p}.properties: give one of the two (the boolean is the older spelling of \
                 the ebgpMultiHop property)"
            )))
        }
        (Some(on), None) => on.then_some(MAX_TTL),
        (None, Some(props)) => match &props[..] {
            [] => None,
            [one] => Some(one.ebgp_multi_hop.as_ref().and_then(|m| m.ttl).map_or(MAX_TTL, |t| t.0 as u8)),
            _ => return Err(Error::config(format!("{p}.properties: at most one property (ebgpMultiHop)"))),
        },
        (None, None) => None,
    };
    Ok(Neighbor {
        address,
        remote_as,
        port: n.port.map(Bounded::u16),
        password: n.password.map(|s| s.0),
        hold_time_seconds,
        keepalive_time_seconds,
        connect_time_seconds: n.connect_time_seconds.map(Bounded::u16),
        ebgp_multi_hop,
    })
}

fn host_session(v: &Value) -> Result<HostSession> {
    let (l3, path): (L3PassthroughWire, String) = resource(v, "l3passthrough", "L3Passthrough")?;
    not_ignored(&path, l3.node_selector.is_some(), NODE_SELECTOR);
    let hs = required(l3.hostsession, &path, "hostsession")?;
    let p = format!("{path}.hostsession");
    let lc = required(hs.localcidr, &p, "localcidr")?;
    if lc.ipv4.is_none() && lc.ipv6.is_none() {
        return Err(Error::config(format!("{p}.localcidr: give at least one of ipv4 and ipv6")));
    }
    Ok(HostSession {
        asn: required(hs.asn, &p, "asn")?.u32(),
        host_as: remote_as(hs.hostasn, hs.host_type, &p, ["hostasn", "hostType"])?,
        ipv4: lc.ipv4.map(|c| c.0),
        ipv6: lc.ipv6.map(|c| c.0),
    })
}
