//! `openpe-sidecar`: keeps FRR's configuration in the router namespace equal to what the state directory says.
//! This is the one place that prints and exits; logs go to stderr, `status` output to stdout.

use std::path::PathBuf;
use std::process::ExitCode;

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
      The state directory defaults to /run/openpe-passthrough.
  openpe-sidecar status [--frr-pathspace NAME] [--json]
      Whether FRR answers, and each BGP neighbor with its state and the prefixes received.
  openpe-sidecar --version | --help
";

fn usage(msg: &str) -> ExitCode {
    eprintln!("openpe-sidecar: {msg}\n\n{HELP}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    log::set_program("openpe-sidecar");
    log::set_level(Level::Info);
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--help" | "-h" | "help") => {
            print!("{HELP}");
            ExitCode::SUCCESS
        }
        Some("--version" | "-V" | "version") => {
            println!("openpe-sidecar {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some("status") => status(&args[1..]),
        _ => run(&args),
    }
}

fn status(args: &[String]) -> ExitCode {
    let mut pathspace = None;
    let mut as_json = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => as_json = true,
            "--frr-pathspace" => match it.next() {
                Some(p) => pathspace = Some(p.clone()),
                None => return usage("--frr-pathspace needs a name"),
            },
            other => return usage(&format!("unknown argument {other:?}")),
        }
    }
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

fn run(args: &[String]) -> ExitCode {
    let mut state_dir = PathBuf::from(DEFAULT_STATE_DIR);
    let mut pathspace = None;
    let mut config = None;
    let mut extra = None;
    let mut once = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or_else(|| format!("{name} needs a value"));
        let parsed = match a.as_str() {
            "--once" => {
                once = true;
                Ok(())
            }
            "--state-dir" => value("--state-dir").map(|v| state_dir = PathBuf::from(v)),
            "--frr-pathspace" => value("--frr-pathspace").map(|v| pathspace = Some(v)),
            "--frr-config" => value("--frr-config").map(|v| config = Some(PathBuf::from(v))),
            "--frr-extra" => value("--frr-extra").map(|v| extra = Some(PathBuf::from(v))),
            "--log-level" => value("--log-level").and_then(|v| {
                Level::parse(&v)
                    .map(log::set_level)
                    .ok_or_else(|| format!("--log-level: {v:?} is not error, warn, info or debug"))
            }),
            other => Err(format!("unknown argument {other:?}")),
        };
        if let Err(msg) = parsed {
            return usage(&msg);
        }
    }
    let frr = match Frr::new(pathspace, config) {
        Ok(f) => f,
        Err(e) => return usage(&e.msg),
    };
    let mut sc = match Sidecar::new(Options { state_dir, frr, extra }) {
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
