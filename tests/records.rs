//! Records that survive: namespace identity by cookie (a reused nsfs inode is told apart), the record format
//! released at 4ee7cb2 checked and deleted by this release, DEL and rollback on a full state directory, GC's
//! four answers, `inspect` with a corrupt record or an empty directory, and attachments found whatever
//! CNI_IFNAME says (podman's network reload).

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::{json, Value};

fn inspect(state: &Path, as_json: bool) -> (bool, String, String) {
    let mut args = vec!["inspect", "--state-dir", state.to_str().unwrap()];
    if as_json {
        args.push("--json");
    }
    let out = Command::new(plugin_bin()).args(&args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The ALIVE column of the table row of `container` (rows are whitespace-separated; the last column is
/// `yes`, `no` or `no (earlier boot)`). A missing row is a failure.
fn alive_of(table: &str, container: &str) -> String {
    let line = table
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(container))
        .unwrap_or_else(|| panic!("no row for {container} in\n{table}"));
    let last = line.split_whitespace().last().unwrap();
    match last {
        "yes" | "no" => last.to_string(),
        "boot)" => "no (earlier boot)".to_string(),
        other => panic!("cannot read the ALIVE column {other:?} of {line:?}"),
    }
}

fn ino(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().ino()
}

fn sidecar_once(ns: &str, state: &Path, frr_conf: &Path) -> std::process::Output {
    Command::new("ip")
        .args(["netns", "exec", ns, env!("CARGO_BIN_EXE_openpe-sidecar"), "--once", "--state-dir"])
        .arg(state)
        .args(["--frr-pathspace", "openpe-no-such-frr", "--frr-config"])
        .arg(frr_conf)
        .output()
        .unwrap()
}

/// A namespace at a fixed name, deleted when dropped.
struct Named(String);

impl Drop for Named {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).stderr(std::process::Stdio::null()).status();
    }
}

/// The kernel hands a dead router namespace's inode to a new one at the same path. Identity by cookie tells
/// them apart: `inspect` calls the old attachment dead, the sidecar in the new namespace does not configure
/// FRR for it, ADD into the new namespace succeeds, and DEL of the old attachment leaves the new one intact.
#[test]
#[ignore = "needs root"]
fn a_reused_namespace_inode_is_not_the_dead_attachment() {
    let a = Lab::new("reua");
    let b = Lab::new("reub");
    let state = a.state.path.clone();
    let conf_a = a.conf("1.0.0", json!({"nodeIndex": 1}));
    let conf_b = b.conf("1.0.0", json!({"nodeIndex": 2, "stateDir": state.display().to_string()}));
    a.add(&conf_a);
    let name = a.router.name.clone();
    let path = a.router.path();
    let old_ino = ino(&path);
    // Delete the router namespace and create one again at the same path until it gets the same inode.
    let _again = Named(name.clone());
    let mut reused = false;
    for cycle in 1..=500 {
        sh(&format!("ip netns del {name}"));
        std::thread::sleep(std::time::Duration::from_millis(5));
        sh(&format!("ip netns add {name}"));
        if ino(&path) == old_ino {
            eprintln!("inode {old_ino} handed out again after {cycle} cycle(s)");
            reused = true;
            break;
        }
    }
    assert!(reused, "the kernel never handed out inode {old_ino} again in 500 cycles");
    sh(&format!("ip -n {name} link set lo up"));

    let (ok, table, err) = inspect(&state, false);
    assert!(ok, "{err}");
    assert_eq!(alive_of(&table, &a.container), "no", "the dead attachment is dead:\n{table}");

    let frr_conf = a.state.path.with_extension("frr.conf");
    let _rm = Cleanup(frr_conf.clone());
    let out = sidecar_once(&name, &state, &frr_conf);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no attachment in state directory"), "{stderr}");
    assert!(!frr_conf.exists(), "the sidecar configured FRR for the dead attachment");

    // ADD into the new namespace (B's host and NIC) is not refused by the dead attachment's claim.
    let env_b = [("CNI_NETNS", path.to_str().unwrap())];
    b.run("ADD", &conf_b, &env_b).ok();
    let (_, table, _) = inspect(&state, false);
    assert_eq!(alive_of(&table, &a.container), "no", "{table}");
    assert_eq!(alive_of(&table, &b.container), "yes", "{table}");

    // The sidecar in the new namespace configures B (node index 2: router id 10.0.0.3), not A (10.0.0.2).
    let out = sidecar_once(&name, &state, &frr_conf);
    let written = std::fs::read_to_string(&frr_conf)
        .unwrap_or_else(|e| panic!("no FRR configuration written ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    assert!(written.contains(" bgp router-id 10.0.0.3\n"), "{written}");
    assert!(!written.contains("10.0.0.2"), "{written}");

    // DEL of the dead attachment, with its old CNI_NETNS (now the new namespace), leaves B alone.
    a.del(&conf_a);
    assert!(sh_ok(&format!("ip -n {name} link show dev pt-ns")), "DEL of the dead attachment removed B's veth");
    let prev = json!({"cniVersion": "1.0.0", "interfaces": [], "ips": []});
    let mut check_b = conf_b.clone();
    check_b["prevResult"] = prev;
    b.run("CHECK", &check_b, &env_b).ok();
    let (_, table, _) = inspect(&state, false);
    assert!(!table.contains(&a.container), "A's record is gone:\n{table}");
    b.run("DEL", &conf_b, &env_b).ok();
    assert!(files_under(&state).is_empty(), "{:?}", files_under(&state));
    assert!(b.host.has_link("toswitch"), "B's NIC is home");
}

/// Removes a file when dropped.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

const GOLDEN_V1: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden-state/v1");

/// This run's values for the golden template's placeholders.
struct Fill<'a> {
    router: &'a Path,
    host: &'a Path,
    dev: u64,
    router_ino: u64,
    host_ino: u64,
    mac: &'a str,
}

impl<'a> Fill<'a> {
    fn of(router: &'a Path, host: &'a Path, mac: &'a str) -> Fill<'a> {
        use std::os::unix::fs::MetadataExt;
        let (rm, hm) = (std::fs::metadata(router).unwrap(), std::fs::metadata(host).unwrap());
        assert_eq!(rm.dev(), hm.dev());
        Fill { router, host, dev: rm.dev(), router_ino: rm.ino(), host_ino: hm.ino(), mac }
    }
}

/// Copy the golden template into `state`, its placeholders filled for this lab.
fn install_golden_v1(state: &Path, f: &Fill) {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let fill = |s: &str| {
        s.replace("@ROUTER_NETNS@", f.router.to_str().unwrap())
            .replace("@HOST_NETNS@", f.host.to_str().unwrap())
            .replace("@NSFS_DEV@", &f.dev.to_string())
            .replace("@ROUTER_INO@", &f.router_ino.to_string())
            .replace("@HOST_INO@", &f.host_ino.to_string())
            .replace("@BOOT_ID@", boot.trim())
            .replace("@NIC_MAC@", f.mac)
    };
    std::fs::create_dir_all(state).unwrap();
    std::fs::set_permissions(state, std::fs::Permissions::from_mode(0o700)).unwrap();
    for sub in ["attachments", "index", "netns", "hostns"] {
        let d = state.join(sub);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
        for e in std::fs::read_dir(Path::new(GOLDEN_V1).join(sub)).unwrap().flatten() {
            let text = std::fs::read_to_string(e.path()).unwrap();
            let name = fill(&e.file_name().to_string_lossy());
            std::fs::write(d.join(name), fill(&text)).unwrap();
        }
    }
    std::fs::write(
        state.join("boot_id"),
        fill(&std::fs::read_to_string(Path::new(GOLDEN_V1).join("boot_id")).unwrap()),
    )
    .unwrap();
}

fn mac_of(ns: &Ns, dev: &str) -> String {
    let v: Value = serde_json::from_str(&ns.ip(&format!("-j link show dev {dev}"))).unwrap();
    v[0]["address"].as_str().unwrap().to_string()
}

/// The released plugin's record (format 1) and claims, with the kernel state that release built (see
/// tests/golden-state/v1/kernel-after-add.txt): this release lists it, CHECKs it (under another CNI_IFNAME
/// too), and DELs it exactly: NIC home with its addresses and routes, veth gone, no record or claim left.
#[test]
#[ignore = "needs root"]
fn the_released_format_1_state_checks_and_deletes_exactly() {
    let lab = Lab::new("gold");
    let before = lab.snapshot();
    let (h, r) = (&lab.host, &lab.router);
    let mac = mac_of(h, "toswitch");
    // What 4ee7cb2's ADD left in the kernel.
    h.ip(&format!("link add pt-host type veth peer name pt-ns netns {}", r.name));
    let ends =
        [(h, "pt-host", "192.169.10.5/24", "2001:db8:10::5/64"), (r, "pt-ns", "192.169.10.1/24", "2001:db8:10::1/64")];
    for (ns, dev, v4, v6) in ends {
        ns.ip(&format!("link set {dev} mtu 1450 group 4243 alias openpe-passthrough:openpe@golden-v1@net1"));
        ns.ip(&format!("addr add {v4} dev {dev}"));
        ns.ip(&format!("addr add {v6} dev {dev} nodad"));
        ns.ip(&format!("link set {dev} up"));
    }
    h.ip(&format!("link set toswitch netns {}", r.name));
    r.ip("addr add 192.168.11.3/24 dev toswitch");
    r.ip("addr add 2001:db8:11::3/64 dev toswitch nodad");
    r.ip("link set toswitch up");
    r.exec("sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1");
    let (rpath, hpath) = (r.path(), h.path());
    install_golden_v1(&lab.state.path, &Fill::of(&rpath, &hpath, &mac));

    let netconf = std::fs::read_to_string(Path::new(GOLDEN_V1).join("netconf.json"))
        .unwrap()
        .replace("@STATE_DIR@", lab.state.path.to_str().unwrap())
        .replace("@HOST_NETNS@", &h.path_str());
    let mut conf: Value = serde_json::from_str(&netconf).unwrap();
    let rpath_s = r.path_str();
    let env = vec![("CNI_CONTAINERID", "golden-v1"), ("CNI_NETNS", rpath_s.as_str()), ("CNI_IFNAME", "net1")];

    let (ok, table, err) = inspect(&lab.state.path, false);
    assert!(ok, "{err}");
    assert_eq!(alive_of(&table, "golden-v1"), "yes", "{table}");

    conf["prevResult"] = json!({"cniVersion": "1.0.0", "interfaces": [], "ips": []});
    run_plugin("CHECK", &env, &conf.to_string()).ok();
    let mut other = env.clone();
    other[2] = ("CNI_IFNAME", "eth0");
    run_plugin("CHECK", &other, &conf.to_string()).ok();
    // CHECK sees damage on a released record as on a new one.
    r.ip("addr del 192.169.10.1/24 dev pt-ns");
    run_plugin("CHECK", &env, &conf.to_string()).err(100, "lacks address 192.169.10.1/24");
    r.ip("addr add 192.169.10.1/24 dev pt-ns");

    run_plugin("DEL", &other, &conf.to_string()).ok();
    assert_eq!(lab.snapshot(), before, "the NIC is home with its addresses and routes, the veth is gone");
    assert!(lab.state_files().is_empty(), "{:?}", lab.state_files());
    // With no format-1 record left, the next record written says so, and this release's own record works.
    let marker = lab.state.path.join("records-format");
    assert!(!marker.exists(), "the marker was written while a format-1 record was there");
    run_plugin("ADD", &env, &conf.to_string()).ok();
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "2\n");
    assert!(lab.state.path.join("attachments/openpe@golden-v1.json").exists(), "{:?}", lab.state_files());
    run_plugin("DEL", &other, &conf.to_string()).ok();
    assert_eq!(lab.snapshot(), before);
    assert!(lab.state_files().is_empty(), "{:?}", lab.state_files());
}

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn new(path: PathBuf, size: &str) -> Tmpfs {
        std::fs::create_dir_all(&path).unwrap();
        sh(&format!("mount -t tmpfs -o size={size},mode=0700 openpe-test {}", path.display()));
        Tmpfs(path)
    }

    fn free_blocks(&self) -> u64 {
        let c = std::ffi::CString::new(self.0.to_str().unwrap()).unwrap();
        // SAFETY: statvfs fills the zeroed struct; c is a valid NUL-terminated path.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut st) }, 0);
        st.f_bavail as u64
    }

    /// Fill the filesystem, then free `pages` pages of it again.
    fn fill_leaving(&self, pages: u64) {
        let path = self.0.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 4096];
        loop {
            match f.write(&chunk) {
                Ok(4096) => {}
                Ok(_) => break,
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling the tmpfs: {e}"),
            }
        }
        let len = f.metadata().unwrap().len();
        f.set_len(len.saturating_sub(pages * 4096) / 4096 * 4096).unwrap();
        assert_eq!(self.free_blocks(), pages, "the tmpfs has exactly {pages} free pages");
    }

    fn unfill(&self) {
        let _ = std::fs::remove_file(self.0.join("filler"));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// After a good ADD the state directory's filesystem fills up: DEL still restores everything and succeeds,
/// and the index it freed is handed out again (the hint did not stay above it).
#[test]
#[ignore = "needs root"]
fn del_on_a_full_state_directory_restores_everything() {
    let base = TempDir::new("fullb");
    let fs = Tmpfs::new(base.path.join("state"), "256k");
    let lab = Lab::new("full");
    let before = lab.snapshot();
    let conf = lab.conf("1.0.0", json!({"stateDir": fs.0.display().to_string()}));
    lab.add(&conf);
    assert_eq!(addrs(&lab.host, "pt-host")[0], "192.169.10.2/24");
    fs.fill_leaving(0);
    let out = lab.run("DEL", &conf, &[]);
    out.ok();
    assert!(out.stderr.contains("index hint"), "the skipped hint is warned about: {}", out.stderr);
    assert_eq!(lab.snapshot(), before);
    fs.unfill();
    assert!(files_under(&fs.0).is_empty(), "{:?}", files_under(&fs.0));
    lab.add(&conf);
    assert_eq!(addrs(&lab.host, "pt-host")[0], "192.169.10.2/24", "index 0 is free again");
    lab.del(&conf);
    assert!(files_under(&fs.0).is_empty(), "{:?}", files_under(&fs.0));
}

/// ADD on a nearly full state directory, for every amount of free space from none until ADD succeeds: each
/// failing ADD fails with code 5 (I/O), never 101 (rollback incomplete), leaves the host as it was and no
/// record, claim or temporary file, including when it failed after changing the kernel (its last write).
#[test]
#[ignore = "needs root"]
fn add_rolls_back_on_a_full_state_directory() {
    let base = TempDir::new("fullrb");
    let fs = Tmpfs::new(base.path.join("state"), "256k");
    let lab = Lab::new("fullr");
    let before = lab.snapshot();
    let conf = lab.conf("1.0.0", json!({"stateDir": fs.0.display().to_string()}));
    // The directory, its lock and boot id exist, as after any earlier invocation.
    run_plugin("STATUS", &[], &lab.conf("1.1.0", json!({"stateDir": fs.0.display().to_string()})).to_string()).ok();
    let mut rolled_back_after_kernel = 0;
    let mut succeeded = false;
    for pages in 0..16 {
        fs.fill_leaving(pages);
        let out = lab.run("ADD", &conf, &[]);
        if out.code == 0 {
            succeeded = true;
            fs.unfill();
            lab.del(&conf);
            break;
        }
        out.err(5, "No space left on device");
        // A record write between kernel steps (the NIC's router ifindex) or after the last one.
        if out.stderr.contains("failed while changing the kernel")
            || out.stderr.contains("failed after changing the kernel")
        {
            rolled_back_after_kernel += 1;
        }
        assert_eq!(lab.snapshot(), before, "with {pages} free pages");
        assert!(files_under(&fs.0).iter().all(|f| f == "filler"), "with {pages} free pages: {:?}", files_under(&fs.0));
        // The runtime's DEL after a failed ADD, still on the full filesystem.
        lab.run("DEL", &conf, &[]).ok();
        fs.unfill();
    }
    assert!(succeeded, "ADD never succeeded with up to 15 free pages");
    assert!(rolled_back_after_kernel >= 1, "no ADD failed after changing the kernel");
    assert_eq!(lab.snapshot(), before);
    assert!(files_under(&fs.0).is_empty(), "{:?}", files_under(&fs.0));
}

fn gc(lab: &Lab, valid: Option<(&str, Value)>) -> Outcome {
    let mut conf = lab.conf("1.1.0", json!({}));
    if let Some((k, v)) = valid {
        conf[k] = v;
    }
    run_plugin("GC", &[], &conf.to_string())
}

/// GC: the key absent removes nothing (and says so); a list keeps the listed containers (whatever ifname it
/// names) and removes the others; `null` and `[]` (legacy key) remove every attachment of the network.
#[test]
#[ignore = "needs root"]
fn gc_absent_null_empty_and_a_list() {
    let a = Lab::new("gcxa");
    let b = Lab::new("gcxb");
    let state = a.state.path.display().to_string();
    let conf_a = a.conf("1.1.0", json!({}));
    let conf_b = b.conf("1.1.0", json!({"stateDir": state}));
    let b_before = snapshot(&b.host.name);
    let attached = |lab: &Lab| lab.host.has_link("pt-host");
    a.add(&conf_a);
    b.add(&conf_b);

    let out = gc(&a, None);
    out.ok();
    assert!(out.stderr.contains("removing nothing"), "{}", out.stderr);
    assert!(attached(&a) && attached(&b), "GC without the key removed something");

    let listed = json!([{"containerID": a.container, "ifname": "eth9"}]);
    gc(&a, Some(("cni.dev/valid-attachments", listed))).ok();
    assert!(attached(&a), "A is listed (under another ifname) and stays");
    assert!(!attached(&b), "B is not listed and goes");
    assert_eq!(snapshot(&b.host.name), b_before);

    b.add(&conf_b);
    gc(&a, Some(("cni.dev/valid-attachments", Value::Null))).ok();
    assert!(!attached(&a) && !attached(&b), "null removes every attachment");
    assert!(a.state_files().is_empty(), "{:?}", a.state_files());

    a.add(&conf_a);
    b.add(&conf_b);
    gc(&a, Some(("cni.dev/attachments", json!([])))).ok();
    assert!(!attached(&a) && !attached(&b), "[] removes every attachment");
    assert!(a.state_files().is_empty(), "{:?}", a.state_files());
    assert_eq!(snapshot(&b.host.name), b_before);
}

/// podman's `network reload`: DEL with CNI_IFNAME eth0 of an attachment added as net1 tears it down; the
/// ADD that follows under another name succeeds; a second ADD of a live attachment under yet another name is
/// refused without harming it; CHECK and DEL (without CNI_NETNS) find it whatever the ifname.
#[test]
#[ignore = "needs root"]
fn the_attachment_is_found_whatever_cni_ifname_says() {
    let lab = Lab::new("ifn");
    let before = lab.snapshot();
    let conf = lab.conf("1.0.0", json!({}));
    lab.add(&conf);
    lab.run("DEL", &conf, &[("CNI_IFNAME", "eth0")]).ok();
    assert_eq!(lab.snapshot(), before, "DEL eth0 tore down the attachment added as net1");
    assert!(lab.state_files().is_empty(), "{:?}", lab.state_files());

    lab.run("ADD", &conf, &[("CNI_IFNAME", "pt-ns")]).ok();
    let attached = lab.snapshot();
    lab.run("ADD", &conf, &[("CNI_IFNAME", "toswitch")]).err(11, "already exists");
    assert_eq!(lab.snapshot(), attached, "the refused ADD changed nothing");
    let mut check = conf.clone();
    check["prevResult"] = json!({"cniVersion": "1.0.0", "interfaces": [], "ips": []});
    lab.run("CHECK", &check, &[("CNI_IFNAME", "eth0")]).ok();
    lab.run("DEL", &conf, &[("CNI_IFNAME", "X"), ("CNI_NETNS", "")]).ok();
    assert_eq!(lab.snapshot(), before);
    assert!(lab.state_files().is_empty(), "{:?}", lab.state_files());
    // And again: the podman sequence twice over.
    lab.run("ADD", &conf, &[("CNI_IFNAME", "eth0")]).ok();
    lab.run("DEL", &conf, &[("CNI_IFNAME", "eth0")]).ok();
    lab.run("ADD", &conf, &[("CNI_IFNAME", "toswitch")]).ok();
    lab.run("DEL", &conf, &[("CNI_IFNAME", "eth0")]).ok();
    assert_eq!(lab.snapshot(), before);
    assert!(lab.state_files().is_empty(), "{:?}", lab.state_files());
}

/// `inspect` on a directory with one corrupt record lists the others and names the corrupt one; on an empty
/// or missing directory it lists nothing, successfully; it never deletes, not even an earlier boot's record.
#[test]
fn inspect_lists_readable_records_and_names_unreadable_ones() {
    let dir = TempDir::new("insp");
    let state = dir.path.join("s");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    let (ok, out, err) = inspect(&state, true);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "[]");
    let (ok, out, err) = inspect(&dir.path.join("missing"), true);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "[]");

    let fake = Fill {
        router: Path::new("/nonexistent/r"),
        host: Path::new("/nonexistent/h"),
        dev: 4,
        router_ino: 4026530001,
        host_ino: 4026530002,
        mac: "02:00:00:00:00:01",
    };
    install_golden_v1(&state, &fake);
    std::fs::write(state.join("attachments/openpe@broken.json"), "{not json").unwrap();
    let (ok, out, err) = inspect(&state, true);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let entries = v.as_array().unwrap();
    assert_eq!(entries.len(), 2, "{v}");
    assert_eq!(entries[0]["file"], "openpe@broken.json");
    assert!(entries[0]["unreadable"].as_str().unwrap().contains("is unreadable"), "{v}");
    assert_eq!(entries[1]["key"]["containerId"], "golden-v1");
    assert_eq!(entries[1]["format"], 2);
    assert_eq!(entries[1]["underlay"]["neighbors"][0]["password"], "********");
    let (ok, table, err) = inspect(&state, false);
    assert!(ok, "{err}");
    assert_eq!(alive_of(&table, "golden-v1"), "no", "{table}");
    assert!(table.contains("unreadable: openpe@broken.json"), "{table}");

    // A record of an earlier boot is shown as such and left in place.
    let path = state.join("attachments/openpe@golden-v1@net1.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    std::fs::write(&path, text.replace(boot.trim(), "00000000-0000-0000-0000-000000000000")).unwrap();
    let (ok, table, err) = inspect(&state, false);
    assert!(ok, "{err}");
    assert_eq!(alive_of(&table, "golden-v1"), "no (earlier boot)", "{table}");
    assert!(path.exists(), "inspect deleted a record");
}
