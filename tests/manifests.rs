//! The Kubernetes files under netconf/k8s parse as YAML, have the kinds and fields a cluster needs, and agree
//! with each other and with the plugin: the NetworkAttachmentDefinition's configuration is one the plugin
//! accepts (with `nodeIndexFrom` on an underlay NIC), the router pod selects it with interface `pt-ns` and
//! mounts the state directory the configuration names, and the installer puts the binary into /opt/cni/bin.
//! (Running the NetworkAttachmentDefinition's configuration through libcni is in tests/libcni.rs.)
//! Needs no root.

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Value;

use openpe::cni::Envelope;
use openpe::config::{Passthrough, DEFAULT_STATE_DIR};

fn k8s_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("netconf/k8s")
}

/// Every document of a YAML file, as JSON values (Kubernetes objects are JSON-compatible).
fn documents(file: &str) -> Vec<Value> {
    let path = k8s_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{file}: not valid YAML: {e}")))
        .filter(|v| !v.is_null())
        .collect()
}

fn the_one(file: &str, kind: &str) -> Value {
    let docs = documents(file);
    let mut found: Vec<Value> = docs.into_iter().filter(|d| d["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "{file}: expected exactly one {kind}");
    found.remove(0)
}

fn str_of<'a>(v: &'a Value, what: &str) -> &'a str {
    v.as_str().unwrap_or_else(|| panic!("{what}: expected a string, got {v}"))
}

/// The NetworkAttachmentDefinition's CNI configuration, and its openpe-passthrough plugin entry.
fn nad_config() -> (Value, Value) {
    let nad = the_one("network-attachment-definition.yaml", "NetworkAttachmentDefinition");
    let config: Value =
        serde_json::from_str(str_of(&nad["spec"]["config"], "spec.config")).expect("spec.config is JSON");
    let plugin = match config.get("plugins") {
        Some(list) => list
            .as_array()
            .expect("plugins is an array")
            .iter()
            .find(|p| p["type"] == "openpe-passthrough")
            .expect("an openpe-passthrough plugin in the list")
            .clone(),
        None => config.clone(),
    };
    (config, plugin)
}

fn containers(pod_spec: &Value) -> Vec<Value> {
    pod_spec["containers"].as_array().expect("containers").clone()
}

fn volume<'a>(pod_spec: &'a Value, name: &str) -> &'a Value {
    pod_spec["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no volume {name:?}"))
}

fn mount_of<'a>(container: &'a Value, path: &str) -> Option<&'a Value> {
    container["volumeMounts"].as_array()?.iter().find(|m| m["mountPath"] == path)
}

/// The value after `flag` in a command line.
fn flag_value<'a>(command: &'a [Value], flag: &str) -> Option<&'a str> {
    command.iter().position(|a| a == flag).and_then(|i| command.get(i + 1)).and_then(Value::as_str)
}

#[test]
fn every_file_parses_with_the_expected_kinds() {
    let expect = [
        ("network-attachment-definition.yaml", vec![("k8s.cni.cncf.io/v1", "NetworkAttachmentDefinition")]),
        ("router.yaml", vec![("v1", "ConfigMap"), ("apps/v1", "DaemonSet")]),
        ("install-daemonset.yaml", vec![("v1", "Namespace"), ("apps/v1", "DaemonSet")]),
    ];
    let mut files: Vec<String> = std::fs::read_dir(k8s_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
        .collect();
    files.sort();
    let mut named: Vec<String> = expect.iter().map(|(f, _)| f.to_string()).collect();
    named.sort();
    assert_eq!(files, named, "every manifest is checked here");
    for (file, kinds) in expect {
        let docs = documents(file);
        let got: Vec<(&str, &str)> =
            docs.iter().map(|d| (str_of(&d["apiVersion"], "apiVersion"), str_of(&d["kind"], "kind"))).collect();
        assert_eq!(got, kinds, "{file}");
        for d in &docs {
            let name = str_of(&d["metadata"]["name"], "metadata.name");
            assert!(!name.is_empty());
            if d["kind"] != "Namespace" {
                assert_eq!(d["metadata"]["namespace"], "openpe-system", "{file}: {name} lives in openpe-system");
            }
        }
    }
}

#[test]
fn the_network_attachment_definition_carries_a_configuration_the_plugin_accepts() {
    let (config, plugin) = nad_config();
    // libcni (and so Multus) reads cniVersion and name from the list, and passes them to every plugin.
    assert_eq!(config["cniVersion"], "1.0.0", "the newest version Multus' libcni parses");
    let mut whole = plugin.clone();
    whole["cniVersion"] = config["cniVersion"].clone();
    whole["name"] = config["name"].clone();
    let envelope =
        Envelope::parse(&whole).unwrap_or_else(|e| panic!("the plugin refuses the configuration: {}", e.msg));
    let pt = Passthrough::parse(&whole).unwrap_or_else(|e| panic!("the plugin refuses the configuration: {}", e.msg));
    assert_eq!(envelope.settings.state_dir, PathBuf::from(DEFAULT_STATE_DIR));
    // One configuration for every node: the index comes from the node's underlay NIC, never a fixed number.
    let from = pt.node_index_from.expect("nodeIndexFrom is the recommended source in a cluster");
    assert!(pt.underlay.nics.contains(&from.interface), "nodeIndexFrom.interface is an underlay NIC");
    assert!(pt.node_index.is_none(), "a fixed nodeIndex would collide across nodes");
    assert!(pt.host_netns.is_none(), "in a cluster the host side is the namespace the runtime runs the plugin in");
    let neighbor_in_cidr = pt.underlay.neighbors.iter().filter_map(|n| n.address()).any(|a| from.cidr.contains(&a));
    assert!(neighbor_in_cidr, "nodeIndexFrom.cidr is the underlay subnet the fabric numbers the nodes in");
}

#[test]
fn the_router_pod_selects_the_network_as_pt_ns_and_shares_the_state_directory() {
    let nad = the_one("network-attachment-definition.yaml", "NetworkAttachmentDefinition");
    let (_, plugin) = nad_config();
    let state_dir = plugin["stateDir"].as_str().unwrap_or(DEFAULT_STATE_DIR);

    let ds = the_one("router.yaml", "DaemonSet");
    let template = &ds["spec"]["template"];
    assert_eq!(ds["spec"]["selector"]["matchLabels"], template["metadata"]["labels"]);
    let networks: Value = serde_json::from_str(str_of(
        &template["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"],
        "networks annotation",
    ))
    .expect("the networks annotation is JSON");
    let selection = networks.as_array().expect("a list of networks");
    assert_eq!(selection.len(), 1);
    assert_eq!(selection[0]["name"], nad["metadata"]["name"]);
    assert_eq!(selection[0]["namespace"], nad["metadata"]["namespace"]);
    assert_eq!(selection[0]["interface"], "pt-ns");

    let spec = &template["spec"];
    assert_ne!(spec["hostNetwork"], true, "the router needs its own network namespace");
    let cs = containers(spec);
    assert_eq!(cs.len(), 2, "FRR and the sidecar in one pod, sharing its network namespace");
    let frr = cs.iter().find(|c| c["name"] == "frr").expect("an frr container");
    let sidecar = cs.iter().find(|c| c["name"] == "sidecar").expect("a sidecar container");
    let command = sidecar["command"].as_array().expect("sidecar command");
    assert_eq!(command[0], "openpe-sidecar");
    assert_eq!(flag_value(command, "--state-dir"), Some(state_dir));
    let pathspace = flag_value(command, "--frr-pathspace").expect("--frr-pathspace");
    let frr_cmd = frr["command"].as_array().expect("frr command").iter().map(|a| str_of(a, "arg")).collect::<Vec<_>>();
    assert!(
        frr_cmd.join(" ").contains(&format!("frrinit.sh start {pathspace}")),
        "FRR runs in the pathspace the sidecar is told"
    );

    // The state directory: the node's, through a hostPath, where the plugin (running on the node) writes.
    let m = mount_of(sidecar, state_dir).expect("the sidecar mounts the state directory");
    let v = volume(spec, str_of(&m["name"], "mount name"));
    assert_eq!(v["hostPath"]["path"], state_dir);
    // FRR's configuration and vty sockets are shared between the two containers.
    for dir in [format!("/etc/frr/{pathspace}"), "/var/run/frr".to_string()] {
        let a = mount_of(frr, &dir).unwrap_or_else(|| panic!("frr mounts {dir}"));
        let b = mount_of(sidecar, &dir).unwrap_or_else(|| panic!("the sidecar mounts {dir}"));
        assert_eq!(a["name"], b["name"], "{dir} is one volume");
        assert!(volume(spec, str_of(&a["name"], "name")).get("emptyDir").is_some());
    }
    // FRR's daemons file sets the same pathspace.
    let cm = the_one("router.yaml", "ConfigMap");
    let daemons = str_of(&cm["data"]["daemons"], "daemons");
    assert!(daemons.lines().any(|l| l == "bgpd=yes"));
    // `frrinit.sh start PATHSPACE` gives watchfrr -N already; it refuses a second one from the daemons file.
    assert!(!daemons.contains("-N") && !daemons.contains("--pathspace"), "{daemons}");
    let dm = mount_of(frr, &format!("/etc/frr/{pathspace}/daemons")).expect("the daemons file is mounted");
    assert_eq!(volume(spec, str_of(&dm["name"], "name"))["configMap"]["name"], cm["metadata"]["name"]);
}

#[test]
fn the_installer_puts_the_plugin_into_opt_cni_bin_on_every_node() {
    let ds = the_one("install-daemonset.yaml", "DaemonSet");
    let template = &ds["spec"]["template"];
    assert_eq!(ds["spec"]["selector"]["matchLabels"], template["metadata"]["labels"]);
    let spec = &template["spec"];
    assert!(
        spec["tolerations"].as_array().expect("tolerations").iter().any(|t| t["operator"] == "Exists"),
        "runs on every node, tainted ones too"
    );
    let init = spec["initContainers"].as_array().expect("initContainers");
    let installer = &init[0];
    let mount = installer["volumeMounts"].as_array().expect("mounts")[0].clone();
    let v = volume(spec, str_of(&mount["name"], "mount name"));
    assert_eq!(v["hostPath"]["path"], "/opt/cni/bin");
    let target = str_of(&mount["mountPath"], "mountPath");
    let script = installer["command"]
        .as_array()
        .expect("command")
        .iter()
        .map(|a| str_of(a, "arg"))
        .collect::<Vec<_>>()
        .join(" ");
    // Copied under a temporary name and renamed into place: a runtime never runs a half-written binary.
    assert!(
        script.contains(&format!("mv -f {target}/.openpe-passthrough.tmp {target}/openpe-passthrough")),
        "{script}"
    );
    assert!(!containers(spec).is_empty());
}

/// The port of the sidecar's `--http-listen` in the router pod: the value, with `$(VAR)` taken from the
/// container's environment, must be the pod's IP (reachable by the kubelet and Prometheus) and a port.
fn sidecar_http_port(sidecar: &Value) -> u16 {
    let command = sidecar["command"].as_array().expect("sidecar command");
    let listen = flag_value(command, "--http-listen").expect("the sidecar serves HTTP (--http-listen)");
    let (host, port) = listen.rsplit_once(':').unwrap_or_else(|| panic!("--http-listen {listen:?} is ADDR:PORT"));
    let var = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .strip_prefix("$(")
        .and_then(|h| h.strip_suffix(')'))
        .unwrap_or_else(|| panic!("--http-listen {listen:?}: the address is the pod IP from the environment"));
    let env = sidecar["env"].as_array().expect("sidecar env");
    let e = env.iter().find(|e| e["name"] == var).unwrap_or_else(|| panic!("no env {var}"));
    assert_eq!(e["valueFrom"]["fieldRef"]["fieldPath"], "status.podIP", "{var} is the pod IP");
    port.parse().unwrap_or_else(|_| panic!("--http-listen {listen:?}: bad port"))
}

/// An httpGet probe's path and port number (a named port resolved through `container`'s ports).
fn http_probe(container: &Value, probe: &str) -> (String, u16) {
    let get = &container[probe]["httpGet"];
    assert!(get.is_object(), "{}: {probe} is an httpGet probe: {}", container["name"], container[probe]);
    let port = match &get["port"] {
        Value::Number(n) => n.as_u64().expect("a port number") as u16,
        Value::String(name) => container["ports"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == *name))
            .and_then(|p| p["containerPort"].as_u64())
            .unwrap_or_else(|| panic!("{}: no port named {name}", container["name"]))
            as u16,
        other => panic!("{probe}: port {other}"),
    };
    (str_of(&get["path"], "httpGet.path").to_string(), port)
}

#[test]
fn the_router_pod_probes_and_scrapes_the_sidecars_http_endpoints() {
    let ds = the_one("router.yaml", "DaemonSet");
    let template = &ds["spec"]["template"];
    let cs = containers(&template["spec"]);
    let frr = cs.iter().find(|c| c["name"] == "frr").expect("an frr container");
    let sidecar = cs.iter().find(|c| c["name"] == "sidecar").expect("a sidecar container");
    let port = sidecar_http_port(sidecar);
    let declared: Vec<u64> = sidecar["ports"]
        .as_array()
        .expect("the sidecar declares its port")
        .iter()
        .filter_map(|p| p["containerPort"].as_u64())
        .collect();
    assert_eq!(declared, vec![port as u64]);

    // Readiness is the sessions (the sidecar's /readyz); liveness of FRR is /healthz, held back at start-up.
    assert_eq!(http_probe(sidecar, "readinessProbe"), ("/readyz".to_string(), port));
    assert_eq!(http_probe(frr, "livenessProbe"), ("/healthz".to_string(), port));
    assert_eq!(http_probe(frr, "startupProbe"), ("/healthz".to_string(), port));
    assert!(sidecar.get("livenessProbe").is_none(), "a sidecar restart would not bring FRR back");
    for (c, probe) in [(sidecar, "readinessProbe"), (frr, "livenessProbe"), (frr, "startupProbe")] {
        assert!(c[probe].get("exec").is_none(), "{probe} runs no command in the container");
    }

    // Prometheus' pod annotations name the same port and the metrics path.
    let ann = &template["metadata"]["annotations"];
    assert_eq!(ann["prometheus.io/scrape"], "true");
    assert_eq!(ann["prometheus.io/port"], port.to_string());
    assert_eq!(ann["prometheus.io/path"], "/metrics");
}

/// Every openpe container runs the one image scripts/build-image.sh builds by default, tagged with the crate's
/// version (FRR and the sidecar from one image: the sidecar's vtysh is the daemons' own).
#[test]
fn the_manifests_name_the_image_that_build_image_makes() {
    let script = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/build-image.sh"))
        .expect("scripts/build-image.sh");
    let default = script
        .lines()
        .find_map(|l| l.strip_prefix("DEFAULT_IMAGE="))
        .expect("scripts/build-image.sh sets DEFAULT_IMAGE=");
    assert_eq!(default.rsplit_once(':').map(|(_, tag)| tag), Some(env!("CARGO_PKG_VERSION")), "{default}");
    let router = the_one("router.yaml", "DaemonSet");
    let cs = containers(&router["spec"]["template"]["spec"]);
    for c in &cs {
        assert_eq!(c["image"], default, "router.yaml: container {}", c["name"]);
    }
    let installer = the_one("install-daemonset.yaml", "DaemonSet");
    let init = installer["spec"]["template"]["spec"]["initContainers"].as_array().expect("initContainers");
    assert_eq!(init[0]["image"], default, "install-daemonset.yaml: the installer");
}

/// The preStop hook's command of a container, as one string.
fn pre_stop(container: &Value) -> Vec<String> {
    container["lifecycle"]["preStop"]["exec"]["command"]
        .as_array()
        .unwrap_or_else(|| panic!("{}: no preStop exec hook", container["name"]))
        .iter()
        .map(|a| str_of(a, "preStop argument").to_string())
        .collect()
}

/// Pod deletion drains (docs/draining.md): the kubelet runs both hooks at once and SIGTERMs each container right
/// after its own hook, so the sidecar's hook closes the sessions with `openpe-sidecar drain` (in the pathspace
/// and with the state directory the sidecar uses) and FRR's hook waits until no session is Established, each
/// bounded, and the grace period outlasts both.
#[test]
fn both_router_containers_drain_before_they_stop() {
    let ds = the_one("router.yaml", "DaemonSet");
    let spec = &ds["spec"]["template"]["spec"];
    let cs = containers(spec);
    let frr = cs.iter().find(|c| c["name"] == "frr").expect("an frr container");
    let sidecar = cs.iter().find(|c| c["name"] == "sidecar").expect("a sidecar container");
    let run: Vec<Value> = sidecar["command"].as_array().expect("sidecar command").clone();
    let pathspace = flag_value(&run, "--frr-pathspace").expect("--frr-pathspace").to_string();
    let state_dir = flag_value(&run, "--state-dir").expect("--state-dir").to_string();

    let hook = pre_stop(sidecar);
    let hook_v: Vec<Value> = hook.iter().map(|s| Value::from(s.as_str())).collect();
    assert_eq!(&hook[..2], ["openpe-sidecar", "drain"], "{hook:?}");
    assert_eq!(flag_value(&hook_v, "--frr-pathspace"), Some(pathspace.as_str()), "{hook:?}");
    assert_eq!(flag_value(&hook_v, "--state-dir"), Some(state_dir.as_str()), "{hook:?}");
    let drain_timeout: f64 = flag_value(&hook_v, "--timeout").expect("a bounded drain").parse().expect("seconds");

    let frr_hook = pre_stop(frr).join(" ");
    assert!(frr_hook.contains(&format!("vtysh -N {pathspace} ")), "FRR's hook asks its own FRR: {frr_hook}");
    assert!(frr_hook.contains("\"state\":\"Established\""), "FRR's hook waits for the sessions to go: {frr_hook}");
    // Bounded: a loop of N tries, 0.1 s apart.
    let tries: f64 = frr_hook
        .split("$(seq ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("FRR's hook is not a bounded loop: {frr_hook}"));
    assert!(frr_hook.contains("sleep 0.1"), "{frr_hook}");
    let frr_wait = tries * 0.1;
    assert!(frr_wait >= drain_timeout, "FRR waits at least as long as the drain may take");

    let grace = spec["terminationGracePeriodSeconds"].as_f64().expect("terminationGracePeriodSeconds");
    // Both hooks, then FRR's own shutdown and the sidecar's SIGTERM drain (5 s at most), inside the grace period.
    assert!(grace >= frr_wait.max(drain_timeout) + 10.0, "grace period {grace} s is too short");
}
