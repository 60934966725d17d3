//! The desired-state documents: [`AgentSpec`], [`TaskTemplate`], [`Job`] and [`Policy`], as
//! Kubernetes-style manifests (`apiVersion`, `kind`, `metadata.name`, `spec`).
//!
//! Field names are `snake_case` in YAML (`depends_on`, `system_prompt`). Every type
//! derives [`schemars::JsonSchema`]; [`crate::manifest::json_schema`] exports the schema
//! of each kind for editors and CI.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::params::Params;

mod policy;

pub use policy::{AppliesTo, ArgumentCondition, Effect, Policy, PolicyRule, PolicySpec};

/// The `apiVersion` every George manifest carries.
pub const API_VERSION: &str = "george.dev/v1alpha1";

/// The annotation a source that versions its own objects puts on a manifest it renders:
/// the object's generation there (a Kubernetes CR's `metadata.generation`, in decimal).
/// A Job's generation in George follows it (see
/// [`JobDefinition::source_generation`](crate::reconcile::JobDefinition::source_generation)).
pub const SOURCE_GENERATION_ANNOTATION: &str = "george.dev/source-generation";

/// `metadata` of a manifest. `name` is the key of the object within its kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectMeta {
    /// The object's name: unique within its kind, `[a-z0-9]([-a-z0-9.]*[a-z0-9])?`.
    pub name: String,
    /// Free-form labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Free-form annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl ObjectMeta {
    /// The value of [`SOURCE_GENERATION_ANNOTATION`] when it is a decimal number.
    pub fn source_generation(&self) -> Option<u64> {
        self.annotations
            .get(SOURCE_GENERATION_ANNOTATION)
            .and_then(|g| g.trim().parse().ok())
    }
}

/// `kind: AgentSpec` — an agent: its provider and model, its static system prompt,
/// the tools it may call, and its limits. Lives under `agent-specs/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AgentSpec {
    /// Always [`API_VERSION`].
    pub api_version: String,
    /// Always `AgentSpec`.
    pub kind: String,
    /// Name and labels.
    pub metadata: ObjectMeta,
    /// The agent itself.
    pub spec: AgentConfig,
}

/// The `spec` of an [`AgentSpec`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The provider: the name of one registered with the engine
    /// (`EngineBuilder::provider`), or, with a provider factory such as
    /// `george_llm::Registry`, the name of a provider profile the operator allows
    /// (`openai`, `anthropic`, `ollama`, … or the operator's own). `"default"` when
    /// omitted.
    #[serde(default = "default_provider")]
    pub provider: String,
    /// Model identifier passed to the provider (e.g. `gpt-4.1`, `claude-sonnet-4-5`).
    // Shared (`Arc`) with every model request of the agent's attempts.
    pub model: std::sync::Arc<str>,
    /// The provider's base URL. It never chooses an endpoint: with
    /// `george_llm::Registry` it may only restate the chosen profile's URL (anything
    /// else blocks the step); the operator's profile decides where calls go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The *name* of the environment variable that holds the API key (e.g.
    /// `ANTHROPIC_API_KEY`) — never the key itself, which must not be in Git. Like
    /// `base_url`, it may only restate the chosen profile's variable: a spec cannot make
    /// the engine read any other variable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// The static system prompt (cacheable: it never contains per-step data).
    // Shared (`Arc`) with every model request of the agent's attempts: a long prompt is
    // not copied per turn.
    pub system_prompt: std::sync::Arc<str>,
    /// Names of the tools this agent may call (its capabilities). A tool call to any
    /// other tool is refused with an error result.
    #[serde(default)]
    pub tools: Vec<String>,
    /// Maximum model calls in one step attempt (the tool-loop iteration limit). Absent:
    /// the engine's default (`AgentLimits::default_iterations`, 10). Never more than the
    /// engine's ceiling (`AgentLimits::max_iterations`, 100): a spec may narrow the
    /// operator's limit, not widen it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_iterations: Option<u32>,
    /// Maximum output tokens per model call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Token budget (input + output tokens) for one step attempt; exceeding it fails the attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_budget: Option<u64>,
    /// Sampling temperature, when the provider supports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// How much the agent may do without a human.
    #[serde(default)]
    pub autonomy: Autonomy,
    /// Maximum step attempts of this agent running at once in one engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
    /// Whether this agent's `report_success` may name other jobs in `resolves`: jobs
    /// on the same [target](JobSpec::target) that its success makes moot (the
    /// infrastructure event a feature delivery fixed). Default `false`. This is the
    /// policy that allows it today; a `Policy` kind may later gate it further.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub may_resolve: bool,
    /// The task templates this agent may order child jobs of with the `order_job` tool (sub-jobs); empty by default, and then the tool is not offered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub may_order: Vec<String>,
}

fn default_provider() -> String {
    "default".to_string()
}

/// An autonomy level, of an agent, a template or a step: `manual`, `supervised` (the
/// default) or `autonomous`.
///
/// Levels are ordered from the most to the least restrictive,
/// `Manual < Supervised < Autonomous` ([`rank`](Self::rank); `Ord` follows it): the
/// level a plan runs at is the lowest of those declared, capped by the operator's
/// ceiling ([`crate::policy::effective_autonomy`]).
///
/// ```
/// use george_core::model::Autonomy;
/// assert!(Autonomy::Manual < Autonomy::Supervised);
/// assert!(Autonomy::Supervised < Autonomy::Autonomous);
/// assert_eq!(Autonomy::Autonomous.min(Autonomy::Manual), Autonomy::Manual);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Autonomy {
    /// Steps whose `approval` is required wait for a human, unless a `Policy`
    /// auto-approves their plan (the default).
    #[default]
    Supervised,
    /// Every plan waits for a human, whatever the step or any policy says.
    Manual,
    /// A step whose approval is required does not plan: its agent uses its write tools
    /// itself, within its budgets ([`crate::policy::plans`]). Only under an operator
    /// ceiling of `autonomous` (`EngineConfig::autonomy_ceiling`).
    Autonomous,
}

impl Autonomy {
    /// The level's place in `manual` (0) < `supervised` (1) < `autonomous` (2).
    pub fn rank(self) -> u8 {
        match self {
            Autonomy::Manual => 0,
            Autonomy::Supervised => 1,
            Autonomy::Autonomous => 2,
        }
    }

    /// The YAML spelling: `manual`, `supervised`, `autonomous`.
    pub fn as_str(self) -> &'static str {
        match self {
            Autonomy::Manual => "manual",
            Autonomy::Supervised => "supervised",
            Autonomy::Autonomous => "autonomous",
        }
    }
}

impl PartialOrd for Autonomy {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Autonomy {
    /// By [`rank`](Self::rank): `Manual < Supervised < Autonomous`.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rank().cmp(&other.rank())
    }
}

/// `kind: TaskTemplate` — parameters and steps. Lives under `task-templates/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TaskTemplate {
    /// Always [`API_VERSION`].
    pub api_version: String,
    /// Always `TaskTemplate`.
    pub kind: String,
    /// Name and labels.
    pub metadata: ObjectMeta,
    /// Parameters and steps.
    pub spec: TemplateSpec,
}

/// The `spec` of a [`TaskTemplate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateSpec {
    /// What the template does, for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The parameters a job supplies.
    #[serde(default)]
    pub parameters: Vec<ParameterSpec>,
    /// The autonomy of every step of this template: a plan runs at the lowest of its
    /// agent's, its template's and its step's levels (absent ones ignored), capped by
    /// the operator's ceiling. Absent: no restriction from the template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autonomy: Option<Autonomy>,
    /// The default [target](JobSpec::target) of this template's jobs: a job's own
    /// `target` keys override these, key by key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub target: BTreeMap<String, String>,
    /// The concurrency of this template's write steps (`execute_approved`) that do not
    /// declare their own (see [`StepSpec::concurrency`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<Concurrency>,
    /// The steps, in any order: `depends_on` fixes the order.
    pub steps: Vec<StepSpec>,
}

impl TemplateSpec {
    /// The concurrency limit `step` counts against: its own declaration, else the
    /// template's when the step is a write step (`execute_approved`); `None`: the step
    /// is not limited.
    pub fn concurrency_of<'a>(&'a self, step: &'a StepSpec) -> Option<&'a Concurrency> {
        step.concurrency.as_ref().or_else(|| {
            step.execute_approved
                .as_ref()
                .and(self.concurrency.as_ref())
        })
    }
}

/// A concurrency limit shared by steps of many jobs, as Argo's mutexes and semaphores:
/// at most `limit` such steps run at once per value of `key` in one engine.
///
/// ```yaml
/// concurrency: {key: target, limit: 1}   # one write step at a time per target
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Concurrency {
    /// What the steps are grouped by.
    pub key: ConcurrencyKey,
    /// How many of a group's steps may run at once (at least 1; default 1).
    #[serde(default = "default_concurrency_limit")]
    pub limit: u32,
}

fn default_concurrency_limit() -> u32 {
    1
}

/// What a [`Concurrency`] limit groups steps by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConcurrencyKey {
    /// The job's [target](JobSpec::target) (its [`target_key`]); a job without a
    /// target is not limited.
    Target,
}

/// One parameter of a template. Strict parameters (every type but `fuzzy`) are typed and
/// validated; `fuzzy` parameters are free text handed to the agent as they are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParameterSpec {
    /// The name, used as `params.<name>` in instructions.
    pub name: String,
    /// The type.
    #[serde(rename = "type", default)]
    pub kind: ParamType,
    /// What it means, for humans and agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The value when the job gives none. A parameter with no default is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
    /// For `type: enum`: the allowed values.
    #[serde(default, rename = "enum", skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// For `type: string`: a regular expression the whole value must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// For `integer` / `number`: the smallest allowed value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<f64>,
    /// For `integer` / `number`: the largest allowed value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<f64>,
}

/// The type of a [`ParameterSpec`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ParamType {
    /// A string, optionally matching `pattern`.
    #[default]
    String,
    /// A whole number.
    Integer,
    /// Any number.
    Number,
    /// `true` / `false`.
    Boolean,
    /// One of `enum`.
    Enum,
    /// Free text, not validated: handed to the agent as it is.
    Fuzzy,
}

/// One step of a template. Exactly one of `instructions` (an agent step),
/// `command` (a step that needs no model) or `execute_approved` (runs the actions a
/// human approved in an earlier step) is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// The step's id, unique within the template.
    pub id: String,
    /// What the step is for, for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The agent that runs the step (an `AgentSpec` name). Required with `instructions`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// A minijinja template over `params` and `steps.<id>.outputs`; undefined variables
    /// are errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// Tools the step needs: an agent lacking one of them makes the step `Blocked`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
    /// A program to run instead of a model: its exit code (and `done_when`) decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandSpec>,
    /// The id of an earlier step whose human-approved actions this step executes, exactly
    /// as approved, without a model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execute_approved: Option<String>,
    /// Ids of steps that must succeed before this one starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// A mechanical completion check for command steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_when: Option<DoneWhen>,
    /// Whether the step's plan needs a human's approval.
    #[serde(default)]
    pub approval: ApprovalRule,
    /// Attempts and backoff.
    #[serde(default)]
    pub retry: RetryPolicy,
    /// Limit for one attempt, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Tokens and cost this step may use over all its attempts; reaching it stops the
    /// tool loop and fails the step (not retried).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
    /// This step's autonomy (see [`TemplateSpec::autonomy`]). Absent: no restriction
    /// from the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autonomy: Option<Autonomy>,
    /// A concurrency limit shared with other jobs' steps (`{key: target, limit: 1}`:
    /// one such step at a time on the job's target). Declaring it makes the step count
    /// against the limit; so does every `execute_approved` step of a template that
    /// declares one (its writes are what the limit is for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<Concurrency>,
}

/// A spending limit: tokens (all input and output tokens, cached or not) and/or cost
/// in US dollars. Either may be omitted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Maximum tokens ([`Usage::total`](crate::provider::Usage::total)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Maximum cost, in US dollars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost_usd: Option<f64>,
}

impl Budget {
    /// Why `used` exceeds this budget, or `None` while it fits.
    pub fn exceeded_by(&self, used: &crate::provider::Usage) -> Option<String> {
        if let Some(max) = self.max_tokens
            && used.total() > max
        {
            return Some(format!("{} tokens used, budget {max}", used.total()));
        }
        if let Some(max) = self.max_cost_usd
            && used.cost_usd > max
        {
            return Some(format!("${:.4} spent, budget ${max:.4}", used.cost_usd));
        }
        None
    }
}

/// A program run by a command step: `args` are minijinja templates, passed as an
/// array — never through a shell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandSpec {
    /// The program; must be on the command executor's allowlist.
    pub program: String,
    /// Its arguments (each a template).
    #[serde(default)]
    pub args: Vec<String>,
}

/// A mechanical check that decides whether a command step is done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DoneWhen {
    /// Exit code that means done (default 0).
    #[serde(default)]
    pub exit_code: i32,
    /// A regular expression that standard output must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_matches: Option<String>,
    /// When the check does not hold yet: defer the step by this many milliseconds and
    /// check again (instead of failing), at most `retry.attempts` times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defer_ms: Option<u64>,
}

/// Whether a step's plan needs a human, and which humans may decide.
///
/// Two spellings in YAML: `approval: none` / `approval: required`, or a map
/// `approval: {required: true, approvers: [user:alice, group:sre], min_approvals: 2,
/// forbid_self_approval: true}`.
///
/// - `approvers`: `user:<id>` or `group:<name>` entries; an
///   [`Approver`](crate::approval::Approver) matching any of them may decide. Empty: any
///   authenticated approver may.
/// - `min_approvals`: distinct approvers needed before the plan counts as approved (the
///   two-person rule with 2). One rejection rejects. Default 1.
/// - `forbid_self_approval`: the author of the commit the job's generation was built
///   from may not approve it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(into = "ApprovalRuleRepr")]
pub struct ApprovalRule {
    /// The agent must submit a plan, and the step waits for a human's decision.
    pub required: bool,
    /// Who may decide (`user:<id>`, `group:<name>`); empty: anyone authenticated.
    pub approvers: Vec<String>,
    /// Distinct approvals needed (≥ 1).
    pub min_approvals: u32,
    /// The author of the job's commit may not approve.
    pub forbid_self_approval: bool,
}

impl Default for ApprovalRule {
    fn default() -> Self {
        ApprovalRule::none()
    }
}

impl ApprovalRule {
    /// No approval: the agent reports its outcome itself (the default).
    pub fn none() -> Self {
        ApprovalRule {
            required: false,
            approvers: Vec::new(),
            min_approvals: 1,
            forbid_self_approval: false,
        }
    }

    /// Approval by any one authenticated approver.
    pub fn required() -> Self {
        ApprovalRule {
            required: true,
            ..ApprovalRule::none()
        }
    }

    /// Restricts who may decide (`user:<id>`, `group:<name>`).
    pub fn with_approvers<I, S>(mut self, approvers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.approvers = approvers.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the number of distinct approvals needed.
    pub fn with_min_approvals(mut self, n: u32) -> Self {
        self.min_approvals = n;
        self
    }

    /// Forbids the author of the job's commit to approve.
    pub fn with_forbid_self_approval(mut self, forbid: bool) -> Self {
        self.forbid_self_approval = forbid;
        self
    }
}

/// `none` / `required`: the short spelling of an [`ApprovalRule`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum ApprovalMode {
    None,
    Required,
}

fn default_true() -> bool {
    true
}
fn default_min_approvals() -> u32 {
    1
}

/// The map spelling of an [`ApprovalRule`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ApprovalPolicySpec {
    #[serde(default = "default_true")]
    required: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    approvers: Vec<String>,
    #[serde(default = "default_min_approvals")]
    min_approvals: u32,
    #[serde(default)]
    forbid_self_approval: bool,
}

/// The YAML forms of an [`ApprovalRule`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
enum ApprovalRuleRepr {
    Mode(ApprovalMode),
    Policy(ApprovalPolicySpec),
}

impl From<ApprovalRuleRepr> for ApprovalRule {
    fn from(r: ApprovalRuleRepr) -> Self {
        match r {
            ApprovalRuleRepr::Mode(ApprovalMode::None) => ApprovalRule::none(),
            ApprovalRuleRepr::Mode(ApprovalMode::Required) => ApprovalRule::required(),
            ApprovalRuleRepr::Policy(p) => ApprovalRule {
                required: p.required,
                approvers: p.approvers,
                min_approvals: p.min_approvals,
                forbid_self_approval: p.forbid_self_approval,
            },
        }
    }
}

impl From<ApprovalRule> for ApprovalRuleRepr {
    fn from(r: ApprovalRule) -> Self {
        if r.approvers.is_empty() && r.min_approvals == 1 && !r.forbid_self_approval {
            ApprovalRuleRepr::Mode(if r.required {
                ApprovalMode::Required
            } else {
                ApprovalMode::None
            })
        } else {
            ApprovalRuleRepr::Policy(ApprovalPolicySpec {
                required: r.required,
                approvers: r.approvers,
                min_approvals: r.min_approvals,
                forbid_self_approval: r.forbid_self_approval,
            })
        }
    }
}

impl<'de> Deserialize<'de> for ApprovalRule {
    /// `none` / `required`, or the map form; an unknown key of the map is named in the
    /// error (an untagged enum would only say that nothing matched).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct RuleVisitor;
        impl<'de> serde::de::Visitor<'de> for RuleVisitor {
            type Value = ApprovalRule;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("`none`, `required`, or a map {required, approvers, min_approvals, forbid_self_approval}")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ApprovalRule, E> {
                match v {
                    "none" => Ok(ApprovalRule::none()),
                    "required" => Ok(ApprovalRule::required()),
                    other => Err(E::unknown_variant(other, &["none", "required"])),
                }
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<ApprovalRule, A::Error> {
                let p = ApprovalPolicySpec::deserialize(
                    serde::de::value::MapAccessDeserializer::new(map),
                )?;
                Ok(ApprovalRuleRepr::Policy(p).into())
            }
        }
        d.deserialize_any(RuleVisitor)
    }
}

impl JsonSchema for ApprovalRule {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ApprovalRule".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        ApprovalRuleRepr::json_schema(generator)
    }
}

/// Retry policy of a step: at most `attempts` attempts, the n-th retry after
/// `min(backoff_ms * 2^(n-1), max_backoff_ms)` with full jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Total attempts, including the first (≥ 1).
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// First backoff, in milliseconds.
    #[serde(default = "default_backoff_ms")]
    pub backoff_ms: u64,
    /// Backoff cap, in milliseconds.
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
}

fn default_attempts() -> u32 {
    3
}
fn default_backoff_ms() -> u64 {
    1_000
}
fn default_max_backoff_ms() -> u64 {
    300_000
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: default_attempts(),
            backoff_ms: default_backoff_ms(),
            max_backoff_ms: default_max_backoff_ms(),
        }
    }
}

/// `kind: Job` — a template plus parameter values; committing it orders the work.
/// Lives under `jobs/` (any depth).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Job {
    /// Always [`API_VERSION`].
    pub api_version: String,
    /// Always `Job`.
    pub kind: String,
    /// Name and labels.
    pub metadata: ObjectMeta,
    /// Template and parameters.
    pub spec: JobSpec,
}

/// The `spec` of a [`Job`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// The `TaskTemplate` to instantiate.
    pub template: String,
    /// Parameter values by name.
    #[serde(default)]
    pub params: Params,
    /// What happens when the job's file is removed from Git.
    #[serde(default)]
    pub on_removal: RemovalPolicy,
    /// Maximum steps of this job running at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallel_steps: Option<u32>,
    /// Tokens and cost the whole job may use (all steps, all attempts); reaching it
    /// stops the running tool loop and fails that step (not retried).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
    /// What the job works on, as free string keys (`{kind: service, name:
    /// darwin-store}`); merged over the template's [`TemplateSpec::target`]. Jobs on
    /// the same target see each other (the `ops_journal` tool), may resolve each other
    /// (`report_success {resolves}`) and share [`Concurrency`] limits keyed by target.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub target: BTreeMap<String, String>,
}

/// The canonical key of a target: `k=v` pairs sorted by key, joined by `,`
/// (`kind=service,name=darwin-store`); empty for no target.
///
/// ```
/// use george_core::model::target_key;
/// let t = [("name", "darwin-store"), ("kind", "service")]
///     .into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
/// assert_eq!(target_key(&t), "kind=service,name=darwin-store");
/// ```
pub fn target_key(target: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for (k, v) in target {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// What the reconciler does with a job whose manifest was removed from Git.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RemovalPolicy {
    /// Cancel the job's unfinished steps (the default).
    #[default]
    Cancel,
    /// Keep running it to the end from its last known definition.
    Keep,
}

/// The manifest kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `AgentSpec`
    AgentSpec,
    /// `TaskTemplate`
    TaskTemplate,
    /// `Job`
    Job,
    /// `Policy`
    Policy,
}

impl Kind {
    /// The `kind:` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::AgentSpec => "AgentSpec",
            Kind::TaskTemplate => "TaskTemplate",
            Kind::Job => "Job",
            Kind::Policy => "Policy",
        }
    }

    /// Parses a `kind:` string.
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "AgentSpec" => Some(Kind::AgentSpec),
            "TaskTemplate" => Some(Kind::TaskTemplate),
            "Job" => Some(Kind::Job),
            "Policy" => Some(Kind::Policy),
            _ => None,
        }
    }
}
