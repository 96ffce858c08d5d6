//! `openpe-sidecar`: keeps FRR's configuration in the router namespace equal to what the state directory says.
//! This is the one place that prints and exits; logs go to stderr, `status` output to stdout.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use openpe::config::DEFAULT_STATE_DIR;
use openpe::log::{self, Level};
use openpe::sidecar::metrics::{self, Health};
use openpe::sidecar::{self, frr, http, secrets, Frr, Options, Sidecar};

const HELP: &str = "\
openpe-sidecar: keeps FRR's configuration in the router's network namespace equal to the attachment that the
openpe-passthrough state directory records for that namespace.

Usage:
  openpe-sidecar [--state-dir DIR] [--frr-pathspace NAME] [--frr-config PATH] [--frr-extra FILE] [--once]
                 [--full-reload] [--secrets-dir DIR] [--http-listen ADDR:PORT] [--startup-window SECONDS]
                 [--log-level error|warn|info|debug]
      Run inside the router namespace, next to FRR. Renders the BGP configuration of the attachment whose
      router namespace is this one, appends --frr-extra verbatim, writes it atomically to --frr-config
      (default /etc/frr[/NAME]/frr.conf) and applies it: a change it knows how to express (an attachment
      added or removed, neighbors added or removed) as one configuration transaction of the difference
      (on the daemons' vty sockets, as vtysh -f sends it; vtysh -f when they do not answer), anything
      else (start-up, after an FRR restart or a failed apply) with frr-reload.py --reload; every apply is
      checked against FRR's running configuration. --full-reload always uses frr-reload.py.
      Without --once it watches the state directory and --frr-extra and re-applies on every change, removes
      the BGP configuration when the attachment goes away, re-applies after FRR restarts, and retries
      failures. The state directory defaults to /run/openpe-passthrough. See docs/sidecar.md.
      A neighbor's passwordSecret is read from --secrets-dir/NAME/KEY (default /etc/openpe/secrets, where the
      router pod mounts each Secret as a directory) on every render; a neighbor whose Secret is missing or
      invalid is left out (logged, and shown by status --http) until the file is right.
      When DEL marks the attachment as going away it first shuts down every BGP neighbor of the attachment
      (a NOTIFICATION, Cease) and tells DEL; on SIGTERM it does the same before it exits (docs/draining.md).
      --http-listen serves, on a thread of its own (off when not given; not with --once):
        /metrics  Prometheus text format: the sessions of the attachment (openpe_bgp_session_up, prefixes
                  received and advertised, BFD and maximum-prefix where configured) and the applies;
        /healthz  200 while FRR answers in the pathspace (apply failures do not fail it);
        /readyz   200 once every session is Established, or, after --startup-window (default 60 s), once one
                  underlay session is; 503 with a one-line reason otherwise, also while the last apply failed;
        /status   the same facts as JSON, for `status --http`.
  openpe-sidecar drain [--frr-pathspace NAME] [--state-dir DIR] [--timeout SECONDS]
      Run inside the router namespace (a pod's preStop hook): shut down every BGP neighbor of the attachment
      of this namespace and wait (default 10 s) until FRR reports them down. Exits 1 if they are not.
  openpe-sidecar status [--frr-pathspace NAME] [--json] [--http ADDR:PORT]
      Whether FRR answers, and each BGP neighbor with its state and the prefixes received. With --http (the
      running sidecar's --http-listen), also its readiness and reason, its sessions, and its applies.
  openpe-sidecar --version | --help
";

fn usage(msg: &str) -> ExitCode {
    eprintln!("openpe-sidecar: {msg}\n\n{HELP}");
    ExitCode::from(2)
}

enum Cli {
    Help,
    Version,
    Status { pathspace: Option<String>, json: bool, http: Option<SocketAddr> },
    Drain { opts: RunOpts, timeout: Duration },
    Run { opts: RunOpts, once: bool },
}

struct RunOpts {
    state_dir: PathBuf,
    pathspace: Option<String>,
    config: Option<PathBuf>,
    extra: Option<PathBuf>,
    full_reload: bool,
    secrets_dir: PathBuf,
    http_listen: Option<SocketAddr>,
    startup_window: Duration,
}

fn socket_addr(flag: &str, v: String) -> Result<SocketAddr, lexopt::Error> {
    v.parse().map_err(|_| format!("{flag}: {v:?} is not ADDR:PORT (such as 127.0.0.1:7480 or [::1]:7480)").into())
}

fn parse(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Cli, lexopt::Error> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args);
    let mut opts = RunOpts {
        state_dir: PathBuf::from(DEFAULT_STATE_DIR),
        pathspace: None,
        config: None,
        extra: None,
        full_reload: false,
        secrets_dir: PathBuf::from(secrets::DEFAULT_SECRETS_DIR),
        http_listen: None,
        startup_window: metrics::DEFAULT_STARTUP_WINDOW,
    };
    let (mut once, mut json, mut status, mut sidecar_addr, mut drain) = (false, false, false, None, false);
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
            Long("full-reload") if !status => opts.full_reload = true,
            Long("secrets-dir") if !status => opts.secrets_dir = p.value()?.into(),
            Long("http-listen") if !status => {
                opts.http_listen = Some(socket_addr("--http-listen", p.value()?.string()?)?)
            }
            Long("http") if status => sidecar_addr = Some(socket_addr("--http", p.value()?.string()?)?),
            Long("startup-window") if !status => {
                let v = p.value()?.string()?;
                let secs: u64 = v.parse().map_err(|_| format!("--startup-window: {v:?} is not a number of seconds"))?;
                opts.startup_window = Duration::from_secs(secs);
            }
            Long("log-level") => {
                let v = p.value()?.string()?;
                let level =
                    Level::parse(&v).ok_or_else(|| format!("--log-level: {v:?} is not error, warn, info or debug"))?;
                log::set_level(level);
            }
            other => return Err(other.unexpected()),
        }
    }
    if once && opts.http_listen.is_some() {
        return Err("--http-listen serves the watching sidecar; it does not go with --once".into());
    }
    Ok(if status {
        Cli::Status { pathspace: opts.pathspace, json, http: sidecar_addr }
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
        Ok(Cli::Status { pathspace, json, http }) => status(pathspace, json, http),
        Ok(Cli::Run { opts, once }) => run(opts, once),
        Ok(Cli::Drain { opts, timeout }) => drain(opts, timeout),
        Err(e) => usage(&e.to_string()),
    }
}

fn status(pathspace: Option<String>, as_json: bool, sidecar_addr: Option<SocketAddr>) -> ExitCode {
    let f = match Frr::new(pathspace, None) {
        Ok(f) => f,
        Err(e) => return usage(&e.msg),
    };
    let st = f.status();
    // The running sidecar's readiness and applies, when asked for (they live in its memory).
    let sidecar = sidecar_addr.map(http::fetch_report);
    if as_json {
        let mut v = serde_json::to_value(&st).unwrap_or_default();
        match &sidecar {
            Some(Ok(r)) => v["sidecar"] = serde_json::to_value(r).unwrap_or_default(),
            Some(Err(e)) => v["sidecarError"] = e.msg.clone().into(),
            None => {}
        }
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_else(|_| "{}".into()));
    } else {
        print!("{}", frr::status_table(&st));
        match &sidecar {
            Some(Ok(r)) => print!("sidecar: {}", metrics::report_table(r)),
            Some(Err(e)) => println!("sidecar: {}", e.msg),
            None => {}
        }
    }
    if matches!(sidecar, Some(Err(_))) {
        return ExitCode::FAILURE;
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
    let mut sc = match Sidecar::new(Options {
        state_dir: o.state_dir,
        frr,
        extra: o.extra,
        full_reload: o.full_reload,
        secrets_dir: o.secrets_dir,
    }) {
        Ok(s) => s,
        Err(e) => {
            openpe::log_error!("{}", e.msg);
            return ExitCode::FAILURE;
        }
    };
    // Issue 16: what the apply loop records, and the HTTP thread that serves it.
    let opts = sc.options();
    let health =
        Arc::new(Health::new(opts.frr.clone(), opts.state_dir.clone(), sc.namespace().clone(), o.startup_window));
    if let Some(addr) = o.http_listen {
        if let Err(e) = http::serve(addr, health.clone()) {
            openpe::log_error!("{}", e.msg);
            return ExitCode::FAILURE;
        }
    }
    let outcome = if once { sc.once() } else { sidecar::watch(&mut sc, &health) };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            openpe::log_error!("{}", e.msg);
            ExitCode::FAILURE
        }
    }
}
