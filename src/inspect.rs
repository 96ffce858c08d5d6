//! `openpe-passthrough inspect`: the attachments of a state directory, as a table or JSON, passwords masked.
//!
//! A reader without the lock: it never writes or deletes. Every readable record is listed (an earlier boot's
//! too, marked so); an unreadable one is listed with the reason instead of hiding the others.

use serde_json::{json, Value};

use crate::error::Result;
use crate::state::{Record, StateDir};

/// One file of the records directory.
pub enum Entry {
    Record { rec: Box<Record>, earlier_boot: bool },
    Unreadable { stem: String, reason: String },
}

/// Replace every neighbor password with a mask, in place.
pub(crate) fn mask_secrets(rec: &mut Record) {
    for n in &mut rec.underlay.neighbors {
        if n.password.is_some() {
            n.password = Some(crate::bgp::render::MASK.into());
        }
    }
}

pub fn records(dir: &StateDir) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    for stem in dir.stems()? {
        match dir.read_stem(&stem) {
            Ok(Some(mut rec)) => {
                mask_secrets(&mut rec);
                let earlier_boot = rec.boot_id != dir.boot_id();
                out.push(Entry::Record { rec: Box::new(rec), earlier_boot });
            }
            // Removed since the listing: not there any more.
            Ok(None) => {}
            Err(e) => out.push(Entry::Unreadable { stem, reason: e.msg }),
        }
    }
    Ok(out)
}

/// The records as they are stored (format 2), and `{"file", "unreadable"}` for each unreadable one.
pub fn json(entries: &[Entry]) -> Value {
    Value::Array(
        entries
            .iter()
            .map(|e| match e {
                Entry::Record { rec, .. } => serde_json::to_value(rec).unwrap_or(Value::Null),
                Entry::Unreadable { stem, reason } => json!({"file": format!("{stem}.json"), "unreadable": reason}),
            })
            .collect(),
    )
}

pub fn table(entries: &[Entry]) -> String {
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
    let mut unreadable = Vec::new();
    for e in entries {
        let (r, earlier_boot) = match e {
            Entry::Record { rec, earlier_boot } => (rec, *earlier_boot),
            Entry::Unreadable { stem, reason } => {
                unreadable.push(format!("unreadable: {stem}.json: {reason}"));
                continue;
            }
        };
        let alive = if earlier_boot {
            "no (earlier boot)"
        } else if r.netns.is_alive() && r.host_netns.is_alive() {
            "yes"
        } else {
            "no"
        };
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
            alive.to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    for u in unreadable {
        out.push_str(&u);
        out.push('\n');
    }
    out
}
