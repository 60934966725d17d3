//! A branch's ref and head, short commit ids, and the commit tool's result.

use george_core::Result;
use george_core::tool::ToolOutput;
use git2::{ErrorCode, Oid, Repository};
use serde_json::json;

use crate::error::GitResultExt;

/// `refs/heads/<branch>`.
pub(crate) fn branch_ref(branch: &str) -> String {
    format!("refs/heads/{branch}")
}

/// The commit `refname` points at, `None` when there is no such reference.
pub(crate) fn commit_at<'r>(
    repo: &'r Repository,
    refname: &str,
) -> Result<Option<git2::Commit<'r>>> {
    match repo.find_reference(refname) {
        Ok(r) => Ok(Some(r.peel_to_commit().git_ctx("peeling a reference")?)),
        Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
        Err(e) => Err(crate::error::from_git2("reading a reference", e)),
    }
}

/// The branch's head commit, `None` when the branch does not exist.
pub(crate) fn branch_head<'r>(
    repo: &'r Repository,
    branch: &str,
) -> Result<Option<git2::Commit<'r>>> {
    commit_at(repo, &branch_ref(branch))
}

/// The first 8 hex digits of a commit id.
pub(crate) fn short_id(oid: Oid) -> String {
    let mut s = oid.to_string();
    s.truncate(8);
    s
}

/// The result of a commit on `branch`: `{"commit", "paths", "branch", "replayed"}`.
pub(crate) fn committed(
    branch: &str,
    commit: Oid,
    paths: Vec<String>,
    replayed: bool,
) -> ToolOutput {
    let short = short_id(commit);
    let n = paths.len();
    let content = if replayed {
        format!("already committed as {short} on `{branch}` (this call was retried): {n} file(s)")
    } else {
        format!("committed {short} on `{branch}`: {n} file(s) changed")
    };
    ToolOutput::ok(content).with_data(json!({
        "commit": commit.to_string(),
        "paths": paths,
        "branch": branch,
        "replayed": replayed,
    }))
}

/// The result of a call whose changes `branch` already has at `head`.
pub(crate) fn unchanged(branch: &str, target: &str, head: Oid) -> ToolOutput {
    let mut out = committed(branch, head, Vec::new(), false);
    out.content = format!(
        "nothing to commit: `{target}` already has this content at {}",
        short_id(head)
    );
    out
}
