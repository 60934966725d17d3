//! [`RemoteConfig`]: what a [`RemoteGitSource`](crate::RemoteGitSource) follows, on
//! which [`Remote`], and where it caches it.

use std::path::PathBuf;
use std::time::Duration;

use george_core::{Error, Result};

use crate::transport::Remote;

/// What a [`RemoteGitSource`](crate::RemoteGitSource) follows on the remote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Follow {
    /// A branch (`main`): fetched into the cache's `refs/heads/<name>`.
    Branch(String),
    /// A tag (`v1.2`, possibly moved by force): fetched into `refs/tags/<name>`.
    Tag(String),
    /// A commit, by its full 40-hex id: fetched once (from the remote's branches and
    /// tags), then never again.
    Commit(String),
}

impl Follow {
    /// The reference to resolve in the cache — what the engine should follow
    /// ([`EngineConfig::reference`](george_core::engine::EngineConfig::reference)):
    /// the branch name, `refs/tags/<tag>`, or the commit id.
    pub fn reference(&self) -> String {
        match self {
            Follow::Branch(b) => b.clone(),
            Follow::Tag(t) => format!("refs/tags/{t}"),
            Follow::Commit(c) => c.clone(),
        }
    }

    /// Checks the branch or tag name, or the commit id.
    ///
    /// # Errors
    /// `InvalidInput` for an invalid name or an id that is not 40 hex digits.
    pub(crate) fn validate(&self) -> Result<()> {
        let ok = match self {
            Follow::Branch(b) => git2::Reference::is_valid_name(&format!("refs/heads/{b}")),
            Follow::Tag(t) => git2::Reference::is_valid_name(&format!("refs/tags/{t}")),
            Follow::Commit(c) => c.len() == 40 && c.bytes().all(|b| b.is_ascii_hexdigit()),
        };
        if ok {
            Ok(())
        } else {
            Err(Error::invalid_input(format!(
                "{self:?} is not a valid branch, tag or full commit id"
            )))
        }
    }
}

/// The configuration of a [`RemoteGitSource`](crate::RemoteGitSource): a [`Remote`]
/// (URL, credentials, transport, timeouts), what to follow on it, and where to cache
/// it. Credentials are never part of it: only the **names** of the environment
/// variables that hold them (a password in the URL is split off by [`Remote::new`]),
/// so `Debug` shows none.
#[derive(Debug, Clone)]
pub struct RemoteConfig {
    pub(crate) remote: Remote,
    pub(crate) follow: Follow,
    pub(crate) cache_root: Option<PathBuf>,
    pub(crate) depth: Option<u32>,
    pub(crate) max_backoff: Duration,
}

impl RemoteConfig {
    /// Follows `follow` on the repository at `url`: `file://`, `git://`, `http://` or a
    /// local path (fetched by libgit2), or `https://`, `ssh://`, `user@host:path`
    /// (fetched by the `git` program, with the user's credential helpers, ssh-agent and
    /// `known_hosts`). Defaults: the default cache root, full (not shallow) fetches, no
    /// token variable, a 5-minute backoff cap, and [`Remote::new`]'s timeouts.
    pub fn new(url: impl Into<String>, follow: Follow) -> Self {
        Self::from_remote(Remote::new(url), follow)
    }

    /// Follows `follow` on `remote` (for its timeouts, transport, or plain-HTTP
    /// policy); otherwise as [`new`](Self::new).
    pub fn from_remote(remote: Remote, follow: Follow) -> Self {
        RemoteConfig {
            remote,
            follow,
            cache_root: None,
            depth: None,
            max_backoff: Duration::from_secs(300),
        }
    }

    /// The folder under which the bare cache is kept, one sub-folder per remote URL
    /// (`<name>-<hash>.git`). Default: `$XDG_CACHE_HOME/george/git`, else
    /// `$HOME/.cache/george/git`, else `<temp dir>/george-git-cache`.
    pub fn cache_root(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_root = Some(dir.into());
        self
    }

    /// Fetches only the last `depth` commits (at least 1) the first time (an empty cache),
    /// for a branch or a tag: a faster first clone of a long history. Later fetches
    /// bring only what is new. Diffs between any two fetched commits keep working.
    pub fn depth(mut self, depth: u32) -> Self {
        self.depth = Some(depth.max(1));
        self
    }

    /// The user name sent with a token: [`Remote::with_username`].
    pub fn username(mut self, name: impl Into<String>) -> Self {
        self.remote = self.remote.with_username(name);
        self
    }

    /// The NAME of an environment variable holding the user name:
    /// [`Remote::with_username_env`].
    pub fn username_env(mut self, variable: impl Into<String>) -> Self {
        self.remote = self.remote.with_username_env(variable);
        self
    }

    /// The NAME of an environment variable holding a password or access token, read at
    /// each fetch: [`Remote::with_token_env`]. Without it libgit2 asks the configured
    /// Git credential helper, and the `git` program its own helpers.
    pub fn token_env(mut self, variable: impl Into<String>) -> Self {
        self.remote = self.remote.with_token_env(variable);
        self
    }

    /// The longest wait of the poller between two failed fetches (default 5 minutes;
    /// never less than the polling interval).
    pub fn max_backoff(mut self, cap: Duration) -> Self {
        self.max_backoff = cap;
        self
    }

    /// The `git` program used for `https://` and `ssh://`: [`Remote::with_git_program`].
    pub fn git_program(mut self, program: impl Into<PathBuf>) -> Self {
        self.remote = self.remote.with_git_program(program);
        self
    }

    /// The remote.
    pub fn remote(&self) -> &Remote {
        &self.remote
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_are_validated() {
        assert!(Follow::Branch("main".into()).validate().is_ok());
        assert!(Follow::Branch("a..b".into()).validate().is_err());
        assert!(Follow::Tag("v1.0".into()).validate().is_ok());
        assert!(Follow::Commit("abc".into()).validate().is_err());
        assert_eq!(Follow::Tag("v1".into()).reference(), "refs/tags/v1");
    }
}
