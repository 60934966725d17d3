//! Rough commit throughput of `PgStateStore` (ignored by default; needs
//! `GEORGE_TEST_POSTGRES_URL`):
//! `cargo test -p george-store --features postgres --release --test pg_throughput -- --ignored --nocapture`.
//!
//! Each writer updates its own job repeatedly with one event, like an engine step.
#![cfg(feature = "postgres")]

use std::time::Instant;

use george_core::conformance::state_store::sample_job;
use george_core::state::NewEvent;
use george_core::store::{JobWrite, StateStore};
use george_store::{PgConfig, PgStateStore};

async fn run(url: &str, max_batch: usize, pool_size: usize, writers: usize, per_writer: usize) {
    let schema = format!("george_bench_{:016x}", fastrand::u64(..));
    let config = PgConfig::new(url)
        .with_schema(&schema)
        .with_pool_size(pool_size)
        .with_max_batch(max_batch);
    let store = PgStateStore::connect_with(config).await.unwrap();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut job = sample_job(&format!("job-{w:04}"));
            job.revision = store.commit(JobWrite::create(job.clone())).await.unwrap();
            for i in 0..per_writer {
                job.updated_at_ms += 1;
                job.revision = store
                    .commit(JobWrite::update(job.clone()).event(NewEvent::new(
                        i as u64,
                        "engine",
                        "step.renewed",
                        Some("build"),
                        "lease renewed",
                    )))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let n = writers * (per_writer + 1);
    let secs = start.elapsed().as_secs_f64();
    println!(
        "batch {max_batch:>2}, pool {pool_size:>3}, {writers:>3} writers {n:>6} commits in {secs:>6.3} s = {:>8.0} commits/s",
        n as f64 / secs
    );
    drop(store);
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let task = tokio::spawn(conn);
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
    drop(client);
    let _ = task.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn commit_throughput() {
    let Ok(url) = std::env::var("GEORGE_TEST_POSTGRES_URL") else {
        eprintln!("GEORGE_TEST_POSTGRES_URL is not set: nothing measured");
        return;
    };
    for max_batch in [1, 32] {
        run(&url, max_batch, 1, 1, 1000).await;
        run(&url, max_batch, 16, 8, 500).await;
        run(&url, max_batch, 16, 64, 60).await;
    }
    for max_batch in [1, 32] {
        run(&url, max_batch, 16, 8, 500).await;
        run(&url, max_batch, 16, 64, 60).await;
    }
}
