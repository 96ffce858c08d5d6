//! DEL: undo exactly what the record describes, then forget it. Idempotent: no record means nothing to do,
//! and a namespace that is already gone counts as cleaned.
//!
//! The attachment is found by network and container id, whatever CNI_IFNAME says (podman's `network reload`
//! sends DEL with another ifname than the ADD it undoes), and also when CNI_NETNS is empty (CNI allows it on
//! DEL). When CNI_NETNS opens to a live namespace that is not the recorded one while the recorded one is alive
//! too, the record belongs to another attachment: it is left alone.

use std::os::unix::fs::MetadataExt;

use crate::cni::Env;
use crate::cni::Envelope;
use crate::error::{Error, Input, Result};
use crate::netns::Netns;
use crate::state::StateDir;
use crate::{log_debug, log_warn};

use super::drain_and_remove;

pub fn del(env: &Env, envelope: &Envelope) -> Result<()> {
    let state = StateDir::open_locked(&envelope.settings.state_dir)?;
    let key = super::key(env, envelope);
    let records = state.find(&key.network, &key.container_id)?;
    if records.is_empty() {
        // Without a record this plugin made nothing for this key, so it touches nothing.
        log_debug!("DEL: no attachment recorded for {key}; nothing to do");
        return Ok(());
    }
    // CNI_NETNS at the recorded nsfs inode is the recorded namespace, or a new one that reuses the inode of the
    // dead recorded one: either way the record is this DEL's, so the namespace need not be opened for its cookie.
    let inode = env.netns.as_ref().and_then(|p| std::fs::metadata(p).ok()).map(|m| (m.dev(), m.ino()));
    let mut here = None;
    let mut errors = Vec::new();
    for rec in records {
        if let Some(p) = env.netns.as_ref().filter(|_| inode != Some((rec.netns.dev, rec.netns.ino))) {
            let here = here.get_or_insert_with(|| Netns::open(p, Input::Runtime, "CNI_NETNS").ok().map(|ns| ns.id));
            if let Some(here) = here.as_ref().filter(|h| !rec.netns.same_ns(h) && rec.netns.is_alive()) {
                log_warn!(
                    "DEL: attachment {} lives in router namespace {}, not in CNI_NETNS {}; leaving it",
                    rec.key,
                    rec.netns.path.display(),
                    here.path.display()
                );
                continue;
            }
        }
        if let Err(e) = drain_and_remove(&state, &rec, envelope) {
            errors.push(e);
        }
    }
    match Error::join(errors) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
