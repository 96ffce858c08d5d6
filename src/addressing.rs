//! Addresses from the node index: the router side takes the first host address of each `localcidr`, the host
//! side the next one plus the index. Never the IPv4 broadcast address, never outside the CIDR.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

use crate::config::HostSession;
use crate::error::{Error, Result};

/// The addresses of one attachment, with the CIDR's prefix length.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VethAddresses {
    /// On `pt-ns`, the router side: the same on every node.
    pub router: Vec<IpNet>,
    /// On `pt-host`, the node's own: unique per node index.
    pub host: Vec<IpNet>,
}

fn v4_at(net: Ipv4Net, offset: u128, field: &str, index: u32) -> Result<Ipv4Net> {
    let size = 1u128 << (32 - net.prefix_len());
    // The last address of an IPv4 subnet is its broadcast address: never hand it out.
    if offset >= size - 1 {
        return Err(Error::config(format!(
            "{field}: {net} is too small for node index {index}; it holds node indexes 0 to {}",
            size.saturating_sub(3)
        )));
    }
    let addr = Ipv4Addr::from(u32::from(net.network()) + offset as u32);
    Ok(Ipv4Net::new(addr, net.prefix_len()).expect("prefix length from a valid net"))
}

fn v6_at(net: Ipv6Net, offset: u128, field: &str, index: u32) -> Result<Ipv6Net> {
    let bits = 128 - net.prefix_len() as u32;
    if bits < 128 && offset >= (1u128 << bits) {
        return Err(Error::config(format!(
            "{field}: {net} is too small for node index {index}; it holds node indexes 0 to {}",
            (1u128 << bits).saturating_sub(3)
        )));
    }
    let addr = Ipv6Addr::from(u128::from(net.network()) + offset);
    Ok(Ipv6Net::new(addr, net.prefix_len()).expect("prefix length from a valid net"))
}

/// The router and host addresses for `index`, IPv4 first.
pub fn veth_addresses(hs: &HostSession, index: u32) -> Result<VethAddresses> {
    let mut out = VethAddresses { router: Vec::new(), host: Vec::new() };
    let host_offset = index as u128 + 2;
    if let Some(net) = hs.ipv4 {
        let field = "l3passthrough.hostsession.localcidr.ipv4";
        out.router.push(IpNet::V4(v4_at(net, 1, field, index)?));
        out.host.push(IpNet::V4(v4_at(net, host_offset, field, index)?));
    }
    if let Some(net) = hs.ipv6 {
        let field = "l3passthrough.hostsession.localcidr.ipv6";
        out.router.push(IpNet::V6(v6_at(net, 1, field, index)?));
        out.host.push(IpNet::V6(v6_at(net, host_offset, field, index)?));
    }
    Ok(out)
}

/// The host number of `addr` inside `cidr` (192.168.11.3 in 192.168.11.0/24 gives 3), if it lies inside.
pub fn host_number(cidr: &IpNet, addr: IpAddr) -> Option<u128> {
    if !cidr.contains(&addr) {
        return None;
    }
    Some(match (cidr, addr) {
        (IpNet::V4(n), IpAddr::V4(a)) => (u32::from(a) - u32::from(n.network())) as u128,
        (IpNet::V6(n), IpAddr::V6(a)) => u128::from(a) - u128::from(n.network()),
        _ => return None,
    })
}

/// The BGP router id: host number `index + 1` of the underlay's `routerIDCIDR`, as upstream does.
pub fn router_id(cidr: Ipv4Net, index: u32) -> Result<Ipv4Addr> {
    let net = cidr.trunc();
    let size = 1u64 << (32 - net.prefix_len());
    let offset = index as u64 + 1;
    if offset >= size {
        return Err(Error::config(format!("underlay.routerIDCIDR: {net} is too small for node index {index}")));
    }
    Ok(Ipv4Addr::from(u32::from(net.network()) + offset as u32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RemoteAs;

    fn hs(v4: Option<&str>, v6: Option<&str>) -> HostSession {
        HostSession {
            asn: 64514,
            host_as: RemoteAs::Asn(64515),
            ipv4: v4.map(|s| s.parse().unwrap()),
            ipv6: v6.map(|s| s.parse().unwrap()),
            limits: Default::default(),
        }
    }

    fn strs(v: &[IpNet]) -> Vec<String> {
        v.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn index_0_and_3() {
        let h = hs(Some("192.169.10.0/24"), Some("2001:db8:10::/64"));
        let a = veth_addresses(&h, 0).unwrap();
        assert_eq!(strs(&a.router), ["192.169.10.1/24", "2001:db8:10::1/64"]);
        assert_eq!(strs(&a.host), ["192.169.10.2/24", "2001:db8:10::2/64"]);
        let a = veth_addresses(&h, 3).unwrap();
        assert_eq!(strs(&a.host), ["192.169.10.5/24", "2001:db8:10::5/64"]);
    }

    #[test]
    fn never_the_broadcast_address() {
        let h = hs(Some("192.169.10.0/30"), None);
        assert_eq!(strs(&veth_addresses(&h, 0).unwrap().host), ["192.169.10.2/30"]);
        assert!(veth_addresses(&h, 1).is_err(), ".3 is the broadcast address of a /30");
        let h = hs(Some("192.169.10.0/24"), None);
        assert!(veth_addresses(&h, 252).is_ok());
        let e = veth_addresses(&h, 253).unwrap_err();
        assert!(e.msg.contains("localcidr.ipv4"));
        let h = hs(None, Some("2001:db8::/126"));
        assert!(veth_addresses(&h, 1).is_ok());
        assert!(veth_addresses(&h, 2).is_err());
        let h = hs(None, Some("2001:db8::/64"));
        assert!(veth_addresses(&h, u32::MAX).is_ok());
    }

    #[test]
    fn host_numbers_and_router_ids() {
        let n: IpNet = "192.168.11.0/24".parse().unwrap();
        assert_eq!(host_number(&n, "192.168.11.3".parse().unwrap()), Some(3));
        assert_eq!(host_number(&n, "192.168.12.3".parse().unwrap()), None);
        assert_eq!(host_number(&n, "::1".parse().unwrap()), None);
        assert_eq!(router_id("10.0.0.0/24".parse().unwrap(), 0).unwrap().to_string(), "10.0.0.1");
        assert!(router_id("10.0.0.0/30".parse().unwrap(), 3).is_err());
    }
}
