//! Path filtering over a real Git repository: with 1,000 job files, a commit touching
//! one of them reconciles exactly that job — the other 999 are neither read again nor
//! reconciled — and the job's new generation (record and events) names the new commit.
//!
//! The repository is made by the `git` program and read through a `RemoteGitSource`
//! (fetched over `file://` into its bare cache); the engine runs in process on the
//! in-memory store.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use george::prelude::*;
use george::sources::{Follow, RemoteConfig, RemoteGitSource, SourceFile};

const JOBS: usize = 1000;
const TEMPLATE: &str = "apiVersion: george.dev/v1alpha1
kind: TaskTemplate
metadata: {name: echo}
spec:
  parameters:
    - {name: n, type: integer}
  steps:
    - id: say
      command: {program: echo, args: ['{{ params.n }}']}
";

fn job_name(i: usize) -> String {
    format!("j-{i:04}")
}

fn job(i: usize, n: usize) -> String {
    format!(
        "apiVersion: george.dev/v1alpha1\nkind: Job\nmetadata: {{name: {}}}\n\
         spec: {{template: echo, params: {{n: {n}}}}}\n",
        job_name(i)
    )
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("the git program runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// What the engine asked the source for (a pass-through around the real source).
#[derive(Debug, Default)]
struct Reads {
    manifests: usize,
    files: Vec<Vec<String>>,
    diffs: Vec<(CommitId, CommitId)>,
}

#[derive(Debug, Clone)]
struct Recording {
    inner: RemoteGitSource,
    reads: Arc<Mutex<Reads>>,
}

impl Recording {
    fn take(&self) -> Reads {
        std::mem::take(&mut *self.reads.lock().unwrap())
    }
}

#[async_trait]
impl GitSource for Recording {
    async fn resolve(&self, reference: &str) -> george::Result<CommitId> {
        self.inner.resolve(reference).await
    }
    async fn read_manifests(&self, commit: &CommitId) -> george::Result<Vec<SourceFile>> {
        self.reads.lock().unwrap().manifests += 1;
        self.inner.read_manifests(commit).await
    }
    async fn read_files(
        &self,
        commit: &CommitId,
        paths: &[String],
    ) -> george::Result<Vec<SourceFile>> {
        self.reads.lock().unwrap().files.push(paths.to_vec());
        self.inner.read_files(commit, paths).await
    }
    async fn changed_paths(&self, from: &CommitId, to: &CommitId) -> george::Result<Vec<String>> {
        let pair = (from.clone(), to.clone());
        self.reads.lock().unwrap().diffs.push(pair);
        self.inner.changed_paths(from, to).await
    }
}

async fn wait_until_all(e: &Engine, limit: Duration, ok: impl Fn(&JobRecord) -> bool) {
    let deadline = Instant::now() + limit;
    let mut i = 0;
    while i < JOBS {
        match e.job(&job_name(i)).await.unwrap() {
            Some(r) if ok(&r) => i += 1,
            other => {
                assert!(
                    Instant::now() < deadline,
                    "{} not done: {other:?}",
                    job_name(i)
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_touching_one_of_1000_job_files_reconciles_one_job() {
    let dir = tempfile::tempdir().unwrap();
    let ops = dir.path().join("ops");
    std::fs::create_dir_all(ops.join("jobs")).unwrap();
    std::fs::create_dir_all(ops.join("task-templates")).unwrap();
    std::fs::write(ops.join("task-templates/echo.yaml"), TEMPLATE).unwrap();
    for i in 0..JOBS {
        std::fs::write(ops.join(format!("jobs/{}.yaml", job_name(i))), job(i, i)).unwrap();
    }
    git(&ops, &["init", "-q"]);
    git(&ops, &["add", "."]);
    git(&ops, &["commit", "-q", "-m", "1000 jobs"]);
    let c1 = CommitId(git(&ops, &["rev-parse", "HEAD"]));

    let config = RemoteConfig::new(
        format!("file://{}", ops.display()),
        Follow::Branch("main".into()),
    )
    .cache_root(dir.path().join("cache"));
    let remote = RemoteGitSource::open(config).await.unwrap();
    let source = Recording {
        inner: remote.clone(),
        reads: Arc::default(),
    };
    let e = Engine::builder(
        Arc::new(InMemoryStateStore::new()),
        Arc::new(source.clone()),
    )
    .reference(remote.reference())
    .commands(CommandToolExecutor::new(["echo"]))
    .poll_interval(Duration::from_secs(3600))
    .build()
    .expect("engine");
    e.start().await.unwrap();
    assert!(e.manifest_errors().is_empty(), "{:?}", e.manifest_errors());
    assert_eq!(e.commit(), Some(c1.clone()));
    let run = e.spawn();
    wait_until_all(&e, Duration::from_secs(240), |r| {
        r.status == JobStatus::Succeeded
    })
    .await;
    let first = source.take();
    assert_eq!(first.manifests, 1, "one full load at start");

    // Quiet state: counts of events per job, and the reconcile counter.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut events_before = Vec::with_capacity(JOBS);
    for i in 0..JOBS {
        events_before.push(e.events(&job_name(i)).await.unwrap().len());
    }
    let reconciles_before = e.stats().reconciles;

    // One job file changes, pushed to the remote; the source fetches it.
    let touched = 420;
    std::fs::write(
        ops.join(format!("jobs/{}.yaml", job_name(touched))),
        job(touched, 4200),
    )
    .unwrap();
    git(&ops, &["commit", "-q", "-am", "j-0420: n = 4200"]);
    let c2 = CommitId(git(&ops, &["rev-parse", "HEAD"]));
    assert_eq!(remote.refresh().await.unwrap(), Some(c2.clone()));
    assert_eq!(e.sync().await.unwrap(), Some(c2.clone()));

    let name = job_name(touched);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = e.job(&name).await.unwrap().unwrap();
        if r.generation == 2 && r.status == JobStatus::Succeeded {
            break;
        }
        assert!(Instant::now() < deadline, "{r:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reconciles = e.stats().reconciles - reconciles_before;
    run.shutdown().await;

    // The engine read one diff and one file, and nothing else.
    let reads = source.take();
    assert_eq!(reads.manifests, 0, "no full reload");
    assert_eq!(reads.diffs, [(c1.clone(), c2.clone())]);
    assert_eq!(reads.files, [vec![format!("jobs/{name}.yaml")]]);

    // Exactly one job changed: only its event log grew.
    let mut grew = Vec::new();
    for (i, before) in events_before.iter().enumerate() {
        if e.events(&job_name(i)).await.unwrap().len() != *before {
            grew.push(job_name(i));
        }
    }
    assert_eq!(
        grew,
        std::slice::from_ref(&name),
        "the jobs whose event logs grew"
    );
    assert!(
        (1..=3).contains(&reconciles),
        "{reconciles} reconciles for one changed job of {JOBS}"
    );
    let untouched = e.job(&job_name(7)).await.unwrap().unwrap();
    assert_eq!((untouched.generation, &*untouched.commit), (1, c1.as_str()));

    // The new generation names the new commit, in the record and in the events.
    let rec = e.job(&name).await.unwrap().unwrap();
    assert_eq!(&*rec.commit, c2.as_str());
    let events = e.events(&name).await.unwrap();
    let new_gen = events
        .iter()
        .find(|ev| ev.detail.contains("generation 2"))
        .expect("an event of the new generation");
    assert!(
        new_gen.detail.contains(c2.short()),
        "{new_gen:?} names {}",
        c2.short()
    );
}
