//! What every handler shares: the engine, the authentication settings, the live-update
//! hub and the OpenAPI document.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use george_core::engine::Engine;

use crate::auth::AuthConfig;
use crate::live::Hub;

/// The router's state (cheap to clone).
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub(crate) engine: Engine,
    pub(crate) auth: Arc<AuthConfig>,
    pub(crate) hub: Arc<Hub>,
    /// The OpenAPI document as served, set once the router is built.
    pub(crate) doc: Arc<OnceLock<String>>,
    /// The dashboard's sessions and keys.
    #[cfg(feature = "dashboard")]
    pub(crate) ui: Arc<crate::dashboard::Ui>,
    /// The engine's Git source, when shared (manifest text for the dashboard).
    #[cfg(feature = "dashboard")]
    pub(crate) source: Option<Arc<dyn george_core::git::GitSource>>,
}

impl AppState {
    /// The agents of each template's steps at the current commit, by template name.
    pub(crate) fn agents_by_template(&self) -> BTreeMap<String, Vec<String>> {
        self.engine
            .catalogue()
            .templates
            .iter()
            .map(|t| {
                let agents: BTreeSet<String> = t
                    .value
                    .spec
                    .steps
                    .iter()
                    .filter_map(|s| s.agent.clone())
                    .collect();
                (t.value.metadata.name.clone(), agents.into_iter().collect())
            })
            .collect()
    }

    /// The agent of each step of `template` at the current commit, by step id.
    pub(crate) fn step_agents(&self, template: &str) -> BTreeMap<String, String> {
        self.engine
            .catalogue()
            .templates
            .iter()
            .find(|t| t.value.metadata.name == template)
            .map(|t| {
                t.value
                    .spec
                    .steps
                    .iter()
                    .filter_map(|s| Some((s.id.clone(), s.agent.clone()?)))
                    .collect()
            })
            .unwrap_or_default()
    }
}
