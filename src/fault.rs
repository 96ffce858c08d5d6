//! Fault points for the crash-consistency tests: with the `fault-injection` feature, a process whose
//! `OPENPE_FAULT_POINT` names a point kills itself with SIGKILL there, as a crash would. Without the feature
//! (every normal build) a fault point compiles to nothing.

/// Die here if the tests asked for it.
#[inline(always)]
pub fn point(_name: &str) {
    #[cfg(feature = "fault-injection")]
    if std::env::var("OPENPE_FAULT_POINT").is_ok_and(|p| p == _name) {
        // SAFETY: raising a signal at ourselves has no memory-safety preconditions.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }
}

/// Every fault point, in the order an ADD then a DEL reaches them (the tests iterate over this list).
pub const POINTS: &[&str] = &[
    "add:record-written",
    "add:claims-written",
    "add:veth-created",
    "add:veth-addressed",
    "add:nic-moved",
    "add:nic-addressed",
    "add:forwarding-set",
    "add:record-complete",
    "del:nic-returned",
    "del:nic-restored",
    "del:veth-removed",
    "del:claims-released",
];
