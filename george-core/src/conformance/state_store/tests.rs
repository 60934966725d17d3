//! The suite must catch broken stores: each fault below must make it panic.

use async_trait::async_trait;

use super::*;
use crate::error::Result;
use crate::memory::InMemoryStateStore;
use crate::provider::Message;
use crate::state::{ApprovalRequest, Event, JobRecord};
use crate::store::{Claim, Compaction, JobWrite, StateStore, TranscriptKey};

#[derive(Debug, Clone, Copy)]
enum Fault {
    IgnoresRevision,
    IgnoresRequireOpen,
    ListUnordered,
    EventsOffByOne,
    MetaNotOverwritten,
    ClaimsNotHidden,
    CompactsUnfinished,
}

#[derive(Debug)]
struct Broken {
    inner: InMemoryStateStore,
    fault: Fault,
}

#[async_trait]
impl StateStore for Broken {
    async fn get_job(&self, name: &str) -> Result<Option<JobRecord>> {
        self.inner.get_job(name).await
    }
    async fn list_jobs(&self) -> Result<Vec<JobRecord>> {
        let mut jobs = self.inner.list_jobs().await?;
        if let Fault::ListUnordered = self.fault {
            jobs.reverse();
        }
        Ok(jobs)
    }
    async fn commit(&self, mut write: JobWrite) -> Result<u64> {
        match self.fault {
            Fault::IgnoresRevision => {
                if let (Some(_), Some(stored)) = (
                    write.expected_revision,
                    self.inner.get_job(&write.job.name).await?,
                ) {
                    write.expected_revision = Some(stored.revision);
                }
            }
            Fault::IgnoresRequireOpen => {
                for a in &mut write.approvals {
                    a.require_open = false;
                }
            }
            _ => {}
        }
        self.inner.commit(write).await
    }
    async fn events(&self, job: &str, after_seq: u64, limit: usize) -> Result<Vec<Event>> {
        let after_seq = match self.fault {
            Fault::EventsOffByOne => after_seq.saturating_sub(1),
            _ => after_seq,
        };
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
        if let (Fault::MetaNotOverwritten, Some(_)) = (self.fault, self.inner.get_meta(key).await?)
        {
            return Ok(());
        }
        self.inner.put_meta(key, value).await
    }
    async fn claim_due(&self, claim: &Claim) -> Result<Vec<JobRecord>> {
        let mut claim = claim.clone();
        if let Fault::ClaimsNotHidden = self.fault {
            claim.visibility_ms = 0;
        }
        self.inner.claim_due(&claim).await
    }
    async fn compact(&self, job: &str) -> Result<Compaction> {
        if let (Fault::CompactsUnfinished, Some(j)) = (self.fault, self.inner.get_job(job).await?)
            && !j.status.is_finished()
        {
            return Ok(Compaction::default());
        }
        self.inner.compact(job).await
    }
}

async fn run_broken(fault: Fault) {
    run_all(&Broken {
        inner: InMemoryStateStore::new(),
        fault,
    })
    .await;
}

#[tokio::test]
#[should_panic(expected = "StateStore conformance")]
async fn catches_ignored_revision() {
    run_broken(Fault::IgnoresRevision).await;
}

#[tokio::test]
#[should_panic(expected = "StateStore conformance")]
async fn catches_ignored_require_open() {
    run_broken(Fault::IgnoresRequireOpen).await;
}

#[tokio::test]
#[should_panic(expected = "StateStore conformance")]
async fn catches_unordered_list() {
    run_broken(Fault::ListUnordered).await;
}

#[tokio::test]
#[should_panic(expected = "StateStore conformance")]
async fn catches_events_off_by_one() {
    run_broken(Fault::EventsOffByOne).await;
}

#[tokio::test]
#[should_panic(expected = "StateStore conformance")]
async fn catches_meta_not_overwritten() {
    run_broken(Fault::MetaNotOverwritten).await;
}

#[tokio::test]
#[should_panic(expected = "StateStore conformance")]
async fn catches_claims_not_hidden() {
    run_broken(Fault::ClaimsNotHidden).await;
}

#[tokio::test]
#[should_panic(expected = "StateStore conformance")]
async fn catches_compacting_unfinished_jobs() {
    run_broken(Fault::CompactsUnfinished).await;
}
