//! The benchmark of issue 5: openpe-passthrough side by side with the kernel floor (iproute2) and the reference
//! `ptp` + `host-local` plugins. A Cargo bench without libtest's harness (`harness = false`): it spawns real
//! processes in real, throwaway network namespaces and measures each one from outside:
//!
//! - wall time: from just before the spawn to the return of `wait4`;
//! - CPU time: user + system time from the `rusage` that `wait4` returns for the finished child, which the kernel
//!   accounts for the child and every descendant it waited for (so `ptp` includes the `host-local` it runs);
//! - peak RSS: `ru_maxrss` of that same `rusage` (the largest of the child and its waited-for descendants).
//!
//! Run it through `scripts/bench.sh`, which builds it, names the namespaces of the run and removes everything the
//! run made even when it is interrupted. Every measured process starts inside its own throwaway "host"
//! namespace (the driver's thread enters it with setns(2) around the spawn, so the child pays for nothing but
//! its own exec and work), so nothing runs or changes in this machine's own namespace, and no packet leaves the
//! throwaway namespaces.
//!
//! Environment: BENCH_PREFIX (namespace name prefix, required), BENCH_TMP (a fresh temporary directory,
//! required), PLUGIN (the plugin binary), PLUGIN_STATIC (a second build of it, compared side by side; optional),
//! BENCH_ITER (iterations of the side-by-side runs, default 100), BENCH_SCALE_ITER (iterations per
//! state-directory size, default 50), BENCH_NODES (default 64),
//! CNI_PLUGIN_DIR (default /usr/lib/cni), BENCH_BGP_RESULT (a file with the BGP measurement, optional).

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::{json, Value};

// --- measuring one process -----------------------------------------------------------------------------------

/// What one finished process cost.
#[derive(Debug, Clone, Default)]
struct Cost {
    wall_ms: f64,
    cpu_ms: f64,
    maxrss_kb: i64,
}

impl Cost {
    /// Two processes one after the other: times add up, the peak is the larger one.
    fn then(&self, o: &Cost) -> Cost {
        Cost {
            wall_ms: self.wall_ms + o.wall_ms,
            cpu_ms: self.cpu_ms + o.cpu_ms,
            maxrss_kb: self.maxrss_kb.max(o.maxrss_kb),
        }
    }
}

struct Output {
    cost: Cost,
    code: i32,
    stdout: String,
    stderr: String,
}

fn die(msg: &str) -> ! {
    eprintln!("bench: {msg}");
    std::process::exit(1);
}

fn tv_ms(tv: libc::timeval) -> f64 {
    tv.tv_sec as f64 * 1e3 + tv.tv_usec as f64 / 1e3
}

/// Run `f` with this thread inside the namespace open at `ns_fd`, then come back. Children spawned meanwhile
/// start in that namespace: the driver enters it itself rather than in the child (between fork and exec), so
/// that `Command` can use posix_spawn and a measured child costs only its own work from exec on.
fn in_ns<T>(ns: &File, f: impl FnOnce() -> T) -> T {
    use nix::sched::{setns, CloneFlags};
    let home = File::open("/proc/thread-self/ns/net").unwrap_or_else(|e| die(&format!("own netns: {e}")));
    if let Err(e) = setns(ns, CloneFlags::CLONE_NEWNET) {
        die(&format!("setns: {e}"));
    }
    let r = f();
    if setns(&home, CloneFlags::CLONE_NEWNET).is_err() {
        // Carrying on in the wrong namespace could touch this machine's interfaces: stop here.
        eprintln!("bench: cannot return to the original network namespace");
        std::process::abort();
    }
    r
}

/// The floor's share of ADD's step 4 (`ip` cannot write sysctls): written by the driver itself while inside the
/// router namespace, inside the floor's timed window (their CPU time, a few microseconds, is not counted).
fn write_forwarding() {
    for path in ["/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"] {
        fs::write(path, "1").unwrap_or_else(|e| die(&format!("{path}: {e}")));
    }
}

/// iproute2, found once (an absolute path lets `Command` use posix_spawn).
fn ip_path() -> &'static str {
    static IP: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
    IP.get_or_init(|| {
        ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or_else(|| die("iproute2's ip is not installed"))
    })
}

/// `ip -batch -` started inside `ns`, measured.
fn ip_batch(ns: &Ns, script: &str) -> Output {
    let mut c = Command::new(ip_path());
    c.args(["-batch", "-"]);
    in_ns(ns.file(), || measure(&mut c, script.as_bytes()))
}

/// Spawn, feed stdin, collect stdout and stderr, and reap with wait4 for the rusage.
fn spawn(cmd: &mut Command, stdin: &[u8]) -> std::process::Child {
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| die(&format!("cannot start {cmd:?}: {e}")));
    // Configurations are small: they fit the pipe, so this never blocks on a child that does not read.
    let mut input = child.stdin.take().unwrap();
    let _ = input.write_all(stdin);
    drop(input);
    child
}

fn reap(pid: i32) -> (i32, libc::rusage, Instant) {
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: plain system call on a child of this process.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            die(&format!("wait4({pid}) failed"));
        }
    }
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { 128 + libc::WTERMSIG(status) };
    (code, ru, Instant::now())
}

fn collect(mut child: std::process::Child) -> (String, String) {
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut err);
    }
    (out, err)
}

// The child is reaped by wait4 in `reap` (for its rusage), which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn measure(cmd: &mut Command, stdin: &[u8]) -> Output {
    let start = Instant::now();
    let mut child = spawn(cmd, stdin);
    // Read the pipes to their end (the child closes them when it exits), then reap.
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut stdout);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut stderr);
    }
    let (code, ru, end) = reap(child.id() as i32);
    Output {
        cost: Cost {
            wall_ms: (end - start).as_secs_f64() * 1e3,
            cpu_ms: tv_ms(ru.ru_utime) + tv_ms(ru.ru_stime),
            maxrss_kb: ru.ru_maxrss,
        },
        code,
        stdout,
        stderr,
    }
}

fn must(o: Output, what: &str) -> Output {
    if o.code != 0 {
        die(&format!("{what} failed with status {}:\nstdout: {}\nstderr: {}", o.code, o.stdout, o.stderr));
    }
    o
}

// --- namespaces and labs ---------------------------------------------------------------------------------------

fn sh(cmd: &str) {
    let st = Command::new("sh").arg("-c").arg(cmd).status().unwrap_or_else(|e| die(&format!("sh: {e}")));
    if !st.success() {
        die(&format!("setup command failed: {cmd}"));
    }
}

/// A throwaway network namespace made with `ip netns add`; [`Ns::delete`] removes it (and scripts/bench.sh
/// removes every namespace of the run's prefix on exit, whatever happened).
struct Ns {
    name: String,
    file: File,
}

impl Ns {
    fn new(name: String) -> Ns {
        sh(&format!("ip netns add {name} && ip -n {name} link set lo up"));
        Ns::open(name)
    }
    fn open(name: String) -> Ns {
        let file =
            File::open(format!("/var/run/netns/{name}")).unwrap_or_else(|e| die(&format!("open netns {name}: {e}")));
        Ns { name, file }
    }
    fn path(&self) -> String {
        format!("/var/run/netns/{}", self.name)
    }
    fn file(&self) -> &File {
        &self.file
    }
    /// `ip -batch -` inside this namespace, not measured (setup).
    fn ip_batch(&self, script: &str) {
        must(ip_batch(self, script), &format!("ip -batch in {}", self.name));
    }
    fn sysctls(&self, kv: &[(&str, &str)]) {
        for (k, v) in kv {
            sh(&format!("ip netns exec {} sysctl -qw {k}={v}", self.name));
        }
    }
    fn delete(self) {
        drop(self.file);
        sh(&format!("ip netns del {}", self.name));
    }
}

/// Delete many namespaces with one `ip -batch` (setup and teardown of the concurrency run).
fn delete_all(nss: Vec<Ns>) {
    let script: String = nss.iter().map(|n| format!("netns del {}\n", n.name)).collect();
    drop(nss);
    must(measure(Command::new(ip_path()).args(["-batch", "-"]), script.as_bytes()), "deleting namespaces");
}

/// The simulated node of the integration tests, from the one definition they share.
#[path = "../tests/common/lab.rs"]
mod lab;

/// One simulated node: a host namespace with the underlay NIC `toswitch` and its ToR (see `lab`), and an empty
/// router namespace.
struct Lab {
    host: Ns,
    router: Ns,
    tor: Ns,
}

impl Lab {
    fn new(prefix: &str, tag: &str) -> Lab {
        let lab = Lab {
            host: Ns::new(format!("{prefix}{tag}h")),
            router: Ns::new(format!("{prefix}{tag}r")),
            tor: Ns::new(format!("{prefix}{tag}t")),
        };
        lab.setup();
        lab
    }
    fn setup(&self) {
        self.host.ip_batch(&lab::host_setup(&self.tor.name));
        self.tor.ip_batch(lab::TOR_SETUP);
    }
    fn delete(self) {
        self.host.delete();
        self.router.delete();
        self.tor.delete();
    }
}

// --- the three ways of doing the work ----------------------------------------------------------------------------

struct Bench {
    /// The default build first (label ""), then any other build to compare (`PLUGIN_STATIC`).
    variants: Vec<(String, PathBuf)>,
    cni_dir: PathBuf,
    tmp: PathBuf,
    prefix: String,
}

fn plugin_conf(state: &Path, host: &Ns, v4: &str, router_id: &str) -> String {
    json!({
        "cniVersion": "1.0.0",
        "name": "openpe",
        "type": "openpe-passthrough",
        "underlay": {"asn": 64514, "nics": ["toswitch"], "routerIDCIDR": router_id,
                     "neighbors": [{"asn": 64512, "address": "192.168.11.2"}]},
        "l3passthrough": {"hostsession": {"asn": 64514, "hostasn": 64515,
            "localcidr": {"ipv4": v4, "ipv6": "2001:db8:10::/64"}}},
        "stateDir": state.display().to_string(),
        "hostNetns": host.path(),
    })
    .to_string()
}

impl Bench {
    /// The plugin, started inside the lab's host namespace (and told so with `hostNetns`).
    fn plugin_cmd(&self, verb: &str, lab: &Lab, container: &str) -> Command {
        self.plugin_cmd_with(&self.variants[0].1, verb, lab, container)
    }

    fn plugin_cmd_with(&self, bin: &Path, verb: &str, lab: &Lab, container: &str) -> Command {
        let mut c = Command::new(bin);
        c.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("CNI_COMMAND", verb)
            .env("CNI_CONTAINERID", container)
            .env("CNI_NETNS", lab.router.path())
            .env("CNI_IFNAME", "net1")
            .env("CNI_PATH", &self.cni_dir);
        c
    }

    fn plugin(&self, verb: &str, lab: &Lab, conf: &str, container: &str) -> Output {
        self.plugin_with(&self.variants[0].1, verb, lab, conf, container)
    }

    fn plugin_with(&self, bin: &Path, verb: &str, lab: &Lab, conf: &str, container: &str) -> Output {
        let mut c = self.plugin_cmd_with(bin, verb, lab, container);
        must(in_ns(lab.host.file(), || measure(&mut c, conf.as_bytes())), &format!("openpe-passthrough {verb}"))
    }

    /// The same kernel changes as the plugin's ADD, with iproute2: one `ip -batch` in the host namespace (veth
    /// pt-host with its peer pt-ns created in the router namespace, both in link group 4243; pt-host up with an
    /// alias, its two addresses; toswitch moved into the router namespace), then one in the router namespace
    /// (pt-ns up with an alias and its two addresses; toswitch's two addresses; toswitch up), then the two
    /// forwarding sysctls there (see [`write_forwarding`]).
    fn floor_add(&self, lab: &Lab) -> Cost {
        let host = format!(
            "link add name pt-host group 4243 type veth peer name pt-ns group 4243 netns {r}
link set pt-host up alias openpe-passthrough:openpe@floor@net1
addr add 192.169.10.2/24 dev pt-host
addr add 2001:db8:10::2/64 dev pt-host nodad
link set toswitch netns {r}
",
            r = lab.router.name
        );
        let router = "link set pt-ns up alias openpe-passthrough:openpe@floor@net1
addr add 192.169.10.1/24 dev pt-ns
addr add 2001:db8:10::1/64 dev pt-ns nodad
addr add 192.168.11.3/24 dev toswitch
addr add 2001:db8:11::3/64 dev toswitch nodad
link set toswitch up
";
        let a = must(ip_batch(&lab.host, &host), "floor ADD, host side");
        let b = must(ip_batch(&lab.router, router), "floor ADD, router side");
        let t = Instant::now();
        in_ns(lab.router.file(), write_forwarding);
        let sysctls = Cost { wall_ms: t.elapsed().as_secs_f64() * 1e3, ..Cost::default() };
        a.cost.then(&b.cost).then(&sysctls)
    }

    /// The same kernel changes as the plugin's DEL: toswitch moved back from the router namespace, then in the
    /// host namespace its two addresses, up, its three routes, and pt-host deleted (which deletes pt-ns).
    fn floor_del(&self, lab: &Lab) -> Cost {
        let router = format!("link set toswitch netns {}\n", lab.host.name);
        let host = "addr add 192.168.11.3/24 dev toswitch
addr add 2001:db8:11::3/64 dev toswitch nodad
link set toswitch up
route add default via 192.168.11.2 dev toswitch metric 50
route add 172.20.0.0/16 via 192.168.11.2 dev toswitch
route add 2001:db8:99::/64 via 2001:db8:11::2 dev toswitch metric 7
link del pt-host
";
        let a = must(ip_batch(&lab.router, &router), "floor DEL, router side");
        let b = must(ip_batch(&lab.host, host), "floor DEL, host side");
        a.cost.then(&b.cost)
    }

    /// `ptp` (which runs `host-local`), started inside its own throwaway host namespace.
    fn ptp(&self, verb: &str, host: &Ns, container: &Ns, conf: &str) -> Output {
        let mut c = Command::new(self.cni_dir.join("ptp"));
        c.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("CNI_COMMAND", verb)
            .env("CNI_CONTAINERID", "bench-ptp")
            .env("CNI_NETNS", container.path())
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", &self.cni_dir);
        must(in_ns(host.file(), || measure(&mut c, conf.as_bytes())), &format!("ptp {verb}"))
    }

    fn state_dir(&self, name: &str) -> PathBuf {
        let p = self.tmp.join(name);
        fs::DirBuilder::new().mode(0o700).create(&p).unwrap_or_else(|e| die(&format!("mkdir {}: {e}", p.display())));
        p
    }
}

use std::os::unix::fs::DirBuilderExt;

// --- statistics ------------------------------------------------------------------------------------------------

fn pct(xs: &[f64], p: f64) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if v.is_empty() {
        return f64::NAN;
    }
    // Nearest rank.
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

fn med(xs: &[f64]) -> f64 {
    pct(xs, 0.5)
}

#[derive(Default)]
struct Series {
    wall: Vec<f64>,
    cpu: Vec<f64>,
    rss: Vec<f64>,
}

impl Series {
    fn push(&mut self, c: &Cost) {
        self.wall.push(c.wall_ms);
        self.cpu.push(c.cpu_ms);
        self.rss.push(c.maxrss_kb as f64);
    }
}

fn mp(xs: &[f64], unit: &str) -> String {
    format!("{:.2} / {:.2} {unit}", med(xs), pct(xs, 0.9))
}

struct Table {
    rows: Vec<[String; 5]>,
    misses: usize,
}

impl Table {
    fn row(&mut self, what: &str, ours: String, theirs: String, ratio: String, verdict: Option<bool>, target: &str) {
        let v = match verdict {
            Some(true) => format!("PASS ({target})"),
            Some(false) => {
                self.misses += 1;
                format!("MISS ({target})")
            }
            None => target.to_string(),
        };
        self.rows.push([what.into(), ours, theirs, ratio, v]);
    }
    fn print(&self) {
        println!("| measurement | openpe-passthrough | reference | ratio | target |");
        println!("|---|---|---|---|---|");
        for r in &self.rows {
            println!("| {} | {} | {} | {} | {} |", r[0], r[1], r[2], r[3], r[4]);
        }
    }
}

// --- the runs ----------------------------------------------------------------------------------------------------

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Side by side, interleaved: each iteration runs the plugin, the iproute2 floor and ptp + host-local, ADD then
/// DEL, in an order that rotates from one iteration to the next.
fn side_by_side(b: &Bench, table: &mut Table, iters: usize) {
    let lab_p = Lab::new(&b.prefix, "p");
    let lab_f = Lab::new(&b.prefix, "f");
    let ptp_host = Ns::new(format!("{}qh", b.prefix));
    let ptp_cont = Ns::new(format!("{}qc", b.prefix));
    // ptp waits until its IPv6 addresses leave duplicate address detection (about 1.5 s here); the plugin and
    // the floor add theirs with nodad. Turn DAD off in ptp's namespaces so that the comparison is like for like.
    for ns in [&ptp_host, &ptp_cont] {
        ns.sysctls(&[("net.ipv6.conf.all.accept_dad", "0"), ("net.ipv6.conf.default.accept_dad", "0")]);
    }
    let state = b.state_dir("side-by-side");
    let conf = plugin_conf(&state, &lab_p.host, "192.169.10.0/24", "10.0.0.0/24");
    let ptp_conf = json!({
        "cniVersion": "1.0.0", "name": "benchptp", "type": "ptp", "ipMasq": false,
        "ipam": {"type": "host-local", "dataDir": b.tmp.join("host-local").display().to_string(),
                 "ranges": [[{"subnet": "10.99.0.0/24"}], [{"subnet": "fd99:99::/64"}]]}
    })
    .to_string();

    // Contenders: every plugin build (the default one first), the floor, ptp + host-local.
    let n = b.variants.len() + 2;
    let mut adds: Vec<Series> = (0..n).map(|_| Series::default()).collect();
    let mut dels: Vec<Series> = (0..n).map(|_| Series::default()).collect();
    let warmup = 3;
    for i in 0..warmup + iters {
        let mut costs: Vec<(Cost, Cost)> = vec![Default::default(); n];
        for k in 0..n {
            let which = (i + k) % n;
            costs[which] = if which < b.variants.len() {
                let bin = &b.variants[which].1;
                let a = b.plugin_with(bin, "ADD", &lab_p, &conf, "bench");
                let d = b.plugin_with(bin, "DEL", &lab_p, &conf, "bench");
                (a.cost, d.cost)
            } else if which == n - 2 {
                (b.floor_add(&lab_f), b.floor_del(&lab_f))
            } else {
                let a = b.ptp("ADD", &ptp_host, &ptp_cont, &ptp_conf);
                let d = b.ptp("DEL", &ptp_host, &ptp_cont, &ptp_conf);
                (a.cost, d.cost)
            };
        }
        if i < warmup {
            continue;
        }
        for (j, (a, d)) in costs.iter().enumerate() {
            adds[j].push(a);
            dels[j].push(d);
        }
    }
    let (f_add, f_del) = (&adds[n - 2], &dels[n - 2]);
    let (q_add, q_del) = (&adds[n - 1], &dels[n - 1]);
    for (v, (label, _)) in b.variants.iter().enumerate() {
        let (p_add, p_del) = (&adds[v], &dels[v]);
        let tag = if label.is_empty() { String::new() } else { format!(" [{label}]") };
        for (verb, p, f) in [("ADD", p_add, f_add), ("DEL", p_del, f_del)] {
            let r = med(&p.wall) / med(&f.wall);
            table.row(
                &format!("{verb} wall, median / p90 (vs iproute2 floor){tag}"),
                mp(&p.wall, "ms"),
                mp(&f.wall, "ms"),
                format!("{r:.3}x"),
                Some(r <= 1.15),
                "≤ 1.15x",
            );
        }
        for (verb, p, q) in [("ADD", p_add, q_add), ("DEL", p_del, q_del)] {
            let r = med(&p.cpu) / med(&q.cpu);
            table.row(
                &format!("{verb} CPU user+sys, median / p90 (vs ptp + host-local){tag}"),
                mp(&p.cpu, "ms"),
                mp(&q.cpu, "ms"),
                format!("{r:.3}x"),
                Some(r <= 0.3),
                "≤ 0.3x",
            );
        }
        let r = med(&p_add.rss) / med(&q_add.rss);
        table.row(
            &format!("ADD peak RSS, median (vs ptp + host-local){tag}"),
            format!("{:.0} KiB", med(&p_add.rss)),
            format!("{:.0} KiB", med(&q_add.rss)),
            format!("{r:.3}x"),
            Some(r < 1.0),
            "< 1x",
        );
    }
    let size = |p: &Path| fs::metadata(p).map(|m| m.len()).unwrap_or(0) as f64 / 1024.0;
    let ptp = size(&b.cni_dir.join("ptp"));
    let hl = size(&b.cni_dir.join("host-local"));
    for (label, bin) in &b.variants {
        let ours = size(bin);
        let tag = if label.is_empty() { String::new() } else { format!(" [{label}]") };
        table.row(
            &format!("binary size (vs ptp + host-local){tag}"),
            format!("{ours:.0} KiB"),
            format!("{ptp:.0} + {hl:.0} KiB"),
            format!("{:.3}x", ours / (ptp + hl)),
            None,
            "(information)",
        );
    }
    // For reference: what the others took, by the other measure.
    table.row(
        "(info) ADD / DEL wall of ptp + host-local, median / p90",
        "".into(),
        format!("{} ; {}", mp(&q_add.wall, "ms"), mp(&q_del.wall, "ms")),
        "".into(),
        None,
        "",
    );
    table.row(
        "(info) ADD / DEL CPU of the iproute2 floor, median / p90",
        "".into(),
        format!("{} ; {}", mp(&f_add.cpu, "ms"), mp(&f_del.cpu, "ms")),
        "".into(),
        None,
        "",
    );
    // What merely starting a process costs, for reading the CPU numbers above: VERSION does no work.
    let (mut v_ours, mut v_ptp, mut v_true) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..30 {
        for (prog, out) in [
            (b.variants[0].1.clone(), &mut v_ours),
            (b.cni_dir.join("ptp"), &mut v_ptp),
            (PathBuf::from("/bin/true"), &mut v_true),
        ] {
            let mut c = Command::new(prog);
            c.env_clear().env("CNI_COMMAND", "VERSION");
            let o = in_ns(ptp_host.file(), || measure(&mut c, br#"{"cniVersion":"1.0.0"}"#));
            out.push(o.cost.cpu_ms);
        }
    }
    table.row(
        "(info) CPU of a VERSION call (process start-up and exit), median / p90",
        mp(&v_ours, "ms"),
        format!("ptp {}; /bin/true {}", mp(&v_ptp, "ms"), mp(&v_true, "ms")),
        format!("{:.3}x", med(&v_ours) / med(&v_ptp)),
        None,
        "",
    );
    lab_p.delete();
    lab_f.delete();
    ptp_host.delete();
    ptp_cont.delete();
}

fn ipnet_at(base: std::net::IpAddr, offset: u128, prefix: u8) -> String {
    match base {
        std::net::IpAddr::V4(a) => format!("{}/{prefix}", std::net::Ipv4Addr::from(u32::from(a) + offset as u32)),
        std::net::IpAddr::V6(a) => format!("{}/{prefix}", std::net::Ipv6Addr::from(u128::from(a) + offset)),
    }
}

/// Fill `state` with `n` attachments of simulated nodes whose namespaces are gone, as `n` allocating ADDs would
/// have left it: records (copies of a real one), their three claims, and the index hint.
fn prefill(state: &Path, template: &Value, n: usize, prefix: &str) {
    let v4: std::net::IpAddr = "192.169.0.0".parse().unwrap();
    let v6: std::net::IpAddr = "2001:db8:10::".parse().unwrap();
    let write = |p: PathBuf, bytes: &[u8]| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&p)
            .unwrap_or_else(|e| die(&format!("{}: {e}", p.display())));
        f.write_all(bytes).unwrap();
    };
    for i in 0..n {
        let mut r = template.clone();
        let container = format!("sim{i}");
        let stem = format!("openpe@{container}");
        r["key"]["containerId"] = json!(container);
        r["nodeIndex"] = json!(i);
        r["addresses"]["host"] = json!([ipnet_at(v4, i as u128 + 2, 16), ipnet_at(v6, i as u128 + 2, 64)]);
        let (rino, hino) = (3_000_000_000u64 + i as u64, 3_500_000_000u64 + i as u64);
        r["netns"] = json!({"path": format!("/var/run/netns/{prefix}gone-r{i}"), "dev": 4, "ino": rino});
        r["hostNetns"] = json!({"path": format!("/var/run/netns/{prefix}gone-h{i}"), "dev": 4, "ino": hino});
        let mut text = serde_json::to_vec_pretty(&r).unwrap();
        text.push(b'\n');
        write(state.join("attachments").join(format!("{stem}.json")), &text);
        write(state.join("index").join(i.to_string()), stem.as_bytes());
        write(state.join("netns").join(format!("4_{rino}")), stem.as_bytes());
        write(state.join("hostns").join(format!("4_{hino}")), stem.as_bytes());
    }
    fs::write(state.join("index.hint"), n.to_string()).unwrap();
}

/// ADD latency with 1, 100, 1,000 and 10,000 attachments already in the state directory.
fn scale(b: &Bench, table: &mut Table, iters: usize) {
    let lab = Lab::new(&b.prefix, "s");
    let sizes = [1usize, 100, 1000, 10000];
    let mut dirs = Vec::new();
    for &n in &sizes {
        let state = b.state_dir(&format!("scale-{n}"));
        // A /16 so that 10,000 node indexes fit (and the router-id CIDR likewise).
        let conf = plugin_conf(&state, &lab.host, "192.169.0.0/16", "10.0.0.0/16");
        // One real ADD makes the directory (lock, boot id) and gives a real record to copy.
        b.plugin("ADD", &lab, &conf, "template");
        let text = fs::read_to_string(state.join("attachments/openpe@template.json"))
            .unwrap_or_else(|e| die(&format!("template record: {e}")));
        b.plugin("DEL", &lab, &conf, "template");
        let template: Value = serde_json::from_str(&text).unwrap();
        prefill(&state, &template, n, &b.prefix);
        dirs.push((n, conf));
    }
    let mut add: Vec<Series> = (0..sizes.len()).map(|_| Series::default()).collect();
    let warmup = 2;
    for i in 0..warmup + iters {
        for k in 0..sizes.len() {
            let j = (i + k) % sizes.len();
            let a = b.plugin("ADD", &lab, &dirs[j].1, "bench");
            b.plugin("DEL", &lab, &dirs[j].1, "bench");
            if i >= warmup {
                add[j].push(&a.cost);
            }
        }
    }
    // Wall time is mostly the kernel's wait for an RCU grace period, which varies from one ADD to the next; CPU
    // time is what the plugin itself spends, so it shows any per-record work in the state directory directly.
    for (j, &n) in sizes.iter().enumerate() {
        let r = med(&add[j].wall) / med(&add[0].wall);
        let rc = med(&add[j].cpu) / med(&add[0].cpu);
        let last = j == sizes.len() - 1;
        table.row(
            &format!("ADD with {n} attachment(s) in the state directory: wall, median / p90; CPU, median"),
            format!("{}; CPU {:.2} ms", mp(&add[j].wall, "ms"), med(&add[j].cpu)),
            if j == 0 { "".into() } else { "vs 1 attachment".into() },
            if j == 0 { "1x".into() } else { format!("wall {r:.3}x, CPU {rc:.3}x") },
            if last { Some(r <= 1.2) } else { None },
            if last { "≤ 1.2x (wall)" } else { "" },
        );
    }
    // Every prefilled record must still be there: the ADDs cleaned nothing up behind our back.
    for (j, &n) in sizes.iter().enumerate() {
        let state = b.tmp.join(format!("scale-{n}"));
        let count = fs::read_dir(state.join("attachments")).unwrap().count();
        if count != n {
            die(&format!("state directory of size {n} now has {count} records (j={j})"));
        }
    }
    lab.delete();
}

/// 64 ADDs started at once for 64 simulated nodes on one state directory.
fn concurrency(b: &Bench, table: &mut Table, nodes: usize) {
    let state = b.state_dir("concurrency");
    // Namespaces: one `ip -batch` makes them all.
    let names: Vec<[String; 3]> = (0..nodes).map(|i| ["h", "r", "t"].map(|t| format!("{}c{i}{t}", b.prefix))).collect();
    let script: String = names.iter().flatten().map(|n| format!("netns add {n}\n")).collect();
    must(measure(Command::new(ip_path()).args(["-batch", "-"]), script.as_bytes()), "creating namespaces");
    let labs: Vec<Lab> = names
        .iter()
        .map(|[h, r, t]| Lab { host: Ns::open(h.clone()), router: Ns::open(r.clone()), tor: Ns::open(t.clone()) })
        .collect();
    for lab in &labs {
        lab.setup();
    }
    let confs: Vec<String> =
        labs.iter().map(|l| plugin_conf(&state, &l.host, "192.169.10.0/24", "10.0.0.0/24")).collect();

    let run_all = |verb: &str| -> (f64, Vec<f64>) {
        let start = Instant::now();
        let mut children: Vec<_> = labs
            .iter()
            .zip(&confs)
            .enumerate()
            .map(|(i, (lab, conf))| {
                let mut cmd = b.plugin_cmd(verb, lab, &format!("node{i}"));
                let t = Instant::now();
                let c = in_ns(lab.host.file(), || spawn(&mut cmd, conf.as_bytes()));
                (Some(c), t)
            })
            .collect();
        // Reap in the order they finish (no other child of this process is running).
        let mut lat = Vec::new();
        for _ in 0..children.len() {
            let mut status = 0;
            // SAFETY: plain system call; the rusage is not wanted here.
            let pid = unsafe { libc::wait4(-1, &mut status, 0, std::ptr::null_mut()) };
            let end = Instant::now();
            let Some(slot) = children.iter_mut().find(|(c, _)| c.as_ref().is_some_and(|c| c.id() as i32 == pid)) else {
                die(&format!("wait4 returned {pid}"));
            };
            let child = slot.0.take().unwrap();
            let (out, err) = collect(child);
            if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
                die(&format!("concurrent {verb} failed ({status}): {out} {err}"));
            }
            lat.push((end - slot.1).as_secs_f64() * 1e3);
        }
        (start.elapsed().as_secs_f64() * 1e3, lat)
    };
    let (add_wall, add_lat) = run_all("ADD");

    // Every node got its own addresses: read them back from the kernel, pt-host in each host namespace.
    let mut v4 = BTreeSet::new();
    let mut v6 = BTreeSet::new();
    for lab in &labs {
        let mut c = Command::new(ip_path());
        c.args(["-j", "addr", "show", "dev", "pt-host"]);
        let o = must(in_ns(lab.host.file(), || measure(&mut c, b"")), "ip addr show pt-host");
        let v: Value = serde_json::from_str(&o.stdout).unwrap_or(Value::Null);
        for a in v[0]["addr_info"].as_array().into_iter().flatten() {
            let local = a["local"].as_str().unwrap_or("").to_string();
            match a["family"].as_str() {
                Some("inet") => {
                    v4.insert(local);
                }
                Some("inet6") if !local.starts_with("fe80") => {
                    v6.insert(local);
                }
                _ => {}
            }
        }
    }
    let distinct = v4.len() == nodes && v6.len() == nodes;
    let (del_wall, del_lat) = run_all("DEL");
    let left = fs::read_dir(state.join("attachments")).unwrap().count();

    table.row(
        &format!("{nodes} concurrent ADDs, one state directory: total wall; per ADD median / p90"),
        format!("{add_wall:.0} ms; {}", mp(&add_lat, "ms")),
        "".into(),
        "".into(),
        None,
        "(information)",
    );
    table.row(
        &format!("{nodes} concurrent ADDs: distinct host addresses (IPv4, IPv6)"),
        format!("{} / {} and {} / {}", v4.len(), nodes, v6.len(), nodes),
        "".into(),
        "".into(),
        Some(distinct),
        "all distinct",
    );
    table.row(
        &format!("{nodes} concurrent DELs: total wall; per DEL median / p90; records left"),
        format!("{del_wall:.0} ms; {}; {left} left", mp(&del_lat, "ms")),
        "".into(),
        "".into(),
        Some(left == 0),
        "none left",
    );
    delete_all(labs.into_iter().flat_map(|l| [l.host, l.router, l.tor]).collect());
}

fn main() {
    // `cargo bench` passes --bench; nothing else is expected.
    // Without scripts/bench.sh's environment (say, `cargo test --all-targets` runs this in test mode), there is
    // nothing to measure: say how to run it and succeed.
    let Ok(prefix) = std::env::var("BENCH_PREFIX") else {
        eprintln!("bench: BENCH_PREFIX is not set; run scripts/bench.sh (as root), which sets up and cleans up");
        return;
    };
    let tmp =
        PathBuf::from(std::env::var("BENCH_TMP").unwrap_or_else(|_| die("BENCH_TMP is not set: run scripts/bench.sh")));
    let plugin = std::env::var("PLUGIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_BIN_EXE_openpe-passthrough")));
    let mut variants = vec![(String::new(), plugin)];
    if let Ok(p) = std::env::var("PLUGIN_STATIC") {
        variants.push(("static-pie build".to_string(), PathBuf::from(p)));
    }
    let b = Bench {
        variants,
        cni_dir: PathBuf::from(std::env::var("CNI_PLUGIN_DIR").unwrap_or("/usr/lib/cni".into())),
        tmp,
        prefix,
    };
    let mut table = Table { rows: Vec::new(), misses: 0 };
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let want = |s: &str| only.is_empty() || only.split(',').any(|o| o == s);
    if want("side") {
        let n = env_num("BENCH_ITER", 100);
        eprintln!("bench: side by side, {n} interleaved iterations (+3 warm-up)");
        side_by_side(&b, &mut table, n);
    }
    if want("scale") {
        let n = env_num("BENCH_SCALE_ITER", 50);
        eprintln!("bench: scale, {n} interleaved iterations per state-directory size (+2 warm-up)");
        scale(&b, &mut table, n);
    }
    if want("concurrency") {
        let n = env_num("BENCH_NODES", 64);
        eprintln!("bench: concurrency, {n} nodes");
        concurrency(&b, &mut table, n);
    }
    if let Ok(path) = std::env::var("BENCH_BGP_RESULT") {
        // Written by scripts/bench.sh's BGP part: "<median s> <p90 s> <n>" or "pending <why>".
        let line = fs::read_to_string(&path).unwrap_or_default();
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            [m, p, n] if m.parse::<f64>().is_ok() => {
                let m: f64 = m.parse().unwrap();
                table.row(
                    &format!("ADD returned → host sessions Established (IPv4 and IPv6), median / p90 of {n}"),
                    format!("{m:.2} / {p} s"),
                    "".into(),
                    "".into(),
                    Some(m <= 2.0),
                    "≤ 2 s",
                );
            }
            _ => table.row(
                "ADD returned → host sessions Established (IPv4 and IPv6)",
                format!("pending: {}", line.trim()),
                "".into(),
                "".into(),
                None,
                "≤ 2 s (not measured)",
            ),
        }
    }
    println!();
    table.print();
    println!();
    println!("targets missed: {}", table.misses);
}
