//! The documentation holds together: every relative link in README.md and docs/ names a file that exists, and an
//! anchor (`file.md#heading`) names a heading of that file (GitHub's slugs); the README stays short; the module
//! rules docs/design.md states are the ones tests/layering.rs checks.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn documents() -> Vec<PathBuf> {
    let mut out = vec![repo().join("README.md"), repo().join("BENCHMARKS.md")];
    for e in std::fs::read_dir(repo().join("docs")).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "md") {
            out.push(e.path());
        }
    }
    out.sort();
    out
}

/// The targets of `[text](target)` links outside code blocks and code spans.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fence = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fence = !fence;
            continue;
        }
        if fence {
            continue;
        }
        // Drop code spans, where `](` is text.
        let plain: String = line.split('`').step_by(2).collect::<Vec<_>>().join("");
        let mut rest = plain.as_str();
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let Some(end) = after.find(')') else { break };
            out.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    out
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> Vec<String> {
    let mut fence = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fence = !fence;
        } else if !fence && line.starts_with('#') {
            out.push(slug(line.trim_start_matches('#')));
        }
    }
    out
}

fn broken(doc: &Path, target: &str) -> Option<String> {
    if target.contains("://") || target.starts_with("mailto:") {
        return None;
    }
    let (file, anchor) = match target.split_once('#') {
        Some((f, a)) => (f, Some(a)),
        None => (target, None),
    };
    let path = if file.is_empty() { doc.to_path_buf() } else { doc.parent().unwrap().join(file) };
    if !path.exists() {
        return Some(format!("{}: {target}: {} does not exist", doc.display(), path.display()));
    }
    if let Some(a) = anchor {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if !anchors(&text).iter().any(|h| h == a) {
            return Some(format!("{}: {target}: no heading #{a} in {}", doc.display(), path.display()));
        }
    }
    None
}

#[test]
fn every_relative_link_resolves() {
    let mut problems = Vec::new();
    let mut count = 0;
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).unwrap();
        for target in links(&text) {
            count += 1;
            problems.extend(broken(&doc, &target));
        }
    }
    assert!(count > 20, "only {count} links found: the link scanner is broken");
    assert!(problems.is_empty(), "broken links:\n{}", problems.join("\n"));
}

#[test]
fn the_checker_finds_broken_links() {
    let doc = repo().join("README.md");
    assert!(broken(&doc, "docs/design.md").is_none());
    assert!(broken(&doc, "docs/nowhere.md").is_some());
    assert!(broken(&doc, "docs/design.md#rules-between-modules").is_none());
    assert!(broken(&doc, "docs/design.md#no-such-heading").is_some());
    assert_eq!(links("see [a](b.md) and `[x](y)` and\n```\n[c](d)\n```\n[e](f#g)"), ["b.md", "f#g"]);
    assert_eq!(slug("Metrics, probes and alerts"), "metrics-probes-and-alerts");
}

#[test]
fn the_readme_is_short() {
    let lines = std::fs::read_to_string(repo().join("README.md")).unwrap().lines().count();
    assert!(lines <= 150, "README.md has {lines} lines; the reference belongs in docs/");
}

#[test]
fn design_states_the_rule_the_source_test_checks() {
    let design = std::fs::read_to_string(repo().join("docs/design.md")).unwrap();
    let layering = std::fs::read_to_string(repo().join("tests/layering.rs")).unwrap();
    assert!(design.contains("Only the entry points and `src/commands/` use `src/cni/`"), "docs/design.md");
    assert!(design.contains("tests/layering.rs"), "docs/design.md names the test that checks the rule");
    for allowed in ["main.rs", "bin/", "cni/", "commands/"] {
        assert!(layering.contains(&format!("\"{allowed}\"")), "tests/layering.rs allows {allowed}");
    }
}
