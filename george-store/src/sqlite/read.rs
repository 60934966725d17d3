//! Reads: a small pool of `query_only` connections used from `spawn_blocking`.
//!
//! In WAL mode readers do not block the writer nor each other, and each read
//! transaction sees every transaction committed before it began.

use std::sync::{Arc, Mutex};

use george_core::provider::Message;
use george_core::state::{ApprovalRequest, Event, JobRecord};
use george_core::store::TranscriptKey;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::de::DeserializeOwned;

use super::config::SqliteConfig;
use crate::error::{StoreError, to_u64};

/// Idle read connections, opened on demand.
#[derive(Debug)]
pub(crate) struct Readers {
    config: SqliteConfig,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub(crate) fn new(config: SqliteConfig) -> Readers {
        Readers {
            config,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `f` with a read connection on Tokio's blocking pool.
    pub(crate) async fn run<T, F>(self: &Arc<Self>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || this.with_conn(f))
            .await
            .map_err(StoreError::ReadTask)?
    }

    fn with_conn<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match pooled {
            Some(c) => c,
            None => self.config.open_reader()?,
        };
        let result = f(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.config.max_idle_readers {
            idle.push(conn);
        }
        result
    }
}

fn decode<T: DeserializeOwned>(what: &'static str, json: &str) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|source| StoreError::CorruptRecord { what, source })
}

fn job_from_row(row: &Row<'_>) -> rusqlite::Result<(i64, String)> {
    Ok((row.get(0)?, row.get(1)?))
}

pub(crate) fn decode_job((revision, record): (i64, String)) -> Result<JobRecord, StoreError> {
    let mut job: JobRecord = decode("job record", &record)?;
    job.revision = to_u64("revision", revision)?;
    Ok(job)
}

pub(crate) fn get_job(conn: &Connection, name: &str) -> Result<Option<JobRecord>, StoreError> {
    conn.prepare_cached("SELECT revision, record FROM jobs WHERE name = ?1")
        .and_then(|mut s| s.query_row([name], job_from_row).optional())
        .map_err(StoreError::sqlite("read job"))?
        .map(decode_job)
        .transpose()
}

pub(crate) fn list_jobs(conn: &Connection) -> Result<Vec<JobRecord>, StoreError> {
    let rows = conn
        .prepare_cached("SELECT revision, record FROM jobs ORDER BY name")
        .and_then(|mut s| {
            s.query_map([], job_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(StoreError::sqlite("list jobs"))?;
    rows.into_iter().map(decode_job).collect()
}

pub(crate) fn events(
    conn: &Connection,
    job: &str,
    after_seq: u64,
    limit: usize,
) -> Result<Vec<Event>, StoreError> {
    let Ok(after) = i64::try_from(after_seq) else {
        return Ok(Vec::new());
    };
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = conn
        .prepare_cached(
            "SELECT seq, at_ms, actor, action, step, detail FROM events
             WHERE job = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )
        .and_then(|mut s| {
            s.query_map(params![job, after, limit], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(StoreError::sqlite("read events"))?;
    rows.into_iter()
        .map(|(seq, at_ms, actor, action, step, detail)| {
            Ok(Event {
                job: job.to_string(),
                seq: to_u64("event seq", seq)?,
                at_ms: to_u64("event at_ms", at_ms)?,
                actor,
                action,
                step,
                detail,
            })
        })
        .collect()
}

pub(crate) fn transcript(
    conn: &Connection,
    key: &TranscriptKey,
) -> Result<Option<Vec<Message>>, StoreError> {
    conn.prepare_cached(
        "SELECT messages FROM transcripts WHERE job = ?1 AND step = ?2 AND attempt = ?3",
    )
    .and_then(|mut s| {
        s.query_row(params![key.job, key.step, key.attempt], |r| {
            r.get::<_, String>(0)
        })
        .optional()
    })
    .map_err(StoreError::sqlite("read transcript"))?
    .map(|json| decode("transcript", &json))
    .transpose()
}

pub(crate) fn approval(conn: &Connection, id: &str) -> Result<Option<ApprovalRequest>, StoreError> {
    conn.prepare_cached("SELECT record FROM approvals WHERE id = ?1")
        .and_then(|mut s| s.query_row([id], |r| r.get::<_, String>(0)).optional())
        .map_err(StoreError::sqlite("read approval"))?
        .map(|json| decode("approval request", &json))
        .transpose()
}

pub(crate) fn approvals(
    conn: &Connection,
    open_only: bool,
) -> Result<Vec<ApprovalRequest>, StoreError> {
    let sql = if open_only {
        "SELECT record FROM approvals WHERE status = 'open' ORDER BY id"
    } else {
        "SELECT record FROM approvals ORDER BY id"
    };
    let rows = conn
        .prepare_cached(sql)
        .and_then(|mut s| {
            s.query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(StoreError::sqlite("list approvals"))?;
    rows.iter()
        .map(|json| decode("approval request", json))
        .collect()
}

pub(crate) fn get_meta(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")
        .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional())
        .map_err(StoreError::sqlite("read meta"))
}
