//! Sub-jobs: an agent orders a child job, and its step may wait for it.
//!
//! An agent whose spec lists templates in
//! [`may_order`](crate::model::AgentConfig::may_order) is offered the `order_job` tool:
//!
//! | argument | type | default | meaning |
//! |---|---|---|---|
//! | `template` | string | — | a template the agent's `may_order` lists (anything else is refused) |
//! | `params` | object | `{}` | parameter values, validated strictly as a Job manifest's |
//! | `wait` | bool | `true` | end this attempt waiting for the child; `false`: the child runs on its own and the step continues |
//! | `key` | string | hash of template and params | the child's idempotency key (`[a-z0-9-]`, ≤ 40) |
//! | `on_child_failure` | `fail` \| `continue` | `fail` | when a waited-for child fails: fail the step (no retry), or go on and let the agent see it |
//! | `parent_close` | `cancel` \| `finish` \| `abandon` | `cancel` | what happens to the child when the parent job is cancelled or removed |
//!
//! # Where a child lives: the store, linked to the parent's commit
//!
//! A child is created **in the store**, not committed to Git. George reads Git; it
//! does not need write access to it, and the same engine runs on a read-only clone or on
//! Kubernetes custom resources, where a commit is not possible. What GitOps asks — a
//! pinned, auditable definition — holds anyway:
//!
//! - the child's record carries [`OrderedBy`]: the parent job, step, attempt, the
//!   **commit** of the parent's generation, the template's parameters as ordered, the
//!   depth and the key; the `job.created` event says the same, with actor `job:<parent>`;
//! - its definition is the template **at that commit** (the engine reads any commit
//!   through its [`GitSource`](crate::git::GitSource)), so a later edit of the template
//!   in Git changes neither a running child nor one restored after a restart;
//! - the engine keeps children's desired states beside the Git jobs' (rebuilt from the
//!   store on start, or when an engine first meets a child another engine ordered), so
//!   the reconciler never cancels a child as "removed from Git";
//! - a source that keeps no history (the Kubernetes CR source after a restart) cannot
//!   read the pinned commit: the current manifests are used only if they resolve to the
//!   very definition pinned (the same hash); otherwise the child is left as it is, never
//!   run on another definition, never cancelled for it.
//!
//! # Idempotent by key
//!
//! The child's name is `<parent>--<step>--<key>` ([`child_name`]). Ordering the same
//! again — a retried attempt, a restarted engine, the attempt after the wait — finds
//! that child and returns its status and outputs; it is never created twice. A child
//! that failed stays failed: to order the work again (say after an operator retries the
//! parent), the agent gives a new `key`.
//!
//! # Waiting
//!
//! With `wait: true` the attempt ends in
//! [`StepState::WaitingForChildren`], stored
//! with the record (so it survives restarts), never `AwaitingApproval`. A child's finish
//! requeues its parent; [`settle`] records each child's status and outputs on the
//! parent's [`ChildLink`]s and, once all are finished, makes the step `Ready`: the next
//! attempt sees `children.<name>.status` / `.outputs` in its render context and in its
//! message. A failed child fails the step at once under `on_child_failure: fail`.
//!
//! # Parent close
//!
//! As Temporal's `ParentClosePolicy`: when the parent job is cancelled (by an operator,
//! or by the removal of its manifest), each child it ordered is cancelled (`cancel`,
//! Temporal's `TERMINATE`), left to finish still linked (`finish`), or left to finish and
//! unlinked (`abandon`: [`OrderedBy::abandoned`]). Each gets a `child.closed` event.
//!
//! # Limits
//!
//! The operator caps the depth of the tree
//! ([`EngineConfig::max_child_depth`](crate::engine::EngineConfig::max_child_depth),
//! default 3) and the children one job may order
//! ([`EngineConfig::max_children_per_job`](crate::engine::EngineConfig::max_children_per_job),
//! default 20); an order beyond either is refused to the model (a `tool.refused` event),
//! never created.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::events::EventAction;
use crate::model::Params;
use crate::state::{JobRecord, JobStatus, NewEvent, StepEvent, StepState};

/// The name of the tool that orders a child job.
pub const ORDER_JOB: &str = "order_job";

/// What a failed child does to a step waiting for it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildFailurePolicy {
    /// The waiting step fails (not retried).
    #[default]
    Fail,
    /// The step is attempted again once every child is finished, and sees the failure.
    Continue,
}

/// What happens to a child when its parent job is cancelled or removed (Temporal's
/// `ParentClosePolicy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParentClosePolicy {
    /// The child is cancelled too.
    #[default]
    Cancel,
    /// The child runs to its end, still linked to its parent.
    Finish,
    /// The child runs to its end, unlinked ([`OrderedBy::abandoned`]).
    Abandon,
}

impl ParentClosePolicy {
    /// `cancel`, `finish` or `abandon`.
    pub fn as_str(self) -> &'static str {
        match self {
            ParentClosePolicy::Cancel => "cancel",
            ParentClosePolicy::Finish => "finish",
            ParentClosePolicy::Abandon => "abandon",
        }
    }
}

/// Who ordered a child job, and with what: on the child's
/// [`JobRecord::ordered_by`]. Its definition is `template` (the record's) with `params`
/// at `commit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderedBy {
    /// The parent job.
    pub job: String,
    /// The parent's step that ordered it.
    pub step: String,
    /// The attempt of that step that ordered it first.
    pub attempt: u32,
    /// The commit of the parent's generation: the child's definition is pinned to it.
    pub commit: String,
    /// The parameters as ordered (before defaults).
    #[serde(default)]
    pub params: Params,
    /// The idempotency key (the last part of the child's name).
    pub key: String,
    /// 1 for a child of a Git job, 2 for a grandchild, …
    pub depth: u32,
    /// The parent-close policy of the order.
    #[serde(default)]
    pub parent_close: ParentClosePolicy,
    /// Whether the parent closed and abandoned it (`parent_close: abandon`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub abandoned: bool,
}

/// One child a step ordered: on the parent's
/// [`StepRecord::children`](crate::state::StepRecord::children).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChildLink {
    /// The child job's name.
    pub job: String,
    /// Its template.
    pub template: String,
    /// Whether the step waits for it.
    pub wait: bool,
    /// What its failure does to the waiting step.
    #[serde(default)]
    pub on_child_failure: ChildFailurePolicy,
    /// What the parent's close does to it.
    #[serde(default)]
    pub parent_close: ParentClosePolicy,
    /// Its status once finished (set by [`settle`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<JobStatus>,
    /// Its outputs once finished: `{<step id>: <outputs>}` of its succeeded steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Arc<Value>>,
    /// Whether the parent-close policy was applied to it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub closed: bool,
}

/// The arguments of one `order_job` call.
#[derive(Debug, Clone, PartialEq)]
pub struct ChildOrder {
    /// The template.
    pub template: String,
    /// Parameter values.
    pub params: Params,
    /// Whether the step waits for the child.
    pub wait: bool,
    /// The explicit idempotency key, if any.
    pub key: Option<String>,
    /// What a failure of the child does to the waiting step.
    pub on_child_failure: ChildFailurePolicy,
    /// What the parent's close does to the child.
    pub parent_close: ParentClosePolicy,
}

impl ChildOrder {
    /// Parses `order_job`'s arguments (see the [module docs](self)).
    ///
    /// # Errors
    /// A message for the model naming the bad argument.
    pub fn from_arguments(args: &Value) -> Result<ChildOrder, String> {
        let template = args
            .get("template")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or("`template` (a string) is required")?
            .to_string();
        let params: Params = match args.get("params") {
            None | Some(Value::Null) => Params::new(),
            Some(v @ Value::Object(_)) => serde_json::from_value(v.clone())
                .map_err(|e| format!("`params` must be an object: {e}"))?,
            Some(_) => return Err("`params` must be an object".into()),
        };
        let wait = match args.get("wait") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err("`wait` must be a boolean".into()),
        };
        let key = match args.get("key") {
            None | Some(Value::Null) => None,
            Some(Value::String(k)) if valid_key(k) => Some(k.clone()),
            Some(_) => {
                return Err(
                    "`key` must be 1 to 40 characters of a-z, 0-9 and `-`, starting and ending with a letter or digit"
                        .into(),
                );
            }
        };
        let enum_arg = |name: &str| -> Result<Option<String>, String> {
            match args.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(format!("`{name}` must be a string")),
            }
        };
        let on_child_failure = match enum_arg("on_child_failure")?.as_deref() {
            None | Some("fail") => ChildFailurePolicy::Fail,
            Some("continue") => ChildFailurePolicy::Continue,
            Some(o) => {
                return Err(format!(
                    "`on_child_failure` must be fail or continue, not {o:?}"
                ));
            }
        };
        let parent_close = match enum_arg("parent_close")?.as_deref() {
            None | Some("cancel") => ParentClosePolicy::Cancel,
            Some("finish") => ParentClosePolicy::Finish,
            Some("abandon") => ParentClosePolicy::Abandon,
            Some(o) => {
                return Err(format!(
                    "`parent_close` must be cancel, finish or abandon, not {o:?}"
                ));
            }
        };
        Ok(ChildOrder {
            template,
            params,
            wait,
            key,
            on_child_failure,
            parent_close,
        })
    }

    /// The idempotency key: the explicit one, else the first 12 hex digits of the
    /// SHA-256 of the template name and the canonical (name-sorted) parameters.
    pub fn key(&self) -> String {
        if let Some(k) = &self.key {
            return k.clone();
        }
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(self.template.as_bytes());
        h.update([0]);
        h.update(serde_json::to_string(&self.params).unwrap_or_default());
        h.finalize()
            .iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

fn valid_key(k: &str) -> bool {
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    (1..=40).contains(&k.len())
        && k.chars().all(|c| ok(c) || c == '-')
        && k.starts_with(ok)
        && k.ends_with(ok)
}

/// The name of the child of `parent`'s step `step` with key `key`:
/// `<parent>--<step>--<key>`, the step id lower-cased with any character outside
/// `[a-z0-9.-]` as `-`.
pub fn child_name(parent: &str, step: &str, key: &str) -> String {
    let step: String = step
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{parent}--{step}--{key}")
}

/// A child job as its parent sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChildView {
    /// Its name.
    pub name: String,
    /// Its status.
    pub status: JobStatus,
    /// `{<step id>: <outputs>}` of its steps that have outputs.
    pub outputs: Value,
}

impl ChildView {
    /// The view of a child's record.
    pub fn of(rec: &JobRecord) -> ChildView {
        let mut outputs = serde_json::Map::new();
        for s in &rec.steps {
            if let Some(o) = &s.outputs {
                outputs.insert(s.id.to_string(), (**o).clone());
            }
        }
        ChildView {
            name: rec.name.clone(),
            status: rec.status,
            outputs: Value::Object(outputs),
        }
    }
}

/// The children whose end the record has not seen yet: those its links show no final
/// status for (waited for or not).
pub fn unsettled(rec: &JobRecord) -> Vec<String> {
    rec.steps
        .iter()
        .flat_map(|s| s.children.iter())
        .filter(|l| l.status.is_none())
        .map(|l| l.job.clone())
        .collect()
}

/// Settles the record's links and waiting steps given their children as now seen
/// (`children`; one missing is not finished). Pure.
///
/// | waiting step's children | result |
/// |---|---|
/// | one failed or cancelled, its order `on_child_failure: fail` | `ChildFailed`: the step fails, no retry |
/// | all finished (otherwise) | `MakeReady`: the step is attempted again |
/// | some not finished | stays waiting |
///
/// Each child seen finished for the first time, waited for or not, gets its status and
/// outputs on its [`ChildLink`] and a `child.finished` event. Returns the events
/// (empty: nothing changed). Does not derive the job's status: the reconciler's pass
/// does.
pub fn settle(rec: &mut JobRecord, children: &[ChildView], now_ms: u64) -> Vec<NewEvent> {
    let engine = crate::events::engine_actor();
    let mut events = Vec::new();
    // Only steps with children can change (a step copied is a step changed).
    let with_children = rec.steps.iter_mut().filter(|s| {
        !s.children.is_empty() || matches!(s.state, StepState::WaitingForChildren { .. })
    });
    for s in with_children.map(Arc::make_mut) {
        for link in s.children.iter_mut() {
            if link.status.is_some() {
                continue;
            }
            let Some(v) = children
                .iter()
                .find(|v| v.name == link.job && v.status.is_finished())
            else {
                continue;
            };
            link.status = Some(v.status);
            link.outputs = Some(Arc::new(v.outputs.clone()));
            events.push(NewEvent::shared(
                now_ms,
                &engine,
                EventAction::ChildFinished,
                Some(&s.id),
                format!("child {} {}", v.name, v.status),
            ));
        }
        let StepState::WaitingForChildren { waiting_on: waited } = &s.state else {
            continue;
        };
        let waited = waited.clone();
        let links: Vec<_> = s
            .children
            .iter()
            .filter(|l| waited.contains(&l.job))
            .collect();
        let failed = links.iter().find(|l| {
            l.on_child_failure == ChildFailurePolicy::Fail
                && matches!(l.status, Some(JobStatus::Failed | JobStatus::Cancelled))
        });
        let (event, why) = if let Some(l) = failed {
            let why = format!(
                "child {} {} (on_child_failure: fail)",
                l.job,
                l.status.map_or("", JobStatus::name)
            );
            (StepEvent::ChildFailed, why)
        } else if links.len() == waited.len() && links.iter().all(|l| l.status.is_some()) {
            (StepEvent::MakeReady, "every child finished".to_string())
        } else {
            continue;
        };
        if let Ok(next) = s.state.apply(event.clone()) {
            events.push(NewEvent::shared(
                now_ms,
                &engine,
                EventAction::StepTransition,
                Some(&s.id),
                format!("{} → {}: {why}", s.state.name(), next.name()),
            ));
            s.message = (event == StepEvent::ChildFailed).then_some(why);
            s.state = next;
        }
    }
    events
}

/// The links whose parent-close policy is due: every unclosed link of a parent that is
/// cancelled, or removed from Git and not kept.
pub fn to_close(rec: &JobRecord) -> Vec<ChildLink> {
    let closing = rec.status == JobStatus::Cancelled || (rec.removed && !rec.keep_on_removal);
    if !closing {
        return Vec::new();
    }
    rec.steps
        .iter()
        .flat_map(|s| s.children.iter())
        .filter(|l| !l.closed)
        .cloned()
        .collect()
}

/// The children of `rec`'s steps as the model sees them: `{<name>: {template, status,
/// outputs}}` (status `running` until a waited-for child finished).
pub fn context_of(rec: &JobRecord) -> Value {
    let mut m = serde_json::Map::new();
    for s in &rec.steps {
        for l in &s.children {
            m.insert(
                l.job.clone(),
                json!({
                    "template": l.template,
                    "step": &*s.id,
                    "status": l.status.map_or("Running", JobStatus::name),
                    "outputs": l.outputs.as_deref().cloned().unwrap_or(Value::Null),
                }),
            );
        }
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests;
