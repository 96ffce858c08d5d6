//! End to end with real FRR (and BIRD 2) in network namespaces: the lab's ToR runs FRR as the fabric switch
//! (AS 64512 at 192.168.11.2, advertising 172.30.0.0/24 and 2001:db8:99::/64), the plugin's ADD builds the
//! router namespace, FRR and openpe-sidecar run there as in a pod, and a BGP speaker in the host namespace
//! (AS 64515, advertising 172.31.0.0/24 and 2001:db8:88::/64) peers with the router addresses.
//!
//! Every FRR instance has its own pathspace (`-N`), its directories under /etc/frr and /var/run/frr, and is
//! stopped by pid and removed by a guard, even when a test fails. Waiting for convergence uses generous
//! timeouts; nothing asserts on time.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(90);

fn sidecar_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_openpe-sidecar"))
}

fn pid_alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && fs::read_to_string(format!("/proc/{pid}/stat")).map(|s| !s.contains(") Z ")).unwrap_or(false)
}

/// Stop a daemon by pid: SIGTERM, then SIGKILL if it lingers.
fn stop_pid(pid: i32) {
    // SAFETY: kill(2) with a pid this test started; no memory is involved.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while pid_alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if pid_alive(pid) {
        // SAFETY: as above.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        while pid_alive(pid) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// One FRR instance (zebra and bgpd) with its own pathspace, running inside a namespace.
struct Frr {
    name: String,
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
    /// `bgpd_args` adds options, such as `-l ADDR` to listen on one address only.
    fn start(ns: &Ns, tag: &str, config: &str, bgpd_args: &str) -> Frr {
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
        f.start_daemon("bgpd", bgpd_args);
        sh(&format!("vtysh -N {} -b >/dev/null", f.name));
        f
    }

    fn start_daemon(&mut self, daemon: &str, args: &str) {
        let pidfile = self.run().join(format!("{daemon}.pid"));
        let _ = fs::remove_file(&pidfile);
        sh(&format!("ip netns exec {} /usr/lib/frr/{daemon} -N {} -d -F traditional -P 0 {args}", self.ns, self.name));
        let pid: i32 = fs::read_to_string(&pidfile)
            .unwrap_or_else(|e| panic!("{}: {e}", pidfile.display()))
            .trim()
            .parse()
            .unwrap();
        self.pids.push(pid);
    }

    fn pid_of(&self, daemon: &str) -> i32 {
        fs::read_to_string(self.run().join(format!("{daemon}.pid"))).unwrap().trim().parse().unwrap()
    }

    /// Kill bgpd and start it again with no configuration (as after a crash: FRR's integrated configuration
    /// is not reloaded by the daemon itself).
    fn restart_bgpd(&mut self) {
        let pid = self.pid_of("bgpd");
        stop_pid(pid);
        self.pids.retain(|p| *p != pid);
        self.start_daemon("bgpd", "");
    }

    fn vtysh(&self, cmd: &str) -> String {
        sh(&format!("vtysh -N {} -c '{cmd}'", self.name))
    }

    fn json(&self, cmd: &str) -> Value {
        serde_json::from_str(&self.vtysh(cmd)).unwrap_or(Value::Null)
    }

    /// Prefixes in the BGP table of `family` (`ipv4` or `ipv6`).
    fn bgp_prefixes(&self, family: &str) -> Vec<String> {
        self.json(&format!("show bgp {family} unicast json"))["routes"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
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
struct Bird {
    pid: i32,
    dir: TempDir,
}

impl Bird {
    fn start(ns: &Ns, config: &str) -> Bird {
        let dir = TempDir::new("bird");
        let conf = dir.path.join("bird.conf");
        fs::write(&conf, config).unwrap();
        let d = dir.path.display();
        sh(&format!("ip netns exec {} bird -c {d}/bird.conf -s {d}/bird.ctl -P {d}/bird.pid", ns.name));
        let pid = fs::read_to_string(dir.path.join("bird.pid")).unwrap().trim().parse().unwrap();
        Bird { pid, dir }
    }

    fn birdc(&self, cmd: &str) -> String {
        sh(&format!("birdc -s {}/bird.ctl {cmd}", self.dir.path.display()))
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        stop_pid(self.pid);
    }
}

/// openpe-sidecar (watch mode) in the router namespace, its log in a file; killed when dropped.
struct Sidecar {
    child: Child,
    log: PathBuf,
}

impl Sidecar {
    fn start(lab: &Lab, frr: &Frr) -> Sidecar {
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

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn running(&mut self) -> bool {
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
fn wait_for(what: &str, check: impl Fn() -> Result<(), String>, context: impl Fn() -> String) {
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

/// The router's neighbors as `openpe-sidecar status --json` reports them.
fn router_status(frr: &Frr) -> Value {
    let out = Command::new(sidecar_bin()).args(["status", "--json", "--frr-pathspace", &frr.name]).output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

fn established(status: &Value, peers: &[&str]) -> Result<(), String> {
    let neighbors = status["neighbors"].as_array().cloned().unwrap_or_default();
    for p in peers {
        let state = neighbors
            .iter()
            .find(|n| n["address"] == *p)
            .map(|n| n["state"].as_str().unwrap_or("?").to_string())
            .unwrap_or_else(|| "not configured".into());
        if state != "Established" {
            return Err(format!("neighbor {p} is {state}"));
        }
    }
    Ok(())
}

fn kernel_route(ns: &Ns, prefix: &str) -> bool {
    let fam = if prefix.contains(':') { "-6" } else { "-4" };
    let out = sh(&format!("ip -n {} -j {fam} route show {prefix}", ns.name));
    serde_json::from_str::<Value>(&out).ok().and_then(|v| v.as_array().map(|a| !a.is_empty())).unwrap_or(false)
}

/// The fabric switch: FRR, AS 64512 at 192.168.11.2, advertising a prefix of its own per family, with an
/// address inside it on its loopback to answer pings. DEL moves the NIC out of the router namespace before the
/// sidecar can remove the session, so the switch learns that the router is gone from its own next message (a
/// keepalive answered by a reset): a one-second keepalive keeps the wait for withdrawal short.
fn start_tor(lab: &Lab) -> Frr {
    lab.tor.ip("addr add 2001:db8:11::2/64 dev tor-side nodad");
    lab.tor.ip("addr add 172.30.0.1/32 dev lo");
    lab.tor.ip("addr add 2001:db8:99::1/128 dev lo");
    let conf = "\
router bgp 64512
 bgp router-id 192.168.11.2
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 no bgp network import-check
 neighbor 192.168.11.3 remote-as 64514
 neighbor 192.168.11.3 timers connect 2
 neighbor 192.168.11.3 timers 1 3
 address-family ipv4 unicast
  network 172.30.0.0/24
  neighbor 192.168.11.3 activate
 exit-address-family
 address-family ipv6 unicast
  network 2001:db8:99::/64
  neighbor 192.168.11.3 activate
 exit-address-family
exit
";
    Frr::start(&lab.tor, "tor", conf, "")
}

/// The router's FRR starts empty: the sidecar gives it its configuration.
fn start_router(lab: &Lab) -> (Frr, Sidecar) {
    let frr = Frr::start(&lab.router, "rtr", "! configured by openpe-sidecar\n", "");
    let sidecar = Sidecar::start(lab, &frr);
    (frr, sidecar)
}

/// The host's BGP speaker as FRR: `asn`, peering with the router addresses of the families given.
fn start_host_frr(lab: &Lab, asn: u32, router_as: u32, v4: bool, v6: bool) -> Frr {
    let mut c = format!(
        "router bgp {asn}\n bgp router-id 192.169.10.2\n no bgp ebgp-requires-policy\n no bgp default ipv4-unicast\n no bgp network import-check\n"
    );
    if v4 {
        c += &format!(" neighbor 192.169.10.1 remote-as {router_as}\n neighbor 192.169.10.1 timers connect 2\n");
    }
    if v6 {
        c += &format!(" neighbor 2001:db8:10::1 remote-as {router_as}\n neighbor 2001:db8:10::1 timers connect 2\n");
    }
    if v4 {
        c += " address-family ipv4 unicast\n  network 172.31.0.0/24\n  neighbor 192.169.10.1 activate\n exit-address-family\n";
    }
    if v6 {
        c += " address-family ipv6 unicast\n  network 2001:db8:88::/64\n  neighbor 2001:db8:10::1 activate\n exit-address-family\n";
    }
    c += "exit\n";
    lab.host.ip("addr add 172.31.0.1/32 dev lo");
    Frr::start(&lab.host, "host", &c, "")
}

/// Diagnostics for a failed wait: what every party sees.
fn context(lab: &Lab, router: &Frr, tor: &Frr, sidecar: &Sidecar) -> String {
    format!(
        "router status: {}\nrouter running config:\n{}\ntor neighbors:\n{}\nhost routes:\n{}\nsidecar log:\n{}",
        router_status(router),
        router.vtysh("show running-config"),
        tor.vtysh("show bgp summary"),
        sh(&format!("ip -n {} route; ip -n {} -6 route", lab.host.name, lab.host.name)),
        sidecar.log()
    )
}

/// The fabric's prefix is in the host's kernel through the router, and the host's prefix and host address
/// are in the ToR's BGP table.
fn routes_flow(lab: &Lab, tor: &Frr, v4: bool, v6: bool) -> Result<(), String> {
    if v4 {
        if !kernel_route(&lab.host, "172.30.0.0/24") {
            return Err("172.30.0.0/24 (the ToR's) is not in the host's kernel table".into());
        }
        let p = tor.bgp_prefixes("ipv4");
        for want in ["172.31.0.0/24", "192.169.10.2/32"] {
            if !p.iter().any(|x| x == want) {
                return Err(format!("{want} is not at the ToR (it has {p:?})"));
            }
        }
    }
    if v6 {
        if !kernel_route(&lab.host, "2001:db8:99::/64") {
            return Err("2001:db8:99::/64 (the ToR's) is not in the host's kernel table".into());
        }
        let p = tor.bgp_prefixes("ipv6");
        for want in ["2001:db8:88::/64", "2001:db8:10::2/128"] {
            if !p.iter().any(|x| x == want) {
                return Err(format!("{want} is not at the ToR (it has {p:?})"));
            }
        }
    }
    Ok(())
}

/// After DEL: the host's prefix and address are withdrawn from the ToR.
fn withdrawn(tor: &Frr) -> Result<(), String> {
    let p4 = tor.bgp_prefixes("ipv4");
    let p6 = tor.bgp_prefixes("ipv6");
    for gone in ["172.31.0.0/24", "192.169.10.2/32", "2001:db8:88::/64", "2001:db8:10::2/128"] {
        if p4.iter().chain(&p6).any(|x| x == gone) {
            return Err(format!("{gone} is still at the ToR"));
        }
    }
    Ok(())
}

/// The IPv4 underlay and host sessions Established, and routes flowing both ways.
fn ipv4_sessions_and_routes(lab: &Lab, router: &Frr, tor: &Frr, ctx: impl Fn() -> String + Copy) {
    wait_for(
        "every session Established",
        || established(&router_status(router), &["192.168.11.2", "192.169.10.2"]),
        ctx,
    );
    wait_for("routes both ways", || routes_flow(lab, tor, true, false), ctx);
}

#[test]
#[ignore = "needs root"]
fn frr_dual_stack_converges_survives_restart_and_del_add() {
    let lab = Lab::new("bd");
    let conf = lab.conf("1.0.0", json!({}));
    let tor = start_tor(&lab);
    lab.add(&conf);
    let (mut router, mut sidecar) = start_router(&lab);
    let host = start_host_frr(&lab, 64515, 64514, true, true);
    let ctx = || context(&lab, &router, &tor, &sidecar);

    let peers = ["192.168.11.2", "192.169.10.2", "2001:db8:10::2"];
    wait_for("every session Established", || established(&router_status(&router), &peers), ctx);
    wait_for("routes both ways", || routes_flow(&lab, &tor, true, true), ctx);
    lab.host.exec("ping -c 1 -W 5 172.30.0.1");
    lab.host.exec("ping -6 -c 1 -W 5 2001:db8:99::1");
    // The host speaker sees its sessions too.
    let host_summary = host.vtysh("show bgp summary");
    assert!(!host_summary.contains("Active"), "{host_summary}");
    // Each apply is logged with what changed, never the password... there is none here; see the masked test.
    assert!(sidecar.log().contains("changes"), "{}", sidecar.log());

    // FRR restarts (bgpd loses its configuration): the sidecar re-applies it.
    router.restart_bgpd();
    let ctx = || context(&lab, &router, &tor, &sidecar);
    wait_for("sessions after a bgpd restart", || established(&router_status(&router), &peers), ctx);
    assert!(sidecar.log().contains("FRR restarted"), "{}", sidecar.log());
    let bgpd = router.pid_of("bgpd");

    // DEL: the sidecar removes the BGP configuration, the ToR loses the host's prefixes.
    lab.del(&conf);
    wait_for("withdrawal at the ToR after DEL", || withdrawn(&tor), ctx);
    wait_for(
        "no BGP configuration in the router",
        || match router.vtysh("show running-config").contains("router bgp") {
            true => Err("router bgp is still configured".into()),
            false => Ok(()),
        },
        ctx,
    );
    assert!(!kernel_route(&lab.host, "172.30.0.0/24"));

    // ADD again with a second underlay neighbor: a second fabric switch (BIRD, AS 64513) two hops away at
    // 192.168.12.2, behind the ToR, so an ebgp-multihop session. FRR and the sidecar keep running.
    let tor2_ns = Ns::new("bd2");
    lab.tor.ip(&format!("link add t2-link type veth peer name up-link netns {}", tor2_ns.name));
    lab.tor.ip("addr add 192.168.12.1/24 dev t2-link");
    lab.tor.ip("link set t2-link up");
    lab.tor.exec("sysctl -qw net.ipv4.ip_forward=1");
    tor2_ns.ip("addr add 192.168.12.2/24 dev up-link");
    tor2_ns.ip("link set up-link up");
    tor2_ns.ip("route add default via 192.168.12.1");
    let tor2 = Bird::start(
        &tor2_ns,
        "router id 192.168.12.2;\nprotocol device {}\nprotocol static { ipv4; route 172.29.0.0/24 blackhole; }\n\
         protocol bgp fabric2 { local 192.168.12.2 as 64513; neighbor 192.168.11.3 as 64514; multihop;\n\
         connect retry time 2; ipv4 { import all; export where source = RTS_STATIC; }; }\n",
    );
    let conf2 = lab.conf(
        "1.0.0",
        json!({"underlay": {"neighbors": [{"asn": 64512, "address": "192.168.11.2"},
            {"asn": 64513, "address": "192.168.12.2", "ebgpMultiHop": true, "connectTimeSeconds": 2}]}}),
    );
    lab.add(&conf2);
    // The plugin moves the NIC's addresses, not its routes: the route to the second switch is the operator's.
    lab.router.ip("route add 192.168.12.0/24 via 192.168.11.2 dev toswitch");
    let peers2 = ["192.168.11.2", "192.168.12.2", "192.169.10.2", "2001:db8:10::2"];
    let ctx2 = || {
        format!(
            "{}\nrouter routes:\n{}\nsecond switch:\n{}",
            ctx(),
            lab.router.ip("route"),
            tor2.birdc("show protocols all fabric2")
        )
    };
    wait_for("every session after DEL and ADD", || established(&router_status(&router), &peers2), ctx2);
    wait_for("routes both ways after DEL and ADD", || routes_flow(&lab, &tor, true, true), ctx);
    wait_for(
        "the second switch's prefix in the host's kernel",
        || match kernel_route(&lab.host, "172.29.0.0/24") {
            true => Ok(()),
            false => Err(format!("not there; BIRD: {}", tor2.birdc("show protocols"))),
        },
        ctx,
    );
    assert_eq!(router.pid_of("bgpd"), bgpd, "FRR was restarted");
    assert!(sidecar.running(), "the sidecar exited: {}", sidecar.log());
    lab.del(&conf2);
    drop(tor2);
}

#[test]
#[ignore = "needs root"]
fn bird_host_ipv4_converges_and_reconverges_after_del_add() {
    let lab = Lab::new("bb");
    let conf = lab.conf(
        "1.0.0",
        json!({"l3passthrough": {"hostsession": {"localcidr": {"ipv4": "192.169.10.0/24", "ipv6": null}}}}),
    );
    let tor = start_tor(&lab);
    lab.add(&conf);
    let (router, mut sidecar) = start_router(&lab);
    lab.host.ip("addr add 172.31.0.1/32 dev lo");
    let bird = Bird::start(
        &lab.host,
        "router id 192.169.10.2;\nprotocol device {}\n\
         protocol kernel { ipv4 { import none; export where source = RTS_BGP; }; }\n\
         protocol static { ipv4; route 172.31.0.0/24 blackhole; }\n\
         protocol bgp openpe { local as 64515; neighbor 192.169.10.1 as 64514; connect retry time 2;\n\
         ipv4 { import all; export where source = RTS_STATIC; }; }\n",
    );
    let ctx =
        || format!("{}\nbird:\n{}", context(&lab, &router, &tor, &sidecar), bird.birdc("show protocols all openpe"));
    wait_for(
        "every session Established",
        || established(&router_status(&router), &["192.168.11.2", "192.169.10.2"]),
        ctx,
    );
    wait_for("routes both ways", || routes_flow(&lab, &tor, true, false), ctx);
    lab.host.exec("ping -c 1 -W 5 172.30.0.1");
    assert!(bird.birdc("show protocols openpe").contains("Established"));
    let bgpd = router.pid_of("bgpd");
    lab.del(&conf);
    wait_for("withdrawal at the ToR after DEL", || withdrawn(&tor), ctx);

    // DEL then ADD with a changed configuration (timers on the underlay neighbor), FRR and the sidecar
    // running all along: the sidecar converges FRR to it.
    let mut conf2 = conf.clone();
    conf2["underlay"]["neighbors"][0]["holdTimeSeconds"] = json!(9);
    conf2["underlay"]["neighbors"][0]["keepaliveTimeSeconds"] = json!(3);
    lab.add(&conf2);
    wait_for(
        "the changed configuration applied",
        || match router.vtysh("show running-config").contains("neighbor 192.168.11.2 timers 3 9") {
            true => Ok(()),
            false => Err("no timers 3 9 yet".into()),
        },
        ctx,
    );
    wait_for(
        "every session Established after DEL and ADD",
        || established(&router_status(&router), &["192.168.11.2", "192.169.10.2"]),
        ctx,
    );
    wait_for("routes both ways after DEL and ADD", || routes_flow(&lab, &tor, true, false), ctx);
    assert_eq!(router.pid_of("bgpd"), bgpd, "FRR was restarted");
    lab.del(&conf2);
    wait_for("withdrawal at the ToR after the second DEL", || withdrawn(&tor), ctx);
    assert!(sidecar.running(), "the sidecar exited: {}", sidecar.log());
}

/// hostType External, and a host session ASN (hostsession.asn) that differs from the underlay's: the host
/// peers with AS 64600, which the router presents with local-as.
#[test]
#[ignore = "needs root"]
fn frr_host_type_external_with_its_own_session_asn() {
    let lab = Lab::new("be");
    let conf = lab.conf(
        "1.0.0",
        json!({"l3passthrough": {"hostsession": {"asn": 64600, "hostasn": null, "hostType": "External",
            "localcidr": {"ipv4": "192.169.10.0/24", "ipv6": null}}}}),
    );
    let tor = start_tor(&lab);
    lab.add(&conf);
    let (router, sidecar) = start_router(&lab);
    let host = start_host_frr(&lab, 64515, 64600, true, false);
    let ctx = || context(&lab, &router, &tor, &sidecar);
    ipv4_sessions_and_routes(&lab, &router, &tor, ctx);
    // The host sees the router as AS 64600.
    let peer = host.json("show bgp neighbors 192.169.10.1 json");
    assert_eq!(peer["192.169.10.1"]["remoteAs"], 64600, "{peer}");
    lab.del(&conf);
    wait_for("withdrawal at the ToR after DEL", || withdrawn(&tor), ctx);
}

/// An iBGP host: hostasn equal to the underlay ASN.
#[test]
#[ignore = "needs root"]
fn frr_ibgp_host() {
    let lab = Lab::new("bi");
    let conf = lab.conf(
        "1.0.0",
        json!({"l3passthrough": {"hostsession": {"hostasn": 64514,
            "localcidr": {"ipv4": "192.169.10.0/24", "ipv6": null}}}}),
    );
    let tor = start_tor(&lab);
    lab.add(&conf);
    let (router, sidecar) = start_router(&lab);
    // --once applies and exits 0 in the router namespace (the watching sidecar runs too: applying twice is
    // harmless), and fails clearly where no attachment holds the namespace.
    let once = |ns: &Ns| {
        Command::new("ip")
            .args(["netns", "exec", &ns.name])
            .arg(sidecar_bin())
            .arg("--state-dir")
            .arg(&lab.state.path)
            .args(["--frr-pathspace", &router.name, "--once"])
            .output()
            .unwrap()
    };
    let out = once(&lab.router);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(router.vtysh("show running-config").contains("router bgp 64514"));
    let out = once(&lab.tor);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no attachment"), "{}", String::from_utf8_lossy(&out.stderr));
    let host = start_host_frr(&lab, 64514, 64514, true, false);
    let ctx = || context(&lab, &router, &tor, &sidecar);
    ipv4_sessions_and_routes(&lab, &router, &tor, ctx);
    let peer = host.json("show bgp neighbors 192.169.10.1 json");
    assert_eq!(peer["192.169.10.1"]["nbrInternalLink"], true, "{peer}");
    lab.del(&conf);
    wait_for("withdrawal at the ToR after DEL", || withdrawn(&tor), ctx);
}

/// Upstream's current Underlay and L3Passthrough pasted whole into the plugin configuration, as JSON
/// (`netconf/upstream/*.yaml`, copied from upstream as users copy them): ADD, `openpe-sidecar --once` applies the
/// configuration, every session comes up with the sample's timers (its `ebgpMultiHop` TTL of 1 is FRR's single-hop
/// default), routes flow, and DEL
/// withdraws the host's routes from the fabric.
#[test]
#[ignore = "needs root"]
fn upstream_sample_pasted_whole_converges() {
    let lab = Lab::new("bu");
    let mut conf = lab.conf("1.0.0", json!({}));
    for (key, file) in [("underlay", "underlay.yaml"), ("l3passthrough", "l3passthrough.yaml")] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("netconf/upstream").join(file);
        conf[key] = serde_norway::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    }
    assert_eq!(conf["underlay"]["spec"]["interfaces"][0]["networkDevice"]["interfaceName"], "toswitch");
    let tor = start_tor(&lab);
    lab.add(&conf);
    let router = Frr::start(&lab.router, "rtr", "! configured by openpe-sidecar --once\n", "");
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.router.name])
        .arg(sidecar_bin())
        .arg("--state-dir")
        .arg(&lab.state.path)
        .args(["--frr-pathspace", &router.name, "--once"])
        .output()
        .unwrap();
    assert!(out.status.success(), "openpe-sidecar --once: {}", String::from_utf8_lossy(&out.stderr));
    let running = router.vtysh("show running-config");
    for line in [" neighbor 192.168.11.2 remote-as 64512\n", " neighbor 192.168.11.2 timers 3 9\n"] {
        assert!(running.contains(line), "{line:?} is not in FRR's running configuration:\n{running}");
    }
    // TTL 1 is FRR's single-hop default: not rendered, and not in the running configuration either.
    assert!(!running.contains("ebgp-multihop"), "{running}");
    let _host = start_host_frr(&lab, 64515, 64514, true, true);
    let ctx = || {
        format!(
            "router status: {}\nrouter running config:\n{}\ntor neighbors:\n{}",
            router_status(&router),
            router.vtysh("show running-config"),
            tor.vtysh("show bgp summary")
        )
    };
    let peers = ["192.168.11.2", "192.169.10.2", "2001:db8:10::2"];
    wait_for("every session of the upstream sample Established", || established(&router_status(&router), &peers), ctx);
    wait_for("routes both ways", || routes_flow(&lab, &tor, true, true), ctx);
    let tor_side = router.json("show bgp neighbors 192.168.11.2 json");
    assert_eq!(tor_side["192.168.11.2"]["bgpTimerConfiguredHoldTimeMsecs"], 9000, "{tor_side}");
    assert_eq!(tor_side["192.168.11.2"]["bgpTimerConfiguredKeepAliveIntervalMsecs"], 3000, "{tor_side}");
    lab.del(&conf);
    assert!(lab.host.has_link("toswitch"), "DEL moves the NIC back to the host");
    wait_for("withdrawal at the ToR after DEL", || withdrawn(&tor), ctx);
}
