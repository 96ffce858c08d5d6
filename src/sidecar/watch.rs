//! The sidecar's loop: inotify on the state directory and on `--frr-extra`'s directory for changes, a
//! one-second tick for what inotify cannot see (FRR restarting, a directory that appears later), and a backoff
//! for failed applies that holds only while the input stays the same. Single-threaded, no async runtime.
//!
//! There is no settle time: every wake reads the state, and a record still in progress is left alone
//! ([`super::Want::Pending`]); ADD's last step, the record turning complete (a rename into `attachments/`),
//! wakes the loop, which applies at once.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{ppoll, PollFd, PollFlags};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

use super::metrics::Health;
use super::Sidecar;
use crate::error::{Error, Result};
use crate::{log_debug, log_info, log_warn};

const TICK: Duration = Duration::from_secs(1);
const FIRST_RETRY: Duration = Duration::from_millis(250);
const MAX_RETRY: Duration = Duration::from_secs(30);

struct Watches {
    inotify: Inotify,
    dirs: Vec<PathBuf>,
    active: HashMap<WatchDescriptor, PathBuf>,
}

impl Watches {
    /// The state directory and its two subdirectories, and the directories holding `inputs` (`--frr-extra`):
    /// a directory, not the file, so that an editor's rename or a Kubernetes volume's symlink swap is seen.
    fn new(state_dir: &Path, inputs: &[&Path]) -> Result<Watches> {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .map_err(|e| Error::io(format!("cannot create an inotify instance: {e}")))?;
        let mut dirs = vec![state_dir.to_path_buf(), state_dir.join("attachments"), state_dir.join("netns")];
        for p in inputs {
            let dir = match p.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        Ok(Watches { inotify, dirs, active: HashMap::new() })
    }

    /// Watch every directory that exists and is not watched yet (they may appear after the sidecar starts).
    fn ensure(&mut self) {
        let mask = AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_DELETE_SELF
            | AddWatchFlags::IN_MOVE_SELF
            | AddWatchFlags::IN_ONLYDIR;
        for dir in &self.dirs {
            if self.active.values().any(|d| d == dir) || !dir.is_dir() {
                continue;
            }
            match self.inotify.add_watch(dir.as_path(), mask) {
                Ok(wd) => {
                    log_debug!("watching {}", dir.display());
                    self.active.insert(wd, dir.clone());
                }
                Err(e) => log_warn!("cannot watch {}: {e}; relying on the one-second tick", dir.display()),
            }
        }
    }

    /// Wait up to `timeout` for a change, and consume the events.
    fn wait(&mut self, timeout: Duration) {
        let ready = {
            let mut fds = [PollFd::new(self.inotify.as_fd(), PollFlags::POLLIN)];
            // ppoll: SIGTERM is let through only while waiting (super::drain).
            match ppoll(&mut fds, Some(timeout.into()), super::drain::wait_mask()) {
                Ok(n) => n > 0,
                Err(Errno::EINTR) => false,
                Err(e) => {
                    log_warn!("waiting for state directory changes failed: {e}");
                    std::thread::sleep(timeout);
                    false
                }
            }
        };
        if !ready {
            return;
        }
        loop {
            match self.inotify.read_events() {
                Ok(events) if !events.is_empty() => {
                    for ev in events {
                        if ev.mask.intersects(
                            AddWatchFlags::IN_IGNORED
                                | AddWatchFlags::IN_DELETE_SELF
                                | AddWatchFlags::IN_MOVE_SELF
                                | AddWatchFlags::IN_Q_OVERFLOW,
                        ) {
                            // A watched directory went away (or events were lost): watch afresh.
                            if let Some(dir) = self.active.remove(&ev.wd) {
                                let _ = self.inotify.rm_watch(ev.wd);
                                log_debug!("{} is gone; will watch it again", dir.display());
                            }
                        }
                    }
                }
                _ => break,
            }
        }
    }
}

/// The input that failed to apply, and when to try it again.
struct Failure {
    fingerprint: u64,
    at: Instant,
    step: Duration,
}

/// Keep FRR equal to the state directory until killed; every pass is recorded in `health` (metrics, readiness).
pub fn watch(sc: &mut Sidecar, health: &Health) -> Result<()> {
    let inputs: Vec<&Path> = sc.options().extra.iter().map(PathBuf::as_path).collect();
    let mut watches = Watches::new(&sc.options().state_dir, &inputs)?;
    log_info!(
        "watching state directory {} for the attachment of network namespace {} (FRR configuration {})",
        sc.options().state_dir.display(),
        sc.namespace().key(),
        sc.options().frr.config_path.display()
    );
    let mut failure: Option<Failure> = None;
    let mut drainer = super::drain::Drainer::new()?;
    loop {
        watches.ensure();
        drainer.step(sc)?;
        if drainer.terminating() {
            return drainer.terminate(sc);
        }
        let input = sc.input();
        let fingerprint = sc.fingerprint(&input);
        // A new input (state directory, --frr-extra, FRR restarted) is tried at once; the same input that
        // failed waits for its backoff.
        let same = failure.as_ref().is_some_and(|f| f.fingerprint == fingerprint);
        if !same || failure.as_ref().is_some_and(|f| Instant::now() >= f.at) {
            let began = Instant::now();
            let outcome = input.and_then(|i| sc.sync_input(i, false));
            health.record_sync(&outcome, began.elapsed());
            health.set_left_out(sc.left_out());
            match outcome {
                Ok(_) => {
                    if failure.take().is_some() {
                        log_info!("FRR configuration applied after earlier failures");
                    }
                }
                Err(e) => {
                    let step = match &failure {
                        Some(f) if same => (f.step * 2).min(MAX_RETRY),
                        _ => FIRST_RETRY,
                    };
                    log_warn!("{}; retrying in {} ms, or at once when the input changes", e.msg, step.as_millis());
                    failure = Some(Failure { fingerprint, at: Instant::now() + step, step });
                }
            }
        }
        let timeout = match &failure {
            Some(f) => f.at.saturating_duration_since(Instant::now()).min(TICK),
            None => TICK,
        };
        watches.wait(timeout);
    }
}
