//! The one definition of the simulated node, shared by the integration tests (tests/common) and the benchmark
//! (benches/passthrough.rs): what the host namespace's underlay NIC `toswitch` and its ToR peer look like, as
//! `ip -batch` scripts. Plain text and no dependencies, so that both can include it.

/// The host side: `toswitch`, a veth whose peer `tor-side` lives in the ToR namespace `tor` (so the NIC dies
/// with the namespaces), 192.168.11.3/24 and 2001:db8:11::3/64, MTU 1400, a default route, a static route and an
/// IPv6 route through the ToR.
pub fn host_setup(tor: &str) -> String {
    format!(
        "link add toswitch type veth peer name tor-side netns {tor}
link set toswitch mtu 1400 up
addr add 192.168.11.3/24 dev toswitch
addr add 2001:db8:11::3/64 dev toswitch nodad
route add default via 192.168.11.2 dev toswitch metric 50
route add 172.20.0.0/16 via 192.168.11.2 dev toswitch
route add 2001:db8:99::/64 via 2001:db8:11::2 dev toswitch metric 7
"
    )
}

/// The ToR side of the NIC.
pub const TOR_SETUP: &str = "link set tor-side up\naddr add 192.168.11.2/24 dev tor-side\n";
