//! [`PgConfig`]: which database, which schema, how many connections.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use deadpool_postgres::Pool;
use serde::{Deserialize, Serialize};

use super::PgSslMode;
use super::connstr::redact;
use crate::error::StoreError;

/// How to connect a [`PgStateStore`](super::PgStateStore).
///
/// Deserializable, so it can sit in a service's configuration file:
///
/// ```
/// # use george_store::PgConfig;
/// let config: PgConfig = serde_json::from_str(
///     r#"{"url": "postgres://george@db.internal/george", "schema": "george_prod"}"#,
/// ).unwrap();
/// assert_eq!(config.pool_size, 16);
/// let config = PgConfig::new("postgres://george@localhost/george")
///     .with_schema("george_staging")
///     .with_pool_size(32);
/// # let _ = config;
/// ```
///
/// Its `Debug` output hides the password of the URL; the password is also registered
/// with [`KnownSecrets::global`](george_core::secret::KnownSecrets::global) when a
/// store connects, so the engine redacts it from what it stores.
///
/// # TLS
///
/// Connections use TLS (rustls) as libpq's `sslmode` and `sslrootcert` say, read from
/// the connection string (`?sslmode=verify-full&sslrootcert=/etc/george/db-ca.pem`, or
/// `sslmode=verify-full sslrootcert=...`) or set with [`with_ssl_mode`] and
/// [`with_ssl_root_cert`], which win over the string. The default is libpq's
/// `prefer`: encrypted when the server offers TLS, but the server is not
/// authenticated; across an untrusted network use `verify-full` (see [`PgSslMode`]):
///
/// ```
/// # use george_store::{PgConfig, PgSslMode};
/// let config = PgConfig::new("postgres://george@db.internal/george")
///     .with_ssl_mode(PgSslMode::VerifyFull)
///     .with_ssl_root_cert("/etc/george/db-ca.pem");
/// # let _ = config;
/// ```
///
/// Unlike libpq, no `PGSSLMODE` / `PGSSLROOTCERT` variable and no default
/// `~/.postgresql/root.crt` are read: the certificates are the ones named.
/// `sslrootcert=system` uses the operating system's trusted CAs and requires
/// `verify-full` (as in libpq, where it is also the default mode then). Client
/// certificates (`sslcert`, `sslkey`) and revocation lists are not supported yet.
///
/// [`with_ssl_mode`]: PgConfig::with_ssl_mode
/// [`with_ssl_root_cert`]: PgConfig::with_ssl_root_cert
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct PgConfig {
    /// The connection string: a URL (`postgres://user:password@host:port/database`) or
    /// `key=value` pairs (`host=localhost user=george dbname=george`), as libpq and
    /// tokio-postgres read them, with libpq's `sslmode` and `sslrootcert` (see
    /// [TLS](PgConfig#tls)).
    pub url: String,
    /// The TLS mode; `None` (the default): the connection string's `sslmode`, else
    /// `prefer` (`verify-full` with `sslrootcert=system`).
    pub ssl_mode: Option<PgSslMode>,
    /// The PEM file of the CA certificates the server's certificate is checked
    /// against (`system`: the operating system's); `None` (the default): the
    /// connection string's `sslrootcert`, if any.
    pub ssl_root_cert: Option<PathBuf>,
    /// The schema holding George's tables (default: `george`); created when missing.
    /// Every connection sets `search_path` to it, so several deployments can share a
    /// database, one schema each. Lower-case ASCII letters, digits and `_`, not
    /// starting with a digit, at most 63 bytes.
    pub schema: String,
    /// The most connections the store opens (default: 16). Concurrent commits each use
    /// one, and PostgreSQL flushes the write-ahead log once for all the transactions
    /// committing together, so this also bounds group commit.
    pub pool_size: usize,
    /// How long opening one connection may take, in milliseconds (default: 5000).
    pub connect_timeout_ms: u64,
    /// How long an operation waits for a free pooled connection before failing with a
    /// transient `Timeout` error, in milliseconds (default: 30000).
    pub acquire_timeout_ms: u64,
    /// `application_name` of the connections, shown in `pg_stat_activity` (default:
    /// `george`), unless the connection string sets one.
    pub application_name: String,
    /// The most commits sent together in one transaction (group commit by batching;
    /// default: 32). Commits queue while earlier batches are in flight (two at a time)
    /// and the queued ones go together: one round trip and one WAL flush for all. Each
    /// is still checked on its own. 1 turns batching off: each commit then runs on its
    /// own pooled connection, and PostgreSQL's own group commit shares WAL flushes
    /// among concurrent ones.
    pub max_batch: usize,
}

impl Default for PgConfig {
    fn default() -> Self {
        PgConfig {
            url: "postgres://localhost/george".into(),
            ssl_mode: None,
            ssl_root_cert: None,
            schema: "george".into(),
            pool_size: 16,
            connect_timeout_ms: 5000,
            acquire_timeout_ms: 30_000,
            application_name: "george".into(),
            max_batch: 32,
        }
    }
}

impl fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgConfig")
            .field("url", &redact(&self.url))
            .field("ssl_mode", &self.ssl_mode)
            .field("ssl_root_cert", &self.ssl_root_cert)
            .field("schema", &self.schema)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("acquire_timeout_ms", &self.acquire_timeout_ms)
            .field("application_name", &self.application_name)
            .field("max_batch", &self.max_batch)
            .finish()
    }
}

impl PgConfig {
    /// The defaults, with the connection string `url`.
    pub fn new(url: impl Into<String>) -> Self {
        PgConfig {
            url: url.into(),
            ..PgConfig::default()
        }
    }

    /// Sets the TLS mode (over the connection string's `sslmode`).
    pub fn with_ssl_mode(mut self, mode: PgSslMode) -> Self {
        self.ssl_mode = Some(mode);
        self
    }

    /// Sets the PEM file of CA certificates the server's certificate is checked
    /// against (over the connection string's `sslrootcert`; `system` means the
    /// operating system's trusted CAs).
    pub fn with_ssl_root_cert(mut self, path: impl Into<PathBuf>) -> Self {
        self.ssl_root_cert = Some(path.into());
        self
    }

    /// Sets the schema holding the tables.
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Sets the most connections (at least 1).
    pub fn with_pool_size(mut self, pool_size: usize) -> Self {
        self.pool_size = pool_size.max(1);
        self
    }

    /// Sets how long opening one connection may take.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout_ms = millis(timeout);
        self
    }

    /// Sets how long an operation waits for a free pooled connection.
    pub fn with_acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout_ms = millis(timeout);
        self
    }

    /// Sets the most commits sent together in one transaction (at least 1; 1 turns
    /// batching off).
    pub fn with_max_batch(mut self, max_batch: usize) -> Self {
        self.max_batch = max_batch.max(1);
        self
    }

    /// Sets `application_name`.
    pub fn with_application_name(mut self, name: impl Into<String>) -> Self {
        self.application_name = name.into();
        self
    }

    /// Checks the schema name; returns it quoted for SQL.
    pub(crate) fn quoted_schema(&self) -> Result<String, StoreError> {
        let s = &self.schema;
        let valid = !s.is_empty()
            && s.len() <= 63
            && !s.starts_with(|c: char| c.is_ascii_digit())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return Err(StoreError::PgConfig(format!(
                "schema name {s:?}: use 1 to 63 lower-case ASCII letters, digits and '_', \
                 not starting with a digit"
            )));
        }
        Ok(format!("\"{s}\""))
    }

    /// Builds the connection pool. Opens no connection yet.
    pub(crate) fn pool(&self) -> Result<Pool, StoreError> {
        super::connect::pool(self)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_passwords() {
        for url in [
            "postgres://u:secret@h/db",
            "postgres://u@h/db?password=secret",
            "host=h password='secret words' user=u",
        ] {
            let shown = format!("{:?}", PgConfig::new(url).with_ssl_mode(PgSslMode::Require));
            assert!(!shown.contains("secret"), "{shown}");
            assert!(shown.contains("Require"), "{shown}");
        }
    }

    #[test]
    fn schema_names_are_checked() {
        let ok = PgConfig::default().with_schema("george_test_01");
        assert_eq!(ok.quoted_schema().unwrap(), "\"george_test_01\"");
        for bad in ["", "1abc", "Upper", "a-b", "a\"b", "a b", &"x".repeat(64)] {
            assert!(
                PgConfig::default()
                    .with_schema(bad)
                    .quoted_schema()
                    .is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn passwords_are_known_secrets_once_a_pool_is_built() {
        use george_core::secret::{KnownSecrets, REDACTED};
        let config = PgConfig::new("postgres://u:george-pw%21x@h/db");
        config.pool().unwrap();
        let secrets = KnownSecrets::global();
        assert_eq!(secrets.redact("pw=george-pw!x"), format!("pw={REDACTED}"));
        assert_eq!(secrets.redact("george-pw%21x"), REDACTED);
        PgConfig::new("host=h password='kv secret 1'")
            .pool()
            .unwrap();
        assert_eq!(secrets.redact("kv secret 1"), REDACTED);
    }

    #[test]
    fn tls_settings_and_urls_are_checked() {
        let verify = PgConfig::new("postgres://u@h/db?sslmode=verify-full");
        let err = verify.pool().unwrap_err().to_string();
        assert!(
            err.contains("sslmode=verify-full") && err.contains("sslrootcert"),
            "{err}"
        );
        let missing = verify.with_ssl_root_cert("/nonexistent/george-ca.pem");
        let err = missing.pool().unwrap_err().to_string();
        assert!(err.contains("/nonexistent/george-ca.pem"), "{err}");
        assert!(
            PgConfig::new("postgres://u@h/db?sslmode=require")
                .pool()
                .is_ok()
        );
        assert!(
            PgConfig::new("postgres://u@h/db?sslmode=bogus")
                .pool()
                .is_err()
        );
        assert!(PgConfig::new("not a url at all = =").pool().is_err());
    }
}
