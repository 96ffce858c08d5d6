//! The state directory: one JSON record per attachment, plus claim files that index them by node index, router
//! namespace and host namespace so that no lookup reads every record.
//!
//! ```text
//! <stateDir>/lock                       flock: held for the whole of every ADD, DEL, CHECK and GC
//! <stateDir>/boot_id                    the boot the records belong to; another boot's records are stale
//! <stateDir>/attachments/<stem>.json    the records (0600, written to a temporary file and renamed);
//!                                       <stem> is <network>@<containerId> (format 1: ...@<ifname>)
//! <stateDir>/index/<n>                  claim: node index n is held by <stem>
//! <stateDir>/netns/cookie-<c>           claim: the router namespace with cookie c is held by <stem>
//! <stateDir>/netns/<dev>_<ino>          the same, for a namespace without a cookie (and format-1 records)
//! <stateDir>/hostns/...                 claim: that host namespace is held by <stem>, named the same way
//! <stateDir>/index.hint                 every index below it is claimed (a hint: claims are the truth)
//! <stateDir>/records-format             "2": no record of an older format is left (so none is looked for);
//!                                       written with a record once a listing found none
//! <stateDir>/tmp/                       files being written, renamed into place when complete
//! ```
//!
//! Order makes crashes safe: ADD writes the record, then the claims, then touches the kernel; teardown undoes
//! the kernel, then releases the claims, then removes the record, last. A claim therefore always names a record
//! (or is verified and dropped), and a record without claims has nothing left in the kernel.
//!
//! Teardown needs no free space: releasing claims and removing the record only unlink files, and the index
//! hint, the one file teardown would write, is best effort (removed when it cannot be lowered).
//!
//! Readers without the lock (the sidecar, `inspect`) never write or delete anything here; an earlier boot's
//! records are dropped only under the lock, by ADD, DEL, CHECK or GC.

pub mod record;

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub(crate) use record::bgp_from_config;
pub(crate) use record::{Delegate, IndexSource, Key, NicState, Phase, Record, FORMAT_VERSION};

use crate::error::{Error, IoContext, Result};
use crate::netns::NsId;
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
    /// Whether `attachments/` may hold records of format 1 (named with their ifname), which [`Self::find`] must
    /// then look for by listing the directory. False once `records-format` says no older record is left.
    format1_possible: bool,
    /// Whether `records-format` is known to say the current format (read at open, or written since).
    marker_current: std::cell::Cell<bool>,
}

/// `<stateDir>/records-format`: "2" when no record older than format 2 is in the directory (written under the
/// lock once a listing found none), so that finding an attachment never needs to list the records.
const FORMAT_MARKER: &str = "records-format";

pub(crate) fn current_boot_id() -> Result<String> {
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
    pub(crate) fn open_locked(root: &Path) -> Result<StateDir> {
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
        let mut dir = StateDir {
            root: root.to_path_buf(),
            boot_id: current_boot_id()?,
            _lock: Some(lock),
            format1_possible: true,
            marker_current: Default::default(),
        };
        dir.sweep_temporaries();
        dir.forget_other_boots()?;
        dir.format1_possible = dir.format1_present()?;
        Ok(dir)
    }

    /// Open for reading only, without the lock (records are replaced by rename, so a reader never sees half a
    /// record). For the sidecar and `inspect`.
    pub fn open_read_only(root: &Path) -> Result<StateDir> {
        check_dir(root)?;
        Ok(StateDir {
            root: root.to_path_buf(),
            boot_id: current_boot_id()?,
            _lock: None,
            format1_possible: true,
            marker_current: Default::default(),
        })
    }

    /// The directory itself (the drain handshake keeps the sidecar's files beside the records).
    pub(crate) fn root(&self) -> &Path {
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

    /// Every record of the attachment (`network`, `container_id`), whatever CNI_IFNAME it was added with: the
    /// format-2 record, then any format-1 records (named with their ifname). Records of another boot are
    /// left out (and dropped, under the lock).
    pub(crate) fn find(&self, network: &str, container_id: &str) -> Result<Vec<Record>> {
        let probe = Key { network: network.into(), container_id: container_id.into(), ifname: String::new() };
        let current = probe.stem();
        let mut out: Vec<Record> = self.load_stem(&current)?.into_iter().collect();
        if !self.format1_possible {
            return Ok(out);
        }
        let prefix = Key::format1_prefix(network, container_id);
        for stem in self.stems()? {
            if stem == current || !stem.starts_with(&prefix) {
                continue;
            }
            if let Some(rec) = self.load_stem(&stem)? {
                if rec.key.network == network && rec.key.container_id == container_id {
                    out.push(rec);
                }
            }
        }
        Ok(out)
    }

    /// The record in file `stem`, if any. A record of another boot reads as none (and is dropped under the
    /// lock; a reader without the lock leaves it).
    pub(crate) fn load_stem(&self, stem: &str) -> Result<Option<Record>> {
        let Some(rec) = self.read_stem(stem)? else {
            return Ok(None);
        };
        if rec.boot_id != self.boot_id {
            if self._lock.is_some() {
                log_warn!("dropping state record {} of an earlier boot", self.record_path(stem).display());
                let _ = fs::remove_file(self.record_path(stem));
            }
            return Ok(None);
        }
        Ok(Some(rec))
    }

    /// The record in file `stem` as it is, of whatever boot. Never writes.
    pub(crate) fn read_stem(&self, stem: &str) -> Result<Option<Record>> {
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
        let mut rec = Record::parse(&text).map_err(|e| {
            Error::unsafe_state(format!(
                "state record {} is unreadable ({e}); check the attachment by hand (README, 'Recovering by hand'), then remove the file",
                path.display()
            ))
        })?;
        record::check_stem(&rec, stem)?;
        rec.stem = stem.to_string();
        Ok(Some(rec))
    }

    pub(crate) fn save(&self, rec: &Record) -> Result<()> {
        let mut text = serde_json::to_vec_pretty(rec).map_err(|e| Error::io(format!("encoding record: {e}")))?;
        text.push(b'\n');
        self.write_atomic(&self.record_path(&rec.stem), &text)?;
        self.note_no_format1();
        Ok(())
    }

    /// Remove the record's file (an unlink: needs no free space).
    pub fn remove(&self, rec: &Record) -> Result<()> {
        let path = self.record_path(&rec.stem);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(Error::io(format!("removing {}: {e}", path.display()))),
            _ => Ok(()),
        }
    }

    /// The stems of every record, sorted. No records directory (a state directory nobody used yet) is none.
    pub(crate) fn stems(&self) -> Result<Vec<String>> {
        let dir = self.root.join("attachments");
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(format!("listing {}: {e}", dir.display()))),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.io_ctx(|| format!("listing {}", dir.display()))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(stem) = name.strip_suffix(".json") {
                out.push(stem.to_string());
            }
        }
        out.sort();
        Ok(out)
    }

    /// Whether any record of format 1 may be left (a stem with its ifname, or a hashed stem, which may be one).
    /// Listing is skipped when the marker says none is.
    fn format1_present(&self) -> Result<bool> {
        if nofollow_read(&self.root.join(FORMAT_MARKER)).is_ok_and(|s| s.trim() == FORMAT_VERSION.to_string()) {
            self.marker_current.set(true);
            return Ok(false);
        }
        Ok(self.stems()?.iter().any(|s| s.matches('@').count() >= 2 || s.contains('~')))
    }

    /// Say in the marker that no older record is left, once a listing found none. Written with a record (never
    /// by an invocation that changes nothing), best effort: without it the next invocation lists again.
    fn note_no_format1(&self) {
        let marker = self.root.join(FORMAT_MARKER);
        if self.format1_possible || self.marker_current.get() {
            return;
        }
        // Not atomic and without fault points on purpose: a torn marker reads as absent, which only means
        // listing again, and the crash tests' fault points stay the same whether or not it exists.
        let written = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&marker)
            .and_then(|mut f| f.write_all(format!("{FORMAT_VERSION}\n").as_bytes()));
        match written {
            Ok(()) => self.marker_current.set(true),
            Err(e) => log_debug!("not writing {}: {e}", marker.display()),
        }
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

    /// Who claims namespace `id`: the claim's name and its holder's stem. A namespace with a cookie is looked
    /// up by cookie, then by device and inode (the claims of records written before the cookie).
    pub(crate) fn ns_holder(&self, kind: Claim, id: &NsId) -> Result<Option<(String, String)>> {
        let mut names = vec![id.key()];
        if id.cookie.is_some() {
            names.push(id.inode_key());
        }
        for name in names {
            if let Some(stem) = self.holder(kind, &name)? {
                return Ok(Some((name, stem)));
            }
        }
        Ok(None)
    }

    /// The attachment whose router namespace is `me` (the sidecar's and the metrics' question): found by its
    /// claim, by cookie (or, for a record written before the cookie, device and inode), and only if the record
    /// says the same namespace. None when no attachment holds it, or a claim is between its record's steps.
    pub(crate) fn router_attachment(&self, me: &NsId) -> Result<Option<Record>> {
        let Some((_, stem)) = self.ns_holder(Claim::Netns, me)? else {
            return Ok(None);
        };
        Ok(self.load_stem(&stem)?.filter(|rec| rec.netns.same_ns(me)))
    }

    pub fn claim(&self, kind: Claim, name: &str, rec: &Record) -> Result<()> {
        self.write_atomic(&self.claim_path(kind, name), rec.stem.as_bytes())
    }

    /// Release a claim, only if `rec` holds it. Needs no free space.
    pub fn release(&self, kind: Claim, name: &str, rec: &Record) -> Result<()> {
        if self.holder(kind, name)?.as_deref() == Some(rec.stem.as_str()) {
            let path = self.claim_path(kind, name);
            if kind == Claim::Index {
                if let Ok(n) = name.parse::<u32>() {
                    self.lower_hint(n);
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
    pub(crate) fn drop_orphan(&self, kind: Claim, name: &str) {
        let _ = fs::remove_file(self.claim_path(kind, name));
    }

    fn hint(&self) -> u32 {
        nofollow_read(&self.root.join("index.hint")).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
    }

    /// After releasing index `n`, the hint must not stay above it. Best effort: when it cannot be written (a
    /// full filesystem) it is removed, which only costs the next allocation a search from 0.
    fn lower_hint(&self, n: u32) {
        if n >= self.hint() {
            return;
        }
        let path = self.root.join("index.hint");
        if let Err(e) = self.write_atomic(&path, n.to_string().as_bytes()) {
            log_warn!("cannot lower the index hint ({}); removing it instead", e.msg);
            if let Err(e) = fs::remove_file(&path) {
                if e.kind() != ErrorKind::NotFound {
                    log_warn!("cannot remove {} either: {e}; allocation may skip index {n}", path.display());
                }
            }
        }
    }

    /// The lowest node index nobody claims. Every index below the hint is claimed, so the search starts there.
    pub(crate) fn lowest_free_index(&self) -> Result<u32> {
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
    /// Best effort: a hint left lower is still true.
    pub(crate) fn advance_hint(&self, n: u32) {
        if let Err(e) = self.write_atomic(&self.root.join("index.hint"), n.saturating_add(1).to_string().as_bytes()) {
            log_warn!("cannot advance the index hint ({}); the next allocation searches from the old one", e.msg);
        }
    }

    /// Remove the temporary files that crashed writers left behind: under the lock nobody else is writing.
    fn sweep_temporaries(&self) {
        let Ok(entries) = fs::read_dir(self.root.join(TMP_DIR)) else { return };
        for e in entries.flatten() {
            let _ = fs::remove_file(e.path());
        }
    }
}
