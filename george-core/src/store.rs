//! The [`StateStore`] trait: observed state (jobs, steps, events, transcripts,
//! approvals) kept outside the engine, so a crash loses nothing.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::provider::Message;
use crate::state::{ApprovalRequest, Event, JobRecord, NewEvent};

/// Identifies the transcript of one step attempt.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TranscriptKey {
    /// The job (shared with the record's name where the engine has one).
    pub job: std::sync::Arc<str>,
    /// The step (shared with the record's step id).
    pub step: std::sync::Arc<str>,
    /// The attempt (1-based).
    pub attempt: u32,
}

/// What an [`ApprovalWrite`] does to the stored request with the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalOp {
    /// Inserts a new `Open` request: `Conflict` when a request with this id exists
    /// (a request is never replaced), `InvalidInput` when the request is not `Open`.
    Insert,
    /// Updates a request that is stored and still `Open`: a decision (`Approved`,
    /// `Rejected`, `Cancelled`) or another vote (still `Open`). `Conflict` when the
    /// request does not exist or is no longer open: a status moves out of `Open` once.
    Update,
}

/// An approval request to store with a job write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalWrite {
    /// The request in its new state.
    pub request: ApprovalRequest,
    /// Insert, or update an open one.
    pub op: ApprovalOp,
}

/// One atomic write: a job record plus what goes with its transition.
///
/// Either all of it is stored, or none of it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobWrite {
    /// The new record, shared (`Arc`) so the engine's cache and an in-memory store
    /// hold one copy. [`create`](Self::create) and [`update`](Self::update) set its
    /// `revision` to the revision the write gives it (1 for a create, the expected
    /// revision + 1 for an update); a store stores it with that revision.
    pub job: Arc<JobRecord>,
    /// `None`: create, failing with `Conflict` if the job exists. `Some(r)`: update,
    /// failing with `Conflict` unless the stored revision is `r`.
    pub expected_revision: Option<u64>,
    /// Events appended to the job's log, in order.
    pub events: Vec<NewEvent>,
    /// Approval requests inserted or updated, checked in order.
    pub approvals: Vec<ApprovalWrite>,
    /// Transcripts stored (replacing any with the same key).
    pub transcripts: Vec<(TranscriptKey, Arc<Vec<Message>>)>,
}

impl JobWrite {
    /// A write that creates `job` (a `JobRecord` or an `Arc` of one); the record gets
    /// revision 1.
    pub fn create(job: impl Into<Arc<JobRecord>>) -> Self {
        let mut job = job.into();
        set_revision(&mut job, 1);
        JobWrite {
            job,
            expected_revision: None,
            events: Vec::new(),
            approvals: Vec::new(),
            transcripts: Vec::new(),
        }
    }

    /// A write that updates `job` (a `JobRecord` or an `Arc` of one), which was read at
    /// `job.revision`; the record gets that revision + 1.
    pub fn update(job: impl Into<Arc<JobRecord>>) -> Self {
        let mut job = job.into();
        let rev = job.revision;
        set_revision(&mut job, rev.saturating_add(1));
        JobWrite {
            job,
            expected_revision: Some(rev),
            events: Vec::new(),
            approvals: Vec::new(),
            transcripts: Vec::new(),
        }
    }

    /// Adds an event.
    pub fn event(mut self, event: NewEvent) -> Self {
        self.events.push(event);
        self
    }

    /// Adds events.
    pub fn events(mut self, events: impl IntoIterator<Item = NewEvent>) -> Self {
        self.events.extend(events);
        self
    }

    /// Inserts a new, `Open` approval request ([`ApprovalOp::Insert`]).
    pub fn insert_approval(mut self, request: ApprovalRequest) -> Self {
        self.approvals.push(ApprovalWrite {
            request,
            op: ApprovalOp::Insert,
        });
        self
    }

    /// Updates an approval request that must still be `Open` ([`ApprovalOp::Update`]).
    pub fn update_approval(mut self, request: ApprovalRequest) -> Self {
        self.approvals.push(ApprovalWrite {
            request,
            op: ApprovalOp::Update,
        });
        self
    }

    /// Adds a transcript (a `Vec<Message>`, or one already shared in an `Arc`, so a
    /// write retried after a `Conflict` does not copy it).
    pub fn transcript(
        mut self,
        key: TranscriptKey,
        messages: impl Into<Arc<Vec<Message>>>,
    ) -> Self {
        self.transcripts.push((key, messages.into()));
        self
    }
}

/// Sets a shared record's revision, copying the record only when it is shared and the
/// revision differs.
pub fn set_revision(job: &mut Arc<JobRecord>, revision: u64) {
    if job.revision != revision {
        Arc::make_mut(job).revision = revision;
    }
}

/// The optimistic-concurrency rule of [`StateStore::commit`], for backends that check
/// it in their own code: the revision a write of job `name` gets, given the revision
/// it names (`expected`, `None` for a create) and the stored one (`None` when absent).
///
/// # Errors
/// `Conflict` when a create finds the job, an update does not, or an update names a
/// stale revision; the message says which.
pub fn next_revision(name: &str, expected: Option<u64>, stored: Option<u64>) -> Result<u64> {
    match (expected, stored) {
        (None, None) => Ok(1),
        (None, Some(_)) => Err(crate::Error::conflict(format!(
            "job {name:?} already exists"
        ))),
        (Some(expected), None) => Err(crate::Error::conflict(format!(
            "job {name:?} does not exist (expected revision {expected})"
        ))),
        (Some(expected), Some(rev)) if rev != expected => Err(crate::Error::conflict(format!(
            "job {name:?}: stale revision {expected} (stored revision is {rev})"
        ))),
        (Some(expected), Some(_)) => Ok(expected + 1),
    }
}

/// The rule of one [`ApprovalWrite`], for backends that check it in their own code:
/// `stored_status` is the stored request's status name
/// ([`ApprovalStatus::name`](crate::state::ApprovalStatus::name)), `None` when absent;
/// `new_status` the written request's.
///
/// Several writes of one request in one [`JobWrite`] are checked in order, each against
/// the state the previous one left.
///
/// # Errors
/// - `Insert`: `Conflict` when the request exists; `InvalidInput` unless it is `open`.
/// - `Update`: `Conflict` when the request does not exist or is no longer open.
pub fn check_approval_write(
    id: &str,
    op: ApprovalOp,
    stored_status: Option<&str>,
    new_status: &str,
) -> Result<()> {
    match (op, stored_status) {
        (ApprovalOp::Insert, Some(_)) => Err(crate::Error::conflict(format!(
            "approval request {id:?} already exists: a request is never replaced"
        ))),
        (ApprovalOp::Insert, None) if new_status != "open" => Err(crate::Error::invalid_input(
            format!("approval request {id:?} must be inserted open, not {new_status}"),
        )),
        (ApprovalOp::Insert, None) => Ok(()),
        (ApprovalOp::Update, Some("open")) => Ok(()),
        (ApprovalOp::Update, Some(_)) => Err(crate::Error::conflict(format!(
            "approval request {id:?} is no longer open"
        ))),
        (ApprovalOp::Update, None) => Err(crate::Error::conflict(format!(
            "approval request {id:?} does not exist"
        ))),
    }
}

/// Checks the approval writes of one [`JobWrite`], `(id, op, new status)`, in order,
/// each against the state the previous one left ([`check_approval_write`]): the rule
/// every store applies before changing anything.
///
/// `stored(id, op)` gives the stored status name of a request the write has not touched
/// yet (`op` is what its first write does to it); it is asked once per id. A store reads
/// it, or assumes what its own statement will check.
///
/// # Errors
/// The rule's `Conflict` or `InvalidInput` (converted into `E`), or what `stored` returns.
pub fn check_approval_writes<'a, E: From<crate::Error>>(
    writes: impl IntoIterator<Item = (&'a str, ApprovalOp, &'a str)>,
    mut stored: impl FnMut(&str, ApprovalOp) -> std::result::Result<Option<String>, E>,
) -> std::result::Result<(), E> {
    let mut seen: std::collections::HashMap<&'a str, &'a str> = std::collections::HashMap::new();
    for (id, op, status) in writes {
        let read;
        let now = match seen.get(id) {
            Some(s) => Some(*s),
            None => {
                read = stored(id, op)?;
                read.as_deref()
            }
        };
        check_approval_write(id, op, now, status)?;
        seen.insert(id, status);
    }
    Ok(())
}

/// A request to claim the jobs that need attention: see [`StateStore::claim_due`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// Who claims (an engine id); stores may record it for operators.
    pub holder: String,
    /// The claimer's clock, in ms since the Unix epoch.
    pub now_ms: u64,
    /// How long (ms) a claimed job stays hidden from other claims, unless a write to
    /// it sets a new wake-up time first (the visibility timeout of a message queue).
    pub visibility_ms: u64,
    /// At most this many jobs are claimed.
    pub limit: usize,
}

/// What [`StateStore::compact`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Compaction {
    /// Transcripts deleted.
    pub transcripts: u64,
    /// Their size in bytes, as stored (JSON text for the SQL stores; an estimate for
    /// the memory store).
    pub bytes: u64,
}

/// Where observed state lives.
///
/// # Contract
/// - [`commit`](StateStore::commit) is atomic and durable when it returns `Ok`: the job
///   record, its events, approvals and transcripts are all stored, or none is.
/// - Revisions give optimistic concurrency: a write naming a stale revision is a
///   `Conflict` and changes nothing; never a silent overwrite. Revisions start at 1
///   and grow by 1 with each write.
/// - Event sequence numbers start at 1 per job and have no gaps.
/// - Reads see every write that returned `Ok` before them.
/// - **Wake-up times**: every stored job has a wake-up time, computed by each
///   `commit` from the record with [`JobRecord::wake_at_ms`] (a `Ready` step, an
///   expiring lease, the end of a deferral or a backoff). [`claim_due`] hands each job
///   whose time has come to one claimer at a time: a claimed job is hidden from other
///   claims for the claim's `visibility_ms`, or until a write gives it a new time.
///   Concurrent claims never return the same job.
/// - **Approvals are never replaced**: an [`ApprovalOp::Insert`] of an existing id and an
///   [`ApprovalOp::Update`] of a request that is not `Open` are `Conflict`s and store
///   nothing ([`check_approval_write`]); a request's status leaves `Open` once.
/// - **Transcripts apart**: job records are read without their transcripts; only
///   [`transcript`](StateStore::transcript) loads one.
/// - **Retention**: events, approvals and transcripts are kept as long as the job;
///   [`compact`] removes the transcripts of a finished job (events and approvals are
///   the audit trail and stay).
///
/// [`claim_due`]: StateStore::claim_due
/// [`compact`]: StateStore::compact
///
/// # Errors
/// `Conflict` (stale revision, job exists, approval exists or no longer open), `NotFound`,
/// `Backend` (I/O, database).
///
/// # Implementing
/// Run `george_core::conformance::state_store::run_all` (feature `conformance`) from
/// the backend's tests; it checks every point above.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait StateStore: Send + Sync + Debug + 'static {
    /// The job named `name`, if stored.
    async fn get_job(&self, name: &str) -> Result<Option<JobRecord>>;

    /// Every stored job, ordered by name.
    async fn list_jobs(&self) -> Result<Vec<JobRecord>>;

    /// Atomically stores a [`JobWrite`]; returns the job's new revision.
    async fn commit(&self, write: JobWrite) -> Result<u64>;

    /// Events of `job` with `seq > after_seq`, in order, at most `limit`.
    async fn events(&self, job: &str, after_seq: u64, limit: usize) -> Result<Vec<Event>>;

    /// The transcript of one step attempt.
    async fn transcript(&self, key: &TranscriptKey) -> Result<Option<Vec<Message>>>;

    /// The approval request with `id`.
    async fn approval(&self, id: &str) -> Result<Option<ApprovalRequest>>;

    /// Approval requests, only the open ones when `open_only`, ordered by id.
    async fn approvals(&self, open_only: bool) -> Result<Vec<ApprovalRequest>>;

    /// A small engine-level value (e.g. `last_reconciled_commit`).
    async fn get_meta(&self, key: &str) -> Result<Option<String>>;

    /// Sets a small engine-level value.
    async fn put_meta(&self, key: &str, value: &str) -> Result<()>;

    /// Claims up to `claim.limit` jobs whose wake-up time is at or before
    /// `claim.now_ms`, earliest first, and hides them from other claims for
    /// `claim.visibility_ms`. Returns their records.
    ///
    /// Several engines sharing a store use this to find work, including the attempts
    /// of an engine that died: its steps' leases expire and their jobs fall due. A claim
    /// is a hint, not a lock: the record's revision still fences every write.
    async fn claim_due(&self, claim: &Claim) -> Result<Vec<JobRecord>>;

    /// Deletes the transcripts of the finished job `job` (status `Succeeded`, `Failed`
    /// or `Cancelled`); its record, events and approvals stay.
    ///
    /// # Errors
    /// `NotFound` when there is no such job; `Conflict` when it is not finished.
    async fn compact(&self, job: &str) -> Result<Compaction>;

    /// The jobs whose target is `target` (its canonical key,
    /// [`crate::model::target_key`]; never matches jobs without a target), ordered by
    /// name.
    ///
    /// The provided implementation filters [`list_jobs`](StateStore::list_jobs): it
    /// reads every record, so its cost follows the number of jobs in the store. A
    /// backend with many jobs should override it with an indexed query.
    async fn jobs_on_target(&self, target: &str) -> Result<Vec<JobRecord>> {
        if target.is_empty() {
            return Ok(Vec::new());
        }
        let mut jobs = self.list_jobs().await?;
        jobs.retain(|j| !j.target.is_empty() && j.target_key() == target);
        Ok(jobs)
    }
}

macro_rules! forward_store {
    ($t:ty) => {
        #[async_trait]
        impl<T: StateStore + ?Sized> StateStore for $t {
            async fn get_job(&self, name: &str) -> Result<Option<JobRecord>> {
                (**self).get_job(name).await
            }
            async fn list_jobs(&self) -> Result<Vec<JobRecord>> {
                (**self).list_jobs().await
            }
            async fn commit(&self, write: JobWrite) -> Result<u64> {
                (**self).commit(write).await
            }
            async fn events(&self, job: &str, after_seq: u64, limit: usize) -> Result<Vec<Event>> {
                (**self).events(job, after_seq, limit).await
            }
            async fn transcript(&self, key: &TranscriptKey) -> Result<Option<Vec<Message>>> {
                (**self).transcript(key).await
            }
            async fn approval(&self, id: &str) -> Result<Option<ApprovalRequest>> {
                (**self).approval(id).await
            }
            async fn approvals(&self, open_only: bool) -> Result<Vec<ApprovalRequest>> {
                (**self).approvals(open_only).await
            }
            async fn get_meta(&self, key: &str) -> Result<Option<String>> {
                (**self).get_meta(key).await
            }
            async fn put_meta(&self, key: &str, value: &str) -> Result<()> {
                (**self).put_meta(key, value).await
            }
            async fn claim_due(&self, claim: &Claim) -> Result<Vec<JobRecord>> {
                (**self).claim_due(claim).await
            }
            async fn compact(&self, job: &str) -> Result<Compaction> {
                (**self).compact(job).await
            }
            async fn jobs_on_target(&self, target: &str) -> Result<Vec<JobRecord>> {
                (**self).jobs_on_target(target).await
            }
        }
    };
}
forward_store!(Arc<T>);
forward_store!(Box<T>);

/// `Arc<dyn StateStore>`.
pub type DynStateStore = Arc<dyn StateStore>;

#[cfg(test)]
mod tests {
    use super::ApprovalOp::{Insert, Update};
    use super::*;
    use crate::ErrorKind;

    fn kind(r: Result<()>) -> Option<ErrorKind> {
        r.err().map(|e| e.kind())
    }

    #[test]
    fn each_approval_write_sees_the_previous_one() {
        let none = |_: &str, _| Ok(None);
        let open = |_: &str, _| Ok(Some("open".to_string()));
        let w = |v: &'static [(&'static str, ApprovalOp, &'static str)]| v.iter().copied();
        assert_eq!(
            kind(check_approval_writes(
                w(&[("a", Insert, "open"), ("a", Update, "approved")]),
                none
            )),
            None
        );
        assert_eq!(
            kind(check_approval_writes(
                w(&[("a", Update, "approved"), ("a", Update, "open")]),
                open
            )),
            Some(ErrorKind::Conflict)
        );
        assert_eq!(
            kind(check_approval_writes(w(&[("a", Insert, "approved")]), none)),
            Some(ErrorKind::InvalidInput)
        );
        assert_eq!(
            kind(check_approval_writes(w(&[("a", Insert, "open")]), open)),
            Some(ErrorKind::Conflict)
        );
        // `stored` is asked once per id, with the op of its first write.
        let mut asked = Vec::new();
        let r = check_approval_writes(
            w(&[
                ("a", Update, "open"),
                ("b", Insert, "open"),
                ("a", Update, "cancelled"),
            ]),
            |id, op| {
                asked.push((id.to_string(), op));
                Ok::<_, crate::Error>((op == Update).then(|| "open".to_string()))
            },
        );
        assert!(r.is_ok());
        assert_eq!(
            asked,
            [("a".to_string(), Update), ("b".to_string(), Insert)]
        );
    }
}
