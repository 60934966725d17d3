//! What a valid push triggers: [`RefreshTarget`], and the coalescing runner behind the
//! background mode.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use george_core::Result;
use george_core::engine::Engine;

use crate::{LocalGitSource, RemoteGitSource};

/// What the webhook handler calls when a push to the followed branch arrives.
///
/// Implemented for:
/// - [`RemoteGitSource`] (fetches the followed reference into its cache) and
///   [`LocalGitSource`] (re-reads the branch head); both notify their subscribers;
/// - [`EngineSync`]: a target followed by [`Engine::sync`], the usual wiring;
/// - any `Fn() -> impl Future<Output = Result<()>>` closure;
/// - `Arc<T>` of a target (`Arc<dyn RefreshTarget>` too).
///
/// The engine learns a new commit only through [`Engine::sync`] (called by its own
/// poll timer, or by a target): a target that refreshes a source but does not sync
/// an engine leaves the engine on the old commit until its next poll.
#[async_trait]
pub trait RefreshTarget: Send + Sync + 'static {
    /// Brings the desired state up to date with the remote branch.
    ///
    /// # Errors
    /// Whatever the refresh fails with (an unreachable remote, a Git error, a store
    /// error); the handler logs it (background mode) or answers 503 (wait mode).
    async fn refresh(&self) -> Result<()>;
}

#[async_trait]
impl<F, Fut> RefreshTarget for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    async fn refresh(&self) -> Result<()> {
        self().await
    }
}

#[async_trait]
impl<T: RefreshTarget + ?Sized> RefreshTarget for Arc<T> {
    async fn refresh(&self) -> Result<()> {
        (**self).refresh().await
    }
}

#[async_trait]
impl RefreshTarget for LocalGitSource {
    async fn refresh(&self) -> Result<()> {
        LocalGitSource::refresh(self).await.map(|_| ())
    }
}

#[async_trait]
impl RefreshTarget for RemoteGitSource {
    async fn refresh(&self) -> Result<()> {
        RemoteGitSource::refresh(self).await.map(|_| ())
    }
}

/// A [`RefreshTarget`] that refreshes `source` (e.g. fetches a remote) and then makes
/// `engine` reconcile the new head ([`Engine::sync`]: only the jobs whose files changed
/// since the last reconciled commit).
///
/// ```no_run
/// # fn demo(source: george_git::LocalGitSource, engine: george_core::engine::Engine) {
/// use george_git::webhook::{EngineSync, WebhookConfig, router};
/// let config = WebhookConfig::new("main").github_secret("s3cret");
/// let app: axum::Router = router(config, EngineSync::new(source, engine)).expect("config");
/// # }
/// ```
pub struct EngineSync<T> {
    source: T,
    engine: Engine,
}

impl<T: RefreshTarget> EngineSync<T> {
    /// Refreshes `source`, then syncs `engine`.
    pub fn new(source: T, engine: Engine) -> Self {
        EngineSync { source, engine }
    }
}

impl<T> fmt::Debug for EngineSync<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineSync")
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<T: RefreshTarget> RefreshTarget for EngineSync<T> {
    async fn refresh(&self) -> Result<()> {
        self.source.refresh().await?;
        if let Some(commit) = self.engine.sync().await? {
            tracing::info!(commit = %commit, "webhook: the engine reconciled a new commit");
        }
        Ok(())
    }
}

/// Runs refreshes in the background, coalescing requests: while one runs, any number
/// of new requests cause exactly one more run after it (which sees every push made
/// before it started). A flood of deliveries thus costs at most two refreshes in a row.
pub(crate) struct Coalescer {
    target: Arc<dyn RefreshTarget>,
    state: Mutex<State>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    Running,
    RunningThenAgain,
}

impl Coalescer {
    pub(crate) fn new(target: Arc<dyn RefreshTarget>) -> Arc<Self> {
        Arc::new(Coalescer {
            target,
            state: Mutex::new(State::Idle),
        })
    }

    pub(crate) fn target(&self) -> &Arc<dyn RefreshTarget> {
        &self.target
    }

    /// Asks for a refresh; returns at once. Must run inside a Tokio runtime.
    pub(crate) fn request(self: &Arc<Self>) {
        {
            let mut s = self.lock();
            match *s {
                State::Idle => *s = State::Running,
                State::Running | State::RunningThenAgain => {
                    *s = State::RunningThenAgain;
                    return;
                }
            }
        }
        let mut guard = BackToIdle {
            coalescer: self.clone(),
            armed: true,
        };
        tokio::spawn(async move {
            loop {
                if let Err(e) = guard.coalescer.target.refresh().await {
                    tracing::warn!(error = %e, "webhook: the triggered refresh failed");
                }
                let mut s = guard.coalescer.lock();
                if *s == State::RunningThenAgain {
                    *s = State::Running;
                } else {
                    // Under the lock, so a request arriving now starts a new run.
                    *s = State::Idle;
                    drop(s);
                    guard.disarm();
                    return;
                }
            }
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Sets the coalescer back to idle if its run ends by a panic of the target.
struct BackToIdle {
    coalescer: Arc<Coalescer>,
    armed: bool,
}

impl BackToIdle {
    fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for BackToIdle {
    fn drop(&mut self) {
        if self.armed {
            *self.coalescer.lock() = State::Idle;
        }
    }
}
