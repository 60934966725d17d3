//! [`PgConfig`]: which database, which schema, how many connections.

use std::fmt;
use std::time::Duration;

use deadpool_postgres::{HookError, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use serde::{Deserialize, Serialize};
use tokio_postgres::NoTls;

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
/// Its `Debug` output hides the password of the URL.
///
/// TLS is not wired yet: connections are plain TCP or Unix sockets (`NoTls`), so keep
/// the database on a trusted network (or a Unix socket) until it is.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct PgConfig {
    /// The connection string: a URL (`postgres://user:password@host:port/database`) or
    /// `key=value` pairs (`host=localhost user=george dbname=george`), as libpq and
    /// tokio-postgres read them. `sslmode=require` is refused while TLS is not wired.
    pub url: String,
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
        let mut pg: tokio_postgres::Config = self
            .url
            .parse()
            .map_err(|e: tokio_postgres::Error| StoreError::PgConfig(e.to_string()))?;
        if pg.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            return Err(StoreError::PgConfig(
                "sslmode=require: TLS is not supported by george-store yet".into(),
            ));
        }
        let connect_timeout = Duration::from_millis(self.connect_timeout_ms);
        pg.connect_timeout(connect_timeout);
        if pg.get_application_name().is_none() {
            pg.application_name(&self.application_name);
        }
        let schema = self.quoted_schema()?;
        // One round trip per new connection: the schema, and durability even if the
        // role's or database's default turned `synchronous_commit` off (`local` and the
        // stronger settings for synchronous replicas are kept).
        let setup = format!(
            "SET search_path TO {schema}; \
             SELECT CASE WHEN current_setting('synchronous_commit') = 'off' \
                    THEN set_config('synchronous_commit', 'on', false) END"
        );
        let manager = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        Pool::builder(manager)
            .max_size(self.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(connect_timeout))
            .wait_timeout(Some(Duration::from_millis(self.acquire_timeout_ms)))
            .post_create(deadpool_postgres::Hook::async_fn(move |client, _| {
                let setup = setup.clone();
                Box::pin(async move {
                    client
                        .batch_execute(&setup)
                        .await
                        .map_err(HookError::Backend)
                })
            }))
            .build()
            .map_err(|e| StoreError::PgConfig(e.to_string()))
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `url` with its password replaced by `***` (URL and `key=value` forms).
pub(crate) fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
        if let Some((userinfo, host)) = authority.rsplit_once('@') {
            if let Some((user, _)) = userinfo.split_once(':') {
                return format!("{scheme}://{user}:***@{host}{tail}");
            }
        }
        return url.to_string();
    }
    url.split(' ')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => kv.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db?x=1"),
            "postgres://u:***@h:5432/db?x=1"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact("host=h password=secret user=u"),
            "host=h password=*** user=u"
        );
        let shown = format!("{:?}", PgConfig::new("postgres://u:secret@h/db"));
        assert!(!shown.contains("secret"), "{shown}");
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
    fn tls_is_refused_and_urls_parse() {
        assert!(
            PgConfig::new("postgres://u@h/db?sslmode=require")
                .pool()
                .is_err()
        );
        assert!(PgConfig::new("not a url at all = =").pool().is_err());
    }
}
