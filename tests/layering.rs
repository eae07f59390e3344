//! The source keeps one direction: each top-level module of `src/` may use only the
//! modules below it in `LAYERS` (README, "Source layout"), so there are no cycles and
//! a reader can learn the crate from the bottom up.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Bottom first. A module may use modules in earlier entries, never later ones, and
/// never another module of its own entry.
const LAYERS: &[&[&str]] = &[
    &["config", "job_state"],
    &["db"],
    &["queue", "storage"],
    &["processing"],
    &["progress"],
    &["documents"],
    &["workers"],
    &["error"],
    &["auth"],
    &["web"],
    &["app"],
    &["cli"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

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

/// The top-level modules a source file names as `crate::<module>`.
fn used_modules(source: &str) -> BTreeSet<String> {
    source
        .match_indices("crate::")
        .filter(|(at, _)| !source[..*at].ends_with('$'))
        .filter_map(|(at, _)| {
            let rest = &source[at + "crate::".len()..];
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            (!name.is_empty()).then_some(name)
        })
        .collect()
}

#[test]
fn no_module_uses_a_module_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut unplaced = BTreeSet::new();
    let mut upward = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative.components().next().unwrap().as_os_str().to_string_lossy();
        let module = top.trim_end_matches(".rs").to_string();
        // The crate's root, and the programs, which use the library from outside.
        if matches!(module.as_str(), "lib" | "main" | "bin") {
            continue;
        }
        let Some(own) = layer_of(&module) else {
            unplaced.insert(module);
            continue;
        };
        for used in used_modules(&std::fs::read_to_string(file).unwrap()) {
            if used == module {
                continue;
            }
            match layer_of(&used) {
                Some(layer) if layer < own => {}
                Some(_) => upward.push(format!("{} uses crate::{used}", relative.display())),
                None => {
                    unplaced.insert(used);
                }
            }
        }
    }
    assert!(unplaced.is_empty(), "modules missing from LAYERS: {unplaced:?}");
    assert!(upward.is_empty(), "uses of a module at or above the user's own layer:\n{}", upward.join("\n"));
}

#[test]
fn used_modules_reads_paths_not_macros() {
    let source = "use crate::db::Db;\nlet x = crate::queue::Keys::new(\"\");\nmacro_rules! m { () => { $crate::web } }";
    let found: Vec<String> = used_modules(source).into_iter().collect();
    assert_eq!(found, ["db", "queue"]);
}
