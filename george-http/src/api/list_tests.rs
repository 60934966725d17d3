use george_core::state::{JobStatus, StepRecord};

use super::*;

fn rec(name: &str, template: &str, status: JobStatus, created: u64) -> JobRecord {
    let mut step = StepRecord::new("s");
    step.message = Some(format!("{name} says hello"));
    JobRecord {
        name: name.into(),
        generation: 1,
        spec_hash: 0,
        commit: "c".into(),
        path: format!("jobs/{name}.yaml").into(),
        template: template.into(),
        status,
        removed: false,
        keep_on_removal: false,
        steps: vec![step.into()],
        revision: 1,
        created_at_ms: created,
        updated_at_ms: created,
        target: Default::default(),
        resolved_by: None,
        ordered_by: None,
    }
}

fn jobs() -> Vec<JobRecord> {
    vec![
        rec("c", "t1", JobStatus::Running, 30),
        rec("a", "t1", JobStatus::Failed, 20),
        rec("b", "t2", JobStatus::Running, 20),
        rec("d", "t2", JobStatus::Succeeded, 10),
    ]
}

fn names(l: &JobList) -> Vec<&str> {
    l.jobs.iter().map(|j| j.name.as_str()).collect()
}

fn agents() -> BTreeMap<String, Vec<String>> {
    BTreeMap::from([("t2".to_string(), vec!["planner".to_string()])])
}

fn q(f: impl FnOnce(&mut JobQuery)) -> JobQuery {
    let mut q = JobQuery::default();
    f(&mut q);
    q
}

#[test]
fn filters_combine() {
    let a = agents();
    let all = page(jobs(), &JobQuery::default(), &a).unwrap();
    assert_eq!(names(&all), ["a", "b", "c", "d"]);
    let running = page(jobs(), &q(|q| q.status = Some("running,failed".into())), &a).unwrap();
    assert_eq!(names(&running), ["a", "b", "c"]);
    let t = page(jobs(), &q(|q| q.template = Some("t2".into())), &a).unwrap();
    assert_eq!(names(&t), ["b", "d"]);
    let ag = page(jobs(), &q(|q| q.agent = Some("planner".into())), &a).unwrap();
    assert_eq!(names(&ag), ["b", "d"]);
    let text = page(jobs(), &q(|q| q.text = Some("C SAYS".into())), &a).unwrap();
    assert_eq!(names(&text), ["c"]);
    assert_eq!(text.total, 1);
    assert_eq!(ag.jobs[0].agents, ["planner"]);
}

#[test]
fn sorts_are_total_and_reversible() {
    let a = agents();
    let by = |s: &str| names(&page(jobs(), &q(|q| q.sort = Some(s.into())), &a).unwrap()).join("");
    assert_eq!(by("created"), "dabc");
    assert_eq!(by("-created"), "cbad");
    assert_eq!(by("-name"), "dcba");
    assert_eq!(by("status"), "abcd");
}

#[test]
fn cursors_walk_every_job_once_even_when_jobs_are_added_between_pages() {
    let a = agents();
    let q1 = q(|q| {
        q.sort = Some("-created".into());
        q.limit = Some(2);
    });
    let p1 = page(jobs(), &q1, &a).unwrap();
    assert_eq!(names(&p1), ["c", "b"]);
    let mut more = jobs();
    more.push(rec("new", "t1", JobStatus::Pending, 40));
    let q2 = q(|q| {
        q.sort = Some("-created".into());
        q.limit = Some(2);
        q.cursor = p1.next_cursor.clone();
    });
    let p2 = page(more, &q2, &a).unwrap();
    assert_eq!(names(&p2), ["a", "d"]);
    assert_eq!(p2.next_cursor, None);
    let by_number = page(
        jobs(),
        &q(|q| {
            q.limit = Some(3);
            q.page = Some(2);
        }),
        &a,
    )
    .unwrap();
    assert_eq!(names(&by_number), ["d"]);
}

#[test]
fn bad_queries_are_problems() {
    let a = agents();
    let bad = [
        q(|q| q.status = Some("sleeping".into())),
        q(|q| q.sort = Some("size".into())),
        q(|q| q.limit = Some(0)),
        q(|q| q.limit = Some(MAX_LIMIT + 1)),
        q(|q| q.cursor = Some("zz".into())),
        q(|q| q.page = Some(0)),
        q(|q| {
            q.cursor = Some("00".into());
            q.page = Some(1);
        }),
    ];
    for query in bad {
        let e = page(jobs(), &query, &a).expect_err("refused");
        assert_eq!(e.status, 400, "{query:?}");
    }
    let p1 = page(jobs(), &q(|q| q.limit = Some(1)), &a).unwrap();
    let other = q(|q| {
        q.sort = Some("created".into());
        q.cursor = p1.next_cursor;
    });
    let e = page(jobs(), &other, &a).expect_err("another sort");
    assert!(e.detail.contains("made for sort"), "{e}");
}
