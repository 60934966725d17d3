//! [`Registry`]: builds the adapter an agent spec names — the engine's
//! [`ProviderFactory`].

use std::sync::Arc;
use std::time::Duration;

use george_core::model::AgentConfig;
use george_core::provider::{DynProvider, Provider, ProviderFactory};
use george_core::{Error, Result};

use crate::config::{ApiKey, ProviderConfig};
use crate::instrument::Instrumented;
use crate::pricing::PriceTable;
use crate::retry::{RetryPolicy, Retrying};
use crate::transport::HttpTransport;

/// The wire protocols a [`Registry`] knows, by the `provider` names an agent spec
/// may use, with their default base URL and key variable.
///
/// | `provider` | protocol | default base URL | default key variable |
/// |---|---|---|---|
/// | `openai` | OpenAI chat completions | `https://api.openai.com/v1` | `OPENAI_API_KEY` |
/// | `openai-compatible` | the same, for any server | (`base_url` required) | none |
/// | `ollama` | the same | `http://localhost:11434/v1` | none |
/// | `vllm` | the same | `http://localhost:8000/v1` | none |
/// | `llamacpp` | the same | `http://localhost:8080/v1` | none |
/// | `litellm` | the same | `http://localhost:4000/v1` | `LITELLM_API_KEY` |
/// | `anthropic` | Anthropic Messages | `https://api.anthropic.com` | `ANTHROPIC_API_KEY` |
/// | `gemini` | Google Gemini | `https://generativelanguage.googleapis.com/v1beta` | `GEMINI_API_KEY` |
///
/// An agent's `api_key_env` overrides the key variable (and makes a key required);
/// its `base_url` overrides the URL.
pub const KNOWN_PROVIDERS: &[&str] = &[
    "openai",
    "openai-compatible",
    "ollama",
    "vllm",
    "llamacpp",
    "litellm",
    "anthropic",
    "gemini",
];

/// Builds providers from agent specs: the adapter for the spec's `provider`, with its
/// `base_url` and the key read from the variable its `api_key_env` names, wrapped in
/// [`Instrumented`] and [`Retrying`].
///
/// ```no_run
/// use std::sync::Arc;
/// # fn demo(store: george_core::store::DynStateStore, git: george_core::git::DynGitSource) -> george_core::Result<()> {
/// let engine = george_core::engine::Engine::builder(store, git)
///     .provider_factory(Arc::new(george_llm::Registry::new()?))
///     .build();
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Registry {
    transport: Arc<dyn HttpTransport>,
    prices: Arc<PriceTable>,
    retry: RetryPolicy,
    timeout: Duration,
    stream: bool,
    capture_content: bool,
    keys: std::collections::HashMap<String, ApiKey>,
}

impl Registry {
    /// A registry over the default reqwest transport (10 s connect timeout), the
    /// default prices and retry policy, streaming on, a 300 s limit per call.
    ///
    /// # Errors
    /// `Backend` when the HTTP client cannot be built.
    #[cfg(feature = "reqwest")]
    pub fn new() -> Result<Self> {
        let t = crate::transport::ReqwestTransport::new(Duration::from_secs(10))?;
        Ok(Self::with_transport(Arc::new(t)))
    }

    /// A registry over `transport`.
    pub fn with_transport(transport: Arc<dyn HttpTransport>) -> Self {
        Registry {
            transport,
            prices: Arc::new(PriceTable::default()),
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(300),
            stream: true,
            capture_content: false,
            keys: std::collections::HashMap::new(),
        }
    }

    /// Uses `key` wherever an agent's key variable is `var`, instead of reading the
    /// environment: for keys from a secret manager, or tests.
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

    fn config(
        &self,
        agent: &AgentConfig,
        default_url: Option<&str>,
        default_key: Option<&str>,
    ) -> Result<ProviderConfig> {
        let url = match (agent.base_url.as_deref(), default_url) {
            (Some(u), _) | (None, Some(u)) => u.to_string(),
            (None, None) => {
                return Err(Error::invalid_input(format!(
                    "provider {:?} needs a base_url in the agent spec",
                    agent.provider
                )));
            }
        };
        let mut config = ProviderConfig::new(url, self.transport.clone())
            .stream(self.stream)
            .timeout(self.timeout)
            .prices(self.prices.clone());
        config.capture_content = self.capture_content;
        if let Some(var) = agent.api_key_env.as_deref().or(default_key) {
            let key = match self.keys.get(var) {
                Some(k) => k.clone(),
                None => ApiKey::from_env(var)?,
            };
            config = config.api_key(key);
        }
        Ok(config)
    }

    fn wrap<P: Provider>(&self, p: P) -> DynProvider {
        Arc::new(Retrying::new(
            Instrumented::new(p, self.capture_content),
            self.retry,
        ))
    }
}

impl ProviderFactory for Registry {
    fn build(&self, agent: &AgentConfig) -> Result<DynProvider> {
        let kind = agent.provider.as_str();
        #[cfg(feature = "openai")]
        {
            use crate::openai::{DEFAULT_BASE_URL, OpenAiProvider};
            let known = match kind {
                "openai" => Some((Some(DEFAULT_BASE_URL), Some("OPENAI_API_KEY"))),
                "openai-compatible" => Some((None, None)),
                "ollama" => Some((Some("http://localhost:11434/v1"), None)),
                "vllm" => Some((Some("http://localhost:8000/v1"), None)),
                "llamacpp" => Some((Some("http://localhost:8080/v1"), None)),
                "litellm" => Some((Some("http://localhost:4000/v1"), Some("LITELLM_API_KEY"))),
                _ => None,
            };
            if let Some((url, key)) = known {
                let config = self.config(agent, url, key)?;
                return Ok(self.wrap(OpenAiProvider::new(config)));
            }
        }
        #[cfg(feature = "anthropic")]
        if kind == "anthropic" {
            use crate::anthropic::{AnthropicProvider, DEFAULT_BASE_URL};
            let config = self.config(agent, Some(DEFAULT_BASE_URL), Some("ANTHROPIC_API_KEY"))?;
            return Ok(self.wrap(AnthropicProvider::new(config)));
        }
        #[cfg(feature = "gemini")]
        if kind == "gemini" {
            use crate::gemini::{DEFAULT_BASE_URL, GeminiProvider};
            let config = self.config(agent, Some(DEFAULT_BASE_URL), Some("GEMINI_API_KEY"))?;
            return Ok(self.wrap(GeminiProvider::new(config)));
        }
        Err(Error::invalid_input(format!(
            "unknown provider {kind:?}: this registry knows {} (features permitting); \
             or register a provider by that name with EngineBuilder::provider",
            KNOWN_PROVIDERS.join(", ")
        )))
    }
}
