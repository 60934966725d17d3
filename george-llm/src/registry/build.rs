//! [`Registry`] as a [`ProviderFactory`]: the spec-versus-profile rules, reading the
//! profile's key, and building the adapter.

use std::sync::Arc;

use george_core::model::AgentConfig;
use george_core::provider::{DynProvider, Provider, ProviderFactory};
use george_core::secret::KnownSecrets;
use george_core::{Error, ErrorKind, Result};

use super::gate::{ModelGate, resolve_model};
use super::profile::{KeySource, ProviderKind, ProviderProfile};
use super::{Registry, Transports};
use crate::config::{ApiKey, ProviderConfig};
use crate::guard;
use crate::instrument::Instrumented;
use crate::retry::Retrying;
use crate::transport::HttpTransport;

/// The rule every refusal message ends with.
const RULE: &str = "a committed agent spec chooses one of the operator's provider profiles \
                    (and a model); endpoints and keys are the profile's";

impl Registry {
    /// The profile `agent` chooses, once its `base_url`, `api_key_env` and `model`
    /// are checked against it.
    fn choose(&self, agent: &AgentConfig) -> Result<&ProviderProfile> {
        let Some(profile) = self.profiles.get(&agent.provider) else {
            let names: Vec<&str> = self.profiles.keys().map(String::as_str).collect();
            let names = if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            };
            return Err(Error::invalid_input(format!(
                "no provider profile named {:?} (the operator's profiles: {names}); {RULE}; \
                 or register a provider by that name with EngineBuilder::provider",
                agent.provider
            )));
        };
        let name = &profile.name;
        if let Some(url) = agent.base_url.as_deref() {
            let same = match (
                guard::normalize_url(url),
                guard::normalize_url(&profile.base_url),
            ) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            };
            if !same {
                return Err(refused(format!(
                    "the agent spec's base_url {url:?} is not the base_url of provider profile \
                     {name:?} ({}); {RULE}: omit base_url, or ask the operator for a profile",
                    profile.base_url
                )));
            }
        }
        if let Some(var) = agent.api_key_env.as_deref() {
            let allowed = match &profile.key {
                KeySource::Env(v) => v == var,
                _ => false,
            };
            if !allowed {
                let reads = match &profile.key {
                    KeySource::Env(v) => format!("reads its key from {v}"),
                    KeySource::Value(_) => "has its key from the operator".to_string(),
                    _ => "uses no key".to_string(),
                };
                return Err(refused(format!(
                    "the agent spec's api_key_env {var:?} is not the key variable of provider \
                     profile {name:?}, which {reads}; {RULE}: omit api_key_env, or ask the \
                     operator for a profile"
                )));
            }
        }
        resolve_model(profile, &agent.model)?;
        Ok(profile)
    }

    /// The profile's key (registered as a known secret), if it has one.
    fn read_key(&self, profile: &ProviderProfile) -> Result<Option<ApiKey>> {
        let key = match &profile.key {
            KeySource::Env(var) => match self.keys.get(var) {
                Some(k) => k.clone(),
                None => ApiKey::from_env(var)?,
            },
            KeySource::Value(k) => k.clone(),
            _ => return Ok(None),
        };
        KnownSecrets::global().add(key.expose());
        Ok(Some(key))
    }

    /// The transport for `profile`.
    fn transport(&self, profile: &ProviderProfile) -> Result<Arc<dyn HttpTransport>> {
        match &self.transports {
            #[cfg(feature = "reqwest")]
            Transports::Default {
                guarded,
                open,
                connect_timeout,
            } => {
                if !profile.allow_link_local {
                    return Ok(guarded.clone());
                }
                if let Some(t) = open.get() {
                    return Ok(t.clone());
                }
                let t = crate::transport::ReqwestTransport::allowing_link_local(*connect_timeout)?;
                Ok(open.get_or_init(|| Arc::new(t)).clone())
            }
            Transports::Custom(t) => {
                // One transport for every profile (the URL was checked already).
                let _ = profile;
                Ok(t.clone())
            }
        }
    }

    fn wrap<P: Provider>(&self, p: P) -> DynProvider {
        Arc::new(Retrying::new(
            Instrumented::new(p, self.capture_content),
            self.retry,
        ))
    }
}

impl ProviderFactory for Registry {
    /// Builds the provider `agent` chooses; see the [rules](super#who-decides-what).
    ///
    /// # Errors
    /// `InvalidInput` for an unknown profile, a missing model or a profile whose
    /// protocol is not compiled in; `PermissionDenied` when the spec's `base_url`,
    /// `api_key_env` or `model` is not the profile's, or the profile's URL is a
    /// link-local address it does not allow; `Unauthenticated` when the profile's key
    /// variable is unset. Nothing is read or sent before the checks pass.
    fn build(&self, agent: &AgentConfig) -> Result<DynProvider> {
        let profile = self.choose(agent)?;
        guard::check_url(&profile.base_url, profile.allow_link_local).map_err(|e| {
            Error::new(
                e.kind(),
                format!("provider profile {:?}: {}", profile.name, e.message()),
            )
        })?;
        let mut config = ProviderConfig::new(profile.base_url.trim(), self.transport(profile)?)
            .stream(self.stream)
            .timeout(self.timeout)
            .prices(self.prices.clone());
        config.capture_content = self.capture_content;
        if let Some(n) = self.max_response_bytes {
            config.max_response_bytes = n;
        }
        if let Some(n) = self.max_stream_bytes {
            config.max_stream_bytes = n;
        }
        if let Some(key) = self.read_key(profile)? {
            config = config.api_key(key);
        }
        let inner = match profile.kind {
            #[cfg(feature = "openai")]
            ProviderKind::OpenAi => self.wrap(crate::openai::OpenAiProvider::new(config)),
            #[cfg(feature = "anthropic")]
            ProviderKind::Anthropic => self.wrap(crate::anthropic::AnthropicProvider::new(config)),
            #[cfg(feature = "gemini")]
            ProviderKind::Gemini => self.wrap(crate::gemini::GeminiProvider::new(config)),
            #[allow(unreachable_patterns)]
            kind => {
                return Err(Error::invalid_input(format!(
                    "provider profile {:?} speaks {}, which this build of george-llm leaves \
                     out (feature `{}`)",
                    profile.name,
                    kind.as_str(),
                    kind.as_str()
                )));
            }
        };
        Ok(Arc::new(ModelGate::new(profile, inner)))
    }
}

fn refused(message: String) -> Error {
    Error::new(ErrorKind::PermissionDenied, message)
}
