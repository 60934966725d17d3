//! [`SqliteConfig`]: where the database lives and how hard it syncs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// SQLite's `PRAGMA synchronous`: how often it waits for the disk.
///
/// With the write-ahead log George uses, [`Full`](Synchronous::Full) (the default)
/// syncs the log at every commit, so a transaction is durable when `commit` returns,
/// even across a power loss. [`Normal`](Synchronous::Normal) is faster and still
/// consistent, but the last commits before a power loss (not a process crash) may
/// be lost: it breaks the `StateStore` durability contract, use it knowingly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Synchronous {
    /// Never wait for the disk (tests, scratch data).
    Off,
    /// Sync at checkpoints only; commits survive a process crash, not a power loss.
    Normal,
    /// Sync the log at every commit (the default).
    #[default]
    Full,
    /// `Full`, plus sync the directory after deleting a rollback journal.
    Extra,
}

impl Synchronous {
    /// The pragma's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Synchronous::Off => "OFF",
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
            Synchronous::Extra => "EXTRA",
        }
    }
}

/// How to open a [`SqliteStateStore`](super::SqliteStateStore).
///
/// Deserializable, so it can sit in a service's configuration file:
///
/// ```
/// # use george_store::{SqliteConfig, Synchronous};
/// let config: SqliteConfig = serde_json::from_str(r#"{"path": "state/george.db"}"#).unwrap();
/// assert_eq!(config.synchronous, Synchronous::Full);
/// let config = SqliteConfig::new("state/george.db").with_max_batch(1);
/// # let _ = config;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct SqliteConfig {
    /// The database file; created if missing. Its directory must exist.
    pub path: PathBuf,
    /// `PRAGMA synchronous` (default: [`Synchronous::Full`]).
    pub synchronous: Synchronous,
    /// How long a connection waits for a lock held by another process before failing
    /// with a transient error, in milliseconds (default: 5000).
    pub busy_timeout_ms: u64,
    /// The most commits the writer groups into one transaction (group commit; default:
    /// 64). Each is checked on its own; 1 turns grouping off.
    pub max_batch: usize,
    /// The most idle read connections kept open (default: 4).
    pub max_idle_readers: usize,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        SqliteConfig {
            path: PathBuf::from("george.db"),
            synchronous: Synchronous::Full,
            busy_timeout_ms: 5000,
            max_batch: 64,
            max_idle_readers: 4,
        }
    }
}

impl SqliteConfig {
    /// The defaults, with the database at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SqliteConfig {
            path: path.into(),
            ..SqliteConfig::default()
        }
    }

    /// Sets `PRAGMA synchronous`.
    pub fn with_synchronous(mut self, synchronous: Synchronous) -> Self {
        self.synchronous = synchronous;
        self
    }

    /// Sets the busy timeout.
    pub fn with_busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// Sets the most commits grouped into one transaction (at least 1).
    pub fn with_max_batch(mut self, max_batch: usize) -> Self {
        self.max_batch = max_batch.max(1);
        self
    }

    /// Sets the most idle read connections kept open.
    pub fn with_max_idle_readers(mut self, n: usize) -> Self {
        self.max_idle_readers = n;
        self
    }

    fn busy_timeout(&self) -> Duration {
        Duration::from_millis(self.busy_timeout_ms)
    }

    /// Opens the writer's connection: WAL mode and the configured `synchronous`.
    pub(crate) fn open_writer(&self) -> Result<Connection, StoreError> {
        let conn = open(&self.path)?;
        conn.busy_timeout(self.busy_timeout())
            .map_err(StoreError::sqlite("set busy timeout"))?;
        // Switching a new file to WAL needs an exclusive lock, and SQLite answers BUSY
        // at once, without its busy handler, when another process opens the same new
        // file at the same moment: retry within the busy timeout.
        let deadline = std::time::Instant::now() + self.busy_timeout();
        let mode: String = loop {
            match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)) {
                Ok(mode) => break mode,
                Err(e)
                    if matches!(
                        e.sqlite_error_code(),
                        Some(
                            rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                        )
                    ) && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(5 + fastrand::u64(0..20)));
                }
                Err(e) => return Err(StoreError::sqlite("enable WAL")(e)),
            }
        };
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %self.path.display(), %mode, "SQLite did not switch to WAL mode");
        }
        conn.pragma_update(None, "synchronous", self.synchronous.as_str())
            .map_err(StoreError::sqlite("set synchronous"))?;
        Ok(conn)
    }

    /// Opens a read connection (`query_only`).
    pub(crate) fn open_reader(&self) -> Result<Connection, StoreError> {
        let conn = open(&self.path)?;
        conn.busy_timeout(self.busy_timeout())
            .map_err(StoreError::sqlite("set busy timeout"))?;
        conn.pragma_update(None, "query_only", true)
            .map_err(StoreError::sqlite("set query_only"))?;
        Ok(conn)
    }
}

fn open(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    Connection::open_with_flags(path, flags).map_err(StoreError::sqlite("open database"))
}
