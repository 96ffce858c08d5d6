//! The attachment record: everything DEL needs to undo an ADD, and everything the BGP sidecar needs.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::addressing::VethAddresses;
use crate::config::{HostSession, Underlay};
use crate::datapath::Sysctl;
use crate::netlink::{Address, Neighbour, Route};
use crate::netns::NsId;

/// Bumped on any incompatible change of the record's shape.
pub const FORMAT_VERSION: u32 = 1;

/// The attachment's key, as CNI defines it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Key {
    pub network: String,
    pub container_id: String,
    pub ifname: String,
}

impl Key {
    /// The record's file name without extension: readable, and safe as one path component. Network names and
    /// container ids are limited to `[A-Za-z0-9_.-]` by validation; the ifname is percent-encoded.
    pub fn file_stem(&self) -> String {
        let mut ifname = String::new();
        for b in self.ifname.bytes() {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                ifname.push(b as char);
            } else {
                ifname.push_str(&format!("%{b:02X}"));
            }
        }
        let stem = format!("{}@{}@{}", self.network, self.container_id, ifname);
        if stem.len() <= 200 {
            return stem;
        }
        // File names are limited to 255 bytes: keep a readable prefix and a hash of the whole key.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in stem.bytes() {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        format!("{}~{h:016x}", &stem[..150])
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "network {:?}, container {:?}, ifname {:?}", self.network, self.container_id, self.ifname)
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
    /// The device's sysctls that differed from the host namespace's defaults.
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
    /// Where the node index came from (`CNI_ARGS`, `runtimeConfig`, `nodeIndex`, `nodeIndexFrom`, `allocated`).
    pub index_source: String,
    pub addresses: VethAddresses,
    pub mtu: Option<u32>,
    pub nics: Vec<NicState>,
    pub underlay: Underlay,
    pub host_session: HostSession,
    pub created_unix: u64,
}

impl Record {
    /// The alias put on both veth ends: it marks them as this attachment's, so cleanup never removes a link
    /// someone else made with the same name. At most 220 bytes, inside the kernel's 255-byte alias limit.
    pub fn veth_alias(&self) -> String {
        format!("openpe-passthrough:{}", self.key.file_stem())
    }
}
