//! Golden-file tests of the FRR renderer: each `tests/golden/<case>.json` (a network configuration with its
//! `nodeIndex`) must render exactly `tests/golden/<case>.frr`; `neighbors.masked.frr` is the same case as
//! `openpe-passthrough render` prints it without `--show-secrets`.
//! `UPDATE_GOLDEN=1 cargo test --test render` rewrites the expected files (review the diff before committing).

use std::path::{Path, PathBuf};
use std::process::Command;

use openpe::bgp::{render_netconf, Secrets};

const CASES: &[&str] = &[
    "ipv4",
    "dualstack",
    "host-external",
    "host-internal",
    "ibgp-host",
    "host-local-as",
    "neighbors",
    "multihop-ttl",
    "upstream-sample",
    // Routing safety (docs/routing-safety.md): split horizon with several underlay neighbors, eBGP and iBGP;
    // both host limits in both families; allowedPrefixes of one family only (the other refuses everything),
    // with a 4-byte underlay ASN in the split-horizon community.
    "split-horizon",
    "limits",
    "limits-one-family",
    "unnumbered",
    "ipv6-tor",
    "listen-range",
    "bfd",
    "graceful-restart",
    "graceful-restart-timers",
    "address-families",
    "route-reflector",
    "fabric",
];

/// The `upstream-sample` case is the sample configuration that carries upstream's current Underlay and
/// L3Passthrough whole (`netconf/upstream/*.yaml`, as users copy them), not a file of its own.
const UPSTREAM_SAMPLE: &str = "netconf/30-openpe-upstream-resources.conf";

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn check(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        // A CI run must compare, never rewrite, or a regression would pass by becoming the expectation.
        assert!(std::env::var_os("CI").is_none(), "UPDATE_GOLDEN is for a person at a terminal, never for CI");
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 creates it)", path.display()));
    assert_eq!(actual, expected, "{} differs from the rendered configuration", path.display());
}

fn render_case(case: &str, secrets: Secrets) -> String {
    let path = match case {
        "upstream-sample" => Path::new(env!("CARGO_MANIFEST_DIR")).join(UPSTREAM_SAMPLE),
        _ => golden_dir().join(format!("{case}.json")),
    };
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    render_netconf(&v, None, secrets).unwrap_or_else(|e| panic!("{case}: {}", e.msg))
}

#[test]
fn golden_files() {
    for case in CASES {
        check(&format!("{case}.frr"), &render_case(case, Secrets::Show));
    }
}

/// FRR itself accepts every golden file: `vtysh --dryrun` parses a file with FRR's own command grammar
/// without any daemon (Debian's frr package, which scripts/install-deps.sh installs).
#[test]
fn frr_accepts_golden_files() {
    for case in CASES {
        let path = golden_dir().join(format!("{case}.frr"));
        assert!(path.exists(), "{}: missing (UPDATE_GOLDEN=1 creates it)", path.display());
        let out = Command::new("vtysh")
            .arg("--dryrun")
            .arg("-f")
            .arg(&path)
            .output()
            .expect("vtysh (Debian package frr) must be installed: run scripts/install-deps.sh");
        assert!(
            out.status.success(),
            "vtysh rejects {}: {}{}",
            path.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The check can fail: a misspelt command is refused.
    let bad = std::env::temp_dir().join(format!("openpe-bad-{}.frr", std::process::id()));
    std::fs::write(&bad, "router bgp 1\n neighbor 192.0.2.1 remote-az 2\n").unwrap();
    let ok = Command::new("vtysh").arg("--dryrun").arg("-f").arg(&bad).output().unwrap().status.success();
    let _ = std::fs::remove_file(&bad);
    assert!(!ok, "vtysh --dryrun accepted a misspelt command");
}

/// Every line the renderer writes has one of the shapes FRR expects: no value can add a line of its own.
#[test]
fn every_line_has_a_known_shape() {
    let allowed = [
        "!",
        "bfd",
        " profile openpe-bfd",
        "  detect-multiplier ",
        "  receive-interval ",
        "  transmit-interval ",
        "  passive-mode",
        "  minimum-ttl ",
        " exit",
        "bgp route-map delay-timer 1",
        "route-map allowall permit 1",
        "route-map openpe-underlay-in permit 10",
        "route-map openpe-underlay-out deny 10",
        "route-map openpe-underlay-out permit 20",
        "route-map openpe-host-in-ipv4 ",
        "route-map openpe-host-in-ipv6 ",
        " set large-community ",
        " match large-community openpe-from-underlay",
        " match ip address prefix-list openpe-host-allowed-ipv4",
        " match ipv6 address prefix-list openpe-host-allowed-ipv6",
        "bgp large-community-list standard openpe-from-underlay seq 5 permit ",
        "ip prefix-list openpe-host-allowed-ipv4 seq ",
        "ipv6 prefix-list openpe-host-allowed-ipv6 seq ",
        "exit",
        "router bgp ",
        " bgp router-id ",
        " bgp cluster-id ",
        " bgp graceful-restart",
        " bgp listen range ",
        " bgp listen limit ",
        " no bgp ",
        " neighbor ",
        " !",
        " address-family ",
        "  network ",
        "  neighbor ",
        " exit-address-family",
    ];
    for case in CASES {
        for line in render_case(case, Secrets::Show).lines() {
            assert!(allowed.iter().any(|p| line.starts_with(p)), "{case}: unexpected line {line:?}");
        }
    }
}

/// The sample holds upstream's two resources exactly as users copy them: its `underlay` and `l3passthrough` are
/// the YAML files, value for value.
#[test]
fn the_upstream_sample_is_the_resources_pasted_whole() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let conf: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join(UPSTREAM_SAMPLE)).unwrap()).unwrap();
    for (key, file) in [("underlay", "underlay.yaml"), ("l3passthrough", "l3passthrough.yaml")] {
        let yaml = std::fs::read_to_string(root.join("netconf/upstream").join(file)).unwrap();
        let resource: serde_json::Value = serde_norway::from_str(&yaml).unwrap();
        assert_eq!(conf[key], resource, "{UPSTREAM_SAMPLE}: {key} is not netconf/upstream/{file}");
    }
}

/// `properties: [{type: ebgpMultiHop, ebgpMultiHop: {ttl}}]` renders its TTL; without one, FRR's maximum; never on
/// iBGP, where FRR ignores it, nor for TTL 1, FRR's single-hop default (the upstream sample's).
#[test]
fn ebgp_multihop_ttl() {
    let text = render_case("multihop-ttl", Secrets::Show);
    for line in [
        " neighbor 192.168.11.2 ebgp-multihop 2\n",
        " neighbor 192.168.12.2 ebgp-multihop 255\n",
        " neighbor 2001:db8:12::2 ebgp-multihop 64\n",
    ] {
        assert!(text.contains(line), "{line:?} missing from\n{text}");
    }
    assert!(!text.contains("192.168.13.2 ebgp-multihop"), "iBGP neighbor given ebgp-multihop:\n{text}");
    let sample = render_case("upstream-sample", Secrets::Show);
    assert!(sample.contains(" neighbor 192.168.11.2 timers 3 9\n") && !sample.contains("ebgp-multihop"), "{sample}");
}

#[test]
fn passwords_masked_and_shown() {
    let masked = render_case("neighbors", Secrets::Mask);
    assert!(!masked.contains("s3cr#t!x") && !masked.contains("other-Secret"));
    check("neighbors.masked.frr", &masked);
    assert!(render_case("neighbors", Secrets::Show).contains("password s3cr#t!x"));
}

/// The `render` subcommand prints the same text, masked unless --show-secrets, and touches nothing.
#[test]
fn render_subcommand() {
    let bin = env!("CARGO_BIN_EXE_openpe-passthrough");
    let file = golden_dir().join("neighbors.json");
    let out = Command::new(bin).args(["render", "--netconf"]).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), render_case("neighbors", Secrets::Mask));
    let out = Command::new(bin)
        .args(["render", "--show-secrets", "--node-index", "7", "--netconf"])
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("password s3cr#t!x"));
    assert!(text.contains(" bgp router-id 172.16.5.8\n"), "{text}");
    assert!(text.contains("  network 192.169.10.9/32\n"), "{text}");

    // A configuration list works too; an invalid configuration names its field and fails.
    let conflist = Path::new(env!("CARGO_MANIFEST_DIR")).join("netconf/20-openpe.conflist");
    let out = Command::new(bin).args(["render", "--netconf"]).arg(&conflist).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("address-family ipv6 unicast"));
    let bad = std::env::temp_dir().join(format!("openpe-render-bad-{}.json", std::process::id()));
    std::fs::write(
        &bad,
        r#"{"cniVersion": "1.0.0", "name": "x", "underlay": {"asn": 0, "nics": [], "neighbors": []},
            "l3passthrough": {"hostsession": {"asn": 1, "hostasn": 2, "localcidr": {"ipv4": "10.1.0.0/24"}}}}"#,
    )
    .unwrap();
    let out = Command::new(bin).args(["render", "--netconf"]).arg(&bad).output().unwrap();
    let _ = std::fs::remove_file(&bad);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("underlay.asn"));
}

/// The sidecar's transaction from nothing to each golden case, and back, is accepted by FRR's grammar too.
#[test]
fn frr_accepts_the_delta_transactions() {
    let nothing = openpe::bgp::unconfigured();
    for case in CASES {
        let text = render_case(case, Secrets::Show);
        for (from, to) in [(&nothing, &text), (&text, &nothing)] {
            let t = openpe::sidecar::delta::plan(from, to).unwrap_or_else(|| panic!("{case}: no delta"));
            let path = std::env::temp_dir().join(format!("openpe-delta-{}-{case}.frr", std::process::id()));
            std::fs::write(&path, &t).unwrap();
            let out = Command::new("vtysh").arg("--dryrun").arg("-f").arg(&path).output().unwrap();
            let _ = std::fs::remove_file(&path);
            assert!(
                out.status.success(),
                "vtysh rejects the delta of {case}: {}\n{t}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }
}
