//! Files a client can name, and files that must survive a crash.
//!
//! switchboard runs as root in CI jobs and on laptops, so a name that arrives in a request
//! (a stub's id, a body file, an attachment's name, a file uploaded over FTP or SFTP) must
//! never become a path elsewhere, and what switchboard writes must be its owner's alone.
//!
//! # Layout
//!
//! - `name.rs`: [`safe_name`] and [`safe_path`], the one check every name from a request
//!   passes before it becomes a file, and [`cleaned_name`], a safe name made from a foreign
//!   one (for downloads).
//! - `dir.rs`: [`Confined`], a directory whose files stay inside it (cap-std: symlinks and
//!   `..` are resolved by the kernel beneath it), written atomically and synced, 0600 and
//!   0700 ([`Visibility`]).

mod dir;
mod name;

pub use dir::{Confined, Visibility, create_dir_all, is_leftover};
pub use name::{
    MAX_NAME_BYTES, MAX_PATH_BYTES, NameError, cleaned_name, is_hostile, safe_name, safe_path,
};
