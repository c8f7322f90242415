//! Writing files so that they survive a crash: whole or not at all, and on disk before the
//! caller says "done" to anyone.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// Who may read the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visibility {
    /// Its owner only (mode 0600): private keys.
    Private,
    /// Anyone (mode 0644): certificates, captured mail.
    Public,
}

/// Replace `path` with `contents` so that a reader sees either the old file or the whole new
/// one, never a part, even after a crash or power loss.
///
/// The bytes go to a temporary file in the same directory, which the `tempfile` crate
/// creates with mode 0600 (so a secret is never readable by others, not even for a moment);
/// the file is synced, renamed over `path`, and the directory synced so that the rename
/// itself is on disk when this returns. Temporary files are named `.switchboard-*.tmp`; a
/// crash can leave one behind, never a truncated `path`.
pub fn write_atomically(path: &Path, contents: &[u8], visibility: Visibility) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut file = tempfile::Builder::new()
        .prefix(".switchboard-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    file.write_all(contents)?;
    #[cfg(unix)]
    if visibility == Visibility::Public {
        use std::os::unix::fs::PermissionsExt;
        file.as_file()
            .set_permissions(fs::Permissions::from_mode(0o644))?;
    }
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)
}

/// Make renames and removals in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Whether `name` is a temporary file [`write_atomically`] may have left behind.
pub fn is_leftover(name: &str) -> bool {
    name.starts_with(".switchboard-") && name.ends_with(".tmp")
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn private_files_are_0600_and_public_ones_0644() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        let cert = dir.path().join("cert.pem");
        write_atomically(&key, b"secret", Visibility::Private).unwrap();
        write_atomically(&cert, b"public", Visibility::Public).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&key), 0o600);
        assert_eq!(mode(&cert), 0o644);
        assert_eq!(fs::read(&key).unwrap(), b"secret");
        // Replacing keeps the mode and leaves no temporary files behind.
        write_atomically(&key, b"newer", Visibility::Private).unwrap();
        assert_eq!(mode(&key), 0o600);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn leftovers_are_recognised() {
        assert!(is_leftover(".switchboard-abc123.tmp"));
        assert!(!is_leftover("message.eml"));
    }
}
