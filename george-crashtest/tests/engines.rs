//! Several engines on one store: 3 worker processes on one PostgreSQL schema, and 2 on
//! one SQLite file, run 200 jobs × 10 steps (2,000 short steps). One engine is killed
//! with SIGKILL while it holds leases; the others take its attempts over once the leases
//! expire and finish everything. Checked:
//! - every job and step `Succeeded`;
//! - no step attempt ran twice (run log, all processes), and no attempt of a step ran
//!   after the one that succeeded;
//! - every engine did work, and the killed engine's unfinished attempts were redone by
//!   others, after the kill;
//! - every job's event log is gapless.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use george::state::{JobStatus, StepState};
use george_crashtest::repo::{Workload, make_repo};
use george_crashtest::runlog;
use support::{Backend, Worker, WorkerArgs, worker_logs};

const WORKLOAD: Workload = Workload {
    jobs: 200,
    layers: 10,
    width: 1,
};
const LEASE_MS: u64 = 1_500;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

async fn several_engines(backend: Backend, engines: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path().join("ops");
    make_repo(&repo, WORKLOAD);
    let runlog = dir.path().join("run.log");
    let total = WORKLOAD.jobs * WORKLOAD.steps();
    let mut workers: Vec<Worker> = (0..engines)
        .map(|i| {
            Worker::spawn(&WorkerArgs {
                backend: backend.clone(),
                repo: repo.clone(),
                runlog: runlog.clone(),
                id: format!("engine-{i}"),
                jobs: WORKLOAD.jobs,
                lease_ms: LEASE_MS,
                step_ms: 2,
                max_running: 16,
                acks: false,
                exit_when_done: false,
                plan: None,
            })
        })
        .collect();

    // Kill engine-1 once 30% of the steps are done, at a moment it has attempts in flight.
    let victim = "engine-1";
    let deadline = Instant::now() + Duration::from_secs(120);
    let killed_at = loop {
        assert!(
            Instant::now() < deadline,
            "no progress to 30%\n{}",
            worker_logs(&runlog)
        );
        std::thread::sleep(Duration::from_millis(10));
        for w in &mut workers {
            if let Ok(Some(status)) = w.child.try_wait() {
                panic!("{} exited early ({status})\n{}", w.id, worker_logs(&runlog));
            }
        }
        let entries = runlog::read(&runlog);
        let ended = entries.iter().filter(|e| !e.start).count();
        if ended * 10 < total * 3 {
            continue;
        }
        let mut open: HashSet<(&str, &str, u32)> = HashSet::new();
        for e in entries.iter().filter(|e| e.engine == victim) {
            let k = (e.job.as_str(), e.step.as_str(), e.attempt);
            if e.start {
                open.insert(k);
            } else {
                open.remove(&k);
            }
        }
        if !open.is_empty() {
            workers[1].kill();
            break now_ms();
        }
    };

    // The others finish everything.
    let store = backend.open().await;
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let jobs = store.list_jobs().await.expect("list_jobs");
        let finished = jobs.iter().filter(|j| j.status.is_finished()).count();
        if jobs.len() == WORKLOAD.jobs && finished == WORKLOAD.jobs {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {finished} of {} jobs finished\n{}",
            WORKLOAD.jobs,
            worker_logs(&runlog)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for w in &mut workers {
        w.kill();
    }

    let jobs = store.list_jobs().await.expect("list_jobs");
    let mut final_attempt = BTreeMap::new();
    for j in &jobs {
        assert_eq!(j.status, JobStatus::Succeeded, "job {} succeeded", j.name);
        for s in &j.steps {
            assert_eq!(
                s.state,
                StepState::Succeeded,
                "{}/{} succeeded",
                j.name,
                s.id
            );
            final_attempt.insert((j.name.clone(), s.id.to_string()), s.attempt);
        }
        let events = store.events(&j.name, 0, 1_000_000).await.expect("events");
        let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(
            seqs,
            (1..=events.len() as u64).collect::<Vec<_>>(),
            "job {}: the event log is gapless",
            j.name
        );
        let succeeded = events
            .iter()
            .filter(|e| e.action == "step.succeeded")
            .count();
        assert_eq!(
            succeeded,
            WORKLOAD.steps(),
            "job {}: each step succeeded once",
            j.name
        );
    }
    assert_eq!(final_attempt.len(), total);

    let entries = runlog::read(&runlog);
    let starts = runlog::starts(&entries);
    let mut per_engine: BTreeMap<&str, usize> = BTreeMap::new();
    for ((job, step, attempt), list) in &starts {
        assert_eq!(
            list.len(),
            1,
            "attempt {attempt} of {job}/{step} ran {} times: {:?}",
            list.len(),
            list.iter().map(|e| &e.engine).collect::<Vec<_>>()
        );
        let last = final_attempt[&(job.clone(), step.clone())];
        assert!(
            *attempt <= last,
            "{job}/{step}: attempt {attempt} ran after attempt {last} succeeded"
        );
        *per_engine.entry(list[0].engine.as_str()).or_default() += 1;
    }
    for ((job, step), attempt) in &final_attempt {
        assert!(
            starts.contains_key(&(job.clone(), step.clone(), *attempt)),
            "the succeeded attempt {attempt} of {job}/{step} is in the run log"
        );
    }
    for i in 0..engines {
        let id = format!("engine-{i}");
        assert!(
            per_engine.get(id.as_str()).copied().unwrap_or(0) > 0,
            "{id} did some of the work: {per_engine:?}"
        );
    }
    // The victim's unfinished attempts were redone by the others, after the kill and
    // only once their leases had expired (checked on the event log's own times).
    let mut taken_over = 0;
    for ((job, step, attempt), list) in &starts {
        if list[0].engine != victim || *attempt != final_attempt[&(job.clone(), step.clone())] - 1 {
            continue;
        }
        let next = &starts[&(job.clone(), step.clone(), attempt + 1)][0];
        if next.engine == victim || next.at_ms < killed_at {
            continue;
        }
        taken_over += 1;
        let events = store.events(job, 0, 1_000_000).await.expect("events");
        let of_step = |e: &&george::state::Event| e.step.as_deref() == Some(step.as_str());
        let started = events
            .iter()
            .filter(of_step)
            .find(|e| {
                e.action == "step.started" && e.detail.starts_with(&format!("attempt {attempt} "))
            })
            .unwrap_or_else(|| panic!("{job}/{step}: no step.started event for attempt {attempt}"));
        let expired = events
            .iter()
            .filter(of_step)
            .find(|e| e.seq > started.seq && e.detail.contains("lease expired"))
            .unwrap_or_else(|| {
                panic!("{job}/{step}: no lease-expiry event after attempt {attempt}")
            });
        assert!(
            expired.at_ms >= started.at_ms + LEASE_MS,
            "{job}/{step}: attempt {attempt} was taken over {} ms after its lease was \
             granted, before the {LEASE_MS} ms lease expired",
            expired.at_ms - started.at_ms
        );
    }
    eprintln!(
        "{engines} engines ({}): {total} steps, {} attempts, per engine {per_engine:?}; \
         {taken_over} attempts of the killed engine taken over",
        backend.spec().split(':').next().unwrap_or(""),
        starts.len()
    );
    assert!(
        taken_over > 0,
        "the killed engine's in-flight attempts were taken over by the others"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_on_one_sqlite_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    several_engines(Backend::Sqlite(dir.path().join("state.db")), 2).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_engines_on_one_postgres() {
    if let Some(backend) = support::postgres("engines") {
        several_engines(backend, 3).await;
    }
}

#[cfg(not(feature = "postgres"))]
#[test]
fn three_engines_on_one_postgres() {
    use std::io::Write as _;
    // The real stderr, not `eprintln!`: the harness would swallow it.
    let _ = writeln!(
        std::io::stderr(),
        "\n*** three_engines_on_one_postgres NOT RUN: build with --features postgres \
         and set GEORGE_TEST_POSTGRES_URL ***\n"
    );
    assert!(
        std::env::var_os("CI").is_none(),
        "in CI the several-engines test must run against PostgreSQL (--features postgres)"
    );
}
