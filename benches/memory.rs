//! Memory held per job, counted by a global allocator that tracks live bytes.
//!
//! - **Idle** (pending: synced, not started): 10,000 jobs × 10 agent steps after
//!   `Engine::start`, nothing run. Printed apart: the desired state (the engine's
//!   `ManifestSet`), the observed record (what a store or the engine's cache holds per
//!   job), and the whole engine's heap per job — with the in-memory store (whose records
//!   are in the same heap) and with SQLite (records on disk, the engine's cache in heap).
//! - **Finished**: 1,000 jobs × 10 agent steps run to the end on the in-memory store;
//!   what the store keeps per job (record with outputs, event log, transcripts), then after
//!   [`Engine::compact`] (transcripts dropped; record, events and approvals are the audit
//!   trail and stay).
//!
//! Run: `cargo bench --bench memory` (it prints; there is nothing to time).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use george::manifest::ManifestSet;
use george::prelude::*;
use george::sources::SourceFile;

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);
static ALLOCS: AtomicIsize = AtomicIsize::new(0);
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LIVE.fetch_add(n as isize - l.size() as isize, Ordering::Relaxed);
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}
#[global_allocator]
static A: Counting = Counting;

const JOBS: usize = 1_000;

#[derive(Debug)]
struct Done;

#[async_trait]
impl Provider for Done {
    fn name(&self) -> &str {
        "done"
    }
    async fn complete(&self, _req: ChatRequest) -> george::Result<ChatResponse> {
        Ok(ChatResponse::tool_calls(vec![
            george::outcome::report_success("ok", serde_json::json!({"n": 1})),
        ]))
    }
}

fn repo() -> InMemoryGitSource {
    repo_of(JOBS)
}

fn repo_of(jobs: usize) -> InMemoryGitSource {
    let git = InMemoryGitSource::new();
    let mut t = String::from(
        "apiVersion: george.dev/v1alpha1\nkind: TaskTemplate\nmetadata: {name: ten}\nspec:\n  parameters:\n    - {name: n, type: integer}\n  steps:\n",
    );
    for i in 0..10 {
        t.push_str(&format!(
            "    - {{id: s{i}, agent: a, instructions: 'step {i}'"
        ));
        if i > 0 {
            t.push_str(&format!(", depends_on: [s{}]", i - 1));
        }
        t.push_str("}\n");
    }
    let mut files = vec![
        ("agent-specs/a.yaml".to_string(), "apiVersion: george.dev/v1alpha1\nkind: AgentSpec\nmetadata: {name: a}\nspec: {model: m, system_prompt: s}\n".to_string()),
        ("task-templates/ten.yaml".to_string(), t),
    ];
    for j in 0..jobs {
        files.push((
            format!("jobs/j{j}.yaml"),
            format!("apiVersion: george.dev/v1alpha1\nkind: Job\nmetadata: {{name: j{j}}}\nspec: {{template: ten, params: {{n: {j}}}}}\n"),
        ));
    }
    git.commit_files("main", files, "jobs");
    git
}

const IDLE_JOBS: usize = 10_000;

/// Bytes per job the closure leaves allocated (what it returns is kept alive until the
/// count is taken).
fn per_job<T>(jobs: usize, f: impl FnOnce() -> T) -> (f64, T) {
    let before = LIVE.load(Ordering::Relaxed);
    let kept = f();
    let after = LIVE.load(Ordering::Relaxed);
    ((after - before) as f64 / jobs as f64, kept)
}

/// Never answers: the one step allowed to run holds its slot, the rest stay pending.
#[derive(Debug)]
struct Never;

#[async_trait]
impl Provider for Never {
    fn name(&self) -> &str {
        "never"
    }
    async fn complete(&self, _req: ChatRequest) -> george::Result<ChatResponse> {
        std::future::pending().await
    }
}

/// An engine with `IDLE_JOBS` jobs synced and reconciled (records created), one step
/// running and every other job pending.
async fn idle_engine(
    store: Arc<dyn StateStore>,
    git: Arc<InMemoryGitSource>,
) -> (Engine, george::engine::RunHandle) {
    let engine = Engine::builder(store, git)
        .provider("default", Arc::new(Never))
        .max_running(1)
        .build()
        .expect("engine");
    engine.start().await.expect("start");
    let run = engine.spawn();
    for j in 0..IDLE_JOBS {
        let name = format!("j{j}");
        while engine.job(&name).await.expect("job").is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    (engine, run)
}

async fn idle() {
    let git = Arc::new(repo_of(IDLE_JOBS));
    let files: Vec<SourceFile> = {
        let head = git.resolve("main").await.expect("head");
        git.read_manifests(&head).await.expect("files")
    };
    let (desired, set) = per_job(IDLE_JOBS, || ManifestSet::load(files.clone()));
    assert!(set.errors.is_empty());
    let (observed, records) = per_job(IDLE_JOBS, || {
        set.jobs
            .iter()
            .map(|(name, d)| {
                let create = george::reconcile::reconcile(Some(d), false, None, 0);
                george::reconcile::new_record(name, &create[0], &"c".repeat(40), 0).expect("record")
            })
            .collect::<Vec<_>>()
    });
    drop((set, records));
    let before = LIVE.load(Ordering::Relaxed);
    let (engine, run) = idle_engine(Arc::new(InMemoryStateStore::new()), git.clone()).await;
    let with_memory = (LIVE.load(Ordering::Relaxed) - before) as f64 / IDLE_JOBS as f64;
    let _ = tokio::time::timeout(Duration::from_secs(5), run.shutdown()).await;
    drop(engine);
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = SqliteStateStore::open(dir.path().join("idle.db"))
        .await
        .expect("sqlite");
    let before = LIVE.load(Ordering::Relaxed);
    let (engine, run) = idle_engine(Arc::new(sqlite), git).await;
    let with_sqlite = (LIVE.load(Ordering::Relaxed) - before) as f64 / IDLE_JOBS as f64;
    let _ = tokio::time::timeout(Duration::from_secs(5), run.shutdown()).await;
    drop(engine);
    println!(
        "memory per idle job (pending: 10 steps, {IDLE_JOBS} jobs queued behind one running \
         step): desired state {desired:.0} B, observed record {observed:.0} B; whole engine \
         heap: {with_memory:.0} B with the in-memory store (records in heap), {with_sqlite:.0} B \
         with SQLite (target ≤ 2048 B)"
    );
    at_rest().await;
}

const AT_REST_JOBS: usize = 2_000;

/// Jobs at rest (finished): the engine's cache has dropped their records, so with a
/// durable store the engine holds their desired state and a cache slot.
async fn at_rest() {
    let git = Arc::new(repo_of(AT_REST_JOBS));
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = SqliteStateStore::open(dir.path().join("rest.db"))
        .await
        .expect("sqlite");
    let before = LIVE.load(Ordering::Relaxed);
    let engine = Engine::builder(Arc::new(sqlite), git)
        .provider("default", Arc::new(Done))
        .build()
        .expect("engine");
    engine.start().await.expect("start");
    let run = engine.spawn();
    for j in 0..AT_REST_JOBS {
        let s = engine
            .wait_finished(&format!("j{j}"), Duration::from_secs(600))
            .await
            .expect("finished");
        assert_eq!(s, JobStatus::Succeeded);
    }
    run.shutdown().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let held = (LIVE.load(Ordering::Relaxed) - before) as f64 / AT_REST_JOBS as f64;
    println!(
        "memory per idle job (at rest: 10 steps run to the end, {AT_REST_JOBS} jobs): whole \
         engine heap {held:.0} B with SQLite (desired state and a cache slot; record, events \
         and transcripts in the database) (target ≤ 2048 B)"
    );
    drop(engine);
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(idle());
    rt.block_on(async {
        let base = LIVE.load(Ordering::Relaxed);
        let store = Arc::new(InMemoryStateStore::new());
        {
            let engine = Engine::builder(store.clone(), Arc::new(repo()))
                .provider("default", Arc::new(Done))
                .build()
                .expect("engine");
            engine.start().await.expect("start");
            let allocs_before = ALLOCS.load(Ordering::Relaxed);
            let run = engine.spawn();
            for j in 0..JOBS {
                let s = engine
                    .wait_finished(&format!("j{j}"), Duration::from_secs(600))
                    .await
                    .expect("finished");
                assert_eq!(s, JobStatus::Succeeded);
            }
            let allocs = ALLOCS.load(Ordering::Relaxed) - allocs_before;
            run.shutdown().await;
            println!(
                "allocations per step (in-memory store, {JOBS} jobs × 10 agent steps, job \
                 creation included): {:.0} (goal < 60)",
                allocs as f64 / (JOBS * 10) as f64
            );
            let finished = LIVE.load(Ordering::Relaxed);
            drop(engine);
            tokio::time::sleep(Duration::from_millis(100)).await;
            let kept = LIVE.load(Ordering::Relaxed) - base;
            println!(
                "memory per finished job (10 steps, {JOBS} jobs), in-memory store: {:.0} B \
                 (record with outputs, {} events, transcripts); engine and caches besides: {:.0} B",
                kept as f64 / JOBS as f64,
                store.events("j0", 0, 1000).await.expect("events").len(),
                (finished - base - kept) as f64 / JOBS as f64,
            );
        }
        let before = LIVE.load(Ordering::Relaxed);
        for j in 0..JOBS {
            store.compact(&format!("j{j}")).await.expect("compact");
        }
        let after = LIVE.load(Ordering::Relaxed);
        println!(
            "memory per finished job after compact(): {:.0} B (transcripts dropped: {:.0} B each)",
            (after - base) as f64 / JOBS as f64,
            (before - after) as f64 / JOBS as f64,
        );
    });
}
