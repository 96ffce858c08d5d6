//! Neighbor passwords by reference (`passwordSecret`): the sidecar reads `DIR/NAME/KEY` (`--secrets-dir`, where
//! the router pod mounts each Secret as a directory of its own) every time it renders. Kubernetes mounts a
//! Secret as `KEY -> ..data/KEY`, `..data -> ..2026_12_01_10_00_00.123`, and swaps `..data` atomically on an
//! update: following the symlinks gives the old or the new value, never half of one. The value is what the
//! file holds less one trailing newline, under the limits of an inline password.
//!
//! A neighbor whose Secret is missing, unreadable or invalid is left out of the rendered configuration (never
//! a session without its password); the log says why, once per change, never quoting the value, and
//! `status` shows it. The watch loop renders on every tick, so the neighbor comes back as soon as the file is
//! right.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::config::{valid_password, SecretRef, Underlay};
use crate::{log_info, log_warn};

pub const DEFAULT_SECRETS_DIR: &str = "/etc/openpe/secrets";

/// A neighbor left out of the configuration, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LeftOut {
    /// The neighbor as FRR names it (an address, an interface or a listen range's peer group).
    pub(crate) peer: String,
    pub(crate) reason: String,
}

/// The password in `dir/name/key`, or why there is none (a message that never contains the file's content).
fn read(dir: &Path, r: &SecretRef) -> Result<String, String> {
    let secret_dir = dir.join(&r.name);
    let path = secret_dir.join(&r.key);
    let shown = path.display();
    let real = std::fs::canonicalize(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            format!(
                "{shown} does not exist (mount the Secret {:?} at {} with the key {:?})",
                r.name,
                secret_dir.display(),
                r.key
            )
        }
        _ => format!("cannot read {shown}: {e}"),
    })?;
    // The kubelet's symlinks stay inside the Secret's directory; one that leads elsewhere is not the Secret.
    let inside = std::fs::canonicalize(&secret_dir).is_ok_and(|d| real.starts_with(d));
    if !inside {
        return Err(format!("{shown} leads outside {} (to {})", secret_dir.display(), real.display()));
    }
    let mut file = std::fs::File::open(&real).map_err(|e| format!("cannot read {shown}: {e}"))?;
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return Err(format!("{shown} is not a regular file"));
    }
    // 80 characters, a newline, and one byte more to tell a longer file.
    let mut bytes = Vec::new();
    file.by_ref().take(82).read_to_end(&mut bytes).map_err(|e| format!("cannot read {shown}: {e}"))?;
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
    }
    match String::from_utf8(bytes) {
        Ok(s) if valid_password(&s) => Ok(s),
        _ => Err(format!("the content of {shown} {}", crate::config::PASSWORD_RULE)),
    }
}

/// The Secrets of one sidecar: where they are mounted, and what was last reported about them (so that the log
/// says each change once, not once a tick).
pub(crate) struct SecretStore {
    dir: PathBuf,
    reported: Mutex<Vec<LeftOut>>,
}

impl SecretStore {
    pub(crate) fn new(dir: PathBuf) -> SecretStore {
        SecretStore { dir, reported: Mutex::new(Vec::new()) }
    }

    /// `underlay` with every `passwordSecret` replaced by the password it holds, and without the neighbors
    /// whose Secret cannot be used.
    pub(crate) fn resolve(&self, underlay: &Underlay) -> Underlay {
        let mut out = underlay.clone();
        let mut left_out = Vec::new();
        out.neighbors.retain_mut(|n| {
            let Some(r) = n.password_secret.take() else {
                return true;
            };
            match read(&self.dir, &r) {
                Ok(pw) => {
                    n.password = Some(pw);
                    true
                }
                Err(why) => {
                    left_out.push(LeftOut {
                        peer: n.peer_name(),
                        reason: format!("passwordSecret {}/{}: {why}", r.name, r.key),
                    });
                    false
                }
            }
        });
        let mut reported = self.reported.lock().unwrap_or_else(|p| p.into_inner());
        for l in left_out.iter().filter(|l| !reported.contains(l)) {
            log_warn!(
                "leaving BGP neighbor {} out of the configuration until its password can be read: {}",
                l.peer,
                l.reason
            );
        }
        for l in reported.iter().filter(|l| !left_out.iter().any(|m| m.peer == l.peer)) {
            if underlay.neighbors.iter().any(|n| n.peer_name() == l.peer) {
                log_info!("BGP neighbor {}: its passwordSecret can be read now; configuring it", l.peer);
            }
        }
        *reported = left_out;
        out
    }

    /// The neighbors the last render left out.
    pub(crate) fn left_out(&self) -> Vec<LeftOut> {
        self.reported.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A Secret mounted as the kubelet does: `KEY -> ..data/KEY`, `..data -> ..TIMESTAMP`.
    fn mount(dir: &Path, name: &str, version: &str, files: &[(&str, &str)]) {
        let secret = dir.join(name);
        let real = secret.join(format!("..{version}"));
        std::fs::create_dir_all(&real).unwrap();
        for (k, v) in files {
            std::fs::write(real.join(k), v).unwrap();
            let link = secret.join(k);
            if link.symlink_metadata().is_err() {
                symlink(format!("..data/{k}"), link).unwrap();
            }
        }
        let tmp = secret.join("..data_tmp");
        symlink(format!("..{version}"), &tmp).unwrap();
        std::fs::rename(&tmp, secret.join("..data")).unwrap();
    }

    fn r(name: &str, key: &str) -> SecretRef {
        SecretRef { name: name.into(), key: key.into() }
    }

    #[test]
    fn reads_through_the_kubelet_symlinks_and_follows_an_update() {
        let dir = std::env::temp_dir().join(format!("openpe-secrets-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        mount(&dir, "tor", "2026_12_01_a", &[("password", "Md5Secret1\n"), ("other", "x\n\n")]);
        assert_eq!(read(&dir, &r("tor", "password")), Ok("Md5Secret1".into()));
        // Only one trailing newline goes: the rest is content, and a newline is not a password character.
        assert!(read(&dir, &r("tor", "other")).unwrap_err().contains("printable ASCII"));
        mount(&dir, "tor", "2026_12_01_b", &[("password", "Md5Secret2")]);
        assert_eq!(read(&dir, &r("tor", "password")), Ok("Md5Secret2".into()));
        let missing = read(&dir, &r("tor", "nokey")).unwrap_err();
        assert!(missing.contains("does not exist"), "{missing}");
        mount(&dir, "bad", "v1", &[("password", &"p".repeat(81)), ("space", "a b")]);
        for key in ["password", "space"] {
            let e = read(&dir, &r("bad", key)).unwrap_err();
            assert!(e.contains("must be 1 to 80 printable ASCII"), "{e}");
            assert!(!e.contains("ppp") && !e.contains("a b"), "the message quotes the value: {e}");
        }
        symlink("/etc/hostname", dir.join("tor").join("escape")).unwrap();
        assert!(read(&dir, &r("tor", "escape")).unwrap_err().contains("leads outside"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
