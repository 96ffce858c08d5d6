//! The schema: what a configuration may say, as serde reads it (one struct per object, each spelling an
//! `alias`), what becomes of the upstream fields this project does not use (`Fate` tables), and the rules
//! between fields that types cannot say. Values arrive validated (`values.rs`).

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use super::values::*;
use super::*;

/// The passthrough's part of the plugin configuration.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a JSON object")]
struct Netconf {
    /// An Underlay's spec, or the whole resource (see [`resource`]); likewise the L3Passthrough.
    underlay: Option<Value>,
    #[serde(alias = "l3Passthrough")]
    l3passthrough: Option<Value>,
    node_index: Option<u32>,
    node_index_from: Option<NodeIndexFrom>,
    host_netns: Option<AbsPath>,
    mtu: Option<u32>,
}

/// A Kubernetes resource pasted whole: only its `spec` matters, and its `kind`, if given, must be right.
#[derive(Deserialize)]
struct Resource {
    kind: Option<Text>,
    spec: Value,
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
    graceful_restart: Option<GracefulRestart>,
    route_reflector: Option<RouteReflector>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a JSON object")]
struct InterfaceWire {
    #[serde(rename = "type")]
    kind: InterfaceType,
    network_device: Option<NetworkDeviceWire>,
    cni_device: Option<CniDeviceWire>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a JSON object")]
struct CniDeviceWire {
    #[serde(rename = "type")]
    kind: Option<CniDeviceType>,
    raw_config: Option<serde_json::Map<String, Value>>,
    interface_name: Option<Device>,
    runtime_config: Option<serde_json::Map<String, Value>>,
}

#[derive(Deserialize)]
enum CniDeviceType {
    RawConfig,
}

#[derive(Deserialize, PartialEq)]
enum InterfaceType {
    NetworkDevice,
    #[serde(rename = "CNIDevice")]
    CniDevice,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a JSON object")]
struct NetworkDeviceWire {
    interface_name: Device,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a JSON object")]
struct NeighborWire {
    address: Option<NeighborAddress>,
    interface: Option<IfName>,
    listen_range: Option<Cidr>,
    bfd: Option<Bfd>,
    address_families: Option<Vec<AddressFamily>>,
    asn: Option<Asn>,
    #[serde(rename = "type")]
    peer_type: Option<PeerType>,
    port: Option<Bounded<1, 65535>>,
    password: Option<Password>,
    password_secret: Option<SecretRef>,
    #[serde(alias = "holdTime")]
    hold_time_seconds: Option<Seconds>,
    #[serde(alias = "keepaliveTime")]
    keepalive_time_seconds: Option<Seconds>,
    #[serde(alias = "connectTime")]
    connect_time_seconds: Option<Bounded<1, 65535>>,
    /// The older boolean, which `properties` replaced upstream.
    ebgp_multi_hop: Option<bool>,
    properties: Option<Vec<PropertyWire>>,
}

/// Upstream's `passwordSecret`: a Secret's name (its key `password`), or `{"name": N, "key": K}`.
impl TryFrom<Value> for SecretRef {
    type Error = String;
    fn try_from(v: Value) -> std::result::Result<Self, String> {
        let (name, key) = match v {
            Value::String(s) => (SecretName::try_from(s)?, None),
            Value::Object(_) => {
                let o: SecretObject = serde_json::from_value(v).map_err(|e| e.to_string())?;
                (o.name, o.key)
            }
            _ => return Err("must be a Secret name or {\"name\": ..., \"key\": ...}".into()),
        };
        Ok(SecretRef { name: name.0, key: key.map_or_else(|| DEFAULT_SECRET_KEY.to_string(), |k| k.0) })
    }
}

/// Refuses other fields (such as a `namespace`): the Secret is the one mounted in the router pod.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object")]
struct SecretObject {
    name: SecretName,
    key: Option<SecretKey>,
}

/// Read by hand rather than as an untagged enum, which would lose the reason a name is refused.
impl TryFrom<Value> for AddressFamily {
    type Error = String;
    fn try_from(v: Value) -> Result<Self, String> {
        let (FamilyName(family), properties) = match v {
            Value::String(s) => (Text::try_from(s).and_then(FamilyName::try_from)?, None),
            Value::Object(_) => {
                let o: AddressFamilyObject = serde_json::from_value(v).map_err(|e| e.to_string())?;
                (o.family, o.properties)
            }
            _ => {
                return Err("must be a family name (ipv4unicast, ipv6unicast) or an object {family, properties}".into())
            }
        };
        Ok(AddressFamily { family, route_reflector_client: properties.is_some_and(|ps| !ps.is_empty()) })
    }
}

#[derive(Deserialize)]
#[serde(expecting = "a JSON object")]
struct AddressFamilyObject {
    family: FamilyName,
    properties: Option<Vec<FamilyPropertyWire>>,
}

#[derive(Deserialize)]
#[serde(expecting = "a JSON object")]
struct FamilyPropertyWire {
    #[serde(rename = "type")]
    _kind: FamilyPropertyType,
}

#[derive(Deserialize)]
enum FamilyPropertyType {
    #[serde(rename = "routeReflectorClient")]
    RouteReflectorClient,
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
#[serde(expecting = "a JSON object")]
struct L3PassthroughWire {
    #[serde(alias = "hostSession")]
    hostsession: Option<HostSessionWire>,
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
    // This project's limits on what the host may announce (docs/routing-safety.md). The lowercase spellings are
    // accepted like the seed's other fields: a limit ignored as an unknown field would fail open.
    #[serde(rename = "allowedPrefixes", alias = "allowedprefixes")]
    allowed_prefixes: Option<Vec<Text>>,
    #[serde(rename = "maxPrefixes", alias = "maxprefixes")]
    max_prefixes: Option<Bounded<1, { u32::MAX as u64 }>>,
    #[serde(rename = "maxPrefixesRestartMinutes", alias = "maxprefixesrestartminutes")]
    max_prefixes_restart_minutes: Option<Bounded<1, 65535>>,
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
// The upstream fields this project does not use, by object (`[]` stands for any index): refused saying why, or
// accepted and ignored saying why. Every other unknown field is logged at debug level.

const EVPN: Fate = Fate::Refused("is an EVPN/SRv6 setting; passthrough mode has no VTEP and no tunnel to use it for");
const NODE_SELECTOR: Fate = Fate::Ignored(
    "a plugin configuration applies wherever it is installed; in Kubernetes, one NetworkAttachmentDefinition per \
     node pool does the selector's job",
);
const K8S: Fate = Fate::Theirs;

const RESOURCE: &[(&str, Fate)] = &[("apiVersion", K8S), ("metadata", K8S), ("status", K8S)];
const UNDERLAY: &[(&str, Fate)] =
    &[("nodeSelector", NODE_SELECTOR), ("evpn", EVPN), ("tunnelEndpoint", EVPN), ("isis", EVPN), ("srv6", EVPN)];
const L3PASSTHROUGH: &[(&str, Fate)] = &[("nodeSelector", NODE_SELECTOR)];

/// What ebgp-multihop without a TTL means: FRR's maximum, written out so that the rendered text equals what FRR
/// shows in its running configuration.
pub(super) const MAX_TTL: u8 = 255;
/// Upstream's limit on `neighbors`.
const MAX_NEIGHBORS: usize = 128;
/// FRR's (and upstream's) graceful restart defaults.
pub(crate) const DEFAULT_RESTART_TIME: u16 = 120;
pub(crate) const DEFAULT_STALE_PATH_TIME: u16 = 360;

fn fail<T>(msg: String) -> Result<T> {
    Err(Error::config(msg))
}

fn required<T>(v: Option<T>, path: &str, name: &str) -> Result<T> {
    v.ok_or_else(|| Error::config(format!("{}: is required", join(path, name))))
}

/// `asn` (a number) or `type` (External/Internal): exactly one of the two.
fn remote_as(asn: Option<Asn>, kind: Option<PeerType>, p: &str, [a, t]: [&str; 2]) -> Result<RemoteAs> {
    match (asn, kind) {
        (Some(n), None) => Ok(RemoteAs::Asn(n.into())),
        (None, Some(k)) => Ok(k.0),
        (Some(_), Some(_)) => fail(format!("{p}.{a} and {p}.{t}: give exactly one of the two")),
        (None, None) => fail(format!("{p}: one of {p}.{a} or {p}.{t} is required")),
    }
}

/// A resource's spec, pasted bare or as the whole resource; returns the path of the spec too.
fn resource<T: DeserializeOwned>(v: &Value, path: &str, kind: &str, fates: &[(&str, Fate)]) -> Result<(T, String)> {
    if v.get("spec").is_none() {
        return Ok((strict(v, path, fates)?, path.to_string()));
    }
    let r: Resource = strict(v, path, RESOURCE)?;
    if let Some(Text(k)) = r.kind.filter(|k| k.0 != kind) {
        return fail(format!("{path}.kind: must be {kind:?}, got {k:?}"));
    }
    let path = format!("{path}.spec");
    Ok((strict(&r.spec, &path, fates)?, path))
}

pub(super) fn passthrough(v: &Value) -> Result<Passthrough> {
    let n: Netconf = strict(v, "", NOT_OURS)?;
    let host_session = host_session(&required(n.l3passthrough, "", "l3passthrough")?)?;
    let underlay = underlay(&required(n.underlay, "", "underlay")?, &host_session)?;
    let min_mtu = if host_session.ipv6.is_some() { 1280 } else { 68 };
    if let Some(m) = n.mtu.filter(|m| !(min_mtu..=65535).contains(m)) {
        return fail(format!("mtu: must be a whole number from {min_mtu} to 65535 (IPv6 needs 1280), got {m}"));
    }
    Ok(Passthrough {
        underlay,
        host_session,
        node_index: n.node_index,
        node_index_from: n.node_index_from,
        host_netns: n.host_netns.map(|p| p.0),
        mtu: n.mtu,
    })
}

fn underlay(v: &Value, hs: &HostSession) -> Result<Underlay> {
    let (u, path): (UnderlayWire, String) = resource(v, "underlay", "Underlay", UNDERLAY)?;
    let p = path.as_str();
    let nics_from = if u.interfaces.is_some() { DeviceList::Interfaces } else { DeviceList::Nics };
    let (nics, cni_devices) = devices(u.nics, u.interfaces, p)?;
    let list = required(u.neighbors, p, "neighbors")?;
    if list.is_empty() {
        return fail(format!("{p}.neighbors: needs at least one BGP neighbor"));
    }
    if list.len() > MAX_NEIGHBORS {
        return fail(format!("{p}.neighbors: at most {MAX_NEIGHBORS} neighbors, got {}", list.len()));
    }
    let asn = required(u.asn, p, "asn")?.into();
    let mut neighbors: Vec<Neighbor> = Vec::new();
    for (i, n) in list.into_iter().enumerate() {
        let at = format!("{p}.neighbors[{i}]");
        let n = neighbor(n, &at, hs, asn)?;
        match &n.peer {
            Peer::Address(a) if neighbors.iter().any(|m| m.peer == n.peer) => {
                return fail(format!("{at}.address: {a} is listed twice"))
            }
            Peer::Interface(name) if neighbors.iter().any(|m| m.peer == n.peer) => {
                return fail(format!("{at}.interface: {name:?} is listed twice"))
            }
            Peer::Interface(name) if !nics.contains(name) && !cni_devices.iter().any(|d| &d.interface_name == name) => {
                return fail(format!(
                    "{at}.interface: {name:?} is not one of the underlay's devices ({} or a CNIDevice's \
                     interfaceName), the only links the router has",
                    if nics_from == DeviceList::Nics { format!("{p}.nics") } else { format!("{p}.interfaces") }
                ))
            }
            Peer::ListenRange(r) => {
                let overlapping = neighbors.iter().find_map(|m| match m.peer {
                    Peer::ListenRange(o) if o.contains(&r.network()) || r.contains(&o.network()) => Some(o),
                    _ => None,
                });
                if let Some(o) = overlapping {
                    return fail(format!("{at}.listenRange: {r} overlaps the listen range {o} of another neighbor"));
                }
            }
            _ => {}
        }
        neighbors.push(n);
    }
    let router_id_cidr = u.router_id_cidr.map_or_else(|| DEFAULT_ROUTER_ID_CIDR.parse().expect("constant"), |c| c.0);
    if let Some(RouteReflector { cluster_id }) = u.route_reflector.filter(|r| router_id_cidr.contains(&r.cluster_id)) {
        return fail(format!(
            "{p}.routeReflector.clusterID: {cluster_id} lies inside {p}.routerIDCIDR ({router_id_cidr}), where it \
             could equal a node's router id"
        ));
    }
    let (graceful_restart, route_reflector) = (u.graceful_restart, u.route_reflector);
    Ok(Underlay { asn, nics, nics_from, cni_devices, neighbors, router_id_cidr, graceful_restart, route_reflector })
}

/// The underlay devices: `nics` (names) or `interfaces` (upstream's typed list, all entries of one type), not
/// both. Returns the devices moved into the router and the ones made by delegation.
fn devices(
    nics: Option<Vec<Device>>,
    interfaces: Option<Vec<InterfaceWire>>,
    p: &str,
) -> Result<(Vec<String>, Vec<CniDevice>)> {
    let mut delegated: Vec<CniDevice> = Vec::new();
    let named: Vec<(String, String)> = match (nics, interfaces) {
        (Some(_), Some(_)) => return fail(format!("{p}.nics and {p}.interfaces: give one of the two, not both")),
        (None, None) => return fail(format!("{p}.nics: is required (or {p}.interfaces)")),
        (Some(list), None) => list.into_iter().enumerate().map(|(i, d)| (format!("{p}.nics[{i}]"), d.0)).collect(),
        (None, Some(list)) => {
            if list.is_empty() {
                return fail(format!("{p}.interfaces: needs at least one interface"));
            }
            let mut named = Vec::new();
            let first = list.first().map(|d| d.kind == InterfaceType::CniDevice);
            for (i, d) in list.into_iter().enumerate() {
                let at = format!("{p}.interfaces[{i}]");
                if Some(d.kind == InterfaceType::CniDevice) != first {
                    return fail(format!("{at}.type: all entries of {p}.interfaces must be of one type"));
                }
                match d.kind {
                    InterfaceType::NetworkDevice => {
                        if d.cni_device.is_some() {
                            return fail(format!("{at}.cniDevice: goes with type CNIDevice, not NetworkDevice"));
                        }
                        let dev = required(d.network_device, &at, "networkDevice")?;
                        named.push((format!("{at}.networkDevice.interfaceName"), dev.interface_name.0));
                    }
                    InterfaceType::CniDevice => {
                        if d.network_device.is_some() {
                            return fail(format!("{at}.networkDevice: goes with type NetworkDevice, not CNIDevice"));
                        }
                        let c = cni_device(required(d.cni_device, &at, "cniDevice")?, &format!("{at}.cniDevice"))?;
                        if delegated.iter().any(|o| o.interface_name == c.interface_name) {
                            return fail(format!(
                                "{at}.cniDevice.interfaceName: {:?} is listed twice",
                                c.interface_name
                            ));
                        }
                        delegated.push(c);
                    }
                }
            }
            named
        }
    };
    let mut out: Vec<String> = Vec::new();
    for (path, name) in named {
        if out.contains(&name) {
            return fail(format!("{path}: {name:?} is listed twice"));
        }
        out.push(name);
    }
    Ok((out, delegated))
}

fn cni_device(c: CniDeviceWire, p: &str) -> Result<CniDevice> {
    required(c.kind, p, "type")?;
    // What the list itself must say is CNI's rule, checked with the plugins it names (commands/delegate.rs).
    Ok(CniDevice {
        conflist: Value::Object(required(c.raw_config, p, "rawConfig")?),
        interface_name: c.interface_name.map_or_else(|| DEFAULT_CNI_DEVICE_IFNAME.to_string(), |d| d.0),
        runtime_config: c.runtime_config.unwrap_or_default(),
    })
}

fn neighbor(n: NeighborWire, p: &str, hs: &HostSession, local_asn: u32) -> Result<Neighbor> {
    let cidrs = [hs.ipv4.map(|n| ("ipv4", IpNet::V4(n))), hs.ipv6.map(|n| ("ipv6", IpNet::V6(n)))];
    let peer = match (n.address, n.interface, n.listen_range) {
        (Some(address), None, None) => {
            let address = address.0;
            // The router's own pt-ns address cannot be its peer, and a peer inside a localcidr would be routed to
            // the veth.
            if crate::addressing::veth_addresses(hs, 0)?.router.iter().any(|r| r.addr() == address) {
                return fail(format!("{p}.address: {address} is the router's own pt-ns address"));
            }
            if let Some((family, net)) = cidrs.iter().flatten().find(|(_, net)| net.contains(&address)) {
                return fail(format!(
                    "{p}.address: {address} lies inside l3passthrough.hostsession.localcidr.{family} ({net}), whose \
                     addresses belong to the veth pair"
                ));
            }
            Peer::Address(address)
        }
        (None, Some(IfName(name)), None) => {
            if name == ROUTER_IFNAME || name == HOST_IFNAME {
                return fail(format!("{p}.interface: {name:?} is the plugin's own veth, not an underlay link"));
            }
            Peer::Interface(name)
        }
        (None, None, Some(Cidr(range))) => {
            let range = listen_range(range).map_err(|e| Error::config(format!("{p}.listenRange: {e}")))?;
            if let Some((family, net)) =
                cidrs.iter().flatten().find(|(_, net)| net.contains(&range.network()) || range.contains(&net.network()))
            {
                return fail(format!(
                    "{p}.listenRange: {range} overlaps l3passthrough.hostsession.localcidr.{family} ({net}): the \
                     host would be accepted as a fabric peer"
                ));
            }
            Peer::ListenRange(range)
        }
        (None, None, None) => return fail(format!("{p}.address: is required (or {p}.interface, or {p}.listenRange)")),
        (a, i, r) => {
            let given: Vec<String> =
                [("address", a.is_some()), ("interface", i.is_some()), ("listenRange", r.is_some())]
                    .iter()
                    .filter(|(_, on)| *on)
                    .map(|(f, _)| format!("{p}.{f}"))
                    .collect();
            return fail(format!("{}: give exactly one of address, interface and listenRange", given.join(" and ")));
        }
    };
    let remote_as = remote_as(n.asn, n.peer_type, p, ["asn", "type"])?;
    let (hold, keepalive) = match (n.hold_time_seconds, n.keepalive_time_seconds) {
        (None, None) => (None, None),
        (Some(h), _) if h.0 != 0 && h.0 < 3 => {
            return fail(format!("{p}.holdTimeSeconds: must be 0 or at least 3 seconds, got {}", h.0))
        }
        (Some(h), Some(k)) if k.0 > h.0 => {
            return fail(format!(
                "{p}.keepaliveTimeSeconds: must not exceed {p}.holdTimeSeconds ({}), got {}",
                h.0, k.0
            ))
        }
        (Some(h), Some(k)) => (Some(h.into()), Some(k.into())),
        (h, _) => {
            let given = if h.is_some() { "holdTimeSeconds" } else { "keepaliveTimeSeconds" };
            return fail(format!("{p}.{given}: holdTimeSeconds and keepaliveTimeSeconds must be set together"));
        }
    };
    let ebgp_multi_hop = match (n.ebgp_multi_hop, n.properties.as_deref()) {
        (Some(_), Some(_)) => {
            return fail(format!(
                "{p}.ebgpMultiHop and {p}.properties: give one of the two (the boolean is the older spelling of the \
                 ebgpMultiHop property)"
            ))
        }
        (Some(on), None) => on.then_some(MAX_TTL),
        (None, Some([one])) => Some(one.ebgp_multi_hop.as_ref().and_then(|m| m.ttl).map_or(MAX_TTL, |t| t.0 as u8)),
        (None, Some([_, _, ..])) => return fail(format!("{p}.properties: at most one property (ebgpMultiHop)")),
        (None, Some([]) | None) => None,
    };
    if n.password.is_some() && n.password_secret.is_some() {
        return fail(format!(
            "{p}.password and {p}.passwordSecret: give one of the two (an inline password or the Secret that holds \
             it)"
        ));
    }
    if n.bfd.is_some_and(|b| b.minimum_ttl.is_some()) && ebgp_multi_hop.is_none_or(|ttl| ttl <= 1) {
        return fail(format!(
            "{p}.bfd.minimumTTL: applies to multihop BFD sessions only; this neighbor has no ebgpMultiHop property \
             with a TTL above 1"
        ));
    }
    let internal = match remote_as {
        RemoteAs::Internal => true,
        RemoteAs::External => false,
        RemoteAs::Asn(a) => a == local_asn,
    };
    let address_families = n.address_families.map(|list| families(list, p, internal)).transpose()?;
    Ok(Neighbor {
        peer,
        remote_as,
        port: n.port.map(Into::into),
        password: n.password.map(|s| s.0),
        password_secret: n.password_secret,
        hold_time_seconds: hold,
        keepalive_time_seconds: keepalive,
        connect_time_seconds: n.connect_time_seconds.map(Into::into),
        ebgp_multi_hop,
        bfd: n.bfd,
        address_families,
    })
}

fn families(list: Vec<AddressFamily>, p: &str, internal: bool) -> Result<Vec<AddressFamily>> {
    if list.is_empty() {
        return fail(format!(
            "{p}.addressFamilies: lists no family; leave the field out for the defaults, or name ipv4unicast or \
             ipv6unicast"
        ));
    }
    let mut out: Vec<AddressFamily> = Vec::new();
    for (i, f) in list.into_iter().enumerate() {
        if out.iter().any(|o| o.family == f.family) {
            return fail(format!("{p}.addressFamilies[{i}]: {} is listed twice", f.family.name()));
        }
        if f.route_reflector_client && !internal {
            return fail(format!(
                "{p}.addressFamilies[{i}].properties: routeReflectorClient is for Internal neighbors only (route \
                 reflection is iBGP's)"
            ));
        }
        out.push(f);
    }
    out.sort_by_key(|f| f.family);
    Ok(out)
}

fn host_session(v: &Value) -> Result<HostSession> {
    let (l3, path): (L3PassthroughWire, String) = resource(v, "l3passthrough", "L3Passthrough", L3PASSTHROUGH)?;
    let p = format!("{path}.hostsession");
    let hs = required(l3.hostsession, &path, "hostsession")?;
    let lc = required(hs.localcidr, &p, "localcidr")?;
    if lc.ipv4.is_none() && lc.ipv6.is_none() {
        return fail(format!("{p}.localcidr: give at least one of ipv4 and ipv6"));
    }
    let (ipv4, ipv6) = (lc.ipv4.map(|c| c.0), lc.ipv6.map(|c| c.0));
    let allowed_prefixes = match hs.allowed_prefixes {
        Some(list) => Some(limits::allowed_prefixes(
            &list.into_iter().map(|t| t.0).collect::<Vec<_>>(),
            &format!("{p}.allowedPrefixes"),
            ipv4.is_some(),
            ipv6.is_some(),
        )?),
        None => None,
    };
    let max_prefixes = hs.max_prefixes.map(Into::into);
    let restart = hs.max_prefixes_restart_minutes.map(|m| (m.into(), format!("{p}.maxPrefixesRestartMinutes")));
    let max_prefixes_restart_minutes = limits::restart_minutes(restart, max_prefixes)?;
    Ok(HostSession {
        asn: required(hs.asn, &p, "asn")?.into(),
        host_as: remote_as(hs.hostasn, hs.host_type, &p, ["hostasn", "hostType"])?,
        ipv4,
        ipv6,
        limits: HostLimits { allowed_prefixes, max_prefixes, max_prefixes_restart_minutes },
    })
}
