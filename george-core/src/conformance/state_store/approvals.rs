//! Checks of approval requests: inserted once `Open` ([`ApprovalOp::Insert`]), decided
//! once ([`ApprovalOp::Update`]), never replaced; a refused approval refuses its whole
//! write.
//!
//! [`ApprovalOp::Insert`]: crate::store::ApprovalOp::Insert
//! [`ApprovalOp::Update`]: crate::store::ApprovalOp::Update

use super::{all_events, ev, expect_conflict, get, key, ok, sample_job, sample_transcript, unique};
use super::{expect_err, sample_approval};
use crate::error::{ErrorKind, Result};
use crate::state::{ApprovalRequest, ApprovalStatus, JobRecord, Vote};
use crate::store::{JobWrite, StateStore};

fn approved(by: &str) -> ApprovalStatus {
    ApprovalStatus::Approved {
        by: format!("human:{by}"),
        at_ms: 1_700_000_040_000,
        note: Some("ok, go".into()),
    }
}

fn rejected(by: &str) -> ApprovalStatus {
    ApprovalStatus::Rejected {
        by: format!("human:{by}"),
        at_ms: 1_700_000_050_000,
        reason: "no: data loss".into(),
    }
}

fn cancelled() -> ApprovalStatus {
    ApprovalStatus::Cancelled {
        at_ms: 1_700_000_060_000,
        reason: "generation 4 replaced the plan".into(),
    }
}

/// Every status, open or decided.
fn all_statuses() -> [ApprovalStatus; 4] {
    [
        ApprovalStatus::Open,
        approved("zoe"),
        rejected("zoe"),
        cancelled(),
    ]
}

fn with_status(r: &ApprovalRequest, status: ApprovalStatus) -> ApprovalRequest {
    ApprovalRequest {
        status,
        ..r.clone()
    }
}

/// Creates job `name`, inserting an open request for its step `step`; returns the job
/// at its stored revision and the request.
async fn job_with_request(
    store: &dyn StateStore,
    name: &str,
    step: &str,
) -> (JobRecord, ApprovalRequest) {
    let mut job = sample_job(name);
    let request = sample_approval(name, step, 1, ApprovalStatus::Open);
    job.revision = ok(
        store
            .commit(JobWrite::create(job.clone()).insert_approval(request.clone()))
            .await,
        "create a job with an open approval request",
    );
    assert_eq!(
        ok(store.approval(&request.id).await, "approval"),
        Some(request.clone()),
        "StateStore conformance: an approval request inserted with a job write must read back equal"
    );
    (job, request)
}

/// An update of `job` that changes it and carries an event and a transcript (keyed
/// `refused`/`tag`), for a write that the store must refuse whole.
fn changing_write(job: &JobRecord, tag: u32) -> JobWrite {
    let mut changed = job.clone();
    changed.generation += 10;
    changed.steps[1].message = Some(format!("refused write {tag}"));
    JobWrite::update(changed)
        .event(ev(u64::from(tag), "refused", Some("plan")))
        .transcript(key(&job.name, "refused", tag), sample_transcript("refused"))
}

/// Asserts that `r` failed with `kind`, and that nothing of the write made by
/// [`changing_write`]`(job, tag)` was stored: not the job, its events or its transcript.
async fn assert_refused(
    store: &dyn StateStore,
    r: Result<u64>,
    kind: ErrorKind,
    job: &JobRecord,
    tag: u32,
    what: &str,
) {
    expect_err(r, kind, what);
    assert_eq!(
        get(store, &job.name).await,
        *job,
        "StateStore conformance: {what}: a write refused for its approvals must not change the job"
    );
    assert!(
        !all_events(store, &job.name)
            .await
            .iter()
            .any(|e| e.action == "refused"),
        "StateStore conformance: {what}: a write refused for its approvals must not append events"
    );
    assert!(
        ok(
            store.transcript(&key(&job.name, "refused", tag)).await,
            "transcript"
        )
        .is_none(),
        "StateStore conformance: {what}: a write refused for its approvals must not store transcripts"
    );
}

async fn stored(store: &dyn StateStore, id: &str) -> Option<ApprovalRequest> {
    ok(store.approval(id).await, "approval")
}

/// Inserting a request whose id is stored, open or decided, by the same job or another,
/// is a `Conflict` that stores nothing of the write: a request is never replaced.
pub async fn approval_insert_never_replaces(store: &dyn StateStore) {
    let name = unique("insert-twice");
    let (mut job, request) = job_with_request(store, &name, "plan").await;

    let mut other = request.clone();
    other.agent = "impostor".into();
    other.plan.summary = "Drop the table.".into();
    other.digest = other.plan.digest();
    let write = changing_write(&job, 1).insert_approval(other.clone());
    let r = store.commit(write).await;
    assert_refused(
        store,
        r,
        ErrorKind::Conflict,
        &job,
        1,
        "inserting an open request again",
    )
    .await;
    assert_eq!(
        stored(store, &request.id).await,
        Some(request.clone()),
        "StateStore conformance: inserting a request again must not replace it"
    );

    // Decided, then inserted again: must not reopen it.
    let decided = with_status(&request, approved("alice"));
    job.revision = ok(
        store
            .commit(JobWrite::update(job.clone()).update_approval(decided.clone()))
            .await,
        "deciding an open request",
    );
    let r = store
        .commit(changing_write(&job, 2).insert_approval(other))
        .await;
    assert_refused(
        store,
        r,
        ErrorKind::Conflict,
        &job,
        2,
        "inserting a decided request again",
    )
    .await;
    assert_eq!(
        stored(store, &request.id).await,
        Some(decided),
        "StateStore conformance: inserting a decided request again must not reopen it"
    );

    // Ids are unique in the store, not per job.
    let second = format!("{name}-second");
    expect_conflict(
        store
            .commit(JobWrite::create(sample_job(&second)).insert_approval(request.clone()))
            .await,
        "another job inserting a request with a stored id",
    );
    assert!(
        ok(store.get_job(&second).await, "get_job").is_none(),
        "StateStore conformance: a create refused for its approval must not create the job"
    );
}

/// A request is inserted `Open`: inserting one in another status is `InvalidInput` and
/// stores nothing of the write.
pub async fn approval_insert_must_be_open(store: &dyn StateStore) {
    let name = unique("insert-decided");
    let request = sample_approval(&name, "plan", 1, approved("alice"));
    let r = store
        .commit(JobWrite::create(sample_job(&name)).insert_approval(request.clone()))
        .await;
    expect_err(r, ErrorKind::InvalidInput, "inserting an approved request");
    assert!(
        ok(store.get_job(&name).await, "get_job").is_none(),
        "StateStore conformance: a create refused for its approval must not create the job"
    );
    assert!(
        stored(store, &request.id).await.is_none(),
        "StateStore conformance: a request not inserted open must not be stored"
    );

    let (job, _) = job_with_request(store, &name, "other").await;
    for (tag, status) in [(1, rejected("bob")), (2, cancelled())] {
        let request = sample_approval(&name, "plan", tag, status);
        let r = store
            .commit(changing_write(&job, tag).insert_approval(request.clone()))
            .await;
        let what = format!("inserting a {} request", request.status.name());
        assert_refused(store, r, ErrorKind::InvalidInput, &job, tag, &what).await;
        assert!(
            stored(store, &request.id).await.is_none(),
            "StateStore conformance: a request not inserted open must not be stored"
        );
    }
}

/// Updating a request that is not stored is a `Conflict` that stores nothing.
pub async fn approval_update_requires_stored(store: &dyn StateStore) {
    let name = unique("update-absent");
    let (job, _) = job_with_request(store, &name, "plan").await;
    for (tag, status) in [(1, approved("alice")), (2, ApprovalStatus::Open)] {
        let ghost = sample_approval(&name, "ghost", tag, status);
        let r = store
            .commit(changing_write(&job, tag).update_approval(ghost.clone()))
            .await;
        let what = format!("updating an absent request to {}", ghost.status.name());
        assert_refused(store, r, ErrorKind::Conflict, &job, tag, &what).await;
        assert!(
            stored(store, &ghost.id).await.is_none(),
            "StateStore conformance: a refused update must not insert the request"
        );
    }
}

/// An open request may be decided once (approved, rejected or cancelled); any later
/// update of it, to any status, is a `Conflict` that stores nothing.
pub async fn approval_decisions_are_final(store: &dyn StateStore) {
    let name = unique("decided");
    let decisions = [approved("alice"), rejected("bob"), cancelled()];
    let (mut job, _) = job_with_request(store, &name, "first").await;
    let mut tag = 0;
    for (i, decision) in decisions.into_iter().enumerate() {
        let open = sample_approval(&name, &format!("s{i}"), 1, ApprovalStatus::Open);
        job.revision = ok(
            store
                .commit(JobWrite::update(job.clone()).insert_approval(open.clone()))
                .await,
            "inserting an open request",
        );
        let decided = with_status(&open, decision);
        job.revision = ok(
            store
                .commit(
                    JobWrite::update(job.clone())
                        .update_approval(decided.clone())
                        .event(ev(10, "approval.decided", Some("plan"))),
                )
                .await,
            "deciding an open request",
        );
        assert_eq!(
            stored(store, &open.id).await,
            Some(decided.clone()),
            "StateStore conformance: a decided request must read back as written"
        );
        for status in all_statuses() {
            tag += 1;
            let what = format!(
                "updating a {} request to {}",
                decided.status.name(),
                status.name()
            );
            let r = store
                .commit(changing_write(&job, tag).update_approval(with_status(&open, status)))
                .await;
            assert_refused(store, r, ErrorKind::Conflict, &job, tag, &what).await;
            assert_eq!(
                stored(store, &open.id).await,
                Some(decided.clone()),
                "StateStore conformance: {what}: a refused update must not change the request"
            );
        }
    }
}

/// An open request may be updated and stay open (a vote of a rule that needs several
/// approvals), then still be decided.
pub async fn approval_votes_keep_open(store: &dyn StateStore) {
    let name = unique("votes");
    let (mut job, request) = job_with_request(store, &name, "plan").await;
    let mut voted = request.clone();
    voted.votes.push(Vote {
        by: "human:alice".into(),
        at_ms: 1_700_000_030_000,
        note: Some("looks right".into()),
    });
    job.revision = ok(
        store
            .commit(JobWrite::update(job.clone()).update_approval(voted.clone()))
            .await,
        "a vote on an open request (it stays open)",
    );
    assert_eq!(
        stored(store, &request.id).await,
        Some(voted.clone()),
        "StateStore conformance: a vote must read back as written"
    );
    let open = ok(store.approvals(true).await, "approvals(true)");
    assert!(
        open.contains(&voted),
        "StateStore conformance: a request with votes that is still open must be listed as open"
    );

    let mut decided = voted.clone();
    decided.votes.push(Vote {
        by: "human:bob".into(),
        at_ms: 1_700_000_035_000,
        note: None,
    });
    decided.status = approved("bob");
    ok(
        store
            .commit(JobWrite::update(job).update_approval(decided.clone()))
            .await,
        "deciding a request that has votes",
    );
    assert_eq!(
        stored(store, &request.id).await,
        Some(decided),
        "StateStore conformance: a request decided after votes must read back as written"
    );
}

/// Several writes of one request in one job write are checked in order, each against
/// the state the previous one left; the last one is stored.
pub async fn approval_writes_checked_in_order(store: &dyn StateStore) {
    let name = unique("in-order");
    let (mut job, open) = job_with_request(store, &name, "open").await;
    let req = |step: &str| sample_approval(&name, step, 1, ApprovalStatus::Open);

    // Accepted sequences.
    let a = req("a");
    let a_approved = with_status(&a, approved("alice"));
    let b = req("b");
    let mut b_voted = b.clone();
    b_voted.votes.push(Vote {
        by: "human:alice".into(),
        at_ms: 1,
        note: None,
    });
    let b_rejected = with_status(&b_voted, rejected("bob"));
    let mut open_voted = open.clone();
    open_voted.votes = b_voted.votes.clone();
    let open_cancelled = with_status(&open_voted, cancelled());
    job.revision = ok(
        store
            .commit(
                JobWrite::update(job.clone())
                    .insert_approval(a.clone())
                    .insert_approval(b.clone())
                    .update_approval(a_approved.clone())
                    .update_approval(b_voted)
                    .update_approval(open_voted)
                    .update_approval(b_rejected.clone())
                    .update_approval(open_cancelled.clone()),
            )
            .await,
        "insert then decide, insert then vote then decide, vote then decide: in one write",
    );
    for want in [&a_approved, &b_rejected, &open_cancelled] {
        assert_eq!(
            stored(store, &want.id).await.as_ref(),
            Some(want),
            "StateStore conformance: of several writes of a request in one job write, the last must be stored"
        );
    }

    // Refused sequences: each breaks the rule only given the write before it.
    let c = req("c");
    let d = req("d");
    let e = req("e");
    let f = req("f");
    job.revision = ok(
        store
            .commit(JobWrite::update(job.clone()).insert_approval(f.clone()))
            .await,
        "inserting an open request",
    );
    let refused: [(&str, Vec<(bool, ApprovalRequest)>); 4] = [
        (
            "update of an absent request, then its insert",
            vec![(false, c.clone()), (true, c.clone())],
        ),
        (
            "insert of a request, then its insert again",
            vec![(true, d.clone()), (true, d.clone())],
        ),
        (
            "insert, cancel, then approve a request",
            vec![
                (true, e.clone()),
                (false, with_status(&e, cancelled())),
                (false, with_status(&e, approved("alice"))),
            ],
        ),
        (
            "approve, then reject an open request",
            vec![
                (false, with_status(&f, approved("alice"))),
                (false, with_status(&f, rejected("bob"))),
            ],
        ),
    ];
    for (tag, (what, writes)) in (1..).zip(refused) {
        let mut write = changing_write(&job, tag);
        for (insert, r) in writes {
            write = if insert {
                write.insert_approval(r)
            } else {
                write.update_approval(r)
            };
        }
        assert_refused(
            store,
            store.commit(write).await,
            ErrorKind::Conflict,
            &job,
            tag,
            what,
        )
        .await;
    }
    for (absent, what) in [(&c, "c"), (&d, "d"), (&e, "e")] {
        assert!(
            stored(store, &absent.id).await.is_none(),
            "StateStore conformance: a refused write must store none of its requests ({what})"
        );
    }
    assert_eq!(
        stored(store, &f.id).await,
        Some(f),
        "StateStore conformance: a refused write must not change a stored request"
    );
}

/// Two writes racing to insert the same id, or to decide the same open request (the
/// writes being to different jobs, so that only the approval rule separates them):
/// exactly one wins, the other gets a `Conflict`.
pub async fn approval_races_one_wins(store: &dyn StateStore) {
    let name = unique("approval-race");
    let (a, request) = job_with_request(store, &format!("{name}-a"), "plan").await;
    let mut b = sample_job(&format!("{name}-b"));
    b.revision = ok(store.commit(JobWrite::create(b.clone())).await, "create");

    let fresh = sample_approval(&name, "fresh", 1, ApprovalStatus::Open);
    let (x, y) = futures::join!(
        store.commit(JobWrite::update(a.clone()).insert_approval(fresh.clone())),
        store.commit(JobWrite::update(b.clone()).insert_approval(fresh.clone()))
    );
    let (a_won, b_won) = one_wins(x, y, "two inserts of one id");
    let (mut a, mut b) = (a, b);
    a.revision += u64::from(a_won);
    b.revision += u64::from(b_won);

    let yes = with_status(&request, approved("alice"));
    let no = with_status(&request, rejected("bob"));
    let (x, y) = futures::join!(
        store.commit(JobWrite::update(a).update_approval(yes.clone())),
        store.commit(JobWrite::update(b).update_approval(no.clone()))
    );
    let (a_won, _) = one_wins(x, y, "two decisions of one open request");
    assert_eq!(
        stored(store, &request.id).await,
        Some(if a_won { yes } else { no }),
        "StateStore conformance: the stored decision must be the winner's"
    );
}

/// Which of two racing writes won; panics unless exactly one did and the other got a
/// `Conflict`.
#[track_caller]
fn one_wins(x: Result<u64>, y: Result<u64>, what: &str) -> (bool, bool) {
    match (x, y) {
        (Ok(_), Err(e)) if e.kind() == ErrorKind::Conflict => (true, false),
        (Err(e), Ok(_)) if e.kind() == ErrorKind::Conflict => (false, true),
        (x, y) => panic!(
            "StateStore conformance: {what}: exactly one must win and the other get a \
             Conflict; got {:?} and {:?}",
            x.map_err(|e| e.to_string()),
            y.map_err(|e| e.to_string())
        ),
    }
}

/// `approvals(open_only)` lists by id, only the open ones when asked.
pub async fn approvals_listing(store: &dyn StateStore) {
    let name = unique("approvals-list");
    let statuses = [
        ApprovalStatus::Open,
        approved("alice"),
        ApprovalStatus::Open,
        rejected("bob"),
        cancelled(),
    ];
    // Inserted open and out of id order, over two writes; three decided in a third.
    let requests: Vec<ApprovalRequest> = statuses
        .into_iter()
        .enumerate()
        .map(|(i, s)| sample_approval(&name, &format!("s{}", 5 - i), 1, s))
        .collect();
    let open = |r: &ApprovalRequest| with_status(r, ApprovalStatus::Open);
    let mut job = sample_job(&name);
    let mut write = JobWrite::create(job.clone());
    for r in &requests[..3] {
        write = write.insert_approval(open(r));
    }
    job.revision = ok(store.commit(write).await, "create with approvals");
    let mut write = JobWrite::update(job.clone());
    for r in &requests[3..] {
        write = write.insert_approval(open(r));
    }
    job.revision = ok(store.commit(write).await, "update with approvals");
    let mut write = JobWrite::update(job);
    for r in requests.iter().filter(|r| r.status != ApprovalStatus::Open) {
        write = write.update_approval(r.clone());
    }
    ok(store.commit(write).await, "deciding approvals");

    let mut want_all = requests.clone();
    want_all.sort_by(|a, b| a.id.cmp(&b.id));
    let want_open: Vec<ApprovalRequest> = want_all
        .iter()
        .filter(|r| r.status == ApprovalStatus::Open)
        .cloned()
        .collect();

    let all = ok(store.approvals(false).await, "approvals(false)");
    assert!(
        all.windows(2).all(|w| w[0].id < w[1].id),
        "StateStore conformance: approvals must be ordered by id"
    );
    let ours: Vec<ApprovalRequest> = all.into_iter().filter(|r| r.job == name).collect();
    assert_eq!(
        ours, want_all,
        "StateStore conformance: approvals(false) must list every request, as stored"
    );

    let open = ok(store.approvals(true).await, "approvals(true)");
    assert!(
        open.iter().all(|r| r.status == ApprovalStatus::Open),
        "StateStore conformance: approvals(true) must list only open requests"
    );
    assert!(
        open.windows(2).all(|w| w[0].id < w[1].id),
        "StateStore conformance: open approvals must be ordered by id"
    );
    let ours: Vec<ApprovalRequest> = open.into_iter().filter(|r| r.job == name).collect();
    assert_eq!(
        ours, want_open,
        "StateStore conformance: approvals(true) must list every open request"
    );
}
