//! A directory whose files stay inside it: [`Confined`] opens every path beneath its
//! directory with cap-std, which asks the kernel to resolve it there (Linux's `openat2` with
//! `RESOLVE_BENEATH`, or a walk one component at a time where that is missing), so neither
//! `..` nor a symlink — one planted after the name was checked included — reaches a file
//! outside. A name that tries is an error, never a file elsewhere.

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt as _, Permissions, PermissionsExt as _};

use crate::name::safe_name;

/// Who may read a file or list a directory switchboard makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visibility {
    /// Its owner only: files 0600, directories 0700. Everything switchboard writes, but for
    /// the one exception below.
    Private,
    /// Anyone: files 0644, directories 0755. The local CA's certificate (`ca.pem`) and its
    /// directory alone, which users must be able to read after `sudo switchboard serve`.
    Public,
}

impl Visibility {
    fn file_mode(self) -> u32 {
        match self {
            Visibility::Private => 0o600,
            Visibility::Public => 0o644,
        }
    }

    fn dir_mode(self) -> u32 {
        match self {
            Visibility::Private => 0o700,
            Visibility::Public => 0o755,
        }
    }
}

/// Create `path` and any missing parents; each directory created is 0700 (0755 when
/// `Public`). One that exists already keeps its mode: it is its owner's.
pub fn create_dir_all(path: &Path, visibility: Visibility) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, visibility.dir_mode());
    builder.create(path)
}

/// A directory, and what may be done beneath it.
#[derive(Debug)]
pub struct Confined {
    dir: Dir,
    /// The same directory opened for reading, to sync it (cap-std opens a `Dir` with
    /// `O_PATH`, which cannot be synced).
    handle: cap_std::fs::File,
    path: PathBuf,
}

impl Confined {
    /// The existing directory `path`.
    pub fn open(path: &Path) -> io::Result<Self> {
        let dir = Dir::open_ambient_dir(path, ambient_authority())?;
        Ok(Self {
            handle: dir.open(".")?,
            dir,
            path: path.to_owned(),
        })
    }

    /// The directory `path`, created (with its missing parents) as [`create_dir_all`] does
    /// if it is not there.
    pub fn create(path: &Path, visibility: Visibility) -> io::Result<Self> {
        create_dir_all(path, visibility)?;
        Self::open(path)
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The bytes of the file at `relative` (a path from [`crate::safe_path`]), if it is
    /// beneath this directory once every symlink is followed.
    pub fn read(&self, relative: &Path) -> io::Result<Vec<u8>> {
        self.dir.read(relative)
    }

    /// Replace the file `name` with `contents` so that a reader sees either the old file or
    /// the whole new one, never a part, even after a crash or power loss; its mode is
    /// `visibility`'s from its first byte. `name` must pass [`safe_name`].
    ///
    /// The bytes go to a temporary file beside it (`.switchboard-*.tmp`, made new, never
    /// opened through a symlink), which is synced and renamed over `name`; then the
    /// directory is synced, so that the rename itself is on disk when this returns. A crash
    /// can leave a temporary file behind ([`is_leftover`]), never a truncated `name`.
    pub fn write(&self, name: &str, contents: &[u8], visibility: Visibility) -> io::Result<()> {
        let name = safe_name(name)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{name:?} {e}")))?;
        let (temporary, mut file) = self.temporary(visibility)?;
        let written = (|| {
            file.write_all(contents)?;
            // The mode was given at creation, but the process's umask may have taken bits
            // away: a public file is set to be readable whatever the umask.
            if visibility == Visibility::Public {
                file.set_permissions(Permissions::from_mode(visibility.file_mode()))?;
            }
            file.sync_all()?;
            drop(file);
            self.dir.rename(&temporary, &self.dir, name)
        })();
        if let Err(error) = written {
            let _ = self.dir.remove_file(&temporary);
            return Err(error);
        }
        self.sync()
    }

    /// A new temporary file of this directory, opened for writing.
    fn temporary(&self, visibility: Visibility) -> io::Result<(String, cap_std::fs::File)> {
        let mut options = OpenOptions::new();
        options
            .write(true)
            .create_new(true)
            .mode(visibility.file_mode());
        loop {
            let name = format!(".switchboard-{:016x}.tmp", fastrand::u64(..));
            match self.dir.open_with(&name, &options) {
                Ok(file) => return Ok((name, file)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Remove the file `name` (one that is not there is no error).
    pub fn remove(&self, name: &str) -> io::Result<()> {
        match self.dir.remove_file(name) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Make renames and removals in this directory durable.
    pub fn sync(&self) -> io::Result<()> {
        self.handle.sync_all()
    }
}

/// Whether `name` is a temporary file [`Confined::write`] may have left behind.
pub fn is_leftover(name: &str) -> bool {
    name.starts_with(".switchboard-") && name.ends_with(".tmp")
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn files_are_written_whole_with_their_mode_and_nothing_left_beside_them() {
        let root = tempfile::tempdir().unwrap();
        let dir = Confined::create(&root.path().join("a/b"), Visibility::Private).unwrap();
        assert_eq!(mode(&root.path().join("a")), 0o700);
        assert_eq!(mode(&root.path().join("a/b")), 0o700);
        dir.write("key.pem", b"secret", Visibility::Private)
            .unwrap();
        dir.write("ca.pem", b"public", Visibility::Public).unwrap();
        assert_eq!(mode(&dir.path().join("key.pem")), 0o600);
        assert_eq!(mode(&dir.path().join("ca.pem")), 0o644);
        dir.write("key.pem", b"newer", Visibility::Private).unwrap();
        assert_eq!(std::fs::read(dir.path().join("key.pem")).unwrap(), b"newer");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
        dir.remove("key.pem").unwrap();
        dir.remove("key.pem").unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn nothing_is_read_or_written_outside_through_dots_or_symlinks() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("secret"), "outside").unwrap();
        let inner = root.path().join("inner");
        let dir = Confined::create(&inner, Visibility::Private).unwrap();
        std::os::unix::fs::symlink(root.path(), inner.join("up")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", inner.join("abs")).unwrap();
        std::os::unix::fs::symlink("../secret", inner.join("rel")).unwrap();
        for path in ["../secret", "up/secret", "abs", "rel", "/etc/hostname"] {
            let read = dir.read(Path::new(path));
            assert!(read.is_err(), "{path} was read: {read:?}");
        }
        // A write is to one safe name; a symlink in its place is replaced, not followed.
        for name in ["../planted", "up/planted", "/tmp/planted", ".."] {
            let error = dir.write(name, b"x", Visibility::Private).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{name}");
        }
        dir.write("rel", b"replaced", Visibility::Private).unwrap();
        assert_eq!(
            std::fs::read_to_string(root.path().join("secret")).unwrap(),
            "outside"
        );
        assert!(!inner.join("rel").is_symlink());
        // A file reached through a symlink that stays inside is read.
        std::fs::create_dir(inner.join("json")).unwrap();
        std::fs::write(inner.join("json/a.json"), "{}").unwrap();
        std::os::unix::fs::symlink("json", inner.join("alias")).unwrap();
        assert_eq!(dir.read(Path::new("alias/a.json")).unwrap(), b"{}");
    }

    #[test]
    fn leftovers_are_recognised() {
        assert!(is_leftover(".switchboard-abc123.tmp"));
        assert!(!is_leftover("message.eml"));
    }
}
