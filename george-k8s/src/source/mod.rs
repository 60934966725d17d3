//! The cluster as a source of desired state: [`CrSource`] reads `AgentSpec`,
//! `TaskTemplate` and `Job` custom resources from a namespace (or from all, by label
//! selector) with kube-runtime watchers and serves them to the engine as a
//! [`GitSource`] — the hybrid architecture of the seeds: Git → Argo CD → CRs → George.
//!
//! - **What the engine sees**: each CR rendered as the manifest Git would hold
//!   ([`render`]: same `apiVersion`, `kind`, `metadata.name`, `spec`), at
//!   `jobs/<namespace>/<name>.yaml` (and `agent-specs/…`, `task-templates/…`). Every
//!   change the watchers see makes a new revision of a versioned tree; a revision is a
//!   commit (`<epoch>.<n>`), so the engine's incremental path is the Git one: it asks what
//!   changed since the revision it last reconciled and reconciles those jobs only —
//!   editing one `Job` reconciles that one job.
//! - **Generations**: a CR's `metadata.generation` travels in the annotation
//!   [`SOURCE_GENERATION_ANNOTATION`](george_core::model::SOURCE_GENERATION_ANNOTATION)
//!   and becomes the job's generation (see
//!   [`JobDefinition::source_generation`](george_core::reconcile::JobDefinition)).
//! - **Deletion**: a deleted CR is a removed manifest: the job is cancelled, or kept when
//!   its spec says `on_removal: keep`.
//! - **Invalid CRs**: George's own parser validates the rendered manifest, so an invalid
//!   CR gets the error a file in Git would; [`CrSource::follow`] writes it into the CR as
//!   a `Ready=False` condition naming the field and line (valid `AgentSpec`s and
//!   `TaskTemplate`s get `Ready=True`). One invalid CR never stops the others.
//! - **Start**: [`CrSource::start`] returns once each kind's first list is complete, so the
//!   engine's first load is never a partial view (which would cancel the jobs missing
//!   from it). A watch that breaks is resumed with backoff; a relist replaces that kind's
//!   objects in one revision.
//!
//! ```no_run
//! # async fn run(client: kube::Client, store: std::sync::Arc<george_core::memory::InMemoryStateStore>) -> Result<(), Box<dyn std::error::Error>> {
//! use george_core::engine::Engine;
//! use george_k8s::source::{CrSource, CrSourceConfig};
//!
//! let source = CrSource::start(client, CrSourceConfig::namespace("george")).await?;
//! let engine = Engine::builder(store, std::sync::Arc::new(source.clone())).build()?;
//! engine.start().await?;
//! let _loop = engine.spawn();
//! // Reconciles on every change of a CR, and writes Ready conditions on invalid ones.
//! let follower = source.follow(engine.clone());
//! # follower.shutdown().await; Ok(()) }
//! ```

mod follow;
pub mod render;
mod tree;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt as _;
use george_core::git::{CommitId, GitSource, SourceFile};
use kube::Client;
use kube::api::{Api, DynamicObject};
use kube::runtime::{WatchStreamExt as _, watcher};
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;

pub use follow::FollowHandle;
pub use render::SourceKind;
use tree::{Bytes, Tree};

/// Where a [`CrSource`] reads from.
#[derive(Debug, Clone)]
pub struct CrSourceConfig {
    /// The namespace, or `None` for all namespaces (then narrow with a label selector).
    pub namespace: Option<String>,
    /// A label selector (`team=payments,env!=prod`) the CRs must match.
    pub label_selector: Option<String>,
    /// How long [`CrSource::start`] waits for the first complete list of each kind
    /// (default 60 s).
    pub initial_sync_timeout: Duration,
}

impl CrSourceConfig {
    /// The CRs of `namespace`.
    pub fn namespace(namespace: impl Into<String>) -> CrSourceConfig {
        CrSourceConfig {
            namespace: Some(namespace.into()),
            label_selector: None,
            initial_sync_timeout: Duration::from_secs(60),
        }
    }

    /// The CRs of every namespace that match `selector`.
    pub fn all_namespaces(selector: impl Into<String>) -> CrSourceConfig {
        CrSourceConfig {
            namespace: None,
            label_selector: Some(selector.into()),
            initial_sync_timeout: Duration::from_secs(60),
        }
    }

    /// Only CRs matching `selector`.
    pub fn with_label_selector(mut self, selector: impl Into<String>) -> CrSourceConfig {
        self.label_selector = Some(selector.into());
        self
    }
}

/// Why a [`CrSource`] could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A kind's first list did not complete in time (the CRDs not installed, no RBAC to
    /// list them, the API server unreachable); the watchers' last error is logged.
    #[error(
        "the first list of George's custom resources did not complete within {0:?} (are the CRDs installed and may this identity list them?)"
    )]
    InitialSync(Duration),
}

/// The state the watchers write and the engine reads.
#[derive(Debug)]
struct State {
    tree: Mutex<Tree>,
    /// The current revision, for [`CrSource::follow`].
    changed: watch::Sender<u64>,
    /// `metadata.generation` per rendered path (for the conditions).
    generations: Mutex<HashMap<String, i64>>,
}

impl State {
    fn tree(&self) -> std::sync::MutexGuard<'_, Tree> {
        self.tree.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn change(&self, f: impl FnOnce(&mut Tree) -> bool) {
        let rev = {
            let mut t = self.tree();
            if !f(&mut t) {
                return;
            }
            t.revision_now()
        };
        self.changed.send_replace(rev);
    }

    fn generation(&self, path: &str, generation: Option<i64>) {
        let mut g = self.generations.lock().unwrap_or_else(|e| e.into_inner());
        match generation {
            Some(n) => g.insert(path.to_string(), n),
            None => g.remove(path),
        };
    }
}

struct Inner {
    state: Arc<State>,
    client: Client,
    watchers: Vec<AbortHandle>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        for w in &self.watchers {
            w.abort();
        }
    }
}

/// George's custom resources as a source of desired state; see the [module docs](self).
/// Cheap to clone; the watchers stop when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct CrSource {
    inner: Arc<Inner>,
}

impl CrSource {
    /// Starts a watcher per kind and returns once each has listed its CRs.
    ///
    /// # Errors
    /// [`Error::InitialSync`] when a first list does not complete in
    /// `config.initial_sync_timeout`.
    pub async fn start(client: Client, config: CrSourceConfig) -> Result<CrSource, Error> {
        let epoch = format!("k8s-{:x}", now_ms());
        let (changed, _) = watch::channel(0);
        let state = Arc::new(State {
            tree: Mutex::new(Tree::new(epoch)),
            changed,
            generations: Mutex::new(HashMap::new()),
        });
        let (ready_tx, mut ready_rx) = mpsc::channel(SourceKind::ALL.len());
        let watchers = SourceKind::ALL
            .into_iter()
            .map(|kind| {
                let task = watch_kind(
                    client.clone(),
                    kind,
                    config.clone(),
                    state.clone(),
                    ready_tx.clone(),
                );
                tokio::spawn(task).abort_handle()
            })
            .collect();
        let source = CrSource {
            inner: Arc::new(Inner {
                state,
                client,
                watchers,
            }),
        };
        let all_listed = async {
            for _ in SourceKind::ALL {
                ready_rx.recv().await;
            }
        };
        tokio::time::timeout(config.initial_sync_timeout, all_listed)
            .await
            .map_err(|_| Error::InitialSync(config.initial_sync_timeout))?;
        Ok(source)
    }

    /// The current revision, and a receiver that sees every later one.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.state.changed.subscribe()
    }

    /// The paths of the CRs present now (`jobs/<namespace>/<name>.yaml`, …).
    pub fn paths(&self) -> Vec<String> {
        self.inner.state.tree().paths().into_iter().collect()
    }

    fn generation_of(&self, path: &str) -> Option<i64> {
        let g = self.inner.state.generations.lock();
        g.unwrap_or_else(|e| e.into_inner()).get(path).copied()
    }

    fn prune_before(&self, commit: &CommitId) {
        let mut t = self.inner.state.tree();
        if let Some(rev) = commit
            .as_str()
            .rsplit_once('.')
            .and_then(|(_, r)| r.parse().ok())
        {
            t.prune(rev);
        }
    }
}

async fn watch_kind(
    client: Client,
    kind: SourceKind,
    config: CrSourceConfig,
    state: Arc<State>,
    ready: mpsc::Sender<()>,
) {
    let ar = kind.api_resource();
    let api: Api<DynamicObject> = match &config.namespace {
        Some(ns) => Api::namespaced_with(client, ns, &ar),
        None => Api::all_with(client, &ar),
    };
    let mut wc = watcher::Config::default();
    if let Some(sel) = &config.label_selector {
        wc = wc.labels(sel);
    }
    let mut events = watcher::watcher(api, wc).default_backoff().boxed();
    let mut relist: Option<BTreeMap<String, Bytes>> = None;
    let mut ready = Some(ready);
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Init) => relist = Some(BTreeMap::new()),
            Ok(watcher::Event::InitApply(obj)) => {
                if let (Some(list), Some((path, bytes))) =
                    (relist.as_mut(), render::render(kind, &obj))
                {
                    state.generation(&path, obj.metadata.generation);
                    list.insert(path, Arc::from(bytes));
                }
            }
            Ok(watcher::Event::InitDone) => {
                let files = relist.take().unwrap_or_default();
                state.change(|t| t.replace_prefix(kind.dir(), files));
                if let Some(tx) = ready.take() {
                    let _ = tx.send(()).await;
                }
            }
            Ok(watcher::Event::Apply(obj)) => {
                if let Some((path, bytes)) = render::render(kind, &obj) {
                    state.generation(&path, obj.metadata.generation);
                    state.change(|t| t.put(&path, Some(Arc::from(bytes))));
                }
            }
            Ok(watcher::Event::Delete(obj)) => {
                if let Some(name) = obj.metadata.name.as_deref() {
                    let ns = obj.metadata.namespace.as_deref().unwrap_or("default");
                    let path = render::path(kind, ns, name);
                    state.generation(&path, None);
                    state.change(|t| t.put(&path, None));
                }
            }
            Err(e) => {
                tracing::warn!(kind = kind.kind(), error = %e, "watching George's custom resources")
            }
        }
    }
}

fn not_found(commit: &CommitId) -> george_core::Error {
    george_core::Error::not_found(format!(
        "revision {commit} of the custom resources is not known (or no longer kept)"
    ))
}

fn files(v: Vec<(String, Bytes)>) -> Vec<SourceFile> {
    v.into_iter()
        .map(|(path, bytes)| SourceFile {
            path,
            bytes: bytes.to_vec(),
        })
        .collect()
}

#[async_trait]
impl GitSource for CrSource {
    /// The current revision, whatever the reference: the cluster has one line of history.
    async fn resolve(&self, _reference: &str) -> george_core::Result<CommitId> {
        Ok(self.inner.state.tree().head())
    }

    async fn read_manifests(&self, commit: &CommitId) -> george_core::Result<Vec<SourceFile>> {
        let v = self.inner.state.tree().files_at(commit);
        v.map(files).ok_or_else(|| not_found(commit))
    }

    async fn read_files(
        &self,
        commit: &CommitId,
        paths: &[String],
    ) -> george_core::Result<Vec<SourceFile>> {
        let v = self.inner.state.tree().read_at(commit, paths);
        v.map(files).ok_or_else(|| not_found(commit))
    }

    async fn changed_paths(
        &self,
        from: &CommitId,
        to: &CommitId,
    ) -> george_core::Result<Vec<String>> {
        let v = self.inner.state.tree().changed(from, to);
        v.ok_or_else(|| not_found(to))
    }
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}
