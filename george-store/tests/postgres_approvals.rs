//! `PgStateStore`'s approval requests where PostgreSQL's concurrency shows: inserts of
//! one id racing on separate connections (where the primary key, not the statement's
//! check, refuses the losers), and refused approval writes inside a batch.
//!
//! Needs `GEORGE_TEST_POSTGRES_URL`, as `postgres_conformance.rs` explains.
#![cfg(feature = "postgres")]

#[macro_use]
mod pg_support;

use george_core::ErrorKind;
use george_core::conformance::state_store::{sample_approval, sample_job};
use george_core::state::{ApprovalRequest, ApprovalStatus, JobRecord, NewEvent};
use george_core::store::{JobWrite, StateStore};
use george_store::PgStateStore;

fn approved() -> ApprovalStatus {
    ApprovalStatus::Approved {
        by: "human:alice".into(),
        at_ms: 5,
        note: None,
    }
}

fn with_status(r: &ApprovalRequest, status: ApprovalStatus) -> ApprovalRequest {
    ApprovalRequest {
        status,
        ..r.clone()
    }
}

/// Creates `n` jobs named `<prefix>-<i>`; returns them at revision 1.
async fn create_jobs(store: &PgStateStore, prefix: &str, n: usize) -> Vec<JobRecord> {
    let mut jobs = Vec::with_capacity(n);
    for i in 0..n {
        let mut job = sample_job(&format!("{prefix}-{i}"));
        job.revision = store.commit(JobWrite::create(job.clone())).await.unwrap();
        jobs.push(job);
    }
    jobs
}

/// Asserts that `job` is stored as it was (at its revision, with no events).
async fn untouched(store: &PgStateStore, job: &JobRecord) {
    assert_eq!(store.get_job(&job.name).await.unwrap().as_ref(), Some(job));
    assert!(store.events(&job.name, 0, 10).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_inserts_of_one_id_one_wins() {
    let schema = schema_or_skip!("racing_inserts_of_one_id_one_wins");
    // One store batching, one not, and several connections each: the inserts run in
    // concurrent transactions that all find the id free when they check it.
    let stores = [
        schema.connect().await,
        PgStateStore::connect_with(schema.config().with_max_batch(1))
            .await
            .unwrap(),
    ];
    for round in 0..10 {
        let jobs = create_jobs(&stores[0], &format!("race{round}"), 8).await;
        let request = sample_approval(&format!("race{round}"), "plan", 1, ApprovalStatus::Open);
        let writes = jobs.iter().enumerate().map(|(i, job)| {
            stores[i % 2].commit(
                JobWrite::update(job.clone())
                    .insert_approval(request.clone())
                    .event(NewEvent::new(1, "engine", "approval.requested", None, "")),
            )
        });
        let results = futures::future::join_all(writes).await;
        let winners: Vec<usize> = (0..jobs.len()).filter(|i| results[*i].is_ok()).collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        for (job, result) in jobs.iter().zip(&results) {
            match result {
                Ok(revision) => assert_eq!(*revision, 2),
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
                    assert!(e.to_string().contains("already exists"), "{e}");
                    untouched(&stores[1], job).await;
                }
            }
        }
        let stored = stores[1].approval(&request.id).await.unwrap();
        assert_eq!(stored, Some(request));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refused_approval_writes_do_not_disturb_their_batch() {
    let schema = schema_or_skip!("refused_approval_writes_do_not_disturb_their_batch");
    let store = PgStateStore::connect_with(schema.config().with_max_batch(64))
        .await
        .unwrap();
    let mut holder = sample_job("holder");
    let decided = sample_approval("holder", "plan", 1, ApprovalStatus::Open);
    holder.revision = store
        .commit(JobWrite::create(holder.clone()).insert_approval(decided.clone()))
        .await
        .unwrap();
    let decided = with_status(&decided, approved());
    store
        .commit(JobWrite::update(holder).update_approval(decided.clone()))
        .await
        .unwrap();

    let jobs = create_jobs(&store, "batch", 40).await;
    let fresh = |i: usize| sample_approval("batch", &format!("s{i}"), 1, ApprovalStatus::Open);
    let writes = jobs.iter().enumerate().map(|(i, job)| {
        let write =
            JobWrite::update(job.clone()).event(NewEvent::new(1, "engine", "tick", None, ""));
        let write = match i % 5 {
            // Refused: the id is stored; the request is no longer open.
            0 => write.insert_approval(with_status(&decided, ApprovalStatus::Open)),
            1 => write.update_approval(with_status(&decided, approved())),
            // Accepted: inserted, then decided, in order.
            2 => write
                .insert_approval(fresh(i))
                .update_approval(with_status(&fresh(i), approved())),
            // Refused whatever is stored: not inserted open.
            3 => write.insert_approval(with_status(&fresh(i), approved())),
            _ => write,
        };
        store.commit(write)
    });
    let results = futures::future::join_all(writes).await;
    for ((i, job), result) in jobs.iter().enumerate().zip(results) {
        match (i % 5, result) {
            (2 | 4, Ok(revision)) => assert_eq!(revision, 2),
            (0 | 1, Err(e)) if e.kind() == ErrorKind::Conflict => untouched(&store, job).await,
            (3, Err(e)) if e.kind() == ErrorKind::InvalidInput => untouched(&store, job).await,
            (_, result) => panic!("write {i}: unexpected {result:?}"),
        }
    }
    assert_eq!(store.approval(&decided.id).await.unwrap(), Some(decided));
    for i in (0..jobs.len()).filter(|i| i % 5 == 2) {
        let want = with_status(&fresh(i), approved());
        assert_eq!(store.approval(&want.id).await.unwrap(), Some(want));
    }
    for i in (0..jobs.len()).filter(|i| i % 5 == 3) {
        assert_eq!(store.approval(&fresh(i).id).await.unwrap(), None);
    }
}
