//! The attachment record: everything DEL needs to undo an ADD, and everything the BGP sidecar needs.
//!
//! The record is its own versioned type, decoupled from the configuration types: a release that adds a
//! configuration field does not change what a record holds, and a record a later release writes with more
//! fields still loads here (fields a later release may add are `#[serde(default)]`). Every format ever
//! released stays readable: [`Record::parse`] converts each earlier format (format 1 was released at commit
//! 4ee7cb2; `tests/golden-state/v1` is what that release wrote).
//!
//! Format 2 (this release), as JSON (camelCase), differs from format 1 in:
//! - `netns.cookie`, `hostNetns.cookie`: the namespace cookie (absent on kernels without one);
//! - `underlay` holds only what BGP needs (`asn`, `neighbors`, `routerIDCIDR`): the NIC names are in `nics`;
//! - the record file is named `<network>@<containerId>.json`: CNI_IFNAME (`key.ifname`) is recorded but no
//!   longer part of the attachment's identity (a router namespace holds one attachment).
//!
//! Enums keep the strings released records hold (`phase`: `in-progress`/`complete`; `indexSource`: `allocated`,
//! `CNI_ARGS`, …; `remoteAs`: `{"asn": N}`, `"external"`, `"internal"`).

use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

use crate::addressing::VethAddresses;
use crate::config;
use crate::datapath::Sysctl;
use crate::error::{Error, Result};
use crate::netlink::{Address, Neighbour, Route};
use crate::netns::NsId;

/// The format this release writes. Bumped on any change an earlier release could not read.
pub(crate) const FORMAT_VERSION: u32 = 2;

/// The attachment as the runtime names it. The identity is the network, the container id and the router
/// namespace (whose claim is keyed by its cookie); `ifname` is what CNI_IFNAME said at ADD, kept for people.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Key {
    pub network: String,
    pub container_id: String,
    pub ifname: String,
}

/// File names are limited to 255 bytes: a long stem keeps a readable prefix and a hash of the whole.
fn bounded(stem: String) -> String {
    if stem.len() <= 200 {
        return stem;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in stem.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{}~{h:016x}", &stem[..150])
}

impl Key {
    /// The record's file name without extension (format 2): `<network>@<containerId>`. Network names and
    /// container ids are limited to `[A-Za-z0-9_.-]` by validation, so this is one safe path component.
    pub(crate) fn stem(&self) -> String {
        bounded(format!("{}@{}", self.network, self.container_id))
    }

    /// The file stem format 1 used: `<network>@<containerId>@<ifname>`, the ifname percent-encoded.
    pub(crate) fn format1_stem(&self) -> String {
        let mut ifname = String::new();
        for b in self.ifname.bytes() {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                ifname.push(b as char);
            } else {
                ifname.push_str(&format!("%{b:02X}"));
            }
        }
        bounded(format!("{}@{}@{}", self.network, self.container_id, ifname))
    }

    /// What every format-1 stem of (`network`, `container_id`) starts with, whatever its ifname (a hashed
    /// stem keeps only its first 150 bytes). Container ids and network names have no `@`, so no other
    /// attachment's stem starts with it unless hashed; the caller compares the loaded key.
    pub(crate) fn format1_prefix(network: &str, container_id: &str) -> String {
        let mut p = format!("{network}@{container_id}@");
        p.truncate(150);
        p
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "network {:?}, container {:?} (ifname {:?})", self.network, self.container_id, self.ifname)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Written before the first kernel change; found by a later invocation it means that ADD was interrupted.
    InProgress,
    Complete,
    /// Written by DEL (and GC) before the teardown when a sidecar serves the router namespace: the sidecar
    /// closes the attachment's BGP sessions and acknowledges (src/drain.rs). Otherwise read like `Complete`.
    Removing,
}

/// Where the node index came from (README, "The node index"), first source that gives one wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IndexSource {
    #[serde(rename = "CNI_ARGS")]
    CniArgs,
    #[serde(rename = "args.cni.nodeIndex")]
    ArgsCni,
    #[serde(rename = "runtimeConfig.nodeIndex")]
    RuntimeConfig,
    #[serde(rename = "nodeIndex")]
    Config,
    #[serde(rename = "nodeIndexFrom")]
    NodeIndexFrom,
    /// The lowest index nobody held.
    #[serde(rename = "allocated")]
    Allocated,
}

impl IndexSource {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            IndexSource::CniArgs => "CNI_ARGS",
            IndexSource::ArgsCni => "args.cni.nodeIndex",
            IndexSource::RuntimeConfig => "runtimeConfig.nodeIndex",
            IndexSource::Config => "nodeIndex",
            IndexSource::NodeIndexFrom => "nodeIndexFrom",
            IndexSource::Allocated => "allocated",
        }
    }
}

impl std::fmt::Display for IndexSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A NIC's state before ADD moved it, restored by DEL. The fields after `routes` were added later (the
/// datapath's restore issue): records written before them load with their defaults and restore as before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NicState {
    pub name: String,
    pub mac: String,
    pub mtu: u32,
    pub up: bool,
    /// The addresses as CIDRs (local address and prefix), for the result and CHECK.
    pub addresses: Vec<IpNet>,
    pub routes: Vec<Route>,
    /// The same addresses with everything `ip addr add` sets: peer, label, flags, lifetimes. Empty in older
    /// records, where `addresses` is all there is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub address_details: Vec<Address>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub neighbours: Vec<Neighbour>,
    /// The device's writable sysctls as they were at ADD (records of earlier releases: those that differed from
    /// the host namespace's defaults). DEL writes those the returned NIC has differently.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sysctls: Vec<Sysctl>,
    /// IFLA_PERM_ADDRESS, when the device has one: a MAC change does not alter it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perm_mac: Option<String>,
    /// IFLA_INFO_KIND (veth, macvlan, ...); None for a physical NIC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The ifindex the NIC got in the router namespace, recorded after the move: a rename or MAC change there
    /// does not alter it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router_index: Option<u32>,
}

/// A BGP peer's AS as recorded: a number, or FRR's `external` / `internal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PeerAs {
    Asn(u32),
    External,
    Internal,
}

/// One underlay neighbor with its session settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BgpNeighbor {
    /// Flat: `"address"`, `"interface"` or `"listenRange"` (records before the latter two hold `"address"`).
    #[serde(flatten)]
    pub peer: BgpPeer,
    pub remote_as: PeerAs,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub hold_time_seconds: Option<u16>,
    #[serde(default)]
    pub keepalive_time_seconds: Option<u16>,
    #[serde(default)]
    pub connect_time_seconds: Option<u16>,
    /// The TTL of `ebgp-multihop`, when set.
    #[serde(default)]
    pub ebgp_multi_hop: Option<u8>,
    /// Where the sidecar reads the password (`passwordSecret`); the password itself is never recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret: Option<SecretName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd: Option<BgpBfd>,
    /// The families as configured; absent: upstream's defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_families: Option<Vec<BgpFamily>>,
}

/// Who a neighbor is, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BgpPeer {
    Address(IpAddr),
    Interface(String),
    ListenRange(IpNet),
}

/// A neighbor's BFD settings as recorded; absent fields are FRR's defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BgpBfd {
    pub receive_interval: Option<u16>,
    pub transmit_interval: Option<u16>,
    pub detect_multiplier: Option<u8>,
    pub passive: bool,
    #[serde(rename = "minimumTTL")]
    pub minimum_ttl: Option<u8>,
}

/// An address family a neighbor is activated in, as recorded (`ipv4unicast`, `ipv6unicast`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BgpFamily {
    pub family: String,
    #[serde(default)]
    pub route_reflector_client: bool,
}

/// Graceful restart as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BgpGracefulRestart {
    pub restart_time_seconds: u16,
    pub stale_path_time_seconds: u16,
}

/// A Secret and the key inside it, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretName {
    pub name: String,
    pub key: String,
}

/// The underlay's BGP settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BgpUnderlay {
    pub asn: u32,
    #[serde(default)]
    pub neighbors: Vec<BgpNeighbor>,
    #[serde(rename = "routerIDCIDR")]
    pub router_id_cidr: Ipv4Net,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graceful_restart: Option<BgpGracefulRestart>,
    /// `routeReflector.clusterID`, when the router reflects.
    #[serde(default, rename = "routeReflectorClusterID", skip_serializing_if = "Option::is_none")]
    pub route_reflector_cluster_id: Option<std::net::Ipv4Addr>,
}

impl From<&config::Peer> for BgpPeer {
    fn from(p: &config::Peer) -> Self {
        match p {
            config::Peer::Address(a) => BgpPeer::Address(*a),
            config::Peer::Interface(i) => BgpPeer::Interface(i.clone()),
            config::Peer::ListenRange(r) => BgpPeer::ListenRange(*r),
        }
    }
}

impl From<&BgpPeer> for config::Peer {
    fn from(p: &BgpPeer) -> Self {
        match p {
            BgpPeer::Address(a) => config::Peer::Address(*a),
            BgpPeer::Interface(i) => config::Peer::Interface(i.clone()),
            BgpPeer::ListenRange(r) => config::Peer::ListenRange(*r),
        }
    }
}

impl From<config::Bfd> for BgpBfd {
    fn from(b: config::Bfd) -> Self {
        let config::Bfd { receive_interval, transmit_interval, detect_multiplier, passive, minimum_ttl } = b;
        BgpBfd { receive_interval, transmit_interval, detect_multiplier, passive, minimum_ttl }
    }
}

impl From<BgpBfd> for config::Bfd {
    fn from(b: BgpBfd) -> Self {
        let BgpBfd { receive_interval, transmit_interval, detect_multiplier, passive, minimum_ttl } = b;
        config::Bfd { receive_interval, transmit_interval, detect_multiplier, passive, minimum_ttl }
    }
}

impl From<&config::AddressFamily> for BgpFamily {
    fn from(f: &config::AddressFamily) -> Self {
        BgpFamily { family: f.family.name().to_string(), route_reflector_client: f.route_reflector_client }
    }
}

impl BgpFamily {
    /// Back to the configuration's type; a family this release does not know is left out (an earlier release
    /// never writes one).
    fn to_config(&self) -> Option<config::AddressFamily> {
        let family = match self.family.as_str() {
            "ipv4unicast" => config::Family::Ipv4Unicast,
            "ipv6unicast" => config::Family::Ipv6Unicast,
            _ => return None,
        };
        Some(config::AddressFamily { family, route_reflector_client: self.route_reflector_client })
    }
}

/// The host session's settings (`l3passthrough.hostsession`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BgpHostSession {
    pub asn: u32,
    pub host_as: PeerAs,
    #[serde(default)]
    pub ipv4: Option<Ipv4Net>,
    #[serde(default)]
    pub ipv6: Option<Ipv6Net>,
    /// The limits on what the host may announce (docs/routing-safety.md); absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_prefixes: Option<Vec<IpNet>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_prefixes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_prefixes_restart_minutes: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub format: u32,
    pub boot_id: String,
    pub phase: Phase,
    pub key: Key,
    pub cni_version: String,
    /// The router namespace (CNI_NETNS).
    pub netns: NsId,
    pub host_netns: NsId,
    pub node_index: u32,
    pub index_source: IndexSource,
    pub addresses: VethAddresses,
    #[serde(default)]
    pub mtu: Option<u32>,
    pub nics: Vec<NicState>,
    pub underlay: BgpUnderlay,
    pub host_session: BgpHostSession,
    #[serde(default)]
    pub created_unix: u64,
    /// The file the record lives in (without `.json`): [`Key::stem`] for format 2, the format-1 stem for a
    /// record an earlier release wrote. Claims name it, and the veth alias is made from it.
    #[serde(skip)]
    pub stem: String,
    /// The underlay interfaces made by delegated CNI plugins (CNIDevice), in the order ADD ran them: what DEL
    /// and CHECK hand back to those plugins. Absent in records without delegation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delegates: Vec<Delegate>,
}

/// One delegated configuration list as ADD ran it (issue 14).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delegate {
    /// The configuration list (`rawConfig`), as given.
    pub conflist: serde_json::Value,
    /// The capability arguments offered to its plugins (`runtimeConfig`).
    pub runtime_config: serde_json::Map<String, serde_json::Value>,
    /// CNI_CONTAINERID, CNI_IFNAME and CNI_PATH given to its plugins.
    pub container_id: String,
    pub ifname: String,
    pub cni_path: String,
    /// The last plugin's result, once the whole list's ADD succeeded; DEL and CHECK pass it as prevResult.
    pub result: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Probe {
    format: u32,
}

impl Record {
    /// Read a record of any released format, converted to this one (`stem` is left empty: the caller knows
    /// the file). A format newer than this release's is refused.
    pub(crate) fn parse(text: &str) -> std::result::Result<Record, String> {
        let probe: Probe = serde_json::from_str(text).map_err(|e| e.to_string())?;
        match probe.format {
            1 => serde_json::from_str::<v1::Record>(text).map(Record::from).map_err(|e| e.to_string()),
            FORMAT_VERSION => serde_json::from_str(text).map_err(|e| e.to_string()),
            n => Err(format!(
                "format {n} is not one this release reads (1 to {FORMAT_VERSION}); a newer release wrote it"
            )),
        }
    }

    /// The alias put on both veth ends: it names the attachment, for people and for CHECK. What keeps cleanup
    /// from removing a link someone else made is the link group (`datapath::VETH_GROUP`), set at creation. At
    /// most 220 bytes, inside the kernel's 255-byte alias limit.
    pub(crate) fn veth_alias(&self) -> String {
        format!("openpe-passthrough:{}", self.stem)
    }

    /// What the BGP renderer takes, built from the record alone.
    pub(crate) fn bgp_settings(&self) -> (config::Underlay, config::HostSession) {
        let peer = |a: PeerAs| match a {
            PeerAs::Asn(n) => config::RemoteAs::Asn(n),
            PeerAs::External => config::RemoteAs::External,
            PeerAs::Internal => config::RemoteAs::Internal,
        };
        let u = &self.underlay;
        let underlay = config::Underlay {
            asn: u.asn,
            nics: self.nics.iter().map(|n| n.name.clone()).collect(),
            nics_from: config::DeviceList::default(),
            // Delegated interfaces are recorded as `delegates`, which DEL and CHECK use; rendering needs none.
            cni_devices: Vec::new(),
            neighbors: u
                .neighbors
                .iter()
                .map(|n| config::Neighbor {
                    peer: (&n.peer).into(),
                    remote_as: peer(n.remote_as),
                    port: n.port,
                    password: n.password.clone(),
                    hold_time_seconds: n.hold_time_seconds,
                    keepalive_time_seconds: n.keepalive_time_seconds,
                    connect_time_seconds: n.connect_time_seconds,
                    ebgp_multi_hop: n.ebgp_multi_hop,
                    password_secret: n
                        .password_secret
                        .as_ref()
                        .map(|s| config::SecretRef { name: s.name.clone(), key: s.key.clone() }),
                    bfd: n.bfd.map(Into::into),
                    address_families: n
                        .address_families
                        .as_ref()
                        .map(|l| l.iter().filter_map(BgpFamily::to_config).collect()),
                })
                .collect(),
            router_id_cidr: u.router_id_cidr,
            graceful_restart: u.graceful_restart.map(|g| config::GracefulRestart {
                restart_time_seconds: g.restart_time_seconds,
                stale_path_time_seconds: g.stale_path_time_seconds,
            }),
            route_reflector: u.route_reflector_cluster_id.map(|cluster_id| config::RouteReflector { cluster_id }),
        };
        let h = &self.host_session;
        let limits = crate::limits::HostLimits {
            allowed_prefixes: h.allowed_prefixes.clone(),
            max_prefixes: h.max_prefixes,
            max_prefixes_restart_minutes: h
                .max_prefixes_restart_minutes
                .unwrap_or(crate::limits::DEFAULT_RESTART_MINUTES),
        };
        let host = config::HostSession { asn: h.asn, host_as: peer(h.host_as), ipv4: h.ipv4, ipv6: h.ipv6, limits };
        (underlay, host)
    }
}

/// The record's BGP settings from the validated configuration, at ADD.
pub(crate) fn bgp_from_config(u: &config::Underlay, h: &config::HostSession) -> (BgpUnderlay, BgpHostSession) {
    let peer = |a: config::RemoteAs| match a {
        config::RemoteAs::Asn(n) => PeerAs::Asn(n),
        config::RemoteAs::External => PeerAs::External,
        config::RemoteAs::Internal => PeerAs::Internal,
    };
    let underlay = BgpUnderlay {
        asn: u.asn,
        neighbors: u
            .neighbors
            .iter()
            .map(|n| BgpNeighbor {
                peer: (&n.peer).into(),
                remote_as: peer(n.remote_as),
                port: n.port,
                password: n.password.clone(),
                hold_time_seconds: n.hold_time_seconds,
                keepalive_time_seconds: n.keepalive_time_seconds,
                connect_time_seconds: n.connect_time_seconds,
                ebgp_multi_hop: n.ebgp_multi_hop,
                password_secret: n
                    .password_secret
                    .as_ref()
                    .map(|s| SecretName { name: s.name.clone(), key: s.key.clone() }),
                bfd: n.bfd.map(Into::into),
                address_families: n.address_families.as_ref().map(|l| l.iter().map(Into::into).collect()),
            })
            .collect(),
        router_id_cidr: u.router_id_cidr,
        graceful_restart: u.graceful_restart.map(|g| BgpGracefulRestart {
            restart_time_seconds: g.restart_time_seconds,
            stale_path_time_seconds: g.stale_path_time_seconds,
        }),
        route_reflector_cluster_id: u.route_reflector.map(|r| r.cluster_id),
    };
    let host = BgpHostSession {
        asn: h.asn,
        host_as: peer(h.host_as),
        ipv4: h.ipv4,
        ipv6: h.ipv6,
        allowed_prefixes: h.limits.allowed_prefixes.clone(),
        max_prefixes: h.limits.max_prefixes,
        max_prefixes_restart_minutes: h.limits.max_prefixes.map(|_| h.limits.max_prefixes_restart_minutes),
    };
    (underlay, host)
}

/// Format 1, frozen as released at commit 4ee7cb2 (then the record embedded the configuration types; these
/// are copies of their shape at that commit, so later configuration changes cannot change how it reads).
mod v1 {
    use super::*;

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(crate) struct Record {
        pub boot_id: String,
        pub phase: Phase,
        pub key: Key,
        pub cni_version: String,
        pub netns: NsIdV1,
        pub host_netns: NsIdV1,
        pub node_index: u32,
        pub index_source: IndexSource,
        pub addresses: VethAddresses,
        pub mtu: Option<u32>,
        pub nics: Vec<NicState>,
        pub underlay: Underlay,
        pub host_session: HostSession,
        pub created_unix: u64,
    }

    #[derive(Deserialize)]
    pub(crate) struct NsIdV1 {
        pub path: std::path::PathBuf,
        pub dev: u64,
        pub ino: u64,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Underlay {
        pub asn: u32,
        // `nics` (the NIC names) is left unread: the record's `nics` has them with their state.
        pub neighbors: Vec<Neighbor>,
        #[serde(rename = "routerIDCIDR")]
        pub router_id_cidr: Ipv4Net,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Neighbor {
        pub address: IpAddr,
        pub remote_as: PeerAs,
        pub port: Option<u16>,
        pub password: Option<String>,
        pub hold_time_seconds: Option<u16>,
        pub keepalive_time_seconds: Option<u16>,
        pub connect_time_seconds: Option<u16>,
        pub ebgp_multi_hop: bool,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct HostSession {
        pub asn: u32,
        pub host_as: PeerAs,
        pub ipv4: Option<Ipv4Net>,
        pub ipv6: Option<Ipv6Net>,
    }
}

impl From<v1::Record> for Record {
    fn from(r: v1::Record) -> Record {
        let ns = |n: v1::NsIdV1| NsId { path: n.path, dev: n.dev, ino: n.ino, cookie: None };
        let stem = r.key.format1_stem();
        Record {
            format: FORMAT_VERSION,
            boot_id: r.boot_id,
            phase: r.phase,
            key: r.key,
            cni_version: r.cni_version,
            netns: ns(r.netns),
            host_netns: ns(r.host_netns),
            node_index: r.node_index,
            index_source: r.index_source,
            addresses: r.addresses,
            mtu: r.mtu,
            nics: r.nics,
            underlay: BgpUnderlay {
                asn: r.underlay.asn,
                neighbors: r
                    .underlay
                    .neighbors
                    .into_iter()
                    .map(|n| BgpNeighbor {
                        peer: BgpPeer::Address(n.address),
                        remote_as: n.remote_as,
                        port: n.port,
                        password: n.password,
                        hold_time_seconds: n.hold_time_seconds,
                        keepalive_time_seconds: n.keepalive_time_seconds,
                        connect_time_seconds: n.connect_time_seconds,
                        // The boolean of that release meant FRR's maximum TTL.
                        ebgp_multi_hop: n.ebgp_multi_hop.then_some(255),
                        password_secret: None,
                        bfd: None,
                        address_families: None,
                    })
                    .collect(),
                router_id_cidr: r.underlay.router_id_cidr,
                graceful_restart: None,
                route_reflector_cluster_id: None,
            },
            host_session: BgpHostSession {
                asn: r.host_session.asn,
                host_as: r.host_session.host_as,
                ipv4: r.host_session.ipv4,
                ipv6: r.host_session.ipv6,
                allowed_prefixes: None,
                max_prefixes: None,
                max_prefixes_restart_minutes: None,
            },
            created_unix: r.created_unix,
            stem,
            delegates: Vec::new(),
        }
    }
}

/// Check that a record read from file `stem` is where its key says it belongs.
pub(crate) fn check_stem(rec: &Record, stem: &str) -> Result<()> {
    if stem == rec.key.stem() || stem == rec.key.format1_stem() {
        Ok(())
    } else {
        Err(Error::unsafe_state(format!(
            "state record {stem}.json holds the attachment {}, which belongs in {}.json; check it by hand",
            rec.key,
            rec.key.stem()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn golden_v1() -> String {
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/golden-state/v1/attachments/openpe@golden-v1@net1.json"
        ))
        .unwrap()
        .replace("@BOOT_ID@", "b")
        .replace("@ROUTER_NETNS@", "/run/netns/r")
        .replace("@HOST_NETNS@", "/run/netns/h")
        .replace("@NSFS_DEV@", "4")
        .replace("@ROUTER_INO@", "4026532537")
        .replace("@HOST_INO@", "4026532468")
        .replace("@NIC_MAC@", "8a:c8:a1:5c:42:a7")
    }

    /// Format 1, as the released plugin wrote it, converts field by field, and renders exactly what that
    /// release rendered for it.
    #[test]
    fn format_1_converts() {
        let rec = Record::parse(&golden_v1()).unwrap();
        assert_eq!(rec.format, FORMAT_VERSION);
        assert_eq!(rec.stem, "openpe@golden-v1@net1");
        assert_eq!(rec.veth_alias(), "openpe-passthrough:openpe@golden-v1@net1");
        assert_eq!(rec.key, Key { network: "openpe".into(), container_id: "golden-v1".into(), ifname: "net1".into() });
        assert_eq!(rec.phase, Phase::Complete);
        assert_eq!(rec.netns, NsId { path: "/run/netns/r".into(), dev: 4, ino: 4026532537, cookie: None });
        assert_eq!(rec.host_netns.ino, 4026532468);
        assert_eq!((rec.node_index, rec.index_source), (3, IndexSource::Config));
        assert_eq!(rec.mtu, Some(1450));
        assert_eq!(rec.nics.len(), 1);
        assert_eq!(rec.nics[0].routes.len(), 3);
        assert_eq!(
            rec.underlay.neighbors[0],
            BgpNeighbor {
                peer: BgpPeer::Address("192.168.11.2".parse().unwrap()),
                remote_as: PeerAs::Asn(64512),
                port: None,
                password: Some("s3cret".into()),
                hold_time_seconds: Some(9),
                keepalive_time_seconds: Some(3),
                connect_time_seconds: Some(7),
                ebgp_multi_hop: Some(255),
                password_secret: None,
                bfd: None,
                address_families: None,
            }
        );
        assert_eq!(rec.underlay.neighbors[1].remote_as, PeerAs::Internal);
        assert_eq!(rec.underlay.neighbors[1].port, Some(1790));
        assert_eq!(rec.host_session.host_as, PeerAs::Asn(64515));
        assert_eq!(rec.created_unix, 1796119190);
        let (u, h) = rec.bgp_settings();
        let text = crate::bgp::render(&u, &h, rec.node_index, &rec.addresses, crate::bgp::Secrets::Show).unwrap();
        // The settings survive the conversion: the record renders what the configuration that made it renders
        // with this release (the rendering itself has changed since, see tests/golden-state/v1/frr.conf).
        let netconf: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden-state/v1/netconf.json"))
                .unwrap()
                .replace("@STATE_DIR@", "/run/x")
                .replace("@HOST_NETNS@", "/run/netns/h"),
        )
        .unwrap();
        let pt = crate::config::Passthrough::parse(&netconf).unwrap();
        let want = crate::bgp::render(
            &pt.underlay,
            &pt.host_session,
            rec.node_index,
            &rec.addresses,
            crate::bgp::Secrets::Show,
        )
        .unwrap();
        assert_eq!(text, want);
    }

    /// The fabric fields (issue 13) survive the record: configuration, record, its JSON, and back.
    #[test]
    fn fabric_fields_survive_the_record() {
        let mut v: serde_json::Value =
            serde_json::from_str(include_str!("../../netconf/10-openpe-dualstack.conf")).unwrap();
        v["underlay"]["nics"] = serde_json::json!(["eth1"]);
        v["underlay"]["gracefulRestart"] = serde_json::json!({"restartTimeSeconds": 30});
        v["underlay"]["routeReflector"] = serde_json::json!({});
        v["underlay"]["neighbors"] = serde_json::json!([
            {"type": "External", "interface": "eth1", "bfd": {"receiveInterval": 100, "sessionMode": "Passive"}},
            {"type": "Internal", "listenRange": "192.168.40.7/24", "passwordSecret": "s",
             "addressFamilies": [{"family": "ipv4unicast", "properties": [{"type": "routeReflectorClient"}]}]},
            {"asn": 64512, "address": "2001:db8:11::2", "addressFamilies": ["ipv6unicast", "ipv4unicast"]}]);
        let pt = crate::config::Passthrough::parse(&v).unwrap();
        let (u, h) = bgp_from_config(&pt.underlay, &pt.host_session);
        let mut rec = Record::parse(&golden_v1()).unwrap();
        (rec.underlay, rec.host_session) = (u, h);
        rec.nics.truncate(0);
        let back = Record::parse(&serde_json::to_string(&rec).unwrap()).unwrap();
        let (u, h) = back.bgp_settings();
        assert_eq!((u.neighbors, u.graceful_restart, u.route_reflector), {
            let w = pt.underlay;
            (w.neighbors, w.graceful_restart, w.route_reflector)
        });
        assert_eq!(h, pt.host_session);
    }

    /// Format 2 round-trips; a later release's extra fields are ignored; the enums keep their strings.
    #[test]
    fn format_2_round_trips_and_tolerates_additions() {
        let mut rec = Record::parse(&golden_v1()).unwrap();
        rec.netns.cookie = Some(77);
        rec.stem = rec.key.stem();
        let mut v = serde_json::to_value(&rec).unwrap();
        assert_eq!(v["format"], 2);
        assert_eq!(v["indexSource"], "nodeIndex");
        assert_eq!(v["phase"], "complete");
        assert_eq!(v["netns"]["cookie"], 77);
        assert!(v["hostNetns"].get("cookie").is_none());
        assert_eq!(v["underlay"]["neighbors"][1]["remoteAs"], "internal");
        v["underlay"]["neighbors"][0]["someLaterField"] = serde_json::json!(true);
        v["laterTopLevel"] = serde_json::json!({"x": 1});
        let mut back = Record::parse(&v.to_string()).unwrap();
        back.stem = rec.key.stem();
        assert_eq!(back, rec);
        for (s, want) in [
            (IndexSource::Allocated, "allocated"),
            (IndexSource::CniArgs, "CNI_ARGS"),
            (IndexSource::ArgsCni, "args.cni.nodeIndex"),
            (IndexSource::RuntimeConfig, "runtimeConfig.nodeIndex"),
            (IndexSource::Config, "nodeIndex"),
            (IndexSource::NodeIndexFrom, "nodeIndexFrom"),
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), want);
            assert_eq!(s.as_str(), want);
        }
        let newer = v.to_string().replace("\"format\":2", "\"format\":3");
        assert!(Record::parse(&newer).unwrap_err().contains("format 3"));
    }

    #[test]
    fn stems() {
        let k = Key { network: "n".into(), container_id: "c".into(), ifname: "a b".into() };
        assert_eq!(k.stem(), "n@c");
        assert_eq!(k.format1_stem(), "n@c@a%20b");
        assert!(k.format1_stem().starts_with(&Key::format1_prefix("n", "c")));
        let long = Key { network: "n".into(), container_id: "x".repeat(240), ifname: "eth0".into() };
        assert!(
            long.stem().len() < 200 && long.format1_stem().starts_with(&Key::format1_prefix("n", &"x".repeat(240)))
        );
    }
}
