//! Git source benchmarks, through `RemoteGitSource` over a `file://` remote (libgit2's
//! fetch, into a bare cache, read from its object database):
//!
//! - `git_load_10k/*`: reading the manifests of a commit with 10,000 job files (plus a
//!   template and an agent spec): `cold_clone_and_read` (a new source over an empty
//!   cache: the first clone, then the read), `cold_read` (a new source object over a
//!   freshly cloned cache: the first read, clone excluded), `warm_read` (the same source,
//!   a later read; the OS page cache is warm), and `warm_read_and_parse` (that read plus
//!   `ManifestSet::load`, the engine's full load).
//! - `git_push_to_dispatch/*`: the time from a finished `git push` of a new job file to
//!   the engine calling the model for that job's first step. `webhook`: a signed GitHub
//!   push event sent to the webhook router on loopback, whose target fetches and syncs
//!   the engine (`EngineSync`). `poll_100ms`: the source's poller (100 ms, no jitter)
//!   fetches, and a task syncs the engine on each new head. Both engines' own Git poll
//!   is an hour away; the model answers at once, like `benches/workflow.rs`.
//!
//! Run: `cargo bench --bench git --features webhook`

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use criterion::{Criterion, criterion_group, criterion_main};
use george::git::GitSource;
use george::manifest::ManifestSet;
use george::prelude::*;
use george::provider::{AssistantMessage, Message, ToolCall, Usage};
use george::sources::git2;
use george::sources::webhook::{EngineSync, WebhookConfig, WebhookSecret, router};
use george::sources::{Follow, RemoteConfig, RemoteGitSource};
use tokio::sync::mpsc;

const JOBS: usize = 10_000;
const AGENT: &str = "apiVersion: george.dev/v1alpha1\nkind: AgentSpec\nmetadata: {name: a}\nspec: {model: m, system_prompt: s}\n";
const TEMPLATE: &str = "apiVersion: george.dev/v1alpha1\nkind: TaskTemplate\nmetadata: {name: t}\nspec:\n  parameters:\n    - {name: who, type: string}\n  steps:\n    - {id: s0, agent: a, instructions: 'job {{ params.who }}'}\n";
const SECRET: &str = "bench-secret";

fn job(name: &str) -> String {
    format!(
        "apiVersion: george.dev/v1alpha1\nkind: Job\nmetadata: {{name: {name}}}\nspec: {{template: t, params: {{who: {name}}}}}\n"
    )
}

/// A bare repository whose `main` has `jobs` job files, written with libgit2.
fn big_repo(path: &Path, jobs: usize) {
    let mut opts = git2::RepositoryInitOptions::new();
    opts.bare(true).initial_head("main");
    let repo = git2::Repository::init_opts(path, &opts).expect("init");
    let blob = |s: &str| repo.blob(s.as_bytes()).expect("blob");
    let mut jobs_tree = repo.treebuilder(None).expect("treebuilder");
    for i in 0..jobs {
        let name = format!("j{i}");
        jobs_tree
            .insert(format!("{name}.yaml"), blob(&job(&name)), 0o100644)
            .expect("insert");
    }
    let dir = |file: &str, content: &str| {
        let mut b = repo.treebuilder(None).expect("treebuilder");
        b.insert(file, blob(content), 0o100644).expect("insert");
        b.write().expect("tree")
    };
    let (agents, templates) = (dir("a.yaml", AGENT), dir("t.yaml", TEMPLATE));
    let mut root = repo.treebuilder(None).expect("treebuilder");
    root.insert("jobs", jobs_tree.write().expect("tree"), 0o040000)
        .expect("insert");
    root.insert("agent-specs", agents, 0o040000)
        .expect("insert");
    root.insert("task-templates", templates, 0o040000)
        .expect("insert");
    let tree = repo.find_tree(root.write().expect("tree")).expect("tree");
    let sig = git2::Signature::now("Bench", "bench@example.invalid").expect("sig");
    repo.commit(Some("HEAD"), &sig, &sig, "10k jobs", &tree, &[])
        .expect("commit");
}

fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

async fn open(url: &str, cache: &Path) -> RemoteGitSource {
    let config = RemoteConfig::new(url, Follow::Branch("main".into())).cache_root(cache);
    RemoteGitSource::open(config).await.expect("clone")
}

fn load(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let dir = tempfile::tempdir().expect("tmp");
    let remote = dir.path().join("big.git");
    big_repo(&remote, JOBS);
    let url = file_url(&remote);
    let url = &url;
    let mut g = c.benchmark_group("git_load_10k");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(15));
    g.bench_function("cold_clone_and_read", |b| {
        b.to_async(rt).iter_custom(|iters| async move {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let cache = tempfile::tempdir().expect("tmp");
                let t = Instant::now();
                let source = open(url, cache.path()).await;
                let head = source.last_seen().expect("head");
                let files = source.read_manifests(&head).await.expect("read");
                total += t.elapsed();
                assert_eq!(files.len(), JOBS + 2);
            }
            total
        })
    });
    g.bench_function("cold_read", |b| {
        b.to_async(rt).iter_custom(|iters| async move {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let cache = tempfile::tempdir().expect("tmp");
                drop(open(url, cache.path()).await);
                let t = Instant::now();
                let config =
                    RemoteConfig::new(url, Follow::Branch("main".into())).cache_root(cache.path());
                let source = RemoteGitSource::new(config).expect("reopen the cache");
                let head = source.last_seen().expect("cached head");
                let files = source.read_manifests(&head).await.expect("read");
                total += t.elapsed();
                assert_eq!(files.len(), JOBS + 2);
            }
            total
        })
    });
    let cache = tempfile::tempdir().expect("tmp");
    let source = rt.block_on(open(url, cache.path()));
    let head = source.last_seen().expect("head");
    let (source, head) = (&source, &head);
    g.bench_function("warm_read", |b| {
        b.to_async(rt)
            .iter(|| async move { source.read_manifests(head).await.expect("read").len() })
    });
    g.bench_function("warm_read_and_parse", |b| {
        b.to_async(rt).iter(|| async move {
            let set = ManifestSet::load(source.read_manifests(head).await.expect("read"));
            assert_eq!(set.jobs.len(), JOBS);
            set
        })
    });
    g.finish();
}

/// Answers every step at once; sends the step's instructions to the bench.
#[derive(Debug)]
struct Signal(mpsc::UnboundedSender<String>);

#[async_trait]
impl Provider for Signal {
    fn name(&self) -> &str {
        "signal"
    }
    async fn complete(&self, req: ChatRequest) -> george::Result<ChatResponse> {
        if let Some(Message::User { content }) = req.messages.first() {
            let _ = self.0.send(content.clone());
        }
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

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=Bench",
            "-c",
            "user.email=bench@example.invalid",
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
        .expect("the git program");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A bare remote, a working copy pushing to it, an engine over a `RemoteGitSource` of
/// it, and the channel of the model's calls.
struct World {
    _dir: tempfile::TempDir,
    work: PathBuf,
    source: RemoteGitSource,
    engine: Engine,
    steps: mpsc::UnboundedReceiver<String>,
    next: usize,
}

impl World {
    async fn new() -> World {
        let dir = tempfile::tempdir().expect("tmp");
        git(dir.path(), &["init", "-q", "--bare", "ops.git"]);
        let work = dir.path().join("work");
        std::fs::create_dir_all(work.join("agent-specs")).expect("mkdir");
        std::fs::create_dir_all(work.join("task-templates")).expect("mkdir");
        std::fs::create_dir_all(work.join("jobs")).expect("mkdir");
        std::fs::write(work.join("agent-specs/a.yaml"), AGENT).expect("write");
        std::fs::write(work.join("task-templates/t.yaml"), TEMPLATE).expect("write");
        git(&work, &["init", "-q"]);
        git(
            &work,
            &[
                "remote",
                "add",
                "origin",
                &dir.path().join("ops.git").display().to_string(),
            ],
        );
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", "agent and template"]);
        git(&work, &["push", "-q", "origin", "main"]);
        let source = open(
            &file_url(&dir.path().join("ops.git")),
            &dir.path().join("cache"),
        )
        .await;
        let (tx, steps) = mpsc::unbounded_channel();
        let engine = Engine::builder(
            Arc::new(InMemoryStateStore::new()),
            Arc::new(source.clone()),
        )
        .provider("default", Arc::new(Signal(tx)))
        .poll_interval(Duration::from_secs(3600))
        .build()
        .expect("engine");
        engine.start().await.expect("start");
        World {
            _dir: dir,
            work,
            source,
            engine,
            steps,
            next: 0,
        }
    }

    /// Pushes a new job; returns its name and the new head.
    fn push_job(&mut self) -> (String, String) {
        self.next += 1;
        let name = format!("n{}", self.next);
        std::fs::write(self.work.join(format!("jobs/{name}.yaml")), job(&name)).expect("write");
        git(&self.work, &["add", "-A"]);
        git(&self.work, &["commit", "-q", "-m", &name]);
        git(&self.work, &["push", "-q", "origin", "main"]);
        (name, git(&self.work, &["rev-parse", "HEAD"]))
    }

    /// Waits until the model is called for `name`'s first step.
    async fn dispatched(&mut self, name: &str) {
        let want = format!("job {name}");
        loop {
            let got = tokio::time::timeout(Duration::from_secs(30), self.steps.recv())
                .await
                .expect("dispatched within 30 s")
                .expect("provider alive");
            if got.contains(&want) {
                return;
            }
        }
    }
}

fn push_to_dispatch(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let mut g = c.benchmark_group("git_push_to_dispatch");
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(10));

    let mut world = rt.block_on(World::new());
    let run = rt.block_on(async { world.engine.spawn() });
    let hooks = router(
        WebhookConfig::new("main").github_secret(SECRET),
        EngineSync::new(world.source.clone(), world.engine.clone()),
    )
    .expect("router");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let url = format!("http://{}/github", listener.local_addr().expect("addr"));
    rt.spawn(async move { axum::serve(listener, hooks).await });
    let client = reqwest::Client::new();
    g.bench_function("webhook", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (name, head) = world.push_job();
                let body = serde_json::json!({"ref": "refs/heads/main", "after": head}).to_string();
                let signature = WebhookSecret::from(SECRET).github_signature(body.as_bytes());
                let t = Instant::now();
                rt.block_on(async {
                    let res = client
                        .post(&url)
                        .header("X-GitHub-Event", "push")
                        .header("X-Hub-Signature-256", signature)
                        .body(body)
                        .send()
                        .await
                        .expect("send");
                    assert_eq!(res.status(), reqwest::StatusCode::ACCEPTED);
                    world.dispatched(&name).await;
                });
                total += t.elapsed();
            }
            total
        })
    });
    rt.block_on(run.shutdown());

    let mut world = rt.block_on(World::new());
    let run = rt.block_on(async { world.engine.spawn() });
    let poller = rt.block_on(async {
        world
            .source
            .spawn_poller(Duration::from_millis(100), Duration::ZERO)
    });
    let mut heads = world.source.subscribe();
    let engine = world.engine.clone();
    let sync = rt.spawn(async move {
        while heads.changed().await.is_ok() {
            let _ = engine.sync().await;
        }
    });
    g.bench_function("poll_100ms", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (name, _) = world.push_job();
                let t = Instant::now();
                rt.block_on(world.dispatched(&name));
                total += t.elapsed();
            }
            total
        })
    });
    drop(poller);
    sync.abort();
    rt.block_on(run.shutdown());
    g.finish();
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    load(c, &rt);
    push_to_dispatch(c, &rt);
}

criterion_group!(git_benches, benches);
criterion_main!(git_benches);
