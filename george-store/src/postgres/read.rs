//! Reads: one prepared (and per-connection cached) statement each, in autocommit
//! mode, so each sees every transaction committed before it started.

use deadpool_postgres::Pool;
use george_core::provider::Message;
use george_core::state::{ApprovalRequest, Event, JobRecord};
use george_core::store::TranscriptKey;
use serde::de::DeserializeOwned;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::write::client;
use crate::error::{StoreError, to_u64};

fn decode<T: DeserializeOwned>(what: &'static str, json: &str) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|source| StoreError::CorruptRecord { what, source })
}

/// A job row's (revision, record JSON) → the record, with the authoritative revision.
pub(crate) fn decode_job((revision, record): (i64, String)) -> Result<JobRecord, StoreError> {
    let mut job: JobRecord = decode("job record", &record)?;
    job.revision = to_u64("revision", revision)?;
    Ok(job)
}

/// Runs a cached statement; returns its rows.
async fn query(
    pool: &Pool,
    what: &'static str,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, StoreError> {
    let client = client(pool).await?;
    let stmt = client
        .prepare_cached(sql)
        .await
        .map_err(StoreError::pg(what))?;
    client
        .query(&stmt, params)
        .await
        .map_err(StoreError::pg(what))
}

fn job_row(row: &Row) -> Result<(i64, String), StoreError> {
    Ok((
        row.try_get(0).map_err(StoreError::pg("read job row"))?,
        row.try_get(1).map_err(StoreError::pg("read job row"))?,
    ))
}

fn text(row: &Row, what: &'static str) -> Result<String, StoreError> {
    row.try_get(0).map_err(StoreError::pg(what))
}

pub(crate) async fn get_job(pool: &Pool, name: &str) -> Result<Option<JobRecord>, StoreError> {
    let rows = query(
        pool,
        "read job",
        "SELECT revision, record FROM jobs WHERE name = $1",
        &[&name],
    )
    .await?;
    rows.first()
        .map(job_row)
        .transpose()?
        .map(decode_job)
        .transpose()
}

pub(crate) async fn list_jobs(pool: &Pool) -> Result<Vec<JobRecord>, StoreError> {
    let rows = query(
        pool,
        "list jobs",
        "SELECT revision, record FROM jobs ORDER BY name",
        &[],
    )
    .await?;
    rows.iter().map(|r| decode_job(job_row(r)?)).collect()
}

pub(crate) async fn events(
    pool: &Pool,
    job: &str,
    after_seq: u64,
    limit: usize,
) -> Result<Vec<Event>, StoreError> {
    let Ok(after) = i64::try_from(after_seq) else {
        return Ok(Vec::new());
    };
    if limit == 0 {
        return Ok(Vec::new());
    }
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = query(
        pool,
        "read events",
        "SELECT seq, at_ms, actor, action, step, detail FROM events
         WHERE job = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        &[&job, &after, &limit],
    )
    .await?;
    rows.iter()
        .map(|r| {
            let (seq, at_ms, actor, action, step, detail) =
                event_row(r).map_err(StoreError::pg("read event row"))?;
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

type EventRow = (i64, i64, String, String, Option<String>, String);

fn event_row(r: &Row) -> Result<EventRow, tokio_postgres::Error> {
    Ok((
        r.try_get(0)?,
        r.try_get(1)?,
        r.try_get(2)?,
        r.try_get(3)?,
        r.try_get(4)?,
        r.try_get(5)?,
    ))
}

pub(crate) async fn transcript(
    pool: &Pool,
    key: &TranscriptKey,
) -> Result<Option<Vec<Message>>, StoreError> {
    let attempt = i64::from(key.attempt);
    let rows = query(
        pool,
        "read transcript",
        "SELECT messages FROM transcripts WHERE job = $1 AND step = $2 AND attempt = $3",
        &[&&*key.job, &&*key.step, &attempt],
    )
    .await?;
    rows.first()
        .map(|r| decode("transcript", &text(r, "read transcript row")?))
        .transpose()
}

pub(crate) async fn approval(pool: &Pool, id: &str) -> Result<Option<ApprovalRequest>, StoreError> {
    let rows = query(
        pool,
        "read approval",
        "SELECT record FROM approvals WHERE id = $1",
        &[&id],
    )
    .await?;
    rows.first()
        .map(|r| decode("approval request", &text(r, "read approval row")?))
        .transpose()
}

pub(crate) async fn approvals(
    pool: &Pool,
    open_only: bool,
) -> Result<Vec<ApprovalRequest>, StoreError> {
    let sql = if open_only {
        "SELECT record FROM approvals WHERE status = 'open' ORDER BY id"
    } else {
        "SELECT record FROM approvals ORDER BY id"
    };
    let rows = query(pool, "list approvals", sql, &[]).await?;
    rows.iter()
        .map(|r| decode("approval request", &text(r, "read approval row")?))
        .collect()
}

pub(crate) async fn get_meta(pool: &Pool, key: &str) -> Result<Option<String>, StoreError> {
    let rows = query(
        pool,
        "read meta",
        "SELECT value FROM meta WHERE key = $1",
        &[&key],
    )
    .await?;
    rows.first().map(|r| text(r, "read meta row")).transpose()
}
