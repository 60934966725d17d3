//! Jobs that share a target: write steps under `concurrency: {key: target, limit: 1}`
//! never overlap on one target (and do on different ones); `ops_journal` shows only the
//! calling job's target; `report_success {resolves}` ends another job on the same
//! target `Succeeded`, in both event logs, and a refused `resolves` changes nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use george_core::command::CommandToolExecutor;
use george_core::engine::Engine;
use george_core::events::EventAction;
use george_core::human::ChannelHuman;
use george_core::memory::{InMemoryGitSource, InMemoryStateStore};
use george_core::outcome;
use george_core::provider::{ChatRequest, ChatResponse, Message, Provider};
use george_core::scripted::tool_call;
use george_core::state::{ApprovalRequest, ApprovalStatus, JobStatus, StepState};
use george_core::tool::{EffectClass, ToolDefinition, ToolExecutor, ToolInvocation, ToolOutput};
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;

const LIMIT: Duration = Duration::from_secs(20);

/// A provider that answers each job from its own script: the n-th model call of a job's
/// attempt gets the n-th response (n = assistant messages already in the transcript).
#[derive(Debug, Clone, Default)]
struct PerJob {
    scripts: Arc<Mutex<HashMap<String, Vec<ChatResponse>>>>,
    requests: Arc<Mutex<Vec<ChatRequest>>>,
}

impl PerJob {
    fn script(&self, job: &str, responses: Vec<ChatResponse>) {
        self.scripts
            .lock()
            .unwrap()
            .insert(job.to_string(), responses);
    }

    /// The tool results the model got in `job`, in order: (tool, content, is_error).
    fn results_of(&self, job: &str) -> Vec<(String, String, bool)> {
        let reqs = self.requests.lock().unwrap();
        let last = reqs
            .iter()
            .filter(|r| r.context.as_ref().is_some_and(|c| c.job == job))
            .max_by_key(|r| r.messages.len());
        last.map(|r| {
            r.messages
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
        })
        .unwrap_or_default()
    }

    fn offered(&self, job: &str) -> Vec<String> {
        let reqs = self.requests.lock().unwrap();
        reqs.iter()
            .find(|r| r.context.as_ref().is_some_and(|c| c.job == job))
            .map(|r| r.tools.iter().map(|t| t.name.clone()).collect())
            .unwrap_or_default()
    }
}

#[async_trait]
impl Provider for PerJob {
    fn name(&self) -> &str {
        "per-job"
    }

    async fn complete(&self, request: ChatRequest) -> george_core::Result<ChatResponse> {
        let job = request
            .context
            .as_ref()
            .map(|c| c.job.clone())
            .unwrap_or_default();
        let turn = request
            .messages
            .iter()
            .filter(|m| matches!(m, Message::Assistant(_)))
            .count();
        self.requests.lock().unwrap().push(request);
        let scripts = self.scripts.lock().unwrap();
        scripts
            .get(&job)
            .and_then(|s| s.get(turn))
            .cloned()
            .ok_or_else(|| {
                george_core::Error::invalid_input(format!("no response {turn} for job {job}"))
            })
    }
}

/// A `deploy` write tool that records who is inside it, by target, and the most that
/// were inside at once per target and overall. It stays inside for `hold`, or until
/// `meet` callers are inside at once (then all leave).
#[derive(Debug, Clone)]
struct Deployer {
    target_of: Arc<HashMap<String, String>>,
    inside: Arc<Mutex<HashMap<String, usize>>>,
    max_per_target: Arc<Mutex<HashMap<String, usize>>>,
    max_total: Arc<Mutex<usize>>,
    hold: Duration,
    meet: usize,
    /// A job whose call stays inside until this is cleared.
    block: Arc<Mutex<Option<String>>>,
    /// Jobs that entered, in order.
    entered: Arc<Mutex<Vec<String>>>,
}

impl Deployer {
    fn new(target_of: &[(&str, &str)], hold: Duration, meet: usize) -> Self {
        Deployer {
            target_of: Arc::new(
                target_of
                    .iter()
                    .map(|(j, t)| (j.to_string(), t.to_string()))
                    .collect(),
            ),
            inside: Default::default(),
            max_per_target: Default::default(),
            max_total: Default::default(),
            hold,
            meet,
            block: Default::default(),
            entered: Default::default(),
        }
    }

    fn total_inside(&self) -> usize {
        self.inside.lock().unwrap().values().sum()
    }
}

#[async_trait]
impl ToolExecutor for Deployer {
    fn tools(&self) -> Vec<ToolDefinition> {
        vec![
            ToolDefinition::new("deploy", "Changes the service.", json!({"type": "object"}))
                .with_effect(EffectClass::Write),
        ]
    }

    async fn call(&self, inv: ToolInvocation) -> george_core::Result<ToolOutput> {
        let target = self
            .target_of
            .get(&inv.context.job)
            .cloned()
            .unwrap_or_default();
        {
            let mut inside = self.inside.lock().unwrap();
            let n = inside.entry(target.clone()).or_default();
            *n += 1;
            let mut max = self.max_per_target.lock().unwrap();
            let m = max.entry(target.clone()).or_default();
            *m = (*m).max(*n);
            let total: usize = inside.values().sum();
            let mut mt = self.max_total.lock().unwrap();
            *mt = (*mt).max(total);
        }
        self.entered.lock().unwrap().push(inv.context.job.clone());
        while self.block.lock().unwrap().as_deref() == Some(inv.context.job.as_str()) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let deadline = tokio::time::Instant::now() + self.hold;
        while tokio::time::Instant::now() < deadline && self.total_inside() < self.meet {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        *self.inside.lock().unwrap().get_mut(&target).unwrap() -= 1;
        Ok(ToolOutput::ok("deployed"))
    }
}

fn agent(name: &str, tools: &str, may_resolve: bool) -> String {
    format!(
        "apiVersion: george.dev/v1alpha1
kind: AgentSpec
metadata: {{name: {name}}}
spec:
  model: m
  system_prompt: You run operations.
  tools: [{tools}]
  may_resolve: {may_resolve}
"
    )
}

/// Template `deploy`: a command step `check`, then an agent step `apply` of agent
/// `ops` under `concurrency` (made ready by `check`'s outcome: dispatched from the
/// outcome's write or the next reconcile).
fn deploy_template(concurrency: &str) -> String {
    format!(
        "apiVersion: george.dev/v1alpha1
kind: TaskTemplate
metadata: {{name: deploy}}
spec:
  steps:
    - {{id: check, command: {{program: 'true'}}}}
    - id: apply
      agent: ops
      depends_on: [check]
      instructions: Deploy.
      {concurrency}
"
    )
}

fn job(name: &str, template: &str, service: &str) -> String {
    format!(
        "apiVersion: george.dev/v1alpha1
kind: Job
metadata: {{name: {name}}}
spec:
  template: {template}
  target: {{kind: service, name: {service}}}
"
    )
}

fn deploy_script() -> Vec<ChatResponse> {
    vec![
        tool_call("c1", "deploy", json!({})),
        tool_call(
            "c2",
            "report_success",
            json!({"summary": "deployed", "outputs": {}}),
        ),
    ]
}

struct Setup {
    git: InMemoryGitSource,
    store: Arc<InMemoryStateStore>,
    provider: PerJob,
}

impl Setup {
    fn new(files: Vec<(String, String)>) -> Self {
        let git = InMemoryGitSource::new();
        git.commit_files("main", files, "c1");
        Setup {
            git,
            store: Arc::new(InMemoryStateStore::new()),
            provider: PerJob::default(),
        }
    }

    fn engine(
        &self,
        tools: Option<Arc<dyn ToolExecutor>>,
    ) -> (Engine, UnboundedReceiver<ApprovalRequest>) {
        self.engine_id("e1", tools)
    }

    fn engine_id(
        &self,
        id: &str,
        tools: Option<Arc<dyn ToolExecutor>>,
    ) -> (Engine, UnboundedReceiver<ApprovalRequest>) {
        let (human, rx) = ChannelHuman::new();
        let mut b = Engine::builder(self.store.clone(), Arc::new(self.git.clone()))
            .id(id)
            .claim_interval(Duration::from_millis(50))
            .provider("default", Arc::new(self.provider.clone()))
            .commands(CommandToolExecutor::new(["true"]))
            .human(Arc::new(human))
            .poll_interval(Duration::from_secs(3600));
        if let Some(t) = tools {
            b = b.tools(t);
        }
        (b.build().expect("engine"), rx)
    }
}

fn files(items: &[(&str, String)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(p, c)| (p.to_string(), c.clone()))
        .collect()
}

async fn run_deploys(jobs: &[(&str, &str)], concurrency: &str, meet: usize) -> Deployer {
    let mut fs = vec![
        ("agent-specs/ops.yaml", agent("ops", "deploy", false)),
        ("task-templates/deploy.yaml", deploy_template(concurrency)),
    ];
    let paths: Vec<String> = jobs.iter().map(|(j, _)| format!("jobs/{j}.yaml")).collect();
    for ((j, t), p) in jobs.iter().zip(&paths) {
        fs.push((p.as_str(), job(j, "deploy", t)));
    }
    let s = Setup::new(files(&fs));
    for (j, _) in jobs {
        s.provider.script(j, deploy_script());
    }
    let deployer = Deployer::new(jobs, Duration::from_millis(1000), meet);
    let (e, _rx) = s.engine(Some(Arc::new(deployer.clone())));
    e.start().await.unwrap();
    let run = e.spawn();
    for (j, _) in jobs {
        assert_eq!(
            e.wait_finished(j, LIMIT).await.unwrap(),
            JobStatus::Succeeded,
            "job {j}"
        );
    }
    run.shutdown().await;
    deployer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_steps_on_one_target_never_overlap() {
    // Three jobs on one service, one on another: the executor waits (up to its hold)
    // for a second caller, so any overlap the engine allowed would show.
    let jobs = [("a", "s"), ("b", "s"), ("c", "s"), ("d", "other")];
    let d = run_deploys(&jobs, "concurrency: {key: target, limit: 1}", 2).await;
    let max = d.max_per_target.lock().unwrap().clone();
    assert_eq!(
        max.get("s"),
        Some(&1),
        "one write step at a time on s: {max:?}"
    );
    // The other target was not held back by s.
    assert_eq!(*d.max_total.lock().unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_steps_on_different_targets_overlap() {
    let jobs = [("a", "s1"), ("b", "s2")];
    let d = run_deploys(&jobs, "concurrency: {key: target, limit: 1}", 2).await;
    assert_eq!(*d.max_total.lock().unwrap(), 2, "both ran at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_concurrency_limit_one_target_does_overlap() {
    // The control: the same jobs without the declaration run at once.
    let jobs = [("a", "s"), ("b", "s")];
    let d = run_deploys(&jobs, "", 2).await;
    assert_eq!(d.max_per_target.lock().unwrap().get("s"), Some(&2));
}

/// Two engines share a store; one runs a write step on the target (its lease live),
/// the other gets a second job on it: that job waits, and runs once the first is done.
/// The same holds after a crash when an engine restarts under a new id while the old
/// incarnation's leases run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limit_holds_across_engines_sharing_a_store() {
    use george_core::store::StateStore;
    let s = Setup::new(files(&[
        ("agent-specs/ops.yaml", agent("ops", "deploy", false)),
        (
            "task-templates/deploy.yaml",
            deploy_template("concurrency: {key: target, limit: 1}"),
        ),
        ("jobs/a.yaml", job("a", "deploy", "s")),
    ]));
    s.provider.script("a", deploy_script());
    s.provider.script("b", deploy_script());
    let deployer = Deployer::new(&[("a", "s"), ("b", "s")], Duration::from_millis(0), 99);
    *deployer.block.lock().unwrap() = Some("a".into());
    let tools: Arc<dyn ToolExecutor> = Arc::new(deployer.clone());
    let (e1, _rx1) = s.engine_id("e1", Some(tools.clone()));
    e1.start().await.unwrap();
    let run1 = e1.spawn();
    let deadline = tokio::time::Instant::now() + LIMIT;
    while deployer.entered.lock().unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "a never deployed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (e2, _rx2) = s.engine_id("e2", Some(tools));
    s.git
        .commit_files("main", [("jobs/b.yaml", job("b", "deploy", "s"))], "c2");
    e2.start().await.unwrap();
    let run2 = e2.spawn();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(*deployer.entered.lock().unwrap(), ["a"], "b waited for a");
    let b = e2.job("b").await.unwrap().expect("b created");
    assert_eq!(b.steps[1].state, StepState::Ready);
    *deployer.block.lock().unwrap() = None;
    // Either engine may run b (both may claim it): read the shared store.
    for j in ["a", "b"] {
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            let rec = s.store.get_job(j).await.unwrap().unwrap();
            if rec.status == JobStatus::Succeeded {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{j} is {}",
                rec.status
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    run1.shutdown().await;
    run2.shutdown().await;
    assert_eq!(*deployer.entered.lock().unwrap(), ["a", "b"]);
    assert_eq!(deployer.max_per_target.lock().unwrap().get("s"), Some(&1));
}

/// Template `t`: one command step (finishes at once).
fn command_template(name: &str) -> String {
    format!(
        "apiVersion: george.dev/v1alpha1
kind: TaskTemplate
metadata: {{name: {name}}}
spec:
  steps:
    - {{id: run, command: {{program: 'true'}}}}
"
    )
}

/// Template `{name}`: one agent step `work` of `agent`, gated by approval when `gated`.
fn agent_template(name: &str, agent: &str, gated: bool) -> String {
    let approval = if gated {
        "\n      approval: required"
    } else {
        ""
    };
    format!(
        "apiVersion: george.dev/v1alpha1
kind: TaskTemplate
metadata: {{name: {name}}}
spec:
  steps:
    - id: work
      agent: {agent}
      instructions: Work.{approval}
"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_journal_shows_only_the_calling_jobs_target() {
    let s = Setup::new(files(&[
        ("agent-specs/ops.yaml", agent("ops", "", false)),
        ("task-templates/cmd.yaml", command_template("cmd")),
        ("task-templates/look.yaml", agent_template("look", "ops", false)),
        ("jobs/b.yaml", job("b", "cmd", "darwin-store")),
        ("jobs/c.yaml", job("c", "cmd", "other")),
        (
            "jobs/n.yaml",
            "apiVersion: george.dev/v1alpha1\nkind: Job\nmetadata: {name: n}\nspec: {template: cmd}\n"
                .to_string(),
        ),
    ]));
    let (e, _rx) = s.engine(None);
    e.start().await.unwrap();
    let run = e.spawn();
    for j in ["b", "c", "n"] {
        assert_eq!(
            e.wait_finished(j, LIMIT).await.unwrap(),
            JobStatus::Succeeded
        );
    }
    // The model asks for another target in its arguments: ignored.
    s.provider.script(
        "a",
        vec![
            tool_call(
                "c1",
                "ops_journal",
                json!({"limit": 50, "target": {"kind": "service", "name": "other"}}),
            ),
            tool_call(
                "c2",
                "report_success",
                json!({"summary": "read", "outputs": {}}),
            ),
        ],
    );
    s.git.commit_files(
        "main",
        [("jobs/a.yaml", job("a", "look", "darwin-store"))],
        "c2",
    );
    e.sync().await.unwrap();
    assert_eq!(
        e.wait_finished("a", LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
    run.shutdown().await;

    assert!(s.provider.offered("a").contains(&"ops_journal".to_string()));
    let told = s.provider.requests.lock().unwrap().iter().any(|r| {
        r.messages.iter().any(|m| {
            matches!(m, Message::User { content } if content.contains("# Target\nThis job works on kind=service,name=darwin-store"))
        })
    });
    assert!(told, "the user message names the job's target");
    let results = s.provider.results_of("a");
    let (tool, content, is_error) = &results[0];
    assert_eq!(tool, "ops_journal");
    assert!(!is_error, "{content}");
    let v: Value = serde_json::from_str(content).unwrap();
    assert_eq!(v["target"], "kind=service,name=darwin-store");
    let names: Vec<&str> = v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"a") && names.contains(&"b"), "{names:?}");
    let b = v["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == "b")
        .unwrap();
    assert_eq!(b["status"], "Succeeded");
    assert_eq!(b["template"], "cmd");
    assert_eq!(b["steps"][0]["state"], "succeeded");
    assert!(
        b["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|ev| ev["action"] == "job.status"),
        "{b}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_without_a_target_is_not_offered_the_journal() {
    let s = Setup::new(files(&[
        ("agent-specs/ops.yaml", agent("ops", "", false)),
        ("task-templates/look.yaml", agent_template("look", "ops", false)),
        (
            "jobs/a.yaml",
            "apiVersion: george.dev/v1alpha1\nkind: Job\nmetadata: {name: a}\nspec: {template: look}\n"
                .to_string(),
        ),
    ]));
    s.provider.script(
        "a",
        vec![tool_call(
            "c1",
            "report_success",
            json!({"summary": "ok", "outputs": {}}),
        )],
    );
    let (e, _rx) = s.engine(None);
    e.start().await.unwrap();
    let run = e.spawn();
    assert_eq!(
        e.wait_finished("a", LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
    run.shutdown().await;
    assert!(!s.provider.offered("a").contains(&"ops_journal".to_string()));
}

/// The seed's two jobs on darwin-store: `infra` (the Aligner's event) waits for a
/// human's approval of its plan; `feature` (with a `may_resolve` agent) fixes the
/// service and reports that it resolves `infra`.
fn resolve_setup(dev_may_resolve: bool) -> Setup {
    Setup::new(files(&[
        ("agent-specs/sysadmin.yaml", agent("sysadmin", "", false)),
        ("agent-specs/dev.yaml", agent("dev", "", dev_may_resolve)),
        (
            "task-templates/infra.yaml",
            agent_template("infra", "sysadmin", true),
        ),
        (
            "task-templates/feature.yaml",
            agent_template("feature", "dev", false),
        ),
        ("task-templates/cmd.yaml", command_template("cmd")),
        ("jobs/infra.yaml", job("infra", "infra", "darwin-store")),
        ("jobs/done.yaml", job("done", "cmd", "darwin-store")),
        ("jobs/elsewhere.yaml", job("elsewhere", "infra", "other")),
    ]))
}

fn plan() -> ChatResponse {
    tool_call(
        "p1",
        "submit_plan",
        json!({"summary": "restart the pods", "actions": []}),
    )
}

/// Starts the engine, waits until `infra` and `elsewhere` await approval and `done`
/// succeeded; returns the engine, its run handle and the open requests.
async fn start_waiting(
    s: &Setup,
) -> (Engine, george_core::engine::RunHandle, Vec<ApprovalRequest>) {
    s.provider.script("infra", vec![plan()]);
    s.provider.script("elsewhere", vec![plan()]);
    let (e, mut rx) = s.engine(None);
    e.start().await.unwrap();
    let run = e.spawn();
    let mut open = Vec::new();
    while open.len() < 2 {
        let req = tokio::time::timeout(LIMIT, rx.recv())
            .await
            .unwrap()
            .unwrap();
        if req.status == ApprovalStatus::Open {
            open.push(req);
        }
    }
    for j in ["infra", "elsewhere"] {
        e.wait_for(j, LIMIT, |st| st == JobStatus::AwaitingApproval)
            .await
            .unwrap();
    }
    assert_eq!(
        e.wait_finished("done", LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
    (e, run, open)
}

async fn add_feature(s: &Setup, e: &Engine) {
    s.git.commit_files(
        "main",
        [(
            "jobs/feature.yaml",
            job("feature", "feature", "darwin-store"),
        )],
        "c2",
    );
    e.sync().await.unwrap();
    assert_eq!(
        e.wait_finished("feature", LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolves_ends_the_other_job_succeeded_and_both_logs_say_so() {
    let s = resolve_setup(true);
    let (e, run, open) = start_waiting(&s).await;
    s.provider.script(
        "feature",
        vec![outcome_response(outcome::report_success_resolving(
            "images shipped; the deployment is healthy again",
            json!({}),
            ["infra"],
        ))],
    );
    add_feature(&s, &e).await;
    let infra = e
        .wait_for("infra", LIMIT, |st| st == JobStatus::Succeeded)
        .await
        .unwrap();
    assert_eq!(infra, JobStatus::Succeeded);
    let rec = e.job("infra").await.unwrap().unwrap();
    let by = rec.resolved_by.clone().expect("resolved_by");
    assert_eq!((by.job.as_str(), by.step.as_str()), ("feature", "work"));
    assert_eq!(rec.steps[0].state, StepState::Cancelled);
    // Its open approval request was cancelled; the other target's was not.
    let infra_req = open.iter().find(|r| r.job == "infra").unwrap();
    let req = s_approval(&e, &infra_req.id).await;
    assert!(
        matches!(req.status, ApprovalStatus::Cancelled { .. }),
        "{req:?}"
    );
    let other = open.iter().find(|r| r.job == "elsewhere").unwrap();
    assert_eq!(s_approval(&e, &other.id).await.status, ApprovalStatus::Open);
    // Both logs.
    let theirs = e.events("infra").await.unwrap();
    assert!(
        theirs.iter().any(|ev| ev.action == EventAction::JobResolved
            && ev.detail.contains("resolved by feature/work")),
        "{theirs:#?}"
    );
    let ours = e.events("feature").await.unwrap();
    assert!(
        ours.iter().any(|ev| ev.action == EventAction::JobResolved
            && ev.detail.contains("resolves infra")),
        "{ours:#?}"
    );
    // The reconciler leaves a resolved job alone: still Succeeded after a pass.
    e.requeue("infra");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        e.job("infra").await.unwrap().unwrap().status,
        JobStatus::Succeeded
    );
    run.shutdown().await;
}

fn outcome_response(call: george_core::provider::ToolCall) -> ChatResponse {
    ChatResponse::tool_calls(vec![call])
}

async fn s_approval(e: &Engine, id: &str) -> ApprovalRequest {
    e.approval(id).await.unwrap().expect("request")
}

/// Asserts `infra` is untouched: still awaiting approval, not resolved, no
/// `job.resolved` in any log.
async fn assert_nothing_resolved(e: &Engine) {
    let rec = e.job("infra").await.unwrap().unwrap();
    assert_eq!(rec.status, JobStatus::AwaitingApproval);
    assert!(rec.resolved_by.is_none());
    for j in ["infra", "feature", "done", "elsewhere"] {
        let evs = e.events(j).await.unwrap();
        assert!(
            !evs.iter().any(|ev| ev.action == EventAction::JobResolved),
            "{j}: {evs:#?}"
        );
    }
    assert_eq!(
        e.job("done").await.unwrap().unwrap().status,
        JobStatus::Succeeded
    );
    assert_eq!(
        e.job("elsewhere").await.unwrap().unwrap().status,
        JobStatus::AwaitingApproval
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_resolves_are_tool_errors_and_change_nothing() {
    let s = resolve_setup(true);
    let (e, run, _open) = start_waiting(&s).await;
    let resolving = |names: &[&str]| {
        outcome_response(outcome::report_success_resolving(
            "done",
            json!({}),
            names.iter().copied(),
        ))
    };
    s.provider.script(
        "feature",
        vec![
            // Another target; a finished job; no such job; a good and a bad one together.
            resolving(&["elsewhere"]),
            resolving(&["done"]),
            resolving(&["ghost"]),
            resolving(&["infra", "elsewhere"]),
            tool_call(
                "c",
                "report_success",
                json!({"summary": "done", "outputs": {}, "resolves": "infra"}),
            ),
            // Then a plain success.
            tool_call(
                "c",
                "report_success",
                json!({"summary": "done", "outputs": {}}),
            ),
        ],
    );
    add_feature(&s, &e).await;
    let results = s.provider.results_of("feature");
    assert_eq!(results.len(), 5, "{results:#?}");
    for (tool, content, is_error) in &results {
        assert_eq!(tool, "report_success");
        assert!(is_error, "{content}");
    }
    assert!(
        results[0].1.contains("not on this job's target"),
        "{}",
        results[0].1
    );
    assert!(
        results[1].1.contains("already Succeeded"),
        "{}",
        results[1].1
    );
    assert!(results[2].1.contains("no job"), "{}", results[2].1);
    assert!(results[3].1.contains("elsewhere"), "{}", results[3].1);
    assert!(
        results[4].1.contains("list of job names"),
        "{}",
        results[4].1
    );
    assert_nothing_resolved(&e).await;
    run.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_without_may_resolve_cannot_resolve() {
    let s = resolve_setup(false);
    let (e, run, _open) = start_waiting(&s).await;
    s.provider.script(
        "feature",
        vec![
            outcome_response(outcome::report_success_resolving(
                "done",
                json!({}),
                ["infra"],
            )),
            tool_call(
                "c",
                "report_success",
                json!({"summary": "done", "outputs": {}}),
            ),
        ],
    );
    add_feature(&s, &e).await;
    let results = s.provider.results_of("feature");
    assert_eq!(results.len(), 1);
    assert!(
        results[0].2 && results[0].1.contains("may_resolve"),
        "{:?}",
        results[0]
    );
    assert_nothing_resolved(&e).await;
    run.shutdown().await;
}

/// A crash between the two writes of a resolution (the reporter's outcome stored, the
/// other job not yet ended) is repaired when an engine starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolution_interrupted_between_its_writes_is_completed_on_start() {
    use george_core::state::Resolves;
    use george_core::store::{JobWrite, StateStore};
    let s = resolve_setup(true);
    let (e, run, _open) = start_waiting(&s).await;
    run.shutdown().await;
    let infra = e.job("infra").await.unwrap().unwrap();
    // The reporter's first write, as a crash would leave it: a succeeded step that
    // records the resolution, and nothing done to `infra`.
    let mut reporter = e.job("done").await.unwrap().unwrap();
    reporter.name = "reporter".into();
    reporter.revision = 0;
    std::sync::Arc::make_mut(&mut reporter.steps[0]).resolves = vec![Resolves {
        job: "infra".into(),
        generation: infra.generation,
    }];
    s.store.commit(JobWrite::create(reporter)).await.unwrap();
    drop(e);

    let (e2, _rx) = s.engine_id("e2", None);
    e2.start().await.unwrap();
    let rec = e2.job("infra").await.unwrap().unwrap();
    assert_eq!(rec.status, JobStatus::Succeeded);
    assert_eq!(
        rec.resolved_by.as_ref().map(|b| b.job.as_str()),
        Some("reporter")
    );
    let evs = e2.events("infra").await.unwrap();
    assert!(evs.iter().any(|ev| ev.action == EventAction::JobResolved));
    // Idempotent: a second start changes nothing.
    let before = s.store.get_job("infra").await.unwrap().unwrap().revision;
    let (e3, _rx3) = s.engine_id("e3", None);
    e3.start().await.unwrap();
    assert_eq!(
        s.store.get_job("infra").await.unwrap().unwrap().revision,
        before
    );
}

/// The target is the template's default under the job's keys; a changed target is a
/// new generation and the record follows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_target_merges_template_and_job_and_a_change_is_a_new_generation() {
    let template = "apiVersion: george.dev/v1alpha1
kind: TaskTemplate
metadata: {name: cmd}
spec:
  target: {kind: service, env: prod}
  steps:
    - {id: run, command: {program: 'true'}}
"
    .to_string();
    let s = Setup::new(files(&[
        ("task-templates/cmd.yaml", template),
        ("jobs/a.yaml", job("a", "cmd", "darwin-store")),
    ]));
    let (e, _rx) = s.engine(None);
    e.start().await.unwrap();
    let run = e.spawn();
    assert_eq!(
        e.wait_finished("a", LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
    let rec = e.job("a").await.unwrap().unwrap();
    assert_eq!(rec.target_key(), "env=prod,kind=service,name=darwin-store");
    assert_eq!(rec.generation, 1);
    s.git
        .commit_files("main", [("jobs/a.yaml", job("a", "cmd", "other"))], "c2");
    e.sync().await.unwrap();
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let rec = e.job("a").await.unwrap().unwrap();
        if rec.generation == 2 && rec.status == JobStatus::Succeeded {
            assert_eq!(rec.target_key(), "env=prod,kind=service,name=other");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{rec:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    run.shutdown().await;
}

/// A policy's `target` matches the job's target: a plan on darwin-store is approved
/// by the policy, the same plan on another service waits for a person.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_rule_on_a_target_sees_the_jobs_target() {
    let template = "apiVersion: george.dev/v1alpha1
kind: TaskTemplate
metadata: {name: fix}
spec:
  steps:
    - id: plan
      agent: ops
      instructions: Plan.
      approval: required
    - id: execute
      depends_on: [plan]
      execute_approved: plan
"
    .to_string();
    let policy = "apiVersion: george.dev/v1alpha1
kind: Policy
metadata: {name: darwin}
spec:
  rules:
    - {name: deploy-darwin, effect: allow, tool: deploy, target: {name: darwin-store}}
"
    .to_string();
    let s = Setup::new(files(&[
        ("agent-specs/ops.yaml", agent("ops", "deploy", false)),
        ("task-templates/fix.yaml", template),
        ("policies/darwin.yaml", policy),
        ("jobs/a.yaml", job("a", "fix", "darwin-store")),
        ("jobs/b.yaml", job("b", "fix", "other")),
    ]));
    let plan = || {
        vec![tool_call(
            "p",
            "submit_plan",
            json!({"summary": "deploy", "actions": [{"tool": "deploy", "arguments": {}}]}),
        )]
    };
    s.provider.script("a", plan());
    s.provider.script("b", plan());
    let deployer = Deployer::new(&[("a", "darwin-store"), ("b", "other")], Duration::ZERO, 99);
    let (e, mut rx) = s.engine(Some(Arc::new(deployer.clone())));
    e.start().await.unwrap();
    let run = e.spawn();
    assert_eq!(
        e.wait_finished("a", LIMIT).await.unwrap(),
        JobStatus::Succeeded
    );
    let req = loop {
        let r = tokio::time::timeout(LIMIT, rx.recv())
            .await
            .unwrap()
            .unwrap();
        if r.status == ApprovalStatus::Open {
            break r;
        }
    };
    assert_eq!(req.job, "b", "only b's plan waits for a person");
    assert_eq!(*deployer.entered.lock().unwrap(), ["a"]);
    run.shutdown().await;
}
