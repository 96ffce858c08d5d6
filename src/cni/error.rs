//! CNI error replies: the one place where the crate's error kinds become CNI error codes.

use crate::error::{Error, Input, Kind};

/// Error codes of the CNI specification and the plugin's own (100 and above). The README has the table.
pub mod code {
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    pub(crate) const UNKNOWN_CONTAINER: u32 = 3;
    pub const INVALID_ENV: u32 = 4;
    pub(crate) const IO: u32 = 5;
    pub const DECODE: u32 = 6;
    pub const INVALID_CONFIG: u32 = 7;
    pub(crate) const TRY_AGAIN: u32 = 11;
    pub(crate) const NOT_READY: u32 = 50;
    /// A netlink request or a namespace operation failed in the kernel.
    pub(crate) const KERNEL: u32 = 100;
    /// ADD failed and undoing it failed too: the record is kept so that DEL can finish the job.
    pub(crate) const ROLLBACK_INCOMPLETE: u32 = 101;
    /// The state directory or a record in it is unsafe (owner, mode, symlink) or unreadable as a record.
    pub(crate) const STATE_UNSAFE: u32 = 102;
}

/// The CNI code of an error, decided by its kind alone.
pub fn code_of(e: &Error) -> u32 {
    match e.kind {
        Kind::Invalid(Input::Runtime) => code::INVALID_ENV,
        Kind::Invalid(Input::Config) => code::INVALID_CONFIG,
        Kind::Version => code::INCOMPATIBLE_VERSION,
        Kind::Decode => code::DECODE,
        Kind::UnknownAttachment => code::UNKNOWN_CONTAINER,
        Kind::Busy => code::TRY_AGAIN,
        Kind::NotReady => code::NOT_READY,
        Kind::Kernel(_) => code::KERNEL,
        Kind::Io => code::IO,
        Kind::RollbackIncomplete => code::ROLLBACK_INCOMPLETE,
        Kind::UnsafeState => code::STATE_UNSAFE,
    }
}

/// The error reply printed on stdout.
pub fn to_json(e: &Error, cni_version: &str) -> serde_json::Value {
    serde_json::json!({ "cniVersion": cni_version, "code": code_of(e), "msg": e.msg })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_codes() {
        assert_eq!(code_of(&Error::config("x")), 7);
        assert_eq!(code_of(&Error::runtime("x")), 4);
        assert_eq!(code_of(&Error::busy("x")), 11);
        assert_eq!(code_of(&Error::new(Kind::Kernel(Some(libc::ENOENT)), "x")), 100);
        assert_eq!(code_of(&Error::unsafe_state("x")), 102);
    }
}
