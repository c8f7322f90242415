//! A WireMock directory: `mappings/*.json` (each one stub, or `{"mappings": [...]}`) and
//! `__files/` for `bodyFileName`. A team's existing directory works as it is.
//!
//! Names come from requests (a stub's id names its file when saved; `bodyFileName` names
//! the file a response sends), so each passes `switchboard_files`' check before it is used,
//! and files are read and written through [`Confined`]: nothing outside `mappings/` and
//! `__files/` is reached, through `..` or a symlink.

use std::path::{Path, PathBuf};

use serde_json::Value;
use switchboard_files::{Confined, Visibility};

/// Every mapping of `dir/mappings/` (in file-name order) with its file; a file that cannot
/// be read or parsed is a warning naming it, and the others still load.
pub(crate) fn read_mappings(dir: &Path) -> (Vec<(PathBuf, Value)>, Vec<String>) {
    let mappings_dir = dir.join("mappings");
    let mut warnings = Vec::new();
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&mappings_dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            warnings.push(format!("{}: {e}", mappings_dir.display()));
            Vec::new()
        }
    };
    files.sort();
    let mut mappings = Vec::new();
    for path in files {
        let parsed = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).map_err(|e| e.to_string()));
        match parsed {
            Ok(Value::Object(mut object)) if object.contains_key("mappings") => {
                match object.remove("mappings") {
                    Some(Value::Array(list)) => {
                        mappings.extend(list.into_iter().map(|m| (path.clone(), m)));
                    }
                    _ => warnings.push(format!("{}: \"mappings\" must be a list", path.display())),
                }
            }
            Ok(mapping) => mappings.push((path, mapping)),
            Err(e) => warnings.push(format!("{}: {e}", path.display())),
        }
    }
    (mappings, warnings)
}

/// Whether `id` can name a stub, and its file `mappings/<id>.json` when saved.
pub(crate) fn check_id(id: &str) -> Result<(), String> {
    switchboard_files::safe_name(id)
        .and_then(|_| switchboard_files::safe_name(&file_of(id)).map(|_| ()))
        .map(|_| ())
        .map_err(|e| {
            format!(
                "id {id:?} {e}; an id names the stub's file when it is saved (a UUID, as \
                 WireMock makes, always fits)"
            )
        })
}

fn file_of(id: &str) -> String {
    format!("{id}.json")
}

/// Whether `name` can be a `bodyFileName`: a relative path of safe names below `__files/`.
pub(crate) fn check_body_file(name: &str) -> Result<(), String> {
    switchboard_files::safe_path(name)
        .map(|_| ())
        .map_err(|e| format!("response.bodyFileName {name:?} {e}: it names a file below __files/"))
}

/// The bytes of `dir/__files/<name>`, read beneath `__files/`. An error names the file
/// below the stubs directory, never where that directory is: it reaches whoever asked
/// the stub.
pub(crate) fn read_body(dir: &Path, name: &str) -> Result<Vec<u8>, String> {
    let files = dir.join("__files");
    switchboard_files::safe_path(name)
        .map_err(|e| e.to_string())
        .and_then(|path| {
            Confined::open(&files)
                .and_then(|files| files.read(&path))
                .map_err(|e| format!("__files/{}: {e}", path.display()))
        })
        .map_err(|e| format!("bodyFileName {name:?}: {e}"))
}

/// Write each stub to `dir/mappings/<id>.json` (owner-only; the directory is made 0700 if
/// it is not there).
pub(crate) fn write_mappings(dir: &Path, stubs: &[(String, Value)]) -> Result<(), String> {
    let mappings_dir = dir.join("mappings");
    let mappings = Confined::create(&mappings_dir, Visibility::Private)
        .map_err(|e| format!("{}: {e}", mappings_dir.display()))?;
    for (id, json) in stubs {
        let name = file_of(id);
        let text = serde_json::to_vec_pretty(json).map_err(|e| e.to_string())?;
        mappings
            .write(&name, &text, Visibility::Private)
            .map_err(|e| format!("{}: {e}", mappings_dir.join(&name).display()))?;
    }
    Ok(())
}
