//! The crate's private error, converted into [`george_core::Error`] at the trait boundary.

use george_core::{Error, ErrorKind, RetryStatus};
use rusqlite::ErrorCode;

/// What can go wrong inside a backend, before it becomes a [`george_core::Error`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// The write lost an optimistic-concurrency check, or the operation does not fit
    /// the stored state.
    #[error("{0}")]
    Conflict(String),
    /// A rule of the `StateStore` contract refused the write; its kind (`Conflict`,
    /// `InvalidInput`) is kept.
    #[error("{}", .0.message())]
    Refused(Error),
    /// What the operation names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// SQLite reported an error.
    #[error("SQLite: {context}")]
    Sqlite {
        context: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    /// A stored record is not valid JSON of the expected shape.
    #[error("stored {what} is not valid")]
    CorruptRecord {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// A value to write could not be encoded.
    #[error("cannot encode {what}")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// A number does not fit SQLite's signed 64-bit integers.
    #[error("{what} {value} is out of range for SQLite")]
    OutOfRange { what: &'static str, value: u128 },
    /// A stored number is negative where it never should be.
    #[error("stored {what} {value} is negative")]
    Negative { what: &'static str, value: i64 },
    /// The database was written by a newer version of this crate.
    #[error(
        "database schema version {found} is newer than this george-store supports ({supported})"
    )]
    SchemaTooNew { found: i64, supported: i64 },
    /// The writer thread has stopped (it panicked, or the store is shutting down).
    #[error("the SQLite writer thread has stopped")]
    WriterGone,
    /// The writer thread could not be started.
    #[error("cannot start the SQLite writer thread")]
    SpawnWriter(#[source] std::io::Error),
    /// A blocking read task did not complete.
    #[error("a blocking SQLite read task failed")]
    ReadTask(#[source] tokio::task::JoinError),
    /// The whole batch this write was part of was rolled back.
    #[error("the write's transaction was rolled back: {0}")]
    BatchAborted(String),
    /// PostgreSQL (or the connection to it) reported an error.
    #[cfg(feature = "postgres")]
    #[error("PostgreSQL: {context}: {}", crate::postgres::describe(.source))]
    Postgres {
        context: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
    /// No pooled PostgreSQL connection could be had.
    #[cfg(feature = "postgres")]
    #[error("PostgreSQL: {context}: {}", crate::postgres::describe_pool(.source))]
    Pool {
        context: &'static str,
        #[source]
        source: deadpool_postgres::PoolError,
    },
    /// The PostgreSQL configuration is not usable (a bad URL or schema name).
    #[cfg(feature = "postgres")]
    #[error("invalid PostgreSQL configuration: {0}")]
    PgConfig(String),
}

impl StoreError {
    /// A closure that wraps a rusqlite error with `context`, for `map_err`.
    pub(crate) fn sqlite(context: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
        move |source| StoreError::Sqlite { context, source }
    }

    /// A closure that wraps a tokio-postgres error with `context`, for `map_err`.
    #[cfg(feature = "postgres")]
    pub(crate) fn pg(context: &'static str) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
        move |source| StoreError::Postgres { context, source }
    }

    /// A closure that wraps a pool error with `context`, for `map_err`.
    #[cfg(feature = "postgres")]
    pub(crate) fn pool(
        context: &'static str,
    ) -> impl FnOnce(deadpool_postgres::PoolError) -> StoreError {
        move |source| StoreError::Pool { context, source }
    }
}

/// Whether a SQLite error may go away on retry (locks, I/O hiccups, a full disk).
fn sqlite_is_transient(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(
            ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::SystemIoFailure
                | ErrorCode::DiskFull
                | ErrorCode::OutOfMemory,
        )
    )
}

impl From<Error> for StoreError {
    /// A refusal by one of core's store rules (`Conflict`, `InvalidInput`), kind kept.
    fn from(e: Error) -> Self {
        StoreError::Refused(e)
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        let message = e.to_string();
        match e {
            StoreError::Conflict(_) => Error::conflict(message),
            StoreError::Refused(e) => e,
            StoreError::NotFound(_) => Error::not_found(message),
            StoreError::Sqlite { source, .. } => {
                let retry = if sqlite_is_transient(&source) {
                    RetryStatus::Transient { after: None }
                } else {
                    RetryStatus::Never
                };
                Error::new(ErrorKind::Backend, message)
                    .with_retry(retry)
                    .with_source(source)
            }
            StoreError::CorruptRecord { source, .. } => {
                Error::backend(message).terminal().with_source(source)
            }
            StoreError::Encode { source, .. } => Error::invalid_input(message).with_source(source),
            StoreError::OutOfRange { .. } => Error::invalid_input(message),
            StoreError::Negative { .. } | StoreError::SchemaTooNew { .. } => {
                Error::backend(message).terminal()
            }
            StoreError::WriterGone => Error::backend(message).terminal(),
            StoreError::ReadTask(source) => Error::backend(message).with_source(source),
            StoreError::SpawnWriter(source) => Error::backend(message).with_source(source),
            StoreError::BatchAborted(_) => Error::backend(message).transient(),
            #[cfg(feature = "postgres")]
            StoreError::Postgres { source, .. } => {
                let (kind, retry) = crate::postgres::classify(&source);
                Error::new(kind, message)
                    .with_retry(retry)
                    .with_source(source)
            }
            #[cfg(feature = "postgres")]
            StoreError::Pool { source, .. } => {
                let (kind, retry) = crate::postgres::classify_pool(&source);
                Error::new(kind, message)
                    .with_retry(retry)
                    .with_source(source)
            }
            #[cfg(feature = "postgres")]
            StoreError::PgConfig(_) => Error::invalid_input(message),
        }
    }
}

/// `u64` → SQLite `INTEGER`.
pub(crate) fn to_i64(what: &'static str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange {
        what,
        value: value.into(),
    })
}

/// `u64` → `i64`, saturating: for times compared, never read back as data.
pub(crate) fn clamp_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// SQLite `INTEGER` → `u64`.
pub(crate) fn to_u64(what: &'static str, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Negative { what, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_is_transient_constraint_is_not() {
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        let e: Error = StoreError::sqlite("commit")(busy).into();
        assert_eq!(e.kind(), ErrorKind::Backend);
        assert!(e.is_retryable());

        let constraint = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT),
            None,
        );
        let e: Error = StoreError::sqlite("commit")(constraint).into();
        assert!(!e.is_retryable());

        let e: Error = StoreError::Conflict("stale".into()).into();
        assert_eq!(e.kind(), ErrorKind::Conflict);
    }
}
