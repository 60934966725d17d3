//! Keeping a non-bare repository's working tree and index in step with the commits
//! the local write tool makes on the checked-out branch.

use std::path::{Path, PathBuf};

use george_core::{Error, Result};
use git2::{ErrorCode, FileMode, Repository};

use super::apply::NewFile;
use super::branch::branch_ref;
use crate::error::GitResultExt;

/// The working directory to keep in sync: set when the repository is not bare and its
/// `HEAD` is `branch`.
pub(crate) fn synced_workdir(repo: &Repository, branch: &str) -> Result<Option<PathBuf>> {
    if repo.is_bare() {
        return Ok(None);
    }
    let head = repo.find_reference("HEAD").git_ctx("reading HEAD")?;
    let target = head.symbolic_target().git_ctx("reading HEAD")?;
    if target != Some(branch_ref(branch).as_str()) {
        return Ok(None);
    }
    Ok(repo.workdir().map(Path::to_path_buf))
}

/// What the working tree holds at `path`: `Err` if a parent is a symbolic link (or
/// the path is not a plain file), so that writing there could leave the repository.
pub(crate) fn worktree_content(
    workdir: &Path,
    path: &str,
) -> std::result::Result<Option<Vec<u8>>, String> {
    let mut at = workdir.to_path_buf();
    let parts: Vec<&str> = path.split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(format!(
                    "`{path}` goes through a symbolic link in the working tree"
                ));
            }
            Ok(meta) if i + 1 == parts.len() => {
                if !meta.is_file() {
                    return Err(format!("`{path}` is not a plain file in the working tree"));
                }
            }
            Ok(_) => {}
            Err(_) => return Ok(None),
        }
    }
    std::fs::read(&at)
        .map(Some)
        .map_err(|e| format!("cannot read `{path}` in the working tree: {e}"))
}

/// Writes the committed state of `paths` to the working tree and the index, for each
/// path whose working-tree content is still the old one (or already the new one).
/// Paths with other local edits are left alone (and logged).
pub(crate) fn sync_worktree(
    repo: &Repository,
    workdir: &Path,
    paths: &[(String, Option<Vec<u8>>, NewFile)],
) -> Result<()> {
    let mut index = repo.index().git_ctx("opening the index")?;
    for (path, old, new) in paths {
        let current = match worktree_content(workdir, path) {
            Ok(c) => c,
            Err(msg) => {
                tracing::warn!(path = %path, "not syncing the working tree: {msg}");
                continue;
            }
        };
        let new_bytes = new.as_ref().map(|(b, _)| b);
        let up_to_date = current.as_ref() == new_bytes;
        if !up_to_date && current != *old {
            tracing::warn!(path = %path, "working tree has local edits; left as is");
            continue;
        }
        let file = workdir.join(path);
        match new {
            Some((bytes, mode)) => {
                if !up_to_date {
                    if let Some(parent) = file.parent() {
                        std::fs::create_dir_all(parent).map_err(io_error)?;
                    }
                    std::fs::write(&file, bytes).map_err(io_error)?;
                    set_mode(&file, *mode)?;
                }
                index
                    .add_path(Path::new(path))
                    .git_ctx("updating the index")?;
            }
            None => {
                if current.is_some() {
                    std::fs::remove_file(&file).map_err(io_error)?;
                }
                match index.remove_path(Path::new(path)) {
                    Ok(()) => {}
                    Err(e) if e.code() == ErrorCode::NotFound => {}
                    Err(e) => return Err(crate::error::from_git2("updating the index", e)),
                }
            }
        }
    }
    index.write().git_ctx("writing the index")?;
    Ok(())
}

#[cfg(unix)]
fn set_mode(file: &Path, mode: FileMode) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let bits = if mode == FileMode::BlobExecutable {
        0o755
    } else {
        0o644
    };
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(bits)).map_err(io_error)
}

#[cfg(not(unix))]
fn set_mode(_file: &Path, _mode: FileMode) -> Result<()> {
    Ok(())
}

fn io_error(e: std::io::Error) -> Error {
    Error::backend("updating the working tree failed").with_source(e)
}
