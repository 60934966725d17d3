//! `SqliteStateStore` against the `StateStore` conformance suite, on real files.

use george_core::ErrorKind;
use george_core::conformance::state_store::{run_all, sample_job, sample_transcript};
use george_core::state::{ApprovalStatus, NewEvent};
use george_core::store::{JobWrite, StateStore, TranscriptKey};
use george_store::{SqliteConfig, SqliteStateStore, Synchronous};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_multi_thread() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStateStore::open(dir.path().join("george.db"))
        .await
        .unwrap();
    run_all(&store).await;
}

#[tokio::test(flavor = "current_thread")]
async fn conformance_current_thread() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStateStore::open(dir.path().join("george.db"))
        .await
        .unwrap();
    run_all(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_without_group_commit() {
    let dir = tempfile::tempdir().unwrap();
    let config = SqliteConfig::new(dir.path().join("george.db"))
        .with_max_batch(1)
        .with_synchronous(Synchronous::Normal);
    let store = SqliteStateStore::open_with(config).await.unwrap();
    run_all(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_twice_on_one_file() {
    // The suite's names are unique per run, so it passes on a file with earlier data.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("george.db");
    run_all(&SqliteStateStore::open(&path).await.unwrap()).await;
    run_all(&SqliteStateStore::open(&path).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("george.db");
    let job = sample_job("survivor");
    let key = TranscriptKey {
        job: "survivor".into(),
        step: "plan".into(),
        attempt: 2,
    };
    let approval = george_core::conformance::state_store::sample_approval(
        "survivor",
        "plan",
        2,
        ApprovalStatus::Open,
    );
    {
        let store = SqliteStateStore::open(&path).await.unwrap();
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
    } // dropped: the writer thread finishes and closes the file

    let store = SqliteStateStore::open(&path).await.unwrap();
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
    // Sequence numbers and revisions continue after reopening.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("george.db");
    let first = SqliteStateStore::open(&path).await.unwrap();
    first.put_meta("k", "v").await.unwrap();
    // A second store on the same file while the first is open, then a third after.
    let second = SqliteStateStore::open(&path).await.unwrap();
    assert_eq!(second.get_meta("k").await.unwrap().as_deref(), Some("v"));
    drop(first);
    drop(second);
    let third = SqliteStateStore::open(&path).await.unwrap();
    assert_eq!(third.get_meta("k").await.unwrap().as_deref(), Some("v"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("george.db");
    drop(SqliteStateStore::open(&path).await.unwrap());
    {
        let conn = bump_user_version(&path);
        drop(conn);
    }
    let err = SqliteStateStore::open(&path).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Backend);
    assert!(!err.is_retryable(), "{err}");
    assert!(err.to_string().contains("newer"), "{err}");
}

/// Bumps `PRAGMA user_version` far past what the crate knows, without depending on
/// rusqlite here: SQLite's header stores it at byte offset 60, big-endian.
fn bump_user_version(path: &std::path::Path) -> std::fs::File {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(60)).unwrap();
    f.write_all(&1000u32.to_be_bytes()).unwrap();
    f.sync_all().unwrap();
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_concurrent_writers_on_distinct_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStateStore::open(dir.path().join("george.db"))
        .await
        .unwrap();
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

/// Several stores (as several processes would) opening the same new file at once all
/// succeed: the switch to WAL and the first migration are retried or serialized.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_opens_of_one_file() {
    for _ in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.db");
        let opens: Vec<_> = (0..6)
            .map(|_| {
                let path = path.clone();
                tokio::spawn(async move { SqliteStateStore::open(&path).await })
            })
            .collect();
        for h in opens {
            h.await
                .unwrap()
                .expect("every concurrent first open succeeds");
        }
    }
}
