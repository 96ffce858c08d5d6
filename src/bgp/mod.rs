//! BGP for the router namespace: the FRR configuration that an attachment's settings produce.
//!
//! The renderer is pure: typed, validated configuration in, FRR configuration text out. Nothing here touches
//! FRR, the kernel or the state directory; the sidecar ([`crate::sidecar`]) applies the text and
//! `openpe-passthrough render` prints it.

pub mod fabric;
mod peers;
pub mod render;
mod safety;

pub(crate) use render::mask;
pub use render::{diff, render, unconfigured, Secrets};

use serde_json::Value;

use crate::addressing::veth_addresses;
use crate::config::Passthrough;
use crate::error::{Error, Result};

/// The configuration a network configuration produces for `node_index` (or the configuration's own
/// `nodeIndex`, else 0), for `openpe-passthrough render`. A configuration list (`plugins`) is searched for the
/// openpe-passthrough plugin. Touches nothing.
pub fn render_netconf(netconf: &Value, node_index: Option<u32>, secrets: Secrets) -> Result<String> {
    let conf = match netconf.get("plugins").and_then(Value::as_array) {
        Some(plugins) => {
            plugins.iter().find(|p| p.get("type").and_then(Value::as_str) == Some("openpe-passthrough")).ok_or_else(
                || Error::config("plugins: the configuration list has no plugin of type \"openpe-passthrough\""),
            )?
        }
        None => netconf,
    };
    let pt = Passthrough::parse(conf)?;
    let index = node_index.or(pt.node_index).unwrap_or(0);
    let addrs = veth_addresses(&pt.host_session, index)?;
    render(&pt.underlay, &pt.host_session, index, &addrs, secrets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A neighbor whose password is in a Secret renders masked for people, and never for FRR here: only the
    /// sidecar reads the Secret.
    #[test]
    fn a_password_secret_is_masked_and_never_rendered_unread() {
        let mut v: Value = serde_json::from_str(include_str!("../../netconf/10-openpe-dualstack.conf")).unwrap();
        let n = &mut v["underlay"]["neighbors"][0];
        n.as_object_mut().unwrap().remove("password");
        n["passwordSecret"] = json!({"name": "tor", "key": "md5"});
        let a = n["address"].as_str().unwrap().to_string();
        let masked = render_netconf(&v, Some(1), Secrets::Mask).unwrap();
        assert!(masked.contains(&format!(" neighbor {a} password {}\n", render::MASK)), "{masked}");
        let e = render_netconf(&v, Some(1), Secrets::Show).unwrap_err();
        assert!(
            e.msg.starts_with(
                "underlay.neighbors[0].passwordSecret: the password is in the Secret \"tor\" (key \"md5\")"
            ),
            "{}",
            e.msg
        );
    }
}
