//! CNIDevice end to end (issue 14): the underlay interface is made by the reference `macvlan` plugin
//! (/usr/lib/cni/macvlan) on the lab's host NIC `toswitch` (a veth to the ToR, in the test's host namespace),
//! with `static` IPAM. ADD gives the router `net1` with its address and the MAC from `runtimeConfig`; BGP to the
//! ToR (FRR) over it is Established; CHECK passes, then fails after damage; DEL removes `net1` and leaves the
//! host as it was, also when the router namespace is gone. With the `fault-injection` feature, ADD and DEL are
//! killed around the delegation and the next DEL cleans up.

#[path = "common/bgp.rs"]
mod bgp;
mod common;

use bgp::*;
use common::*;
use serde_json::{json, Value};

const NET1: &str = "192.168.11.5/24";
const MAC: &str = "02:0e:9e:00:00:05";

fn conf(lab: &Lab) -> Value {
    let conflist = json!({
        "cniVersion": "1.0.0",
        "name": "underlay-macvlan",
        "plugins": [{
            "type": "macvlan",
            "master": "toswitch",
            "mode": "bridge",
            "capabilities": {"mac": true},
            "ipam": {"type": "static", "addresses": [{"address": NET1}]}
        }]
    });
    let mut c = lab.conf(
        "1.0.0",
        json!({"underlay": {"nics": null, "interfaces": [{"type": "CNIDevice", "cniDevice": {
            "type": "RawConfig", "rawConfig": conflist, "interfaceName": "net1",
            "runtimeConfig": {"mac": MAC, "portMappings": [{"hostPort": 1, "containerPort": 1}]}}}]}}),
    );
    c["underlay"]["nics"] = Value::Null;
    c
}

fn link_json(ns: &Ns, dev: &str) -> Value {
    let out = ns.ip(&format!("-d -j link show dev {dev}"));
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("ip -j link is not JSON ({e}): {out}"));
    v[0].clone()
}

fn records(lab: &Lab) -> usize {
    std::fs::read_dir(lab.state.path.join("attachments"))
        .map(|d| d.flatten().filter(|e| !e.file_name().to_string_lossy().starts_with('.')).count())
        .unwrap_or(0)
}

#[test]
#[ignore = "needs root"]
fn macvlan_underlay_add_bgp_check_del() {
    let lab = Lab::new("dlg");
    let conf = conf(&lab);
    let before = lab.snapshot();

    let result = lab.add(&conf);
    // The router has net1 with the static address and the MAC of runtimeConfig (a capability macvlan declares).
    assert_eq!(addrs(&lab.router, "net1"), [NET1]);
    let net1 = link_json(&lab.router, "net1");
    assert_eq!(net1["address"], MAC, "{net1}");
    assert_eq!(net1["linkinfo"]["info_kind"], "macvlan", "{net1}");
    assert!(lab.host.has_link("toswitch"), "the master stays in the host namespace");
    // The result carries the delegate's interface and address.
    let ifaces = result["interfaces"].as_array().unwrap();
    let at = ifaces.iter().position(|i| i["name"] == "net1").unwrap_or_else(|| panic!("no net1 in {result}"));
    assert_eq!(ifaces[at]["mac"], MAC);
    assert_eq!(ifaces[at]["sandbox"], lab.router.path_str());
    let ips = result["ips"].as_array().unwrap();
    assert!(ips.iter().any(|ip| ip["address"] == NET1 && ip["interface"] == at), "{result}");

    // BGP to the ToR over net1.
    let tor_conf = "router bgp 64512\n bgp router-id 192.168.11.2\n no bgp ebgp-requires-policy\n \
        neighbor 192.168.11.5 remote-as 64514\n neighbor 192.168.11.5 timers connect 2\n \
        neighbor 192.168.11.5 timers 1 3\nexit\n";
    let tor = Frr::start(&lab.tor, "tor", tor_conf);
    let (router, sidecar) = start_router(&lab, FrrOptions::default(), &[]);
    wait_for(
        "the ToR session over net1 Established",
        || router.established(&["192.168.11.2"]),
        || format!("tor:\n{}\nsidecar:\n{}", tor.vtysh("show bgp summary"), sidecar.log()),
    );

    // CHECK passes, and fails once the delegated interface lost its address.
    let mut check = conf.clone();
    check["prevResult"] = result.clone();
    lab.run("CHECK", &check, &[]).ok();
    lab.router.ip(&format!("addr del {NET1} dev net1"));
    let e = lab.run("CHECK", &check, &[]).err(100, "the delegated plugin \"macvlan\" (CHECK of \"net1\"");
    assert!(e["msg"].as_str().unwrap().contains("192.168.11.5"), "{e}");

    drop(sidecar);
    drop(router);
    lab.del(&conf);
    assert!(!lab.router.has_link("net1"), "DEL removes net1");
    assert_eq!(records(&lab), 0);
    assert_eq!(lab.snapshot(), before, "the host, router and ToR are as before ADD");
}

/// The router namespace is gone before DEL: the delegate's DEL still runs (with an empty CNI_NETNS), and
/// everything else is cleaned up.
#[test]
#[ignore = "needs root"]
fn del_after_the_router_namespace_is_gone() {
    let lab = Lab::new("dlgn");
    let conf = conf(&lab);
    let host_before = snapshot(&lab.host.name);
    lab.add(&conf);
    assert!(lab.router.has_link("net1"));
    sh(&format!("ip netns del {}", lab.router.name));
    lab.del(&conf);
    assert_eq!(records(&lab), 0);
    assert_eq!(snapshot(&lab.host.name), host_before, "the host is as before ADD");
}

/// A delegate that fails during ADD (a master that does not exist) rolls ADD back completely.
#[test]
#[ignore = "needs root"]
fn a_failing_delegate_rolls_add_back() {
    let lab = Lab::new("dlgf");
    let mut conf = conf(&lab);
    conf["underlay"]["interfaces"][0]["cniDevice"]["rawConfig"]["plugins"][0]["master"] = json!("nosuchnic");
    let before = lab.snapshot();
    lab.run("ADD", &conf, &[]).err(100, "the delegated plugin \"macvlan\" (ADD of \"net1\" in the router) failed");
    assert_eq!(lab.snapshot(), before, "the failed ADD left something behind");
    assert_eq!(records(&lab), 0);
    // A plugin that is not in CNI_PATH is refused before anything changes.
    conf["underlay"]["interfaces"][0]["cniDevice"]["rawConfig"]["plugins"][0]["type"] = json!("nosuchplugin");
    lab.run("ADD", &conf, &[]).err(7, "underlay.interfaces[0].cniDevice.rawConfig.plugins[0].type: there is no plugin");
    assert_eq!(lab.snapshot(), before);
}

/// A delegated "plugin" of type `hang`, first on CNI_PATH: a shell script that appends its pid to the file
/// `$PIDS` (the id of its process group too: the plugin starts each delegate as a group leader) and runs `body`
/// (a `case` on $CNI_COMMAND), where `pass` hands the configuration on stdin to macvlan and prints its reply.
struct Script {
    dir: TempDir,
}

impl Script {
    fn new(body: &str) -> Script {
        let s = Script { dir: TempDir::new("dlgsh") };
        s.set(body);
        s
    }

    fn set(&self, body: &str) {
        use std::os::unix::fs::PermissionsExt;
        let pids = self.dir.path.join("pids");
        let text = format!(
            "#!/bin/sh\nPIDS={}\necho $$ >> \"$PIDS\"\nconf=$(cat)\n\
             pass() {{ printf '%s' \"$conf\" | /usr/lib/cni/macvlan; }}\n{body}\n",
            pids.display()
        );
        // Written aside and renamed: a running copy of the old script is never rewritten under it.
        let tmp = self.dir.path.join(".hang");
        std::fs::write(&tmp, text).unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::rename(&tmp, self.dir.path.join("hang")).unwrap();
    }

    fn cni_path(&self) -> String {
        format!("{}:/usr/lib/cni", self.dir.path.display())
    }

    /// Every pid the script recorded: its own runs' and their background children's.
    fn pids(&self) -> Vec<i32> {
        let text = std::fs::read_to_string(self.dir.path.join("pids")).unwrap_or_default();
        text.lines().map(|l| l.parse().unwrap_or_else(|e| panic!("pid {l:?} in the pids file: {e}"))).collect()
    }
}

/// Whatever of the script still runs when a test ends, failed or not, is killed: processes whose pid or group
/// is one the script recorded and whose command line is the script's or its `sleep` (a pid reused by another
/// process is left alone).
impl Drop for Script {
    fn drop(&mut self) {
        let pids = self.pids();
        for (pid, _, pgrp) in processes() {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let ours = String::from_utf8_lossy(&cmdline).contains(&*self.dir.path.to_string_lossy())
                || cmdline.starts_with(b"sleep\x00100000\x00");
            if ours && (pids.contains(&pid) || pids.contains(&pgrp)) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            }
        }
    }
}

/// `verb` with the script on `cni_path` fails with `code`, naming delegateTimeoutSeconds (1 s), after at least
/// that long and not much more.
fn times_out(lab: &Lab, verb: &str, conf: &Value, cni_path: &str, code: u64) -> Outcome {
    let t = std::time::Instant::now();
    let out = lab.run(verb, conf, &[("CNI_PATH", cni_path)]);
    let took = t.elapsed();
    eprintln!("{verb} with a delegate that does not finish, delegateTimeoutSeconds 1: {:.3} s", took.as_secs_f64());
    out.err(
        code,
        &format!(
            "the delegated plugin \"hang\" ({verb} of \"net1\" in the router) did not finish within 1 s \
             (delegateTimeoutSeconds); it was killed"
        ),
    );
    assert!(took >= std::time::Duration::from_secs(1), "{verb} failed before the timeout: {took:?}");
    assert!(took < std::time::Duration::from_secs(10), "{verb} took {took:?} with a 1 s timeout");
    out
}

/// (pid, state, process group) of every process, from /proc/PID/stat; a process that ends while it is read is
/// left out, a line that cannot be parsed fails the test.
fn processes() -> Vec<(i32, char, i32)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        let stat = match std::fs::read_to_string(e.path().join("stat")) {
            Ok(s) => s,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) if err.raw_os_error() == Some(libc::ESRCH) => continue,
            Err(err) => panic!("reading /proc/{pid}/stat: {err}"),
        };
        // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after the last ')'.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_else(|| panic!("/proc/{pid}/stat: {stat:?}"));
        let f: Vec<&str> = rest.split_whitespace().collect();
        let state = f.first().and_then(|s| s.chars().next()).unwrap_or_else(|| panic!("/proc/{pid}/stat: {stat:?}"));
        let pgrp = f.get(2).and_then(|g| g.parse().ok()).unwrap_or_else(|| panic!("/proc/{pid}/stat: {stat:?}"));
        out.push((pid, state, pgrp));
    }
    out
}

/// Wait until nothing the script started runs: none of its recorded pids, no process in the group of any of
/// its runs. A zombie (state Z) runs nothing and holds no pipe; it counts as gone (it waits for its reaper).
fn wait_until_gone(script: &Script) {
    let pids = script.pids();
    assert!(!pids.is_empty(), "the script never ran");
    wait_for(
        "every process of the delegated script gone",
        || {
            let left: Vec<(i32, char, i32)> = processes()
                .into_iter()
                .filter(|(pid, state, pgrp)| *state != 'Z' && (pids.contains(pid) || pids.contains(pgrp)))
                .collect();
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!("still running (pid, state, group): {left:?}"))
            }
        },
        || sh("ps -eo pid,pgid,stat,args"),
    );
}

/// The lab's macvlan configuration with the script as its plugin and a one-second delegateTimeoutSeconds.
fn hang_conf(lab: &Lab) -> Value {
    let mut c = conf(lab);
    c["underlay"]["interfaces"][0]["cniDevice"]["rawConfig"]["plugins"][0]["type"] = json!("hang");
    c["delegateTimeoutSeconds"] = json!(1);
    c
}

/// ADD with the script fails after delegateTimeoutSeconds (1 s) naming it, with code 11 (try again later);
/// the rollback (the script's DEL hands on to macvlan) leaves host, router and ToR as before and no record;
/// nothing the script started still runs; ADD with a working configuration then succeeds. Returns the pids the
/// script recorded.
fn add_times_out(tag: &str, body: &str) -> Vec<i32> {
    let lab = Lab::new(tag);
    let script = Script::new(body);
    let before = lab.snapshot();
    let out = times_out(&lab, "ADD", &hang_conf(&lab), &script.cni_path(), 11);
    assert!(out.stderr.contains("undoing it"), "the rollback ran: {}", out.stderr);
    assert_eq!(records(&lab), 0, "the failed ADD left its record");
    assert_eq!(lab.snapshot(), before, "the failed ADD left something behind\n{}", diff(&before, &lab.snapshot()));
    wait_until_gone(&script);

    let conf = conf(&lab);
    lab.add(&conf);
    assert_eq!(addrs(&lab.router, "net1"), [NET1]);
    lab.del(&conf);
    assert_eq!(lab.snapshot(), before);
    script.pids()
}

/// A delegate that makes net1 (macvlan) and then never finishes its ADD: killed with the child it waits for.
#[test]
#[ignore = "needs root"]
fn a_delegate_that_hangs_in_add_is_killed_and_add_rolled_back() {
    let pids = add_times_out("dlgh", "case $CNI_COMMAND in ADD) pass >/dev/null; sleep 100000;; *) pass;; esac");
    assert_eq!(pids.len(), 2, "one run for ADD, one for the rollback's DEL: {pids:?}");
}

/// A delegate that leaves a background child holding its stdout and stderr, prints macvlan's result and exits
/// 0. Its run is done when it has exited *and* its output is closed (as a runtime waits for it): the child may
/// still be writing. So ADD fails at the timeout, and the child, in the plugin's process group, is killed.
#[test]
#[ignore = "needs root"]
fn a_delegate_whose_child_keeps_its_stdout_open_is_killed_with_the_child() {
    let pids =
        add_times_out("dlgc", "case $CNI_COMMAND in ADD) sleep 100000 & echo $! >> \"$PIDS\"; pass;; *) pass;; esac");
    assert_eq!(pids.len(), 3, "ADD's run, its background child, the rollback's DEL run: {pids:?}");
}

/// A delegate whose DEL and CHECK never finish: each fails after the timeout naming it (CHECK among its drift,
/// code 100; DEL with code 11, the record kept for the next DEL), and nothing of the script runs on; once the
/// script works again, DEL removes everything. Its ADD first writes 1 MiB to stderr: output is read while the
/// plugin runs, so a chatty plugin does not block on a full pipe.
#[test]
#[ignore = "needs root"]
fn a_delegate_that_hangs_in_del_or_check_fails_them_and_del_can_be_retried() {
    let lab = Lab::new("dlgw");
    let script = Script::new("case $CNI_COMMAND in ADD) head -c 1048576 /dev/zero >&2; pass;; *) sleep 100000;; esac");
    let path = script.cni_path();
    let conf = hang_conf(&lab);
    let before = lab.snapshot();
    let result = lab.run("ADD", &conf, &[("CNI_PATH", &path)]).ok().json();
    assert_eq!(addrs(&lab.router, "net1"), [NET1]);

    let mut check = conf.clone();
    check["prevResult"] = result;
    times_out(&lab, "CHECK", &check, &path, 100);
    times_out(&lab, "DEL", &conf, &path, 11);
    assert_eq!(records(&lab), 1, "the record stays for the next DEL");
    assert!(lab.router.has_link("net1"), "the delegate's DEL never ran to its end");
    wait_until_gone(&script);

    script.set("pass");
    lab.run("DEL", &conf, &[("CNI_PATH", &path)]).ok();
    assert_eq!(records(&lab), 0);
    assert_eq!(lab.snapshot(), before, "{}", diff(&before, &lab.snapshot()));
}

#[cfg(feature = "fault-injection")]
const ADD_POINTS: [&str; 3] = ["delegate:before-add", "delegate:plugin-added", "delegate:result-recorded"];
#[cfg(feature = "fault-injection")]
const DEL_POINTS: [&str; 3] = ["delegate:before-del", "delegate:plugin-deleted", "del:claims-released"];

/// ADD killed around the delegation: DEL cleans up everything (net1 included), and ADD works again.
#[cfg(feature = "fault-injection")]
#[test]
#[ignore = "needs root"]
fn add_killed_around_the_delegation_is_cleaned_up_by_del() {
    let lab = Lab::new("dlgk");
    let conf = conf(&lab);
    let before = lab.snapshot();
    for point in ADD_POINTS {
        let out = lab.run("ADD", &conf, &[("OPENPE_FAULT_POINT", point)]);
        assert_eq!(out.code, -1, "{point}: ADD was not killed: {}", out.stdout);
        assert_eq!(records(&lab), 1, "{point}: the record stays for DEL");
        if point != "delegate:before-add" {
            assert!(lab.router.has_link("net1"), "{point}: the delegate had made net1");
        }
        lab.del(&conf);
        assert_eq!(records(&lab), 0, "{point}");
        assert_eq!(lab.snapshot(), before, "{point}: DEL left something behind");
        lab.add(&conf);
        assert_eq!(addrs(&lab.router, "net1"), [NET1], "{point}");
        lab.del(&conf);
        assert_eq!(lab.snapshot(), before, "{point}");
    }
}

/// DEL killed around the delegation: the next DEL finishes the job.
#[cfg(feature = "fault-injection")]
#[test]
#[ignore = "needs root"]
fn del_killed_around_the_delegation_is_finished_by_the_next_del() {
    let lab = Lab::new("dlgd");
    let conf = conf(&lab);
    let before = lab.snapshot();
    for point in DEL_POINTS {
        lab.add(&conf);
        let out = lab.run("DEL", &conf, &[("OPENPE_FAULT_POINT", point)]);
        assert_eq!(out.code, -1, "{point}: DEL was not killed");
        assert_eq!(records(&lab), 1, "{point}: the record stays for the next DEL");
        lab.del(&conf);
        assert_eq!(records(&lab), 0, "{point}");
        assert_eq!(lab.snapshot(), before, "{point}: the second DEL left something behind");
    }
}

/// ADD killed at each of its fault points in turn (every kernel change and state write, and the delegation's
/// own points), until it completes: each time DEL restores everything.
#[cfg(feature = "fault-injection")]
#[test]
#[ignore = "needs root"]
fn add_killed_at_every_fault_point_with_delegation() {
    let lab = Lab::new("dlge");
    let conf = conf(&lab);
    let before = lab.snapshot();
    let mut n = 1;
    loop {
        let out = lab.run("ADD", &conf, &[("OPENPE_FAULT_AFTER", &n.to_string())]);
        if out.code == 0 {
            break;
        }
        assert_eq!(out.code, -1, "point {n}: ADD failed instead of dying: {}", out.stdout);
        lab.del(&conf);
        assert_eq!(records(&lab), 0, "point {n}");
        assert_eq!(lab.snapshot(), before, "point {n}: DEL left something behind");
        n += 1;
    }
    assert!(n > 5, "ADD passed only {n} fault points");
    assert_eq!(addrs(&lab.router, "net1"), [NET1]);
    lab.del(&conf);
    assert_eq!(lab.snapshot(), before);
}
