//! The seed's scaling event (`podinfo` over-provisioned: 5 replicas at 2% CPU), on real
//! input: two real Git repositories, a real Helm chart, a SQLite file, a scripted model
//! and a scripted human. Shared by `examples/quickstart.rs`, `examples/resume.rs` and the
//! integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use george::engine::EngineBuilder;
use george::prelude::*;
use george::provider::{ChatRequest, ChatResponse};
use george::scripted::{last_tool_result_contains, tool_call};
use george::state::ApprovalRequest;
use serde_json::json;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

/// The job the scenario runs.
pub const JOB: &str = "podinfo-right-size";
/// Where the chart's values live in the `app` repository.
pub const VALUES: &str = "charts/podinfo/values.yaml";

/// The first reviewer's reason (the seed's words).
pub const REJECT_1: &str = "the application is deployed with argocd, hpa will cause issues";
/// The second reviewer's reason (the seed's words).
pub const REJECT_2: &str = "this is not the solution for auto-scaling with gitops, argoCD is maintaining the state from git, adding hpa will cause drift from the committed replicas vs the hpa replica";

/// Paths of one scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The folder holding everything.
    pub root: PathBuf,
    /// The `ops` repository (manifests).
    pub ops: PathBuf,
    /// The `app` repository (the Helm chart).
    pub app: PathBuf,
    /// The file standing in for the cluster's observed replicas.
    pub observed: PathBuf,
    /// The SQLite database.
    pub db: PathBuf,
}

/// Runs `git args` in `dir` (a fixed example identity, `main` as the first branch) and
/// returns its standard output; panics when git fails.
/// `git <args>` in `dir`: its standard output, or `None` when git fails (a read that a
/// loop retries, where a panic would be wrong).
pub fn git_output(dir: &Path, args: &[&str]) -> Option<String> {
    let o = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=George Example",
            "-c",
            "user.email=george@example.invalid",
        ])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the git program must be installed");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Copies the directory `from` to `to`, recursively.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Creates the two repositories and the observed-state file under `root`.
pub fn setup(root: &Path) -> Scenario {
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let ops = root.join("ops");
    let app = root.join("app");
    copy_dir(&here.join("ops-repo"), &ops);
    git(&ops, &["init", "-q"]);
    git(&ops, &["add", "."]);
    git(&ops, &["commit", "-q", "-m", "Order: right-size podinfo"]);
    copy_dir(
        &here.join("data/podinfo-chart"),
        &app.join("charts/podinfo"),
    );
    git(&app, &["init", "-q"]);
    git(&app, &["add", "."]);
    git(&app, &["commit", "-q", "-m", "podinfo chart, 5 replicas"]);
    let observed = root.join("observed/replicas.txt");
    std::fs::create_dir_all(root.join("observed")).expect("mkdir");
    std::fs::write(&observed, "replicas: 5/5\n").expect("write observed");
    Scenario {
        root: root.to_path_buf(),
        ops,
        app,
        observed,
        db: root.join("george.db"),
    }
}

/// The model's answers while investigating: read values.yaml, then report.
pub fn investigation_answers() -> [ChatResponse; 2] {
    [
        tool_call("call_1", "app_read_file", json!({ "path": VALUES })),
        tool_call(
            "call_2",
            "report_success",
            json!({
                "summary": "podinfo runs a static 5 replicas; hpa.enabled is false",
                "outputs": { "replicas": 5, "hpa_enabled": false }
            }),
        ),
    ]
}

/// Scripts the investigation: read values.yaml, then report what it shows.
pub fn script_investigation(p: &ScriptedProvider) {
    let [read, report] = investigation_answers();
    p.expect_call("investigate: read values.yaml", read);
    p.expect_call_where(
        "investigate: report",
        |req: &ChatRequest| {
            last_tool_result_contains(req, "replicaCount: 5")
                .then_some(())
                .ok_or_else(|| "the values.yaml read should show replicaCount: 5".to_string())
        },
        report,
    );
}

fn contains(needles: &'static [&'static str]) -> impl Fn(&ChatRequest) -> Result<(), String> {
    move |req: &ChatRequest| {
        let text = req.user_text();
        for n in needles {
            if !text.contains(n) {
                return Err(format!("the planning request should contain {n:?}"));
            }
        }
        Ok(())
    }
}

/// The model's three plans. The checks prove that each rejection's reason reached the
/// request of the next planning attempt.
pub fn script_planning(p: &ScriptedProvider) {
    script_planning_from(p, 0);
}

/// The model's three plans, in order: an HPA, an HPA with conditional replicas, static
/// scaling to 2 replicas.
pub fn planning_answers() -> [ChatResponse; 3] {
    let plan = |id: &str, summary: &str, message: &str, find: &str, replace: &str| {
        tool_call(
            id,
            "submit_plan",
            json!({
                "summary": summary,
                "actions": [{ "tool": "app_commit", "arguments": {
                    "message": message,
                    "changes": [{ "path": VALUES, "find": find, "replace": replace }]
                }}]
            }),
        )
    };
    [
        plan(
            "call_3",
            "Add a HorizontalPodAutoscaler (min 2, max 5, 80% CPU): enable hpa in values.yaml",
            "podinfo: enable HPA (min 2, max 5)",
            "hpa:\n  enabled: false\n  maxReplicas: 10",
            "hpa:\n  enabled: true\n  maxReplicas: 5",
        ),
        plan(
            "call_4",
            "Argo CD-compatible HPA: guard `replicas:` with `if not .Values.hpa.enabled` in deployment.yaml and enable the HPA",
            "podinfo: HPA without replica drift",
            "hpa:\n  enabled: false",
            "hpa:\n  enabled: true",
        ),
        plan(
            "call_5",
            "Change replicaCount from 5 to 2 in values.yaml. No HPA, no template changes. Risk: low.",
            "podinfo: scale to 2 replicas (static, GitOps)",
            "replicaCount: 5",
            "replicaCount: 2",
        ),
    ]
}

/// The plans from the `from`-th on (0-based): for an engine that takes over after
/// another one already made the first plans.
pub fn script_planning_from(p: &ScriptedProvider, from: usize) {
    let checks: [(&str, &'static [&'static str]); 3] = [
        ("plan 1: HPA", &["runs 5 replicas"]),
        ("plan 2: conditional replicas", &["REJECTED", REJECT_1]),
        ("plan 3: static scaling", &["REJECTED", REJECT_1, REJECT_2]),
    ];
    for ((label, needles), response) in checks.into_iter().zip(planning_answers()).skip(from) {
        p.expect_call_where(label, contains(needles), response);
    }
}

/// Points every agent spec of the `ops` repository at `provider` and `model` (with
/// `base_url` and `api_key_env` when given) and commits: the manifests stay the
/// quickstart's otherwise.
pub fn point_agents_at(
    s: &Scenario,
    provider: &str,
    model: &str,
    base_url: Option<&str>,
    api_key_env: Option<&str>,
) -> std::io::Result<()> {
    for entry in std::fs::read_dir(s.ops.join("agent-specs"))? {
        let path = entry?.path();
        let text = std::fs::read_to_string(&path)?;
        let mut out = String::new();
        for line in text.lines() {
            let trimmed = line.trim_start();
            if trimmed.starts_with("provider:") {
                out.push_str(&format!("  provider: {provider}\n"));
                if let Some(url) = base_url {
                    out.push_str(&format!("  base_url: {url}\n"));
                }
                if let Some(var) = api_key_env {
                    out.push_str(&format!("  api_key_env: {var}\n"));
                }
            } else if trimmed.starts_with("model:") {
                out.push_str(&format!("  model: {model}\n"));
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
        std::fs::write(&path, out)?;
    }
    commit_all(&s.ops, "Agents: use another provider");
    Ok(())
}

/// Builds the engine: SQLite store, the `ops` repository as desired state, the `app`
/// repository behind the Git write tool (as `app_read_file` / `app_commit`), `grep` for
/// the verification command, and `provider` as the `default` provider.
pub async fn engine(
    s: &Scenario,
    provider: ScriptedProvider,
    human: ChannelHuman,
    id: &str,
) -> george::Result<Engine> {
    engine_with(s, human, id, |b| b.provider("default", Arc::new(provider))).await
}

/// [`engine`], with the providers set by `providers` instead of a scripted one.
pub async fn engine_with(
    s: &Scenario,
    human: ChannelHuman,
    id: &str,
    providers: impl FnOnce(EngineBuilder) -> EngineBuilder,
) -> george::Result<Engine> {
    let ops = LocalGitSource::open(&s.ops, "main")?;
    engine_on(s, Arc::new(ops), "main", human, id, providers).await
}

/// [`engine_with`], with desired state read from `ops` (e.g. a `RemoteGitSource`),
/// following `reference`.
pub async fn engine_on(
    s: &Scenario,
    ops: george::git::DynGitSource,
    reference: &str,
    human: ChannelHuman,
    id: &str,
    providers: impl FnOnce(EngineBuilder) -> EngineBuilder,
) -> george::Result<Engine> {
    let store = SqliteStateStore::open(&s.db).await?;
    let app = GitWriteTool::new(
        &s.app,
        "main",
        GitAuthor::new("George sysAdmin", "george@example.invalid"),
    )?
    .with_alias("app");
    let builder = Engine::builder(Arc::new(store), ops)
        .id(id)
        .reference(reference)
        .tools(Arc::new(app))
        .commands(CommandToolExecutor::new(["grep"]).with_cwd(&s.root))
        .human(Arc::new(human));
    providers(builder).build()
}

/// Commits everything in the repository at `dir`.
pub fn commit_all(dir: &Path, message: &str) {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", message]);
}

/// A scripted human: rejects the first two plans with the seed's reasons, approves the third.
pub fn spawn_human(engine: Engine, mut rx: UnboundedReceiver<ApprovalRequest>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let user = Approver::user("user");
        while let Some(req) = rx.recv().await {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let n = req.attempt;
            let r = match n {
                1 => engine.reject(&req.id, &user, REJECT_1).await,
                2 => engine.reject(&req.id, &user, REJECT_2).await,
                _ => {
                    engine
                        .approve(&req.id, &user, Some("static scaling, go ahead"))
                        .await
                }
            };
            if let Err(e) = r {
                eprintln!("human decision on {} failed: {e}", req.id);
            }
        }
    })
}

/// Stands in for Argo CD + the cluster: a few seconds after `replicaCount: 2` lands on
/// the `app` repository's `main`, the observed replicas become 2/2.
pub fn spawn_cluster_sync(s: &Scenario, delay: Duration) -> JoinHandle<()> {
    let app = s.app.clone();
    let observed = s.observed.clone();
    tokio::spawn(async move {
        loop {
            let out = Command::new("git")
                .args(["show", &format!("main:{VALUES}")])
                .current_dir(&app)
                .output();
            if let Ok(o) = out
                && String::from_utf8_lossy(&o.stdout).contains("\nreplicaCount: 2\n")
            {
                tokio::time::sleep(delay).await;
                let _ = std::fs::write(&observed, "replicas: 2/2\n");
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
}

/// The job's timeline: time, actor, action, detail.
pub async fn timeline(engine: &Engine, job: &str) -> george::Result<Vec<String>> {
    let events = engine.events(job).await?;
    let t0 = events.first().map_or(0, |e| e.at_ms);
    Ok(events
        .iter()
        .map(|e| {
            format!(
                "{:>7.3}s  {:<16} {:<20} {:<12} {}",
                (e.at_ms - t0) as f64 / 1000.0,
                e.actor,
                e.action,
                e.step.as_deref().unwrap_or("-"),
                e.detail.replace('\n', " ")
            )
        })
        .collect())
}

/// The `app` repository's `values.yaml` at `main`.
pub fn app_values(s: &Scenario) -> String {
    let out = Command::new("git")
        .args(["show", &format!("main:{VALUES}")])
        .current_dir(&s.app)
        .output()
        .expect("git show");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The subject lines of the `app` repository's history, newest first.
pub fn app_log(s: &Scenario) -> Vec<String> {
    let out = Command::new("git")
        .args(["log", "--format=%h %an: %s"])
        .current_dir(&s.app)
        .output()
        .expect("git log");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Starts `engine`, runs it until [`JOB`] is finished (or `timeout`), and prints the
/// manifest errors, the job's timeline and the `app` repository's history: the body the
/// quickstart examples share. Returns the job's status.
pub async fn run_and_report(
    engine: &Engine,
    s: &Scenario,
    timeout: Duration,
) -> george::Result<george::state::JobStatus> {
    engine.start().await?;
    for e in engine.manifest_errors() {
        println!("invalid manifest: {e}");
    }
    let run = engine.spawn();
    let status = engine.wait_finished(JOB, timeout).await?;
    run.shutdown().await;

    println!("Timeline of job {JOB}:");
    for line in timeline(engine, JOB).await? {
        println!("  {line}");
    }
    println!("\napp repository history:");
    for line in app_log(s) {
        println!("  {line}");
    }
    Ok(status)
}
