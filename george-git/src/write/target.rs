//! [`RemoteTarget`]: where the remote write tool pushes (a [`Remote`], the work clone,
//! retries, branch mode), and the names of its change branches.

use std::path::PathBuf;

use george_core::{Error, Result};
use git2::Repository;

use super::trailers::CallOrigin;
use crate::error::GitResultExt;
use crate::transport::{self, FetchSpec, Remote, Transport, split_userinfo};

/// How many times a rejected push is retried (after a fetch and a rebase) by default.
pub const DEFAULT_PUSH_RETRIES: usize = 3;

/// Where the write tool's commits go on a remote.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum BranchMode {
    /// Onto the target branch itself (the default).
    #[default]
    Direct,
    /// Onto a branch `<prefix>/<job>/<step>` (the pull-request flow), created from the
    /// target branch on the step's first commit; later commits of the step add to
    /// it. Opening the pull (merge) request on a forge is left to the caller.
    PerStep {
        /// The first component of the branch name, e.g. `george`.
        prefix: String,
    },
}

impl BranchMode {
    /// `PerStep` with the prefix `george`: branches `george/<job>/<step>`.
    pub fn per_step() -> Self {
        BranchMode::PerStep {
            prefix: "george".to_owned(),
        }
    }
}

/// A remote repository for [`GitWriteTool::remote`](crate::GitWriteTool::remote): the
/// [`Remote`] (URL, credentials, transport, timeouts), the work folder holding the
/// tool's bare clone, and how to push. `Debug` shows no credentials.
#[derive(Debug, Clone)]
pub struct RemoteTarget {
    pub(crate) remote: Remote,
    pub(crate) work_dir: PathBuf,
    pub(crate) push_retries: usize,
    pub(crate) branch_mode: BranchMode,
}

impl RemoteTarget {
    /// The repository at `url` (`file://`, `git://`, `http://`, `https://`, `ssh://`,
    /// `user@host:path` or a local path), cloned (bare) into `work_dir`, which is
    /// created if missing and must not be shared with another tool. A
    /// `user:password@` in the URL is split off ([`Remote::new`]): the work clone's
    /// `config` never holds it.
    pub fn new(url: impl Into<String>, work_dir: impl Into<PathBuf>) -> Self {
        Self::from_remote(Remote::new(url), work_dir)
    }

    /// [`new`](Self::new) for a [`Remote`] (for its timeouts, transport, credentials
    /// or plain-HTTP policy).
    pub fn from_remote(remote: Remote, work_dir: impl Into<PathBuf>) -> Self {
        RemoteTarget {
            remote,
            work_dir: work_dir.into(),
            push_retries: DEFAULT_PUSH_RETRIES,
            branch_mode: BranchMode::Direct,
        }
    }

    /// How many times a push rejected because the remote moved is retried after a
    /// fetch and a rebase (default [`DEFAULT_PUSH_RETRIES`]; `0`: push once).
    pub fn with_push_retries(mut self, retries: usize) -> Self {
        self.push_retries = retries;
        self
    }

    /// Where commits go (default [`BranchMode::Direct`]).
    pub fn with_branch_mode(mut self, mode: BranchMode) -> Self {
        self.branch_mode = mode;
        self
    }

    /// Which program talks to the remote: [`Remote::with_transport`].
    pub fn with_transport(mut self, transport: Transport) -> Self {
        self.remote = self.remote.with_transport(transport);
        self
    }

    /// HTTP(S) credentials from the environment variables with these **names**, read at
    /// each fetch or push: [`Remote::with_username_env`] and [`Remote::with_token_env`].
    pub fn with_credentials_env(
        mut self,
        username_var: impl Into<String>,
        password_var: impl Into<String>,
    ) -> Self {
        self.remote = self
            .remote
            .with_username_env(username_var)
            .with_token_env(password_var);
        self
    }

    /// The remote.
    pub fn remote(&self) -> &Remote {
        &self.remote
    }

    /// The URL with anything userinfo-like replaced by `***@`, fit for messages.
    pub fn redacted_url(&self) -> String {
        self.remote.redacted_url()
    }

    /// Opens the work clone, creating it (bare, with `origin` at the URL, which has no
    /// credentials) if missing. A clone made by an older version with credentials in
    /// `origin`'s URL has them removed.
    ///
    /// # Errors
    /// `InvalidInput` for an invalid [`Remote`] or a work folder holding a clone of
    /// another URL; `Backend` when the folder cannot be created.
    pub(crate) fn open_or_init(&self) -> Result<Repository> {
        self.remote.validate()?;
        let url = self.remote.url();
        let place = || format!("the work clone at {}", self.work_dir.display());
        let repo = match Repository::open_bare(&self.work_dir) {
            Ok(r) => r,
            Err(_) => {
                std::fs::create_dir_all(&self.work_dir).map_err(|e| {
                    Error::backend(format!("cannot create {}: {e}", place())).with_source(e)
                })?;
                let repo = Repository::init_bare(&self.work_dir)
                    .git_ctx(&format!("creating {}", place()))?;
                repo.remote_with_fetch("origin", url, "+refs/heads/*:refs/remotes/origin/*")
                    .git_ctx("configuring the remote")?;
                return Ok(repo);
            }
        };
        let origin = repo
            .find_remote("origin")
            .ok()
            .and_then(|r| r.url().ok().map(str::to_owned));
        match origin {
            Some(o) if o == url => {}
            Some(o) if split_userinfo(&o).0 == url => {
                repo.remote_set_url("origin", url)
                    .git_ctx("removing credentials from the work clone's remote")?;
            }
            _ => {
                return Err(Error::invalid_input(format!(
                    "{} is not a clone of {}: give each remote its own work folder",
                    place(),
                    self.redacted_url()
                )));
            }
        }
        Ok(repo)
    }

    /// Fetches the remote branches `names` (a name may end in `/*`) into
    /// `refs/remotes/origin/`, pruning deleted ones.
    pub(crate) fn fetch(&self, repo: &Repository, names: &[&str]) -> Result<()> {
        let refspecs = names
            .iter()
            .map(|b| format!("+refs/heads/{b}:refs/remotes/origin/{b}"))
            .collect();
        let spec = FetchSpec {
            refspecs,
            prune: true,
            ..FetchSpec::default()
        };
        transport::fetch(&self.remote, repo, &spec)
    }

    /// Fetches every branch and tag (to resolve a `ref` not seen yet).
    pub(crate) fn fetch_all(&self, repo: &Repository) -> Result<()> {
        let spec = FetchSpec {
            refspecs: vec![
                "+refs/heads/*:refs/remotes/origin/*".to_owned(),
                "+refs/tags/*:refs/tags/*".to_owned(),
            ],
            prune: true,
            ..FetchSpec::default()
        };
        transport::fetch(&self.remote, repo, &spec)
    }
}

/// A branch-name component: characters outside `[A-Za-z0-9._-]` become `-`.
fn ref_component(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    while out.starts_with('.') {
        out.replace_range(..1, "_");
    }
    if out.ends_with(".lock") || out.ends_with('.') {
        out.push('_');
    }
    out.replace("..", "._")
}

/// The branch commits are pushed to, for a call from `origin` to a tool on `branch`.
pub(crate) fn push_branch(
    branch: &str,
    mode: &BranchMode,
    origin: &CallOrigin,
) -> std::result::Result<String, String> {
    match mode {
        BranchMode::Direct => Ok(branch.to_owned()),
        BranchMode::PerStep { prefix } => {
            let Some((job, step)) = origin.job_step() else {
                return Err(format!(
                    "cannot name a change branch: the call names no job and step, and its key \
                     {:?} is neither `<job>/<step>/<attempt>/<n>` nor an approved action's \
                     `<job>~<step>~<generation>~<attempt>/<index>`",
                    origin.key
                ));
            };
            let name = format!("{prefix}/{}/{}", ref_component(job), ref_component(step));
            if git2::Reference::is_valid_name(&format!("refs/heads/{name}")) {
                Ok(name)
            } else {
                Err(format!("{name:?} is not a valid branch name"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_names_are_valid_ref_components() {
        assert_eq!(ref_component("a b:c..d.lock"), "a-b-c._d.lock_");
        assert_eq!(ref_component(".hidden"), "_hidden");
        assert_eq!(ref_component("plan."), "plan._");
    }
}
