//! The BGP sidecar: runs in the router's network namespace next to FRR and keeps FRR's configuration equal to
//! what the state directory says about the attachment that holds this namespace.
//!
//! One pass ([`Sidecar::sync`]) reads the state, renders the configuration, and applies it when it differs
//! from what was last applied or FRR restarted since. `--once` runs one pass; the watch loop ([`watch`]) runs a
//! pass on every change of the state directory (inotify), on a one-second tick (FRR restarts, `--frr-extra`
//! edits, a state directory that does not exist yet), and when a failed apply's backoff expires.

mod bfd;
pub mod frr;
pub mod watch;
// Issue 16: metrics, liveness and readiness over HTTP (--http-listen).
pub mod http;
pub mod metrics;

use std::path::PathBuf;

use crate::bgp::{self, Secrets};
use crate::error::{Error, Result};
use crate::log_info;
use crate::netns::{Netns, NsId};
use crate::state::{Claim, Phase, StateDir};

pub use frr::Frr;

pub struct Options {
    pub state_dir: PathBuf,
    pub frr: Frr,
    pub extra: Option<PathBuf>,
}

/// What the state directory asks of this namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// The attachment (its record stem) and the configuration to apply.
    Attachment { stem: String, config: String, passwords: Vec<String> },
    /// No attachment holds this namespace: no BGP configuration.
    Nothing { config: String },
    /// The attachment's ADD has not finished: leave FRR alone until it does.
    Pending { stem: String },
}

impl Want {
    fn config(&self) -> Option<&str> {
        match self {
            Want::Attachment { config, .. } | Want::Nothing { config } => Some(config),
            Want::Pending { .. } => None,
        }
    }
    fn describe(&self) -> String {
        match self {
            Want::Attachment { stem, .. } => format!("attachment {stem}"),
            Want::Nothing { .. } => "no attachment".into(),
            Want::Pending { stem } => format!("attachment {stem} (ADD in progress)"),
        }
    }
}

pub struct Sidecar {
    opts: Options,
    me: NsId,
    /// The configuration text last applied successfully, and FRR's generation at the time.
    applied: Option<(String, Option<Vec<frr::Generation>>)>,
}

/// Replace every known password in `text` (frr-reload.py's output quotes configuration lines).
fn mask_passwords(text: &str, passwords: &[String]) -> String {
    let mut out = text.to_string();
    for p in passwords {
        if !p.is_empty() {
            out = out.replace(p.as_str(), bgp::render::MASK);
        }
    }
    out.lines().map(bgp::mask_line).collect::<Vec<_>>().join("\n")
}

impl Sidecar {
    /// A sidecar for the namespace this thread runs in.
    pub fn new(opts: Options) -> Result<Sidecar> {
        let me = Netns::current()?.id;
        Ok(Sidecar { opts, me, applied: None })
    }

    pub fn namespace(&self) -> &NsId {
        &self.me
    }

    fn extra(&self) -> Result<String> {
        match &self.opts.extra {
            None => Ok(String::new()),
            Some(p) => std::fs::read_to_string(p).map_err(|e| {
                Error::io(format!("--frr-extra: cannot read {}: {e}; fix or remove the file", p.display()))
            }),
        }
    }

    fn header(&self) -> String {
        format!(
            "! Written by openpe-sidecar from the state directory {}; it rewrites this file on every change.\n",
            self.opts.state_dir.display()
        )
    }

    /// What the state directory asks for now.
    pub fn want(&self) -> Result<Want> {
        let dir = &self.opts.state_dir;
        let extra = self.extra()?;
        let with_extra = |body: String| {
            let mut s = self.header();
            s.push_str(&body);
            if !extra.is_empty() {
                s.push_str("!\n! --frr-extra\n");
                s.push_str(&extra);
                if !extra.ends_with('\n') {
                    s.push('\n');
                }
            }
            s
        };
        let nothing = || Want::Nothing { config: with_extra(bgp::unconfigured()) };
        if !dir.join("netns").is_dir() {
            return Ok(nothing());
        }
        let state = StateDir::open_read_only(dir)?;
        let Some(stem) = state.holder(Claim::Netns, &self.me.key())? else {
            return Ok(nothing());
        };
        let Some(rec) = state.load_stem(&stem)? else {
            // A claim without its record: DEL is between the two steps, or ADD before the record; either way
            // there is nothing to configure.
            return Ok(nothing());
        };
        if !rec.netns.same_ns(&self.me) {
            return Ok(nothing());
        }
        if rec.phase != Phase::Complete {
            return Ok(Want::Pending { stem });
        }
        bfd::require_bfdd(&self.opts.frr, &rec.underlay)?;
        let config = with_extra(
            bgp::render_record(&rec, Secrets::Show)
                .map_err(|e| e.context(format!("rendering the configuration of attachment {stem}")))?,
        );
        let passwords = rec.underlay.neighbors.iter().filter_map(|n| n.password.clone()).collect();
        Ok(Want::Attachment { stem, config, passwords })
    }

    /// One pass: apply what the state asks for if it differs from what was applied or FRR restarted since.
    /// Returns whether it applied anything.
    pub fn sync(&mut self, force: bool) -> Result<bool> {
        let want = self.want()?;
        let Some(config) = want.config() else {
            return Ok(false);
        };
        let generation = self.opts.frr.generation();
        let restarted = match &self.applied {
            Some((_, g)) => g != &generation,
            None => false,
        };
        let unchanged = self.applied.as_ref().is_some_and(|(t, _)| t == config);
        if unchanged && !restarted && !force {
            return Ok(false);
        }
        let passwords: &[String] = match &want {
            Want::Attachment { passwords, .. } => passwords,
            _ => &[],
        };
        let previous = self.applied.as_ref().map(|(t, _)| t.as_str()).unwrap_or("");
        let changes = bgp::diff(previous, config);
        self.opts.frr.write_config(config)?;
        if let Err(e) = self.opts.frr.apply() {
            // FRR may have applied part of it: compare against nothing next time, so it is applied whole.
            self.applied = None;
            return Err(Error::new(e.kind, mask_passwords(&e.msg, passwords)));
        }
        let why = if restarted {
            "FRR restarted; re-applied"
        } else if self.applied.is_none() {
            "applied"
        } else {
            "re-applied"
        };
        log_info!(
            "{why} the configuration for {} to {} ({} changes){}",
            want.describe(),
            self.opts.frr.config_path.display(),
            changes.len(),
            if changes.is_empty() { "" } else { ":" }
        );
        for c in &changes {
            log_info!("  {c}");
        }
        self.applied = Some((config.to_string(), self.opts.frr.generation()));
        Ok(true)
    }

    /// `--once`: apply what the state asks for, or say why not.
    pub fn once(&mut self) -> Result<()> {
        match self.want()? {
            Want::Pending { stem } => Err(Error::busy(format!(
                "attachment {stem} holds this namespace but its ADD has not finished; run again after ADD returns"
            ))),
            Want::Nothing { .. } => Err(Error::new(
                crate::error::Kind::NotReady,
                format!(
                    "no attachment in state directory {} holds this network namespace ({}); run the sidecar \
                     inside the router namespace (CNI_NETNS) after ADD, with the plugin's stateDir",
                    self.opts.state_dir.display(),
                    self.me.key()
                ),
            )),
            Want::Attachment { .. } => self.sync(true).map(|_| ()),
        }
    }

    pub fn options(&self) -> &Options {
        &self.opts
    }
}

pub use watch::watch;
