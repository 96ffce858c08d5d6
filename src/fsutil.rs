//! Writing a file so that readers see the old content or the new, never half of it.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Write `bytes` to the temporary file `tmp` (mode 0600, never through a symlink), give it to `owner`
/// (uid, gid) when asked, and rename it to `dest`. `tmp` must be on the same filesystem as `dest`. On failure
/// the temporary file is removed and `dest` is untouched.
pub(crate) fn write_atomically(
    tmp: &Path,
    dest: &Path,
    bytes: &[u8],
    owner: Option<(u32, u32)>,
) -> std::io::Result<()> {
    let write = || -> std::io::Result<()> {
        let open = || {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(tmp)
        };
        // A temporary of the same name is what a crashed writer of the same pid left: removed only then.
        let mut f = match open() {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                fs::remove_file(tmp)?;
                open()?
            }
            r => r?,
        };
        f.write_all(bytes)?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
        }
        crate::fault::point("file:temporary-written");
        fs::rename(tmp, dest)
    };
    write().inspect_err(|_| {
        let _ = fs::remove_file(tmp);
    })
}
