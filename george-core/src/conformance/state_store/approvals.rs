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

pub(super) fn approved(by: &str) -> ApprovalStatus {
    ApprovalStatus::Approved {
        by: format!("human:{by}"),
        at_ms: 1_700_000_040_000,
        note: Some("ok, go".into()),
    }
}

pub(super) fn rejected(by: &str) -> ApprovalStatus {
    ApprovalStatus::Rejected {
        by: format!("human:{by}"),
        at_ms: 1_700_000_050_000,
        reason: "no: data loss".into(),
    }
}

pub(super) fn cancelled() -> ApprovalStatus {
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

pub(super) fn with_status(r: &ApprovalRequest, status: ApprovalStatus) -> ApprovalRequest {
    ApprovalRequest {
        status,
        ..r.clone()
    }
}

/// Creates job `name`, inserting an open request for its step `step`; returns the job
/// at its stored revision and the request.
pub(super) async fn job_with_request(
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
pub(super) fn changing_write(job: &JobRecord, tag: u32) -> JobWrite {
    let mut changed = job.clone();
    changed.generation += 10;
    std::sync::Arc::make_mut(&mut changed.steps[1]).message = Some(format!("refused write {tag}"));
    JobWrite::update(changed)
        .event(ev(u64::from(tag), "refused", Some("plan")))
        .transcript(key(&job.name, "refused", tag), sample_transcript("refused"))
}

/// Asserts that `r` failed with `kind`, and that nothing of the write made by
/// [`changing_write`]`(job, tag)` was stored: not the job, its events or its transcript.
pub(super) async fn assert_refused(
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

pub(super) async fn stored(store: &dyn StateStore, id: &str) -> Option<ApprovalRequest> {
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
        let what = format!("inserting a request that is {}", request.status.name());
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
                "updating a request that is {} to {}",
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
