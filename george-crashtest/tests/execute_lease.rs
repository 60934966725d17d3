//! An `execute_approved` step that outlives many lease renewals: one worker, never
//! killed, plans 200 `apply` actions, approves the plan and executes it (about 2 s) under
//! a 150 ms lease, renewed every 50 ms, so renewals fall while an action's effect is
//! being recorded. The job must finish within 30 s, every action taking effect once,
//! on SQLite and (with `--features postgres` and `GEORGE_TEST_POSTGRES_URL`) PostgreSQL.
//!
//! It guards against an attempt that hangs when its lease renewal waits for the job's
//! lock while the attempt itself, suspended, holds that lock to record an effect.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use george::state::{JobStatus, StepState};
use george_crashtest::repo::{EXECUTE_STEP, job_name, make_plan_repo};
use george_crashtest::runlog;
use support::{Ack, Backend, Worker, WorkerArgs, wait_done};

const ACTIONS: usize = 200;

async fn renewals_during_execution(backend: Backend) {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path().join("ops");
    make_plan_repo(&repo);
    let runlog = dir.path().join("run.log");
    let mut w = Worker::spawn(&WorkerArgs {
        backend: backend.clone(),
        repo,
        runlog: runlog.clone(),
        id: "lease-worker".into(),
        jobs: 1,
        lease_ms: 150,
        step_ms: 6,
        max_running: 4,
        acks: true,
        exit_when_done: true,
        plan: Some(ACTIONS),
    });
    let mut acks: BTreeMap<u64, Ack> = BTreeMap::new();
    let job = job_name(0);
    wait_done(
        &mut w,
        &mut acks,
        &backend,
        &job,
        &runlog,
        Duration::from_secs(30),
    )
    .await;
    assert!(
        w.wait_exit(Duration::from_secs(30)),
        "the worker did not exit"
    );

    let store = backend.open().await;
    let rec = store
        .get_job(&job)
        .await
        .expect("get_job")
        .expect("the job");
    assert_eq!(rec.status, JobStatus::Succeeded, "the job completed");
    for s in &rec.steps {
        assert_eq!(s.state, StepState::Succeeded, "step {} succeeded", s.id);
    }
    let exec = rec.step(EXECUTE_STEP).expect("the execute step");
    assert_eq!(exec.effects.len(), ACTIONS, "every effect is recorded");
    let lines = runlog::read_lines(&runlog);
    for e in &exec.effects {
        let n = (lines.iter())
            .filter(|l| l.kind == "effect" && l.key == e.key)
            .count();
        assert_eq!(n, 1, "{} took effect once", e.key);
    }
    assert!(
        lines.iter().all(|l| l.kind != "badcall"),
        "every call carried its key, context and arguments consistently"
    );
    let execution_ms = match (
        lines.iter().find(|l| l.kind == "start"),
        lines.iter().rev().find(|l| l.kind == "end"),
    ) {
        (Some(a), Some(b)) => b.at_ms.saturating_sub(a.at_ms),
        _ => 0,
    };
    eprintln!(
        "execution under a 150 ms lease ({}): {ACTIONS} actions in {execution_ms} ms \
         (about {} renewals), {} calls; {:.1} s",
        backend.spec().split(':').next().unwrap_or(""),
        execution_ms / 50,
        lines.iter().filter(|l| l.kind == "start").count(),
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execution_survives_lease_renewals_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    renewals_during_execution(Backend::Sqlite(dir.path().join("state.db"))).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execution_survives_lease_renewals_postgres() {
    if let Some(backend) = support::postgres("execute_lease") {
        renewals_during_execution(backend).await;
    }
}

#[cfg(not(feature = "postgres"))]
#[test]
fn execution_survives_lease_renewals_postgres() {
    use std::io::Write as _;
    // The real stderr, not `eprintln!`: the harness would swallow it.
    let _ = writeln!(
        std::io::stderr(),
        "\n*** execution_survives_lease_renewals_postgres NOT RUN: build with --features \
         postgres and set GEORGE_TEST_POSTGRES_URL ***\n"
    );
    assert!(
        std::env::var_os("CI").is_none(),
        "in CI the lease-renewal test must run against PostgreSQL (--features postgres)"
    );
}
