//! The network configuration on stdin: parsed by hand from JSON so that every error names its field
//! (`underlay.neighbors[1].asn: ...`), both spellings of the specification are accepted, and unknown fields are
//! logged rather than fatal. Everything that later reaches FRR's configuration is validated here into typed values.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::cni::{check_version, valid_identifier};
use crate::error::{Error, Kind, Result};
use crate::log::Level;
use crate::log_debug;

pub const DEFAULT_STATE_DIR: &str = "/run/openpe-passthrough";
pub const DEFAULT_DRAIN_TIMEOUT_SECONDS: u64 = 2;
pub const DEFAULT_ROUTER_ID_CIDR: &str = "10.0.0.0/24";
pub const ROUTER_IFNAME: &str = "pt-ns";
pub const HOST_IFNAME: &str = "pt-host";

/// The part of the configuration every verb needs (DEL, GC and STATUS need nothing else: teardown works from
/// the record, so it still works after the passthrough settings changed).
#[derive(Debug, Clone)]
pub struct Envelope {
    pub cni_version: String,
    pub name: String,
    pub state_dir: PathBuf,
    /// `drainTimeoutSeconds`: how long DEL waits for a sidecar to close the BGP sessions (0: no drain).
    pub drain_timeout: std::time::Duration,
    pub log_file: Option<PathBuf>,
    pub log_level: Option<Level>,
    pub prev_result: Option<Value>,
    /// `runtimeConfig.nodeIndex`.
    pub runtime_node_index: Option<u32>,
    /// `args.cni.nodeIndex` (where Multus puts a pod's `cni-args`).
    pub args_node_index: Option<u32>,
    /// GC's `cni.dev/valid-attachments` (or the legacy `cni.dev/attachments`); None when absent.
    pub valid_attachments: Option<Vec<ValidAttachment>>,
    raw: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidAttachment {
    pub container_id: String,
    pub ifname: String,
}

/// The passthrough settings, needed by ADD, CHECK and `render`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Passthrough {
    pub underlay: Underlay,
    pub host_session: HostSession,
    pub node_index: Option<u32>,
    pub node_index_from: Option<NodeIndexFrom>,
    pub host_netns: Option<PathBuf>,
    pub mtu: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Underlay {
    pub asn: u32,
    pub nics: Vec<String>,
    pub neighbors: Vec<Neighbor>,
    #[serde(rename = "routerIDCIDR")]
    pub router_id_cidr: Ipv4Net,
}

/// How a BGP peer's AS is given: a number, or FRR's `external` / `internal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RemoteAs {
    Asn(u32),
    External,
    Internal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Neighbor {
    pub address: IpAddr,
    pub remote_as: RemoteAs,
    pub port: Option<u16>,
    pub password: Option<String>,
    pub hold_time_seconds: Option<u16>,
    pub keepalive_time_seconds: Option<u16>,
    pub connect_time_seconds: Option<u16>,
    pub ebgp_multi_hop: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostSession {
    pub asn: u32,
    pub host_as: RemoteAs,
    pub ipv4: Option<Ipv4Net>,
    pub ipv6: Option<Ipv6Net>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeIndexFrom {
    pub interface: String,
    pub cidr: IpNet,
}

// ---------------------------------------------------------------------------------------------------------------
// A small walker over JSON objects that knows the path of every field and which fields were used.

struct Fields<'a> {
    map: &'a Map<String, Value>,
    path: String,
    used: HashSet<&'a str>,
}

fn show(v: &Value) -> String {
    // JSON escaping leaves DEL and the C1 controls as they are: escape every control character for messages
    // that end up in logs and terminals.
    let s: String = v
        .to_string()
        .chars()
        .map(|c| if c.is_control() { c.escape_unicode().to_string() } else { c.to_string() })
        .collect();
    if s.chars().count() > 60 {
        format!("{}...", s.chars().take(57).collect::<String>())
    } else {
        s
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

impl<'a> Fields<'a> {
    fn new(v: &'a Value, path: &str) -> Result<Fields<'a>> {
        match v {
            Value::Object(map) => Ok(Fields { map, path: path.to_string(), used: HashSet::new() }),
            other => Err(Error::config(format!("{path}: must be an object, got {}", show(other)))),
        }
    }

    /// The value under the first of `names` present (the names are spellings of one field); two spellings at
    /// once are refused, since one would silently win. Returns the field's path too.
    fn get(&mut self, names: &[&'a str]) -> Result<Option<(&'a Value, String)>> {
        let mut found: Option<(&'a str, &'a Value)> = None;
        for name in names {
            if let Some((k, v)) = self.map.get_key_value(*name) {
                self.used.insert(k.as_str());
                if let Some((prev, _)) = found {
                    return Err(Error::config(format!(
                        "{} and {} are two spellings of one field: give only one",
                        join(&self.path, prev),
                        join(&self.path, name)
                    )));
                }
                found = Some((name, v));
            }
        }
        Ok(found.filter(|(_, v)| !v.is_null()).map(|(n, v)| (v, join(&self.path, n))))
    }

    fn required(&mut self, names: &[&'a str]) -> Result<(&'a Value, String)> {
        self.get(names)?.ok_or_else(|| Error::config(format!("{}: is required", join(&self.path, names[0]))))
    }

    fn ignore(&mut self, names: &[&'a str]) {
        for n in names {
            if let Some((k, _)) = self.map.get_key_value(*n) {
                self.used.insert(k.as_str());
            }
        }
    }

    /// Log the fields nobody asked for: unknown fields are not errors, but a typo should be findable.
    fn finish(self) {
        for k in self.map.keys() {
            if !self.used.contains(k.as_str()) {
                log_debug!("ignoring unknown field {}", join(&self.path, k));
            }
        }
    }
}

fn uint(v: &Value, path: &str, min: u64, max: u64) -> Result<u64> {
    match v.as_u64() {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(Error::config(format!("{path}: must be a whole number from {min} to {max}, got {}", show(v)))),
    }
}

pub const ASN_MAX: u64 = 4_294_967_295;

fn asn(v: &Value, path: &str) -> Result<u32> {
    uint(v, path, 1, ASN_MAX).map(|n| n as u32)
}

fn string<'v>(v: &'v Value, path: &str) -> Result<&'v str> {
    let s = v.as_str().ok_or_else(|| Error::config(format!("{path}: must be a string, got {}", show(v))))?;
    if s.chars().any(|c| c.is_control()) {
        return Err(Error::config(format!("{path}: must not contain control characters such as newlines")));
    }
    Ok(s)
}

fn boolean(v: &Value, path: &str) -> Result<bool> {
    v.as_bool().ok_or_else(|| Error::config(format!("{path}: must be true or false, got {}", show(v))))
}

fn array<'v>(v: &'v Value, path: &str) -> Result<&'v Vec<Value>> {
    v.as_array().ok_or_else(|| Error::config(format!("{path}: must be an array, got {}", show(v))))
}

fn abs_path(v: &Value, path: &str) -> Result<PathBuf> {
    let s = string(v, path)?;
    if !s.starts_with('/') || s.split('/').any(|c| c == "..") || s.len() > 4096 {
        return Err(Error::config(format!("{path}: {s:?} must be an absolute path without '..' components")));
    }
    Ok(PathBuf::from(s))
}

/// Linux interface names as upstream validates them: 1..15 characters, `^[a-zA-Z][a-zA-Z0-9._-]*$`.
pub fn valid_ifname(s: &str) -> bool {
    let mut chars = s.chars();
    s.len() <= 15
        && matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn ifname(v: &Value, path: &str) -> Result<String> {
    let s = string(v, path)?;
    if !valid_ifname(s) {
        return Err(Error::config(format!(
            "{path}: {s:?} is not a valid interface name (1 to 15 characters, a letter then letters, digits, '.', '_' or '-')"
        )));
    }
    Ok(s.to_string())
}

fn ip_addr(v: &Value, path: &str) -> Result<IpAddr> {
    let s = string(v, path)?;
    s.parse::<IpAddr>().map_err(|_| Error::config(format!("{path}: {s:?} is not an IP address")))
}

/// A CIDR; host bits are masked off (as upstream does), and the mask is logged.
fn cidr(v: &Value, path: &str) -> Result<IpNet> {
    let s = string(v, path)?;
    let net = s.parse::<IpNet>().map_err(|_| {
        Error::config(format!("{path}: {s:?} is not a CIDR (like 192.169.10.0/24 or 2001:db8:10::/64)"))
    })?;
    let masked = net.trunc();
    if masked != net {
        log_debug!("{path}: {s} has host bits set; using its network {masked}");
    }
    Ok(masked)
}

fn remote_type(v: &Value, path: &str) -> Result<RemoteAs> {
    let s = string(v, path)?;
    match s.to_ascii_lowercase().as_str() {
        "external" => Ok(RemoteAs::External),
        "internal" => Ok(RemoteAs::Internal),
        _ => Err(Error::config(format!("{path}: {s:?} must be External or Internal"))),
    }
}

/// `asn` (a number) or `type` (External/Internal): exactly one of the two.
fn remote_as(f: &mut Fields, asn_names: &[&'static str], type_names: &[&'static str]) -> Result<RemoteAs> {
    let by_asn = f.get(asn_names)?;
    let by_type = f.get(type_names)?;
    match (by_asn, by_type) {
        (Some((v, p)), None) => Ok(RemoteAs::Asn(asn(v, &p)?)),
        (None, Some((v, p))) => remote_type(v, &p),
        (Some((_, a)), Some((_, t))) => Err(Error::config(format!("{a} and {t}: give exactly one of the two"))),
        (None, None) => Err(Error::config(format!(
            "{}: one of {} or {} is required",
            f.path,
            join(&f.path, asn_names[0]),
            join(&f.path, type_names[0])
        ))),
    }
}

/// A resource may be pasted whole (`apiVersion`, `kind`, `metadata`, `spec`, `status`): use its `spec`.
fn spec_of<'a>(v: &'a Value, path: &str, kind: &str) -> Result<(&'a Value, String)> {
    let Some(obj) = v.as_object() else {
        return Err(Error::config(format!("{path}: must be an object, got {}", show(v))));
    };
    if let Some(spec) = obj.get("spec") {
        if let Some(k) = obj.get("kind") {
            if k.as_str() != Some(kind) {
                return Err(Error::config(format!("{path}.kind: must be {kind:?}, got {}", show(k))));
            }
        }
        return Ok((spec, format!("{path}.spec")));
    }
    Ok((v, path.to_string()))
}

// ---------------------------------------------------------------------------------------------------------------

/// Parse stdin's bytes into JSON, with the CNI codes for unreadable or malformed input.
pub fn parse_json(bytes: &[u8]) -> Result<Value> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::new(Kind::Decode, format!("the network configuration on stdin is not valid JSON: {e}")))
}

/// The `cniVersion` of a configuration, if it has a string one (for error replies before full parsing).
pub fn version_of(v: &Value) -> Option<&str> {
    v.get("cniVersion").and_then(Value::as_str)
}

impl Envelope {
    pub fn parse(v: &Value) -> Result<Envelope> {
        let mut f = Fields::new(v, "")?;
        f.path = String::new();
        let (ver, _) = f
            .get(&["cniVersion"])?
            .ok_or_else(|| Error::new(Kind::Version, "cniVersion: is required (one of 0.3.0 .. 1.1.0)"))?;
        let cni_version = ver
            .as_str()
            .ok_or_else(|| Error::new(Kind::Version, format!("cniVersion: must be a string, got {}", show(ver))))?
            .to_string();
        check_version(&cni_version)?;
        let (name_v, name_p) = f.required(&["name"])?;
        let name = string(name_v, &name_p)?.to_string();
        if !valid_identifier(&name) || name.len() > 253 {
            return Err(Error::config(format!(
                "name: {name:?} is invalid: it must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$"
            )));
        }
        let state_dir = match f.get(&["stateDir"])? {
            Some((v, p)) => abs_path(v, &p)?,
            None => PathBuf::from(DEFAULT_STATE_DIR),
        };
        let drain_timeout = std::time::Duration::from_secs(match f.get(&["drainTimeoutSeconds"])? {
            Some((v, p)) => uint(v, &p, 0, 3600)?,
            None => DEFAULT_DRAIN_TIMEOUT_SECONDS,
        });
        let log_file = f.get(&["logFile"])?.map(|(v, p)| abs_path(v, &p)).transpose()?;
        let log_level = match f.get(&["logLevel"])? {
            Some((v, p)) => Some(Level::parse(string(v, &p)?).ok_or_else(|| {
                Error::config(format!("{p}: must be one of error, warn, info, debug, got {}", show(v)))
            })?),
            None => None,
        };
        let prev_result = match f.get(&["prevResult"])? {
            Some((v, p)) => {
                // Checked here, before anything changes, so that ADD can always build its result.
                crate::cni::result::check_prev(v, &p)?;
                Some(v.clone())
            }
            None => None,
        };
        let runtime_node_index = match f.get(&["runtimeConfig"])? {
            Some((rc, p)) => {
                let mut rc = Fields::new(rc, &p)?;
                let idx = node_index(rc.get(&["nodeIndex"])?)?;
                rc.finish();
                idx
            }
            None => None,
        };
        let args_node_index = match f.get(&["args"])? {
            Some((a, p)) => {
                let mut a = Fields::new(a, &p)?;
                let idx = match a.get(&["cni"])? {
                    Some((c, p)) => {
                        let mut c = Fields::new(c, &p)?;
                        let idx = node_index(c.get(&["nodeIndex"])?)?;
                        c.finish();
                        idx
                    }
                    None => None,
                };
                a.finish();
                idx
            }
            None => None,
        };
        let valid_attachments = match f.get(&["cni.dev/valid-attachments", "cni.dev/attachments"])? {
            Some((v, p)) => Some(valid_attachments(v, &p)?),
            None => None,
        };
        Ok(Envelope {
            cni_version,
            name,
            state_dir,
            drain_timeout,
            log_file,
            log_level,
            prev_result,
            runtime_node_index,
            args_node_index,
            valid_attachments,
            raw: f.map.clone(),
        })
    }

    /// Parse the passthrough settings (`underlay`, `l3passthrough`, ...) of this configuration.
    pub fn passthrough(&self) -> Result<Passthrough> {
        Passthrough::parse_object(&self.raw)
    }
}

fn node_index(v: Option<(&Value, String)>) -> Result<Option<u32>> {
    v.map(|(v, p)| uint(v, &p, 0, u32::MAX as u64).map(|n| n as u32)).transpose()
}

fn valid_attachments(v: &Value, path: &str) -> Result<Vec<ValidAttachment>> {
    let mut out = Vec::new();
    for (i, item) in array(v, path)?.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let mut f = Fields::new(item, &p)?;
        let (c, cp) = f.required(&["containerID", "containerId"])?;
        let (n, np) = f.required(&["ifname"])?;
        out.push(ValidAttachment { container_id: string(c, &cp)?.to_string(), ifname: string(n, &np)?.to_string() });
        f.finish();
    }
    Ok(out)
}

/// Top-level keys of a CNI configuration that are not ours but are not unknown either.
const CNI_KEYS: &[&str] = &[
    "cniVersion",
    "cniVersions",
    "name",
    "type",
    "args",
    "runtimeConfig",
    "prevResult",
    "capabilities",
    "ipam",
    "dns",
    "stateDir",
    "drainTimeoutSeconds",
    "logFile",
    "logLevel",
    "cni.dev/valid-attachments",
    "cni.dev/attachments",
    "disableCheck",
    "disableGC",
    "plugins",
];

impl Passthrough {
    /// Parse from a whole configuration object (the plugin configuration on stdin, or a sample file).
    pub fn parse(v: &Value) -> Result<Passthrough> {
        let map = v.as_object().ok_or_else(|| Error::config("the network configuration must be a JSON object"))?;
        Self::parse_object(map)
    }

    fn parse_object(map: &Map<String, Value>) -> Result<Passthrough> {
        let whole = Value::Object(map.clone());
        let mut f = Fields::new(&whole, "")?;
        f.ignore(CNI_KEYS);
        let (u, up) = f.required(&["underlay"])?;
        let underlay = parse_underlay(u, &up)?;
        let (l3, lp) = f.required(&["l3passthrough", "l3Passthrough"])?;
        let host_session = parse_l3passthrough(l3, &lp)?;
        let node_index = node_index(f.get(&["nodeIndex"])?)?;
        let node_index_from = match f.get(&["nodeIndexFrom"])? {
            Some((v, p)) => {
                let mut n = Fields::new(v, &p)?;
                let (i, ip) = n.required(&["interface"])?;
                let (c, cp) = n.required(&["cidr"])?;
                let out = NodeIndexFrom { interface: ifname(i, &ip)?, cidr: cidr(c, &cp)? };
                n.finish();
                Some(out)
            }
            None => None,
        };
        let host_netns = f.get(&["hostNetns"])?.map(|(v, p)| abs_path(v, &p)).transpose()?;
        let mtu = match f.get(&["mtu"])? {
            Some((v, p)) => {
                let min = if host_session.ipv6.is_some() { 1280 } else { 68 };
                Some(uint(v, &p, min, 65535).map_err(|e| {
                    if min == 1280 {
                        e.context("IPv6 needs an MTU of at least 1280")
                    } else {
                        e
                    }
                })? as u32)
            }
            None => None,
        };
        f.finish();
        Ok(Passthrough { underlay, host_session, node_index, node_index_from, host_netns, mtu })
    }
}

fn parse_underlay(v: &Value, path: &str) -> Result<Underlay> {
    let (spec, path) = spec_of(v, path, "Underlay")?;
    let mut f = Fields::new(spec, &path)?;
    let (a, ap) = f.required(&["asn"])?;
    let asn = asn(a, &ap)?;
    let (n, np) = f.required(&["nics"])?;
    let mut nics = Vec::new();
    for (i, nic) in array(n, &np)?.iter().enumerate() {
        let p = format!("{np}[{i}]");
        let name = ifname(nic, &p)?;
        if name == ROUTER_IFNAME || name == HOST_IFNAME {
            return Err(Error::config(format!("{p}: {name:?} is the name of the plugin's own veth")));
        }
        if nics.contains(&name) {
            return Err(Error::config(format!("{p}: {name:?} is listed twice")));
        }
        nics.push(name);
    }
    let (nb, nbp) = f.required(&["neighbors"])?;
    let list = array(nb, &nbp)?;
    if list.is_empty() {
        return Err(Error::config(format!("{nbp}: needs at least one BGP neighbor")));
    }
    let mut neighbors: Vec<Neighbor> = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let n = parse_neighbor(item, &format!("{nbp}[{i}]"))?;
        if neighbors.iter().any(|m| m.address == n.address) {
            return Err(Error::config(format!("{nbp}[{i}].address: {} is listed twice", n.address)));
        }
        neighbors.push(n);
    }
    let router_id_cidr = match f.get(&["routerIDCIDR", "routerIdCidr", "routeridcidr"])? {
        Some((v, p)) => match cidr(v, &p)? {
            IpNet::V4(n) => n,
            IpNet::V6(_) => return Err(Error::config(format!("{p}: must be an IPv4 CIDR (router ids are IPv4)"))),
        },
        None => DEFAULT_ROUTER_ID_CIDR.parse().expect("default router id CIDR"),
    };
    f.ignore(&["evpn", "gracefulRestart"]);
    f.finish();
    Ok(Underlay { asn, nics, neighbors, router_id_cidr })
}

fn parse_neighbor(v: &Value, path: &str) -> Result<Neighbor> {
    let mut f = Fields::new(v, path)?;
    let (a, ap) = f.required(&["address"])?;
    let address = ip_addr(a, &ap)?;
    let remote_as = remote_as(&mut f, &["asn"], &["type"])?;
    let port = f.get(&["port"])?.map(|(v, p)| uint(v, &p, 1, 65535).map(|n| n as u16)).transpose()?;
    let password = match f.get(&["password"])? {
        Some((v, p)) => {
            let s = string(v, &p)?;
            if s.is_empty() || s.len() > 80 || !s.chars().all(|c| c.is_ascii_graphic()) {
                return Err(Error::config(format!(
                    "{p}: must be 1 to 80 printable ASCII characters without spaces (FRR reads it as one word)"
                )));
            }
            Some(s.to_string())
        }
        None => None,
    };
    let hold = f.get(&["holdTimeSeconds", "holdTime"])?;
    let keepalive = f.get(&["keepaliveTimeSeconds", "keepaliveTime"])?;
    let (hold_time_seconds, keepalive_time_seconds) = match (hold, keepalive) {
        (None, None) => (None, None),
        (Some((h, hp)), Some((k, kp))) => {
            let h = uint(h, &hp, 0, 65535)?;
            if h != 0 && h < 3 {
                return Err(Error::config(format!("{hp}: must be 0 or at least 3 seconds, got {h}")));
            }
            let k = uint(k, &kp, 0, 65535)?;
            if k > h {
                return Err(Error::config(format!("{kp}: must not exceed {hp} ({h}), got {k}")));
            }
            (Some(h as u16), Some(k as u16))
        }
        (Some((_, p)), None) | (None, Some((_, p))) => {
            return Err(Error::config(format!("{p}: holdTimeSeconds and keepaliveTimeSeconds must be set together")))
        }
    };
    let connect_time_seconds = f
        .get(&["connectTimeSeconds", "connectTime"])?
        .map(|(v, p)| uint(v, &p, 1, 65535).map(|n| n as u16))
        .transpose()?;
    let ebgp_multi_hop = f.get(&["ebgpMultiHop"])?.map(|(v, p)| boolean(v, &p)).transpose()?.unwrap_or(false);
    if let Some((_, p)) = f.get(&["bfd"])? {
        crate::log_warn!("{p}: BFD is not supported by openpe-passthrough yet; the session runs without it");
    }
    f.finish();
    Ok(Neighbor {
        address,
        remote_as,
        port,
        password,
        hold_time_seconds,
        keepalive_time_seconds,
        connect_time_seconds,
        ebgp_multi_hop,
    })
}

fn parse_l3passthrough(v: &Value, path: &str) -> Result<HostSession> {
    let (spec, path) = spec_of(v, path, "L3Passthrough")?;
    let mut f = Fields::new(spec, &path)?;
    let (hs, hsp) = f.required(&["hostsession", "hostSession"])?;
    f.finish();
    let mut f = Fields::new(hs, &hsp)?;
    let (a, ap) = f.required(&["asn"])?;
    let asn = asn(a, &ap)?;
    let host_as = remote_as(&mut f, &["hostasn", "hostASN", "hostAsn"], &["hostType", "hosttype"])?;
    let (lc, lcp) = f.required(&["localcidr", "localCIDR", "localCidr"])?;
    let mut l = Fields::new(lc, &lcp)?;
    let ipv4 = match l.get(&["ipv4", "IPv4"])? {
        Some((v, p)) => match cidr(v, &p)? {
            IpNet::V4(n) if n.prefix_len() > 30 => {
                return Err(Error::config(format!(
                    "{p}: /{} leaves no room for the veth pair; use /30 or larger",
                    n.prefix_len()
                )))
            }
            IpNet::V4(n) => Some(n),
            IpNet::V6(_) => return Err(Error::config(format!("{p}: is an IPv6 CIDR; ipv4 needs an IPv4 one"))),
        },
        None => None,
    };
    let ipv6 = match l.get(&["ipv6", "IPv6"])? {
        Some((v, p)) => match cidr(v, &p)? {
            IpNet::V6(n) if n.prefix_len() > 126 => {
                return Err(Error::config(format!(
                    "{p}: /{} leaves no room for the veth pair; use /126 or larger",
                    n.prefix_len()
                )))
            }
            IpNet::V6(n) => Some(n),
            IpNet::V4(_) => return Err(Error::config(format!("{p}: is an IPv4 CIDR; ipv6 needs an IPv6 one"))),
        },
        None => None,
    };
    if ipv4.is_none() && ipv6.is_none() {
        return Err(Error::config(format!("{lcp}: give at least one of ipv4 and ipv6")));
    }
    l.finish();
    f.finish();
    Ok(HostSession { asn, host_as, ipv4, ipv6 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        assert_eq!(err(json!({"cniVersion": "1.0.0", "name": "x"})).kind, Kind::Invalid(crate::error::Input::Config));
    }

    #[test]
    fn envelope_versions_and_names() {
        assert_eq!(Envelope::parse(&json!({"name": "a"})).unwrap_err().kind, Kind::Version);
        assert_eq!(Envelope::parse(&json!({"cniVersion": "0.2.0", "name": "a"})).unwrap_err().kind, Kind::Version);
        assert_eq!(
            Envelope::parse(&json!({"cniVersion": "1.0.0", "name": "a b"})).unwrap_err().kind,
            Kind::Invalid(crate::error::Input::Config)
        );
        let e = Envelope::parse(&json!({"cniVersion": "1.1.0", "name": "a", "stateDir": "/x/../y"})).unwrap_err();
        assert!(e.msg.starts_with("stateDir:"));
        let e = Envelope::parse(&json!({"cniVersion": "1.1.0", "name": "a",
            "args": {"cni": {"nodeIndex": 4}}, "runtimeConfig": {"nodeIndex": 5},
            "cni.dev/attachments": [{"containerID": "c", "ifname": "i"}]}))
        .unwrap();
        assert_eq!((e.args_node_index, e.runtime_node_index), (Some(4), Some(5)));
        assert_eq!(e.valid_attachments.unwrap()[0].container_id, "c");
    }
}
