//! CNI results: what ADD prints, in the format of the requested version, keeping a chained `prevResult`.

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::{json, Map, Value};

use super::version_at_least;
use crate::error::{Error, Result};

/// One interface this plugin reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub mac: String,
    pub mtu: u32,
    /// The namespace path for interfaces inside the container (the router namespace), None on the host.
    pub sandbox: Option<String>,
}

/// One address this plugin reports, on one of its interfaces (index into its own `interfaces`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpConfig {
    pub address: IpNet,
    pub interface: usize,
}

/// What this plugin adds to a result.
#[derive(Debug, Clone, Default)]
pub struct Additions {
    pub interfaces: Vec<Interface>,
    pub ips: Vec<IpConfig>,
}

fn family_version(addr: &IpAddr) -> &'static str {
    if addr.is_ipv4() {
        "4"
    } else {
        "6"
    }
}

/// Build the result in `cni_version`'s format: the previous result's interfaces, IPs, routes and DNS first,
/// untouched, then this plugin's additions with their interface indexes shifted past the previous ones.
pub fn build(cni_version: &str, prev: Option<&Value>, add: &Additions) -> Result<Value> {
    let mut interfaces: Vec<Value> = Vec::new();
    let mut ips: Vec<Value> = Vec::new();
    let mut out = Map::new();
    if let Some(prev) = prev {
        let prev = prev
            .as_object()
            .ok_or_else(|| Error::config("prevResult must be a JSON object (the previous plugin's result)"))?;
        for (k, v) in prev {
            match k.as_str() {
                "interfaces" => interfaces = array_of(v, "prevResult.interfaces")?,
                "ips" => ips = array_of(v, "prevResult.ips")?,
                "cniVersion" => {}
                _ => {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
    }
    let offset = interfaces.len();
    let with_mtu = version_at_least(cni_version, "1.1.0");
    let with_ip_version = !version_at_least(cni_version, "1.0.0");
    for i in &add.interfaces {
        let mut v = json!({ "name": i.name, "mac": i.mac });
        if let Some(s) = &i.sandbox {
            v["sandbox"] = s.clone().into();
        }
        if with_mtu && i.mtu > 0 {
            v["mtu"] = i.mtu.into();
        }
        interfaces.push(v);
    }
    for ip in &add.ips {
        let mut v = json!({ "address": ip.address.to_string(), "interface": ip.interface + offset });
        if with_ip_version {
            v["version"] = family_version(&ip.address.addr()).into();
        }
        ips.push(v);
    }
    out.insert("cniVersion".into(), cni_version.into());
    out.insert("interfaces".into(), Value::Array(interfaces));
    if !ips.is_empty() {
        out.insert("ips".into(), Value::Array(ips));
    }
    Ok(Value::Object(out))
}

/// A previous result must be an object whose `interfaces` and `ips`, when present, are arrays.
pub(crate) fn check_prev(prev: &Value, field: &str) -> Result<()> {
    let obj = prev
        .as_object()
        .ok_or_else(|| Error::config(format!("{field}: must be a JSON object (the previous plugin's result)")))?;
    for key in ["interfaces", "ips"] {
        if let Some(v) = obj.get(key) {
            array_of(v, &format!("{field}.{key}"))?;
        }
    }
    Ok(())
}

fn array_of(v: &Value, field: &str) -> Result<Vec<Value>> {
    match v {
        Value::Array(a) => Ok(a.clone()),
        Value::Null => Ok(Vec::new()),
        _ => Err(Error::config(format!("{field} must be an array"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn additions() -> Additions {
        Additions {
            interfaces: vec![
                Interface { name: "pt-host".into(), mac: "aa:bb:cc:dd:ee:01".into(), mtu: 1500, sandbox: None },
                Interface {
                    name: "pt-ns".into(),
                    mac: "aa:bb:cc:dd:ee:02".into(),
                    mtu: 1500,
                    sandbox: Some("/var/run/netns/r".into()),
                },
            ],
            ips: vec![IpConfig { address: "192.169.10.1/24".parse().unwrap(), interface: 1 }],
        }
    }

    #[test]
    fn formats_follow_the_version() {
        let old = build("0.3.1", None, &additions()).unwrap();
        assert_eq!(old["ips"][0]["version"], "4");
        assert!(old["interfaces"][0].get("mtu").is_none());
        let v1 = build("1.0.0", None, &additions()).unwrap();
        assert!(v1["ips"][0].get("version").is_none());
        assert!(v1["interfaces"][1].get("mtu").is_none());
        let v11 = build("1.1.0", None, &additions()).unwrap();
        assert_eq!(v11["interfaces"][1]["mtu"], 1500);
        assert_eq!(v11["interfaces"][1]["sandbox"], "/var/run/netns/r");
        assert!(v11["interfaces"][0].get("sandbox").is_none());
    }

    #[test]
    fn chained_result_keeps_everything_before() {
        let prev = json!({
            "cniVersion": "1.0.0",
            "interfaces": [{"name": "veth1", "mac": "x"}, {"name": "eth0", "sandbox": "/ns"}],
            "ips": [{"address": "10.1.0.5/24", "gateway": "10.1.0.1", "interface": 1}],
            "routes": [{"dst": "0.0.0.0/0"}],
            "dns": {"nameservers": ["10.1.0.1"]}
        });
        let r = build("1.0.0", Some(&prev), &additions()).unwrap();
        assert_eq!(r["interfaces"].as_array().unwrap().len(), 4);
        assert_eq!(r["ips"][0]["gateway"], "10.1.0.1");
        assert_eq!(r["ips"][1]["interface"], 3);
        assert_eq!(r["routes"][0]["dst"], "0.0.0.0/0");
        assert_eq!(r["dns"]["nameservers"][0], "10.1.0.1");
    }
}
