//! Policy verdicts: whether a plan may be approved without a human, must be refused, or
//! goes to a human — pure functions of the committed [`Policy`] manifests, the plan and
//! the autonomy levels, with no I/O.
//!
//! Three steps, each a pure function (or all at once, from a [`ManifestSet`], with
//! [`decide_plan`]):
//!
//! 1. [`evaluate`]: each planned action against the rules of the policies that apply to
//!    the plan (their `applies_to`), policies in name order, rules in file order.
//!    Per action, `deny` wins over `ask`, which wins over `allow`; over the plan, one
//!    denied action denies it, and it is auto-approved only when every action matched
//!    an `allow` rule and none an `ask` or `deny` rule. An action no rule matches, and an
//!    empty plan, go to a human.
//! 2. [`effective_autonomy`]: the lowest of the agent's, template's and step's declared
//!    levels (`manual < supervised < autonomous`; none declared: `supervised`), capped
//!    by the operator's ceiling — configured in the engine, not in Git, so a committer
//!    cannot grant more autonomy than the operator allows.
//! 3. [`decide`]: under `manual` every plan goes to a human (a denial still denies);
//!    under `supervised` and `autonomous` the verdict stands.
//!
//! An auto-approval is a decision like a human's, recorded as `policy:<name>`
//! ([`Verdict::actor`]) with the rule that matched.
//!
//! | actions' matches (per action: deny > ask > allow) | verdict |
//! |---|---|
//! | any action matches a `deny` rule | [`Verdict::Deny`] (the first such action) |
//! | no action; or one matches no rule, or an `ask` rule | [`Verdict::AskHuman`] (the first such action) |
//! | every action matches an `allow` rule, and nothing else | [`Verdict::AutoApprove`] |
//!
//! ```
//! use std::collections::BTreeMap;
//! use george_core::model::{Autonomy, Policy};
//! use george_core::policy::{self, PlanContext, Verdict};
//! use george_core::state::{Plan, PlannedAction};
//!
//! let policy: Policy = serde_json::from_value(serde_json::json!({
//!     "apiVersion": "george.dev/v1alpha1", "kind": "Policy",
//!     "metadata": {"name": "staging-ops"},
//!     "spec": {"rules": [
//!         {"name": "scale-staging", "effect": "allow", "tool": "k8s_scale",
//!          "target": {"namespace": "staging"}, "arguments": {"replicas": {"max": 5}}},
//!         {"name": "no-deletes", "effect": "deny", "tool": "k8s_delete*"}
//!     ]}
//! })).unwrap();
//! let target = BTreeMap::from([("namespace".to_string(), "staging".to_string())]);
//! let ctx = PlanContext::new("sysadmin", "fix-service", "fix").with_target(&target);
//! let plan = |tool: &str, replicas: u32| Plan {
//!     summary: "scale".into(),
//!     actions: vec![PlannedAction {
//!         tool: tool.into(),
//!         arguments: serde_json::json!({"replicas": replicas}),
//!     }],
//! };
//!
//! let verdict = policy::evaluate([&policy], &ctx, &plan("k8s_scale", 3));
//! assert_eq!(verdict.actor().as_deref(), Some("policy:staging-ops"));
//! assert!(verdict.is_auto_approved());
//! assert!(matches!(
//!     policy::evaluate([&policy], &ctx, &plan("k8s_scale", 9)),
//!     Verdict::AskHuman { .. }
//! ));
//! assert!(matches!(
//!     policy::evaluate([&policy], &ctx, &plan("k8s_delete_pod", 1)),
//!     Verdict::Deny { action_index: 0, .. }
//! ));
//!
//! // The operator's ceiling caps what the manifests declare.
//! let level = policy::effective_autonomy([Some(Autonomy::Autonomous), None, None], Autonomy::Manual);
//! assert_eq!(level, Autonomy::Manual);
//! assert!(!policy::decide(level, verdict).is_auto_approved());
//! ```

use std::collections::BTreeMap;
use std::fmt;

use crate::manifest::ManifestSet;
use crate::model::{Autonomy, Effect, Policy};
use crate::state::Plan;

mod apply;
mod matching;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_manifest;

pub use apply::{Applied, apply_verdict};
pub use matching::glob_matches;

static NO_TARGET: BTreeMap<String, String> = BTreeMap::new();

/// Who proposes a plan and where: the names a policy's `applies_to` and rules match.
///
/// `target` is the job's target (free string keys, e.g. `namespace: staging`), matched
/// by a rule's `target`; [`new`](Self::new) starts with none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanContext<'a> {
    /// The `AgentSpec` name of the step's agent.
    pub agent: &'a str,
    /// The `TaskTemplate` name of the job.
    pub template: &'a str,
    /// The step id.
    pub step: &'a str,
    /// The job's target keys and values.
    pub target: &'a BTreeMap<String, String>,
}

impl<'a> PlanContext<'a> {
    /// A context with no target.
    pub fn new(agent: &'a str, template: &'a str, step: &'a str) -> Self {
        PlanContext {
            agent,
            template,
            step,
            target: &NO_TARGET,
        }
    }

    /// Sets the job's target.
    pub fn with_target(mut self, target: &'a BTreeMap<String, String>) -> Self {
        self.target = target;
        self
    }
}

/// A rule that matched: `policy` (its `metadata.name`) and `rule` (its `name`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RuleRef {
    /// The policy's name.
    pub policy: String,
    /// The rule's name within it.
    pub rule: String,
}

impl fmt::Display for RuleRef {
    /// `policy:<policy>/<rule>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "policy:{}/{}", self.policy, self.rule)
    }
}

/// Why a plan goes to a human.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AskReason {
    /// The plan has no action.
    EmptyPlan,
    /// Action `action_index` (calling `tool`) matched no rule of any applying policy.
    NoRule {
        /// Its index in the plan.
        action_index: usize,
        /// Its tool.
        tool: String,
    },
    /// Action `action_index` matched an `ask` rule.
    AskRule {
        /// Its index in the plan.
        action_index: usize,
        /// The first `ask` rule it matched.
        rule: RuleRef,
    },
    /// Action `action_index` may match a `deny` or `ask` rule that cannot be evaluated
    /// (an invalid regular expression: only in a policy that was not validated).
    BrokenRule {
        /// Its index in the plan.
        action_index: usize,
        /// The rule.
        rule: RuleRef,
        /// What is wrong with it.
        message: String,
    },
    /// The policies would auto-approve, but the effective autonomy is `manual`.
    Manual {
        /// The rule that would have approved (of the first action).
        would_approve: RuleRef,
    },
    /// The policies would auto-approve, but some policy files are invalid: one of them
    /// may have denied or asked.
    InvalidPolicies {
        /// Their paths.
        paths: Vec<String>,
    },
}

impl fmt::Display for AskReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AskReason::EmptyPlan => f.write_str("the plan has no action"),
            AskReason::NoRule { action_index, tool } => {
                write!(f, "action {action_index} (`{tool}`) matches no policy rule")
            }
            AskReason::AskRule { action_index, rule } => {
                write!(f, "action {action_index} matches the ask rule {rule}")
            }
            AskReason::BrokenRule {
                action_index,
                rule,
                message,
            } => write!(
                f,
                "action {action_index} meets the rule {rule}, which cannot be evaluated: {message}"
            ),
            AskReason::Manual { would_approve } => write!(
                f,
                "autonomy is manual: every plan goes to a human ({would_approve} would have approved)"
            ),
            AskReason::InvalidPolicies { paths } => write!(
                f,
                "no auto-approval while policies are invalid: {}",
                paths.join(", ")
            ),
        }
    }
}

/// What the policies say about a plan. Deny wins over ask wins over allow.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Verdict {
    /// Refused: action `action_index` (the first one denied) matched `rule` of `policy`.
    Deny {
        /// The policy's name.
        policy: String,
        /// The rule's name.
        rule: String,
        /// The denied action's index in the plan.
        action_index: usize,
    },
    /// Approved without a human: every action matched an `allow` rule. `policy` and
    /// `rule` are the first action's; `matches` holds each action's, in plan order.
    AutoApprove {
        /// The policy that approved the first action.
        policy: String,
        /// Its rule.
        rule: String,
        /// The `allow` rule each action matched, one per action.
        matches: Vec<RuleRef>,
    },
    /// A human decides.
    AskHuman {
        /// Why.
        reason: AskReason,
    },
}

impl Verdict {
    /// The actor a decision made by this verdict records, `policy:<name>`; `None` when
    /// a human decides.
    pub fn actor(&self) -> Option<String> {
        match self {
            Verdict::Deny { policy, .. } | Verdict::AutoApprove { policy, .. } => {
                Some(format!("policy:{policy}"))
            }
            Verdict::AskHuman { .. } => None,
        }
    }

    /// Whether the plan is approved without a human.
    pub fn is_auto_approved(&self) -> bool {
        matches!(self, Verdict::AutoApprove { .. })
    }
}

/// One action's outcome, by precedence: the first match of the strongest effect.
enum ActionOutcome {
    Deny(RuleRef),
    Broken(RuleRef, String),
    Ask(RuleRef),
    Allow(RuleRef),
    NoRule,
}

/// The verdict of `policies` on `plan`, proposed in `ctx` (see the module's table).
///
/// Only the policies whose `applies_to` covers `ctx` count. The order is deterministic
/// whatever the iterator's: policies by name, rules in file order (a policy passed
/// twice changes nothing).
pub fn evaluate<'p>(
    policies: impl IntoIterator<Item = &'p Policy>,
    ctx: &PlanContext<'_>,
    plan: &Plan,
) -> Verdict {
    let mut applying: Vec<&Policy> = policies
        .into_iter()
        .filter(|p| matching::applies(&p.spec.applies_to, ctx))
        .collect();
    // Stable: policies sharing a name (only possible outside a `ManifestSet`) keep
    // their order, and all of them count.
    applying.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    if plan.actions.is_empty() {
        return Verdict::AskHuman {
            reason: AskReason::EmptyPlan,
        };
    }
    let mut regexes = matching::Regexes::default();
    let outcomes: Vec<ActionOutcome> = plan
        .actions
        .iter()
        .map(|a| action_outcome(&applying, ctx, &a.tool, &a.arguments, &mut regexes))
        .collect();
    for (i, o) in outcomes.iter().enumerate() {
        if let ActionOutcome::Deny(r) = o {
            return Verdict::Deny {
                policy: r.policy.clone(),
                rule: r.rule.clone(),
                action_index: i,
            };
        }
    }
    let mut matches = Vec::with_capacity(outcomes.len());
    for (i, o) in outcomes.into_iter().enumerate() {
        let reason = match o {
            ActionOutcome::Allow(r) => {
                matches.push(r);
                continue;
            }
            ActionOutcome::Deny(_) => unreachable!("denials returned above"),
            ActionOutcome::Broken(rule, message) => AskReason::BrokenRule {
                action_index: i,
                rule,
                message,
            },
            ActionOutcome::Ask(rule) => AskReason::AskRule {
                action_index: i,
                rule,
            },
            ActionOutcome::NoRule => AskReason::NoRule {
                action_index: i,
                tool: plan.actions[i].tool.clone(),
            },
        };
        return Verdict::AskHuman { reason };
    }
    let first = matches[0].clone();
    Verdict::AutoApprove {
        policy: first.policy,
        rule: first.rule,
        matches,
    }
}

/// Matches one action against every rule of the applying policies.
fn action_outcome(
    policies: &[&Policy],
    ctx: &PlanContext<'_>,
    tool: &str,
    arguments: &serde_json::Value,
    regexes: &mut matching::Regexes,
) -> ActionOutcome {
    let (mut broken, mut ask, mut allow) = (None, None, None);
    for p in policies {
        for rule in &p.spec.rules {
            let at = || RuleRef {
                policy: p.metadata.name.clone(),
                rule: rule.name.clone(),
            };
            match (
                matching::rule_matches(rule, ctx, tool, arguments, regexes),
                rule.effect,
            ) {
                (Ok(true), Effect::Deny) => return ActionOutcome::Deny(at()),
                (Ok(true), Effect::Ask) => {
                    ask.get_or_insert_with(at);
                }
                (Ok(true), Effect::Allow) => {
                    allow.get_or_insert_with(at);
                }
                (Err(e), Effect::Deny | Effect::Ask) => {
                    broken.get_or_insert_with(|| (at(), e));
                }
                // A broken allow rule allows nothing: not matching it is safe.
                (Ok(false), _) | (Err(_), Effect::Allow) => {}
            }
        }
    }
    match (broken, ask, allow) {
        (Some((r, e)), _, _) => ActionOutcome::Broken(r, e),
        (None, Some(r), _) => ActionOutcome::Ask(r),
        (None, None, Some(r)) => ActionOutcome::Allow(r),
        (None, None, None) => ActionOutcome::NoRule,
    }
}

/// The autonomy a plan runs at: the lowest of the `declared` levels (agent, template,
/// step; absent ones ignored; none declared: [`Autonomy::Supervised`]), capped by the
/// operator's `ceiling`.
///
/// ```
/// use george_core::model::Autonomy::*;
/// use george_core::policy::effective_autonomy;
/// assert_eq!(effective_autonomy([None, None, None], Autonomous), Supervised);
/// assert_eq!(effective_autonomy([Some(Autonomous), None, Some(Autonomous)], Autonomous), Autonomous);
/// assert_eq!(effective_autonomy([Some(Autonomous), Some(Manual), None], Autonomous), Manual);
/// assert_eq!(effective_autonomy([Some(Autonomous), None, None], Supervised), Supervised);
/// ```
pub fn effective_autonomy(declared: [Option<Autonomy>; 3], ceiling: Autonomy) -> Autonomy {
    declared
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(Autonomy::Supervised)
        .min(ceiling)
}

/// The verdict that stands at autonomy `effective`:
///
/// | effective | `Deny` | `AutoApprove` | `AskHuman` |
/// |---|---|---|---|
/// | `manual` | `Deny` | `AskHuman` ([`AskReason::Manual`]) | `AskHuman` |
/// | `supervised` | `Deny` | `AutoApprove` | `AskHuman` |
/// | `autonomous` | `Deny` | `AutoApprove` | `AskHuman` |
pub fn decide(effective: Autonomy, verdict: Verdict) -> Verdict {
    match (effective, verdict) {
        (Autonomy::Manual, Verdict::AutoApprove { policy, rule, .. }) => Verdict::AskHuman {
            reason: AskReason::Manual {
                would_approve: RuleRef { policy, rule },
            },
        },
        // issue 15: autonomous mode decides plans like supervised mode.
        (_, verdict) => verdict,
    }
}

/// Whether a step whose own approval rule says `approval_required`, at the declared
/// levels (agent, template, step) under the operator's `ceiling`, plans and waits for a
/// decision: always at `manual`, as the step says at `supervised`, never at
/// `autonomous` (its agent uses write tools itself, within its budgets).
///
/// ```
/// use george_core::model::Autonomy::*;
/// use george_core::policy::plans;
/// assert!(plans(true, [Some(Autonomous), None, None], Supervised));
/// assert!(!plans(true, [Some(Autonomous), None, None], Autonomous));
/// assert!(plans(false, [Some(Manual), None, None], Autonomous));
/// assert!(!plans(false, [Some(Supervised), None, None], Autonomous));
/// ```
pub fn plans(approval_required: bool, declared: [Option<Autonomy>; 3], ceiling: Autonomy) -> bool {
    match effective_autonomy(declared, ceiling) {
        Autonomy::Manual => true,
        Autonomy::Supervised => approval_required,
        Autonomy::Autonomous => false,
    }
}

/// What [`decide_plan`] found: the effective autonomy and the verdict that stands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct PlanDecision {
    /// The effective autonomy ([`effective_autonomy`]).
    pub autonomy: Autonomy,
    /// The verdict at that autonomy ([`decide`]).
    pub verdict: Verdict,
}

/// The levels the manifests of `set` declare for `ctx`: the agent's
/// (`AgentSpec.spec.autonomy`, always set, `supervised` by default — so a plan is
/// `autonomous` only when its agent says so), the template's and the step's
/// (optional). Unknown names declare nothing.
pub fn declared_autonomy(set: &ManifestSet, ctx: &PlanContext<'_>) -> [Option<Autonomy>; 3] {
    let agent = set.agents.get(ctx.agent).map(|a| a.value.spec.autonomy);
    let template = set.templates.get(ctx.template).map(|t| &t.value.spec);
    let step = template
        .and_then(|t| t.steps.iter().find(|s| s.id == ctx.step))
        .and_then(|s| s.autonomy);
    [agent, template.and_then(|t| t.autonomy), step]
}

/// Everything at once, for the engine: the valid policies of `set` evaluated on `plan`
/// ([`evaluate`]), at the autonomy its manifests declare capped by the operator's
/// `ceiling` ([`declared_autonomy`], [`effective_autonomy`], [`decide`]). While any
/// policy file of `set` is invalid, nothing is auto-approved
/// ([`AskReason::InvalidPolicies`]); denials stand.
pub fn decide_plan(
    set: &ManifestSet,
    ctx: &PlanContext<'_>,
    plan: &Plan,
    ceiling: Autonomy,
) -> PlanDecision {
    let autonomy = effective_autonomy(declared_autonomy(set, ctx), ceiling);
    let verdict = evaluate(set.policies.values().map(|l| &*l.value), ctx, plan);
    let verdict = match verdict {
        Verdict::AutoApprove { .. } if !set.invalid_policy_paths.is_empty() => Verdict::AskHuman {
            reason: AskReason::InvalidPolicies {
                paths: set.invalid_policy_paths.iter().cloned().collect(),
            },
        },
        v => v,
    };
    PlanDecision {
        autonomy,
        verdict: decide(autonomy, verdict),
    }
}
