//! Dispatch: jobs waiting for a slot (every job finishes when limits are tight, and a
//! finished step wakes only the waiters its slot can help — not every waiting job, a
//! thundering herd that made each step reconcile all of them), and chains of steps run in
//! one task (stopping the engine mid-chain returns the running step, durably).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use george::prelude::*;
use george::scripted::tool_call;
use george::state::StepState;

const LIMIT: Duration = Duration::from_secs(60);

/// Reports success at once (after `delay`).
#[derive(Debug, Default)]
struct Instant {
    delay: Duration,
}

#[async_trait]
impl Provider for Instant {
    fn name(&self) -> &str {
        "instant"
    }
    async fn complete(&self, _req: ChatRequest) -> george::Result<ChatResponse> {
        tokio::time::sleep(self.delay).await;
        Ok(tool_call(
            "c",
            "report_success",
            serde_json::json!({"summary": "ok", "outputs": {}}),
        ))
    }
}

/// `jobs` jobs of `steps` chained steps; even jobs use agent `a` (at most `a_limit` at
/// once when set), odd ones agent `b`.
fn repo(jobs: usize, steps: usize, a_limit: Option<u32>) -> InMemoryGitSource {
    let git = InMemoryGitSource::new();
    let limit = a_limit.map_or(String::new(), |n| format!(", max_concurrency: {n}"));
    let mut files = vec![
        (
            "agent-specs/a.yaml".to_string(),
            format!("apiVersion: george.dev/v1alpha1\nkind: AgentSpec\nmetadata: {{name: a}}\nspec: {{model: m, system_prompt: s{limit}}}\n"),
        ),
        (
            "agent-specs/b.yaml".to_string(),
            "apiVersion: george.dev/v1alpha1\nkind: AgentSpec\nmetadata: {name: b}\nspec: {model: m, system_prompt: s}\n".to_string(),
        ),
    ];
    for agent in ["a", "b"] {
        let mut t = format!(
            "apiVersion: george.dev/v1alpha1\nkind: TaskTemplate\nmetadata: {{name: chain-{agent}}}\nspec:\n  steps:\n"
        );
        for i in 0..steps {
            t.push_str(&format!(
                "    - {{id: s{i}, agent: {agent}, instructions: 'step {i}'"
            ));
            if i > 0 {
                t.push_str(&format!(", depends_on: [s{}]", i - 1));
            }
            t.push_str("}\n");
        }
        files.push((format!("task-templates/chain-{agent}.yaml"), t));
    }
    for j in 0..jobs {
        let agent = if j % 2 == 0 { "a" } else { "b" };
        files.push((
            format!("jobs/j{j}.yaml"),
            format!("apiVersion: george.dev/v1alpha1\nkind: Job\nmetadata: {{name: j{j}}}\nspec: {{template: chain-{agent}}}\n"),
        ));
    }
    git.commit_files("main", files, "jobs");
    git
}

async fn run_all(jobs: usize, steps: usize, max_running: usize, a_limit: Option<u32>) -> Engine {
    let engine = Engine::builder(
        Arc::new(InMemoryStateStore::new()),
        Arc::new(repo(jobs, steps, a_limit)),
    )
    .max_running(max_running)
    .provider("default", Arc::new(Instant::default()))
    .build()
    .expect("engine");
    engine.start().await.expect("start");
    let h = engine.spawn();
    for j in 0..jobs {
        let s = engine
            .wait_finished(&format!("j{j}"), LIMIT)
            .await
            .expect("every job finishes");
        assert_eq!(s, JobStatus::Succeeded, "j{j}");
    }
    h.shutdown().await;
    engine
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_step_wakes_one_waiter_not_all() {
    let (jobs, steps) = (100, 4);
    let engine = run_all(jobs, steps, 2, None).await;
    // Each job is reconciled when it is created and when a slot frees for it (a job
    // that finishes a step takes its slot again for its next step, waking no one):
    // about 3 reconciles per job here. Waking all 98 waiters on every release took
    // 1,250–1,900; waking one per release without that hand-over, about 600.
    let reconciles = engine.stats().reconciles;
    let bound = (jobs * 5) as u64;
    assert!(
        reconciles <= bound,
        "{reconciles} reconciles for {} steps (bound {bound})",
        jobs * steps
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_job_finishes_when_engine_and_agent_limits_both_bind() {
    // Agent `a` runs one step at a time, the engine three: jobs of `a` woken for an
    // engine slot wait again on the agent, and pass the slot on to jobs of `b`.
    run_all(30, 4, 3, Some(1)).await;
    run_all(12, 3, 1, Some(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_mid_chain_returns_the_running_step_and_a_restart_finishes_the_job() {
    let store = Arc::new(InMemoryStateStore::new());
    let git = Arc::new(repo(1, 30, None));
    let build = || {
        Engine::builder(store.clone(), git.clone())
            .provider(
                "default",
                Arc::new(Instant {
                    delay: Duration::from_millis(5),
                }),
            )
            .build()
            .expect("engine")
    };
    let engine = build();
    engine.start().await.expect("start");
    let h = engine.spawn();
    // Let the chain get a few steps in (each step's task goes on with the next one).
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        let done = engine.job("j0").await.expect("read").map_or(0, |rec| {
            rec.steps
                .iter()
                .filter(|s| s.state == StepState::Succeeded)
                .count()
        });
        if done >= 5 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the chain did not advance"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    h.shutdown().await;
    // Nothing is left running: the step the chain was on is `Ready` again, in the store.
    let rec = store.get_job("j0").await.expect("read").expect("stored");
    let running: Vec<_> = rec
        .steps
        .iter()
        .filter(|s| matches!(s.state, StepState::Running { .. }))
        .map(|s| s.id.to_string())
        .collect();
    assert!(
        running.is_empty(),
        "still running after shutdown: {running:?}"
    );
    assert!(rec.status != JobStatus::Succeeded, "stopped before the end");
    let events = store.events("j0", 0, 10_000).await.expect("events");
    assert!(
        events.iter().any(|e| e.action == "step.interrupted"),
        "the interrupted step is in the log"
    );
    // A new engine on the same store finishes the job.
    let again = build();
    again.start().await.expect("start");
    let h = again.spawn();
    assert_eq!(
        again.wait_finished("j0", LIMIT).await.expect("finishes"),
        JobStatus::Succeeded
    );
    h.shutdown().await;
}
