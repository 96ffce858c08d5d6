//! Network namespaces: identity (the kernel's namespace cookie, beside path plus nsfs device and inode), and brief
//! visits to open netlink sockets and write sysctls there. `setns` changes only the calling thread, and the plugin has only one thread; every visit
//! goes through a guard that returns to the original namespace even on early return.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::sched::{setns, CloneFlags};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Input, Result};
use crate::netlink::Netlink;

/// A namespace as recorded: the path it was reached by, the nsfs device and inode it had then, and its cookie.
///
/// The kernel hands a freed nsfs inode to the next namespace within a few create/delete cycles, so device and
/// inode do not tell a dead namespace from a new one. The cookie (`SO_NETNS_COOKIE`) is unique for the boot and
/// never reused: when both sides have one, it alone decides. Records written before the cookie existed (and
/// kernels older than 5.14, which have no cookie) are judged by device and inode, as before.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NsId {
    pub path: PathBuf,
    pub dev: u64,
    pub ino: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<u64>,
}

impl NsId {
    /// A stable name for the namespace itself, used to key claims in the state directory: `cookie-<n>`, or
    /// `<dev>_<ino>` for a namespace without a cookie (and for the claims of format-1 records).
    pub fn key(&self) -> String {
        match self.cookie {
            Some(c) => format!("cookie-{c}"),
            None => self.inode_key(),
        }
    }

    /// The claim name by device and inode, which records without a cookie used.
    pub(crate) fn inode_key(&self) -> String {
        format!("{}_{}", self.dev, self.ino)
    }

    /// Alive: the recorded path still opens to the same namespace. With a cookie: to an nsfs file of a network
    /// namespace whose cookie is the recorded one (anything else at the path counts as dead). Without: to the
    /// recorded device and inode.
    pub(crate) fn is_alive(&self) -> bool {
        // Another nsfs inode at the path is another namespace, whatever the cookie; the same inode may be a new
        // namespace that reuses it, which only the cookie tells.
        let same_inode = std::fs::metadata(&self.path).is_ok_and(|m| m.dev() == self.dev && m.ino() == self.ino);
        match self.cookie {
            Some(c) if same_inode => {
                Netns::open(&self.path, Input::Runtime, "recorded namespace").is_ok_and(|ns| ns.id.cookie == Some(c))
            }
            _ => same_inode,
        }
    }

    pub(crate) fn same_ns(&self, other: &NsId) -> bool {
        match (self.cookie, other.cookie) {
            (Some(a), Some(b)) => a == b,
            _ => self.dev == other.dev && self.ino == other.ino,
        }
    }
}

/// `SO_NETNS_COOKIE` (Linux 5.14): the cookie of the network namespace a socket was made in.
const SO_NETNS_COOKIE: libc::c_int = 71;

/// The cookie of the network namespace this thread is in, or None where the kernel has none (before 5.14).
fn cookie_here() -> Option<u64> {
    // SAFETY: plain socket(2); the descriptor is owned (and closed) by OwnedFd right away.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: fd was just returned by socket(2) and nothing else owns it.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    socket_cookie(sock.as_raw_fd())
}

/// The cookie of the network namespace the socket `fd` was made in.
fn socket_cookie(fd: RawFd) -> Option<u64> {
    let mut cookie: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: the option writes at most `len` bytes into `cookie`, which is a u64 of that size.
    let rc =
        unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, SO_NETNS_COOKIE, (&mut cookie as *mut u64).cast(), &mut len) };
    (rc == 0 && len as usize == std::mem::size_of::<u64>()).then_some(cookie)
}

/// An open network namespace.
pub struct Netns {
    file: File,
    pub id: NsId,
}

const NSFS_MAGIC: i64 = 0x6e73_6673;
const NS_GET_NSTYPE: libc::c_ulong = 0xb703;

impl Netns {
    /// Open `path` and make sure it is a network namespace. `field` names where the path came from, for
    /// people; `input` says who gave it, which decides how a bad path is reported.
    pub fn open(path: &Path, input: Input, field: &str) -> Result<Netns> {
        let file = File::open(path).map_err(|e| {
            Error::invalid(input, format!("{field}: cannot open network namespace {}: {e}", path.display()))
                .with_source(e)
        })?;
        Self::from_file(file, path, input, field)
    }

    /// Open `path` as [`Netns::open`] does, with a netlink socket inside it: one visit, which reads the cookie
    /// from that socket.
    pub fn open_with_netlink(path: &Path, input: Input, field: &str) -> Result<(Netns, Netlink)> {
        let file = File::open(path).map_err(|e| {
            Error::invalid(input, format!("{field}: cannot open network namespace {}: {e}", path.display()))
                .with_source(e)
        })?;
        let ns = Self::checked(file, path, input, field)?;
        ns.with_netlink()
    }

    /// This namespace (its cookie not read yet) with a netlink socket inside it, and the cookie read from it.
    fn with_netlink(mut self) -> Result<(Netns, Netlink)> {
        let nl = self.netlink()?;
        self.id.cookie = socket_cookie(nl.as_raw_fd());
        Ok((self, nl))
    }

    /// The recorded namespace, open with a netlink socket inside it (one visit), or None when it provably died:
    /// its path does not exist, or opens to something other than a network namespace, or to another one
    /// (another nsfs inode, or another cookie; see [`NsId::is_alive`]). Any other failure (EPERM, EMFILE, ...)
    /// is an error.
    pub(crate) fn open_recorded(id: &NsId, what: &str) -> Result<Option<(Netns, Netlink)>> {
        let file = match File::open(&id.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(
                    Error::kernel(format!("cannot look at the {what} {}: {e}", id.path.display())).with_source(e)
                )
            }
        };
        let Ok(ns) = Self::checked(file, &id.path, Input::Runtime, what) else { return Ok(None) };
        if (ns.id.dev, ns.id.ino) != (id.dev, id.ino) {
            return Ok(None);
        }
        let (ns, nl) = ns.with_netlink()?;
        Ok(ns.id.same_ns(id).then_some((ns, nl)))
    }

    fn from_file(file: File, path: &Path, input: Input, field: &str) -> Result<Netns> {
        let mut ns = Self::checked(file, path, input, field)?;
        // The cookie is read from a socket made inside the namespace.
        ns.id.cookie = ns.run(cookie_here)?;
        Ok(ns)
    }

    /// An nsfs file of a network namespace, its cookie not read yet.
    fn checked(file: File, path: &Path, input: Input, field: &str) -> Result<Netns> {
        let not_netns = || Error::invalid(input, format!("{field}: {} is not a network namespace", path.display()));
        let fs = nix::sys::statfs::fstatfs(file.as_fd()).map_err(|_| not_netns())?;
        if fs.filesystem_type().0 as i64 != NSFS_MAGIC {
            return Err(not_netns());
        }
        // SAFETY: NS_GET_NSTYPE takes no argument and only reads the descriptor, which stays open here.
        let kind = unsafe { libc::ioctl(file.as_raw_fd(), NS_GET_NSTYPE as _) };
        if kind != libc::CLONE_NEWNET {
            return Err(not_netns());
        }
        let m = file.metadata().map_err(|_| not_netns())?;
        Ok(Netns { id: NsId { path: path.to_path_buf(), dev: m.dev(), ino: m.ino(), cookie: None }, file })
    }

    /// The namespace this thread is in now.
    pub fn current() -> Result<Netns> {
        let path = Path::new("/proc/thread-self/ns/net");
        let file = File::open(path).map_err(|e| Error::kernel(format!("cannot open {}: {e}", path.display())))?;
        let mut ns = Self::checked(file, path, Input::Runtime, "the plugin's own namespace")?;
        // Already inside: no visit (which would need CAP_SYS_ADMIN, which a sidecar may lack).
        ns.id.cookie = cookie_here();
        ns.id.path = PathBuf::from("/proc/self/ns/net");
        Ok(ns)
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// Run `f` inside this namespace and come back, whatever `f` returns.
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> Result<T> {
        let _guard = Visit::enter(self)?;
        Ok(f())
    }

    /// A netlink socket bound inside this namespace.
    pub fn netlink(&self) -> Result<Netlink> {
        let place = self.id.path.display().to_string();
        Ok(self.run(|| Netlink::open(&place))??)
    }

    /// Write a sysctl (path under /proc/sys) as seen from inside this namespace.
    pub(crate) fn write_sysctl(&self, key: &str, value: &str) -> Result<()> {
        self.write_sysctls(&[(key, value)])
    }

    /// Write several sysctls in one visit, in order, stopping at the first failure.
    pub(crate) fn write_sysctls(&self, settings: &[(&str, &str)]) -> Result<()> {
        self.run(|| -> Result<()> {
            for (key, value) in settings {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(format!("/proc/sys/{key}"))
                    .and_then(|mut f| f.write_all(value.as_bytes()))
                    .map_err(|e| Error::kernel(format!("setting {key}={value} in {}: {e}", self.id.path.display())))?;
            }
            Ok(())
        })?
    }

    pub(crate) fn read_sysctl(&self, key: &str) -> Result<String> {
        self.run(|| std::fs::read_to_string(format!("/proc/sys/{key}")))?
            .map(|s| s.trim().to_string())
            .map_err(|e| Error::kernel(format!("reading {key} in {}: {e}", self.id.path.display())))
    }
}

/// While alive, the thread is inside another namespace; dropping it returns to where the thread was. A visit of
/// the namespace the thread is in already changes nothing (no `setns`).
struct Visit {
    home: Option<&'static File>,
}

/// The namespace the (single) thread started in, opened once, with its nsfs device and inode: every visit
/// returns there.
static HOME: std::sync::OnceLock<(File, u64, u64)> = std::sync::OnceLock::new();

impl Visit {
    fn enter(target: &Netns) -> Result<Visit> {
        let (home, dev, ino) = match HOME.get() {
            Some(h) => h,
            None => {
                let h = File::open("/proc/thread-self/ns/net")
                    .map_err(|e| Error::kernel(format!("cannot open this thread's network namespace: {e}")))?;
                let m = h
                    .metadata()
                    .map_err(|e| Error::kernel(format!("cannot look at this thread's network namespace: {e}")))?;
                HOME.get_or_init(|| (h, m.dev(), m.ino()))
            }
        };
        // Visits do not nest, so the thread is at home here: the same nsfs inode (both files are open, so it
        // cannot have been reused) is the same namespace.
        if (target.id.dev, target.id.ino) == (*dev, *ino) {
            return Ok(Visit { home: None });
        }
        setns(target.file.as_fd(), CloneFlags::CLONE_NEWNET)
            .map_err(|e| Error::kernel(format!("cannot enter network namespace {}: {e}", target.id.path.display())))?;
        Ok(Visit { home: Some(home) })
    }
}

impl Drop for Visit {
    fn drop(&mut self) {
        let Some(home) = self.home else { return };
        if let Err(e) = setns(home.as_fd(), CloneFlags::CLONE_NEWNET) {
            // Staying in the wrong namespace would make every later operation act on the wrong links.
            crate::log_error!("cannot return to the original network namespace: {e}; aborting");
            std::process::abort();
        }
    }
}
