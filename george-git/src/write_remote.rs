//! The write tool over a remote repository: fetch into the bare work clone, commit,
//! push, and rebase-and-retry when the remote moved meanwhile.

use george_core::tool::ToolOutput;
use george_core::{Error, Result};
use git2::{Oid, Repository, Signature};
use serde_json::json;

use crate::error::GitResultExt;
use crate::write::{CommitRequest, Config, changed_paths_in, short_id};
use crate::write_apply::{apply_changes, build_tree};
use crate::write_target::{BranchMode, RemoteTarget, push_branch};
use crate::write_trailers::{CallOrigin, compose_message, find_replay};
use crate::write_transport::{self as transport, PushOutcome};

fn tracking<'r>(repo: &'r Repository, branch: &str) -> Result<Option<git2::Commit<'r>>> {
    match repo.find_reference(&format!("refs/remotes/origin/{branch}")) {
        Ok(r) => Ok(Some(r.peel_to_commit().git_ctx("peeling a remote branch")?)),
        Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
        Err(e) => Err(crate::error::from_git2("reading a remote branch", e)),
    }
}

/// Reads a file over a remote: fetches the branch (or, for a `ref` not known yet,
/// everything), then reads from the work clone.
pub(crate) fn read(
    config: &Config,
    remote: &RemoteTarget,
    path: &str,
    reference: Option<&str>,
) -> Result<ToolOutput> {
    let repo = remote.open_or_init()?;
    let prefix = "refs/remotes/origin/";
    let (commit, label) = match reference {
        None => {
            remote.fetch(&repo, std::slice::from_ref(&config.branch))?;
            match tracking(&repo, &config.branch)? {
                Some(c) => (c, format!("`{}`", config.branch)),
                None => return Ok(no_branch(config, remote)),
            }
        }
        Some(r) => {
            let found = match crate::write_read::resolve_ref(&repo, r, prefix) {
                // A commit id is immutable; a branch or tag may have moved.
                Some(c) if c.id().to_string().starts_with(r) => Some(c),
                _ => {
                    remote.fetch_all(&repo)?;
                    crate::write_read::resolve_ref(&repo, r, prefix)
                }
            };
            match found {
                Some(c) => (c, format!("`{r}`")),
                None => {
                    return Ok(ToolOutput::error(format!(
                        "`{r}` names no commit, branch or tag of {}",
                        remote.redacted_url()
                    )));
                }
            }
        }
    };
    crate::write_read::read_at(&repo, &commit, path, &label, config.max_read_bytes)
}

fn no_branch(config: &Config, remote: &RemoteTarget) -> ToolOutput {
    ToolOutput::error(format!(
        "branch `{}` does not exist on {}",
        config.branch,
        remote.redacted_url()
    ))
}

/// Commits the request over the remote and pushes it; see
/// [`GitWriteTool`](crate::GitWriteTool) for the protocol.
pub(crate) fn commit(
    config: &Config,
    remote: &RemoteTarget,
    request: &CommitRequest,
    origin: &CallOrigin,
) -> Result<ToolOutput> {
    let key = origin.key.as_str();
    let target = match push_branch(config, &remote.branch_mode, origin) {
        Ok(b) => b,
        Err(msg) => return Ok(ToolOutput::error(msg)),
    };
    let repo = remote.open_or_init()?;
    // A change branch may not exist yet: fetch it through a glob, which may match none.
    let fetch = |repo: &Repository| -> Result<()> {
        if let BranchMode::PerStep { prefix } = &remote.branch_mode {
            let specs = [
                format!(
                    "+refs/heads/{}:refs/remotes/origin/{}",
                    config.branch, config.branch
                ),
                format!("+refs/heads/{prefix}/*:refs/remotes/origin/{prefix}/*"),
            ];
            transport::fetch(
                repo,
                &remote.url,
                remote.program(),
                remote.credentials.as_ref(),
                &specs,
            )
        } else {
            remote.fetch(repo, std::slice::from_ref(&config.branch))
        }
    };
    fetch(&repo)?;
    let upstream = |repo: &Repository| -> Result<Option<Oid>> {
        let on_target = tracking(repo, &target)?;
        let head = match on_target {
            Some(c) => Some(c),
            None => tracking(repo, &config.branch)?,
        };
        Ok(head.map(|c| c.id()))
    };
    let Some(mut base) = upstream(&repo)? else {
        return Ok(no_branch(config, remote));
    };
    let done = |repo: &Repository, base: Oid| -> Result<Option<ToolOutput>> {
        if key.is_empty() {
            return Ok(None);
        }
        let head = repo.find_commit(base).git_ctx("reading the remote head")?;
        find_replay(&head, key, config.replay_window)?
            .map(|c| output(repo, config, remote, &target, c.id(), true, 0))
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
        return Ok(unchanged(config, &target, base));
    }
    let sig = Signature::now(&config.author.name, &config.author.email)
        .git_ctx("making the commit signature")?;
    let message = compose_message(&request.message, key, origin.job_step());
    let tree = repo.find_tree(tree_id).git_ctx("reading the new tree")?;
    let mut ours = repo
        .commit(None, &sig, &sig, &message, &tree, &[&base_commit])
        .git_ctx("writing the commit")?;

    let local_ref = "refs/george/push";
    let remote_ref = format!("refs/heads/{target}");
    for attempt in 1..=remote.push_retries + 1 {
        repo.reference(local_ref, ours, true, "george: push")
            .git_ctx("recording the commit to push")?;
        let outcome = transport::push(
            &repo,
            &remote.url,
            remote.program(),
            remote.credentials.as_ref(),
            local_ref,
            &remote_ref,
        )?;
        let reason = match outcome {
            PushOutcome::Pushed => {
                let _ = repo.reference(
                    &format!("refs/remotes/origin/{target}"),
                    ours,
                    true,
                    "pushed",
                );
                tracing::info!(branch = %target, commit = %ours, attempt, "pushed");
                return output(&repo, config, remote, &target, ours, false, attempt);
            }
            PushOutcome::Rejected(reason) => reason,
        };
        tracing::info!(branch = %target, attempt, %reason, "push rejected; fetching and rebasing");
        fetch(&repo)?;
        let Some(new_base) = upstream(&repo)? else {
            return Ok(no_branch(config, remote));
        };
        if new_base == base {
            // The remote did not move: the rejection is not a race (a hook, a rule).
            return Ok(ToolOutput::error(format!(
                "{} rejected the push to `{target}`: {reason}",
                remote.redacted_url()
            ))
            .with_data(json!({"pushed": false, "branch": target, "reason": reason})));
        }
        if let Some(out) = done(&repo, new_base)? {
            return Ok(out);
        }
        match rebase(&repo, ours, new_base)? {
            Rebased::Onto(c) => ours = c,
            Rebased::AlreadyThere => return Ok(unchanged(config, &target, new_base)),
            Rebased::Conflicts(paths) => {
                return Ok(ToolOutput::error(format!(
                    "`{target}` on {} moved meanwhile and the change conflicts with it in {}: \
                     nothing was pushed (read the files again and redo the change)",
                    remote.redacted_url(),
                    paths
                        .iter()
                        .map(|p| format!("`{p}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
                .with_data(json!({"pushed": false, "branch": target, "conflicts": paths})));
            }
        }
        base = new_base;
    }
    Err(Error::conflict(format!(
        "`{target}` on {} kept moving: gave up after {} push attempts",
        remote.redacted_url(),
        remote.push_retries + 1
    ))
    .transient())
}

enum Rebased {
    Onto(Oid),
    AlreadyThere,
    Conflicts(Vec<String>),
}

/// Replays `ours` (a commit with one parent) onto `onto` by a three-way merge.
fn rebase(repo: &Repository, ours: Oid, onto: Oid) -> Result<Rebased> {
    let ours = repo.find_commit(ours).git_ctx("reading the commit")?;
    let onto = repo.find_commit(onto).git_ctx("reading the remote head")?;
    let mut index = repo
        .cherrypick_commit(&ours, &onto, 0, None)
        .git_ctx("rebasing the commit")?;
    if index.has_conflicts() {
        let mut paths = std::collections::BTreeSet::new();
        for c in index.conflicts().git_ctx("listing conflicts")? {
            let c = c.git_ctx("reading a conflict")?;
            for entry in [c.ancestor, c.our, c.their].into_iter().flatten() {
                paths.insert(String::from_utf8_lossy(&entry.path).into_owned());
            }
        }
        return Ok(Rebased::Conflicts(paths.into_iter().collect()));
    }
    let tree_id = index
        .write_tree_to(repo)
        .git_ctx("writing the rebased tree")?;
    if tree_id == onto.tree_id() {
        return Ok(Rebased::AlreadyThere);
    }
    let tree = repo
        .find_tree(tree_id)
        .git_ctx("reading the rebased tree")?;
    let sig = Signature::now(
        ours.committer().name().unwrap_or("George"),
        ours.committer().email().unwrap_or(""),
    )
    .git_ctx("making the commit signature")?;
    let message = String::from_utf8_lossy(ours.message_bytes()).into_owned();
    let id = repo
        .commit(None, &ours.author(), &sig, &message, &tree, &[&onto])
        .git_ctx("writing the rebased commit")?;
    Ok(Rebased::Onto(id))
}

fn unchanged(config: &Config, target: &str, head: Oid) -> ToolOutput {
    let mut out = crate::write::output(config, head, Vec::new(), false);
    out.content = format!(
        "nothing to commit: `{target}` already has this content at {}",
        short_id(head)
    );
    out
}

fn output(
    repo: &Repository,
    config: &Config,
    remote: &RemoteTarget,
    target: &str,
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
    let url = remote.redacted_url();
    let mut content = if replayed {
        format!(
            "already pushed as {} to `{target}` on {url} (this call was retried): {} file(s)",
            short_id(commit),
            paths.len()
        )
    } else {
        format!(
            "committed {} and pushed it to `{target}` on {url}: {} file(s) changed",
            short_id(commit),
            paths.len()
        )
    };
    if target != config.branch {
        content.push_str(&format!(
            "; the change waits on branch `{target}` for review and merge into `{}`",
            config.branch
        ));
    }
    Ok(ToolOutput::ok(content).with_data(json!({
        "commit": commit.to_string(),
        "paths": paths,
        "branch": target,
        "target_branch": config.branch,
        "remote": url,
        "replayed": replayed,
        "pushed": true,
        "attempts": attempts,
    })))
}
