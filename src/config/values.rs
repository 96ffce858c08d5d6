//! Validated values. Each newtype's rule lives in its `TryFrom`, which serde calls (`try_from`), so a bad value
//! is refused while parsing, under the path of the field that held it. docs/configuration.md says why each rule
//! is what it is.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Deserializer};

use super::{Family, RemoteAs, HOST_IFNAME, ROUTER_IFNAME};
use crate::log::Level;

/// `Name(Inner)`, read from `Source` and kept when `rule` (a closure from the source to `Result<Inner, String>`)
/// accepts it.
macro_rules! validated {
    ($(#[$doc:meta])* $name:ident($inner:ty) from $src:ty = $src_name:literal, $rule:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Deserialize)]
        #[serde(try_from = $src_name)]
        pub(crate) struct $name(pub $inner);

        impl TryFrom<$src> for $name {
            type Error = String;
            fn try_from(v: $src) -> Result<Self, String> {
                let rule: fn($src) -> Result<$inner, String> = $rule;
                rule(v).map($name)
            }
        }

        impl From<$name> for $inner {
            fn from(v: $name) -> $inner {
                v.0
            }
        }
    };
}

/// A field read as `W`, which validates it, and kept as what `W` holds.
pub(super) fn via<'de, W: Deserialize<'de> + Into<T>, T, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
    W::deserialize(d).map(Into::into)
}

/// [`via`] for an optional field.
pub(super) fn opt<'de, W: Deserialize<'de> + Into<T>, T, D: Deserializer<'de>>(d: D) -> Result<Option<T>, D::Error> {
    Option::<W>::deserialize(d).map(|w| w.map(Into::into))
}

/// A whole number from `MIN` to `MAX`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(try_from = "u64")]
pub(crate) struct Bounded<const MIN: u64, const MAX: u64>(pub u64);

impl<const MIN: u64, const MAX: u64> TryFrom<u64> for Bounded<MIN, MAX> {
    type Error = String;
    fn try_from(n: u64) -> Result<Self, String> {
        match (MIN..=MAX).contains(&n) {
            true => Ok(Bounded(n)),
            false => Err(format!("must be a whole number from {MIN} to {MAX}, got {n}")),
        }
    }
}

/// What a `Bounded` is kept as; every use has a MAX that fits the type it asks for.
macro_rules! bounded_into {
    ($($t:ty),*) => {$(
        impl<const MIN: u64, const MAX: u64> From<Bounded<MIN, MAX>> for $t {
            fn from(b: Bounded<MIN, MAX>) -> $t {
                b.0 as $t
            }
        }
    )*};
}
bounded_into!(u8, u16, u32);

impl<const MIN: u64, const MAX: u64> From<Bounded<MIN, MAX>> for std::time::Duration {
    fn from(b: Bounded<MIN, MAX>) -> Self {
        std::time::Duration::from_secs(b.0)
    }
}

pub const ASN_MAX: u64 = 4_294_967_295;
/// An AS number; 0 is reserved (RFC 7607).
pub(crate) type Asn = Bounded<1, ASN_MAX>;
pub(crate) type Seconds = Bounded<0, 65535>;

validated!(
    /// A string without control characters: every string may end up in a log line, a path or FRR's
    /// configuration, where a newline would start a line of its own.
    Text(String) from String = "String",
    |s| match s.chars().any(char::is_control) {
        true => Err("must not contain control characters such as newlines".into()),
        false => Ok(s),
    }
);

/// Linux interface names as upstream validates them: 1..15 characters, `^[a-zA-Z][a-zA-Z0-9._-]*$`.
pub fn valid_ifname(s: &str) -> bool {
    let mut chars = s.chars();
    s.len() <= 15
        && matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

validated!(IfName(String) from String = "String", |s| match valid_ifname(&s) {
    true => Ok(s),
    false => Err(format!(
        "{s:?} is not a valid interface name (1 to 15 characters, a letter then letters, digits, '.', '_' or '-')"
    )),
});

validated!(
    /// An underlay device: an interface name that is not one of the plugin's own veth ends.
    Device(String) from IfName = "IfName",
    |IfName(s)| match s == ROUTER_IFNAME || s == HOST_IFNAME {
        true => Err(format!("{s:?} is the name of the plugin's own veth")),
        false => Ok(s),
    }
);

/// A TCP-MD5 password: 1 to 80 printable ASCII characters, no spaces (TCP_MD5SIG_MAXKEYLEN is 80; FRR reads
/// the password as one word). The sidecar applies the same rule to a password read from a Secret.
pub(crate) fn valid_password(s: &str) -> bool {
    !s.is_empty() && s.len() <= 80 && s.chars().all(|c| c.is_ascii_graphic())
}

/// Why [`valid_password`] refuses a password (never quoting it).
pub(crate) const PASSWORD_RULE: &str =
    "must be 1 to 80 printable ASCII characters without spaces (the kernel's TCP-MD5 key limit; FRR reads it as \
     one word)";

validated!(Password(String) from String = "String", |s| match valid_password(&s) {
    true => Ok(s),
    false => Err(PASSWORD_RULE.into()),
});

validated!(
    /// A Secret's name as Kubernetes validates it (a DNS-1123 subdomain: at most 253 lowercase letters, digits,
    /// '-' and '.', starting and ending with a letter or digit): one directory under the secrets directory.
    SecretName(String) from String = "String",
    |s| {
        let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let ok = s.len() <= 253
            && edge(s.chars().next())
            && edge(s.chars().last())
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
        match ok {
            true => Ok(s),
            false => Err(format!(
                "{s:?} is not a Secret name (at most 253 lowercase letters, digits, '-' and '.', starting and \
                 ending with a letter or digit)"
            )),
        }
    }
);

validated!(
    /// A key of a Secret as Kubernetes validates it: at most 253 letters, digits, '-', '_' and '.', not `.` or
    /// `..`; and not starting with `..`, which the kubelet keeps for its own entries (`..data`).
    SecretKey(String) from String = "String",
    |s| {
        let ok = !s.is_empty()
            && s.len() <= 253
            && !s.starts_with("..")
            && s != "."
            && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        match ok {
            true => Ok(s),
            false => Err(format!(
                "{s:?} is not a Secret key (at most 253 letters, digits, '-', '_' and '.', not starting with '..')"
            )),
        }
    }
);

validated!(
    /// An absolute path without `..` components.
    AbsPath(PathBuf) from Text = "Text",
    |Text(s)| match s.starts_with('/') && !s.split('/').any(|c| c == "..") && s.len() <= 4096 {
        true => Ok(PathBuf::from(s)),
        false => Err(format!("{s:?} must be an absolute path without '..' components")),
    }
);

validated!(LogLevel(Level) from Text = "Text", |Text(s)| Level::parse(&s)
    .ok_or_else(|| format!("must be one of error, warn, info, debug, got {s:?}")));

validated!(
    /// `External` or `Internal` (any case), as FRR's `remote-as external|internal`.
    PeerType(RemoteAs) from Text = "Text",
    |Text(s)| match s.to_ascii_lowercase().as_str() {
        "external" => Ok(RemoteAs::External),
        "internal" => Ok(RemoteAs::Internal),
        _ => Err(format!("{s:?} must be External or Internal")),
    }
);

validated!(
    /// BFD's `sessionMode`: whether the session is passive.
    SessionMode(bool) from Text = "Text",
    |Text(s)| match s.as_str() {
        "Active" => Ok(false),
        "Passive" => Ok(true),
        _ => Err(format!("unknown variant `{s}`, expected `Active` or `Passive`")),
    }
);

/// An IP address in its usual form; IPv4 with leading zeros (`010`, octal to some parsers) is refused, as Go and
/// upstream refuse it.
fn ip(s: &str) -> Result<IpAddr, String> {
    s.parse().map_err(|_| format!("{s:?} is not an IP address (IPv4 without leading zeros, or IPv6)"))
}

validated!(
    /// A CIDR, read strictly (`ipnet` would read `010` as 10); host bits are masked off, as upstream does.
    Cidr(IpNet) from String = "String",
    |s| {
        let bad = || format!("{s:?} is not a CIDR (like 192.169.10.0/24 or 2001:db8:10::/64)");
        let (addr, len) = s.split_once('/').ok_or_else(bad)?;
        let digits = !len.is_empty() && len.bytes().all(|b| b.is_ascii_digit()) && (len == "0" || !len.starts_with('0'));
        let len = len.parse::<u8>().ok().filter(|_| digits).ok_or_else(bad)?;
        let net = IpNet::new(ip(addr).map_err(|e| format!("{e}: {}", bad()))?, len).map_err(|_| bad())?;
        if net.trunc() != net {
            crate::log_debug!("{s} has host bits set; using its network {}", net.trunc());
        }
        Ok(net.trunc())
    }
);

/// Ranges that can carry neither a BGP session nor the veth pair's addresses.
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

/// The special range `net` overlaps, if any.
fn special(net: IpNet) -> Option<(IpNet, &'static str)> {
    SPECIAL
        .iter()
        .map(|(n, what)| (n.parse::<IpNet>().expect("constant"), *what))
        .find(|(n, _)| n.contains(&net.network()) || net.contains(&n.network()))
}

validated!(
    /// A BGP neighbor's address: unicast, and routable without naming an interface (IPv4 link-local is, on
    /// its link; IPv6 link-local is what `interface` is for).
    NeighborAddress(IpAddr) from String = "String",
    |s| match ip(&s)? {
        a if a == IpAddr::V4(Ipv4Addr::BROADCAST) => Err(format!("{a} is the broadcast address, not a BGP neighbor")),
        a => match special(IpNet::from(a)) {
            Some((_, "link-local")) if a.is_ipv4() => Ok(a),
            Some((_, "link-local")) => Err(format!(
                "{a} is an IPv6 link-local address, which needs an interface: give `interface` instead (BGP \
                 unnumbered)"
            )),
            Some((_, what)) => Err(format!("{a} is a {what} address, not a BGP neighbor")),
            None => Ok(a),
        },
    }
);

/// A localcidr: outside the special ranges, and with room for the veth pair and a node (`max_prefix`).
fn local(net: IpNet, max_prefix: u8) -> Result<(), String> {
    if let Some((range, what)) = special(net) {
        return Err(format!("{net} overlaps the {what} range {range}, which cannot address the veth pair"));
    }
    match net.prefix_len() > max_prefix {
        true => Err(format!("/{} leaves no room for the veth pair; use /{max_prefix} or larger", net.prefix_len())),
        false => Ok(()),
    }
}

validated!(LocalCidr4(Ipv4Net) from Cidr = "Cidr", |Cidr(net)| match net {
    IpNet::V4(n) => local(net, 30).map(|()| n),
    IpNet::V6(_) => Err("is an IPv6 CIDR; ipv4 needs an IPv4 one".into()),
});

validated!(LocalCidr6(Ipv6Net) from Cidr = "Cidr", |Cidr(net)| match net {
    IpNet::V6(n) => local(net, 126).map(|()| n),
    IpNet::V4(_) => Err("is an IPv4 CIDR; ipv6 needs an IPv6 one".into()),
});

validated!(
    /// The router id CIDR: IPv4, since BGP router ids are.
    RouterIdCidr(Ipv4Net) from Cidr = "Cidr",
    |Cidr(net)| match net {
        IpNet::V4(n) => Ok(n),
        IpNet::V6(_) => Err("must be an IPv4 CIDR (router ids are IPv4)".into()),
    }
);

validated!(
    /// An IPv4 address (a cluster id).
    Ipv4(Ipv4Addr) from String = "String",
    |s| match ip(&s)? {
        IpAddr::V4(a) => Ok(a),
        IpAddr::V6(_) => Err(format!("{s:?} is an IPv6 address; an IPv4 address is needed")),
    }
);

validated!(
    /// A unicast family this project can carry; upstream's EVPN and VPN families are refused saying why.
    FamilyName(Family) from Text = "Text",
    |Text(s)| match s.as_str() {
        "ipv4unicast" => Ok(Family::Ipv4Unicast),
        "ipv6unicast" => Ok(Family::Ipv6Unicast),
        "evpn" | "ipv4vpn" | "ipv6vpn" => Err(format!(
            "{s:?} is an EVPN/VPN family; passthrough mode has no VRF or VTEP to carry it (use ipv4unicast or \
             ipv6unicast)"
        )),
        _ => Err(format!("{s:?} must be ipv4unicast or ipv6unicast")),
    }
);

/// A listen range: not IPv6 link-local, which needs an interface to mean anything.
pub(crate) fn listen_range(net: IpNet) -> Result<IpNet, String> {
    match special(net) {
        Some((range, "link-local")) if net.addr().is_ipv6() => {
            Err(format!("{net} overlaps the IPv6 link-local range {range}; link-local peers need `interface`"))
        }
        _ => Ok(net),
    }
}
