//! Routing daemons for end-to-end tests: FRR instances (zebra and bgpd, each instance in its own pathspace,
//! optionally with bgpd's log in a file), BIRD 2, and openpe-sidecar, each started inside a test namespace and
//! stopped by pid (and its directories removed) by a guard, even when a test fails. Parsers of the daemons'
//! output return an error for output they do not understand, never "nothing".

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{sh, unique, Lab, Ns, TempDir};

/// How long a wait for convergence may take; nothing asserts on time.
pub const WAIT: Duration = Duration::from_secs(90);

pub fn sidecar_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_openpe-sidecar"))
}

fn pid_alive(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).map(|s| !s.contains(") Z ")).unwrap_or(false)
}

/// Stop a daemon this test started, by pid: SIGTERM, then SIGKILL if it lingers.
pub fn stop_pid(pid: i32) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(5);
    while pid_alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if pid_alive(pid) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        while pid_alive(pid) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// One FRR instance (zebra and bgpd) with its own pathspace, running inside a namespace.
pub struct Frr {
    pub name: String,
    ns: String,
    pids: Vec<i32>,
    /// bgpd's log file, when started with one.
    log: Option<PathBuf>,
}

impl Frr {
    pub fn etc(&self) -> PathBuf {
        PathBuf::from(format!("/etc/frr/{}", self.name))
    }
    pub fn run(&self) -> PathBuf {
        PathBuf::from(format!("/var/run/frr/{}", self.name))
    }

    /// Start zebra and bgpd in `ns` with `config` as the integrated configuration (loaded with `vtysh -b`).
    /// With `bgpd_log`, bgpd logs to a file in its run directory (see [`Frr::bgpd_log`]).
    pub fn start(ns: &Ns, tag: &str, config: &str, bgpd_log: bool) -> Frr {
        let mut f = Frr { name: unique(tag), ns: ns.name.clone(), pids: Vec::new(), log: None };
        let etc = f.etc();
        fs::create_dir_all(&etc).unwrap();
        fs::create_dir_all(f.run()).unwrap();
        fs::write(etc.join("vtysh.conf"), "service integrated-vtysh-config\n").unwrap();
        fs::write(etc.join("daemons"), "bgpd=yes\n").unwrap();
        fs::write(etc.join("frr.conf"), config).unwrap();
        sh(&format!(
            "chown -R frr:frr {e} {r} && chmod 0750 {e} && chmod 0640 {e}/*",
            e = etc.display(),
            r = f.run().display()
        ));
        f.start_daemon("zebra", "-s 90000000");
        let bgpd_args = if bgpd_log {
            let log = f.run().join("bgpd.log");
            let args = format!("--log file:{} --log-level informational", log.display());
            f.log = Some(log);
            args
        } else {
            String::new()
        };
        f.start_daemon("bgpd", &bgpd_args);
        sh(&format!("vtysh -N {} -b >/dev/null", f.name));
        f
    }

    fn start_daemon(&mut self, daemon: &str, args: &str) {
        let pidfile = self.run().join(format!("{daemon}.pid"));
        let _ = fs::remove_file(&pidfile);
        sh(&format!("ip netns exec {} /usr/lib/frr/{daemon} -N {} -d -F traditional -P 0 {args}", self.ns, self.name));
        let pid = super::read_pid(&pidfile);
        self.pids.push(pid);
    }

    pub fn vtysh(&self, cmd: &str) -> String {
        sh(&format!("vtysh -N {} -c '{cmd}'", self.name))
    }

    /// A vtysh command's JSON output; anything else is an error.
    pub fn json(&self, cmd: &str) -> Result<Value, String> {
        let out = self.vtysh(cmd);
        serde_json::from_str(&out).map_err(|e| format!("`{cmd}` did not answer JSON ({e}): {out:?}"))
    }

    /// The prefixes of this instance's BGP table of `family` (`ipv4` or `ipv6`).
    pub fn bgp_prefixes(&self, family: &str) -> Result<Vec<String>, String> {
        let v = self.json(&format!("show bgp {family} unicast json"))?;
        match v.get("routes").and_then(Value::as_object) {
            Some(m) => Ok(m.keys().cloned().collect()),
            None => Err(format!("`show bgp {family} unicast json` has no routes object: {v}")),
        }
    }

    /// `show bgp neighbors ADDR json`: the neighbor's object.
    pub fn neighbor(&self, address: &str) -> Result<Value, String> {
        let v = self.json(&format!("show bgp neighbors {address} json"))?;
        match v.get(address) {
            Some(n) if n.is_object() => Ok(n.clone()),
            _ => Err(format!("no neighbor {address} in {v}")),
        }
    }

    /// What bgpd wrote to its log file (started with `bgpd_log`).
    pub fn bgpd_log(&self) -> String {
        let path = self.log.as_ref().expect("this FRR instance was started without a bgpd log file");
        fs::read_to_string(path).unwrap_or_default()
    }
}

impl Drop for Frr {
    fn drop(&mut self) {
        for pid in self.pids.iter().rev() {
            stop_pid(*pid);
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

/// openpe-sidecar (watch mode) in the lab's router namespace, its log in a file; killed when dropped.
pub struct Sidecar {
    child: Child,
    log: PathBuf,
}

impl Sidecar {
    pub fn start(lab: &Lab, frr: &Frr) -> Sidecar {
        let log = lab.state.path.with_extension("sidecar.log");
        let child = Command::new("ip")
            .args(["netns", "exec", &lab.router.name])
            .arg(sidecar_bin())
            .arg("--state-dir")
            .arg(&lab.state.path)
            .args(["--frr-pathspace", &frr.name, "--log-level", "debug"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .expect("start openpe-sidecar");
        Sidecar { child, log }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_file(&self.log);
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
    let n = neighbors.iter().find(|n| n["address"] == peer).ok_or_else(|| format!("{peer} is not configured"))?;
    n["state"].as_str().map(str::to_string).ok_or_else(|| format!("{peer} has no state in {n}"))
}

/// Every one of `peers` Established, as the sidecar reports.
pub fn established(frr: &Frr, peers: &[&str]) -> Result<(), String> {
    let status = sidecar_status(frr)?;
    for p in peers {
        let state = peer_state(&status, p)?;
        if state != "Established" {
            return Err(format!("neighbor {p} is {state}"));
        }
    }
    Ok(())
}

/// Whether the kernel of `ns` has a route for exactly `prefix`.
pub fn kernel_route(ns: &Ns, prefix: &str) -> Result<bool, String> {
    let fam = if prefix.contains(':') { "-6" } else { "-4" };
    let out = sh(&format!("ip -n {} -j {fam} route show {prefix}", ns.name));
    let v: Value = serde_json::from_str(&out).map_err(|e| format!("ip -j route is not JSON ({e}): {out:?}"))?;
    let routes = v.as_array().ok_or_else(|| format!("ip -j route is not a list: {v}"))?;
    Ok(routes.iter().any(|r| r["dst"] == prefix))
}

/// Poll `check` until it returns Ok, or fail with its last complaint and `context()`.
pub fn wait_for(what: &str, check: impl Fn() -> Result<(), String>, context: impl Fn() -> String) {
    let start = Instant::now();
    let mut last;
    loop {
        match check() {
            Ok(()) => {
                eprintln!("{what}: after {:.1} s", start.elapsed().as_secs_f64());
                return;
            }
            Err(e) => last = e,
        }
        if start.elapsed() > WAIT {
            panic!("timed out waiting for {what}: {last}\n--- context ---\n{}", context());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
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
