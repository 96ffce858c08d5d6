//! Closing an attachment's BGP sessions before it goes away: `neighbor X shutdown` for every neighbor the
//! sidecar configured, on bgpd's vty socket (vtysh when it does not answer). An administrative shutdown sends each peer a NOTIFICATION
//! (Cease, Administrative Shutdown), which is a hard reset: a graceful-restart peer flushes the routes at once
//! instead of keeping them stale. Then FRR is asked until it reports every one of them down (Idle).
//!
//! Three callers: DEL (through the handshake of src/drain.rs: the record turns `removing`, the sidecar drains
//! and acknowledges), `openpe-sidecar drain` (a pod's preStop hook), and the sidecar itself on SIGTERM.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use serde_json::Value;

use super::{Frr, Sidecar};
use crate::drain::Presence;
use crate::error::{Error, Kind, Result};
use crate::netns::{Netns, NsId};
use crate::state::{Claim, Phase, Record, StateDir};
use crate::{log_info, log_warn};

/// How long the sidecar waits for FRR to report the neighbors down when DEL asks (DEL itself waits at most
/// `drainTimeoutSeconds`).
const DEL_WAIT: Duration = Duration::from_secs(2);
/// The same on SIGTERM.
const TERM_WAIT: Duration = Duration::from_secs(5);

/// Every BGP neighbor the sidecar configures for `rec`: the underlay neighbors and the host session of each
/// family the host session has.
pub(crate) fn neighbors_of(rec: &Record) -> Vec<String> {
    let mut out: Vec<String> = rec.bgp_settings().0.peer_names();
    for h in &rec.addresses.host {
        let wanted = match h {
            IpNet::V4(_) => rec.host_session.ipv4.is_some(),
            IpNet::V6(_) => rec.host_session.ipv6.is_some(),
        };
        if wanted {
            out.push(h.addr().to_string());
        }
    }
    out
}

/// Shut down `neighbors` of `router bgp asn` (bgpd's vty socket, or vtysh), then wait at most `timeout` until FRR
/// reports each of them down.
pub fn drain(frr: &Frr, neighbors: &[String], asn: u32, timeout: Duration) -> Result<()> {
    if neighbors.is_empty() {
        return Ok(());
    }
    let mut commands = vec![format!("router bgp {asn}")];
    commands.extend(neighbors.iter().map(|n| format!("neighbor {n} shutdown")));
    frr.bgpd_configure(&commands)
        .map_err(|e| Error::io(format!("could not shut down the BGP neighbors {}: {}", neighbors.join(", "), e.msg)))?;
    let deadline = Instant::now() + timeout;
    loop {
        let up = still_up(frr, neighbors)?;
        if up.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::busy(format!(
                "FRR still reports BGP neighbors {} up {} ms after their shutdown",
                up.join(", "),
                timeout.as_millis()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The neighbors among `neighbors` that FRR does not report Idle. A neighbor FRR does not have has no session.
fn still_up(frr: &Frr, neighbors: &[String]) -> Result<Vec<String>> {
    let text = frr.bgpd_show("show bgp vrf default neighbors json")?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| Error::io(format!("vtysh's BGP neighbors are not JSON ({e}): {}", text.trim())))?;
    let all = v.as_object().ok_or_else(|| Error::io(format!("vtysh's BGP neighbors are not an object: {v}")))?;
    let mut up = Vec::new();
    for n in neighbors {
        let Some(peer) = all.get(n) else { continue };
        match peer.get("bgpState").and_then(Value::as_str) {
            Some("Idle") => {}
            Some(_) => up.push(n.clone()),
            None => return Err(Error::io(format!("vtysh reports BGP neighbor {n} without a bgpState: {peer}"))),
        }
    }
    Ok(up)
}

/// The attachment whose router namespace is `me`, with its record stem.
fn attachment(state_dir: &Path, me: &NsId) -> Result<Option<(String, Record)>> {
    if !state_dir.join("netns").is_dir() {
        return Ok(None);
    }
    let state = StateDir::open_read_only(state_dir)?;
    let Some(stem) = state.holder(Claim::Netns, &me.key())? else {
        return Ok(None);
    };
    Ok(state.load_stem(&stem)?.filter(|r| r.netns.same_ns(me)).map(|r| (stem, r)))
}

/// `openpe-sidecar drain` and SIGTERM: shut down every neighbor of the attachment of this namespace (the one
/// the calling thread is in) and wait until FRR reports them down. Returns how many neighbors it shut down.
pub fn drain_namespace(frr: &Frr, state_dir: &Path, timeout: Duration) -> Result<usize> {
    let me = Netns::current()?.id;
    let Some((stem, rec)) = attachment(state_dir, &me)? else {
        log_info!(
            "no attachment in state directory {} holds this network namespace ({}): no BGP session to close",
            state_dir.display(),
            me.key()
        );
        return Ok(0);
    };
    let neighbors = neighbors_of(&rec);
    drain(frr, &neighbors, rec.underlay.asn, timeout)?;
    log_info!("shut down the BGP neighbors of attachment {stem}: {}", neighbors.join(", "));
    Ok(neighbors.len())
}

static TERMINATING: AtomicBool = AtomicBool::new(false);
static HANDLED: std::sync::OnceLock<SigSet> = std::sync::OnceLock::new();

extern "C" fn on_signal(_: libc::c_int) {
    TERMINATING.store(true, Ordering::SeqCst);
}

/// The watch loop's part: holds the sidecar's presence, drains what DEL marks, and notices SIGTERM.
pub(crate) struct Drainer {
    cookie: u64,
    presence: Option<Presence>,
    warned: bool,
}

impl Drainer {
    /// For the namespace this thread is in. SIGTERM and SIGINT are blocked from here on and delivered only
    /// while the loop waits ([`wait_mask`]), so a signal is never lost between a check and the wait.
    pub fn new() -> Result<Drainer> {
        let cookie = crate::netns::Netns::current()?.id.cookie.ok_or_else(|| {
            Error::kernel(
                "this kernel gives network namespaces no cookie (SO_NETNS_COOKIE, Linux 5.14 and later), which the \
                 drain handshake with DEL is keyed by",
            )
        })?;
        let mut both = SigSet::empty();
        both.add(Signal::SIGTERM);
        both.add(Signal::SIGINT);
        let action = SigAction::new(SigHandler::Handler(on_signal), SaFlags::empty(), SigSet::empty());
        for s in [Signal::SIGTERM, Signal::SIGINT] {
            // SAFETY: the handler only stores into an atomic, which is async-signal-safe.
            unsafe { sigaction(s, &action) }.map_err(|e| Error::kernel(format!("cannot handle {s}: {e}")))?;
        }
        let mut waiting = SigSet::thread_get_mask().map_err(|e| Error::kernel(format!("signal mask: {e}")))?;
        both.thread_block().map_err(|e| Error::kernel(format!("cannot block SIGTERM: {e}")))?;
        waiting.remove(Signal::SIGTERM);
        waiting.remove(Signal::SIGINT);
        let _ = HANDLED.set(waiting);
        Ok(Drainer { cookie, presence: None, warned: false })
    }

    /// Once per pass of the loop: announce this sidecar once the state directory exists (another sidecar
    /// serving the namespace is fatal), then close the sessions of the attachment if DEL marked it as going
    /// away and it is not acknowledged yet.
    pub fn step(&mut self, sc: &Sidecar) -> Result<()> {
        let dir = &sc.options().state_dir;
        if self.presence.is_none() {
            if !dir.is_dir() {
                return Ok(());
            }
            match Presence::hold(dir, self.cookie) {
                Ok(p) => self.presence = Some(p),
                Err(e) if e.kind == Kind::Busy => return Err(e),
                Err(e) => {
                    if !std::mem::replace(&mut self.warned, true) {
                        log_warn!("{}; DEL cannot ask this sidecar to close the BGP sessions first", e.msg);
                    }
                    return Ok(());
                }
            }
        }
        let Some(presence) = &self.presence else { return Ok(()) };
        // An unreadable state is the sync pass's to report.
        let Ok(Some((stem, rec))) = attachment(dir, sc.namespace()) else { return Ok(()) };
        if rec.phase != Phase::Removing || presence.acknowledged(&stem) {
            return Ok(());
        }
        let neighbors = neighbors_of(&rec);
        match drain(&sc.options().frr, &neighbors, rec.underlay.asn, DEL_WAIT) {
            Ok(()) => {
                log_info!("attachment {stem} is going away: shut down its BGP neighbors {}", neighbors.join(", "))
            }
            Err(e) => log_warn!("attachment {stem} is going away, but closing its BGP sessions failed: {}", e.msg),
        }
        // Acknowledged either way: DEL gains nothing by waiting longer.
        if let Err(e) = presence.acknowledge(&stem) {
            log_warn!("{}; DEL will wait for its timeout", e.msg);
        }
        Ok(())
    }

    /// Whether SIGTERM (or SIGINT) arrived.
    pub(crate) fn terminating(&self) -> bool {
        TERMINATING.load(Ordering::SeqCst)
    }

    /// SIGTERM: close the attachment's sessions, then return so that the sidecar exits.
    pub(crate) fn terminate(&self, sc: &Sidecar) -> Result<()> {
        log_info!("SIGTERM: closing the BGP sessions before exiting");
        drain_namespace(&sc.options().frr, &sc.options().state_dir, TERM_WAIT).map(|_| ())
    }
}

/// The signal mask to wait with (SIGTERM and SIGINT let through), once a [`Drainer`] handles them.
pub(crate) fn wait_mask() -> Option<SigSet> {
    HANDLED.get().copied()
}
