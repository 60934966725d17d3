//! The event log's vocabulary: every [`Event::action`](crate::state::Event::action) the
//! engine writes is one of [`EventAction`]. The strings are a contract: operators filter
//! on them, dashboards colour by them, and they do not change between releases.
//!
//! | action | actor | when |
//! |---|---|---|
//! | `job.created` | `git`, or `job:<parent>` for a child job | a Job manifest appeared, or an agent ordered a child job; the record was created |
//! | `job.generation` | `engine` | the desired definition changed: a new generation |
//! | `job.removed` | `engine` | the manifest was removed from Git |
//! | `job.status` | `engine`, `agent:<a>`, `human:<id>` | the job's summary status changed (`from → to: cause`) |
//! | `step.transition` | `engine` | the reconciler moved a step (ready, cancelled, …) |
//! | `step.invalid` | `engine` | a transition the state machine refused (skipped) |
//! | `step.started` | `engine` | an attempt was claimed under a lease |
//! | `step.succeeded` / `step.failed` / `step.blocked` / `step.deferred` | `agent:<a>` or `engine` | an attempt's outcome |
//! | `step.interrupted` | `engine` | an attempt was taken back (engine stopped or restarted) |
//! | `model.responded` | `agent:<a>` | one model call of the tool loop |
//! | `tool.called` / `tool.failed` | `agent:<a>` or `engine` | a tool call and its result |
//! | `tool.refused` | `engine` | a tool call the engine refused before any executor saw it |
//! | `outcome.reported` | `agent:<a>` | the agent called an outcome tool |
//! | `budget.exceeded` | `engine` | a step or job budget stopped the tool loop |
//! | `command.ran` | `engine` | a command step's program ran |
//! | `approval.requested` | `agent:<a>` | a plan waits for a human |
//! | `approval.voted` | `human:<id>` | one approval of several needed |
//! | `approval.approved` / `approval.rejected` | `human:<id>` | the decision |
//! | `approval.cancelled` | `engine` | a new generation or the job's removal cancelled an open request |
//! | `approval.voided` | `engine` | a new generation voided an approved plan not yet executed |
//! | `action.executed` | `engine` | one approved action took effect (recorded before the next runs) |
//! | `job.resolved` | `engine` (reporter's log), `agent:<a>` (resolved job's log) | `report_success {resolves}`: `resolves <job> (generation g)` in the reporter's log, with its outcome; `resolved by <job>/<step> (attempt n)` in the resolved job's |
//! | `job.ordered` | `agent:<a>` on the parent | the agent ordered a child job ([sub-jobs](crate::children)) |
//! | `step.waiting` | `agent:<a>` | the attempt ended waiting for the children it ordered |
//! | `child.finished` | `engine` on the parent | a child the step waits for finished (its status) |
//! | `child.closed` | `engine` on parent and child | the parent closed: its parent-close policy applied (cancel / finish / abandon) |

/// One kind of event. `#[non_exhaustive]`: new kinds may be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventAction {
    /// `job.created`
    JobCreated,
    /// `job.generation`
    JobGeneration,
    /// `job.removed`
    JobRemoved,
    /// `job.status`
    JobStatus,
    /// `step.transition`
    StepTransition,
    /// `step.invalid`
    StepInvalid,
    /// `step.started`
    StepStarted,
    /// `step.succeeded`
    StepSucceeded,
    /// `step.failed`
    StepFailed,
    /// `step.blocked`
    StepBlocked,
    /// `step.deferred`
    StepDeferred,
    /// `step.interrupted`
    StepInterrupted,
    /// `model.responded`
    ModelResponded,
    /// `tool.called`
    ToolCalled,
    /// `tool.failed`
    ToolFailed,
    /// `tool.refused`
    ToolRefused,
    /// `outcome.reported`
    OutcomeReported,
    /// `budget.exceeded`
    BudgetExceeded,
    /// `limit.exceeded`: an operator's cap (tool calls per turn, transcript bytes).
    LimitExceeded,
    /// `command.ran`
    CommandRan,
    /// `approval.requested`
    ApprovalRequested,
    /// `approval.voted`
    ApprovalVoted,
    /// `approval.approved`
    ApprovalApproved,
    /// `approval.rejected`
    ApprovalRejected,
    /// `approval.cancelled`
    ApprovalCancelled,
    /// `approval.voided`
    ApprovalVoided,
    /// `action.executed`
    ActionExecuted,
    /// `job.resolved`: one job's success resolved another on the same target.
    JobResolved,
    /// `job.ordered`: an agent ordered a child job.
    JobOrdered,
    /// `step.waiting`: a step waits for its children.
    StepWaiting,
    /// `child.finished`: a child the step waits for finished.
    ChildFinished,
    /// `child.closed`: the parent closed and its parent-close policy applied.
    ChildClosed,
}

impl EventAction {
    /// Every kind, in the table's order.
    pub const ALL: &'static [EventAction] = &[
        EventAction::JobCreated,
        EventAction::JobGeneration,
        EventAction::JobRemoved,
        EventAction::JobStatus,
        EventAction::StepTransition,
        EventAction::StepInvalid,
        EventAction::StepStarted,
        EventAction::StepSucceeded,
        EventAction::StepFailed,
        EventAction::StepBlocked,
        EventAction::StepDeferred,
        EventAction::StepInterrupted,
        EventAction::ModelResponded,
        EventAction::ToolCalled,
        EventAction::ToolFailed,
        EventAction::ToolRefused,
        EventAction::OutcomeReported,
        EventAction::BudgetExceeded,
        EventAction::LimitExceeded,
        EventAction::CommandRan,
        EventAction::ApprovalRequested,
        EventAction::ApprovalVoted,
        EventAction::ApprovalApproved,
        EventAction::ApprovalRejected,
        EventAction::ApprovalCancelled,
        EventAction::ApprovalVoided,
        EventAction::ActionExecuted,
        EventAction::JobResolved,
        EventAction::JobOrdered,
        EventAction::StepWaiting,
        EventAction::ChildFinished,
        EventAction::ChildClosed,
    ];

    /// The string stored in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            EventAction::JobCreated => "job.created",
            EventAction::JobGeneration => "job.generation",
            EventAction::JobRemoved => "job.removed",
            EventAction::JobStatus => "job.status",
            EventAction::StepTransition => "step.transition",
            EventAction::StepInvalid => "step.invalid",
            EventAction::StepStarted => "step.started",
            EventAction::StepSucceeded => "step.succeeded",
            EventAction::StepFailed => "step.failed",
            EventAction::StepBlocked => "step.blocked",
            EventAction::StepDeferred => "step.deferred",
            EventAction::StepInterrupted => "step.interrupted",
            EventAction::ModelResponded => "model.responded",
            EventAction::ToolCalled => "tool.called",
            EventAction::ToolFailed => "tool.failed",
            EventAction::ToolRefused => "tool.refused",
            EventAction::OutcomeReported => "outcome.reported",
            EventAction::BudgetExceeded => "budget.exceeded",
            EventAction::LimitExceeded => "limit.exceeded",
            EventAction::CommandRan => "command.ran",
            EventAction::ApprovalRequested => "approval.requested",
            EventAction::ApprovalVoted => "approval.voted",
            EventAction::ApprovalApproved => "approval.approved",
            EventAction::ApprovalRejected => "approval.rejected",
            EventAction::ApprovalCancelled => "approval.cancelled",
            EventAction::ApprovalVoided => "approval.voided",
            EventAction::ActionExecuted => "action.executed",
            EventAction::JobResolved => "job.resolved",
            EventAction::JobOrdered => "job.ordered",
            EventAction::StepWaiting => "step.waiting",
            EventAction::ChildFinished => "child.finished",
            EventAction::ChildClosed => "child.closed",
        }
    }

    /// The kind of a stored action string, if it is one.
    pub fn parse(s: &str) -> Option<EventAction> {
        EventAction::ALL.iter().copied().find(|a| a.as_str() == s)
    }
}

impl std::fmt::Display for EventAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<EventAction> for String {
    fn from(a: EventAction) -> String {
        a.as_str().to_string()
    }
}

impl From<EventAction> for std::borrow::Cow<'static, str> {
    fn from(a: EventAction) -> Self {
        std::borrow::Cow::Borrowed(a.as_str())
    }
}

impl PartialEq<EventAction> for String {
    fn eq(&self, other: &EventAction) -> bool {
        self == other.as_str()
    }
}

/// The actor `engine`, shared: an event the engine writes does not allocate its actor.
pub fn engine_actor() -> std::sync::Arc<str> {
    static ENGINE: std::sync::LazyLock<std::sync::Arc<str>> =
        std::sync::LazyLock::new(|| std::sync::Arc::from("engine"));
    ENGINE.clone()
}

/// Formats an event's detail into a string of exactly its length: one allocation.
///
/// `format!` starts small and grows (a detail such as `pending → ready: dependencies
/// succeeded` took four allocations), and the in-memory store then shrinks the text to
/// a `Box<str>`. A detail is formatted once into a buffer on the stack and copied out at
/// its length; one longer than the buffer goes on in a growing string, shrunk at the end.
/// Used through [`detail!`].
pub(crate) fn format_exact(args: std::fmt::Arguments<'_>) -> String {
    use std::fmt::Write as _;
    if let Some(s) = args.as_str() {
        return s.to_owned();
    }
    let mut out = StackText {
        buf: [0; STACK_TEXT],
        len: 0,
        spill: None,
    };
    let _ = out.write_fmt(args);
    match out.spill {
        Some(mut s) => {
            s.shrink_to_fit();
            s
        }
        // Only whole `&str`s were copied in, so the bytes are UTF-8.
        None => std::str::from_utf8(&out.buf[..out.len])
            .map(str::to_owned)
            .unwrap_or_default(),
    }
}

/// Bytes of a detail formatted on the stack before it spills into a `String`.
const STACK_TEXT: usize = 256;

struct StackText {
    buf: [u8; STACK_TEXT],
    len: usize,
    spill: Option<String>,
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if let Some(spill) = &mut self.spill {
            spill.push_str(s);
        } else if let Some(dst) = self.buf.get_mut(self.len..self.len + s.len()) {
            dst.copy_from_slice(s.as_bytes());
            self.len += s.len();
        } else {
            let mut spill = String::with_capacity(2 * (self.len + s.len()));
            spill.push_str(std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default());
            spill.push_str(s);
            self.spill = Some(spill);
        }
        Ok(())
    }
}

/// `format!` for event details, allocating once ([`format_exact`]).
macro_rules! detail {
    ($($arg:tt)*) => {
        $crate::events::format_exact(format_args!($($arg)*))
    };
}
pub(crate) use detail;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detail_is_formatted_to_its_exact_length() {
        let reason = "dependencies succeeded";
        let cases = [
            detail!("{} → {}: {reason}", "pending", "ready"),
            detail!("plain text"),
            detail!("{}", ""),
            detail!("{:>6}|{:.2}|{:?}", 42, 1.0f64 / 3.0, "q\"n"),
            detail!("{}|{}", "é".repeat(100), "✓".repeat(100)),
            detail!("{}", "x".repeat(STACK_TEXT)),
            detail!("{}{}", "x".repeat(STACK_TEXT), "y"),
        ];
        let expected = [
            format!("{} → {}: {reason}", "pending", "ready"),
            "plain text".to_string(),
            String::new(),
            format!("{:>6}|{:.2}|{:?}", 42, 1.0f64 / 3.0, "q\"n"),
            format!("{}|{}", "é".repeat(100), "✓".repeat(100)),
            "x".repeat(STACK_TEXT),
            format!("{}{}", "x".repeat(STACK_TEXT), "y"),
        ];
        for (got, want) in cases.iter().zip(&expected) {
            assert_eq!(got, want);
            assert_eq!(got.capacity(), want.len(), "{want:?}");
        }
    }

    #[test]
    fn strings_round_trip_and_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for a in EventAction::ALL {
            assert!(seen.insert(a.as_str()), "duplicate {a}");
            assert_eq!(EventAction::parse(a.as_str()), Some(*a));
        }
        assert_eq!(EventAction::parse("nope"), None);
    }
}
