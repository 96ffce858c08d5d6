//! `passwordSecret` end to end (issue 14): the lab's ToR (FRR) requires a TCP-MD5 password on its session with
//! the router; the router's neighbor names a Secret, mounted in a secrets directory the way the kubelet mounts
//! one (`KEY -> ..data/KEY`, `..data -> ..TIMESTAMP`). While the file is missing the sidecar leaves the neighbor
//! out and says why (log and `status --http`); once it appears the session comes up without a restart. The
//! password appears nowhere in the state directory, the plugin's and the sidecar's logs, `inspect` or `status`.

#[path = "common/bgp.rs"]
mod bgp;
mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use bgp::*;
use common::*;
use serde_json::{json, Value};

const PASSWORD: &str = "Md5-0f-the-T0R";
const TOR: &str = "192.168.11.2";
const LISTEN: &str = "127.0.0.1:9480";

/// The ToR of tests/common/bgp.rs, requiring a TCP-MD5 password from the router.
fn start_tor_with_password(lab: &Lab) -> Frr {
    Tor { neighbor: &format!(" neighbor 192.168.11.3 password {PASSWORD}\n"), ..bgp::TOR }.start(&lab.tor)
}

/// Mount a Secret as the kubelet does: the files in `..VERSION`, `..data` swapped to it atomically, and one
/// `KEY -> ..data/KEY` symlink per key.
fn mount_secret(dir: &Path, name: &str, version: &str, files: &[(&str, &str)]) {
    let secret = dir.join(name);
    let real = secret.join(format!("..{version}"));
    fs::create_dir_all(&real).unwrap();
    for (k, v) in files {
        fs::write(real.join(k), v).unwrap();
    }
    let tmp = secret.join("..data_tmp");
    symlink(format!("..{version}"), &tmp).unwrap();
    fs::rename(&tmp, secret.join("..data")).unwrap();
    for (k, _) in files {
        let link = secret.join(k);
        if link.symlink_metadata().is_err() {
            symlink(format!("..data/{k}"), link).unwrap();
        }
    }
}

/// `openpe-sidecar status --http` in the router namespace (text, or JSON).
fn status(lab: &Lab, router: &Frr, json: bool) -> String {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &lab.router.name]).arg(sidecar_bin());
    cmd.args(["status", "--frr-pathspace", &router.name, "--http", LISTEN]);
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().expect("run openpe-sidecar status");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// The state the running sidecar reports for the session with `peer`.
fn reported_state(lab: &Lab, router: &Frr, peer: &str) -> Result<String, String> {
    let text = status(lab, router, true);
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("status --json is not JSON ({e}): {text}"))?;
    let sessions = v["sidecar"]["sessions"].as_array().ok_or_else(|| format!("no sidecar sessions: {text}"))?;
    let s = sessions.iter().find(|s| s["peer"] == peer).ok_or_else(|| format!("no session {peer}: {text}"))?;
    s["state"].as_str().map(str::to_string).ok_or_else(|| format!("session {peer} has no state: {text}"))
}

#[test]
#[ignore = "needs root"]
fn password_secret_from_a_mounted_secret_authenticates_the_session() {
    let lab = Lab::new("pws");
    let secrets = TempDir::new("pwsec");
    let logs = TempDir::new("pwslog");
    let plugin_log = logs.path.join("plugin.log");
    let conf = lab.conf(
        "1.0.0",
        json!({"logLevel": "debug", "logFile": plugin_log.display().to_string(),
               "underlay": {"neighbors": [{"asn": 64512, "address": TOR,
                   "passwordSecret": {"name": "tor-md5", "key": "md5"}}]}}),
    );
    lab.add(&conf);
    let tor = start_tor_with_password(&lab);
    let secrets_dir = secrets.path.display().to_string();
    let (router, sidecar) =
        start_router(&lab, FrrOptions::default(), &["--secrets-dir", &secrets_dir, "--http-listen", LISTEN]);
    let ctx = || {
        format!(
            "router config:\n{}\ntor:\n{}\nsidecar log:\n{}",
            router.vtysh("show running-config"),
            tor.vtysh("show bgp summary"),
            sidecar.log()
        )
    };

    // 1. The file is missing: the host sessions are configured, the ToR's neighbor is not, and both the log and
    // status say why.
    wait_for(
        "the configuration applied without the ToR's neighbor",
        || {
            let config = router.vtysh("show running-config");
            match (config.contains("neighbor 192.169.10.2 remote-as"), config.contains(&format!("neighbor {TOR}"))) {
                (true, false) => Ok(()),
                (host, tor) => Err(format!("host session configured: {host}, ToR neighbor configured: {tor}")),
            }
        },
        ctx,
    );
    let why = format!("passwordSecret tor-md5/md5: {secrets_dir}/tor-md5/md5 does not exist");
    let log = sidecar.log();
    let told: Vec<&str> = log.lines().filter(|l| l.contains("leaving BGP neighbor 192.168.11.2 out")).collect();
    assert!(matches!(&told[..], [one] if one.contains(&why)), "the log says why, once: {log}");
    let state = wait_for(
        "status showing the neighbor left out",
        || reported_state(&lab, &router, TOR).and_then(|s| if s.starts_with("left out") { Ok(s) } else { Err(s) }),
        ctx,
    );
    assert_eq!(
        state,
        format!("left out: {why} (mount the Secret \"tor-md5\" at {secrets_dir}/tor-md5 with the key \"md5\")")
    );

    // 2. The Secret appears (as the kubelet mounts it, with a trailing newline): the session comes up, same
    // sidecar process.
    let pid = sidecar.pid();
    mount_secret(&secrets.path, "tor-md5", "2026_12_01_10_00_00.1", &[("md5", &format!("{PASSWORD}\n"))]);
    wait_for(
        "the ToR session Established with the password",
        || match router.state(TOR)? {
            Some(s) if s == "Established" => Ok(()),
            other => Err(format!("the session is {other:?}")),
        },
        ctx,
    );
    assert!(sidecar.running(), "the sidecar exited: {}", sidecar.log());
    assert_eq!(sidecar.pid(), pid);
    wait_for(
        "status showing the session Established",
        || reported_state(&lab, &router, TOR).and_then(|s| if s == "Established" { Ok(()) } else { Err(s) }),
        ctx,
    );
    assert!(
        sidecar.log().contains("BGP neighbor 192.168.11.2: its passwordSecret can be read now"),
        "{}",
        sidecar.log()
    );

    // 3. The password is nowhere but in FRR's own configuration.
    let inspect = |json: bool| {
        let mut cmd = Command::new(plugin_bin());
        cmd.arg("inspect").args(["--state-dir", &lab.state.path.display().to_string()]);
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let inspect_json = inspect(true);
    assert!(inspect_json.contains("\"passwordSecret\""), "inspect shows the reference: {inspect_json}");
    let mut seen: Vec<(String, String)> = vec![
        ("inspect".into(), inspect(false)),
        ("inspect --json".into(), inspect_json),
        ("status".into(), status(&lab, &router, false)),
        ("status --json".into(), status(&lab, &router, true)),
        ("sidecar log".into(), sidecar.log()),
        ("plugin log".into(), fs::read_to_string(&plugin_log).unwrap()),
    ];
    for f in walk(&lab.state.path) {
        seen.push((f.display().to_string(), String::from_utf8_lossy(&fs::read(&f).unwrap()).into_owned()));
    }
    assert!(seen.len() > 6, "the state directory has files");
    for (what, text) in &seen {
        assert!(!text.contains(PASSWORD), "{what} shows the password:\n{text}");
    }
    let frr_conf = fs::read_to_string(format!("/etc/frr/{}/frr.conf", router.name)).unwrap();
    assert!(frr_conf.contains(&format!("neighbor {TOR} password {PASSWORD}")), "FRR is given it: {frr_conf}");

    // 4. The Secret is updated to a value that is not a password: the neighbor is left out again.
    mount_secret(&secrets.path, "tor-md5", "2026_12_01_10_05_00.2", &[("md5", "two words\n")]);
    wait_for(
        "the neighbor left out after an invalid update",
        || match router.state(TOR)? {
            None => Ok(()),
            other => Err(format!("the neighbor is still there: {other:?}")),
        },
        ctx,
    );
    assert!(sidecar.log().contains("must be 1 to 80 printable ASCII characters"), "{}", sidecar.log());
    assert!(!sidecar.log().contains("two words"), "the log quotes the invalid value");

    drop(sidecar);
    lab.del(&conf);
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.is_file() {
            out.push(p);
        }
    }
    out
}
