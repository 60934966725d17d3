//! [`SqliteStateStore`]: the embedded, durable [`StateStore`].

mod commit;
mod config;
mod read;
mod schema;
mod writer;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use george_core::Result;
use george_core::provider::Message;
use george_core::state::{ApprovalRequest, Event, JobRecord};
use george_core::store::{Claim, Compaction, JobWrite, StateStore, TranscriptKey};

pub use config::{SqliteConfig, Synchronous};

use crate::error::StoreError;
use read::Readers;
use writer::Writer;

/// A [`StateStore`] in one SQLite file.
///
/// - **Durable**: WAL mode with `synchronous = FULL` by default, so a `commit` that
///   returned `Ok` survives a crash or a power loss.
/// - **Off the runtime**: one writer thread owns the write connection; reads run on
///   Tokio's blocking pool with their own connections, so they never wait for writes.
///   A Tokio runtime is required.
/// - **Group commit**: writes queued while the writer is busy are applied in one
///   transaction (one fsync), each in its own savepoint and checked on its own, so a
///   `Conflict` in one does not affect the others ([`SqliteConfig::max_batch`]).
/// - **Migrations**: the schema is versioned (`PRAGMA user_version`) and brought up to
///   date in one transaction when the store opens.
///
/// Clones share the connections. The writer thread stops, after finishing what is
/// queued, when the last clone is dropped.
///
/// One process should own the file: several processes can open it (SQLite locks
/// serialize their writes, and `busy_timeout_ms` bounds the wait), but for many
/// engines sharing state use the PostgreSQL backend.
#[derive(Debug, Clone)]
pub struct SqliteStateStore {
    writer: Arc<Writer>,
    readers: Arc<Readers>,
    config: Arc<SqliteConfig>,
}

impl SqliteStateStore {
    /// Opens (creating if needed) the database at `path` with the default
    /// [`SqliteConfig`].
    ///
    /// # Errors
    /// `Backend` when the file cannot be opened or migrated (including a schema newer
    /// than this crate knows).
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(SqliteConfig::new(path.as_ref())).await
    }

    /// Opens (creating if needed) the database described by `config`.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub async fn open_with(config: SqliteConfig) -> Result<Self> {
        let opened = tokio::task::spawn_blocking(move || Self::open_blocking(config))
            .await
            .map_err(StoreError::ReadTask)?;
        Ok(opened?)
    }

    fn open_blocking(config: SqliteConfig) -> Result<Self, StoreError> {
        let mut conn = config.open_writer()?;
        let found = schema::migrate(&mut conn)?;
        tracing::debug!(
            path = %config.path.display(),
            schema_version = found,
            "opened SQLite state store"
        );
        let writer = Writer::spawn(conn, config.max_batch).map_err(StoreError::SpawnWriter)?;
        Ok(SqliteStateStore {
            writer: Arc::new(writer),
            readers: Arc::new(Readers::new(config.clone())),
            config: Arc::new(config),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.config.path
    }

    /// The configuration the store was opened with.
    pub fn config(&self) -> &SqliteConfig {
        &self.config
    }
}

#[async_trait]
impl StateStore for SqliteStateStore {
    async fn get_job(&self, name: &str) -> Result<Option<JobRecord>> {
        let name = name.to_string();
        Ok(self.readers.run(move |c| read::get_job(c, &name)).await?)
    }

    async fn list_jobs(&self) -> Result<Vec<JobRecord>> {
        Ok(self.readers.run(read::list_jobs).await?)
    }

    async fn commit(&self, write: JobWrite) -> Result<u64> {
        Ok(self.writer.commit(write).await?)
    }

    async fn events(&self, job: &str, after_seq: u64, limit: usize) -> Result<Vec<Event>> {
        let job = job.to_string();
        Ok(self
            .readers
            .run(move |c| read::events(c, &job, after_seq, limit))
            .await?)
    }

    async fn transcript(&self, key: &TranscriptKey) -> Result<Option<Vec<Message>>> {
        let key = key.clone();
        Ok(self.readers.run(move |c| read::transcript(c, &key)).await?)
    }

    async fn approval(&self, id: &str) -> Result<Option<ApprovalRequest>> {
        let id = id.to_string();
        Ok(self.readers.run(move |c| read::approval(c, &id)).await?)
    }

    async fn approvals(&self, open_only: bool) -> Result<Vec<ApprovalRequest>> {
        Ok(self
            .readers
            .run(move |c| read::approvals(c, open_only))
            .await?)
    }

    async fn get_meta(&self, key: &str) -> Result<Option<String>> {
        let key = key.to_string();
        Ok(self.readers.run(move |c| read::get_meta(c, &key)).await?)
    }

    async fn put_meta(&self, key: &str, value: &str) -> Result<()> {
        Ok(self
            .writer
            .put_meta(key.to_string(), value.to_string())
            .await?)
    }

    async fn claim_due(&self, claim: &Claim) -> Result<Vec<JobRecord>> {
        let rows = self.writer.claim(claim.clone()).await?;
        let jobs = tokio::task::spawn_blocking(move || {
            rows.into_iter()
                .map(read::decode_job)
                .collect::<Result<Vec<_>, StoreError>>()
        })
        .await
        .map_err(StoreError::ReadTask)??;
        Ok(jobs)
    }

    async fn compact(&self, job: &str) -> Result<Compaction> {
        Ok(self.writer.compact(job.to_string()).await?)
    }
}
