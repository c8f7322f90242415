//! The documentation cannot drift silently: every crate is on the architecture map, every
//! route of the HTTP router is in the API reference, every config key the parser accepts is
//! in the configuration reference, the example config parses with its defaults, and every
//! command the README and the walkthrough show still parses.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use switchboard_testkit::Config;

use crate::{blank_parameters, router_paths};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn every_crate_is_named_in_the_architecture_map() {
    let map = read("docs/ARCHITECTURE.md");
    let mut crates = Vec::new();
    for entry in std::fs::read_dir(root().join("crates")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if !map.contains(&format!("| `{name}` |")) {
            crates.push(name);
        }
    }
    assert!(
        crates.is_empty(),
        "crates not named in docs/ARCHITECTURE.md's table of crates: {crates:?}"
    );
}

/// Every path written in a code span of a Markdown page: `GET /api/v1/message/{ID}`.
fn documented_paths(page: &str) -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    for (i, span) in page.split('`').enumerate() {
        if i % 2 == 0 {
            continue; // outside a code span
        }
        for word in span.split_whitespace() {
            if word.starts_with('/') {
                let path = word.split('?').next().unwrap();
                paths.insert(blank_parameters(path));
            }
        }
    }
    paths
}

#[test]
fn every_route_is_in_the_api_reference() {
    let routes = router_paths();
    assert!(routes.len() > 20, "found only {routes:?}");
    let documented = documented_paths(&read("docs/api.md"));
    let missing: Vec<_> = routes.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes not documented in docs/api.md (write each as `METHOD /path`): {missing:?}"
    );
}

/// The keys the parser accepts in `table`, as its "unknown field" error lists them.
fn accepted_keys(prefix: &str) -> Vec<String> {
    table_keys(prefix).unwrap_or_else(|error| panic!("no list of keys in: {error}"))
}

/// The keys of a table, or the parser's error when `prefix` does not open one.
fn table_keys(prefix: &str) -> Result<Vec<String>, String> {
    let text = format!("{prefix}no_such_key = 1\n");
    let error = Config::from_toml(&text, "probe.toml")
        .unwrap_err()
        .to_string();
    let Some((_, expected)) = error
        .split_once("expected one of ")
        .or_else(|| error.split_once("expected `"))
    else {
        return Err(error);
    };
    let expected = expected.lines().next().unwrap_or_default();
    let expected = expected.trim_start_matches('`');
    Ok(format!("`{expected}")
        .split('`')
        .skip(1)
        .step_by(2)
        .map(snake_case)
        .collect())
}

/// `ErrorCode` → `error_code`: JSON's names for the keys TOML writes in its own style.
fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn every_config_key_is_in_the_configuration_reference() {
    let reference = read("docs/configuration.md");
    let port = "[[port]]\nport = 1\nservice = \"http\"\n";
    let mut missing = Vec::new();
    for table in accepted_keys("") {
        // A top-level key that is a value, not a table (`builtin_ports`).
        if table_keys(&format!("[{table}]\n")).is_err() && table != "port" {
            if !reference.contains(&format!("`{table}`")) {
                missing.push(table.clone());
            }
            continue;
        }
        let heading = match table.as_str() {
            "port" => "[[port]]".to_owned(),
            other => format!("[{other}]"),
        };
        if !reference.contains(&format!("`{heading}")) {
            missing.push(heading.clone());
        }
        let prefix = match table.as_str() {
            "port" => port.to_owned(),
            other => format!("[{other}]\n"),
        };
        for key in accepted_keys(&prefix) {
            let documented = format!("`{heading} {key}`");
            if !reference.contains(&documented) {
                missing.push(documented);
            }
        }
    }
    let toxics = format!("{port}[[port.toxics]]\ntype = \"latency\"\n");
    let chaos = "[smtp.chaos]\n";
    for (heading, prefix) in [
        ("[[port.toxics]]", toxics.as_str()),
        ("[smtp.chaos]", chaos),
    ] {
        for key in accepted_keys(prefix) {
            let documented = format!("`{heading} {key}`");
            if !reference.contains(&documented) {
                missing.push(documented);
            }
        }
    }
    // A trigger's keys: the probe key goes into the inline table, the rest of the line (the
    // `no_such_key = 1` that accepted_keys adds) is a comment.
    for key in accepted_keys("[smtp.chaos]\nsender = { no_such_key = 1 }\n#") {
        if !reference.contains(&format!("{key} =")) {
            missing.push(format!("[smtp.chaos] trigger key {key}"));
        }
    }
    missing.dedup();
    assert!(
        missing.is_empty(),
        "config keys the parser accepts but docs/configuration.md does not name: {missing:?}"
    );
}

#[test]
fn the_example_config_parses_and_shows_the_defaults() {
    let example = read("docs/switchboard.example.toml");
    let config = Config::from_toml(&example, "docs/switchboard.example.toml")
        .unwrap_or_else(|e| panic!("{e}"));
    let defaults = Config::default();
    assert_eq!(config.supervisor, defaults.supervisor);
    assert_eq!(config.http, defaults.http);
    assert_eq!(config.https, defaults.https);
    assert_eq!(config.smtp, defaults.smtp);
    assert_eq!(config.mail, defaults.mail);
    assert_eq!(config.control, defaults.control);
    assert_eq!(config.log, defaults.log);
    let services: Vec<_> = config.ports.iter().map(|p| p.service).collect();
    assert_eq!(services, ["http", "https", "smtp", "echo", "toxiproxy"]);
}

/// The `switchboard …` commands in a page's shell blocks, as argument lists.
fn commands(page: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let mut in_shell = false;
    for line in page.lines() {
        if line.starts_with("```") {
            in_shell = line == "```sh";
            continue;
        }
        if !in_shell {
            continue;
        }
        let line = line.split(" #").next().unwrap().trim();
        let args = if let Some(rest) = line.strip_prefix("switchboard ") {
            rest
        } else if let Some(rest) = line.strip_prefix("cargo run --release -- ") {
            rest
        } else {
            continue;
        };
        found.push(args.split_whitespace().map(str::to_owned).collect());
    }
    found
}

#[tokio::test]
async fn the_commands_the_readme_and_walkthrough_show_still_parse() {
    let mut checked = 0;
    for page in ["README.md", "docs/ports-101.md", "docs/cli.md"] {
        for args in commands(&read(page)) {
            // With --help last, the command line is parsed up to it and then only described.
            let output = crate::switchboard()
                .command()
                .args(&args)
                .arg("--help")
                .output()
                .await
                .unwrap();
            assert!(
                output.status.success(),
                "{page}: `switchboard {}` no longer parses:\n{}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr)
            );
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} commands found");
}

/// The config files the deployments ship parse, with the ports their Services publish.
#[test]
fn the_shipped_config_files_parse() {
    for (path, services) in [
        (
            "deploy/kubernetes/base/switchboard.toml",
            &["http", "https", "smtp", "toxiproxy"][..],
        ),
        (
            "docker/switchboard.toml",
            &["http", "https", "smtp", "toxiproxy", "http"][..],
        ),
    ] {
        let config = Config::from_toml(&read(path), path).unwrap_or_else(|e| panic!("{e}"));
        let found: Vec<_> = config.ports.iter().map(|p| p.service).collect();
        assert_eq!(found, services, "{path}");
    }
}

/// The source files of a crate's `src/` that are modules of it: every `.rs` file but the
/// crate root and test modules, as its lib doc names them (`routes/page.rs`; a directory's
/// `mod.rs` as the directory, `event/`).
fn module_files(src: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let relative = path
                .strip_prefix(src)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.ends_with(".rs") || ["lib.rs", "main.rs", "tests.rs"].contains(&name.as_str())
            {
                continue;
            }
            found.push(match relative.strip_suffix("mod.rs") {
                Some(dir) => dir.to_owned(),
                None => relative,
            });
        }
    }
    found.sort();
    found
}

#[test]
fn every_crates_lib_doc_names_each_of_its_modules() {
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(root().join("crates")).unwrap() {
        let src = entry.unwrap().path().join("src");
        let root_file = ["lib.rs", "main.rs"]
            .iter()
            .map(|f| src.join(f))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("{} has no lib.rs or main.rs", src.display()));
        let doc: String = std::fs::read_to_string(&root_file)
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("//!"))
            .collect::<Vec<_>>()
            .join("\n");
        for module in module_files(&src) {
            if !doc.contains(&format!("`{module}`")) {
                missing.push(format!("{}: {module}", root_file.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "modules their crate's doc (its Layout) does not name, as `path.rs`: {missing:#?}"
    );
}

#[test]
fn every_file_the_architecture_map_names_exists() {
    let map = read("docs/ARCHITECTURE.md");
    let missing: Vec<&str> = map
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|span| span.starts_with("crates/") && !span.contains(' '))
        .filter(|path| !root().join(path).exists())
        .collect();
    assert!(
        missing.is_empty(),
        "docs/ARCHITECTURE.md names files that are not there: {missing:?}"
    );
}

/// The fenced code blocks of a Markdown page, each with what its fence line says.
fn code_blocks(page: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, String)> = None;
    for line in page.lines() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(info)) => open = Some((info.to_owned(), String::new())),
            (Some(_), Some("")) => blocks.extend(open.take()),
            (Some((_, text)), _) => {
                text.push_str(line);
                text.push('\n');
            }
            (None, None) => {}
        }
    }
    blocks
}

/// docs/ARCHITECTURE.md's "Adding a service" shows the whole of adding qotd: its crate's two
/// files, as they are, and one line in each of three files. If adding it had needed more,
/// the other file would name it too.
#[test]
fn the_worked_example_of_adding_a_service_is_the_code_and_all_of_it() {
    let map = read("docs/ARCHITECTURE.md");
    let section = map
        .split("## Adding a service")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("docs/ARCHITECTURE.md has a section \"Adding a service\"");
    let blocks = code_blocks(section);
    for file in ["crates/qotd/Cargo.toml", "crates/qotd/src/lib.rs"] {
        let text = read(file);
        assert!(
            blocks.iter().any(|(_, block)| *block == text),
            "the worked example does not show {file} as it is"
        );
    }
    // Every other line the example shows is in a file of the workspace, word for word.
    let outside = [
        (
            "Cargo.toml",
            "switchboard-qotd = { path = \"crates/qotd\" }",
        ),
        ("crates/app/Cargo.toml", "switchboard-qotd.workspace = true"),
        ("crates/app/src/services.rs", "Entry { name: \"qotd\","),
    ];
    for (file, line) in outside {
        let shown = blocks.iter().find(|(_, block)| block.contains(line));
        let shown = shown.unwrap_or_else(|| panic!("the example does not show {line:?}"));
        let shown_line = shown.1.lines().find(|l| l.contains(line)).unwrap();
        assert!(
            read(file).lines().any(|l| l == shown_line),
            "{file} does not have the line the example shows: {shown_line:?}"
        );
    }
    // And nothing else in the code names it.
    let mut named = Vec::new();
    let mut dirs = vec![root().join("crates"), root().join("bench")];
    let mut files = vec![root().join("Cargo.toml")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.ends_with("crates/qotd") || path.ends_with("target") {
                continue;
            }
            match path.is_dir() {
                true => dirs.push(path),
                false => files.push(path),
            }
        }
    }
    for path in files {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue; // not text
        };
        for line in text
            .lines()
            .filter(|l| l.to_ascii_lowercase().contains("qotd"))
        {
            let listed = outside
                .iter()
                .any(|(file, shown)| path.ends_with(file) && line.contains(shown));
            if !listed {
                named.push(format!("{}: {line}", path.display()));
            }
        }
    }
    assert!(
        named.is_empty(),
        "adding qotd touched more than the example shows: {named:#?}"
    );
}
