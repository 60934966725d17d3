//! The operator's caps, attacked the way a commit or a model would: template loop bombs,
//! oversized manifests, too many steps or parameters, a model flooding a turn with tool
//! calls, a transcript that grows without end, a spec asking for more iterations than
//! the operator allows — and known secrets that must never be stored.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use george_core::command::CommandToolExecutor;
use george_core::engine::{AgentLimits, Engine};
use george_core::manifest::{ManifestLimits, ManifestSet};
use george_core::memory::{InMemoryGitSource, InMemoryStateStore};
use george_core::outcome;
use george_core::provider::ChatResponse;
use george_core::scripted::{ScriptedProvider, tool_call, tool_calls};
use george_core::secret::KnownSecrets;
use george_core::state::{JobRecord, JobStatus};
use george_core::store::{StateStore, TranscriptKey};
use george_core::tool::{EffectClass, ToolDefinition, ToolExecutor, ToolInvocation, ToolOutput};
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(20);

fn agent(extra: &str) -> String {
    format!(
        "apiVersion: george.dev/v1alpha1
kind: AgentSpec
metadata: {{name: a}}
spec:
  model: m
  system_prompt: You work.
  tools: [fetch]
{extra}"
    )
}

fn template(steps: &str) -> String {
    format!(
        "apiVersion: george.dev/v1alpha1
kind: TaskTemplate
metadata: {{name: t}}
spec:
  parameters:
    - {{name: n, type: integer, default: 1}}
  steps:
{steps}"
    )
}

fn job(name: &str, params: &str) -> String {
    format!(
        "apiVersion: george.dev/v1alpha1
kind: Job
metadata: {{name: {name}}}
spec: {{template: t, params: {{{params}}}}}
"
    )
}

const AGENT_STEP: &str = "    - {id: work, agent: a, instructions: Work.}\n";

/// Tool `fetch` (read): returns `reply`, counting calls.
#[derive(Debug, Clone, Default)]
struct Fetch {
    reply: Arc<Mutex<String>>,
    calls: Arc<Mutex<usize>>,
}

#[async_trait]
impl ToolExecutor for Fetch {
    fn tools(&self) -> Vec<ToolDefinition> {
        vec![
            ToolDefinition::new("fetch", "Fetches.", json!({"type": "object"}))
                .with_effect(EffectClass::Read),
        ]
    }

    async fn call(&self, _inv: ToolInvocation) -> george_core::Result<ToolOutput> {
        *self.calls.lock().unwrap() += 1;
        Ok(ToolOutput::ok(self.reply.lock().unwrap().clone()))
    }
}

struct Run {
    engine: Engine,
    store: Arc<InMemoryStateStore>,
    provider: ScriptedProvider,
    fetch: Fetch,
}

fn setup(files: Vec<(&str, String)>, limits: AgentLimits, secrets: KnownSecrets) -> Run {
    let git = InMemoryGitSource::new();
    git.commit_files("main", files, "c1");
    let store = Arc::new(InMemoryStateStore::new());
    let provider = ScriptedProvider::new();
    let fetch = Fetch::default();
    let engine = Engine::builder(store.clone(), Arc::new(git))
        .provider("default", Arc::new(provider.clone()))
        .tools(Arc::new(fetch.clone()))
        .commands(CommandToolExecutor::new(["echo"]))
        .agent_limits(limits)
        .known_secrets(secrets)
        .poll_interval(Duration::from_secs(3600))
        .build()
        .expect("engine");
    Run {
        engine,
        store,
        provider,
        fetch,
    }
}

impl Run {
    async fn finish(&self, job: &str) -> JobRecord {
        self.engine.start().await.expect("start");
        let run = self.engine.spawn();
        let finished = self.engine.wait_finished(job, LIMIT).await;
        run.shutdown().await;
        finished.expect("finished in time");
        self.engine.job(job).await.unwrap().expect("record")
    }
}

fn message(rec: &JobRecord, step: &str) -> String {
    rec.step(step)
        .and_then(|s| s.message.clone())
        .unwrap_or_default()
}

const BOMB: &str = "{% for a in range(100000) %}{% for b in range(100000) %}{% for c in range(100000) %}x{% endfor %}{% endfor %}{% endfor %}";

#[test]
fn a_committed_loop_bomb_fails_validation_fast_and_alone() {
    let steps = format!("    - {{id: s, command: {{program: echo, args: [\"{BOMB}\"]}}}}\n");
    let set = ManifestSet::load(
        [
            ("task-templates/t.yaml", template(&steps)),
            ("jobs/j.yaml", job("j", "")),
            ("agent-specs/a.yaml", agent("")),
        ]
        .into_iter()
        .map(|(p, t)| george_core::git::SourceFile {
            path: p.into(),
            bytes: t.into(),
        })
        .collect(),
    );
    let e = set
        .errors
        .iter()
        .find(|e| e.path == "task-templates/t.yaml")
        .expect("the template is invalid");
    assert_eq!(e.field, "spec.steps[0].command.args[0]");
    assert!(e.message.contains("out of fuel"), "{e}");
    assert!(
        set.agents.contains_key("a"),
        "the other manifests still load"
    );
}

#[tokio::test]
async fn a_bomb_fed_by_parameters_is_a_step_error_not_a_hang() {
    let bomb =
        "{% for a in range(params.n) %}{% for b in range(params.n) %}x{% endfor %}{% endfor %}";
    let steps = format!("    - {{id: s, command: {{program: echo, args: [\"{bomb}\"]}}}}\n");
    let r = setup(
        vec![
            ("task-templates/t.yaml", template(&steps)),
            ("jobs/j.yaml", job("j", "n: 100000")),
        ],
        AgentLimits::default(),
        KnownSecrets::new(),
    );
    let rec = r.finish("j").await;
    assert_eq!(rec.status, JobStatus::Failed);
    let m = message(&rec, "s");
    assert!(
        m.contains("out of fuel") && m.contains("template `t`"),
        "{m}"
    );
}

#[test]
fn oversized_files_and_too_many_steps_or_parameters_name_their_cap() {
    let limits = ManifestLimits {
        max_file_bytes: 4096,
        max_steps: 3,
        max_params: 2,
        ..ManifestLimits::default()
    };
    let four_steps: String = (0..4)
        .map(|i| format!("    - {{id: s{i}, command: {{program: echo}}}}\n"))
        .collect();
    let big = format!("{}# {}\n", job("big", ""), "x".repeat(8192));
    let files = vec![
        ("task-templates/t.yaml", template(&four_steps)),
        ("jobs/big.yaml", big),
        ("jobs/many.yaml", job("many", "n: 1, b: 2, c: 3")),
        ("agent-specs/a.yaml", agent("")),
    ];
    let set = ManifestSet::load_with_limits(
        files
            .into_iter()
            .map(|(p, t)| george_core::git::SourceFile {
                path: p.into(),
                bytes: t.into(),
            })
            .collect(),
        limits,
    );
    let of = |path: &str| {
        set.errors
            .iter()
            .filter(|e| e.path == path)
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        of("jobs/big.yaml").contains("max_file_bytes"),
        "{}",
        of("jobs/big.yaml")
    );
    assert!(of("task-templates/t.yaml").contains("ManifestLimits::max_steps"));
    assert!(of("jobs/many.yaml").contains("ManifestLimits::max_params"));
    assert!(set.agents.contains_key("a"));
}

#[tokio::test]
async fn a_turn_with_too_many_tool_calls_runs_none_of_them() {
    let r = setup(
        vec![
            ("agent-specs/a.yaml", agent("")),
            ("task-templates/t.yaml", template(AGENT_STEP)),
            ("jobs/j.yaml", job("j", "")),
        ],
        AgentLimits::default().with_max_tool_calls_per_turn(4),
        KnownSecrets::new(),
    );
    let ids: Vec<String> = (0..5).map(|i| format!("c{i}")).collect();
    let flood: Vec<(&str, &str, serde_json::Value)> = ids
        .iter()
        .map(|id| (id.as_str(), "fetch", json!({})))
        .collect();
    r.provider.expect_call("flood", tool_calls(flood));
    let rec = r.finish("j").await;
    assert_eq!(rec.status, JobStatus::Failed);
    let events = r.engine.events("j").await.unwrap();
    let capped = events
        .iter()
        .find(|e| e.action == "limit.exceeded")
        .expect("a limit.exceeded event");
    assert!(
        capped.detail.contains("max_tool_calls_per_turn"),
        "{}",
        capped.detail
    );
    assert_eq!(*r.fetch.calls.lock().unwrap(), 0);
}

#[tokio::test]
async fn a_growing_transcript_stops_at_its_cap() {
    let r = setup(
        vec![
            ("agent-specs/a.yaml", agent("")),
            ("task-templates/t.yaml", template(AGENT_STEP)),
            ("jobs/j.yaml", job("j", "")),
        ],
        AgentLimits::default().with_max_transcript_bytes(300_000),
        KnownSecrets::new(),
    );
    *r.fetch.reply.lock().unwrap() = "y".repeat(100_000);
    for i in 0..5 {
        r.provider.expect_call(
            format!("f{i}"),
            tool_call(&format!("c{i}"), "fetch", json!({})),
        );
    }
    let rec = r.finish("j").await;
    assert_eq!(rec.status, JobStatus::Failed);
    assert!(message(&rec, "work").contains("max_transcript_bytes"));
    assert_eq!(*r.fetch.calls.lock().unwrap(), 3, "stopped at the cap");
}

#[tokio::test]
async fn a_spec_cannot_raise_the_operators_iteration_ceiling() {
    let r = setup(
        vec![
            ("agent-specs/a.yaml", agent("  max_iterations: 1000\n")),
            ("task-templates/t.yaml", template(AGENT_STEP)),
            ("jobs/j.yaml", job("j", "")),
        ],
        AgentLimits::default().with_max_iterations(3),
        KnownSecrets::new(),
    );
    for i in 0..10 {
        r.provider.expect_call(
            format!("f{i}"),
            tool_call(&format!("c{i}"), "fetch", json!({})),
        );
    }
    let rec = r.finish("j").await;
    assert_eq!(rec.status, JobStatus::Failed);
    assert!(message(&rec, "work").contains("iteration limit (3)"));
    assert_eq!(r.provider.requests().len(), 3);
}

#[tokio::test]
async fn known_secrets_reach_neither_the_model_nor_the_store() {
    const SECRET: &str = "ghp_live_token_0123456789";
    let secrets = KnownSecrets::new();
    secrets.add(SECRET);
    let r = setup(
        vec![
            ("agent-specs/a.yaml", agent("")),
            ("task-templates/t.yaml", template(AGENT_STEP)),
            ("jobs/j.yaml", job("j", "")),
        ],
        AgentLimits::default(),
        secrets,
    );
    *r.fetch.reply.lock().unwrap() = format!("config: token={SECRET}");
    r.provider
        .expect_call("fetch", tool_call("c1", "fetch", json!({})));
    r.provider.expect_call(
        "done",
        ChatResponse::tool_calls(vec![outcome::report_success(
            format!("found {SECRET}"),
            json!({"token": SECRET}),
        )]),
    );
    let rec = r.finish("j").await;
    assert_eq!(rec.status, JobStatus::Succeeded);
    let sent = serde_json::to_string(&r.provider.requests()[1].messages).unwrap();
    assert!(
        !sent.contains(SECRET) && sent.contains("[REDACTED]"),
        "{sent}"
    );
    let key = TranscriptKey {
        job: "j".into(),
        step: "work".into(),
        attempt: 1,
    };
    let stored = r.store.transcript(&key).await.unwrap().expect("transcript");
    assert!(!serde_json::to_string(&stored).unwrap().contains(SECRET));
    let events = r.engine.events("j").await.unwrap();
    assert!(events.iter().all(|e| !e.detail.contains(SECRET)));
    let outputs = rec.step("work").and_then(|s| s.outputs.clone()).unwrap();
    assert!(!outputs.to_string().contains(SECRET));
}
