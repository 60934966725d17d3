//! [`RemoteGitSource`]: a [`GitSource`] over a remote repository, fetched into a local
//! bare cache.

mod fetch;
mod poll;
mod url;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use george_core::git::{CommitId, GitSource, SourceFile};
use george_core::{Error, Result};
use tokio::sync::watch;

use crate::error::{GitResultExt, blocking};
use crate::local::LocalGitSource;

pub use poll::RemotePollerHandle;
pub use url::redact_url;

/// What a [`RemoteGitSource`] follows on the remote.
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

    fn validate(&self) -> Result<()> {
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

/// The configuration of a [`RemoteGitSource`]. Credentials are never part of it: only
/// the **names** of the environment variables that hold them.
#[derive(Clone)]
pub struct RemoteConfig {
    url: String,
    follow: Follow,
    cache_root: Option<PathBuf>,
    depth: Option<u32>,
    username: Option<String>,
    username_env: Option<String>,
    token_env: Option<String>,
    max_backoff: Duration,
    git_program: PathBuf,
}

impl fmt::Debug for RemoteConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteConfig")
            .field("url", &redact_url(&self.url))
            .field("follow", &self.follow)
            .field("cache_root", &self.cache_root)
            .field("depth", &self.depth)
            .field("username", &self.username)
            .field("username_env", &self.username_env)
            .field("token_env", &self.token_env)
            .field("max_backoff", &self.max_backoff)
            .finish()
    }
}

impl RemoteConfig {
    /// Follows `follow` on the repository at `url`: `file://`, `git://`, `http://` or a
    /// local path (fetched by libgit2), or `https://`, `ssh://`, `user@host:path`
    /// (fetched by the `git` program, with the user's credential helpers, ssh-agent and
    /// `known_hosts`). Defaults: the default cache root, full (not shallow) fetches, no
    /// token variable, a 5-minute backoff cap.
    pub fn new(url: impl Into<String>, follow: Follow) -> Self {
        RemoteConfig {
            url: url.into(),
            follow,
            cache_root: None,
            depth: None,
            username: None,
            username_env: None,
            token_env: None,
            max_backoff: Duration::from_secs(300),
            git_program: PathBuf::from("git"),
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

    /// The user name sent with a token (default `git`; a user name in the URL wins).
    pub fn username(mut self, name: impl Into<String>) -> Self {
        self.username = Some(name.into());
        self
    }

    /// The NAME of an environment variable holding the user name (wins over
    /// [`username`](Self::username)).
    pub fn username_env(mut self, variable: impl Into<String>) -> Self {
        self.username_env = Some(variable.into());
        self
    }

    /// The NAME of an environment variable holding a password or access token, read at
    /// each fetch. Without it (or when the remote refuses it) libgit2 asks the
    /// configured Git credential helper, and the `git` program its own helpers.
    pub fn token_env(mut self, variable: impl Into<String>) -> Self {
        self.token_env = Some(variable.into());
        self
    }

    /// The longest wait of the poller between two failed fetches (default 5 minutes;
    /// never less than the polling interval).
    pub fn max_backoff(mut self, cap: Duration) -> Self {
        self.max_backoff = cap;
        self
    }

    /// The `git` program used for `https://` and `ssh://` (default `git` on the `PATH`).
    pub fn git_program(mut self, program: impl Into<PathBuf>) -> Self {
        self.git_program = program.into();
        self
    }
}

/// Counters of a [`RemoteGitSource`]'s fetches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchStats {
    /// Fetches attempted (by [`RemoteGitSource::refresh`] and the poller).
    pub attempts: u64,
    /// Fetches that failed.
    pub failures: u64,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// The last failure's message (credentials redacted), cleared by a success.
    pub last_error: Option<String>,
}

/// A [`GitSource`] over a remote repository (Argo CD / Flux style): the remote is
/// fetched into a local **bare cache** and every read is served from it, at a commit.
///
/// - [`refresh`](Self::refresh) fetches now (a webhook handler calls it) and notifies
///   [`subscribe`](Self::subscribe)rs when the followed head moved;
///   [`spawn_poller`](Self::spawn_poller) does it periodically, with jitter, and with a
///   capped exponential backoff while the remote is unreachable.
/// - While the remote is unreachable, reads keep serving what is cached, so the engine
///   keeps reconciling the last fetched commit.
/// - Only the followed branch or tag is fetched, into the same name in the cache
///   (`refs/heads/<branch>`, `refs/tags/<tag>`); a pinned commit is fetched once. The
///   remote's URL is never written into the cache (an anonymous remote), and errors and
///   logs show it with credentials redacted.
///
/// # Transports and credentials
/// `file://`, `git://`, `http://` and local paths are fetched in process by libgit2;
/// `https://`, `ssh://` and `user@host:path` by running `git fetch` (so credential
/// helpers, ssh-agent, `known_hosts`, proxies and CA bundles work as for `git`; no
/// terminal prompt is ever shown). Credentials come from the configured Git credential
/// helper, from the URL, or from environment variables whose **names** are configured
/// ([`RemoteConfig::token_env`]); a token is handed to `git` through its environment,
/// never its command line.
///
/// Clones share their state; the source is `Send + Sync`. One process should own a
/// given cache folder at a time.
#[derive(Debug, Clone)]
pub struct RemoteGitSource {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: RemoteConfig,
    cache: PathBuf,
    local: LocalGitSource,
    /// Serialises fetches.
    fetch_lock: tokio::sync::Mutex<()>,
    stats: Mutex<FetchStats>,
}

impl RemoteGitSource {
    /// Prepares the source without touching the network: creates (or reopens) the bare
    /// cache and serves whatever it already holds. Call [`refresh`](Self::refresh)
    /// (or start a poller) to fetch.
    ///
    /// # Errors
    /// `InvalidInput` for a bad URL scheme, branch, tag or commit id; `Backend` when the
    /// cache folder cannot be created or opened.
    pub fn new(config: RemoteConfig) -> Result<Self> {
        url::Transport::of(&config.url)?;
        config.follow.validate()?;
        let root = config
            .cache_root
            .clone()
            .unwrap_or_else(url::default_cache_root);
        let cache = url::cache_folder(&root, &config.url);
        if git2::Repository::open_bare(&cache).is_err() {
            std::fs::create_dir_all(&cache).map_err(|e| {
                Error::backend(format!("creating the cache {}: {e}", cache.display()))
            })?;
            let mut opts = git2::RepositoryInitOptions::new();
            opts.bare(true);
            if let Follow::Branch(b) = &config.follow {
                opts.initial_head(b);
            }
            git2::Repository::init_opts(&cache, &opts)
                .git_ctx(&format!("creating the cache {}", cache.display()))?;
        }
        let local = LocalGitSource::open(&cache, config.follow.reference())?;
        Ok(RemoteGitSource {
            inner: Arc::new(Inner {
                config,
                cache,
                local,
                fetch_lock: tokio::sync::Mutex::new(()),
                stats: Mutex::new(FetchStats::default()),
            }),
        })
    }

    /// [`new`](Self::new), then a first fetch. When that fetch fails but the cache
    /// already holds the followed reference (an earlier run), the source starts on the
    /// cached commit and the failure is logged; the poller or a later refresh catches up.
    ///
    /// # Errors
    /// As [`new`](Self::new), plus the fetch's error when nothing is cached.
    pub async fn open(config: RemoteConfig) -> Result<Self> {
        let source = Self::new(config)?;
        if let Err(e) = source.refresh().await {
            if source.last_seen().is_none() {
                return Err(e);
            }
            tracing::warn!(
                url = %source.url(), error = %e,
                "fetching failed; serving the cached commit"
            );
        }
        Ok(source)
    }

    /// The remote URL, credentials redacted.
    pub fn url(&self) -> String {
        redact_url(&self.inner.config.url)
    }

    /// What is followed.
    pub fn follow(&self) -> &Follow {
        &self.inner.config.follow
    }

    /// The reference the engine should follow: [`Follow::reference`].
    pub fn reference(&self) -> String {
        self.inner.config.follow.reference()
    }

    /// The bare cache folder.
    pub fn cache_path(&self) -> &Path {
        &self.inner.cache
    }

    /// A receiver of the followed head (`None` until something was fetched), updated by
    /// [`refresh`](Self::refresh) and the poller.
    pub fn subscribe(&self) -> watch::Receiver<Option<CommitId>> {
        self.inner.local.subscribe()
    }

    /// The head last seen, without fetching.
    pub fn last_seen(&self) -> Option<CommitId> {
        self.inner.local.last_seen()
    }

    /// The fetch counters.
    pub fn fetch_stats(&self) -> FetchStats {
        self.inner
            .stats
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Fetches the followed reference now and, if its head moved, notifies the
    /// subscribers; returns the new head when it moved, `None` otherwise. What a webhook
    /// handler calls on a push. A pinned commit already cached is not fetched again.
    ///
    /// # Errors
    /// `Backend` (transient) when the remote is unreachable or the fetch fails — the
    /// cache, and every read from it, stays as it was; `Unauthenticated` when the
    /// credentials are refused; `NotFound` when the followed reference does not exist
    /// (on the remote, or a pinned commit in none of its branches and tags).
    pub async fn refresh(&self) -> Result<Option<CommitId>> {
        let _serial = self.inner.fetch_lock.lock().await;
        let cached = self.last_seen();
        if matches!(self.follow(), Follow::Commit(_)) && cached.is_some() {
            return Ok(None);
        }
        let inner = self.inner.clone();
        let first = cached.is_none();
        let fetched = blocking(move || fetch::fetch(&inner.config, &inner.cache, first)).await;
        if let Ok(mut s) = self.inner.stats.lock() {
            s.attempts += 1;
            match &fetched {
                Ok(()) => {
                    s.consecutive_failures = 0;
                    s.last_error = None;
                }
                Err(e) => {
                    s.failures += 1;
                    s.consecutive_failures = s.consecutive_failures.saturating_add(1);
                    s.last_error = Some(e.to_string());
                }
            }
        }
        fetched?;
        self.inner.local.refresh().await
    }
}

#[async_trait]
impl GitSource for RemoteGitSource {
    async fn resolve(&self, reference: &str) -> Result<CommitId> {
        self.inner.local.resolve(reference).await
    }

    async fn read_manifests(&self, commit: &CommitId) -> Result<Vec<SourceFile>> {
        self.inner.local.read_manifests(commit).await
    }

    async fn read_files(&self, commit: &CommitId, paths: &[String]) -> Result<Vec<SourceFile>> {
        self.inner.local.read_files(commit, paths).await
    }

    async fn changed_paths(&self, from: &CommitId, to: &CommitId) -> Result<Vec<String>> {
        self.inner.local.changed_paths(from, to).await
    }

    async fn commit_author(&self, commit: &CommitId) -> Result<Option<String>> {
        self.inner.local.commit_author(commit).await
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
