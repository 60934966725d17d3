//! Seed 001's feature-delivery event, on real input: an `ops` repository (the manifests of
//! `examples/feature-delivery/`), an `app` repository (a small shop and its Helm chart,
//! `examples/data/darwin-store/`, whose chart lacks the database settings), a SQLite store,
//! a scripted human and scripted agents. Shared by `examples/feature_delivery.rs` and
//! `tests/feature_delivery.rs`, which include `support/mod.rs` as `support` beside it.
//!
//! The agents are scripts that react to what their tools return (each step's script sees
//! its request: the attempt, the turn, the last tool result), so two jobs running at once
//! interleave freely; every tool result a script relies on is checked, and a mismatch is
//! recorded in [`Agents::failures`].
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use george::prelude::*;
use george::provider::{ChatRequest, ChatResponse, Message};
use george::scripted::tool_call;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::support::{copy_dir, git};

/// The feature job (from Git).
pub const FEATURE: &str = "darwin-store-product-images";
/// The detector's job (from Git); it orders [`INCIDENT`].
pub const WATCH: &str = "darwin-store-watch";
/// The investigation the detector orders: `<parent>--<step>--<key>`.
pub const INCIDENT: &str = "darwin-store-watch--watch--stuck-rollout";
/// The file standing in for the cluster's view of the rollout.
pub const OBSERVED: &str = "observed/darwin-store.txt";
const CHART: &str = "helm/templates/deployment.yaml";

/// Paths of one run.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub root: PathBuf,
    pub ops: PathBuf,
    pub app: PathBuf,
    pub db: PathBuf,
}

/// Creates the two repositories and the observed rollout (`ready: 5/5 revision: 1`).
pub fn setup(root: &Path) -> Scenario {
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let (ops, app) = (root.join("ops"), root.join("app"));
    copy_dir(&here.join("feature-delivery"), &ops);
    git(&ops, &["init", "-q"]);
    git(&ops, &["add", "."]);
    git(
        &ops,
        &[
            "commit",
            "-q",
            "-m",
            "Order: product images for darwin-store; watch it",
        ],
    );
    copy_dir(&here.join("data/darwin-store"), &app);
    git(&app, &["init", "-q"]);
    git(&app, &["add", "."]);
    git(&app, &["commit", "-q", "-m", "darwin-store v55"]);
    std::fs::create_dir_all(root.join("observed")).expect("mkdir");
    std::fs::write(root.join(OBSERVED), "ready: 5/5 revision: 1\n").expect("observed");
    Scenario {
        root: root.to_path_buf(),
        ops,
        app,
        db: root.join("george.db"),
    }
}

/// A file of the `app` repository at `main`.
pub fn app_file(s: &Scenario, path: &str) -> String {
    git(&s.app, &["show", &format!("main:{path}")])
}

/// The `app` repository's history, newest first.
pub fn app_log(s: &Scenario) -> Vec<String> {
    git(&s.app, &["log", "--format=%h %s"])
        .lines()
        .map(str::to_string)
        .collect()
}

/// Stands in for CI, Argo CD and the cluster: once the code needs PostgreSQL the rollout
/// starts; without the database settings in the chart its new pods crash and it sticks at
/// 4/5; once the chart passes them, revision 3 becomes ready.
pub fn spawn_cluster(s: &Scenario) -> JoinHandle<()> {
    let s = s.clone();
    tokio::spawn(async move {
        let write = |text: &str| std::fs::write(s.root.join(OBSERVED), format!("{text}\n"));
        let mut rolled = false;
        loop {
            let code_needs_db = app_file(&s, "app/models.py").contains("DB_HOST");
            let chart_has_db = app_file(&s, CHART).contains("DB_HOST");
            if chart_has_db {
                tokio::time::sleep(Duration::from_millis(800)).await;
                let _ = write("ready: 5/5 revision: 3");
                return;
            }
            if code_needs_db && !rolled {
                rolled = true;
                let _ = write("rollout: in progress (revision 2); ready: 5/5 revision: 1");
                tokio::time::sleep(Duration::from_millis(1200)).await;
                let _ = write(
                    "ready: 4/5 revision: 2 (new pods CrashLoopBackOff: KeyError: 'DB_HOST')",
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// A scripted human: approves every plan (the seed's one approval).
pub fn spawn_human(
    engine: Engine,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<george::state::ApprovalRequest>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(req) = rx.recv().await {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let user = Approver::user("user");
            if let Err(e) = engine.approve(&req.id, &user, Some("go ahead")).await {
                eprintln!("approving {} failed: {e}", req.id);
            }
        }
    })
}

type Script = Box<dyn Fn(&Turn) -> Result<ChatResponse, String> + Send + Sync>;

/// What a step's script sees of a request.
pub struct Turn<'a> {
    /// The attempt (1, 2, …): a deferred step is attempted again.
    pub attempt: u32,
    /// Model calls already made in this attempt.
    pub turn: usize,
    /// The last tool result's text ("" on the first turn).
    pub last: &'a str,
}

/// The agents: one script per step id, chosen by the request's context; they run in
/// whatever order the engine interleaves the jobs.
#[derive(Clone, Default)]
pub struct Agents {
    scripts: Arc<HashMap<&'static str, Script>>,
    failures: Arc<Mutex<Vec<String>>>,
    calls: Arc<Mutex<Vec<String>>>,
}

impl std::fmt::Debug for Agents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agents").finish_non_exhaustive()
    }
}

impl Agents {
    /// Mismatches between what a script expected and what its tools returned.
    pub fn failures(&self) -> Vec<String> {
        self.failures.lock().expect("lock").clone()
    }

    /// `job/step#attempt.turn: tool` of every answer, in order.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().expect("lock").clone()
    }
}

#[async_trait]
impl Provider for Agents {
    fn name(&self) -> &str {
        "scripted-agents"
    }

    async fn complete(&self, req: ChatRequest) -> george::Result<ChatResponse> {
        let ctx = req.context.clone().unwrap_or_default();
        let turn = req
            .messages
            .iter()
            .filter(|m| matches!(m, Message::Assistant(_)))
            .count();
        let last = req
            .messages
            .iter()
            .rev()
            .find_map(|m| match m {
                Message::Tool { content, .. } => Some(content.as_str()),
                _ => None,
            })
            .unwrap_or("");
        let at = format!("{}/{}#{}.{turn}", ctx.job, ctx.step, ctx.attempt);
        let t = Turn {
            attempt: ctx.attempt,
            turn,
            last,
        };
        let answer = match self.scripts.get(ctx.step.as_str()) {
            Some(script) => script(&t),
            None => Err(format!("no script for step {}", ctx.step)),
        };
        let resp = answer.unwrap_or_else(|why| {
            self.failures
                .lock()
                .expect("lock")
                .push(format!("{at}: {why}"));
            tool_call(
                "call_fail",
                "report_failure",
                json!({"reason": why, "retryable": false}),
            )
        });
        let names: Vec<&str> = resp
            .message
            .tool_calls
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        self.calls
            .lock()
            .expect("lock")
            .push(format!("{at}: {}", names.join(", ")));
        Ok(resp)
    }
}

fn call(name: &str, args: Value) -> Result<ChatResponse, String> {
    Ok(tool_call(&format!("call_{name}"), name, args))
}

fn expect(last: &str, needle: &str) -> Result<(), String> {
    last.contains(needle)
        .then_some(())
        .ok_or_else(|| format!("expected a tool result containing {needle:?}, got {last:?}"))
}

fn read(path: &str) -> Result<ChatResponse, String> {
    call("app_read_file", json!({ "path": path }))
}

fn observe() -> Result<ChatResponse, String> {
    call(
        "run_command",
        json!({ "program": "cat", "args": [OBSERVED] }),
    )
}

fn defer(seconds: u64, reason: &str) -> Result<ChatResponse, String> {
    call("defer", json!({ "seconds": seconds, "reason": reason }))
}

/// The unfinished jobs of `template` in an `ops_journal` result.
fn open_jobs(journal: &str, template: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(journal).unwrap_or(Value::Null);
    let jobs = v
        .get("jobs")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    jobs.iter()
        .filter(|j| j["template"] == template)
        .filter(|j| {
            !matches!(
                j["status"].as_str().unwrap_or(""),
                "Succeeded" | "Failed" | "Cancelled" | "succeeded" | "failed" | "cancelled"
            )
        })
        .filter_map(|j| j["name"].as_str().map(str::to_string))
        .collect()
}

const MODELS_WITH_DB: &str = r#""""darwin-store: products with images, stored in PostgreSQL."""

import os
from dataclasses import dataclass

import psycopg

DB = dict(
    host=os.environ["DB_HOST"],
    port=os.environ["DB_PORT"],
    user=os.environ["DB_USER"],
    password=os.environ["DB_PASSWORD"],
    dbname=os.environ["DB_NAME"],
)


@dataclass
class Product:
    id: int
    name: str
    price_cents: int
    image_data: str | None = None  # base64, at most 512 KiB


def connect():
    return psycopg.connect(**DB)
"#;

const DB_ENV: &str = "          env:
            - {name: DB_HOST, value: {{ .Values.postgres.host | quote }}}
            - {name: DB_PORT, value: {{ .Values.postgres.port | quote }}}
            - {name: DB_USER, value: {{ .Values.postgres.user | quote }}}
            - {name: DB_NAME, value: {{ .Values.postgres.database | quote }}}
            - name: DB_PASSWORD
              valueFrom: {secretKeyRef: {name: {{ .Values.postgres.passwordSecret }}, key: password}}
          ports: [{containerPort: 8080}]";

/// The agents of the event, step by step.
pub fn agents() -> Agents {
    let mut s: HashMap<&'static str, Script> = HashMap::new();
    // Architect: reads the model and the chart, then submits the plan (read tools only).
    s.insert("plan", Box::new(|t: &Turn| match t.turn {
        0 => read("app/models.py"),
        1 => {
            expect(t.last, "_products: list[Product] = []")?;
            read(CHART)
        }
        _ => {
            expect(t.last, "kind: Deployment")?;
            call("submit_plan", json!({
                "summary": "Product images: Frontend — file input on Add Product, base64 \
                    thumbnails in Product Inventory. Backend — replace the in-memory list with \
                    PostgreSQL (DB_HOST, DB_PORT, DB_USER, DB_PASSWORD, DB_NAME from the \
                    environment) and add image_data. Risk: medium (size-capped images). \
                    Rollback: revert the commit.",
                "actions": []
            }))
        }
    }));
    // Developer: commits the code, as planned — not the chart.
    s.insert("implement", Box::new(|t: &Turn| match t.turn {
        0 => call("app_commit", json!({
            "message": "darwin-store: product images, stored in PostgreSQL",
            "changes": [
                {"path": "app/models.py", "content": MODELS_WITH_DB},
                {"path": "static/index.html",
                 "find": "  <input name=\"price_cents\" type=\"number\">",
                 "replace": "  <input name=\"price_cents\" type=\"number\">\n  <input name=\"image\" type=\"file\" accept=\"image/*\">"}
            ]
        })),
        _ => {
            expect(t.last, "commit")?;
            call("report_success", json!({"summary": "implemented and pushed", "outputs": {"pushed": true}}))
        }
    }));
    // sysAdmin, verifying: waits for CI once, then reads the rollout and the chart.
    s.insert("verify", Box::new(|t: &Turn| match (t.attempt, t.turn) {
        (1, _) => defer(3, "CI/CD is building and rolling out the new code"),
        (_, 0) => observe(),
        (_, 1) if !t.last.contains("4/5") => defer(1, "the rollout is still in progress"),
        (_, 1) => read(CHART),
        _ => {
            expect(t.last, "kind: Deployment")?;
            if t.last.contains("DB_HOST") {
                return Err("the chart already has DB_HOST".into());
            }
            call("report_success", json!({
                "summary": "rollout stuck at 4/5: the new pods crash (KeyError: 'DB_HOST')",
                "outputs": {"healthy": false, "cause": "the chart passes no DB_HOST, DB_PORT, \
                    DB_USER, DB_PASSWORD or DB_NAME to the container"}
            }))
        }
    }));
    // sysAdmin, fixing under the target's lock: journal, chart fix, resolve what it closes.
    s.insert("fix", Box::new(|t: &Turn| match t.turn {
        0 => call("ops_journal", json!({})),
        1 => {
            let open = open_jobs(t.last, "investigate-rollout");
            if open.is_empty() {
                return Err(format!("the journal should show the detector's job: {}", t.last));
            }
            call("app_commit", json!({
                "message": "darwin-store chart: pass the database settings to the container",
                "changes": [{"path": CHART, "find": "          ports: [{containerPort: 8080}]", "replace": DB_ENV}]
            }))
        }
        2 => {
            expect(t.last, "commit")?;
            call("ops_journal", json!({}))
        }
        _ => call("report_success", json!({
            "summary": "the chart now passes the database settings; revision 3 rolls out",
            "outputs": {"fixed": CHART},
            "resolves": open_jobs(t.last, "investigate-rollout")
        })),
    }));
    // Aligner: watches; on 4/5 it orders the investigation once (idempotent by key).
    s.insert("watch", Box::new(|t: &Turn| match t.turn {
        0 => observe(),
        1 if !t.last.contains("4/5") => defer(1, "all replicas ready"),
        1 => call("order_job", json!({
            "template": "investigate-rollout",
            "params": {"service": "darwin-store", "signal": "darwin-store has 4/5 replicas ready"},
            "wait": false,
            "key": "stuck-rollout"
        })),
        _ => {
            expect(t.last, INCIDENT)?;
            call("report_success", json!({"summary": "opened an investigation of darwin-store's rollout"}))
        }
    }));
    // sysAdmin on the incident: journal and chart → cause.
    s.insert(
        "investigate",
        Box::new(|t: &Turn| match t.turn {
            0 => call("ops_journal", json!({})),
            1 => {
                expect(t.last, FEATURE)?;
                read(CHART)
            }
            _ => call(
                "report_success",
                json!({
                    "summary": "revision 2 needs PostgreSQL settings the chart does not pass",
                    "outputs": {"cause": "no DB_* variables in helm/templates/deployment.yaml"}
                }),
            ),
        }),
    );
    // sysAdmin, remediating: the feature job already owns the fix, so it waits for it.
    s.insert(
        "remediate",
        Box::new(|t: &Turn| match t.turn {
            0 => call("ops_journal", json!({})),
            _ => defer(1, "darwin-store-product-images is fixing the chart"),
        }),
    );
    Agents {
        scripts: Arc::new(s),
        ..Agents::default()
    }
}

/// The engine: SQLite store, the `ops` repository, the `app` repository behind the Git
/// write tool (`app_read_file`, `app_commit`), `cat` and `grep` as commands.
pub async fn engine(s: &Scenario, agents: Agents, human: ChannelHuman) -> george::Result<Engine> {
    let store = SqliteStateStore::open(&s.db).await?;
    let ops = LocalGitSource::open(&s.ops, "main")?;
    let app = GitWriteTool::new(
        &s.app,
        "main",
        GitAuthor::new("George agents", "george@example.invalid"),
    )?
    .with_alias("app");
    Engine::builder(Arc::new(store), Arc::new(ops))
        .id("engine-1")
        .provider("default", Arc::new(agents))
        .tools(Arc::new(app))
        .commands(CommandToolExecutor::new(["cat", "grep"]).with_cwd(&s.root))
        .human(Arc::new(human))
        .poll_interval(Duration::from_secs(3600))
        .build()
}

/// What a run ended with.
#[derive(Debug)]
pub struct Report {
    pub feature: JobStatus,
    pub incident: JobStatus,
    pub watch: JobStatus,
    pub agents: Agents,
}

/// Runs the event to its end (or `timeout`), printing each job's timeline and the app's
/// history.
pub async fn run(s: &Scenario, timeout: Duration) -> george::Result<(Engine, Report)> {
    let agents = agents();
    let (human, approvals) = ChannelHuman::new();
    let engine = engine(s, agents.clone(), human).await?;
    let _human = spawn_human(engine.clone(), approvals);
    let _cluster = spawn_cluster(s);
    engine.start().await?;
    let errors = engine.manifest_errors();
    if !errors.is_empty() {
        let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
        return Err(george::Error::invalid_input(format!(
            "invalid manifests: {}",
            errors.join("; ")
        )));
    }
    let run = engine.spawn();
    let feature = engine.wait_finished(FEATURE, timeout).await?;
    let watch = engine.wait_finished(WATCH, timeout).await?;
    let incident = engine.wait_finished(INCIDENT, timeout).await?;
    run.shutdown().await;
    Ok((
        engine,
        Report {
            feature,
            incident,
            watch,
            agents,
        },
    ))
}
