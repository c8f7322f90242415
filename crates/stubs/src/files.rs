//! A WireMock directory: `mappings/*.json` (each one stub, or `{"mappings": [...]}`) and
//! `__files/` for `bodyFileName`. A team's existing directory works as it is.

use std::path::{Path, PathBuf};

use serde_json::Value;

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

/// Write each stub to `dir/mappings/<id>.json`.
pub(crate) fn write_mappings(dir: &Path, stubs: &[(String, Value)]) -> Result<(), String> {
    let mappings_dir = dir.join("mappings");
    std::fs::create_dir_all(&mappings_dir)
        .map_err(|e| format!("{}: {e}", mappings_dir.display()))?;
    for (id, json) in stubs {
        let path = mappings_dir.join(format!("{id}.json"));
        let text = serde_json::to_vec_pretty(json).map_err(|e| e.to_string())?;
        switchboard_core::durable::write_atomically(
            &path,
            &text,
            switchboard_core::durable::Visibility::Public,
        )
        .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}
