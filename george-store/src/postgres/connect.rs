//! Opening connections: the pool of a [`PgConfig`], and each connection's TLS as its
//! `sslmode` says (with libpq's fallbacks: `prefer` retries in plain when the TLS
//! handshake fails, `allow` retries with TLS when the server refuses plain).

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{
    Connect, HookError, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime,
};
use futures::future::BoxFuture;
use george_core::secret::KnownSecrets;
use rustls::ClientConfig;
use tokio::task::JoinHandle;
use tokio_postgres::config::{SslMode, SslNegotiation};
use tokio_postgres::{Client, Config};

use super::PgConfig;
use super::connstr::{raw_url_password, take_tls_params};
use super::sslmode::{PgSslMode, TlsPlan};
use super::tls::{RustlsConnect, TlsError};
use super::tls_config::client_config;
use crate::error::StoreError;

/// Builds the connection pool of `config`. Opens no connection yet; reads the root
/// certificates, and registers the password with [`KnownSecrets::global`].
pub(crate) fn pool(config: &PgConfig) -> Result<Pool, StoreError> {
    let params = take_tls_params(&config.url)?;
    let mut pg: Config = params
        .rest
        .parse()
        .map_err(|e: tokio_postgres::Error| StoreError::PgConfig(e.to_string()))?;
    if let Some(password) = pg.get_password() {
        KnownSecrets::global().add(String::from_utf8_lossy(password));
        if let Some(raw) = raw_url_password(&config.url) {
            KnownSecrets::global().add(raw);
        }
    }
    let plan = TlsPlan::decide(
        config.ssl_mode.or(params.mode),
        config
            .ssl_root_cert
            .as_deref()
            .or(params.root_cert.as_deref()),
        &pg,
    )?;
    if plan.mode != plan.configured {
        tracing::debug!(
            sslmode = %plan.configured,
            "sslmode does not apply to Unix-domain sockets: connecting without TLS"
        );
    }
    let tls = client_config(&plan)?;
    let connect_timeout = Duration::from_millis(config.connect_timeout_ms);
    pg.connect_timeout(connect_timeout);
    if pg.get_application_name().is_none() {
        pg.application_name(&config.application_name);
    }
    let schema = config.quoted_schema()?;
    // One round trip per new connection: the schema, and durability even if the
    // role's or database's default turned `synchronous_commit` off (`local` and the
    // stronger settings for synchronous replicas are kept).
    let setup = format!(
        "SET search_path TO {schema}; \
         SELECT CASE WHEN current_setting('synchronous_commit') = 'off' \
                THEN set_config('synchronous_commit', 'on', false) END"
    );
    let manager = Manager::from_connect(
        pg,
        TlsConnect {
            mode: plan.mode,
            tls,
        },
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(config.pool_size.max(1))
        .runtime(Runtime::Tokio1)
        .create_timeout(Some(connect_timeout))
        .wait_timeout(Some(Duration::from_millis(config.acquire_timeout_ms)))
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

/// How the pool opens a connection.
struct TlsConnect {
    /// The mode in effect.
    mode: PgSslMode,
    /// `None` for `disable`.
    tls: Option<Arc<ClientConfig>>,
}

/// One way of trying a connection.
#[derive(Clone, Copy)]
enum Attempt {
    /// No TLS.
    Plain,
    /// TLS if the server accepts it (tokio-postgres's `prefer`).
    IfAccepted,
    /// TLS or fail.
    Required,
}

impl Connect for TlsConnect {
    fn connect(
        &self,
        pg: &Config,
    ) -> BoxFuture<'_, Result<(Client, JoinHandle<()>), tokio_postgres::Error>> {
        let pg = pg.clone();
        Box::pin(async move {
            match self.mode {
                PgSslMode::Disable => self.open(pg, Attempt::Plain).await,
                PgSslMode::Allow => match self.open(pg.clone(), Attempt::Plain).await {
                    // The server refused the connection (e.g. pg_hba.conf has only
                    // `hostssl` for it): again with TLS.
                    Err(e) if e.code().is_some() => self.open(pg, Attempt::Required).await,
                    done => done,
                },
                PgSslMode::Prefer => match self.open(pg.clone(), Attempt::IfAccepted).await {
                    Err(e) if is_tls_failure(&e) => {
                        tracing::debug!(
                            error = %super::describe(&e),
                            "sslmode=prefer: TLS failed, connecting without it"
                        );
                        self.open(pg, Attempt::Plain).await
                    }
                    done => done,
                },
                _ => self.open(pg, Attempt::Required).await,
            }
        })
    }
}

impl TlsConnect {
    async fn open(
        &self,
        mut pg: Config,
        attempt: Attempt,
    ) -> Result<(Client, JoinHandle<()>), tokio_postgres::Error> {
        let mode = self.mode;
        let tls = match attempt {
            Attempt::Plain => {
                pg.ssl_mode(SslMode::Disable);
                RustlsConnect::new(None, mode, false)
            }
            Attempt::IfAccepted => {
                pg.ssl_mode(SslMode::Prefer);
                RustlsConnect::new(self.tls.clone(), mode, false)
            }
            Attempt::Required => {
                // The connector sends the TLS request itself (tokio-postgres is told
                // to negotiate directly), so a server refusing TLS is reported as a
                // `TlsError` naming the mode, like every other TLS failure.
                let ssl_request = pg.get_ssl_negotiation() != SslNegotiation::Direct;
                pg.ssl_mode(SslMode::Require);
                pg.ssl_negotiation(SslNegotiation::Direct);
                RustlsConnect::new(self.tls.clone(), mode, ssl_request)
            }
        };
        let (client, connection) = pg.connect(tls).await?;
        let task = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %super::describe(&e), "PostgreSQL connection failed");
            }
        });
        Ok((client, task))
    }
}

/// Whether `e` is a failure of TLS (as opposed to the server or the network).
fn is_tls_failure(e: &tokio_postgres::Error) -> bool {
    std::error::Error::source(e).is_some_and(|s| s.is::<TlsError>())
}
