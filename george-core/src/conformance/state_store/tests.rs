//! The suite must catch broken stores: each fault below must make it panic.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;

use super::*;
use crate::error::Result;
use crate::memory::InMemoryStateStore;
use crate::provider::Message;
use crate::state::{ApprovalRequest, Event, JobRecord};
use crate::store::{
    ApprovalOp, Claim, Compaction, JobWrite, StateStore, TranscriptKey, check_approval_write,
};

#[derive(Debug, Clone, Copy)]
enum Fault {
    IgnoresRevision,
    /// Upserts on `ApprovalOp::Insert`: no check that the id is new, or the request open.
    UpsertsInserts,
    /// Applies `ApprovalOp::Update` whatever the stored request's status, or its absence.
    UpdatesDecided,
    /// No fault: the approvals kept apart as for the two above, with every rule.
    ApprovalsApart,
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
    /// With an approval fault, the requests are kept here (not in `inner`), under the
    /// rules of `check_approval_write` but for the one the fault breaks.
    approvals: Mutex<BTreeMap<String, ApprovalRequest>>,
}

impl Broken {
    fn approval_fault(&self) -> bool {
        matches!(
            self.fault,
            Fault::UpsertsInserts | Fault::UpdatesDecided | Fault::ApprovalsApart
        )
    }

    /// Commits `write` with its approvals kept in `self.approvals`: checked in order
    /// (but for the fault's rule) before `inner` stores the rest, then stored.
    async fn commit_approvals(&self, mut write: JobWrite) -> Result<u64> {
        let approvals = std::mem::take(&mut write.approvals);
        {
            let stored = self.approvals.lock().unwrap();
            let mut seen: HashMap<&str, &str> = HashMap::new();
            for a in &approvals {
                let id = a.request.id.as_str();
                let now = seen
                    .get(id)
                    .copied()
                    .or_else(|| stored.get(id).map(|r| r.status.name()));
                let skip = matches!(
                    (self.fault, a.op),
                    (Fault::UpsertsInserts, ApprovalOp::Insert)
                        | (Fault::UpdatesDecided, ApprovalOp::Update)
                );
                if !skip {
                    check_approval_write(id, a.op, now, a.request.status.name())?;
                }
                seen.insert(id, a.request.status.name());
            }
        }
        let revision = self.inner.commit(write).await?;
        let mut stored = self.approvals.lock().unwrap();
        for a in approvals {
            stored.insert(a.request.id.clone(), a.request);
        }
        Ok(revision)
    }
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
            Fault::UpsertsInserts | Fault::UpdatesDecided | Fault::ApprovalsApart => {
                return self.commit_approvals(write).await;
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
        if self.approval_fault() {
            return Ok(self.approvals.lock().unwrap().get(id).cloned());
        }
        self.inner.approval(id).await
    }
    async fn approvals(&self, open_only: bool) -> Result<Vec<ApprovalRequest>> {
        if self.approval_fault() {
            let stored = self.approvals.lock().unwrap();
            return Ok(stored
                .values()
                .filter(|r| !open_only || r.status.name() == "open")
                .cloned()
                .collect());
        }
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

fn broken(fault: Fault) -> Broken {
    Broken {
        inner: InMemoryStateStore::new(),
        fault,
        approvals: Mutex::default(),
    }
}

async fn run_broken(fault: Fault) {
    run_all(&broken(fault)).await;
}

#[tokio::test]
#[should_panic(expected = "StateStore conformance")]
async fn catches_ignored_revision() {
    run_broken(Fault::IgnoresRevision).await;
}

#[tokio::test]
#[should_panic(expected = "StateStore conformance")]
async fn catches_upserted_inserts() {
    run_broken(Fault::UpsertsInserts).await;
}

#[tokio::test]
#[should_panic(expected = "StateStore conformance: inserting an open request again")]
async fn catches_upserted_inserts_at_the_first_insert_again() {
    approval_insert_never_replaces(&broken(Fault::UpsertsInserts)).await;
}

#[tokio::test]
#[should_panic(expected = "StateStore conformance")]
async fn catches_updates_of_decided_requests() {
    run_broken(Fault::UpdatesDecided).await;
}

#[tokio::test]
#[should_panic(expected = "StateStore conformance: updating a request that is approved")]
async fn catches_updates_of_decided_requests_at_the_second_decision() {
    approval_decisions_are_final(&broken(Fault::UpdatesDecided)).await;
}

#[tokio::test]
#[should_panic(expected = "StateStore conformance: updating an absent request")]
async fn catches_updates_of_absent_requests() {
    approval_update_requires_stored(&broken(Fault::UpdatesDecided)).await;
}

/// The approval faults' own bookkeeping is sound: with no rule left out, the whole
/// suite passes (so the tests above fail for the fault, not for the bookkeeping).
#[tokio::test]
async fn approvals_kept_apart_pass() {
    run_broken(Fault::ApprovalsApart).await;
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
