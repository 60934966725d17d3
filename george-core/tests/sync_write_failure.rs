//! A store write that fails during `sync()` does not lose the commit's reconcile: the
//! jobs the commit touched are reconciled anyway, and the next sync records the commit.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use george_core::command::CommandToolExecutor;
use george_core::engine::Engine;
use george_core::memory::{InMemoryGitSource, InMemoryStateStore};
use george_core::provider::Message;
use george_core::state::{ApprovalRequest, Event, JobRecord, JobStatus};
use george_core::store::{Claim, Compaction, JobWrite, StateStore, TranscriptKey};
use george_core::{Error, Result};

/// The memory store, with `put_meta` failing while `fail_meta` is above zero.
#[derive(Debug, Default)]
struct FlakyMeta {
    inner: InMemoryStateStore,
    fail_meta: AtomicUsize,
}

#[async_trait]
impl StateStore for FlakyMeta {
    async fn get_job(&self, name: &str) -> Result<Option<JobRecord>> {
        self.inner.get_job(name).await
    }
    async fn list_jobs(&self) -> Result<Vec<JobRecord>> {
        self.inner.list_jobs().await
    }
    async fn commit(&self, write: JobWrite) -> Result<u64> {
        self.inner.commit(write).await
    }
    async fn events(&self, job: &str, after_seq: u64, limit: usize) -> Result<Vec<Event>> {
        self.inner.events(job, after_seq, limit).await
    }
    async fn transcript(&self, key: &TranscriptKey) -> Result<Option<Vec<Message>>> {
        self.inner.transcript(key).await
    }
    async fn approval(&self, id: &str) -> Result<Option<ApprovalRequest>> {
        self.inner.approval(id).await
    }
    async fn approvals(&self, open_only: bool) -> Result<Vec<ApprovalRequest>> {
        self.inner.approvals(open_only).await
    }
    async fn get_meta(&self, key: &str) -> Result<Option<String>> {
        self.inner.get_meta(key).await
    }
    async fn put_meta(&self, key: &str, value: &str) -> Result<()> {
        let left = self.fail_meta.load(Ordering::SeqCst);
        if left > 0 {
            self.fail_meta.store(left - 1, Ordering::SeqCst);
            return Err(Error::backend("disk full (injected)"));
        }
        self.inner.put_meta(key, value).await
    }
    async fn claim_due(&self, claim: &Claim) -> Result<Vec<JobRecord>> {
        self.inner.claim_due(claim).await
    }
    async fn compact(&self, job: &str) -> Result<Compaction> {
        self.inner.compact(job).await
    }
}

fn files(job: &str) -> Vec<(String, String)> {
    vec![
        (
            "task-templates/t.yaml".into(),
            "apiVersion: george.dev/v1alpha1
kind: TaskTemplate
metadata: {name: t}
spec:
  steps:
    - {id: hello, command: {program: echo, args: [hi]}}
"
            .into(),
        ),
        (
            format!("jobs/{job}.yaml"),
            format!(
                "apiVersion: george.dev/v1alpha1
kind: Job
metadata: {{name: {job}}}
spec: {{template: t}}
"
            ),
        ),
    ]
}

#[tokio::test]
async fn a_failed_write_during_sync_loses_no_reconcile() {
    let git = InMemoryGitSource::new();
    git.commit_files("main", files("first"), "c1");
    let store = Arc::new(FlakyMeta::default());
    let engine = Engine::builder(store.clone(), Arc::new(git.clone()))
        .commands(CommandToolExecutor::new(["echo"]))
        .poll_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    engine.start().await.unwrap();
    let run = engine.spawn();
    let limit = Duration::from_secs(20);
    assert_eq!(
        engine.wait_finished("first", limit).await.unwrap(),
        JobStatus::Succeeded
    );

    // A commit adds a job; recording the commit fails once.
    let head = git.commit_files("main", files("second"), "c2");
    store.fail_meta.store(1, Ordering::SeqCst);
    assert!(engine.sync().await.is_err(), "the failed write is reported");
    assert_eq!(
        engine.wait_finished("second", limit).await.unwrap(),
        JobStatus::Succeeded,
        "the commit's job is reconciled all the same"
    );
    let recorded = store.get_meta("last_reconciled_commit").await.unwrap();
    assert_ne!(recorded.as_deref(), Some(head.as_str()), "not recorded yet");
    // The next sync (nothing new in Git) records it.
    assert_eq!(engine.sync().await.unwrap(), None);
    let recorded = store.get_meta("last_reconciled_commit").await.unwrap();
    assert_eq!(recorded.as_deref(), Some(head.as_str()));
    run.shutdown().await;
}
