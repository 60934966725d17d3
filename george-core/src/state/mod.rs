//! Observed state: job and step records, the step state machine, events and approvals.
//!
//! Times are milliseconds since the Unix epoch (`*_ms`), as given by the engine's
//! [`Clock`](crate::clock::Clock).

use serde::{Deserialize, Serialize};

/// The state of one step. See [`StepState::apply`] for the transition table.
///
/// ```text
/// Pending → Ready → Running → {Succeeded | Failed | Blocked | AwaitingApproval | Deferred}
/// AwaitingApproval → {Succeeded (approved) | Ready (rejected: feedback added) | Cancelled}
/// Deferred(until) → Ready ;  Failed(retryable) → Ready ;  Running → Ready (interrupted)
/// Running → WaitingForChildren → {Ready (every child finished) | Failed (a child failed)}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum StepState {
    /// Waiting for its dependencies.
    Pending,
    /// Dependencies met; waiting for a free slot.
    Ready,
    /// An attempt is in flight, held by `holder` under a lease until `lease_until_ms`.
    Running {
        /// The engine that holds the attempt (shared: records are copied often, and
        /// the engine's id is the same in all of them).
        holder: std::sync::Arc<str>,
        /// Lease expiry; past it another engine may take the attempt over.
        lease_until_ms: u64,
    },
    /// Done, with outputs in [`StepRecord::outputs`].
    Succeeded,
    /// The attempt failed; `retry_at_ms` is set while the retry policy allows another attempt.
    Failed {
        /// When the next attempt may start; `None`: terminal failure.
        retry_at_ms: Option<u64>,
    },
    /// The agent lacks a capability or a condition is not met; it stopped and said why
    /// ([`StepRecord::message`]). A new generation of the job makes it `Ready` again.
    Blocked,
    /// A plan waits for a human's decision on approval request `request`.
    AwaitingApproval {
        /// The id of the [`ApprovalRequest`].
        request: String,
    },
    /// Waiting until `until_ms` before checking again.
    Deferred {
        /// When the step becomes `Ready` again.
        until_ms: u64,
    },
    /// Cancelled (job removed from Git, or cancelled by a human).
    Cancelled,
    /// The attempt ordered child jobs with `wait: true` ([sub-jobs](crate::children)) and
    /// ended waiting for them. Not `AwaitingApproval`: no human is asked, and it cannot be
    /// deferred; stored with the record, so it survives restarts. When every child is
    /// finished the step becomes `Ready` and is attempted again with their outputs.
    WaitingForChildren {
        /// The child jobs' names. (Not `children`: the state is flattened into
        /// [`StepRecord`], whose `children` are the links to every child it ordered.)
        waiting_on: Vec<String>,
    },
}

/// What happens to a step: the input of [`StepState::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepEvent {
    /// Dependencies succeeded (from `Pending`), a deferral or backoff ended, or a blocked
    /// step's job got a new generation.
    MakeReady,
    /// An engine claims the attempt.
    Start {
        /// The engine's id.
        holder: std::sync::Arc<str>,
        /// Lease expiry.
        lease_until_ms: u64,
    },
    /// The holder extends its lease.
    Renew {
        /// New lease expiry.
        lease_until_ms: u64,
    },
    /// The attempt succeeded.
    Succeed,
    /// The attempt failed; `retry_at_ms` when another attempt is allowed.
    Fail {
        /// When to retry, or `None` for a terminal failure.
        retry_at_ms: Option<u64>,
    },
    /// The attempt found the step cannot proceed.
    Block,
    /// The attempt produced a plan that needs a human.
    RequestApproval {
        /// The approval request id.
        request: String,
    },
    /// The attempt asked to be checked again later.
    Defer {
        /// When.
        until_ms: u64,
    },
    /// A human approved the plan.
    Approve,
    /// A human rejected the plan: a new attempt re-plans with the feedback.
    Reject,
    /// The attempt was interrupted (engine stopped, lease expired): it runs again.
    Interrupt,
    /// Cancel the step.
    Cancel,
    /// The attempt ordered child jobs and waits for them.
    WaitForChildren {
        /// The child jobs' names.
        children: Vec<String>,
    },
    /// A child the step waits for failed, and its order said `on_child_failure: fail`.
    ChildFailed,
}

/// A transition that the state machine does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no transition from {from} on {event}")]
pub struct InvalidTransition {
    /// The state's name.
    pub from: &'static str,
    /// The event's name.
    pub event: &'static str,
}

impl StepState {
    /// The state's name (`pending`, `running`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Ready => "ready",
            StepState::Running { .. } => "running",
            StepState::Succeeded => "succeeded",
            StepState::Failed { .. } => "failed",
            StepState::Blocked => "blocked",
            StepState::AwaitingApproval { .. } => "awaiting_approval",
            StepState::Deferred { .. } => "deferred",
            StepState::Cancelled => "cancelled",
            StepState::WaitingForChildren { .. } => "waiting_for_children",
        }
    }

    /// `Succeeded`, `Cancelled` or a `Failed` with no retry left.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            StepState::Succeeded | StepState::Cancelled | StepState::Failed { retry_at_ms: None }
        )
    }

    /// The transition table. Everything not listed is an [`InvalidTransition`]; in
    /// particular `AwaitingApproval` has no `Defer` edge: a step that waits for a human
    /// cannot also be deferred.
    ///
    /// | from | event | to |
    /// |---|---|---|
    /// | Pending, Deferred, Failed(retry), Blocked, WaitingForChildren | MakeReady | Ready |
    /// | Ready | Start | Running |
    /// | Running | Renew | Running (new lease) |
    /// | Running | Succeed / Fail / Block / RequestApproval / Defer | the matching state |
    /// | Running | Interrupt | Ready |
    /// | AwaitingApproval | Approve | Succeeded |
    /// | AwaitingApproval | Reject | Ready |
    /// | Running | WaitForChildren | WaitingForChildren |
    /// | WaitingForChildren | ChildFailed | Failed (no retry) |
    /// | any but Succeeded, Cancelled | Cancel | Cancelled |
    pub fn apply(&self, event: StepEvent) -> Result<StepState, InvalidTransition> {
        use StepEvent as E;
        use StepState as S;
        let next = match (self, event) {
            (
                S::Pending | S::Deferred { .. } | S::Blocked | S::WaitingForChildren { .. },
                E::MakeReady,
            ) => S::Ready,
            (
                S::Failed {
                    retry_at_ms: Some(_),
                },
                E::MakeReady,
            ) => S::Ready,
            (
                S::Ready,
                E::Start {
                    holder,
                    lease_until_ms,
                },
            ) => S::Running {
                holder,
                lease_until_ms,
            },
            (S::Running { holder, .. }, E::Renew { lease_until_ms }) => S::Running {
                holder: holder.clone(),
                lease_until_ms,
            },
            (S::Running { .. }, E::Succeed) => S::Succeeded,
            (S::Running { .. }, E::Fail { retry_at_ms }) => S::Failed { retry_at_ms },
            (S::Running { .. }, E::Block) => S::Blocked,
            (S::Running { .. }, E::RequestApproval { request }) => S::AwaitingApproval { request },
            (S::Running { .. }, E::Defer { until_ms }) => S::Deferred { until_ms },
            (S::Running { .. }, E::Interrupt) => S::Ready,
            (S::AwaitingApproval { .. }, E::Approve) => S::Succeeded,
            (S::AwaitingApproval { .. }, E::Reject) => S::Ready,
            (S::Running { .. }, E::WaitForChildren { children }) => S::WaitingForChildren {
                waiting_on: children,
            },
            (S::WaitingForChildren { .. }, E::ChildFailed) => S::Failed { retry_at_ms: None },
            (s, E::Cancel) if !matches!(s, S::Succeeded | S::Cancelled) => S::Cancelled,
            (s, e) => {
                return Err(InvalidTransition {
                    from: s.name(),
                    event: e.name(),
                });
            }
        };
        Ok(next)
    }
}

impl StepEvent {
    /// The event's name.
    pub fn name(&self) -> &'static str {
        match self {
            StepEvent::MakeReady => "make_ready",
            StepEvent::Start { .. } => "start",
            StepEvent::Renew { .. } => "renew",
            StepEvent::Succeed => "succeed",
            StepEvent::Fail { .. } => "fail",
            StepEvent::Block => "block",
            StepEvent::RequestApproval { .. } => "request_approval",
            StepEvent::Defer { .. } => "defer",
            StepEvent::Approve => "approve",
            StepEvent::Reject => "reject",
            StepEvent::Interrupt => "interrupt",
            StepEvent::Cancel => "cancel",
            StepEvent::WaitForChildren { .. } => "wait_for_children",
            StepEvent::ChildFailed => "child_failed",
        }
    }
}

mod approval;
mod events;
pub(crate) mod record;

pub use approval::*;
pub use events::*;
pub use record::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn awaiting_approval_cannot_be_deferred() {
        let s = StepState::AwaitingApproval {
            request: "j~s~1~1".into(),
        };
        let err = s.apply(StepEvent::Defer { until_ms: 5 }).unwrap_err();
        assert_eq!(err.from, "awaiting_approval");
        assert_eq!(err.event, "defer");
        assert_eq!(s.apply(StepEvent::Approve), Ok(StepState::Succeeded));
        assert_eq!(s.apply(StepEvent::Reject), Ok(StepState::Ready));
    }

    /// The rows of waiting for children, as a table: (from, event, to or refusal).
    #[test]
    fn table_of_waiting_for_children() {
        let running = StepState::Running {
            holder: "e".into(),
            lease_until_ms: 1,
        };
        let waiting = StepState::WaitingForChildren {
            waiting_on: vec!["p--s--k".into()],
        };
        let wait = StepEvent::WaitForChildren {
            children: vec!["p--s--k".into()],
        };
        let rows: Vec<(StepState, StepEvent, Result<StepState, &str>)> = vec![
            (running.clone(), wait.clone(), Ok(waiting.clone())),
            (waiting.clone(), StepEvent::MakeReady, Ok(StepState::Ready)),
            (
                waiting.clone(),
                StepEvent::ChildFailed,
                Ok(StepState::Failed { retry_at_ms: None }),
            ),
            (waiting.clone(), StepEvent::Cancel, Ok(StepState::Cancelled)),
            // Waiting for children is neither deferrable nor a human's to decide, and
            // no attempt is in flight to interrupt.
            (
                waiting.clone(),
                StepEvent::Defer { until_ms: 5 },
                Err("defer"),
            ),
            (waiting.clone(), StepEvent::Approve, Err("approve")),
            (waiting.clone(), StepEvent::Interrupt, Err("interrupt")),
            (waiting.clone(), wait.clone(), Err("wait_for_children")),
            (StepState::Ready, wait.clone(), Err("wait_for_children")),
            (
                StepState::AwaitingApproval {
                    request: "r".into(),
                },
                wait,
                Err("wait_for_children"),
            ),
            (running, StepEvent::ChildFailed, Err("child_failed")),
        ];
        for (from, event, want) in rows {
            let got = from.apply(event.clone());
            match want {
                Ok(to) => assert_eq!(got, Ok(to), "{from:?} on {event:?}"),
                Err(name) => {
                    let e = got.unwrap_err();
                    assert_eq!((e.from, e.event), (from.name(), name), "{from:?}");
                }
            }
        }
        assert!(!waiting.is_terminal());
    }

    #[test]
    fn at_rest_is_finished_or_waiting_for_a_person_with_nothing_to_run() {
        let running = StepState::Running {
            holder: "e".into(),
            lease_until_ms: 1,
        };
        let waiting = StepState::AwaitingApproval {
            request: "r".into(),
        };
        let cases = [
            (JobStatus::Pending, vec![StepState::Pending], false),
            (
                JobStatus::Running,
                vec![StepState::Succeeded, running.clone()],
                false,
            ),
            (JobStatus::Succeeded, vec![StepState::Succeeded], true),
            (
                JobStatus::Failed,
                vec![StepState::Failed { retry_at_ms: None }],
                true,
            ),
            (JobStatus::Cancelled, vec![StepState::Cancelled], true),
            (
                JobStatus::AwaitingApproval,
                vec![waiting.clone(), StepState::Pending],
                true,
            ),
            (
                JobStatus::AwaitingApproval,
                vec![waiting.clone(), StepState::Ready],
                false,
            ),
            (JobStatus::AwaitingApproval, vec![waiting, running], false),
            (JobStatus::Blocked, vec![StepState::Blocked], true),
        ];
        for (status, states, want) in cases {
            let rec = JobRecord {
                name: "j".into(),
                generation: 1,
                spec_hash: 0,
                commit: "".into(),
                path: "".into(),
                template: "".into(),
                status,
                removed: false,
                keep_on_removal: false,
                steps: states
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let mut r = StepRecord::new(format!("s{i}"));
                        r.state = s.clone();
                        std::sync::Arc::new(r)
                    })
                    .collect(),
                revision: 1,
                created_at_ms: 0,
                updated_at_ms: 0,
                target: Default::default(),
                resolved_by: None,
                ordered_by: None,
            };
            assert_eq!(rec.at_rest(), want, "{status:?} {states:?}");
        }
    }

    #[test]
    fn terminal_failure_is_not_retried() {
        let s = StepState::Failed { retry_at_ms: None };
        assert!(s.is_terminal());
        assert!(s.apply(StepEvent::MakeReady).is_err());
        let s = StepState::Failed {
            retry_at_ms: Some(10),
        };
        assert_eq!(s.apply(StepEvent::MakeReady), Ok(StepState::Ready));
    }

    #[test]
    fn succeeded_cannot_be_cancelled_or_restarted() {
        assert!(StepState::Succeeded.apply(StepEvent::Cancel).is_err());
        assert!(
            StepState::Succeeded
                .apply(StepEvent::Start {
                    holder: "e".into(),
                    lease_until_ms: 1
                })
                .is_err()
        );
    }
}
