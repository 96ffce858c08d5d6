//! The passthrough configuration (`underlay`, `l3passthrough`, ...) and the plugin's own settings, from the
//! network configuration's JSON; the CNI envelope around them is `cni::envelope`'s. One schema on serde
//! (`schema.rs`), validated values (`values.rs`): every error names its field (`underlay.neighbors[1].asn: ...`),
//! every spelling users copy is accepted, unknown fields are logged at debug level, and every upstream field is
//! used, refused saying why, or ignored saying why. docs/configuration.md is the field reference.

mod schema;
mod values;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::de::{self, DeserializeOwned, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Kind, Result};
use crate::limits::{self, HostLimits};
use crate::log::Level;
use crate::{log_debug, log_info};

pub(crate) use schema::{DEFAULT_RESTART_TIME, DEFAULT_STALE_PATH_TIME};
pub(crate) use values::valid_password;
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
#[derive(Debug, Clone)]
pub struct Settings {
    pub state_dir: PathBuf,
    pub log_file: Option<PathBuf>,
    pub log_level: Option<Level>,
    /// `drainTimeoutSeconds`: how long DEL waits for a sidecar to close the BGP sessions (0: no drain).
    pub drain_timeout: std::time::Duration,
}

impl Settings {
    pub fn parse(v: &Value) -> Result<Settings> {
        schema::settings(v)
    }
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
    /// The devices moved into the router, from `nics` or upstream's `interfaces`.
    pub nics: Vec<String>,
    /// Which of the two listed them, so that errors about a device name the field the user wrote.
    #[serde(default)]
    pub nics_from: DeviceList,
    /// The underlay interfaces made by delegation (`interfaces[].type: CNIDevice`): another CNI plugin chain
    /// creates each in the router namespace. Empty when `nics` lists the devices.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cni_devices: Vec<CniDevice>,
    pub neighbors: Vec<Neighbor>,
    #[serde(rename = "routerIDCIDR")]
    pub router_id_cidr: Ipv4Net,
    /// `bgp graceful-restart`; None disables it.
    #[serde(default)]
    pub graceful_restart: Option<GracefulRestart>,
    /// `bgp cluster-id`; None: the router reflects nothing.
    #[serde(default)]
    pub route_reflector: Option<RouteReflector>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GracefulRestart {
    pub restart_time_seconds: u16,
    pub stale_path_time_seconds: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteReflector {
    #[serde(rename = "clusterID")]
    pub cluster_id: Ipv4Addr,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DeviceList {
    #[default]
    Nics,
    Interfaces,
}

impl Underlay {
    /// How FRR names each underlay neighbor (`neighbor NAME ...`), in order: its address, its interface, or the
    /// peer group of its listen range.
    pub fn peer_names(&self) -> Vec<String> {
        self.neighbors.iter().map(Neighbor::peer_name).collect()
    }

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CniDevice {
    pub conflist: Value,
    pub interface_name: String,
    pub runtime_config: serde_json::Map<String, Value>,
}

/// The interface a CNIDevice creates when `interfaceName` is not given, as upstream.
pub(crate) const DEFAULT_CNI_DEVICE_IFNAME: &str = "net1";

/// How a BGP peer's AS is given: a number, or FRR's `external` / `internal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RemoteAs {
    Asn(u32),
    External,
    Internal,
}

/// Who a neighbor is: exactly one of an address, an interface (BGP unnumbered over IPv6 link-local), or a range
/// of addresses the router accepts connections from (a peer group of its own).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Peer {
    Address(IpAddr),
    Interface(String),
    ListenRange(IpNet),
}

/// A unicast address family a neighbor is activated in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Family {
    #[serde(rename = "ipv4unicast")]
    Ipv4Unicast,
    #[serde(rename = "ipv6unicast")]
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

    /// FRR's `address-family` words.
    pub fn frr(self) -> &'static str {
        match self {
            Family::Ipv4Unicast => "ipv4",
            Family::Ipv6Unicast => "ipv6",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddressFamily {
    pub family: Family,
    /// `neighbor X route-reflector-client` in this family (Internal neighbors only).
    #[serde(default)]
    pub route_reflector_client: bool,
}

/// A neighbor's BFD settings; None in a field is FRR's default (`bfd: {}` is all defaults).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Bfd {
    pub receive_interval: Option<u16>,
    pub transmit_interval: Option<u16>,
    pub detect_multiplier: Option<u8>,
    /// sessionMode Passive: `passive-mode`.
    pub passive: bool,
    /// `minimum-ttl` (multihop sessions only).
    #[serde(rename = "minimumTTL")]
    pub minimum_ttl: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Neighbor {
    /// Stored flat: records written before `interface` and `listenRange` hold `"address": ...`, which is this.
    #[serde(flatten)]
    pub peer: Peer,
    pub remote_as: RemoteAs,
    pub port: Option<u16>,
    pub password: Option<String>,
    /// A Kubernetes Secret holding the password, read by openpe-sidecar when it renders (`--secrets-dir`): the
    /// plugin and its record hold the reference only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret: Option<SecretRef>,
    pub hold_time_seconds: Option<u16>,
    pub keepalive_time_seconds: Option<u16>,
    pub connect_time_seconds: Option<u16>,
    /// `ebgp-multihop TTL` (the older boolean `ebgpMultiHop: true` gives 255).
    #[serde(deserialize_with = "ttl_or_bool")]
    pub ebgp_multi_hop: Option<u8>,
    #[serde(default)]
    pub bfd: Option<Bfd>,
    /// The families as configured; None: upstream's defaults ([`Neighbor::families`]).
    #[serde(default)]
    pub address_families: Option<Vec<AddressFamily>>,
}

impl Neighbor {
    /// How FRR names this neighbor in `neighbor NAME ...` lines.
    pub fn peer_name(&self) -> String {
        match &self.peer {
            Peer::Address(a) => a.to_string(),
            Peer::Interface(i) => i.clone(),
            Peer::ListenRange(net) => listen_group(net),
        }
    }

    /// The neighbor's address, when it is given by one.
    pub fn address(&self) -> Option<IpAddr> {
        match self.peer {
            Peer::Address(a) => Some(a),
            _ => None,
        }
    }

    /// Whether the router reflects routes to this neighbor in any family.
    pub fn is_rr_client(&self) -> bool {
        self.families_given().iter().any(|f| f.route_reflector_client)
    }

    fn families_given(&self) -> &[AddressFamily] {
        self.address_families.as_deref().unwrap_or(&[])
    }

    /// The families this neighbor is activated in, as configured or by upstream's defaults: unnumbered and IPv4
    /// neighbors get IPv4, plus IPv6 when the host session has IPv6; IPv6 neighbors get IPv6, plus IPv4 when the
    /// host session has IPv4. A listen range counts as its addresses' family.
    pub fn families(&self, hs: &HostSession) -> Vec<AddressFamily> {
        if let Some(given) = &self.address_families {
            return given.clone();
        }
        let ipv6 = match &self.peer {
            Peer::Address(a) => a.is_ipv6(),
            Peer::Interface(_) => false,
            Peer::ListenRange(net) => matches!(net, IpNet::V6(_)),
        };
        let (own, other, other_wanted) = match ipv6 {
            false => (Family::Ipv4Unicast, Family::Ipv6Unicast, hs.ipv6.is_some()),
            true => (Family::Ipv6Unicast, Family::Ipv4Unicast, hs.ipv4.is_some()),
        };
        let mut out = vec![AddressFamily { family: own, route_reflector_client: false }];
        if other_wanted {
            out.push(AddressFamily { family: other, route_reflector_client: false });
        }
        out.sort_by_key(|f| f.family);
        out
    }
}

/// The peer group of a listen range: its network with `.`/`:` and `/` made into a word FRR accepts.
fn listen_group(net: &IpNet) -> String {
    let word: String = net.to_string().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    format!("range-{word}")
}

/// Records written before the TTL held a boolean here: read them as they meant it (true was TTL 255).
fn ttl_or_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u8>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Ttl(Option<u8>),
        Flag(bool),
    }
    Ok(match Stored::deserialize(d)? {
        Stored::Ttl(ttl) => ttl,
        Stored::Flag(on) => on.then_some(schema::MAX_TTL),
    })
}

/// Upstream's `passwordSecret`: the Secret `name` and the `key` inside it (`password` when only a name is given),
/// both validated as Kubernetes validates them, so that each is one plain path component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRef {
    pub name: String,
    pub key: String,
}

/// The key of a `passwordSecret` given as a bare name.
pub(crate) const DEFAULT_SECRET_KEY: &str = "password";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostSession {
    pub asn: u32,
    pub host_as: RemoteAs,
    pub ipv4: Option<Ipv4Net>,
    pub ipv6: Option<Ipv6Net>,
    /// `allowedPrefixes`, `maxPrefixes`, `maxPrefixesRestartMinutes` (this project's, not upstream's).
    #[serde(default)]
    pub limits: HostLimits,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeIndexFrom {
    pub interface: String,
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
        ("logLevel", T), ("drainTimeoutSeconds", T), ("cni.dev/valid-attachments", T), ("cni.dev/attachments", T), ("disableCheck", T),
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

impl Passthrough {
    /// Parse from a whole configuration object (the plugin configuration on stdin, or a sample file).
    pub fn parse(v: &Value) -> Result<Passthrough> {
        schema::passthrough(v)
    }
}

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
/// index), or are logged at debug level: not errors, but a typo should be findable. A null counts as absent,
/// as everywhere.
fn strict<T: DeserializeOwned>(v: &Value, base: &str, fates: &[(&str, Fate)]) -> Result<T> {
    let mut unknown = Vec::new();
    let t = deserialize(v, base, |p| unknown.push(ignored_path(&p)))?;
    for Ignored { path, shape, pointer } in unknown {
        let field = clean(&join(base, &path));
        match fates.iter().find(|(f, _)| *f == shape).map(|(_, fate)| *fate) {
            _ if v.pointer(&pointer).is_none_or(Value::is_null) => {}
            Some(Fate::Theirs) => {}
            Some(Fate::Refused(why)) => return Err(Error::config(format!("{field}: {why}"))),
            Some(Fate::Ignored(why)) => log_info!("{field}: accepted and ignored: {why}"),
            None => log_debug!("ignoring unknown field {field}"),
        }
    }
    Ok(t)
}

/// A field serde skipped: its path as messages show it (`neighbors[1].bfd`), its shape as the fate tables name
/// it (`neighbors[].bfd`), and its JSON pointer (`/neighbors/1/bfd`).
#[derive(Default)]
struct Ignored {
    path: String,
    shape: String,
    pointer: String,
}

fn ignored_path(p: &serde_ignored::Path) -> Ignored {
    use serde_ignored::Path as P;
    match p {
        P::Root => Ignored::default(),
        P::Seq { parent, index } => {
            let i = ignored_path(parent);
            Ignored {
                path: format!("{}[{index}]", i.path),
                shape: format!("{}[]", i.shape),
                pointer: format!("{}/{index}", i.pointer),
            }
        }
        P::Map { parent, key } => {
            let i = ignored_path(parent);
            let escaped = key.replace('~', "~0").replace('/', "~1");
            Ignored {
                path: join(&i.path, key),
                shape: join(&i.shape, key),
                pointer: format!("{}/{escaped}", i.pointer),
            }
        }
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => ignored_path(parent),
    }
}

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
