// The body of `benches/workflow.rs` and `benches/workflow_mimalloc.rs` (included by
// both, which set `GROUP` and the global allocator).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use george::engine::EngineConfig;
use george::prelude::*;
use george::provider::{AssistantMessage, ToolCall, Usage};
use george::store::DynStateStore;

const JOBS: usize = 200;
const STEPS: usize = 10;

#[derive(Debug)]
struct Instant;

#[async_trait]
impl Provider for Instant {
    fn name(&self) -> &str {
        "instant"
    }
    async fn complete(&self, _req: ChatRequest) -> george::Result<ChatResponse> {
        Ok(ChatResponse::new(
            AssistantMessage {
                content: None,
                tool_calls: vec![ToolCall {
                    id: "c".into(),
                    name: "report_success".into(),
                    arguments: serde_json::json!({"summary": "ok", "outputs": {}}),
                    provider_metadata: None,
                }],
            },
            Usage::default(),
        ))
    }
}

fn repo() -> InMemoryGitSource {
    let git = InMemoryGitSource::new();
    let mut t = String::from(
        "apiVersion: george.dev/v1alpha1\nkind: TaskTemplate\nmetadata: {name: ten}\nspec:\n  steps:\n",
    );
    for i in 0..STEPS {
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
    git.commit_files("main", files, "200 jobs");
    git
}

/// Runs the workload and returns the time from the engine's first dispatch to the last
/// job finished (manifest loading and store setup excluded: they have their own benches).
async fn run(store: DynStateStore, concurrency: usize) -> Duration {
    let mut cfg = EngineConfig::default();
    cfg.max_running = concurrency;
    let engine = Engine::builder(store, Arc::new(repo()))
        .config(cfg)
        .provider("default", Arc::new(Instant))
        .build().expect("engine");
    engine.start().await.expect("start");
    // The clock starts when the loop does: loading the manifests and the first sync
    // (in `start`) are measured by their own benches.
    let t = std::time::Instant::now();
    let h = engine.spawn();
    for j in 0..JOBS {
        let s = engine
            .wait_finished(&format!("j{j}"), Duration::from_secs(600))
            .await
            .expect("finished");
        assert_eq!(s, JobStatus::Succeeded);
    }
    let elapsed = t.elapsed();
    h.shutdown().await;
    elapsed
}

fn workflow(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut g = c.benchmark_group(GROUP);
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements((JOBS * STEPS) as u64));
    g.bench_function("memory", |b| {
        b.to_async(&rt).iter_custom(|iters| async move {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += run(Arc::new(InMemoryStateStore::new()), 64).await;
            }
            total
        })
    });
    for conc in [8usize, 64] {
        g.bench_function(format!("sqlite_full_{conc}"), |b| {
            b.to_async(&rt).iter_custom(|iters| async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let dir = tempfile::tempdir().expect("tmp");
                    let store = SqliteStateStore::open(dir.path().join("bench.db"))
                        .await
                        .expect("open");
                    total += run(Arc::new(store), conc).await;
                }
                total
            })
        });
    }
    #[cfg(feature = "postgres")]
    postgres(&mut g, &rt);
    g.finish();
}

/// `workflow/postgres_8`.
#[cfg(feature = "postgres")]
fn postgres(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &tokio::runtime::Runtime,
) {
    use george::stores::{PgConfig, PgStateStore};
    let url = match std::env::var("GEORGE_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            eprintln!(
                "workflow/postgres_8: skipped (set GEORGE_TEST_POSTGRES_URL, e.g. \
                 postgres://postgres@127.0.0.1:5432/george_test)"
            );
            return;
        }
    };
    let url = &url;
    g.bench_function("postgres_8", |b| {
        b.to_async(rt).iter_custom(|iters| async move {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let schema = fresh_schema();
                let config = PgConfig::new(url).with_schema(&schema);
                let store = PgStateStore::connect_with(config)
                    .await
                    .expect("connect to PostgreSQL");
                total += run(Arc::new(store), 8).await;
                drop_schema(url, &schema).await;
            }
            total
        })
    });
}

/// A schema name no earlier iteration or run used.
#[cfg(feature = "postgres")]
fn fresh_schema() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("george_bench_workflow_{}_{nanos}", std::process::id())
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

