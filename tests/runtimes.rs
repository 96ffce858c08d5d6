//! The plugin under real container runtimes: podman 4.3 (its CNI backend) and containerd 1.6 (its CRI, driven by
//! `scripts/runtimes/cri.py`), each attaching the plugin to a "router" container whose network namespace the
//! runtime creates, in a lab node (common::Lab: a host namespace with the veth NIC `toswitch`, and a ToR).
//!
//! Isolation: each test runs its runtime inside the lab's host namespace and a private mount namespace held by
//! one process (`scripts/runtimes/private-ns.sh`: tmpfs over /run, /var/lib/cni, /var/lib/containers and
//! /dev/shm there, and a sysfs of the host namespace with the cgroup mounts kept); every later command enters it
//! with `nsenter -t PID -m -n`. Roots, run roots, sockets, images, logs and configuration live in the test's
//! temporary directory; containers get a cgroup parent named for the test. No image is pulled: podman runs a
//! busybox-static rootfs (`--rootfs`), and the CRI's pause image is an OCI archive built locally
//! (`scripts/runtimes/build-pause-image.py`) and imported with `ctr`. A guard removes everything even when a test
//! fails: runtime objects, then every process in the private mount namespace or the test's cgroups, then the
//! cgroups. The tests hold one lock, so only one runtime runs at a time.
//!
//! Needs root and `scripts/install-runtime-deps.sh`. Each test takes a few seconds.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::*;

/// One runtime at a time: they are heavy on 2 cores, and share the mountpoints they are given.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Debian's python3, which has python3-grpcio (a pyenv or venv python3 earlier in PATH may not).
const PYTHON: &str = "/usr/bin/python3";

fn require(tools: &[&str]) {
    let missing: Vec<&&str> = tools.iter().filter(|t| !sh_ok(&format!("command -v {t}"))).collect();
    assert!(missing.is_empty(), "missing {missing:?}: run scripts/install-runtime-deps.sh");
}

/// Mountpoints the private namespace mounts over; made when missing, and removed again by the guard when no
/// other mount namespace uses them.
const MOUNTPOINTS: [&str; 2] = ["/var/lib/cni", "/var/lib/containers"];

/// A command to run in the sandbox: environment variables and argv.
type Step = (Vec<(String, String)>, Vec<String>);

/// The private mount namespace in a lab's host namespace where a runtime runs, with its temporary directory
/// and cgroup parent. Dropping it removes everything the runtime left.
struct Sandbox {
    holder: Child,
    mnt_ns: String,
    dir: TempDir,
    cgroup: String,
    made_dirs: Vec<PathBuf>,
    /// What this machine's own /var/lib/cni and /run/netns held when the sandbox was made.
    host_before: Vec<String>,
    /// Run (best effort, with these environment variables) before the processes are killed: the runtime's own
    /// teardown.
    teardown: Vec<Step>,
}

impl Sandbox {
    fn new(lab: &Lab, tag: &str) -> Sandbox {
        let dir = TempDir::new(tag);
        let host_before = host_runtime_state();
        let mut made_dirs = Vec::new();
        for d in MOUNTPOINTS {
            if !Path::new(d).exists() {
                std::fs::create_dir_all(d).unwrap();
                made_dirs.push(PathBuf::from(d));
            }
        }
        let mut holder = Command::new("nsenter")
            .arg(format!("--net={}", lab.host.path_str()))
            .args(["unshare", "-m", "--propagation", "private"])
            .arg(repo().join("scripts/runtimes/private-ns.sh"))
            .args([&lab.host.name, "sleep", "infinity"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the private mount namespace");
        let mut line = String::new();
        BufReader::new(holder.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let mut sb = Sandbox {
            mnt_ns: String::new(),
            holder,
            dir,
            cgroup: format!("/{}", unique("cg")),
            made_dirs,
            host_before,
            teardown: Vec::new(),
        };
        assert_eq!(line.trim(), "ready", "scripts/runtimes/private-ns.sh failed");
        sb.mnt_ns = mnt_ns_of(sb.holder.id()).expect("the holder's mount namespace");
        assert_ne!(sb.mnt_ns, mnt_ns_of(std::process::id()).unwrap(), "the runtime gets a private mount namespace");
        sb
    }

    /// Nothing reached this machine's own libcni cache or network namespace directory: the runtime's
    /// `/var/lib/cni/results` entries and `cni-…` namespaces stayed in the private mount namespace.
    fn assert_host_untouched(&self) {
        assert_eq!(host_runtime_state(), self.host_before, "this machine's /var/lib/cni and /run/netns/cni-*");
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path.join(rel)
    }

    fn p(&self, rel: &str) -> String {
        self.path(rel).display().to_string()
    }

    /// `argv` inside the lab's host namespace and the private mount namespace, with a clean environment
    /// plus `env`, under a 120 s timeout.
    fn command(&self, env: &[(&str, &str)], argv: &[&str]) -> Command {
        let mut timed = vec!["timeout", "-k", "5", "120"];
        timed.extend(argv);
        self.daemon_command(env, &timed)
    }

    /// `argv` inside the namespaces, without a timeout: for daemons. nsenter execs `argv` (no fork).
    fn daemon_command(&self, env: &[(&str, &str)], argv: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.args(["-t", &self.holder.id().to_string(), "-m", "-n", "--"])
            .args(argv)
            .env_clear()
            .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .env("HOME", self.dir.path.display().to_string())
            .stdin(Stdio::null());
        for (k, v) in env {
            c.env(k, v);
        }
        c
    }

    fn run(&self, env: &[(&str, &str)], argv: &[&str]) -> Outcome {
        let t = Instant::now();
        let out = self.command(env, argv).output().expect("run nsenter");
        let o = Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        eprintln!("[{:>5} ms] {} -> {}", t.elapsed().as_millis(), argv.join(" "), o.code);
        o
    }

    fn ok(&self, env: &[(&str, &str)], argv: &[&str]) -> String {
        let o = self.run(env, argv);
        assert_eq!(o.code, 0, "{} failed:\nstdout: {}\nstderr: {}", argv.join(" "), o.stdout, o.stderr);
        o.stdout
    }

    /// The cgroup directories of this sandbox, deepest first, in every mounted hierarchy.
    fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let root = Path::new("/sys/fs/cgroup");
        let mut bases = vec![root.to_path_buf()];
        if let Ok(rd) = std::fs::read_dir(root) {
            bases.extend(rd.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
        }
        let mut out = Vec::new();
        fn walk(d: &Path, out: &mut Vec<PathBuf>) {
            if let Ok(rd) = std::fs::read_dir(d) {
                for e in rd.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        walk(&e.path(), out);
                    }
                }
            }
            out.push(d.to_path_buf());
        }
        for b in bases {
            let d = b.join(self.cgroup.trim_start_matches('/'));
            if d.is_dir() {
                walk(&d, &mut out);
            }
        }
        out
    }

    /// Every process left by the runtime: in the private mount namespace (daemons, shims, conmon) or in this
    /// sandbox's cgroups (containers, which have mount namespaces of their own).
    fn processes(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = Vec::new();
        for d in self.cgroup_dirs() {
            if let Ok(s) = std::fs::read_to_string(d.join("cgroup.procs")) {
                pids.extend(s.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
            }
        }
        if let Ok(rd) = std::fs::read_dir("/proc") {
            for e in rd.flatten() {
                if let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) {
                    if pid != self.holder.id() && mnt_ns_of(pid).as_deref() == Some(self.mnt_ns.as_str()) {
                        pids.push(pid);
                    }
                }
            }
        }
        pids.sort();
        pids.dedup();
        pids
    }
}

/// Files under this machine's /var/lib/cni, and the runtime-made namespaces (`cni-…`) in its /run/netns.
fn host_runtime_state() -> Vec<String> {
    let mut v: Vec<String> =
        files_under(Path::new("/var/lib/cni")).into_iter().map(|f| format!("/var/lib/cni/{f}")).collect();
    if let Ok(rd) = std::fs::read_dir("/run/netns") {
        v.extend(
            rd.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with("cni-"))
                .map(|n| format!("/run/netns/{n}")),
        );
    }
    v.sort();
    v
}

/// Whether any process's mount namespace has a mount at `path`.
fn mounted_anywhere(path: &Path) -> bool {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return false;
    };
    let target = path.display().to_string();
    rd.flatten().filter(|e| e.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))).any(|e| {
        std::fs::read_to_string(e.path().join("mountinfo"))
            .is_ok_and(|m| m.lines().any(|l| l.split(' ').nth(4) == Some(target.as_str())))
    })
}

fn mnt_ns_of(pid: u32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok().map(|p| p.display().to_string())
}

fn kill(pid: u32) {
    let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).stderr(Stdio::null()).status();
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for (env, argv) in std::mem::take(&mut self.teardown) {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            let _ = self.command(&env, &argv).stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = self.processes();
            if left.is_empty() || Instant::now() > deadline {
                break;
            }
            left.into_iter().for_each(kill);
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        for d in self.cgroup_dirs() {
            let _ = std::fs::remove_dir(&d);
        }
        // Removing a directory that another mount namespace mounts over would detach that mount: keep it then.
        for d in self.made_dirs.iter().rev() {
            if !mounted_anywhere(d) {
                let _ = std::fs::remove_dir(d);
            }
        }
        let left = self.processes();
        if !left.is_empty() || !self.cgroup_dirs().is_empty() {
            eprintln!("sandbox teardown left processes {left:?} and cgroups {:?}", self.cgroup_dirs());
        }
    }
}

/// The plugin's configuration for this lab as one plugin of a conflist.
fn plugin_entry(lab: &Lab) -> Value {
    let mut v = lab.conf("1.0.0", json!({"logLevel": "info"}));
    let o = v.as_object_mut().unwrap();
    o.remove("cniVersion");
    o.remove("name");
    v
}

/// Names of the links in the network namespace of process `pid`, sorted.
fn links_of(pid: u32) -> Vec<String> {
    let v: Value = serde_json::from_str(&sh(&format!("nsenter -t {pid} -n ip -j link show"))).unwrap();
    let mut names: Vec<String> = v.as_array().unwrap().iter().map(|l| l["ifname"].as_str().unwrap().into()).collect();
    names.sort();
    names
}

fn addrs_of(pid: u32, dev: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(&sh(&format!("nsenter -t {pid} -n ip -j addr show dev {dev}"))).unwrap();
    v[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
        .filter(|a| !a.starts_with("fe80:"))
        .collect()
}

fn netns_of(pid: u32) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap().display().to_string()
}

/// The router at `pid` holds `pt-ns` and the NIC with its addresses, the host holds `pt-host` with the address of
/// node index `index`, and the plugin's state holds exactly one attachment record.
fn assert_attached(lab: &Lab, pid: u32, extra_links: &[&str], index: u32) {
    let mut want: Vec<String> = ["lo", "pt-ns", "toswitch"].iter().chain(extra_links).map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(links_of(pid), want, "the router's links");
    assert_eq!(addrs_of(pid, "toswitch"), ["192.168.11.3/24", "2001:db8:11::3/64"], "the NIC keeps its addresses");
    assert_eq!(addrs_of(pid, "pt-ns"), ["192.169.10.1/24", "2001:db8:10::1/64"]);
    assert!(!lab.host.has_link("toswitch"), "the NIC left the host");
    assert_eq!(
        addrs(&lab.host, "pt-host"),
        [format!("192.169.10.{}/24", 2 + index), format!("2001:db8:10::{:x}/64", 2 + index)]
    );
    let records: Vec<String> = lab.state_files().into_iter().filter(|f| f.starts_with("attachments/")).collect();
    assert_eq!(records.len(), 1, "one attachment record, got {:?}", lab.state_files());
}

/// The NIC is home with its addresses and routes (every namespace as `before`), and the plugin's state holds no
/// record and no claim.
fn assert_home(lab: &Lab, before: &str) {
    assert_eq!(lab.snapshot(), before, "every namespace as before the runtime started");
    assert_eq!(lab.state_files(), Vec::<String>::new(), "no record or claim left in the stateDir");
}

// ---------------------------------------------------------------------------------------------------------
// podman

/// podman with a private containers.conf, root and run root in the sandbox, the CNI backend, and a network
/// `openpe` whose only plugin is this one.
struct Podman {
    sb: Sandbox,
    env: Vec<(String, String)>,
    rootfs: String,
}

impl Podman {
    fn new(lab: &Lab, tag: &str) -> Podman {
        require(&["podman", "runc", "conmon", "catatonit", "busybox"]);
        let sb = Sandbox::new(lab, tag);
        for d in ["net.d", "root", "runroot", "tmp", "rootfs/bin"] {
            std::fs::create_dir_all(sb.path(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", sb.path("rootfs/bin/busybox")).expect("busybox-static");
        for applet in ["sh", "sleep"] {
            std::os::unix::fs::symlink("busybox", sb.path(&format!("rootfs/bin/{applet}"))).unwrap();
        }
        let conflist = json!({"cniVersion": "1.0.0", "name": "openpe", "plugins": [plugin_entry(lab)]});
        std::fs::write(sb.path("net.d/openpe.conflist"), serde_json::to_string_pretty(&conflist).unwrap()).unwrap();
        let plugin_dir = plugin_bin().parent().unwrap().display().to_string();
        let conf = format!(
            r#"[containers]
# podman raises RLIMIT_NOFILE and RLIMIT_NPROC by default; raising is refused here, lowering never is.
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[network]
network_backend = "cni"
cni_plugin_dirs = ["{plugin_dir}", "/usr/lib/cni"]
network_config_dir = "{netd}"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{dir}/events.log"
runtime = "runc"
tmp_dir = "{dir}/tmp"
lock_type = "file"
"#,
            netd = sb.p("net.d"),
            dir = sb.dir.path.display(),
        );
        std::fs::write(sb.path("containers.conf"), conf).unwrap();
        let env = vec![("CONTAINERS_CONF".to_string(), sb.p("containers.conf"))];
        let mut pm = Podman { rootfs: sb.p("rootfs"), sb, env };
        let pod_rm = (pm.env.clone(), pm.argv(&["pod", "rm", "-a", "-f", "-t", "0"]));
        let rm = (pm.env.clone(), pm.argv(&["rm", "-a", "-f", "-t", "0"]));
        pm.sb.teardown.extend([pod_rm, rm]);
        pm
    }

    fn argv(&self, args: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = ["podman", "--root", &self.sb.p("root"), "--runroot", &self.sb.p("runroot")]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"].iter().map(|s| s.to_string()));
        v.extend(args.iter().map(|s| s.to_string()));
        v
    }

    fn run(&self, args: &[&str]) -> Outcome {
        let argv = self.argv(args);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.sb.run(&env, &argv)
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert_eq!(o.code, 0, "podman {} failed:\nstdout: {}\nstderr: {}", args.join(" "), o.stdout, o.stderr);
        o.stdout.trim().to_string()
    }

    /// `podman run -d` of a sleeping busybox on network `openpe`; every option comes before `--rootfs`.
    fn run_router(&self, name: &str, extra: &[&str]) {
        let cg = self.sb.cgroup.clone();
        let mut args = vec!["run", "-d", "--name", name, "--cgroup-parent", &cg];
        args.extend(extra);
        args.extend(["--rootfs", &self.rootfs, "sleep", "1000000"]);
        self.ok(&args);
    }

    fn pid(&self, name: &str) -> u32 {
        let pid: u32 = self.ok(&["inspect", "-f", "{{.State.Pid}}", name]).parse().unwrap();
        assert!(pid > 0, "{name} is not running");
        pid
    }
}

/// run (with CNI_ARGS from podman's environment), stop, start, restart, rm: ADD and DEL each time, the NIC home
/// after every stop and after rm.
#[test]
#[ignore = "needs root"]
fn podman_container_lifecycle() {
    let _serial = serial();
    let t = Instant::now();
    let lab = Lab::new("pm");
    let before = lab.snapshot();
    let mut pm = Podman::new(&lab, "pmsb");
    // podman passes its own environment's CNI_ARGS on to the plugin: node index 5 gives pt-host .7.
    pm.env.push(("CNI_ARGS".into(), "OPENPE_NODE_INDEX=5".into()));
    let name = unique("router");

    pm.run_router(&name, &["--network", "openpe"]);
    let pid = pm.pid(&name);
    assert_attached(&lab, pid, &[], 5);
    pm.sb.assert_host_untouched();

    pm.ok(&["stop", "-t", "0", &name]);
    assert_home(&lab, &before);

    pm.ok(&["start", &name]);
    let pid2 = pm.pid(&name);
    assert_ne!(pid2, pid);
    assert_attached(&lab, pid2, &[], 5);

    pm.ok(&["restart", "-t", "0", &name]);
    let pid3 = pm.pid(&name);
    assert_ne!(pid3, pid2);
    assert_attached(&lab, pid3, &[], 5);

    pm.ok(&["rm", "-f", "-t", "0", &name]);
    assert_home(&lab, &before);
    assert_eq!(pm.ok(&["ps", "-a", "-q"]), "");
    pm.sb.assert_host_untouched();
    eprintln!("podman_container_lifecycle: {:.1} s", t.elapsed().as_secs_f64());
}

/// `podman network reload` tears the network down and sets it up again, with a DEL under the ifname in podman's
/// database (eth0) and an ADD under the first key of the previous result's interface map (pt-ns or the NIC, at
/// random). Twice, and the router must still hold pt-ns and the NIC; then rm leaves nothing.
#[test]
#[ignore = "needs root"]
fn podman_network_reload_twice() {
    let _serial = serial();
    let t = Instant::now();
    let lab = Lab::new("pr");
    let before = lab.snapshot();
    let pm = Podman::new(&lab, "prsb");
    let name = unique("router");
    pm.run_router(&name, &["--network", "openpe"]);
    let pid = pm.pid(&name);
    assert_attached(&lab, pid, &[], 0);
    pm.sb.assert_host_untouched();
    for round in 1..=2 {
        let o = pm.run(&["network", "reload", &name]);
        assert_eq!(o.code, 0, "network reload {round} failed:\nstdout: {}\nstderr: {}", o.stdout, o.stderr);
        assert_eq!(pm.pid(&name), pid, "reload keeps the container running");
        assert_attached(&lab, pid, &[], 0);
    }
    pm.ok(&["rm", "-f", "-t", "0", &name]);
    assert_home(&lab, &before);
    pm.sb.assert_host_untouched();
    eprintln!("podman_network_reload_twice: {:.1} s", t.elapsed().as_secs_f64());
}

/// One reload, then rm: podman's DEL on rm carries `eth0` again, while the reload's ADD came under another
/// name; the NIC must still come home (the router's namespace dies with rm, and a veth NIC left in it with it).
#[test]
#[ignore = "needs root"]
fn podman_network_reload_then_rm() {
    let _serial = serial();
    let t = Instant::now();
    let lab = Lab::new("pq");
    let before = lab.snapshot();
    let pm = Podman::new(&lab, "pqsb");
    let name = unique("router");
    pm.run_router(&name, &["--network", "openpe"]);
    let pid = pm.pid(&name);
    pm.ok(&["network", "reload", &name]);
    assert_attached(&lab, pid, &[], 0);
    pm.sb.assert_host_untouched();
    pm.ok(&["rm", "-f", "-t", "0", &name]);
    assert_home(&lab, &before);
    pm.sb.assert_host_untouched();
    eprintln!("podman_network_reload_then_rm: {:.1} s", t.elapsed().as_secs_f64());
}

/// A pod on network `openpe`: its infra container (podman's locally built catatonit pause image) holds the
/// attachment, a member container shares it, and `pod rm` brings the NIC home.
#[test]
#[ignore = "needs root"]
fn podman_pod_create_rm() {
    let _serial = serial();
    let t = Instant::now();
    let lab = Lab::new("pp");
    let before = lab.snapshot();
    let pm = Podman::new(&lab, "ppsb");
    let pod = unique("pod");
    let cg = pm.sb.cgroup.clone();
    pm.ok(&["pod", "create", "--name", &pod, "--network", "openpe", "--cgroup-parent", &cg]);
    assert_eq!(lab.state_files(), Vec::<String>::new(), "pod create alone attaches nothing");
    pm.ok(&["pod", "start", &pod]);
    let infra = pm.ok(&["pod", "inspect", "-f", "{{.InfraContainerID}}", &pod]);
    let infra_pid = pm.pid(&infra);
    assert_attached(&lab, infra_pid, &[], 0);
    pm.sb.assert_host_untouched();

    let member = unique("member");
    pm.run_router(&member, &["--pod", &pod]);
    let member_pid = pm.pid(&member);
    assert_eq!(netns_of(member_pid), netns_of(infra_pid), "the member shares the pod's network namespace");
    assert_attached(&lab, member_pid, &[], 0);

    pm.ok(&["pod", "rm", "-f", "-t", "0", &pod]);
    assert_home(&lab, &before);
    assert_eq!(pm.ok(&["ps", "-a", "-q"]), "");
    pm.sb.assert_host_untouched();
    eprintln!("podman_pod_create_rm: {:.1} s", t.elapsed().as_secs_f64());
}

// ---------------------------------------------------------------------------------------------------------
// containerd's CRI

const POD_NAMESPACE: &str = "openpe-system";
const POD_NAME: &str = "openpe-router-x7k2p";
const POD_UID: &str = "0b7e9c1e-3f2a-4d5b-8c6d-7e8f9a0b1c2d";
const PAUSE_IMAGE: &str = "localhost/openpe-pause:test";

/// A private containerd (root, state, sockets, CNI directories in the sandbox) whose CRI network is
/// `ptp` + `host-local`, then this plugin, in one conflist.
struct Containerd {
    sb: Sandbox,
    daemon: Option<Child>,
}

impl Containerd {
    /// `chained`: ptp + host-local, then the plugin (what works); else the plugin alone.
    fn new(lab: &Lab, tag: &str, chained: bool) -> Containerd {
        require(&["containerd", "containerd-shim-runc-v2", "ctr", "runc", "catatonit", "protoc", PYTHON]);
        let sb = Sandbox::new(lab, tag);
        for d in ["root", "state", "net.d", "bin", "logs", "ipam"] {
            std::fs::create_dir_all(sb.path(d)).unwrap();
        }
        // The CRI takes one plugin directory: the reference plugins and this one, linked together.
        for p in ["ptp", "host-local", "loopback"] {
            std::os::unix::fs::symlink(format!("/usr/lib/cni/{p}"), sb.path(&format!("bin/{p}"))).unwrap();
        }
        std::os::unix::fs::symlink(plugin_bin(), sb.path("bin/openpe-passthrough")).unwrap();
        // Alone, the plugin fails under the CRI ("failed to find network info for sandbox": the CRI wants an
        // address on CNI_IFNAME); chained after ptp it adds the router's NIC and pt-ns.
        let ptp = json!({"type": "ptp", "ipMasq": false, "mtu": 1400,
            "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.250.0.0/24"}]], "dataDir": sb.p("ipam")}});
        let plugins = if chained { vec![ptp, plugin_entry(lab)] } else { vec![plugin_entry(lab)] };
        let conflist = json!({"cniVersion": "1.0.0", "name": "openpe-cri", "plugins": plugins});
        std::fs::write(sb.path("net.d/10-openpe.conflist"), serde_json::to_string_pretty(&conflist).unwrap()).unwrap();
        let config = format!(
            r#"version = 2
root = "{dir}/root"
state = "{dir}/state"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "{dir}/containerd.sock"
[ttrpc]
  address = "{dir}/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  # Without it, runc fails to start the pause container here ("can't get final child's PID from pipe"): the
  # CRI asks for the sandbox's oom_score_adj of -998, below containerd's own.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{dir}/bin"
    conf_dir = "{dir}/net.d"
    max_conf_num = 1
"#,
            dir = sb.dir.path.display()
        );
        std::fs::write(sb.path("config.toml"), config).unwrap();
        let pause = sb.p("pause.tar");
        let script = repo().join("scripts/runtimes/build-pause-image.py");
        sh(&format!("{PYTHON} {} {pause} {PAUSE_IMAGE}", script.display()));

        let mut cd = Containerd { sb, daemon: None };
        cd.start();
        cd.ctr(&["images", "import", "--snapshotter", "native", &pause]);
        cd
    }

    fn start(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.sb.path("containerd.log")).unwrap();
        let config = self.sb.p("config.toml");
        let child = self
            .sb
            .daemon_command(&[], &["containerd", "--config", &config])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start containerd");
        self.daemon = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.cri(&["version"]).code == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "containerd did not serve its CRI; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stop containerd the way a service manager does (SIGTERM, then wait), leaving its shims running.
    fn stop(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            // nsenter exec'd containerd: the child is containerd itself.
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let _ = child.wait();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.sb.path("containerd.log")).unwrap_or_default()
    }

    fn ctr(&self, args: &[&str]) -> String {
        let sock = self.sb.p("containerd.sock");
        let mut argv = vec!["ctr", "-a", &sock, "-n", "k8s.io"];
        argv.extend(args);
        self.sb.ok(&[], &argv)
    }

    fn cri(&self, args: &[&str]) -> Outcome {
        let sock = self.sb.p("containerd.sock");
        let script = repo().join("scripts/runtimes/cri.py").display().to_string();
        let mut argv = vec![PYTHON, &script, "--socket", &sock];
        argv.extend(args);
        self.sb.run(&[], &argv)
    }

    fn cri_ok(&self, args: &[&str]) -> String {
        let o = self.cri(args);
        assert_eq!(
            o.code,
            0,
            "cri.py {} failed:\nstdout: {}\nstderr: {}\ncontainerd log tail:\n{}",
            args.join(" "),
            o.stdout,
            o.stderr,
            tail(&self.log(), 30)
        );
        o.stdout.trim().to_string()
    }

    fn write_sandbox_config(&self) -> String {
        let sandbox = json!({
            "metadata": {"name": POD_NAME, "uid": POD_UID, "namespace": POD_NAMESPACE, "attempt": 0},
            "hostname": "router",
            "log_directory": self.sb.p("logs"),
            "linux": {"cgroup_parent": self.sb.cgroup, "security_context": {"namespace_options": {"network": "POD"}}}
        });
        std::fs::write(self.sb.path("sandbox.json"), sandbox.to_string()).unwrap();
        self.sb.p("sandbox.json")
    }

    fn status(&self, id: &str) -> Value {
        serde_json::from_str(&self.cri_ok(&["status", id])).unwrap()
    }

    /// libcni's cache entry of an attachment, as the CRI wrote it under the tmpfs /var/lib/cni.
    fn cache_entry(&self, network: &str, id: &str, ifname: &str) -> Option<Value> {
        let o = self.sb.run(&[], &["cat", &format!("/var/lib/cni/results/{network}-{id}-{ifname}")]);
        (o.code == 0).then(|| serde_json::from_str(&o.stdout).unwrap())
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // Remove what the CRI made while it still runs; the sandbox guard then kills what is left.
        if self.daemon.is_some() {
            if let Ok(list) = serde_json::from_str::<Value>(&self.cri(&["list"]).stdout) {
                for item in list["items"].as_array().into_iter().flatten() {
                    let id = item["id"].as_str().unwrap_or_default().to_string();
                    let _ = self.cri(&["stop", &id]);
                    let _ = self.cri(&["remove", &id]);
                }
            }
        }
        self.stop();
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// RunPodSandbox attaches the chain (ptp's eth0, then pt-ns and the NIC) with the Kubernetes CNI_ARGS; containerd
/// restarts; StopPodSandbox (a DEL from libcni's cache) brings the NIC home; Stop again is a no-op; Remove leaves
/// no sandbox, no cache entry, no record, no claim.
#[test]
#[ignore = "needs root"]
fn containerd_cri_sandbox() {
    let _serial = serial();
    let t = Instant::now();
    let lab = Lab::new("cd");
    let before = lab.snapshot();
    let mut cd = Containerd::new(&lab, "cdsb", true);
    let id = cd.cri_ok(&["run", &cd.write_sandbox_config()]);
    let st = cd.status(&id);
    assert_eq!(st["status"]["state"], "SANDBOX_READY");
    let ip = st["status"]["network"]["ip"].as_str().unwrap().to_string();
    assert!(ip.starts_with("10.250.0."), "the sandbox's address is ptp's: {st}");
    let pid = st["info"]["info"]["pid"].as_u64().expect("the sandbox's pid") as u32;
    assert_attached(&lab, pid, &["eth0"], 0);
    cd.sb.assert_host_untouched();
    assert_eq!(addrs_of(pid, "eth0"), [format!("{ip}/24")]);

    // The Kubernetes keys reached the chain: libcni caches the CNI_ARGS it ran the plugins with.
    let entry = cd.cache_entry("openpe-cri", &id, "eth0").expect("libcni's cache entry of the sandbox");
    let args: Vec<(String, String)> = entry["cniArgs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|kv| (kv[0].as_str().unwrap().into(), kv[1].as_str().unwrap().into()))
        .collect();
    for (k, v) in [
        ("IgnoreUnknown", "1"),
        ("K8S_POD_NAMESPACE", POD_NAMESPACE),
        ("K8S_POD_NAME", POD_NAME),
        ("K8S_POD_INFRA_CONTAINER_ID", id.as_str()),
        ("K8S_POD_UID", POD_UID),
    ] {
        assert!(args.contains(&(k.to_string(), v.to_string())), "{k}={v} missing from the cached CNI_ARGS {args:?}");
    }
    let names: Vec<&str> =
        entry["result"]["interfaces"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"eth0") && names.contains(&"pt-ns") && names.contains(&"toswitch"), "{names:?}");

    // A containerd restart between RunPodSandbox and StopPodSandbox: the DEL comes from what it persisted.
    cd.stop();
    assert_attached(&lab, pid, &["eth0"], 0);
    cd.start();
    assert_eq!(cd.status(&id)["status"]["state"], "SANDBOX_READY");

    cd.cri_ok(&["stop", &id]);
    assert_eq!(cd.status(&id)["status"]["state"], "SANDBOX_NOTREADY");
    assert_home(&lab, &before);
    cd.cri_ok(&["stop", &id]);
    assert_home(&lab, &before);

    cd.cri_ok(&["remove", &id]);
    let list: Value = serde_json::from_str(&cd.cri_ok(&["list"])).unwrap();
    assert_eq!(list["items"], json!([]), "no sandbox left");
    assert!(cd.cache_entry("openpe-cri", &id, "eth0").is_none(), "libcni's cache entry is gone");
    assert_home(&lab, &before);
    cd.sb.assert_host_untouched();
    eprintln!("containerd_cri_sandbox: {:.1} s", t.elapsed().as_secs_f64());
}

/// The plugin alone as the CRI's network: its ADD succeeds, but the CRI wants an address on CNI_IFNAME and
/// refuses the sandbox; it then DELs, and the NIC is home with nothing left (hence the ptp chain above).
#[test]
#[ignore = "needs root"]
fn containerd_cri_plugin_alone_is_refused() {
    let _serial = serial();
    let t = Instant::now();
    let lab = Lab::new("ca");
    let before = lab.snapshot();
    let cd = Containerd::new(&lab, "casb", false);
    let o = cd.cri(&["run", &cd.write_sandbox_config()]);
    assert_ne!(o.code, 0, "RunPodSandbox should fail: {}", o.stdout);
    assert!(o.stderr.contains("failed to find network info for sandbox"), "unexpected error: {}", o.stderr);
    let list: Value = serde_json::from_str(&cd.cri_ok(&["list"])).unwrap();
    assert_eq!(list["items"], json!([]), "the CRI removed the failed sandbox");
    assert_home(&lab, &before);
    cd.sb.assert_host_untouched();
    eprintln!("containerd_cri_plugin_alone_is_refused: {:.1} s", t.elapsed().as_secs_f64());
}
