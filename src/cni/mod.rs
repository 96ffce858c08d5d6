//! The CNI protocol: environment variables, versions, results and errors (spec 0.3.0 to 1.1.0).

pub mod envelope;
pub mod error;
pub mod result;

use std::path::PathBuf;

pub(crate) use envelope::ValidAttachment;
pub use envelope::{reply_version, Envelope, ValidAttachments};
pub use error::{code, code_of, to_json};

use crate::error::{Error, Kind, Result};

/// Every version this plugin speaks, oldest first.
pub const SUPPORTED_VERSIONS: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// Position of a supported version in [`SUPPORTED_VERSIONS`], for ordering.
fn rank(version: &str) -> Option<usize> {
    SUPPORTED_VERSIONS.iter().position(|v| *v == version)
}

/// True when `version` is a supported version no older than `min`.
pub(crate) fn version_at_least(version: &str, min: &str) -> bool {
    matches!((rank(version), rank(min)), (Some(a), Some(b)) if a >= b)
}

pub fn check_version(version: &str) -> Result<()> {
    if rank(version).is_none() {
        return Err(Error::new(
            Kind::Version,
            format!("cniVersion {version:?} is not supported; use one of {}", SUPPORTED_VERSIONS.join(", ")),
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Version,
    Status,
    Gc,
}

impl Command {
    pub fn parse(s: &str) -> Result<Command> {
        Ok(match s {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "VERSION" => Command::Version,
            "STATUS" => Command::Status,
            "GC" => Command::Gc,
            "" => {
                return Err(Error::runtime("CNI_COMMAND is not set; expected ADD, DEL, CHECK, VERSION, STATUS or GC"))
            }
            other => {
                return Err(Error::runtime(format!(
                    "CNI_COMMAND {other:?} is unknown; expected ADD, DEL, CHECK, VERSION, STATUS or GC"
                )))
            }
        })
    }
}

/// Arguments passed in CNI_ARGS (`K=V;K2=V2`).
#[derive(Debug, Default, Clone)]
pub struct CniArgs {
    pub node_index: Option<u32>,
    pub k8s_pod_namespace: Option<String>,
    pub k8s_pod_name: Option<String>,
}

impl CniArgs {
    pub fn parse(raw: &str) -> Result<CniArgs> {
        let mut args = CniArgs::default();
        let pairs: Vec<(&str, &str)> = raw
            .split(';')
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.split_once('=').ok_or_else(|| Error::runtime(format!("CNI_ARGS: {p:?} is not of the form KEY=VALUE")))
            })
            .collect::<Result<_>>()?;
        let ignore_unknown =
            pairs.iter().any(|(k, v)| *k == "IgnoreUnknown" && (v.eq_ignore_ascii_case("true") || *v == "1"));
        for (k, v) in pairs {
            match k {
                "IgnoreUnknown" => {}
                "OPENPE_NODE_INDEX" => {
                    args.node_index = Some(v.parse::<u32>().map_err(|_| {
                        Error::runtime(format!(
                            "CNI_ARGS OPENPE_NODE_INDEX={v:?} is not a whole number from 0 to 4294967295"
                        ))
                    })?)
                }
                "K8S_POD_NAMESPACE" => args.k8s_pod_namespace = Some(v.to_string()),
                "K8S_POD_NAME" => args.k8s_pod_name = Some(v.to_string()),
                "K8S_POD_INFRA_CONTAINER_ID" | "K8S_POD_UID" => {}
                _ if ignore_unknown => {}
                _ => {
                    return Err(Error::runtime(format!(
                        "CNI_ARGS key {k:?} is unknown; known keys are OPENPE_NODE_INDEX and IgnoreUnknown (add IgnoreUnknown=1 to pass others)"
                    )))
                }
            }
        }
        Ok(args)
    }
}

/// The CNI environment of one invocation, validated for its command. libcni exports every variable, empty when
/// unused, so empty counts as unset.
#[derive(Debug, Clone)]
pub struct Env {
    pub command: Command,
    pub container_id: String,
    pub netns: Option<PathBuf>,
    pub ifname: String,
    pub args: CniArgs,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// `^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`, the CNI rule for container ids and network names.
pub fn valid_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The rule libcni applies to CNI_IFNAME, which is all the plugin needs: it keys the attachment, names no link.
pub(crate) fn valid_cni_ifname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s != "."
        && s != ".."
        && !s.chars().any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
}

impl Env {
    /// Read and validate the variables the command needs. VERSION needs none.
    pub(crate) fn from_env(command: Command) -> Result<Env> {
        let mut env =
            Env { command, container_id: String::new(), netns: None, ifname: String::new(), args: CniArgs::default() };
        if matches!(command, Command::Add | Command::Del | Command::Check) {
            env.container_id = var("CNI_CONTAINERID")
                .ok_or_else(|| Error::runtime("CNI_CONTAINERID is not set; the runtime must name the container"))?;
            if !valid_identifier(&env.container_id) || env.container_id.len() > 1024 {
                return Err(Error::runtime(format!(
                    "CNI_CONTAINERID {:?} is invalid: it must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$",
                    env.container_id
                )));
            }
            env.ifname = var("CNI_IFNAME").ok_or_else(|| Error::runtime("CNI_IFNAME is not set"))?;
            if !valid_cni_ifname(&env.ifname) {
                return Err(Error::runtime(format!(
                    "CNI_IFNAME {:?} is invalid: at most 15 bytes, not '.' or '..', without '/', ':' or whitespace",
                    env.ifname
                )));
            }
            env.netns = var("CNI_NETNS").map(PathBuf::from);
            if env.netns.is_none() && command != Command::Del {
                return Err(Error::runtime("CNI_NETNS is not set; it must name the router's network namespace"));
            }
            if let Some(raw) = var("CNI_ARGS") {
                env.args = CniArgs::parse(&raw)?;
            }
        }
        Ok(env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_ordered() {
        assert!(version_at_least("1.1.0", "0.4.0"));
        assert!(version_at_least("0.4.0", "0.4.0"));
        assert!(!version_at_least("0.3.1", "0.4.0"));
        assert!(!version_at_least("9.9.9", "0.3.0"));
        assert!(check_version("0.2.0").is_err());
    }

    #[test]
    fn cni_args_reject_unknown_keys_unless_told() {
        assert_eq!(CniArgs::parse("OPENPE_NODE_INDEX=3").unwrap().node_index, Some(3));
        assert!(CniArgs::parse("FOO=1").is_err());
        assert!(CniArgs::parse("IgnoreUnknown=1;FOO=1").is_ok());
        assert!(CniArgs::parse("IgnoreUnknown=true;K8S_POD_NAME=a;FOO=x").is_ok());
        let e = CniArgs::parse("OPENPE_NODE_INDEX=-1").unwrap_err();
        assert_eq!(code_of(&e), code::INVALID_ENV);
        assert!(e.msg.contains("OPENPE_NODE_INDEX"));
        assert!(CniArgs::parse("novalue").is_err());
    }

    #[test]
    fn identifiers() {
        assert!(valid_identifier("abc-1.2_3"));
        assert!(!valid_identifier("../etc"));
        assert!(!valid_identifier(""));
        assert!(!valid_identifier("a/b"));
        assert!(valid_cni_ifname("net1"));
        assert!(!valid_cni_ifname("a/b"));
        assert!(!valid_cni_ifname("sixteen-chars-xx"));
        assert!(!valid_cni_ifname(".."));
    }
}
