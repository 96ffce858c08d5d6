//! BFD needs bfdd: FRR 8.4 accepts a `bfd` block and `neighbor X bfd profile P` without it and silently drops
//! them, so a session would run believing it has BFD while a silent path failure waits for the hold timer.
//! Before applying a configuration that uses BFD, the sidecar checks that bfdd answers in its pathspace.

use crate::bgp::fabric::uses_bfd;
use crate::config::Underlay;
use crate::error::{Error, Result};

use super::frr::Frr;

/// Ok when no neighbor has BFD, or when bfdd is among the daemons vtysh reaches; otherwise an error saying so
/// (the apply is refused and retried).
pub(crate) fn require_bfdd(frr: &Frr, underlay: &Underlay) -> Result<()> {
    if !uses_bfd(underlay) {
        return Ok(());
    }
    // The daemons whose vty sockets answer: what vtysh's `show daemons` lists, without a vtysh process on
    // every pass.
    let daemons = frr.daemons().join(" ");
    match bfdd_listed(&daemons) {
        true => Ok(()),
        false => Err(Error::io(format!(
            "a neighbor has BFD but bfdd does not answer in {} (daemons: {}): not applying, since FRR would \
             accept the BFD settings and drop them; turn bfdd on in FRR's daemons file (bfdd=yes)",
            frr.pathspace.as_deref().map_or("the default FRR instance".to_string(), |p| format!("pathspace {p:?}")),
            daemons.trim()
        ))),
    }
}

/// Whether `show daemons` (space-separated names) lists bfdd.
fn bfdd_listed(daemons: &str) -> bool {
    daemons.split_whitespace().any(|d| d == "bfdd")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_show_daemons() {
        assert!(bfdd_listed(" zebra bgpd bfdd\n"));
        assert!(!bfdd_listed(" zebra bgpd\n"));
        assert!(!bfdd_listed(" zebra bgpd bfdd-x\n"));
    }
}
