//! The plugin driven through libcni, the library containerd, CRI-O and Multus use, by `scripts/cnitool` (built
//! from Debian's libcni 1.1.2 source on first use): conflist parsing, chaining with prevResult, result version
//! conversion, and the result cache that CHECK and DEL read. Each test runs the cnitool inside its lab's host
//! namespace (ptp and bridge change the namespace they run in), with the cache, host-local's data and the
//! plugin's state in temporary directories, so nothing reaches this machine's own network or /var/lib/cni.
//! Root only.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{json, Value};

use common::*;

/// The cnitool binary, built once per test process when missing or older than its source.
fn cnitool() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let bin = root.join("target/cnitool");
        let src = root.join("scripts/cnitool/main.go");
        let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let fresh = matches!((mtime(&bin), mtime(&src)), (Some(b), Some(s)) if b >= s);
        if !fresh {
            let out =
                Command::new(root.join("scripts/build-cnitool.sh")).arg(&bin).output().expect("run build-cnitool.sh");
            assert!(
                out.status.success(),
                "scripts/build-cnitool.sh failed (needs golang-go and golang-github-appc-cni-dev):\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        bin
    })
}

/// The plugin's directory: libcni finds plugins by their `type` in CNI_PATH.
fn plugin_dir() -> String {
    plugin_bin().parent().unwrap().display().to_string()
}

const MULTUS_ARGS: &str =
    "IgnoreUnknown=true;K8S_POD_NAMESPACE=openpe-system;K8S_POD_NAME=openpe-router-x7k2p;K8S_POD_INFRA_CONTAINER_ID=4f3c2b1a0d9e8f7a6b5c4d3e2f1a0b9c;K8S_POD_UID=0b7e9c1e-3f2a-4d5b-8c6d-7e8f9a0b1c2d";

/// One network configuration as a runtime holds it, and the runtime-side state libcni keeps for it.
struct Runtime<'a> {
    lab: &'a Lab,
    dir: TempDir,
    conf_file: PathBuf,
    name: String,
    ifname: String,
    cni_args: String,
    cap_args: String,
}

impl<'a> Runtime<'a> {
    /// `conf` is a conflist (with `plugins`) or a single plugin configuration.
    fn new(lab: &'a Lab, conf: &Value) -> Runtime<'a> {
        let dir = TempDir::new("rt");
        let conf_file = dir.path.join("net.conflist");
        std::fs::write(&conf_file, serde_json::to_string_pretty(conf).unwrap()).unwrap();
        std::fs::create_dir(dir.path.join("cache")).unwrap();
        Runtime {
            lab,
            conf_file,
            name: conf["name"].as_str().unwrap().to_string(),
            dir,
            ifname: "net1".into(),
            cni_args: String::new(),
            cap_args: String::new(),
        }
    }

    fn ifname(mut self, ifname: &str) -> Self {
        self.ifname = ifname.into();
        self
    }

    fn cni_args(mut self, args: &str) -> Self {
        self.cni_args = args.into();
        self
    }

    fn cap_args(mut self, args: Value) -> Self {
        self.cap_args = args.to_string();
        self
    }

    /// Run `cnitool <verb> <conf> <router netns>` in the lab's host namespace.
    fn cnitool(&self, verb: &str) -> Outcome {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.lab.host.name])
            .arg(cnitool())
            .arg(verb)
            .arg(&self.conf_file)
            .arg(self.lab.router.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CNI_PATH", format!("{}:/usr/lib/cni", plugin_dir()))
            .env("CNI_CACHE_DIR", self.dir.path.join("cache"))
            .env("CNI_CONTAINERID", &self.lab.container)
            .env("CNI_IFNAME", &self.ifname)
            .env("CNI_ARGS", &self.cni_args)
            .env("CAP_ARGS", &self.cap_args)
            .stdin(Stdio::null())
            .output()
            .expect("run cnitool");
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn ok(&self, verb: &str) -> Outcome {
        let o = self.cnitool(verb);
        assert_eq!(o.code, 0, "cnitool {verb} failed:\nstdout: {}\nstderr: {}", o.stdout, o.stderr);
        o
    }

    fn add(&self) -> Value {
        self.ok("add").json()
    }

    fn fails(&self, verb: &str) -> String {
        let o = self.cnitool(verb);
        assert_ne!(o.code, 0, "cnitool {verb} should have failed; stdout: {}", o.stdout);
        o.stderr
    }

    /// libcni's result cache file for this attachment.
    fn cache_file(&self) -> PathBuf {
        self.dir.path.join(format!("cache/results/{}-{}-{}", self.name, self.lab.container, self.ifname))
    }
}

/// A conflist holding `plugins`, with the list-level name and version libcni hands to each of them.
fn conflist(name: &str, plugins: Vec<Value>) -> Value {
    json!({"cniVersion": "1.0.0", "name": name, "plugins": plugins})
}

/// The lab's plugin entry for a conflist: its configuration without the list-level keys.
fn plugin_entry(lab: &Lab, extra: Value) -> Value {
    let mut v = lab.conf("1.0.0", extra);
    let o = v.as_object_mut().unwrap();
    o.remove("cniVersion");
    o.remove("name");
    v
}

fn names(result: &Value) -> Vec<String> {
    result["interfaces"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_string()).collect()
}

/// `(interface name, address)` of every entry of `ips`, resolved through its `interface` index.
fn ips_by_interface(result: &Value) -> Vec<(String, String)> {
    let ifs = result["interfaces"].as_array().unwrap();
    result["ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ip| {
            let i = ip["interface"].as_u64().expect("every ip names its interface") as usize;
            assert!(i < ifs.len(), "ips[].interface {i} points past the interfaces in {result}");
            (ifs[i]["name"].as_str().unwrap().to_string(), ip["address"].as_str().unwrap().to_string())
        })
        .collect()
}

/// What Multus builds its network-status annotation from: the interfaces carrying `sandbox` (the pod's
/// netns), each with the addresses whose `interface` index points at it.
fn network_status(result: &Value, sandbox: &str) -> Vec<(String, Vec<String>)> {
    let ifs = result["interfaces"].as_array().unwrap();
    ifs.iter()
        .enumerate()
        .filter(|(_, i)| i["sandbox"] == sandbox)
        .map(|(n, i)| {
            let ips = result["ips"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|ip| ip["interface"].as_u64() == Some(n as u64))
                .map(|ip| ip["address"].as_str().unwrap().to_string())
                .collect();
            (i["name"].as_str().unwrap().to_string(), ips)
        })
        .collect()
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// After DEL: the kernel is back to `before`, and the plugin's state and libcni's cache are empty.
fn assert_all_gone(lab: &Lab, rt: &Runtime, before: &str) {
    assert_eq!(lab.snapshot(), before, "DEL through libcni restores every namespace");
    assert!(lab.state_files().is_empty(), "state left behind: {:?}", lab.state_files());
    assert!(!rt.cache_file().exists(), "libcni's cached result is removed by DEL");
}

#[test]
#[ignore = "needs root"]
fn plugin_alone_add_check_del() {
    let lab = Lab::new("la");
    let rt = Runtime::new(&lab, &conflist("openpe", vec![plugin_entry(&lab, json!({}))]));
    let before = lab.snapshot();
    // The VERSION handshake a runtime such as CRI-O makes before using a list.
    let validated = rt.ok("validate").json();
    assert_eq!(validated["cniVersion"], "1.0.0");

    let result = rt.add();
    assert_eq!(result["cniVersion"], "1.0.0");
    assert_eq!(names(&result), s(&["pt-host", "pt-ns", "toswitch"]));
    let sandbox = lab.router.path_str();
    assert!(result["interfaces"][0].get("sandbox").is_none(), "pt-host is on the host: no sandbox");
    assert_eq!(result["interfaces"][1]["sandbox"], sandbox.as_str());
    assert_eq!(result["interfaces"][2]["sandbox"], sandbox.as_str());
    assert_eq!(
        ips_by_interface(&result),
        vec![
            ("pt-ns".to_string(), "192.169.10.1/24".to_string()),
            ("pt-ns".into(), "2001:db8:10::1/64".into()),
            ("toswitch".into(), "192.168.11.3/24".into()),
            ("toswitch".into(), "2001:db8:11::3/64".into()),
        ]
    );
    // The kernel agrees with the result; no index source configured, so the state directory allocates 0.
    assert_eq!(addrs(&lab.router, "pt-ns"), s(&["192.169.10.1/24", "2001:db8:10::1/64"]));
    assert_eq!(addrs(&lab.host, "pt-host"), s(&["192.169.10.2/24", "2001:db8:10::2/64"]));
    assert!(!lab.host.has_link("toswitch") && lab.router.has_link("toswitch"));

    // libcni cached the result; it is what CHECK and DEL will get as prevResult.
    assert!(rt.cache_file().exists(), "no cache file at {}", rt.cache_file().display());
    assert_eq!(rt.ok("result").json(), result);

    rt.ok("check");
    // CHECK through libcni sees out-of-band damage, with the plugin's own message and code.
    lab.host.ip("link set pt-host down");
    let err = rt.fails("check");
    assert!(err.contains("pt-host") && err.contains("is down"), "{err}");
    assert!(err.contains("CNI error code 100"), "{err}");

    rt.ok("del");
    assert_all_gone(&lab, &rt, &before);
    // A second DEL, with no cached result left, succeeds and changes nothing.
    rt.ok("del");
    assert_all_gone(&lab, &rt, &before);
}

#[test]
#[ignore = "needs root"]
fn chained_after_ptp_as_the_router_pods_primary_network() {
    let lab = Lab::new("lp");
    let ptp_ipam_dir = TempDir::new("ipam");
    let ptp = json!({
        "type": "ptp",
        "ipMasq": false,
        "mtu": 1400,
        "ipam": {
            "type": "host-local",
            "ranges": [[{"subnet": "10.99.7.0/24"}]],
            "routes": [{"dst": "0.0.0.0/0"}],
            "dataDir": ptp_ipam_dir.path.display().to_string()
        }
    });
    let rt = Runtime::new(&lab, &conflist("routernet", vec![ptp, plugin_entry(&lab, json!({}))])).ifname("eth0");
    let before = lab.snapshot();

    let result = rt.add();
    let sandbox = lab.router.path_str();
    // Both plugins' interfaces, ptp's first, untouched, then the plugin's.
    let n = names(&result);
    assert_eq!(n.len(), 5, "{result}");
    assert!(n[0].starts_with("veth"), "ptp's host end first: {n:?}");
    assert_eq!(&n[1..], &s(&["eth0", "pt-host", "pt-ns", "toswitch"])[..]);
    assert!(result["interfaces"][0].get("sandbox").is_none());
    for i in [1, 3, 4] {
        assert_eq!(result["interfaces"][i]["sandbox"], sandbox.as_str(), "interface {i} is in the pod");
    }
    // Both plugins' addresses, each pointing at its own interface; ptp's gateway and routes kept.
    assert_eq!(
        ips_by_interface(&result),
        vec![
            ("eth0".to_string(), "10.99.7.2/24".to_string()),
            ("pt-ns".into(), "192.169.10.1/24".into()),
            ("pt-ns".into(), "2001:db8:10::1/64".into()),
            ("toswitch".into(), "192.168.11.3/24".into()),
            ("toswitch".into(), "2001:db8:11::3/64".into()),
        ]
    );
    assert_eq!(result["ips"][0]["gateway"], "10.99.7.1");
    assert_eq!(result["routes"], json!([{"dst": "0.0.0.0/0"}]));
    assert_eq!(addrs(&lab.router, "eth0"), s(&["10.99.7.2/24"]));
    assert_eq!(addrs(&lab.router, "pt-ns"), s(&["192.169.10.1/24", "2001:db8:10::1/64"]));
    assert!(Path::new(&ptp_ipam_dir.path.join("routernet/10.99.7.2")).exists(), "host-local holds the lease");

    // CHECK of this chain fails inside ptp, whose CHECK insists that every address of the result sits on
    // CNI_IFNAME (a limitation of the reference plugins, README "Use it with…"): it never reaches ours.
    let err = rt.fails("check");
    assert!(err.contains("Failed to match addr 192.169.10.1/24 on interface eth0"), "{err}");
    // The plugin's own CHECK, given the chain's cached result as prevResult, passes.
    let cached = rt.ok("result").json();
    assert_eq!(cached, result);
    let mut ours = lab.conf("1.0.0", json!({"name": "routernet"}));
    ours["prevResult"] = cached;
    lab.run("CHECK", &ours, &[("CNI_IFNAME", "eth0")]).ok();

    // DEL through libcni, from the cached result, in reverse order: the plugin, then ptp and host-local.
    rt.ok("del");
    assert_all_gone(&lab, &rt, &before);
    assert!(!ptp_ipam_dir.path.join("routernet/10.99.7.2").exists(), "host-local released the lease");
}

#[test]
#[ignore = "needs root"]
fn followed_by_tuning_with_ifname_pt_ns() {
    let lab = Lab::new("lt");
    let tuning = json!({
        "type": "tuning",
        "sysctl": {"net.ipv4.conf.pt-ns.arp_announce": "2", "net.ipv4.conf.pt-ns.arp_ignore": "1"}
    });
    let rt = Runtime::new(&lab, &conflist("openpe", vec![plugin_entry(&lab, json!({})), tuning]))
        .ifname("pt-ns")
        .cni_args(MULTUS_ARGS);
    let before = lab.snapshot();
    let sysctl =
        |ns: &Ns, dev: &str, key: &str| ns.exec(&format!("cat /proc/sys/net/ipv4/conf/{dev}/{key}")).trim().to_string();

    let result = rt.add();
    assert_eq!(names(&result), s(&["pt-host", "pt-ns", "toswitch"]), "tuning passes the result through");
    // tuning ran on CNI_IFNAME = pt-ns, inside the router namespace; the host end kept the defaults.
    assert_eq!(sysctl(&lab.router, "pt-ns", "arp_announce"), "2");
    assert_eq!(sysctl(&lab.router, "pt-ns", "arp_ignore"), "1");
    assert_eq!(sysctl(&lab.host, "pt-host", "arp_announce"), "0");
    assert_eq!(sysctl(&lab.host, "pt-host", "arp_ignore"), "0");

    rt.ok("check");
    lab.router.exec("echo 0 > /proc/sys/net/ipv4/conf/pt-ns/arp_ignore");
    let err = rt.fails("check");
    assert!(err.contains("arp_ignore"), "tuning's CHECK notices the change: {err}");

    rt.ok("del");
    assert_all_gone(&lab, &rt, &before);
}

/// Multus' invocation: its CNI_ARGS, the interface name the pod asks for (net1 by default, or pt-ns), and the
/// pod's `cni-args` arriving as `args.cni`. The result must give Multus its network-status.
#[test]
#[ignore = "needs root"]
fn multus_style_invocation() {
    for ifname in ["net1", "pt-ns"] {
        let lab = Lab::new("lm");
        // Multus inserts the pod's cni-args into the plugin's configuration as args.cni.
        let plugin = plugin_entry(&lab, json!({"args": {"cni": {"nodeIndex": 7}}}));
        let rt = Runtime::new(&lab, &conflist("openpe-passthrough", vec![plugin])).ifname(ifname).cni_args(MULTUS_ARGS);
        let before = lab.snapshot();

        let result = rt.add();
        assert!(rt.cache_file().exists(), "libcni keys its cache by the ifname {ifname}");
        // args.cni.nodeIndex 7: the host end gets the address after the router's plus 7.
        assert_eq!(addrs(&lab.host, "pt-host"), s(&["192.169.10.9/24", "2001:db8:10::9/64"]), "{ifname}");

        // Multus' network-status: the sandboxed interfaces with the addresses pointing at them.
        let status = network_status(&result, &lab.router.path_str());
        assert_eq!(
            status,
            vec![
                ("pt-ns".to_string(), s(&["192.169.10.1/24", "2001:db8:10::1/64"])),
                ("toswitch".to_string(), s(&["192.168.11.3/24", "2001:db8:11::3/64"])),
            ],
            "{ifname}: {result}"
        );
        // Every address points at an interface inside the pod.
        for ip in result["ips"].as_array().unwrap() {
            let i = ip["interface"].as_u64().unwrap() as usize;
            assert_eq!(result["interfaces"][i]["sandbox"], lab.router.path_str().as_str(), "{ip}");
        }

        rt.ok("check");
        rt.ok("del");
        assert_all_gone(&lab, &rt, &before);
    }
}

/// The NetworkAttachmentDefinition's configuration (netconf/k8s), as Multus would run it on a node whose
/// underlay NIC is 192.168.11.3: the node index comes from nodeIndexFrom. The test adds only what keeps it off
/// this machine: the lab's host namespace and a temporary state directory.
#[test]
#[ignore = "needs root"]
fn network_attachment_definition_config_through_libcni() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("netconf/k8s/network-attachment-definition.yaml");
    let nad =
        Value::deserialize(serde_norway::Deserializer::from_str(&std::fs::read_to_string(path).unwrap())).unwrap();
    let mut config: Value = serde_json::from_str(nad["spec"]["config"].as_str().unwrap()).unwrap();
    let lab = Lab::new("ln");
    for p in config["plugins"].as_array_mut().unwrap() {
        if p["type"] == "openpe-passthrough" {
            p["stateDir"] = lab.state.path.display().to_string().into();
            p["hostNetns"] = lab.host.path_str().into();
            p["logLevel"] = "error".into();
        }
    }
    let rt = Runtime::new(&lab, &config).ifname("pt-ns").cni_args(MULTUS_ARGS);
    let before = lab.snapshot();
    rt.ok("validate");
    let result = rt.add();
    assert_eq!(names(&result), s(&["pt-host", "pt-ns", "toswitch"]));
    // 192.168.11.3 in 192.168.11.0/24: index 3, so pt-host is .2 + 3.
    assert_eq!(addrs(&lab.host, "pt-host"), s(&["192.169.10.5/24", "2001:db8:10::5/64"]));
    rt.ok("check");
    rt.ok("del");
    assert_all_gone(&lab, &rt, &before);
}

/// runtimeConfig.nodeIndex reaches the plugin only when its configuration declares the capability: libcni
/// filters capability arguments by `capabilities`.
#[test]
#[ignore = "needs root"]
fn runtime_config_node_index_through_capabilities() {
    for (declared, host_addr) in [(true, "192.169.10.14/24"), (false, "192.169.10.2/24")] {
        let lab = Lab::new("lc");
        let plugin = if declared {
            plugin_entry(&lab, json!({"capabilities": {"nodeIndex": true}}))
        } else {
            plugin_entry(&lab, json!({}))
        };
        let rt = Runtime::new(&lab, &conflist("openpe", vec![plugin])).cap_args(json!({"nodeIndex": 12}));
        let before = lab.snapshot();
        rt.add();
        assert_eq!(addrs(&lab.host, "pt-host")[0], host_addr, "capability declared: {declared}");
        rt.ok("check");
        rt.ok("del");
        assert_all_gone(&lab, &rt, &before);
    }
}

/// A single plugin configuration (not a list), as in /etc/cni/net.d/10-*.conf: libcni wraps it into a list.
#[test]
#[ignore = "needs root"]
fn single_configuration_file() {
    let lab = Lab::new("ls");
    let rt = Runtime::new(&lab, &lab.conf("1.0.0", json!({"nodeIndex": 4})));
    let before = lab.snapshot();
    let result = rt.add();
    assert_eq!(names(&result), s(&["pt-host", "pt-ns", "toswitch"]));
    assert_eq!(addrs(&lab.host, "pt-host"), s(&["192.169.10.6/24", "2001:db8:10::6/64"]));
    rt.ok("check");
    rt.ok("del");
    assert_all_gone(&lab, &rt, &before);
}
