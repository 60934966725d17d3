use serde_json::json;

use super::*;
use crate::state::StepRecord;

fn link(job: &str, on: ChildFailurePolicy) -> ChildLink {
    ChildLink {
        job: job.into(),
        template: "t".into(),
        wait: true,
        on_child_failure: on,
        parent_close: ParentClosePolicy::Cancel,
        status: None,
        outputs: None,
        closed: false,
    }
}

fn parent(links: Vec<ChildLink>) -> JobRecord {
    let mut s = StepRecord::new("s");
    s.state = StepState::WaitingForChildren {
        waiting_on: links.iter().map(|l| l.job.clone()).collect(),
    };
    s.children = links;
    JobRecord {
        name: "p".into(),
        generation: 1,
        spec_hash: 1,
        commit: "c".into(),
        path: "jobs/p.yaml".into(),
        template: "t".into(),
        status: JobStatus::Running,
        removed: false,
        keep_on_removal: false,
        steps: vec![Arc::new(s)],
        revision: 1,
        created_at_ms: 0,
        updated_at_ms: 0,
        target: Default::default(),
        resolved_by: None,
        ordered_by: None,
    }
}

fn view(name: &str, status: JobStatus) -> ChildView {
    ChildView {
        name: name.into(),
        status,
        outputs: json!({"work": {"n": 1}}),
    }
}

/// Rows: the children's policies and statuses → the waiting step's next state.
#[test]
fn table_of_settling_a_waiting_step() {
    use ChildFailurePolicy::{Continue, Fail};
    use JobStatus::{Failed, Running, Succeeded};
    let waiting = StepState::WaitingForChildren {
        waiting_on: vec!["a".into(), "b".into()],
    };
    let failed = StepState::Failed { retry_at_ms: None };
    type Children = Vec<(ChildFailurePolicy, Option<JobStatus>)>;
    let rows: Vec<(Children, StepState)> = vec![
        (
            vec![(Fail, Some(Succeeded)), (Fail, Some(Succeeded))],
            StepState::Ready,
        ),
        (
            vec![(Fail, Some(Succeeded)), (Fail, Some(Running))],
            waiting.clone(),
        ),
        (vec![(Fail, Some(Succeeded)), (Fail, None)], waiting.clone()),
        (
            vec![(Fail, Some(Failed)), (Fail, Some(Running))],
            failed.clone(),
        ),
        (
            vec![(Continue, Some(Failed)), (Fail, Some(Running))],
            waiting.clone(),
        ),
        (
            vec![(Continue, Some(Failed)), (Fail, Some(Succeeded))],
            StepState::Ready,
        ),
        (
            vec![(Fail, Some(JobStatus::Cancelled)), (Continue, None)],
            failed,
        ),
    ];
    for (children, want) in rows {
        let names = ["a", "b"];
        let mut rec = parent(
            children
                .iter()
                .zip(names)
                .map(|((on, _), n)| link(n, *on))
                .collect(),
        );
        let views: Vec<ChildView> = children
            .iter()
            .zip(names)
            .filter_map(|((_, st), n)| st.map(|st| view(n, st)))
            .collect();
        let events = settle(&mut rec, &views, 7);
        assert_eq!(rec.steps[0].state, want, "{children:?}");
        assert_eq!(
            events.is_empty(),
            want == waiting && views.iter().all(|v| !v.status.is_finished())
        );
        // Settling again changes nothing: it is idempotent.
        let again = rec.clone();
        assert!(settle(&mut rec, &views, 8).is_empty() || want == waiting);
        if want != waiting {
            assert_eq!(rec, again);
        }
    }
}

/// What the durable stores keep is the record's JSON: a waiting step and its links
/// read back the same (the state is flattened into the step; its fields must not
/// collide with the step's own).
#[test]
fn a_waiting_parent_and_a_child_round_trip_through_json() {
    let mut rec = parent(vec![link("a", ChildFailurePolicy::Continue)]);
    std::sync::Arc::make_mut(&mut rec.steps[0]).children[0].status = Some(JobStatus::Failed);
    std::sync::Arc::make_mut(&mut rec.steps[0]).children[0].outputs =
        Some(Arc::new(json!({"x": 1})));
    let text = serde_json::to_string(&rec).unwrap();
    assert_eq!(serde_json::from_str::<JobRecord>(&text).unwrap(), rec);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["steps"][0]["state"], "waiting_for_children");
    assert_eq!(v["steps"][0]["waiting_on"], json!(["a"]));
    let mut child = parent(Vec::new());
    std::sync::Arc::make_mut(&mut child.steps[0]).state = StepState::Pending;
    child.ordered_by = Some(OrderedBy {
        job: "p".into(),
        step: "s".into(),
        attempt: 2,
        commit: "c".into(),
        params: serde_json::from_value(json!({"n": 1})).unwrap(),
        key: "k".into(),
        depth: 1,
        parent_close: ParentClosePolicy::Abandon,
        abandoned: true,
    });
    let text = serde_json::to_string(&child).unwrap();
    assert_eq!(serde_json::from_str::<JobRecord>(&text).unwrap(), child);
    // Records written before sub-jobs existed read as having no parent and no children.
    let mut old: Value = serde_json::to_value(parent(Vec::new())).unwrap();
    old.as_object_mut().unwrap().remove("ordered_by");
    let back: JobRecord = serde_json::from_value(old).unwrap();
    assert!(back.ordered_by.is_none() && back.steps[0].children.is_empty());
}

#[test]
fn a_child_not_waited_for_is_recorded_when_it_ends_and_moves_no_step() {
    let mut rec = parent(vec![link("a", ChildFailurePolicy::Fail)]);
    std::sync::Arc::make_mut(&mut rec.steps[0]).state = StepState::Succeeded;
    std::sync::Arc::make_mut(&mut rec.steps[0]).children[0].wait = false;
    assert_eq!(unsettled(&rec), ["a"]);
    assert!(settle(&mut rec, &[view("a", JobStatus::Running)], 1).is_empty());
    let events = settle(&mut rec, &[view("a", JobStatus::Failed)], 2);
    assert_eq!(events.len(), 1);
    assert_eq!(rec.steps[0].state, StepState::Succeeded);
    assert_eq!(rec.steps[0].children[0].status, Some(JobStatus::Failed));
    assert!(unsettled(&rec).is_empty());
}

#[test]
fn a_finished_child_hands_its_outputs_to_the_link() {
    let mut rec = parent(vec![link("a", ChildFailurePolicy::Fail)]);
    settle(&mut rec, &[view("a", JobStatus::Succeeded)], 1);
    let l = &rec.steps[0].children[0];
    assert_eq!(l.status, Some(JobStatus::Succeeded));
    assert_eq!(l.outputs.as_deref(), Some(&json!({"work": {"n": 1}})));
    let ctx = context_of(&rec);
    assert_eq!(ctx["a"]["outputs"]["work"]["n"], 1);
    assert_eq!(ctx["a"]["status"], "Succeeded");
}

#[test]
fn orders_parse_with_defaults_and_keys_are_deterministic() {
    let o =
        ChildOrder::from_arguments(&json!({"template": "t", "params": {"b": 2, "a": 1}})).unwrap();
    assert!(o.wait);
    assert_eq!(o.on_child_failure, ChildFailurePolicy::Fail);
    assert_eq!(o.parent_close, ParentClosePolicy::Cancel);
    let same =
        ChildOrder::from_arguments(&json!({"template": "t", "params": {"a": 1, "b": 2}})).unwrap();
    assert_eq!(o.key(), same.key());
    assert_eq!(o.key().len(), 12);
    let other =
        ChildOrder::from_arguments(&json!({"template": "t", "params": {"a": 2, "b": 2}})).unwrap();
    assert_ne!(o.key(), other.key());
    for bad in [
        json!({}),
        json!({"template": "t", "params": [1]}),
        json!({"template": "t", "key": "Bad_Key"}),
        json!({"template": "t", "parent_close": "terminate"}),
        json!({"template": "t", "on_child_failure": "ignore"}),
        json!({"template": "t", "wait": "yes"}),
    ] {
        assert!(ChildOrder::from_arguments(&bad).is_err(), "{bad}");
    }
    assert_eq!(child_name("p", "Fan_Out", "k1"), "p--fan-out--k1");
}

#[test]
fn a_cancelled_or_removed_parent_closes_its_unclosed_links() {
    let mut rec = parent(vec![link("a", ChildFailurePolicy::Fail)]);
    assert!(to_close(&rec).is_empty());
    rec.status = JobStatus::Cancelled;
    assert_eq!(to_close(&rec).len(), 1);
    std::sync::Arc::make_mut(&mut rec.steps[0]).children[0].closed = true;
    assert!(to_close(&rec).is_empty());
    let mut kept = parent(vec![link("a", ChildFailurePolicy::Fail)]);
    kept.removed = true;
    kept.keep_on_removal = true;
    assert!(to_close(&kept).is_empty());
    kept.keep_on_removal = false;
    assert_eq!(to_close(&kept).len(), 1);
}
