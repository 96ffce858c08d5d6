//! The datapath: the veth pair, the NICs moved into the router namespace and back, forwarding. Setting up is
//! a sequence of steps that stop at the first failure; tearing down is best-effort and idempotent (a missing
//! link, address or namespace counts as done) and reports every failure together.

use ipnet::IpNet;

use crate::config::{HOST_IFNAME, ROUTER_IFNAME};
use crate::error::{Error, Input, Result};
use crate::fault;
use crate::netlink::{Link, Netlink};
use crate::netns::Netns;
use crate::state::{NicState, Record};
use crate::{log_info, log_warn};

/// The link group of both veth ends: it marks them as this plugin's from the instant they exist, so cleanup
/// never removes a `pt-host` or `pt-ns` that someone else made. (Upstream marks the NICs it manages 4242.)
pub const VETH_GROUP: u32 = 4243;

/// Ours: the plugin's group. The alias names the attachment, for people.
pub fn is_ours(link: &Link) -> bool {
    link.group == VETH_GROUP
}

/// A namespace opened for work: the namespace and a netlink socket inside it.
pub struct Side {
    pub ns: Netns,
    pub nl: Netlink,
}

impl Side {
    pub fn open(ns: Netns) -> Result<Side> {
        let nl = ns.netlink()?;
        Ok(Side { ns, nl })
    }

    fn path(&self) -> String {
        self.ns.id.path.display().to_string()
    }

    pub fn link(&mut self, name: &str) -> Result<Option<Link>> {
        Ok(self.nl.link_by_name(name)?)
    }
}

/// Read what DEL will need to put a NIC back: addresses, MTU, admin state, MAC and the routes through it.
pub fn snapshot_nic(host: &mut Side, name: &str, field: &str) -> Result<(NicState, Link)> {
    let path = host.path();
    let link = host.link(name)?.ok_or_else(|| {
        Error::config(format!("{field}: there is no interface {name:?} in the host namespace {path}"))
    })?;
    let addresses = host.nl.addresses(link.index)?;
    let routes = host.nl.routes_via(link.index)?;
    let state =
        NicState { name: link.name.clone(), mac: link.mac.clone(), mtu: link.mtu, up: link.up, addresses, routes };
    Ok((state, link))
}

fn add_addresses(side: &mut Side, index: u32, addrs: &[IpNet], ifname: &str) -> Result<()> {
    for a in addrs {
        match side.nl.add_address(index, *a) {
            Ok(()) => {}
            Err(e) if e.is(libc::EEXIST) => {}
            Err(e) => return Err(Error::from(e).context(format!("configuring {ifname}"))),
        }
    }
    Ok(())
}

/// Step 2 of ADD: `pt-host` here with `pt-ns` made directly in the router namespace, then up and addressed.
/// Returns the two links as created.
pub fn create_veth(host: &mut Side, router: &mut Side, rec: &Record) -> Result<(Link, Link)> {
    let alias = rec.veth_alias();
    host.nl.create_veth(HOST_IFNAME, ROUTER_IFNAME, router.ns.fd(), rec.mtu, VETH_GROUP)?;
    let mut ends = Vec::new();
    for (side, name, addrs) in
        [(host, HOST_IFNAME, &rec.addresses.host), (router, ROUTER_IFNAME, &rec.addresses.router)]
    {
        let path = side.path();
        let link =
            side.link(name)?.ok_or_else(|| Error::kernel(format!("{name} vanished from {path} after creation")))?;
        if addrs.iter().any(|a| a.addr().is_ipv6()) {
            // No duplicate address detection on either end, for the link-local address too: it is a
            // point-to-point link we just made, and FRR waits for a usable link-local address before an IPv6
            // session starts (a second lost to DAD otherwise).
            side.ns.write_sysctl(&format!("net/ipv6/conf/{name}/accept_dad"), "0")?;
        }
        side.nl.set_up_with_alias(link.index, &alias)?;
        add_addresses(side, link.index, addrs, name)?;
        ends.push(Link { up: true, alias: Some(alias.clone()), ..link });
    }
    let router_link = ends.pop().expect("two ends");
    let host_link = ends.pop().expect("two ends");
    Ok((host_link, router_link))
}

/// Step 3 of ADD: move a NIC into the router namespace and give it back its addresses there, up.
/// MTU and MAC survive the move; addresses and routes do not.
pub fn move_nic_in(host: &mut Side, router: &mut Side, nic: &NicState, index: u32) -> Result<Link> {
    let rpath = router.path();
    host.nl.move_to_netns(index, router.ns.fd(), &format!("moving {} into the router namespace {rpath}", nic.name))?;
    let link = router
        .link(&nic.name)?
        .ok_or_else(|| Error::kernel(format!("{} is not in {rpath} after the move", nic.name)))?;
    add_addresses(router, link.index, &nic.addresses, &nic.name)?;
    router.nl.set_up(link.index, true)?;
    Ok(link)
}

/// Step 4 of ADD: the router forwards, in both families.
pub fn enable_forwarding(router: &Side) -> Result<()> {
    router.ns.write_sysctls(&[("net/ipv4/ip_forward", "1"), ("net/ipv6/conf/all/forwarding", "1")])?;
    fault::point("add:forwarding-set");
    Ok(())
}

/// The namespaces a teardown can reach: each only if it is still the recorded one.
pub struct Reach {
    pub host: Option<Side>,
    pub router: Option<Side>,
    /// The initial namespace, where the kernel returns physical NICs of a destroyed namespace.
    pub init: Option<Side>,
}

impl Reach {
    pub fn open(rec: &Record) -> Reach {
        let open_alive = |id: &crate::netns::NsId| -> Option<Side> {
            if !id.is_alive() {
                return None;
            }
            let ns = Netns::open(&id.path, Input::Runtime, "recorded namespace").ok()?;
            if !ns.id.same_ns(id) {
                return None;
            }
            Side::open(ns).ok()
        };
        let host = open_alive(&rec.host_netns);
        let router = open_alive(&rec.netns);
        let init = if router.is_none() {
            Netns::open(std::path::Path::new("/proc/1/ns/net"), Input::Runtime, "the initial namespace").ok().and_then(
                |ns| {
                    // Only useful when it is not the host namespace itself.
                    if host.as_ref().is_some_and(|h| h.ns.id.same_ns(&ns.id)) {
                        None
                    } else {
                        Side::open(ns).ok()
                    }
                },
            )
        } else {
            None
        };
        Reach { host, router, init }
    }
}

/// Put one NIC back in the host namespace as it was recorded. Where it is found decides what to do: in the
/// router namespace (normal DEL), in the initial namespace (the router namespace was destroyed and the kernel
/// gave a physical NIC back), or already in the host namespace (an ADD interrupted before or after moving it).
fn return_nic(reach: &mut Reach, nic: &NicState) -> Result<()> {
    let matches = |l: &Link| l.mac == nic.mac;
    let Some(host) = reach.host.as_mut() else {
        log_warn!("host namespace of {} is gone; nothing to restore it into", nic.name);
        return Ok(());
    };
    let host_fd = host.ns.fd();
    let hpath = host.path();
    for away in [reach.router.as_mut(), reach.init.as_mut()].into_iter().flatten() {
        if let Some(l) = away.link(&nic.name)?.filter(matches) {
            away.nl.move_to_netns(
                l.index,
                host_fd,
                &format!("returning {} to the host namespace {hpath}", nic.name),
            )?;
            break;
        }
    }
    let Some(link) = host.link(&nic.name)?.filter(matches) else {
        // A virtual NIC (veth) dies with the router namespace; a physical one always comes back.
        log_warn!("{} ({}) is gone; it was not a physical NIC or was removed by someone else", nic.name, nic.mac);
        return Ok(());
    };
    if link.mtu != nic.mtu {
        host.nl.set_mtu(link.index, nic.mtu)?;
    }
    add_addresses(host, link.index, &nic.addresses, &nic.name)?;
    if link.up != nic.up {
        host.nl.set_up(link.index, nic.up)?;
    }
    for r in &nic.routes {
        match host.nl.add_route(link.index, r) {
            Ok(()) => {}
            Err(e) if e.is(libc::EEXIST) => {}
            Err(e) => return Err(Error::from(e).context(format!("restoring the routes of {}", nic.name))),
        }
    }
    fault::point("del:nic-restored");
    log_info!("restored {} in {hpath}", nic.name);
    Ok(())
}

/// Remove one of our veth ends if it is there and carries our mark (never a link someone else made).
fn remove_veth_end(side: &mut Side, name: &str) -> Result<bool> {
    let path = side.path();
    match side.link(name)? {
        Some(l) if is_ours(&l) => match side.nl.delete_link(l.index, &format!("deleting {name}")) {
            Ok(()) => Ok(true),
            Err(e) if e.not_found() => Ok(true),
            Err(e) => Err(Error::from(e)),
        },
        Some(_) => {
            log_warn!("{name} in {path} was not made by this plugin (link group is not {VETH_GROUP}); leaving it");
            Ok(false)
        }
        None => Ok(false),
    }
}

/// Undo everything a record describes, in order: NICs back, then the veth pair. Best-effort: every step is
/// tried, failures are reported together. The caller removes claims and record only when this succeeds.
pub fn teardown(rec: &Record) -> Result<()> {
    let mut reach = Reach::open(rec);
    let mut errors = Vec::new();
    for nic in &rec.nics {
        if let Err(e) = return_nic(&mut reach, nic) {
            errors.push(e.context(format!("returning {}", nic.name)));
        }
    }
    let mut removed = false;
    if let Some(host) = reach.host.as_mut() {
        match remove_veth_end(host, HOST_IFNAME) {
            Ok(r) => removed = r,
            Err(e) => errors.push(e),
        }
    }
    if !removed {
        if let Some(router) = reach.router.as_mut() {
            if let Err(e) = remove_veth_end(router, ROUTER_IFNAME) {
                errors.push(e);
            }
        }
    }
    fault::point("del:veth-removed");
    match Error::join(errors) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
