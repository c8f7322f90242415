//! Writing certificate files safely: atomically, synced, and private keys readable by their
//! owner only from the first byte on.

use std::fs;
use std::io::Write;
use std::path::Path;

use crate::CertError;

/// Whether the file holds a secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Visibility {
    /// A private key: mode 0600.
    Private,
    /// A certificate: mode 0644, anyone may read it.
    Public,
}

/// Replace `path` with `contents` so that a reader sees either the old file or the whole new
/// one, never a part, even after a crash.
///
/// The bytes go to a temporary file in the same directory, which the `tempfile` crate
/// creates with mode 0600, so a key is never readable by others, not even for a moment; the
/// file is synced, renamed over `path`, and the directory synced so the rename is durable.
pub(crate) fn write_atomic(
    path: &Path,
    contents: &[u8],
    visibility: Visibility,
) -> Result<(), CertError> {
    let write_error = |source| CertError::Write {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut file = tempfile::Builder::new()
        .prefix(".switchboard-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(write_error)?;
    file.write_all(contents).map_err(write_error)?;
    #[cfg(unix)]
    if visibility == Visibility::Public {
        use std::os::unix::fs::PermissionsExt;
        file.as_file()
            .set_permissions(fs::Permissions::from_mode(0o644))
            .map_err(write_error)?;
    }
    file.as_file().sync_all().map_err(write_error)?;
    file.persist(path).map_err(|e| write_error(e.error))?;
    #[cfg(unix)]
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(write_error)?;
    Ok(())
}

/// Warn when a private key can be read by others than its owner.
pub(crate) fn warn_if_exposed(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                "{} can be read by other users (mode {:o}); fix with: chmod 600 {}",
                path.display(),
                meta.permissions().mode() & 0o777,
                path.display()
            );
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn keys_are_0600_and_certificates_0644() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        let cert = dir.path().join("cert.pem");
        write_atomic(&key, b"secret", Visibility::Private).unwrap();
        write_atomic(&cert, b"public", Visibility::Public).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&key), 0o600);
        assert_eq!(mode(&cert), 0o644);
        assert_eq!(fs::read(&key).unwrap(), b"secret");
        // Replacing keeps the mode and leaves no temporary files behind.
        write_atomic(&key, b"newer", Visibility::Private).unwrap();
        assert_eq!(mode(&key), 0o600);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
