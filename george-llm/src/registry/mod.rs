//! [`Registry`]: builds the adapter an agent spec chooses among the operator's
//! provider profiles — the engine's
//! [`ProviderFactory`](george_core::provider::ProviderFactory).
//!
//! # Who decides what
//! Agent specs live in a repository many people can commit to; the engine runs with
//! secrets in its environment. So the operator decides which endpoints and keys exist
//! ([`ProviderProfile`]s, in code or a profiles file), and a committed spec only
//! chooses among them:
//!
//! | spec field | accepted when |
//! |---|---|
//! | `provider` | it names a profile |
//! | `base_url` | absent, or the profile's own URL (compared after [`normalize_url`](crate::guard::normalize_url)) |
//! | `api_key_env` | absent, or the very variable the profile reads its key from |
//! | `model` | in the profile's `models` when it lists some; empty means its `default_model` |
//!
//! Anything else fails the build with a message naming the profile and the rule; the
//! engine reports it as the step being `Blocked`. Only the key sources of profiles
//! are ever read, and every key read is added to
//! [`KnownSecrets::global`](george_core::secret::KnownSecrets::global), so the engine
//! redacts it from what it stores. A profile's `base_url` may not be a link-local or
//! metadata address unless it sets `allow_link_local` ([`crate::guard`]), and no
//! provider call follows a redirect ([`crate::transport`]).
//!
//! # Profiles file
//! ```yaml
//! # e.g. /etc/george/providers.yaml: the operator's, beside the engine, never in the
//! # manifest repository. Load with ProviderProfile::load_file or Registry::load_profiles.
//! providers:
//!   - name: openai                      # what agent specs name in `provider:`
//!     kind: openai                      # openai | anthropic | gemini (the wire protocol)
//!     base_url: https://api.openai.com/v1
//!     api_key_env: OPENAI_API_KEY       # optional: the variable holding the key
//!     default_model: gpt-4.1-mini       # optional: for specs with an empty `model`
//!     models: [gpt-4.1-mini, gpt-4.1]   # optional: the models specs may ask for
//!   - name: gpu-box
//!     kind: openai
//!     base_url: http://gpu-box:11434/v1
//!     allow_link_local: false           # optional: allow a link-local base_url
//! ```
//! Errors name the file, line, column and field (`providers.yaml:7:11: providers[1].kind: …`).

mod build;
mod file;
mod gate;
mod profile;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use george_core::Result;

use crate::config::ApiKey;
use crate::pricing::PriceTable;
use crate::retry::RetryPolicy;
use crate::transport::HttpTransport;

pub use profile::{KNOWN_PROVIDERS, KeySource, ProviderKind, ProviderProfile};

/// Builds providers from agent specs, among the operator's [`ProviderProfile`]s (the
/// rules are in the [module docs](self)): the adapter for the profile's protocol, at
/// its base URL, with its key, wrapped in [`Instrumented`](crate::Instrumented) and
/// [`Retrying`](crate::Retrying).
///
/// [`Registry::new`] knows the [built-in profiles](KNOWN_PROVIDERS) (the public
/// endpoints and local servers at their default addresses); [`Registry::empty`] knows
/// none, for an operator who lists their own with [`Registry::with_profiles`],
/// [`Registry::profile`] or [`Registry::load_profiles`].
///
/// ```no_run
/// use std::sync::Arc;
/// use george_llm::registry::{ProviderKind, ProviderProfile};
/// # fn demo(store: george_core::store::DynStateStore, git: george_core::git::DynGitSource) -> george_core::Result<()> {
/// let registry = george_llm::Registry::empty()?.with_profiles([
///     ProviderProfile::new("gpu-box", ProviderKind::OpenAi, "http://gpu-box:11434/v1")
///         .models(["qwen3:8b"]),
///     ProviderProfile::new("claude", ProviderKind::Anthropic, "https://api.anthropic.com")
///         .key_env("ANTHROPIC_API_KEY"),
/// ]);
/// let engine = george_core::engine::Engine::builder(store, git)
///     .provider_factory(Arc::new(registry))
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Registry {
    transports: Transports,
    profiles: Arc<BTreeMap<String, ProviderProfile>>,
    prices: Arc<PriceTable>,
    retry: RetryPolicy,
    timeout: Duration,
    stream: bool,
    capture_content: bool,
    max_response_bytes: Option<usize>,
    max_stream_bytes: Option<usize>,
    keys: HashMap<String, ApiKey>,
}

/// The transports providers are built over.
#[derive(Debug, Clone)]
enum Transports {
    /// George's reqwest transports: the guarded one, and (built when a profile that
    /// allows link-local addresses is first used) one that allows them.
    #[cfg(feature = "reqwest")]
    Default {
        guarded: Arc<dyn HttpTransport>,
        open: Arc<std::sync::OnceLock<Arc<dyn HttpTransport>>>,
        connect_timeout: Duration,
    },
    /// One transport for every profile, given by the embedder.
    Custom(Arc<dyn HttpTransport>),
}

impl Registry {
    /// A registry with the [built-in profiles](KNOWN_PROVIDERS), over the default
    /// reqwest transport (10 s connect timeout, no redirects, link-local and metadata
    /// addresses refused), the default prices and retry policy, streaming on, a 300 s
    /// limit per call.
    ///
    /// # Errors
    /// `Backend` when the HTTP client cannot be built.
    #[cfg(feature = "reqwest")]
    pub fn new() -> Result<Self> {
        Ok(Self::empty()?.with_profiles(ProviderProfile::builtin()))
    }

    /// As [`Registry::new`], with no profile: every agent is refused until profiles
    /// are added.
    ///
    /// # Errors
    /// `Backend` when the HTTP client cannot be built.
    #[cfg(feature = "reqwest")]
    pub fn empty() -> Result<Self> {
        let connect_timeout = Duration::from_secs(10);
        let guarded = crate::transport::ReqwestTransport::new(connect_timeout)?;
        Ok(Self::over(Transports::Default {
            guarded: Arc::new(guarded),
            open: Arc::new(std::sync::OnceLock::new()),
            connect_timeout,
        }))
    }

    /// A registry with the built-in profiles over `transport`, for every profile
    /// (whether it refuses link-local addresses and redirects is up to it; profiles'
    /// URLs are still checked).
    pub fn with_transport(transport: Arc<dyn HttpTransport>) -> Self {
        Self::over(Transports::Custom(transport)).with_profiles(ProviderProfile::builtin())
    }

    fn over(transports: Transports) -> Self {
        Registry {
            transports,
            profiles: Arc::new(BTreeMap::new()),
            prices: Arc::new(PriceTable::default()),
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(300),
            stream: true,
            capture_content: false,
            max_response_bytes: None,
            max_stream_bytes: None,
            keys: HashMap::new(),
        }
    }

    /// Replaces the profiles with `profiles` (a later one replaces an earlier one of
    /// the same name).
    pub fn with_profiles(mut self, profiles: impl IntoIterator<Item = ProviderProfile>) -> Self {
        self.profiles = Arc::new(profiles.into_iter().map(|p| (p.name.clone(), p)).collect());
        self
    }

    /// Adds `profile`, replacing one of the same name.
    pub fn profile(mut self, profile: ProviderProfile) -> Self {
        Arc::make_mut(&mut self.profiles).insert(profile.name.clone(), profile);
        self
    }

    /// Replaces the profiles with those of the YAML file at `path`
    /// ([format](self#profiles-file)).
    ///
    /// # Errors
    /// As [`ProviderProfile::load_file`].
    pub fn load_profiles(self, path: impl AsRef<std::path::Path>) -> Result<Self> {
        Ok(self.with_profiles(ProviderProfile::load_file(path)?))
    }

    /// The profiles, by name.
    pub fn profiles(&self) -> impl Iterator<Item = &ProviderProfile> {
        self.profiles.values()
    }

    /// Uses `key` wherever a profile's key variable is `var`, instead of reading the
    /// environment: for keys from a secret manager, or tests. It never makes `var`
    /// usable by a spec whose profile does not name it.
    pub fn key(mut self, var: impl Into<String>, key: ApiKey) -> Self {
        self.keys.insert(var.into(), key);
        self
    }

    /// Sets the price table.
    pub fn prices(mut self, prices: PriceTable) -> Self {
        self.prices = Arc::new(prices);
        self
    }

    /// Sets the retry policy.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the limit of one call (request to last byte).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets whether responses are streamed.
    pub fn stream(mut self, stream: bool) -> Self {
        self.stream = stream;
        self
    }

    /// Lets tracing record prompts and responses (off by default).
    pub fn capture_content(mut self, on: bool) -> Self {
        self.capture_content = on;
        self
    }

    /// Sets the cap on a non-streamed response body, in bytes (default
    /// [`DEFAULT_MAX_RESPONSE_BYTES`](crate::config::DEFAULT_MAX_RESPONSE_BYTES)).
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = Some(bytes);
        self
    }

    /// Sets the cap on a streamed response, in bytes (default
    /// [`DEFAULT_MAX_STREAM_BYTES`](crate::config::DEFAULT_MAX_STREAM_BYTES)).
    pub fn max_stream_bytes(mut self, bytes: usize) -> Self {
        self.max_stream_bytes = Some(bytes);
        self
    }
}
