//! GC (CNI 1.1): remove, as DEL does, every attachment of this network that the runtime no longer lists.
//! Keeps going past individual failures and reports them together.

use crate::cni::{Envelope, ValidAttachments};
use crate::error::{Error, Result};
use crate::state::StateDir;
use crate::{log_info, log_warn};

use super::drain_and_remove;

pub fn gc(envelope: &Envelope) -> Result<()> {
    let state = StateDir::open_locked(&envelope.settings.state_dir)?;
    // Absent, null and [] all mean "nothing is valid" here, as before the envelope kept them apart.
    let valid = match &envelope.valid_attachments {
        ValidAttachments::List(list) => list.clone(),
        ValidAttachments::Absent | ValidAttachments::Null => Vec::new(),
    };
    let mut errors = Vec::new();
    for stem in state.stems()? {
        let rec = match state.load_stem(&stem) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        if rec.key.network != envelope.name {
            continue;
        }
        let listed = valid.iter().any(|v| v.container_id == rec.key.container_id && v.ifname == rec.key.ifname);
        if listed {
            continue;
        }
        log_info!("GC: removing attachment {}, which the runtime no longer lists", rec.key);
        if let Err(e) = drain_and_remove(&state, &rec, envelope) {
            log_warn!("GC: {}: {}", rec.key, e.msg);
            errors.push(e.context(format!("removing {}", rec.key)));
        }
    }
    match Error::join(errors) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
