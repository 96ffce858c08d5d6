//! CHECK (0.4.0+): verify that the attachment is still what ADD made; name everything that drifted.

use ipnet::IpNet;

use crate::addressing;
use crate::cni::Env;
use crate::cni::Envelope;
use crate::config::{HOST_IFNAME, ROUTER_IFNAME};
use crate::datapath::Side;
use crate::error::{Error, Input, Kind, Result};
use crate::netns::Netns;
use crate::state::{Phase, StateDir};

pub fn check(env: &Env, envelope: &Envelope) -> Result<()> {
    let pt = envelope.passthrough()?;
    if envelope.prev_result.is_none() {
        return Err(Error::config("prevResult: CHECK needs the result of ADD as prevResult"));
    }
    let netns_path = env.netns.as_ref().expect("CNI_NETNS is required for CHECK");
    let (router_ns, router_nl) = Netns::open_with_netlink(netns_path, Input::Runtime, "CNI_NETNS")?;
    let state = StateDir::open_locked(&envelope.settings.state_dir)?;
    let key = super::key(env, envelope);
    // Found by network and container id, whatever CNI_IFNAME says; the one in CNI_NETNS if there are several.
    let mut records = state.find(&key.network, &key.container_id)?;
    let at = records.iter().position(|r| r.netns.same_ns(&router_ns.id)).unwrap_or(0);
    if records.is_empty() {
        return Err(Error::new(Kind::UnknownAttachment, format!("no attachment is recorded for {key}")));
    }
    let rec = records.swap_remove(at);

    let mut drift: Vec<String> = Vec::new();
    if rec.phase != Phase::Complete {
        drift.push("the record says its ADD never finished".into());
    }
    if !router_ns.id.same_ns(&rec.netns) {
        drift.push(format!(
            "CNI_NETNS {} is not the recorded router namespace {}",
            netns_path.display(),
            rec.netns.path.display()
        ));
    }
    let expected = addressing::veth_addresses(&pt.host_session, rec.node_index)?;
    if expected != rec.addresses {
        drift.push(
            "the configuration's localcidr no longer gives the recorded addresses (DEL and ADD to apply it)".into(),
        );
    }
    if pt.underlay.nics != rec.nics.iter().map(|n| n.name.clone()).collect::<Vec<_>>() {
        drift.push("underlay.nics differs from the NICs this attachment moved (DEL and ADD to apply it)".into());
    }
    let wanted = pt.underlay.cni_devices.iter().map(|d| (&d.conflist, &d.interface_name, &d.runtime_config));
    if wanted.ne(rec.delegates.iter().map(|d| (&d.conflist, &d.ifname, &d.runtime_config))) {
        drift.push(
            "underlay.interfaces[].cniDevice differs from what this attachment delegated (DEL and ADD to apply it)"
                .into(),
        );
    }
    if let Some((ns, nl)) = Netns::open_recorded(&rec.host_netns, "host namespace")? {
        let mut host = Side { ns, nl };
        check_link(&mut host, HOST_IFNAME, Some(&rec.veth_alias()), &rec.addresses.host, &mut drift)?;
        for nic in &rec.nics {
            if host.link(&nic.name)?.is_some_and(|l| l.mac == nic.mac) {
                drift.push(format!("NIC {} is back in the host namespace", nic.name));
            }
        }
    } else {
        drift.push(format!("the host namespace {} is gone", rec.host_netns.path.display()));
    }
    let mut router = Side { ns: router_ns, nl: router_nl };
    check_link(&mut router, ROUTER_IFNAME, Some(&rec.veth_alias()), &rec.addresses.router, &mut drift)?;
    for nic in &rec.nics {
        check_link(&mut router, &nic.name, None, &nic.addresses, &mut drift)?;
    }
    super::delegate::check(&rec, &mut drift, envelope.settings.delegate_timeout);
    for key in ["net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding"] {
        if router.ns.read_sysctl(key)? != "1" {
            drift.push(format!("{key} is off in the router namespace"));
        }
    }
    if drift.is_empty() {
        Ok(())
    } else {
        Err(Error::new(Kind::Kernel(None), format!("CHECK of {key} failed: {}", drift.join("; "))))
    }
}

fn check_link(
    side: &mut Side,
    name: &str,
    alias: Option<&str>,
    addrs: &[IpNet],
    drift: &mut Vec<String>,
) -> Result<()> {
    let where_ = side.ns.id.path.display().to_string();
    let Some(link) = side.link(name)? else {
        drift.push(format!("{name} is missing from {where_}"));
        return Ok(());
    };
    if alias.is_some() && (!crate::datapath::is_ours(&link) || link.alias.as_deref() != alias) {
        drift.push(format!("{name} in {where_} is not the link this attachment made"));
    }
    if !link.up {
        drift.push(format!("{name} in {where_} is down"));
    }
    let have = side.nl.addresses(link.index)?;
    for a in addrs {
        if !have.contains(a) {
            drift.push(format!("{name} in {where_} lacks address {a}"));
        }
    }
    Ok(())
}
