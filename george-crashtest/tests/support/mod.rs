//! Starting worker processes and opening the stores they share.

#![allow(dead_code)]

use std::collections::BTreeMap;
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
    /// `--plan <n>`: the approved-actions workload with `n` actions.
    pub plan: Option<usize>,
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
        if let Some(n) = a.plan {
            cmd.args(["--plan", &n.to_string()]);
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

/// (action, step, detail) of an acknowledged event.
pub type Ack = (String, String, String);

/// Reads a worker's `ack` lines into `acks` (by sequence number) until `want` new ones
/// arrived (`usize::MAX`: until the worker's stdout closes), `done`, or the deadline.
/// Returns whether `done` was seen. Panics if an event is acknowledged twice with
/// different contents.
pub fn collect(w: &Worker, acks: &mut BTreeMap<u64, Ack>, want: usize, deadline: Instant) -> bool {
    let mut got = 0;
    while got < want || want == usize::MAX {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let Ok(line) = w.lines.recv_timeout(left) else {
            return false;
        };
        if line == "done" {
            return true;
        }
        let mut p = line.splitn(6, ' ');
        let (Some("ack"), Some(_job), Some(seq), Some(action), Some(step), detail) =
            (p.next(), p.next(), p.next(), p.next(), p.next(), p.next())
        else {
            continue;
        };
        let Ok(seq) = seq.parse::<u64>() else {
            continue;
        };
        let ack = (
            action.to_string(),
            step.to_string(),
            detail.unwrap_or("").to_string(),
        );
        match acks.get(&seq) {
            Some(prev) => assert_eq!(
                prev, &ack,
                "event {seq} was acknowledged with two different contents"
            ),
            None => {
                acks.insert(seq, ack);
                got += 1;
            }
        }
    }
    false
}

/// Checks that every acknowledged event is in `events` (the final log, read back),
/// unchanged and at the same sequence number, and that the log is gapless.
pub fn check_acks(events: &[george::state::Event], acks: &BTreeMap<u64, Ack>) {
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    let expected: Vec<u64> = (1..=events.len() as u64).collect();
    assert_eq!(
        seqs, expected,
        "the event log has no gaps and no duplicates"
    );
    for (seq, (action, step, detail)) in acks {
        let e = events
            .get(*seq as usize - 1)
            .unwrap_or_else(|| panic!("acknowledged event {seq} ({action}) is lost"));
        assert_eq!(
            (
                &e.action,
                e.step.as_deref().unwrap_or("-"),
                e.detail.replace('\n', "\\n")
            ),
            (action, step.as_str(), detail.replace("\\\\", "\\")),
            "acknowledged event {seq} is unchanged"
        );
    }
}

/// What the store and the run log say about `job`, for a failure message: its steps
/// (naming a lease that expired while its worker was alive: a hung attempt), its last
/// events, the last lines of the run log, and the workers' stderr.
pub async fn job_report(backend: &Backend, job: &str, runlog: &Path) -> String {
    let store = backend.open().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut out = String::new();
    if let Ok(Some(rec)) = store.get_job(job).await {
        out.push_str(&format!("job {job}: {:?}\n", rec.status));
        for s in &rec.steps {
            out.push_str(&format!(
                "  step {}: attempt {}, {:?}, {} effects recorded\n",
                s.id,
                s.attempt,
                s.state,
                s.effects.len()
            ));
            if let george::state::StepState::Running {
                holder,
                lease_until_ms,
            } = &s.state
                && *lease_until_ms < now
            {
                out.push_str(&format!(
                    "  !!! its lease expired {} ms ago and {holder} did not renew it: if \
                     that worker is still alive, the attempt hangs\n",
                    now - lease_until_ms
                ));
            }
        }
    }
    let events = store.events(job, 0, 1_000_000).await.unwrap_or_default();
    out.push_str("last events:\n");
    for e in events.iter().rev().take(12).rev() {
        out.push_str(&format!(
            "  {} {} {} {} {}\n",
            e.seq,
            e.at_ms,
            e.action,
            e.step.as_deref().unwrap_or("-"),
            e.detail
        ));
    }
    let lines = george_crashtest::runlog::read_lines(runlog);
    out.push_str("last lines of the run log:\n");
    for (i, l) in lines.iter().enumerate().skip(lines.len().saturating_sub(8)) {
        out.push_str(&format!("  {:5} {} {} {}\n", i + 1, l.kind, l.key, l.at_ms));
    }
    out.push_str(&worker_logs(runlog));
    out
}

/// Reads `w`'s acknowledgements until it prints `done`. Panics with [`job_report`] when
/// `timeout` passes, when the worker exits first, or as soon as a step of `job` has been
/// `Running` under a lease expired for more than 3 s while `w` is alive (a hung attempt).
pub async fn wait_done(
    w: &mut Worker,
    acks: &mut BTreeMap<u64, Ack>,
    backend: &Backend,
    job: &str,
    runlog: &Path,
    timeout: Duration,
) {
    let store = backend.open().await;
    let deadline = Instant::now() + timeout;
    loop {
        if collect(
            w,
            acks,
            usize::MAX,
            Instant::now() + Duration::from_millis(250),
        ) {
            return;
        }
        let why = if let Ok(Some(status)) = w.child.try_wait() {
            format!("the worker exited ({status}) before the job finished")
        } else if Instant::now() > deadline {
            format!("the job did not finish in {} s", timeout.as_secs())
        } else {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            let rec = store.get_job(job).await.ok().flatten();
            let hung = rec.iter().flat_map(|r| &r.steps).find(|s| {
                matches!(&s.state, george::state::StepState::Running { lease_until_ms, .. }
                    if lease_until_ms + 3_000 < now)
            });
            match hung {
                Some(s) => format!(
                    "step {} hangs: Running, its lease expired more than 3 s ago, and the \
                     worker holding it is alive",
                    s.id
                ),
                None => continue,
            }
        };
        panic!("{why}\n{}", job_report(backend, job, runlog).await);
    }
}
