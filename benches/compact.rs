//! `StateStore::compact` over many finished jobs: its cost per job must not grow with the
//! number of jobs in the store (issue 9 found the in-memory store's compaction quadratic:
//! 100,000 jobs did not finish in 10 minutes).
//!
//! - `compact/memory/all_of_<n>`: an `InMemoryStateStore` holding `n` finished jobs, each
//!   with one transcript; the timed part compacts every job once. Throughput in jobs
//!   (elements) per second: flat across `n` means linear in the number of jobs.
//!
//! Run: `cargo bench --bench compact`.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use george::provider::Message;
use george::state::JobStatus;
use george::store::{JobWrite, StateStore, TranscriptKey};
use george::stores::InMemoryStateStore;
use george_core::conformance::state_store::sample_job;
use tokio::runtime::Runtime;

/// A store with `n` finished jobs (`c0`…), each with a small transcript.
async fn finished_jobs(n: usize) -> InMemoryStateStore {
    let store = InMemoryStateStore::new();
    for i in 0..n {
        let name = format!("c{i}");
        let mut job = sample_job(&name);
        job.status = JobStatus::Succeeded;
        let key = TranscriptKey {
            job: name.as_str().into(),
            step: "plan".into(),
            attempt: 1,
        };
        let messages = vec![Message::User {
            content: format!("Plan the change of job {name}."),
        }];
        store
            .commit(JobWrite::create(job).transcript(key, messages))
            .await
            .expect("create");
    }
    store
}

fn compact(c: &mut Criterion) {
    let rt = Runtime::new().expect("runtime");
    let mut g = c.benchmark_group("compact/memory");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    for n in [1_000usize, 10_000, 50_000] {
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("all_of_{n}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let store = rt.block_on(finished_jobs(n));
                    let t = Instant::now();
                    rt.block_on(async {
                        for i in 0..n {
                            let done = store.compact(&format!("c{i}")).await.expect("compact");
                            assert_eq!(done.transcripts, 1);
                        }
                    });
                    total += t.elapsed();
                }
                total
            })
        });
    }
    g.finish();
}

criterion_group!(benches, compact);
criterion_main!(benches);
