//! Names from requests. Every name a client chooses that becomes a file — a stub's id, a body
//! file, an attachment saved by a browser, a file uploaded over FTP or SFTP — passes
//! [`safe_name`] (one component) or [`safe_path`] (components under a directory) first, or
//! is refused with the [`NameError`] that says why.
//!
//! The rules are those of a file name that means the same thing to every program that
//! meets it: one component (no `/` or `\`), not `.` or `..`, no byte a terminal or a log
//! reader acts on (controls, line separators), no character that reorders how the name is
//! shown (`invoice\u{202E}fdp.exe`), and short enough for every file system (255 bytes).

use std::fmt;
use std::path::{Path, PathBuf};

/// The longest name, in bytes: `NAME_MAX` on Linux and most file systems.
pub const MAX_NAME_BYTES: usize = 255;

/// The longest relative path [`safe_path`] takes, in bytes (`PATH_MAX` is 4096).
pub const MAX_PATH_BYTES: usize = 1024;

/// Why a name cannot become a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameError {
    Empty,
    TooLong {
        bytes: usize,
        max: usize,
    },
    /// `.` or `..`.
    Dots,
    /// A `/` or `\` in what must be one name.
    Separator,
    /// A path that starts at the root (`/etc/passwd`).
    Absolute,
    /// A control character (C0, DEL, C1), a line or paragraph separator, or a character
    /// that reorders text.
    Hostile(char),
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => f.write_str("is empty"),
            NameError::TooLong { bytes, max } => {
                write!(f, "is {bytes} bytes long; at most {max} are allowed")
            }
            NameError::Dots => f.write_str("is . or .., which name directories"),
            NameError::Separator => f.write_str("holds a / or \\: a name is one file, not a path"),
            NameError::Absolute => f.write_str("starts at / but must be relative"),
            NameError::Hostile(c) => write!(
                f,
                "holds {c:?} (U+{:04X}): controls, line separators and characters that \
                 reorder text are not allowed in file names",
                u32::from(*c)
            ),
        }
    }
}

impl std::error::Error for NameError {}

/// A character no file name may hold: a control (C0, DEL, C1), a line or paragraph
/// separator, or one that reorders or hides text (bidirectional overrides, isolates and
/// marks, which make `invoice\u{202E}fdp.exe` read as `invoiceexe.pdf`).
pub fn is_hostile(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}'
                | '\u{2029}'
                | '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// `name` if it is safe as one file name in a directory; else why not.
pub fn safe_name(name: &str) -> Result<&str, NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(NameError::TooLong {
            bytes: name.len(),
            max: MAX_NAME_BYTES,
        });
    }
    if name == "." || name == ".." {
        return Err(NameError::Dots);
    }
    if let Some(c) = name.chars().find(|c| is_hostile(*c)) {
        return Err(NameError::Hostile(c));
    }
    if name.contains(['/', '\\']) {
        return Err(NameError::Separator);
    }
    Ok(name)
}

/// `path` as a relative path of safe names (`json/users.json`), for a file below a
/// directory; else why not. Every component passes [`safe_name`]: no `..`, no empty
/// component, nothing absolute.
pub fn safe_path(path: &str) -> Result<PathBuf, NameError> {
    if path.len() > MAX_PATH_BYTES {
        return Err(NameError::TooLong {
            bytes: path.len(),
            max: MAX_PATH_BYTES,
        });
    }
    if path.starts_with('/') || Path::new(path).is_absolute() {
        return Err(NameError::Absolute);
    }
    path.split('/').try_fold(PathBuf::new(), |mut built, part| {
        built.push(safe_name(part)?);
        Ok(built)
    })
}

/// A safe name made from a foreign one, for a file a browser saves (an attachment's name as
/// its sender wrote it): the last component of what it names, without the characters
/// [`is_hostile`] refuses or leading dots (no hidden files), cut to 200 characters (and
/// [`MAX_NAME_BYTES`]);
/// `fallback` when nothing is left. The result always passes [`safe_name`].
pub fn cleaned_name(foreign: &str, fallback: &str) -> String {
    let last = foreign.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut kept = String::new();
    for c in last.chars().filter(|c| !is_hostile(*c)).take(200) {
        if kept.len() + c.len_utf8() > MAX_NAME_BYTES {
            break;
        }
        kept.push(c);
    }
    let kept = kept.trim().trim_start_matches('.').trim();
    match safe_name(kept) {
        Ok(name) => name.to_owned(),
        Err(_) => fallback.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_plain_component_is_safe() {
        for name in [
            "d9b5d1e8-0f0e-4d8c-9a51-6a4b0a1f7c11",
            "report 2026.pdf",
            ".profile",
            "résumé ✓.txt",
            "a..b",
            "...",
        ] {
            assert_eq!(safe_name(name), Ok(name));
        }
        assert!(safe_name(&"x".repeat(MAX_NAME_BYTES)).is_ok());
    }

    #[test]
    fn paths_dots_controls_and_reordering_are_refused_with_the_reason() {
        assert_eq!(safe_name(""), Err(NameError::Empty));
        assert_eq!(safe_name(".."), Err(NameError::Dots));
        assert_eq!(safe_name("."), Err(NameError::Dots));
        for name in ["../x", "a/b", "/etc/passwd", "..\\win.ini", "a\\b"] {
            assert_eq!(safe_name(name), Err(NameError::Separator), "{name}");
        }
        for (name, c) in [
            ("a\nb", '\n'),
            ("a\rb", '\r'),
            ("a\0b", '\0'),
            ("a\x1b[31m", '\x1b'),
            ("a\u{85}", '\u{85}'),
            ("a\u{7f}", '\u{7f}'),
            ("invoice\u{202E}fdp.exe", '\u{202E}'),
            ("a\u{2028}b", '\u{2028}'),
            ("a\u{2067}b", '\u{2067}'),
        ] {
            assert_eq!(safe_name(name), Err(NameError::Hostile(c)), "{name:?}");
        }
        let long = "x".repeat(MAX_NAME_BYTES + 1);
        assert_eq!(
            safe_name(&long),
            Err(NameError::TooLong {
                bytes: 256,
                max: 255
            })
        );
        let said = safe_name("a\nb").unwrap_err().to_string();
        assert!(said.contains("'\\n'") && said.contains("U+000A"), "{said}");
    }

    #[test]
    fn a_path_is_safe_names_below_its_directory() {
        assert_eq!(
            safe_path("json/users.json"),
            Ok(PathBuf::from("json/users.json"))
        );
        assert_eq!(safe_path("one.json"), Ok(PathBuf::from("one.json")));
        assert_eq!(safe_path("/etc/passwd"), Err(NameError::Absolute));
        assert_eq!(safe_path("a/../../b"), Err(NameError::Dots));
        assert_eq!(safe_path("../x"), Err(NameError::Dots));
        assert_eq!(safe_path("a//b"), Err(NameError::Empty));
        assert_eq!(safe_path("a/"), Err(NameError::Empty));
        assert_eq!(safe_path("a\\..\\b"), Err(NameError::Separator));
        assert!(matches!(
            safe_path(&"a/".repeat(600)),
            Err(NameError::TooLong { .. })
        ));
    }

    #[test]
    fn a_cleaned_name_keeps_what_can_be_kept_and_is_always_safe() {
        let clean = |name: &str| cleaned_name(name, "attachment");
        assert_eq!(clean("../../etc/passwd"), "passwd");
        assert_eq!(clean("..\\..\\win.ini"), "win.ini");
        assert_eq!(clean("invoice\u{202E}fdp.exe"), "invoicefdp.exe");
        assert_eq!(clean("a\u{2067}b\u{200F}c\r\nd\0e"), "abcde");
        assert_eq!(clean(".bashrc"), "bashrc");
        assert_eq!(clean("dir/"), "attachment");
        assert_eq!(clean(".."), "attachment");
        assert_eq!(clean(&"x".repeat(500)).len(), 200);
        // 200 characters of four bytes each are 800 bytes: cut to what a name may hold.
        assert_eq!(clean(&"😀".repeat(200)), "😀".repeat(63));
        for hostile in ["\u{85}", " . ", "/", "\\\\", "\u{2028}\u{2029}"] {
            assert!(safe_name(&clean(hostile)).is_ok(), "{hostile:?}");
        }
    }
}
