//! The FRR and BIRD lab parts of tests/bgp_e2e.rs for other root-only tests (tests/metrics.rs): FRR instances
//! with their own pathspace, BIRD with its own control socket, openpe-sidecar in the router namespace, each
//! stopped by pid and cleaned up by a guard even when a test fails. Include with
//! `#[path = "common/bgp.rs"] mod bgp;` next to `mod common;`.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{read_pid, sh, unique, Lab, Ns, TempDir};

pub const WAIT: Duration = Duration::from_secs(90);

pub fn sidecar_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_openpe-sidecar"))
}

pub fn pid_alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && fs::read_to_string(format!("/proc/{pid}/stat")).map(|s| !s.contains(") Z ")).unwrap_or(false)
}

/// Stop a daemon by pid: SIGTERM, then SIGKILL if it lingers.
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
}

impl Frr {
    fn etc(&self) -> PathBuf {
        PathBuf::from(format!("/etc/frr/{}", self.name))
    }
    fn run(&self) -> PathBuf {
        PathBuf::from(format!("/var/run/frr/{}", self.name))
    }

    /// Start zebra and bgpd in `ns` with `config` as the integrated configuration (loaded with `vtysh -b`).
    pub fn start(ns: &Ns, tag: &str, config: &str) -> Frr {
        let mut f = Frr { name: unique(tag), ns: ns.name.clone(), pids: Vec::new() };
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
        f.start_daemon("bgpd", "");
        sh(&format!("vtysh -N {} -b >/dev/null", f.name));
        f
    }

    fn start_daemon(&mut self, daemon: &str, args: &str) {
        let pidfile = self.run().join(format!("{daemon}.pid"));
        let _ = fs::remove_file(&pidfile);
        sh(&format!("ip netns exec {} /usr/lib/frr/{daemon} -N {} -d -F traditional -P 0 {args}", self.ns, self.name));
        let pid = read_pid(&pidfile);
        self.pids.push(pid);
    }

    pub fn pid_of(&self, daemon: &str) -> i32 {
        read_pid(&self.run().join(format!("{daemon}.pid")))
    }

    /// Stop one daemon (its BGP peers see the session close).
    pub fn stop_daemon(&mut self, daemon: &str) {
        let pid = self.pid_of(daemon);
        stop_pid(pid);
        self.pids.retain(|p| *p != pid);
    }

    pub fn vtysh(&self, cmd: &str) -> String {
        sh(&format!("vtysh -N {} -c '{cmd}'", self.name))
    }

    /// The JSON of a vtysh command; panics on output that is not JSON.
    pub fn json(&self, cmd: &str) -> Value {
        let out = self.vtysh(cmd);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("vtysh -c {cmd:?} is not JSON ({e}): {out}"))
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

/// BIRD 2 in a namespace, with its own control socket; stopped by pid.
pub struct Bird {
    pid: i32,
    dir: TempDir,
}

impl Bird {
    pub fn start(ns: &Ns, config: &str) -> Bird {
        let dir = TempDir::new("bird");
        fs::write(dir.path.join("bird.conf"), config).unwrap();
        let d = dir.path.display();
        sh(&format!("ip netns exec {} bird -c {d}/bird.conf -s {d}/bird.ctl -P {d}/bird.pid", ns.name));
        let pid = read_pid(&dir.path.join("bird.pid"));
        Bird { pid, dir }
    }

    pub fn birdc(&self, cmd: &str) -> String {
        sh(&format!("birdc -s {}/bird.ctl {cmd}", self.dir.path.display()))
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        stop_pid(self.pid);
    }
}

/// openpe-sidecar (watch mode) in the router namespace with extra arguments, its log in a file; killed when
/// dropped.
pub struct Sidecar {
    child: Child,
    log: PathBuf,
}

impl Sidecar {
    pub fn start(lab: &Lab, frr: &Frr, args: &[&str]) -> Sidecar {
        let log = lab.state.path.with_extension("sidecar.log");
        let child = Command::new("ip")
            .args(["netns", "exec", &lab.router.name])
            .arg(sidecar_bin())
            .arg("--state-dir")
            .arg(&lab.state.path)
            .args(["--frr-pathspace", &frr.name, "--log-level", "debug"])
            .args(args)
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

    pub fn pid(&self) -> u32 {
        self.child.id()
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

/// Poll `check` until it returns Ok, or fail with its last complaint and `context()`.
pub fn wait_for<T>(what: &str, check: impl Fn() -> Result<T, String>, context: impl Fn() -> String) -> T {
    let start = Instant::now();
    let mut last;
    loop {
        match check() {
            Ok(v) => {
                eprintln!("{what}: after {:.1} s", start.elapsed().as_secs_f64());
                return v;
            }
            Err(e) => last = e,
        }
        if start.elapsed() > WAIT {
            panic!("timed out waiting for {what}: {last}\n--- context ---\n{}", context());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The fabric switch of tests/bgp_e2e.rs: FRR, AS 64512 at 192.168.11.2 (2001:db8:11::2), advertising
/// 172.30.0.0/24 and 2001:db8:99::/64 to the router (192.168.11.3), with a one-second keepalive.
pub fn start_tor(lab: &Lab) -> Frr {
    start_tor_with(lab, &[], "")
}

/// As [`start_tor`], with more daemons (such as `bfdd`) and more lines for the router's neighbor (such as
/// ` neighbor 192.168.11.3 bfd\n`).
pub fn start_tor_with(lab: &Lab, daemons: &[&str], neighbor_lines: &str) -> Frr {
    lab.tor.ip("addr add 2001:db8:11::2/64 dev tor-side nodad");
    let conf = format!(
        "\
router bgp 64512
 bgp router-id 192.168.11.2
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 no bgp network import-check
 neighbor 192.168.11.3 remote-as 64514
 neighbor 192.168.11.3 timers connect 2
 neighbor 192.168.11.3 timers 1 3
{neighbor_lines} address-family ipv4 unicast
  network 172.30.0.0/24
  neighbor 192.168.11.3 activate
 exit-address-family
 address-family ipv6 unicast
  network 2001:db8:99::/64
  neighbor 192.168.11.3 activate
 exit-address-family
exit
"
    );
    Frr::start_with(&lab.tor, "tor", &conf, daemons, "")
}

/// Makes the lab's uplink unnumbered: no IPv4 and no global IPv6 address on either side (IPv6 link-local only),
/// and without the host's IPv6 route through the ToR, whose gateway is then unreachable (DEL could not restore
/// it). Call before the ADD.
pub fn unnumbered_uplink(lab: &Lab) {
    lab.host.ip("addr flush dev toswitch scope global");
    lab.host.ip("-6 route del 2001:db8:99::/64");
    lab.tor.ip("addr flush dev tor-side scope global");
}

/// The ToR of an [`unnumbered_uplink`]: FRR, AS 64512, `neighbor tor-side interface remote-as external` with a
/// one-second keepalive, advertising 172.30.0.0/24 in IPv4 (with IPv6 next hops).
pub fn start_unnumbered_tor(lab: &Lab) -> Frr {
    let conf = "\
router bgp 64512
 bgp router-id 172.30.0.1
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 no bgp network import-check
 neighbor tor-side interface remote-as external
 neighbor tor-side timers 1 3
 neighbor tor-side timers connect 1
 address-family ipv4 unicast
  network 172.30.0.0/24
  neighbor tor-side activate
 exit-address-family
exit
";
    Frr::start(&lab.tor, "tor", conf)
}

/// The host's speaker as BIRD 2, AS 64515, one session per family with the router addresses (192.169.10.1,
/// 2001:db8:10::1), advertising 172.31.0.0/24 and 2001:db8:88::/64.
pub fn start_host_bird(lab: &Lab) -> Bird {
    Bird::start(
        &lab.host,
        "router id 192.169.10.2;\nprotocol device {}\n\
         protocol static { ipv4; route 172.31.0.0/24 blackhole; }\n\
         protocol static { ipv6; route 2001:db8:88::/64 blackhole; }\n\
         protocol bgp openpe4 { local as 64515; neighbor 192.169.10.1 as 64514; connect retry time 2;\n\
         ipv4 { import all; export where source = RTS_STATIC; }; }\n\
         protocol bgp openpe6 { local as 64515; neighbor 2001:db8:10::1 as 64514; connect retry time 2;\n\
         ipv6 { import all; export where source = RTS_STATIC; }; }\n",
    )
}

impl Frr {
    /// As [`Frr::start`], with more daemons after bgpd (such as `bfdd`) and extra zebra options (such as `-K 120`,
    /// which keeps kernel routes across a restart).
    pub fn start_with(ns: &Ns, tag: &str, config: &str, daemons: &[&str], zebra_args: &str) -> Frr {
        let mut f = Frr { name: unique(tag), ns: ns.name.clone(), pids: Vec::new() };
        let etc = f.etc();
        fs::create_dir_all(&etc).unwrap();
        fs::create_dir_all(f.run()).unwrap();
        fs::write(etc.join("vtysh.conf"), "service integrated-vtysh-config\n").unwrap();
        let listed: String = daemons.iter().map(|d| format!("{d}=yes\n")).collect();
        fs::write(etc.join("daemons"), format!("bgpd=yes\n{listed}")).unwrap();
        fs::write(etc.join("frr.conf"), config).unwrap();
        sh(&format!(
            "chown -R frr:frr {e} {r} && chmod 0750 {e} && chmod 0640 {e}/*",
            e = etc.display(),
            r = f.run().display()
        ));
        f.start_daemon("zebra", &format!("-s 90000000 {zebra_args}"));
        f.start_daemon("bgpd", "");
        for d in daemons {
            f.start_daemon(d, "");
        }
        sh(&format!("vtysh -N {} -b >/dev/null", f.name));
        f
    }

    /// SIGKILL one daemon (no NOTIFICATION, no clean-up: a crash) and start it again without configuration.
    pub fn kill_and_restart(&mut self, daemon: &str) {
        let pid = self.pid_of(daemon);
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        while pid_alive(pid) {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.pids.retain(|p| *p != pid);
        self.start_daemon(daemon, "");
    }

    /// One neighbor of `show bgp neighbors NAME json` (an address or an interface name); Err while FRR does not
    /// list it.
    pub fn neighbor(&self, name: &str) -> Result<Value, String> {
        let v = self.json(&format!("show bgp neighbors {name} json"));
        match v.get(name) {
            Some(n) if n.get("bgpState").is_some() => Ok(n.clone()),
            _ => Err(format!("FRR {} does not list neighbor {name}: {v}", self.name)),
        }
    }

    /// Ok when neighbor `name` is Established.
    pub fn established(&self, name: &str) -> Result<(), String> {
        let n = self.neighbor(name)?;
        match n["bgpState"].as_str() {
            Some("Established") => Ok(()),
            Some(other) => Err(format!("{} sees neighbor {name} {other}", self.name)),
            None => Err(format!("{} gives neighbor {name} a state that is not text: {n}", self.name)),
        }
    }
}

/// The host's speaker as BIRD 2 for IPv4 only (AS 64515, the router at 192.169.10.1), advertising
/// 172.31.0.0/24 and installing what it learns in the host's kernel, so that the host can reach the fabric.
/// After a session error it retries within seconds (BIRD's default wait is a minute or more).
pub fn start_host_bird_v4_kernel(lab: &Lab) -> Bird {
    start_host_bird_v4_kernel_with(lab, "")
}

/// As [`start_host_bird_v4_kernel`], with `options` added to the BGP protocol (such as `graceful restart on;`).
pub fn start_host_bird_v4_kernel_with(lab: &Lab, options: &str) -> Bird {
    Bird::start(
        &lab.host,
        &format!(
            "router id 192.169.10.2;\nprotocol device {{}}\n\
             protocol static {{ ipv4; route 172.31.0.0/24 blackhole; }}\n\
             protocol kernel {{ ipv4 {{ import none; export where source = RTS_BGP; }}; }}\n\
             protocol bgp openpe4 {{ local as 64515; neighbor 192.169.10.1 as 64514; connect retry time 2;\n\
             connect delay time 1; error wait time 1, 4; {options}\n\
             ipv4 {{ import all; export where source = RTS_STATIC; }}; }}\n"
        ),
    )
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

/// Whether `ns`'s kernel has a route for exactly `prefix`. Output that is not `ip -j`'s JSON list fails.
pub fn has_route(ns: &Ns, prefix: &str) -> bool {
    let fam = if prefix.contains(':') { "-6" } else { "-4" };
    let out = sh(&format!("ip -n {} -j {fam} route show {prefix}", ns.name));
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("ip -j route is not JSON ({e}): {out}"));
    !v.as_array().unwrap_or_else(|| panic!("ip -j route is not a list: {out}")).is_empty()
}
