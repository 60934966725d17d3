//! Memory held per finished job: 1,000 jobs × 10 agent steps run to the end through the
//! engine on the in-memory store; what the store keeps per job (record with outputs,
//! event log, transcripts), then after [`Engine::compact`] (transcripts dropped; record,
//! events and approvals are the audit trail and stay). Memory per *idle* job is in
//! `benches/reconcile.rs`.
//!
//! Run: `cargo bench --bench memory` (it prints; there is nothing to time).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use george::prelude::*;

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LIVE.fetch_add(n as isize - l.size() as isize, Ordering::Relaxed);
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
    let git = InMemoryGitSource::new();
    let mut t = String::from(
        "apiVersion: george.dev/v1alpha1\nkind: TaskTemplate\nmetadata: {name: ten}\nspec:\n  steps:\n",
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
    for j in 0..JOBS {
        files.push((
            format!("jobs/j{j}.yaml"),
            format!("apiVersion: george.dev/v1alpha1\nkind: Job\nmetadata: {{name: j{j}}}\nspec: {{template: ten}}\n"),
        ));
    }
    git.commit_files("main", files, "jobs");
    git
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let base = LIVE.load(Ordering::Relaxed);
        let store = Arc::new(InMemoryStateStore::new());
        {
            let engine = Engine::builder(store.clone(), Arc::new(repo()))
                .provider("default", Arc::new(Done))
                .build()
                .expect("engine");
            engine.start().await.expect("start");
            let run = engine.spawn();
            for j in 0..JOBS {
                let s = engine
                    .wait_finished(&format!("j{j}"), Duration::from_secs(600))
                    .await
                    .expect("finished");
                assert_eq!(s, JobStatus::Succeeded);
            }
            run.shutdown().await;
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
