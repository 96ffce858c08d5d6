//! The sidecar's loop: inotify on the state directory for changes, a one-second tick for what inotify cannot
//! see (FRR restarting, `--frr-extra` edits, a state directory that appears later), and a backoff for failed
//! applies. Single-threaded, no async runtime.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{ppoll, PollFd, PollFlags};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

use super::Sidecar;
use crate::error::{Error, Result};
use crate::{log_debug, log_info, log_warn};

const TICK: Duration = Duration::from_secs(1);
/// Changes come in bursts (a record, then its claims): gather them before rendering.
const SETTLE: Duration = Duration::from_millis(20);
const FIRST_RETRY: Duration = Duration::from_millis(250);
const MAX_RETRY: Duration = Duration::from_secs(30);

struct Watches {
    inotify: Inotify,
    dirs: Vec<PathBuf>,
    active: HashMap<WatchDescriptor, PathBuf>,
}

impl Watches {
    fn new(state_dir: &std::path::Path) -> Result<Watches> {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .map_err(|e| Error::io(format!("cannot create an inotify instance: {e}")))?;
        Ok(Watches {
            inotify,
            dirs: vec![state_dir.to_path_buf(), state_dir.join("attachments"), state_dir.join("netns")],
            active: HashMap::new(),
        })
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

    /// Wait up to `timeout` for a change; true if there was one.
    fn wait(&mut self, timeout: Duration) -> bool {
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
            return false;
        }
        std::thread::sleep(SETTLE);
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
        true
    }
}

/// Keep FRR equal to the state directory until killed.
pub fn watch(sc: &mut Sidecar) -> Result<()> {
    let mut watches = Watches::new(&sc.options().state_dir)?;
    log_info!(
        "watching state directory {} for the attachment of network namespace {} (FRR configuration {})",
        sc.options().state_dir.display(),
        sc.namespace().key(),
        sc.options().frr.config_path.display()
    );
    // After a failure: when to try again, and the step after that.
    let mut retry: Option<(Instant, Duration)> = None;
    let mut changed = true;
    let mut drainer = super::drain::Drainer::new()?;
    loop {
        watches.ensure();
        drainer.step(sc)?;
        if drainer.terminating() {
            return drainer.terminate(sc);
        }
        let due = retry.is_some_and(|(at, _)| Instant::now() >= at);
        if changed || due || retry.is_none() {
            match sc.sync(due) {
                Ok(_) => {
                    if retry.is_some() {
                        log_info!("FRR configuration applied after earlier failures");
                    }
                    retry = None;
                }
                Err(e) => {
                    let step = match retry {
                        Some((_, step)) if due || changed => (step * 2).min(MAX_RETRY),
                        Some((_, step)) => step,
                        None => FIRST_RETRY,
                    };
                    log_warn!("{}; retrying in {} ms", e.msg, step.as_millis());
                    retry = Some((Instant::now() + step, step));
                }
            }
        }
        let timeout = match retry {
            Some((at, _)) => at.saturating_duration_since(Instant::now()).min(TICK),
            None => TICK,
        };
        changed = watches.wait(timeout);
    }
}
