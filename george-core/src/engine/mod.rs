//! The engine: the shell around the pure reconciler. It follows a
//! [`GitSource`](crate::git::GitSource), keeps an in-memory cache of observed state
//! written through to the [`StateStore`](crate::store::StateStore), runs a
//! de-duplicating work queue, dispatches ready steps within concurrency limits, runs
//! step attempts, and takes humans' decisions.
//!
//! ```no_run
//! # async fn demo(store: george_core::store::DynStateStore, git: george_core::git::DynGitSource,
//! #               provider: george_core::provider::DynProvider) -> george_core::Result<()> {
//! use george_core::engine::Engine;
//! let engine = Engine::builder(store, git).provider("default", provider).build()?;
//! engine.start().await?;           // load observed state, reconcile the branch head
//! let handle = engine.spawn();     // the reconcile loop, in the background
//! let status = engine.wait_finished("my-job", std::time::Duration::from_secs(60)).await?;
//! handle.shutdown().await;
//! # Ok(()) }
//! ```

mod agent_loop;
mod agent_outcome;
pub mod attempt;
mod builder;
mod children;
mod children_life;
mod command_step;
mod decisions;
mod dispatch;
mod execute;
mod finish;
mod inflight;
mod io;
mod lease;
mod limits;
pub mod metrics;
pub mod operator;
mod policy;
pub mod preview;
pub mod prompt;
mod recovery;
mod redact;
mod resolves;
mod run_loop;
mod sync;
pub mod targets;
mod tools;
mod waiters;
mod watch;

pub use builder::{EngineBuilder, EngineConfig};
pub use limits::AgentLimits;
pub use metrics::{EngineMetrics, HistogramSnapshot};
pub use run_loop::RunHandle;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::{Notify, broadcast};

use crate::approval::{Approver, Decision};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::git::{CommitId, DynGitSource};
use crate::human::HumanChannel;
use crate::manifest::{ManifestError, ManifestSet};
use crate::provider::{DynProvider, ProviderFactory};
use crate::reconcile::queue::WorkQueue;
use crate::state::{ApprovalRequest, Event, JobRecord, JobStatus};
use crate::store::DynStateStore;

/// A change of a job, broadcast by [`Engine::subscribe`]: of its summary status
/// (`approval` is `None`), or of one of its approval requests (`approval` says which
/// and how; `status` is the job's status after the same write, changed or not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobUpdate {
    /// The job.
    pub job: String,
    /// Its new status.
    pub status: JobStatus,
    /// Its generation.
    pub generation: u64,
    /// The approval request the write opened or closed, if any.
    pub approval: Option<ApprovalUpdate>,
}

/// An approval request opened or decided (approved, rejected, cancelled), as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalUpdate {
    /// The request's id.
    pub id: String,
    /// The step that asked.
    pub step: String,
    /// Its new state.
    pub status: crate::state::ApprovalStatus,
}

/// Counters, for tests and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Job reconciles run.
    pub reconciles: u64,
    /// Step attempts started.
    pub attempts: u64,
    /// Keys in the work queue ready to be reconciled now (not counting delayed ones
    /// nor those being reconciled).
    pub queue_depth: usize,
    /// Keys in the work queue waiting for a later time (backoff, timers).
    pub queue_delayed: usize,
}

pub(crate) struct Desired {
    pub(crate) commit: Option<CommitId>,
    /// `commit`'s id, shared (empty before the first sync): handed to every reconcile
    /// without a copy.
    pub(crate) commit_id: Arc<str>,
    pub(crate) set: ManifestSet,
    /// Last definitions of jobs removed from Git with `on_removal: keep`, so they can
    /// run to the end (kept in memory: after a restart such a job stays as it is).
    pub(crate) retained: crate::fastmap::FastMap<String, crate::manifest::DesiredJob>,
    /// Desired states of the child jobs agents ordered ([sub-jobs](crate::children)),
    /// pinned to their parents' commits; rebuilt from the store on start.
    pub(crate) children: crate::fastmap::FastMap<String, crate::manifest::DesiredJob>,
    /// Whether `commit` is recorded in the store as the last reconciled commit (a
    /// failed write is retried by the next sync).
    pub(crate) recorded: bool,
}

/// A job's cached record: shared read-only with the attempts that run from it
/// (copy-on-write: a change builds a new record).
type Slot = Arc<tokio::sync::Mutex<Option<Arc<JobRecord>>>>;

/// The providers a [`ProviderFactory`] built, by (provider, base URL, key variable).
pub(crate) struct ProviderCache {
    factory: Option<Arc<dyn ProviderFactory>>,
    built: Mutex<crate::fastmap::FastMap<String, DynProvider>>,
}

impl ProviderCache {
    /// The provider for `agent`; `None` without a factory.
    pub(crate) fn get(&self, agent: &crate::model::AgentConfig) -> Option<Result<DynProvider>> {
        let factory = self.factory.as_ref()?;
        let key = format!(
            "{}\u{1f}{}\u{1f}{}",
            agent.provider,
            agent.base_url.as_deref().unwrap_or(""),
            agent.api_key_env.as_deref().unwrap_or("")
        );
        if let Some(p) = lock(&self.built).get(&key) {
            return Some(Ok(p.clone()));
        }
        let built = factory.build(agent);
        if let Ok(p) = &built {
            lock(&self.built).insert(key, p.clone());
        }
        Some(built)
    }
}
/// In-flight attempts by (job, step): the attempt number and its task.

#[derive(Default)]
pub(crate) struct Slots {
    pub(crate) total: usize,
    pub(crate) per_agent: crate::fastmap::FastMap<String, usize>,
    pub(crate) per_job: crate::fastmap::FastMap<String, usize>,
    /// Running steps per target key that count against a `concurrency: {key: target}`
    /// limit ([`targets`](self::targets)).
    pub(crate) per_target: crate::fastmap::FastMap<String, usize>,
    /// The target key each such running step holds, by (job, step).
    pub(crate) target_held: crate::fastmap::FastMap<(String, String), String>,
    /// Per target key, the running steps of other engines that hold it and when that
    /// was read from the store (see `targets::refresh_foreign`).
    pub(crate) foreign: crate::fastmap::FastMap<String, (usize, u64)>,
    /// Jobs waiting for a slot, by the limit that stopped them.
    pub(crate) waiting: waiters::Waiters,
}

pub(crate) struct Shared {
    pub(crate) config: EngineConfig,
    pub(crate) store: DynStateStore,
    pub(crate) git: DynGitSource,
    pub(crate) providers: HashMap<String, DynProvider>,
    pub(crate) factory: ProviderCache,
    /// The tool table ([`tools`](self::tools)): replaced, never edited.
    pub(crate) tools: RwLock<Arc<tools::ToolTable>>,
    /// The registered executors, in order (to build the table again).
    pub(crate) executors: Vec<crate::tool::DynToolExecutor>,
    /// The operator's effect classes by tool name.
    pub(crate) effects: HashMap<String, crate::tool::EffectClass>,
    pub(crate) human: Arc<dyn HumanChannel>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) desired: RwLock<Desired>,
    /// Cancelled or removed parents whose children's parent-close policy is due.
    pub(crate) closing: Mutex<BTreeSet<String>>,
    /// The manifest set at a commit other than the current one, last loaded to resolve
    /// a child pinned to it.
    pub(crate) pinned: Mutex<Option<(String, Arc<ManifestSet>)>>,
    pub(crate) cache: Mutex<crate::fastmap::FastMap<String, Slot>>,
    pub(crate) queue: Mutex<WorkQueue>,
    pub(crate) wake: Notify,
    pub(crate) slots: Mutex<Slots>,
    pub(crate) attempts: Mutex<inflight::InFlight>,
    pub(crate) updates: broadcast::Sender<JobUpdate>,
    /// Waiters of [`Engine::wait_for`], woken by their own job's status changes.
    pub(crate) watchers: watch::Watchers,
    pub(crate) secrets: crate::secret::KnownSecrets,
    pub(crate) reconciles: AtomicU64,
    pub(crate) started: AtomicU64,
    pub(crate) metrics: metrics::Recorder,
    /// The tool lists offered to agents, built once per agent spec.
    pub(crate) tool_lists: attempt::ToolLists,
    /// The agents' actors (`agent:<name>`), shared by their events.
    pub(crate) actors: attempt::Actors,
    /// `config.id`, shared by every `Running` step state this engine writes.
    pub(crate) holder: Arc<str>,
}

/// The George engine. Cheap to clone: clones share everything.
#[derive(Clone)]
pub struct Engine {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("id", &self.shared.config.id)
            .finish_non_exhaustive()
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Engine {
    /// This engine's id.
    pub fn id(&self) -> &str {
        &self.shared.config.id
    }

    /// The operator's autonomy ceiling ([`EngineConfig::autonomy_ceiling`]).
    pub fn autonomy_ceiling(&self) -> crate::model::Autonomy {
        self.shared.config.autonomy_ceiling
    }

    /// Loads observed state from the store, takes back the attempts an earlier engine
    /// with this id left running (it crashed: they become `Ready` again, with a
    /// `step.interrupted` event), reconciles the head of the followed reference, queues
    /// every job, and re-notifies humans of open approval requests.
    ///
    /// # Errors
    /// Store or Git errors.
    pub async fn start(&self) -> Result<()> {
        let jobs = self.shared.store.list_jobs().await?;
        let resolving: Vec<String> = jobs
            .iter()
            .filter(|j| resolves::has_resolutions(j))
            .map(|j| j.name.clone())
            .collect();
        // Children's pinned desired states first: no reconcile may see a child without
        // it (and cancel it as removed from Git).
        children::restore(&self.shared, &jobs).await;
        {
            let mut cache = lock(&self.shared.cache);
            for j in jobs {
                let name = j.name.clone();
                cache.insert(name, Arc::new(tokio::sync::Mutex::new(Some(Arc::new(j)))));
            }
        }
        let names: Vec<String> = lock(&self.shared.cache).keys().cloned().collect();
        recovery::recover_own_attempts(self, &names).await?;
        // A resolution interrupted between its two writes is finished now.
        resolves::repair_resolutions(self, &resolving).await;
        self.enqueue(names);
        self.sync().await?;
        for req in self.shared.store.approvals(true).await? {
            if let Err(e) = self.shared.human.approval_requested(&req).await {
                tracing::warn!(id = %req.id, error = %e, "notifying the human channel failed");
            }
        }
        Ok(())
    }

    /// Reconciles the head of the followed reference if it moved: a full load the first
    /// time, then only the manifests changed between the last reconciled commit and the
    /// head. Returns the new commit, or `None` when nothing moved.
    ///
    /// # Errors
    /// Git errors; invalid manifests are not errors (see [`Engine::manifest_errors`]).
    pub async fn sync(&self) -> Result<Option<CommitId>> {
        sync::sync(&self.shared, self).await
    }

    /// Errors of the manifests at the current commit.
    pub fn manifest_errors(&self) -> Vec<ManifestError> {
        self.shared
            .desired
            .read()
            .map(|d| d.set.errors.clone())
            .unwrap_or_default()
    }

    /// The commit desired state was last loaded from.
    pub fn commit(&self) -> Option<CommitId> {
        self.shared
            .desired
            .read()
            .ok()
            .and_then(|d| d.commit.clone())
    }

    /// How many commits `head` (the source's head, from
    /// [`Engine::source_head`]) has that the commit desired state was last loaded from
    /// has not: 0 when in sync, at most
    /// [`COMMITS_BETWEEN_LIMIT`](crate::git::COMMITS_BETWEEN_LIMIT). `None` before the
    /// first load or when the Git source cannot tell
    /// ([`GitSource::commits_between`](crate::git::GitSource::commits_between)).
    ///
    /// # Errors
    /// Git errors (`NotFound` for a commit the source does not have).
    pub async fn commits_behind(&self, head: &CommitId) -> Result<Option<u64>> {
        match self.commit() {
            Some(c) if &c == head => Ok(Some(0)),
            Some(c) => self.shared.git.commits_between(&c, head).await,
            None => Ok(None),
        }
    }

    pub(crate) fn enqueue(&self, keys: impl IntoIterator<Item = String>) {
        {
            let mut q = lock(&self.shared.queue);
            for k in keys {
                q.add(&k);
            }
        }
        self.shared.wake.notify_one();
    }

    /// Asks the engine to reconcile `job` now.
    pub fn requeue(&self, job: &str) {
        self.enqueue([job.to_string()]);
    }

    /// `job`'s status, read from the cached record without copying it.
    async fn status(&self, job: &str) -> Result<Option<JobStatus>> {
        let slot = lock(&self.shared.cache).get(job).cloned();
        if let Some(s) = slot
            && let Some(rec) = s.lock().await.as_deref()
        {
            return Ok(Some(rec.status));
        }
        Ok(self.shared.store.get_job(job).await?.map(|r| r.status))
    }

    /// The observed state of `job` (from the engine's cache, else the store).
    ///
    /// # Errors
    /// Store errors.
    pub async fn job(&self, job: &str) -> Result<Option<JobRecord>> {
        let slot = lock(&self.shared.cache).get(job).cloned();
        match slot {
            Some(s) => match s.lock().await.as_deref() {
                Some(rec) => Ok(Some(rec.clone())),
                // Dropped from the cache at rest: the store has it.
                None => self.shared.store.get_job(job).await,
            },
            None => self.shared.store.get_job(job).await,
        }
    }

    /// Every event of `job`, in order.
    ///
    /// # Errors
    /// Store errors.
    pub async fn events(&self, job: &str) -> Result<Vec<Event>> {
        let mut out = Vec::new();
        loop {
            let after = out.last().map_or(0, |e: &Event| e.seq);
            let page = self.shared.store.events(job, after, 1000).await?;
            let done = page.len() < 1000;
            out.extend(page);
            if done {
                return Ok(out);
            }
        }
    }

    /// Deletes the transcripts of the finished job `job`, keeping its record, events
    /// and approvals (the audit trail). See [`StateStore::compact`] for the retention
    /// policy.
    ///
    /// # Errors
    /// `NotFound` (no such job), `Conflict` (the job is not finished), store errors.
    ///
    /// [`StateStore::compact`]: crate::store::StateStore::compact
    pub async fn compact(&self, job: &str) -> Result<crate::store::Compaction> {
        self.shared.store.compact(job).await
    }

    /// Open approval requests.
    ///
    /// # Errors
    /// Store errors.
    pub async fn open_approvals(&self) -> Result<Vec<ApprovalRequest>> {
        self.shared.store.approvals(true).await
    }

    /// Approves request `id` as `approver`: once the step's rule is met (its approvers,
    /// `min_approvals`, `forbid_self_approval`), the plan becomes the step's outputs
    /// (`summary`, `actions`, `approval`, `digest`), exactly as submitted, and the step
    /// succeeds; until then the approval is recorded as a vote.
    ///
    /// # Errors
    /// See [`Engine::decide`].
    pub async fn approve(&self, id: &str, approver: &Approver, note: Option<&str>) -> Result<()> {
        self.decide(id, approver, &Decision::approve(note)).await
    }

    /// Rejects request `id` as `approver` with a reason: the step plans again, and the
    /// reason is handed to the next planning attempt.
    ///
    /// # Errors
    /// See [`Engine::decide`].
    pub async fn reject(&self, id: &str, approver: &Approver, reason: &str) -> Result<()> {
        self.decide(id, approver, &Decision::reject(reason)).await
    }

    /// Applies `decision` by `approver` to request `id`, checked by
    /// [`record_decision`](crate::reconcile::record_decision) against the rule stored
    /// with the request (the step's rule at the request's generation).
    ///
    /// # Errors
    /// - `NotFound`: no such request (or job);
    /// - `Conflict`: the request is no longer open (decided or cancelled: a request is
    ///   decided once), belongs to an older generation, its step no longer waits for it,
    ///   the decision's digest is not the plan's, or this approver already approved;
    /// - `PermissionDenied`: the approver is outside the rule (the message names it);
    /// - `InvalidInput`: a rejection without a reason;
    /// - store errors.
    pub async fn decide(&self, id: &str, approver: &Approver, decision: &Decision) -> Result<()> {
        decisions::decide(self, id, approver, decision).await
    }

    /// Status changes of every job.
    pub fn subscribe(&self) -> broadcast::Receiver<JobUpdate> {
        self.shared.updates.subscribe()
    }

    /// Waits until `job` is finished (`Succeeded`, `Failed`, `Cancelled`) or `Blocked`.
    ///
    /// # Errors
    /// `Timeout` after `timeout`; store errors.
    pub async fn wait_finished(&self, job: &str, timeout: Duration) -> Result<JobStatus> {
        self.wait_for(job, timeout, |s| s.is_finished() || s == JobStatus::Blocked)
            .await
    }

    /// Waits until `job`'s status satisfies `pred`.
    ///
    /// # Errors
    /// `Timeout` after `timeout`; store errors.
    pub async fn wait_for(
        &self,
        job: &str,
        timeout: Duration,
        pred: impl Fn(JobStatus) -> bool,
    ) -> Result<JobStatus> {
        // Woken by this job's status changes only (see `watch.rs`); the status is also
        // read again every second, for changes another engine made through the store.
        let watch = self.shared.watchers.watch(job);
        let fut = async {
            loop {
                let changed = watch.notify.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                if let Some(s) = self.status(job).await?
                    && pred(s)
                {
                    return Ok(s);
                }
                let _ = tokio::time::timeout(Duration::from_secs(1), changed).await;
            }
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r,
            Err(_) => {
                let now = self
                    .job(job)
                    .await
                    .ok()
                    .flatten()
                    .map_or("not created".to_string(), |r| r.status.to_string());
                Err(Error::new(
                    crate::error::ErrorKind::Timeout,
                    format!(
                        "job {job} did not reach the awaited status in {timeout:?}; it is {now}"
                    ),
                ))
            }
        }
    }

    /// Counters, and the work queue's length now.
    pub fn stats(&self) -> EngineStats {
        let (queue_depth, queue_delayed) = {
            let q = lock(&self.shared.queue);
            (q.ready_len(), q.delayed_len())
        };
        EngineStats {
            reconciles: self.shared.reconciles.load(Ordering::Relaxed),
            attempts: self.shared.started.load(Ordering::Relaxed),
            queue_depth,
            queue_delayed,
        }
    }

    /// This engine's step durations and store commit latency since it started (see
    /// [`metrics`]).
    pub fn metrics(&self) -> EngineMetrics {
        self.shared.metrics.snapshot()
    }

    /// Names of jobs this engine knows (cache).
    pub fn known_jobs(&self) -> HashSet<String> {
        lock(&self.shared.cache).keys().cloned().collect()
    }
}
