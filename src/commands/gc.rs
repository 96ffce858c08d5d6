//! GC (CNI 1.1): remove, as DEL does, every attachment of this network that the runtime no longer lists.
//! Keeps going past individual failures and reports them together.
//!
//! `cni.dev/valid-attachments` (or the legacy `cni.dev/attachments`):
//! - absent: the runtime said nothing about what is valid, so nothing is removed (a warning says so);
//! - `null` or `[]` (libcni sends `null` for an empty list): every attachment of the network goes;
//! - a list: every attachment of the network whose container id is not listed goes. The listed `ifname` is
//!   not compared: an attachment is identified by network, container id and router namespace, and CNI_IFNAME
//!   may differ between the runtime's calls (podman's network reload).

use crate::cni::{Envelope, ValidAttachment, ValidAttachments};
use crate::error::{Error, Result};
use crate::state::StateDir;
use crate::{log_info, log_warn};

use super::drain_and_remove;

/// What the runtime says is still valid.
enum Valid {
    /// The key is absent.
    Absent,
    /// The key's list (`null` reads as an empty list).
    Listed(Vec<ValidAttachment>),
}

impl Valid {
    fn of(envelope: &Envelope) -> Valid {
        match &envelope.valid_attachments {
            ValidAttachments::Absent => Valid::Absent,
            ValidAttachments::Null => Valid::Listed(Vec::new()),
            ValidAttachments::List(list) => Valid::Listed(list.clone()),
        }
    }
}

pub fn gc(envelope: &Envelope) -> Result<()> {
    let state = StateDir::open_locked(&envelope.settings.state_dir)?;
    let valid = match Valid::of(envelope) {
        Valid::Absent => {
            log_warn!(
                "GC: the configuration has no cni.dev/valid-attachments, so nothing is known to be stale; \
                 removing nothing"
            );
            return Ok(());
        }
        Valid::Listed(v) => v,
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
        if valid.iter().any(|v| v.container_id == rec.key.container_id) {
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
