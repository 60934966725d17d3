//! [`EngineConfig`] and [`EngineBuilder`]: the engine's settings and how it is put
//! together from a store, a Git source, providers, tools and a human channel.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::{Notify, broadcast};

use super::{Desired, Engine, ProviderCache, Shared, Slots};
use crate::clock::{Clock, SystemClock};
use crate::command::CommandToolExecutor;
use crate::error::{Error, Result};
use crate::git::DynGitSource;
use crate::human::{HumanChannel, LogHuman};
use crate::manifest::ManifestLimits;
use crate::manifest::ManifestSet;
use crate::model::Autonomy;
use crate::provider::{DynProvider, ProviderFactory};
use crate::reconcile::queue::WorkQueue;
use crate::secret::KnownSecrets;
use crate::store::DynStateStore;
use crate::tool::{DynToolExecutor, EffectClass};

/// Engine settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EngineConfig {
    /// This engine's id: the holder of its leases (default: `engine-<random>`).
    ///
    /// Engines that share a store must have distinct ids while they run. An engine
    /// restarted with the same id takes its earlier incarnation's attempts back at
    /// once ([`Engine::start`]) instead of waiting for their leases to expire.
    pub id: String,
    /// The Git reference to follow (default `main`).
    pub reference: String,
    /// Maximum step attempts running at once in this engine (default 64). A ready step
    /// over this limit (or its job's, agent's or target's) waits; a finished attempt's
    /// slot goes first to its own job's next step, then to the oldest waiter it can help.
    pub max_running: usize,
    /// Lease length for a running attempt, in ms (default 30,000); renewed at a third.
    pub lease_ms: u64,
    /// How often to poll the Git source (default 10 s).
    pub poll_interval: Duration,
    /// How often to ask the store for due jobs ([`StateStore::claim_due`]): work made
    /// ready by other engines, and attempts whose holder died (default 1 s).
    ///
    /// [`StateStore::claim_due`]: crate::store::StateStore::claim_due
    pub claim_interval: Duration,
    /// How long a claimed job stays hidden from other engines' claims, in ms, unless a
    /// write gives it a new wake-up time (default 10,000).
    pub claim_visibility_ms: u64,
    /// Caps on manifests (file size, steps, parameters) and on every template render
    /// (fuel, output bytes); see [`ManifestLimits`] for the defaults.
    pub manifest_limits: ManifestLimits,
    /// Caps on every agent attempt (iterations, tool calls per turn, transcript bytes).
    pub agent_limits: super::AgentLimits,
    /// The deepest a tree of [sub-jobs](crate::children) may grow: a child of a Git job
    /// has depth 1 (default 3). An order deeper is refused.
    pub max_child_depth: u32,
    /// The most child jobs one job may order, over all its steps and attempts (default
    /// 20). An order beyond is refused; ordering an existing child again is not counted.
    pub max_children_per_job: usize,
    /// The most autonomy any agent, template or step gets, whatever the manifests
    /// declare (default [`Autonomy::Supervised`]): `manual` sends every plan of every
    /// agent step to a person and no committed `Policy` approves anything;
    /// `supervised` lets committed policies approve the plans their rules match. It is
    /// the operator's, not Git's: a committer cannot raise it.
    pub autonomy_ceiling: Autonomy,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            id: format!("engine-{:08x}", fastrand::u32(..)),
            reference: "main".into(),
            max_running: 64,
            lease_ms: 30_000,
            poll_interval: Duration::from_secs(10),
            claim_interval: Duration::from_secs(1),
            claim_visibility_ms: 10_000,
            manifest_limits: ManifestLimits::default(),
            agent_limits: super::AgentLimits::default(),
            max_child_depth: 3,
            max_children_per_job: 20,
            autonomy_ceiling: Autonomy::Supervised,
        }
    }
}

/// Builds an [`Engine`].
#[derive(Debug)]
pub struct EngineBuilder {
    config: EngineConfig,
    store: DynStateStore,
    git: DynGitSource,
    providers: HashMap<String, DynProvider>,
    factory: Option<Arc<dyn ProviderFactory>>,
    executors: Vec<DynToolExecutor>,
    human: Arc<dyn HumanChannel>,
    clock: Arc<dyn Clock>,
    secrets: KnownSecrets,
    effects: HashMap<String, EffectClass>,
    id_set: bool,
}

impl EngineBuilder {
    /// Sets the [`EffectClass`] of tool `name`, overriding what its executor declares:
    /// the operator's word is final (e.g. a tool server's `kubectl_get` declared `read`).
    /// A step whose outcome needs approval may call only `read` and `dry_run` tools.
    pub fn effect_class(mut self, name: impl Into<String>, effect: EffectClass) -> Self {
        self.effects.insert(name.into(), effect);
        self
    }

    /// Sets the deepest tree of child jobs (see [`EngineConfig::max_child_depth`]).
    pub fn max_child_depth(mut self, depth: u32) -> Self {
        self.config.max_child_depth = depth;
        self
    }

    /// Sets the most child jobs one job may order (see
    /// [`EngineConfig::max_children_per_job`]).
    pub fn max_children_per_job(mut self, n: usize) -> Self {
        self.config.max_children_per_job = n;
        self
    }

    /// Sets the operator's autonomy ceiling (see [`EngineConfig::autonomy_ceiling`]).
    pub fn autonomy_ceiling(mut self, ceiling: Autonomy) -> Self {
        self.config.autonomy_ceiling = ceiling;
        self
    }

    /// Sets the maximum step attempts running at once (see [`EngineConfig::max_running`]).
    pub fn max_running(mut self, n: usize) -> Self {
        self.config.max_running = n.max(1);
        self
    }

    /// Sets how long a claimed job stays hidden from other engines' claims, in ms (see
    /// [`EngineConfig::claim_visibility_ms`]).
    pub fn claim_visibility_ms(mut self, ms: u64) -> Self {
        self.config.claim_visibility_ms = ms;
        self
    }

    /// Registers a provider under `name` (agent specs select it by `provider:`).
    pub fn provider(mut self, name: impl Into<String>, provider: DynProvider) -> Self {
        self.providers.insert(name.into(), provider);
        self
    }

    /// Builds providers from agent specs (`provider`, `base_url`, `api_key_env`) for the
    /// agents whose `provider` is not registered by name; e.g. `george_llm::Registry`.
    pub fn provider_factory(mut self, factory: Arc<dyn ProviderFactory>) -> Self {
        self.factory = Some(factory);
        self
    }
    /// Registers a tool executor; its tools become available to agents that list them.
    pub fn tools(mut self, executor: DynToolExecutor) -> Self {
        self.executors.push(executor);
        self
    }
    /// The executor for command steps (and the `run_command` tool).
    pub fn commands(mut self, commands: CommandToolExecutor) -> Self {
        self.executors.push(Arc::new(commands));
        self
    }
    /// The channel that tells humans an approval is waiting (default: log only).
    pub fn human(mut self, human: Arc<dyn HumanChannel>) -> Self {
        self.human = human;
        self
    }
    /// The clock (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
    /// The settings. An id set earlier with [`id`](Self::id) is kept (`config`'s id is
    /// used when none was set).
    pub fn config(mut self, config: EngineConfig) -> Self {
        let id = self.id_set.then(|| std::mem::take(&mut self.config.id));
        self.config = config;
        if let Some(id) = id {
            self.config.id = id;
        }
        self
    }
    /// Sets the secret values redacted from transcripts, tool results and event
    /// messages before they are stored (default: [`KnownSecrets::global`], which
    /// George's own adapters add what they read to).
    pub fn known_secrets(mut self, secrets: KnownSecrets) -> Self {
        self.secrets = secrets;
        self
    }
    /// Sets the engine id.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.config.id = id.into();
        self.id_set = true;
        self
    }
    /// Sets the Git reference to follow.
    pub fn reference(mut self, reference: impl Into<String>) -> Self {
        self.config.reference = reference.into();
        self
    }
    /// Sets the caps on manifests and template renders (see
    /// [`EngineConfig::manifest_limits`]).
    pub fn manifest_limits(mut self, limits: ManifestLimits) -> Self {
        self.config.manifest_limits = limits;
        self
    }
    /// Sets the caps on every agent attempt (see [`EngineConfig::agent_limits`]).
    pub fn agent_limits(mut self, limits: super::AgentLimits) -> Self {
        self.config.agent_limits = limits;
        self
    }
    /// Sets the Git poll interval.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.config.poll_interval = interval;
        self
    }

    /// Sets the lease length of running attempts, in ms (see [`EngineConfig::lease_ms`]).
    pub fn lease_ms(mut self, ms: u64) -> Self {
        self.config.lease_ms = ms.max(1);
        self
    }

    /// Sets how often the engine claims due jobs from the store
    /// (see [`EngineConfig::claim_interval`]).
    pub fn claim_interval(mut self, interval: Duration) -> Self {
        self.config.claim_interval = interval;
        self
    }
    /// Builds the engine.
    ///
    /// # Errors
    /// `InvalidInput` when two registered executors provide a tool of the same name (an
    /// agent's `tools:` must name one tool, not whichever registered first), or when an
    /// [`effect_class`](Self::effect_class) names a tool no executor provides.
    pub fn build(self) -> Result<Engine> {
        let tools = super::tools::build_table(&self.executors, &self.effects)?;
        if let Some(name) = self.effects.keys().find(|n| !tools.contains_key(*n)) {
            return Err(Error::invalid_input(format!(
                "effect_class names tool {name:?}, which no registered executor provides"
            )));
        }
        let (updates, _) = broadcast::channel(1024);
        Ok(Engine {
            shared: Arc::new(Shared {
                holder: Arc::from(self.config.id.as_str()),
                tool_lists: Default::default(),
                actors: Default::default(),
                config: self.config,
                store: self.store,
                git: self.git,
                providers: self.providers,
                factory: ProviderCache {
                    factory: self.factory,
                    built: Mutex::new(Default::default()),
                },
                tools: RwLock::new(Arc::new(tools)),
                executors: self.executors,
                effects: self.effects,
                human: self.human,
                clock: self.clock,
                secrets: self.secrets,
                desired: RwLock::new(Desired {
                    commit: None,
                    commit_id: "".into(),
                    set: ManifestSet::default(),
                    retained: Default::default(),
                    children: Default::default(),
                    recorded: false,
                }),
                closing: Mutex::new(std::collections::BTreeSet::new()),
                pinned: Mutex::new(None),
                cache: Mutex::new(Default::default()),
                queue: Mutex::new(WorkQueue::new()),
                wake: Notify::new(),
                slots: Mutex::new(Slots::default()),
                attempts: Mutex::new(Default::default()),
                updates,
                watchers: Default::default(),
                reconciles: AtomicU64::new(0),
                started: AtomicU64::new(0),
                metrics: Default::default(),
            }),
        })
    }
}

impl Engine {
    /// A builder over a store and a Git source.
    pub fn builder(store: DynStateStore, git: DynGitSource) -> EngineBuilder {
        EngineBuilder {
            config: EngineConfig::default(),
            store,
            git,
            providers: HashMap::new(),
            factory: None,
            executors: Vec::new(),
            human: Arc::new(LogHuman),
            clock: Arc::new(SystemClock),
            secrets: KnownSecrets::global().clone(),
            effects: HashMap::new(),
            id_set: false,
        }
    }
}
