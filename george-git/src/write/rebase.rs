//! Replaying the write tool's commit onto a remote head that moved meanwhile: a
//! three-way cherry-pick that merges changes to other files or other lines.

use george_core::Result;
use git2::{Oid, Repository, Signature};

use crate::error::GitResultExt;

/// The outcome of [`rebase`].
pub(crate) enum Rebased {
    /// The rebased commit.
    Onto(Oid),
    /// The new head already has the change: nothing to commit.
    AlreadyThere,
    /// The change conflicts with the new head in these paths.
    Conflicts(Vec<String>),
}

/// Replays `ours` (a commit with one parent) onto `onto` by a three-way merge.
pub(crate) fn rebase(repo: &Repository, ours: Oid, onto: Oid) -> Result<Rebased> {
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
