//! The drain handshake between DEL and the sidecar, through two files of the sidecar's own in the state
//! directory, named by the cookie of the router namespace it serves:
//!
//! ```text
//! <stateDir>/sidecars/<cookie>.alive   flock held by the sidecar for as long as it runs
//! <stateDir>/sidecars/<cookie>.ack     the record (stem) whose sessions the sidecar has closed
//! ```
//!
//! DEL probes the lock: nobody holding it means no sidecar serves the namespace (in Kubernetes the kubelet stops
//! the pod's containers before it calls DEL), and DEL does not wait at all. Otherwise DEL marks the record as
//! going away ([`Phase::Removing`]), and waits (at most `drainTimeoutSeconds`) for the acknowledgement naming
//! that record; the sidecar writes it once FRR has sent every neighbor of the attachment a NOTIFICATION. These
//! are the only files the sidecar writes in the state directory; it never touches records or claims.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{IoContext, Result};
use crate::netns::Netns;
use crate::state::{Phase, Record, StateDir};
use crate::{log_debug, log_info, log_warn};

const DIR: &str = "sidecars";

fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join(DIR)
}

fn alive_path(state_dir: &Path, cookie: u64) -> PathBuf {
    dir(state_dir).join(format!("{cookie}.alive"))
}

fn ack_path(state_dir: &Path, cookie: u64) -> PathBuf {
    dir(state_dir).join(format!("{cookie}.ack"))
}

/// The sidecar's side: held for as long as the sidecar runs.
pub(crate) struct Presence {
    state_dir: PathBuf,
    cookie: u64,
    _lock: File,
}

impl Presence {
    /// Announce a sidecar for the namespace with `cookie`. Fails (busy) if another sidecar already serves it.
    pub fn hold(state_dir: &Path, cookie: u64) -> Result<Presence> {
        let d = dir(state_dir);
        match fs::DirBuilder::new().mode(0o700).create(&d) {
            Err(e) if e.kind() != ErrorKind::AlreadyExists => {
                return Err(e).io_ctx(|| format!("creating {}", d.display()))
            }
            _ => {}
        }
        let path = alive_path(state_dir, cookie);
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .io_ctx(|| format!("opening {}", path.display()))?;
        // DEL's probe ([`sidecar_alive`]) holds a shared lock for an instant: only a lock held for longer than
        // that is another sidecar.
        let deadline = Instant::now() + Duration::from_millis(500);
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(crate::error::Error::busy(format!(
                        "another openpe-sidecar already serves this network namespace (it holds {})",
                        path.display()
                    )))
                }
                Err(TryLockError::Error(e)) => return Err(e).io_ctx(|| format!("locking {}", path.display())),
            }
        }
        Ok(Presence { state_dir: state_dir.to_path_buf(), cookie, _lock: lock })
    }

    /// Whether the sessions of `stem` are acknowledged already.
    pub(crate) fn acknowledged(&self, stem: &str) -> bool {
        fs::read_to_string(ack_path(&self.state_dir, self.cookie)).is_ok_and(|s| s == stem)
    }

    /// Tell DEL that the sessions of the attachment recorded as `stem` are closed.
    pub(crate) fn acknowledge(&self, stem: &str) -> Result<()> {
        let path = ack_path(&self.state_dir, self.cookie);
        let tmp = dir(&self.state_dir).join(format!("{}.ack.tmp", self.cookie));
        crate::fsutil::write_atomically(&tmp, &path, stem.as_bytes(), None)
            .io_ctx(|| format!("writing {}", path.display()))
    }
}

impl Drop for Presence {
    /// A sidecar that exits cleanly leaves nothing behind (one killed leaves an unlocked file, which reads as
    /// "no sidecar").
    fn drop(&mut self) {
        let _ = fs::remove_file(ack_path(&self.state_dir, self.cookie));
        let _ = fs::remove_file(alive_path(&self.state_dir, self.cookie));
    }
}

/// DEL's side: whether a sidecar serves the namespace with `cookie` now (someone holds its lock).
pub(crate) fn sidecar_alive(state_dir: &Path, cookie: u64) -> bool {
    let path = alive_path(state_dir, cookie);
    let Ok(f) = OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC).open(&path) else {
        return false;
    };
    matches!(f.try_lock_shared(), Err(TryLockError::WouldBlock))
}

/// DEL's side: wait until the sidecar acknowledges `stem`, at most `timeout`. True if it did.
pub(crate) fn wait_for_ack(state_dir: &Path, cookie: u64, stem: &str, timeout: Duration) -> bool {
    let path = ack_path(state_dir, cookie);
    let deadline = Instant::now() + timeout;
    loop {
        if fs::read_to_string(&path).is_ok_and(|s| s == stem) {
            return true;
        }
        if Instant::now() >= deadline || !sidecar_alive(state_dir, cookie) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether any sidecar ever announced itself in this state directory: one directory read, so that a node
/// without sidecars pays nothing more on DEL.
fn any_sidecar(state_dir: &Path) -> bool {
    fs::read_dir(dir(state_dir)).is_ok_and(|mut entries| entries.next().is_some())
}

/// Before the teardown of `rec`: when a sidecar serves its router namespace, have it close the attachment's
/// BGP sessions (a NOTIFICATION to every neighbor) while the NIC and the veth are still there, waiting at most
/// `timeout`. Best effort: every failure is logged and the teardown goes on as without a sidecar.
pub(crate) fn close_sessions(state: &StateDir, rec: &Record, timeout: Duration) {
    if timeout.is_zero() || !any_sidecar(state.root()) || !rec.netns.is_alive() {
        return;
    }
    // The recorded cookie; a record written before cookies were recorded: the one the namespace has now.
    let cookie = match rec.netns.cookie.or_else(|| {
        Netns::open(&rec.netns.path, crate::error::Input::Runtime, "netns")
            .ok()
            .filter(|ns| ns.id.same_ns(&rec.netns))
            .and_then(|ns| ns.id.cookie)
    }) {
        Some(c) => c,
        None => {
            log_warn!(
                "router namespace {} has no cookie to find its sidecar by; not draining",
                rec.netns.path.display()
            );
            return;
        }
    };
    if !sidecar_alive(state.root(), cookie) {
        log_debug!("no openpe-sidecar serves router namespace {}; not draining", rec.netns.path.display());
        return;
    }
    let stem = rec.stem.clone();
    // An acknowledgement left from an earlier attachment with the same key must not pass for this one.
    let _ = fs::remove_file(ack_path(state.root(), cookie));
    let mut marked = rec.clone();
    marked.phase = Phase::Removing;
    if let Err(e) = state.save(&marked) {
        log_warn!(
            "cannot mark attachment {} as going away ({}); removing it without closing its sessions first",
            rec.key,
            e.msg
        );
        return;
    }
    let started = Instant::now();
    if wait_for_ack(state.root(), cookie, &stem, timeout) {
        log_info!("openpe-sidecar closed the BGP sessions of {} in {} ms", rec.key, started.elapsed().as_millis());
    } else {
        log_warn!(
            "openpe-sidecar did not confirm closing the BGP sessions of {} within {} ms; removing it anyway",
            rec.key,
            started.elapsed().as_millis()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp() -> PathBuf {
        let d = std::env::temp_dir().join(format!("openpe-drain-{}-{:?}", std::process::id(), Instant::now()));
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn presence_is_seen_while_held_and_acknowledges() {
        let d = tmp();
        assert!(!any_sidecar(&d));
        assert!(!sidecar_alive(&d, 7), "nobody holds it yet");
        let p = Presence::hold(&d, 7).unwrap();
        assert!(any_sidecar(&d));
        assert!(sidecar_alive(&d, 7));
        assert!(!sidecar_alive(&d, 8), "another namespace's sidecar is not this one");
        let e = Presence::hold(&d, 7).err().expect("one sidecar per namespace");
        assert_eq!(e.kind, crate::error::Kind::Busy);
        assert!(!wait_for_ack(&d, 7, "a", Duration::from_millis(20)), "no acknowledgement yet");
        p.acknowledge("a").unwrap();
        assert!(wait_for_ack(&d, 7, "a", Duration::from_millis(20)));
        assert!(!wait_for_ack(&d, 7, "b", Duration::from_millis(20)), "an acknowledgement of another record");
        drop(p);
        assert!(!sidecar_alive(&d, 7), "a sidecar that exited holds nothing");
        // A probe holding the shared lock while a sidecar starts does not pass for another sidecar.
        fs::File::create(alive_path(&d, 7)).unwrap();
        let probe = OpenOptions::new().read(true).open(alive_path(&d, 7)).unwrap();
        probe.lock_shared().unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            drop(probe);
        });
        let p = Presence::hold(&d, 7).expect("a probe is not a sidecar");
        release.join().unwrap();
        drop(p);
        assert!(!any_sidecar(&d), "and leaves no file behind");
        let t = Instant::now();
        assert!(!wait_for_ack(&d, 7, "b", Duration::from_secs(5)));
        assert!(t.elapsed() < Duration::from_secs(1), "no sidecar: DEL does not wait");
        fs::remove_dir_all(&d).unwrap();
    }
}
