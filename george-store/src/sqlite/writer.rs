//! The writer thread: owns the one write connection and applies writes in groups.
//!
//! Callers send a [`Command`] over a channel and await a one-shot reply, so no
//! blocking SQLite call runs on the async runtime. The thread takes whatever is
//! queued (up to `max_batch` commands), runs each in its own `SAVEPOINT` inside one
//! `BEGIN IMMEDIATE` transaction, commits once (one fsync for the group), and only
//! then answers. A refused write (a `Conflict`, or an approval request inserted not
//! open) rolls back to its savepoint and does not disturb the others.

use std::sync::mpsc;
use std::thread::JoinHandle;

use george_core::state::JobStatus;
use george_core::store::{Claim, Compaction, JobWrite};
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use super::commit::{Prepared, apply_commit};
use crate::error::{StoreError, clamp_i64};

/// One write for the writer thread.
enum Op {
    Commit(Box<Prepared>),
    PutMeta { key: String, value: String },
    Claim(Claim),
    Compact(String),
}

/// The answer to an [`Op`].
enum Reply {
    /// A commit's new revision.
    Revision(u64),
    /// Nothing to say.
    Done,
    /// Claimed jobs, as (revision, record JSON).
    Claimed(Vec<(i64, String)>),
    /// What a compaction removed.
    Compacted(Compaction),
}

struct Command {
    op: Op,
    reply: oneshot::Sender<Result<Reply, StoreError>>,
}

/// The handle of the writer thread. Dropping it lets the thread finish what is queued,
/// then joins it (closing the connection).
#[derive(Debug)]
pub(crate) struct Writer {
    tx: Option<mpsc::Sender<Command>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the thread, which takes over `conn`.
    pub(crate) fn spawn(conn: Connection, max_batch: usize) -> std::io::Result<Writer> {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("george-sqlite-writer".into())
            .spawn(move || run(conn, rx, max_batch.max(1)))?;
        Ok(Writer {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    async fn send(&self, op: Op) -> Result<Reply, StoreError> {
        let (reply, answer) = oneshot::channel();
        let tx = self.tx.as_ref().ok_or(StoreError::WriterGone)?;
        tx.send(Command { op, reply })
            .map_err(|_| StoreError::WriterGone)?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Applies `write`; returns the job's new revision once the transaction is durable.
    pub(crate) async fn commit(&self, write: JobWrite) -> Result<u64, StoreError> {
        let prepared = Prepared::encode(write)?;
        match self.send(Op::Commit(Box::new(prepared))).await? {
            Reply::Revision(r) => Ok(r),
            _ => Err(StoreError::WriterGone),
        }
    }

    /// Sets a meta value.
    pub(crate) async fn put_meta(&self, key: String, value: String) -> Result<(), StoreError> {
        self.send(Op::PutMeta { key, value }).await.map(drop)
    }

    /// Claims due jobs; returns them as (revision, record JSON).
    pub(crate) async fn claim(&self, claim: Claim) -> Result<Vec<(i64, String)>, StoreError> {
        match self.send(Op::Claim(claim)).await? {
            Reply::Claimed(rows) => Ok(rows),
            _ => Err(StoreError::WriterGone),
        }
    }

    /// Deletes a finished job's transcripts.
    pub(crate) async fn compact(&self, job: String) -> Result<Compaction, StoreError> {
        match self.send(Op::Compact(job)).await? {
            Reply::Compacted(c) => Ok(c),
            _ => Err(StoreError::WriterGone),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the SQLite writer thread panicked");
            }
        }
    }
}

fn run(mut conn: Connection, rx: mpsc::Receiver<Command>, max_batch: usize) {
    let mut batch = Vec::with_capacity(max_batch);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(cmd) => batch.push(cmd),
                Err(_) => break,
            }
        }
        run_batch(&mut conn, &mut batch);
    }
    tracing::debug!("SQLite writer thread stopping");
}

/// Runs `batch` in one transaction and answers every command in it.
fn run_batch(conn: &mut Connection, batch: &mut Vec<Command>) {
    let size = batch.len();
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let msg = format!("BEGIN failed: {e}");
        for cmd in batch.drain(..) {
            let _ = cmd.reply.send(Err(StoreError::BatchAborted(msg.clone())));
        }
        return;
    }
    let mut answers = Vec::with_capacity(size);
    for cmd in batch.drain(..) {
        let result = if conn.is_autocommit() {
            // An earlier failure made SQLite roll the whole transaction back.
            Err(StoreError::BatchAborted(
                "an earlier write of the group failed".into(),
            ))
        } else {
            in_savepoint(conn, cmd.op)
        };
        answers.push((cmd.reply, result));
    }
    let lost = if conn.is_autocommit() {
        Some("the transaction was rolled back by SQLite".to_string())
    } else {
        match conn.execute_batch("COMMIT") {
            Ok(()) => None,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                Some(format!("COMMIT failed: {e}"))
            }
        }
    };
    if size > 1 {
        tracing::trace!(size, "SQLite group commit");
    }
    for (reply, mut result) in answers {
        if let (Some(msg), Ok(_)) = (&lost, &result) {
            result = Err(StoreError::BatchAborted(msg.clone()));
        }
        // The caller may have given up waiting; that is fine.
        let _ = reply.send(result);
    }
}

/// Applies one operation inside `SAVEPOINT w`, rolling back to it on any error.
fn in_savepoint(conn: &Connection, op: Op) -> Result<Reply, StoreError> {
    conn.execute_batch("SAVEPOINT w")
        .map_err(StoreError::sqlite("savepoint"))?;
    let result = match op {
        Op::Commit(write) => apply_commit(conn, *write).map(Reply::Revision),
        Op::PutMeta { key, value } => put_meta(conn, &key, &value).map(|()| Reply::Done),
        Op::Claim(claim) => claim_due(conn, &claim).map(Reply::Claimed),
        Op::Compact(job) => compact(conn, &job).map(Reply::Compacted),
    };
    let end = match &result {
        Ok(_) => conn.execute_batch("RELEASE w"),
        Err(_) if conn.is_autocommit() => Ok(()),
        Err(_) => conn.execute_batch("ROLLBACK TO w; RELEASE w"),
    };
    match end {
        Ok(()) => result,
        Err(e) => Err(StoreError::Sqlite {
            context: "end savepoint",
            source: e,
        }),
    }
}

fn put_meta(conn: &Connection, key: &str, value: &str) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")
        .and_then(|mut s| s.execute([key, value]))
        .map(drop)
        .map_err(StoreError::sqlite("write meta"))
}

/// Hides up to `claim.limit` due jobs for the visibility timeout and returns them.
/// Only the writer connection writes, so no two claims can overlap.
fn claim_due(conn: &Connection, claim: &Claim) -> Result<Vec<(i64, String)>, StoreError> {
    let now = clamp_i64(claim.now_ms);
    let hidden_until = clamp_i64(claim.now_ms.saturating_add(claim.visibility_ms));
    let limit = i64::try_from(claim.limit).unwrap_or(i64::MAX);
    conn.prepare_cached(
        "UPDATE jobs SET wake_at_ms = ?1, claimed_by = ?2
         WHERE name IN (SELECT name FROM jobs WHERE wake_at_ms <= ?3
                        ORDER BY wake_at_ms, name LIMIT ?4)
         RETURNING revision, record",
    )
    .and_then(|mut s| {
        s.query_map(params![hidden_until, claim.holder, now, limit], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()
    })
    .map_err(StoreError::sqlite("claim due jobs"))
}

/// Deletes the transcripts of a finished job.
fn compact(conn: &Connection, job: &str) -> Result<Compaction, StoreError> {
    let status: Option<String> = conn
        .prepare_cached("SELECT status FROM jobs WHERE name = ?1")
        .and_then(|mut s| s.query_row([job], |r| r.get(0)).optional())
        .map_err(StoreError::sqlite("read job status"))?;
    let Some(status) = status else {
        return Err(StoreError::NotFound(format!("no job {job:?}")));
    };
    let finished = [
        JobStatus::Succeeded,
        JobStatus::Failed,
        JobStatus::Cancelled,
    ]
    .iter()
    .any(|s| s.name() == status);
    if !finished {
        return Err(StoreError::Conflict(format!(
            "job {job:?} is {status}: only finished jobs are compacted"
        )));
    }
    let (count, bytes): (i64, i64) = conn
        .prepare_cached(
            "SELECT count(*), coalesce(sum(length(CAST(messages AS BLOB))), 0)
             FROM transcripts WHERE job = ?1",
        )
        .and_then(|mut s| s.query_row([job], |r| Ok((r.get(0)?, r.get(1)?))))
        .map_err(StoreError::sqlite("measure transcripts"))?;
    conn.prepare_cached("DELETE FROM transcripts WHERE job = ?1")
        .and_then(|mut s| s.execute([job]))
        .map_err(StoreError::sqlite("delete transcripts"))?;
    Ok(Compaction {
        transcripts: u64::try_from(count).unwrap_or(0),
        bytes: u64::try_from(bytes).unwrap_or(0),
    })
}
