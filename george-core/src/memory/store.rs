//! [`InMemoryStateStore`]: a [`StateStore`] in a `Mutex`, whose clones share state.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::provider::Message;
use crate::state::{ApprovalRequest, ApprovalStatus, Event, JobRecord};
use crate::store::{Claim, Compaction};
use crate::store::{JobWrite, StateStore, TranscriptKey};

/// One job's transcripts by (step, attempt).
type JobTranscripts = crate::fastmap::FastMap<(Arc<str>, u32), Arc<Vec<Message>>>;

/// A [`StateStore`] kept in memory.
///
/// Clones share state: hand one clone to the engine and inspect another in a test.
/// Every method takes a short, synchronous lock (never held across an `.await`), so
/// the store is safe to use from any runtime. It passes the whole
/// `conformance::state_store` suite (feature `conformance`).
///
/// Nothing is durable: the state lives as long as the last clone.
///
/// # Example
/// ```
/// use george_core::memory::InMemoryStateStore;
/// use george_core::store::StateStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> george_core::Result<()> {
/// let store = InMemoryStateStore::new();
/// let view = store.clone();
/// store.put_meta("last_reconciled_commit", "abc123").await?;
/// assert_eq!(view.get_meta("last_reconciled_commit").await?.as_deref(), Some("abc123"));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct InMemoryStateStore {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Boxed: a B-tree node holds 11 slots, mostly not all used; small slots waste less.
    jobs: BTreeMap<Box<str>, Box<StoredJob>>,
    approvals: BTreeMap<String, ApprovalRequest>,
    /// Transcripts by job, then by (step, attempt): compaction touches one job only.
    transcripts: crate::fastmap::FastMap<Arc<str>, JobTranscripts>,
    meta: crate::fastmap::FastMap<String, String>,
}

/// A job and its event log. The log's entry `i` has sequence number `i + 1`, and
/// the job name is not repeated in every entry.
#[derive(Debug)]
struct StoredJob {
    record: Arc<JobRecord>,
    events: Vec<StoredEvent>,
    /// [`JobRecord::wake_at_ms`] of the record, or later while claimed.
    wake_at_ms: Option<u64>,
}

#[derive(Debug)]
struct StoredEvent {
    at_ms: u64,
    /// Shared with every event of the same actor (and with the engine's).
    actor: Arc<str>,
    action: std::borrow::Cow<'static, str>,
    /// Shared with the record's step id.
    step: Option<Arc<str>>,
    detail: Box<str>,
}

impl InMemoryStateStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many jobs are stored.
    pub fn job_count(&self) -> usize {
        self.lock().jobs.len()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-applied write (commit
        // checks everything before it changes anything), so a poisoned lock is usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Inner {
    fn commit(&mut self, write: JobWrite) -> Result<u64> {
        let JobWrite {
            mut job,
            expected_revision,
            events,
            approvals,
            transcripts,
        } = write;

        // Check everything first: nothing below may fail once a change is made. The job
        // is looked up once (a lookup is ~log2(jobs) name comparisons).
        let stored = self.jobs.get_mut(job.name.as_str());
        let revision = crate::store::next_revision(
            &job.name,
            expected_revision,
            stored.as_ref().map(|s| s.record.revision),
        )?;
        crate::store::check_approval_writes(
            approvals
                .iter()
                .map(|a| (a.request.id.as_str(), a.op, a.request.status.name())),
            |id, _| Ok::<_, Error>(self.approvals.get(id).map(|r| r.status.name().to_string())),
        )?;

        // Apply. The record is kept as shared (`Arc`): the engine's cache holds the same one.
        crate::store::set_revision(&mut job, revision);
        let wake_at_ms = job.wake_at_ms();
        if let Some(j) = Arc::get_mut(&mut job) {
            j.steps.shrink_to_fit();
        }
        let new_events = events.into_iter().map(|e| StoredEvent {
            at_ms: e.at_ms,
            actor: e.actor,
            action: e.action,
            step: e.step,
            detail: e.detail.into(),
        });
        match stored {
            Some(s) => {
                s.record = job;
                s.events.extend(new_events);
                s.wake_at_ms = wake_at_ms;
            }
            None => {
                let mut events: Vec<StoredEvent> = new_events.collect();
                events.shrink_to_fit();
                self.jobs.insert(
                    job.name.as_str().into(),
                    Box::new(StoredJob {
                        record: job,
                        events,
                        wake_at_ms,
                    }),
                );
            }
        }
        for a in approvals {
            self.approvals.insert(a.request.id.clone(), a.request);
        }
        for (key, messages) in transcripts {
            self.transcripts
                .entry(key.job)
                .or_default()
                .insert((key.step, key.attempt), messages);
        }
        Ok(revision)
    }

    fn claim_due(&mut self, claim: &Claim) -> Vec<JobRecord> {
        let mut due: Vec<(u64, &str)> = self
            .jobs
            .iter()
            .filter_map(|(name, j)| {
                j.wake_at_ms
                    .filter(|w| *w <= claim.now_ms)
                    .map(|w| (w, &**name))
            })
            .collect();
        due.sort_unstable();
        due.truncate(claim.limit);
        let names: Vec<Box<str>> = due.into_iter().map(|(_, n)| n.into()).collect();
        let hidden_until = claim.now_ms.saturating_add(claim.visibility_ms);
        names
            .iter()
            .filter_map(|n| {
                let j = self.jobs.get_mut(n)?;
                j.wake_at_ms = Some(hidden_until);
                Some((*j.record).clone())
            })
            .collect()
    }

    fn compact(&mut self, job: &str) -> Result<Compaction> {
        let stored = self
            .jobs
            .get(job)
            .ok_or_else(|| Error::not_found(format!("no job {job:?}")))?;
        if !stored.record.status.is_finished() {
            return Err(Error::conflict(format!(
                "job {job:?} is {}: only finished jobs are compacted",
                stored.record.status
            )));
        }
        let mut out = Compaction::default();
        for messages in self
            .transcripts
            .remove(job)
            .into_iter()
            .flat_map(|m| m.into_values())
        {
            out.transcripts += 1;
            out.bytes += serde_json::to_vec(&messages).map_or(0, |v| v.len() as u64);
        }
        Ok(out)
    }
}

#[async_trait]
impl StateStore for InMemoryStateStore {
    async fn get_job(&self, name: &str) -> Result<Option<JobRecord>> {
        Ok(self.lock().jobs.get(name).map(|s| (*s.record).clone()))
    }

    async fn list_jobs(&self) -> Result<Vec<JobRecord>> {
        Ok(self
            .lock()
            .jobs
            .values()
            .map(|s| (*s.record).clone())
            .collect())
    }

    async fn commit(&self, write: JobWrite) -> Result<u64> {
        self.lock().commit(write)
    }

    async fn events(&self, job: &str, after_seq: u64, limit: usize) -> Result<Vec<Event>> {
        let inner = self.lock();
        let Some(stored) = inner.jobs.get(job) else {
            return Ok(Vec::new());
        };
        let start = usize::try_from(after_seq).unwrap_or(usize::MAX);
        let events = stored.events.get(start..).unwrap_or_default();
        Ok(events
            .iter()
            .take(limit)
            .zip(after_seq + 1..)
            .map(|(e, seq)| Event {
                job: job.to_string(),
                seq,
                at_ms: e.at_ms,
                actor: e.actor.to_string(),
                action: e.action.to_string(),
                step: e.step.as_deref().map(str::to_string),
                detail: e.detail.to_string(),
            })
            .collect())
    }

    async fn transcript(&self, key: &TranscriptKey) -> Result<Option<Vec<Message>>> {
        Ok(self
            .lock()
            .transcripts
            .get(&*key.job)
            .and_then(|m| m.get(&(key.step.clone(), key.attempt)))
            .map(|m| (**m).clone()))
    }

    async fn approval(&self, id: &str) -> Result<Option<ApprovalRequest>> {
        Ok(self.lock().approvals.get(id).cloned())
    }

    async fn approvals(&self, open_only: bool) -> Result<Vec<ApprovalRequest>> {
        Ok(self
            .lock()
            .approvals
            .values()
            .filter(|a| !open_only || a.status == ApprovalStatus::Open)
            .cloned()
            .collect())
    }

    async fn get_meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self.lock().meta.get(key).cloned())
    }

    async fn put_meta(&self, key: &str, value: &str) -> Result<()> {
        self.lock().meta.insert(key.to_string(), value.to_string());
        Ok(())
    }

    async fn claim_due(&self, claim: &Claim) -> Result<Vec<JobRecord>> {
        Ok(self.lock().claim_due(claim))
    }

    async fn compact(&self, job: &str) -> Result<Compaction> {
        self.lock().compact(job)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn clones_share_state() {
        let a = InMemoryStateStore::new();
        let b = a.clone();
        a.put_meta("k", "v").await.unwrap();
        assert_eq!(b.get_meta("k").await.unwrap().as_deref(), Some("v"));
    }

    #[cfg(feature = "conformance")]
    #[tokio::test]
    async fn conformance() {
        let store = InMemoryStateStore::new();
        crate::conformance::state_store::run_all(&store).await;
    }

    #[cfg(feature = "conformance")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn conformance_multi_thread() {
        let store = InMemoryStateStore::new();
        crate::conformance::state_store::run_all(&store).await;
    }
}
