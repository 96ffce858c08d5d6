//! One FRR instance as the sidecar sees it: its configuration file, its daemons' vty sockets (or `vtysh -f`) to apply a delta in one
//! transaction, `frr-reload.py` to apply a whole file, `vtysh` to ask it questions, and the identity of its
//! daemons' vty sockets to notice that it restarted.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};

pub(crate) const RELOAD_SCRIPT: &str = "/usr/lib/frr/frr-reload.py";
pub(crate) const CONF_ROOT: &str = "/etc/frr";
pub(crate) const RUN_ROOT: &str = "/var/run/frr";

/// The daemons whose restart loses the BGP configuration.
const WATCHED_DAEMONS: [&str; 2] = ["zebra", "bgpd"];

#[derive(Debug, Clone)]
pub struct Frr {
    /// FRR's `-N`: the instance's directories are `/etc/frr/<name>` and `/var/run/frr/<name>`.
    pub pathspace: Option<String>,
    /// Where the sidecar writes the configuration it applies.
    pub config_path: PathBuf,
}

/// A pathspace becomes a path component and a command-line argument: keep it to a plain name.
pub(crate) fn valid_pathspace(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s != "."
        && s != ".."
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl Frr {
    pub fn new(pathspace: Option<String>, config_path: Option<PathBuf>) -> Result<Frr> {
        if let Some(p) = &pathspace {
            if !valid_pathspace(p) {
                return Err(Error::config(format!(
                    "--frr-pathspace: {p:?} must be 1 to 64 letters, digits, '-', '_' or '.'"
                )));
            }
        }
        let config_path = match config_path {
            Some(p) => p,
            None => Self::dir(CONF_ROOT, pathspace.as_deref()).join("frr.conf"),
        };
        Ok(Frr { pathspace, config_path })
    }

    fn dir(root: &str, pathspace: Option<&str>) -> PathBuf {
        match pathspace {
            Some(p) => Path::new(root).join(p),
            None => PathBuf::from(root),
        }
    }

    /// `/var/run/frr[/<pathspace>]`: the daemons' pid files and vty sockets.
    pub fn rundir(&self) -> PathBuf {
        Self::dir(RUN_ROOT, self.pathspace.as_deref())
    }

    fn instance(&self) -> String {
        match &self.pathspace {
            Some(p) => format!("FRR instance {p:?}"),
            None => "the default FRR instance".into(),
        }
    }

    /// Write the configuration file atomically: a temporary file in the same directory, mode 0600, owned by
    /// the `frr` user when there is one (FRR reads it on restart), renamed into place.
    pub fn write_config(&self, text: &str) -> Result<()> {
        let path = &self.config_path;
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .ok_or_else(|| Error::config(format!("--frr-config: {} has no directory", path.display())))?;
        if !dir.is_dir() {
            return Err(Error::io(format!(
                "cannot write the FRR configuration {}: directory {} does not exist; create {} \
                 (FRR's configuration directory) or pass --frr-config",
                path.display(),
                dir.display(),
                dir.display()
            )));
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("frr.conf");
        let tmp = dir.join(format!(".{name}.openpe-sidecar.{}", std::process::id()));
        let owner = nix::unistd::User::from_name("frr").ok().flatten();
        // Renamed into place whole, then synced (the file; FRR reads it again after a restart, maybe a crash).
        let owner = owner.map(|u| (u.uid.as_raw(), u.gid.as_raw()));
        crate::fsutil::write_atomically(&tmp, path, text.as_bytes(), owner)
            .and_then(|()| fs::File::open(path)?.sync_all())
            .map_err(|e| Error::io(format!("cannot write the FRR configuration {}: {e}", path.display())))
    }

    fn reload_command(&self, mode: &str) -> Command {
        let mut cmd = Command::new(RELOAD_SCRIPT);
        // --stdout keeps frr-reload.py's log (which quotes every line, passwords included) out of
        // /var/log/frr/frr-reload.log: the sidecar reads it and logs it masked.
        cmd.args(["--stdout", "--log-level", "warning"]);
        if let Some(p) = &self.pathspace {
            cmd.args(["--pathspace", p]);
        }
        let rundir = self.rundir();
        if rundir.is_dir() {
            cmd.arg("--rundir").arg(rundir);
        }
        cmd.arg(mode).arg(&self.config_path);
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Apply the written configuration file whole with `frr-reload.py --reload` (it computes the difference
    /// from FRR's running configuration, so unchanged sessions are not reset). With a pathspace frr-reload.py
    /// ends with `vtysh write`, which replaces the file with FRR's own rendering: the caller writes its own back.
    pub fn reload(&self) -> Result<()> {
        let out = self.reload_command("--reload").output().map_err(|e| {
            Error::io(format!("cannot run {RELOAD_SCRIPT} (from Debian's frr-pythontools): {e}; install it"))
        })?;
        if out.status.success() {
            return Ok(());
        }
        let text = strip_terminal_codes(&format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
        Err(self.refused(
            &format!("frr-reload.py --reload {}", self.config_path.display()),
            &out.status.to_string(),
            &text,
        ))
    }

    /// Apply `transaction` as one configuration transaction, as `vtysh -f` would: straight to the daemons' vty
    /// sockets ([`Frr::transact`]: no vtysh process, about 40 ms of CPU less), or with `vtysh -f` itself when a
    /// socket does not answer or the transaction holds a line the sidecar does not know the daemons of.
    pub fn apply_transaction(&self, transaction: &str) -> Result<()> {
        match self.transact(transaction) {
            Ok(()) => Ok(()),
            Err(Transact::Failed(e)) => Err(e),
            Err(Transact::Unusable(why)) => {
                crate::log_debug!("applying the transaction through vtysh -f: {why}");
                self.apply_with_vtysh(transaction)
            }
        }
    }

    /// [`Frr::transact`] alone: an error instead of vtysh -f when the sockets cannot be used.
    pub fn apply_on_sockets(&self, transaction: &str) -> Result<()> {
        self.transact(transaction).map_err(|t| match t {
            Transact::Failed(e) => e,
            Transact::Unusable(why) => {
                Error::io(format!("the daemons' vty sockets cannot take the transaction: {why}"))
            }
        })
    }

    /// Apply `transaction` with one `vtysh -f`, the text on its standard input (it may hold passwords: it is
    /// never written to a file).
    pub fn apply_with_vtysh(&self, transaction: &str) -> Result<()> {
        let mut child = self
            .vtysh_command()
            .args(["-f", "/dev/stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::io(format!("cannot run vtysh (from Debian's frr): {e}")))?;
        let written = child.stdin.take().map(|mut i| i.write_all(transaction.as_bytes()));
        let out = child.wait_with_output().map_err(|e| Error::io(format!("vtysh -f: {e}")))?;
        if let Some(Err(e)) = written {
            return Err(Error::io(format!("cannot hand the transaction to vtysh -f: {e}")));
        }
        if out.status.success() {
            return Ok(());
        }
        let text = strip_terminal_codes(&format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
        Err(self.refused("vtysh -f of the delta", &out.status.to_string(), &text))
    }

    fn refused(&self, what: &str, status: &str, text: &str) -> Error {
        let refused = refused_lines(text);
        Error::io(format!(
            "{what} failed for {} ({status}): {}",
            self.instance(),
            if refused.is_empty() { text.trim().to_string() } else { format!("FRR refused {}", refused.join("; ")) }
        ))
    }

    /// What `vtysh -f` does with `transaction` (FRR 8.4's vtysh/vtysh_config.c `vtysh_read_file`), without
    /// vtysh: connect to every daemon's vty socket that answers, in vtysh's order; `enable` and `configure
    /// terminal` to each; `XFRR_start_configuration` to each but watchfrr; every line, as read (indentation
    /// and newline included), to the daemons vtysh sends it to ([`route`]), in order, a line a daemon refuses
    /// reported as vtysh reports it and the rest still sent (vtysh's node moving only with a line every
    /// daemon accepted); then `XFRR_end_configuration`, `end`, `disable`.
    /// bgpd therefore sees the same file transaction (and the same hold of new peers after it) as from
    /// `vtysh -f`. [`Transact::Unusable`] before anything was sent: a line [`route`] does not know, or bgpd's
    /// socket not answering.
    fn transact(&self, transaction: &str) -> std::result::Result<(), Transact> {
        let lines: Vec<(usize, &str)> = transaction
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l))
            .filter(|(_, l)| {
                let t = l.trim();
                !(t.is_empty() || t.starts_with('!') || t.starts_with('#') || t == "end")
            })
            .collect();
        // Every line must route, each accepted, before anything is sent.
        let mut node = VtyNode::Config;
        for (lineno, line) in &lines {
            let trimmed = line.trim();
            let (_, next) = route(node, trimmed).ok_or_else(|| {
                Transact::Unusable(format!("line {lineno}: the daemons of {trimmed:?} are vtysh's to know"))
            })?;
            node = next;
        }
        let dir = self.rundir();
        let mut vtys: Vec<Vty> = VTYSH_DAEMONS.iter().filter_map(|d| Vty::connect(&dir, d).ok()).collect();
        if !vtys.iter().any(|v| v.daemon == "bgpd") {
            return Err(Transact::Unusable(format!("bgpd's vty socket in {} does not answer", dir.display())));
        }
        for v in &mut vtys {
            for c in ["enable", "configure terminal"] {
                match v.ask(c) {
                    Ok((0, _)) => {}
                    Ok((s, text)) => {
                        return Err(Transact::Unusable(format!("{}: {c:?} answered {s}: {}", v.daemon, text.trim())))
                    }
                    Err(e) => return Err(Transact::Unusable(e.msg)),
                }
            }
        }
        let failed = |e: Error| Transact::Failed(e.context("applying the delta on the daemons' vty sockets"));
        for v in vtys.iter_mut().filter(|v| v.daemon != "watchfrr") {
            v.ask("XFRR_start_configuration").map_err(failed)?;
        }
        let mut report = String::new();
        let mut node = VtyNode::Config;
        for (lineno, line) in lines {
            // Routed again from the node vtysh is in now: it stays where it was when a daemon did not accept
            // a line (a `router bgp` refused is not entered), and reports a line it then does not know.
            let Some((daemons, next)) = route(node, line.trim()) else {
                report.push_str(&format!("line {lineno}: % Unknown command[{node:?}]: {line}\n"));
                continue;
            };
            let mut accepted = true;
            for v in vtys.iter_mut().filter(|v| daemons.contains(&v.daemon)) {
                let (status, text) = v.ask(&format!("{line}\n")).map_err(failed)?;
                accepted &= status == 0;
                // CMD_WARNING (1) is a line already entered: vtysh goes on with the other daemons.
                if status > 1 {
                    report.push_str(&format!(
                        "{}\nline {lineno}: Failure to communicate[{status}] to {}, line: {line}\n",
                        text.trim(),
                        v.daemon
                    ));
                    break;
                }
            }
            if accepted {
                node = next;
            }
        }
        for v in vtys.iter_mut().filter(|v| v.daemon != "watchfrr") {
            v.ask("XFRR_end_configuration").map_err(failed)?;
        }
        for v in &mut vtys {
            for c in ["end", "disable"] {
                v.ask(c).map_err(failed)?;
            }
        }
        if report.is_empty() {
            return Ok(());
        }
        Err(Transact::Failed(self.refused("the delta on the daemons' vty sockets", "refused", &report)))
    }

    /// FRR's running configuration (`show running-config`, through vtysh).
    pub fn running_config(&self) -> Result<String> {
        self.vtysh("show running-config")
    }

    /// bgpd's running configuration (`router bgp`, route-maps, `bgp ...`: the BGP contexts the sidecar
    /// checks), read from bgpd's vty socket as vtysh does, without a vtysh process (about 0.5 ms instead of
    /// 40 ms of CPU). Falls back to vtysh when the socket does not answer as expected.
    pub(crate) fn bgpd_running_config(&self) -> Result<String> {
        match self.ask_bgpd(&["enable", "write terminal"]) {
            Ok(mut answers) => Ok(answers.pop().unwrap_or_default()),
            Err(e) => {
                crate::log_debug!("bgpd's vty socket: {}; asking vtysh", e.msg);
                self.running_config()
            }
        }
    }

    /// Send `commands` to bgpd's vty socket one by one, as vtysh does, and return the answers; an error when
    /// one fails.
    fn ask_bgpd(&self, commands: &[&str]) -> Result<Vec<String>> {
        Vty::connect(&self.rundir(), "bgpd")?.ask_all(commands)
    }

    /// `command` (a `show` command) answered by bgpd, from its vty socket; through vtysh when the socket does
    /// not answer.
    pub(crate) fn bgpd_show(&self, command: &str) -> Result<String> {
        match Vty::connect(&self.rundir(), "bgpd") {
            Ok(mut vty) => vty.ask_all(&["enable", command]).map(|mut a| a.pop().unwrap_or_default()),
            Err(e) => {
                crate::log_debug!("{}; asking vtysh", e.msg);
                self.vtysh(command)
            }
        }
    }

    /// Configuration `commands` for bgpd alone, outside a file transaction, as `vtysh -c 'configure terminal'
    /// -c ...` gives them to bgpd: on bgpd's vty socket, or through vtysh when the socket does not answer.
    pub(crate) fn bgpd_configure(&self, commands: &[String]) -> Result<()> {
        match Vty::connect(&self.rundir(), "bgpd") {
            Ok(mut vty) => {
                let mut all = vec!["enable", "configure terminal"];
                all.extend(commands.iter().map(String::as_str));
                all.push("end");
                vty.ask_all(&all).map(|_| ())
            }
            Err(e) => {
                crate::log_debug!("{}; configuring through vtysh", e.msg);
                let mut all = vec!["configure terminal"];
                all.extend(commands.iter().map(String::as_str));
                self.vtysh_commands(&all).map(|_| ())
            }
        }
    }

    /// The daemons whose vty sockets answer, in vtysh's order: what vtysh's `show daemons` lists.
    pub(crate) fn daemons(&self) -> Vec<&'static str> {
        let dir = self.rundir();
        VTYSH_DAEMONS.iter().copied().filter(|d| Vty::connect(&dir, d).is_ok()).collect()
    }

    /// Run one vtysh command against this instance.
    pub fn vtysh(&self, command: &str) -> Result<String> {
        self.vtysh_commands(&[command])
    }

    /// Run `commands` in one vtysh (`-c` each, in order) against this instance; its standard output.
    fn vtysh_commands(&self, commands: &[&str]) -> Result<String> {
        let mut cmd = self.vtysh_command();
        for c in commands {
            cmd.args(["-c", c]);
        }
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::io(format!("cannot run vtysh (from Debian's frr): {e}")))?;
        if !out.status.success() {
            return Err(Error::io(format!(
                "vtysh -c {} failed for {}: {}{}",
                commands.iter().map(|c| format!("{c:?}")).collect::<Vec<_>>().join(" -c "),
                self.instance(),
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `vtysh`, for this instance's pathspace.
    fn vtysh_command(&self) -> Command {
        let mut cmd = Command::new("vtysh");
        if let Some(p) = &self.pathspace {
            cmd.args(["-N", p]);
        }
        cmd
    }

    /// Identifies the running daemons, to notice a restart: per watched daemon, its pid file's content and its
    /// vty socket's inode and change time (a restarted daemon makes a new socket; the inode alone can be
    /// reused). None while any of them is missing (FRR is down or starting).
    pub(crate) fn generation(&self) -> Option<Vec<Generation>> {
        let dir = self.rundir();
        WATCHED_DAEMONS
            .iter()
            .map(|d| {
                let m = fs::symlink_metadata(dir.join(format!("{d}.vty"))).ok()?;
                let pid = fs::read_to_string(dir.join(format!("{d}.pid"))).ok()?;
                Some(Generation { pid: pid.trim().to_string(), ino: m.ino(), ctime: (m.ctime(), m.ctime_nsec()) })
            })
            .collect()
    }

    /// Whether FRR answers, its daemons, and every BGP neighbor with its state and the prefixes received.
    pub fn status(&self) -> Status {
        let daemons = match self.vtysh("show daemons") {
            Ok(d) => d.split_whitespace().map(str::to_string).collect(),
            Err(e) => {
                return Status { frr_answers: false, error: Some(e.msg), daemons: Vec::new(), neighbors: Vec::new() }
            }
        };
        let mut st = Status { frr_answers: true, error: None, daemons, neighbors: Vec::new() };
        match self.vtysh("show bgp vrf default summary json").and_then(|s| {
            serde_json::from_str::<Value>(&s).map_err(|e| Error::io(format!("vtysh's BGP summary is not JSON: {e}")))
        }) {
            Ok(v) => st.neighbors = neighbors_from_summary(&v),
            Err(e) => st.error = Some(e.msg),
        }
        st
    }
}

/// Why [`Frr::transact`] did not apply a transaction.
enum Transact {
    /// Nothing was sent: vtysh -f can do it.
    Unusable(String),
    /// Sent, and refused or cut short: the apply failed.
    Failed(Error),
}

/// vtysh's daemons in its order (FRR 8.4 vtysh/vtysh.c, `vtysh_client[]`): it connects to each whose
/// `<name>.vty` answers and sends a line to those of them its command is for, in this order.
const VTYSH_DAEMONS: [&str; 21] = [
    "zebra", "ripd", "ripngd", "ospfd", "ospf6d", "ldpd", "bgpd", "isisd", "pimd", "nhrpd", "eigrpd", "babeld",
    "sharpd", "fabricd", "watchfrr", "pbrd", "staticd", "bfdd", "vrrpd", "pathd", "pim6d",
];
/// vtysh.h's daemon sets, for the commands the sidecar's transactions hold (vtysh/extract.pl: a command of
/// bgpd/ is `VTYSH_BGPD`, of lib/routemap*.c `VTYSH_RMAP`, of lib/filter_cli.c `VTYSH_ACL`).
const BGPD: &[&str] = &["bgpd"];
const BFDD: &[&str] = &["bfdd"];
const RMAP: &[&str] = &["zebra", "ripd", "ripngd", "ospfd", "ospf6d", "bgpd", "isisd", "pimd", "eigrpd", "fabricd"];
const ACL: &[&str] = &[
    "bfdd", "babeld", "bgpd", "eigrpd", "isisd", "fabricd", "ldpd", "nhrpd", "ospf6d", "ospfd", "pbrd", "pimd",
    "pim6d", "ripd", "ripngd", "vrrpd", "zebra",
];

/// The configuration node vtysh is in while reading a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VtyNode {
    Config,
    RouteMap,
    Bgp,
    BgpFamily,
    Bfd,
    BfdProfile,
}

/// The daemons vtysh 8.4 sends `line` (trimmed) to at `node`, and the node it leads to; None for a line
/// outside what the sidecar's transactions hold (vtysh -f then applies the transaction: it knows every
/// command's daemons). A line that is no command of its node is tried in the node above, and so on up to the top, as vtysh (and
/// each daemon, for the lines it receives) does: `router bgp` right after a `bfd` block's last profile.
fn route(node: VtyNode, line: &str) -> Option<(&'static [&'static str], VtyNode)> {
    let mut at = node;
    loop {
        if let Some(r) = route_at(at, line) {
            return Some(r);
        }
        at = match at {
            VtyNode::Config => return None,
            VtyNode::RouteMap | VtyNode::Bgp | VtyNode::Bfd => VtyNode::Config,
            VtyNode::BgpFamily => VtyNode::Bgp,
            VtyNode::BfdProfile => VtyNode::Bfd,
        };
    }
}

/// [`route`] at `node` alone.
fn route_at(node: VtyNode, line: &str) -> Option<(&'static [&'static str], VtyNode)> {
    use VtyNode::*;
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| line.starts_with(p));
    Some(match node {
        Config if starts(&["route-map "]) => (RMAP, RouteMap),
        Config if starts(&["no route-map "]) => (RMAP, Config),
        Config if line == "router bgp" || starts(&["router bgp "]) => (BGPD, Bgp),
        Config if starts(&["no router bgp", "bgp ", "no bgp "]) => (BGPD, Config),
        Config if starts(&["ip prefix-list ", "ipv6 prefix-list ", "no ip prefix-list ", "no ipv6 prefix-list "]) => {
            (ACL, Config)
        }
        Config if line == "bfd" => (BFDD, Bfd),
        Config if line == "no bfd" => (BFDD, Config),
        RouteMap if line == "exit" => (RMAP, Config),
        RouteMap if starts(&["set large-community ", "match large-community "]) => (BGPD, RouteMap),
        RouteMap if starts(&["match ip address prefix-list ", "match ipv6 address prefix-list "]) => (RMAP, RouteMap),
        Bgp if line == "exit" => (BGPD, Config),
        Bgp if matches!(
            line,
            "address-family ipv4"
                | "address-family ipv4 unicast"
                | "address-family ipv6"
                | "address-family ipv6 unicast"
        ) =>
        {
            (BGPD, BgpFamily)
        }
        Bgp if starts(&["neighbor ", "no neighbor ", "bgp ", "no bgp ", "timers bgp "]) => (BGPD, Bgp),
        BgpFamily if matches!(line, "exit-address-family" | "exit") => (BGPD, Bgp),
        BgpFamily if starts(&["neighbor ", "no neighbor ", "network ", "no network "]) => (BGPD, BgpFamily),
        Bfd if line == "exit" => (BFDD, Config),
        Bfd if starts(&["profile ", "no profile "]) => (BFDD, if line.starts_with("no ") { Bfd } else { BfdProfile }),
        BfdProfile if line == "exit" => (BFDD, Bfd),
        BfdProfile
            if starts(&[
                "receive-interval ",
                "transmit-interval ",
                "detect-multiplier ",
                "minimum-ttl ",
                "echo-interval ",
                "echo receive-interval ",
                "echo transmit-interval ",
            ]) || matches!(line, "passive-mode" | "echo-mode" | "shutdown" | "no shutdown") =>
        {
            (BFDD, BfdProfile)
        }
        _ => return None,
    })
}

/// One connection to a daemon's vty socket, speaking vtysh's protocol: a command, NUL-terminated; the
/// answer's text, then three NULs and a status byte (lib/command.h's `CMD_*`: 0 success, 1 warning, 2 unknown
/// command, 13 configuration failed, ...).
struct Vty {
    daemon: &'static str,
    path: PathBuf,
    sock: std::os::unix::net::UnixStream,
}

impl Vty {
    fn connect(dir: &Path, daemon: &'static str) -> Result<Vty> {
        let path = dir.join(format!("{daemon}.vty"));
        let sock = std::os::unix::net::UnixStream::connect(&path)
            .and_then(|s| s.set_read_timeout(Some(std::time::Duration::from_secs(10))).map(|()| s))
            .map_err(|e| Error::io(format!("{}: {e}", path.display())))?;
        Ok(Vty { daemon, path, sock })
    }

    /// Each of `commands` in turn; the answers, or an error naming the first that fails.
    fn ask_all(&mut self, commands: &[&str]) -> Result<Vec<String>> {
        let mut answers = Vec::new();
        for c in commands {
            let (status, text) = self.ask(c)?;
            if status != 0 {
                return Err(Error::io(format!("{}: {c:?} failed ({status}): {}", self.path.display(), text.trim())));
            }
            answers.push(text);
        }
        Ok(answers)
    }

    /// Send `command` and return the answer's status and text.
    fn ask(&mut self, command: &str) -> Result<(u8, String)> {
        use std::io::Read as _;
        let io = |e: std::io::Error| Error::io(format!("{}: {e}", self.path.display()));
        self.sock.write_all(command.as_bytes()).and_then(|()| self.sock.write_all(&[0])).map_err(io)?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16384];
        while !(buf.len() >= 4 && buf[buf.len() - 4..buf.len() - 1] == [0, 0, 0]) {
            let n = self.sock.read(&mut chunk).map_err(io)?;
            if n == 0 {
                return Err(Error::io(format!("{}: closed while answering {:?}", self.path.display(), command.trim())));
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let status = buf[buf.len() - 1];
        buf.truncate(buf.len() - 4);
        Ok((status, String::from_utf8_lossy(&buf).into_owned()))
    }
}

/// `text` without terminal escape sequences (frr-reload.py colours its log levels).
pub(crate) fn strip_terminal_codes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        // CSI: ESC [ parameters, then one final byte in @..~; any other escape: ESC and the next character.
        if chars.next_if_eq(&'[').is_some() {
            for d in chars.by_ref() {
                if ('@'..='~').contains(&d) {
                    break;
                }
            }
        } else {
            chars.next();
        }
    }
    out
}

/// The configuration lines FRR refused, as vtysh reports them (`line 3: % Unknown command: ...`, `line 2:
/// Failure to communicate[13] to bgpd, line: ...`), each after the reason bgpd gave when there is one (`%
/// Specify remote-as or peer-group commands first`); also when frr-reload.py quotes vtysh's output as a Python
/// bytes literal (`b'line 3: ...\n'`).
pub(crate) fn refused_lines(text: &str) -> Vec<String> {
    let text = text.replace("\\n", "\n");
    let mut out = Vec::new();
    let mut reason: Option<&str> = None;
    for line in text.lines() {
        let trimmed = line.trim_start_matches("b'").trim();
        if trimmed.starts_with("% ") {
            reason = Some(trimmed);
            continue;
        }
        let Some(at) = line.find("line ") else { continue };
        let rest = &line[at..];
        let digits = rest[5..].chars().take_while(char::is_ascii_digit).count();
        if digits == 0 || !rest[5 + digits..].starts_with(": ") {
            continue;
        }
        let l = rest.trim_end_matches(['\'', '"']).trim_end();
        let l = match reason.take() {
            Some(r) => format!("{l} ({r})"),
            None => l.to_string(),
        };
        if !out.contains(&l) {
            out.push(l);
        }
    }
    out
}

/// One daemon's identity; see [`Frr::generation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Generation {
    pid: String,
    ino: u64,
    ctime: (i64, i64),
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub frr_answers: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub daemons: Vec<String>,
    pub neighbors: Vec<NeighborStatus>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NeighborStatus {
    pub address: String,
    pub remote_as: Option<u64>,
    pub local_as: Option<u64>,
    pub state: String,
    /// Per address family (`ipv4Unicast`, `ipv6Unicast`): prefixes received.
    pub prefixes_received: Vec<(String, u64)>,
}

impl NeighborStatus {
    pub fn established(&self) -> bool {
        self.state == "Established"
    }
}

/// The neighbors of `show bgp summary json` (one object per address family, each with `peers`), merged per
/// neighbor address in order of first appearance.
pub(crate) fn neighbors_from_summary(v: &Value) -> Vec<NeighborStatus> {
    let mut out: Vec<NeighborStatus> = Vec::new();
    let Some(families) = v.as_object() else {
        return out;
    };
    for (family, summary) in families {
        let Some(peers) = summary.get("peers").and_then(Value::as_object) else {
            continue;
        };
        for (address, p) in peers {
            let received = p.get("pfxRcd").and_then(Value::as_u64).unwrap_or(0);
            let state = p.get("state").and_then(Value::as_str).unwrap_or("unknown").to_string();
            match out.iter_mut().find(|n| &n.address == address) {
                Some(n) => n.prefixes_received.push((family.clone(), received)),
                None => out.push(NeighborStatus {
                    address: address.clone(),
                    remote_as: p.get("remoteAs").and_then(Value::as_u64),
                    local_as: p.get("localAs").and_then(Value::as_u64),
                    state,
                    prefixes_received: vec![(family.clone(), received)],
                }),
            }
        }
    }
    out
}

/// `status` for people: one line per neighbor.
pub fn status_table(st: &Status) -> String {
    let mut out = String::new();
    if !st.frr_answers {
        out.push_str(&format!("FRR: not answering ({})\n", st.error.as_deref().unwrap_or("unknown error")));
        return out;
    }
    out.push_str(&format!("FRR: answering (daemons: {})\n", st.daemons.join(" ")));
    if let Some(e) = &st.error {
        out.push_str(&format!("BGP: {e}\n"));
    }
    if st.neighbors.is_empty() {
        out.push_str("no BGP neighbors\n");
    }
    for n in &st.neighbors {
        let pfx: Vec<String> = n.prefixes_received.iter().map(|(f, c)| format!("{f}={c}")).collect();
        out.push_str(&format!(
            "{:<40} AS {:<11} {:<12} received {}\n",
            n.address,
            n.remote_as.map(|a| a.to_string()).unwrap_or_else(|| "?".into()),
            n.state,
            pfx.join(" ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Every line of every transaction the delta makes of a golden case (nothing → the case, the case →
    /// nothing) has its daemons in [`route`]: the sidecar's own renderings never need a vtysh process.
    #[test]
    fn every_rendered_transaction_routes() {
        let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
        let nothing = crate::bgp::unconfigured();
        let mut lines = 0;
        for entry in fs::read_dir(&golden).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "frr") {
                continue;
            }
            let text = fs::read_to_string(&path).unwrap();
            for (from, to) in [(&nothing, &text), (&text, &nothing)] {
                let t = super::super::delta::plan(from, to).unwrap();
                let mut node = VtyNode::Config;
                for l in t.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('!')) {
                    let (_, next) = route(node, l).unwrap_or_else(|| panic!("{}: {l:?} at {node:?}", path.display()));
                    node = next;
                    lines += 1;
                }
                assert_eq!(node, VtyNode::Config, "{}: the transaction ends at the top", path.display());
            }
        }
        assert!(lines > 1000, "{lines}");
    }

    #[test]
    fn routes_as_vtysh_does() {
        let (d, n) = route(VtyNode::Config, "route-map allowall permit 1").unwrap();
        assert!(d.contains(&"zebra") && d.contains(&"bgpd") && !d.contains(&"bfdd"));
        assert_eq!(n, VtyNode::RouteMap);
        assert_eq!(route(VtyNode::RouteMap, "set large-community 1:2:3 additive").unwrap().0, BGPD);
        assert_eq!(route(VtyNode::RouteMap, "exit").unwrap(), (RMAP, VtyNode::Config));
        assert_eq!(route(VtyNode::Bgp, "exit").unwrap(), (BGPD, VtyNode::Config));
        assert_eq!(route(VtyNode::Config, "bfd").unwrap(), (BFDD, VtyNode::Bfd));
        assert_eq!(route(VtyNode::Config, "ip prefix-list p seq 5 permit 10.0.0.0/8").unwrap().0, ACL);
        // Outside the table: left to vtysh -f.
        assert!(route(VtyNode::Config, "interface lo").is_none());
        assert!(route(VtyNode::Config, "exit").is_none());
        assert!(route(VtyNode::RouteMap, "set metric 7").is_none());
        assert!(route(VtyNode::Bgp, "interface lo").is_none());
        // A command of the node above: tried there, as vtysh does.
        assert_eq!(route(VtyNode::BfdProfile, "profile b").unwrap(), (BFDD, VtyNode::BfdProfile));
        assert_eq!(route(VtyNode::Bfd, "router bgp 64514").unwrap(), (BGPD, VtyNode::Bgp));
        assert_eq!(route(VtyNode::BgpFamily, "route-map x permit 1").unwrap(), (RMAP, VtyNode::RouteMap));
    }

    #[test]
    fn summary_merges_families() {
        let v = json!({
            "ipv4Unicast": {"peers": {
                "192.168.11.2": {"remoteAs": 64512, "localAs": 64514, "state": "Established", "pfxRcd": 2},
                "192.169.10.2": {"remoteAs": 64515, "localAs": 64514, "state": "Active", "pfxRcd": 0}}},
            "ipv6Unicast": {"peers": {
                "192.168.11.2": {"remoteAs": 64512, "state": "Established", "pfxRcd": 1}}}
        });
        let n = neighbors_from_summary(&v);
        assert_eq!(n.len(), 2);
        assert_eq!(n[0].address, "192.168.11.2");
        assert!(n[0].established());
        assert_eq!(n[0].prefixes_received, vec![("ipv4Unicast".into(), 2), ("ipv6Unicast".into(), 1)]);
        assert!(!n[1].established());
        assert!(neighbors_from_summary(&json!({})).is_empty());
    }

    #[test]
    fn refused_lines_without_colours() {
        let frr_reload = "2026-12-01 10:00:02,891 \u{1b}[91m  ERROR\u{1b}[0m: vtysh failed to process new \
                          configuration: vtysh (mark file) exited with status 2:\nb'line 3: % Unknown command:  \
                          neighbor 192.168.11.9 remote-az 64512\\n\\n'\n";
        let clean = strip_terminal_codes(frr_reload);
        assert!(!clean.contains('\u{1b}') && clean.contains("   ERROR: vtysh failed"), "{clean:?}");
        assert_eq!(refused_lines(&clean), vec!["line 3: % Unknown command:  neighbor 192.168.11.9 remote-az 64512"]);
        let vtysh = "line 10: % Unknown command[25]:  neighbor 192.168.11.9 remote-az 64512\nline 12: % Invalid \
                     input\n";
        assert_eq!(refused_lines(vtysh).len(), 2);
        assert!(refused_lines("vtysh: no line here\nline x: %").is_empty());
        let bgpd = "% Specify remote-as or peer-group commands first\nline 2: Failure to communicate[13] to bgpd, \
                    line:  neighbor 192.168.11.2 timers connect 9\n";
        assert_eq!(
            refused_lines(bgpd),
            vec![
                "line 2: Failure to communicate[13] to bgpd, line:  neighbor 192.168.11.2 timers connect 9 (% \
                  Specify remote-as or peer-group commands first)"
            ]
        );
    }

    #[test]
    fn pathspaces() {
        assert!(valid_pathspace("router-1"));
        assert!(!valid_pathspace(".."));
        assert!(!valid_pathspace("a/b"));
        assert!(!valid_pathspace(""));
        let f = Frr::new(Some("r1".into()), None).unwrap();
        assert_eq!(f.config_path, PathBuf::from("/etc/frr/r1/frr.conf"));
        assert_eq!(f.rundir(), PathBuf::from("/var/run/frr/r1"));
    }
}
