//! Versioned migrations, applied in one transaction when a store connects.
//!
//! The applied versions are rows of `george_schema_migrations` in the store's schema.
//! Migration `i` (0-based) takes the schema from version `i` to `i + 1`. Migrations
//! are append-only: never edit one that has shipped; add the next.
//!
//! Several engines may connect to a fresh database at once: each migrates inside one
//! transaction holding a transaction-level advisory lock keyed by the schema name
//! (`pg_advisory_xact_lock`), so one applies the migrations and the others, once it
//! has committed, find them applied. The lock is released at commit or rollback, also
//! when the connection dies.

use deadpool_postgres::Pool;

use crate::error::StoreError;

/// The migrations, in order: (description, SQL).
const MIGRATIONS: &[(&str, &str)] = &[(
    "initial schema",
    r#"
    -- One row per job. `record` is the JobRecord as JSON text (its `revision` field is
    -- authoritative in the `revision` column); `status` (JobStatus::name) and
    -- `updated_at_ms` are copies for queries. `last_seq` is the sequence number of the
    -- job's last event. `wake_at_ms`: when the job next needs a reconciler
    -- (JobRecord::wake_at_ms), or later while a claim hides it; NULL: only an outside
    -- event moves it. `claimed_by`: the engine of the last claim, for operators.
    -- Keys use the "C" collation: byte order, as the StateStore contract lists them.
    CREATE TABLE jobs (
        name          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        revision      BIGINT NOT NULL,
        status        TEXT   NOT NULL,
        updated_at_ms BIGINT NOT NULL,
        wake_at_ms    BIGINT,
        claimed_by    TEXT,
        last_seq      BIGINT NOT NULL DEFAULT 0,
        record        TEXT   NOT NULL
    );
    CREATE INDEX jobs_by_wake ON jobs (wake_at_ms, name) WHERE wake_at_ms IS NOT NULL;

    -- The append-only audit log, per job.
    CREATE TABLE events (
        job    TEXT COLLATE "C" NOT NULL,
        seq    BIGINT NOT NULL,
        at_ms  BIGINT NOT NULL,
        actor  TEXT   NOT NULL,
        action TEXT   NOT NULL,
        step   TEXT,
        detail TEXT   NOT NULL,
        PRIMARY KEY (job, seq)
    );

    -- Approval requests; `record` is the ApprovalRequest as JSON, `status` its state's name.
    CREATE TABLE approvals (
        id     TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        job    TEXT COLLATE "C" NOT NULL,
        status TEXT NOT NULL,
        record TEXT NOT NULL
    );
    CREATE INDEX approvals_by_status ON approvals (status, id);
    CREATE INDEX approvals_by_job ON approvals (job);

    -- Transcripts, possibly large: kept apart from the job rows (and TOASTed).
    CREATE TABLE transcripts (
        job      TEXT COLLATE "C" NOT NULL,
        step     TEXT COLLATE "C" NOT NULL,
        attempt  BIGINT NOT NULL,
        messages TEXT   NOT NULL,
        PRIMARY KEY (job, step, attempt)
    );

    -- Small engine-level values.
    CREATE TABLE meta (
        key   TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        value TEXT NOT NULL
    );
    "#,
)];

/// The schema version this crate writes.
pub(crate) const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// The advisory lock key of `schema`'s migrations: FNV-1a of a fixed prefix and the
/// name, so that every version of this crate computes the same key, and migrations of
/// different schemas do not wait for each other.
fn lock_key(schema: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in "george-store/migrate/".bytes().chain(schema.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    i64::from_le_bytes(h.to_le_bytes())
}

/// Creates the schema if missing and brings it up to [`SCHEMA_VERSION`]; a no-op when
/// it is there already. Returns the version found before migrating.
///
/// `quoted_schema` is the schema name, already checked and quoted.
pub(crate) async fn migrate(
    pool: &Pool,
    schema: &str,
    quoted_schema: &str,
) -> Result<i32, StoreError> {
    let mut client = pool.get().await.map_err(StoreError::pool("connect"))?;
    let tx = client
        .transaction()
        .await
        .map_err(StoreError::pg("begin migration"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock_key(schema)])
        .await
        .map_err(StoreError::pg("take the migration lock"))?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {quoted_schema};
         SET LOCAL search_path TO {quoted_schema};
         CREATE TABLE IF NOT EXISTS george_schema_migrations (
             version     INTEGER NOT NULL PRIMARY KEY,
             description TEXT NOT NULL,
             applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
         );"
    ))
    .await
    .map_err(StoreError::pg("create the schema"))?;
    let found: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM george_schema_migrations",
            &[],
        )
        .await
        .and_then(|r| r.try_get(0))
        .map_err(StoreError::pg("read the schema version"))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found: found.into(),
            supported: SCHEMA_VERSION.into(),
        });
    }
    for (version, (description, sql)) in (1..).zip(MIGRATIONS).skip(found.max(0) as usize) {
        tracing::info!(
            version,
            schema,
            "applying george-store PostgreSQL migration"
        );
        tx.batch_execute(sql)
            .await
            .map_err(StoreError::pg("apply a migration"))?;
        tx.execute(
            "INSERT INTO george_schema_migrations (version, description) VALUES ($1, $2)",
            &[&version, description],
        )
        .await
        .map_err(StoreError::pg("record a migration"))?;
    }
    tx.commit()
        .await
        .map_err(StoreError::pg("commit the migrations"))?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_stable_and_per_schema() {
        // Changing this value breaks the mutual exclusion of mixed-version engines.
        assert_eq!(lock_key("george"), lock_key("george"));
        assert_ne!(lock_key("george"), lock_key("george2"));
        assert_eq!(lock_key("george"), -5_167_383_828_183_966_434);
    }
}
