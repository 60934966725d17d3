//! One George engine in its own process, for the crash and several-engines tests.
//!
//! ```text
//! george-crashtest-worker --store sqlite:<file> | postgres:<url>#<schema>
//!     --repo <git repo> --id <engine id> --runlog <file> --jobs <n>
//!     [--lease-ms 2000] [--step-ms 20] [--max-running 8] [--acks] [--exit-when-done]
//!     [--plan <n>]
//! ```
//!
//! With `--acks` it prints every event it reads back from the store, once committed:
//! `ack <job> <seq> <action> <step or -> <detail, escaped>`, then `done` when every job
//! has finished. Those events are acknowledged: the store returned them after commit.
//!
//! With `--plan <n>` the repository is [`make_plan_repo`]'s (one job, `plan` then
//! `execute`): the planner submits the same plan of `n` `apply` actions whenever asked,
//! the worker approves every open request itself (as `human:crashtest`), and the
//! `apply` tool ([`Apply`]) is idempotent by key. With `--acks` too, each
//! `action.executed` event read back also appends `ack <action key>` to the run log,
//! after every line written before the store returned it.
//!
//! [`make_plan_repo`]: george_crashtest::repo::make_plan_repo

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use george::prelude::*;
use george::provider::{AssistantMessage, Message, ToolCall, Usage};
use george::store::DynStateStore;
use george::tool::{ToolDefinition, ToolInvocation, ToolOutput};
use george_crashtest::plan::{Apply, SamePlan};
use george_crashtest::runlog;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Calls `work` once, then reports success.
#[derive(Debug)]
struct WorkThenSucceed;

#[async_trait]
impl Provider for WorkThenSucceed {
    fn name(&self) -> &str {
        "crash-worker"
    }
    async fn complete(&self, req: ChatRequest) -> george::Result<ChatResponse> {
        let worked = req
            .messages
            .iter()
            .any(|m| matches!(m, Message::Tool { name, is_error: false, .. } if name == "work"));
        let call = if worked {
            ToolCall {
                id: "done".into(),
                name: "report_success".into(),
                arguments: serde_json::json!({"summary": "worked", "outputs": {"ok": true}}),
                provider_metadata: None,
            }
        } else {
            ToolCall {
                id: "work".into(),
                name: "work".into(),
                arguments: serde_json::json!({}),
                provider_metadata: None,
            }
        };
        Ok(ChatResponse::new(
            AssistantMessage {
                content: None,
                tool_calls: vec![call],
            },
            Usage::default(),
        ))
    }
}

/// The `work` tool: logs its start and end to the run log and sleeps in between.
#[derive(Debug)]
struct Work {
    runlog: PathBuf,
    engine: String,
    step_ms: u64,
}

#[async_trait]
impl ToolExecutor for Work {
    fn tools(&self) -> Vec<ToolDefinition> {
        vec![ToolDefinition::new(
            "work",
            "Does a step's work.",
            serde_json::json!({"type": "object"}),
        )]
    }
    async fn call(&self, inv: ToolInvocation) -> george::Result<ToolOutput> {
        runlog::append(
            &self.runlog,
            true,
            &inv.idempotency_key,
            &self.engine,
            now_ms(),
        );
        tokio::time::sleep(Duration::from_millis(self.step_ms)).await;
        runlog::append(
            &self.runlog,
            false,
            &inv.idempotency_key,
            &self.engine,
            now_ms(),
        );
        Ok(ToolOutput::ok("done"))
    }
}

struct Args(HashMap<String, String>);

impl Args {
    fn parse() -> Args {
        let mut map = HashMap::new();
        let mut it = std::env::args().skip(1).peekable();
        while let Some(k) = it.next() {
            let Some(k) = k.strip_prefix("--") else {
                fail(&format!("unexpected argument {k:?}"));
            };
            let v = match it.peek() {
                Some(v) if !v.starts_with("--") => it.next().unwrap_or_default(),
                _ => "true".to_string(),
            };
            map.insert(k.to_string(), v);
        }
        Args(map)
    }
    fn get(&self, k: &str) -> String {
        self.0
            .get(k)
            .cloned()
            .unwrap_or_else(|| fail(&format!("--{k} is required")))
    }
    fn num(&self, k: &str, default: u64) -> u64 {
        self.0.get(k).map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| fail(&format!("--{k}: not a number")))
        })
    }
    fn flag(&self, k: &str) -> bool {
        self.0.contains_key(k)
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("george-crashtest-worker: {msg}");
    std::process::exit(2)
}

async fn open_store(spec: &str) -> george::Result<DynStateStore> {
    if let Some(path) = spec.strip_prefix("sqlite:") {
        return Ok(Arc::new(SqliteStateStore::open(path).await?));
    }
    #[cfg(feature = "postgres")]
    if let Some(rest) = spec.strip_prefix("postgres:") {
        let (url, schema) = rest.rsplit_once('#').unwrap_or((rest, "public"));
        let mut config = george::stores::PgConfig::new(url);
        config.schema = schema.to_string();
        return Ok(Arc::new(
            george::stores::PgStateStore::connect_with(config).await?,
        ));
    }
    fail(&format!("unknown store {spec:?}"))
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('\t', "\\t")
}

/// The action key in an `action.executed` event's detail:
/// `approved action <i> (<key>) took effect: <tool>`.
fn executed_key(detail: &str) -> Option<&str> {
    let (_, rest) = detail.split_once(" (")?;
    let (key, _) = rest.split_once(") took effect")?;
    Some(key)
}

/// Approves every open request, as the human `crashtest` (errors are retried next time).
async fn approve_open(engine: &Engine) {
    let Ok(open) = engine.open_approvals().await else {
        return;
    };
    let approver = george::approval::Approver::user("crashtest");
    for req in open {
        if let Err(e) = engine.approve(&req.id, &approver, None).await {
            tracing::warn!(id = %req.id, error = %e, "approving failed");
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let id = args.get("id");
    let jobs: Vec<String> = (0..args.num("jobs", 1) as usize)
        .map(george_crashtest::repo::job_name)
        .collect();
    let store = open_store(&args.get("store"))
        .await
        .unwrap_or_else(|e| fail(&format!("opening the store: {e}")));
    let git = LocalGitSource::open(args.get("repo"), "main")
        .unwrap_or_else(|e| fail(&format!("opening the repository: {e}")));
    let mut config = EngineConfig::default();
    config.id = id.clone();
    config.max_running = args.num("max-running", 8) as usize;
    config.lease_ms = args.num("lease-ms", 2_000);
    config.poll_interval = Duration::from_millis(500);
    config.claim_interval = Duration::from_millis(100);
    config.claim_visibility_ms = 1_000;
    let runlog = PathBuf::from(args.get("runlog"));
    let step_ms = args.num("step-ms", 20);
    let plan = args
        .0
        .contains_key("plan")
        .then(|| args.num("plan", 12) as usize);
    let builder = Engine::builder(store.clone(), Arc::new(git)).config(config);
    let engine = match plan {
        None => builder
            .provider("default", Arc::new(WorkThenSucceed))
            .tools(Arc::new(Work {
                runlog: runlog.clone(),
                engine: id.clone(),
                step_ms,
            })),
        Some(actions) => builder
            .provider("default", Arc::new(SamePlan { actions }))
            .tools(Arc::new(Apply {
                runlog: runlog.clone(),
                engine: id.clone(),
                step_ms,
            })),
    }
    .build()
    .unwrap_or_else(|e| fail(&format!("building the engine: {e}")));
    if let Err(e) = engine.start().await {
        fail(&format!("starting the engine: {e}"));
    }
    let handle = engine.spawn();
    let acks = args.flag("acks");
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut out = std::io::stdout();
    loop {
        tokio::time::sleep(Duration::from_millis(if acks { 10 } else { 100 })).await;
        if acks {
            for job in &jobs {
                let after = seen.get(job).copied().unwrap_or(0);
                let Ok(events) = store.events(job, after, 10_000).await else {
                    continue;
                };
                for e in events {
                    if plan.is_some()
                        && e.action == "action.executed"
                        && let Some(key) = executed_key(&e.detail)
                    {
                        runlog::append_line(&runlog, "ack", key, &id, now_ms());
                    }
                    let _ = writeln!(
                        out,
                        "ack {} {} {} {} {}",
                        e.job,
                        e.seq,
                        e.action,
                        e.step.as_deref().unwrap_or("-"),
                        escape(&e.detail)
                    );
                    seen.insert(job.clone(), e.seq);
                }
            }
            let _ = out.flush();
        }
        if plan.is_some() {
            approve_open(&engine).await;
        }
        let mut finished = 0;
        for job in &jobs {
            if let Ok(Some(rec)) = store.get_job(job).await
                && rec.status.is_finished()
            {
                finished += 1;
            }
        }
        if finished == jobs.len() {
            if acks {
                let _ = writeln!(out, "done");
                let _ = out.flush();
            }
            if args.flag("exit-when-done") {
                break;
            }
        }
    }
    handle.shutdown().await;
}
