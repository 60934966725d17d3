//! The write tool over a remote repository: fetch into the bare work clone, commit,
//! push, and rebase-and-retry when the remote moved meanwhile.

use george_core::tool::ToolOutput;
use george_core::{Error, Result};
use git2::{Oid, Repository};
use serde_json::json;

use super::apply::{apply_changes, build_tree};
use super::args::CommitRequest;
use super::author::Committer;
use super::branch::{commit_at, short_id, unchanged};
use super::read::{read_at, resolve_ref};
use super::rebase::{Rebased, rebase};
use super::target::{BranchMode, RemoteTarget, push_branch};
use super::trailers::{CallOrigin, compose_message, find_replay};
use crate::error::GitResultExt;
use crate::local::changed_paths_in;
use crate::transport::{self, PushOutcome};

/// The commit `refs/remotes/origin/<branch>` points at, if any.
fn tracking<'r>(repo: &'r Repository, branch: &str) -> Result<Option<git2::Commit<'r>>> {
    commit_at(repo, &format!("refs/remotes/origin/{branch}"))
}

/// Reads `path` of `branch` (or at `reference`) over a remote: fetches the branch (or,
/// for a `ref` not known yet, everything), then reads from the work clone.
pub(crate) fn read(
    target: &RemoteTarget,
    branch: &str,
    path: &str,
    reference: Option<&str>,
    max_bytes: u64,
) -> Result<ToolOutput> {
    let repo = target.open_or_init()?;
    let prefix = "refs/remotes/origin/";
    let (commit, label) = match reference {
        None => {
            target.fetch(&repo, &[branch])?;
            match tracking(&repo, branch)? {
                Some(c) => (c, format!("`{branch}`")),
                None => return Ok(no_branch(branch, target)),
            }
        }
        Some(r) => {
            let found = match resolve_ref(&repo, r, prefix) {
                // A commit id is immutable; a branch or tag may have moved.
                Some(c) if c.id().to_string().starts_with(r) => Some(c),
                _ => {
                    target.fetch_all(&repo)?;
                    resolve_ref(&repo, r, prefix)
                }
            };
            match found {
                Some(c) => (c, format!("`{r}`")),
                None => {
                    return Ok(ToolOutput::error(format!(
                        "`{r}` names no commit, branch or tag of {}",
                        target.redacted_url()
                    )));
                }
            }
        }
    };
    read_at(&repo, &commit, path, &label, max_bytes)
}

fn no_branch(branch: &str, target: &RemoteTarget) -> ToolOutput {
    ToolOutput::error(format!(
        "branch `{branch}` does not exist on {}",
        target.redacted_url()
    ))
}

/// Commits the request over the remote and pushes it; see
/// [`GitWriteTool`](crate::GitWriteTool) for the protocol.
pub(crate) fn commit(
    target: &RemoteTarget,
    who: Committer<'_>,
    request: &CommitRequest,
    origin: &CallOrigin,
) -> Result<ToolOutput> {
    let (key, branch) = (origin.key.as_str(), who.branch);
    let onto = match push_branch(branch, &target.branch_mode, origin) {
        Ok(b) => b,
        Err(msg) => return Ok(ToolOutput::error(msg)),
    };
    let repo = target.open_or_init()?;
    // A change branch may not exist yet: fetch it through a glob, which may match none.
    let glob = match &target.branch_mode {
        BranchMode::PerStep { prefix } => Some(format!("{prefix}/*")),
        _ => None,
    };
    let names: Vec<&str> = std::iter::once(branch).chain(glob.as_deref()).collect();
    let fetch = |repo: &Repository| target.fetch(repo, &names);
    fetch(&repo)?;
    let upstream = |repo: &Repository| -> Result<Option<Oid>> {
        let head = match tracking(repo, &onto)? {
            Some(c) => Some(c),
            None => tracking(repo, branch)?,
        };
        Ok(head.map(|c| c.id()))
    };
    let Some(mut base) = upstream(&repo)? else {
        return Ok(no_branch(branch, target));
    };
    let pushed = Pushed {
        target,
        branch,
        onto: &onto,
    };
    let done = |repo: &Repository, base: Oid| -> Result<Option<ToolOutput>> {
        if key.is_empty() {
            return Ok(None);
        }
        let head = repo.find_commit(base).git_ctx("reading the remote head")?;
        find_replay(&head, key, who.replay_window)?
            .map(|c| pushed.output(repo, c.id(), true, 0))
            .transpose()
    };
    if let Some(out) = done(&repo, base)? {
        return Ok(out);
    }

    // The agent's commit on the remote head.
    let base_commit = repo.find_commit(base).git_ctx("reading the remote head")?;
    let base_tree = base_commit.tree().git_ctx("reading the head tree")?;
    let pending = match apply_changes(&repo, Some(&base_tree), &request.changes)? {
        Ok(p) => p,
        Err(msg) => return Ok(ToolOutput::error(msg)),
    };
    let tree_id = build_tree(&repo, &base_tree, &pending)?;
    if tree_id == base_tree.id() {
        return Ok(unchanged(branch, &onto, base));
    }
    let sig = who.author.signature()?;
    let message = compose_message(&request.message, key, origin.job_step());
    let tree = repo.find_tree(tree_id).git_ctx("reading the new tree")?;
    let mut ours = repo
        .commit(None, &sig, &sig, &message, &tree, &[&base_commit])
        .git_ctx("writing the commit")?;

    let local_ref = "refs/george/push";
    let remote_ref = format!("refs/heads/{onto}");
    for attempt in 1..=target.push_retries + 1 {
        repo.reference(local_ref, ours, true, "george: push")
            .git_ctx("recording the commit to push")?;
        let reason = match transport::push(&target.remote, &repo, local_ref, &remote_ref)? {
            PushOutcome::Pushed => {
                let tracking = format!("refs/remotes/origin/{onto}");
                let _ = repo.reference(&tracking, ours, true, "pushed");
                tracing::info!(branch = %onto, commit = %ours, attempt, "pushed");
                return pushed.output(&repo, ours, false, attempt);
            }
            PushOutcome::Rejected(reason) => reason,
        };
        tracing::info!(branch = %onto, attempt, %reason, "push rejected; fetching and rebasing");
        fetch(&repo)?;
        let Some(new_base) = upstream(&repo)? else {
            return Ok(no_branch(branch, target));
        };
        if new_base == base {
            // The remote did not move: the rejection is not a race (a hook, a rule).
            return Ok(ToolOutput::error(format!(
                "{} rejected the push to `{onto}`: {reason}",
                target.redacted_url()
            ))
            .with_data(json!({"pushed": false, "branch": onto, "reason": reason})));
        }
        if let Some(out) = done(&repo, new_base)? {
            return Ok(out);
        }
        match rebase(&repo, ours, new_base)? {
            Rebased::Onto(c) => ours = c,
            Rebased::AlreadyThere => return Ok(unchanged(branch, &onto, new_base)),
            Rebased::Conflicts(paths) => return Ok(pushed.conflict(&paths)),
        }
        base = new_base;
    }
    Err(Error::conflict(format!(
        "`{onto}` on {} kept moving: gave up after {} push attempts",
        target.redacted_url(),
        target.push_retries + 1
    ))
    .transient())
}

/// Where a commit call pushes: the target, the tool's branch, and the branch pushed to
/// (the same, or a step's change branch).
struct Pushed<'a> {
    target: &'a RemoteTarget,
    branch: &'a str,
    onto: &'a str,
}

impl Pushed<'_> {
    /// The result of a commit pushed (or found, `replayed`) on the remote.
    fn output(
        &self,
        repo: &Repository,
        commit: Oid,
        replayed: bool,
        attempts: usize,
    ) -> Result<ToolOutput> {
        let c = repo.find_commit(commit).git_ctx("reading the commit")?;
        let parent = match c.parent_count() {
            0 => None,
            _ => Some(
                c.parent(0)
                    .git_ctx("reading a parent")?
                    .tree()
                    .git_ctx("reading a tree")?,
            ),
        };
        let tree = c.tree().git_ctx("reading a tree")?;
        let paths = changed_paths_in(repo, parent.as_ref(), Some(&tree))?;
        let (url, onto, short, n) = (
            self.target.redacted_url(),
            self.onto,
            short_id(commit),
            paths.len(),
        );
        let mut content = if replayed {
            format!(
                "already pushed as {short} to `{onto}` on {url} (this call was retried): {n} file(s)"
            )
        } else {
            format!("committed {short} and pushed it to `{onto}` on {url}: {n} file(s) changed")
        };
        if onto != self.branch {
            content.push_str(&format!(
                "; the change waits on branch `{onto}` for review and merge into `{}`",
                self.branch
            ));
        }
        Ok(ToolOutput::ok(content).with_data(json!({
            "commit": commit.to_string(),
            "paths": paths,
            "branch": onto,
            "target_branch": self.branch,
            "remote": url,
            "replayed": replayed,
            "pushed": true,
            "attempts": attempts,
        })))
    }

    /// The result of a change that conflicts with the moved remote head.
    fn conflict(&self, paths: &[String]) -> ToolOutput {
        let list = paths
            .iter()
            .map(|p| format!("`{p}`"))
            .collect::<Vec<_>>()
            .join(", ");
        ToolOutput::error(format!(
            "`{}` on {} moved meanwhile and the change conflicts with it in {list}: \
             nothing was pushed (read the files again and redo the change)",
            self.onto,
            self.target.redacted_url(),
        ))
        .with_data(json!({"pushed": false, "branch": self.onto, "conflicts": paths}))
    }
}
