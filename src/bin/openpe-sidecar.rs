//! `openpe-sidecar`: keeps FRR's configuration in the router namespace equal to what the state directory says.
//! This is the one place that prints and exits; logs go to stderr, `status` output to stdout.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use openpe::config::DEFAULT_STATE_DIR;
use openpe::log::{self, Level};
use openpe::sidecar::{self, frr, Frr, Options, Sidecar};

const HELP: &str = "\
openpe-sidecar: keeps FRR's configuration in the router's network namespace equal to the attachment that the
openpe-passthrough state directory records for that namespace.

Usage:
  openpe-sidecar [--state-dir DIR] [--frr-pathspace NAME] [--frr-config PATH] [--frr-extra FILE] [--once]
                 [--log-level error|warn|info|debug]
      Run inside the router namespace, next to FRR. Renders the BGP configuration of the attachment whose
      router namespace is this one, appends --frr-extra verbatim, writes it atomically to --frr-config
      (default /etc/frr[/NAME]/frr.conf) and applies it with frr-reload.py --test, then --reload.
      Without --once it watches the state directory and re-applies on every change, removes the BGP
      configuration when the attachment goes away, re-applies after FRR restarts, and retries failures.
      When DEL marks the attachment as going away it first shuts down every BGP neighbor of the attachment
      (a NOTIFICATION, Cease) and tells DEL; on SIGTERM it does the same before it exits.
      The state directory defaults to /run/openpe-passthrough.
  openpe-sidecar drain [--frr-pathspace NAME] [--state-dir DIR] [--timeout SECONDS]
      Run inside the router namespace (a pod's preStop hook): shut down every BGP neighbor of the attachment
      of this namespace and wait (default 10 s) until FRR reports them down. Exits 1 if they are not.
  openpe-sidecar status [--frr-pathspace NAME] [--json]
      Whether FRR answers, and each BGP neighbor with its state and the prefixes received.
  openpe-sidecar --version | --help
";

fn usage(msg: &str) -> ExitCode {
    eprintln!("openpe-sidecar: {msg}\n\n{HELP}");
    ExitCode::from(2)
}

enum Cli {
    Help,
    Version,
    Status { pathspace: Option<String>, json: bool },
    Drain { opts: RunOpts, timeout: Duration },
    Run { opts: RunOpts, once: bool },
}

struct RunOpts {
    state_dir: PathBuf,
    pathspace: Option<String>,
    config: Option<PathBuf>,
    extra: Option<PathBuf>,
}

fn parse(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Cli, lexopt::Error> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args);
    let mut opts = RunOpts { state_dir: PathBuf::from(DEFAULT_STATE_DIR), pathspace: None, config: None, extra: None };
    let (mut once, mut json, mut status, mut drain) = (false, false, false, false);
    let mut timeout = Duration::from_secs(10);
    while let Some(arg) = p.next()? {
        match arg {
            Long("help") | Short('h') => return Ok(Cli::Help),
            Long("version") | Short('V') => return Ok(Cli::Version),
            Value(v) if v == "help" => return Ok(Cli::Help),
            Value(v) if v == "version" => return Ok(Cli::Version),
            Value(v) if v == "status" && !status && !drain => status = true,
            Value(v) if v == "drain" && !status && !drain => drain = true,
            Long("timeout") if drain => {
                let v = p.value()?.string()?;
                let secs: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s >= 0.0 && *s <= 3600.0)
                    .ok_or_else(|| format!("--timeout: {v:?} is not a number of seconds from 0 to 3600"))?;
                timeout = Duration::from_secs_f64(secs);
            }
            Long("json") if status => json = true,
            Long("frr-pathspace") => opts.pathspace = Some(p.value()?.string()?),
            Long("once") if !status && !drain => once = true,
            Long("state-dir") if !status => opts.state_dir = p.value()?.into(),
            Long("frr-config") if !status && !drain => opts.config = Some(p.value()?.into()),
            Long("frr-extra") if !status && !drain => opts.extra = Some(p.value()?.into()),
            Long("log-level") => {
                let v = p.value()?.string()?;
                let level =
                    Level::parse(&v).ok_or_else(|| format!("--log-level: {v:?} is not error, warn, info or debug"))?;
                log::set_level(level);
            }
            other => return Err(other.unexpected()),
        }
    }
    Ok(if status {
        Cli::Status { pathspace: opts.pathspace, json }
    } else if drain {
        Cli::Drain { opts, timeout }
    } else {
        Cli::Run { opts, once }
    })
}

fn main() -> ExitCode {
    log::set_program("openpe-sidecar");
    log::set_level(Level::Info);
    match parse(std::env::args_os().skip(1)) {
        Ok(Cli::Help) => {
            print!("{HELP}");
            ExitCode::SUCCESS
        }
        Ok(Cli::Version) => {
            println!("openpe-sidecar {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Ok(Cli::Status { pathspace, json }) => status(pathspace, json),
        Ok(Cli::Run { opts, once }) => run(opts, once),
        Ok(Cli::Drain { opts, timeout }) => drain(opts, timeout),
        Err(e) => usage(&e.to_string()),
    }
}

fn status(pathspace: Option<String>, as_json: bool) -> ExitCode {
    let f = match Frr::new(pathspace, None) {
        Ok(f) => f,
        Err(e) => return usage(&e.msg),
    };
    let st = f.status();
    if as_json {
        println!("{}", serde_json::to_string_pretty(&st).unwrap_or_else(|_| "{}".into()));
    } else {
        print!("{}", frr::status_table(&st));
    }
    if st.frr_answers {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn drain(o: RunOpts, timeout: Duration) -> ExitCode {
    let frr = match Frr::new(o.pathspace, None) {
        Ok(f) => f,
        Err(e) => return usage(&e.msg),
    };
    match sidecar::drain::drain_namespace(&frr, &o.state_dir, timeout) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            openpe::log_error!("{}", e.msg);
            ExitCode::FAILURE
        }
    }
}

fn run(o: RunOpts, once: bool) -> ExitCode {
    let frr = match Frr::new(o.pathspace, o.config) {
        Ok(f) => f,
        Err(e) => return usage(&e.msg),
    };
    let mut sc = match Sidecar::new(Options { state_dir: o.state_dir, frr, extra: o.extra }) {
        Ok(s) => s,
        Err(e) => {
            openpe::log_error!("{}", e.msg);
            return ExitCode::FAILURE;
        }
    };
    let outcome = if once { sc.once() } else { sidecar::watch(&mut sc) };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            openpe::log_error!("{}", e.msg);
            ExitCode::FAILURE
        }
    }
}
