//! Rough commit throughput of `SqliteStateStore` on a real file (ignored by default):
//! `cargo test -p george-store --release --test throughput -- --ignored --nocapture`.

use std::time::Instant;

use george_core::conformance::state_store::sample_job;
use george_core::state::NewEvent;
use george_core::store::{JobWrite, StateStore};
use george_store::{SqliteConfig, SqliteStateStore, Synchronous};

async fn run(label: &str, config: SqliteConfig, writers: usize, per_writer: usize) {
    let store = SqliteStateStore::open_with(config).await.unwrap();
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
        "{label:<40} {n:>6} commits in {secs:>6.3} s = {:>8.0} commits/s",
        n as f64 / secs
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
#[ignore = "a measurement, not a check"]
async fn commit_throughput() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = |name: &str| SqliteConfig::new(dir.path().join(name));
    run("FULL, 1 writer", cfg("a.db"), 1, 500).await;
    run(
        "FULL, 1 writer, no grouping",
        cfg("b.db").with_max_batch(1),
        1,
        500,
    )
    .await;
    run("FULL, 64 writers", cfg("c.db"), 64, 50).await;
    run(
        "FULL, 64 writers, no grouping",
        cfg("d.db").with_max_batch(1),
        64,
        50,
    )
    .await;
    run(
        "NORMAL, 64 writers",
        cfg("e.db").with_synchronous(Synchronous::Normal),
        64,
        50,
    )
    .await;
}
