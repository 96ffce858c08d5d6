//! The crate's one error type, in the domain's terms: what kind of failure it is (bad input naming a field, busy,
//! the kernel with its errno, I/O, an unsafe state directory, ...), a message that says what failed, on which
//! object and what to do, and the cause (`source()`). Only the CNI layer turns a kind into a CNI code
//! (`cni::error::code_of`), at the one exit point.

use std::fmt;

/// Where bad input came from: the runtime (the CNI environment, the namespace it names) or the network
/// configuration. The CNI layer reports the first as an invalid environment and the second as an invalid
/// configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    Runtime,
    Config,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bad input; the message starts with the field (or variable) it came from.
    Invalid(Input),
    /// The configuration asks for a protocol version this plugin does not speak.
    Version,
    /// The input is not JSON.
    Decode,
    /// No attachment is recorded for what the caller named.
    UnknownAttachment,
    /// Someone else holds what is needed (a namespace, an index, a link name), or a delegated plugin did not
    /// answer in time: try again later.
    Busy,
    /// The plugin cannot serve ADD now (STATUS).
    NotReady,
    /// A netlink request or a namespace operation failed in the kernel; the errno when there is one.
    Kernel(Option<i32>),
    /// Reading or writing a file failed.
    Io,
    /// ADD failed and undoing it failed too: the record is kept so that DEL can finish the job.
    RollbackIncomplete,
    /// The state directory or a record in it is unsafe (owner, mode, symlink) or unreadable as a record.
    UnsafeState,
}

type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug)]
pub struct Error {
    pub kind: Kind,
    pub msg: String,
    source: Option<Cause>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: Kind, msg: impl Into<String>) -> Self {
        Error { kind, msg: msg.into(), source: None }
    }
    /// Bad network configuration; `msg` starts with the field's path.
    pub fn config(msg: impl Into<String>) -> Self {
        Self::new(Kind::Invalid(Input::Config), msg)
    }
    /// Bad input from the runtime; `msg` starts with the variable's name.
    pub fn runtime(msg: impl Into<String>) -> Self {
        Self::new(Kind::Invalid(Input::Runtime), msg)
    }
    pub fn invalid(input: Input, msg: impl Into<String>) -> Self {
        Self::new(Kind::Invalid(input), msg)
    }
    pub fn io(msg: impl Into<String>) -> Self {
        Self::new(Kind::Io, msg)
    }
    pub fn busy(msg: impl Into<String>) -> Self {
        Self::new(Kind::Busy, msg)
    }
    /// A kernel failure without an errno of its own (the errno case comes from [`crate::netlink::NlError`]).
    pub fn kernel(msg: impl Into<String>) -> Self {
        Self::new(Kind::Kernel(None), msg)
    }
    pub(crate) fn unsafe_state(msg: impl Into<String>) -> Self {
        Self::new(Kind::UnsafeState, msg)
    }

    /// Keep `cause` as this error's source.
    pub(crate) fn with_source(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(cause));
        self
    }

    /// Prefix the message with what was being done, keeping the kind and the cause.
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.msg = format!("{what}: {}", self.msg);
        self
    }

    /// Several failures reported together (teardown, GC); the first one's kind wins.
    pub fn join(errors: Vec<Error>) -> Option<Error> {
        let kind = errors.first()?.kind;
        let msg = errors.iter().map(|e| e.msg.as_str()).collect::<Vec<_>>().join("; ");
        Some(Error::new(kind, msg))
    }
}

/// Two errors are equal when they say the same thing; the cause is not compared.
impl PartialEq for Error {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.msg == other.msg
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<crate::netlink::NlError> for Error {
    fn from(e: crate::netlink::NlError) -> Self {
        Error { kind: Kind::Kernel(Some(e.errno)), msg: e.to_string(), source: None }.with_source(e)
    }
}

/// Attach what was being done to an I/O error, keeping it as the cause.
pub trait IoContext<T> {
    fn io_ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn io_ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::io(format!("{}: {e}", what())).with_source(e))
    }
}
