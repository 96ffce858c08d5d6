//! Validated values. Each newtype's `TryFrom` is the one place its rule lives; serde calls it (`try_from`), so a
//! bad value is refused while parsing, under the path of the field that held it. docs/configuration.md says why
//! each rule is what it is.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::Deserialize;

use super::{HOST_IFNAME, ROUTER_IFNAME};

type Refusal = String;

/// A whole number from `MIN` to `MAX`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(try_from = "u64")]
pub(crate) struct Bounded<const MIN: u64, const MAX: u64>(pub u64);

impl<const MIN: u64, const MAX: u64> TryFrom<u64> for Bounded<MIN, MAX> {
    type Error = Refusal;
    fn try_from(n: u64) -> Result<Self, Refusal> {
        if (MIN..=MAX).contains(&n) {
            Ok(Bounded(n))
        } else {
            Err(format!("must be a whole number from {MIN} to {MAX}, got {n}"))
        }
    }
}

pub const ASN_MAX: u64 = 4_294_967_295;
/// An AS number; 0 is reserved (RFC 7607).
pub(crate) type Asn = Bounded<1, ASN_MAX>;
pub(crate) type Seconds = Bounded<0, 65535>;
pub(crate) type PositiveSeconds = Bounded<1, 65535>;

impl<const MIN: u64, const MAX: u64> Bounded<MIN, MAX> {
    pub fn u32(self) -> u32 {
        self.0 as u32 // MAX fits every use: u32 or u16
    }
    pub fn u16(self) -> u16 {
        self.0 as u16
    }
}

/// A string without control characters: every string of the configuration may end up in a log line, a path or
/// FRR's configuration, where a newline would start a line of its own.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub(crate) struct Text(pub String);

impl TryFrom<String> for Text {
    type Error = Refusal;
    fn try_from(s: String) -> Result<Self, Refusal> {
        if s.chars().any(char::is_control) {
            return Err("must not contain control characters such as newlines".into());
        }
        Ok(Text(s))
    }
}

/// Linux interface names as upstream validates them: 1..15 characters, `^[a-zA-Z][a-zA-Z0-9._-]*$`.
pub fn valid_ifname(s: &str) -> bool {
    let mut chars = s.chars();
    s.len() <= 15
        && matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub(crate) struct IfName(pub String);

impl TryFrom<String> for IfName {
    type Error = Refusal;
    fn try_from(s: String) -> Result<Self, Refusal> {
        if !valid_ifname(&s) {
            return Err(format!(
                "{s:?} is not a valid interface name (1 to 15 characters, a letter then letters, digits, '.', '_' or '-')"
            ));
        }
        Ok(IfName(s))
    }
}

/// An underlay device: an interface name that is not one of the plugin's own veth ends.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "IfName")]
pub(crate) struct Device(pub String);

impl TryFrom<IfName> for Device {
    type Error = Refusal;
    fn try_from(IfName(s): IfName) -> Result<Self, Refusal> {
        if s == ROUTER_IFNAME || s == HOST_IFNAME {
            return Err(format!("{s:?} is the name of the plugin's own veth"));
        }
        Ok(Device(s))
    }
}

/// A TCP-MD5 password: 1 to 80 printable ASCII characters without spaces (80 is the kernel's
/// TCP_MD5SIG_MAXKEYLEN; FRR reads the password as one word).
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub(crate) struct Password(pub String);

impl TryFrom<String> for Password {
    type Error = Refusal;
    fn try_from(s: String) -> Result<Self, Refusal> {
        if s.is_empty() || s.len() > 80 || !s.chars().all(|c| c.is_ascii_graphic()) {
            return Err(
                "must be 1 to 80 printable ASCII characters without spaces (the kernel's TCP-MD5 key limit; FRR reads it as one word)"
                    .into(),
            );
        }
        Ok(Password(s))
    }
}

/// An absolute path without `..` components.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "Text")]
pub(crate) struct AbsPath(pub PathBuf);

impl TryFrom<Text> for AbsPath {
    type Error = Refusal;
    fn try_from(Text(s): Text) -> Result<Self, Refusal> {
        if !s.starts_with('/') || s.split('/').any(|c| c == "..") || s.len() > 4096 {
            return Err(format!("{s:?} must be an absolute path without '..' components"));
        }
        Ok(AbsPath(PathBuf::from(s)))
    }
}

/// An IP address in its usual form; IPv4 with leading zeros (`010`, octal to some parsers) is refused, as Go
/// and upstream refuse it.
fn ip(s: &str) -> Result<IpAddr, Refusal> {
    s.parse::<IpAddr>().map_err(|_| format!("{s:?} is not an IP address (IPv4 without leading zeros, or IPv6)"))
}

/// A CIDR, parsed strictly (`ipnet` would read `010` as 10); host bits are masked off, as upstream does.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(try_from = "String")]
pub(crate) struct Cidr(pub IpNet);

impl TryFrom<String> for Cidr {
    type Error = Refusal;
    fn try_from(s: String) -> Result<Self, Refusal> {
        let bad = || format!("{s:?} is not a CIDR (like 192.169.10.0/24 or 2001:db8:10::/64)");
        let (addr, len) = s.split_once('/').ok_or_else(bad)?;
        let addr = ip(addr).map_err(|e| format!("{e}: {}", bad()))?;
        let strict =
            !len.is_empty() && len.bytes().all(|b| b.is_ascii_digit()) && (len == "0" || !len.starts_with('0'));
        let len = len.parse::<u8>().ok().filter(|_| strict).ok_or_else(bad)?;
        let net = IpNet::new(addr, len).map_err(|_| bad())?;
        if net.trunc() != net {
            crate::log_debug!("{s} has host bits set; using its network {}", net.trunc());
        }
        Ok(Cidr(net.trunc()))
    }
}

/// Ranges that cannot carry a BGP session or the veth pair's addresses.
const SPECIAL: [(&str, &str); 9] = [
    ("0.0.0.0/8", "unspecified"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("224.0.0.0/4", "multicast"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("fe80::/10", "link-local"),
    ("ff00::/8", "multicast"),
    ("::ffff:0:0/96", "IPv4-mapped"),
];

fn special(net: &IpNet) -> Option<(IpNet, &'static str)> {
    SPECIAL
        .iter()
        .map(|(n, what)| (n.parse::<IpNet>().expect("constant"), *what))
        .find(|(n, _)| n.contains(&net.network()) || net.contains(&n.network()))
}

/// A BGP neighbor's address: unicast and routable over the underlay.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(try_from = "String")]
pub(crate) struct NeighborAddress(pub IpAddr);

impl TryFrom<String> for NeighborAddress {
    type Error = Refusal;
    fn try_from(s: String) -> Result<Self, Refusal> {
        let a = ip(&s)?;
        if a == IpAddr::V4(Ipv4Addr::BROADCAST) {
            return Err(format!("{a} is the broadcast address, not a BGP neighbor"));
        }
        let host = IpNet::from(a);
        match special(&host) {
            // 169.254.0.0/16 is usable on a link; IPv6 link-local needs an interface, which `interface` is for.
            Some((_, "link-local")) if a.is_ipv4() => Ok(NeighborAddress(a)),
            Some((_, "link-local")) => Err(format!(
                "{a} is an IPv6 link-local address, which needs an interface (BGP unnumbered over `interface`, not implemented yet)"
            )),
            Some((_, what)) => Err(format!("{a} is a {what} address, not a BGP neighbor")),
            None => Ok(NeighborAddress(a)),
        }
    }
}

/// A `localcidr`: of the family its key names, room for the veth pair, and none of the special ranges.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(try_from = "Cidr")]
pub(crate) struct LocalCidr4(pub Ipv4Net);

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(try_from = "Cidr")]
pub(crate) struct LocalCidr6(pub Ipv6Net);

fn local(Cidr(net): Cidr, max_prefix: u8) -> Result<IpNet, Refusal> {
    if let Some((range, what)) = special(&net) {
        return Err(format!("{net} overlaps the {what} range {range}, which cannot address the veth pair"));
    }
    if net.prefix_len() > max_prefix {
        return Err(format!("/{} leaves no room for the veth pair; use /{max_prefix} or larger", net.prefix_len()));
    }
    Ok(net)
}

impl TryFrom<Cidr> for LocalCidr4 {
    type Error = Refusal;
    fn try_from(c: Cidr) -> Result<Self, Refusal> {
        match c.0 {
            IpNet::V4(_) => match local(c, 30)? {
                IpNet::V4(n) => Ok(LocalCidr4(n)),
                IpNet::V6(_) => unreachable!("same family"),
            },
            IpNet::V6(_) => Err("is an IPv6 CIDR; ipv4 needs an IPv4 one".into()),
        }
    }
}

impl TryFrom<Cidr> for LocalCidr6 {
    type Error = Refusal;
    fn try_from(c: Cidr) -> Result<Self, Refusal> {
        match c.0 {
            IpNet::V6(_) => match local(c, 126)? {
                IpNet::V6(n) => Ok(LocalCidr6(n)),
                IpNet::V4(_) => unreachable!("same family"),
            },
            IpNet::V4(_) => Err("is an IPv4 CIDR; ipv6 needs an IPv6 one".into()),
        }
    }
}

/// The router id CIDR: IPv4, since BGP router ids are.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(try_from = "Cidr")]
pub(crate) struct RouterIdCidr(pub Ipv4Net);

impl TryFrom<Cidr> for RouterIdCidr {
    type Error = Refusal;
    fn try_from(c: Cidr) -> Result<Self, Refusal> {
        match c.0 {
            IpNet::V4(n) => Ok(RouterIdCidr(n)),
            IpNet::V6(_) => Err("must be an IPv4 CIDR (router ids are IPv4)".into()),
        }
    }
}

/// `External` or `Internal` (any case), as FRR's `remote-as external|internal`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(try_from = "Text")]
pub(crate) struct PeerType(pub super::RemoteAs);

impl TryFrom<Text> for PeerType {
    type Error = Refusal;
    fn try_from(Text(s): Text) -> Result<Self, Refusal> {
        match s.to_ascii_lowercase().as_str() {
            "external" => Ok(PeerType(super::RemoteAs::External)),
            "internal" => Ok(PeerType(super::RemoteAs::Internal)),
            _ => Err(format!("{s:?} must be External or Internal")),
        }
    }
}

/// A log level: error, warn, info or debug.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(try_from = "Text")]
pub(crate) struct LogLevel(pub crate::log::Level);

impl TryFrom<Text> for LogLevel {
    type Error = Refusal;
    fn try_from(Text(s): Text) -> Result<Self, Refusal> {
        crate::log::Level::parse(&s)
            .map(LogLevel)
            .ok_or_else(|| format!("must be one of error, warn, info, debug, got {s:?}"))
    }
}
