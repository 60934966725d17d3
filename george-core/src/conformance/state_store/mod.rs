//! The [`StateStore`] conformance suite: every point of the trait's `# Contract`.
//!
//! Call [`run_all`] from a backend's tests, or the checks one by one. Each check
//! panics with a message naming the rule the store broke.

mod approvals;
mod approvals_many;
mod claims;
mod records;
mod sample;

use crate::error::{ErrorKind, Result};
use crate::state::{ApprovalStatus, Event, JobRecord, NewEvent, StepState};
use crate::store::{JobWrite, StateStore, TranscriptKey};

pub use approvals::{
    approval_decisions_are_final, approval_insert_must_be_open, approval_insert_never_replaces,
    approval_update_requires_stored, approval_votes_keep_open,
};
pub use approvals_many::{
    approval_races_one_wins, approval_writes_checked_in_order, approvals_listing,
};
pub use claims::{
    claims_due_jobs, commit_sets_wake_up_time, compact_finished_jobs,
    concurrent_claims_are_disjoint, lease_fencing,
};
pub use records::{
    events_are_sequenced, job_round_trips_exactly, jobs_on_target_filters, list_jobs_ordered,
    meta_round_trip, transcripts_stored_and_replaced,
};
pub use sample::{sample_approval, sample_job, sample_transcript};

/// Runs every check of this suite against `store`, one after the other.
///
/// The checks use unique names, so `store` may hold other data, including that of
/// earlier runs.
pub async fn run_all(store: &dyn StateStore) {
    create_then_get(store).await;
    create_twice_conflicts(store).await;
    update_increments_revision(store).await;
    stale_revision_conflicts(store).await;
    concurrent_writers_one_wins(store).await;
    events_are_sequenced(store).await;
    approval_insert_never_replaces(store).await;
    approval_insert_must_be_open(store).await;
    approval_update_requires_stored(store).await;
    approval_decisions_are_final(store).await;
    approval_votes_keep_open(store).await;
    approval_writes_checked_in_order(store).await;
    approval_races_one_wins(store).await;
    approvals_listing(store).await;
    transcripts_stored_and_replaced(store).await;
    meta_round_trip(store).await;
    list_jobs_ordered(store).await;
    job_round_trips_exactly(store).await;
    claims_due_jobs(store).await;
    commit_sets_wake_up_time(store).await;
    concurrent_claims_are_disjoint(store).await;
    compact_finished_jobs(store).await;
    lease_fencing(store).await;
    jobs_on_target_filters(store).await;
}

// ---------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------

/// `<test>-<random>`: names unique to this run of one check.
fn unique(test: &str) -> String {
    format!("{test}-{:08x}", fastrand::u32(..))
}

fn ev(i: u64, action: &str, step: Option<&str>) -> NewEvent {
    NewEvent::new(
        1_700_000_000_000 + i,
        "engine",
        action.to_string(),
        step,
        format!("detail {i}: \u{00e9}\nsecond line"),
    )
}

#[track_caller]
fn ok<T>(r: Result<T>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("StateStore conformance: {what}: unexpected error: {e}"),
    }
}

#[track_caller]
fn expect_conflict(r: Result<u64>, what: &str) {
    expect_err(r, ErrorKind::Conflict, what);
}

#[track_caller]
fn expect_err(r: Result<u64>, kind: ErrorKind, what: &str) {
    match r {
        Err(e) if e.kind() == kind => {}
        Err(e) => panic!("StateStore conformance: {what}: expected {kind}, got: {e}"),
        Ok(rev) => {
            panic!("StateStore conformance: {what}: expected {kind}, got Ok(revision {rev})")
        }
    }
}

async fn get(store: &dyn StateStore, name: &str) -> JobRecord {
    match ok(store.get_job(name).await, "get_job") {
        Some(j) => j,
        None => {
            panic!("StateStore conformance: job {name:?} should be stored, get_job returned None")
        }
    }
}

async fn all_events(store: &dyn StateStore, job: &str) -> Vec<Event> {
    ok(store.events(job, 0, usize::MAX).await, "events")
}

fn with_revision(mut job: JobRecord, revision: u64) -> JobRecord {
    job.revision = revision;
    job
}

fn key(job: &str, step: &str, attempt: u32) -> TranscriptKey {
    TranscriptKey {
        job: job.into(),
        step: step.into(),
        attempt,
    }
}

// ---------------------------------------------------------------------------------
// Checks of job records and revisions
// ---------------------------------------------------------------------------------

/// A created job reads back equal, at revision 1, whatever revision the write named;
/// an unknown job reads as `None`.
pub async fn create_then_get(store: &dyn StateStore) {
    let name = unique("create-then-get");
    let job = sample_job(&name);
    let rev = ok(
        store
            .commit(JobWrite::create(with_revision(job.clone(), 77)))
            .await,
        "create",
    );
    assert_eq!(
        rev, 1,
        "StateStore conformance: a created job must be at revision 1"
    );
    let stored = get(store, &name).await;
    assert_eq!(
        stored,
        with_revision(job, 1),
        "StateStore conformance: the stored job must equal the written one, with revision 1"
    );
    let missing = ok(store.get_job(&format!("{name}-missing")).await, "get_job");
    assert!(
        missing.is_none(),
        "StateStore conformance: get_job of an unknown job must be None"
    );
}

/// Creating an existing job is a `Conflict` that changes nothing.
pub async fn create_twice_conflicts(store: &dyn StateStore) {
    let name = unique("create-twice");
    let job = sample_job(&name);
    ok(
        store
            .commit(JobWrite::create(job.clone()).event(ev(1, "job.created", None)))
            .await,
        "first create",
    );
    let mut other = job.clone();
    other.generation = 99;
    let second = store
        .commit(
            JobWrite::create(other)
                .event(ev(2, "job.created", None))
                .transcript(key(&name, "plan", 1), sample_transcript("x")),
        )
        .await;
    expect_conflict(second, "creating a job that exists");
    assert_eq!(
        get(store, &name).await,
        with_revision(job, 1),
        "StateStore conformance: a refused create must not change the stored job"
    );
    assert_eq!(
        all_events(store, &name).await.len(),
        1,
        "StateStore conformance: a refused create must not append events"
    );
    let t = ok(store.transcript(&key(&name, "plan", 1)).await, "transcript");
    assert!(
        t.is_none(),
        "StateStore conformance: a refused create must not store transcripts"
    );
}

/// Each update names the revision it read and gets revision + 1; the record, including
/// the caller's `updated_at_ms`, is stored as written.
pub async fn update_increments_revision(store: &dyn StateStore) {
    let name = unique("update-revision");
    let mut job = sample_job(&name);
    job.revision = ok(store.commit(JobWrite::create(job.clone())).await, "create");
    for expected in 2..=4u64 {
        job.generation += 1;
        job.updated_at_ms += 1000;
        std::sync::Arc::make_mut(&mut job.steps[2]).state = StepState::Ready;
        std::sync::Arc::make_mut(&mut job.steps[2]).attempt += 1;
        let rev = ok(store.commit(JobWrite::update(job.clone())).await, "update");
        assert_eq!(
            rev, expected,
            "StateStore conformance: an update must return the stored revision + 1"
        );
        job.revision = rev;
        assert_eq!(
            get(store, &name).await,
            job,
            "StateStore conformance: an update must store the record as written, at the new revision"
        );
    }
}

/// A write naming a stale revision (or updating a job that does not exist) is a
/// `Conflict` and stores nothing: not the record, its events, approvals or transcripts.
pub async fn stale_revision_conflicts(store: &dyn StateStore) {
    let name = unique("stale-revision");
    let job = sample_job(&name);
    ok(
        store
            .commit(JobWrite::create(job.clone()).event(ev(1, "job.created", None)))
            .await,
        "create",
    );
    let current = with_revision(job.clone(), 1);
    let current = with_revision(
        current.clone(),
        ok(store.commit(JobWrite::update(current)).await, "update"),
    );
    assert_eq!(current.revision, 2);

    let mut stale = with_revision(job, 1);
    stale.generation = 42;
    let approval = sample_approval(&name, "apply", 1, ApprovalStatus::Open);
    let write = JobWrite::update(stale)
        .event(ev(2, "step.started", Some("apply")))
        .insert_approval(approval.clone())
        .transcript(key(&name, "apply", 1), sample_transcript("stale"));
    expect_conflict(store.commit(write).await, "a write naming a stale revision");

    assert_eq!(
        get(store, &name).await,
        current,
        "StateStore conformance: a stale write must not change the stored job"
    );
    assert_eq!(
        all_events(store, &name).await.len(),
        1,
        "StateStore conformance: a stale write must not append events"
    );
    assert!(
        ok(store.approval(&approval.id).await, "approval").is_none(),
        "StateStore conformance: a stale write must not store approvals"
    );
    assert!(
        ok(
            store.transcript(&key(&name, "apply", 1)).await,
            "transcript"
        )
        .is_none(),
        "StateStore conformance: a stale write must not store transcripts"
    );

    // A newer revision than stored is as wrong as an older one.
    expect_conflict(
        store
            .commit(JobWrite::update(with_revision(current.clone(), 3)))
            .await,
        "a write naming a revision ahead of the stored one",
    );

    // Updating a job that does not exist.
    let ghost = format!("{name}-ghost");
    expect_conflict(
        store
            .commit(JobWrite::update(with_revision(sample_job(&ghost), 1)))
            .await,
        "an update of a job that does not exist",
    );
    assert!(
        ok(store.get_job(&ghost).await, "get_job").is_none(),
        "StateStore conformance: a refused update must not create the job"
    );
}

/// Writers racing with the same revision: exactly one wins; the losers get `Conflict`
/// and leave no trace.
pub async fn concurrent_writers_one_wins(store: &dyn StateStore) {
    let name = unique("concurrent");
    let job = sample_job(&name);
    ok(store.commit(JobWrite::create(job.clone())).await, "create");
    let base = with_revision(job, 1);

    let write = |base: &JobRecord, generation: u64| {
        let mut j = base.clone();
        j.generation = generation;
        JobWrite::update(j).event(ev(generation, "writer", None))
    };
    let (a, b) = futures::join!(
        store.commit(write(&base, 100)),
        store.commit(write(&base, 200))
    );
    let (winner, rev) = match (a, b) {
        (Ok(r), Err(e)) if e.kind() == ErrorKind::Conflict => (100, r),
        (Err(e), Ok(r)) if e.kind() == ErrorKind::Conflict => (200, r),
        (a, b) => panic!(
            "StateStore conformance: of two writers with the same revision exactly one must \
             win and the other get a Conflict; got {:?} and {:?}",
            a.map_err(|e| e.to_string()),
            b.map_err(|e| e.to_string())
        ),
    };
    assert_eq!(
        rev, 2,
        "StateStore conformance: the winner must get revision 2"
    );
    let stored = get(store, &name).await;
    assert_eq!(
        stored.generation, winner,
        "StateStore conformance: the stored record must be the winner's"
    );
    let events = all_events(store, &name).await;
    assert_eq!(
        events.iter().map(|e| e.at_ms).collect::<Vec<_>>(),
        vec![ev(winner, "", None).at_ms],
        "StateStore conformance: only the winner's events may be stored"
    );

    // Eight at once.
    let writes = (1..=8u64).map(|i| store.commit(write(&stored, 1000 + i)));
    let results = futures::future::join_all(writes).await;
    let wins: Vec<u64> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().copied())
        .collect();
    assert_eq!(
        wins,
        vec![3],
        "StateStore conformance: of 8 writers with the same revision exactly one must win (at revision 3)"
    );
    for r in &results {
        if let Err(e) = r {
            assert_eq!(
                e.kind(),
                ErrorKind::Conflict,
                "StateStore conformance: a losing writer must get a Conflict, got: {e}"
            );
        }
    }
    assert_eq!(
        all_events(store, &name).await.len(),
        2,
        "StateStore conformance: only the winners' events may be stored"
    );
}

#[cfg(test)]
mod tests;
