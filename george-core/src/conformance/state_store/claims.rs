//! Checks of wake-up times, [`StateStore::claim_due`] and [`StateStore::compact`].
//!
//! Times here are far below the sample records' (about 1.7e12 ms), so the other checks'
//! jobs are never due in these claims; each check leaves its own jobs not due.

use std::collections::HashSet;

use super::{expect_conflict, get, ok, sample_job, sample_transcript, unique};
use crate::error::ErrorKind;
use crate::state::{JobRecord, JobStatus, StepRecord, StepState};
use crate::store::{Claim, JobWrite, StateStore, TranscriptKey};

/// A job whose only step is in `state`, last written at `updated_at_ms`.
fn job_in(name: &str, state: StepState, updated_at_ms: u64) -> JobRecord {
    let mut job = sample_job(name);
    let mut step = StepRecord::new("only");
    step.state = state;
    job.steps = vec![step.into()];
    job.status = JobStatus::Running;
    job.updated_at_ms = updated_at_ms;
    job
}

fn claim(now_ms: u64, visibility_ms: u64, limit: usize) -> Claim {
    Claim {
        holder: "conformance".into(),
        now_ms,
        visibility_ms,
        limit,
    }
}

/// The names among `jobs` that start with `prefix`, in the order returned.
fn own(jobs: &[JobRecord], prefix: &str) -> Vec<String> {
    jobs.iter()
        .filter(|j| j.name.starts_with(prefix))
        .map(|j| j.name.clone())
        .collect()
}

/// Moves `name` to a finished state so that it is never due again.
async fn finish(store: &dyn StateStore, name: &str) {
    let mut job = get(store, name).await;
    for s in job.steps_mut() {
        s.state = StepState::Succeeded;
    }
    job.status = JobStatus::Succeeded;
    ok(store.commit(JobWrite::update(job)).await, "finish a job");
}

/// Due jobs are claimed earliest first, up to the limit; a claimed job is hidden for
/// the visibility timeout, then due again; jobs with no wake-up time are never claimed.
pub async fn claims_due_jobs(store: &dyn StateStore) {
    let prefix = unique("claim");
    let ready = format!("{prefix}-ready");
    let deferred = format!("{prefix}-deferred");
    let approval = format!("{prefix}-approval");
    let done = format!("{prefix}-done");
    let writes = [
        job_in(&ready, StepState::Ready, 1_000_000),
        job_in(
            &deferred,
            StepState::Deferred {
                until_ms: 1_005_000,
            },
            1_000_000,
        ),
        job_in(
            &approval,
            StepState::AwaitingApproval {
                request: "r".into(),
            },
            1_000_000,
        ),
        {
            let mut j = job_in(&done, StepState::Succeeded, 1_000_000);
            j.status = JobStatus::Succeeded;
            j
        },
    ];
    for w in writes {
        ok(store.commit(JobWrite::create(w)).await, "create");
    }

    let got = ok(
        store.claim_due(&claim(999_999, 1_000, 10)).await,
        "claim_due",
    );
    assert!(
        own(&got, &prefix).is_empty(),
        "StateStore conformance: no job is due before its wake-up time; claimed {:?}",
        own(&got, &prefix)
    );
    let got = ok(
        store.claim_due(&claim(1_002_000, 1_000, 10)).await,
        "claim_due",
    );
    assert_eq!(
        own(&got, &prefix),
        vec![ready.clone()],
        "StateStore conformance: a job with a Ready step is due at its updated_at_ms; \
         a deferred job only at the end of its deferral; waiting or finished jobs never"
    );
    let claimed = got.iter().find(|j| j.name == ready);
    assert_eq!(
        claimed.map(|j| j.revision),
        Some(1),
        "StateStore conformance: claim_due returns the stored record, with its revision"
    );
    let got = ok(
        store.claim_due(&claim(1_002_500, 1_000, 10)).await,
        "claim_due",
    );
    assert!(
        own(&got, &prefix).is_empty(),
        "StateStore conformance: a claimed job stays hidden for the visibility timeout; \
         claimed {:?}",
        own(&got, &prefix)
    );
    let got = ok(
        store.claim_due(&claim(1_010_000, 1_000, 1)).await,
        "claim_due",
    );
    assert_eq!(
        own(&got, &prefix),
        vec![ready.clone()],
        "StateStore conformance: after the visibility timeout the job is due again, and \
         the earliest wake-up time comes first, up to `limit`"
    );
    let got = ok(
        store.claim_due(&claim(1_010_000, 1_000, 10)).await,
        "claim_due",
    );
    assert_eq!(
        own(&got, &prefix),
        vec![deferred.clone()],
        "StateStore conformance: a deferred job is due when its deferral ends"
    );
    for n in [&ready, &deferred, &approval] {
        finish(store, n).await;
    }
}

/// Every commit sets the wake-up time from the new record, even while claimed: a
/// lease pushes it to the lease's expiry, and an expired lease makes the job due.
pub async fn commit_sets_wake_up_time(store: &dyn StateStore) {
    let prefix = unique("wake");
    let name = format!("{prefix}-lease");
    ok(
        store
            .commit(JobWrite::create(job_in(&name, StepState::Ready, 1_100_000)))
            .await,
        "create",
    );
    let got = ok(
        store.claim_due(&claim(1_100_000, 60_000, 10)).await,
        "claim_due",
    );
    assert_eq!(
        own(&got, &prefix),
        vec![name.clone()],
        "StateStore conformance: a Ready job is due"
    );

    let mut job = get(store, &name).await;
    std::sync::Arc::make_mut(&mut job.steps[0]).state = StepState::Running {
        holder: "engine-a".into(),
        lease_until_ms: 1_103_000,
    };
    ok(store.commit(JobWrite::update(job)).await, "take a lease");
    let got = ok(
        store.claim_due(&claim(1_102_999, 60_000, 10)).await,
        "claim_due",
    );
    assert!(
        own(&got, &prefix).is_empty(),
        "StateStore conformance: a job whose step holds a live lease is not due"
    );
    let got = ok(
        store.claim_due(&claim(1_103_000, 60_000, 10)).await,
        "claim_due",
    );
    assert_eq!(
        own(&got, &prefix),
        vec![name.clone()],
        "StateStore conformance: a commit replaces the claim's hiding time with the \
         record's wake-up time; an expired lease makes the job due"
    );
    finish(store, &name).await;
    let got = ok(
        store.claim_due(&claim(u64::MAX / 2, 0, 1_000_000)).await,
        "claim_due",
    );
    assert!(
        !own(&got, &prefix).contains(&name),
        "StateStore conformance: a finished job is never due"
    );
}

/// Concurrent claims never hand out the same job twice.
pub async fn concurrent_claims_are_disjoint(store: &dyn StateStore) {
    let prefix = unique("disjoint");
    let names: Vec<String> = (0..40).map(|i| format!("{prefix}-{i:02}")).collect();
    for n in &names {
        ok(
            store
                .commit(JobWrite::create(job_in(n, StepState::Ready, 1_200_000)))
                .await,
            "create",
        );
    }
    let mut seen = HashSet::new();
    for _round in 0..10 {
        let c = claim(1_200_000, 3_600_000, 4);
        let claims = (0..6).map(|_| store.claim_due(&c));
        let results = futures::future::join_all(claims).await;
        let mut any = false;
        for r in results {
            for n in own(&ok(r, "claim_due"), &prefix) {
                any = true;
                assert!(
                    seen.insert(n.clone()),
                    "StateStore conformance: job {n:?} was handed to two concurrent claims"
                );
            }
        }
        if !any {
            break;
        }
    }
    assert_eq!(
        seen.len(),
        names.len(),
        "StateStore conformance: every due job must be claimed once by repeated claims"
    );
    for n in &names {
        finish(store, n).await;
    }
}

/// `compact` removes a finished job's transcripts and nothing else; it refuses an
/// unfinished job (`Conflict`) and an unknown one (`NotFound`).
pub async fn compact_finished_jobs(store: &dyn StateStore) {
    let name = unique("compact");
    let other = unique("compact-other");
    let key = |job: &str, attempt| TranscriptKey {
        job: job.into(),
        step: "only".into(),
        attempt,
    };
    let create = |job: &str| {
        JobWrite::create(job_in(job, StepState::Ready, 1_300_000))
            .event(super::ev(1, "job.created", None))
            .transcript(key(job, 1), sample_transcript("one"))
            .transcript(key(job, 2), sample_transcript("two"))
    };
    ok(store.commit(create(&name)).await, "create");
    ok(store.commit(create(&other)).await, "create");

    match store.compact(&name).await {
        Err(e) if e.kind() == ErrorKind::Conflict => {}
        other => panic!(
            "StateStore conformance: compacting an unfinished job must be a Conflict, got {:?}",
            other.map_err(|e| e.to_string())
        ),
    }
    match store.compact(&unique("compact-missing")).await {
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        other => panic!(
            "StateStore conformance: compacting an unknown job must be NotFound, got {:?}",
            other.map_err(|e| e.to_string())
        ),
    }
    finish(store, &name).await;
    finish(store, &other).await;
    let done = ok(store.compact(&name).await, "compact");
    assert_eq!(
        done.transcripts, 2,
        "StateStore conformance: compact reports the transcripts it removed"
    );
    assert!(
        done.bytes > 0,
        "StateStore conformance: compact reports their size"
    );
    for attempt in [1, 2] {
        assert_eq!(
            ok(store.transcript(&key(&name, attempt)).await, "transcript"),
            None,
            "StateStore conformance: compact removes the job's transcripts"
        );
        assert!(
            ok(store.transcript(&key(&other, attempt)).await, "transcript").is_some(),
            "StateStore conformance: compact keeps other jobs' transcripts"
        );
    }
    assert_eq!(
        get(store, &name).await.status,
        JobStatus::Succeeded,
        "StateStore conformance: compact keeps the job record"
    );
    assert_eq!(
        ok(store.events(&name, 0, 100).await, "events").len(),
        1,
        "StateStore conformance: compact keeps the event log"
    );
    let again = ok(store.compact(&name).await, "compact again");
    assert_eq!(
        again.transcripts, 0,
        "StateStore conformance: compact is idempotent"
    );
    // A stale write after compaction is still a conflict: compaction is not a write.
    let stale = get(store, &name).await;
    let mut w = JobWrite::update(stale);
    w.expected_revision = Some(1);
    expect_conflict(store.commit(w).await, "a stale write after compaction");
}

/// Lease fencing: an engine that lost its lease (another engine took the attempt over
/// with a newer revision) cannot write the attempt's outcome; the taker's write stands.
pub async fn lease_fencing(store: &dyn StateStore) {
    let name = unique("fence");
    ok(
        store
            .commit(JobWrite::create(job_in(&name, StepState::Ready, 1_400_000)))
            .await,
        "create",
    );
    // Engine A claims the attempt with a lease.
    let mut a = get(store, &name).await;
    std::sync::Arc::make_mut(&mut a.steps[0]).state = StepState::Running {
        holder: "engine-a".into(),
        lease_until_ms: 1_401_000,
    };
    std::sync::Arc::make_mut(&mut a.steps[0]).attempt = 1;
    ok(
        store.commit(JobWrite::update(a)).await,
        "engine A takes the lease",
    );
    let a_view = get(store, &name).await;

    // A's lease expires; B claims the job and takes the attempt over.
    let got = ok(
        store.claim_due(&claim(1_401_000, 5_000, 10)).await,
        "claim_due",
    );
    let mut b = got
        .into_iter()
        .find(|j| j.name == name)
        .unwrap_or_else(|| panic!("StateStore conformance: a job with an expired lease is due"));
    std::sync::Arc::make_mut(&mut b.steps[0]).state = StepState::Running {
        holder: "engine-b".into(),
        lease_until_ms: 1_411_000,
    };
    std::sync::Arc::make_mut(&mut b.steps[0]).attempt = 2;
    ok(
        store.commit(JobWrite::update(b)).await,
        "engine B takes over",
    );

    // A, unaware, reports its outcome on the record it read.
    let mut late = a_view.clone();
    std::sync::Arc::make_mut(&mut late.steps[0]).state = StepState::Succeeded;
    expect_conflict(
        store
            .commit(JobWrite::update(late).event(super::ev(9, "step.succeeded", Some("only"))))
            .await,
        "the outcome write of an engine whose lease was taken over",
    );
    let stored = get(store, &name).await;
    assert_eq!(
        stored.steps[0].state,
        StepState::Running {
            holder: "engine-b".into(),
            lease_until_ms: 1_411_000,
        },
        "StateStore conformance: the new holder's lease stands after a fenced write"
    );
    assert!(
        ok(store.events(&name, 0, 100).await, "events").is_empty(),
        "StateStore conformance: a fenced write stores none of its events"
    );
    finish(store, &name).await;
}
