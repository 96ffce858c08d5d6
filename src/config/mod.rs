//! The passthrough configuration (`underlay`, `l3passthrough`, ...) and the plugin's own settings, from the
//! network configuration's JSON; the CNI envelope around them is `cni::envelope`'s. One schema on serde: the
//! types here, most read by serde straight from their object; `schema.rs` for the objects whose fields combine
//! (exactly one of two keys, `nics` or `interfaces`) and the rules between fields; validated values in
//! `values.rs`. Every error names its field (`underlay.neighbors[1].asn: ...`), every spelling users copy is
//! accepted, unknown fields are logged at debug level, and every upstream field is used, refused saying why, or
//! ignored saying why. docs/configuration.md is the field reference.

mod schema;
mod values;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::de::{self, DeserializeOwned, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Kind, Result};
use crate::limits::{self, HostLimits};
use crate::log::Level;
use crate::{log_debug, log_info};

pub(crate) use schema::{DEFAULT_RESTART_TIME, DEFAULT_STALE_PATH_TIME};
pub(crate) use values::valid_password;
use values::{opt, via, AbsPath, Bounded, Cidr, IfName, Ipv4, LogLevel, SessionMode};
pub use values::{valid_ifname, ASN_MAX};
pub(crate) use values::{Text, PASSWORD_RULE};

pub const DEFAULT_STATE_DIR: &str = "/run/openpe-passthrough";
pub(crate) const DEFAULT_DRAIN_TIMEOUT_SECONDS: u64 = 2;
pub(crate) const DEFAULT_ROUTER_ID_CIDR: &str = "10.0.0.0/24";
pub const ROUTER_IFNAME: &str = "pt-ns";
pub const HOST_IFNAME: &str = "pt-host";

/// The plugin's own top-level settings, which every verb needs (DEL, GC and STATUS need nothing else: teardown
/// works from the record, so it still works after the passthrough settings changed). Read leniently: the rest
/// of the object is the CNI envelope's and the passthrough's.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a JSON object")]
pub struct Settings {
    #[serde(default = "default_state_dir", deserialize_with = "via::<AbsPath, _, _>")]
    pub state_dir: PathBuf,
    #[serde(default, deserialize_with = "opt::<AbsPath, _, _>")]
    pub log_file: Option<PathBuf>,
    #[serde(default, deserialize_with = "opt::<LogLevel, _, _>")]
    pub log_level: Option<Level>,
    /// `drainTimeoutSeconds`: how long DEL waits for a sidecar to close the BGP sessions (docs/draining.md; 0:
    /// no drain).
    #[serde(
        rename = "drainTimeoutSeconds",
        default = "default_drain",
        deserialize_with = "via::<Bounded<0, 3600>, _, _>"
    )]
    pub drain_timeout: Duration,
    /// `delegateTimeoutSeconds`: how long one run of one delegated plugin (CNIDevice) may take before it is
    /// killed and the verb fails.
    #[serde(
        rename = "delegateTimeoutSeconds",
        default = "default_delegate_timeout",
        deserialize_with = "via::<Bounded<1, 3600>, _, _>"
    )]
    pub delegate_timeout: Duration,
}

fn default_state_dir() -> PathBuf {
    DEFAULT_STATE_DIR.into()
}

fn default_drain() -> Duration {
    Duration::from_secs(DEFAULT_DRAIN_TIMEOUT_SECONDS)
}

fn default_delegate_timeout() -> Duration {
    Duration::from_secs(60)
}

impl Settings {
    pub fn parse(v: &Value) -> Result<Settings> {
        lenient(&without_nulls(v), "")
    }
}

/// The passthrough settings, needed by ADD, CHECK and `render`.
#[derive(Debug, Clone, PartialEq)]
pub struct Passthrough {
    pub underlay: Underlay,
    pub host_session: HostSession,
    pub node_index: Option<u32>,
    pub node_index_from: Option<NodeIndexFrom>,
    pub host_netns: Option<PathBuf>,
    pub mtu: Option<u32>,
}

impl Passthrough {
    /// Parse from a whole configuration object (the plugin configuration on stdin, or a sample file).
    pub fn parse(v: &Value) -> Result<Passthrough> {
        schema::passthrough(&without_nulls(v))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Underlay {
    pub asn: u32,
    /// The devices moved into the router, from `nics` or upstream's `interfaces`.
    pub nics: Vec<String>,
    /// Which of the two listed them, so that errors about a device name the field the user wrote.
    pub nics_from: DeviceList,
    /// The underlay interfaces made by delegation (`interfaces[].type: CNIDevice`): another CNI plugin chain
    /// creates each in the router namespace. Empty when `nics` lists the devices.
    pub cni_devices: Vec<CniDevice>,
    pub neighbors: Vec<Neighbor>,
    pub router_id_cidr: Ipv4Net,
    /// `bgp graceful-restart`; None disables it.
    pub graceful_restart: Option<GracefulRestart>,
    /// `bgp cluster-id`; None: the router reflects nothing.
    pub route_reflector: Option<RouteReflector>,
}

/// `gracefulRestart`; `{}` is FRR's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default, expecting = "a JSON object")]
pub struct GracefulRestart {
    #[serde(deserialize_with = "via::<Bounded<1, 4095>, _, _>")]
    pub restart_time_seconds: u16,
    #[serde(deserialize_with = "via::<Bounded<1, 4095>, _, _>")]
    pub stale_path_time_seconds: u16,
}

impl Default for GracefulRestart {
    fn default() -> Self {
        GracefulRestart { restart_time_seconds: DEFAULT_RESTART_TIME, stale_path_time_seconds: DEFAULT_STALE_PATH_TIME }
    }
}

/// `routeReflector`; `{}` is upstream's default cluster id (TEST-NET-1: never a node's router id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, expecting = "a JSON object")]
pub struct RouteReflector {
    #[serde(rename = "clusterID", alias = "clusterId", deserialize_with = "via::<Ipv4, _, _>")]
    pub cluster_id: Ipv4Addr,
}

impl Default for RouteReflector {
    fn default() -> Self {
        RouteReflector { cluster_id: Ipv4Addr::new(192, 0, 2, 1) }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DeviceList {
    #[default]
    Nics,
    Interfaces,
}

impl Underlay {
    /// The field that named `nics[i]`, for messages.
    pub(crate) fn nic_field(&self, i: usize) -> String {
        match self.nics_from {
            DeviceList::Nics => format!("underlay.nics[{i}]"),
            DeviceList::Interfaces => format!("underlay.interfaces[{i}].networkDevice.interfaceName"),
        }
    }
}

/// Upstream's `cniDevice` of type `RawConfig`: a CNI configuration list (cniVersion 1.0.0 or later) whose
/// plugins, found in CNI_PATH, create `interface_name` in the router namespace; `runtime_config` gives the
/// capability arguments of the plugins that declare them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniDevice {
    pub conflist: Value,
    pub interface_name: String,
    pub runtime_config: serde_json::Map<String, Value>,
}

/// The interface a CNIDevice creates when `interfaceName` is not given, as upstream.
pub(crate) const DEFAULT_CNI_DEVICE_IFNAME: &str = "net1";

/// How a BGP peer's AS is given: a number, or FRR's `external` / `internal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteAs {
    Asn(u32),
    External,
    Internal,
}

/// Who a neighbor is: exactly one of an address, an interface (BGP unnumbered over IPv6 link-local), or a range
/// of addresses the router accepts connections from (a peer group of its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    Address(IpAddr),
    Interface(String),
    ListenRange(IpNet),
}

/// A unicast address family a neighbor is activated in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    Ipv4Unicast,
    Ipv6Unicast,
}

impl Family {
    /// Upstream's name.
    pub fn name(self) -> &'static str {
        match self {
            Family::Ipv4Unicast => "ipv4unicast",
            Family::Ipv6Unicast => "ipv6unicast",
        }
    }
}

/// An `addressFamilies` entry: a family by name (`"ipv4unicast"`), or upstream's object with its properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Value")]
pub struct AddressFamily {
    pub family: Family,
    /// `neighbor X route-reflector-client` in this family (Internal neighbors only).
    pub route_reflector_client: bool,
}

/// A neighbor's BFD settings; None in a field is FRR's default (`bfd: {}` is all defaults).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "camelCase", default, expecting = "a JSON object")]
pub struct Bfd {
    #[serde(deserialize_with = "opt::<Bounded<10, 60000>, _, _>")]
    pub receive_interval: Option<u16>,
    #[serde(deserialize_with = "opt::<Bounded<10, 60000>, _, _>")]
    pub transmit_interval: Option<u16>,
    #[serde(deserialize_with = "opt::<Bounded<2, 255>, _, _>")]
    pub detect_multiplier: Option<u8>,
    /// sessionMode Passive: `passive-mode`.
    #[serde(rename = "sessionMode", deserialize_with = "via::<SessionMode, _, _>")]
    pub passive: bool,
    /// `minimum-ttl` (multihop sessions only).
    #[serde(rename = "minimumTTL", alias = "minimumTtl", deserialize_with = "opt::<Bounded<1, 254>, _, _>")]
    pub minimum_ttl: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbor {
    pub peer: Peer,
    pub remote_as: RemoteAs,
    pub port: Option<u16>,
    pub password: Option<String>,
    /// A Kubernetes Secret holding the password, read by openpe-sidecar when it renders (`--secrets-dir`): the
    /// plugin and its record hold the reference only.
    pub password_secret: Option<SecretRef>,
    pub hold_time_seconds: Option<u16>,
    pub keepalive_time_seconds: Option<u16>,
    pub connect_time_seconds: Option<u16>,
    /// `ebgp-multihop TTL` (the older boolean `ebgpMultiHop: true` gives 255).
    pub ebgp_multi_hop: Option<u8>,
    pub bfd: Option<Bfd>,
    /// The families as configured; None: upstream's defaults ([`Neighbor::families`]).
    pub address_families: Option<Vec<AddressFamily>>,
}

impl Neighbor {
    /// The neighbor's address, when it is given by one.
    pub fn address(&self) -> Option<IpAddr> {
        match self.peer {
            Peer::Address(a) => Some(a),
            _ => None,
        }
    }

    /// Whether the router reflects routes to this neighbor in any family.
    pub fn is_rr_client(&self) -> bool {
        self.address_families.iter().flatten().any(|f| f.route_reflector_client)
    }
}

/// Upstream's `passwordSecret`: the Secret `name` and the `key` inside it (`password` when only a name is given),
/// both validated as Kubernetes validates them, so that each is one plain path component.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Value")]
pub struct SecretRef {
    pub name: String,
    pub key: String,
}

/// The key of a `passwordSecret` given as a bare name.
pub(crate) const DEFAULT_SECRET_KEY: &str = "password";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSession {
    pub asn: u32,
    pub host_as: RemoteAs,
    pub ipv4: Option<Ipv4Net>,
    pub ipv6: Option<Ipv6Net>,
    /// `allowedPrefixes`, `maxPrefixes`, `maxPrefixesRestartMinutes` (this project's, not upstream's).
    pub limits: HostLimits,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(expecting = "a JSON object")]
pub struct NodeIndexFrom {
    #[serde(deserialize_with = "via::<IfName, _, _>")]
    pub interface: String,
    #[serde(deserialize_with = "via::<Cidr, _, _>")]
    pub cidr: IpNet,
}

/// What becomes of a field the schema does not read.
#[derive(Clone, Copy)]
enum Fate {
    /// Another reader's (the CNI envelope, [`Settings`], the runtime, Kubernetes): skipped without a word.
    Theirs,
    /// An upstream field this project does not do: refused with the reason.
    Refused(&'static str),
    /// An upstream field that has no job here: accepted, and an info log says why.
    Ignored(&'static str),
}

/// Top-level keys that are not the passthrough's but are not unknown either.
#[rustfmt::skip]
const NOT_OURS: &[(&str, Fate)] = {
    use Fate::Theirs as T;
    &[
        ("cniVersion", T), ("cniVersions", T), ("name", T), ("type", T), ("args", T), ("runtimeConfig", T),
        ("prevResult", T), ("capabilities", T), ("ipam", T), ("dns", T), ("stateDir", T), ("logFile", T),
        ("logLevel", T), ("drainTimeoutSeconds", T), ("delegateTimeoutSeconds", T), ("cni.dev/valid-attachments", T), ("cni.dev/attachments", T), ("disableCheck", T),
        ("disableGC", T), ("plugins", T),
    ]
};

/// Spellings of one field (upstream's, the seed's, older ones), each a serde `alias` of the first. Two of one
/// group in one object are refused, since one would silently win.
const SPELLINGS: [&[&str]; 16] = [
    &["l3passthrough", "l3Passthrough"],
    &["hostsession", "hostSession"],
    &["hostasn", "hostASN", "hostAsn"],
    &["hostType", "hosttype"],
    &["localcidr", "localCIDR", "localCidr"],
    &["ipv4", "IPv4"],
    &["ipv6", "IPv6"],
    &["routerIDCIDR", "routerIdCidr", "routeridcidr"],
    &["holdTimeSeconds", "holdTime"],
    &["keepaliveTimeSeconds", "keepaliveTime"],
    &["connectTimeSeconds", "connectTime"],
    &["cni.dev/valid-attachments", "cni.dev/attachments"],
    &["containerID", "containerId"],
    &["allowedPrefixes", "allowedprefixes"],
    &["maxPrefixes", "maxprefixes"],
    &["maxPrefixesRestartMinutes", "maxprefixesrestartminutes"],
];

/// Parse stdin's bytes into JSON: malformed JSON is a decode error. One key, one meaning: a key given twice in
/// one object, or two spellings of one field, is refused as invalid configuration (parsers differ in which one
/// wins). Values parsed elsewhere still meet serde's own refusal of two spellings, with a plainer message.
pub fn parse_json(bytes: &[u8]) -> Result<Value> {
    let v = serde_json::from_slice(bytes)
        .map_err(|e| Error::new(Kind::Decode, format!("the network configuration on stdin is not valid JSON: {e}")))?;
    Keys("").deserialize(&mut serde_json::Deserializer::from_slice(bytes)).map_err(|e| Error::config(clean(&e)))?;
    Ok(v)
}

/// Visitor methods that accept a scalar: only objects have keys.
macro_rules! scalars {
    ($($name:ident($t:ty)),*) => {$(
        fn $name<E>(self, _: $t) -> Result<(), E> {
            Ok(())
        }
    )*};
}

/// Walks a JSON document checking the keys of every object; `.0` is the path so far.
struct Keys<'p>(&'p str);

impl<'de> DeserializeSeed<'de> for Keys<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Keys<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }
    scalars!(visit_bool(bool), visit_i64(i64), visit_u64(u64), visit_f64(f64), visit_str(&str));
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        while seq.next_element_seed(Keys(&format!("{}[{i}]", self.0)))?.is_some() {
            i += 1;
        }
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen: Vec<String> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = join(self.0, &key);
            let group = SPELLINGS.iter().find(|g| g.contains(&key.as_str())).copied().unwrap_or(&[]);
            if let Some(other) = seen.iter().find(|k| **k == key || group.contains(&k.as_str())) {
                return Err(de::Error::custom(match *other == key {
                    true => format!("{path}: is given twice in one object; give each key once"),
                    false => {
                        format!("{} and {path} are two spellings of one field: give only one", join(self.0, other))
                    }
                }));
            }
            map.next_value_seed(Keys(&path))?;
            seen.push(key);
        }
        Ok(())
    }
}

fn join(path: &str, name: impl fmt::Display) -> String {
    match path {
        "" => name.to_string(),
        _ => format!("{path}.{name}"),
    }
}

/// A message with every control character escaped: values and keys end up in logs and terminals.
fn clean(msg: &impl fmt::Display) -> String {
    msg.to_string()
        .chars()
        .map(|c| if c.is_control() { c.escape_unicode().to_string() } else { c.to_string() })
        .collect()
}

/// `v` as a `T`, errors naming the field (`base`, then the path inside `v`); `ignored` hears of every field `T`
/// does not know.
fn deserialize<T: DeserializeOwned>(v: &Value, base: &str, mut ignored: impl FnMut(serde_ignored::Path)) -> Result<T> {
    serde_path_to_error::deserialize(serde_ignored::Deserializer::new(v, &mut ignored)).map_err(|e| {
        let field = match (base, e.path().iter().next()) {
            ("", None) => "the network configuration".to_string(),
            (_, None) => base.to_string(),
            (_, Some(_)) => join(base, e.path()),
        };
        Error::config(clean(&format_args!("{field}: {}", e.inner())))
    })
}

/// `v` as a `T`, other fields left to other readers (the envelope, [`Settings`]).
pub(crate) fn lenient<T: DeserializeOwned>(v: &Value, base: &str) -> Result<T> {
    deserialize(v, base, |_| {})
}

/// `v` as a `T`; the fields `T` does not know meet their fate in `fates` (paths relative to `v`, `[]` for any
/// index), or are logged at debug level: not errors, but a typo should be findable.
fn strict<T: DeserializeOwned>(v: &Value, base: &str, fates: &[(&str, Fate)]) -> Result<T> {
    let mut unknown = Vec::new();
    let t = deserialize(v, base, |p| unknown.push(ignored_path(&p)))?;
    for (path, shape) in unknown {
        let field = clean(&join(base, &path));
        match fates.iter().find(|(f, _)| *f == shape).map(|(_, fate)| *fate) {
            Some(Fate::Theirs) => {}
            Some(Fate::Refused(why)) => return Err(Error::config(format!("{field}: {why}"))),
            Some(Fate::Ignored(why)) => log_info!("{field}: accepted and ignored: {why}"),
            None => log_debug!("ignoring unknown field {field}"),
        }
    }
    Ok(t)
}

/// A field serde skipped: its path as messages show it (`neighbors[1].bfd`) and its shape as the fate tables name
/// it (`neighbors[].bfd`).
fn ignored_path(p: &serde_ignored::Path) -> (String, String) {
    use serde_ignored::Path as P;
    match p {
        P::Root => Default::default(),
        P::Seq { parent, index } => {
            let (path, shape) = ignored_path(parent);
            (format!("{path}[{index}]"), format!("{shape}[]"))
        }
        P::Map { parent, key } => {
            let (path, shape) = ignored_path(parent);
            (join(&path, key), join(&shape, key))
        }
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => ignored_path(parent),
    }
}

/// `v` without the object entries that are null: a null counts as absent, everywhere. The configuration lists
/// handed to other plugins (`rawConfig`, `runtimeConfig`) are theirs, and keep their nulls.
fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, x)| !x.is_null())
                .map(|(k, x)| (k.clone(), if OPAQUE.contains(&k.as_str()) { x.clone() } else { without_nulls(x) }))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
        _ => v.clone(),
    }
}

/// The fields whose values are passed on as given.
const OPAQUE: [&str; 2] = ["rawConfig", "runtimeConfig"];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The sample dual-stack configuration.
    fn base() -> Value {
        serde_json::from_str(include_str!("../../netconf/10-openpe-dualstack.conf")).unwrap()
    }

    /// Every spelling in SPELLINGS is one serde accepts for the same field: renaming the first spelling to any
    /// other gives the same configuration.
    #[test]
    fn every_spelling_is_an_alias() {
        fn rename(v: &mut Value, from: &str, to: &str) -> bool {
            match v {
                Value::Object(m) => {
                    if let Some(x) = m.remove(from) {
                        m.insert(to.to_string(), x);
                        return true;
                    }
                    m.values_mut().any(|x| rename(x, from, to))
                }
                Value::Array(a) => a.iter_mut().any(|x| rename(x, from, to)),
                _ => false,
            }
        }
        let mut full = base();
        full["underlay"]["routerIDCIDR"] = json!("10.1.0.0/24");
        full["underlay"]["neighbors"][0]["holdTimeSeconds"] = json!(9);
        full["underlay"]["neighbors"][0]["keepaliveTimeSeconds"] = json!(3);
        full["underlay"]["neighbors"][0]["connectTimeSeconds"] = json!(5);
        full["l3passthrough"]["hostsession"]["allowedPrefixes"] = json!(["172.31.0.0/16"]);
        full["l3passthrough"]["hostsession"]["maxPrefixes"] = json!(10);
        full["l3passthrough"]["hostsession"]["maxPrefixesRestartMinutes"] = json!(3);
        let internal = {
            let mut v = full.clone();
            v["l3passthrough"]["hostsession"] =
                json!({"asn": 1, "hostType": "Internal", "localcidr": {"ipv4": "10.9.0.0/24"}});
            v
        };
        for group in SPELLINGS.iter().filter(|g| !g[0].starts_with("c")) {
            let base = if group[0] == "hostType" { internal.clone() } else { full.clone() };
            let want = Passthrough::parse(&base).unwrap();
            for other in &group[1..] {
                let mut v = base.clone();
                assert!(rename(&mut v, group[0], other), "{} is not in the test configuration", group[0]);
                assert_eq!(Passthrough::parse(&v).unwrap(), want, "{other} is not an alias of {}", group[0]);
            }
        }
    }
}
