//! [`RemoteGitSource`]: a [`GitSource`] over a remote repository, fetched into a local
//! bare cache.

mod cache;
mod config;
mod fetch;
mod poll;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use george_core::git::{CommitId, GitSource, SourceFile};
use george_core::{Error, Result};
use tokio::sync::watch;

use crate::error::{GitResultExt, blocking};
use crate::local::LocalGitSource;
use crate::transport::redact_url;

pub use config::{Follow, RemoteConfig};
pub use poll::RemotePollerHandle;

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
/// # Transports, credentials and timeouts
/// Fetches go through the crate's one transport layer, described by a
/// [`Remote`](crate::Remote): `file://`, `git://`, `http://` and local paths in
/// process by libgit2; `https://`, `ssh://` and `user@host:path` by running `git fetch`
/// (so ssh-agent, `known_hosts`, proxies and CA bundles work as for `git`; no terminal
/// prompt is ever shown). Credentials come from the user's Git credential helpers, or
/// from the URL or environment variables whose **names** are configured
/// ([`RemoteConfig::token_env`]); George's token is handed to `git` through its
/// environment (never its command line, never to the user's helpers), is refused over
/// plain `http://` unless allowed, and never reaches the cache's `config`. Every fetch
/// has a connect, an idle and an overall timeout ([`Remote::with_io_timeout`](crate::Remote::with_io_timeout)).
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
    /// `InvalidInput` for a bad URL scheme, branch, tag or commit id, a credential
    /// variable name that is not one, or a token over plain `http://` without
    /// [`Remote::with_allow_insecure_http`](crate::Remote::with_allow_insecure_http);
    /// `Backend` when the cache folder cannot be created or opened.
    pub fn new(config: RemoteConfig) -> Result<Self> {
        config.remote.validate()?;
        config.follow.validate()?;
        let root = config
            .cache_root
            .clone()
            .unwrap_or_else(cache::default_cache_root);
        let cache = cache::cache_folder(&root, config.remote.url());
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
        redact_url(self.inner.config.remote.url())
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

    /// Starts a background task that calls [`refresh`](Self::refresh) at once, then
    /// every `interval` plus a random `0..=jitter` (so that many engines do not hit the
    /// server in step). After a failure it waits
    /// `min(interval × 2^failures, max_backoff)` plus jitter instead, logging each
    /// failure; the first success resets the delay. Dropping the handle stops it.
    ///
    /// # Panics
    /// When called outside a Tokio runtime.
    pub fn spawn_poller(&self, interval: Duration, jitter: Duration) -> RemotePollerHandle {
        let source = self.clone();
        let cap = self.inner.config.max_backoff;
        poll::spawn(self.url(), interval, jitter, cap, move || {
            let source = source.clone();
            async move { source.refresh().await.map(drop).map_err(|e| e.to_string()) }
        })
    }

    /// Fetches the followed reference now and, if its head moved, notifies the
    /// subscribers; returns the new head when it moved, `None` otherwise. What a webhook
    /// handler calls on a push. A pinned commit already cached is not fetched again.
    ///
    /// # Errors
    /// `Backend` (transient) when the remote is unreachable or the fetch fails — the
    /// cache, and every read from it, stays as it was; `Timeout` (transient) past the
    /// remote's connect, idle or overall timeout; `Unauthenticated` when the
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

    async fn commits_between(&self, from: &CommitId, to: &CommitId) -> Result<Option<u64>> {
        self.inner.local.commits_between(from, to).await
    }
}
