//! The modules of each crate depend on each other one way, as they do between crates
//! (DESIGN.md's rule): this test reads every crate's source, draws which module uses which,
//! and fails on a cycle, naming it.
//!
//! A module uses another when its code names one of that module's items: through
//! `crate::a::b::Item`, `super::Item` or `super::sibling::Item`, `self::child::Item`, or a
//! child's path (`child::Item`) in a module that declares it. A name that a module only
//! re-exports (`pub use a::Item;`) is followed to the module that defines it. Declaring a
//! child (`mod child;`) and re-exporting its items are the module tree, not uses. Tests
//! (everything from a file's first `#[cfg(test)]`) do not count.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A crate's modules, by path (`""` for the root, `routes::mail`), with what each uses.
#[derive(Default)]
struct Crate {
    /// Each module's source, up to its tests.
    source: BTreeMap<String, String>,
    /// Each module's children.
    children: BTreeMap<String, BTreeSet<String>>,
    /// Each module's re-exports: a name and the path it stands for.
    reexports: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

fn child_path(parent: &str, name: &str) -> String {
    match parent {
        "" => name.to_owned(),
        parent => format!("{parent}::{name}"),
    }
}

fn parent_of(module: &str) -> String {
    module
        .rsplit_once("::")
        .map_or(String::new(), |(p, _)| p.to_owned())
}

/// The code of a file, without comments, without the text of string literals, and without
/// its tests.
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = match text.find("#[cfg(test)]") {
        Some(at) => &text[..at],
        None => &text,
    };
    let chars: Vec<char> = text.chars().collect();
    let mut code = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let next = chars.get(i + 1).copied();
        match chars[i] {
            '/' if next == Some('/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if next == Some('*') => {
                i += 2;
                while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                    i += 1;
                }
                i += 2;
            }
            'r' if matches!(next, Some('"' | '#'))
                && !chars
                    .get(i.wrapping_sub(1))
                    .is_some_and(|c| c.is_alphanumeric()) =>
            {
                // A raw string: r"…", r#"…"#, …
                let hashes = chars[i + 1..].iter().take_while(|c| **c == '#').count();
                if chars.get(i + 1 + hashes) != Some(&'"') {
                    code.push('r');
                    i += 1;
                    continue;
                }
                i += 2 + hashes;
                while i < chars.len()
                    && !(chars[i] == '"'
                        && chars[i + 1..]
                            .iter()
                            .take(hashes)
                            .filter(|c| **c == '#')
                            .count()
                            == hashes)
                {
                    i += 1;
                }
                i += 1 + hashes;
                code.push_str("\"\"");
            }
            '"' => {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
                code.push_str("\"\"");
            }
            '\'' if chars.get(i + 2) == Some(&'\'') || next == Some('\\') => {
                // A character literal ('a', '\n', '\u{1b}'), not a lifetime.
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
                code.push_str("' '");
            }
            c => {
                code.push(c);
                i += 1;
            }
        }
    }
    code
}

/// Every `use` tree of `code`, expanded into paths (`use a::{b, c::D};` gives `a::b` and
/// `a::c::D`), each with whether it is a re-export (`pub use`, `pub(crate) use`).
fn uses(code: &str) -> Vec<(bool, Vec<String>)> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("use ") {
        let before = &rest[..at];
        let starts_statement = before
            .trim_end_matches([' ', '\t'])
            .chars()
            .last()
            .is_none_or(|c| matches!(c, '\n' | ';' | '{' | '}' | ')'));
        let public = before.trim_end().ends_with("pub") || before.trim_end().ends_with(')');
        rest = &rest[at + 4..];
        if !starts_statement && !public {
            continue;
        }
        let Some(end) = rest.find(';') else { break };
        let tree: String = rest[..end].chars().filter(|c| !c.is_whitespace()).collect();
        found.push((public, expand(&tree)));
        rest = &rest[end..];
    }
    found
}

/// `a::{b,c::{D,E}}` into `a::b`, `a::c::D`, `a::c::E` (`as` renames dropped).
fn expand(tree: &str) -> Vec<String> {
    let Some(open) = tree.find('{') else {
        let path = tree.split("as").next().unwrap_or(tree);
        return vec![path.trim_end_matches("::").to_owned()];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .flat_map(|part| {
            expand(part)
                .into_iter()
                .map(|p| format!("{prefix}{p}"))
                .collect::<Vec<_>>()
        })
        .collect()
}

impl Crate {
    fn read(src: &Path) -> Self {
        let mut krate = Crate::default();
        krate.module("", &src.join("lib.rs"), src);
        if krate.source.is_empty() {
            krate.module("", &src.join("main.rs"), src);
        }
        krate
    }

    /// Read the module `name` from `file`, and its children from `dir`.
    fn module(&mut self, name: &str, file: &Path, dir: &Path) {
        if !file.exists() {
            return;
        }
        let code = code_of(file);
        let mut children = BTreeSet::new();
        for line in code.lines() {
            let line = line.trim();
            let declared = line
                .strip_prefix("pub(crate) mod ")
                .or_else(|| line.strip_prefix("pub mod "))
                .or_else(|| line.strip_prefix("mod "));
            if let Some(child) = declared.and_then(|c| c.strip_suffix(';')) {
                children.insert(child.to_owned());
            }
        }
        let mut reexports = BTreeMap::new();
        for (public, paths) in uses(&code) {
            if public {
                for path in paths {
                    let segments: Vec<String> = path.split("::").map(str::to_owned).collect();
                    if let Some(last) = segments.last() {
                        reexports.insert(last.clone(), segments);
                    }
                }
            }
        }
        self.source.insert(name.to_owned(), code);
        self.reexports.insert(name.to_owned(), reexports);
        self.children.insert(name.to_owned(), children.clone());
        for child in children {
            let path = child_path(name, &child);
            let file_dir = dir.join(&child);
            let (child_file, child_dir) = if file_dir.join("mod.rs").exists() {
                (file_dir.join("mod.rs"), file_dir)
            } else {
                (dir.join(format!("{child}.rs")), file_dir)
            };
            self.module(&path, &child_file, &child_dir);
        }
    }

    /// The module `segments` leads to from `from`, following re-exports; `None` for a path
    /// out of the crate.
    fn resolve(&self, from: &str, segments: &[String]) -> Option<String> {
        let (mut at, rest) = match segments.first()?.as_str() {
            "crate" => (String::new(), &segments[1..]),
            "super" => {
                let mut at = from.to_owned();
                let mut rest = segments;
                while rest.first().is_some_and(|s| s == "super") {
                    at = parent_of(&at);
                    rest = &rest[1..];
                }
                (at, rest)
            }
            "self" => (from.to_owned(), &segments[1..]),
            first if self.children.get(from)?.contains(first) => (from.to_owned(), segments),
            _ => return None,
        };
        for segment in rest {
            if self.children.get(&at).is_some_and(|c| c.contains(segment)) {
                at = child_path(&at, segment);
                continue;
            }
            // An item of `at`, or a name it re-exports: from one of its modules (followed),
            // or from another crate (not a use of this crate's modules at all).
            if let Some(target) = self.reexports.get(&at).and_then(|r| r.get(segment)) {
                return match self.resolve(&at, &target[..target.len() - 1]) {
                    Some(resolved) => Some(resolved),
                    None if target.len() > 1 => None,
                    None => Some(at),
                };
            }
            return Some(at);
        }
        Some(at)
    }

    /// Which modules each module uses.
    fn edges(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (module, code) in &self.source {
            let mut paths: Vec<Vec<String>> = uses(code)
                .into_iter()
                .filter(|(public, _)| !public)
                .flat_map(|(_, paths)| paths)
                .map(|p| p.split("::").map(str::to_owned).collect())
                .collect();
            // Paths written in the code itself (crate::a::b, super::x, child::y), outside
            // the re-exports, which are the module tree.
            let code = without_reexports(code);
            let words: Vec<&str> = code
                .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .filter(|w| w.contains("::"))
                .collect();
            for word in words {
                let path: Vec<String> = word
                    .split("::")
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
                if path.len() > 1 {
                    paths.push(path);
                }
            }
            for path in paths {
                if let Some(target) = self.resolve(module, &path)
                    && target != *module
                {
                    if std::env::var("MODULES_DEBUG").is_ok() {
                        eprintln!("{module} -> {target}: {}", path.join("::"));
                    }
                    edges.entry(module.clone()).or_default().insert(target);
                }
            }
        }
        edges
    }
}

/// `code` without its `pub use …;` and `pub(crate) use …;` statements.
fn without_reexports(code: &str) -> String {
    let mut kept = String::with_capacity(code.len());
    let mut rest = code;
    loop {
        let next = ["pub use ", "pub(crate) use ", "pub(super) use "]
            .iter()
            .filter_map(|p| rest.find(p))
            .min();
        let Some(at) = next else {
            kept.push_str(rest);
            return kept;
        };
        kept.push_str(&rest[..at]);
        rest = rest[at..].find(';').map_or("", |end| &rest[at + end + 1..]);
    }
}

/// A cycle in `edges`, as the modules around it, if there is one.
fn cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|node| visit(node, edges, &mut Vec::new(), &mut done))
}

fn crates() -> Vec<(String, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut crates: Vec<(String, PathBuf)> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("src").is_dir())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                p.join("src"),
            )
        })
        .collect();
    crates.sort();
    crates
}

#[test]
fn no_crate_has_a_cycle_between_its_modules() {
    let mut cycles = Vec::new();
    for (name, src) in crates() {
        let krate = Crate::read(&src);
        if let Some(cycle) = cycle(&krate.edges()) {
            let named: Vec<String> = cycle
                .iter()
                .map(|m| match m.as_str() {
                    "" => "(root)".to_owned(),
                    m => m.to_owned(),
                })
                .collect();
            cycles.push(format!("{name}: {}", named.join(" → ")));
        }
    }
    assert!(
        cycles.is_empty(),
        "modules that use each other in a circle:\n{}",
        cycles.join("\n")
    );
}

/// The reading itself: a cycle is found, and a chain is not one.
#[test]
fn a_cycle_is_found_and_a_chain_is_not() {
    let krate = |files: &[(&str, &str)]| {
        let dir = tempfile::tempdir().unwrap();
        for (file, text) in files {
            let path = dir.path().join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let krate = Crate::read(dir.path());
        cycle(&krate.edges())
    };
    let chain = krate(&[
        (
            "lib.rs",
            "mod a;\nmod b;\npub use a::A;\nfn f() { b::g(); }\n",
        ),
        ("a.rs", "pub struct A;\n"),
        ("b.rs", "use crate::a::A;\npub fn g() -> A { A }\n"),
    ]);
    assert_eq!(chain, None);
    let circle = krate(&[
        ("lib.rs", "mod a;\nmod b;\n"),
        ("a.rs", "use crate::b::B;\npub struct A;\n"),
        ("b.rs", "use super::a::{self, A};\npub struct B;\n"),
    ]);
    assert_eq!(circle, Some(vec!["a".into(), "b".into(), "a".into()]));
    // An item of the root that a child uses, while the root uses the child.
    let root = krate(&[
        (
            "lib.rs",
            "mod a;\npub struct Settings;\nfn f() { a::g(); }\n",
        ),
        ("a.rs", "use crate::Settings;\npub fn g() {}\n"),
    ]);
    assert!(root.is_some());
    // A re-export is followed to where the item lives: no cycle through the root.
    let reexported = krate(&[
        (
            "lib.rs",
            "mod a;\nmod b;\npub use b::Settings;\nfn f() { a::g(); }\n",
        ),
        ("a.rs", "use crate::Settings;\npub fn g() {}\n"),
        ("b.rs", "pub struct Settings;\n"),
    ]);
    assert_eq!(reexported, None);
}
