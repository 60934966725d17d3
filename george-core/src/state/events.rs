//! The event log's entries: a stored [`Event`] and a [`NewEvent`] to append.

use serde::{Deserialize, Serialize};

/// One entry of a job's append-only event log (the audit trail).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The job.
    pub job: String,
    /// 1, 2, 3, ... without gaps within a job.
    pub seq: u64,
    /// When.
    pub at_ms: u64,
    /// Who: `engine`, `agent:<name>`, `human:<name>`, `git`.
    pub actor: String,
    /// What: `job.created`, `step.started`, `tool.called`, `approval.rejected`, ...
    pub action: String,
    /// The step, when the event concerns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// Free-form detail (a reason, a tool name and result, a commit).
    pub detail: String,
}

/// An event to append; the store assigns the job and the sequence number.
///
/// The actor and the step are shared (`Arc<str>`) and the action is usually static, so
/// an event is one allocation (its detail) to make and to copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEvent {
    /// When (ms since the Unix epoch).
    pub at_ms: u64,
    /// Who: `engine`, `agent:<name>`, `human:<name>`, `git`, `policy:<name>`.
    pub actor: std::sync::Arc<str>,
    /// What: an [`EventAction`](crate::events::EventAction)'s name.
    pub action: std::borrow::Cow<'static, str>,
    /// The step, if any.
    pub step: Option<std::sync::Arc<str>>,
    /// Detail.
    pub detail: String,
}

impl NewEvent {
    /// A new event. `action` is an [`EventAction`](crate::events::EventAction), a
    /// `&'static str` or a `String`.
    pub fn new(
        at_ms: u64,
        actor: impl Into<std::sync::Arc<str>>,
        action: impl Into<std::borrow::Cow<'static, str>>,
        step: Option<&str>,
        detail: impl Into<String>,
    ) -> Self {
        NewEvent {
            at_ms,
            actor: actor.into(),
            action: action.into(),
            step: step.map(Into::into),
            detail: detail.into(),
        }
    }

    /// A new event about `step`, with an actor and a step id already shared: nothing
    /// but the detail is allocated.
    pub fn shared(
        at_ms: u64,
        actor: &std::sync::Arc<str>,
        action: crate::events::EventAction,
        step: Option<&std::sync::Arc<str>>,
        detail: impl Into<String>,
    ) -> Self {
        NewEvent {
            at_ms,
            actor: actor.clone(),
            action: std::borrow::Cow::Borrowed(action.as_str()),
            step: step.cloned(),
            detail: detail.into(),
        }
    }
}
