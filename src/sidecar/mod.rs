//! The BGP sidecar: runs in the router's network namespace next to FRR and keeps FRR's configuration equal to
//! what the state directory says about the attachment that holds this namespace.
//!
//! One pass ([`Sidecar::sync`]) reads the state, renders the configuration, and applies it when it differs
//! from what was last applied or FRR restarted since: as one configuration transaction of the delta (on the
//! daemons' vty sockets, as `vtysh -f` would send it: [`frr::Frr::apply_transaction`]) when the
//! change is one [`delta::plan`] expresses, else (start-up, FRR restarted, a failed apply, anything else)
//! with `frr-reload.py --reload`. Every apply is checked against FRR's running configuration; a delta that
//! did not land is followed by the full path. `--once` runs one pass; the watch loop ([`watch`]) runs a pass on
//! every change of the state directory or of `--frr-extra` (inotify), on a one-second tick (FRR restarts),
//! and when a failed apply's backoff expires. docs/sidecar.md tells the whole story.

mod bfd;
pub mod delta;
pub mod drain;
pub mod frr;
pub mod watch;
// Issue 16: metrics, liveness and readiness over HTTP (--http-listen).
pub mod http;
pub mod metrics;
// Issue 14: neighbor passwords read from mounted Secrets (passwordSecret).
pub mod secrets;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::time::Instant;

use crate::bgp::{self, Secrets};
use crate::error::{Error, Result};
use crate::netns::{Netns, NsId};
use crate::state::{Phase, StateDir};
use crate::{log_info, log_warn};

pub use frr::Frr;

pub struct Options {
    pub state_dir: PathBuf,
    pub frr: Frr,
    pub extra: Option<PathBuf>,
    /// Always apply with frr-reload.py (the reference path, for comparison): `--full-reload`.
    pub full_reload: bool,
    /// Where the router pod mounts its Secrets, one directory per Secret (`passwordSecret`).
    pub secrets_dir: PathBuf,
}

/// What the state directory asks of this namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// The attachment (its record stem), its BGP configuration, and its neighbors' passwords (to mask).
    Attachment { stem: String, bgp: String, passwords: Vec<String> },
    /// No attachment holds this namespace: no BGP configuration.
    Nothing,
    /// The attachment's ADD has not finished: leave FRR alone until it does.
    Pending { stem: String },
}

impl Want {
    fn bgp(&self) -> Option<String> {
        match self {
            Want::Attachment { bgp, .. } => Some(bgp.clone()),
            Want::Nothing => Some(bgp::unconfigured()),
            Want::Pending { .. } => None,
        }
    }
    fn describe(&self) -> String {
        match self {
            Want::Attachment { stem, .. } => format!("attachment {stem}"),
            Want::Nothing => "no attachment".into(),
            Want::Pending { stem } => format!("attachment {stem} (ADD in progress)"),
        }
    }
    fn passwords(&self) -> &[String] {
        match self {
            Want::Attachment { passwords, .. } => passwords,
            _ => &[],
        }
    }
}

/// Everything one pass depends on: the state directory's answer and `--frr-extra`'s text.
pub struct Input {
    want: Want,
    extra: String,
}

/// What was applied last, and FRR's generation right after.
struct Applied {
    bgp: String,
    extra: String,
    config: String,
    generation: Option<Vec<frr::Generation>>,
    /// FRR's running BGP configuration was found equal to `config`: a delta can start from it.
    verified: bool,
}

/// How a pass applied the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// One configuration transaction of the delta.
    Delta,
    /// `frr-reload.py --reload` of the whole file.
    Full,
}

pub struct Sidecar {
    opts: Options,
    me: NsId,
    applied: Option<Applied>,
    secrets: secrets::SecretStore,
}

impl Sidecar {
    /// A sidecar for the namespace this thread runs in.
    pub fn new(opts: Options) -> Result<Sidecar> {
        let me = Netns::current()?.id;
        let secrets = secrets::SecretStore::new(opts.secrets_dir.clone());
        Ok(Sidecar { opts, me, applied: None, secrets })
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

    /// The whole file: header, BGP configuration, `--frr-extra` verbatim.
    fn config(&self, bgp: &str, extra: &str) -> String {
        let mut s = self.header();
        s.push_str(bgp);
        if !extra.is_empty() {
            s.push_str("!\n! --frr-extra\n");
            s.push_str(extra);
            if !extra.ends_with('\n') {
                s.push('\n');
            }
        }
        s
    }

    /// What the state directory asks for now.
    pub fn want(&self) -> Result<Want> {
        let dir = &self.opts.state_dir;
        if !dir.join("netns").is_dir() {
            return Ok(Want::Nothing);
        }
        // A claim without its record (DEL between its two steps, or ADD before the record) asks for nothing.
        let Some(rec) = StateDir::open_read_only(dir)?.router_attachment(&self.me)? else {
            return Ok(Want::Nothing);
        };
        let stem = rec.stem.clone();
        if rec.phase != Phase::Complete {
            return Ok(Want::Pending { stem });
        }
        // A passwordSecret is read from the mounted Secret now; a neighbor whose Secret is not right is left out.
        let (underlay, host_session) = rec.bgp_settings();
        bfd::require_bfdd(&self.opts.frr, &underlay)?;
        let underlay = self.secrets.resolve(&underlay);
        let bgp = bgp::render(&underlay, &host_session, rec.node_index, &rec.addresses, Secrets::Show)
            .map_err(|e| e.context(format!("rendering the configuration of attachment {stem}")))?;
        let passwords = underlay.neighbors.iter().filter_map(|n| n.password.clone()).collect();
        Ok(Want::Attachment { stem, bgp, passwords })
    }

    /// Everything a pass depends on, read now.
    pub fn input(&self) -> Result<Input> {
        Ok(Input { want: self.want()?, extra: self.extra()? })
    }

    /// A digest of what a pass would do with `input` (or of why there is no input), FRR's generation
    /// included: the watch loop backs off only while this stays the same.
    pub fn fingerprint(&self, input: &Result<Input>) -> u64 {
        let mut h = DefaultHasher::new();
        match input {
            Ok(i) => match i.want.bgp() {
                Some(b) => self.config(&b, &i.extra).hash(&mut h),
                None => i.want.describe().hash(&mut h),
            },
            Err(e) => e.msg.hash(&mut h),
        }
        format!("{:?}", self.opts.frr.generation()).hash(&mut h);
        h.finish()
    }

    /// One pass: apply what the state asks for if it differs from what was applied or FRR restarted since
    /// (`force`: apply whole in any case). Returns how it applied, or None when nothing needed applying.
    pub fn sync(&mut self, force: bool) -> Result<Option<Path>> {
        let input = self.input()?;
        self.sync_input(input, force)
    }

    /// [`Sidecar::sync`] with the input already read.
    pub(crate) fn sync_input(&mut self, input: Input, force: bool) -> Result<Option<Path>> {
        let Some(bgp) = input.want.bgp() else {
            return Ok(None);
        };
        let config = self.config(&bgp, &input.extra);
        let generation = self.opts.frr.generation();
        let restarted = self.applied.as_ref().is_some_and(|a| a.generation != generation);
        let unchanged = self.applied.as_ref().is_some_and(|a| a.config == config);
        if unchanged && !restarted && !force {
            return Ok(None);
        }
        let passwords = input.want.passwords().to_vec();
        let mask = |e: Error| Error::new(e.kind, bgp::mask(&e.msg, &passwords));
        let transaction = match &self.applied {
            Some(a) if a.verified && !restarted && !force && !self.opts.full_reload && a.extra == input.extra => {
                delta::plan(&a.bgp, &bgp)
            }
            _ => None,
        };
        let previous = self.applied.as_ref().map(|a| a.config.clone()).unwrap_or_default();
        let changes = bgp::diff(&previous, &config);
        let started = Instant::now();
        // The file first: FRR reads it if it restarts while (or after) this applies.
        self.opts.frr.write_config(&config)?;
        // Until this apply is known to be complete, the next one starts from nothing (the full path).
        self.applied = None;
        let mut path = Path::Full;
        let mut done = false;
        let mut verified = true;
        if let Some(t) = &transaction {
            match self.opts.frr.apply_transaction(t).and_then(|()| self.check(&config)) {
                Ok(()) => {
                    path = Path::Delta;
                    done = true;
                }
                Err(e) => log_warn!("{}; applying the whole file with frr-reload.py instead", mask(e).msg),
            }
        }
        if !done {
            let reloaded = self.opts.frr.reload();
            // frr-reload.py's closing `vtysh write` (with a pathspace) replaced the file: put the sidecar's back.
            let rewritten = self.opts.frr.write_config(&config);
            reloaded.map_err(mask)?;
            rewritten?;
            if let Err(e) = self.check(&config) {
                verified = self.after_reload(&config, e, &passwords).map_err(mask)?;
            }
        }
        let why = if restarted {
            "FRR restarted; re-applied"
        } else if previous.is_empty() {
            "applied"
        } else {
            "re-applied"
        };
        log_info!(
            "{why} the configuration for {} to {} by {} in {} ms ({} changes){}",
            input.want.describe(),
            self.opts.frr.config_path.display(),
            match path {
                Path::Delta => "one configuration transaction",
                Path::Full => "frr-reload.py",
            },
            started.elapsed().as_millis(),
            changes.len(),
            if changes.is_empty() { "" } else { ":" }
        );
        for c in &changes {
            log_info!("  {}", bgp::mask(c, &passwords));
        }
        let generation = self.opts.frr.generation();
        self.applied = Some(Applied { bgp, extra: input.extra, config, generation, verified });
        Ok(Some(path))
    }

    /// FRR's running BGP configuration (bgpd's) against `config`.
    fn check(&self, config: &str) -> Result<()> {
        let running = self.opts.frr.bgpd_running_config()?;
        let diffs = delta::differences(config, &running);
        if diffs.is_empty() {
            return Ok(());
        }
        Err(Error::io(format!(
            "FRR's running BGP configuration differs from the one meant ({} lines): {}",
            diffs.len(),
            diffs.join("; ")
        )))
    }

    /// frr-reload.py returned but bgpd's configuration differs from `config` (`difference`): give bgpd the
    /// lines it lacks in one transaction ([`delta::repair`]) and check again. Whether bgpd now holds exactly
    /// `config`; when not (FRR's normalisation of a `--frr-extra` line, say), a warning, and the next change
    /// goes through frr-reload.py again (not this one again: that would reload every second for nothing).
    fn after_reload(&self, config: &str, difference: Error, passwords: &[String]) -> Result<bool> {
        let running = self.opts.frr.bgpd_running_config()?;
        if let Some(t) = delta::repair(config, &running) {
            log_info!(
                "after frr-reload.py: {}; giving bgpd the missing lines in one transaction",
                bgp::mask(&difference.msg, passwords)
            );
            self.opts.frr.apply_transaction(&t)?;
        }
        match self.check(config) {
            Ok(()) => Ok(true),
            Err(e) => {
                log_warn!("after frr-reload.py: {}", bgp::mask(&e.msg, passwords));
                Ok(false)
            }
        }
    }

    /// `--once`: apply what the state asks for, or say why not.
    pub fn once(&mut self) -> Result<()> {
        match self.want()? {
            Want::Pending { stem } => Err(Error::busy(format!(
                "attachment {stem} holds this namespace but its ADD has not finished; run again after ADD returns"
            ))),
            Want::Nothing => Err(Error::new(
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

    /// The neighbors the last render left out because their passwordSecret could not be used.
    pub(crate) fn left_out(&self) -> Vec<secrets::LeftOut> {
        self.secrets.left_out()
    }

    pub fn options(&self) -> &Options {
        &self.opts
    }
}

pub use watch::watch;
