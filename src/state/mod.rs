//! The state directory: one JSON record per attachment, plus claim files that index them by node index, router
//! namespace and host namespace so that no lookup reads every record.
//!
//! ```text
//! <stateDir>/lock                       flock: held for the whole of every ADD, DEL, CHECK and GC
//! <stateDir>/boot_id                    the boot the records belong to; another boot's records are stale
//! <stateDir>/attachments/<key>.json     the records (0600, written to a temporary file and renamed)
//! <stateDir>/index/<n>                  claim: node index n is held by <key>
//! <stateDir>/netns/<dev>_<ino>          claim: that router namespace is held by <key>
//! <stateDir>/hostns/<dev>_<ino>         claim: that host namespace is held by <key>
//! <stateDir>/index.hint                 every index below it is claimed (a hint: claims are the truth)
//! <stateDir>/tmp/                       files being written, renamed into place when complete
//! ```
//!
//! Order makes crashes safe: ADD writes the record, then the claims, then touches the kernel; teardown undoes
//! the kernel, then releases the claims, then removes the record, last. A claim therefore always names a record
//! (or is verified and dropped), and a record without claims has nothing left in the kernel.

pub mod record;

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub use record::{Delegate, Key, NicState, Phase, Record, FORMAT_VERSION};

use crate::error::{Error, IoContext, Result};
use crate::{log_debug, log_warn};

/// What a claim file stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    Index,
    Netns,
    HostNetns,
}

impl Claim {
    fn dir(self) -> &'static str {
        match self {
            Claim::Index => "index",
            Claim::Netns => "netns",
            Claim::HostNetns => "hostns",
        }
    }
}

const SUBDIRS: [&str; 4] = ["attachments", "index", "netns", "hostns"];
const TMP_DIR: &str = "tmp";

pub struct StateDir {
    root: PathBuf,
    boot_id: String,
    _lock: Option<File>,
}

pub fn current_boot_id() -> Result<String> {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .io_ctx(|| "reading /proc/sys/kernel/random/boot_id".into())
}

fn nofollow_read(path: &Path) -> std::io::Result<String> {
    let mut f = OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path)?;
    let mut s = String::new();
    f.read_to_string(&mut s)?;
    Ok(s)
}

/// Refuse a directory that another user could change under us: a symlink, not ours, or writable by others.
fn check_dir(path: &Path) -> Result<()> {
    let m = fs::symlink_metadata(path).io_ctx(|| format!("state directory {}", path.display()))?;
    let euid = nix::unistd::geteuid().as_raw();
    let problem = if m.file_type().is_symlink() {
        Some("is a symbolic link")
    } else if !m.is_dir() {
        Some("is not a directory")
    } else if m.uid() != euid {
        Some("is owned by another user")
    } else if m.mode() & 0o022 != 0 {
        Some("is writable by group or others")
    } else {
        None
    };
    match problem {
        Some(p) => Err(Error::unsafe_state(format!(
            "stateDir: {} {p}; use a directory owned by uid {euid} with mode 0700, or remove it so it is made afresh",
            path.display()
        ))),
        None => Ok(()),
    }
}

fn ensure_dir(path: &Path) -> Result<()> {
    match fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => check_dir(path),
        Err(e) => Err(Error::io(format!("stateDir: cannot create {}: {e}", path.display()))),
    }
}

impl StateDir {
    /// Open (creating it 0700 if needed), check and lock the state directory for one whole operation.
    pub fn open_locked(root: &Path) -> Result<StateDir> {
        if let Some(parent) = root.parent() {
            if !parent.exists() {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o755)
                    .create(parent)
                    .io_ctx(|| format!("stateDir: cannot create {}", parent.display()))?;
            }
        }
        ensure_dir(root)?;
        for sub in SUBDIRS.iter().chain(&[TMP_DIR]) {
            ensure_dir(&root.join(sub))?;
        }
        let lock_path = root.join("lock");
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&lock_path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) => {
                    Error::unsafe_state(format!("stateDir: {} is a symbolic link", lock_path.display()))
                }
                _ => Error::io(format!("stateDir: cannot open {}: {e}", lock_path.display())),
            })?;
        lock.lock().io_ctx(|| format!("stateDir: cannot lock {}", lock_path.display()))?;
        crate::fault::point("state:locked");
        let dir = StateDir { root: root.to_path_buf(), boot_id: current_boot_id()?, _lock: Some(lock) };
        dir.sweep_temporaries();
        dir.forget_other_boots()?;
        Ok(dir)
    }

    /// Open for reading only, without the lock (records are replaced by rename, so a reader never sees half a
    /// record). For the sidecar and `inspect`.
    pub fn open_read_only(root: &Path) -> Result<StateDir> {
        check_dir(root)?;
        Ok(StateDir { root: root.to_path_buf(), boot_id: current_boot_id()?, _lock: None })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn boot_id(&self) -> &str {
        &self.boot_id
    }

    /// Records of an earlier boot describe namespaces and links that no longer exist, and NIC states that may
    /// no longer be true: never restore them, drop them.
    fn forget_other_boots(&self) -> Result<()> {
        let path = self.root.join("boot_id");
        match nofollow_read(&path) {
            Ok(b) if b.trim() == self.boot_id => return Ok(()),
            Ok(b) => {
                log_warn!(
                    "state directory {} is from an earlier boot ({}); dropping its records",
                    self.root.display(),
                    b.trim()
                );
                for sub in SUBDIRS {
                    for entry in fs::read_dir(self.root.join(sub)).io_ctx(|| format!("listing {sub}"))? {
                        let entry = entry.io_ctx(|| format!("listing {sub}"))?;
                        let _ = fs::remove_file(entry.path());
                    }
                }
                let _ = fs::remove_file(self.root.join("index.hint"));
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(Error::unsafe_state(format!("stateDir: cannot read {}: {e}", path.display()))),
        }
        self.write_atomic(&path, format!("{}\n", self.boot_id).as_bytes())
    }

    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        // Temporaries live in their own directory, so that sweeping what a crashed writer left costs one
        // read of a normally empty directory, whatever the number of records.
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("x");
        let tmp = self.root.join(TMP_DIR).join(format!("{}.{name}", std::process::id()));
        crate::fsutil::write_atomically(&tmp, path, bytes, None)
            .map_err(|e| Error::io(format!("writing {}: {e}", path.display())))?;
        crate::fault::point("state:renamed");
        Ok(())
    }

    // --- records -----------------------------------------------------------------------------------------------

    fn record_path(&self, stem: &str) -> PathBuf {
        self.root.join("attachments").join(format!("{stem}.json"))
    }

    /// The record of `key`, if any. A record of another boot is dropped and reads as none.
    pub fn load(&self, key: &Key) -> Result<Option<Record>> {
        self.load_stem(&key.file_stem())
    }

    pub fn load_stem(&self, stem: &str) -> Result<Option<Record>> {
        let path = self.record_path(stem);
        let text = match nofollow_read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(Error::unsafe_state(format!(
                    "state record {} is a symbolic link; remove it (records are never links)",
                    path.display()
                )))
            }
            Err(e) => return Err(Error::io(format!("reading state record {}: {e}", path.display()))),
        };
        let rec: Record = serde_json::from_str(&text).map_err(|e| {
            Error::unsafe_state(format!(
                "state record {} is unreadable ({e}); check the attachment by hand (README, 'Recovering by hand'), then remove the file",
                path.display()
            ))
        })?;
        if rec.format != FORMAT_VERSION {
            return Err(Error::unsafe_state(format!(
                "state record {} has format {}, this plugin reads format {FORMAT_VERSION}",
                path.display(),
                rec.format
            )));
        }
        if rec.boot_id != self.boot_id {
            log_warn!("dropping state record {} of an earlier boot", path.display());
            let _ = fs::remove_file(&path);
            return Ok(None);
        }
        Ok(Some(rec))
    }

    pub fn save(&self, rec: &Record) -> Result<()> {
        let mut text = serde_json::to_vec_pretty(rec).map_err(|e| Error::io(format!("encoding record: {e}")))?;
        text.push(b'\n');
        self.write_atomic(&self.record_path(&rec.key.file_stem()), &text)
    }

    pub fn remove(&self, key: &Key) -> Result<()> {
        let path = self.record_path(&key.file_stem());
        match fs::remove_file(&path) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(Error::io(format!("removing {}: {e}", path.display()))),
            _ => Ok(()),
        }
    }

    /// The stems of every record, sorted.
    pub fn stems(&self) -> Result<Vec<String>> {
        let dir = self.root.join("attachments");
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).io_ctx(|| format!("listing {}", dir.display()))? {
            let entry = entry.io_ctx(|| format!("listing {}", dir.display()))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(stem) = name.strip_suffix(".json") {
                if !name.starts_with('.') {
                    out.push(stem.to_string());
                }
            }
        }
        out.sort();
        Ok(out)
    }

    // --- claims ------------------------------------------------------------------------------------------------

    fn claim_path(&self, kind: Claim, name: &str) -> PathBuf {
        self.root.join(kind.dir()).join(name)
    }

    /// The record stem holding claim `name`, if the claim exists.
    pub fn holder(&self, kind: Claim, name: &str) -> Result<Option<String>> {
        let path = self.claim_path(kind, name);
        match nofollow_read(&path) {
            Ok(s) => Ok(Some(s.trim().to_string())),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                Err(Error::unsafe_state(format!("claim {} is a symbolic link; remove it", path.display())))
            }
            Err(e) => Err(Error::io(format!("reading {}: {e}", path.display()))),
        }
    }

    pub fn claim(&self, kind: Claim, name: &str, key: &Key) -> Result<()> {
        self.write_atomic(&self.claim_path(kind, name), key.file_stem().as_bytes())
    }

    /// Release a claim, only if `key` holds it.
    pub fn release(&self, kind: Claim, name: &str, key: &Key) -> Result<()> {
        if self.holder(kind, name)?.as_deref() == Some(key.file_stem().as_str()) {
            let path = self.claim_path(kind, name);
            if kind == Claim::Index {
                if let Ok(n) = name.parse::<u32>() {
                    self.lower_hint(n)?;
                }
            }
            match fs::remove_file(&path) {
                Err(e) if e.kind() != ErrorKind::NotFound => {
                    return Err(Error::io(format!("removing {}: {e}", path.display())))
                }
                _ => log_debug!("released {}", path.display()),
            }
            crate::fault::point("state:claim-released");
        }
        Ok(())
    }

    /// Drop a claim whose holder has no record (only possible after tampering: see the module comment).
    pub fn drop_orphan(&self, kind: Claim, name: &str) {
        let _ = fs::remove_file(self.claim_path(kind, name));
    }

    fn hint(&self) -> u32 {
        nofollow_read(&self.root.join("index.hint")).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
    }

    fn lower_hint(&self, n: u32) -> Result<()> {
        if n < self.hint() {
            self.write_atomic(&self.root.join("index.hint"), n.to_string().as_bytes())?;
        }
        Ok(())
    }

    /// The lowest node index nobody claims. Every index below the hint is claimed, so the search starts there.
    pub fn lowest_free_index(&self) -> Result<u32> {
        let mut n = self.hint();
        loop {
            if self.holder(Claim::Index, &n.to_string())?.is_none() {
                return Ok(n);
            }
            n = n.checked_add(1).ok_or_else(|| Error::busy("every node index is taken"))?;
        }
    }

    /// After claiming `n` from [`Self::lowest_free_index`], everything up to it is claimed.
    /// (The search checked every index from the hint up to `n`.)
    pub fn advance_hint(&self, n: u32) -> Result<()> {
        self.write_atomic(&self.root.join("index.hint"), n.saturating_add(1).to_string().as_bytes())
    }

    /// Remove the temporary files that crashed writers left behind: under the lock nobody else is writing.
    fn sweep_temporaries(&self) {
        let Ok(entries) = fs::read_dir(self.root.join(TMP_DIR)) else { return };
        for e in entries.flatten() {
            let _ = fs::remove_file(e.path());
        }
    }
}
