//! Table tests of the pure reconciler.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;
use crate::model::*;

fn step(id: &str, deps: &[&str]) -> StepSpec {
    StepSpec {
        id: id.into(),
        description: None,
        agent: None,
        instructions: None,
        tools: vec![],
        command: Some(CommandSpec {
            program: "true".into(),
            args: vec![],
        }),
        execute_approved: None,
        depends_on: deps.iter().map(|d| d.to_string()).collect(),
        done_when: None,
        approval: ApprovalRule::none(),
        retry: RetryPolicy::default(),
        timeout_ms: None,
        budget: None,
        autonomy: None,
        concurrency: None,
    }
}

fn desired(hash: u64, keep: bool) -> DesiredJob {
    let meta = |n: &str| ObjectMeta {
        name: n.into(),
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
    };
    let template = TaskTemplate {
        api_version: API_VERSION.into(),
        kind: "TaskTemplate".into(),
        metadata: meta("t"),
        spec: TemplateSpec {
            description: None,
            parameters: vec![],
            autonomy: None,
            target: BTreeMap::new(),
            concurrency: None,
            steps: vec![step("a", &[]), step("b", &["a"]), step("c", &["b"])],
        },
    };
    let job = Job {
        api_version: API_VERSION.into(),
        kind: "Job".into(),
        metadata: meta("j"),
        spec: JobSpec {
            template: "t".into(),
            params: Default::default(),
            on_removal: if keep {
                RemovalPolicy::Keep
            } else {
                RemovalPolicy::Cancel
            },
            max_parallel_steps: None,
            budget: None,
            target: BTreeMap::new(),
        },
    };
    DesiredJob {
        path: "jobs/j.yaml".into(),
        step_ids: template
            .spec
            .steps
            .iter()
            .map(|s| s.id.as_str().into())
            .collect(),
        job: Arc::new(job),
        template: Arc::new(template),
        params: Arc::new(Default::default()),
        hash,
    }
}

fn observed(states: [StepState; 3]) -> JobRecord {
    let d = desired(7, false);
    let create = reconcile(Some(&d), false, None, 0);
    let mut r = new_record("j", &create[0], "c0", 0).expect("create");
    for (s, st) in r.steps_mut().zip(states) {
        s.state = st;
    }
    r.status = derive_status(r.steps.iter().map(|s| &s.state), false);
    r
}

fn transitions(actions: &[Action]) -> Vec<(String, &'static str)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Transition { step, event, .. } => Some((step.to_string(), event.name())),
            _ => None,
        })
        .collect()
}

use StepState::*;

#[test]
fn new_manifest_creates_the_job() {
    let d = desired(7, false);
    let a = reconcile(Some(&d), false, None, 0);
    assert_eq!(a.len(), 1);
    let r = new_record("j", &a[0], "c0", 5).expect("record");
    assert_eq!(r.generation, 1);
    assert_eq!(r.steps.len(), 3);
    assert!(r.steps.iter().all(|s| s.state == Pending));
}

#[test]
fn first_step_becomes_ready_and_is_dispatched() {
    let d = desired(7, false);
    let r = observed([Pending, Pending, Pending]);
    let a = reconcile(Some(&d), false, Some(&r), 10);
    assert_eq!(transitions(&a), vec![("a".to_string(), "make_ready")]);
    assert!(a.contains(&Action::Dispatch { step: "a".into() }));
    assert!(a.contains(&Action::SetStatus(JobStatus::Running)));
}

#[test]
fn table_of_step_passes() {
    let d = desired(7, false);
    let lease = |t| Running {
        holder: "e1".into(),
        lease_until_ms: t,
    };
    // (states, now, expected transitions, expected requeue)
    #[allow(clippy::type_complexity)]
    let table: Vec<([StepState; 3], u64, Vec<(&str, &str)>, Option<u64>)> = vec![
        (
            [Succeeded, Pending, Pending],
            0,
            vec![("b", "make_ready")],
            None,
        ),
        (
            [Succeeded, Deferred { until_ms: 50 }, Pending],
            10,
            vec![],
            Some(50),
        ),
        (
            [Succeeded, Deferred { until_ms: 50 }, Pending],
            50,
            vec![("b", "make_ready")],
            None,
        ),
        (
            [
                Succeeded,
                Failed {
                    retry_at_ms: Some(90),
                },
                Pending,
            ],
            10,
            vec![],
            Some(90),
        ),
        (
            [
                Succeeded,
                Failed {
                    retry_at_ms: Some(90),
                },
                Pending,
            ],
            95,
            vec![("b", "make_ready")],
            None,
        ),
        ([Succeeded, lease(100), Pending], 10, vec![], Some(100)),
        (
            [Succeeded, lease(100), Pending],
            100,
            vec![("b", "interrupt")],
            None,
        ),
        (
            [Succeeded, Failed { retry_at_ms: None }, Pending],
            0,
            vec![("c", "cancel")],
            None,
        ),
        (
            [
                Succeeded,
                AwaitingApproval {
                    request: "j/b/1".into(),
                },
                Pending,
            ],
            0,
            vec![],
            None,
        ),
        ([Succeeded, Blocked, Pending], 0, vec![], None),
        ([Succeeded, Succeeded, Succeeded], 0, vec![], None),
    ];
    for (states, now, want, requeue) in table {
        let r = observed(states.clone());
        let a = reconcile(Some(&d), false, Some(&r), now);
        let got: Vec<(String, &str)> = transitions(&a);
        let want: Vec<(String, &str)> = want.into_iter().map(|(s, e)| (s.to_string(), e)).collect();
        assert_eq!(got, want, "states {states:?} at {now}");
        let rq = a.iter().find_map(|x| match x {
            Action::RequeueAt(t) => Some(*t),
            _ => None,
        });
        assert_eq!(rq, requeue, "requeue for {states:?} at {now}");
    }
}

#[test]
fn awaiting_approval_is_never_deferred_or_woken_by_time() {
    let d = desired(7, false);
    let r = observed([
        Succeeded,
        AwaitingApproval {
            request: "j/b/1".into(),
        },
        Pending,
    ]);
    for now in [0, 1_000, u64::MAX / 2] {
        let a = reconcile(Some(&d), false, Some(&r), now);
        assert!(a.is_empty(), "{a:?}");
    }
    assert_eq!(r.status, JobStatus::AwaitingApproval);
}

#[test]
fn reconcile_is_idempotent() {
    let d = desired(7, false);
    let mut r = observed([Succeeded, Pending, Pending]);
    let a = reconcile(Some(&d), false, Some(&r), 0);
    apply(&mut r, &a, "c0");
    let again = reconcile(Some(&d), false, Some(&r), 0);
    assert!(
        again
            .iter()
            .all(|x| matches!(x, Action::Dispatch { .. } | Action::RequeueAt(_))),
        "{again:?}"
    );
}

#[test]
fn edited_job_gets_a_new_generation_and_unblocks() {
    let d = desired(8, false);
    let mut r = observed([Succeeded, Blocked, Pending]);
    let a = reconcile(Some(&d), false, Some(&r), 0);
    assert!(matches!(
        a.as_slice(),
        [Action::NewGeneration(JobDefinition { spec_hash: 8, .. })]
    ));
    apply(&mut r, &a, "c1");
    assert_eq!(r.generation, 2);
    assert_eq!(&*r.commit, "c1");
    assert_eq!(r.step("a").map(|s| &s.state), Some(&Succeeded));
    assert_eq!(r.step("b").map(|s| &s.state), Some(&Pending));
}

#[test]
fn removed_job_is_cancelled_unless_kept() {
    let r = observed([Succeeded, Pending, Pending]);
    let a = reconcile(None, false, Some(&r), 0);
    assert_eq!(a[0], Action::Remove { cancel: true });
    assert_eq!(
        transitions(&a),
        vec![("b".to_string(), "cancel"), ("c".to_string(), "cancel")]
    );
    assert!(a.contains(&Action::SetStatus(JobStatus::Cancelled)));

    let mut kept = observed([Succeeded, Pending, Pending]);
    kept.keep_on_removal = true;
    let a = reconcile(None, false, Some(&kept), 0);
    assert_eq!(a, vec![Action::Remove { cancel: false }]);
}

#[test]
fn invalid_manifest_keeps_the_job_as_it_is() {
    let r = observed([Succeeded, Pending, Pending]);
    assert!(reconcile(None, true, Some(&r), 0).is_empty());
}

#[test]
fn status_derivation() {
    let s = |v: Vec<StepState>| derive_status(v.iter(), false);
    assert_eq!(s(vec![Pending, Pending]), JobStatus::Pending);
    assert_eq!(s(vec![Succeeded, Succeeded]), JobStatus::Succeeded);
    assert_eq!(
        s(vec![Succeeded, Failed { retry_at_ms: None }]),
        JobStatus::Failed
    );
    assert_eq!(s(vec![Succeeded, Blocked]), JobStatus::Blocked);
    assert_eq!(
        s(vec![Succeeded, Deferred { until_ms: 1 }]),
        JobStatus::Running
    );
}

#[test]
fn generation_follows_the_source_and_only_grows() {
    // (current, source generation) -> next
    let table = [
        (1, None, 2),
        (1, Some(2), 2),
        (1, Some(7), 7),
        (4, Some(3), 5), // a template edit moved George's generation ahead of the CR's
        (4, Some(4), 5),
        (u64::MAX, None, u64::MAX),
    ];
    for (current, source, want) in table {
        assert_eq!(
            next_generation(current, source),
            want,
            "{current} {source:?}"
        );
    }
}

#[test]
fn a_source_generation_is_the_jobs_generation() {
    let with_generation = |hash: u64, g: &str| {
        let mut d = desired(hash, false);
        let mut job = (*d.job).clone();
        job.metadata.annotations.insert(
            crate::model::SOURCE_GENERATION_ANNOTATION.to_string(),
            g.to_string(),
        );
        d.job = Arc::new(job);
        d
    };
    let d = with_generation(7, "3");
    let a = reconcile(Some(&d), false, None, 0);
    let mut r = new_record("j", &a[0], "c0", 0).expect("record");
    assert_eq!(r.generation, 3, "created at the CR's generation");
    let d = with_generation(8, "5");
    let a = reconcile(Some(&d), false, Some(&r), 0);
    apply(&mut r, &a, "c1");
    assert_eq!(r.generation, 5, "edited: the CR's new generation");
    // Not a number: ignored, George counts on its own.
    let d = with_generation(9, "five");
    let a = reconcile(Some(&d), false, Some(&r), 0);
    apply(&mut r, &a, "c2");
    assert_eq!(r.generation, 6);
}

#[test]
fn a_resolved_job_is_succeeded_and_left_alone_until_a_new_generation() {
    let d = desired(7, false);
    let mut r = observed([Succeeded, Cancelled, Cancelled]);
    r.resolved_by = Some(crate::state::ResolvedBy {
        job: "other".into(),
        step: "fix".into(),
        attempt: 1,
    });
    assert_eq!(record_status(&r), JobStatus::Succeeded);
    // Its status is derived as Succeeded, whatever its steps say.
    assert_eq!(
        reconcile(Some(&d), false, Some(&r), 10),
        vec![Action::SetStatus(JobStatus::Succeeded)]
    );
    r.status = JobStatus::Succeeded;
    assert!(reconcile(Some(&d), false, Some(&r), 10).is_empty());
    // A new definition is new work: the resolution ends with the old one.
    let edited = desired(8, false);
    let a = reconcile(Some(&edited), false, Some(&r), 10);
    assert!(matches!(a.as_slice(), [Action::NewGeneration(_)]), "{a:?}");
    apply(&mut r, &a, "c1");
    assert!(r.resolved_by.is_none());
    assert_eq!(r.generation, 2);
}
