//! Shared harness of the root-only integration tests: throwaway namespaces named per test and removed by
//! guards even when a test fails, a small lab (host, router, ToR) with a veth NIC `toswitch`, plugin
//! invocation through the real binary, and normalised `ip -j` snapshots for "nothing changed" assertions. The
//! routing daemons of the end-to-end tests are in `routing`; the BGP lab built from them is tests/common/bgp.rs,
//! which a test includes on its own.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{json, Value};

pub mod lab;
pub mod routing;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique to this process and call, short enough for namespace and interface names.
pub fn unique(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("opt{}{}-{}", std::process::id() % 100000, tag, n)
}

pub fn sh(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().expect("run sh");
    assert!(out.status.success(), "command failed: {cmd}\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn sh_ok(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A network namespace made with `ip netns add`, deleted when dropped.
pub struct Ns {
    pub name: String,
}

impl Ns {
    pub fn new(tag: &str) -> Ns {
        let name = unique(tag);
        sh(&format!("ip netns add {name}"));
        sh(&format!("ip -n {name} link set lo up"));
        Ns { name }
    }
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/var/run/netns/{}", self.name))
    }
    pub fn path_str(&self) -> String {
        self.path().display().to_string()
    }
    /// Run a shell command inside the namespace.
    pub fn exec(&self, cmd: &str) -> String {
        sh(&format!("ip netns exec {} sh -c '{}'", self.name, cmd.replace('\'', "'\\''")))
    }
    pub fn ip(&self, args: &str) -> String {
        sh(&format!("ip -n {} {args}", self.name))
    }
    /// `ip -batch -` inside the namespace.
    pub fn batch(&self, script: &str) {
        let mut child = Command::new("ip")
            .args(["-n", &self.name, "-batch", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("run ip -batch");
        std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), script.as_bytes()).expect("write script");
        drop(child.stdin.take());
        assert!(child.wait().expect("wait for ip").success(), "ip -n {} -batch failed:\n{script}", self.name);
    }
    pub fn has_link(&self, name: &str) -> bool {
        sh_ok(&format!("ip -n {} link show dev {name}", self.name))
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).stderr(Stdio::null()).status();
    }
}

/// A temporary directory removed when dropped.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(unique(tag));
        std::fs::create_dir_all(&path).unwrap();
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// What one plugin invocation gave back.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {:?}\nstderr: {}", self.stdout, self.stderr))
    }
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "plugin failed: stdout {} stderr {}", self.stdout, self.stderr);
        self
    }
    /// Assert a CNI error with `code` whose message contains `needle`.
    pub fn err(&self, code: u64, needle: &str) -> Value {
        assert_ne!(self.code, 0, "expected failure, got success: {}", self.stdout);
        let v = self.json();
        assert_eq!(v["code"], code, "wrong CNI code in {v}");
        assert!(v["msg"].as_str().unwrap_or("").contains(needle), "message {:?} does not mention {needle:?}", v["msg"]);
        v
    }
}

pub fn plugin_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_openpe-passthrough"))
}

/// Run the plugin with a CNI environment. `env` pairs override or add variables; a pair with an empty value
/// is passed empty, as libcni does.
pub fn run_plugin(command: &str, env: &[(&str, &str)], stdin: &str) -> Outcome {
    let mut cmd = assert_cmd::Command::cargo_bin("openpe-passthrough").expect("the plugin binary");
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CNI_COMMAND", command)
        .env("CNI_PATH", "/usr/lib/cni")
        .write_stdin(stdin.as_bytes().to_vec());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run the plugin");
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// One simulated node: a host namespace with an underlay NIC `toswitch` (192.168.11.<3+n>/24, MTU 1400, a
/// default route and a static route through the ToR), a router namespace, and a ToR namespace holding the
/// NIC's peer (so the veth NIC dies with the namespaces, never touching this machine).
pub struct Lab {
    pub host: Ns,
    pub router: Ns,
    pub tor: Ns,
    pub state: TempDir,
    pub container: String,
}

impl Lab {
    pub fn new(tag: &str) -> Lab {
        Self::with_state(tag, TempDir::new(&format!("{tag}st")))
    }

    pub fn with_state(tag: &str, state: TempDir) -> Lab {
        let host = Ns::new(&format!("{tag}h"));
        let router = Ns::new(&format!("{tag}r"));
        let tor = Ns::new(&format!("{tag}t"));
        host.batch(&lab::host_setup(&tor.name));
        tor.batch(lab::TOR_SETUP);
        let container = unique("c");
        Lab { host, router, tor, state, container }
    }

    /// The sample dual-stack configuration for this lab, with `extra` merged over it.
    pub fn conf(&self, version: &str, extra: Value) -> Value {
        let mut v = json!({
            "cniVersion": version,
            "name": "openpe",
            "type": "openpe-passthrough",
            "underlay": {"asn": 64514, "nics": ["toswitch"], "neighbors": [{"asn": 64512, "address": "192.168.11.2"}]},
            "l3passthrough": {"hostsession": {"asn": 64514, "hostasn": 64515,
                "localcidr": {"ipv4": "192.169.10.0/24", "ipv6": "2001:db8:10::/64"}}},
            "stateDir": self.state.path.display().to_string(),
            "hostNetns": self.host.path_str(),
        });
        merge(&mut v, extra);
        v
    }

    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("CNI_CONTAINERID".into(), self.container.clone()),
            ("CNI_NETNS".into(), self.router.path_str()),
            ("CNI_IFNAME".into(), "net1".into()),
        ]
    }

    /// Run `command` for this lab's attachment, with `over` replacing or adding variables.
    pub fn run(&self, command: &str, conf: &Value, over: &[(&str, &str)]) -> Outcome {
        let mut env: Vec<(String, String)> = self.env();
        for (k, v) in over {
            env.retain(|(ek, _)| ek != k);
            env.push((k.to_string(), v.to_string()));
        }
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        run_plugin(command, &pairs, &conf.to_string())
    }

    pub fn add(&self, conf: &Value) -> Value {
        self.run("ADD", conf, &[]).ok().json()
    }

    pub fn del(&self, conf: &Value) {
        self.run("DEL", conf, &[]).ok();
    }

    /// Normalised state of every namespace of the lab.
    pub fn snapshot(&self) -> String {
        [&self.host, &self.router, &self.tor].iter().map(|ns| snapshot(&ns.name)).collect::<Vec<_>>().join("\n")
    }

    pub fn state_files(&self) -> Vec<String> {
        files_under(&self.state.path)
    }
}

/// The addresses of `dev` in a namespace as CIDRs, link-local ones left out.
pub fn addrs(ns: &Ns, dev: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(&ns.ip(&format!("-j addr show dev {dev}"))).unwrap();
    v[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
        .filter(|a| !a.starts_with("fe80:"))
        .collect()
}

/// Files under `dir` other than the lock, boot id, index hint and format marker, relative, sorted.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().display().to_string();
                if rel != "lock" && rel != "boot_id" && rel != "index.hint" && rel != "records-format" {
                    out.push(rel);
                }
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

pub fn merge(base: &mut Value, extra: Value) {
    match (base, extra) {
        (Value::Object(b), Value::Object(e)) => {
            for (k, v) in e {
                if v.is_null() {
                    b.remove(&k);
                } else {
                    merge(b.entry(k).or_insert(Value::Null), v);
                }
            }
        }
        (b, e) => *b = e,
    }
}

/// Links, addresses and routes of a namespace from `ip -j`, keeping only what identifies them and dropping
/// what the kernel renumbers (ifindex, peer indexes, IPv6 flags and lifetimes, carrier state), sorted.
pub fn snapshot(ns: &str) -> String {
    let mut lines = BTreeSet::new();
    let links: Value = serde_json::from_str(&sh(&format!("ip -j -n {ns} -d link show"))).unwrap();
    for l in links.as_array().unwrap() {
        let flags: Vec<&str> = l["flags"]
            .as_array()
            .map(|f| {
                f.iter()
                    .filter_map(|x| x.as_str())
                    .filter(|x| !matches!(*x, "LOWER_UP" | "NO-CARRIER" | "M-DOWN"))
                    .collect()
            })
            .unwrap_or_default();
        lines.insert(format!(
            "{ns} link {} mtu={} mac={} flags={} group={} kind={}",
            l["ifname"].as_str().unwrap_or(""),
            l["mtu"],
            l["address"].as_str().unwrap_or(""),
            flags.join(","),
            l["group"].as_str().unwrap_or(""),
            l["linkinfo"]["info_kind"].as_str().unwrap_or("")
        ));
    }
    let addrs: Value = serde_json::from_str(&sh(&format!("ip -j -n {ns} addr show"))).unwrap();
    for l in addrs.as_array().unwrap() {
        for a in l["addr_info"].as_array().into_iter().flatten() {
            let local = a["local"].as_str().unwrap_or("");
            if local.starts_with("fe80:") {
                continue;
            }
            lines.insert(format!("{ns} addr {} {}/{}", l["ifname"].as_str().unwrap_or(""), local, a["prefixlen"]));
        }
    }
    for fam in ["-4", "-6"] {
        let routes: Value = serde_json::from_str(&sh(&format!("ip -j -n {ns} {fam} route show table main"))).unwrap();
        for r in routes.as_array().unwrap() {
            let dst = r["dst"].as_str().unwrap_or("");
            if dst.starts_with("fe80::") || dst.starts_with("ff00::") {
                continue;
            }
            lines.insert(format!(
                "{ns} route {fam} {dst} via={} dev={} metric={} proto={} scope={} src={}",
                r["gateway"].as_str().unwrap_or(""),
                r["dev"].as_str().unwrap_or(""),
                r["metric"],
                r["protocol"].as_str().unwrap_or(""),
                r["scope"].as_str().unwrap_or(""),
                r["prefsrc"].as_str().unwrap_or("")
            ));
        }
    }
    lines.into_iter().collect::<Vec<_>>().join("\n")
}

/// Wait (up to 5 s) until no address of a namespace is tentative on a link whose carrier is up: duplicate
/// address detection of restored IPv6 addresses takes about a second, and a snapshot must not catch it midway.
pub fn settle(ns: &Ns) {
    for _ in 0..50 {
        let v: Value = serde_json::from_str(&ns.ip("-j addr show")).unwrap();
        let busy = v.as_array().unwrap().iter().any(|l| {
            l["operstate"] == "UP"
                && l["addr_info"].as_array().into_iter().flatten().any(|a| a["tentative"] == Value::Bool(true))
        });
        if !busy {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("addresses in {} stay tentative: {}", ns.name, ns.ip("addr show"));
}

/// Everything a user of the namespace would miss, one sorted line per item: links with MTU, MAC, flags,
/// group, kind, master, promiscuity and alias; every address with prefix, peer, label, scope, flags and whether
/// it expires; every route of every table, both families, as `ip -d -j` shows it (gateway, via, flags,
/// metrics, protocol, scope, source, type, preference, next hops); permanent neighbours; and every link's
/// sysctls under net/ipv4/conf/<link>/ and net/ipv6/conf/<link>/. Output it does not understand panics.
pub fn full_snapshot(ns: &Ns) -> String {
    settle(ns);
    let n = &ns.name;
    let mut lines = BTreeSet::new();
    let links: Value = serde_json::from_str(&ns.ip("-j -d link show")).unwrap();
    let mut names = Vec::new();
    for l in links.as_array().expect("ip -j link show gives an array") {
        let name = l["ifname"].as_str().expect("a link has a name").to_string();
        let flags: Vec<&str> = l["flags"]
            .as_array()
            .expect("a link has flags")
            .iter()
            .filter_map(|x| x.as_str())
            .filter(|x| !matches!(*x, "LOWER_UP" | "NO-CARRIER" | "M-DOWN"))
            .collect();
        lines.insert(format!(
            "link {name} mtu={} mac={} flags={} group={} kind={} master={} promiscuity={} alias={}",
            l["mtu"],
            l["address"].as_str().unwrap_or(""),
            flags.join(","),
            l["group"].as_str().unwrap_or(""),
            l["linkinfo"]["info_kind"].as_str().unwrap_or(""),
            l["master"].as_str().unwrap_or(""),
            l["promiscuity"],
            l["ifalias"].as_str().unwrap_or("")
        ));
        names.push(name);
    }
    let addrs: Value = serde_json::from_str(&ns.ip("-j addr show")).unwrap();
    for l in addrs.as_array().unwrap() {
        for a in l["addr_info"].as_array().into_iter().flatten() {
            let mut a = a.as_object().expect("an address is an object").clone();
            let valid = a.remove("valid_life_time").expect("an address has lifetimes");
            let preferred = a.remove("preferred_life_time").expect("an address has lifetimes");
            let forever = json!(4294967295u64);
            a.insert("expires".into(), json!(valid != forever));
            a.insert("deprecates".into(), json!(preferred != forever));
            lines.insert(format!("addr {} {}", l["ifname"].as_str().unwrap(), Value::Object(a)));
        }
    }
    for fam in ["-4", "-6"] {
        let routes: Value = serde_json::from_str(&ns.ip(&format!("-d -j {fam} route show table all"))).unwrap();
        for r in routes.as_array().expect("routes are an array") {
            // The seconds left of an expiring route change as the test runs; whether it expires does not.
            let mut r = r.as_object().expect("a route is an object").clone();
            if let Some(e) = r.get_mut("expires") {
                *e = json!(true);
            }
            lines.insert(format!("route {fam} {}", Value::Object(r)));
        }
    }
    let neigh: Value = serde_json::from_str(&ns.ip("-j neigh show nud permanent")).unwrap();
    for e in neigh.as_array().expect("neighbours are an array") {
        lines.insert(format!("neigh {e}"));
    }
    let dirs: Vec<String> = names
        .iter()
        .flat_map(|d| [format!("/proc/sys/net/ipv4/conf/{d}"), format!("/proc/sys/net/ipv6/conf/{d}")])
        .collect();
    let out = ns.exec(&format!("grep -rs . {} || true", dirs.join(" ")));
    for l in out.lines() {
        let (path, value) = l.split_once(':').unwrap_or_else(|| panic!("unexpected grep output {l:?}"));
        lines.insert(format!("sysctl {} = {value}", path.trim_start_matches("/proc/sys/net/")));
    }
    lines.into_iter().map(|l| format!("{n} {l}")).collect::<Vec<_>>().join("\n")
}

/// Lines only in `a`, and lines only in `b`, for readable failure messages.
pub fn diff(a: &str, b: &str) -> String {
    let a: BTreeSet<&str> = a.lines().collect();
    let b: BTreeSet<&str> = b.lines().collect();
    let mut out = String::new();
    for l in a.difference(&b) {
        out.push_str(&format!("- {l}\n"));
    }
    for l in b.difference(&a) {
        out.push_str(&format!("+ {l}\n"));
    }
    out
}
