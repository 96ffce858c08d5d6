//! DEL: undo exactly what the record describes, then forget it. Idempotent: no record means nothing to do,
//! and a namespace that is already gone counts as cleaned.

use crate::cni::Env;
use crate::cni::Envelope;
use crate::error::Result;
use crate::log_debug;
use crate::state::{Key, StateDir};

use super::drain_and_remove;

pub fn del(env: &Env, envelope: &Envelope) -> Result<()> {
    let state = StateDir::open_locked(&envelope.settings.state_dir)?;
    let key =
        Key { network: envelope.name.clone(), container_id: env.container_id.clone(), ifname: env.ifname.clone() };
    match state.load(&key)? {
        // Without a record this plugin made nothing for this key, so it touches nothing.
        None => {
            log_debug!("DEL: no attachment recorded for {key}; nothing to do");
            Ok(())
        }
        Some(rec) => drain_and_remove(&state, &rec, envelope),
    }
}
