//! Deferrals, backoff and lease expiry under a paused tokio clock: the engine's sleeps and
//! the times it records come from one source ([`TokioClock`]), so minutes pass in no
//! wall time and each wake-up happens exactly when it is due.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use george_core::clock::{Clock, TokioClock};
use george_core::command::RUN_COMMAND;
use george_core::engine::Engine;
use george_core::events::EventAction;
use george_core::memory::{InMemoryGitSource, InMemoryStateStore};
use george_core::state::{JobRecord, JobStatus, StepRecord, StepState};
use george_core::store::{JobWrite, StateStore};
use george_core::tool::{ToolDefinition, ToolExecutor, ToolInvocation, ToolOutput};
use serde_json::json;

/// `run_command` answering with the queued exit codes (then 0), recording when.
#[derive(Debug, Clone)]
struct Exits {
    codes: Arc<Mutex<VecDeque<i64>>>,
    at: Arc<Mutex<Vec<u64>>>,
    clock: TokioClock,
}

impl Exits {
    fn new(codes: &[i64], clock: TokioClock) -> Self {
        Exits {
            codes: Arc::new(Mutex::new(codes.iter().copied().collect())),
            at: Arc::new(Mutex::new(Vec::new())),
            clock,
        }
    }
}

#[async_trait]
impl ToolExecutor for Exits {
    fn tools(&self) -> Vec<ToolDefinition> {
        vec![ToolDefinition::new(
            RUN_COMMAND,
            "Runs.",
            json!({"type": "object"}),
        )]
    }
    async fn call(&self, _inv: ToolInvocation) -> george_core::Result<ToolOutput> {
        self.at.lock().unwrap().push(self.clock.now_ms());
        let code = self.codes.lock().unwrap().pop_front().unwrap_or(0);
        Ok(ToolOutput::ok("ran").with_data(json!({"exit_code": code, "stdout": "", "stderr": ""})))
    }
}

fn setup(step: &str) -> InMemoryGitSource {
    let git = InMemoryGitSource::new();
    git.commit_files(
        "main",
        [
            (
                "task-templates/t.yaml",
                format!(
                    "apiVersion: george.dev/v1alpha1
kind: TaskTemplate
metadata: {{name: t}}
spec:
  steps:
    - id: s
      command: {{program: check}}
{step}"
                ),
            ),
            (
                "jobs/j.yaml",
                "apiVersion: george.dev/v1alpha1
kind: Job
metadata: {name: j}
spec: {template: t}
"
                .to_string(),
            ),
        ],
        "c1",
    );
    git
}

fn engine(git: &InMemoryGitSource, store: Arc<InMemoryStateStore>, exits: &Exits) -> Engine {
    Engine::builder(store, Arc::new(git.clone()))
        .id("e2")
        .clock(Arc::new(exits.clock))
        .tools(Arc::new(exits.clone()))
        .poll_interval(Duration::from_secs(3600))
        .build()
        .expect("engine")
}

const LIMIT: Duration = Duration::from_secs(24 * 3600);

#[tokio::test(start_paused = true)]
async fn a_deferred_step_wakes_exactly_when_its_deferral_ends() {
    let git = setup("      done_when: {defer_ms: 60000}\n      retry: {attempts: 5}\n");
    let exits = Exits::new(&[1, 1], TokioClock::new());
    let e = engine(&git, Arc::new(InMemoryStateStore::new()), &exits);
    e.start().await.unwrap();
    let run = e.spawn();
    assert_eq!(
        e.wait_finished("j", LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
    run.shutdown().await;
    let at = exits.at.lock().unwrap().clone();
    assert_eq!(at.len(), 3);
    for w in at.windows(2) {
        // Due after 60 s; reconciled and dispatched within a few ms of it.
        assert!((60_000..60_050).contains(&(w[1] - w[0])), "{at:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_failed_step_retries_after_its_backoff() {
    let git = setup("      retry: {attempts: 3, backoff_ms: 10000, max_backoff_ms: 40000}\n");
    let exits = Exits::new(&[1, 1], TokioClock::new());
    let e = engine(&git, Arc::new(InMemoryStateStore::new()), &exits);
    e.start().await.unwrap();
    let run = e.spawn();
    assert_eq!(
        e.wait_finished("j", LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
    run.shutdown().await;
    let at = exits.at.lock().unwrap().clone();
    assert_eq!(at.len(), 3, "two failures, then success");
    // Each retry waits for the backoff the failure event announced (full jitter: ≤ the cap).
    let events = e.events("j").await.unwrap();
    let waits: Vec<u64> = events
        .iter()
        .filter(|ev| ev.action == EventAction::StepFailed)
        .map(|ev| {
            let s = ev.detail.split("retry in ").nth(1).unwrap();
            s.split(' ').next().unwrap().parse().unwrap()
        })
        .collect();
    assert_eq!(waits.len(), 2);
    for (i, w) in waits.iter().enumerate() {
        assert!(*w <= 10_000 << i, "{waits:?}");
        let gap = at[i + 1] - at[i];
        assert!(gap >= *w && gap < *w + 50, "gap {gap} for a backoff of {w}");
    }
}

#[tokio::test(start_paused = true)]
async fn an_attempt_of_a_dead_engine_is_taken_over_when_its_lease_expires() {
    let git = setup("");
    let clock = TokioClock::new();
    let exits = Exits::new(&[], clock);
    let store = Arc::new(InMemoryStateStore::new());
    // What an engine that died mid-attempt leaves behind: a Running step under a lease.
    let now = clock.now_ms();
    let mut step = StepRecord::new("s");
    step.state = StepState::Running {
        holder: "e1".into(),
        lease_until_ms: now + 30_000,
    };
    step.attempt = 1;
    let rec = JobRecord {
        name: "j".into(),
        generation: 1,
        spec_hash: 0,
        commit: "".into(),
        path: "jobs/j.yaml".into(),
        template: "t".into(),
        status: JobStatus::Running,
        removed: false,
        keep_on_removal: false,
        steps: vec![step.into()],
        revision: 0,
        created_at_ms: now,
        updated_at_ms: now,
        target: Default::default(),
        resolved_by: None,
        ordered_by: None,
    };
    store.commit(JobWrite::create(rec)).await.unwrap();
    let e = engine(&git, store, &exits);
    e.start().await.unwrap();
    let run = e.spawn();
    assert_eq!(
        e.wait_finished("j", LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
    run.shutdown().await;
    let at = exits.at.lock().unwrap().clone();
    assert_eq!(at.len(), 1);
    // Not before the lease expired, and at once after.
    assert!(
        (now + 30_000..now + 30_050).contains(&at[0]),
        "{} vs {now}",
        at[0]
    );
    let rec = e.job("j").await.unwrap().unwrap();
    assert_eq!(
        rec.step("s").unwrap().attempt,
        2,
        "the takeover is a new attempt"
    );
}
