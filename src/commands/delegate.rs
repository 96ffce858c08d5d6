//! CNIDevice (issue 14): the underlay interface made by another CNI plugin chain, run as a runtime runs one —
//! each plugin of the configuration list found in CNI_PATH and started in the host namespace, with CNI_NETNS the
//! router, CNI_IFNAME the device's `interfaceName`, a CNI_CONTAINERID derived from the attachment's, the
//! capability arguments of `runtimeConfig` that the plugin declares, and the previous plugin's result. ADD
//! records the final result before going on; DEL hands it back to the plugins in reverse order (also when the
//! router namespace is gone); CHECK hands it to each plugin's CHECK.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag};
use nix::unistd::Pid;

use serde_json::{Map, Value};

use crate::cni::result::{Additions, Interface, IpConfig};
use crate::cni::{valid_identifier, version_at_least, SUPPORTED_VERSIONS};
use crate::datapath::Side;
use crate::error::{Error, Input, Result};
use crate::netns::Netns;
use crate::state::{Delegate, Key, Record, StateDir};
use crate::{fault, log_info, log_warn};

/// The CNI_CONTAINERID of the delegated plugins: the attachment's, marked, so that their state (an IPAM
/// plugin's leases) never mixes with the runtime's own for the same container.
fn container_id(key: &Key) -> String {
    format!("openpe-{}", key.container_id)
}

fn plugins(conflist: &Value) -> &[Value] {
    conflist.get("plugins").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

fn plugin_type(plugin: &Value) -> &str {
    plugin.get("type").and_then(Value::as_str).unwrap_or("")
}

/// Where `ty` is in `cni_path`: the first directory holding an executable file of that name.
fn find(cni_path: &str, ty: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    cni_path
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| PathBuf::from(d).join(ty))
        .find(|p| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// A configuration list as a runtime demands it (`p` is its field): a version of CNI 1.0.0 or later that this
/// plugin speaks (results are chained as 1.0.0 defines), a network name, and plugins whose types are plain file
/// names, so that CNI_PATH lookups never leave its directories.
fn check_conflist(list: &Value, p: &str) -> Result<()> {
    let refuse = |field: &str, why: String| Err(Error::config(format!("{p}{field}: {why}")));
    let versions: Vec<&str> = SUPPORTED_VERSIONS.into_iter().filter(|v| version_at_least(v, "1.0.0")).collect();
    match list.get("cniVersion").and_then(Value::as_str) {
        Some(v) if versions.contains(&v) => {}
        v => return refuse(".cniVersion", format!("must be 1.0.0 or later ({}), got {v:?}", versions.join(", "))),
    }
    if !list.get("name").and_then(Value::as_str).is_some_and(|n| valid_identifier(n) && n.len() <= 253) {
        return refuse(
            ".name",
            "is required: letters, digits, '_', '.' and '-', starting with a letter or digit".into(),
        );
    }
    if plugins(list).is_empty() {
        return refuse(".plugins", "is required: a non-empty list of plugin configurations".into());
    }
    for (j, plugin) in plugins(list).iter().enumerate() {
        match plugin_type(plugin) {
            "openpe-passthrough" => {
                return refuse(&format!(".plugins[{j}].type"), "openpe-passthrough cannot delegate to itself".into())
            }
            t if valid_identifier(t) && t.len() <= 253 => {}
            _ => {
                return refuse(
                    &format!(".plugins[{j}].type"),
                    "is required: the plugin's file name in CNI_PATH (letters, digits, '_', '.', '-')".into(),
                )
            }
        }
    }
    Ok(())
}

/// What ADD will run, checked before anything changes: CNI_PATH is given and holds every plugin, and the
/// router has no interface of the names the plugins will create.
pub(super) fn plan(rec_key: &Key, underlay: &crate::config::Underlay, router: &mut Side) -> Result<Vec<Delegate>> {
    if underlay.cni_devices.is_empty() {
        return Ok(Vec::new());
    }
    for (i, d) in underlay.cni_devices.iter().enumerate() {
        check_conflist(&d.conflist, &format!("underlay.interfaces[{i}].cniDevice.rawConfig"))?;
    }
    let cni_path = std::env::var("CNI_PATH").ok().filter(|p| !p.is_empty()).ok_or_else(|| {
        Error::runtime("CNI_PATH: is required to find the plugins of underlay.interfaces[].cniDevice")
    })?;
    let mut out = Vec::new();
    for (i, d) in underlay.cni_devices.iter().enumerate() {
        for (j, plugin) in plugins(&d.conflist).iter().enumerate() {
            let ty = plugin_type(plugin);
            if find(&cni_path, ty).is_none() {
                return Err(Error::config(format!(
                    "underlay.interfaces[{i}].cniDevice.rawConfig.plugins[{j}].type: there is no plugin {ty:?} in \
                     CNI_PATH ({cni_path})"
                )));
            }
        }
        if router.link(&d.interface_name)?.is_some() {
            return Err(Error::busy(format!(
                "underlay.interfaces[{i}].cniDevice.interfaceName: the router namespace {} already has an \
                 interface named {:?}",
                router.ns.id.path.display(),
                d.interface_name
            )));
        }
        out.push(Delegate {
            conflist: d.conflist.clone(),
            runtime_config: d.runtime_config.clone(),
            container_id: container_id(rec_key),
            ifname: d.interface_name.clone(),
            cni_path: cni_path.clone(),
            result: None,
        });
    }
    Ok(out)
}

/// The configuration one plugin of the list reads on stdin, as libcni builds it.
fn plugin_conf(d: &Delegate, plugin: &Value, prev: Option<&Value>) -> Value {
    let mut c = plugin.clone();
    c["name"] = d.conflist["name"].clone();
    c["cniVersion"] = d.conflist["cniVersion"].clone();
    let caps = plugin.get("capabilities").and_then(Value::as_object);
    let offered: Map<String, Value> = d
        .runtime_config
        .iter()
        .filter(|(k, _)| caps.is_some_and(|c| c.get(k.as_str()) == Some(&Value::Bool(true))))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !offered.is_empty() {
        c["runtimeConfig"] = Value::Object(offered);
    }
    if let Some(p) = prev {
        c["prevResult"] = p.clone();
    }
    c
}

/// Run one plugin: in `host` (the child inherits the namespace of the thread that starts it), or where this
/// process is when the host namespace is gone; for at most `limit` (`delegateTimeoutSeconds`), after which its
/// process group is killed. Returns its stdout (a result for ADD).
fn exec(
    d: &Delegate,
    plugin: &Value,
    verb: &str,
    netns: &str,
    prev: Option<&Value>,
    host: Option<&Netns>,
    limit: Duration,
) -> Result<Vec<u8>> {
    let ty = plugin_type(plugin);
    let what = format!("the delegated plugin {ty:?} ({verb} of {:?} in the router)", d.ifname);
    // DEL and CHECK prefer the runtime's CNI_PATH of now, then the one ADD used.
    let now = std::env::var("CNI_PATH").ok().filter(|p| !p.is_empty());
    let path = now
        .iter()
        .chain(std::iter::once(&d.cni_path))
        .find_map(|p| find(p, ty))
        .ok_or_else(|| Error::runtime(format!("CNI_PATH: there is no plugin {ty:?} for {what}")))?;
    let stdin = serde_json::to_vec(&plugin_conf(d, plugin, prev)).expect("JSON values serialize");
    let spawn = || -> std::io::Result<Child> {
        let mut cmd = Command::new(&path);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("CNI_") || k.to_string_lossy().starts_with("OPENPE_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("CNI_COMMAND", verb)
            .env("CNI_CONTAINERID", &d.container_id)
            .env("CNI_NETNS", netns)
            .env("CNI_IFNAME", &d.ifname)
            .env("CNI_PATH", now.as_deref().unwrap_or(&d.cni_path))
            // A group of its own, so that a timeout kills what it started too.
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.spawn()
    };
    // Only the spawn needs the host namespace; the waiting is done outside it.
    let cannot = |e: std::io::Error| Error::io(format!("cannot run {what} ({}): {e}", path.display()));
    let child = match host {
        Some(ns) => ns.run(spawn)?,
        None => spawn(),
    }
    .map_err(cannot)?;
    let Some(out) = finish(child, stdin, limit, &what).map_err(cannot)? else {
        // Busy (CNI code 11, "try again later"): a plugin that did not answer in time may well answer the
        // next time (a slow IPAM server, a lock of its own held by another run).
        return Err(Error::busy(format!(
            "{what} did not finish within {} s (delegateTimeoutSeconds); it was killed",
            limit.as_secs()
        )));
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !stderr.trim().is_empty() {
        log_info!("{what} said on stderr: {}", stderr.trim());
    }
    if out.status.success() {
        return Ok(out.stdout);
    }
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let code = reply.get("code").and_then(Value::as_u64);
    let msg = reply.get("msg").and_then(Value::as_str).unwrap_or("(no CNI error on stdout)");
    let details = reply.get("details").and_then(Value::as_str).map(|d| format!(" ({d})")).unwrap_or_default();
    let code_text = code.map_or_else(|| "no CNI code".to_string(), |c| format!("CNI code {c}"));
    let text = format!("{what} failed ({}, {code_text}): {msg}{details}", out.status);
    // Its own configuration refused: the user's configuration; otherwise what it ran into.
    Err(match code {
        Some(7) => Error::config(format!("underlay.interfaces[].cniDevice.rawConfig: {text}")),
        Some(11) => Error::busy(text),
        _ => Error::new(crate::error::Kind::Kernel(None), text),
    })
}

/// What the helper threads of [`finish`] report, each once.
enum Event {
    Stdout(std::io::Result<Vec<u8>>),
    Stderr(std::io::Result<Vec<u8>>),
    Exited,
}

/// Read `pipe` to its end on a thread of its own and report it.
fn read_all(mut pipe: impl Read + Send + 'static, tx: Sender<Event>, event: fn(std::io::Result<Vec<u8>>) -> Event) {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = tx.send(event(pipe.read_to_end(&mut buf).map(|_| buf)));
    });
}

/// How long a killed plugin may take to die before it is left to init (it is in the kernel, beyond SIGKILL).
const KILL_GRACE: Duration = Duration::from_secs(5);

/// See a started plugin through, for at most `limit`: its stdin written, its stdout and stderr read to their
/// end, its exit seen, each on a thread of its own (a chatty plugin never blocks on a full pipe, a plugin that
/// does not read its stdin never blocks us), while this thread waits on their channel, so the normal case costs
/// no polling. Done is exited *and* both pipes closed, as a runtime waits (Go's `exec.Cmd.Wait`, which libcni
/// uses): a child the plugin left holding its stdout may still be writing the result. The waiting thread
/// leaves the exited child unreaped (`WNOWAIT`), so its pid, which is its process group's id, cannot be reused
/// before the kill. Past `limit` the whole process group is killed and the child reaped; None.
fn finish(mut child: Child, stdin: Vec<u8>, limit: Duration, what: &str) -> std::io::Result<Option<Output>> {
    let deadline = Instant::now() + limit;
    let pid = Pid::from_raw(child.id() as i32);
    let (tx, rx) = mpsc::channel();
    let mut input = child.stdin.take().expect("piped");
    let what_in = what.to_string();
    std::thread::spawn(move || {
        // A plugin may exit without reading its configuration; its exit status says what happened.
        if let Err(e) = input.write_all(&stdin) {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                log_warn!("writing the configuration to {what_in}: {e}");
            }
        }
    });
    read_all(child.stdout.take().expect("piped"), tx.clone(), Event::Stdout);
    read_all(child.stderr.take().expect("piped"), tx.clone(), Event::Stderr);
    let exit_tx = tx.clone();
    std::thread::spawn(move || {
        while matches!(waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT), Err(Errno::EINTR)) {}
        let _ = exit_tx.send(Event::Exited);
    });
    drop(tx);

    let (mut stdout, mut stderr, mut exited) = (None, None, false);
    while stdout.is_none() || stderr.is_none() || !exited {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Event::Stdout(r)) => stdout = Some(r),
            Ok(Event::Stderr(r)) => stderr = Some(r),
            Ok(Event::Exited) => exited = true,
            Err(RecvTimeoutError::Timeout) => {
                if let Err(e) = killpg(pid, Signal::SIGKILL) {
                    log_warn!("killing the process group {pid} of {what}: {e}");
                }
                let gone = exited
                    || loop {
                        match rx.recv_timeout(KILL_GRACE) {
                            Ok(Event::Exited) => break true,
                            Ok(_) => {}
                            Err(_) => break false,
                        }
                    };
                if gone {
                    child.wait()?;
                } else {
                    log_warn!("{what} (pid {pid}) did not die within {} s of SIGKILL", KILL_GRACE.as_secs());
                }
                return Ok(None);
            }
            Err(RecvTimeoutError::Disconnected) => unreachable!("each thread reports before it ends"),
        }
    }
    let status = child.wait()?;
    Ok(Some(Output { status, stdout: stdout.expect("read")?, stderr: stderr.expect("read")? }))
}

/// The host namespace if it still is the recorded one.
fn host_ns(rec: &Record) -> Option<Netns> {
    if !rec.host_netns.is_alive() {
        return None;
    }
    Netns::open(&rec.host_netns.path, Input::Config, "hostNetns").ok().filter(|ns| ns.id.same_ns(&rec.host_netns))
}

/// ADD every delegated list, each plugin getting the previous one's result; the final result of each list is
/// recorded before the next step. Returns what they made, for this plugin's result.
pub(super) fn add(
    state: &StateDir,
    rec: &mut Record,
    host: &Netns,
    made: &mut Additions,
    limit: Duration,
) -> Result<()> {
    let netns = rec.netns.path.display().to_string();
    for i in 0..rec.delegates.len() {
        fault::point("delegate:before-add");
        let d = rec.delegates[i].clone();
        let mut prev: Option<Value> = None;
        for plugin in plugins(&d.conflist) {
            let out = exec(&d, plugin, "ADD", &netns, prev.as_ref(), Some(host), limit)?;
            let result: Value = serde_json::from_slice(&out).map_err(|e| {
                Error::io(format!(
                    "the delegated plugin {:?} printed a result that is not JSON: {e}",
                    plugin_type(plugin)
                ))
            })?;
            fault::point("delegate:plugin-added");
            prev = Some(result);
        }
        let result = prev.unwrap_or_else(|| Value::Object(Map::new()));
        additions_of(&result, &d.ifname, made);
        rec.delegates[i].result = Some(result);
        state.save(rec)?;
        fault::point("delegate:result-recorded");
        log_info!("delegated {} to {:?}: done", d.ifname, d.conflist["name"]);
    }
    Ok(())
}

/// The interfaces and addresses of a delegate's result, appended to `made` (addresses keep pointing at their
/// interface; one without an index belongs to the interface the list was asked to make).
fn additions_of(result: &Value, ifname: &str, made: &mut Additions) {
    let base = made.interfaces.len();
    let list = result.get("interfaces").and_then(Value::as_array).cloned().unwrap_or_default();
    for i in &list {
        let s = |k: &str| i.get(k).and_then(Value::as_str).map(str::to_string);
        made.interfaces.push(Interface {
            name: s("name").unwrap_or_default(),
            mac: s("mac").unwrap_or_default(),
            mtu: i.get("mtu").and_then(Value::as_u64).unwrap_or(0) as u32,
            sandbox: s("sandbox"),
        });
    }
    let own = list.iter().position(|i| i.get("name").and_then(Value::as_str) == Some(ifname));
    for ip in result.get("ips").and_then(Value::as_array).into_iter().flatten() {
        let Some(address) = ip.get("address").and_then(Value::as_str).and_then(|a| a.parse().ok()) else {
            continue;
        };
        let index = ip.get("interface").and_then(Value::as_u64).map(|n| n as usize).filter(|n| *n < list.len());
        if let Some(at) = index.or(own) {
            made.ips.push(IpConfig { address, interface: base + at });
        }
    }
}

/// DEL every delegated list, last first, each plugin in reverse order with the recorded result (none if ADD
/// never got that far; then a plugin's failure is logged and the rest goes on). A router namespace that is gone is passed as an empty CNI_NETNS, as runtimes do.
pub(super) fn del(rec: &Record, limit: Duration) -> Result<()> {
    if rec.delegates.is_empty() {
        return Ok(());
    }
    let netns = if rec.netns.is_alive() { rec.netns.path.display().to_string() } else { String::new() };
    let host = host_ns(rec);
    if host.is_none() {
        log_warn!("the host namespace {} is gone; running the delegated DEL here", rec.host_netns.path.display());
    }
    for d in rec.delegates.iter().rev() {
        fault::point("delegate:before-del");
        for plugin in plugins(&d.conflist).iter().rev() {
            match exec(d, plugin, "DEL", &netns, d.result.as_ref(), host.as_ref(), limit) {
                Ok(_) => {}
                // The list's ADD never succeeded (it failed, or was interrupted): a plugin that refuses DEL of
                // what it may never have made (macvlan, when its master is missing) does not hold up the rest.
                Err(e) if d.result.is_none() => log_warn!("{}; its ADD never completed, so going on", e.msg),
                Err(e) => return Err(e),
            }
            fault::point("delegate:plugin-deleted");
        }
    }
    Ok(())
}

/// CHECK every delegated list with its recorded result; what fails is added to `drift`.
pub(super) fn check(rec: &Record, drift: &mut Vec<String>, limit: Duration) {
    let netns = rec.netns.path.display().to_string();
    let host = host_ns(rec);
    for d in &rec.delegates {
        let Some(result) = &d.result else {
            drift.push(format!("the delegated interface {} was never completely added", d.ifname));
            continue;
        };
        if d.conflist.get("disableCheck").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        for plugin in plugins(&d.conflist) {
            if let Err(e) = exec(d, plugin, "CHECK", &netns, Some(result), host.as_ref(), limit) {
                drift.push(e.msg);
            }
        }
    }
}
