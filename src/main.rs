//! The `openpe-passthrough` binary: a CNI plugin when CNI_COMMAND is set, a small tool for people otherwise.
//! This is the one place that prints and exits.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use openpe::bgp::Secrets;
use openpe::cni::{self, Command};
use openpe::error::IoContext;
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
        return tool(args);
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
            .io_ctx(|| "cannot read the network configuration from stdin".into())?;
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
            let version = cni::reply_version(&stdin, |v| cni::check_version(v).is_ok());
            openpe::log_error!("{e}");
            print_json(&cni::to_json(&e, &version));
            ExitCode::FAILURE
        }
    }
}

fn tool(args: Vec<String>) -> ExitCode {
    log::set_level(log::Level::Warn);
    match parse_tool(args) {
        Ok(Tool::Help) => {
            print!("{HELP}");
            ExitCode::SUCCESS
        }
        Ok(Tool::Version) => {
            println!("openpe-passthrough {} (CNI {})", env!("CARGO_PKG_VERSION"), cni::SUPPORTED_VERSIONS.join(", "));
            ExitCode::SUCCESS
        }
        Ok(Tool::Inspect { dir, json }) => inspect_cmd(&dir, json),
        Ok(Tool::Render { file, index, secrets }) => render_cmd(&file, index, secrets),
        Err(e) => usage(&e.to_string()),
    }
}

enum Tool {
    Help,
    Version,
    Inspect { dir: PathBuf, json: bool },
    Render { file: PathBuf, index: Option<u32>, secrets: Secrets },
}

fn parse_tool(args: Vec<String>) -> Result<Tool, lexopt::Error> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args);
    let cmd = match p.next()? {
        Some(Long("help") | Short('h')) => return Ok(Tool::Help),
        Some(Long("version") | Short('V')) => return Ok(Tool::Version),
        Some(Value(v)) => v.string()?,
        Some(other) => return Err(other.unexpected()),
        None => return Ok(Tool::Help),
    };
    match cmd.as_str() {
        "help" => Ok(Tool::Help),
        "version" => Ok(Tool::Version),
        "inspect" => {
            let (mut dir, mut json) = (PathBuf::from(config::DEFAULT_STATE_DIR), false);
            while let Some(arg) = p.next()? {
                match arg {
                    Long("json") => json = true,
                    Long("state-dir") => dir = p.value()?.into(),
                    other => return Err(other.unexpected()),
                }
            }
            Ok(Tool::Inspect { dir, json })
        }
        "render" => {
            let (mut file, mut index, mut secrets) = (None, None, Secrets::Mask);
            while let Some(arg) = p.next()? {
                match arg {
                    Long("show-secrets") => secrets = Secrets::Show,
                    Long("netconf") => file = Some(PathBuf::from(p.value()?)),
                    Long("node-index") => index = Some(p.value()?.parse()?),
                    other => return Err(other.unexpected()),
                }
            }
            let file = file.ok_or("render needs --netconf FILE")?;
            Ok(Tool::Render { file, index, secrets })
        }
        other => Err(format!("unknown command {other:?}").into()),
    }
}

fn inspect_cmd(dir: &Path, as_json: bool) -> ExitCode {
    if !dir.exists() {
        if as_json {
            println!("[]");
        } else {
            eprintln!("no state directory at {}: no attachments", dir.display());
        }
        return ExitCode::SUCCESS;
    }
    match StateDir::open_read_only(dir).and_then(|d| inspect::records(&d)) {
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

fn render_cmd(file: &Path, index: Option<u32>, secrets: Secrets) -> ExitCode {
    let rendered = std::fs::read(file)
        .io_ctx(|| format!("cannot read {}", file.display()))
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

fn usage(msg: &str) -> ExitCode {
    eprintln!("openpe-passthrough: {msg}\n\n{HELP}");
    ExitCode::from(2)
}
