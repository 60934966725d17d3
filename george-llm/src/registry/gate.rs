//! [`ModelGate`]: a profile's model rules, applied to every request.
//!
//! The engine keeps a built provider per (`provider`, `base_url`, `api_key_env`) and
//! sends each agent's model in its requests, so two agents sharing a profile share
//! the provider: the model rules are checked per request, not only when building.

use async_trait::async_trait;
use george_core::provider::{ChatRequest, ChatResponse, DynProvider, Provider};
use george_core::{Error, ErrorKind, Result};

use super::profile::ProviderProfile;

/// Fills in the profile's default model for a request with an empty one, and refuses
/// a model outside the profile's `models` before anything is sent.
#[derive(Debug)]
pub(crate) struct ModelGate {
    inner: DynProvider,
    profile: ProviderProfile,
}

impl ModelGate {
    pub(crate) fn new(profile: &ProviderProfile, inner: DynProvider) -> Self {
        ModelGate {
            inner,
            profile: profile.clone(),
        }
    }
}

/// The model to send for `model` under `profile` (its default when `model` is
/// empty), or the refusal: `InvalidInput` when there is no model at all,
/// `PermissionDenied` naming the allowed models.
pub(crate) fn resolve_model(profile: &ProviderProfile, model: &str) -> Result<String> {
    let model = match (model.trim(), &profile.default_model) {
        ("", Some(d)) => d.clone(),
        ("", None) => {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the agent spec names no model and provider profile {:?} has no \
                     default_model",
                    profile.name
                ),
            ));
        }
        (m, _) => m.to_string(),
    };
    if !profile.allows_model(&model) {
        let allowed = profile.models.as_deref().unwrap_or_default().join(", ");
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "model {model:?} is not allowed by provider profile {:?}, which allows: \
                 {allowed}; a committed agent spec chooses among the operator's models",
                profile.name
            ),
        ));
    }
    Ok(model)
}

#[async_trait]
impl Provider for ModelGate {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn complete(&self, mut request: ChatRequest) -> Result<ChatResponse> {
        request.model = resolve_model(&self.profile, &request.model)?.into();
        self.inner.complete(request).await
    }
}
