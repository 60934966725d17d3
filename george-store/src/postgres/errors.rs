//! How PostgreSQL errors become [`george_core::Error`] kinds and retry statuses.

use george_core::{ErrorKind, RetryStatus};
use tokio_postgres::error::SqlState;

const TRANSIENT: RetryStatus = RetryStatus::Transient { after: None };

/// The text of a PostgreSQL error for messages: the server's message and SQLSTATE
/// when there is one (tokio-postgres's own `Display` says only "db error"), else the
/// client-side error and its cause.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} (SQLSTATE {})", db.message(), db.code().code());
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// The text of a pool error: the PostgreSQL error's text when there is one
/// (deadpool's `Display` shows only tokio-postgres's terse one).
pub(crate) fn describe_pool(e: &deadpool_postgres::PoolError) -> String {
    use deadpool_postgres::{HookError, PoolError};
    match e {
        PoolError::Backend(e) => format!("cannot open a connection: {}", describe(e)),
        PoolError::PostCreateHook(HookError::Backend(e)) => {
            format!("cannot set up a new connection: {}", describe(e))
        }
        other => other.to_string(),
    }
}

/// The kind and retry status of an error from a query or a connection.
///
/// Transient (a retry may succeed): serialization failures and deadlocks (class 40),
/// lost or refused connections (class 08, `57P01`-`57P03`, no SQLSTATE but a closed
/// connection, an I/O error or a TLS handshake cut short), exhausted resources
/// (class 53), lock and statement timeouts (`55P03`, `57014`), system I/O errors
/// (class 58), and a read-only server (`25006`, a standby during a failover).
/// Terminal: constraint violations (class 23), bad data (class 22, e.g. a NUL
/// character in text, reported as `InvalidInput`), refused credentials (class 28,
/// `Unauthenticated`), missing privileges (`42501`, `PermissionDenied`), TLS refused by
/// the server or a certificate refused by the client, and everything else.
pub(crate) fn classify(e: &tokio_postgres::Error) -> (ErrorKind, RetryStatus) {
    let Some(code) = e.code() else {
        let io = std::error::Error::source(e).is_some_and(|s| {
            s.is::<std::io::Error>()
                || s.downcast_ref::<super::tls::TlsError>()
                    .is_some_and(super::tls::TlsError::is_transient)
        });
        // tokio-postgres's connect timeout has no cause and no public kind.
        let timeout = e.to_string().starts_with("timeout");
        return if e.is_closed() || io || timeout {
            (ErrorKind::Backend, TRANSIENT)
        } else {
            (ErrorKind::Backend, RetryStatus::Never)
        };
    };
    let class = &code.code()[..2];
    if *code == SqlState::INSUFFICIENT_PRIVILEGE {
        return (ErrorKind::PermissionDenied, RetryStatus::Never);
    }
    match class {
        "08" | "40" | "53" | "58" => (ErrorKind::Backend, TRANSIENT),
        "22" => (ErrorKind::InvalidInput, RetryStatus::Never),
        "28" => (ErrorKind::Unauthenticated, RetryStatus::Never),
        _ if [
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::QUERY_CANCELED,
            SqlState::LOCK_NOT_AVAILABLE,
            SqlState::READ_ONLY_SQL_TRANSACTION,
        ]
        .contains(code) =>
        {
            (ErrorKind::Backend, TRANSIENT)
        }
        _ => (ErrorKind::Backend, RetryStatus::Never),
    }
}

/// The kind and retry status of a failure to get a pooled connection.
pub(crate) fn classify_pool(e: &deadpool_postgres::PoolError) -> (ErrorKind, RetryStatus) {
    use deadpool_postgres::{HookError, PoolError};
    match e {
        PoolError::Timeout(_) => (ErrorKind::Timeout, TRANSIENT),
        PoolError::Backend(e) | PoolError::PostCreateHook(HookError::Backend(e)) => classify(e),
        PoolError::PostCreateHook(HookError::Message(_)) => (ErrorKind::Backend, TRANSIENT),
        PoolError::Closed | PoolError::NoRuntimeSpecified => {
            (ErrorKind::Backend, RetryStatus::Never)
        }
    }
}
