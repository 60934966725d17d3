//! Seed 001's feature-delivery event, on real input: an `ops` repository (the manifests of
//! `examples/feature-delivery/`), an `app` repository (a small shop and its Helm chart,
//! `examples/data/darwin-store/`, whose chart lacks the database settings), a SQLite store,
//! a scripted human and scripted agents. Shared by `examples/feature_delivery.rs` and
//! `tests/feature_delivery.rs`, which include `support/mod.rs` as `support` beside it.
//!
//! The agents are scripts that react to what their tools return (each step's script sees
//! its request: the attempt, the turn, the last tool result), so two jobs running at once
//! interleave freely; every tool result a script relies on is checked, and a mismatch is
//! recorded in [`Agents::failures`]. The scripts are in `feature_scripts.rs`; the variant
//! whose rollout is a real Kubernetes Deployment is `feature_k8s.rs`.
#![allow(dead_code)]

#[path = "feature_scripts.rs"]
mod scripts;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use george::engine::EngineBuilder;
use george::prelude::*;
use george::provider::{ChatRequest, ChatResponse, Message};
use george::scripted::tool_call;
use serde_json::json;
use tokio::task::JoinHandle;

use super::support::{copy_dir, git, timeline};

#[allow(unused_imports)] // each includer uses some of them
pub use scripts::{DEPLOYMENT, Rollout, agents, agents_for};

/// The feature job (from Git).
pub const FEATURE: &str = "darwin-store-product-images";
/// The detector's job (from Git); it orders [`INCIDENT`].
pub const WATCH: &str = "darwin-store-watch";
/// The investigation the detector orders: `<parent>--<step>--<key>`.
pub const INCIDENT: &str = "darwin-store-watch--watch--stuck-rollout";
/// The file standing in for the cluster's view of the rollout.
pub const OBSERVED: &str = "observed/darwin-store.txt";
/// The app's Helm template of the Deployment.
pub const CHART: &str = "helm/templates/deployment.yaml";

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

/// The engine: SQLite store, the `ops` repository, the `app` repository behind the Git
/// write tool (`app_read_file`, `app_commit`), `cat` and `grep` as commands.
pub async fn engine(s: &Scenario, agents: Agents, human: ChannelHuman) -> george::Result<Engine> {
    engine_with(s, agents, human, |b| b).await
}

/// [`engine`], with `more` adding to the builder (e.g. the Kubernetes tools).
pub async fn engine_with(
    s: &Scenario,
    agents: Agents,
    human: ChannelHuman,
    more: impl FnOnce(EngineBuilder) -> EngineBuilder,
) -> george::Result<Engine> {
    let store = SqliteStateStore::open(&s.db).await?;
    let ops = LocalGitSource::open(&s.ops, "main")?;
    let app = GitWriteTool::new(
        &s.app,
        "main",
        GitAuthor::new("George agents", "george@example.invalid"),
    )?
    .with_alias("app");
    let b = Engine::builder(Arc::new(store), Arc::new(ops))
        .id("engine-1")
        .provider("default", Arc::new(agents))
        .tools(Arc::new(app))
        .commands(CommandToolExecutor::new(["cat", "grep"]).with_cwd(&s.root))
        .human(Arc::new(human))
        .poll_interval(Duration::from_secs(3600));
    more(b).build()
}

/// What a run ended with.
#[derive(Debug)]
pub struct Report {
    pub feature: JobStatus,
    pub incident: JobStatus,
    pub watch: JobStatus,
    pub agents: Agents,
}

impl Report {
    /// Both jobs, the watch and every script's checks passed.
    pub fn ok(&self) -> bool {
        [self.feature, self.incident, self.watch]
            .iter()
            .all(|s| *s == JobStatus::Succeeded)
            && self.agents.failures().is_empty()
    }
}

/// Runs the event to its end (or `timeout`) with the file standing in for the cluster
/// ([`spawn_cluster`], [`Rollout::File`]).
pub async fn run(s: &Scenario, timeout: Duration) -> george::Result<(Engine, Report)> {
    let _cluster = spawn_cluster(s);
    run_event(s, Rollout::File, timeout, |b| b).await
}

/// Runs the event to its end (or `timeout`): the agents read the rollout through
/// `rollout`, `more` adds to the engine's builder; whatever the rollout comes from must
/// already be running.
pub async fn run_event(
    s: &Scenario,
    rollout: Rollout,
    timeout: Duration,
    more: impl FnOnce(EngineBuilder) -> EngineBuilder,
) -> george::Result<(Engine, Report)> {
    let agents = agents_for(rollout);
    let (human, approvals) = ChannelHuman::new();
    let engine = engine_with(s, agents.clone(), human, more).await?;
    let _human = spawn_human(engine.clone(), approvals);
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
    let waited = async {
        Ok::<_, george::Error>((
            engine.wait_finished(FEATURE, timeout).await?,
            engine.wait_finished(WATCH, timeout).await?,
            engine.wait_finished(INCIDENT, timeout).await?,
        ))
    }
    .await;
    run.shutdown().await;
    let (feature, watch, incident) = match waited {
        Ok(ends) => ends,
        Err(e) => {
            // What each job did, and what the agents were told, to see where it stopped.
            for job in [FEATURE, WATCH, INCIDENT] {
                eprintln!("\nTimeline of job {job} (it did not end in time):");
                for line in timeline(&engine, job).await.unwrap_or_default() {
                    eprintln!("  {line}");
                }
            }
            eprintln!("\nagent calls: {:#?}", agents.calls());
            eprintln!("script mismatches: {:#?}", agents.failures());
            return Err(e);
        }
    };
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

/// Prints each job's timeline, the ops journal of `service/darwin-store`, the `app`
/// history, any script mismatches and the jobs' ends.
pub async fn print_report(engine: &Engine, s: &Scenario, report: &Report) -> george::Result<()> {
    for job in [FEATURE, WATCH, INCIDENT] {
        println!("\nTimeline of job {job}:");
        for line in timeline(engine, job).await? {
            println!("  {line}");
        }
    }
    println!("\nOps journal of service/darwin-store (jobs on the target, newest first):");
    let mut on_target: Vec<_> = engine
        .jobs()
        .await?
        .into_iter()
        .filter(|j| j.target.get("name").map(String::as_str) == Some("darwin-store"))
        .collect();
    on_target.sort_by_key(|j| std::cmp::Reverse(j.updated_at_ms));
    for j in on_target {
        let resolved = j
            .resolved_by
            .as_ref()
            .map(|r| format!(" (resolved by {}/{})", r.job, r.step))
            .unwrap_or_default();
        println!("  {:<44} {:<20} {}{resolved}", j.name, j.template, j.status);
    }
    println!("\napp repository history:");
    for line in app_log(s) {
        println!("  {line}");
    }
    if !report.agents.failures().is_empty() {
        println!("\nscript mismatches: {:#?}", report.agents.failures());
    }
    println!(
        "\nJob {FEATURE}: {}\nJob {INCIDENT}: {}\nJob {WATCH}: {}",
        report.feature, report.incident, report.watch
    );
    Ok(())
}
