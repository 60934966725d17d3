//! The write tool's commit over a repository on the local disk: build the tree from
//! the branch head, move the branch with a compare-and-swap, sync the working tree.

use std::path::Path;

use george_core::tool::ToolOutput;
use george_core::{Error, Result};
use git2::{ErrorCode, Repository};

use super::apply::{apply_changes, build_tree, file_in_tree};
use super::args::CommitRequest;
use super::author::Committer;
use super::branch::{branch_head, branch_ref, committed, unchanged};
use super::trailers::{compose_message, find_replay};
use super::worktree::{sync_worktree, synced_workdir, worktree_content};
use crate::error::GitResultExt;
use crate::local::{changed_paths_in, open_repo};

/// Replays an earlier commit of the same call: reports it, and finishes syncing the
/// working tree if the crash came between moving the branch and writing the files.
fn replay(
    repo: &Repository,
    branch: &str,
    commit: &git2::Commit<'_>,
    is_head: bool,
) -> Result<ToolOutput> {
    let tree = commit.tree().git_ctx("reading a commit tree")?;
    let parent_tree = if commit.parent_count() > 0 {
        Some(
            commit
                .parent(0)
                .git_ctx("reading a parent commit")?
                .tree()
                .git_ctx("reading a commit tree")?,
        )
    } else {
        None
    };
    let paths = changed_paths_in(repo, parent_tree.as_ref(), Some(&tree))?;
    if is_head {
        if let Some(workdir) = synced_workdir(repo, branch)? {
            let mut states = Vec::with_capacity(paths.len());
            for path in &paths {
                let old = file_in_tree(repo, parent_tree.as_ref(), path)?
                    .ok()
                    .flatten()
                    .map(|(b, _)| b);
                let new = file_in_tree(repo, Some(&tree), path)?.ok().flatten();
                states.push((path.clone(), old, new));
            }
            sync_worktree(repo, &workdir, &states)?;
        }
    }
    Ok(committed(branch, commit.id(), paths, true))
}

const ATTEMPTS: usize = 3;

/// Whether the repository has any local branch (if not, the first commit creates ours).
fn has_branches(repo: &Repository) -> Result<bool> {
    let mut branches = repo
        .branches(Some(git2::BranchType::Local))
        .git_ctx("listing branches")?;
    Ok(branches.next().is_some())
}

/// Commits `request` on `who.branch` of the repository at `repo_path` (moving the
/// branch with a compare-and-swap, retried when another writer moved it), or replays
/// the earlier commit of the call with `key`.
pub(crate) fn commit(
    repo_path: &Path,
    who: Committer<'_>,
    request: &CommitRequest,
    key: &str,
) -> Result<ToolOutput> {
    let branch = who.branch;
    let repo = open_repo(repo_path)?;
    let refname = branch_ref(branch);
    for _ in 0..ATTEMPTS {
        let head = branch_head(&repo, branch)?;
        if head.is_none() && has_branches(&repo)? {
            return Ok(ToolOutput::error(format!(
                "branch `{branch}` does not exist"
            )));
        }
        if let (Some(head), false) = (&head, key.is_empty()) {
            if let Some(done) = find_replay(head, key, who.replay_window)? {
                let is_head = done.id() == head.id();
                return replay(&repo, branch, &done, is_head);
            }
        }
        let base = match &head {
            Some(h) => Some(h.tree().git_ctx("reading the head tree")?),
            None => None,
        };
        let pending = match apply_changes(&repo, base.as_ref(), &request.changes)? {
            Ok(p) => p,
            Err(msg) => return Ok(ToolOutput::error(msg)),
        };

        let baseline = match &base {
            Some(t) => t.clone(),
            None => {
                let empty = repo
                    .treebuilder(None)
                    .git_ctx("creating a tree")?
                    .write()
                    .git_ctx("writing a tree")?;
                repo.find_tree(empty).git_ctx("reading a tree")?
            }
        };
        let tree_id = build_tree(&repo, &baseline, &pending)?;
        if let (Some(h), Some(b)) = (&head, &base) {
            if b.id() == tree_id {
                return Ok(unchanged(branch, branch, h.id()));
            }
        }
        let tree = repo.find_tree(tree_id).git_ctx("reading the new tree")?;
        let paths = changed_paths_in(&repo, Some(&baseline), Some(&tree))?;

        // Refuse to clobber uncommitted edits in a synced working tree.
        let workdir = synced_workdir(&repo, branch)?;
        let mut states = Vec::with_capacity(pending.len());
        for (path, new) in pending {
            let old = file_in_tree(&repo, base.as_ref(), &path)?
                .ok()
                .flatten()
                .map(|(b, _)| b);
            if let Some(workdir) = &workdir {
                let current = match worktree_content(workdir, &path) {
                    Ok(c) => c,
                    Err(msg) => return Ok(ToolOutput::error(msg)),
                };
                let new_bytes = new.as_ref().map(|(b, _)| b);
                if current != old && current.as_ref() != new_bytes {
                    return Ok(ToolOutput::error(format!(
                        "`{path}` has uncommitted changes in the working tree; refusing to overwrite them"
                    )));
                }
            }
            states.push((path, old, new));
        }

        let sig = who.author.signature()?;
        let message = compose_message(&request.message, key, None);
        let parents: Vec<&git2::Commit<'_>> = head.iter().collect();
        let oid = repo
            .commit(None, &sig, &sig, &message, &tree, &parents)
            .git_ctx("writing the commit")?;
        let summary = request.message.lines().next().unwrap_or_default();
        let log = format!("commit (george): {summary}");
        let moved = match &head {
            Some(h) => repo.reference_matching(&refname, oid, true, h.id(), &log),
            None => repo.reference(&refname, oid, false, &log),
        };
        match moved {
            Ok(_) => {}
            Err(e) if matches!(e.code(), ErrorCode::Modified | ErrorCode::Exists) => {
                tracing::debug!(branch = %branch, "branch moved during commit; retrying");
                continue;
            }
            Err(e) => return Err(crate::error::from_git2("moving the branch", e)),
        }
        if let Some(workdir) = &workdir {
            sync_worktree(&repo, workdir, &states)?;
        }
        tracing::info!(branch = %branch, commit = %oid, files = paths.len(), "committed");
        return Ok(committed(branch, oid, paths, false));
    }
    Err(Error::conflict(format!(
        "branch `{branch}` kept moving while committing; try again"
    ))
    .transient())
}
