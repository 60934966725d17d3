//! Commits and meta writes. A commit is one SQL statement that checks and writes
//! everything (one round trip once prepared): run alone it is its own transaction,
//! with no `BEGIN`/`COMMIT` round trips; [`super::batch`] sends several in one.

use std::collections::HashSet;

use deadpool_postgres::{Client, Pool};
use george_core::store::{ApprovalOp, JobWrite};
use tokio_postgres::types::ToSql;

use super::refusal::{explain_refusal, is_duplicate_approval};

use crate::error::{StoreError, clamp_i64, to_i64};

/// The part of the commit statement shared by creates and updates.
///
/// `ok`: every approval the write updates is stored and still open, and is locked
/// (`FOR UPDATE`) until the statement's transaction ends, so a concurrent decision
/// waits, then sees ours; no approval the write inserts is stored. `j` (the job write,
/// defined by the caller) returns nothing when a check fails; the other parts write
/// rows only for the rows of `j`, so a refused write stores nothing. Approvals are
/// inserted plainly: one inserted concurrently since the check makes the statement
/// fail with a unique violation (a `Conflict`), never replaces it.
/// Parameters: $1 name, $2 new revision, $3 status, $4 updated_at_ms, $5 wake_at_ms,
/// $6 record, $7 number of events, $8 ids of approvals updated (must be open), $9-$13
/// events (at_ms, actor, action, step, detail), $14-$17 approvals as written last (id,
/// job, status, record), $18-$21 transcripts (job, step, attempt, messages), $22 ids
/// of approvals inserted (must not exist).
macro_rules! checked_write {
    ($job_write:literal) => {
        concat!(
            "WITH ok AS (
                SELECT count(*) = cardinality($8::text[])
                       AND NOT EXISTS (SELECT 1 FROM approvals WHERE id = ANY($22::text[]))
                       AS ok
                FROM (SELECT 1 FROM approvals
                      WHERE id = ANY($8::text[]) AND status = 'open' FOR UPDATE) AS a
            ), j AS (",
            $job_write,
            "), ev AS (
                INSERT INTO events (job, seq, at_ms, actor, action, step, detail)
                SELECT $1::text, j.base + e.ord, e.at_ms, e.actor, e.action, e.step, e.detail
                FROM j, unnest($9::bigint[], $10::text[], $11::text[], $12::text[], $13::text[])
                     WITH ORDINALITY AS e(at_ms, actor, action, step, detail, ord)
            ), ap_new AS (
                INSERT INTO approvals (id, job, status, record)
                SELECT a.id, a.job, a.status, a.record
                FROM j, unnest($14::text[], $15::text[], $16::text[], $17::text[])
                     AS a(id, job, status, record)
                WHERE a.id = ANY($22::text[])
            ), ap_upd AS (
                UPDATE approvals SET job = a.job, status = a.status, record = a.record
                FROM j, unnest($14::text[], $15::text[], $16::text[], $17::text[])
                     AS a(id, job, status, record)
                WHERE approvals.id = a.id AND a.id <> ALL($22::text[])
            ), tr AS (
                INSERT INTO transcripts (job, step, attempt, messages)
                SELECT t.job, t.step, t.attempt, t.messages
                FROM j, unnest($18::text[], $19::text[], $20::bigint[], $21::text[])
                     AS t(job, step, attempt, messages)
                ON CONFLICT (job, step, attempt) DO UPDATE SET messages = excluded.messages
            )
            SELECT revision FROM j"
        )
    };
}

/// A create: `ON CONFLICT DO NOTHING` makes an existing job (or one a concurrent
/// transaction is inserting) return no row.
const CREATE: &str = checked_write!(
    "INSERT INTO jobs (name, revision, status, updated_at_ms, wake_at_ms, record, last_seq)
     SELECT $1::text, $2::bigint, $3::text, $4::bigint, $5::bigint, $6::text, $7::bigint
     WHERE (SELECT ok FROM ok)
     ON CONFLICT (name) DO NOTHING
     RETURNING revision, 0::bigint AS base"
);

/// An update, fenced by the revision: a concurrent update of the same row makes this
/// one wait, then re-check `revision` on the new row version, find it changed, and
/// return no row. `claimed_by` is kept.
const UPDATE: &str = checked_write!(
    "UPDATE jobs SET revision = $2::bigint, status = $3::text, updated_at_ms = $4::bigint,
                     wake_at_ms = $5::bigint, record = $6::text,
                     last_seq = last_seq + $7::bigint
     WHERE name = $1::text AND revision = $2::bigint - 1 AND (SELECT ok FROM ok)
     RETURNING revision, last_seq - $7::bigint AS base"
);

/// A [`JobWrite`] encoded before a connection is taken: JSON encoding runs on the
/// caller's task, and the statement's parameters are ready to send.
pub(crate) struct Prepared {
    name: String,
    expected_revision: Option<u64>,
    revision: i64,
    status: &'static str,
    updated_at_ms: i64,
    wake_at_ms: Option<i64>,
    record: String,
    event_count: i64,
    /// Ids of the approvals the write updates: stored and open, it checks.
    must_be_open: Vec<String>,
    /// Ids of the approvals the write inserts: not stored, it checks.
    must_be_new: Vec<String>,
    /// Each approval write in order, `(id, op, new status)`, to explain a refusal.
    pub(super) approvals: Vec<(String, ApprovalOp, &'static str)>,
    /// The approval writes break the rule among themselves (whatever is stored): the
    /// write is refused without being sent.
    doomed: bool,
    ev_at: Vec<i64>,
    ev_actor: Vec<String>,
    ev_action: Vec<String>,
    ev_step: Vec<Option<String>>,
    ev_detail: Vec<String>,
    ap_id: Vec<String>,
    ap_job: Vec<String>,
    ap_status: Vec<&'static str>,
    ap_record: Vec<String>,
    tr_job: Vec<String>,
    tr_step: Vec<String>,
    tr_attempt: Vec<i64>,
    tr_messages: Vec<String>,
}

fn encode<T: serde::Serialize>(what: &'static str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|source| StoreError::Encode { what, source })
}

impl Prepared {
    /// The job's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The revision the write names (`None`: a create).
    pub(super) fn expected_revision(&self) -> Option<u64> {
        self.expected_revision
    }

    /// Whether the write is refused whatever is stored: it needs no statement, only an
    /// explanation ([`commit`] gives it).
    pub(crate) fn doomed(&self) -> bool {
        self.doomed
    }

    pub(crate) fn encode(write: JobWrite) -> Result<Prepared, StoreError> {
        let JobWrite {
            mut job,
            expected_revision,
            events,
            approvals,
            transcripts,
        } = write;
        let revision = expected_revision.map_or(Ok(1), |r| {
            r.checked_add(1).ok_or(StoreError::OutOfRange {
                what: "revision",
                value: u128::from(r) + 1,
            })
        })?;
        george_core::store::set_revision(&mut job, revision);
        let record = encode("job record", &*job)?;

        let mut p = Prepared {
            revision: to_i64("revision", revision)?,
            status: job.status.name(),
            updated_at_ms: to_i64("updated_at_ms", job.updated_at_ms)?,
            wake_at_ms: job.wake_at_ms().map(clamp_i64),
            record,
            event_count: i64::try_from(events.len()).unwrap_or(i64::MAX),
            expected_revision,
            must_be_open: Vec::new(),
            must_be_new: Vec::new(),
            approvals: approvals
                .iter()
                .map(|a| (a.request.id.clone(), a.op, a.request.status.name()))
                .collect(),
            doomed: false,
            ev_at: Vec::with_capacity(events.len()),
            ev_actor: Vec::with_capacity(events.len()),
            ev_action: Vec::with_capacity(events.len()),
            ev_step: Vec::with_capacity(events.len()),
            ev_detail: Vec::with_capacity(events.len()),
            ap_id: Vec::new(),
            ap_job: Vec::new(),
            ap_status: Vec::new(),
            ap_record: Vec::new(),
            tr_job: Vec::new(),
            tr_step: Vec::new(),
            tr_attempt: Vec::new(),
            tr_messages: Vec::new(),
            name: job.name.clone(),
        };
        for e in events {
            p.ev_at.push(to_i64("event at_ms", e.at_ms)?);
            p.ev_actor.push(e.actor.to_string());
            p.ev_action.push(e.action.into_owned());
            p.ev_step.push(e.step.as_deref().map(str::to_string));
            p.ev_detail.push(e.detail);
        }
        // The statement checks what the first write of each id needs of the stored
        // state (open for an update, absent for an insert); the writes that follow are
        // checked here, against the state the first leaves. One statement cannot write
        // a row twice: it writes the last write of each id, inserting it when the first
        // write is an insert.
        let mut first_ops = Vec::new();
        p.doomed = george_core::store::check_approval_writes(
            p.approvals.iter().map(|(id, op, s)| (id.as_str(), *op, *s)),
            |id, op| {
                first_ops.push((id.to_string(), op));
                Ok::<_, StoreError>((op == ApprovalOp::Update).then(|| "open".to_string()))
            },
        )
        .is_err();
        for (id, op) in first_ops {
            match op {
                ApprovalOp::Insert => p.must_be_new.push(id),
                ApprovalOp::Update => p.must_be_open.push(id),
            }
        }
        let mut seen = HashSet::new();
        for a in approvals.iter().rev() {
            if seen.insert(a.request.id.as_str()) {
                p.ap_id.push(a.request.id.clone());
                p.ap_job.push(a.request.job.clone());
                p.ap_status.push(a.request.status.name());
                p.ap_record.push(encode("approval request", &a.request)?);
            }
        }
        let mut seen = HashSet::new();
        for (key, messages) in transcripts.iter().rev() {
            if seen.insert(key) {
                p.tr_job.push(key.job.to_string());
                p.tr_step.push(key.step.to_string());
                p.tr_attempt.push(i64::from(key.attempt));
                p.tr_messages.push(encode("transcript", messages)?);
            }
        }
        Ok(p)
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 22] {
        [
            &self.name,
            &self.revision,
            &self.status,
            &self.updated_at_ms,
            &self.wake_at_ms,
            &self.record,
            &self.event_count,
            &self.must_be_open,
            &self.ev_at,
            &self.ev_actor,
            &self.ev_action,
            &self.ev_step,
            &self.ev_detail,
            &self.ap_id,
            &self.ap_job,
            &self.ap_status,
            &self.ap_record,
            &self.tr_job,
            &self.tr_step,
            &self.tr_attempt,
            &self.tr_messages,
            &self.must_be_new,
        ]
    }
}

/// A pooled connection.
pub(crate) async fn client(pool: &Pool) -> Result<Client, StoreError> {
    pool.get()
        .await
        .map_err(StoreError::pool("get a connection"))
}

/// Applies one encoded write; returns the job's new revision.
pub(crate) async fn commit(pool: &Pool, write: &Prepared) -> Result<u64, StoreError> {
    let client = client(pool).await?;
    if write.doomed {
        return Err(explain_refusal(&client, write, None).await);
    }
    let sql = if write.expected_revision.is_some() {
        UPDATE
    } else {
        CREATE
    };
    let stmt = client
        .prepare_cached(sql)
        .await
        .map_err(StoreError::pg("prepare the commit"))?;
    let rows = match client.query(&stmt, &write.params()).await {
        Ok(rows) => rows,
        Err(e) if is_duplicate_approval(&e) => {
            let fallback = "an approval request of the write was inserted concurrently";
            return Err(explain_refusal(&client, write, Some(fallback)).await);
        }
        Err(e) => return Err(StoreError::pg("commit a job write")(e)),
    };
    match rows.first() {
        Some(row) => {
            let revision: i64 = row.try_get(0).map_err(StoreError::pg("read revision"))?;
            crate::error::to_u64("revision", revision)
        }
        None => Err(explain_refusal(&client, write, None).await),
    }
}

/// Why [`commit_many`] gave no answers.
pub(crate) enum BatchFailed {
    /// Nothing of the batch was stored: apply the writes one by one.
    Retry,
    /// `COMMIT` failed: whether the batch was stored is unknown.
    Unknown(String),
}

/// Applies `writes` in one transaction, pipelined on one connection (one round trip
/// once the statements are prepared); answers each write, in order. None of `writes`
/// may be [`doomed`](Prepared::doomed).
pub(crate) async fn commit_many(
    pool: &Pool,
    writes: &[&Prepared],
) -> Result<Vec<Result<u64, StoreError>>, BatchFailed> {
    debug_assert!(writes.iter().all(|w| !w.doomed));
    let client = client(pool).await.map_err(|_| BatchFailed::Retry)?;
    let (create, update) = match (
        client.prepare_cached(CREATE).await,
        client.prepare_cached(UPDATE).await,
    ) {
        (Ok(c), Ok(u)) => (c, u),
        _ => return Err(BatchFailed::Retry),
    };
    let params: Vec<_> = writes.iter().map(|w| w.params()).collect();
    // Polled in order, so sent in order: BEGIN, the writes, COMMIT.
    let begin = client.batch_execute("BEGIN");
    let each = futures::future::join_all(writes.iter().zip(&params).map(|(w, p)| {
        let stmt = if w.expected_revision.is_some() {
            &update
        } else {
            &create
        };
        client.query(stmt, p)
    }));
    let end = client.batch_execute("COMMIT");
    let (begun, rows, committed) = futures::join!(begin, each, end);
    if begun.is_ok() && rows.iter().any(Result::is_err) {
        // The transaction was aborted (and COMMIT rolled it back): nothing is stored.
        return Err(BatchFailed::Retry);
    }
    if begun.is_ok() {
        if let Err(e) = committed {
            return Err(BatchFailed::Unknown(format!(
                "COMMIT failed: {}",
                super::describe(&e)
            )));
        }
    }
    // Committed; or BEGIN failed, so each write ran (or failed) on its own.
    let mut answers = Vec::with_capacity(writes.len());
    for (w, result) in writes.iter().zip(rows) {
        answers.push(match result {
            Err(e) => Err(StoreError::pg("commit a job write")(e)),
            Ok(rows) => match rows.first() {
                Some(row) => row
                    .try_get::<_, i64>(0)
                    .map_err(StoreError::pg("read revision"))
                    .and_then(|r| crate::error::to_u64("revision", r)),
                None => Err(explain_refusal(&client, w, None).await),
            },
        });
    }
    Ok(answers)
}

/// Sets a meta value.
pub(crate) async fn put_meta(pool: &Pool, key: &str, value: &str) -> Result<(), StoreError> {
    let client = client(pool).await?;
    let stmt = client
        .prepare_cached(
            "INSERT INTO meta (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .await
        .map_err(StoreError::pg("prepare a meta write"))?;
    client
        .execute(&stmt, &[&key, &value])
        .await
        .map(drop)
        .map_err(StoreError::pg("write meta"))
}
