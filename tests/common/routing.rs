//! The routing daemons of the end-to-end tests, and what the tests ask of them: FRR instances (zebra, bgpd and
//! more, each instance in its own pathspace), BIRD 2, GoBGP and openpe-sidecar, each started inside a test
//! namespace and stopped by pid (its directories removed) by a guard, even when a test fails or the start
//! itself did; waiting for a check to pass; and the checks. Parsers of the daemons' and the kernel's output
//! return an error for output they do not understand, never "nothing"; a vtysh answer that is not JSON fails
//! the test at once. The lab's topologies built from these parts are in tests/common/bgp.rs.

use std::cell::RefCell;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{sh, unique, Lab, Ns, TempDir};

/// How long a wait for convergence may take; nothing asserts on it.
pub const WAIT: Duration = Duration::from_secs(90);

/// Poll `check` every 200 ms until it returns Ok (its value is returned), or fail after [`WAIT`] with its last
/// complaint and `context()`.
pub fn wait_for<T>(what: &str, check: impl Fn() -> Result<T, String>, context: impl Fn() -> String) -> T {
    poll(what, WAIT, Duration::from_millis(200), check, context)
}

/// As [`wait_for`], failing after `limit`, and polling every 20 ms: for waits whose time is bounded or printed.
pub fn wait_within<T>(
    what: &str,
    limit: Duration,
    check: impl Fn() -> Result<T, String>,
    context: impl Fn() -> String,
) -> T {
    poll(what, limit, Duration::from_millis(20), check, context)
}

fn poll<T>(
    what: &str,
    limit: Duration,
    every: Duration,
    check: impl Fn() -> Result<T, String>,
    context: impl Fn() -> String,
) -> T {
    let start = Instant::now();
    loop {
        let last = match check() {
            Ok(v) => {
                eprintln!("{what}: after {:.3} s", start.elapsed().as_secs_f64());
                return v;
            }
            Err(e) => e,
        };
        if start.elapsed() > limit {
            panic!("timed out waiting for {what}: {last}\n--- context ---\n{}", context());
        }
        std::thread::sleep(every);
    }
}

pub fn sidecar_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_openpe-sidecar"))
}

/// The pid a daemon wrote: a daemon can create its pid file before it writes the number (BIRD does), so an
/// empty file is waited for, up to five seconds.
fn read_pid(path: &Path) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        match text.trim().parse() {
            Ok(pid) => return pid,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("{}: {text:?} is not a pid: {e}", path.display()),
        }
    }
}

/// Whether process `pid` exists and is not a zombie (the state is the field after the command's parenthesis).
fn pid_alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Stop a daemon this test started, by pid: SIGTERM, then SIGKILL if it lingers past five seconds.
fn stop_pid(pid: i32) {
    signal_pid(pid, nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(5);
    while pid_alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if pid_alive(pid) {
        kill_pid(pid);
    }
}

/// SIGKILL a daemon this test started (no clean-up of its own: a crash), and wait until it is gone.
fn kill_pid(pid: i32) {
    signal_pid(pid, nix::sys::signal::Signal::SIGKILL);
    while pid_alive(pid) {
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn signal_pid(pid: i32, signal: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
}

/// How an FRR instance starts, besides zebra and bgpd with its integrated configuration.
#[derive(Clone, Copy, Default)]
pub struct FrrOptions<'a> {
    /// Daemons started after bgpd, such as `bfdd`.
    pub daemons: &'a [&'a str],
    /// More zebra options, such as `-K 120` (kernel routes kept across a restart).
    pub zebra_args: &'a str,
    /// bgpd logs to a file in its run directory, read with [`Frr::bgpd_log`].
    pub bgpd_log: bool,
}

/// One FRR instance with its own pathspace (`-N`), running inside a namespace. Dropped, it stops every daemon
/// of the instance, found by its command line (so also one whose pid file a failed start never read), and
/// removes the instance's directories.
pub struct Frr {
    pub name: String,
    ns: String,
    zebra_args: String,
    bgpd_log: bool,
}

impl Frr {
    pub fn etc(&self) -> PathBuf {
        PathBuf::from(format!("/etc/frr/{}", self.name))
    }
    pub fn run(&self) -> PathBuf {
        PathBuf::from(format!("/var/run/frr/{}", self.name))
    }

    /// Start zebra and bgpd in `ns` with `config` as the integrated configuration (loaded with `vtysh -b`).
    pub fn start(ns: &Ns, tag: &str, config: &str) -> Frr {
        Self::start_with(ns, tag, config, FrrOptions::default())
    }

    /// As [`Frr::start`], with `options`.
    pub fn start_with(ns: &Ns, tag: &str, config: &str, options: FrrOptions) -> Frr {
        let mut f = Frr {
            name: unique(tag),
            ns: ns.name.clone(),
            zebra_args: options.zebra_args.to_string(),
            bgpd_log: options.bgpd_log,
        };
        let etc = f.etc();
        fs::create_dir_all(&etc).unwrap();
        fs::create_dir_all(f.run()).unwrap();
        fs::write(etc.join("vtysh.conf"), "service integrated-vtysh-config\n").unwrap();
        let listed: String = options.daemons.iter().map(|d| format!("{d}=yes\n")).collect();
        fs::write(etc.join("daemons"), format!("bgpd=yes\n{listed}")).unwrap();
        fs::write(etc.join("frr.conf"), config).unwrap();
        sh(&format!(
            "chown -R frr:frr {e} {r} && chmod 0750 {e} && chmod 0640 {e}/*",
            e = etc.display(),
            r = f.run().display()
        ));
        f.start_daemon("zebra");
        f.start_daemon("bgpd");
        for d in options.daemons {
            f.start_daemon(d);
        }
        sh(&format!("vtysh -N {} -b >/dev/null", f.name));
        f
    }

    fn bgpd_log_path(&self) -> PathBuf {
        self.run().join("bgpd.log")
    }

    /// Start (or start again) one daemon of the instance, with the options it started with and without
    /// configuration (FRR's daemons do not read the integrated configuration themselves).
    pub fn start_daemon(&mut self, daemon: &str) {
        let args = match daemon {
            "zebra" => format!("-s 90000000 {}", self.zebra_args),
            "bgpd" if self.bgpd_log => {
                format!("--log file:{} --log-level informational", self.bgpd_log_path().display())
            }
            _ => String::new(),
        };
        let pidfile = self.run().join(format!("{daemon}.pid"));
        let _ = fs::remove_file(&pidfile);
        sh(&format!("ip netns exec {} /usr/lib/frr/{daemon} -N {} -d -F traditional -P 0 {args}", self.ns, self.name));
        read_pid(&pidfile);
    }

    /// The pid of a daemon of the instance, from its pid file.
    pub fn pid_of(&self, daemon: &str) -> i32 {
        read_pid(&self.run().join(format!("{daemon}.pid")))
    }

    /// Stop one daemon (SIGTERM: its BGP peers see the session close).
    pub fn stop_daemon(&mut self, daemon: &str) {
        stop_pid(self.pid_of(daemon));
    }

    /// SIGKILL one daemon: no NOTIFICATION, no clean-up, a crash.
    pub fn kill_daemon(&mut self, daemon: &str) {
        kill_pid(self.pid_of(daemon));
    }

    /// The running daemons of this instance: processes of /usr/lib/frr/ started with `-N` and its name; zebra
    /// last, so that it is stopped after its clients.
    fn daemons(&self) -> Vec<i32> {
        let mut found: Vec<(bool, i32)> = fs::read_dir("/proc")
            .expect("/proc")
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter_map(|pid| {
                let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
                let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
                let ours = args.first()?.starts_with(b"/usr/lib/frr/")
                    && args.windows(2).any(|w| w[0] == b"-N" && w[1] == self.name.as_bytes());
                ours.then(|| (args[0] == b"/usr/lib/frr/zebra", pid))
            })
            .collect();
        found.sort();
        found.into_iter().map(|(_, pid)| pid).collect()
    }

    pub fn vtysh(&self, cmd: &str) -> String {
        sh(&format!("vtysh -N {} -c '{cmd}'", self.name))
    }

    /// The JSON of a vtysh command; output that is not JSON fails the test.
    pub fn json(&self, cmd: &str) -> Value {
        let out = self.vtysh(cmd);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("vtysh -N {} -c {cmd:?} is not JSON ({e}): {out}", self.name))
    }

    /// The prefixes of this instance's BGP table of `family` (`ipv4` or `ipv6`); an answer without a `routes`
    /// object (no BGP instance, an error, another shape) is an error, not an empty table.
    pub fn bgp_prefixes(&self, family: &str) -> Result<Vec<String>, String> {
        let v = self.json(&format!("show bgp {family} unicast json"));
        match v.get("routes").and_then(Value::as_object) {
            Some(m) => Ok(m.keys().cloned().collect()),
            None => Err(format!("FRR {}: `show bgp {family} unicast json` has no routes object: {v}", self.name)),
        }
    }

    /// Neighbor `name` (an address or an interface) of `show bgp neighbors NAME json`, None while FRR does not
    /// have it (FRR answers `{}` without BGP configuration, `{"bgpNoSuchNeighbor":true}` without that neighbor).
    /// Any other answer, or a neighbor without a state, is an error.
    pub fn find_neighbor(&self, name: &str) -> Result<Option<Value>, String> {
        let v = self.json(&format!("show bgp neighbors {name} json"));
        match v.get(name) {
            Some(n) if n.get("bgpState").and_then(Value::as_str).is_some() => Ok(Some(n.clone())),
            None if v.as_object().is_some_and(|m| m.is_empty())
                || v == serde_json::json!({"bgpNoSuchNeighbor": true}) =>
            {
                Ok(None)
            }
            _ => Err(format!("FRR {}: an answer about neighbor {name} not understood: {v}", self.name)),
        }
    }

    /// Neighbor `name`, as [`Frr::find_neighbor`]; not having it is an error too.
    pub fn neighbor(&self, name: &str) -> Result<Value, String> {
        self.find_neighbor(name)?.ok_or_else(|| format!("FRR {} does not have neighbor {name}", self.name))
    }

    /// The state of neighbor `name` (`Established`, `Idle`, ...), None while FRR does not have it.
    pub fn state(&self, name: &str) -> Result<Option<String>, String> {
        Ok(self.find_neighbor(name)?.map(|n| n["bgpState"].as_str().unwrap().to_string()))
    }

    /// Ok when every one of `peers` is Established, as this FRR sees it.
    pub fn established(&self, peers: &[&str]) -> Result<(), String> {
        for p in peers {
            match self.state(p)? {
                Some(s) if s == "Established" => {}
                Some(s) => return Err(format!("FRR {} sees neighbor {p} {s}", self.name)),
                None => return Err(format!("FRR {} does not have neighbor {p}", self.name)),
            }
        }
        Ok(())
    }

    /// Each neighbor's session state as this FRR sees it (`show bgp neighbors json`).
    pub fn session_states(&self) -> Vec<(String, String)> {
        let v = self.json("show bgp neighbors json");
        let m = v.as_object().unwrap_or_else(|| panic!("show bgp neighbors json is not an object: {v}"));
        m.iter()
            .map(|(peer, n)| {
                let state = n["bgpState"].as_str().unwrap_or_else(|| panic!("{peer} has no bgpState: {n}"));
                (peer.clone(), state.to_string())
            })
            .collect()
    }

    /// What bgpd wrote to its log file (started with [`FrrOptions::bgpd_log`]).
    pub fn bgpd_log(&self) -> String {
        assert!(self.bgpd_log, "FRR {} was started without a bgpd log file", self.name);
        fs::read_to_string(self.bgpd_log_path()).unwrap_or_default()
    }
}

impl Drop for Frr {
    fn drop(&mut self) {
        for pid in self.daemons() {
            stop_pid(pid);
        }
        let _ = fs::remove_dir_all(self.etc());
        let _ = fs::remove_dir_all(self.run());
    }
}

/// BIRD 2 in a namespace, in the foreground as this test's child (so its pid is known from the start), with
/// its own control socket and log file; stopped when dropped.
pub struct Bird {
    child: Child,
    dir: TempDir,
}

impl Bird {
    /// Start BIRD with `config`, to which a `log` line for [`Bird::log`] is prepended, and wait for its control
    /// socket.
    pub fn start(ns: &Ns, config: &str) -> Bird {
        let dir = TempDir::new("bird");
        write_bird_config(&dir, config);
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "bird", "-f", "-c"])
            .arg(dir.path.join("bird.conf"))
            .arg("-s")
            .arg(dir.path.join("bird.ctl"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start bird");
        let mut b = Bird { child, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !b.dir.path.join("bird.ctl").exists() {
            if let Ok(Some(status)) = b.child.try_wait() {
                panic!("bird exited ({status}): {}", b.log());
            }
            assert!(Instant::now() < deadline, "bird did not open its control socket");
            std::thread::sleep(Duration::from_millis(50));
        }
        b
    }

    /// Replace the configuration and have BIRD load it (`birdc configure`).
    pub fn reconfigure(&self, config: &str) {
        write_bird_config(&self.dir, config);
        let out = self.birdc("configure");
        assert!(out.contains("Reconfigured") || out.contains("Reconfiguration in progress"), "birdc configure: {out}");
    }

    pub fn birdc(&self, cmd: &str) -> String {
        sh(&format!("birdc -s {}/bird.ctl {cmd}", self.dir.path.display()))
    }

    /// The BGP state of protocol `name` (the last column of `show protocols`: `Established`, `Active`, ...).
    pub fn protocol_state(&self, name: &str) -> String {
        let out = self.birdc(&format!("show protocols {name}"));
        let row = out
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no row for {name} in birdc's output: {out}"));
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert!(cols.len() >= 6 && cols[1] == "BGP", "unexpected row for {name}: {row}");
        cols[cols.len() - 1].to_string()
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path.join("bird.log")).unwrap_or_default()
    }
}

fn write_bird_config(dir: &TempDir, config: &str) {
    let log = dir.path.join("bird.log");
    fs::write(dir.path.join("bird.conf"), format!("log \"{}\" all;\n{config}", log.display())).unwrap();
}

impl Drop for Bird {
    fn drop(&mut self) {
        stop_pid(self.child.id() as i32);
        let _ = self.child.wait();
    }
}

/// GoBGP in a namespace with a TOML configuration, its gRPC API on the namespace's own loopback, in the
/// foreground as this test's child; stopped when dropped.
pub struct GoBgp {
    child: Child,
    dir: TempDir,
}

impl GoBgp {
    pub fn start(ns: &Ns, config: &str) -> GoBgp {
        let dir = TempDir::new("gobgp");
        let conf = dir.path.join("gobgpd.toml");
        fs::write(&conf, config).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "gobgpd", "-t", "toml", "-f"])
            .arg(&conf)
            .args(["--api-hosts", "127.0.0.1:50051", "--pprof-disable", "-p"])
            .stdin(Stdio::null())
            .stdout(fs::File::create(dir.path.join("gobgpd.log")).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("start gobgpd");
        GoBgp { child, dir }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path.join("gobgpd.log")).unwrap_or_default()
    }
}

impl Drop for GoBgp {
    fn drop(&mut self) {
        stop_pid(self.child.id() as i32);
        let _ = self.child.wait();
    }
}

/// openpe-sidecar (watch mode) in the lab's router namespace, its log in a directory of its own (two sidecars
/// of one lab, the old one dropped after the new one started, keep theirs apart); killed when dropped.
pub struct Sidecar {
    child: RefCell<Child>,
    log: PathBuf,
    _dir: TempDir,
}

impl Sidecar {
    /// The sidecar for FRR instance `frr`, with more arguments.
    pub fn start(lab: &Lab, frr: &Frr, args: &[&str]) -> Sidecar {
        Self::start_pathspace(lab, &frr.name, args)
    }

    /// The sidecar for FRR pathspace `pathspace`, which need not run.
    pub fn start_pathspace(lab: &Lab, pathspace: &str, args: &[&str]) -> Sidecar {
        let dir = TempDir::new("sidecar");
        let log = dir.path.join("sidecar.log");
        let child = Command::new("ip")
            .args(["netns", "exec", &lab.router.name])
            .arg(sidecar_bin())
            .arg("--state-dir")
            .arg(&lab.state.path)
            .args(["--frr-pathspace", pathspace, "--log-level", "debug"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .expect("start openpe-sidecar");
        Sidecar { child: RefCell::new(child), log, _dir: dir }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The sidecar's pid (`ip netns exec` execs it in place).
    pub fn pid(&self) -> i32 {
        self.child.borrow().id() as i32
    }

    pub fn running(&self) -> bool {
        matches!(self.child.borrow_mut().try_wait(), Ok(None))
    }

    /// Send `sig` to the running sidecar.
    pub fn signal(&self, sig: libc::c_int) {
        assert!(self.running(), "the sidecar exited: {}", self.log());
        // SAFETY: kill(2) on the child this guard started, which has not been reaped (it is running).
        assert_eq!(unsafe { libc::kill(self.pid(), sig) }, 0);
    }

    /// Wait for the sidecar to exit.
    pub fn wait(&self) -> ExitStatus {
        self.child.borrow_mut().wait().expect("wait for openpe-sidecar")
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        if self.running() {
            // SAFETY: as in `signal`; SIGCONT first, in case a test stopped it.
            unsafe {
                libc::kill(self.pid(), libc::SIGCONT);
            }
            let _ = self.child.get_mut().kill();
        }
        let _ = self.child.get_mut().wait();
    }
}

/// `openpe-sidecar status --json` for an FRR instance.
pub fn sidecar_status(frr: &Frr) -> Result<Value, String> {
    let out = Command::new(sidecar_bin()).args(["status", "--json", "--frr-pathspace", &frr.name]).output().unwrap();
    serde_json::from_slice(&out.stdout).map_err(|e| {
        format!("openpe-sidecar status --json is not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout))
    })
}

/// `openpe-sidecar status` as a person reads it.
pub fn sidecar_status_text(frr: &Frr) -> String {
    let out = Command::new(sidecar_bin()).args(["status", "--frr-pathspace", &frr.name]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The state of neighbor `peer` in a status from [`sidecar_status`].
pub fn peer_state(status: &Value, peer: &str) -> Result<String, String> {
    let neighbors = status["neighbors"].as_array().ok_or_else(|| format!("no neighbors list in {status}"))?;
    let n =
        neighbors.iter().find(|n| n["address"] == peer).ok_or_else(|| format!("{peer} is not configured: {status}"))?;
    n["state"].as_str().map(str::to_string).ok_or_else(|| format!("{peer} has no state in {n}"))
}

/// Every one of `peers` Established in a status from [`sidecar_status`].
pub fn status_established(status: &Value, peers: &[&str]) -> Result<(), String> {
    for p in peers {
        let state = peer_state(status, p)?;
        if state != "Established" {
            return Err(format!("neighbor {p} is {state}"));
        }
    }
    Ok(())
}

/// Every one of `peers` Established, as `openpe-sidecar status` reports for `frr`.
pub fn reported_established(frr: &Frr, peers: &[&str]) -> Result<(), String> {
    status_established(&sidecar_status(frr)?, peers)
}

/// Whether the kernel of `ns` has a route for exactly `prefix` (`ip -j` names a host route without its length).
/// Output that is not `ip -j`'s list of routes with destinations is an error.
pub fn kernel_route(ns: &Ns, prefix: &str) -> Result<bool, String> {
    let fam = if prefix.contains(':') { "-6" } else { "-4" };
    let out = sh(&format!("ip -n {} -j {fam} route show {prefix}", ns.name));
    let v: Value = serde_json::from_str(&out).map_err(|e| format!("ip -j route is not JSON ({e}): {out:?}"))?;
    let routes = v.as_array().ok_or_else(|| format!("ip -j route is not a list: {v}"))?;
    let host = prefix.strip_suffix(if fam == "-6" { "/128" } else { "/32" }).unwrap_or(prefix);
    let mut found = false;
    for r in routes {
        match r["dst"].as_str() {
            Some(dst) => found |= dst == prefix || dst == host,
            None => return Err(format!("a route without a destination in ip -j route: {v}")),
        }
    }
    Ok(found)
}

/// Whether one ping from `ns` to `addr` is answered within a second.
pub fn ping(ns: &Ns, addr: &str) -> bool {
    Command::new("ip")
        .args(["netns", "exec", &ns.name, "ping", "-n", "-q", "-c", "1", "-W", "1", addr])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// What `frr-reload.py --test` would still change to make FRR's running configuration equal its configuration
/// file (the sidecar's render): the lines it lists to delete and to add, `-`/`+` prefixed. Empty when FRR's
/// view equals the file, so that later applies do not re-issue commands.
pub fn reload_pending(frr: &Frr) -> Result<Vec<String>, String> {
    let out = Command::new("/usr/lib/frr/frr-reload.py")
        .args(["--stdout", "--pathspace", &frr.name, "--rundir"])
        .arg(frr.run())
        .arg("--test")
        .arg(frr.etc().join("frr.conf"))
        .output()
        .map_err(|e| format!("cannot run frr-reload.py: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!("frr-reload.py --test failed: {text}{}", String::from_utf8_lossy(&out.stderr)));
    }
    // Nothing at all when the two are equal; otherwise sections "Lines To Delete" and "Lines To Add", each
    // underlined with '=' and holding its lines (context lines unindented, commands indented).
    let mut pending = Vec::new();
    let mut sign = None;
    for line in text.lines() {
        match line {
            "" => {}
            "Lines To Delete" => sign = Some('-'),
            "Lines To Add" => sign = Some('+'),
            l if l.chars().all(|c| c == '=') => {}
            // FRR's daemons carry the machine's hostname, which the sidecar's rendering (BGP only) leaves alone
            // since its delta path (docs/sidecar.md); frr-reload.py lists it either way.
            l if l.starts_with("hostname ") || l.starts_with("no hostname ") => {}
            l => match sign {
                Some(s) => pending.push(format!("{s}{l}")),
                None => return Err(format!("frr-reload.py --test said what this helper does not understand: {text}")),
            },
        }
    }
    Ok(pending)
}
