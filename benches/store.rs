//! `StateStore` benchmarks: what one transition costs on each backend, and the disk's
//! own limit.
//!
//! For each backend `<backend>`: `memory` (`InMemoryStateStore`), `sqlite_full`
//! (`SqliteStateStore` on a real temp file, `synchronous=FULL`: every acknowledged commit
//! is on disk) and `postgres` (`PgStateStore`, feature `postgres`):
//!
//! - `store/<backend>/transition_single`: one writer commits one job update at a time
//!   (a realistic 10-step [`JobRecord`] with one step changing state, plus one event)
//!   and awaits it before the next. Throughput in transitions (elements) per second:
//!   for a durable store, one sync per transition.
//! - `store/<backend>/transition_batched_64`: 64 concurrent writers, each updating its
//!   own job in a loop, so the store can group commits (one sync for many). Throughput
//!   in transitions per second, all writers together. Every store keeps its default
//!   configuration (SQLite: batches of up to 64 commits; PostgreSQL: 16 connections,
//!   batches of up to 32).
//! - `store/<backend>/status_no_transcript` and `.../status_with_1mb_transcript`:
//!   latency of `get_job` for a job without a transcript, and for the same record with
//!   a 1 MiB transcript stored beside it. The two should match: job reads must not load
//!   transcripts.
//!
//! And `fsync/raw`: the machine's raw synced-write rate, appending 4 KiB to a file in a
//! temp dir (same disk as the SQLite file) and calling `File::sync_data` after each
//! write. Throughput in writes per second: the baseline that `transition_single` on a
//! durable store is bound by. `fsync/raw_overwrite` rewrites the same 4 KiB in place
//! instead: the file's size does not change, so `sync_data` need not also commit the
//! file system's metadata journal. That is the case of SQLite's write-ahead log once it
//! has been reset and is rewritten from its start: one reason SQLite can beat
//! `fsync/raw`.
//!
//! Run: `cargo bench --bench store` (memory, SQLite, fsync), or with PostgreSQL:
//! `GEORGE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/george_test cargo bench
//! --bench store --features postgres` (each run uses a fresh schema, dropped at the
//! end). Without the variable, the PostgreSQL groups are skipped with a message.

use std::hint::black_box;
use std::io::{Seek, SeekFrom, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use george::provider::{AssistantMessage, Message, ToolCall};
use george::state::{JobRecord, NewEvent, StepState};
use george::store::{DynStateStore, JobWrite, StateStore, TranscriptKey};
use george::stores::{InMemoryStateStore, SqliteConfig, SqliteStateStore, Synchronous};
use george_core::conformance::state_store::sample_job;
use tokio::runtime::Runtime;
use tokio::sync::Mutex;

/// Concurrent writers of `transition_batched_64`.
const WRITERS: usize = 64;
/// Target size of the transcript beside the `status_with_1mb_transcript` job (JSON).
const TRANSCRIPT_BYTES: usize = 1 << 20;
/// Size of one `fsync/raw` write.
const BLOCK: usize = 4096;
/// The index of the step the transitions flip (`test` in `sample_job`).
const STEP: usize = 3;

/// A store with its jobs created, kept across criterion's calls (each call continues
/// from the revisions the previous one left).
struct Fixture {
    store: DynStateStore,
    single: Mutex<JobRecord>,
    writers: Mutex<Vec<JobRecord>>,
}

/// The next transition of `job`: its step `test` goes from `Ready` to `Running` (a
/// dispatch) or back (a lease given up), with the matching event.
fn transition(job: &mut JobRecord) -> JobWrite {
    let at_ms = job.updated_at_ms + 1;
    job.updated_at_ms = at_ms;
    let step = std::sync::Arc::make_mut(&mut job.steps[STEP]);
    let action = match step.state {
        StepState::Ready => {
            step.state = StepState::Running {
                holder: "engine-1".into(),
                lease_until_ms: at_ms + 30_000,
            };
            "step.dispatched"
        }
        _ => {
            step.state = StepState::Ready;
            "step.requeued"
        }
    };
    let step_id = step.id.clone();
    JobWrite::update(job.clone()).event(NewEvent::new(
        at_ms,
        "engine-1",
        action,
        Some(&step_id),
        "attempt 1",
    ))
}

/// Commits `n` transitions of `job`, each awaited before the next.
async fn transitions(store: &dyn StateStore, job: &mut JobRecord, n: u64) {
    for _ in 0..n {
        let write = transition(job);
        job.revision = store.commit(write).await.expect("commit");
    }
}

/// Creates `name` (a `sample_job`) and returns it at its stored revision.
async fn create(store: &dyn StateStore, name: &str, transcript: Option<Vec<Message>>) -> JobRecord {
    let mut job = sample_job(name);
    let mut write = JobWrite::create(job.clone()).event(NewEvent::new(
        job.created_at_ms,
        "engine-1",
        "job.created",
        None,
        "",
    ));
    if let Some(messages) = transcript {
        write = write.transcript(transcript_key(name), messages);
    }
    job.revision = store.commit(write).await.expect("create");
    job
}

fn transcript_key(job: &str) -> TranscriptKey {
    TranscriptKey {
        job: job.into(),
        step: "plan".into(),
        attempt: 2,
    }
}

/// An agent's transcript of about [`TRANSCRIPT_BYTES`] of JSON: instructions, then
/// file reads with ~4 KB results.
fn big_transcript() -> Vec<Message> {
    let mut messages = vec![Message::User {
        content: "Migrate the service to the new config format. ".repeat(40),
    }];
    let mut size = 0;
    let mut i = 0;
    while size < TRANSCRIPT_BYTES {
        let id = format!("call_{i}");
        let path = format!("src/module_{i}.rs");
        let content: String = (0..64)
            .map(|l| format!("{l:4}: let value_{l} = compute(&input[{l}..], {i}); // x\n"))
            .collect();
        let call = Message::Assistant(AssistantMessage {
            content: Some(format!("Reading {path}.")),
            tool_calls: vec![ToolCall {
                id: id.clone(),
                name: "fs.read".into(),
                arguments: serde_json::json!({ "path": path }),
                provider_metadata: None,
            }],
        });
        let result = Message::Tool {
            tool_call_id: id,
            name: "fs.read".into(),
            content,
            is_error: false,
        };
        for m in [call, result] {
            size += serde_json::to_vec(&m).expect("json").len() + 1;
            messages.push(m);
        }
        i += 1;
    }
    messages
}

/// Creates the jobs of every group in `store`.
async fn fixture(store: DynStateStore) -> Arc<Fixture> {
    let single = create(&*store, "single", None).await;
    let mut writers = Vec::with_capacity(WRITERS);
    for w in 0..WRITERS {
        writers.push(create(&*store, &format!("writer-{w}"), None).await);
    }
    create(&*store, "status-plain", None).await;
    let transcript = big_transcript();
    let len = transcript.len();
    create(&*store, "status-transcript", Some(transcript)).await;
    let stored = store
        .transcript(&transcript_key("status-transcript"))
        .await
        .expect("transcript")
        .expect("transcript stored");
    assert_eq!(stored.len(), len);
    Arc::new(Fixture {
        store,
        single: Mutex::new(single),
        writers: Mutex::new(writers),
    })
}

/// The `store/<backend>/...` benches on `store`.
fn bench_store(c: &mut Criterion, rt: &Runtime, backend: &str, store: DynStateStore) {
    let fx = rt.block_on(fixture(store));
    let mut g = c.benchmark_group(format!("store/{backend}"));
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(4));

    g.throughput(Throughput::Elements(1));
    g.bench_function("transition_single", |b| {
        b.to_async(rt).iter_custom(|iters| {
            let fx = fx.clone();
            async move {
                let mut job = fx.single.lock().await;
                let t = Instant::now();
                transitions(&*fx.store, &mut job, iters).await;
                t.elapsed()
            }
        })
    });

    g.throughput(Throughput::Elements(WRITERS as u64));
    g.bench_function(format!("transition_batched_{WRITERS}"), |b| {
        b.to_async(rt).iter_custom(|iters| {
            let fx = fx.clone();
            async move {
                let mut jobs = fx.writers.lock().await;
                let t = Instant::now();
                let tasks: Vec<_> = jobs
                    .drain(..)
                    .map(|mut job| {
                        let store = fx.store.clone();
                        tokio::spawn(async move {
                            transitions(&*store, &mut job, iters).await;
                            job
                        })
                    })
                    .collect();
                for task in tasks {
                    jobs.push(task.await.expect("writer"));
                }
                t.elapsed()
            }
        })
    });
    g.finish();

    // Latency only: a group without throughput.
    let mut g = c.benchmark_group(format!("store/{backend}"));
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(2));
    for (id, job) in [
        ("status_no_transcript", "status-plain"),
        ("status_with_1mb_transcript", "status-transcript"),
    ] {
        g.bench_function(id, |b| {
            b.to_async(rt).iter_custom(|iters| {
                let store = fx.store.clone();
                async move {
                    let t = Instant::now();
                    for _ in 0..iters {
                        let got = store.get_job(job).await.expect("get_job");
                        black_box(got.expect("stored"));
                    }
                    t.elapsed()
                }
            })
        });
    }
    g.finish();
}

fn memory(c: &mut Criterion) {
    let rt = runtime();
    bench_store(c, &rt, "memory", Arc::new(InMemoryStateStore::new()));
}

fn sqlite(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tmp");
    let config = SqliteConfig::new(dir.path().join("bench.db")).with_synchronous(Synchronous::Full);
    let store = rt
        .block_on(SqliteStateStore::open_with(config))
        .expect("open");
    bench_store(c, &rt, "sqlite_full", Arc::new(store));
}

#[cfg(feature = "postgres")]
fn postgres(c: &mut Criterion) {
    use george::stores::{PgConfig, PgStateStore};
    let Some(url) = postgres_url() else {
        return;
    };
    let rt = runtime();
    let schema = fresh_schema("george_bench_store");
    let config = PgConfig::new(&url).with_schema(&schema);
    let store = rt
        .block_on(PgStateStore::connect_with(config))
        .expect("connect to PostgreSQL");
    bench_store(c, &rt, "postgres", Arc::new(store));
    rt.block_on(drop_schema(&url, &schema));
}

#[cfg(not(feature = "postgres"))]
fn postgres(_: &mut Criterion) {
    eprintln!("store/postgres: skipped (build with --features postgres)");
}

/// `GEORGE_TEST_POSTGRES_URL`, or `None` after saying the groups are skipped.
#[cfg(feature = "postgres")]
fn postgres_url() -> Option<String> {
    match std::env::var("GEORGE_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!(
                "store/postgres: skipped (set GEORGE_TEST_POSTGRES_URL, e.g. \
                 postgres://postgres@127.0.0.1:5432/george_test)"
            );
            None
        }
    }
}

/// A schema name no earlier run used.
#[cfg(feature = "postgres")]
fn fresh_schema(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("{prefix}_{}_{nanos}", std::process::id())
}

/// Drops `schema` and everything in it.
#[cfg(feature = "postgres")]
async fn drop_schema(url: &str, schema: &str) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to drop the schema");
    let task = tokio::spawn(conn);
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await
        .expect("drop schema");
    drop(client);
    let _ = task.await;
}

fn fsync(c: &mut Criterion) {
    let rt = runtime();
    // `tempfile::tempdir()` is where the SQLite benches put their file.
    let dir = tempfile::tempdir().expect("tmp");
    let mut g = c.benchmark_group("fsync");
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(4));
    g.throughput(Throughput::Elements(1));
    for (id, append) in [("raw", true), ("raw_overwrite", false)] {
        let path = dir.path().join(format!("{id}.bin"));
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(path)
            .expect("open");
        if !append {
            file.write_all(&[0; BLOCK]).expect("write");
            file.sync_all().expect("sync");
        }
        let file = Arc::new(std::sync::Mutex::new(file));
        g.bench_function(id, |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let file = file.clone();
                async move {
                    tokio::task::spawn_blocking(move || {
                        let mut file = file.lock().expect("file");
                        let block = [0x5a_u8; BLOCK];
                        let t = Instant::now();
                        for _ in 0..iters {
                            if !append {
                                file.seek(SeekFrom::Start(0)).expect("seek");
                            }
                            file.write_all(&block).expect("write");
                            file.sync_data().expect("sync_data");
                        }
                        t.elapsed()
                    })
                    .await
                    .expect("fsync task")
                }
            })
        });
    }
    g.finish();
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

criterion_group!(benches, memory, sqlite, postgres, fsync);
criterion_main!(benches);
