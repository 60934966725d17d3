//! [`RemoteTarget`]: where the remote write tool pushes (URL, work clone, retries,
//! branch mode, transport, credentials), and the names of its change branches.

use std::path::PathBuf;

use george_core::{Error, Result};
use git2::Repository;

use crate::error::GitResultExt;
use crate::write::Config;
use crate::write_trailers::CallOrigin;
use crate::write_transport::{self as transport, CredentialVars, WriteTransport};

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

/// A remote repository for [`GitWriteTool::remote`](crate::GitWriteTool::remote): its
/// URL, the work folder holding the tool's clone, and how to push.
#[derive(Debug, Clone)]
pub struct RemoteTarget {
    pub(crate) url: String,
    pub(crate) work_dir: PathBuf,
    pub(crate) push_retries: usize,
    pub(crate) branch_mode: BranchMode,
    pub(crate) transport: WriteTransport,
    pub(crate) credentials: Option<CredentialVars>,
}

impl RemoteTarget {
    /// The repository at `url` (`file://`, `git://`, `http://`, `https://`, `ssh://`,
    /// `user@host:path` or a local path), cloned (bare) into `work_dir`, which is
    /// created if missing and must not be shared with another tool.
    pub fn new(url: impl Into<String>, work_dir: impl Into<PathBuf>) -> Self {
        RemoteTarget {
            url: url.into(),
            work_dir: work_dir.into(),
            push_retries: DEFAULT_PUSH_RETRIES,
            branch_mode: BranchMode::Direct,
            transport: WriteTransport::Auto,
            credentials: None,
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

    /// How to reach the remote (default [`WriteTransport::Auto`]).
    pub fn with_transport(mut self, transport: WriteTransport) -> Self {
        self.transport = transport;
        self
    }

    /// HTTP(S) credentials from the environment variables with these **names** (read
    /// at each fetch or push; the values are never stored or logged).
    pub fn with_credentials_env(
        mut self,
        username_var: impl Into<String>,
        password_var: impl Into<String>,
    ) -> Self {
        self.credentials = Some(CredentialVars {
            username: username_var.into(),
            password: password_var.into(),
        });
        self
    }

    /// The URL with any `user:password@` replaced by `***@`, fit for messages.
    pub fn redacted_url(&self) -> String {
        transport::redact_url(&self.url)
    }

    /// Opens the work clone, creating it (bare, with `origin` at the URL) if missing.
    pub(crate) fn open_or_init(&self) -> Result<Repository> {
        for var in self
            .credentials
            .iter()
            .flat_map(|c| [&c.username, &c.password])
        {
            let valid = var.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(Error::invalid_input(format!(
                    "{var:?} is not an environment variable name"
                )));
            }
        }
        let place = || format!("the work clone at {}", self.work_dir.display());
        let repo = match Repository::open_bare(&self.work_dir) {
            Ok(r) => r,
            Err(_) => {
                std::fs::create_dir_all(&self.work_dir).map_err(|e| {
                    Error::backend(format!("cannot create {}: {e}", place())).with_source(e)
                })?;
                let repo = Repository::init_bare(&self.work_dir)
                    .git_ctx(&format!("creating {}", place()))?;
                repo.remote_with_fetch("origin", &self.url, "+refs/heads/*:refs/remotes/origin/*")
                    .git_ctx("configuring the remote")?;
                return Ok(repo);
            }
        };
        let same = repo
            .find_remote("origin")
            .ok()
            .is_some_and(|r| r.url() == Ok(self.url.as_str()));
        if !same {
            return Err(Error::invalid_input(format!(
                "{} is not a clone of {}: give each remote its own work folder",
                place(),
                self.redacted_url()
            )));
        }
        Ok(repo)
    }

    pub(crate) fn program(&self) -> bool {
        transport::uses_git_program(self.transport, &self.url)
    }

    /// Fetches the given remote branches into `refs/remotes/origin/`.
    pub(crate) fn fetch(&self, repo: &Repository, branches: &[String]) -> Result<()> {
        let specs: Vec<String> = branches
            .iter()
            .map(|b| format!("+refs/heads/{b}:refs/remotes/origin/{b}"))
            .collect();
        transport::fetch(
            repo,
            &self.url,
            self.program(),
            self.credentials.as_ref(),
            &specs,
        )
    }

    /// Fetches every branch and tag (to resolve a `ref` not seen yet).
    pub(crate) fn fetch_all(&self, repo: &Repository) -> Result<()> {
        let specs = [
            "+refs/heads/*:refs/remotes/origin/*".to_owned(),
            "+refs/tags/*:refs/tags/*".to_owned(),
        ];
        transport::fetch(
            repo,
            &self.url,
            self.program(),
            self.credentials.as_ref(),
            &specs,
        )
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

/// The branch commits are pushed to, for a call from `origin`.
pub(crate) fn push_branch(
    config: &Config,
    mode: &BranchMode,
    origin: &CallOrigin,
) -> std::result::Result<String, String> {
    match mode {
        BranchMode::Direct => Ok(config.branch.clone()),
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
