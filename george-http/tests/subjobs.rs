//! Sub-jobs in the API's job view: a parent lists the child jobs its steps ordered, a
//! child names the job, step, attempt and commit that ordered it.

mod support;

use george_core::children::{ChildFailurePolicy, ChildLink, OrderedBy, ParentClosePolicy};
use george_core::state::{JobRecord, JobStatus, StepRecord, StepState};
use george_core::store::{JobWrite, StateStore};
use support::{READER, Server};

fn record(name: &str) -> JobRecord {
    let mut s = StepRecord::new("split");
    s.state = StepState::Succeeded;
    JobRecord {
        name: name.into(),
        generation: 1,
        spec_hash: 1,
        commit: "0123456789abcdef".into(),
        path: format!("jobs/{name}.yaml").into(),
        template: "t".into(),
        status: JobStatus::Succeeded,
        removed: false,
        keep_on_removal: false,
        steps: vec![s.into()],
        revision: 0,
        created_at_ms: 1,
        updated_at_ms: 1,
        target: Default::default(),
        resolved_by: None,
        ordered_by: None,
    }
}

#[tokio::test]
async fn the_job_view_shows_parent_and_children() {
    let s = Server::start().await;
    let child_name = "tree--split--k1";
    let mut parent = record("tree");
    std::sync::Arc::make_mut(&mut parent.steps[0])
        .children
        .push(ChildLink {
            job: child_name.into(),
            template: "work".into(),
            wait: true,
            on_child_failure: ChildFailurePolicy::Fail,
            parent_close: ParentClosePolicy::Finish,
            status: Some(JobStatus::Succeeded),
            outputs: None,
            closed: false,
        });
    let mut child = record(child_name);
    child.path = "ordered-by:tree/split".into();
    child.template = "work".into();
    child.ordered_by = Some(OrderedBy {
        job: "tree".into(),
        step: "split".into(),
        attempt: 2,
        commit: "0123456789abcdef".into(),
        params: Default::default(),
        key: "k1".into(),
        depth: 1,
        parent_close: ParentClosePolicy::Finish,
        abandoned: false,
    });
    s.store.commit(JobWrite::create(parent)).await.unwrap();
    s.store.commit(JobWrite::create(child)).await.unwrap();

    let (st, p) = s.get("/api/v1/jobs/tree", Some(READER)).await;
    assert_eq!(st, 200, "{p}");
    assert!(p.get("parent").is_none());
    let c = &p["children"][0];
    assert_eq!(c["job"], child_name);
    assert_eq!(c["step"], "split");
    assert_eq!(c["template"], "work");
    assert_eq!(c["wait"], true);
    assert_eq!(c["status"], "succeeded");
    assert_eq!(c["parent_close"], "finish");

    let (st, c) = s
        .get(&format!("/api/v1/jobs/{child_name}"), Some(READER))
        .await;
    assert_eq!(st, 200, "{c}");
    assert_eq!(c["parent"]["job"], "tree");
    assert_eq!(c["parent"]["step"], "split");
    assert_eq!(c["parent"]["attempt"], 2);
    assert_eq!(c["parent"]["commit"], "0123456789abcdef");
    assert_eq!(c["parent"]["depth"], 1);
    assert!(c.get("children").is_none());
    s.shutdown().await;
}
