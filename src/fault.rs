//! Fault points for the crash-consistency tests. With the `fault-injection` feature, a process kills itself
//! with SIGKILL, as a crash would:
//! - at the point named by `OPENPE_FAULT_POINT`, or
//! - at the N-th fault point it reaches when `OPENPE_FAULT_AFTER=N` (N from 1), which lets a test walk every
//!   point of ADD or DEL without knowing them: after each kernel change (every netlink request that changes
//!   something) and each state write (before and after its rename), plus the named steps below.
//!
//! Without the feature (every normal build) a fault point compiles to nothing.

/// Die here if the tests asked for it.
#[inline(always)]
pub fn point(_name: &str) {
    #[cfg(feature = "fault-injection")]
    armed::point(_name);
}

#[cfg(feature = "fault-injection")]
mod armed {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;

    static REACHED: AtomicU64 = AtomicU64::new(0);
    static AFTER: OnceLock<Option<u64>> = OnceLock::new();

    pub fn point(name: &str) {
        let n = REACHED.fetch_add(1, Ordering::SeqCst) + 1;
        let after = *AFTER.get_or_init(|| std::env::var("OPENPE_FAULT_AFTER").ok().and_then(|v| v.parse().ok()));
        let named = std::env::var("OPENPE_FAULT_POINT").is_ok_and(|p| p == name);
        if named || after == Some(n) {
            crate::log_warn!("fault injection: dying at point {n} ({name})");
            let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGKILL);
        }
    }
}
