//! Limits on what a host may announce to the fabric through its BGP session: `allowedPrefixes`, `maxPrefixes`
//! and `maxPrefixesRestartMinutes` of `l3passthrough.hostsession`. They are this project's extensions, not
//! upstream OpenPERouter's (whose host session accepts anything the host announces). docs/routing-safety.md
//! describes them; `src/bgp/safety.rs` renders them into FRR.
//!
//! The typed values live here with their validation, so that the configuration parser only reads the three
//! fields and hands them over.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// FRR's restart timer of a session closed for too many prefixes, when `maxPrefixesRestartMinutes` is absent.
pub(crate) const DEFAULT_RESTART_MINUTES: u16 = 5;

fn default_restart_minutes() -> u16 {
    DEFAULT_RESTART_MINUTES
}

/// What the host session accepts from the host. The default is upstream's behaviour: everything, no limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostLimits {
    /// `None`: every route the host announces is accepted. `Some`: a route is accepted only if it lies inside one
    /// of these networks (the network itself or any longer prefix); an address family without an entry accepts
    /// nothing from the host (so does an empty list). Networks without host bits, each of a family the host
    /// session has, none twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_prefixes: Option<Vec<IpNet>>,
    /// The most routes the host may have accepted per address family (counted after `allowed_prefixes`, see
    /// `host_neighbor_af` in src/bgp/safety.rs for why); past it FRR closes the session. At least 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_prefixes: Option<u32>,
    /// Minutes after which FRR reopens a session it closed for `max_prefixes` (1..65535; FRR counts whole
    /// minutes).
    #[serde(default = "default_restart_minutes")]
    pub max_prefixes_restart_minutes: u16,
}

impl Default for HostLimits {
    fn default() -> Self {
        HostLimits { allowed_prefixes: None, max_prefixes: None, max_prefixes_restart_minutes: DEFAULT_RESTART_MINUTES }
    }
}

impl HostLimits {
    /// The allowed networks of one address family (`ipv4` true: IPv4), or `None` when the host may announce
    /// anything.
    pub(crate) fn allowed_in(&self, ipv4: bool) -> Option<Vec<IpNet>> {
        self.allowed_prefixes
            .as_ref()
            .map(|list| list.iter().filter(|n| matches!(n, IpNet::V4(_)) == ipv4).copied().collect())
    }
}

/// `allowedPrefixes` from its entries as written; `path` is the field's path, `ipv4` and `ipv6` say which
/// families the host session has. Refused: an entry that is not a CIDR, one with host bits set (in a filter a
/// typo such as `10.1.2.3/16` for `10.1.2.3/32` would otherwise widen it silently), one of a family the host
/// session does not have, and an entry given twice.
pub(crate) fn allowed_prefixes<S: AsRef<str>>(entries: &[S], path: &str, ipv4: bool, ipv6: bool) -> Result<Vec<IpNet>> {
    let mut out: Vec<IpNet> = Vec::with_capacity(entries.len());
    for (i, text) in entries.iter().enumerate() {
        let text = text.as_ref();
        let p = format!("{path}[{i}]");
        let net: IpNet = text.parse().map_err(|_| {
            Error::config(format!("{p}: {text:?} is not a CIDR (like 172.31.0.0/16 or 2001:db8:88::/48)"))
        })?;
        if net.trunc() != net {
            return Err(Error::config(format!(
                "{p}: {text} has host bits set; write its network {} (or {}/{} for the single address)",
                net.trunc(),
                net.addr(),
                net.max_prefix_len()
            )));
        }
        let (family, present, field) = match net {
            IpNet::V4(_) => ("IPv4", ipv4, "ipv4"),
            IpNet::V6(_) => ("IPv6", ipv6, "ipv6"),
        };
        if !present {
            return Err(Error::config(format!(
                "{p}: {net} is {family} but the host session has no {family} (localcidr.{field} is not set)"
            )));
        }
        if let Some(j) = out.iter().position(|o| *o == net) {
            return Err(Error::config(format!("{p}: {net} is already {path}[{j}]")));
        }
        out.push(net);
    }
    Ok(out)
}

/// `maxPrefixesRestartMinutes`, given (`Some((minutes, path))`) or not, for a `maxPrefixes` given or not: it
/// means nothing without `maxPrefixes`, so it is refused alone rather than ignored.
pub(crate) fn restart_minutes(given: Option<(u16, String)>, max_prefixes: Option<u32>) -> Result<u16> {
    match (given, max_prefixes) {
        (None, _) => Ok(DEFAULT_RESTART_MINUTES),
        (Some((m, _)), Some(_)) => Ok(m),
        (Some((_, p)), None) => Err(Error::config(format!(
            "{p}: only has a meaning with maxPrefixes (the session FRR closes for too many prefixes is \
             reopened after it); set maxPrefixes or remove it"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "l3passthrough.hostsession.allowedPrefixes";

    fn msg(r: Result<Vec<IpNet>>) -> String {
        r.unwrap_err().msg
    }

    #[test]
    fn allowed_prefixes_accepted() {
        let v = allowed_prefixes(&["172.31.0.0/16", "2001:db8:88::/48", "0.0.0.0/0", "10.9.9.9/32"], P, true, true)
            .unwrap();
        assert_eq!(
            v.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
            ["172.31.0.0/16", "2001:db8:88::/48", "0.0.0.0/0", "10.9.9.9/32"]
        );
        assert!(allowed_prefixes::<&str>(&[], P, true, false).unwrap().is_empty());
    }

    #[test]
    fn allowed_prefixes_refused_with_the_entry_named() {
        let m = msg(allowed_prefixes(&["172.31.0.0/16", "10.1.2.3/16"], P, true, true));
        assert!(m.starts_with(&format!("{P}[1]: 10.1.2.3/16 has host bits set")), "{m}");
        assert!(m.contains("10.1.0.0/16") && m.contains("10.1.2.3/32"), "{m}");
        let m = msg(allowed_prefixes(&["172.31.0.0/16", "2001:db8::/32"], P, true, false));
        assert!(m.starts_with(&format!("{P}[1]: 2001:db8::/32 is IPv6")), "{m}");
        assert!(m.contains("localcidr.ipv6"), "{m}");
        let m = msg(allowed_prefixes(&["10.0.0.0/8"], P, false, true));
        assert!(m.starts_with(&format!("{P}[0]: 10.0.0.0/8 is IPv4")), "{m}");
        let m = msg(allowed_prefixes(&["10.0.0.0/8", "10.0.0.0/8"], P, true, false));
        assert_eq!(m, format!("{P}[1]: 10.0.0.0/8 is already {P}[0]"));
        for bad in ["10.0.0.0", "10.0.0.0/33", "any", ""] {
            let m = msg(allowed_prefixes(&[bad], P, true, true));
            assert!(m.starts_with(&format!("{P}[0]: ")) && m.contains("is not a CIDR"), "{m}");
        }
    }

    #[test]
    fn restart_minutes_needs_max_prefixes() {
        assert_eq!(restart_minutes(None, None).unwrap(), 5);
        assert_eq!(restart_minutes(None, Some(10)).unwrap(), 5);
        assert_eq!(restart_minutes(Some((2, "x.maxPrefixesRestartMinutes".into())), Some(10)).unwrap(), 2);
        let e = restart_minutes(Some((2, "x.maxPrefixesRestartMinutes".into())), None).unwrap_err();
        assert!(e.msg.starts_with("x.maxPrefixesRestartMinutes: only has a meaning with maxPrefixes"), "{}", e.msg);
    }

    /// Through the configuration parser: each field is read under its name and refused naming it.
    mod parsed {
        use serde_json::{json, Value};

        use crate::config::Passthrough;
        use crate::error::{Input, Kind};

        fn conf(limits: Value) -> Value {
            let mut hs = json!({"asn": 64514, "hostasn": 64515, "localcidr": {"ipv4": "192.169.10.0/24"}});
            for (k, v) in limits.as_object().unwrap() {
                hs[k] = v.clone();
            }
            json!({"cniVersion": "1.0.0", "name": "openpe",
                "underlay": {"asn": 64514, "nics": ["toswitch"], "neighbors": [{"asn": 64512, "address": "192.168.11.2"}]},
                "l3passthrough": {"hostsession": hs}})
        }

        fn refused(limits: Value, starts: &str) {
            let e = Passthrough::parse(&conf(limits.clone())).unwrap_err();
            assert_eq!(e.kind, Kind::Invalid(Input::Config), "{limits}: {}", e.msg);
            assert!(e.msg.starts_with(starts), "{limits}: {:?} does not start with {starts:?}", e.msg);
        }

        const HS: &str = "l3passthrough.hostsession";

        #[test]
        fn accepted() {
            let hs = Passthrough::parse(&conf(json!({}))).unwrap().host_session;
            assert_eq!(hs.limits, super::HostLimits::default());
            let hs = Passthrough::parse(&conf(json!({"allowedPrefixes": ["172.31.0.0/16"], "maxPrefixes": 100,
                "maxPrefixesRestartMinutes": 2})))
            .unwrap()
            .host_session;
            assert_eq!(hs.limits.allowed_prefixes, Some(vec!["172.31.0.0/16".parse().unwrap()]));
            assert_eq!((hs.limits.max_prefixes, hs.limits.max_prefixes_restart_minutes), (Some(100), 2));
            // The seed's lowercase style is read too: an ignored limit would fail open.
            let hs = Passthrough::parse(&conf(json!({"allowedprefixes": [], "maxprefixes": 1}))).unwrap().host_session;
            assert_eq!(hs.limits.allowed_prefixes, Some(vec![]));
            assert_eq!((hs.limits.max_prefixes, hs.limits.max_prefixes_restart_minutes), (Some(1), 5));
            // null is absent, as for every field.
            let hs = Passthrough::parse(&conf(json!({"allowedPrefixes": null}))).unwrap().host_session;
            assert_eq!(hs.limits.allowed_prefixes, None);
        }

        #[test]
        fn refused_naming_the_field() {
            refused(
                json!({"allowedPrefixes": ["172.31.0.0/16", "10.1.2.3/16"]}),
                &format!("{HS}.allowedPrefixes[1]: "),
            );
            refused(json!({"allowedPrefixes": ["2001:db8::/32"]}), &format!("{HS}.allowedPrefixes[0]: "));
            refused(
                json!({"allowedPrefixes": [5]}),
                &format!("{HS}.allowedPrefixes[0]: invalid type: integer `5`, expected a string"),
            );
            refused(
                json!({"allowedPrefixes": "172.31.0.0/16"}),
                &format!("{HS}.allowedPrefixes: invalid type: string"),
            );
            refused(json!({"allowedprefixes": ["x"]}), &format!("{HS}.allowedPrefixes[0]: "));
            refused(
                json!({"allowedPrefixes": [], "allowedprefixes": []}),
                &format!("{HS}: duplicate field `allowedPrefixes`"),
            );
            refused(
                json!({"maxPrefixes": 0}),
                &format!("{HS}.maxPrefixes: must be a whole number from 1 to 4294967295"),
            );
            refused(json!({"maxPrefixes": 4294967296u64}), &format!("{HS}.maxPrefixes: "));
            refused(json!({"maxPrefixes": "10"}), &format!("{HS}.maxPrefixes: "));
            refused(
                json!({"maxPrefixes": 10, "maxPrefixesRestartMinutes": 0}),
                &format!("{HS}.maxPrefixesRestartMinutes: must be a whole number from 1 to 65535"),
            );
            refused(
                json!({"maxPrefixesRestartMinutes": 3}),
                &format!("{HS}.maxPrefixesRestartMinutes: only has a meaning with maxPrefixes"),
            );
        }
    }

    #[test]
    fn per_family_and_serde_default() {
        let l = HostLimits {
            allowed_prefixes: Some(vec!["172.31.0.0/16".parse().unwrap(), "2001:db8::/32".parse().unwrap()]),
            ..HostLimits::default()
        };
        assert_eq!(l.allowed_in(true).unwrap(), vec!["172.31.0.0/16".parse::<IpNet>().unwrap()]);
        assert_eq!(l.allowed_in(false).unwrap(), vec!["2001:db8::/32".parse::<IpNet>().unwrap()]);
        assert_eq!(HostLimits::default().allowed_in(true), None);
        // A record written before the limits existed reads as "no limits".
        let old: HostLimits = serde_json::from_str("{}").unwrap();
        assert_eq!(old, HostLimits::default());
    }
}
