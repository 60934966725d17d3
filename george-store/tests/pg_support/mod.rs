//! What the PostgreSQL tests share: the test database's URL and a fresh schema per
//! test (see `postgres_conformance.rs`).
#![allow(dead_code, unused_macros)]

use std::io::Write as _;

use george_store::{PgConfig, PgStateStore};

/// The test database's URL, or `None` (after saying so loudly) when the tests must be
/// skipped.
pub fn test_url(test: &str) -> Option<String> {
    match std::env::var("GEORGE_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("CI is set but GEORGE_TEST_POSTGRES_URL is not: the PostgreSQL tests must run")
        }
        _ => {
            let _ = writeln!(
                std::io::stderr(),
                "\n!!! PostgreSQL test `{test}` DID NOT RUN: set GEORGE_TEST_POSTGRES_URL \
                 (e.g. postgres://postgres@127.0.0.1:5432/george_test) to run it !!!\n"
            );
            None
        }
    }
}

/// The CA certificate of the test server's TLS certificate
/// (`GEORGE_TEST_POSTGRES_TLS_CA`, exported by `.ci/run`), or `None` (after saying so
/// loudly) when the TLS tests must be skipped. Under CI (`CI` set) a missing value
/// fails: the TLS tests must run there.
pub fn tls_ca(test: &str) -> Option<std::path::PathBuf> {
    match std::env::var("GEORGE_TEST_POSTGRES_TLS_CA") {
        Ok(path) if !path.is_empty() => Some(path.into()),
        _ if std::env::var_os("CI").is_some() => panic!(
            "CI is set but GEORGE_TEST_POSTGRES_TLS_CA is not: the PostgreSQL TLS tests \
             must run (.ci/run exports it with the server's CA certificate)"
        ),
        _ => {
            let _ = writeln!(
                std::io::stderr(),
                "\n!!! PostgreSQL TLS test `{test}` DID NOT RUN: set \
                 GEORGE_TEST_POSTGRES_TLS_CA to the PEM file of the CA that signed the test \
                 server's certificate (for 127.0.0.1 and localhost), as .ci/run does !!!\n"
            );
            None
        }
    }
}

/// A fresh schema, dropped (with everything in it) when this value is, even when the
/// test panics.
pub struct TestSchema {
    url: String,
    name: String,
}

impl TestSchema {
    pub fn new(url: String) -> TestSchema {
        let name = format!("george_test_{:016x}", fastrand::u64(..));
        TestSchema { url, name }
    }

    /// The test database's connection string.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn config(&self) -> PgConfig {
        PgConfig::new(&self.url)
            .with_schema(&self.name)
            .with_pool_size(8)
    }

    pub async fn connect(&self) -> PgStateStore {
        PgStateStore::connect_with(self.config()).await.unwrap()
    }

    /// Runs `sql` on a connection of its own (search_path set to this schema).
    pub async fn execute(&self, sql: &str) {
        let (client, conn) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .unwrap();
        let task = tokio::spawn(conn);
        client
            .batch_execute(&format!("SET search_path TO {}; {sql}", self.name))
            .await
            .unwrap();
        drop(client);
        let _ = task.await;
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on: use a thread
        // with a runtime of its own.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                let task = tokio::spawn(conn);
                client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                    .await
                    .unwrap();
                drop(client);
                let _ = task.await;
            });
        })
        .join();
        if done.is_err() && !std::thread::panicking() {
            panic!("could not drop test schema {}", self.name);
        }
    }
}

macro_rules! schema_or_skip {
    ($test:literal) => {
        match $crate::pg_support::test_url($test) {
            Some(url) => $crate::pg_support::TestSchema::new(url),
            None => return,
        }
    };
}

macro_rules! tls_or_skip {
    ($test:literal) => {
        match $crate::pg_support::test_url($test) {
            Some(url) => match $crate::pg_support::tls_ca($test) {
                Some(ca) => ($crate::pg_support::TestSchema::new(url), ca),
                None => return,
            },
            None => return,
        }
    };
}
