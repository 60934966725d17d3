//! The quickstart, with its `ops` repository on a Git server: `git daemon` serves a bare
//! clone of `ops` on 127.0.0.1 (a free port, in a temporary folder), and George reads it
//! through a `RemoteGitSource` — cloned into a local bare cache over `git://`, refreshed
//! by a poller with jitter — exactly as it would follow a team's repository on GitHub,
//! GitLab or Gitea (`https://` and `ssh://` URLs are fetched by the `git` program, with
//! the user's credential helpers and keys).
//!
//! Everything else is the quickstart's (see `examples/quickstart.rs`): the model's
//! answers are SCRIPTED, the human is scripted, the `app` repository is local.
//!
//! Needs the `git` program (and its `git-daemon`). Run:
//! `cargo run --example quickstart_remote`

#[path = "support/mod.rs"]
mod support;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use george::prelude::*;
use george::sources::{Follow, RemoteConfig, RemoteGitSource};

/// A `git daemon` serving `root` on 127.0.0.1, stopped when dropped.
struct GitDaemon {
    child: Child,
    url: String,
}

impl GitDaemon {
    fn start(root: &Path) -> Result<GitDaemon, Box<dyn std::error::Error>> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        // The daemon binary itself, so that stopping it stops the server.
        let exec_path = Command::new("git").arg("--exec-path").output()?;
        let exec_path = String::from_utf8(exec_path.stdout)?;
        let child = Command::new(Path::new(exec_path.trim()).join("git-daemon"))
            .args(["--reuseaddr", "--listen=127.0.0.1", "--export-all"])
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", root.display()))
            .arg(root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let daemon = GitDaemon {
            child,
            url: format!("git://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err("git daemon did not start within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(daemon)
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let s = support::setup(dir.path());

    // The Git server: a bare clone of `ops`, served by git daemon.
    let served = dir.path().join("served");
    std::fs::create_dir_all(&served)?;
    let cloned = Command::new("git")
        .args(["clone", "-q", "--bare"])
        .arg(&s.ops)
        .arg(served.join("ops.git"))
        .status()?;
    if !cloned.success() {
        return Err("git clone --bare of the ops repository failed".into());
    }
    let daemon = GitDaemon::start(&served)?;
    let url = format!("{}/ops.git", daemon.url);

    // George follows `main` of the remote, through a local bare cache.
    let config =
        RemoteConfig::new(&url, Follow::Branch("main".into())).cache_root(dir.path().join("cache"));
    let ops = RemoteGitSource::open(config).await?;
    println!(
        "George quickstart over git daemon — the model's answers are SCRIPTED (ScriptedProvider); no model is called."
    );
    println!(
        "ops repo: {url} (git daemon serving {})\nops cache: {}\napp repo: {}\nstore:    {}\n",
        served.display(),
        ops.cache_path().display(),
        s.app.display(),
        s.db.display()
    );

    let provider = ScriptedProvider::new();
    support::script_investigation(&provider);
    support::script_planning(&provider);
    let (human, approvals) = ChannelHuman::new();
    let engine = support::engine_on(
        &s,
        Arc::new(ops.clone()),
        &ops.reference(),
        human,
        "engine-1",
        |b| b.provider("default", Arc::new(provider.clone())),
    )
    .await?;
    let _human = support::spawn_human(engine.clone(), approvals);
    let _cluster = support::spawn_cluster_sync(&s, Duration::from_secs(3));

    // New pushes: the poller fetches (every 2 s, plus up to 500 ms of jitter), and each
    // new head is reconciled at once (a webhook handler would call `ops.refresh()`).
    let _poller = ops.spawn_poller(Duration::from_secs(2), Duration::from_millis(500));
    let mut heads = ops.subscribe();
    let syncing = engine.clone();
    let _sync = tokio::spawn(async move {
        while heads.changed().await.is_ok() {
            if let Err(e) = syncing.sync().await {
                eprintln!("sync after a fetch failed: {e}");
            }
        }
    });

    let status = support::run_and_report(&engine, &s, Duration::from_secs(120)).await?;
    let values = support::app_values(&s);
    let replicas = values
        .lines()
        .find(|l| l.starts_with("replicaCount:"))
        .unwrap_or("?");
    println!("\napp values.yaml at main: {replicas}");
    if let Some(rec) = engine.job(support::JOB).await? {
        println!("built from commit {} of {url}", rec.commit);
    }
    let stats = ops.fetch_stats();
    println!("fetches: {} ({} failed)", stats.attempts, stats.failures);
    if !provider.failures().is_empty() {
        println!("script mismatches: {:#?}", provider.failures());
    }
    println!("\nJob {}: {status}", support::JOB);
    drop(daemon);
    if status != JobStatus::Succeeded {
        std::process::exit(1);
    }
    Ok(())
}
