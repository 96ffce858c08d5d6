//! The one error type of the plugin: a CNI error code plus a message that says what failed, on which object,
//! and what to do. Codes are chosen where the error is raised, from the root cause, never from message text.

use std::fmt;

/// Error codes of the CNI specification and the plugin's own (100 and above). The README has the table.
pub mod code {
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    pub const UNSUPPORTED_FIELD: u32 = 2;
    pub const UNKNOWN_CONTAINER: u32 = 3;
    pub const INVALID_ENV: u32 = 4;
    pub const IO: u32 = 5;
    pub const DECODE: u32 = 6;
    pub const INVALID_CONFIG: u32 = 7;
    pub const TRY_AGAIN: u32 = 11;
    pub const NOT_READY: u32 = 50;
    /// A netlink request or a namespace operation failed in the kernel.
    pub const KERNEL: u32 = 100;
    /// ADD failed and undoing it failed too: the record is kept so that DEL can finish the job.
    pub const ROLLBACK_INCOMPLETE: u32 = 101;
    /// The state directory or a record in it is unsafe (owner, mode, symlink) or unreadable as a record.
    pub const STATE_UNSAFE: u32 = 102;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniError {
    pub code: u32,
    pub msg: String,
}

pub type Result<T, E = CniError> = std::result::Result<T, E>;

impl CniError {
    pub fn new(code: u32, msg: impl Into<String>) -> Self {
        CniError { code, msg: msg.into() }
    }
    pub fn config(msg: impl Into<String>) -> Self {
        Self::new(code::INVALID_CONFIG, msg)
    }
    pub fn env(msg: impl Into<String>) -> Self {
        Self::new(code::INVALID_ENV, msg)
    }
    pub fn io(msg: impl Into<String>) -> Self {
        Self::new(code::IO, msg)
    }
    pub fn busy(msg: impl Into<String>) -> Self {
        Self::new(code::TRY_AGAIN, msg)
    }
    pub fn kernel(msg: impl Into<String>) -> Self {
        Self::new(code::KERNEL, msg)
    }
    pub fn unsafe_state(msg: impl Into<String>) -> Self {
        Self::new(code::STATE_UNSAFE, msg)
    }
    /// Prefix the message with what was being done, keeping the code.
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.msg = format!("{what}: {}", self.msg);
        self
    }

    /// Several teardown failures reported together; the first one's code wins.
    pub fn join(errors: Vec<CniError>) -> Option<CniError> {
        let first = errors.first()?.code;
        let msg = errors.iter().map(|e| e.msg.as_str()).collect::<Vec<_>>().join("; ");
        Some(CniError::new(first, msg))
    }

    pub fn to_json(&self, cni_version: &str) -> serde_json::Value {
        serde_json::json!({ "cniVersion": cni_version, "code": self.code, "msg": self.msg })
    }
}

impl fmt::Display for CniError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (CNI code {})", self.msg, self.code)
    }
}

impl std::error::Error for CniError {}

/// Attach the code and what was being done to an I/O error.
pub trait IoContext<T> {
    fn io_ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn io_ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| CniError::io(format!("{}: {e}", what())))
    }
}
