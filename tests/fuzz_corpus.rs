//! The committed fuzz corpus (fuzz/corpus/<target>/ and the hand-written fuzz/seeds/<target>/) replayed through
//! the fuzz targets' own invariant checks, on stable Rust and without libFuzzer: every input the fuzzer kept
//! stays a regression test of the normal suite.

#[path = "../fuzz/src/lib.rs"]
mod checks;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut count = 0;
    let mut failed = Vec::new();
    for dir in ["corpus", "seeds"] {
        let dir = root.join(dir).join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for file in files {
            let bytes = std::fs::read(&file).unwrap();
            count += 1;
            if catch_unwind(AssertUnwindSafe(|| check(&bytes))).is_err() {
                failed.push(file.display().to_string());
            }
        }
    }
    assert!(count > 0, "no corpus for {target}");
    assert!(failed.is_empty(), "{} of {count} {target} inputs broke an invariant: {failed:#?}", failed.len());
}

#[test]
fn config_corpus_keeps_its_invariants() {
    replay("config", checks::check_config);
}

#[test]
fn cni_args_corpus_keeps_its_invariants() {
    replay("cni_args", checks::check_cni_args);
}
