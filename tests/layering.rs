//! The module rules of docs/design.md, checked on the sources: the CNI protocol (`src/cni/`) is used only by the
//! entry points (`src/main.rs`, `src/bin/`) and the verbs (`src/commands/`); every other module speaks the
//! domain (`crate::error`), so a change of protocol never reaches the datapath, the state directory, the
//! configuration, BGP rendering or the sidecar.

use std::path::{Path, PathBuf};

/// Where `crate::cni` may be used (paths relative to src/).
const MAY_USE_CNI: &[&str] = &["main.rs", "lib.rs", "bin/", "cni/", "commands/"];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The lines of `text` that reach the CNI module: `use crate::cni`, a `crate::cni::` path, or `super::cni`.
fn cni_uses(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .filter(|l| {
            let l = l.replace(' ', "");
            l.contains("crate::cni")
                || l.contains("super::cni")
                || l.contains("crate::{cni")
                || l.contains(",cni,")
                || l.contains(",cni}")
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn only_the_entry_points_and_the_verbs_use_the_cni_protocol() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    assert!(files.len() > 10, "the source tree was not found at {}", src.display());
    let mut offenders = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
        if MAY_USE_CNI.iter().any(|allowed| rel == *allowed || (allowed.ends_with('/') && rel.starts_with(allowed))) {
            continue;
        }
        for line in cni_uses(&std::fs::read_to_string(f).unwrap()) {
            offenders.push(format!("src/{rel}: {}", line.trim()));
        }
    }
    assert!(offenders.is_empty(), "only entry points and commands/ may use crate::cni:\n{}", offenders.join("\n"));
}

#[test]
fn the_check_sees_every_spelling_of_an_import() {
    for line in [
        "use crate::cni::Env;",
        "use crate::{cni, error};",
        "let v = crate::cni::SUPPORTED_VERSIONS;",
        "use super::cni::code;",
        "use crate::{error, cni, log};",
        "use crate::{error, cni};",
    ] {
        assert_eq!(cni_uses(line).len(), 1, "{line}");
    }
    for line in ["use crate::error::Error;", "// use crate::cni::Env;", "use crate::config::Cni;"] {
        assert!(cni_uses(line).is_empty(), "{line}");
    }
}
