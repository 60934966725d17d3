//! One [`JobWrite`] on the writer thread: encoded by the caller ([`Prepared`]), then
//! checked and stored inside the writer's savepoint ([`apply_commit`]).

use george_core::store::{ApprovalOp, JobWrite};
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{StoreError, clamp_i64, to_i64};

/// A [`JobWrite`] already encoded by the caller, so that JSON encoding runs on the
/// callers' threads, in parallel, and the writer thread only checks and inserts.
pub(super) struct Prepared {
    name: String,
    status: &'static str,
    updated_at_ms: u64,
    /// [`george_core::state::JobRecord::wake_at_ms`] of the record.
    wake_at_ms: Option<u64>,
    expected_revision: Option<u64>,
    /// The record as JSON, with `revision` already set to the revision it gets.
    record: String,
    events: Vec<george_core::state::NewEvent>,
    approvals: Vec<Approval>,
    transcripts: Vec<(george_core::store::TranscriptKey, String)>,
}

/// One approval write, encoded.
struct Approval {
    id: String,
    job: String,
    op: ApprovalOp,
    status: &'static str,
    /// The request as JSON.
    record: String,
}

impl Prepared {
    pub(super) fn encode(write: JobWrite) -> Result<Prepared, StoreError> {
        let JobWrite {
            mut job,
            expected_revision,
            events,
            approvals,
            transcripts,
        } = write;
        george_core::store::set_revision(
            &mut job,
            expected_revision.map_or(1, |r| r.saturating_add(1)),
        );
        let wake_at_ms = job.wake_at_ms();
        let record = serde_json::to_string(&job).map_err(|source| StoreError::Encode {
            what: "job record",
            source,
        })?;
        let mut enc_approvals = Vec::with_capacity(approvals.len());
        for a in approvals {
            let json = serde_json::to_string(&a.request).map_err(|source| StoreError::Encode {
                what: "approval request",
                source,
            })?;
            enc_approvals.push(Approval {
                status: a.request.status.name(),
                id: a.request.id,
                job: a.request.job,
                op: a.op,
                record: json,
            });
        }
        let mut enc_transcripts = Vec::with_capacity(transcripts.len());
        for (key, messages) in transcripts {
            let json = serde_json::to_string(&messages).map_err(|source| StoreError::Encode {
                what: "transcript",
                source,
            })?;
            enc_transcripts.push((key, json));
        }
        Ok(Prepared {
            name: job.name.clone(),
            status: job.status.name(),
            updated_at_ms: job.updated_at_ms,
            wake_at_ms,
            expected_revision,
            record,
            events,
            approvals: enc_approvals,
            transcripts: enc_transcripts,
        })
    }
}

/// Checks then stores one [`JobWrite`]. Every check runs before the first change; the
/// savepoint around it undoes a partial write should a statement fail.
pub(super) fn apply_commit(conn: &Connection, write: Prepared) -> Result<u64, StoreError> {
    let Prepared {
        name,
        status,
        updated_at_ms,
        wake_at_ms,
        expected_revision,
        record,
        events,
        approvals,
        transcripts,
    } = write;

    let stored: Option<(i64, i64)> = conn
        .prepare_cached("SELECT revision, last_seq FROM jobs WHERE name = ?1")
        .and_then(|mut s| {
            s.query_row([&name], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(StoreError::sqlite("read job revision"))?;
    let stored_revision = match stored {
        Some((rev, _)) => Some(crate::error::to_u64("revision", rev)?),
        None => None,
    };
    let revision = george_core::store::next_revision(&name, expected_revision, stored_revision)
        .map_err(|e| StoreError::Conflict(e.message().to_string()))?;
    let last_seq = stored.map_or(0, |(_, seq)| seq);

    // Each approval write against the state the previous one left.
    george_core::store::check_approval_writes(
        approvals.iter().map(|a| (a.id.as_str(), a.op, a.status)),
        |id, _| {
            conn.prepare_cached("SELECT status FROM approvals WHERE id = ?1")
                .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
                .map_err(StoreError::sqlite("read approval status"))
        },
    )?;

    let new_last_seq = last_seq.saturating_add(i64::try_from(events.len()).unwrap_or(i64::MAX));
    let revision_sql = to_i64("revision", revision)?;
    let updated_at_sql = to_i64("updated_at_ms", updated_at_ms)?;
    conn.prepare_cached(
        "INSERT INTO jobs (name, revision, status, updated_at_ms, last_seq, record, wake_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (name) DO UPDATE SET
            revision = excluded.revision, status = excluded.status,
            updated_at_ms = excluded.updated_at_ms, last_seq = excluded.last_seq,
            record = excluded.record, wake_at_ms = excluded.wake_at_ms",
    )
    .and_then(|mut s| {
        s.execute(params![
            name,
            revision_sql,
            status,
            updated_at_sql,
            new_last_seq,
            record,
            wake_at_ms.map(clamp_i64),
        ])
    })
    .map_err(StoreError::sqlite("write job"))?;

    if !events.is_empty() {
        let mut stmt = conn
            .prepare_cached(
                "INSERT INTO events (job, seq, at_ms, actor, action, step, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(StoreError::sqlite("prepare event insert"))?;
        for (e, seq) in events.iter().zip(last_seq + 1..) {
            let at_ms = to_i64("event at_ms", e.at_ms)?;
            stmt.execute(params![
                name, seq, at_ms, e.actor, e.action, e.step, e.detail
            ])
            .map_err(StoreError::sqlite("append event"))?;
        }
    }

    // A plain insert: the checks above found no such id, and a duplicate would be a
    // constraint error (rolled back with the write), never a replacement.
    for a in &approvals {
        let sql = match a.op {
            ApprovalOp::Insert => {
                "INSERT INTO approvals (id, job, status, record) VALUES (?1, ?2, ?3, ?4)"
            }
            ApprovalOp::Update => {
                "UPDATE approvals SET job = ?2, status = ?3, record = ?4 WHERE id = ?1"
            }
        };
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute(params![a.id, a.job, a.status, a.record]))
            .map_err(StoreError::sqlite("write approval"))?;
    }

    for (key, json) in &transcripts {
        conn.prepare_cached(
            "INSERT OR REPLACE INTO transcripts (job, step, attempt, messages)
             VALUES (?1, ?2, ?3, ?4)",
        )
        .and_then(|mut s| s.execute(params![key.job, key.step, key.attempt, json]))
        .map_err(StoreError::sqlite("write transcript"))?;
    }

    Ok(revision)
}
