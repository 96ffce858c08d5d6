//! The fabric side of the rendering: BFD profiles, listen-range peer groups, graceful restart and route
//! reflection (issue 13). `render.rs` calls these at fixed points; each returns lines in FRR's own syntax and
//! leaves out what equals FRR's defaults, so that the rendered text and FRR's running configuration stay equal.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::config::{Bfd, Neighbor, Peer, Underlay, DEFAULT_RESTART_TIME, DEFAULT_STALE_PATH_TIME};

/// FRR 8.4's BFD defaults (bfdd.h): settings equal to them are not written, since FRR does not show them.
const BFD_DEFAULT_INTERVAL: u16 = 300;
const BFD_DEFAULT_MULTIPLIER: u8 = 3;
const BFD_DEFAULT_MIN_TTL: u8 = 254;

/// How many peers the listen ranges may let in together (FRR's `bgp listen limit`; its default is 100). A node
/// has a handful of ToRs: a wide range must not let a whole subnet open sessions.
pub(crate) const LISTEN_LIMIT: u32 = 32;

/// `b` with FRR's defaults taken out, so that two spellings of one setting share a profile.
fn effective(b: &Bfd) -> Bfd {
    Bfd {
        receive_interval: b.receive_interval.filter(|v| *v != BFD_DEFAULT_INTERVAL),
        transmit_interval: b.transmit_interval.filter(|v| *v != BFD_DEFAULT_INTERVAL),
        detect_multiplier: b.detect_multiplier.filter(|v| *v != BFD_DEFAULT_MULTIPLIER),
        passive: b.passive,
        minimum_ttl: b.minimum_ttl.filter(|v| *v != BFD_DEFAULT_MIN_TTL),
    }
}

/// The profile name of a setting: made of the setting itself, so that it stays the same whatever the order of
/// the neighbors (a renamed profile would flap the sessions on every reordering).
pub(crate) fn bfd_profile(b: &Bfd) -> String {
    let b = effective(b);
    let mut name = String::from("openpe-bfd");
    if let Some(v) = b.receive_interval {
        let _ = write!(name, "-rx{v}");
    }
    if let Some(v) = b.transmit_interval {
        let _ = write!(name, "-tx{v}");
    }
    if let Some(v) = b.detect_multiplier {
        let _ = write!(name, "-x{v}");
    }
    if b.passive {
        name.push_str("-passive");
    }
    if let Some(v) = b.minimum_ttl {
        let _ = write!(name, "-ttl{v}");
    }
    name
}

/// Whether any neighbor asks for BFD (then bfdd must run: FRR 8.4 takes a `bfd` block without it and drops it).
pub(crate) fn uses_bfd(u: &Underlay) -> bool {
    u.neighbors.iter().any(|n| n.bfd.is_some())
}

/// The `bfd` block: one profile per distinct setting, in name order. Empty without BFD.
pub(crate) fn bfd_block(u: &Underlay) -> String {
    let profiles: BTreeSet<(String, Bfd)> =
        u.neighbors.iter().filter_map(|n| n.bfd.as_ref()).map(|b| (bfd_profile(b), effective(b))).collect();
    if profiles.is_empty() {
        return String::new();
    }
    let mut out = String::from("bfd\n");
    for (name, b) in profiles {
        let _ = writeln!(out, " profile {name}");
        if let Some(v) = b.detect_multiplier {
            let _ = writeln!(out, "  detect-multiplier {v}");
        }
        if let Some(v) = b.receive_interval {
            let _ = writeln!(out, "  receive-interval {v}");
        }
        if let Some(v) = b.transmit_interval {
            let _ = writeln!(out, "  transmit-interval {v}");
        }
        if b.passive {
            out.push_str("  passive-mode\n");
        }
        if let Some(v) = b.minimum_ttl {
            let _ = writeln!(out, "  minimum-ttl {v}");
        }
        out.push_str(" exit\n !\n");
    }
    out.push_str("exit\n!\n");
    out
}

/// `router bgp` lines of the router as a whole: cluster id, graceful restart (timers only when not FRR's
/// defaults: re-applying a default resets sessions in newer FRR).
pub(crate) fn global_lines(u: &Underlay) -> String {
    let mut out = String::new();
    if let Some(rr) = &u.route_reflector {
        let _ = writeln!(out, " bgp cluster-id {}", rr.cluster_id);
    }
    if let Some(gr) = &u.graceful_restart {
        out.push_str(" bgp graceful-restart\n");
        out.push_str(" bgp graceful-restart preserve-fw-state\n");
        if gr.restart_time_seconds != DEFAULT_RESTART_TIME {
            let _ = writeln!(out, " bgp graceful-restart restart-time {}", gr.restart_time_seconds);
        }
        if gr.stale_path_time_seconds != DEFAULT_STALE_PATH_TIME {
            let _ = writeln!(out, " bgp graceful-restart stalepath-time {}", gr.stale_path_time_seconds);
        }
    }
    out
}

/// How a neighbor is declared, before its other lines: `neighbor A remote-as R`, `neighbor IF interface
/// remote-as R`, or a peer group for a listen range.
pub(crate) fn declare(out: &mut String, n: &Neighbor, remote: &str) {
    let name = n.peer_name();
    match &n.peer {
        Peer::Address(_) => {
            let _ = writeln!(out, " neighbor {name} remote-as {remote}");
        }
        Peer::Interface(_) => {
            let _ = writeln!(out, " neighbor {name} interface remote-as {remote}");
        }
        Peer::ListenRange(_) => {
            let _ = writeln!(out, " neighbor {name} peer-group");
            let _ = writeln!(out, " neighbor {name} remote-as {remote}");
        }
    }
}

/// A neighbor's BFD line.
pub(crate) fn bfd_line(out: &mut String, n: &Neighbor) {
    if let Some(b) = &n.bfd {
        let _ = writeln!(out, " neighbor {} bfd profile {}", n.peer_name(), bfd_profile(b));
    }
}

/// The listen ranges (after their peer groups exist) and their limit. Empty without listen ranges.
pub(crate) fn listen_lines(u: &Underlay) -> String {
    let mut out = String::new();
    for n in &u.neighbors {
        if let Peer::ListenRange(range) = &n.peer {
            let _ = writeln!(out, " bgp listen range {range} peer-group {}", n.peer_name());
        }
    }
    if !out.is_empty() {
        let _ = writeln!(out, " bgp listen limit {LISTEN_LIMIT}");
    }
    out
}
