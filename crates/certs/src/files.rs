//! Certificate files: written with `switchboard_files` (atomic, synced, 0600 from the first
//! byte but for the CA's certificate), and checked for keys that others can read.

use std::fs;
use std::path::Path;

use switchboard_files::{Confined, Visibility};

use crate::error::CertError;

/// Replace `path` with `contents` atomically; see [`Confined::write`].
pub(crate) fn write_atomic(
    path: &Path,
    contents: &[u8],
    visibility: Visibility,
) -> Result<(), CertError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    Confined::open(dir)
        .and_then(|dir| dir.write(name, contents, visibility))
        .map_err(|source| CertError::Write {
            path: path.to_owned(),
            source,
        })
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
