//! The commit tool's preview ([`ToolExecutor::preview`]): what a commit call would
//! change, as a unified diff against the branch head, computed in memory.
//!
//! Nothing is written: no blob, tree or commit enters the object database, no
//! reference moves, the working tree and the index are only read, and over a remote
//! nothing is fetched (the preview is against the work clone's last fetched state, and
//! says so). The call's checks are made as the call would make them — arguments,
//! message trailers, path scope, `find` texts, uncommitted edits in a synced working
//! tree — and a call they would refuse previews with
//! [`is_error`](george_core::tool::ToolPreview::is_error) set and the reason in the
//! summary (a refused path still shows its diff, so the reviewer sees what was tried).
//!
//! [`ToolExecutor::preview`]: george_core::tool::ToolExecutor::preview

use std::path::PathBuf;
use std::sync::Arc;

use george_core::Result;
use george_core::tool::{ToolInvocation, ToolPreview};
use git2::{Oid, Repository};
use serde_json::Value;

use super::apply::{NewFile, apply_changes, file_in_tree};
use super::args::{Change, CommitRequest, parse_commit};
use super::branch::{branch_head, commit_at, short_id};
use super::diff::{file_diff, kind};
use super::settings::Settings;
use super::target::{RemoteTarget, push_branch};
use super::trailers::{CallOrigin, check_message, find_replay};
use super::worktree::{synced_workdir, worktree_content};
use crate::error::{GitResultExt, blocking};
use crate::local::open_repo;

/// The most diff text one preview builds (1 MiB); later files are named in the
/// summary instead. The engine cuts what it shows further.
const MAX_DIFF_BYTES: usize = 1024 * 1024;

/// The preview of a commit call (see the module docs).
///
/// # Errors
/// Only when the repository cannot be read (`NotFound`, `Backend`).
pub(crate) async fn commit(
    settings: &Arc<Settings>,
    invocation: &ToolInvocation,
) -> Result<ToolPreview> {
    let request = match parse_commit(&invocation.arguments) {
        Ok(r) => r,
        Err(msg) => return Ok(ToolPreview::error(format!("the call would fail: {msg}"))),
    };
    if let Err(msg) = check_message(&request.message) {
        return Ok(ToolPreview::error(format!("the call would fail: {msg}")));
    }
    let refused = settings
        .scope
        .check(request.changes.iter().map(Change::path))
        .err()
        .map(|out| match out.data.as_ref() {
            Some(d) => format!(
                "`{}` is refused by the path rule `{}`",
                d["refused"].as_str().unwrap_or_default(),
                d["rule"].as_str().unwrap_or_default()
            ),
            None => out.content,
        });
    let (settings, origin) = (settings.clone(), CallOrigin::of(invocation));
    blocking(move || compute(&settings, &request, &origin, refused)).await
}

/// Where the changes would be applied: the repository, its head (`None`: an empty
/// branch the commit creates), words for the summary, and the synced working tree.
struct Base {
    repo: Repository,
    head: Option<Oid>,
    label: String,
    workdir: Option<PathBuf>,
}

/// The base of a local repository's branch, or the preview saying why there is none.
fn local_base(s: &Settings) -> Result<std::result::Result<Base, ToolPreview>> {
    let repo = open_repo(&s.path)?;
    let branch = &s.branch;
    let head = branch_head(&repo, branch)?.map(|c| c.id());
    let label = match head {
        Some(h) => format!("branch `{branch}` at {}", short_id(h)),
        None => {
            let mut branches = repo
                .branches(Some(git2::BranchType::Local))
                .git_ctx("listing branches")?;
            if branches.next().is_some() {
                return Ok(Err(ToolPreview::error(format!(
                    "the call would fail: branch `{branch}` does not exist"
                ))));
            }
            format!("branch `{branch}` (new: the first commit creates it)")
        }
    };
    let workdir = synced_workdir(&repo, branch)?;
    Ok(Ok(Base {
        repo,
        head,
        label,
        workdir,
    }))
}

/// The base over a remote: the work clone's last fetched head of the branch the
/// commit would go to (its change branch, else the target branch). Never fetches.
fn remote_base(
    target: &RemoteTarget,
    branch: &str,
    origin: &CallOrigin,
) -> Result<std::result::Result<Base, ToolPreview>> {
    let url = target.redacted_url();
    let onto = match push_branch(branch, &target.branch_mode, origin) {
        Ok(b) => b,
        Err(msg) => {
            return Ok(Err(ToolPreview::error(format!(
                "the call would fail: {msg}"
            ))));
        }
    };
    let not_fetched = || {
        ToolPreview::new(format!(
            "cannot show the changes: branch `{branch}` of {url} has not been fetched into \
             the work clone yet (a preview does not fetch; the first call or read does)"
        ))
    };
    let Ok(repo) = Repository::open_bare(&target.work_dir) else {
        return Ok(Err(not_fetched()));
    };
    let tracking = |name: &str| commit_at(&repo, &format!("refs/remotes/origin/{name}"));
    let (head, from) = match tracking(&onto)? {
        Some(c) => (c.id(), onto.clone()),
        None => match tracking(branch)? {
            Some(c) => (c.id(), branch.to_owned()),
            None => return Ok(Err(not_fetched())),
        },
    };
    let to = if onto == branch {
        String::new()
    } else {
        format!(", to go to change branch `{onto}`")
    };
    let label = format!(
        "`{from}` of {url} as last fetched, at {}{to} (not fetched for this preview: the \
         remote may have moved since, and the call applies the changes to the head it \
         finds then)",
        short_id(head)
    );
    Ok(Ok(Base {
        repo,
        head: Some(head),
        label,
        workdir: None,
    }))
}

fn compute(
    s: &Settings,
    request: &CommitRequest,
    origin: &CallOrigin,
    refused: Option<String>,
) -> Result<ToolPreview> {
    let base = match &s.remote {
        None => local_base(s)?,
        Some(target) => remote_base(target, &s.branch, origin)?,
    };
    let base = match base {
        Ok(b) => b,
        Err(preview) => return Ok(preview),
    };
    let repo = &base.repo;
    let head = match base.head {
        Some(h) => Some(repo.find_commit(h).git_ctx("reading the branch head")?),
        None => None,
    };
    if let (Some(h), false, None) = (&head, origin.key.is_empty(), &refused) {
        if let Some(done) = find_replay(h, &origin.key, s.replay_window)? {
            return Ok(ToolPreview::new(format!(
                "already committed as {} (its key {:?} is on {}): running the call again \
                 commits nothing",
                short_id(done.id()),
                origin.key,
                base.label
            )));
        }
    }
    let tree = match &head {
        Some(h) => Some(h.tree().git_ctx("reading the head tree")?),
        None => None,
    };
    let pending = match apply_changes(repo, tree.as_ref(), &request.changes)? {
        Ok(p) => p,
        Err(msg) => {
            return Ok(ToolPreview::error(format!(
                "the call would fail against {}: {msg}",
                base.label
            )));
        }
    };
    let mut diff = String::new();
    let (mut counts, mut unshown, mut problems) = ([0usize; 3], 0usize, Vec::new());
    for (path, new) in &pending {
        let old: NewFile = file_in_tree(repo, tree.as_ref(), path)?.ok().flatten();
        let Some(k) = kind(&old, new) else {
            continue;
        };
        counts[k as usize] += 1;
        if let Some(workdir) = &base.workdir {
            match worktree_content(workdir, path) {
                Ok(current) => {
                    let (was, will) = (old.as_ref().map(|f| &f.0), new.as_ref().map(|f| &f.0));
                    if current.as_ref() != was && current.as_ref() != will {
                        problems.push(format!(
                            "`{path}` has uncommitted changes in the working tree, which the \
                             call refuses to overwrite"
                        ));
                    }
                }
                Err(msg) => problems.push(msg),
            }
        }
        if diff.len() >= MAX_DIFF_BYTES {
            unshown += 1;
        } else {
            diff.push_str(&file_diff(path, &old, new));
        }
    }
    let total: usize = counts.iter().sum();
    let subject = request.message.lines().next().unwrap_or_default();
    let mut summary = if total == 0 {
        format!("nothing to commit: {} already has this content", base.label)
    } else {
        let [added, modified, deleted] = counts;
        format!(
            "would commit {subject:?} on {}: {total} file(s) — {added} added, {modified} \
             modified, {deleted} deleted",
            base.label
        )
    };
    if unshown > 0 {
        summary.push_str(&format!(
            " ({unshown} more file(s) not shown: the diff is too long)"
        ));
    }
    let mut preview = ToolPreview::new(summary).with_diff(diff);
    if unshown > 0 {
        preview.truncated = true;
    }
    let failure = refused.into_iter().chain(problems).collect::<Vec<_>>();
    if !failure.is_empty() {
        preview.is_error = true;
        preview.summary = format!(
            "the call would be refused and commit nothing: {}. Had it run: {}",
            failure.join("; "),
            preview.summary
        );
    }
    Ok(preview)
}

/// The read tool's preview: a read changes nothing.
pub(crate) fn read(arguments: &Value) -> ToolPreview {
    let path = arguments.get("path").and_then(Value::as_str).unwrap_or("?");
    ToolPreview::new(format!("reads `{path}`: changes nothing"))
}
