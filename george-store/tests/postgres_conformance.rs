//! `PgStateStore` against the `StateStore` conformance suite and its multi-engine
//! promises, on a real PostgreSQL server.
//!
//! Set `GEORGE_TEST_POSTGRES_URL` (e.g. `postgres://postgres@127.0.0.1:5432/george_test`)
//! to run them; without it they print that they did not run and pass, except under CI
//! (`CI` set), where a missing URL fails. Each test works in its own fresh schema,
//! dropped at the end, so tests run in parallel and rerun on the same database.
#![cfg(feature = "postgres")]

#[macro_use]
mod pg_support;

use std::collections::HashSet;

use george_core::ErrorKind;
use george_core::conformance::state_store::{
    run_all, sample_approval, sample_job, sample_transcript,
};
use george_core::state::{ApprovalStatus, JobRecord, JobStatus, NewEvent, StepRecord, StepState};
use george_core::store::{Claim, JobWrite, StateStore, TranscriptKey};
use george_store::{PgConfig, PgStateStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_multi_thread() {
    let schema = schema_or_skip!("conformance_multi_thread");
    run_all(&schema.connect().await).await;
}

#[tokio::test(flavor = "current_thread")]
async fn conformance_current_thread() {
    let schema = schema_or_skip!("conformance_current_thread");
    run_all(&schema.connect().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_with_one_connection() {
    let schema = schema_or_skip!("conformance_with_one_connection");
    let store = PgStateStore::connect_with(schema.config().with_pool_size(1))
        .await
        .unwrap();
    run_all(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_without_batching() {
    let schema = schema_or_skip!("conformance_without_batching");
    let store = PgStateStore::connect_with(schema.config().with_max_batch(1))
        .await
        .unwrap();
    run_all(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_twice_on_one_schema() {
    // The suite's names are unique per run, so it passes on a schema with earlier data.
    let schema = schema_or_skip!("conformance_twice_on_one_schema");
    run_all(&schema.connect().await).await;
    run_all(&schema.connect().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_reconnecting() {
    let schema = schema_or_skip!("data_survives_reconnecting");
    let job = sample_job("survivor");
    let key = TranscriptKey {
        job: "survivor".into(),
        step: "plan".into(),
        attempt: 2,
    };
    let approval = sample_approval("survivor", "plan", 2, ApprovalStatus::Open);
    {
        let store = schema.connect().await;
        let rev = store
            .commit(
                JobWrite::create(job.clone())
                    .event(NewEvent::new(1, "engine", "job.created", None, "from git"))
                    .insert_approval(approval.clone())
                    .transcript(key.clone(), sample_transcript("kept")),
            )
            .await
            .unwrap();
        let mut job = job.clone();
        job.revision = rev;
        store
            .commit(JobWrite::update(job).event(NewEvent::new(2, "engine", "x", None, "")))
            .await
            .unwrap();
        store
            .put_meta("last_reconciled_commit", "abc")
            .await
            .unwrap();
    } // dropped: the pool closes its connections

    let store = schema.connect().await;
    let mut want = job;
    want.revision = 2;
    assert_eq!(store.get_job("survivor").await.unwrap(), Some(want.clone()));
    let events = store.events("survivor", 0, 10).await.unwrap();
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(store.approval(&approval.id).await.unwrap(), Some(approval));
    assert_eq!(
        store.transcript(&key).await.unwrap(),
        Some(sample_transcript("kept"))
    );
    assert_eq!(
        store
            .get_meta("last_reconciled_commit")
            .await
            .unwrap()
            .as_deref(),
        Some("abc")
    );
    // Sequence numbers and revisions continue after reconnecting.
    store
        .commit(JobWrite::update(want).event(NewEvent::new(3, "engine", "y", None, "")))
        .await
        .unwrap();
    let events = store.events("survivor", 2, 10).await.unwrap();
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3]);
    assert_eq!(
        store.get_job("survivor").await.unwrap().unwrap().revision,
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_time_migrations() {
    let schema = schema_or_skip!("concurrent_first_time_migrations");
    let connects: Vec<_> = (0..6)
        .map(|_| tokio::spawn(PgStateStore::connect_with(schema.config())))
        .collect();
    let mut stores = Vec::new();
    for c in connects {
        stores.push(c.await.unwrap().expect("every concurrent connect succeeds"));
    }
    // One schema, migrated once: every store sees the others' writes.
    stores[0].put_meta("k", "v").await.unwrap();
    for s in &stores {
        assert_eq!(s.get_meta("k").await.unwrap().as_deref(), Some("v"));
    }
    drop(stores);
    let again = schema.connect().await;
    assert_eq!(again.get_meta("k").await.unwrap().as_deref(), Some("v"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused() {
    let schema = schema_or_skip!("a_newer_schema_is_refused");
    drop(schema.connect().await);
    schema
        .execute(
            "INSERT INTO george_schema_migrations (version, description) VALUES (1000, 'future')",
        )
        .await;
    let err = PgStateStore::connect_with(schema.config())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Backend);
    assert!(!err.is_retryable(), "{err}");
    assert!(err.to_string().contains("newer"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_racing_one_revision_one_wins() {
    let schema = schema_or_skip!("two_stores_racing_one_revision_one_wins");
    let (a, b) = (schema.connect().await, schema.connect().await);

    // Creates race too.
    let (ra, rb) = tokio::join!(
        a.commit(JobWrite::create(sample_job("raced"))),
        b.commit(JobWrite::create(sample_job("raced")))
    );
    assert_eq!(
        [&ra, &rb].iter().filter(|r| r.is_ok()).count(),
        1,
        "{ra:?} {rb:?}"
    );
    let mut job = a.get_job("raced").await.unwrap().unwrap();
    for round in 0..30u64 {
        let write = |who: &str| {
            let mut j = job.clone();
            j.generation = round;
            JobWrite::update(j).event(NewEvent::new(round, who, "tick", None, ""))
        };
        let (ra, rb) = tokio::join!(a.commit(write("a")), b.commit(write("b")));
        let (winner, loser) = match (ra, rb) {
            (Ok(r), Err(e)) | (Err(e), Ok(r)) => (r, e),
            other => panic!("round {round}: exactly one write must win, got {other:?}"),
        };
        assert_eq!(loser.kind(), ErrorKind::Conflict, "{loser}");
        assert_eq!(winner, job.revision + 1);
        job = b.get_job("raced").await.unwrap().unwrap();
        assert_eq!(job.revision, winner);
    }
    let events = a.events("raced", 0, 1000).await.unwrap();
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=30).collect::<Vec<_>>(),
        "one event per winning write, numbered without gaps"
    );
}

fn ready_job(name: &str) -> JobRecord {
    let mut job = sample_job(name);
    let mut step = StepRecord::new("only");
    step.state = StepState::Ready;
    job.steps = vec![step.into()];
    job.status = JobStatus::Running;
    job.updated_at_ms = 5_000;
    job
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claims_from_two_stores_are_disjoint() {
    let schema = schema_or_skip!("claims_from_two_stores_are_disjoint");
    let (a, b) = (schema.connect().await, schema.connect().await);
    let names: HashSet<String> = (0..60).map(|i| format!("job-{i:02}")).collect();
    for n in &names {
        a.commit(JobWrite::create(ready_job(n))).await.unwrap();
    }
    let claim = |holder: &str| Claim {
        holder: holder.into(),
        now_ms: 10_000,
        visibility_ms: 3_600_000,
        limit: 3,
    };
    let claimer = |store: PgStateStore, holder: &'static str| {
        tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let jobs = store.claim_due(&claim(holder)).await.unwrap();
                if jobs.is_empty() {
                    return got;
                }
                got.extend(jobs.into_iter().map(|j| j.name));
            }
        })
    };
    let tasks = [
        claimer(a.clone(), "a1"),
        claimer(a.clone(), "a2"),
        claimer(b.clone(), "b1"),
        claimer(b.clone(), "b2"),
    ];
    let mut seen = HashSet::new();
    for t in tasks {
        for n in t.await.unwrap() {
            assert!(seen.insert(n.clone()), "job {n} was claimed twice");
        }
    }
    assert_eq!(seen, names, "every due job is claimed exactly once");
    assert!(a.claim_due(&claim("late")).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_concurrent_writers_on_distinct_jobs() {
    let schema = schema_or_skip!("many_concurrent_writers_on_distinct_jobs");
    let store = schema.connect().await;
    let mut tasks = Vec::new();
    for i in 0..32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let name = format!("job-{i:02}");
            let mut job = sample_job(&name);
            job.revision = store.commit(JobWrite::create(job.clone())).await.unwrap();
            for _ in 0..10 {
                job.revision = store
                    .commit(
                        JobWrite::update(job.clone())
                            .event(NewEvent::new(1, "engine", "tick", None, "")),
                    )
                    .await
                    .unwrap();
            }
            job.revision
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 11);
    }
    let jobs = store.list_jobs().await.unwrap();
    assert_eq!(jobs.len(), 32);
    for j in &jobs {
        let events = store.events(&j.name, 0, 100).await.unwrap();
        assert_eq!(
            events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            (1..=10).collect::<Vec<_>>()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_whole_and_not_retried() {
    let schema = schema_or_skip!("bad_input_is_refused_whole_and_not_retried");
    let store = schema.connect().await;
    // PostgreSQL text cannot hold NUL: the whole write is refused as invalid input.
    let err = store
        .commit(
            JobWrite::create(sample_job("nul"))
                .event(NewEvent::new(1, "engine", "x", None, "a\0b"))
                .transcript(
                    TranscriptKey {
                        job: "nul".into(),
                        step: "s".into(),
                        attempt: 1,
                    },
                    sample_transcript("t"),
                ),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(!err.is_retryable(), "{err}");
    assert!(store.get_job("nul").await.unwrap().is_none());
    // Duplicates within one write: the last of each key wins, as if applied in order.
    let key = TranscriptKey {
        job: "dup".into(),
        step: "s".into(),
        attempt: 1,
    };
    let first = sample_approval("dup", "s", 1, ApprovalStatus::Open);
    let mut last = first.clone();
    last.status = ApprovalStatus::Cancelled {
        at_ms: 9,
        reason: "moot".into(),
    };
    store
        .commit(
            JobWrite::create(sample_job("dup"))
                .insert_approval(first)
                .update_approval(last.clone())
                .transcript(key.clone(), sample_transcript("one"))
                .transcript(key.clone(), sample_transcript("two")),
        )
        .await
        .unwrap();
    assert_eq!(store.approval(&last.id).await.unwrap(), Some(last));
    assert_eq!(
        store.transcript(&key).await.unwrap(),
        Some(sample_transcript("two"))
    );
}

#[tokio::test(flavor = "current_thread")]
async fn an_unreachable_server_is_a_transient_error() {
    // Needs no server: nothing listens on port 1.
    let config = PgConfig::new("postgres://george@127.0.0.1:1/george")
        .with_connect_timeout(std::time::Duration::from_secs(2));
    let err = PgStateStore::connect_with(config).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
    assert!(err.is_retryable(), "{err}");
    let err = PgStateStore::connect_with(PgConfig::default().with_schema("Bad-Name"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}
