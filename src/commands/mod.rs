//! The CNI verbs, each readable top to bottom: ADD, DEL, CHECK, VERSION, STATUS, GC.

pub mod add;
pub mod check;
pub mod del;
mod delegate;
pub mod gc;

use std::time::Duration;

use serde_json::{json, Value};

use crate::cni::{reply_version, version_at_least, Command, Env, Envelope, SUPPORTED_VERSIONS};
use crate::config;
use crate::error::{Error, Kind, Result};
use crate::state::{Claim, Key, Record, StateDir};
use crate::{datapath, fault, log, log_info};

/// Run one CNI invocation. Returns what to print on stdout (nothing for DEL, CHECK, STATUS, GC).
pub fn run(command: Command, stdin: &[u8]) -> Result<Option<Value>> {
    if command == Command::Version {
        return Ok(Some(version(stdin)));
    }
    let conf = config::parse_json(stdin)?;
    let envelope = Envelope::parse(&conf)?;
    if let Some(level) = envelope.settings.log_level {
        log::set_level(level);
    }
    if let Some(file) = &envelope.settings.log_file {
        log::set_file(file);
    }
    let need = |min: &str, verb: &str| -> Result<()> {
        if version_at_least(&envelope.cni_version, min) {
            Ok(())
        } else {
            Err(Error::new(
                Kind::Version,
                format!("{verb} needs cniVersion {min} or later; the configuration says {}", envelope.cni_version),
            ))
        }
    };
    match command {
        Command::Check => need("0.4.0", "CHECK")?,
        Command::Status => need("1.1.0", "STATUS")?,
        Command::Gc => need("1.1.0", "GC")?,
        _ => {}
    }
    let env = Env::from_env(command)?;
    match command {
        Command::Add => add::add(&env, &envelope).map(Some),
        Command::Del => del::del(&env, &envelope).map(|()| None),
        Command::Check => check::check(&env, &envelope).map(|()| None),
        Command::Gc => gc::gc(&envelope).map(|()| None),
        Command::Status => status(&envelope).map(|()| None),
        Command::Version => unreachable!("handled above"),
    }
}

/// VERSION: stdin may be empty, and no other variable is looked at.
fn version(stdin: &[u8]) -> Value {
    json!({ "cniVersion": reply_version(stdin, |_| true), "supportedVersions": SUPPORTED_VERSIONS })
}

/// STATUS: ready when the state directory can be created, checked and locked.
fn status(envelope: &Envelope) -> Result<()> {
    StateDir::open_locked(&envelope.settings.state_dir)
        .map(|_| ())
        .map_err(|e| Error::new(Kind::NotReady, format!("not ready: {}", e.msg)).with_source(e))
}

/// The attachment's key, built in this one place. CNI_IFNAME is recorded in it but is not part of the identity:
/// records are found by network and container id ([`StateDir::find`]), and told apart by router namespace.
pub(crate) fn key(env: &Env, envelope: &Envelope) -> Key {
    Key { network: envelope.name.clone(), container_id: env.container_id.clone(), ifname: env.ifname.clone() }
}

/// DEL's and GC's teardown: a sidecar serving the router namespace first closes the attachment's BGP sessions
/// (at most `drainTimeoutSeconds`; see src/drain.rs), then the attachment is removed.
pub(crate) fn drain_and_remove(state: &StateDir, rec: &Record, envelope: &Envelope) -> Result<()> {
    crate::drain::close_sessions(state, rec, envelope.settings.drain_timeout);
    remove_attachment(state, rec, envelope.settings.delegate_timeout)
}

/// Remove an attachment completely: kernel first, then its claims, then its record, last. On a kernel failure
/// the record stays, so the next DEL can finish the job. Each delegated plugin's DEL (CNIDevice) gets at most
/// `delegate_timeout` (`delegateTimeoutSeconds`).
pub(crate) fn remove_attachment(state: &StateDir, rec: &Record, delegate_timeout: Duration) -> Result<()> {
    // What delegated plugins made (CNIDevice) goes first: ADD made it last.
    delegate::del(rec, delegate_timeout)?;
    datapath::teardown(rec)?;
    release_claims(state, rec)?;
    fault::point("del:claims-released");
    state.remove(rec)?;
    log_info!("removed attachment {}", rec.key);
    Ok(())
}

fn release_claims(state: &StateDir, rec: &Record) -> Result<()> {
    state.release(Claim::Index, &rec.node_index.to_string(), rec)?;
    state.release(Claim::Netns, &rec.netns.key(), rec)?;
    state.release(Claim::HostNetns, &rec.host_netns.key(), rec)?;
    Ok(())
}
