//! Finding the files `auto_workers!()` compiles: `src/workers/`, up to 3 directory levels.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// How many directory levels under `src/workers/` may hold workers.
const MAX_DEPTH: usize = 3;

/// A module to generate: a file, or a directory of them.
pub(crate) enum Node {
    File {
        module: String,
        path: PathBuf,
        relative: String,
        has_install: bool,
    },
    Dir {
        module: String,
        relative: String,
        children: Vec<Node>,
    },
}

/// The modules under `root`, sorted by name. A missing `root` has none.
///
/// # Errors
///
/// A message naming the directory that cannot be read, the file whose name is not a
/// module name, the two files that map to one module, or the directory nested too deep.
pub(crate) fn scan(root: &Path) -> Result<Vec<Node>, String> {
    if !root.exists() {
        return Ok(Vec::new());
    }
    scan_dir(root, "", 0)
}

fn scan_dir(dir: &Path, prefix: &str, depth: usize) -> Result<Vec<Node>, String> {
    let unreadable = |err: std::io::Error| format!("cannot read `src/workers/{prefix}`: {err}");
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        entries.push(entry.file_name().to_string_lossy().into_owned());
    }
    entries.sort();

    let mut by_module: BTreeMap<String, (String, Node)> = BTreeMap::new();
    for name in entries {
        // Dot-files include editor lock files, which are often dangling links: skip them
        // before touching the file system.
        if name.starts_with('.') || name.starts_with('_') {
            continue;
        }
        let path = dir.join(&name);
        let relative = format!("{prefix}{name}");
        let node = if path.is_dir() {
            if depth == MAX_DEPTH {
                return Err(format!(
                    "`src/workers/{relative}/` is nested deeper than {MAX_DEPTH} directory levels \
                     under `src/workers/`; move its files up or rename it to start with `_`"
                ));
            }
            let children = scan_dir(&path, &format!("{relative}/"), depth + 1)?;
            if children.is_empty() {
                continue;
            }
            Node::Dir {
                module: module_name(&name, &relative)?,
                relative,
                children,
            }
        } else {
            let Some(stem) = name.strip_suffix(".rs") else {
                continue;
            };
            if name == "mod.rs" || name.ends_with(".inc.rs") {
                continue;
            }
            let source = fs::read_to_string(&path)
                .map_err(|err| format!("cannot read `src/workers/{relative}`: {err}"))?;
            Node::File {
                module: module_name(stem, &relative)?,
                path,
                has_install: exports_install(&source),
                relative,
            }
        };
        let module = match &node {
            Node::File { module, .. } | Node::Dir { module, .. } => module.clone(),
        };
        let relative = match &node {
            Node::File { relative, .. } => relative.clone(),
            Node::Dir { relative, .. } => format!("{relative}/"),
        };
        if let Some((other, _)) = by_module.get(&module) {
            return Err(format!(
                "`src/workers/{other}` and `src/workers/{relative}` would both be module `{}`; \
                 rename one of them",
                module.trim_start_matches("r#")
            ));
        }
        by_module.insert(module, (relative, node));
    }
    Ok(by_module.into_values().map(|(_, node)| node).collect())
}

/// The module name for a file stem or directory name: `-` becomes `_`, a leading digit
/// gets a `_` in front, a keyword becomes a raw identifier (or gets a `_` after it).
fn module_name(stem: &str, relative: &str) -> Result<String, String> {
    let mut name = stem.replace('-', "_");
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "`src/workers/{relative}`: `{stem}` is not a valid module name; \
             use ASCII letters, digits, `_` and `-`"
        ));
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, '_');
    }
    Ok(match name.as_str() {
        "crate" | "self" | "super" | "Self" => format!("{name}_"),
        keyword if KEYWORDS.contains(&keyword) => format!("r#{name}"),
        _ => name,
    })
}

const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "do", "dyn",
    "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let",
    "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref", "return",
    "static", "struct", "trait", "true", "try", "type", "typeof", "unsafe", "unsized", "use",
    "virtual", "where", "while", "yield",
];

/// Whether the file exports `pub async fn install()`, the older registration form. A file
/// that does not parse is left to rustc to report.
fn exports_install(source: &str) -> bool {
    syn::parse_file(source).is_ok_and(|file| {
        file.items.iter().any(|item| {
            matches!(item, syn::Item::Fn(f)
                if f.sig.ident == "install"
                    && f.sig.asyncness.is_some()
                    && !matches!(f.vis, syn::Visibility::Inherited))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::module_name;

    #[test]
    fn file_names_become_module_names() {
        let name = |stem| module_name(stem, "x.rs");
        assert_eq!(name("email").unwrap(), "email");
        assert_eq!(name("send-email").unwrap(), "send_email");
        assert_eq!(name("2fa").unwrap(), "_2fa");
        assert_eq!(name("type").unwrap(), "r#type");
        assert_eq!(name("self").unwrap(), "self_");
        assert!(name("my file")
            .unwrap_err()
            .contains("`my file` is not a valid module name"));
        assert!(name("café").is_err());
        assert!(name("a.b").is_err());
    }
}
