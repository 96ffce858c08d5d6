//! openpe-passthrough: OpenPERouter's passthrough mode as a CNI plugin.
//!
//! The layout follows the architecture:
//! - [`cni`]: the protocol (environment, versions, results, errors);
//! - [`config`]: the network configuration, parsed and validated;
//! - [`addressing`]: node index to addresses;
//! - [`state`]: the file-locked state directory and its records;
//! - [`netns`], [`netlink`], [`datapath`]: namespaces, kernel operations, and the veth/NIC steps built on them;
//! - [`commands`]: the CNI verbs, each readable top to bottom;
//! - [`inspect`]: the human-facing listing of attachments.

pub mod addressing;
pub mod bgp;
pub mod cni;
pub mod commands;
pub mod config;
pub mod datapath;
pub(crate) mod drain;
pub mod error;
pub(crate) mod fault;
pub(crate) mod fsutil;
pub mod inspect;
pub mod limits;
pub mod log;
pub mod netlink;
pub mod netns;
pub mod sidecar;
pub mod state;
