//! Versioned migrations, applied in one transaction when a store opens.
//!
//! The schema version is SQLite's `PRAGMA user_version`. Migration `i` (0-based) takes
//! the database from version `i` to `i + 1`. Migrations are append-only: never edit
//! one that has shipped; add the next.

use rusqlite::{Connection, TransactionBehavior};

use crate::error::StoreError;

/// The migrations, in order. A migration whose SQL is followed by a Rust step in
/// [`after_sql`] gets it run in the same transaction.
const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    r#"
    -- One row per job. `record` is the JobRecord as JSON (its `revision` field is
    -- authoritative in the `revision` column); `status` and `updated_at_ms` are copies
    -- for queries. `last_seq` is the sequence number of the job's last event.
    CREATE TABLE jobs (
        name          TEXT    NOT NULL PRIMARY KEY,
        revision      INTEGER NOT NULL,
        status        TEXT    NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        last_seq      INTEGER NOT NULL DEFAULT 0,
        record        TEXT    NOT NULL
    ) WITHOUT ROWID;

    -- The append-only audit log, per job.
    CREATE TABLE events (
        job    TEXT    NOT NULL,
        seq    INTEGER NOT NULL,
        at_ms  INTEGER NOT NULL,
        actor  TEXT    NOT NULL,
        action TEXT    NOT NULL,
        step   TEXT,
        detail TEXT    NOT NULL,
        PRIMARY KEY (job, seq)
    ) WITHOUT ROWID;

    -- Approval requests; `record` is the ApprovalRequest as JSON, `status` its state's name.
    CREATE TABLE approvals (
        id     TEXT NOT NULL PRIMARY KEY,
        job    TEXT NOT NULL,
        status TEXT NOT NULL,
        record TEXT NOT NULL
    );
    CREATE INDEX approvals_by_status ON approvals (status, id);
    CREATE INDEX approvals_by_job ON approvals (job);

    -- Transcripts, possibly large: kept apart from the job rows.
    CREATE TABLE transcripts (
        job      TEXT    NOT NULL,
        step     TEXT    NOT NULL,
        attempt  INTEGER NOT NULL,
        messages TEXT    NOT NULL,
        PRIMARY KEY (job, step, attempt)
    );

    -- Small engine-level values.
    CREATE TABLE meta (
        key   TEXT NOT NULL PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 2: wake-up times and claims (several engines on one file).
    r#"
    -- `wake_at_ms`: when the job next needs a reconciler (JobRecord::wake_at_ms), or
    -- later while a claim hides it; NULL: only an outside event moves it.
    -- `claimed_by`: the engine of the last claim, for operators.
    ALTER TABLE jobs ADD COLUMN wake_at_ms INTEGER;
    ALTER TABLE jobs ADD COLUMN claimed_by TEXT;
    CREATE INDEX jobs_by_wake ON jobs (wake_at_ms) WHERE wake_at_ms IS NOT NULL;
    "#,
];

/// Rust steps of migrations, run after migration `version`'s SQL.
fn after_sql(tx: &Connection, version: usize) -> Result<(), StoreError> {
    if version == 2 {
        // Backfill the wake-up times of the jobs written before version 2.
        let rows: Vec<(String, String)> = tx
            .prepare("SELECT name, record FROM jobs")
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<_>>()
            })
            .map_err(StoreError::sqlite("read jobs to backfill"))?;
        for (name, record) in rows {
            let job: george_core::state::JobRecord =
                serde_json::from_str(&record).map_err(|source| StoreError::CorruptRecord {
                    what: "job record",
                    source,
                })?;
            let wake = job.wake_at_ms().map(crate::error::clamp_i64);
            tx.execute(
                "UPDATE jobs SET wake_at_ms = ?1 WHERE name = ?2",
                rusqlite::params![wake, name],
            )
            .map_err(StoreError::sqlite("backfill wake-up time"))?;
        }
    }
    Ok(())
}

/// The schema version this crate writes.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database up to [`SCHEMA_VERSION`]; a no-op when it is there already.
///
/// Runs in one `IMMEDIATE` transaction, so two processes opening the same new file
/// do not both migrate it. Returns the version found before migrating.
pub(crate) fn migrate(conn: &mut Connection) -> Result<i64, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(StoreError::sqlite("begin migration"))?;
    let found: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(StoreError::sqlite("read schema version"))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    // `found` is in 0..=SCHEMA_VERSION here, so the cast cannot wrap.
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tracing::info!(version = i + 1, "applying george-store SQLite migration");
        tx.execute_batch(sql)
            .map_err(StoreError::sqlite("apply migration"))?;
        after_sql(&tx, i + 1)?;
    }
    if found < SCHEMA_VERSION {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(StoreError::sqlite("set schema version"))?;
    }
    tx.commit()
        .map_err(StoreError::sqlite("commit migration"))?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrate_is_idempotent() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), 0);
        assert_eq!(migrate(&mut conn).unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn version_2_backfills_wake_up_times() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        let mut job: george_core::state::JobRecord = serde_json::from_value(serde_json::json!({
            "name": "j", "generation": 1, "spec_hash": 1, "commit": "c", "path": "jobs/j.yaml",
            "template": "t", "status": "running", "steps": [
                {"id": "a", "state": "deferred", "until_ms": 5000, "attempt": 1}
            ], "revision": 1, "created_at_ms": 1, "updated_at_ms": 2
        }))
        .unwrap();
        job.revision = 1;
        conn.execute(
            "INSERT INTO jobs (name, revision, status, updated_at_ms, record) VALUES ('j', 1, 'Running', 2, ?1)",
            [serde_json::to_string(&job).unwrap()],
        )
        .unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), 1);
        let wake: Option<i64> = conn
            .query_row("SELECT wake_at_ms FROM jobs WHERE name = 'j'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(wake, Some(5000));
    }

    #[test]
    fn newer_schema_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        assert!(matches!(
            migrate(&mut conn),
            Err(StoreError::SchemaTooNew { .. })
        ));
    }
}
