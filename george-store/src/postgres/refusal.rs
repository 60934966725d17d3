//! Why a commit was refused, read after the fact for the error (the refusal itself was
//! decided atomically by the write's statement, or, for a write whose approvals break
//! the rule among themselves, before sending any).

use std::collections::HashMap;

use deadpool_postgres::Client;
use tokio_postgres::error::SqlState;

use super::write::Prepared;
use crate::error::StoreError;

/// Whether `e` is the unique violation of an approval id: a request inserted by a
/// concurrent transaction after the statement checked that the id was free.
pub(super) fn is_duplicate_approval(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_some_and(|db| {
        *db.code() == SqlState::UNIQUE_VIOLATION && db.table() == Some("approvals")
    })
}

/// The error of a refused `write`: the rules of `StateStore::commit` applied, in the
/// memory store's order (the revision, then each approval write), to the state read
/// now. When they find nothing wrong (the state changed since), a `Conflict` saying
/// `fallback`, or that the job changed concurrently.
pub(super) async fn explain_refusal(
    client: &Client,
    write: &Prepared,
    fallback: Option<&str>,
) -> StoreError {
    let name = write.name();
    let concurrently = || {
        StoreError::Conflict(match fallback {
            Some(why) => format!("job {name:?}: {why}"),
            None => format!("job {name:?} was changed concurrently"),
        })
    };
    let stored = match client
        .query_opt("SELECT revision FROM jobs WHERE name = $1", &[&name])
        .await
    {
        Ok(row) => row.and_then(|r| r.try_get::<_, i64>(0).ok()),
        Err(e) if write.doomed() => return StoreError::pg("read the job's revision")(e),
        Err(_) => return concurrently(),
    };
    let stored = stored.and_then(|r| u64::try_from(r).ok());
    if let Err(e) = george_core::store::next_revision(name, write.expected_revision(), stored) {
        return StoreError::Conflict(e.message().to_string());
    }
    if write.approvals.is_empty() {
        return concurrently();
    }
    let ids: Vec<&str> = write
        .approvals
        .iter()
        .map(|(id, _, _)| id.as_str())
        .collect();
    let statuses: HashMap<String, String> = match client
        .query(
            "SELECT id, status FROM approvals WHERE id = ANY($1)",
            &[&ids],
        )
        .await
    {
        Ok(rows) => rows
            .iter()
            .filter_map(|r| Some((r.try_get(0).ok()?, r.try_get(1).ok()?)))
            .collect(),
        Err(e) if write.doomed() => return StoreError::pg("read approval statuses")(e),
        Err(_) => return concurrently(),
    };
    let checked = george_core::store::check_approval_writes(
        write
            .approvals
            .iter()
            .map(|(id, op, status)| (id.as_str(), *op, *status)),
        |id, _| Ok(statuses.get(id).cloned()),
    );
    match checked {
        Err(e) => e,
        Ok(()) => concurrently(),
    }
}
