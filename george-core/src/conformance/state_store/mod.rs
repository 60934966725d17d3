//! The [`StateStore`] conformance suite: every point of the trait's `# Contract`.
//!
//! Call [`run_all`] from a backend's tests, or the checks one by one. Each check
//! panics with a message naming the rule the store broke.

mod claims;
mod sample;

use serde_json::json;

use crate::error::{ErrorKind, Result};
use crate::provider::Usage;
use crate::state::{ApprovalRequest, ApprovalStatus, Event, JobRecord, NewEvent, StepState};
use crate::store::{JobWrite, StateStore, TranscriptKey};

pub use claims::{
    claims_due_jobs, commit_sets_wake_up_time, compact_finished_jobs,
    concurrent_claims_are_disjoint, lease_fencing,
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
    approvals_require_open(store).await;
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
        action,
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
    match r {
        Err(e) if e.kind() == ErrorKind::Conflict => {}
        Err(e) => panic!("StateStore conformance: {what}: expected a Conflict, got: {e}"),
        Ok(rev) => {
            panic!("StateStore conformance: {what}: expected a Conflict, got Ok(revision {rev})")
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

// ---------------------------------------------------------------------------------
// Checks
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
        job.steps[2].state = StepState::Ready;
        job.steps[2].attempt += 1;
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
        .approval(approval.clone(), false)
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

/// Event sequence numbers start at 1 per job and have no gaps; `after_seq` and `limit`
/// page through them; each job has its own log.
pub async fn events_are_sequenced(store: &dyn StateStore) {
    let a = unique("events-a");
    let b = format!("{a}-b");
    let mut job = sample_job(&a);
    job.revision = ok(
        store
            .commit(JobWrite::create(job.clone()).events((1..=3).map(|i| ev(i, "first", None))))
            .await,
        "create a",
    );
    ok(
        store
            .commit(JobWrite::create(sample_job(&b)).event(ev(50, "other", Some("plan"))))
            .await,
        "create b",
    );
    // A write with no events takes no sequence numbers.
    job.revision = ok(
        store.commit(JobWrite::update(job.clone())).await,
        "update a",
    );
    ok(
        store
            .commit(
                JobWrite::update(job.clone())
                    .event(ev(4, "second", Some("build")))
                    .event(ev(5, "second", None)),
            )
            .await,
        "update a with events",
    );

    let events = all_events(store, &a).await;
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5],
        "StateStore conformance: event seqs must be 1..=n without gaps, in order"
    );
    for (i, e) in events.iter().enumerate() {
        let i = i as u64 + 1;
        let want = ev(
            i,
            if i <= 3 { "first" } else { "second" },
            (i == 4).then_some("build"),
        );
        let want = Event {
            job: a.clone(),
            seq: i,
            at_ms: want.at_ms,
            actor: want.actor,
            action: want.action,
            step: want.step,
            detail: want.detail,
        };
        assert_eq!(
            e, &want,
            "StateStore conformance: an event must read back as appended"
        );
    }

    let page = ok(store.events(&a, 2, 2).await, "events page");
    assert_eq!(
        page.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![3, 4],
        "StateStore conformance: events(after_seq = 2, limit = 2) must return seqs 3 and 4"
    );
    let tail = ok(store.events(&a, 4, 100).await, "events tail");
    assert_eq!(
        tail.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![5],
        "StateStore conformance: events(after_seq = 4) must return seq 5 only"
    );
    assert!(
        ok(store.events(&a, 5, 100).await, "events past the end").is_empty(),
        "StateStore conformance: events after the last seq must be empty"
    );
    assert!(
        ok(store.events(&a, 0, 0).await, "events limit 0").is_empty(),
        "StateStore conformance: events with limit 0 must be empty"
    );

    let other = all_events(store, &b).await;
    assert_eq!(
        other
            .iter()
            .map(|e| (e.seq, e.job.as_str(), e.action.as_str()))
            .collect::<Vec<_>>(),
        vec![(1, b.as_str(), "other")],
        "StateStore conformance: each job must have its own event log starting at 1"
    );

    match store.events(&format!("{a}-missing"), 0, 10).await {
        Ok(events) => assert!(
            events.is_empty(),
            "StateStore conformance: an unknown job has no events"
        ),
        Err(e) => assert_eq!(
            e.kind(),
            ErrorKind::NotFound,
            "StateStore conformance: events of an unknown job must be empty or NotFound, got: {e}"
        ),
    }
}

/// `require_open` lets a decision through only while the stored request is `Open`; a
/// refused decision refuses the whole write (the job record, events and transcripts too).
pub async fn approvals_require_open(store: &dyn StateStore) {
    let name = unique("require-open");
    let mut job = sample_job(&name);
    let open = sample_approval(&name, "plan", 2, ApprovalStatus::Open);
    job.revision = ok(
        store
            .commit(JobWrite::create(job.clone()).approval(open.clone(), false))
            .await,
        "create with an open approval",
    );
    assert_eq!(
        ok(store.approval(&open.id).await, "approval"),
        Some(open.clone()),
        "StateStore conformance: an approval stored with a job write must read back equal"
    );

    // Decide it: allowed, it is open.
    let mut approved = open.clone();
    approved.status = ApprovalStatus::Approved {
        by: "human:alice".into(),
        at_ms: 1_700_000_040_000,
        note: Some("ok, go".into()),
    };
    job.steps[1].state = StepState::Succeeded;
    job.revision = ok(
        store
            .commit(
                JobWrite::update(job.clone())
                    .approval(approved.clone(), true)
                    .event(ev(1, "approval.approved", Some("plan"))),
            )
            .await,
        "deciding an open approval",
    );
    assert_eq!(
        ok(store.approval(&open.id).await, "approval"),
        Some(approved.clone()),
        "StateStore conformance: a decided approval must read back as written"
    );

    // Decide it again: refused, and nothing else of the write is applied.
    let mut rejected = open.clone();
    rejected.status = ApprovalStatus::Rejected {
        by: "human:bob".into(),
        at_ms: 1_700_000_050_000,
        reason: "too late".into(),
    };
    let mut changed = job.clone();
    changed.steps[1].state = StepState::Ready;
    changed.generation += 10;
    let write = JobWrite::update(changed)
        .approval(rejected, true)
        .event(ev(2, "approval.rejected", Some("plan")))
        .transcript(key(&name, "plan", 3), sample_transcript("refused"));
    expect_conflict(
        store.commit(write).await,
        "require_open on an approval that is already decided",
    );
    assert_eq!(
        get(store, &name).await,
        job,
        "StateStore conformance: a write refused for its approval must not change the job (atomicity)"
    );
    assert_eq!(
        ok(store.approval(&open.id).await, "approval"),
        Some(approved),
        "StateStore conformance: a refused decision must not change the approval"
    );
    assert_eq!(
        all_events(store, &name).await.len(),
        1,
        "StateStore conformance: a write refused for its approval must not append events"
    );
    assert!(
        ok(store.transcript(&key(&name, "plan", 3)).await, "transcript").is_none(),
        "StateStore conformance: a write refused for its approval must not store transcripts"
    );

    // require_open on a request that does not exist.
    let ghost = sample_approval(&name, "apply", 9, ApprovalStatus::Cancelled { at_ms: 1 });
    expect_conflict(
        store
            .commit(JobWrite::update(job.clone()).approval(ghost.clone(), true))
            .await,
        "require_open on an approval that does not exist",
    );
    assert!(
        ok(store.approval(&ghost.id).await, "approval").is_none(),
        "StateStore conformance: a refused write must not insert its approval"
    );
    assert_eq!(
        get(store, &name).await.revision,
        job.revision,
        "StateStore conformance: a refused write must not change the job's revision"
    );
}

/// `approvals(open_only)` lists by id, only the open ones when asked.
pub async fn approvals_listing(store: &dyn StateStore) {
    let name = unique("approvals-list");
    let statuses = [
        ApprovalStatus::Open,
        ApprovalStatus::Approved {
            by: "human:alice".into(),
            at_ms: 5,
            note: None,
        },
        ApprovalStatus::Open,
        ApprovalStatus::Rejected {
            by: "human:bob".into(),
            at_ms: 6,
            reason: "no".into(),
        },
        ApprovalStatus::Cancelled { at_ms: 7 },
    ];
    // Inserted out of id order, over two writes.
    let requests: Vec<ApprovalRequest> = statuses
        .into_iter()
        .enumerate()
        .map(|(i, s)| sample_approval(&name, &format!("s{}", 5 - i), 1, s))
        .collect();
    let mut job = sample_job(&name);
    let mut write = JobWrite::create(job.clone());
    for r in &requests[..3] {
        write = write.approval(r.clone(), false);
    }
    job.revision = ok(store.commit(write).await, "create with approvals");
    let mut write = JobWrite::update(job.clone());
    for r in &requests[3..] {
        write = write.approval(r.clone(), false);
    }
    ok(store.commit(write).await, "update with approvals");

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

fn key(job: &str, step: &str, attempt: u32) -> TranscriptKey {
    TranscriptKey {
        job: job.to_string(),
        step: step.to_string(),
        attempt,
    }
}

/// Transcripts are stored per (job, step, attempt) and replaced by a later write with
/// the same key.
pub async fn transcripts_stored_and_replaced(store: &dyn StateStore) {
    let name = unique("transcripts");
    let mut job = sample_job(&name);
    let k1 = key(&name, "plan", 1);
    let k2 = key(&name, "plan", 2);
    let first = sample_transcript("first");
    job.revision = ok(
        store
            .commit(JobWrite::create(job.clone()).transcript(k1.clone(), first.clone()))
            .await,
        "create with a transcript",
    );
    assert_eq!(
        ok(store.transcript(&k1).await, "transcript"),
        Some(first),
        "StateStore conformance: a transcript must read back as written"
    );
    assert!(
        ok(store.transcript(&k2).await, "transcript").is_none(),
        "StateStore conformance: an unknown transcript must be None"
    );

    let replaced = sample_transcript("replaced")[..2].to_vec();
    let second = sample_transcript("second");
    ok(
        store
            .commit(
                JobWrite::update(job)
                    .transcript(k1.clone(), replaced.clone())
                    .transcript(k2.clone(), second.clone()),
            )
            .await,
        "update with transcripts",
    );
    assert_eq!(
        ok(store.transcript(&k1).await, "transcript"),
        Some(replaced),
        "StateStore conformance: a transcript written again must be replaced"
    );
    assert_eq!(
        ok(store.transcript(&k2).await, "transcript"),
        Some(second),
        "StateStore conformance: transcripts of different attempts must be kept apart"
    );
    let empty = key(&name, "empty", 1);
    ok(
        store
            .commit(
                JobWrite::create(sample_job(&format!("{name}-e")))
                    .transcript(empty.clone(), vec![]),
            )
            .await,
        "create with an empty transcript",
    );
    assert_eq!(
        ok(store.transcript(&empty).await, "transcript"),
        Some(vec![]),
        "StateStore conformance: an empty transcript is stored (Some(vec![]), not None)"
    );
}

/// Meta values: absent, set, overwritten; keys independent.
pub async fn meta_round_trip(store: &dyn StateStore) {
    let k = unique("meta");
    let other = format!("{k}-other");
    assert!(
        ok(store.get_meta(&k).await, "get_meta").is_none(),
        "StateStore conformance: an unset meta key must be None"
    );
    ok(store.put_meta(&k, "abc123").await, "put_meta");
    ok(store.put_meta(&other, "").await, "put_meta");
    assert_eq!(
        ok(store.get_meta(&k).await, "get_meta").as_deref(),
        Some("abc123"),
        "StateStore conformance: a meta value must read back"
    );
    let long = format!("{}\u{00e9}\n", "x".repeat(10_000));
    ok(store.put_meta(&k, &long).await, "put_meta overwrite");
    assert_eq!(
        ok(store.get_meta(&k).await, "get_meta"),
        Some(long),
        "StateStore conformance: put_meta must overwrite"
    );
    assert_eq!(
        ok(store.get_meta(&other).await, "get_meta").as_deref(),
        Some(""),
        "StateStore conformance: meta keys must be independent; an empty value is a value"
    );
}

/// `list_jobs` returns every job, ordered by name, at its current revision.
pub async fn list_jobs_ordered(store: &dyn StateStore) {
    let p = unique("list");
    let names = [
        format!("{p}-c"),
        format!("{p}-a"),
        format!("{p}-b"),
        format!("{p}-a-1"),
        format!("{p}-B"),
    ];
    for n in &names {
        ok(
            store.commit(JobWrite::create(sample_job(n))).await,
            "create",
        );
    }
    let updated = with_revision(sample_job(&names[2]), 1);
    ok(store.commit(JobWrite::update(updated)).await, "update");

    let all = ok(store.list_jobs().await, "list_jobs");
    assert!(
        all.windows(2).all(|w| w[0].name < w[1].name),
        "StateStore conformance: list_jobs must be ordered by name (byte order)"
    );
    let ours: Vec<(String, u64)> = all
        .iter()
        .filter(|j| j.name.starts_with(&p))
        .map(|j| (j.name.clone(), j.revision))
        .collect();
    let mut want: Vec<(String, u64)> = names
        .iter()
        .map(|n| (n.clone(), if *n == names[2] { 2 } else { 1 }))
        .collect();
    want.sort();
    assert_eq!(
        ours, want,
        "StateStore conformance: list_jobs must list every job by name, at its current revision"
    );
    let listed = all.into_iter().find(|j| j.name == names[0]);
    assert_eq!(
        listed,
        Some(with_revision(sample_job(&names[0]), 1)),
        "StateStore conformance: list_jobs must return whole records"
    );
}

/// A record with every step state, outputs, rejections and usage reads back exactly,
/// through get_job and list_jobs, after a create and after an update.
pub async fn job_round_trips_exactly(store: &dyn StateStore) {
    let name = unique("round-trip");
    let job = sample_job(&name);
    ok(store.commit(JobWrite::create(job.clone())).await, "create");
    let mut want = with_revision(job, 1);
    assert_eq!(
        get(store, &name).await,
        want,
        "StateStore conformance: a job record must round-trip exactly"
    );

    // Swap states around and clear optional fields, so stale values would show.
    want.steps.rotate_left(3);
    for s in &mut want.steps {
        s.message = None;
        s.rejections.clear();
        s.usage = Usage::default();
    }
    want.steps[0].outputs = Some(json!([]));
    want.steps[9].outputs = Some(json!({}));
    want.removed = true;
    want.status = crate::state::JobStatus::Cancelled;
    want.revision = ok(store.commit(JobWrite::update(want.clone())).await, "update");
    assert_eq!(
        get(store, &name).await,
        want,
        "StateStore conformance: an updated job record must round-trip exactly"
    );
    let listed = ok(store.list_jobs().await, "list_jobs")
        .into_iter()
        .find(|j| j.name == name);
    assert_eq!(
        listed,
        Some(want),
        "StateStore conformance: list_jobs must return the record exactly"
    );
}

#[cfg(test)]
mod tests;
