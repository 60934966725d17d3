//! Sub-jobs (see `george_core::children`), proven on the public API with in-memory
//! backends and rule-driven agents, as attacks where one applies: an order retried, an
//! order for a template the agent may not order, an engine restarted while a parent
//! waits, a failing child, a cancelled parent, orders beyond the operator's limits.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use george_core::engine::{Engine, EngineBuilder};
use george_core::memory::{InMemoryGitSource, InMemoryStateStore};
use george_core::provider::{ChatRequest, ChatResponse, Message, Provider};
use george_core::scripted::{tool_call, tool_calls};
use george_core::state::{JobRecord, JobStatus, StepState};
use george_core::store::StateStore;
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(20);

type Rule = dyn Fn(&ChatRequest) -> ChatResponse + Send + Sync;

/// A provider that answers each request by a rule, and keeps the requests.
#[derive(Clone)]
struct Rules {
    rule: Arc<Rule>,
    seen: Arc<Mutex<Vec<ChatRequest>>>,
}

impl std::fmt::Debug for Rules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rules")
    }
}

impl Rules {
    fn new(rule: impl Fn(&ChatRequest) -> ChatResponse + Send + Sync + 'static) -> Self {
        Rules {
            rule: Arc::new(rule),
            seen: Arc::default(),
        }
    }

    fn seen(&self) -> Vec<ChatRequest> {
        self.seen.lock().unwrap().clone()
    }
}

#[async_trait]
impl Provider for Rules {
    fn name(&self) -> &str {
        "rules"
    }

    async fn complete(&self, request: ChatRequest) -> george_core::Result<ChatResponse> {
        self.seen.lock().unwrap().push(request.clone());
        Ok((self.rule)(&request))
    }
}

/// The first user message (the task) of a request.
fn task(req: &ChatRequest) -> String {
    req.messages
        .iter()
        .find_map(|m| match m {
            Message::User { content } => Some(content.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

/// The tool results of a request, in order: (tool, content, is_error).
fn results(req: &ChatRequest) -> Vec<(String, String, bool)> {
    req.messages
        .iter()
        .filter_map(|m| match m {
            Message::Tool {
                name,
                content,
                is_error,
                ..
            } => Some((name.clone(), content.clone(), *is_error)),
            _ => None,
        })
        .collect()
}

fn first_turn(req: &ChatRequest) -> bool {
    results(req).is_empty()
}

fn succeed(outputs: Value) -> ChatResponse {
    tool_call(
        "ok",
        "report_success",
        json!({"summary": "done", "outputs": outputs}),
    )
}

fn order(args: Value) -> (&'static str, &'static str, Value) {
    ("o", "order_job", args)
}

fn manifests(boss_retry: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "agent-specs/boss.yaml",
            "apiVersion: george.dev/v1alpha1
kind: AgentSpec
metadata: {name: boss}
spec:
  provider: boss
  model: m
  system_prompt: You delegate.
  may_order: [work]
"
            .into(),
        ),
        (
            "agent-specs/worker.yaml",
            "apiVersion: george.dev/v1alpha1
kind: AgentSpec
metadata: {name: worker}
spec:
  provider: worker
  model: m
  system_prompt: You work.
"
            .into(),
        ),
        (
            "task-templates/fan.yaml",
            format!(
                "apiVersion: george.dev/v1alpha1
kind: TaskTemplate
metadata: {{name: fan}}
spec:
  steps:
    - id: fan
      agent: boss
      instructions: Delegate.
      retry: {boss_retry}
"
            ),
        ),
        (
            "task-templates/work.yaml",
            "apiVersion: george.dev/v1alpha1
kind: TaskTemplate
metadata: {name: work}
spec:
  parameters:
    - {name: n, type: integer}
  steps:
    - id: do
      agent: worker
      instructions: Double {{ params.n }}.
"
            .into(),
        ),
        (
            "task-templates/other.yaml",
            "apiVersion: george.dev/v1alpha1
kind: TaskTemplate
metadata: {name: other}
spec:
  steps:
    - {id: x, agent: worker, instructions: Other.}
"
            .into(),
        ),
        (
            "jobs/p.yaml",
            "apiVersion: george.dev/v1alpha1
kind: Job
metadata: {name: p}
spec: {template: fan}
"
            .into(),
        ),
    ]
}

/// The worker: doubles `n` (read from its task), failing instead when `fail` is set
/// and deferring while `gate` is closed.
fn worker(gate: Arc<AtomicBool>, fail: bool) -> Rules {
    Rules::new(move |req| {
        if !gate.load(Ordering::SeqCst) {
            return tool_call("d", "defer", json!({"seconds": 1, "reason": "gate closed"}));
        }
        if fail {
            return tool_call(
                "f",
                "report_failure",
                json!({"reason": "cannot", "retryable": false}),
            );
        }
        let t = task(req);
        let n: i64 = t
            .split("Double ")
            .nth(1)
            .and_then(|s| s.split('.').next())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(-1);
        succeed(json!({"doubled": n * 2}))
    })
}

struct World {
    git: InMemoryGitSource,
    store: Arc<InMemoryStateStore>,
}

impl World {
    fn new(boss_retry: &str) -> World {
        let git = InMemoryGitSource::new();
        git.commit_files("main", manifests(boss_retry), "c1");
        World {
            git,
            store: Arc::new(InMemoryStateStore::new()),
        }
    }

    fn builder(&self, boss: &Rules, worker: &Rules) -> EngineBuilder {
        Engine::builder(self.store.clone(), Arc::new(self.git.clone()))
            .id("e1")
            .provider("boss", Arc::new(boss.clone()))
            .provider("worker", Arc::new(worker.clone()))
            .poll_interval(Duration::from_secs(3600))
            .lease_ms(2_000)
    }

    async fn children_of(&self, parent: &str) -> Vec<JobRecord> {
        self.store
            .list_jobs()
            .await
            .unwrap()
            .into_iter()
            .filter(|j| j.ordered_by.as_ref().is_some_and(|o| o.job == parent))
            .collect()
    }
}

async fn until<F: Future<Output = bool>>(what: &str, mut f: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + LIMIT;
    while !f().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn events(engine: &Engine, job: &str, action: &str) -> Vec<george_core::state::Event> {
    engine
        .events(job)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == action)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_ordered_twice_by_a_retried_step_exists_once() {
    let w = World::new("{attempts: 3, backoff_ms: 10}");
    // Attempt 1 orders the child and fails (retryable) in the same turn; attempt 2
    // orders the same child again, then succeeds.
    let boss = Rules::new(|req| {
        let attempt = req.context.as_ref().map_or(0, |c| c.attempt);
        if first_turn(req) {
            return tool_calls(vec![order(
                json!({"template": "work", "params": {"n": 3}, "wait": false}),
            )]);
        }
        if attempt == 1 {
            tool_call(
                "f",
                "report_failure",
                json!({"reason": "flaky", "retryable": true}),
            )
        } else {
            succeed(json!({}))
        }
    });
    let worker = worker(Arc::new(AtomicBool::new(true)), false);
    let e = w.builder(&boss, &worker).build().unwrap();
    e.start().await.unwrap();
    let h = e.spawn();
    assert_eq!(
        e.wait_finished("p", LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
    let children = w.children_of("p").await;
    assert_eq!(children.len(), 1, "ordered twice, exists once");
    let child = &children[0];
    let ob = child.ordered_by.as_ref().unwrap();
    assert_eq!((ob.step.as_str(), ob.attempt, ob.depth), ("fan", 1, 1));
    assert_eq!(
        ob.commit,
        e.commit().unwrap().0,
        "pinned to the parent's commit"
    );
    assert!(child.name.starts_with("p--fan--"), "{}", child.name);
    assert_eq!(
        e.wait_finished(&child.name, LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
    // The second order was answered with the existing child.
    let replies: Vec<Value> = boss
        .seen()
        .iter()
        .flat_map(results)
        .filter(|(t, _, _)| t == "order_job")
        .map(|(_, c, _)| serde_json::from_str(&c).unwrap())
        .collect();
    let created: Vec<bool> = replies
        .iter()
        .map(|r| r["created"].as_bool().unwrap())
        .collect();
    assert!(
        created.starts_with(&[true]) && created[1..].iter().all(|c| !c),
        "{created:?}"
    );
    assert!(replies.iter().all(|r| r["job"] == child.name.as_str()));
    let rec = e.job("p").await.unwrap().unwrap();
    assert_eq!(rec.steps[0].children.len(), 1);
    assert_eq!(events(&e, "p", "job.ordered").await.len(), 1);
    let created = events(&e, &child.name, "job.created").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].actor, "job:p");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_not_in_may_order_is_refused_and_nothing_is_created() {
    let w = World::new("{attempts: 1}");
    let boss = Rules::new(|req| {
        if first_turn(req) {
            tool_calls(vec![order(json!({"template": "other"}))])
        } else {
            succeed(json!({}))
        }
    });
    let worker = worker(Arc::new(AtomicBool::new(true)), false);
    let e = w.builder(&boss, &worker).build().unwrap();
    e.start().await.unwrap();
    let h = e.spawn();
    assert_eq!(
        e.wait_finished("p", LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
    assert!(w.children_of("p").await.is_empty());
    assert_eq!(w.store.list_jobs().await.unwrap().len(), 1);
    let seen = boss.seen();
    let (_, content, is_error) = results(seen.last().unwrap())
        .into_iter()
        .find(|(t, _, _)| t == "order_job")
        .unwrap();
    assert!(is_error && content.contains("may not order"), "{content}");
    assert_eq!(events(&e, "p", "tool.refused").await.len(), 1);
    // The tool is offered with the templates the agent may order, and no others.
    let offered = seen[0]
        .tools
        .iter()
        .find(|t| t.name == "order_job")
        .unwrap();
    assert_eq!(
        offered.input_schema["properties"]["template"]["enum"],
        json!(["work"])
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_parent_waits_survives_a_restart_and_receives_the_outputs() {
    let w = World::new("{attempts: 3, backoff_ms: 10}");
    let boss = Rules::new(|req| {
        let attempt = req.context.as_ref().map_or(0, |c| c.attempt);
        if attempt == 1 {
            tool_calls(vec![order(
                json!({"template": "work", "params": {"n": 21}}),
            )])
        } else if task(req).contains("\"doubled\":42") {
            succeed(json!({"received": 42}))
        } else {
            tool_call(
                "f",
                "report_failure",
                json!({"reason": "no outputs", "retryable": false}),
            )
        }
    });
    let gate = Arc::new(AtomicBool::new(false));
    let worker = worker(gate.clone(), false);
    let e1 = w.builder(&boss, &worker).build().unwrap();
    e1.start().await.unwrap();
    let h1 = e1.spawn();
    until("the parent waits for its child", || async {
        let rec = e1.job("p").await.unwrap();
        rec.is_some_and(|r| matches!(r.steps[0].state, StepState::WaitingForChildren { .. }))
    })
    .await;
    let rec = e1.job("p").await.unwrap().unwrap();
    assert_eq!(
        rec.status,
        JobStatus::Running,
        "waiting is not AwaitingApproval"
    );
    let child = w.children_of("p").await.remove(0).name;
    assert!(!e1.job(&child).await.unwrap().unwrap().status.is_finished());
    h1.shutdown().await;
    drop(e1);

    // The child's template is edited in Git meanwhile: the child keeps the definition
    // pinned at its parent's commit.
    w.git.commit_files(
        "main",
        [(
            "task-templates/work.yaml",
            "apiVersion: george.dev/v1alpha1
kind: TaskTemplate
metadata: {name: work}
spec:
  parameters:
    - {name: n, type: integer}
  steps:
    - id: do
      agent: worker
      instructions: Triple {{ params.n }}.
",
        )],
        "edit work",
    );
    // A new engine over the same store: the wait was stored, the child's pinned
    // definition is restored, the child finishes, the parent gets its outputs.
    gate.store(true, Ordering::SeqCst);
    let e2 = w.builder(&boss, &worker).build().unwrap();
    e2.start().await.unwrap();
    let h2 = e2.spawn();
    assert_eq!(
        e2.wait_finished(&child, LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
    assert_eq!(
        e2.wait_finished("p", LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
    let rec = e2.job("p").await.unwrap().unwrap();
    let step = &rec.steps[0];
    assert_eq!(step.outputs.as_deref().unwrap()["received"], 42);
    assert_eq!(step.children[0].status, Some(JobStatus::Succeeded));
    assert_eq!(
        step.children[0].outputs.as_deref().unwrap()["do"]["doubled"],
        42
    );
    assert_eq!(events(&e2, "p", "step.waiting").await.len(), 1);
    assert_eq!(events(&e2, "p", "child.finished").await.len(), 1);
    h2.shutdown().await;
}

async fn parent_with_failing_child(policy: &str) -> (JobStatus, Vec<ChatRequest>) {
    let w = World::new("{attempts: 1}");
    let args = json!({"template": "work", "params": {"n": 1}, "on_child_failure": policy});
    let boss = Rules::new(move |req| {
        let attempt = req.context.as_ref().map_or(0, |c| c.attempt);
        if attempt == 1 {
            tool_calls(vec![order(args.clone())])
        } else {
            succeed(json!({"saw_failure": task(req).contains("Failed")}))
        }
    });
    let worker = worker(Arc::new(AtomicBool::new(true)), true);
    let e = w.builder(&boss, &worker).build().unwrap();
    e.start().await.unwrap();
    let h = e.spawn();
    let status = e.wait_finished("p", LIMIT).await.unwrap();
    h.shutdown().await;
    (status, boss.seen())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_child_fails_the_parent_under_fail_and_not_under_continue() {
    let (status, seen) = parent_with_failing_child("fail").await;
    assert_eq!(status, JobStatus::Failed);
    assert!(
        seen.iter()
            .all(|r| r.context.as_ref().unwrap().attempt == 1)
    );
    let (status, seen) = parent_with_failing_child("continue").await;
    assert_eq!(status, JobStatus::Succeeded);
    let again = seen
        .iter()
        .find(|r| r.context.as_ref().unwrap().attempt == 2)
        .expect("the parent is attempted again");
    assert!(task(again).contains("Failed"), "{}", task(again));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_the_parent_applies_the_parent_close_policy() {
    let w = World::new("{attempts: 1}");
    let boss = Rules::new(|req| {
        if first_turn(req) {
            let o = |n: i64, close: &str| {
                order(
                    json!({"template": "work", "params": {"n": n}, "wait": false, "parent_close": close}),
                )
            };
            tool_calls(vec![o(1, "cancel"), o(2, "finish"), o(3, "abandon")])
        } else {
            tool_call("d", "defer", json!({"seconds": 3600, "reason": "later"}))
        }
    });
    let gate = Arc::new(AtomicBool::new(false));
    let worker = worker(gate.clone(), false);
    let e = w.builder(&boss, &worker).build().unwrap();
    e.start().await.unwrap();
    let h = e.spawn();
    until("the parent defers with three children", || async {
        let rec = e.job("p").await.unwrap();
        rec.is_some_and(|r| matches!(r.steps[0].state, StepState::Deferred { .. }))
    })
    .await;
    let by_close = |children: &[JobRecord], close: &str| -> JobRecord {
        children
            .iter()
            .find(|c| c.ordered_by.as_ref().unwrap().parent_close.as_str() == close)
            .unwrap()
            .clone()
    };
    let children = w.children_of("p").await;
    assert_eq!(children.len(), 3);
    // Remove the parent's manifest: the parent is cancelled.
    w.git
        .commit("main", [("jobs/p.yaml", None::<&str>)], "remove p");
    e.sync().await.unwrap();
    assert_eq!(
        e.wait_finished("p", LIMIT).await.unwrap(),
        JobStatus::Cancelled
    );
    let cancelled = by_close(&children, "cancel").name;
    assert_eq!(
        e.wait_finished(&cancelled, LIMIT).await.unwrap(),
        JobStatus::Cancelled
    );
    until("the policies are applied", || async {
        let rec = e.job("p").await.unwrap().unwrap();
        rec.steps[0].children.iter().all(|l| l.closed)
    })
    .await;
    let children = w.children_of("p").await;
    let finish = by_close(&children, "finish");
    let abandon = by_close(&children, "abandon");
    assert!(!finish.status.is_finished() && !finish.ordered_by.as_ref().unwrap().abandoned);
    assert!(!abandon.status.is_finished() && abandon.ordered_by.as_ref().unwrap().abandoned);
    // Those left running run to their end.
    gate.store(true, Ordering::SeqCst);
    assert_eq!(
        e.wait_finished(&finish.name, LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
    assert_eq!(
        e.wait_finished(&abandon.name, LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
    assert_eq!(events(&e, "p", "child.closed").await.len(), 3);
    assert_eq!(events(&e, &cancelled, "child.closed").await.len(), 1);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_beyond_the_operators_limits_are_refused() {
    // One child per job: the second order is refused, the first stands.
    let w = World::new("{attempts: 1}");
    let boss = Rules::new(|req| {
        if first_turn(req) {
            tool_calls(vec![
                order(json!({"template": "work", "params": {"n": 1}, "wait": false})),
                order(json!({"template": "work", "params": {"n": 2}, "wait": false})),
            ])
        } else {
            succeed(json!({}))
        }
    });
    let worker = worker(Arc::new(AtomicBool::new(true)), false);
    let e = w
        .builder(&boss, &worker)
        .max_children_per_job(1)
        .build()
        .unwrap();
    e.start().await.unwrap();
    let h = e.spawn();
    assert_eq!(
        e.wait_finished("p", LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
    assert_eq!(w.children_of("p").await.len(), 1);
    let errors: Vec<String> = boss
        .seen()
        .iter()
        .flat_map(results)
        .filter(|(_, _, err)| *err)
        .map(|(_, c, _)| c)
        .collect();
    assert!(
        errors.iter().any(|c| c.contains("max_children_per_job")),
        "{errors:?}"
    );
    h.shutdown().await;

    // Depth 0: no job may order any child.
    let w = World::new("{attempts: 1}");
    let e = w
        .builder(&boss, &worker)
        .max_child_depth(0)
        .build()
        .unwrap();
    e.start().await.unwrap();
    let h = e.spawn();
    assert_eq!(
        e.wait_finished("p", LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
    assert!(w.children_of("p").await.is_empty());
    assert!(
        events(&e, "p", "tool.refused")
            .await
            .iter()
            .any(|ev| ev.detail.contains("max_child_depth"))
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_cancelling_a_waiting_parent_cancels_its_children() {
    let w = World::new("{attempts: 1}");
    let boss =
        Rules::new(|_| tool_calls(vec![order(json!({"template": "work", "params": {"n": 5}}))]));
    let gate = Arc::new(AtomicBool::new(false));
    let worker = worker(gate.clone(), false);
    let e = w.builder(&boss, &worker).build().unwrap();
    e.start().await.unwrap();
    let h = e.spawn();
    until("the parent waits for its child", || async {
        let rec = e.job("p").await.unwrap();
        rec.is_some_and(|r| matches!(r.steps[0].state, StepState::WaitingForChildren { .. }))
    })
    .await;
    let child = w.children_of("p").await.remove(0).name;
    let by = george_core::approval::Approver::user("ops");
    let rec = e.cancel_job("p", &by, "no longer needed").await.unwrap();
    assert_eq!(rec.status, JobStatus::Cancelled);
    assert_eq!(
        e.wait_finished(&child, LIMIT).await.unwrap(),
        JobStatus::Cancelled
    );
    // The cancelled child does not wake its cancelled parent into running again.
    gate.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rec = e.job("p").await.unwrap().unwrap();
    assert_eq!(rec.status, JobStatus::Cancelled);
    assert!(rec.steps[0].children[0].closed);
    assert_eq!(
        e.job(&child).await.unwrap().unwrap().status,
        JobStatus::Cancelled
    );
    h.shutdown().await;
}
