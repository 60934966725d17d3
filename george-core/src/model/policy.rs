//! `kind: Policy` — rules that let plans be approved, refused or sent to a human without
//! anyone reading them. Lives under `policies/`.
//!
//! ```yaml
//! apiVersion: george.dev/v1alpha1
//! kind: Policy
//! metadata: {name: staging-ops}
//! spec:
//!   description: Scaling in staging needs nobody; deleting needs a change request.
//!   applies_to: {agents: [sysadmin], templates: [fix-service], steps: [fix]}
//!   rules:
//!     - name: scale-staging
//!       effect: allow
//!       tool: k8s_scale
//!       target: {namespace: staging}
//!       arguments:
//!         namespace: {equals: staging}
//!         replicas: {max: 5}
//!     - {name: anything-in-prod, effect: ask, target: {namespace: prod}}
//!     - {name: no-deletes, effect: deny, tool: "k8s_delete*"}
//! ```
//!
//! What a verdict is made of (deny wins over ask wins over allow; no matching rule sends
//! the plan to a human) is [`crate::policy`]'s business; this module is the manifest.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ObjectMeta;

/// `kind: Policy` — which plans may be approved (or refused) without a human. Lives
/// under `policies/`; evaluated by [`crate::policy::evaluate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Policy {
    /// Always [`API_VERSION`](super::API_VERSION).
    pub api_version: String,
    /// Always `Policy`.
    pub kind: String,
    /// Name and labels. The name is what a decision records: `policy:<name>`.
    pub metadata: ObjectMeta,
    /// Scope and rules.
    pub spec: PolicySpec,
}

/// The `spec` of a [`Policy`]: `{description?, applies_to?, rules: [PolicyRule, …]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// What the policy is for, for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Which plans the policy speaks about. Absent: every plan.
    #[serde(default, skip_serializing_if = "AppliesTo::is_any")]
    pub applies_to: AppliesTo,
    /// The rules, at least one, in the order they are reported.
    pub rules: Vec<PolicyRule>,
}

/// The plans a [`Policy`] speaks about: `{agents?: [..], templates?: [..], steps?: [..]}`.
/// Each list narrows (a plan must match every list given); an absent list matches
/// anything. An empty list is refused by validation: it would match nothing.
///
/// `steps` are step ids, matched in any template unless `templates` narrows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AppliesTo {
    /// `AgentSpec` names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agents: Option<Vec<String>>,
    /// `TaskTemplate` names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub templates: Option<Vec<String>>,
    /// Step ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<String>>,
}

impl AppliesTo {
    /// Whether no list is given (the policy applies to every plan).
    pub fn is_any(&self) -> bool {
        self.agents.is_none() && self.templates.is_none() && self.steps.is_none()
    }
}

/// One rule: `{name, effect, tool?, target?, arguments?}`. It matches a planned action
/// when every part given matches: the tool name, each key of the job's target, and each
/// argument condition.
///
/// ```yaml
/// name: scale-staging          # unique in the policy
/// effect: allow                # allow | ask | deny
/// tool: "k8s_*"                # exact name, or a glob where `*` is any run of characters
/// target: {namespace: staging} # the job's target: every key given, with exactly this value
/// arguments:                   # top-level keys of the tool call's arguments
///   replicas: {max: 5}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyRule {
    /// The rule's name, unique within the policy; recorded with a decision it made.
    pub name: String,
    /// What a match means.
    pub effect: Effect,
    /// The tool: an exact name, or a glob where `*` stands for any run of characters
    /// (`k8s_*`, `*_delete`). Absent: any tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// Keys the job's target must have, each with exactly this value. Absent: any
    /// target (including none).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub target: BTreeMap<String, String>,
    /// One condition per top-level key of the action's arguments (a JSON object); all
    /// must hold. Absent: any arguments.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub arguments: BTreeMap<String, ArgumentCondition>,
}

/// What a matching [`PolicyRule`] does. Over one plan, `deny` wins over `ask`, which
/// wins over `allow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// The action may run without a human (the plan is approved when every action is).
    Allow,
    /// A human decides, whatever other rules allow.
    Ask,
    /// The plan is refused, whatever other rules say.
    Deny,
}

impl Effect {
    /// The YAML spelling: `allow`, `ask`, `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::Ask => "ask",
            Effect::Deny => "deny",
        }
    }
}

/// A condition on one argument: `{equals?, one_of?, min?, max?, matches?, absent?}`;
/// every part given must hold (at least one must be given).
///
/// - `equals: v` / `one_of: [v, …]`: scalars (string, number, boolean). Strings compare
///   exactly; numbers compare as numbers, and an argument that is a numeric string
///   (`"5"`) equals the number `5`; booleans compare exactly.
/// - `min` / `max`: inclusive bounds on a number, or on a string that parses as one
///   (`"3"`, `"2.5"`).
/// - `matches`: a regular expression (the `regex` crate's syntax) the whole value must
///   match; numbers and booleans are matched as their JSON text.
/// - `absent: true`: the argument must not be there (alone: no other part may be
///   given); `absent: false`: it must be there, with any value.
///
/// A missing argument fails every part but `absent: true`. An argument whose value is
/// an array or an object (nested values) fails every part but `absent: false`: rules
/// speak about scalars.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArgumentCondition {
    /// The value the argument must equal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<serde_json::Value>,
    /// The values the argument may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_of: Option<Vec<serde_json::Value>>,
    /// The smallest allowed number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// The largest allowed number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// A regular expression the whole value must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<String>,
    /// `true`: the argument must be absent; `false`: it must be present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub absent: Option<bool>,
}
