//! ADD: validate everything, record the intent, then change the kernel; on any failure undo what was done.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::addressing::{self, host_number};
use crate::cni::result::{self, Additions, Interface, IpConfig};
use crate::cni::Env;
use crate::cni::Envelope;
use crate::config::{Passthrough, HOST_IFNAME, ROUTER_IFNAME};
use crate::datapath::{self, Side};
use crate::error::{Error, Input, Kind, Result};
use crate::netns::{Netns, NsId};
use crate::state::{bgp_from_config, Claim, IndexSource, Key, NicState, Phase, Record, StateDir, FORMAT_VERSION};
use crate::{log_info, log_warn};

use super::remove_attachment;

pub fn add(env: &Env, envelope: &Envelope) -> Result<Value> {
    // 1. Everything that can be checked without changing anything.
    let pt = envelope.passthrough()?;
    let netns_path = env.netns.as_ref().expect("CNI_NETNS is required for ADD");
    // Each namespace is opened with its netlink socket in one visit (none for the plugin's own namespace).
    let (router_ns, router_nl) = Netns::open_with_netlink(netns_path, Input::Runtime, "CNI_NETNS")?;
    let (host_ns, host_nl) = match &pt.host_netns {
        Some(p) => Netns::open_with_netlink(p, Input::Config, "hostNetns")?,
        None => {
            let ns = Netns::current()?;
            let nl = ns.netlink()?;
            (ns, nl)
        }
    };
    if router_ns.id.same_ns(&host_ns.id) {
        return Err(Error::config(format!(
            "hostNetns: {} is the router namespace itself (CNI_NETNS); the host side must be another namespace",
            host_ns.id.path.display()
        )));
    }
    let key = super::key(env, envelope);
    let state = StateDir::open_locked(&envelope.settings.state_dir)?;
    let limit = envelope.settings.delegate_timeout;

    // 2. Earlier attachments in the way: the same network and container (whatever their ifname), the same router
    //    namespace, the same host namespace.
    clear_the_way(&state, &key, &router_ns.id, &host_ns.id, limit)?;

    let mut host = Side { ns: host_ns, nl: host_nl };
    let mut router = Side { ns: router_ns, nl: router_nl };

    // 3. The links must be where we expect them; read what DEL will need to restore.
    for (name, side) in [(HOST_IFNAME, &mut host), (ROUTER_IFNAME, &mut router)] {
        if side.link(name)?.is_some() {
            return Err(Error::busy(format!(
                "{name} already exists in {}, and no attachment of this plugin records it; remove it or DEL its attachment first",
                side.ns.id.path.display()
            )));
        }
    }
    let fields: Vec<String> = (0..pt.underlay.nics.len()).map(|i| pt.underlay.nic_field(i)).collect();
    let nics = datapath::snapshot_nics(&mut host, &pt.underlay.nics, &fields)?;
    for (name, field) in pt.underlay.nics.iter().zip(&fields) {
        if router.link(name)?.is_some() {
            return Err(Error::busy(format!(
                "{field}: the router namespace {} already has an interface named {name:?}",
                router.ns.id.path.display()
            )));
        }
    }

    let delegates = super::delegate::plan(&key, &pt.underlay, &mut router)?;

    // 4. The node index (an underlay NIC named by nodeIndexFrom was just read) and the addresses it gives.
    let (node_index, index_source) = node_index(env, envelope, &pt, &state, &mut host, &nics)?;
    let addresses = addressing::veth_addresses(&pt.host_session, node_index)?;
    addressing::router_id(pt.underlay.router_id_cidr, node_index)?;

    // 5. Record the intent before the first kernel change, then claim index and namespaces.
    let (underlay, host_session) = bgp_from_config(&pt.underlay, &pt.host_session);
    let mut rec = Record {
        stem: key.stem(),
        format: FORMAT_VERSION,
        boot_id: state.boot_id().to_string(),
        phase: Phase::InProgress,
        key: key.clone(),
        cni_version: envelope.cni_version.clone(),
        netns: router.ns.id.clone(),
        host_netns: host.ns.id.clone(),
        node_index,
        index_source,
        addresses,
        mtu: pt.mtu,
        nics: nics.iter().map(|(n, _)| n.clone()).collect(),
        underlay,
        host_session,
        created_unix: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        delegates,
    };
    state.save(&rec)?;
    let claimed = (|| -> Result<()> {
        state.claim(Claim::Index, &node_index.to_string(), &rec)?;
        if index_source == IndexSource::Allocated {
            state.advance_hint(node_index);
        }
        state.claim(Claim::Netns, &rec.netns.key(), &rec)?;
        state.claim(Claim::HostNetns, &rec.host_netns.key(), &rec)
    })();
    if let Err(e) = claimed {
        return Err(roll_back(&state, &rec, limit, e, "before changing the kernel"));
    }

    // 6. The kernel. Any failure undoes this ADD completely.
    let mut additions = match configure(&mut host, &mut router, &state, &mut rec, &nics) {
        Ok(a) => a,
        Err(e) => return Err(roll_back(&state, &rec, limit, e, "while changing the kernel")),
    };
    // The underlay interfaces made by delegation (CNIDevice), their results recorded as they come.
    if let Err(e) = super::delegate::add(&state, &mut rec, &host.ns, &mut additions, limit) {
        return Err(roll_back(&state, &rec, limit, e, "while running the delegated plugins"));
    }

    // 7. Done: the result is built, the record says complete, and the runtime gets the result.
    let result = match result::build(&envelope.cni_version, envelope.prev_result.as_ref(), &additions) {
        Ok(r) => r,
        Err(e) => return Err(roll_back(&state, &rec, limit, e, "after changing the kernel")),
    };
    rec.phase = Phase::Complete;
    if let Err(e) = state.save(&rec) {
        return Err(roll_back(&state, &rec, limit, e, "after changing the kernel"));
    }
    log_info!("added attachment {} with node index {node_index} ({index_source})", rec.key);
    Ok(result)
}

/// The kernel steps of ADD, in order; returns what the result reports. Each NIC's ifindex in the router
/// namespace is saved in the record as soon as it is there (DEL finds the NIC by it, whatever it is renamed to).
fn configure(
    host: &mut Side,
    router: &mut Side,
    state: &StateDir,
    rec: &mut Record,
    nics: &[(NicState, u32)],
) -> Result<Additions> {
    let (host_link, router_link) = datapath::create_veth(host, router, rec)?;
    let sandbox = Some(router.ns.id.path.display().to_string());
    let mut add = Additions::default();
    add.interfaces.push(Interface { name: host_link.name, mac: host_link.mac, mtu: host_link.mtu, sandbox: None });
    add.interfaces.push(Interface {
        name: router_link.name,
        mac: router_link.mac,
        mtu: router_link.mtu,
        sandbox: sandbox.clone(),
    });
    add.ips.extend(rec.addresses.router.iter().map(|a| IpConfig { address: *a, interface: 1 }));
    for (n, (nic, index)) in nics.iter().enumerate() {
        let link = datapath::move_nic_in(host, router, nic, *index)?;
        rec.nics[n].router_index = Some(link.index);
        state.save(rec)?;
        let i = add.interfaces.len();
        add.interfaces.push(Interface { name: link.name, mac: link.mac, mtu: link.mtu, sandbox: sandbox.clone() });
        add.ips.extend(nic.addresses.iter().map(|a| IpConfig { address: *a, interface: i }));
    }
    datapath::enable_forwarding(router)?;
    Ok(add)
}

/// Undo a failed ADD. When the undo fails too, the record stays so that DEL finishes the job, and the error
/// says so.
fn roll_back(state: &StateDir, rec: &Record, delegate_timeout: Duration, cause: Error, when: &str) -> Error {
    log_warn!("ADD of {} failed {when} ({}); undoing it", rec.key, cause.msg);
    match remove_attachment(state, rec, delegate_timeout) {
        Ok(()) => cause,
        Err(e) => Error::new(
            Kind::RollbackIncomplete,
            format!(
                "{}; undoing the ADD failed too ({}): run DEL for this attachment to finish cleaning up",
                cause.msg, e.msg
            ),
        ),
    }
}

/// Liveness of a recorded attachment: both its namespaces still open to the recorded ones (by cookie, or by
/// inode for records written before the cookie).
fn alive(rec: &Record) -> bool {
    rec.netns.is_alive() && rec.host_netns.is_alive()
}

/// Deal with what an earlier attachment left in the way of this one:
/// - the same network and container id: complete and alive is a second ADD (refused, whatever CNI_IFNAME says:
///   the router namespace holds one attachment); in progress or dead is cleaned up;
/// - the same router or host namespace held by another attachment: alive and complete is refused, otherwise
///   cleaned up.
fn clear_the_way(state: &StateDir, key: &Key, router: &NsId, host: &NsId, delegate_timeout: Duration) -> Result<()> {
    for rec in state.find(&key.network, &key.container_id)? {
        if rec.phase == Phase::Complete && alive(&rec) {
            let msg = if rec.netns.same_ns(router) {
                format!("the attachment ({}) already exists; DEL it before adding it again", rec.key)
            } else {
                format!(
                    "container {:?} already has an attachment of network {:?} in another live router namespace {}; DEL it first",
                    key.container_id,
                    key.network,
                    rec.netns.path.display()
                )
            };
            return Err(Error::busy(msg));
        }
        log_warn!("cleaning up the earlier {:?} attachment of the same container ({})", rec.phase, rec.key);
        remove_attachment(state, &rec, delegate_timeout)
            .map_err(|e| e.context("cleaning up the earlier attachment of the same container"))?;
    }
    for (kind, id, what) in [(Claim::Netns, router, "router namespace"), (Claim::HostNetns, host, "host namespace")] {
        let Some((name, stem)) = state.ns_holder(kind, id)? else {
            continue;
        };
        let Some(other) = state.load_stem(&stem)? else {
            state.drop_orphan(kind, &name);
            continue;
        };
        if other.phase == Phase::Complete && alive(&other) {
            return Err(Error::busy(format!(
                "the {what} {} already holds an attachment ({}); one attachment per router and per host",
                id.path.display(),
                other.key
            )));
        }
        log_warn!("cleaning up attachment {} whose namespace is gone or whose ADD was interrupted", other.key);
        remove_attachment(state, &other, delegate_timeout)
            .map_err(|e| e.context(format!("cleaning up the stale attachment {}", other.key)))?;
    }
    Ok(())
}

/// The node index, first source that gives one wins (README, "The node index").
fn node_index(
    env: &Env,
    envelope: &Envelope,
    pt: &Passthrough,
    state: &StateDir,
    host: &mut Side,
    nics: &[(NicState, u32)],
) -> Result<(u32, IndexSource)> {
    let (index, source) = if let Some(i) = env.args.node_index {
        (i, IndexSource::CniArgs)
    } else if let Some(i) = envelope.args_node_index {
        (i, IndexSource::ArgsCni)
    } else if let Some(i) = envelope.runtime_node_index {
        (i, IndexSource::RuntimeConfig)
    } else if let Some(i) = pt.node_index {
        (i, IndexSource::Config)
    } else if let Some(from) = &pt.node_index_from {
        let addrs = match nics.iter().find(|(n, _)| n.name == from.interface) {
            Some((nic, _)) => nic.addresses.clone(),
            None => {
                let path = host.ns.id.path.display().to_string();
                let link = host.link(&from.interface)?.ok_or_else(|| {
                    Error::config(format!(
                        "nodeIndexFrom.interface: there is no interface {:?} in the host namespace {path}",
                        from.interface
                    ))
                })?;
                host.nl.addresses(link.index)?
            }
        };
        let n = addrs.iter().find_map(|a| host_number(&from.cidr, a.addr())).ok_or_else(|| {
            Error::config(format!(
                "nodeIndexFrom: {} has no address inside {} (it has {})",
                from.interface,
                from.cidr,
                if addrs.is_empty() {
                    "none".to_string()
                } else {
                    addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ")
                }
            ))
        })?;
        let n = u32::try_from(n).map_err(|_| Error::config(format!("nodeIndexFrom: host number {n} is too large")))?;
        (n, IndexSource::NodeIndexFrom)
    } else {
        return Ok((state.lowest_free_index()?, IndexSource::Allocated));
    };
    // An explicit index must not be held by another live attachment.
    if let Some(stem) = state.holder(Claim::Index, &index.to_string())? {
        match state.load_stem(&stem)? {
            None => state.drop_orphan(Claim::Index, &index.to_string()),
            Some(other) if other.phase == Phase::Complete && alive(&other) => {
                return Err(Error::busy(format!(
                    "node index {index} (from {source}) is already held by the live attachment {}; every node needs its own index",
                    other.key
                )))
            }
            Some(other) => {
                log_warn!("node index {index} is held by the stale attachment {}; cleaning it up", other.key);
                remove_attachment(state, &other, envelope.settings.delegate_timeout)?;
            }
        }
    }
    Ok((index, source))
}
