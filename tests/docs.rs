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
