//! The read tool (`<alias>_read_file`): a file at the branch head or at a given
//! commit, branch or tag, refused above a size limit.

use std::path::Path;

use george_core::Result;
use george_core::tool::ToolOutput;
use git2::{ObjectType, Repository};
use serde_json::json;

use super::branch::{branch_head, short_id};
use crate::error::GitResultExt;
use crate::local::open_repo;

/// The read tool's default size limit: 256 KiB.
pub const DEFAULT_MAX_READ_BYTES: u64 = 256 * 1024;

/// Reads `path` from `commit`: its text, or an error result when it is missing, not a
/// file, binary or larger than `max_bytes` (the size is checked from the object
/// header, without loading the blob). `label` names the revision in messages.
pub(crate) fn read_at(
    repo: &Repository,
    commit: &git2::Commit<'_>,
    path: &str,
    label: &str,
    max_bytes: u64,
) -> Result<ToolOutput> {
    let tree = commit.tree().git_ctx("reading a commit tree")?;
    let short = short_id(commit.id());
    let entry = match tree.get_path(Path::new(path)) {
        Ok(e) => e,
        Err(_) => {
            return Ok(ToolOutput::error(format!(
                "`{path}` does not exist at {short} on {label}"
            )));
        }
    };
    if entry.kind() != Some(ObjectType::Blob) {
        return Ok(ToolOutput::error(format!("`{path}` is not a file")));
    }
    let odb = repo.odb().git_ctx("opening the object database")?;
    let (size, _) = odb
        .read_header(entry.id())
        .git_ctx("reading a blob header")?;
    let size = size as u64;
    let data = json!({
        "path": path,
        "commit": commit.id().to_string(),
        "bytes": size,
        "max_bytes": max_bytes,
    });
    if size > max_bytes {
        return Ok(ToolOutput::error(format!(
            "`{path}` is {size} bytes, over the read limit of {max_bytes} bytes: \
             not read (read a smaller file, or ask for the limit to be raised)"
        ))
        .with_data(data));
    }
    let blob = repo.find_blob(entry.id()).git_ctx("reading a blob")?;
    match std::str::from_utf8(blob.content()) {
        Ok(text) => Ok(ToolOutput::ok(text).with_data(data)),
        Err(_) => Ok(ToolOutput::error(format!(
            "`{path}` is a binary file ({} bytes)",
            blob.size()
        ))
        .with_data(data)),
    }
}

/// Resolves the read tool's `ref` argument in `repo`: a commit id (full or at least
/// 7 hex digits), a branch (looked up first under `branch_prefix`, e.g.
/// `refs/remotes/origin/`, then as a local branch) or a tag. `None` if it names no
/// commit here.
pub(crate) fn resolve_ref<'r>(
    repo: &'r Repository,
    reference: &str,
    branch_prefix: &str,
) -> Option<git2::Commit<'r>> {
    if !branch_prefix.is_empty() {
        if let Ok(r) = repo.find_reference(&format!("{branch_prefix}{reference}")) {
            return r.peel_to_commit().ok();
        }
    }
    crate::local::resolve_in(repo, reference)
        .ok()
        .and_then(|oid| repo.find_commit(oid).ok())
}

/// Checks the shape of a `ref` argument: no whitespace or control characters, no
/// revision-expression characters beyond what branch and tag names allow.
pub(crate) fn validate_ref(reference: &str) -> std::result::Result<(), String> {
    let ok = !reference.is_empty()
        && reference.len() <= 256
        && !reference.starts_with('-')
        && reference
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`ref` {reference:?} is not a commit id, branch or tag name \
             (letters, digits, `/`, `.`, `_`, `-`)"
        ))
    }
}

/// Reads `path` at the head of `branch`, or at `reference`, of the local repository
/// at `repo_path`, refusing files over `max_bytes`.
pub(crate) fn read_file(
    repo_path: &Path,
    branch: &str,
    path: &str,
    reference: Option<&str>,
    max_bytes: u64,
) -> Result<ToolOutput> {
    let repo = open_repo(repo_path)?;
    let (commit, label) = match reference {
        None => match branch_head(&repo, branch)? {
            Some(head) => (head, format!("`{branch}`")),
            None => {
                return Ok(ToolOutput::error(format!(
                    "branch `{branch}` has no commits yet"
                )));
            }
        },
        Some(r) => match resolve_ref(&repo, r, "") {
            Some(c) => (c, format!("`{r}`")),
            None => {
                return Ok(ToolOutput::error(format!(
                    "`{r}` names no commit, branch or tag of the repository"
                )));
            }
        },
    };
    read_at(&repo, &commit, path, &label, max_bytes)
}
