//! `george validate [PATH]`: the engine's loader over a working tree.

use std::path::{Path, PathBuf};

use george_core::git::{MANIFEST_DIRS, SourceFile, is_manifest_path};
use george_core::manifest::ManifestSet;
use serde_json::json;

use crate::{EXIT_INVALID, Format};

/// Reads every manifest file under `root`'s manifest folders, `/`-separated paths
/// relative to `root`, sorted.
fn read_manifests(root: &Path) -> Result<Vec<SourceFile>, String> {
    if !root.is_dir() {
        return Err(format!("{} is not a folder", root.display()));
    }
    let mut files = Vec::new();
    for dir in MANIFEST_DIRS {
        let folder = root.join(dir.trim_end_matches('/'));
        if folder.is_dir() {
            walk(root, &folder, &mut files)?;
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<SourceFile>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        let path: PathBuf = entry.path();
        let kind = entry
            .file_type()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if kind.is_dir() {
            walk(root, &path, out)?;
            continue;
        }
        let Ok(rel) = path.strip_prefix(root) else {
            continue;
        };
        let rel: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let rel = rel.join("/");
        if kind.is_file() && is_manifest_path(&rel) {
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            out.push(SourceFile { path: rel, bytes });
        }
    }
    Ok(())
}

/// Validates `root`; prints the report in `format`; returns the exit code.
pub(crate) fn run(root: &Path, format: Format) -> Result<u8, String> {
    let files = read_manifests(root)?;
    let count = files.len();
    let set = ManifestSet::load(files);
    let mut errors = set.errors.clone();
    errors.sort_by(|a, b| (&a.path, a.line, a.column).cmp(&(&b.path, b.line, b.column)));
    match format {
        Format::Text => {
            for e in &errors {
                println!("{e}");
            }
            eprintln!(
                "{count} manifest file(s): {} agent(s), {} template(s), {} job(s), {} policy(ies) valid; {} error(s)",
                set.agents.len(),
                set.templates.len(),
                set.jobs.len(),
                set.policies.len(),
                errors.len()
            );
        }
        Format::Json => {
            let report = json!({
                "valid": errors.is_empty(),
                "files": count,
                "agents": set.agents.len(),
                "templates": set.templates.len(),
                "jobs": set.jobs.len(),
                "policies": set.policies.len(),
                "errors": errors.iter().map(|e| json!({
                    "path": e.path,
                    "line": e.line,
                    "column": e.column,
                    "field": e.field,
                    "message": e.message,
                })).collect::<Vec<_>>(),
            });
            println!("{report}");
        }
    }
    Ok(if errors.is_empty() { 0 } else { EXIT_INVALID })
}
