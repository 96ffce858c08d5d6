//! A network namespace's cookie (`SO_NETNS_COOKIE`): a 64-bit number the kernel gives each network namespace,
//! unique for the boot and never reused, unlike the nsfs inode. Read from a socket made inside the namespace
//! (a socket belongs to the namespace it was created in).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::error::{Error, Result};
use crate::netns::Netns;

/// `SO_NETNS_COOKIE` (Linux 5.14 and later for getsockopt); not in every libc crate release.
const SO_NETNS_COOKIE: libc::c_int = 71;

/// The cookie of the namespace the calling thread is in.
pub fn current_cookie() -> Result<u64> {
    // SAFETY: socket(2) with constant arguments; the descriptor is owned below.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        return Err(Error::kernel(format!("cannot make a socket to read the network namespace cookie: {e}")));
    }
    // SAFETY: fd is a fresh descriptor that nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut cookie: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `cookie`, which lives across the call.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_NETNS_COOKIE,
            (&mut cookie as *mut u64).cast(),
            &mut len,
        )
    };
    if rc != 0 || len as usize != std::mem::size_of::<u64>() {
        let e = std::io::Error::last_os_error();
        return Err(Error::kernel(format!("cannot read the network namespace cookie (SO_NETNS_COOKIE): {e}")));
    }
    Ok(cookie)
}

/// The cookie of `ns`, read on a socket made inside it.
pub fn cookie_of(ns: &Netns) -> Result<u64> {
    ns.run(current_cookie)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_namespace_has_one_stable_cookie() {
        let a = current_cookie().unwrap();
        assert_ne!(a, 0);
        assert_eq!(cookie_of(&Netns::current().unwrap()).unwrap(), a);
    }
}
