//! Fetching the followed reference into the bare cache, through the shared
//! [`transport`](crate::transport).

use std::path::Path;

use george_core::{Error, Result};
use git2::Repository;

use super::config::{Follow, RemoteConfig};
use crate::error::from_git2;
use crate::transport::{self, FetchSpec};

/// The refspecs that bring `follow` into the cache, under the same names.
fn refspecs(follow: &Follow) -> Vec<String> {
    match follow {
        Follow::Branch(b) => vec![format!("+refs/heads/{b}:refs/heads/{b}")],
        Follow::Tag(t) => vec![format!("+refs/tags/{t}:refs/tags/{t}")],
        // A pinned commit is looked for in every branch and tag (fetching an arbitrary
        // object id needs `uploadpack.allow*SHA1InWant` on the server).
        Follow::Commit(_) => vec![
            "+refs/heads/*:refs/heads/*".to_owned(),
            "+refs/tags/*:refs/tags/*".to_owned(),
        ],
    }
}

/// Fetches `cfg.follow` into the bare repository at `cache`, shallow (`cfg.depth`)
/// when `first` and following a branch or a tag.
///
/// # Errors
/// As [`transport::fetch`](crate::transport) (`Backend` or `Timeout`, transient;
/// `Unauthenticated`); `NotFound` for a pinned commit no branch or tag of the remote
/// contains. Messages never contain credentials.
pub(super) fn fetch(cfg: &RemoteConfig, cache: &Path, first: bool) -> Result<()> {
    let repo = Repository::open_bare(cache).map_err(|e| from_git2("opening the cache", e))?;
    let spec = FetchSpec {
        refspecs: refspecs(&cfg.follow),
        depth: cfg
            .depth
            .filter(|_| first && !matches!(cfg.follow, Follow::Commit(_))),
        prune: false,
    };
    transport::fetch(&cfg.remote, &repo, &spec)?;
    if let Follow::Commit(id) = &cfg.follow {
        pin(&repo, id)?;
    }
    Ok(())
}

/// Checks that the pinned commit arrived and keeps it reachable (`refs/george/pinned`).
fn pin(repo: &Repository, id: &str) -> Result<()> {
    let oid = git2::Oid::from_str(id).map_err(|e| from_git2("parsing the pinned commit", e))?;
    if repo.find_commit(oid).is_err() {
        return Err(Error::not_found(format!(
            "commit {id} is in no branch or tag of the remote"
        )));
    }
    repo.reference("refs/george/pinned", oid, true, "george: pin")
        .map_err(|e| from_git2("pinning the commit", e))?;
    Ok(())
}
