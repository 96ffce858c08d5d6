//! The CNI envelope of a network configuration: `cniVersion`, `name`, `prevResult`, `runtimeConfig`, `args` and
//! GC's `cni.dev/valid-attachments`. The plugin's own settings and the passthrough configuration inside it are
//! `config`'s, which knows nothing of CNI.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::{check_version, valid_identifier, SUPPORTED_VERSIONS};
use crate::config::{lenient, Passthrough, Settings, Text};
use crate::error::{Error, Kind, Result};

/// What every verb needs: the envelope and the plugin's settings (DEL, GC and STATUS need nothing else:
/// teardown works from the record, so it still works after the passthrough settings changed).
#[derive(Debug, Clone)]
pub struct Envelope {
    pub cni_version: String,
    pub name: String,
    /// `stateDir`, `logFile`, `logLevel`: parsed by `config`, since they are the plugin's, not the protocol's.
    pub settings: Settings,
    pub prev_result: Option<Value>,
    /// `runtimeConfig.nodeIndex`.
    pub runtime_node_index: Option<u32>,
    /// `args.cni.nodeIndex` (where Multus puts a pod's `cni-args`).
    pub args_node_index: Option<u32>,
    pub valid_attachments: ValidAttachments,
    raw: Value,
}

/// GC's `cni.dev/valid-attachments` (or the legacy `cni.dev/attachments`) exactly as given: libcni sends `null`
/// for an empty list, so null and `[]` are kept apart from an absent key, for GC to decide on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValidAttachments {
    Absent,
    Null,
    /// The list, possibly empty.
    List(Vec<ValidAttachment>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidAttachment {
    pub container_id: String,
    pub ifname: String,
}

/// A network name: `^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`, at most 253 characters.
#[derive(Deserialize)]
#[serde(try_from = "String")]
struct Name(String);

impl TryFrom<String> for Name {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if !valid_identifier(&s) || s.len() > 253 {
            return Err(format!(
                "{s:?} is invalid: it must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$ (at most 253 characters)"
            ));
        }
        Ok(Name(s))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a JSON object")]
struct Wire {
    name: Option<Name>,
    prev_result: Option<Value>,
    runtime_config: Option<NodeIndexWire>,
    args: Option<ArgsWire>,
    #[serde(rename = "cni.dev/valid-attachments", alias = "cni.dev/attachments", default, deserialize_with = "given")]
    valid_attachments: Option<Option<Vec<AttachmentWire>>>,
}

/// A key that is present: `Some(None)` for null, where plain `Option` would say absent.
fn given<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "a JSON object")]
struct NodeIndexWire {
    node_index: Option<u32>,
}

#[derive(Deserialize)]
#[serde(expecting = "a JSON object")]
struct ArgsWire {
    cni: Option<NodeIndexWire>,
}

#[derive(Deserialize)]
#[serde(expecting = "a JSON object")]
struct AttachmentWire {
    #[serde(rename = "containerID", alias = "containerId")]
    container_id: Text,
    ifname: Text,
}

impl Envelope {
    pub fn parse(v: &Value) -> Result<Envelope> {
        if !v.is_object() {
            return Err(Error::config("the network configuration must be a JSON object"));
        }
        let cni_version = match v.get("cniVersion") {
            None | Some(Value::Null) => {
                return Err(Error::new(
                    Kind::Version,
                    format!("cniVersion: is required (one of {})", SUPPORTED_VERSIONS.join(", ")),
                ))
            }
            Some(Value::String(s)) => s.clone(),
            Some(other) => return Err(Error::new(Kind::Version, format!("cniVersion: must be a string, got {other}"))),
        };
        check_version(&cni_version)?;
        let w: Wire = lenient(v, "")?;
        let name = w.name.ok_or_else(|| Error::config("name: is required"))?.0;
        if let Some(p) = &w.prev_result {
            // Checked here, before anything changes, so that ADD can always build its result.
            super::result::check_prev(p, "prevResult")?;
        }
        let valid_attachments = match w.valid_attachments {
            None => ValidAttachments::Absent,
            Some(None) => ValidAttachments::Null,
            Some(Some(list)) => ValidAttachments::List(
                list.into_iter()
                    .map(|a| ValidAttachment { container_id: a.container_id.0, ifname: a.ifname.0 })
                    .collect(),
            ),
        };
        Ok(Envelope {
            cni_version,
            name,
            settings: Settings::parse(v)?,
            prev_result: w.prev_result,
            runtime_node_index: w.runtime_config.and_then(|r| r.node_index),
            args_node_index: w.args.and_then(|a| a.cni).and_then(|c| c.node_index),
            valid_attachments,
            raw: v.clone(),
        })
    }

    /// The passthrough settings (`underlay`, `l3passthrough`, ...) of this configuration.
    pub fn passthrough(&self) -> Result<Passthrough> {
        Passthrough::parse(&self.raw)
    }
}

/// The `cniVersion` a reply carries: the one `stdin` names when `usable` accepts it, else the newest this plugin
/// speaks (the one place that falls back).
pub fn reply_version(stdin: &[u8], usable: impl Fn(&str) -> bool) -> String {
    serde_json::from_slice::<Value>(stdin)
        .ok()
        .and_then(|v| v.get("cniVersion").and_then(Value::as_str).map(str::to_string))
        .filter(|v| usable(v))
        .unwrap_or_else(|| SUPPORTED_VERSIONS[SUPPORTED_VERSIONS.len() - 1].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Input;
    use serde_json::json;

    #[test]
    fn versions_and_names() {
        assert_eq!(Envelope::parse(&json!({"name": "a"})).unwrap_err().kind, Kind::Version);
        assert_eq!(Envelope::parse(&json!({"cniVersion": "0.2.0", "name": "a"})).unwrap_err().kind, Kind::Version);
        let e = Envelope::parse(&json!({"cniVersion": "1.0.0", "name": "a b"})).unwrap_err();
        assert_eq!(e.kind, Kind::Invalid(Input::Config));
        assert!(e.msg.starts_with("name:"), "{}", e.msg);
        let e = Envelope::parse(&json!({"cniVersion": "1.1.0", "name": "a", "stateDir": "/x/../y"})).unwrap_err();
        assert!(e.msg.starts_with("stateDir:"), "{}", e.msg);
        let e = Envelope::parse(&json!({"cniVersion": "1.1.0", "name": "a",
            "args": {"cni": {"nodeIndex": 4}}, "runtimeConfig": {"nodeIndex": 5}}))
        .unwrap();
        assert_eq!((e.args_node_index, e.runtime_node_index), (Some(4), Some(5)));
    }

    #[test]
    fn valid_attachments_absent_null_empty_and_listed() {
        let parse = |extra: Value| {
            let mut v = json!({"cniVersion": "1.1.0", "name": "a"});
            v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            Envelope::parse(&v).map(|e| e.valid_attachments)
        };
        assert_eq!(parse(json!({})).unwrap(), ValidAttachments::Absent);
        assert_eq!(parse(json!({"cni.dev/valid-attachments": null})).unwrap(), ValidAttachments::Null);
        assert_eq!(parse(json!({"cni.dev/attachments": null})).unwrap(), ValidAttachments::Null);
        assert_eq!(parse(json!({"cni.dev/valid-attachments": []})).unwrap(), ValidAttachments::List(vec![]));
        let one = ValidAttachment { container_id: "c".into(), ifname: "i".into() };
        assert_eq!(
            parse(json!({"cni.dev/attachments": [{"containerId": "c", "ifname": "i"}]})).unwrap(),
            ValidAttachments::List(vec![one])
        );
        let both =
            br#"{"cniVersion": "1.1.0", "name": "a", "cni.dev/valid-attachments": [], "cni.dev/attachments": []}"#;
        let e = crate::config::parse_json(both).unwrap_err();
        assert!(e.msg.starts_with("cni.dev/valid-attachments and cni.dev/attachments are two spellings"), "{}", e.msg);
        let e = parse(json!({"cni.dev/valid-attachments": [{"containerID": "c"}]})).unwrap_err();
        assert!(e.msg.starts_with("cni.dev/valid-attachments[0]"), "{}", e.msg);
    }

    #[test]
    fn one_fallback_version() {
        assert_eq!(reply_version(b"", |_| true), "1.1.0");
        assert_eq!(reply_version(br#"{"cniVersion": "0.4.0"}"#, |_| true), "0.4.0");
        assert_eq!(reply_version(br#"{"cniVersion": "9.9.9"}"#, |v| check_version(v).is_ok()), "1.1.0");
    }
}
