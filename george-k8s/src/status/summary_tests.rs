//! Unit tests of the projection (`summary.rs`).

use super::*;

fn record(status: CoreStatus, steps: Vec<StepRecord>) -> JobRecord {
    JobRecord {
        name: "j".into(),
        generation: 3,
        spec_hash: 0,
        commit: "abc".into(),
        path: "jobs/j.yaml".into(),
        template: "t".into(),
        status,
        removed: false,
        keep_on_removal: false,
        steps: steps.into_iter().map(Into::into).collect(),
        revision: 7,
        created_at_ms: 0,
        updated_at_ms: 1_700_000_000_000,
        target: Default::default(),
        resolved_by: None,
        ordered_by: None,
    }
}

fn step(id: &str, state: StepState) -> StepRecord {
    let mut s = StepRecord::new(id);
    s.state = state;
    s
}

#[test]
fn a_waiting_job_names_its_step_and_request() {
    let rec = record(
        CoreStatus::AwaitingApproval,
        vec![
            step(
                "plan",
                StepState::AwaitingApproval {
                    request: "r1".into(),
                },
            ),
            step("apply", StepState::Pending),
        ],
    );
    let s = job_status(&rec, Some(2), None, 1_700_000_001_000);
    assert_eq!(s.phase, Some(Phase::AwaitingApproval));
    assert_eq!(s.current_step.as_deref(), Some("plan"));
    assert_eq!(s.open_approvals, ["r1"]);
    assert_eq!(s.observed_generation, Some(2));
    assert_eq!(s.george_generation, Some(3));
    assert_eq!(s.updated_at.as_deref(), Some("2023-11-14T22:13:20Z"));
    let waiting = s
        .conditions
        .iter()
        .find(|c| c.type_ == "AwaitingApproval")
        .unwrap();
    assert_eq!(waiting.status, ConditionStatus::True);
    assert!(waiting.message.contains("r1"));
    // The same record gives the same status: nothing to write again.
    assert_eq!(job_status(&rec, Some(2), Some(&s), 1_700_000_099_000), s);
}

#[test]
fn the_status_is_bounded() {
    let steps = (0..MAX_STEPS + 5)
        .map(|i| {
            let mut s = step(&format!("s{i}"), StepState::Blocked);
            s.message = Some("x".repeat(5 * MAX_MESSAGE));
            s
        })
        .collect();
    let s = job_status(&record(CoreStatus::Blocked, steps), Some(1), None, 0);
    assert_eq!(s.steps.len(), MAX_STEPS);
    assert_eq!(s.steps_omitted, Some(5));
    assert!(
        s.steps
            .iter()
            .all(|st| st.message.as_ref().unwrap().chars().count() == MAX_MESSAGE)
    );
    let stalled = s.conditions.iter().find(|c| c.type_ == "Stalled").unwrap();
    assert_eq!(stalled.status, ConditionStatus::True);
}

#[test]
fn transitions_tell_the_story() {
    let waiting = job_status(
        &record(
            CoreStatus::AwaitingApproval,
            vec![step(
                "plan",
                StepState::AwaitingApproval {
                    request: "r1".into(),
                },
            )],
        ),
        Some(1),
        None,
        0,
    );
    // First sight: only the phase.
    let first: Vec<_> = transitions(None, &waiting)
        .into_iter()
        .map(|t| t.reason)
        .collect();
    assert_eq!(first, ["JobAwaitingApproval"]);
    let mut approved = step("plan", StepState::Succeeded);
    approved.attempt = 0;
    let done = job_status(
        &record(CoreStatus::Succeeded, vec![approved]),
        Some(1),
        Some(&waiting),
        0,
    );
    let reasons: Vec<_> = transitions(Some(&waiting), &done)
        .into_iter()
        .map(|t| t.reason)
        .collect();
    assert_eq!(reasons, ["JobSucceeded", "StepApproved"]);
    let rejected = job_status(
        &record(CoreStatus::Running, vec![step("plan", StepState::Ready)]),
        Some(1),
        Some(&waiting),
        0,
    );
    let t = transitions(Some(&waiting), &rejected);
    assert_eq!(t[1].reason, "PlanRejected");
    assert_eq!(t[1].type_, EventType::Warning);
}
