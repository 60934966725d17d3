//! Claims of due jobs and compaction of finished ones: one statement each.

use deadpool_postgres::Pool;
use george_core::state::JobStatus;
use george_core::store::{Claim, Compaction};

use super::write::client;
use crate::error::{StoreError, clamp_i64};

/// Hides up to `claim.limit` due jobs for the visibility timeout; returns them as
/// (revision, record JSON), earliest wake-up time first.
///
/// `FOR UPDATE SKIP LOCKED` (PostgreSQL documentation, "The Locking Clause" of
/// `SELECT`): rows another transaction has locked — another claimer's, or a commit in
/// flight — are skipped instead of waited for, so concurrent claimers take disjoint
/// sets without queueing behind each other. A row that another claim updated after
/// this statement's snapshot is locked in its new version and re-checked against
/// `wake_at_ms <= now`, which it then fails, so no job is handed out twice.
pub(crate) async fn claim_due(
    pool: &Pool,
    claim: &Claim,
) -> Result<Vec<(i64, String)>, StoreError> {
    let now = clamp_i64(claim.now_ms);
    let hidden_until = clamp_i64(claim.now_ms.saturating_add(claim.visibility_ms));
    let limit = i64::try_from(claim.limit).unwrap_or(i64::MAX);
    let client = client(pool).await?;
    let stmt = client
        .prepare_cached(
            "WITH due AS (
                SELECT name, wake_at_ms FROM jobs
                WHERE wake_at_ms <= $3
                ORDER BY wake_at_ms, name
                LIMIT $4
                FOR UPDATE SKIP LOCKED
            ), claimed AS (
                UPDATE jobs SET wake_at_ms = $1, claimed_by = $2
                FROM due WHERE jobs.name = due.name
                RETURNING jobs.name, jobs.revision, jobs.record, due.wake_at_ms AS due_at
            )
            SELECT revision, record FROM claimed ORDER BY due_at, name",
        )
        .await
        .map_err(StoreError::pg("prepare a claim"))?;
    let rows = client
        .query(&stmt, &[&hidden_until, &claim.holder, &now, &limit])
        .await
        .map_err(StoreError::pg("claim due jobs"))?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_, tokio_postgres::Error>>()
        .map_err(StoreError::pg("read claimed jobs"))
}

/// Deletes the transcripts of a finished job, in one statement: the job row is locked
/// (`FOR SHARE`) so its status cannot change meanwhile, and nothing is deleted unless
/// it is finished.
pub(crate) async fn compact(pool: &Pool, job: &str) -> Result<Compaction, StoreError> {
    let finished: Vec<&str> = [
        JobStatus::Succeeded,
        JobStatus::Failed,
        JobStatus::Cancelled,
    ]
    .iter()
    .map(|s| s.name())
    .collect();
    let client = client(pool).await?;
    let stmt = client
        .prepare_cached(
            "WITH j AS (
                SELECT status FROM jobs WHERE name = $1 FOR SHARE
            ), d AS (
                DELETE FROM transcripts
                WHERE job = $1 AND (SELECT status FROM j) = ANY($2::text[])
                RETURNING octet_length(messages) AS bytes
            )
            SELECT (SELECT status FROM j),
                   (SELECT count(*) FROM d),
                   (SELECT coalesce(sum(bytes), 0)::bigint FROM d)",
        )
        .await
        .map_err(StoreError::pg("prepare a compaction"))?;
    let row = client
        .query_one(&stmt, &[&job, &finished])
        .await
        .map_err(StoreError::pg("compact transcripts"))?;
    let read =
        |row: &tokio_postgres::Row| -> Result<(Option<String>, i64, i64), tokio_postgres::Error> {
            Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))
        };
    let (status, count, bytes) = read(&row).map_err(StoreError::pg("read a compaction"))?;
    let Some(status) = status else {
        return Err(StoreError::NotFound(format!("no job {job:?}")));
    };
    if !finished.contains(&status.as_str()) {
        return Err(StoreError::Conflict(format!(
            "job {job:?} is {status}: only finished jobs are compacted"
        )));
    }
    Ok(Compaction {
        transcripts: u64::try_from(count).unwrap_or(0),
        bytes: u64::try_from(bytes).unwrap_or(0),
    })
}
