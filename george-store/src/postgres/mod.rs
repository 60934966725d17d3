//! [`PgStateStore`]: the [`StateStore`] for several engines sharing one PostgreSQL
//! database (feature `postgres`).
//!
//! ```no_run
//! use george_core::state::NewEvent;
//! use george_core::store::{JobWrite, StateStore};
//! use george_store::{PgConfig, PgStateStore};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = PgStateStore::connect_with(
//!     PgConfig::new("postgres://george@db.internal:5432/george").with_schema("george"),
//! )
//! .await?;
//!
//! let job = george_core::conformance::state_store::sample_job("hello");
//! let revision = store
//!     .commit(JobWrite::create(job).event(NewEvent::new(1, "engine", "job.created", None, "")))
//!     .await?;
//! assert_eq!(revision, 1);
//! assert_eq!(store.get_job("hello").await?.map(|j| j.revision), Some(1));
//! # Ok(())
//! # }
//! ```
//!
//! # Tables
//!
//! In the configured schema ([`PgConfig::schema`], created when missing):
//! `jobs` (name, revision, status, updated_at_ms, wake_at_ms, claimed_by, last_seq, and
//! the record), `events` (job, seq), `approvals` (id, with an index on status),
//! `transcripts` (job, step, attempt: apart from the job rows, so reading a job never
//! loads them), `meta`, and `george_schema_migrations`. Times are `BIGINT`
//! milliseconds since the Unix epoch; wake-up times beyond `i64::MAX` are clamped
//! (they only order claims), other numbers beyond it are refused as invalid input.
//!
//! Records (jobs, approvals, transcripts) are JSON in `text` columns, not `jsonb`:
//! the store never queries inside them; `text` keeps the exact bytes serde wrote
//! (`u64` numbers such as `spec_hash`, key order), costs the server no parsing on
//! write nor re-serialization on read, and accepts every string serde can write,
//! where `jsonb` refuses `\u0000`.

mod batch;
mod claim;
mod config;
mod connect;
mod connstr;
mod errors;
mod read;
mod refusal;
mod schema;
mod sslmode;
mod tls;
mod tls_config;
mod write;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::Pool;
use george_core::Result;
use george_core::provider::Message;
use george_core::state::{ApprovalRequest, Event, JobRecord};
use george_core::store::{Claim, Compaction, JobWrite, StateStore, TranscriptKey};

pub use config::PgConfig;
pub(crate) use errors::{classify, classify_pool, describe, describe_pool};
pub use sslmode::PgSslMode;

use crate::error::StoreError;
use write::Prepared;

/// A [`StateStore`] in a PostgreSQL database, shared by any number of engines.
///
/// - **Atomic and durable**: each commit is one SQL statement (run alone, or in a
///   batch's transaction); it returns `Ok` once PostgreSQL has committed it, with
///   `synchronous_commit` on (a connection whose default is `off` turns it on).
/// - **Optimistic concurrency**: an update names the revision it read
///   (`UPDATE ... WHERE name = $1 AND revision = $2`), a create inserts with
///   `ON CONFLICT DO NOTHING`; a lost race is a `Conflict` and stores nothing of the
///   write. Approval requests are never replaced: an insert is refused when the id is
///   stored (a plain `INSERT`, so a concurrent one fails on the primary key rather than
///   overwrite), an update locks the request (`FOR UPDATE`) and is refused unless it is
///   still open. Event sequence numbers come from the job row (`last_seq`), which
///   the revision check serializes, so they have no gaps.
/// - **Claims**: [`claim_due`](StateStore::claim_due) uses `FOR UPDATE SKIP LOCKED`,
///   so engines claiming at once get disjoint sets of jobs without waiting for each
///   other.
/// - **Group commit**: commits queued while earlier ones are in flight are sent
///   together, pipelined on one connection as one transaction (one round trip, one WAL
///   flush), each still checked on its own ([`PgConfig::max_batch`], default 32; a
///   write that fails with an error makes the batch re-run one write at a time).
///   PostgreSQL already shares a WAL flush among concurrently committing transactions,
///   so with `max_batch = 1` a pool of several connections gives group commit too;
///   measured on a 2-core machine (`tests/pg_throughput.rs`, each writer updating its
///   own job with one event), both reach about 6,000-8,000 commits/s with 8 writers,
///   and batching is faster with 64 writers (about 10,000-12,000 against
///   6,000-8,000 commits/s), and with 8 writers when fsyncs are slow.
/// - **Few round trips**: statements are prepared once per connection and cached;
///   JSON is encoded before a connection is taken; events, approvals and transcripts
///   travel as arrays (`unnest`) in the commit's one statement.
/// - **Migrations**: versioned, append-only, recorded in `george_schema_migrations`,
///   applied in one transaction under `pg_advisory_xact_lock` when a store connects,
///   so engines starting together do not race; a schema written by a newer version is
///   refused.
///
/// - **TLS** with rustls, as libpq's `sslmode` says (default `prefer`; `verify-full`
///   with `sslrootcert` authenticates the server; see [`PgConfig#tls`](PgConfig#tls)).
///
/// A Tokio runtime (with I/O and time drivers) is required. Clones share the pool.
#[derive(Clone)]
pub struct PgStateStore {
    pool: Pool,
    /// `None` when `max_batch` is 1.
    batcher: Option<Arc<batch::Batcher>>,
    config: Arc<PgConfig>,
}

impl fmt::Debug for PgStateStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.pool.status();
        f.debug_struct("PgStateStore")
            .field("config", &self.config)
            .field("connections", &status.size)
            .field("idle", &status.available)
            .finish()
    }
}

impl PgStateStore {
    /// Connects to the database at `url` (see [`PgConfig::url`]) with the default
    /// [`PgConfig`] (schema `george`), creating and migrating the schema if needed.
    ///
    /// # Errors
    /// `InvalidInput` for a malformed URL or TLS setting (an unknown `sslmode`, a
    /// `verify-*` mode without `sslrootcert`, an unreadable root certificate file);
    /// `Backend` (transient) when the server cannot be reached; `Backend` (terminal)
    /// when TLS fails as the mode demands it (the server refuses TLS, its certificate
    /// is not signed by a CA of `sslrootcert` or does not name the host: the message
    /// names the mode and the cause); `Unauthenticated` when it refuses the
    /// credentials; `Backend` (terminal) when the schema was written by a newer version
    /// of this crate.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(PgConfig::new(url)).await
    }

    /// Connects as `config` says, creating and migrating the schema if needed.
    ///
    /// # Errors
    /// As [`connect`](Self::connect), plus `InvalidInput` for a bad schema name.
    pub async fn connect_with(config: PgConfig) -> Result<Self> {
        let quoted = config.quoted_schema()?;
        let pool = config.pool()?;
        let found = schema::migrate(&pool, &config.schema, &quoted).await?;
        tracing::debug!(
            schema = %config.schema,
            schema_version = found,
            "connected PostgreSQL state store"
        );
        let batcher = (config.max_batch > 1)
            .then(|| Arc::new(batch::Batcher::spawn(pool.clone(), config.max_batch)));
        Ok(PgStateStore {
            pool,
            batcher,
            config: Arc::new(config),
        })
    }

    /// The configuration the store was connected with.
    pub fn config(&self) -> &PgConfig {
        &self.config
    }

    /// The schema holding the tables.
    pub fn schema(&self) -> &str {
        &self.config.schema
    }
}

#[async_trait]
impl StateStore for PgStateStore {
    async fn get_job(&self, name: &str) -> Result<Option<JobRecord>> {
        Ok(read::get_job(&self.pool, name).await?)
    }

    async fn list_jobs(&self) -> Result<Vec<JobRecord>> {
        Ok(read::list_jobs(&self.pool).await?)
    }

    async fn commit(&self, write: JobWrite) -> Result<u64> {
        let prepared = Prepared::encode(write)?;
        match &self.batcher {
            Some(batcher) if !prepared.doomed() => Ok(batcher.commit(prepared).await?),
            _ => Ok(write::commit(&self.pool, &prepared).await?),
        }
    }

    async fn events(&self, job: &str, after_seq: u64, limit: usize) -> Result<Vec<Event>> {
        Ok(read::events(&self.pool, job, after_seq, limit).await?)
    }

    async fn transcript(&self, key: &TranscriptKey) -> Result<Option<Vec<Message>>> {
        Ok(read::transcript(&self.pool, key).await?)
    }

    async fn approval(&self, id: &str) -> Result<Option<ApprovalRequest>> {
        Ok(read::approval(&self.pool, id).await?)
    }

    async fn approvals(&self, open_only: bool) -> Result<Vec<ApprovalRequest>> {
        Ok(read::approvals(&self.pool, open_only).await?)
    }

    async fn get_meta(&self, key: &str) -> Result<Option<String>> {
        Ok(read::get_meta(&self.pool, key).await?)
    }

    async fn put_meta(&self, key: &str, value: &str) -> Result<()> {
        Ok(write::put_meta(&self.pool, key, value).await?)
    }

    async fn claim_due(&self, claim: &Claim) -> Result<Vec<JobRecord>> {
        let rows = claim::claim_due(&self.pool, claim).await?;
        let jobs = rows
            .into_iter()
            .map(read::decode_job)
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(jobs)
    }

    async fn compact(&self, job: &str) -> Result<Compaction> {
        Ok(claim::compact(&self.pool, job).await?)
    }
}
