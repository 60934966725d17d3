//! Starting worker processes and opening the stores they share.

#![allow(dead_code)]

use std::io::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use george::store::DynStateStore;

/// Which store the workers share.
#[derive(Debug, Clone)]
pub enum Backend {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL URL and a schema of its own.
    Postgres { url: String, schema: String },
}

impl Backend {
    /// The worker's `--store` argument.
    pub fn spec(&self) -> String {
        match self {
            Backend::Sqlite(p) => format!("sqlite:{}", p.display()),
            Backend::Postgres { url, schema } => format!("postgres:{url}#{schema}"),
        }
    }

    /// Opens the same store in the test process, to check what it kept.
    pub async fn open(&self) -> DynStateStore {
        match self {
            Backend::Sqlite(p) => Arc::new(
                george::stores::SqliteStateStore::open(p)
                    .await
                    .expect("open the SQLite store"),
            ),
            #[cfg(feature = "postgres")]
            Backend::Postgres { url, schema } => {
                let mut config = george::stores::PgConfig::new(url.clone());
                config.schema = schema.clone();
                Arc::new(
                    george::stores::PgStateStore::connect_with(config)
                        .await
                        .expect("connect to PostgreSQL"),
                )
            }
            #[cfg(not(feature = "postgres"))]
            Backend::Postgres { .. } => panic!("built without the postgres feature"),
        }
    }
}

/// The PostgreSQL backend for a test, with a fresh schema; `None` (and a loud
/// message) when `GEORGE_TEST_POSTGRES_URL` is unset. In CI (`CI` set) it must be set.
pub fn postgres(test: &str) -> Option<Backend> {
    match std::env::var("GEORGE_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(Backend::Postgres {
            url,
            schema: format!("{test}_{:08x}", fastrand::u32(..)),
        }),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but GEORGE_TEST_POSTGRES_URL is not: the PostgreSQL tests must run in CI"
            );
            let _ = writeln!(
                std::io::stderr(),
                "\n*** {test}: PostgreSQL part NOT RUN: set GEORGE_TEST_POSTGRES_URL \
                 (e.g. postgres://postgres@127.0.0.1:5432/george_test) ***\n"
            );
            None
        }
    }
}

/// Settings of one worker process.
#[derive(Debug, Clone)]
pub struct WorkerArgs {
    pub backend: Backend,
    pub repo: PathBuf,
    pub runlog: PathBuf,
    pub id: String,
    pub jobs: usize,
    pub lease_ms: u64,
    pub step_ms: u64,
    pub max_running: usize,
    pub acks: bool,
    pub exit_when_done: bool,
}

/// A running worker, with its stdout lines arriving on a channel.
pub struct Worker {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
    pub id: String,
}

impl Worker {
    /// Starts `george-crashtest-worker`; its stderr goes to `<runlog>.<id>.err`.
    pub fn spawn(a: &WorkerArgs) -> Worker {
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(a.runlog.with_extension(format!("{}.err", a.id)))
            .expect("stderr file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_george-crashtest-worker"));
        cmd.arg("--store")
            .arg(a.backend.spec())
            .arg("--repo")
            .arg(&a.repo)
            .arg("--runlog")
            .arg(&a.runlog)
            .args(["--id", &a.id])
            .args(["--jobs", &a.jobs.to_string()])
            .args(["--lease-ms", &a.lease_ms.to_string()])
            .args(["--step-ms", &a.step_ms.to_string()])
            .args(["--max-running", &a.max_running.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err));
        if a.acks {
            cmd.arg("--acks");
        }
        if a.exit_when_done {
            cmd.arg("--exit-when-done");
        }
        let mut child = cmd.spawn().expect("start the worker");
        let stdout = child.stdout.take().expect("worker stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Worker {
            child,
            lines,
            id: a.id.clone(),
        }
    }

    /// SIGKILL (what `Child::kill` sends on Unix), then reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

/// The worker stderr files next to `runlog`, concatenated (for failure messages).
pub fn worker_logs(runlog: &Path) -> String {
    let dir = runlog.parent().unwrap_or(Path::new("."));
    let mut out = String::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "err") {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                let tail: String = text.lines().rev().take(20).collect::<Vec<_>>().join("\n");
                out.push_str(&format!(
                    "--- {} (last lines, newest first)\n{tail}\n",
                    p.display()
                ));
            }
        }
    }
    out
}
