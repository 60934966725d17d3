//! Table tests of [`record_outcome`] (every outcome × step state) and
//! [`record_decision`] (every decision × request state × rule), and of how a new
//! generation treats approvals.

use serde_json::json;

use super::outcome::*;
use super::*;
use crate::approval::{Approver, Decision};
use crate::error::ErrorKind;
use crate::events::EventAction;
use crate::model::ApprovalRule;
use crate::state::*;

fn record(states: &[(&str, StepState)]) -> JobRecord {
    JobRecord {
        name: "j".into(),
        generation: 2,
        spec_hash: 1,
        commit: "c".into(),
        path: "jobs/j.yaml".into(),
        template: "t".into(),
        status: JobStatus::Running,
        removed: false,
        keep_on_removal: false,
        steps: states
            .iter()
            .map(|(id, s)| {
                let mut r = StepRecord::new(*id);
                r.state = s.clone();
                r.attempt = 1;
                std::sync::Arc::new(r)
            })
            .collect(),
        revision: 1,
        created_at_ms: 0,
        updated_at_ms: 0,
        target: Default::default(),
        resolved_by: None,
        ordered_by: None,
    }
}

fn running(holder: &str) -> StepState {
    StepState::Running {
        holder: holder.into(),
        lease_until_ms: 100,
    }
}

fn plan() -> Plan {
    Plan {
        summary: "scale".into(),
        actions: vec![PlannedAction {
            tool: "commit".into(),
            arguments: json!({"m": 1}),
        }],
    }
}

fn ctx<'a>(rule: &'a ApprovalRule) -> OutcomeContext<'a> {
    OutcomeContext {
        now_ms: 10,
        holder: "e1",
        attempt: 1,
        retry_at_ms: Some(50),
        agent: "a",
        actor: None,
        rule,
        commit_author: None,
        executes: None,
        autonomous: false,
    }
}

#[test]
fn table_of_outcomes() {
    let rule = ApprovalRule::required();
    let outcomes = [
        Outcome::Succeeded(json!({"x": 1})),
        Outcome::Failed {
            reason: "r".into(),
            retryable: true,
        },
        Outcome::Failed {
            reason: "r".into(),
            retryable: false,
        },
        Outcome::Blocked("b".into()),
        Outcome::Deferred {
            until_ms: 99,
            reason: "d".into(),
        },
        Outcome::NeedsApproval(plan()),
    ];
    let expected = [
        StepState::Succeeded,
        StepState::Failed {
            retry_at_ms: Some(50),
        },
        StepState::Failed { retry_at_ms: None },
        StepState::Blocked,
        StepState::Deferred { until_ms: 99 },
        StepState::AwaitingApproval {
            request: "j~s~2~1".into(),
        },
    ];
    let not_held = [
        StepState::Pending,
        StepState::Ready,
        running("e2"),
        StepState::Succeeded,
        StepState::AwaitingApproval {
            request: "x".into(),
        },
        StepState::Cancelled,
    ];
    for (o, want) in outcomes.iter().zip(expected.iter()) {
        let mut rec = record(&[("s", running("e1"))]);
        let out = record_outcome(&mut rec, "s", o.clone(), &ctx(&rule)).unwrap();
        assert_eq!(&rec.steps[0].state, want, "{o:?}");
        assert!(!out.events.is_empty());
        match o {
            Outcome::NeedsApproval(p) => {
                let req = out.insert.expect("a request");
                assert_eq!(req.id, "j~s~2~1");
                assert_eq!(req.generation, 2);
                assert_eq!(req.digest, p.digest());
                assert_eq!(req.rule, rule);
                assert_eq!(req.status, ApprovalStatus::Open);
                assert_eq!(rec.status, JobStatus::AwaitingApproval);
                assert!(
                    out.events
                        .iter()
                        .any(|e| e.action == EventAction::JobStatus.as_str())
                );
            }
            _ => assert!(out.insert.is_none()),
        }
        // Not the holder, or not running: refused, nothing changes.
        for s in &not_held {
            let mut rec = record(&[("s", s.clone())]);
            let before = rec.clone();
            let err = record_outcome(&mut rec, "s", o.clone(), &ctx(&rule)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Conflict, "{s:?} × {o:?}");
            assert_eq!(rec, before);
        }
        // An older attempt's outcome is refused too.
        let mut rec = record(&[("s", running("e1"))]);
        std::sync::Arc::make_mut(&mut rec.steps[0]).attempt = 2;
        assert!(record_outcome(&mut rec, "s", o.clone(), &ctx(&rule)).is_err());
    }
}

#[test]
fn an_execution_marks_its_plan_executed() {
    let rule = ApprovalRule::none();
    let mut rec = record(&[("plan", StepState::Succeeded), ("exec", running("e1"))]);
    std::sync::Arc::make_mut(&mut rec.steps[0]).approved = Some(Box::new(ApprovedPlan {
        request: "j~plan~2~1".into(),
        digest: "d".into(),
        generation: 2,
        executed: false,
    }));
    let mut c = ctx(&rule);
    c.executes = Some("plan");
    record_outcome(&mut rec, "exec", Outcome::Succeeded(json!({})), &c).unwrap();
    assert!(rec.steps[0].approved.as_ref().unwrap().executed);
}

fn waiting(rule: ApprovalRule) -> (JobRecord, ApprovalRequest) {
    let rec = record(&[(
        "s",
        StepState::AwaitingApproval {
            request: "j~s~2~1".into(),
        },
    )]);
    let p = plan();
    let req = ApprovalRequest {
        id: "j~s~2~1".into(),
        job: "j".into(),
        step: "s".into(),
        generation: 2,
        attempt: 1,
        agent: "a".into(),
        digest: p.digest(),
        plan: p,
        rule,
        commit_author: Some("Alice <alice@example.org>".into()),
        votes: vec![],
        requested_at_ms: 1,
        status: ApprovalStatus::Open,
    };
    (rec, req)
}

#[test]
fn table_of_decisions() {
    let alice = Approver::user("alice")
        .in_group("sre")
        .with_email("alice@example.org");
    let bob = Approver::user("bob");
    let any = ApprovalRule::required();
    let sre = ApprovalRule::required().with_approvers(["group:sre"]);
    let two = ApprovalRule::required().with_min_approvals(2);
    let no_self = ApprovalRule::required().with_forbid_self_approval(true);
    let closed = [
        ApprovalStatus::Approved {
            by: "human:x".into(),
            at_ms: 1,
            note: None,
        },
        ApprovalStatus::Rejected {
            by: "human:x".into(),
            at_ms: 1,
            reason: "no".into(),
        },
        ApprovalStatus::Cancelled {
            at_ms: 1,
            reason: "gen".into(),
        },
    ];
    let approve = Decision::approve(None);
    let reject = Decision::reject("too risky");
    // (rule, approver, decision, request status, Ok(step state) or Err(kind))
    type Row<'a> = (
        &'a ApprovalRule,
        &'a Approver,
        &'a Decision,
        ApprovalStatus,
        std::result::Result<&'static str, ErrorKind>,
    );
    let mut rows: Vec<Row<'_>> = vec![
        (&any, &bob, &approve, ApprovalStatus::Open, Ok("succeeded")),
        (&any, &bob, &reject, ApprovalStatus::Open, Ok("ready")),
        (
            &sre,
            &alice,
            &approve,
            ApprovalStatus::Open,
            Ok("succeeded"),
        ),
        (
            &sre,
            &bob,
            &approve,
            ApprovalStatus::Open,
            Err(ErrorKind::PermissionDenied),
        ),
        (
            &sre,
            &bob,
            &reject,
            ApprovalStatus::Open,
            Err(ErrorKind::PermissionDenied),
        ),
        (
            &two,
            &bob,
            &approve,
            ApprovalStatus::Open,
            Ok("awaiting_approval"),
        ),
        (
            &no_self,
            &alice,
            &approve,
            ApprovalStatus::Open,
            Err(ErrorKind::PermissionDenied),
        ),
        (&no_self, &alice, &reject, ApprovalStatus::Open, Ok("ready")),
        (
            &no_self,
            &bob,
            &approve,
            ApprovalStatus::Open,
            Ok("succeeded"),
        ),
    ];
    for st in &closed {
        for d in [&approve, &reject] {
            rows.push((&any, &bob, d, st.clone(), Err(ErrorKind::Conflict)));
        }
    }
    for (i, (rule, who, decision, status, want)) in rows.into_iter().enumerate() {
        let (mut rec, mut req) = waiting((*rule).clone());
        req.status = status;
        let (rec0, req0) = (rec.clone(), req.clone());
        let got = record_decision(&mut rec, &mut req, decision, who, 5);
        match want {
            Ok(state) => {
                got.unwrap_or_else(|e| panic!("row {i}: {e}"));
                assert_eq!(rec.steps[0].state.name(), state, "row {i}");
            }
            Err(kind) => {
                assert_eq!(got.unwrap_err().kind(), kind, "row {i}");
                assert_eq!(
                    (rec, req),
                    (rec0, req0),
                    "row {i}: a refusal changes nothing"
                );
            }
        }
    }
}

#[test]
fn approving_links_the_plan_and_the_two_person_rule_needs_two_people() {
    let (mut rec, mut req) = waiting(ApprovalRule::required().with_min_approvals(2));
    let (bob, carol) = (Approver::user("bob"), Approver::user("carol"));
    let events = record_decision(&mut rec, &mut req, &Decision::approve(None), &bob, 5).unwrap();
    assert_eq!(events[0].action, EventAction::ApprovalVoted.as_str());
    assert_eq!(req.status, ApprovalStatus::Open);
    // The same person twice does not count twice.
    let again = record_decision(&mut rec, &mut req, &Decision::approve(None), &bob, 6);
    assert_eq!(again.unwrap_err().kind(), ErrorKind::Conflict);
    record_decision(&mut rec, &mut req, &Decision::approve(None), &carol, 7).unwrap();
    assert!(matches!(req.status, ApprovalStatus::Approved { .. }));
    let link = rec.steps[0].approved.clone().unwrap();
    assert_eq!(link.request, req.id);
    assert_eq!(link.digest, req.digest);
    assert_eq!(link.generation, 2);
    assert_eq!(rec.status, JobStatus::Succeeded);
}

#[test]
fn a_digest_mismatch_or_an_older_generation_is_refused() {
    let (mut rec, mut req) = waiting(ApprovalRule::required());
    let seen = Decision::approve(None).with_digest("sha256:00");
    let err = record_decision(&mut rec, &mut req, &seen, &Approver::user("b"), 5).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    let ok = Decision::approve(None).with_digest(req.digest.clone());
    rec.generation = 3;
    let err = record_decision(&mut rec, &mut req, &ok, &Approver::user("b"), 5).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    rec.generation = 2;
    record_decision(&mut rec, &mut req, &ok, &Approver::user("b"), 5).unwrap();
}

#[test]
fn a_new_generation_cancels_waiting_plans_and_voids_unexecuted_ones() {
    let def = |gated: &[&str]| JobDefinition {
        path: "jobs/j.yaml".into(),
        template: "t".into(),
        spec_hash: 9,
        steps: ["wait", "approved", "done", "plain"]
            .into_iter()
            .map(std::sync::Arc::from)
            .collect(),
        keep_on_removal: false,
        source_generation: None,
        target: Default::default(),
        gated: gated.iter().map(|s| s.to_string()).collect(),
    };
    let mut rec = record(&[
        (
            "wait",
            StepState::AwaitingApproval {
                request: "j~wait~2~1".into(),
            },
        ),
        ("approved", StepState::Succeeded),
        ("done", StepState::Succeeded),
        ("plain", StepState::Succeeded),
    ]);
    let link = |executed| {
        Box::new(ApprovedPlan {
            request: "r".into(),
            digest: "d".into(),
            generation: 2,
            executed,
        })
    };
    std::sync::Arc::make_mut(&mut rec.steps[1]).approved = Some(link(false));
    std::sync::Arc::make_mut(&mut rec.steps[2]).approved = Some(link(true));
    let applied = apply(&mut rec, &[Action::NewGeneration(def(&["plain"]))], "c2");
    assert_eq!(
        applied
            .cancel_approvals
            .iter()
            .map(|(id, _)| id.as_str())
            .collect::<Vec<_>>(),
        ["j~wait~2~1"]
    );
    let states: Vec<&str> = rec.steps.iter().map(|s| s.state.name()).collect();
    // Waiting: plans again. Approved, not executed: voided. Executed: kept. A gated
    // step that succeeded without an approval: plans again.
    assert_eq!(states, ["pending", "pending", "succeeded", "pending"]);
    assert!(rec.steps[1].approved.is_none() && rec.steps[1].outputs.is_none());
    assert!(
        applied
            .changes
            .iter()
            .any(|(s, a, _)| s.as_deref() == Some("approved") && *a == EventAction::ApprovalVoided)
    );
}
