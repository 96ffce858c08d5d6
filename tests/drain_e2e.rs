//! Down without a black hole (issue 18), end to end with real FRR and GoBGP in network namespaces: DEL asks the
//! sidecar serving the router namespace to close the attachment's BGP sessions before the NIC leaves,
//! `openpe-sidecar drain` and SIGTERM do the same for a router pod going away, and DEL never waits for a
//! sidecar that is not there.
//!
//! The lab is tests/bgp_e2e.rs's, from tests/common (the ToR runs FRR as the fabric switch, AS 64512 at
//! 192.168.11.2, with FRR's own timers; the router namespace runs FRR configured by openpe-sidecar; the host
//! namespace runs FRR or GoBGP, AS 64515). Every daemon has its own pathspace or directory and is stopped by pid
//! by a guard, even when a test fails. Waiting uses generous timeouts; the few time bounds asserted are loose
//! (the tight numbers are in scripts/bench-drain.sh).

#[path = "common/bgp.rs"]
mod bgp;
mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bgp::*;
use common::*;
use serde_json::{json, Value};

/// Put an L2 hop between the node's NIC and the ToR, as a patch panel or an L2 leaf does: the NIC's peer
/// `tor-side` moves into a bridge namespace, and the ToR gets a port `tor-port` on the same bridge (with the
/// ToR's IPv4 address; [`start_tor`] adds the IPv6 one), so the NIC leaving (carrier loss on `tor-side`) never
/// reaches the ToR. Returns the bridge namespace.
fn l2_hop(lab: &Lab) -> Ns {
    let b = Ns::new("br");
    lab.tor.ip(&format!("link set tor-side netns {}", b.name));
    b.batch(&format!(
        "link add br0 type bridge\nlink set br0 up\nlink set tor-side master br0 up\n\
         link add b-tor type veth peer name tor-port netns {}\nlink set b-tor master br0 up\n",
        lab.tor.name
    ));
    lab.tor.batch("link set tor-port up\naddr add 192.168.11.2/24 dev tor-port\n");
    b
}

/// The fabric switch of tests/common/bgp.rs with FRR's own timers (a one-second keepalive would tell the ToR
/// that the router is gone without a NOTIFICATION); `global` goes into its `router bgp` block. Behind the L2
/// hop of [`l2_hop`].
fn start_tor(lab: &Lab, global: &str) -> Frr {
    Tor { port: "tor-port", global, fast_timers: false, ..TOR }.start(&lab.tor)
}

const HOST_PREFIXES: [&str; 4] = ["172.31.0.0/24", "192.169.10.2/32", "2001:db8:88::/64", "2001:db8:10::2/128"];

/// Which of the host's prefixes the ToR has in its BGP table (stale ones included).
fn host_prefixes_at(tor: &Frr) -> Result<Vec<String>, String> {
    let mut have = tor.bgp_prefixes("ipv4")?;
    have.extend(tor.bgp_prefixes("ipv6")?);
    Ok(HOST_PREFIXES.iter().filter(|p| have.iter().any(|h| h == *p)).map(|p| p.to_string()).collect())
}

fn all_at_tor(tor: &Frr) -> Result<(), String> {
    match host_prefixes_at(tor)? {
        h if h.len() == HOST_PREFIXES.len() => Ok(()),
        h => Err(format!("the ToR has only {h:?} of the host's prefixes")),
    }
}

fn none_at_tor(tor: &Frr) -> Result<(), String> {
    match host_prefixes_at(tor)? {
        h if h.is_empty() => Ok(()),
        h => Err(format!("the ToR still has {h:?}")),
    }
}

/// The ToR's last reset of the router's session was a NOTIFICATION it received: Cease, Administrative Shutdown.
fn tor_got_cease(tor: &Frr, peer: &str) -> Result<(), String> {
    let n = tor.neighbor(peer)?;
    let due = n["lastResetDueTo"].as_str().unwrap_or("(none)");
    let reason = n["lastNotificationReason"].as_str().unwrap_or("(none)");
    if due == "BGP Notification received" && reason == "Cease/Administrative Shutdown" {
        Ok(())
    } else {
        Err(format!("{peer}: last reset due to {due:?}, last notification {reason:?}: {n}"))
    }
}

fn notifications_received(frr: &Frr, peer: &str) -> u64 {
    let n = frr.neighbor(peer).unwrap();
    n["messageStats"]["notificationsRecv"].as_u64().unwrap_or_else(|| panic!("no notificationsRecv for {peer}: {n}"))
}

/// Everything set up, sessions Established, the host's prefixes at the ToR.
struct Running {
    lab: Lab,
    tor: Frr,
    router: Frr,
    host: Frr,
    sidecar: Sidecar,
    conf: Value,
    _extra: Option<TempDir>,
    _bridge: Ns,
}

const ROUTER_PEERS: [&str; 3] = ["192.168.11.2", "192.169.10.2", "2001:db8:10::2"];

impl Running {
    /// `gr`: graceful restart on the ToR, the router (through --frr-extra) and the host.
    fn start(tag: &str, gr: bool, conf_extra: Value) -> Running {
        let lab = Lab::new(tag);
        let bridge = l2_hop(&lab);
        let gr_line = if gr { " bgp graceful-restart\n" } else { "" };
        let tor = start_tor(&lab, gr_line);
        let conf = lab.conf("1.0.0", conf_extra);
        lab.add(&conf);
        let extra = gr.then(|| {
            let d = TempDir::new("extra");
            fs::write(d.path.join("extra.conf"), "router bgp 64514\n bgp graceful-restart\nexit\n").unwrap();
            d
        });
        let extra_arg = extra.as_ref().map(|d| d.path.join("extra.conf").display().to_string());
        let args: Vec<&str> = extra_arg.iter().flat_map(|e| ["--frr-extra", e.as_str()]).collect();
        let (router, sidecar) = start_router(&lab, FrrOptions::default(), &args);
        let host = HostFrr { global: gr_line, ..HOST_FRR }.start(&lab);
        let r = Running { lab, tor, router, host, sidecar, conf, _extra: extra, _bridge: bridge };
        let ctx = || r.context();
        wait_for("every router session Established", || r.router.established(&ROUTER_PEERS), ctx);
        wait_for("the host's prefixes at the ToR", || all_at_tor(&r.tor), ctx);
        r
    }

    fn context(&self) -> String {
        format!(
            "router neighbors:\n{}\nrouter running config:\n{}\ntor:\n{}\nsidecar log:\n{}",
            self.router.vtysh("show bgp summary"),
            self.router.vtysh("show running-config"),
            self.tor.vtysh("show bgp summary"),
            self.sidecar.log()
        )
    }

    fn del(&self, over: &[(&str, &str)]) -> (Outcome, Duration) {
        let t = Instant::now();
        let out = self.lab.run("DEL", &self.conf, over);
        (out, t.elapsed())
    }

    fn drain_cli(&self) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", &self.lab.router.name])
            .arg(sidecar_bin())
            .args(["drain", "--frr-pathspace", &self.router.name, "--state-dir"])
            .arg(&self.lab.state.path)
            .args(["--timeout", "5"])
            .output()
            .unwrap()
    }
}

/// The sidecar's presence file is locked by someone (flock(1) cannot take it).
fn presence_held(state: &Path) -> Result<(), String> {
    let dir = state.join("sidecars");
    let alive: Vec<PathBuf> = fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "alive"))
        .collect();
    match alive.as_slice() {
        [one] if !sh_ok(&format!("flock -n -s {} true", one.display())) => Ok(()),
        [one] => Err(format!("nobody holds {}", one.display())),
        other => Err(format!("expected one presence file, found {other:?}")),
    }
}

#[test]
#[ignore = "needs root"]
fn del_sends_a_cease_to_every_neighbor_before_the_nic_leaves() {
    let r = Running::start("dc", false, json!({}));
    let host_notes: Vec<(&str, u64)> =
        ["192.169.10.1", "2001:db8:10::1"].into_iter().map(|p| (p, notifications_received(&r.host, p))).collect();
    let (out, took) = r.del(&[]);
    out.ok();
    eprintln!("DEL with a serving sidecar took {:.3} s", took.as_secs_f64());
    // A Cease the ToR received, not the interface going down (which is what it sees when the NIC leaves
    // first: its own veth loses carrier) nor a hold timer.
    let ctx = || r.context();
    tor_got_cease(&r.tor, "192.168.11.3").unwrap_or_else(|e| panic!("{e}\n{}", ctx()));
    // The host speaker got one on each family's session (its last reset is the veth going away, which
    // follows; the count of NOTIFICATIONs received tells).
    for (peer, before) in host_notes {
        let after = notifications_received(&r.host, peer);
        assert!(after > before, "host: no NOTIFICATION on {peer} ({before} before DEL, {after} after)\n{}", ctx());
    }
    assert!(r.sidecar.log().contains("is going away: shut down its BGP neighbors"), "{}", r.sidecar.log());
    // DEL waited for the acknowledgement (it logs a warning when it gives up waiting).
    assert!(!out.stderr.contains("did not confirm"), "{}", out.stderr);
    wait_within("the host's prefixes withdrawn at the ToR", Duration::from_secs(5), || none_at_tor(&r.tor), ctx);
    assert!(r.lab.state_files().iter().all(|f| f.starts_with("sidecars/")), "{:?}", r.lab.state_files());
    assert!(r.lab.host.has_link("toswitch"), "the NIC is home");
}

#[test]
#[ignore = "needs root"]
fn with_graceful_restart_the_tor_keeps_no_stale_routes_after_del() {
    let r = Running::start("dg", true, json!({}));
    let ctx = || r.context();
    let caps = &r.tor.neighbor("192.168.11.3").unwrap()["neighborCapabilities"];
    assert_eq!(caps["gracefulRestart"], "advertisedAndReceived", "graceful restart negotiated: {caps}");
    r.del(&[]).0.ok();
    // Without the drain the ToR would keep them, stale, for the restart time (120 s).
    wait_within("no host prefix at the ToR, stale or not", Duration::from_secs(5), || none_at_tor(&r.tor), ctx);
    tor_got_cease(&r.tor, "192.168.11.3").unwrap_or_else(|e| panic!("{e}\n{}", ctx()));
}

#[test]
#[ignore = "needs root"]
fn drain_and_sigterm_close_the_sessions() {
    let mut r = Running::start("dd", false, json!({}));
    let ctx = || r.context();
    let out = r.drain_cli();
    assert!(out.status.success(), "drain failed: {}", String::from_utf8_lossy(&out.stderr));
    // It returns once FRR reports every neighbor down.
    for p in ROUTER_PEERS {
        assert_eq!(r.router.state(p), Ok(Some("Idle".into())), "{p} after drain");
    }
    tor_got_cease(&r.tor, "192.168.11.3").unwrap_or_else(|e| panic!("after drain: {e}\n{}", ctx()));
    wait_within("withdrawal at the ToR after drain", Duration::from_secs(5), || none_at_tor(&r.tor), ctx);

    // A new sidecar (as after a container restart) applies the configuration afresh, without the shutdowns.
    let resets = r.tor.neighbor("192.168.11.3").unwrap()["connectionsDropped"].as_u64().expect("connectionsDropped");
    let old = std::mem::replace(&mut r.sidecar, Sidecar::start(&r.lab, &r.router, &[]));
    drop(old);
    let ctx = || r.context();
    wait_for("every router session Established again", || r.router.established(&ROUTER_PEERS), ctx);
    wait_for("the host's prefixes at the ToR again", || all_at_tor(&r.tor), ctx);
    wait_for("the new sidecar's presence", || presence_held(&r.lab.state.path), ctx);

    r.sidecar.signal(libc::SIGTERM);
    let status = r.sidecar.wait();
    let ctx = || r.context();
    assert!(status.success(), "the sidecar's exit on SIGTERM: {status}\n{}", r.sidecar.log());
    assert!(r.sidecar.log().contains("SIGTERM: closing the BGP sessions"), "{}", r.sidecar.log());
    let n = r.tor.neighbor("192.168.11.3").unwrap();
    assert!(n["connectionsDropped"].as_u64().unwrap() > resets, "the session was reset again: {n}");
    tor_got_cease(&r.tor, "192.168.11.3").unwrap_or_else(|e| panic!("after SIGTERM: {e}\n{}", ctx()));
    wait_within("withdrawal at the ToR after SIGTERM", Duration::from_secs(5), || none_at_tor(&r.tor), ctx);
    assert!(presence_held(&r.lab.state.path).is_err(), "the sidecar that exited holds nothing");
    r.del(&[]).0.ok();
}

/// Without FRR: the handshake alone. A killed sidecar holds no lock, so DEL does not wait; a stopped one holds
/// it and never answers, so DEL waits for drainTimeoutSeconds and then goes on.
#[test]
#[ignore = "needs root"]
fn del_does_not_wait_for_a_killed_sidecar_and_waits_at_most_the_timeout_for_a_silent_one() {
    let lab = Lab::new("dk");
    let conf = lab.conf("1.0.0", json!({"drainTimeoutSeconds": 10}));
    let ctx = || lab.snapshot();

    lab.add(&conf);
    let sidecar = Sidecar::start_pathspace(&lab, "nofrr", &[]);
    wait_for("the sidecar's presence", || presence_held(&lab.state.path), ctx);
    sidecar.signal(libc::SIGKILL);
    sidecar.wait();
    let t = Instant::now();
    lab.run("DEL", &conf, &[]).ok();
    let took = t.elapsed();
    eprintln!("DEL after the sidecar was killed: {:.3} s", took.as_secs_f64());
    assert!(took < Duration::from_secs(2), "DEL waited {took:?} for a dead sidecar (timeout 10 s)");
    assert!(lab.host.has_link("toswitch"));

    let conf1 = lab.conf("1.0.0", json!({"drainTimeoutSeconds": 1}));
    lab.add(&conf1);
    let sidecar = Sidecar::start_pathspace(&lab, "nofrr", &[]);
    wait_for("the second sidecar's presence", || presence_held(&lab.state.path), || sidecar.log());
    sidecar.signal(libc::SIGSTOP);
    let t = Instant::now();
    let out = lab.run("DEL", &conf1, &[]);
    let took = t.elapsed();
    sidecar.signal(libc::SIGCONT);
    out.ok();
    eprintln!("DEL with a stopped sidecar, drainTimeoutSeconds 1: {:.3} s", took.as_secs_f64());
    assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(4), "DEL took {took:?}");
    assert!(lab.host.has_link("toswitch"));
    assert!(lab.state_files().iter().all(|f| f.starts_with("sidecars/")), "{:?}", lab.state_files());
}

/// A tmpfs mounted over a directory, unmounted (and the directory removed) when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        let _ = fs::remove_dir_all(&self.path);
    }
}

#[test]
#[ignore = "needs root"]
fn del_on_a_full_state_directory_skips_the_drain_and_succeeds() {
    let dir = TempDir::new("dfst");
    sh(&format!("mount -t tmpfs -o size=256k,mode=0700 openpe-test {}", dir.path.display()));
    let _mount = Tmpfs { path: dir.path.clone() };
    let lab = Lab::with_state("df", dir);
    let before = snapshot(&lab.host.name);
    // A node index given, not allocated: releasing an allocated index rewrites index.hint, which a full disk
    // refuses (issue 10 makes that best effort too).
    let conf = lab.conf("1.0.0", json!({"nodeIndex": 5}));
    lab.add(&conf);
    let sidecar = Sidecar::start_pathspace(&lab, "nofrr", &[]);
    wait_for("the sidecar's presence", || presence_held(&lab.state.path), || sidecar.log());
    // Fill it.
    let filled = Command::new("dd")
        .arg("if=/dev/zero")
        .arg(format!("of={}", lab.state.path.join("filler").display()))
        .args(["bs=4k", "status=none"])
        .status()
        .unwrap();
    assert!(!filled.success(), "dd stops at ENOSPC");
    let probe = fs::write(lab.state.path.join("probe"), [0u8; 4096]);
    assert!(probe.is_err(), "the state directory is full");
    let out = lab.run("DEL", &conf, &[]);
    out.ok();
    assert!(out.stderr.contains("cannot mark attachment"), "DEL says it skipped the drain: {}", out.stderr);
    assert!(!sidecar.log().contains("is going away"), "{}", sidecar.log());
    assert_eq!(snapshot(&lab.host.name), before, "the host namespace is as before ADD");
    let left: Vec<String> = lab
        .state_files()
        .into_iter()
        .filter(|f| !f.starts_with("sidecars/") && f != "filler" && f != "probe")
        .collect();
    assert!(left.is_empty(), "{left:?}");
    drop(sidecar);
    drop(lab);
}

/// GoBGP as the host speaker through DEL/ADD cycles 6 s apart (longer than GoBGP's 5 s idle hold after a
/// session ends): with the host session closed by DEL, GoBGP takes the router's next connection as soon as
/// the router's FRR has the neighbor again, instead of refusing it and idling (6.5 to 10 s without the drain).
/// What is asserted is the part the drain decides, from the neighbor appearing in the router's FRR to
/// Established, loosely; ADD returned to Established also includes the sidecar's apply (issue 17), and is
/// printed.
#[test]
#[ignore = "needs root"]
fn gobgp_host_reestablishes_quickly_through_del_add_cycles() {
    let lab = Lab::new("dgo");
    let conf = lab.conf(
        "1.0.0",
        json!({"l3passthrough": {"hostsession": {"localcidr": {"ipv4": "192.169.10.0/24", "ipv6": null}}}}),
    );
    let (router, sidecar) = start_router(&lab, FrrOptions::default(), &[]);
    let gobgp = start_host_gobgp(&lab);
    let ctx = || {
        format!("router:\n{}\nsidecar:\n{}\ngobgpd:\n{}", router.vtysh("show bgp summary"), sidecar.log(), gobgp.log())
    };
    wait_for(
        "the sidecar's first apply",
        || match sidecar.log().contains("applied the configuration for no attachment") {
            true => Ok(()),
            false => Err("not yet".into()),
        },
        ctx,
    );
    let mut times = Vec::new();
    // Cycle 0 is the warm-up: GoBGP, started before any router exists, may be idling after its own failed
    // connects when the router first calls (that is not what DEL decides). Cycles 1 to 4 follow a DEL each.
    for cycle in 0..5 {
        lab.add(&conf);
        let t0 = Instant::now();
        wait_within(
            &format!("cycle {cycle}: the host neighbor in the router's FRR"),
            Duration::from_secs(30),
            || router.neighbor("192.169.10.2").map(|_| ()),
            ctx,
        );
        let configured = t0.elapsed();
        wait_within(
            &format!("cycle {cycle}: the GoBGP session Established"),
            Duration::from_secs(30),
            || router.established(&["192.169.10.2"]),
            ctx,
        );
        let up = t0.elapsed();
        eprintln!(
            "cycle {cycle}: ADD returned -> Established {:.3} s (configured in FRR after {:.3} s)",
            up.as_secs_f64(),
            configured.as_secs_f64()
        );
        times.push((up, up - configured));
        lab.del(&conf);
        std::thread::sleep(Duration::from_secs(6));
    }
    // GoBGP sometimes sits Idle for a while after a session ends whatever the router does (its log then says
    // "Closed an accepted connection ... BGP_FSM_IDLE"), and the router calls again only after its connect
    // timer (5 s today; issue 17 shortens it). Without the drain every cycle is refused at least once (6 s or
    // more, measured with drainTimeoutSeconds 0); with it most cycles connect at the router's first attempt.
    let quick = times.iter().skip(1).filter(|(_, t)| *t <= Duration::from_secs(3)).count();
    assert!(quick >= 3, "configured -> Established within 3 s in only {quick} of 4 cycles: {times:?}\n{}", ctx());
    for (i, (_, t)) in times.iter().enumerate().skip(1) {
        assert!(*t <= Duration::from_secs(8), "cycle {i}: configured -> Established took {t:?}\n{}", ctx());
    }
}

/// drainTimeoutSeconds is validated like every other field, before anything changes.
#[test]
fn a_bad_drain_timeout_is_refused_naming_the_field() {
    for bad in [json!(-1), json!("2"), json!(3601), json!(1.5)] {
        let conf = json!({"cniVersion": "1.0.0", "name": "openpe", "type": "openpe-passthrough",
            "stateDir": "/nonexistent/openpe-drain-test", "drainTimeoutSeconds": bad});
        let out = run_plugin(
            "DEL",
            &[("CNI_CONTAINERID", "c"), ("CNI_NETNS", "/nonexistent"), ("CNI_IFNAME", "net1")],
            &conf.to_string(),
        );
        let v = out.err(7, "drainTimeoutSeconds");
        assert!(v["msg"].as_str().unwrap().starts_with("drainTimeoutSeconds: "), "the message names the field: {v}");
        assert!(!Path::new("/nonexistent/openpe-drain-test").exists());
    }
}
