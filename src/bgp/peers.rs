//! How FRR names and activates the underlay neighbors: the `neighbor NAME` of each peer, and the address
//! families a neighbor is activated in when the configuration names none (upstream's defaults). Inherent
//! methods on the configuration's types, kept here with the renderer that is their reason.

use ipnet::IpNet;

use crate::config::{AddressFamily, Family, HostSession, Neighbor, Peer, Underlay};

impl Underlay {
    /// How FRR names each underlay neighbor (`neighbor NAME ...`), in order: its address, its interface, or the
    /// peer group of its listen range.
    pub fn peer_names(&self) -> Vec<String> {
        self.neighbors.iter().map(Neighbor::peer_name).collect()
    }
}

impl Family {
    /// FRR's `address-family` words.
    pub fn frr(self) -> &'static str {
        match self {
            Family::Ipv4Unicast => "ipv4",
            Family::Ipv6Unicast => "ipv6",
        }
    }
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
