//! Applying a commit call's changes to a tree: the new state of each path, and the
//! tree with the new blobs.

use std::collections::BTreeMap;
use std::path::Path;

use george_core::Result;
use git2::{FileMode, ObjectType, Oid, Repository};

use super::args::Change;
use crate::error::GitResultExt;
use crate::local::is_regular_file;

/// The new state of a changed path: its content and mode, or `None` (deleted).
pub(crate) type NewFile = Option<(Vec<u8>, FileMode)>;

/// A path's content and mode in `tree`, `Err` with a message if it is not a regular file.
pub(crate) fn file_in_tree(
    repo: &Repository,
    tree: Option<&git2::Tree<'_>>,
    path: &str,
) -> Result<std::result::Result<NewFile, String>> {
    let Some(tree) = tree else {
        return Ok(Ok(None));
    };
    let Ok(entry) = tree.get_path(Path::new(path)) else {
        return Ok(Ok(None));
    };
    if entry.kind() != Some(ObjectType::Blob) || !is_regular_file(entry.filemode()) {
        return Ok(Err(format!(
            "`{path}` is not a regular file (a directory, symbolic link or submodule)"
        )));
    }
    let mode = if entry.filemode() == i32::from(FileMode::BlobExecutable) {
        FileMode::BlobExecutable
    } else {
        FileMode::Blob
    };
    let blob = repo.find_blob(entry.id()).git_ctx("reading a blob")?;
    Ok(Ok(Some((blob.content().to_vec(), mode))))
}

/// Applies the changes in order on top of `base`: the final state of each path, or an
/// error message for the model.
pub(crate) fn apply_changes(
    repo: &Repository,
    base: Option<&git2::Tree<'_>>,
    changes: &[Change],
) -> Result<std::result::Result<BTreeMap<String, NewFile>, String>> {
    let mut pending: BTreeMap<String, NewFile> = BTreeMap::new();
    for change in changes {
        let path = change.path();
        let current = match pending.get(path) {
            Some(state) => state.clone(),
            None => match file_in_tree(repo, base, path)? {
                Ok(state) => state,
                Err(msg) => return Ok(Err(msg)),
            },
        };
        let mode = current.as_ref().map_or(FileMode::Blob, |(_, m)| *m);
        let next = match change {
            Change::Write { content, .. } => Some((content.clone().into_bytes(), mode)),
            Change::Delete { .. } => {
                if current.is_none() {
                    return Ok(Err(format!("cannot delete `{path}`: it does not exist")));
                }
                None
            }
            Change::Replace { find, replace, .. } => {
                let Some((bytes, _)) = current else {
                    return Ok(Err(format!("cannot edit `{path}`: it does not exist")));
                };
                let Ok(text) = String::from_utf8(bytes) else {
                    return Ok(Err(format!("cannot edit `{path}`: it is not UTF-8 text")));
                };
                match text.matches(find.as_str()).count() {
                    1 => Some((text.replacen(find.as_str(), replace, 1).into_bytes(), mode)),
                    0 => {
                        return Ok(Err(format!(
                            "`find` text not found in `{path}`: nothing replaced (read the file and copy the exact text)"
                        )));
                    }
                    n => {
                        return Ok(Err(format!(
                            "`find` text occurs {n} times in `{path}`: make it longer so it matches exactly once"
                        )));
                    }
                }
            }
        };
        pending.insert(path.to_owned(), next);
    }
    Ok(Ok(pending))
}

/// Writes the blobs of `pending` and the tree `base` updated with them.
pub(crate) fn build_tree(
    repo: &Repository,
    base: &git2::Tree<'_>,
    pending: &BTreeMap<String, NewFile>,
) -> Result<Oid> {
    let mut builder = git2::build::TreeUpdateBuilder::new();
    for (path, state) in pending {
        match state {
            Some((bytes, mode)) => {
                let blob = repo.blob(bytes).git_ctx("writing a blob")?;
                builder.upsert(path.as_str(), blob, *mode);
            }
            None => {
                builder.remove(path.as_str());
            }
        }
    }
    builder
        .create_updated(repo, base)
        .git_ctx("building the new tree")
}
