//! What the sidecar tells Prometheus, the kubelet and a person: the BGP sessions of the attachment it serves,
//! read from FRR at every scrape, and the outcome of its applies, recorded by the apply loop.
//!
//! [`Health`] is the one handle, shared (`Arc`) between the apply loop, which calls [`Health::record_sync`]
//! after every pass, and the HTTP thread ([`super::http`]), which asks it for [`Health::metrics`],
//! [`Health::liveness`] and [`Health::report`]. Nothing here enters another namespace: the sidecar process
//! lives in the router namespace, where FRR's vty sockets are.
//!
//! Which sessions there are, and whether each is `underlay` or `host`, comes from the attachment record that
//! holds this namespace (its underlay neighbors, and its host addresses for the families the host session
//! has); what state each is in comes from FRR, with one question to bgpd's vty socket per scrape.
//!
//! An underlay neighbor is reported by what the operator configured: an address neighbor by its address, an
//! unnumbered one by its interface name (FRR's key for it; its link-local address changes with the peer's MAC).
//! A listen range is reported by its dynamic peers, each by its address: FRR creates one when a peer of the
//! range connects and deletes it when the session closes, so a range whose peers are all gone is reported by the
//! range itself (`peer` its CIDR), not Established — the gauge of a ToR that went away disappears, and the
//! range's series at 0 takes its place.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ipnet::IpNet;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::frr::Frr;
use crate::config::Peer;
use crate::error::{Error, Result};
use crate::netns::NsId;
use crate::state::{Phase, StateDir};

/// The command whose JSON holds every neighbor's state, prefix counts, BFD status and prefix limit.
const NEIGHBORS_COMMAND: &str = "show bgp vrf default neighbors json";

/// How long after start-up readiness waits for every session before one underlay session is enough.
pub const DEFAULT_STARTUP_WINDOW: Duration = Duration::from_secs(60);

/// Apply durations: frr-reload.py takes about half a second today, a delta apply tens of milliseconds.
const APPLY_BUCKETS: [f64; 11] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Which side of the router a session faces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionKind {
    /// An underlay neighbor of the attachment (a fabric switch).
    Underlay,
    /// The host session of one address family, with the host's address on its veth.
    Host,
}

impl SessionKind {
    fn label(self) -> &'static str {
        match self {
            SessionKind::Underlay => "underlay",
            SessionKind::Host => "host",
        }
    }
}

/// A session the attachment asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expected {
    peer: Peer,
    /// How FRR's configuration names it (`neighbor NAME ...`; a listen range's peer group), as the apply loop
    /// names the neighbors it left out.
    name: String,
    kind: SessionKind,
}

/// What the state directory says about this namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Attachment {
    None,
    Pending { stem: String },
    Sessions { stem: String, sessions: Vec<Expected> },
}

fn is_v4(net: &IpNet) -> bool {
    matches!(net, IpNet::V4(_))
}

/// The sessions of the attachment that holds namespace `me` (as [`super::Sidecar::want`] finds it).
fn attachment(state_dir: &std::path::Path, me: &NsId) -> Result<Attachment> {
    if !state_dir.join("netns").is_dir() {
        return Ok(Attachment::None);
    }
    let Some(rec) = StateDir::open_read_only(state_dir)?.router_attachment(me)? else {
        return Ok(Attachment::None);
    };
    let stem = rec.stem.clone();
    if rec.phase != Phase::Complete {
        return Ok(Attachment::Pending { stem });
    }
    let (underlay, _) = rec.bgp_settings();
    let mut sessions: Vec<Expected> = (underlay.neighbors.iter())
        .map(|n| Expected { peer: n.peer.clone(), name: n.peer_name(), kind: SessionKind::Underlay })
        .collect();
    // The host session of a family exists when the host session has that family (as the renderer decides).
    for (configured, v4) in [(rec.host_session.ipv4.is_some(), true), (rec.host_session.ipv6.is_some(), false)] {
        if let Some(h) = rec.addresses.host.iter().find(|n| is_v4(n) == v4).filter(|_| configured) {
            let peer = h.addr();
            sessions.push(Expected { peer: Peer::Address(peer), name: peer.to_string(), kind: SessionKind::Host });
        }
    }
    Ok(Attachment::Sessions { stem, sessions })
}

/// One address family of a neighbor, as FRR counts it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FamilyCounts {
    /// `ipv4` or `ipv6` (unicast).
    afi: &'static str,
    received: u64,
    advertised: u64,
    /// `maximum-prefix` when configured for this family.
    max_prefixes: Option<u64>,
}

/// One neighbor of [`NEIGHBORS_COMMAND`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct Neighbor {
    /// FRR's key: an address, or the interface name of an unnumbered neighbor.
    key: String,
    state: String,
    /// The listen range a dynamic peer was accepted by (FRR's `peerSubnetRangeGroup`); None for a neighbor the
    /// configuration names.
    range: Option<IpNet>,
    families: Vec<FamilyCounts>,
    /// The BFD session's status (`Up`, `Down`, ...) where BFD is configured for this neighbor.
    bfd: Option<String>,
    /// Whether FRR closed the session because the peer sent more prefixes than `maximum-prefix` allows.
    max_prefix_exceeded: bool,
}

impl Neighbor {
    fn established(&self) -> bool {
        self.state == "Established"
    }
    /// Whether this is the neighbor `peer` configures; a listen range has none of its own (see [`Self::of`]).
    fn is(&self, peer: &Peer) -> bool {
        match peer {
            Peer::Address(a) => self.range.is_none() && self.key.parse::<IpAddr>().is_ok_and(|k| &k == a),
            Peer::Interface(name) => self.range.is_none() && &self.key == name,
            Peer::ListenRange(_) => false,
        }
    }
    /// Whether this is a dynamic peer of listen range `range`.
    fn of(&self, range: &IpNet) -> bool {
        self.range.is_some_and(|r| r.trunc() == range.trunc())
    }
    fn max_prefix_configured(&self) -> bool {
        self.families.iter().any(|f| f.max_prefixes.is_some())
    }
}

fn bad(what: impl std::fmt::Display) -> Error {
    Error::io(format!("FRR's `{NEIGHBORS_COMMAND}` output is not what the sidecar understands: {what}"))
}

fn count(v: &Value, key: &str, field: &str) -> Result<Option<u64>> {
    match v.get(field) {
        None => Ok(None),
        Some(n) => n.as_u64().map(Some).ok_or_else(|| bad(format!("{key}: {field} is {n}, not a count"))),
    }
}

/// The neighbors of [`NEIGHBORS_COMMAND`]'s JSON (FRR 8.4): an object keyed by neighbor, `{}` when BGP has
/// none. Anything else, or a neighbor without a state, is an error rather than "no neighbors".
fn parse_neighbors(text: &str) -> Result<Vec<Neighbor>> {
    let v: Value = serde_json::from_str(text).map_err(|e| bad(format!("not JSON ({e}): {:.200}", text.trim())))?;
    let map = v.as_object().ok_or_else(|| bad("not a JSON object"))?;
    let mut out = Vec::new();
    for (key, n) in map {
        let state = n
            .get("bgpState")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("neighbor {key} has no bgpState")))?
            .to_string();
        let mut families = Vec::new();
        if let Some(afs) = n.get("addressFamilyInfo") {
            let afs = afs.as_object().ok_or_else(|| bad(format!("{key}: addressFamilyInfo is not an object")))?;
            for (name, af) in afs {
                let afi = match name.as_str() {
                    "ipv4Unicast" => "ipv4",
                    "ipv6Unicast" => "ipv6",
                    // No other family is rendered (an --frr-extra may add one): not ours to count.
                    _ => continue,
                };
                families.push(FamilyCounts {
                    afi,
                    received: count(af, key, "acceptedPrefixCounter")?
                        .ok_or_else(|| bad(format!("{key} {name}: no acceptedPrefixCounter")))?,
                    // FRR leaves it out while the session is down: nothing is advertised then.
                    advertised: count(af, key, "sentPrefixCounter")?.unwrap_or(0),
                    max_prefixes: count(af, key, "prefixAllowedMax")?,
                });
            }
        }
        let bfd = match n.get("peerBfdInfo") {
            None => None,
            Some(b) => Some(
                b.get("status")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad(format!("{key}: peerBfdInfo has no status")))?
                    .to_string(),
            ),
        };
        let max_prefix_exceeded = match n.get("prefixesConfigExceedMax") {
            None => false,
            Some(b) => b.as_bool().ok_or_else(|| bad(format!("{key}: prefixesConfigExceedMax is {b}")))?,
        };
        // FRR 8.4 writes it for dynamic peers only (bgp_show_peer), with the range as `%pFX`.
        let range = match n.get("peerSubnetRangeGroup") {
            None => None,
            Some(r) => Some(
                r.as_str()
                    .and_then(|r| r.parse::<IpNet>().ok())
                    .ok_or_else(|| bad(format!("{key}: peerSubnetRangeGroup is {r}, not a network")))?,
            ),
        };
        out.push(Neighbor { key: key.clone(), state, range, families, bfd, max_prefix_exceeded });
    }
    Ok(out)
}

/// A session the attachment asks for, with FRR's view of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionReport {
    /// The `peer` label: an address, an unnumbered neighbor's interface, a listen range's dynamic peer's
    /// address, or the range itself (its CIDR) while it has no dynamic peer.
    pub peer: String,
    pub session: SessionKind,
    /// FRR's state, `not configured` when FRR does not have the neighbor, `no dynamic peer` for a listen range
    /// without one, `unknown` when FRR does not answer.
    pub state: String,
    /// The listen range this row belongs to (a dynamic peer, or the range's own row).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_range: Option<IpNet>,
}

/// What a listen range without a dynamic peer says as its state.
const NO_DYNAMIC_PEER: &str = "no dynamic peer";

impl SessionReport {
    fn established(&self) -> bool {
        self.state == "Established"
    }
}

/// The outcome of the last pass of the apply loop that changed something or failed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LastApply {
    Ok,
    Failed(String),
}

/// Everything the sidecar reports to a person (`openpe-sidecar status`, `/status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub ready: bool,
    pub reason: String,
    pub sessions: Vec<SessionReport>,
    pub applies_ok: u64,
    pub applies_failed: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_apply_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_apply_success_unix: Option<f64>,
    pub uptime_seconds: u64,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SessionLabels {
    peer: String,
    session: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FamilyLabels {
    peer: String,
    afi: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabel {
    peer: String,
}

#[derive(Debug, Default)]
struct Applies {
    ok: u64,
    failed: u64,
    last: Option<LastApply>,
    last_success_unix: Option<f64>,
}

/// The sidecar's health, metrics and apply history, shared by the apply loop and the HTTP thread.
pub struct Health {
    frr: Frr,
    state_dir: PathBuf,
    me: NsId,
    started: Instant,
    startup_window: Duration,
    applies_total: Family<ResultLabel, Counter>,
    apply_duration: Histogram,
    last_success: Gauge<f64, AtomicU64>,
    applies: Mutex<Applies>,
    /// Neighbors left out of the configuration (their passwordSecret cannot be used), from the apply loop.
    left_out: Mutex<Vec<super::secrets::LeftOut>>,
}

/// Terminal colour codes (`ESC [ ... m`, as frr-reload.py writes them) left out.
fn without_colours(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // Skip to the end of the escape sequence (a letter).
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// One line of bounded length for an HTTP body: lines joined with " / ", colour codes left out, and of a long
/// message its start and its end (where FRR's complaint is).
fn one_line(s: &str) -> String {
    const HEAD: usize = 120;
    const TAIL: usize = 280;
    let joined = without_colours(s).lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" / ");
    let chars: Vec<char> = joined.chars().collect();
    if chars.len() <= HEAD + TAIL {
        return joined;
    }
    let head: String = chars[..HEAD].iter().collect();
    let tail: String = chars[chars.len() - TAIL..].iter().collect();
    format!("{head} ... {tail}")
}

impl Health {
    /// For the sidecar of namespace `me` applying to `frr` what `state_dir` records; readiness accepts one
    /// underlay session instead of all once `startup_window` has passed since now.
    pub fn new(frr: Frr, state_dir: PathBuf, me: NsId, startup_window: Duration) -> Health {
        Health {
            frr,
            state_dir,
            me,
            started: Instant::now(),
            startup_window,
            applies_total: Family::default(),
            apply_duration: Histogram::new(APPLY_BUCKETS),
            last_success: Gauge::default(),
            applies: Mutex::new(Applies::default()),
            left_out: Mutex::new(Vec::new()),
        }
    }

    fn applies(&self) -> std::sync::MutexGuard<'_, Applies> {
        // A panic elsewhere while holding the lock leaves plain counters behind: still good to read.
        self.applies.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One apply: FRR was given a configuration (`Ok`), or the apply failed with this (masked) message.
    pub(crate) fn record_apply(&self, outcome: std::result::Result<(), &str>, took: Duration) {
        let mut a = self.applies();
        self.apply_duration.observe(took.as_secs_f64());
        match outcome {
            Ok(()) => {
                a.ok += 1;
                a.last = Some(LastApply::Ok);
                let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
                a.last_success_unix = Some(now);
                self.last_success.set(now);
                self.applies_total.get_or_create(&ResultLabel { result: "ok" }).inc();
            }
            Err(msg) => {
                a.failed += 1;
                a.last = Some(LastApply::Failed(one_line(msg)));
                self.applies_total.get_or_create(&ResultLabel { result: "failed" }).inc();
            }
        }
    }

    /// One pass of the apply loop ([`super::Sidecar::sync`]'s result, and how long it took): an apply, a
    /// failure, or nothing to do — which also ends an earlier failure (the input that failed was fixed and
    /// equals what FRR has).
    pub(crate) fn record_sync<T>(&self, outcome: &Result<Option<T>>, took: Duration) {
        match outcome {
            Ok(Some(_)) => self.record_apply(Ok(()), took),
            Ok(None) => {
                let mut a = self.applies();
                if matches!(a.last, Some(LastApply::Failed(_))) {
                    a.last = Some(LastApply::Ok);
                }
            }
            Err(e) => self.record_apply(Err(&e.msg), took),
        }
    }

    /// What the last pass of the apply loop left out (`status` shows why instead of `not configured`).
    pub(crate) fn set_left_out(&self, left_out: Vec<super::secrets::LeftOut>) {
        *self.left_out.lock().unwrap_or_else(|p| p.into_inner()) = left_out;
    }

    fn left_out(&self) -> Vec<super::secrets::LeftOut> {
        self.left_out.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// `/healthz`: whether FRR answers in the pathspace, with zebra and bgpd. Apply failures do not count.
    pub(crate) fn liveness(&self) -> std::result::Result<String, String> {
        // The daemons whose vty sockets answer: what vtysh's `show daemons` lists, without a vtysh process.
        let daemons = self.frr.daemons();
        if daemons.is_empty() {
            return Err(format!("FRR does not answer: no daemon's vty socket in {}", self.frr.rundir().display()));
        }
        let missing: Vec<&str> = ["zebra", "bgpd"].into_iter().filter(|d| !daemons.contains(d)).collect();
        if missing.is_empty() {
            Ok(format!("FRR answers (daemons: {})", daemons.join(" ")))
        } else {
            Err(format!("FRR answers without {} (daemons: {})", missing.join(" and "), daemons.join(" ")))
        }
    }

    /// [`NEIGHBORS_COMMAND`], asked of bgpd on its vty socket (vtysh only when the socket does not answer: a
    /// vtysh process costs about 40 ms of CPU, nearly all of it its own start-up).
    fn neighbors(&self) -> Result<Vec<Neighbor>> {
        parse_neighbors(&self.frr.bgpd_show(NEIGHBORS_COMMAND)?)
    }

    /// Readiness, the sessions and the applies, from one look at the state directory and one question to bgpd.
    pub(crate) fn report(&self) -> Report {
        self.report_from(&attachment(&self.state_dir, &self.me), &self.neighbors())
    }

    fn report_from(&self, att: &Result<Attachment>, frr: &Result<Vec<Neighbor>>) -> Report {
        let a = self.applies();
        let sessions: Vec<SessionReport> = match att {
            Ok(Attachment::Sessions { sessions, .. }) => {
                sessions_of(sessions, frr, &self.left_out()).into_iter().map(|(s, _)| s).collect()
            }
            _ => Vec::new(),
        };
        let (ready, reason) =
            readiness(att, frr, &sessions, a.last.as_ref(), self.started.elapsed(), self.startup_window);
        Report {
            ready,
            reason,
            sessions,
            applies_ok: a.ok,
            applies_failed: a.failed,
            last_apply_error: match &a.last {
                Some(LastApply::Failed(m)) => Some(m.clone()),
                _ => None,
            },
            last_apply_success_unix: a.last_success_unix,
            uptime_seconds: self.started.elapsed().as_secs(),
        }
    }

    /// `/metrics` in the Prometheus text format (0.0.4), from one question to bgpd.
    pub(crate) fn metrics(&self) -> String {
        self.metrics_from(&attachment(&self.state_dir, &self.me), &self.neighbors())
    }

    fn metrics_from(&self, att: &Result<Attachment>, frr: &Result<Vec<Neighbor>>) -> String {
        let mut reg = Registry::default();
        let sessions: &[Expected] = match att {
            Ok(Attachment::Sessions { sessions, .. }) => sessions,
            _ => &[],
        };
        let up = Family::<SessionLabels, Gauge>::default();
        let received = Family::<FamilyLabels, Gauge>::default();
        let advertised = Family::<FamilyLabels, Gauge>::default();
        let bfd_up = Family::<PeerLabel, Gauge>::default();
        let exceeded = Family::<PeerLabel, Gauge>::default();
        for (s, n) in sessions_of(sessions, frr, &self.left_out()) {
            let peer = s.peer;
            let established = n.is_some_and(Neighbor::established);
            up.get_or_create(&SessionLabels { peer: peer.clone(), session: s.session.label() }).set(established as i64);
            let Some(n) = n else { continue };
            for f in &n.families {
                let l = FamilyLabels { peer: peer.clone(), afi: f.afi };
                received.get_or_create(&l).set(f.received as i64);
                advertised.get_or_create(&l).set(f.advertised as i64);
            }
            if let Some(status) = &n.bfd {
                bfd_up.get_or_create(&PeerLabel { peer: peer.clone() }).set((status == "Up") as i64);
            }
            if n.max_prefix_configured() {
                exceeded.get_or_create(&PeerLabel { peer: peer.clone() }).set(n.max_prefix_exceeded as i64);
            }
        }
        let frr_up = Gauge::<i64, std::sync::atomic::AtomicI64>::default();
        frr_up.set(frr.is_ok() as i64);
        reg.register(
            "openpe_frr_up",
            "Whether FRR answered this scrape with the BGP neighbors (else every session counts as down)",
            frr_up,
        );
        reg.register(
            "openpe_bgp_session_up",
            "Whether the BGP session is Established (1) or not (0), per session the attachment configures",
            up,
        );
        reg.register("openpe_bgp_prefixes_received", "Prefixes accepted from the peer, per address family", received);
        reg.register(
            "openpe_bgp_prefixes_advertised",
            "Prefixes advertised to the peer, per address family",
            advertised,
        );
        reg.register("openpe_bfd_session_up", "Whether the BFD session is Up, where BFD is configured", bfd_up);
        reg.register(
            "openpe_bgp_max_prefix_exceeded",
            "Whether FRR closed the session for exceeding maximum-prefix, where a limit is configured",
            exceeded,
        );
        reg.register("openpe_sidecar_applies", "Configuration applies, by result", self.applies_total.clone());
        reg.register(
            "openpe_sidecar_apply_duration_seconds",
            "How long an apply of FRR's configuration took",
            self.apply_duration.clone(),
        );
        if self.applies().last_success_unix.is_some() {
            reg.register(
                "openpe_sidecar_last_apply_success_timestamp_seconds",
                "When the last successful apply ended (Unix time)",
                self.last_success.clone(),
            );
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &reg);
        out
    }
}

/// The sessions of `expected` as FRR has them, each with the neighbor it is in FRR (if any): one row per
/// configured session, except a listen range, which has one row per dynamic peer FRR lists for it, or one row of
/// its own while there is none.
fn sessions_of<'a>(
    expected: &[Expected],
    frr: &'a Result<Vec<Neighbor>>,
    left_out: &[super::secrets::LeftOut],
) -> Vec<(SessionReport, Option<&'a Neighbor>)> {
    let neighbors: &[Neighbor] = frr.as_deref().unwrap_or(&[]);
    let mut out = Vec::new();
    for s in expected {
        let range = match &s.peer {
            Peer::ListenRange(r) => Some(*r),
            _ => None,
        };
        let label = match &s.peer {
            Peer::Address(a) => a.to_string(),
            Peer::Interface(name) => name.clone(),
            Peer::ListenRange(r) => r.to_string(),
        };
        let row = |peer: String, state: String| SessionReport { peer, session: s.kind, state, listen_range: range };
        let left = left_out.iter().find(|l| s.kind == SessionKind::Underlay && l.peer == s.name);
        if let Some(l) = left {
            out.push((row(label, format!("left out: {}", l.reason)), None));
            continue;
        }
        if frr.is_err() {
            out.push((row(label, "unknown".into()), None));
            continue;
        }
        match range {
            Some(r) => {
                let before = out.len();
                for n in neighbors.iter().filter(|n| n.of(&r)) {
                    out.push((row(n.key.clone(), n.state.clone()), Some(n)));
                }
                if out.len() == before {
                    out.push((row(label, NO_DYNAMIC_PEER.into()), None));
                }
            }
            None => match neighbors.iter().find(|n| n.is(&s.peer)) {
                Some(n) => out.push((row(label, n.state.clone()), Some(n))),
                None => out.push((row(label, "not configured".into()), None)),
            },
        }
    }
    out
}

/// A session as readiness counts it: a configured neighbor or host session, or a listen range, which is
/// Established when at least one of its dynamic peers is.
struct Counted {
    kind: SessionKind,
    established: bool,
    /// What it is and its state, for the reason (`192.168.11.2 (underlay) Active`).
    shown: String,
}

fn counted(sessions: &[SessionReport]) -> Vec<Counted> {
    let mut out = Vec::new();
    let mut ranges: Vec<IpNet> = Vec::new();
    for s in sessions {
        let Some(r) = s.listen_range else {
            out.push(Counted {
                kind: s.session,
                established: s.established(),
                shown: format!("{} ({}) {}", s.peer, s.session.label(), s.state),
            });
            continue;
        };
        if ranges.contains(&r) {
            continue;
        }
        ranges.push(r);
        let members: Vec<&SessionReport> = sessions.iter().filter(|m| m.listen_range == Some(r)).collect();
        let shown = match members.as_slice() {
            [own] if own.peer == r.to_string() => format!("listen range {r} ({}) {}", s.session.label(), own.state),
            _ => format!(
                "listen range {r} ({}): {}",
                s.session.label(),
                members.iter().map(|m| format!("{} {}", m.peer, m.state)).collect::<Vec<_>>().join(", ")
            ),
        };
        out.push(Counted { kind: s.session, established: members.iter().any(|m| m.established()), shown });
    }
    out
}

/// `/readyz`: ready once every session is Established (a listen range: one of its dynamic peers), or, after the
/// startup window, once one underlay session is; never while the last apply failed. The reason is one line
/// either way.
fn readiness(
    att: &Result<Attachment>,
    frr: &Result<Vec<Neighbor>>,
    sessions: &[SessionReport],
    last: Option<&LastApply>,
    uptime: Duration,
    window: Duration,
) -> (bool, String) {
    if let Some(LastApply::Failed(msg)) = last {
        return (false, format!("the last apply of FRR's configuration failed: {msg}"));
    }
    let stem = match att {
        Err(e) => return (false, format!("cannot read the state directory: {}", one_line(&e.msg))),
        Ok(Attachment::None) => return (false, "no attachment holds this router namespace".into()),
        Ok(Attachment::Pending { stem }) => return (false, format!("attachment {stem}: its ADD has not finished")),
        Ok(Attachment::Sessions { stem, .. }) => stem,
    };
    if last.is_none() {
        return (false, format!("attachment {stem}: its configuration is not applied yet"));
    }
    if let Err(e) = frr {
        return (false, format!("FRR does not answer: {}", one_line(&e.msg)));
    }
    let sessions = counted(sessions);
    let up = sessions.iter().filter(|s| s.established).count();
    let down: Vec<&str> = sessions.iter().filter(|s| !s.established).map(|s| s.shown.as_str()).collect();
    if down.is_empty() {
        return (true, format!("all {} sessions Established", sessions.len()));
    }
    let underlay_up = sessions.iter().filter(|s| s.kind == SessionKind::Underlay && s.established).count();
    let summary = format!("{up} of {} sessions Established; not Established: {}", sessions.len(), down.join(", "));
    if uptime >= window && underlay_up > 0 {
        (
            true,
            format!(
                "startup window of {} s over and {underlay_up} underlay session(s) up; {summary}",
                window.as_secs()
            ),
        )
    } else if uptime >= window {
        (false, format!("no underlay session Established; {summary}"))
    } else {
        (
            false,
            format!(
                "waiting for every session ({} s of the {} s startup window left); {summary}",
                (window - uptime).as_secs(),
                window.as_secs()
            ),
        )
    }
}

/// `status` for people: readiness and its reason, the sessions, the applies.
pub fn report_table(r: &Report) -> String {
    let mut out = format!("ready: {} ({})\n", if r.ready { "yes" } else { "no" }, r.reason);
    for s in &r.sessions {
        out.push_str(&format!("  {:<40} {:<9} {}", s.peer, s.session.label(), s.state));
        match s.listen_range {
            Some(range) if s.peer != range.to_string() => out.push_str(&format!(" (listen range {range})\n")),
            _ => out.push('\n'),
        }
    }
    out.push_str(&format!("applies: {} ok, {} failed", r.applies_ok, r.applies_failed));
    if let Some(t) = r.last_apply_success_unix {
        let ago = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64() - t).unwrap_or(0.0);
        out.push_str(&format!("; last success {:.0} s ago", ago.max(0.0)));
    }
    out.push('\n');
    if let Some(e) = &r.last_apply_error {
        out.push_str(&format!("last apply failed: {e}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from FRR 8.4 (`show bgp vrf default neighbors json`) in two test namespaces: 192.168.91.2 with
    /// `neighbor ... bfd` (bfdd running on both sides, BFD Up), 192.168.92.2 with `maximum-prefix 2 restart 5`
    /// sending five prefixes (closed by FRR, "Idle (PfxCt)").
    const SAMPLE: &str = include_str!("testdata/frr84-neighbors-bfd-maxprefix.json");

    fn health(window: Duration) -> Health {
        let me = NsId { path: "/proc/self/ns/net".into(), dev: 4, ino: 4026531840, cookie: None };
        Health::new(Frr::new(None, None).unwrap(), "/nonexistent".into(), me, window)
    }

    fn sessions(list: &[(&str, SessionKind)]) -> Result<Attachment> {
        Ok(Attachment::Sessions {
            stem: "openpe@c1@net1".into(),
            sessions: list
                .iter()
                .map(|(p, kind)| {
                    let peer = match (p.parse::<IpAddr>(), p.parse::<IpNet>()) {
                        (Ok(a), _) => Peer::Address(a),
                        (_, Ok(r)) => Peer::ListenRange(r),
                        _ => Peer::Interface(p.to_string()),
                    };
                    let name = match &peer {
                        Peer::ListenRange(r) => format!("range-{}", r.to_string().replace(['.', '/', ':'], "-")),
                        _ => p.to_string(),
                    };
                    Expected { peer, name, kind: *kind }
                })
                .collect(),
        })
    }

    #[test]
    fn parses_frr_84_neighbors_with_bfd_and_an_exceeded_prefix_limit() {
        let n = parse_neighbors(SAMPLE).unwrap();
        assert_eq!(n.len(), 2);
        let a = n.iter().find(|n| n.key == "192.168.91.2").unwrap();
        assert!(a.established());
        assert_eq!(a.bfd.as_deref(), Some("Up"));
        assert!(!a.max_prefix_configured());
        assert!(!a.max_prefix_exceeded);
        assert_eq!(a.families, vec![FamilyCounts { afi: "ipv4", received: 1, advertised: 1, max_prefixes: None }]);
        let b = n.iter().find(|n| n.key == "192.168.92.2").unwrap();
        assert_eq!(b.state, "Idle");
        assert_eq!(b.bfd, None);
        assert!(b.max_prefix_exceeded);
        assert_eq!(b.families, vec![FamilyCounts { afi: "ipv4", received: 0, advertised: 0, max_prefixes: Some(2) }]);
    }

    /// Captured from FRR 8.4 in three test namespaces: `bgp listen range 10.77.0.0/24 peer-group
    /// range-10-77-0-0-24` (with `bfd` and `maximum-prefix 5` on the group) and a peer that connected into it
    /// (10.77.0.2, BFD Up), and the unnumbered `neighbor ua interface remote-as external`, both Established.
    const LISTEN_UNNUMBERED: &str = include_str!("testdata/frr84-neighbors-listen-range-unnumbered.json");

    #[test]
    fn parses_frr_84_dynamic_and_unnumbered_peers() {
        let n = parse_neighbors(LISTEN_UNNUMBERED).unwrap();
        assert_eq!(n.len(), 2);
        let d = n.iter().find(|n| n.key == "10.77.0.2").unwrap();
        assert!(d.established());
        assert_eq!(d.range, Some("10.77.0.0/24".parse().unwrap()));
        assert!(d.of(&"10.77.0.0/24".parse().unwrap()) && !d.of(&"10.77.0.0/16".parse().unwrap()));
        assert!(!d.is(&Peer::Address("10.77.0.2".parse().unwrap())), "a dynamic peer is not a configured one");
        assert_eq!(d.bfd.as_deref(), Some("Up"));
        assert_eq!(d.families, vec![FamilyCounts { afi: "ipv4", received: 1, advertised: 2, max_prefixes: Some(5) }]);
        let u = n.iter().find(|n| n.key == "ua").unwrap();
        assert!(u.established() && u.range.is_none() && u.is(&Peer::Interface("ua".into())));
        assert!(!u.is(&Peer::Interface("ub".into())));
        assert_eq!(u.families, vec![FamilyCounts { afi: "ipv4", received: 1, advertised: 2, max_prefixes: None }]);
    }

    /// The sample with a second dynamic peer of the range, `state` (a peer that is still connecting).
    fn with_second_dynamic_peer(state: &str) -> String {
        let mut v: Value = serde_json::from_str(LISTEN_UNNUMBERED).unwrap();
        let mut second = v["10.77.0.2"].clone();
        second["bgpState"] = state.into();
        v["10.77.0.3"] = second;
        v.to_string()
    }

    #[test]
    fn a_listen_range_reports_its_dynamic_peers_or_itself_and_unnumbered_peers_their_interface() {
        let h = health(DEFAULT_STARTUP_WINDOW);
        let att = sessions(&[
            ("10.77.0.0/24", SessionKind::Underlay),
            ("10.88.0.0/24", SessionKind::Underlay),
            ("ua", SessionKind::Underlay),
            ("ub", SessionKind::Underlay),
        ]);
        let text = h.metrics_from(&att, &parse_neighbors(&with_second_dynamic_peer("OpenSent")));
        let mut ex: Vec<&str> = text.lines().filter(|l| l.starts_with("openpe_bgp_session_up{")).collect();
        ex.sort();
        assert_eq!(
            ex,
            [
                r#"openpe_bgp_session_up{peer="10.77.0.2",session="underlay"} 1"#,
                r#"openpe_bgp_session_up{peer="10.77.0.3",session="underlay"} 0"#,
                r#"openpe_bgp_session_up{peer="10.88.0.0/24",session="underlay"} 0"#,
                r#"openpe_bgp_session_up{peer="ua",session="underlay"} 1"#,
                r#"openpe_bgp_session_up{peer="ub",session="underlay"} 0"#,
            ],
            "{text}"
        );
        let lines: Vec<&str> = text.lines().collect();
        for want in [
            r#"openpe_bgp_prefixes_received{peer="10.77.0.2",afi="ipv4"} 1"#,
            r#"openpe_bgp_prefixes_advertised{peer="10.77.0.2",afi="ipv4"} 2"#,
            r#"openpe_bgp_prefixes_received{peer="ua",afi="ipv4"} 1"#,
            r#"openpe_bfd_session_up{peer="10.77.0.2"} 1"#,
            r#"openpe_bgp_max_prefix_exceeded{peer="10.77.0.2"} 0"#,
        ] {
            assert!(lines.contains(&want), "no line {want:?} in\n{text}");
        }
        assert!(!text.contains("10.77.0.0/24"), "a range with dynamic peers has no series of its own:\n{text}");
        // FRR silent: each range by itself, at 0.
        let text = h.metrics_from(&att, &Err(Error::io("vtysh: bgpd is not running")));
        assert!(text.lines().any(|l| l == r#"openpe_bgp_session_up{peer="10.77.0.0/24",session="underlay"} 0"#));
        assert!(text.lines().any(|l| l == r#"openpe_bgp_session_up{peer="ua",session="underlay"} 0"#));
        // Left out for its passwordSecret: the range's own row says why.
        h.set_left_out(vec![super::super::secrets::LeftOut {
            peer: "range-10-88-0-0-24".into(),
            reason: "passwordSecret s/k: missing".into(),
        }]);
        let r = h.report_from(&att, &parse_neighbors(LISTEN_UNNUMBERED));
        let row = r.sessions.iter().find(|s| s.peer == "10.88.0.0/24").unwrap();
        assert_eq!(row.state, "left out: passwordSecret s/k: missing");
        assert_eq!(row.listen_range, Some("10.88.0.0/24".parse().unwrap()));
        let table = report_table(&r);
        assert!(table.contains("underlay  Established (listen range 10.77.0.0/24)\n"), "{table}");
        assert!(table.lines().any(|l| l.trim_start().starts_with("ua ") && l.ends_with("underlay  Established")));
    }

    #[test]
    fn a_listen_range_is_ready_with_one_established_dynamic_peer() {
        let h = health(Duration::from_secs(3600));
        h.record_sync(&Ok(Some(())), Duration::from_millis(10));
        let att = sessions(&[("10.77.0.0/24", SessionKind::Underlay), ("ua", SessionKind::Underlay)]);
        // One dynamic peer Established is enough, another still connecting does not count against it.
        for frr in [LISTEN_UNNUMBERED.to_string(), with_second_dynamic_peer("OpenSent")] {
            let r = h.report_from(&att, &parse_neighbors(&frr));
            assert_eq!((r.ready, r.reason.as_str()), (true, "all 2 sessions Established"));
        }
        // Only a peer that is connecting: not yet.
        let mut v: Value = serde_json::from_str(&with_second_dynamic_peer("OpenSent")).unwrap();
        v.as_object_mut().unwrap().remove("10.77.0.2");
        let r = h.report_from(&att, &parse_neighbors(&v.to_string()));
        assert!(!r.ready);
        assert_eq!(
            r.reason,
            "waiting for every session (3599 s of the 3600 s startup window left); 1 of 2 sessions Established; \
             not Established: listen range 10.77.0.0/24 (underlay): 10.77.0.3 OpenSent"
        );
        // No dynamic peer at all (FRR deleted it when its session closed).
        v.as_object_mut().unwrap().remove("10.77.0.3");
        let r = h.report_from(&att, &parse_neighbors(&v.to_string()));
        assert!(!r.ready);
        assert!(
            r.reason.ends_with("not Established: listen range 10.77.0.0/24 (underlay) no dynamic peer"),
            "{}",
            r.reason
        );
        // The unnumbered neighbor down: named by its interface.
        let mut v: Value = serde_json::from_str(LISTEN_UNNUMBERED).unwrap();
        v["ua"]["bgpState"] = "Idle".into();
        let r = h.report_from(&att, &parse_neighbors(&v.to_string()));
        assert!(!r.ready);
        assert!(r.reason.ends_with("not Established: ua (underlay) Idle"), "{}", r.reason);
        // After the window, a range with an Established dynamic peer is an underlay session up.
        let h0 = health(Duration::ZERO);
        h0.record_sync(&Ok(Some(())), Duration::from_millis(10));
        let r = h0.report_from(&att, &parse_neighbors(&v.to_string()));
        assert!(
            r.ready && r.reason.starts_with("startup window of 0 s over and 1 underlay session(s) up"),
            "{}",
            r.reason
        );
    }

    #[test]
    fn output_it_does_not_understand_is_an_error() {
        assert_eq!(parse_neighbors("{}").unwrap(), vec![]);
        for bad in [
            "% BGP instance not found",
            "[]",
            r#"{"10.0.0.1": {"remoteAs": 1}}"#,
            r#"{"10.0.0.1": {"bgpState": "Active", "addressFamilyInfo": {"ipv4Unicast": {}}}}"#,
            r#"{"10.0.0.1": {"bgpState": "Active", "peerBfdInfo": {"type": "single hop"}}}"#,
            r#"{"10.0.0.1": {"bgpState": "Active", "prefixesConfigExceedMax": "yes"}}"#,
            r#"{"10.0.0.1": {"bgpState": "Active", "peerSubnetRangeGroup": "range-10-0-0-0-24"}}"#,
        ] {
            assert!(parse_neighbors(bad).is_err(), "accepted {bad}");
        }
    }

    #[test]
    fn metrics_carry_every_configured_session_and_only_configured_extras() {
        let h = health(DEFAULT_STARTUP_WINDOW);
        h.record_apply(Ok(()), Duration::from_millis(30));
        h.record_apply(Err("frr-reload.py failed\nline 2"), Duration::from_millis(700));
        let att = sessions(&[
            ("192.168.91.2", SessionKind::Underlay),
            ("192.168.92.2", SessionKind::Underlay),
            ("192.169.10.2", SessionKind::Host),
        ]);
        let text = h.metrics_from(&att, &parse_neighbors(SAMPLE));
        let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        for want in [
            "openpe_frr_up 1",
            r#"openpe_bgp_session_up{peer="192.168.91.2",session="underlay"} 1"#,
            r#"openpe_bgp_session_up{peer="192.168.92.2",session="underlay"} 0"#,
            r#"openpe_bgp_session_up{peer="192.169.10.2",session="host"} 0"#,
            r#"openpe_bgp_prefixes_received{peer="192.168.91.2",afi="ipv4"} 1"#,
            r#"openpe_bgp_prefixes_advertised{peer="192.168.91.2",afi="ipv4"} 1"#,
            r#"openpe_bfd_session_up{peer="192.168.91.2"} 1"#,
            r#"openpe_bgp_max_prefix_exceeded{peer="192.168.92.2"} 1"#,
            r#"openpe_sidecar_applies_total{result="ok"} 1"#,
            r#"openpe_sidecar_applies_total{result="failed"} 1"#,
            "openpe_sidecar_apply_duration_seconds_count 2",
            r#"openpe_sidecar_apply_duration_seconds_bucket{le="0.05"} 1"#,
            r#"openpe_sidecar_apply_duration_seconds_bucket{le="1"} 2"#,
        ] {
            assert!(lines.contains(&want), "no line {want:?} in\n{text}");
        }
        // BFD and the prefix limit only where configured.
        assert_eq!(lines.iter().filter(|l| l.starts_with("openpe_bfd_session_up{")).count(), 1, "{text}");
        assert_eq!(lines.iter().filter(|l| l.starts_with("openpe_bgp_max_prefix_exceeded{")).count(), 1, "{text}");
        assert!(lines.iter().any(|l| l.starts_with("openpe_sidecar_last_apply_success_timestamp_seconds ")));
        // FRR not answering: every session counts as down.
        let text = h.metrics_from(&att, &Err(Error::io("vtysh: bgpd is not running")));
        assert!(text.lines().any(|l| l == "openpe_frr_up 0"), "{text}");
        assert!(text.lines().any(|l| l == r#"openpe_bgp_session_up{peer="192.168.91.2",session="underlay"} 0"#));
    }

    #[test]
    fn reasons_are_one_bounded_line_with_the_end_kept() {
        assert_eq!(one_line("a\n\n  b \n"), "a / b");
        assert_eq!(one_line("x \u{1b}[91m  ERROR\u{1b}[0m: y"), "x   ERROR: y");
        let long = format!("start{}\nline 41: % Unknown command", "-".repeat(1000));
        let l = one_line(&long);
        assert!(l.starts_with("start---") && l.ends_with("line 41: % Unknown command"), "{l}");
        assert_eq!(l.chars().count(), 120 + 5 + 280);
    }

    #[test]
    fn readiness_waits_for_every_session_then_for_one_underlay_after_the_window() {
        let established = parse_neighbors(SAMPLE);
        let att = sessions(&[("192.168.91.2", SessionKind::Underlay), ("192.168.92.2", SessionKind::Host)]);
        let all_up = sessions(&[("192.168.91.2", SessionKind::Underlay)]);
        let h = health(Duration::from_secs(3600));
        // Nothing applied yet.
        let r = h.report_from(&att, &established);
        assert!(!r.ready);
        assert!(r.reason.contains("not applied yet"), "{}", r.reason);
        h.record_sync(&Ok(Some(())), Duration::from_millis(10));
        let r = h.report_from(&att, &established);
        assert!(!r.ready);
        assert!(r.reason.contains("192.168.92.2 (host) Idle"), "{}", r.reason);
        assert!(h.report_from(&all_up, &established).ready);
        // After the window: one underlay session is enough.
        let h0 = health(Duration::ZERO);
        h0.record_sync(&Ok(Some(())), Duration::from_millis(10));
        let r = h0.report_from(&att, &established);
        assert!(r.ready, "{}", r.reason);
        let host_only = sessions(&[("192.168.92.2", SessionKind::Underlay), ("192.168.91.2", SessionKind::Host)]);
        assert!(!h0.report_from(&host_only, &established).ready);
        // A failing apply makes it unready whatever the sessions, until a pass succeeds or finds nothing to do.
        h.record_sync::<()>(&Err(Error::io("frr-reload.py --test failed:\nline 7: % Unknown command")), Duration::ZERO);
        let r = h.report_from(&all_up, &established);
        assert!(!r.ready);
        assert_eq!(
            r.reason,
            "the last apply of FRR's configuration failed: frr-reload.py --test failed: / line 7: % Unknown command"
        );
        assert_eq!((r.applies_ok, r.applies_failed), (1, 1));
        h.record_sync(&Ok(None::<()>), Duration::ZERO);
        assert!(h.report_from(&all_up, &established).ready);
        // No attachment, one in progress, FRR silent.
        assert!(!h.report_from(&Ok(Attachment::None), &established).ready);
        let pending = Ok(Attachment::Pending { stem: "x".into() });
        assert!(h.report_from(&pending, &established).reason.contains("ADD has not finished"));
        let r = h.report_from(&all_up, &Err(Error::io("bgpd is not running")));
        assert!(!r.ready);
        assert_eq!(r.sessions[0].state, "unknown");
    }
}
