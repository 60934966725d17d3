//! Dashboard benchmarks: the server-side rendering of the job list page
//! (`GET /ui/jobs`) with 10,000 jobs in the in-memory store, through the router (the
//! request is authenticated, the store listed, the jobs filtered, sorted and paged by
//! the API's list code, and the HTML page rendered), without a network:
//!
//! - `dashboard_jobs_10k/first_page`: the first page, sorted by name.
//! - `dashboard_jobs_10k/filtered_sorted`: a status filter, a text filter and a
//!   reversed sort by update time, page 3.
//! - `dashboard_jobs_10k/grouped_by_template`: grouped by template.
//!
//! The target (issue 12): well under 200 ms per page.
//!
//! Run: `cargo bench --bench dashboard --features dashboard`

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use criterion::{Criterion, criterion_group, criterion_main};
use george::http::{AuthConfig, Identity, Role};
use george::prelude::*;
use george::state::JobStatus;
use george::store::{JobWrite, StateStore};
use george_core::conformance::state_store::sample_job;
use tokio::runtime::Runtime;
use tower::ServiceExt;

const JOBS: usize = 10_000;
const TOKEN: &str = "bench-token";

const STATUSES: [JobStatus; 5] = [
    JobStatus::Running,
    JobStatus::Succeeded,
    JobStatus::AwaitingApproval,
    JobStatus::Failed,
    JobStatus::Pending,
];

fn app(rt: &Runtime) -> axum::Router {
    rt.block_on(async {
        let store = Arc::new(InMemoryStateStore::new());
        for i in 0..JOBS {
            let mut job = sample_job(&format!("job-{i:05}"));
            job.template = format!("template-{}", i % 7).into();
            job.status = STATUSES[i % STATUSES.len()];
            job.created_at_ms = 1_790_000_000_000 + i as u64 * 1000;
            job.updated_at_ms = job.created_at_ms + (i as u64 * 7919) % 100_000;
            store
                .commit(JobWrite::create(job))
                .await
                .expect("create a job");
        }
        let engine = Engine::builder(store, Arc::new(InMemoryGitSource::new()))
            .build()
            .expect("engine");
        let auth = AuthConfig::new().token(TOKEN, Identity::new("bench", Role::Read));
        george::http::router(engine, auth)
    })
}

async fn get(app: &axum::Router, uri: &str) -> usize {
    let req = Request::get(uri)
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .expect("request");
    let res = app.clone().oneshot(req).await.expect("answer");
    assert_eq!(res.status(), 200, "{uri}");
    let body = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .expect("body");
    body.len()
}

fn bench(c: &mut Criterion) {
    let rt = Runtime::new().expect("runtime");
    let app = app(&rt);
    let mut group = c.benchmark_group("dashboard_jobs_10k");
    group.sample_size(30);
    for (name, uri) in [
        ("first_page", "/ui/jobs"),
        (
            "filtered_sorted",
            "/ui/jobs?status=running&text=job-0&sort=-updated&page=3",
        ),
        ("grouped_by_template", "/ui/jobs?group=template"),
    ] {
        let bytes = rt.block_on(get(&app, uri));
        assert!(bytes > 1000, "{name}: a page of {bytes} bytes");
        group.bench_function(name, |b| b.to_async(&rt).iter(|| get(&app, uri)));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
