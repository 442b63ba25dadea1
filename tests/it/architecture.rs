//! The shape of the code, checked from its imports: no import cycle between the product's
//! top-level modules (nor the lab's), and the pure judgement core free of I/O crates.
//!
//! It reads the `use crate::…` paths (and inline `crate::…` paths) of every `.rs` file outside
//! `#[cfg(test)]` code, maps each to the top-level module it names, and looks for a cycle in
//! that graph. A cycle is reported as the path that closes it, e.g. `config → traffic → config`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Modules that must stay pure: values in, values out (DESIGN.md, "the judgement core").
const PURE: &[&str] = &[
    "health.rs",
    "decide.rs",
    "decide/moves.rs",
    "incidents.rs",
    "lag/mod.rs",
    "lag/reconcile.rs",
    "drill/mod.rs",
    "drill/phase.rs",
    "drill/synthetic.rs",
    "policy.rs",
    "alarm.rs",
    "coord/view.rs",
    "selfcheck.rs",
    "signal/mod.rs",
    "signal/selector.rs",
    "signal/node.rs",
    "signal/promql.rs",
    "signal/haproxy.rs",
    "traces/spans.rs",
];
/// Crates whose presence in a pure module means I/O, a clock source or a runtime.
const IO_CRATES: &[&str] = &["tokio", "sqlx", "reqwest", "axum", "hyper", "std::fs", "std::net", "tracing"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source without its test module(s): everything from the first `#[cfg(test)]` on.
fn non_test(src: &str) -> &str {
    src.find("#[cfg(test)]").map_or(src, |i| &src[..i])
}

/// The top-level module a file belongs to (`src/config/providers.rs` → `config`); None for the
/// crate root and binaries.
fn top_module(src_dir: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src_dir).ok()?;
    let first = rel.components().next()?.as_os_str().to_string_lossy().into_owned();
    let name = first.trim_end_matches(".rs").to_string();
    (!matches!(name.as_str(), "lib" | "main" | "bin")).then_some(name)
}

/// Every top-level module named by a `crate::` path in `src` (grouped imports included).
fn imported_modules(src: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = src;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        let preceded_by_ident = rest[..i].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_');
        if !preceded_by_ident {
            if let Some(group) = after.strip_prefix('{') {
                // `crate::{a::X, b, c::{d, e}}`: the first segment of each top-level entry.
                let mut depth = 0;
                let mut entry_start = true;
                for (j, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => entry_start = true,
                        c if entry_start && (c.is_alphanumeric() || c == '_') => {
                            let ident: String =
                                group[j..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                            out.insert(ident);
                            entry_start = false;
                        }
                        _ => {}
                    }
                }
            } else {
                let ident: String = after.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !ident.is_empty() {
                    out.insert(ident);
                }
            }
        }
        rest = after;
    }
    out
}

/// The module graph of a crate's `src/`: top-level module → modules it imports.
fn module_graph(src_dir: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src_dir, &mut files);
    let modules: BTreeSet<String> = files.iter().filter_map(|f| top_module(src_dir, f)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = modules.iter().map(|m| (m.clone(), BTreeSet::new())).collect();
    for file in &files {
        let Some(from) = top_module(src_dir, file) else { continue };
        let src = std::fs::read_to_string(file).unwrap();
        for to in imported_modules(non_test(&src)) {
            if to != from && modules.contains(&to) {
                graph.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    graph
}

/// The first cycle found, as the list of modules that close it.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == node) {
            let mut cycle = path[i..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

fn workspace_dir(member: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(member).join("src")
}

#[test]
fn the_products_modules_import_each_other_without_a_cycle() {
    let graph = module_graph(&workspace_dir(""));
    assert!(graph.len() > 10, "expected the product's modules, found {graph:?}");
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle between top-level modules: {}", cycle.join(" → "));
    }
}

#[test]
fn the_labs_modules_import_each_other_without_a_cycle() {
    let graph = module_graph(&workspace_dir("lab"));
    assert!(graph.contains_key("process"), "expected the lab's modules, found {graph:?}");
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle between the lab's modules: {}", cycle.join(" → "));
    }
}

#[test]
fn the_judgement_core_does_no_io() {
    let src_dir = workspace_dir("");
    let mut checked = 0;
    for file in PURE {
        let src = std::fs::read_to_string(src_dir.join(file))
            .unwrap_or_else(|e| panic!("pure module {file} listed but not readable: {e}"));
        checked += 1;
        let code = non_test(&src);
        for krate in IO_CRATES {
            let used = code.lines().any(|l| {
                let l = l.trim_start();
                !l.starts_with("//") && (l.contains(&format!("{krate}::")) || l.contains(&format!("use {krate};")))
            });
            assert!(!used, "{file} is part of the pure core but uses {krate}");
        }
        for needle in ["Utc::now()", "Instant::now()", "SystemTime::now()", "thread_rng", "rand::"] {
            assert!(!code.contains(needle), "{file} is part of the pure core but reads {needle}");
        }
    }
    assert!(checked >= 3, "the pure modules were not found under {}", src_dir.display());
}

#[test]
fn the_cycle_finder_sees_a_cycle_and_grouped_imports() {
    // The checker itself must be able to fail.
    let imports = imported_modules("use crate::{config::Config, traffic::{a, b}, plan};\nlet x = crate::store::q();");
    assert_eq!(imports, ["config", "plan", "store", "traffic"].map(String::from).into_iter().collect());
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_string(), BTreeSet::from(["b".to_string()])),
        ("b".to_string(), BTreeSet::from(["c".to_string()])),
        ("c".to_string(), BTreeSet::from(["a".to_string()])),
    ]
    .into();
    assert_eq!(find_cycle(&graph), Some(vec!["a", "b", "c", "a"].into_iter().map(String::from).collect()));
    let acyclic: BTreeMap<String, BTreeSet<String>> =
        [("a".to_string(), BTreeSet::from(["b".to_string()])), ("b".to_string(), BTreeSet::new())].into();
    assert_eq!(find_cycle(&acyclic), None);
}

#[test]
fn the_readme_names_only_files_that_exist() {
    // Docs that match: every repository path the README names (`src/engine/mod.rs`,
    // `./scripts/lab.sh`, `docs/dashboard.png` …) exists; generated outputs excepted.
    const EXTENSIONS: &[&str] = &["rs", "sh", "js", "toml", "sql", "yml", "md", "css", "html", "png", "json"];
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let mut named = 0;
    for word in readme.split(|c: char| !(c.is_alphanumeric() || "_./-".contains(c))) {
        let path = word.trim_start_matches("./").trim_end_matches('.');
        let ext = path.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
        if !path.contains('/') || path.starts_with('/') || !EXTENSIONS.contains(&ext) {
            continue;
        }
        if path.starts_with("artifacts/") || path.starts_with("target/") {
            continue;
        }
        named += 1;
        assert!(root.join(path).exists(), "README.md names `{path}`, which does not exist");
    }
    assert!(named >= 5, "expected the README to name source files, found {named}");
}
