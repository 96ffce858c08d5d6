//! `openpe-passthrough inspect`: the attachments of a state directory, as a table or JSON, passwords masked.

use serde_json::Value;

use crate::error::Result;
use crate::state::{Record, StateDir};

/// Replace every neighbor password with a mask, in place.
pub fn mask_secrets(rec: &mut Record) {
    for n in &mut rec.underlay.neighbors {
        if n.password.is_some() {
            n.password = Some("********".into());
        }
    }
}

pub fn records(dir: &StateDir) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    for stem in dir.stems()? {
        if let Some(mut rec) = dir.load_stem(&stem)? {
            mask_secrets(&mut rec);
            out.push(rec);
        }
    }
    Ok(out)
}

pub fn json(records: &[Record]) -> Value {
    serde_json::to_value(records).unwrap_or(Value::Null)
}

pub fn table(records: &[Record]) -> String {
    let mut rows = vec![[
        "NETWORK",
        "CONTAINER",
        "IFNAME",
        "PHASE",
        "INDEX",
        "HOST ADDRESSES",
        "ROUTER NETNS",
        "HOST NETNS",
        "NICS",
        "ALIVE",
    ]
    .map(String::from)
    .to_vec()];
    for r in records {
        let alive = r.netns.is_alive() && r.host_netns.is_alive();
        rows.push(vec![
            r.key.network.clone(),
            r.key.container_id.chars().take(16).collect(),
            r.key.ifname.clone(),
            format!("{:?}", r.phase).to_lowercase(),
            format!("{} ({})", r.node_index, r.index_source),
            r.addresses.host.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(","),
            r.netns.path.display().to_string(),
            r.host_netns.path.display().to_string(),
            r.nics.iter().map(|n| n.name.clone()).collect::<Vec<_>>().join(","),
            if alive { "yes" } else { "no" }.to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}
