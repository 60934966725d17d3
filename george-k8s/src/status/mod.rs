//! Job status on the cluster: a [`StatusProjector`] writes each job's status from the
//! engine (its store of record) into the job's `Job` CR, by server-side apply with its
//! own field manager, and emits Kubernetes Events (`events.k8s.io/v1`) for the key
//! transitions, so `kubectl get jobs.george.dev` and `kubectl describe job.george.dev …`
//! tell the story.
//!
//! - **What is written**: phase, the standard conditions (`Ready`, `Reconciling`,
//!   `Stalled`, `AwaitingApproval`; a list keyed by `type`), a bounded summary per step,
//!   the open approval ids, `observedGeneration` (the CR's `metadata.generation` the status
//!   was written against), George's own generation and commit, tokens used.
//! - **When**: at start for every job (so after a restart the projection is rebuilt from
//!   the store), on every [`JobUpdate`](george_core::engine::JobUpdate) the engine
//!   broadcasts, when a `Job` CR appears or its spec changes (a watcher), and on a resync
//!   interval that catches step-level changes (one list of the store; only jobs whose
//!   record changed are read and written). An unchanged status is not written again.
//! - **Which CRs**: the `Job` CR of the same name in the projector's namespace — created by
//!   whoever puts George's manifests in the cluster (Argo CD syncing the same Git
//!   repository, `kubectl apply`). A job without a CR is skipped until one appears.
//!
//! ```no_run
//! # async fn run(engine: george_core::engine::Engine, client: kube::Client) {
//! use george_k8s::status::StatusProjector;
//!
//! let projector = StatusProjector::new(engine, client, "george")
//!     .with_resync(std::time::Duration::from_secs(5))
//!     .spawn();
//! // … the engine runs; `kubectl -n george get jobs.george.dev` shows the status …
//! projector.shutdown().await;
//! # }
//! ```

mod summary;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use george_core::engine::Engine;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, Recorder, Reporter};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Client, Resource as _};
use serde_json::json;
use tokio::sync::{Notify, broadcast};

use crate::crd::Job;

/// The field manager the projector applies status with, unless told otherwise.
pub const FIELD_MANAGER: &str = "george-engine";
/// The `reportingController` of its Events.
pub const REPORTING_CONTROLLER: &str = "george.dev/engine";

/// Why a projection failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The API server refused or could not be reached.
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    /// The engine's store failed.
    #[error("engine: {0}")]
    Engine(#[from] george_core::Error),
}

/// What [`StatusProjector::project`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Projected {
    /// The status was written (and its Events emitted).
    Written,
    /// The CR already had this status.
    Unchanged,
    /// The engine has no such job.
    NoJob,
    /// The namespace has no `Job` CR of that name.
    NoResource,
}

/// Projects job status from an [`Engine`] into `Job` CRs; see the [module docs](self).
pub struct StatusProjector {
    engine: Engine,
    api: Api<Job>,
    client: Client,
    /// Each job's CR is in the namespace its manifest path names (the cluster as the
    /// source, across namespaces); see [`StatusProjector::across_namespaces`].
    across: bool,
    recorder: Recorder,
    field_manager: String,
    resync: Duration,
    /// The record revision last projected, per job.
    seen: Mutex<HashMap<String, u64>>,
}

impl std::fmt::Debug for StatusProjector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusProjector")
            .field("field_manager", &self.field_manager)
            .field("resync", &self.resync)
            .finish_non_exhaustive()
    }
}

impl StatusProjector {
    /// A projector for `engine`'s jobs into the `Job` CRs of `namespace`.
    pub fn new(engine: Engine, client: Client, namespace: &str) -> StatusProjector {
        let reporter = Reporter {
            controller: REPORTING_CONTROLLER.to_string(),
            instance: Some(engine.id().to_string()),
        };
        StatusProjector {
            recorder: Recorder::new(client.clone(), reporter),
            api: Api::namespaced(client.clone(), namespace),
            client,
            across: false,
            engine,
            field_manager: FIELD_MANAGER.to_string(),
            resync: Duration::from_secs(10),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Applies status with field manager `name` (default [`FIELD_MANAGER`]).
    pub fn with_field_manager(mut self, name: impl Into<String>) -> StatusProjector {
        self.field_manager = name.into();
        self
    }

    /// Projects each job into the `Job` CR of the namespace its manifest came from, when
    /// the engine's source is the cluster read across namespaces
    /// ([`CrSource`](crate::source::CrSource) with no namespace: the paths are
    /// `jobs/<namespace>/<name>.yaml`); jobs from elsewhere still go to the projector's
    /// own namespace. Watches `Job` CRs in every namespace.
    pub fn across_namespaces(mut self) -> StatusProjector {
        self.across = true;
        self
    }

    /// The API of `job`'s CR.
    fn api_for(&self, rec: &george_core::state::JobRecord) -> Api<Job> {
        match crate::source::render::parse_path(&rec.path) {
            Some((crate::source::SourceKind::Job, ns, _)) if self.across => {
                Api::namespaced(self.client.clone(), ns)
            }
            _ => self.api.clone(),
        }
    }

    /// Looks for step-level changes every `interval` (default 10 s).
    pub fn with_resync(mut self, interval: Duration) -> StatusProjector {
        self.resync = interval;
        self
    }

    /// Projects `job` now: reads its record and its CR, writes the status when it differs,
    /// and emits an Event per transition from the CR's previous status.
    ///
    /// # Errors
    /// The store or the API server failed.
    pub async fn project(&self, job: &str) -> Result<Projected, Error> {
        let Some(rec) = self.engine.job(job).await? else {
            return Ok(Projected::NoJob);
        };
        let api = self.api_for(&rec);
        let Some(cr) = api.get_opt(job).await? else {
            return Ok(Projected::NoResource);
        };
        let before = cr.status.clone();
        let now = now_ms();
        let observed = observed_generation(&self.engine, &rec, &cr, before.as_ref());
        let after = summary::job_status(&rec, observed, before.as_ref(), now);
        if before.as_ref() == Some(&after) {
            self.seen(job, rec.revision);
            return Ok(Projected::Unchanged);
        }
        let patch = json!({
            "apiVersion": format!("{}/{}", crate::crd::GROUP, crate::crd::VERSION),
            "kind": "Job",
            "status": after,
        });
        let pp = PatchParams::apply(&self.field_manager).force();
        api.patch_status(job, &pp, &Patch::Apply(&patch)).await?;
        self.seen(job, rec.revision);
        let regarding = cr.object_ref(&());
        for t in summary::transitions(before.as_ref(), &after) {
            let ev = Event {
                type_: t.type_,
                reason: t.reason,
                note: Some(t.note),
                action: "Reconcile".to_string(),
                secondary: None,
            };
            if let Err(e) = self.recorder.publish(&ev, &regarding).await {
                tracing::warn!(job, error = %e, "could not emit a Kubernetes Event");
            }
        }
        Ok(Projected::Written)
    }

    /// Projects every job whose record changed since it was last projected (all of them
    /// the first time: the projection is rebuilt from the store). Returns how many
    /// statuses were written. A failing job is logged and tried again next time.
    ///
    /// # Errors
    /// The store could not list the jobs.
    pub async fn project_all(&self) -> Result<usize, Error> {
        let mut written = 0;
        for rec in self.engine.jobs().await? {
            let known = self.lock_seen().get(&rec.name).copied();
            if known == Some(rec.revision) {
                continue;
            }
            match self.project(&rec.name).await {
                Ok(Projected::Written) => written += 1,
                Ok(_) => {}
                Err(e) => tracing::warn!(job = %rec.name, error = %e, "status projection failed"),
            }
        }
        Ok(written)
    }

    fn lock_seen(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn seen(&self, job: &str, revision: u64) {
        self.lock_seen().insert(job.to_string(), revision);
    }

    /// Runs the projector on a task of its own until [`ProjectorHandle::shutdown`].
    pub fn spawn(self) -> ProjectorHandle {
        crate::TaskHandle::spawn(move |stop| run(self, stop))
    }
}

/// The CR generation the engine has acted on. When the engine's source is the cluster
/// (the desired job carries the CR's generation) that is the generation of the desired
/// job the record was reconciled to, and the previous value while the record lags it.
/// Otherwise (Git, with the CR a copy of the same manifest) the CR's own.
fn observed_generation(
    engine: &Engine,
    rec: &george_core::state::JobRecord,
    cr: &Job,
    before: Option<&crate::crd::JobStatus>,
) -> Option<i64> {
    let Some(desired) = engine.desired_job(&rec.name) else {
        return cr.metadata.generation;
    };
    match desired.source_generation() {
        None => cr.metadata.generation,
        Some(g) if desired.hash == rec.spec_hash => i64::try_from(g).ok(),
        Some(_) => before.and_then(|s| s.observed_generation),
    }
}

async fn run(p: StatusProjector, stop: Arc<Notify>) {
    // Subscribe first, so nothing that happens during the first pass is missed.
    let mut updates = p.engine.subscribe();
    if let Err(e) = p.project_all().await {
        tracing::warn!(error = %e, "status projection: could not list jobs");
    }
    let watched = if p.across {
        Api::all(p.client.clone())
    } else {
        p.api.clone()
    };
    let mut crs = watcher::watcher(watched, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut tick = tokio::time::interval(p.resync);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.notified() => return,
            u = updates.recv() => match u {
                Ok(u) => project_logged(&p, &u.job).await,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    p.lock_seen().clear();
                    let _ = p.project_all().await;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            ev = crs.next() => match ev {
                // A CR that appeared, was recreated or edited: its status lags its generation.
                Some(Ok(watcher::Event::Apply(cr) | watcher::Event::InitApply(cr))) => {
                    let observed = cr.status.as_ref().and_then(|s| s.observed_generation);
                    if observed != cr.metadata.generation
                        && let Some(name) = cr.metadata.name.as_deref()
                    {
                        project_logged(&p, name).await;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => tracing::debug!(error = %e, "Job CR watch"),
                None => return,
            },
            _ = tick.tick() => {
                if let Err(e) = p.project_all().await {
                    tracing::warn!(error = %e, "status projection: could not list jobs");
                }
            }
        }
    }
}

async fn project_logged(p: &StatusProjector, job: &str) {
    if let Err(e) = p.project(job).await {
        // Retried by the next resync.
        p.lock_seen().remove(job);
        tracing::warn!(job, error = %e, "status projection failed");
    }
}

/// Now, as RFC 3339 (a condition's `lastTransitionTime`).
pub(crate) fn rfc3339_now() -> String {
    summary::rfc3339(now_ms())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A running [`StatusProjector`].
pub type ProjectorHandle = crate::TaskHandle;
