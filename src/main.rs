//! The `openpe-passthrough` binary: a CNI plugin when CNI_COMMAND is set, a small tool for people otherwise.
//! This is the one place that prints and exits.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use openpe::cni::{self, CniError, Command};
use openpe::{commands, config, inspect, log, state::StateDir};

const HELP: &str = "\
openpe-passthrough: OpenPERouter's passthrough mode as a CNI plugin.

As a CNI plugin (CNI_COMMAND=ADD|DEL|CHECK|VERSION|STATUS|GC, configuration on stdin) it creates the veth pair
pt-host (host side) / pt-ns (router side, in CNI_NETNS), addresses them from l3passthrough's localcidr, and moves
the underlay NICs into the router namespace.

Usage:
  openpe-passthrough inspect [--state-dir DIR] [--json]   list the attachments (passwords masked)
  openpe-passthrough render --netconf FILE [--node-index N] [--show-secrets]
                                   print the FRR configuration FILE produces (passwords masked), touching nothing
  openpe-passthrough --version
  openpe-passthrough --help
";

fn main() -> ExitCode {
    log::set_program("openpe-passthrough");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cni_command = std::env::var("CNI_COMMAND").ok().filter(|c| !c.is_empty());
    if cni_command.is_none() && !args.is_empty() {
        return tool(&args);
    }
    cni_main()
}

fn print_json(v: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer(&mut out, v);
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

fn cni_main() -> ExitCode {
    let mut stdin = Vec::new();
    let command = Command::parse(&std::env::var("CNI_COMMAND").unwrap_or_default());
    let outcome = command.and_then(|c| {
        // VERSION's stdin may be empty; reading it is harmless and keeps the error reply's version right.
        std::io::stdin()
            .read_to_end(&mut stdin)
            .map_err(|e| CniError::io(format!("cannot read the network configuration from stdin: {e}")))?;
        commands::run(c, &stdin)
    });
    match outcome {
        Ok(Some(result)) => {
            print_json(&result);
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(e) => {
            // The reply carries the configuration's version when it has a supported one.
            let version = serde_json::from_slice::<serde_json::Value>(&stdin)
                .ok()
                .and_then(|v| config::version_of(&v).map(str::to_string))
                .filter(|v| cni::check_version(v).is_ok())
                .unwrap_or_else(|| cni::SUPPORTED_VERSIONS[cni::SUPPORTED_VERSIONS.len() - 1].to_string());
            openpe::log_error!("{e}");
            print_json(&e.to_json(&version));
            ExitCode::FAILURE
        }
    }
}

fn tool(args: &[String]) -> ExitCode {
    log::set_level(log::Level::Warn);
    match args[0].as_str() {
        "--help" | "-h" | "help" => {
            print!("{HELP}");
            ExitCode::SUCCESS
        }
        "--version" | "-V" | "version" => {
            println!("openpe-passthrough {} (CNI {})", env!("CARGO_PKG_VERSION"), cni::SUPPORTED_VERSIONS.join(", "));
            ExitCode::SUCCESS
        }
        "inspect" => {
            let mut dir = PathBuf::from(config::DEFAULT_STATE_DIR);
            let mut as_json = false;
            let mut it = args[1..].iter();
            while let Some(a) = it.next() {
                match a.as_str() {
                    "--json" => as_json = true,
                    "--state-dir" => match it.next() {
                        Some(d) => dir = PathBuf::from(d),
                        None => return usage("--state-dir needs a directory"),
                    },
                    other => return usage(&format!("unknown argument {other:?}")),
                }
            }
            if !dir.exists() {
                if as_json {
                    println!("[]");
                } else {
                    eprintln!("no state directory at {}: no attachments", dir.display());
                }
                return ExitCode::SUCCESS;
            }
            match StateDir::open_read_only(&dir).and_then(|d| inspect::records(&d)) {
                Ok(recs) if as_json => {
                    print_json(&inspect::json(&recs));
                    ExitCode::SUCCESS
                }
                Ok(recs) => {
                    print!("{}", inspect::table(&recs));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("openpe-passthrough inspect: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        "render" => {
            let mut file: Option<PathBuf> = None;
            let mut index: Option<u32> = None;
            let mut secrets = openpe::bgp::Secrets::Mask;
            let mut it = args[1..].iter();
            while let Some(a) = it.next() {
                match a.as_str() {
                    "--show-secrets" => secrets = openpe::bgp::Secrets::Show,
                    "--netconf" => match it.next() {
                        Some(f) => file = Some(PathBuf::from(f)),
                        None => return usage("--netconf needs a file"),
                    },
                    "--node-index" => match it.next().and_then(|n| n.parse().ok()) {
                        Some(n) => index = Some(n),
                        None => return usage("--node-index needs a whole number from 0 to 4294967295"),
                    },
                    other => return usage(&format!("unknown argument {other:?}")),
                }
            }
            let Some(file) = file else {
                return usage("render needs --netconf FILE");
            };
            let rendered = std::fs::read(&file)
                .map_err(|e| CniError::io(format!("cannot read {}: {e}", file.display())))
                .and_then(|b| config::parse_json(&b))
                .and_then(|v| openpe::bgp::render_netconf(&v, index, secrets));
            match rendered {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("openpe-passthrough render: {}: {}", file.display(), e.msg);
                    ExitCode::FAILURE
                }
            }
        }
        other => usage(&format!("unknown command {other:?}")),
    }
}

fn usage(msg: &str) -> ExitCode {
    eprintln!("openpe-passthrough: {msg}\n\n{HELP}");
    ExitCode::from(2)
}
