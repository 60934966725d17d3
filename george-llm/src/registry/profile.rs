//! [`ProviderProfile`]: one endpoint and key the operator allows agents to use.

use crate::config::ApiKey;

/// A wire protocol a profile speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProviderKind {
    /// OpenAI chat completions, and the servers that speak it (Ollama, vLLM,
    /// llama.cpp server, LiteLLM, …): [`crate::openai`], feature `openai`.
    OpenAi,
    /// Anthropic Messages: [`crate::anthropic`], feature `anthropic`.
    Anthropic,
    /// Google Gemini `generateContent`: [`crate::gemini`], feature `gemini`.
    Gemini,
}

impl ProviderKind {
    /// Every kind, in the order of [`ProviderKind::as_str`]'s names.
    pub const ALL: &[ProviderKind] = &[
        ProviderKind::OpenAi,
        ProviderKind::Anthropic,
        ProviderKind::Gemini,
    ];

    /// The name in a profiles file: `openai`, `anthropic` or `gemini`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Gemini => "gemini",
        }
    }

    /// The kind named `name` ([`ProviderKind::as_str`]), if any.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.as_str() == name)
    }
}

/// Where a profile's API key comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum KeySource {
    /// No key (a local server).
    #[default]
    None,
    /// The environment variable of this name, read when a provider is built (unless
    /// [`Registry::key`](super::Registry::key) supplies that variable's key).
    Env(String),
    /// This key (from a secret manager, or tests).
    Value(ApiKey),
}

/// A provider the operator allows: a name agent specs choose it by, its wire
/// protocol, its base URL and key, and the models it may be asked for.
///
/// Agent specs come from a repository many people can commit to; profiles come from
/// the operator (code or a file beside the engine, [`ProviderProfile::load_file`]).
/// A spec's `provider` names a profile; its `base_url` and `api_key_env`, when given,
/// must be the profile's own ([`Registry`](super::Registry) explains the rules).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProviderProfile {
    /// What agent specs name in `provider:`.
    pub name: String,
    /// The wire protocol.
    pub kind: ProviderKind,
    /// The API's base URL (e.g. `https://api.openai.com/v1`).
    pub base_url: String,
    /// Where the key comes from.
    pub key: KeySource,
    /// The model used when a spec's `model` is empty.
    pub default_model: Option<String>,
    /// The models specs may ask for; `None` allows any.
    pub models: Option<Vec<String>>,
    /// Whether `base_url` may be a link-local or cloud metadata address
    /// ([`crate::guard`]); `false` by default.
    pub allow_link_local: bool,
}

impl ProviderProfile {
    /// A profile named `name` speaking `kind` at `base_url`, with no key, no default
    /// model, any model allowed, link-local addresses refused.
    pub fn new(name: impl Into<String>, kind: ProviderKind, base_url: impl Into<String>) -> Self {
        ProviderProfile {
            name: name.into(),
            kind,
            base_url: base_url.into(),
            key: KeySource::None,
            default_model: None,
            models: None,
            allow_link_local: false,
        }
    }

    /// Reads the key from the environment variable `var`.
    pub fn key_env(mut self, var: impl Into<String>) -> Self {
        self.key = KeySource::Env(var.into());
        self
    }

    /// Uses `key`.
    pub fn key(mut self, key: ApiKey) -> Self {
        self.key = KeySource::Value(key);
        self
    }

    /// Sets the model used when a spec's `model` is empty.
    pub fn default_model(mut self, model: impl Into<String>) -> Self {
        self.default_model = Some(model.into());
        self
    }

    /// Allows only these models.
    pub fn models<I, S>(mut self, models: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.models = Some(models.into_iter().map(Into::into).collect());
        self
    }

    /// Allows (or not) a link-local or metadata `base_url`.
    pub fn allow_link_local(mut self, allow: bool) -> Self {
        self.allow_link_local = allow;
        self
    }

    /// Whether `model` is allowed.
    pub fn allows_model(&self, model: &str) -> bool {
        self.models
            .as_ref()
            .is_none_or(|m| m.iter().any(|x| x == model))
    }

    /// The profiles of [`Registry::new`](super::Registry::new), one per
    /// [`KNOWN_PROVIDERS`] row: the public endpoints and the usual local servers'
    /// default addresses, each with its usual key variable.
    pub fn builtin() -> Vec<ProviderProfile> {
        BUILTIN
            .iter()
            .map(|(name, kind, url, key)| {
                let p = ProviderProfile::new(*name, *kind, *url);
                match key {
                    Some(var) => p.key_env(*var),
                    None => p,
                }
            })
            .collect()
    }
}

/// The built-in profiles: (name, kind, base URL, key variable).
const BUILTIN: &[(&str, ProviderKind, &str, Option<&str>)] = &[
    (
        "openai",
        ProviderKind::OpenAi,
        "https://api.openai.com/v1",
        Some("OPENAI_API_KEY"),
    ),
    (
        "ollama",
        ProviderKind::OpenAi,
        "http://localhost:11434/v1",
        None,
    ),
    (
        "vllm",
        ProviderKind::OpenAi,
        "http://localhost:8000/v1",
        None,
    ),
    (
        "llamacpp",
        ProviderKind::OpenAi,
        "http://localhost:8080/v1",
        None,
    ),
    (
        "litellm",
        ProviderKind::OpenAi,
        "http://localhost:4000/v1",
        Some("LITELLM_API_KEY"),
    ),
    (
        "anthropic",
        ProviderKind::Anthropic,
        "https://api.anthropic.com",
        Some("ANTHROPIC_API_KEY"),
    ),
    (
        "gemini",
        ProviderKind::Gemini,
        "https://generativelanguage.googleapis.com/v1beta",
        Some("GEMINI_API_KEY"),
    ),
];

/// The built-in profiles of [`Registry::new`](super::Registry::new), by name:
///
/// | profile | protocol | base URL | key variable |
/// |---|---|---|---|
/// | `openai` | OpenAI chat completions | `https://api.openai.com/v1` | `OPENAI_API_KEY` |
/// | `ollama` | the same | `http://localhost:11434/v1` | none |
/// | `vllm` | the same | `http://localhost:8000/v1` | none |
/// | `llamacpp` | the same | `http://localhost:8080/v1` | none |
/// | `litellm` | the same | `http://localhost:4000/v1` | `LITELLM_API_KEY` |
/// | `anthropic` | Anthropic Messages | `https://api.anthropic.com` | `ANTHROPIC_API_KEY` |
/// | `gemini` | Google Gemini | `https://generativelanguage.googleapis.com/v1beta` | `GEMINI_API_KEY` |
///
/// Any other endpoint (a server on another host, `openai-compatible` proxies) needs
/// an operator's profile: [`Registry::profile`](super::Registry::profile) or a
/// profiles file.
pub const KNOWN_PROVIDERS: &[&str] = &[
    "openai",
    "ollama",
    "vllm",
    "llamacpp",
    "litellm",
    "anthropic",
    "gemini",
];
