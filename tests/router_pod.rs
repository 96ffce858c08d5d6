//! The router pod of netconf/k8s/router.yaml, for real: the image is built here (scripts/build-image.sh on a base
//! made from Debian's frr and frr-pythontools, since no image can be pulled), and the DaemonSet's pod template
//! runs under podman 4.3 (`kube play`, CNI backend), attached through the plugin with the
//! NetworkAttachmentDefinition's configuration. A ToR (FRR) and the host's BGP speaker (FRR, in the node's host
//! namespace) peer with it as in scripts/demo.sh.
//!
//! podman runs inside the lab's host namespace and a private mount namespace held by one process (tmpfs over
//! /run, /var/lib/cni and /var/lib/containers there, and a sysfs of the host namespace with the cgroup mounts
//! kept); its root, run root, configuration, the base and the image live in the test's temporary directory, so
//! nothing is cached or left outside it. A guard removes the pod, every process left in that mount namespace or
//! below it, the pod's cgroups, the FRR instances and the namespaces, even when the test fails.
//!
//! What the test runs differs from router.yaml only where podman or the test's node needs it: [`DIFFERENCES`]
//! (checked without root by `the_pod_the_test_runs_differs_from_router_yaml_only_as_documented`) and
//! [`RUNTIME_DIFFERENCES`]; docs/image.md lists both. What podman actually runs (the OCI configuration of each
//! container) is compared with the template: containers, commands, mounts, capabilities; probes and lifecycle
//! hooks, which podman 4.3 does not run, are run by the test as the kubelet would.
//!
//! Needs root, network access to Debian's mirror (debootstrap), scripts/install-image-deps.sh, and FRR on the
//! machine (scripts/install-deps.sh). Takes a few minutes: each step's time is printed.

#[path = "common/bgp.rs"]
mod bgp;
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{json, Value};

use bgp::{start_tor, status_established, wait_for, Frr};
use common::*;

/// Multus' annotation selecting the pod's additional networks.
const MULTUS_NETWORKS: &str = "k8s.v1.cni.cncf.io/networks";

/// Where the node's state directory is, as the NetworkAttachmentDefinition and router.yaml say.
const NODE_STATE_DIR: &str = "/run/openpe-passthrough";

/// Every difference between the pod template in router.yaml and the Pod the test gives `podman kube play`, as
/// the path of the field that differs (`name[key]` picks a list's element by its name or mountPath) and why it
/// is needed. docs/image.md shows the same list.
const DIFFERENCES: &[(&str, &str)] = &[
    ("metadata.name", "a DaemonSet names each pod it makes; the test names its one Pod"),
    (
        "metadata.annotations.k8s.v1.cni.cncf.io/networks",
        "Multus' network selection: podman 4.3 refuses annotation values longer than 63 characters (Kubernetes \
         does not), and does not read this one anyway (No Multus, below)",
    ),
    (
        "spec.volumes[openpe-state].hostPath.path",
        "the node's state directory /run/openpe-passthrough is the test's temporary state directory, which the \
         plugin's configuration names as stateDir",
    ),
    (
        "spec.volumes[frr-daemons].configMap",
        "podman 4.3 ignores subPath and mounts a configMap volume as a directory: the ConfigMap's `daemons` key is \
         written to a file in the test's directory",
    ),
    ("spec.volumes[frr-daemons].hostPath", "that file, mounted as a hostPath of type File"),
    (
        "spec.volumes[bgp-tor-password].secret",
        "the optional Secret of passwordSecret: there is no Kubernetes API to hold it, and the test's neighbors use \
         no password",
    ),
    (
        "spec.volumes[bgp-tor-password].hostPath",
        "an empty directory of the test's, what the kubelet mounts for an optional Secret that does not exist",
    ),
    (
        "spec.containers[sidecar].env[POD_IP].valueFrom",
        "podman 4.3 has no status.podIP (kube play refuses it): the test gives the pod's address as a value",
    ),
    (
        "spec.containers[sidecar].env[POD_IP].value",
        "the pod's address the node reaches, the router's end of pt-ns (in a cluster, the pod IP is the cluster \
         network's, on eth0)",
    ),
    (
        "spec.containers[sidecar].command",
        "podman 4.3 does not expand $(VAR) references: the test expands them from the environment as the kubelet \
         does (--http-listen $(POD_IP):7480 becomes the pod's address)",
    ),
    (
        "spec.containers[frr].volumeMounts[/etc/frr/openpe/daemons].subPath",
        "the file is mounted whole at the same path (podman 4.3 ignores subPath)",
    ),
];

/// Differences in how the pod is run rather than in what it says: a short name (docs/image.md lists each in
/// bold) and why.
const RUNTIME_DIFFERENCES: &[(&str, &str)] = &[
    ("A Pod, not a DaemonSet", "podman 4.3's kube play runs Pods: the test takes the DaemonSet's pod template"),
    (
        "No Multus",
        "podman does not read the k8s.v1.cni.cncf.io/networks annotation: `kube play --network openpe` attaches the \
         NetworkAttachmentDefinition's configuration as the pod's only network (no cluster network eth0), with \
         stateDir and hostNetns set for the test's node; CNI_IFNAME is podman's eth0, not pt-ns (the plugin names \
         no link after it)",
    ),
    (
        "Probes run by the test",
        "podman 4.3 runs none here (liveness needs systemd timers; readiness and startup are ignored): the test runs \
         each probe once after BGP is Established, as the kubelet would (exec in its container, httpGet and \
         tcpSocket from the node's host namespace to the pod's address), and requires success",
    ),
    (
        "Hooks run by the test",
        "podman 4.3 runs no lifecycle hooks: the test runs each exec postStart hook after the pod starts and each \
         exec preStop hook before it removes the pod, in its container",
    ),
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn documents(rel: &str) -> Vec<Value> {
    let path = repo().join(rel);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{rel}: not valid YAML: {e}")))
        .filter(|v| !v.is_null())
        .collect()
}

fn the_one(docs: &[Value], kind: &str) -> Value {
    let found: Vec<&Value> = docs.iter().filter(|d| d["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "expected exactly one {kind}");
    found[0].clone()
}

/// The NetworkAttachmentDefinition's CNI configuration list.
fn nad_conflist() -> Value {
    let nad = the_one(&documents("netconf/k8s/network-attachment-definition.yaml"), "NetworkAttachmentDefinition");
    serde_json::from_str(nad["spec"]["config"].as_str().expect("spec.config")).expect("spec.config is JSON")
}

/// The openpe-passthrough entry of a configuration list.
fn plugin_of(conflist: &Value) -> &Value {
    list(&conflist["plugins"], "plugins").iter().find(|p| p["type"] == "openpe-passthrough").expect("the plugin")
}

/// router.yaml's pod template, as the Pod a DaemonSet would make of it (metadata and spec).
fn template() -> (Value, Vec<Value>) {
    let docs = documents("netconf/k8s/router.yaml");
    let ds = the_one(&docs, "DaemonSet");
    let t = &ds["spec"]["template"];
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": t["metadata"], "spec": t["spec"]});
    (pod, docs)
}

fn list<'a>(v: &'a Value, what: &str) -> &'a Vec<Value> {
    v.as_array().unwrap_or_else(|| panic!("{what}: expected a list, got {v}"))
}

fn s<'a>(v: &'a Value, what: &str) -> &'a str {
    v.as_str().unwrap_or_else(|| panic!("{what}: expected a string, got {v}"))
}

/// The Pod the test runs: router.yaml's template with exactly the changes in [`DIFFERENCES`]. `files` is where
/// the test writes what it mounts in place of ConfigMaps.
fn pod_to_run(template: &Value, docs: &[Value], name: &str, state_dir: &Path, files: &Path, pod_ip: &str) -> Value {
    let mut pod = template.clone();
    pod["metadata"]["name"] = json!(name);
    if let Some(a) = pod["metadata"]["annotations"].as_object_mut() {
        a.remove(MULTUS_NETWORKS);
    }
    let spec = pod["spec"].as_object_mut().expect("spec");
    let mut volumes = spec.get("volumes").cloned().unwrap_or(json!([]));
    let mut containers = spec.get("containers").cloned().expect("containers");
    for v in volumes.as_array_mut().expect("volumes") {
        let vname = s(&v["name"], "volume name").to_string();
        if let Some(path) = v["hostPath"]["path"].as_str() {
            assert_eq!(path, NODE_STATE_DIR, "volume {vname}: hostPath {path}: say where the test points it");
            v["hostPath"]["path"] = json!(state_dir.display().to_string());
        } else if let Some(cm) = v.get("configMap").cloned() {
            let cm_name = s(&cm["name"], "configMap.name");
            assert_eq!(cm.as_object().map(|o| o.len()), Some(1), "volume {vname}: only configMap.name is handled");
            let map = docs
                .iter()
                .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == cm_name)
                .unwrap_or_else(|| panic!("no ConfigMap {cm_name} in router.yaml"));
            // podman 4.3 ignores subPath: each configMap volume must be mounted once, with a subPath naming a key,
            // and that key becomes a file mounted whole.
            let mut mounts = Vec::new();
            for c in containers.as_array_mut().expect("containers") {
                for m in c["volumeMounts"].as_array_mut().into_iter().flatten() {
                    if m["name"] == vname.as_str() {
                        mounts.push(m);
                    }
                }
            }
            assert_eq!(mounts.len(), 1, "volume {vname}: a configMap volume mounted once is all this test handles");
            let m = mounts.pop().unwrap();
            let key = s(&m["subPath"], "subPath").to_string();
            m.as_object_mut().unwrap().remove("subPath");
            let data = s(&map["data"][&key], "the ConfigMap's key");
            let file = files.join(format!("{vname}-{key}"));
            fs::write(&file, data).unwrap();
            let o = v.as_object_mut().unwrap();
            o.remove("configMap");
            o.insert("hostPath".into(), json!({"path": file.display().to_string(), "type": "File"}));
        } else if let Some(secret) = v.get("secret").cloned() {
            assert_eq!(secret["optional"], true, "volume {vname}: only an optional Secret is handled");
            let dir = files.join(&vname);
            fs::create_dir_all(&dir).unwrap();
            let o = v.as_object_mut().unwrap();
            o.remove("secret");
            o.insert("hostPath".into(), json!({"path": dir.display().to_string(), "type": "Directory"}));
        } else {
            assert!(
                v.get("emptyDir").is_some(),
                "volume {vname}: only hostPath, configMap, secret and emptyDir are handled"
            );
        }
    }
    // podman 4.3 has no status.podIP and does not expand $(VAR) in commands: the test gives the pod's address
    // as a value and expands the references as the kubelet does.
    for c in containers.as_array_mut().expect("containers") {
        let cname = s(&c["name"], "name").to_string();
        for e in c["env"].as_array_mut().into_iter().flatten() {
            if let Some(from) = e.get("valueFrom") {
                assert_eq!(from["fieldRef"]["fieldPath"], "status.podIP", "container {cname}: env {e}: not handled");
                let o = e.as_object_mut().unwrap();
                o.remove("valueFrom");
                o.insert("value".into(), json!(pod_ip));
            }
        }
        let env = env_of(c);
        for field in ["command", "args"] {
            if let Some(argv) = c[field].as_array_mut() {
                for a in argv {
                    *a = json!(expand(s(a, field), &env));
                }
            }
        }
    }
    spec.insert("volumes".into(), volumes);
    spec.insert("containers".into(), containers);
    pod
}

/// A container's environment from its `value`s.
fn env_of(container: &Value) -> BTreeMap<String, String> {
    container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| Some((e["name"].as_str()?.to_string(), e["value"].as_str()?.to_string())))
        .collect()
}

/// `$(NAME)` replaced by NAME's value where the environment has it, `$$` by `$`: the kubelet's expansion of a
/// command's arguments.
fn expand(arg: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = arg;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some((name, tail)) = after.strip_prefix('(').and_then(|t| t.split_once(')')) {
            match env.get(name) {
                Some(v) => out.push_str(v),
                None => out.push_str(&format!("$({name})")),
            }
            rest = tail;
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The paths at which two values differ. Lists whose elements all have a `mountPath` (or all a `name`) are
/// compared element by element under that key (mountPath first: one volume can be mounted twice), other lists as
/// wholes.
fn differences(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    let keyed = |l: &Vec<Value>| -> Option<&'static str> {
        ["mountPath", "name"].into_iter().find(|k| !l.is_empty() && l.iter().all(|e| e[*k].is_string()))
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                differences(x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null), &p, out);
            }
        }
        (Value::Array(x), Value::Array(y)) if keyed(x).is_some() && keyed(x) == keyed(y) => {
            let k = keyed(x).unwrap();
            let by = |l: &Vec<Value>| -> BTreeMap<String, Value> {
                l.iter().map(|e| (e[k].as_str().unwrap().to_string(), e.clone())).collect()
            };
            let (mx, my) = (by(x), by(y));
            assert_eq!(mx.len(), x.len(), "{path}: two elements with one {k}");
            let names: BTreeSet<&String> = mx.keys().chain(my.keys()).collect();
            for n in names {
                let p = format!("{path}[{n}]");
                differences(mx.get(n).unwrap_or(&Value::Null), my.get(n).unwrap_or(&Value::Null), &p, out);
            }
        }
        _ if a == b => {}
        _ => out.push(path.to_string()),
    }
}

/// Without root: the Pod the test runs differs from router.yaml's template at exactly the documented paths (a
/// new field in router.yaml — a probe, a hook, a mount — reaches the test's Pod unchanged, and a difference no
/// longer needed is an error too), and docs/image.md lists every one.
#[test]
fn the_pod_the_test_runs_differs_from_router_yaml_only_as_documented() {
    let (template, docs) = template();
    let dir = TempDir::new("rpdoc");
    let pod = pod_to_run(&template, &docs, "openpe-router-test", &dir.path.join("state"), &dir.path, "192.0.2.1");
    let mut got = Vec::new();
    differences(&template, &pod, "", &mut got);
    got.sort();
    let mut want: Vec<String> = DIFFERENCES.iter().map(|(p, _)| p.to_string()).collect();
    want.sort();
    assert_eq!(got, want, "the differences between router.yaml's pod template and the test's Pod");
    // And the one file written in place of the ConfigMap holds the key's text.
    let daemons = fs::read_to_string(dir.path.join("frr-daemons-daemons")).unwrap();
    assert_eq!(daemons, s(&the_one(&docs, "ConfigMap")["data"]["daemons"], "daemons"));
    let doc = fs::read_to_string(repo().join("docs/image.md")).expect("docs/image.md");
    for (path, _) in DIFFERENCES {
        assert!(doc.contains(&format!("`{path}`")), "docs/image.md does not list `{path}`");
    }
    for (name, _) in RUNTIME_DIFFERENCES {
        assert!(doc.contains(&format!("**{name}**")), "docs/image.md does not list **{name}**");
    }
}

#[test]
fn expand_replaces_references_to_the_environment_as_the_kubelet_does() {
    let env: BTreeMap<String, String> = [("A".to_string(), "1.2.3.4".to_string())].into();
    assert_eq!(expand("$(A):7480", &env), "1.2.3.4:7480");
    assert_eq!(expand("[$(A)]-$(B)-$$(A)-$-$", &env), "[1.2.3.4]-$(B)-$(A)-$-$");
}

/// The helper must see every kind of change, or the check above proves nothing.
#[test]
fn differences_finds_changed_added_and_removed_fields_in_keyed_lists() {
    let a = json!({"spec": {"containers": [{"name": "x", "command": ["a"], "volumeMounts": [{"mountPath": "/m", "name": "v"}]}]}});
    let mut b = a.clone();
    let mut out = Vec::new();
    differences(&a, &b, "", &mut out);
    assert!(out.is_empty(), "{out:?}");
    b["spec"]["containers"][0]["command"] = json!(["b"]);
    b["spec"]["containers"][0]["volumeMounts"][0]["readOnly"] = json!(true);
    b["spec"]["containers"].as_array_mut().unwrap().push(json!({"name": "y"}));
    differences(&a, &b, "", &mut out);
    assert_eq!(
        out,
        ["spec.containers[x].command", "spec.containers[x].volumeMounts[/m].readOnly", "spec.containers[y]"]
    );
}

// ------------------------------------------------------------------------------------------------------------
// The node: FRR instances, podman in a private mount namespace.

/// Run inside the lab's host namespace and a new private mount namespace: a sysfs of the host namespace with the
/// cgroup mounts kept (runc needs them), tmpfs over /run (podman's, runc's and CNI's runtime state and network
/// namespaces) with the host namespace bound back at /run/netns/NAME, and tmpfs over /var/lib/cni (libcni's
/// cache) and /var/lib/containers. Prints `ready`, then holds the namespace until killed.
const PRIVATE_NS: &str = r#"set -eu
hostns=$1
stash=$(mktemp -d /tmp/openpe-cgroup.XXXXXX)
mount -n --rbind /sys/fs/cgroup "$stash"
mount -n -t sysfs sysfs /sys
mount -n --move "$stash" /sys/fs/cgroup
rmdir "$stash"
mount -n -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/netns /run/lock
touch "/run/netns/$hostns"
mount -n --bind /proc/self/ns/net "/run/netns/$hostns"
for d in /var/lib/cni /var/lib/containers; do mount -n -t tmpfs -o mode=0755 tmpfs "$d"; done
echo ready
exec sleep infinity
"#;

/// Mountpoints the private namespace mounts over: made when missing, removed again when the test made them.
const MOUNTPOINTS: [&str; 2] = ["/var/lib/cni", "/var/lib/containers"];

fn mnt_ns_of(pid: u32) -> Option<PathBuf> {
    fs::read_link(format!("/proc/{pid}/ns/mnt")).ok()
}

/// podman, private to the test: its namespaces, configuration, storage and pods. Dropping it removes the pods,
/// then every process left in the mount namespace or below one of its processes, then the pods' cgroups.
struct Podman {
    holder: Child,
    mnt_ns: PathBuf,
    dir: PathBuf,
    made_dirs: Vec<PathBuf>,
    pods: Vec<String>,
    pod_ids: Vec<String>,
}

impl Podman {
    fn new(lab: &Lab, dir: &Path, conflist: &Value, plugin_dir: &Path) -> Podman {
        for tool in ["podman", "runc", "conmon", "catatonit", "debootstrap", "nsenter", "unshare"] {
            assert!(sh_ok(&format!("command -v {tool}")), "{tool} is missing: run scripts/install-image-deps.sh");
        }
        let mut made_dirs = Vec::new();
        for d in MOUNTPOINTS {
            if !Path::new(d).exists() {
                fs::create_dir_all(d).unwrap();
                made_dirs.push(PathBuf::from(d));
            }
        }
        for d in ["net.d", "root", "runroot", "tmp"] {
            fs::create_dir_all(dir.join(d)).unwrap();
        }
        fs::write(dir.join("net.d/openpe.conflist"), serde_json::to_string_pretty(conflist).unwrap()).unwrap();
        let conf = format!(
            r#"[containers]
# podman raises RLIMIT_NOFILE and RLIMIT_NPROC by default; raising is refused here, lowering never is.
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[network]
network_backend = "cni"
cni_plugin_dirs = ["{plugins}"]
network_config_dir = "{dir}/net.d"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{dir}/events.log"
runtime = "runc"
tmp_dir = "{dir}/tmp"
lock_type = "file"
"#,
            plugins = plugin_dir.display(),
            dir = dir.display(),
        );
        fs::write(dir.join("containers.conf"), conf).unwrap();
        let mut holder = Command::new("nsenter")
            .arg(format!("--net={}", lab.host.path_str()))
            .args(["unshare", "-m", "--propagation", "private", "sh", "-c", PRIVATE_NS, "sh", &lab.host.name])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the private mount namespace");
        let mut line = String::new();
        BufReader::new(holder.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let mnt_ns = mnt_ns_of(holder.id()).unwrap_or_default();
        let pm = Podman { holder, mnt_ns, dir: dir.to_path_buf(), made_dirs, pods: Vec::new(), pod_ids: Vec::new() };
        assert_eq!(line.trim(), "ready", "the private mount namespace failed");
        assert_ne!(
            Some(&pm.mnt_ns),
            mnt_ns_of(std::process::id()).as_ref(),
            "podman gets a mount namespace of its own"
        );
        pm
    }

    /// The podman command line inside the namespaces (nsenter execs it; it keeps the environment).
    fn argv(&self) -> Vec<String> {
        let d = self.dir.display();
        let mut v: Vec<String> = vec!["nsenter".into(), "-t".into(), self.holder.id().to_string()];
        v.extend(["-m", "-n", "--", "podman"].map(String::from));
        v.extend([format!("--root={d}/root"), format!("--runroot={d}/runroot")]);
        v.extend(["--storage-driver=vfs", "--cgroup-manager=cgroupfs"].map(String::from));
        v
    }

    fn env(&self) -> (String, String) {
        ("CONTAINERS_CONF".into(), self.dir.join("containers.conf").display().to_string())
    }

    fn run(&self, args: &[&str]) -> Outcome {
        let t = Instant::now();
        let argv = self.argv();
        let out = Command::new("timeout")
            .args(["-k", "5", "180"])
            .args(&argv)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .env("HOME", &self.dir)
            .env(self.env().0, self.env().1)
            .stdin(Stdio::null())
            .output()
            .expect("run podman");
        let o = Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        eprintln!("[{:>6} ms] podman {} -> {}", t.elapsed().as_millis(), args.join(" "), o.code);
        o
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert_eq!(o.code, 0, "podman {} failed:\nstdout: {}\nstderr: {}", args.join(" "), o.stdout, o.stderr);
        o.stdout.trim().to_string()
    }

    fn inspect(&self, container: &str) -> Value {
        let v: Value = serde_json::from_str(&self.ok(&["inspect", container])).expect("podman inspect gives JSON");
        v[0].clone()
    }

    /// The OCI runtime configuration podman gave runc for `container`: what really runs.
    fn oci_config(&self, container: &str) -> Value {
        let path = self.inspect(container)["OCIConfigPath"].as_str().expect("OCIConfigPath").to_string();
        serde_json::from_str(&fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))).unwrap()
    }

    /// Every process of this podman: in its mount namespace (podman, conmon) or below one of those (the
    /// containers, which have mount namespaces of their own).
    fn processes(&self) -> Vec<u32> {
        let mut parent: BTreeMap<u32, u32> = BTreeMap::new();
        let mut mine: BTreeSet<u32> = BTreeSet::new();
        for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            if let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) {
                let ppid = stat.rsplit_once(") ").and_then(|(_, r)| r.split(' ').nth(1)).and_then(|p| p.parse().ok());
                parent.insert(pid, ppid.unwrap_or(0));
            }
            if pid != self.holder.id() && mnt_ns_of(pid).as_ref() == Some(&self.mnt_ns) {
                mine.insert(pid);
            }
        }
        let mut all = mine.clone();
        loop {
            let more: Vec<u32> =
                parent.iter().filter(|(p, pp)| all.contains(pp) && !all.contains(p)).map(|(p, _)| *p).collect();
            if more.is_empty() {
                break;
            }
            all.extend(more);
        }
        all.into_iter().collect()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        for pod in std::mem::take(&mut self.pods) {
            let _ = self.run(&["pod", "rm", "-f", "-t", "0", &pod]);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = self.processes();
            if left.is_empty() || Instant::now() > deadline {
                break;
            }
            for pid in left {
                let _ =
                    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        // podman's cgroupfs manager puts a pod under /libpod_parent/<pod id> and the conmon of a container outside
        // pods under /libpod_parent/conmon, in every hierarchy, and leaves them (removed only when empty here).
        for h in fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
            let parent = h.path().join("libpod_parent");
            for id in self.pod_ids.iter().map(String::as_str).chain(["conmon"]) {
                remove_cgroup(&parent.join(id));
            }
            let _ = fs::remove_dir(&parent); // only if nobody else uses it
        }
        for d in self.made_dirs.iter().rev() {
            let _ = fs::remove_dir(d);
        }
    }
}

/// Remove a cgroup directory and the ones below it (cgroup directories are removed empty, deepest first).
fn remove_cgroup(dir: &Path) {
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup(&e.path());
            }
        }
        let _ = fs::remove_dir(dir);
    }
}

fn ns_links(pid: u32) -> Vec<String> {
    let v: Value = serde_json::from_str(&sh(&format!("nsenter -t {pid} -n ip -j link show"))).unwrap();
    let mut names: Vec<String> = list(&v, "links").iter().map(|l| s(&l["ifname"], "ifname").to_string()).collect();
    names.sort();
    names
}

/// The addresses of `dev` in the network namespace of `pid`, link-local ones left out.
fn addrs_of(pid: u32, dev: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(&sh(&format!("nsenter -t {pid} -n ip -j addr show dev {dev}"))).unwrap();
    list(&v[0]["addr_info"], "addr_info")
        .iter()
        .map(|a| format!("{}/{}", s(&a["local"], "local"), a["prefixlen"]))
        .filter(|a| !a.starts_with("fe80:"))
        .collect()
}

fn seconds(t: Instant) -> String {
    format!("{:.1} s", t.elapsed().as_secs_f64())
}

/// Run a probe or a hook of container `name` as the kubelet would: an exec handler in the container, an httpGet
/// or tcpSocket one from the node's host namespace to the pod's address. Success or a panic naming `what`.
fn run_handler(pm: &Podman, lab: &Lab, pod: &str, container: &Value, handler: &Value, pod_ip: &str, what: &str) {
    let name = s(&container["name"], "name");
    let port = |p: &Value| -> u64 {
        match p {
            Value::Number(n) => n.as_u64().expect("a port number"),
            Value::String(named) => list(&container["ports"], "ports")
                .iter()
                .find(|x| x["name"] == named.as_str())
                .and_then(|x| x["containerPort"].as_u64())
                .unwrap_or_else(|| panic!("{what}: no port named {named}")),
            other => panic!("{what}: port {other}"),
        }
    };
    if let Some(exec) = handler.get("exec") {
        let mut args = vec!["exec".to_string(), format!("{pod}-{name}")];
        args.extend(list(&exec["command"], what).iter().map(|a| s(a, what).to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = pm.run(&args);
        assert_eq!(o.code, 0, "{what} failed:\nstdout: {}\nstderr: {}", o.stdout, o.stderr);
    } else if let Some(get) = handler.get("httpGet") {
        let host = get["host"].as_str().unwrap_or(pod_ip);
        let host = if host.contains(':') { format!("[{host}]") } else { host.to_string() };
        let scheme = get["scheme"].as_str().unwrap_or("HTTP").to_lowercase();
        let url = format!("{scheme}://{host}:{}{}", port(&get["port"]), get["path"].as_str().unwrap_or("/"));
        // The kubelet counts 200 to 399 as success.
        let code = lab.host.exec(&format!("curl -sk -o /dev/null -w %{{http_code}} --max-time 5 {url} || true"));
        let ok = code.trim().parse::<u16>().is_ok_and(|c| (200..400).contains(&c));
        assert!(ok, "{what}: GET {url} from the node gave {code:?}");
    } else if let Some(tcp) = handler.get("tcpSocket") {
        let host = tcp["host"].as_str().unwrap_or(pod_ip);
        let p = port(&tcp["port"]);
        assert!(
            sh_ok(&format!("ip netns exec {} timeout 5 bash -c 'exec 3<>/dev/tcp/{host}/{p}'", lab.host.name)),
            "{what}: no TCP connection to {host}:{p} from the node"
        );
    } else {
        panic!("{what}: a handler this test cannot run: {handler}");
    }
}

/// In each container of the template, run `field` (a probe, or `lifecycle.preStop` etc.) if it has one.
fn run_handlers(pm: &Podman, lab: &Lab, pod: &str, template: &Value, pod_ip: &str, field: &[&str]) -> usize {
    let mut ran = 0;
    for c in list(&template["spec"]["containers"], "containers") {
        let handler = field.iter().fold(c, |v, k| &v[*k]);
        if !handler.is_null() {
            let what = format!("container {}: {}", s(&c["name"], "name"), field.join("."));
            run_handler(pm, lab, pod, c, handler, pod_ip, &what);
            ran += 1;
        }
    }
    ran
}

/// What podman runs agrees with the template: the same containers, each with the template's command and
/// arguments, its environment, the capabilities it adds, and a mount for each volumeMount from the volume it
/// names (emptyDir volumes shared between containers, hostPath ones from the path the test's Pod gives), and
/// no other mount than the runtime's own.
fn assert_runs_as_written(pm: &Podman, pod: &str, template: &Value, run: &Value) {
    let infra = pm.ok(&["pod", "inspect", "-f", "{{.InfraContainerID}}", pod]);
    let members: Vec<Value> = serde_json::from_str(&pm.ok(&["ps", "-a", "--pod", "--format", "json"])).unwrap();
    let mut names: Vec<String> = members
        .iter()
        .filter(|c| c["PodName"] == pod && c["Id"] != infra.as_str())
        .map(|c| s(&c["Names"][0], "Names").to_string())
        .collect();
    names.sort();
    let mut want: Vec<String> = list(&template["spec"]["containers"], "containers")
        .iter()
        .map(|c| format!("{pod}-{}", s(&c["name"], "name")))
        .collect();
    want.sort();
    assert_eq!(names, want, "the pod's containers");

    let volumes: BTreeMap<String, Value> = list(&run["spec"]["volumes"], "volumes")
        .iter()
        .map(|v| (s(&v["name"], "name").to_string(), v.clone()))
        .collect();
    let mut empty_dir_sources: BTreeMap<String, String> = BTreeMap::new();
    // The runtime's own mounts, in every container.
    let own = ["/proc", "/dev", "/dev/pts", "/dev/mqueue", "/dev/shm", "/sys", "/sys/fs/cgroup"];
    let own_files = ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/run/.containerenv"];
    for c in list(&template["spec"]["containers"], "containers") {
        let name = s(&c["name"], "name");
        let oci = pm.oci_config(&format!("{pod}-{name}"));
        // What the kubelet runs: the template's command and arguments, $(VAR) expanded from the environment the
        // test's Pod gives (the template's, with the pod's address for status.podIP).
        let ran = list(&run["spec"]["containers"], "containers").iter().find(|x| x["name"] == name).unwrap();
        let env = env_of(ran);
        let mut argv: Vec<Value> = Vec::new();
        for field in ["command", "args"] {
            for a in c[field].as_array().into_iter().flatten() {
                argv.push(json!(expand(s(a, field), &env)));
            }
        }
        assert!(!argv.is_empty(), "container {name}: router.yaml gives no command (the image's would run)");
        assert_eq!(oci["process"]["args"], Value::Array(argv), "container {name}: the command");
        for e in c["env"].as_array().into_iter().flatten() {
            let key = s(&e["name"], "env name");
            let want = format!("{key}={}", env.get(key).unwrap_or_else(|| panic!("container {name}: env {key}")));
            assert!(list(&oci["process"]["env"], "env").iter().any(|x| x == want.as_str()), "container {name}: {want}");
        }
        if let Some(dir) = c["workingDir"].as_str() {
            assert_eq!(oci["process"]["cwd"], dir, "container {name}: workingDir");
        }
        let caps = list(&oci["process"]["capabilities"]["effective"], "capabilities");
        for cap in c["securityContext"]["capabilities"]["add"].as_array().into_iter().flatten() {
            let cap = format!("CAP_{}", s(cap, "capability").trim_start_matches("CAP_"));
            assert!(caps.iter().any(|x| x == cap.as_str()), "container {name}: {cap} is not granted: {caps:?}");
        }
        let mounts = list(&oci["mounts"], "mounts");
        let mut expected: BTreeSet<String> = BTreeSet::new();
        for m in c["volumeMounts"].as_array().into_iter().flatten() {
            let path = s(&m["mountPath"], "mountPath");
            expected.insert(path.to_string());
            let got = mounts
                .iter()
                .find(|x| x["destination"] == path)
                .unwrap_or_else(|| panic!("container {name}: nothing mounted at {path}: {mounts:?}"));
            let source = s(&got["source"], "source");
            let vname = s(&m["name"], "volume");
            let v = &volumes[vname];
            if let Some(host) = v["hostPath"]["path"].as_str() {
                assert_eq!(source, host, "container {name}: {path} comes from hostPath {host}");
            } else {
                assert!(v.get("emptyDir").is_some(), "volume {vname}");
                let first = empty_dir_sources.entry(vname.to_string()).or_insert_with(|| source.to_string());
                assert_eq!(source, first, "container {name}: {path} is the emptyDir {vname} the others mount");
                assert!(source.starts_with(&pm.dir.display().to_string()), "{source} lives in the test's directory");
            }
            let options = list(&got["options"], "options");
            let ro = m["readOnly"] == true;
            assert_eq!(options.iter().any(|o| o == "ro"), ro, "container {name}: {path} read-only is {ro}");
        }
        for m in mounts {
            let d = s(&m["destination"], "destination");
            assert!(
                expected.contains(d) || own.contains(&d) || own_files.contains(&d),
                "container {name}: {d} is mounted, but router.yaml does not say so: {m}"
            );
        }
    }
}

#[test]
#[ignore = "needs root"]
fn router_pod_from_the_image_under_podman_gets_bgp_up_and_gives_the_nic_back() {
    let start = Instant::now();
    let (template, docs) = template();
    let lab = Lab::new("rp");
    let work = TempDir::new("rpw");
    let files = work.path.join("files");
    fs::create_dir_all(&files).unwrap();

    // The node's network: the NetworkAttachmentDefinition's configuration, with the test's state directory and
    // the host namespace podman runs in.
    let mut conflist = nad_conflist();
    let plugins = conflist["plugins"].as_array_mut().expect("plugins");
    let plugin = plugins.iter_mut().find(|p| p["type"] == "openpe-passthrough").expect("the plugin");
    assert_eq!(plugin["stateDir"], NODE_STATE_DIR, "the hostPath router.yaml mounts");
    plugin["stateDir"] = json!(lab.state.path.display().to_string());
    plugin["hostNetns"] = json!(lab.host.path_str());
    let network = s(&conflist["name"], "name").to_string();
    // The pod's address the node reaches: the router's end of pt-ns, the first address of localcidr.ipv4.
    let cidr: ipnet::Ipv4Net =
        s(&plugin_of(&conflist)["l3passthrough"]["hostsession"]["localcidr"]["ipv4"], "localcidr")
            .parse()
            .expect("localcidr.ipv4");
    let pod_ip = cidr.hosts().next().expect("an address in localcidr.ipv4").to_string();

    // The ToR, as in the demo, and the address the host's speaker advertises.
    lab.host.ip("addr add 172.31.0.1/32 dev lo");
    let tor = start_tor(&lab);
    let before = lab.snapshot();

    let dist = repo().join("target/dist");
    // podman checks its plugin directory when it starts, before scripts/build-image.sh builds into it.
    fs::create_dir_all(&dist).unwrap();
    let mut pm = Podman::new(&lab, &work.path.join("podman"), &conflist, &dist);

    // The image, under the name router.yaml gives it, on a base made from Debian's packages.
    let images: BTreeSet<&str> =
        list(&template["spec"]["containers"], "containers").iter().map(|c| s(&c["image"], "image")).collect();
    assert_eq!(images.len(), 1, "both containers run the one image: {images:?}");
    let image = images.into_iter().next().unwrap().to_string();
    let t = Instant::now();
    let podman_cmd = pm.argv().join(" ");
    // OPENPE_BASE_TAR=DIR/base.tar (from an earlier `scripts/build-image.sh --debian-base DIR`) skips debootstrap
    // while working on the test; CI never sets it.
    let base = match std::env::var_os("OPENPE_BASE_TAR") {
        Some(tar) => vec!["--base-tar".into(), tar],
        None => vec!["--debian-base".into(), work.path.join("base").into_os_string()],
    };
    let build = Command::new("timeout")
        .args(["-k", "10", "900"])
        .arg(repo().join("scripts/build-image.sh"))
        .args(&base)
        .arg(&image)
        .env("PODMAN", &podman_cmd)
        .env(pm.env().0, pm.env().1)
        .stdin(Stdio::null())
        .status()
        .expect("run scripts/build-image.sh");
    assert!(build.success(), "scripts/build-image.sh failed ({build})");
    eprintln!("the image (scripts/build-image.sh): {}", seconds(t));

    // The pod.
    let pod_name = unique("rpod").to_lowercase();
    let run = pod_to_run(&template, &docs, &pod_name, &lab.state.path, &files, &pod_ip);
    let pod_yaml = work.path.join("pod.yaml");
    fs::write(&pod_yaml, serde_norway::to_string(&run).unwrap()).unwrap();
    let t = Instant::now();
    pm.pods.push(pod_name.clone());
    let pod_yaml = pod_yaml.display().to_string();
    let o = pm.run(&["kube", "play", "--network", &network, &pod_yaml]);
    let id = pm.run(&["pod", "inspect", "-f", "{{.Id}}", &pod_name]).stdout.trim().to_string();
    if !id.is_empty() {
        pm.pod_ids.push(id);
    }
    assert_eq!(o.code, 0, "kube play failed:\nstdout: {}\nstderr: {}", o.stdout, o.stderr);
    eprintln!("kube play: {}", seconds(t));
    let post_start = run_handlers(&pm, &lab, &pod_name, &template, &pod_ip, &["lifecycle", "postStart"]);

    let sidecar = format!("{pod_name}-sidecar");
    let sidecar_c =
        list(&template["spec"]["containers"], "containers").iter().find(|c| c["name"] == "sidecar").cloned();
    let sidecar_cmd = list(&sidecar_c.expect("a sidecar container")["command"], "command").clone();
    let pathspace = sidecar_cmd
        .iter()
        .position(|a| a == "--frr-pathspace")
        .and_then(|i| sidecar_cmd.get(i + 1))
        .map(|v| s(v, "pathspace").to_string())
        .expect("the sidecar's --frr-pathspace");
    let frr_c = format!("{pod_name}-frr");

    // The router namespace is the pod's: the NIC and pt-ns are there, the NIC's addresses with it.
    let pid: u32 = pm.ok(&["inspect", "-f", "{{.State.Pid}}", &sidecar]).parse().unwrap();
    assert_eq!(ns_links(pid), ["lo", "pt-ns", "toswitch"], "the pod's links");
    assert_eq!(addrs_of(pid, "toswitch"), ["192.168.11.3/24", "2001:db8:11::3/64"], "the NIC keeps its addresses");
    assert!(addrs_of(pid, "pt-ns").contains(&format!("{pod_ip}/{}", cidr.prefix_len())), "{pod_ip} is on pt-ns");
    let host4 = addrs(&lab.host, "pt-host").iter().find(|a| !a.contains(':')).expect("pt-host has IPv4").clone();
    let host6 = addrs(&lab.host, "pt-host").iter().find(|a| a.contains(':')).expect("pt-host has IPv6").clone();
    let (host4, host6) = (host4.split('/').next().unwrap().to_string(), host6.split('/').next().unwrap().to_string());

    // The host's speaker, as in the demo, peering with the router's end of pt-ns.
    let host = Frr::start(
        &lab.host,
        "rphost",
        &format!(
            "router bgp 64515\n bgp router-id {host4}\n no bgp ebgp-requires-policy\n no bgp default ipv4-unicast\n \
             no bgp network import-check\n neighbor 192.169.10.1 remote-as 64514\n neighbor 192.169.10.1 timers connect 1\n \
             neighbor 2001:db8:10::1 remote-as 64514\n neighbor 2001:db8:10::1 timers connect 1\n \
             address-family ipv4 unicast\n  network 172.31.0.0/24\n  neighbor 192.169.10.1 activate\n exit-address-family\n \
             address-family ipv6 unicast\n  neighbor 2001:db8:10::1 activate\n exit-address-family\nexit\n"
        ),
    );

    let status =
        || pm.run(&["exec", &sidecar, "openpe-sidecar", "status", "--json", "--frr-pathspace", &pathspace]).stdout;
    let context = || {
        format!(
            "sidecar status: {}\nfrr log:\n{}\nsidecar log:\n{}\ntor:\n{}\nhost:\n{}",
            status(),
            pm.run(&["logs", &frr_c]).stderr + &pm.run(&["logs", &frr_c]).stdout,
            pm.run(&["logs", &sidecar]).stderr,
            tor.vtysh("show bgp summary"),
            host.vtysh("show bgp summary")
        )
    };
    let peers = ["192.168.11.2", host4.as_str(), host6.as_str()];
    let t = Instant::now();
    wait_for(
        "BGP Established to the ToR and the host's speaker (both families)",
        || {
            let status = status();
            let v: Value = serde_json::from_str(&status).map_err(|e| format!("status is not JSON ({e}): {status}"))?;
            status_established(&v, &peers)
        },
        context,
    );
    eprintln!("from kube play to every session Established: {}", seconds(t));

    // The sidecar rendered FRR's configuration from the attachment record in the mounted state directory and
    // applied it (frr-reload.py then has FRR write the pathspace's frr.conf over with its running configuration).
    let log = || {
        let o = pm.run(&["logs", &sidecar]);
        o.stdout + &o.stderr
    };
    wait_for(
        "the sidecar's log of what it applied",
        || match log().contains("applied the configuration for attachment ") {
            true => Ok(()),
            false => Err("no \"applied the configuration for attachment\" line".into()),
        },
        log,
    );
    let conf = pm.ok(&["exec", &frr_c, "vtysh", "-N", &pathspace, "-c", "show running-config"]);
    for line in
        ["router bgp 64514", " neighbor 192.168.11.2 remote-as 64512", &format!(" neighbor {host4} remote-as 64515")]
    {
        assert!(conf.lines().any(|l| l == line), "FRR's running configuration has no {line:?}:\n{conf}");
    }
    // The ToR learns the host's prefix through the router.
    wait_for(
        "the host's prefix at the ToR",
        || match tor.vtysh("show bgp ipv4 unicast json").contains("\"172.31.0.0/24\"") {
            true => Ok(()),
            false => Err("172.31.0.0/24 is not at the ToR".into()),
        },
        context,
    );

    // Probes and hooks: podman runs none; run them as the kubelet would.
    let mut probes = 0;
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        probes += run_handlers(&pm, &lab, &pod_name, &template, &pod_ip, &[probe]);
    }
    assert!(probes >= 1, "router.yaml has probes, and every one passed");
    assert_runs_as_written(&pm, &pod_name, &template, &run);

    // Removing the pod: each preStop hook first, then `kube down`; the NIC comes home with everything it had.
    let pre_stop = run_handlers(&pm, &lab, &pod_name, &template, &pod_ip, &["lifecycle", "preStop"]);
    let t = Instant::now();
    pm.ok(&["kube", "down", &pod_yaml]);
    pm.pods.clear();
    eprintln!("kube down: {}", seconds(t));
    drop(host);
    assert_eq!(lab.snapshot(), before, "every namespace as before the pod");
    // The sidecar's own liveness file may stay when podman kills it at the end of its grace period: it holds no
    // lock then, and DEL only ever probes that lock (docs/draining.md). Records and claims must all be gone.
    let left: Vec<String> = lab.state_files().into_iter().filter(|f| !f.starts_with("sidecars/")).collect();
    assert_eq!(left, Vec::<String>::new(), "no record or claim left in the state directory");
    for f in lab.state_files() {
        let file = std::fs::File::open(lab.state.path.join(&f)).unwrap();
        assert!(file.try_lock().is_ok(), "{f}: still locked after the pod is gone");
    }
    assert_eq!(pm.ok(&["ps", "-a", "-q"]), "", "no container left");

    // The installer's init container (install-daemonset.yaml), run from the same image against a directory
    // standing for the node's /opt/cni/bin: it leaves the plugin, whole and executable, and nothing else.
    let installer = the_one(&documents("netconf/k8s/install-daemonset.yaml"), "DaemonSet");
    let init = &list(&installer["spec"]["template"]["spec"]["initContainers"], "initContainers")[0];
    assert_eq!(init["image"], image.as_str(), "the installer runs the image built here");
    let mount = &list(&init["volumeMounts"], "volumeMounts")[0];
    let cni_bin = work.path.join("opt-cni-bin");
    fs::create_dir_all(&cni_bin).unwrap();
    let volume = format!("{}:{}", cni_bin.display(), s(&mount["mountPath"], "mountPath"));
    let mut args: Vec<String> =
        ["run", "--rm", "--network", "none", "-v", &volume, "--entrypoint", ""].iter().map(|a| a.to_string()).collect();
    args.push(image.clone());
    args.extend(list(&init["command"], "command").iter().map(|a| s(a, "command").to_string()));
    pm.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let installed: Vec<String> =
        fs::read_dir(&cni_bin).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(installed, ["openpe-passthrough"], "what the installer leaves in /opt/cni/bin");
    let plugin = cni_bin.join("openpe-passthrough");
    assert_eq!(fs::read(&plugin).unwrap(), fs::read(dist.join("openpe-passthrough")).unwrap(), "the static plugin");
    let mode = std::os::unix::fs::PermissionsExt::mode(&fs::metadata(&plugin).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o755, "installed executable");
    let version = Command::new(&plugin).arg("--version").output().expect("run the installed plugin");
    assert!(version.status.success(), "the installed plugin runs: {version:?}");

    eprintln!(
        "router pod test: {} in all ({probes} probes, {post_start} postStart and {pre_stop} preStop hooks run)",
        seconds(start)
    );
    drop(pm);
    drop(tor);
}
